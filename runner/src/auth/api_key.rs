//! An API key as the bearer of control-plane calls (`runner run` with
//! `RUNNER_API_KEY`). A key cannot be refreshed: the first 401 marks it
//! refused for good, so a follower stops instead of retrying forever.

use super::TokenSource;
use std::sync::Mutex;

/// A fixed API key.
pub struct ApiKey {
    key: String,
    source: String,
    refused: Mutex<Option<String>>,
}

impl ApiKey {
    /// The key `key`, read from the environment variable `source` (named
    /// in the message when the control plane refuses it).
    pub fn new(key: String, source: &str) -> ApiKey {
        ApiKey {
            key,
            source: source.to_string(),
            refused: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("ApiKey").finish_non_exhaustive()
    }
}

impl TokenSource for ApiKey {
    fn bearer(&self) -> Result<String, String> {
        Ok(self.key.clone())
    }

    fn after_unauthorized(&self, _rejected: &str) -> Result<String, String> {
        let why = format!(
            "the control plane refused the API key in {} (revoked, or not a key of this control plane)",
            self.source
        );
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        Err(why)
    }

    fn lost(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_key_is_lost_for_good() {
        let k = ApiKey::new("rk_secret".into(), "RUNNER_API_KEY");
        assert_eq!(k.bearer().unwrap(), "rk_secret");
        assert_eq!(k.lost(), None);
        assert!(k.after_unauthorized("rk_secret").is_err());
        assert!(k.lost().unwrap().contains("refused the API key"));
        assert!(!format!("{k:?}").contains("rk_secret"));
    }
}
