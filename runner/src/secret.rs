//! Secret references: an API key is named in the config (an environment
//! variable, a file, a systemd credential), never written in it, so a
//! config file can be logged, diffed and shared. The value lives only in a
//! [`Secret`], whose `Debug` never shows it.

use serde::Deserialize;
use std::path::PathBuf;

/// Where a secret comes from: exactly one of `env`, `file`, `credential`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable of the runner process.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the secret (trailing newline ignored); it must not be
    /// readable by group or others.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A systemd credential (`LoadCredential=`/`LoadCredentialEncrypted=`),
    /// read from `$CREDENTIALS_DIRECTORY/<name>`.
    #[serde(default)]
    pub credential: Option<String>,
}

/// A secret value. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// Wraps a value obtained elsewhere (a token the platform handed over,
    /// a test fixture), so it travels redacted from here on.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl SecretRef {
    /// Reads the secret; the error names the reference (never the value)
    /// and says how to fix it.
    pub fn resolve(&self, what: &str) -> Result<Secret, String> {
        let set = [
            self.env.is_some(),
            self.file.is_some(),
            self.credential.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            return Err(format!(
                "{what}: give exactly one of env, file or credential (e.g. api_key = {{ env = \"OPENAI_API_KEY\" }})"
            ));
        }
        let value = if let Some(var) = &self.env {
            std::env::var(var).map_err(|_| {
                format!("{what}: the environment variable {var} is not set; export it for the runner or use file/credential")
            })?
        } else if let Some(path) = &self.file {
            read_private(path).map_err(|e| format!("{what}: {e}"))?
        } else {
            let name = self.credential.as_deref().unwrap_or_default();
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!(
                    "{what}: credential {name:?} is not a credential name"
                ));
            }
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                format!("{what}: systemd credential {name}: CREDENTIALS_DIRECTORY is not set (run the runner under systemd with LoadCredential={name}:<path>)")
            })?;
            read_private(&PathBuf::from(dir).join(name)).map_err(|e| format!("{what}: {e}"))?
        };
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(format!("{what}: the secret is empty"));
        }
        Ok(Secret(value))
    }
}

fn read_private(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others (mode {:o}); run chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_secret_must_be_private_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "sk-test-123\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = SecretRef {
            file: Some(p.clone()),
            ..Default::default()
        };
        let err = r.resolve("provider x api_key").unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = r.resolve("provider x api_key").unwrap();
        assert_eq!(s.expose(), "sk-test-123");
        assert!(!format!("{s:?}").contains("sk-test"));
    }

    #[test]
    fn exactly_one_source_and_missing_env_is_named() {
        let none = SecretRef::default();
        assert!(none.resolve("k").unwrap_err().contains("exactly one"));
        let env = SecretRef {
            env: Some("RUNNER_TEST_SURELY_UNSET_VAR".into()),
            ..Default::default()
        };
        let err = env.resolve("k").unwrap_err();
        assert!(
            err.contains("RUNNER_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
    }
}
