//! Tokens in use. The access token is refreshed ahead of its expiry (when
//! less than `refresh_when_left` of its life is left) and after a 401, by
//! one thread at a time: the others wait for its result instead of
//! refreshing too (a second use of the old refresh token would look like a
//! stolen one and revoke the sign-in). The new refresh token is persisted
//! before the new access token is handed out. A refresh the server refuses
//! (`invalid_grant`: revoked, reused, expired) loses the sign-in for good.

use super::store::{StoredTokens, TokenFile};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl};
use std::sync::Mutex;

/// What the control-plane client needs: a bearer token, and a way to get a
/// new one.
pub trait TokenSource: Send + Sync {
    /// The access token to send now (refreshed first if it is about to
    /// expire).
    fn bearer(&self) -> Result<String, String>;
    /// The control plane refused `rejected` (401): refresh unless another
    /// thread already did, and return the token to retry with.
    fn after_unauthorized(&self, rejected: &str) -> Result<String, String>;
    /// Why the sign-in is lost for good, once it is.
    fn lost(&self) -> Option<String>;
}

/// Where refreshed tokens are kept.
#[derive(Debug)]
pub enum Persist {
    /// The encrypted token file.
    File(TokenFile),
    /// Memory only (`runner up`'s embedded control plane, benchmarks).
    Memory,
}

/// The OAuth tokens of a worker.
pub struct TokenManager {
    state: Mutex<StoredTokens>,
    persist: Persist,
    client_secret: Option<String>,
    refresh_when_left: f64,
    lost: Mutex<Option<String>>,
    http: reqwest::blocking::Client,
    /// After a failed refresh, the next attempt waits until then.
    retry_at: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("persist", &self.persist)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TokenManager {
    /// Tokens kept as `persist` says.
    pub fn new(
        tokens: StoredTokens,
        persist: Persist,
        client_secret: Option<String>,
        refresh_when_left: f64,
    ) -> Result<TokenManager, String> {
        let http = crate::trust::client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(TokenManager {
            state: Mutex::new(tokens),
            persist,
            client_secret,
            refresh_when_left: refresh_when_left.clamp(0.0, 0.9),
            lost: Mutex::new(None),
            http,
            retry_at: Mutex::new(None),
        })
    }

    fn due(&self, t: &StoredTokens) -> bool {
        let left = t.access_expires_at - now();
        left as f64 <= t.access_lifetime as f64 * self.refresh_when_left || left <= 1
    }

    fn set_lost(&self, why: String) -> String {
        let mut l = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if l.is_none() {
            tracing::error!("the sign-in to the control plane is lost: {why}");
            *l = Some(why.clone());
        }
        why
    }

    /// Refreshes while holding the state lock (single flight).
    fn refresh_locked(&self, t: &mut StoredTokens) -> Result<(), String> {
        if let Some(why) = self.lost() {
            return Err(why);
        }
        let token_url = TokenUrl::new(format!(
            "{}/oauth/token",
            t.control_plane.trim_end_matches('/')
        ))
        .map_err(|e| format!("bad control plane URL: {e}"))?;
        let mut client =
            BasicClient::new(ClientId::new(t.client_id.clone())).set_token_uri(token_url);
        if let Some(s) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(s.clone()));
        }
        let answer = client
            .exchange_refresh_token(&RefreshToken::new(t.refresh_token.clone()))
            .request(&self.http);
        let tr = match answer {
            Ok(tr) => tr,
            Err(RequestTokenError::ServerResponse(e)) => {
                let desc = e.error_description().cloned().unwrap_or_default();
                let permanent = matches!(
                    e.error(),
                    BasicErrorResponseType::InvalidGrant
                        | BasicErrorResponseType::InvalidClient
                        | BasicErrorResponseType::UnauthorizedClient
                );
                let msg = format!(
                    "the control plane refused to refresh the sign-in ({}: {desc})",
                    e.error()
                );
                return Err(if permanent {
                    self.set_lost(format!("{msg}; run `runner login` again"))
                } else {
                    msg
                });
            }
            Err(e) => return Err(format!("refreshing the sign-in failed: {e}")),
        };
        let lifetime = tr
            .expires_in()
            .map(|d| d.as_secs() as i64)
            .unwrap_or(900)
            .max(1);
        let new = StoredTokens {
            access_token: tr.access_token().secret().clone(),
            refresh_token: tr
                .refresh_token()
                .map(|r| r.secret().clone())
                .unwrap_or_else(|| t.refresh_token.clone()),
            access_expires_at: now() + lifetime,
            access_lifetime: lifetime,
            ..t.clone()
        };
        // The new refresh token is on disk before the new access token is
        // used: a crash now leaves a usable sign-in. If it cannot be
        // written, the new tokens are still the only valid ones (the old
        // refresh token is spent): keep them in memory and say so loudly.
        if let Persist::File(f) = &self.persist {
            if let Err(e) = f.save(&new) {
                tracing::error!("the refreshed tokens could not be stored ({e}); they are kept in memory — fix the state directory, or the next start needs `runner login`");
            }
        }
        *t = new;
        Ok(())
    }
}

impl TokenSource for TokenManager {
    fn bearer(&self) -> Result<String, String> {
        let mut t = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let backing_off = self
            .retry_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| std::time::Instant::now() < at && t.access_expires_at > now());
        if self.due(&t) && !backing_off {
            let r = self.refresh_locked(&mut t);
            *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = r
                .is_err()
                .then(|| std::time::Instant::now() + std::time::Duration::from_secs(5));
            if let Err(e) = r {
                // An access token that still works is used: for a lost
                // sign-in, to release the sessions; otherwise the next call
                // retries the refresh.
                if t.access_expires_at <= now() {
                    return Err(e);
                }
                if self.lost().is_none() {
                    tracing::warn!("{e}");
                }
            }
        }
        Ok(t.access_token.clone())
    }

    fn after_unauthorized(&self, rejected: &str) -> Result<String, String> {
        let mut t = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if t.access_token != rejected {
            return Ok(t.access_token.clone());
        }
        self.refresh_locked(&mut t)?;
        Ok(t.access_token.clone())
    }

    fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
