//! The authorization server's state, in the store's SQLite file.

use super::{
    random_secret, secret_hash, AuthSettings, Principal, ACCESS_PREFIX, API_KEY_PREFIX,
    CLIENT_SECRET_PREFIX, CODE_PREFIX, OOB_REDIRECT, REFRESH_PREFIX, RUNNER_CLIENT,
};
use crate::error::ApiError;
use crate::store::Store;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::StatusCode;
use base64::Engine;
use rusqlite::{params, OptionalExtension};
use sha2::Digest;

/// Tables of the authorization server.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT,
  redirect_uris TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_codes (
  code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_name TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, challenge TEXT, challenge_method TEXT, scope TEXT NOT NULL,
  expires_at INTEGER NOT NULL, family TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, family TEXT NOT NULL, client_id TEXT NOT NULL,
  user_name TEXT NOT NULL, scope TEXT NOT NULL, expires_at INTEGER NOT NULL,
  state TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE TABLE IF NOT EXISTS api_keys (
  hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
";

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its id.
    pub client_id: String,
    /// Shown on the consent page.
    pub name: String,
    /// Confidential clients authenticate with a secret; public ones cannot.
    pub confidential: bool,
    /// Registered redirect URIs. `http://127.0.0.1/…` and
    /// `http://[::1]/…` match any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
}

impl Client {
    /// Whether `uri` is one of the registered redirect URIs.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| {
            if r == uri {
                return true;
            }
            let (Ok(reg), Ok(got)) = (url::Url::parse(r), url::Url::parse(uri)) else {
                return false;
            };
            let loopback = matches!(reg.host_str(), Some("127.0.0.1") | Some("[::1]"));
            loopback
                && reg.scheme() == "http"
                && got.scheme() == "http"
                && reg.host_str() == got.host_str()
                && reg.path() == got.path()
                && got.query().is_none()
                && got.fragment().is_none()
        })
    }
}

/// What the token endpoint hands out.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The refresh token (rotated at every use).
    pub refresh_token: String,
    /// Granted scope.
    pub scope: String,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An error of the token or revocation endpoint (RFC 6749 §5.2 shape).
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// 400 or 401.
    pub status: StatusCode,
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub error: &'static str,
    /// For a person.
    pub description: String,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: if error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error,
            description: description.into(),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        OAuthError {
            status: e.status,
            error: "server_error",
            description: e.message,
        }
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::from(e).into()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(ApiError::internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// S256 of a PKCE verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl Store {
    /// Creates the `runner` public client (loopback and paste-the-code
    /// redirects) when it does not exist.
    pub fn ensure_runner_client(&self) -> Result<(), ApiError> {
        if self.client(RUNNER_CLIENT)?.is_none() {
            self.add_client(
                RUNNER_CLIENT,
                "runner (worker sign-in)",
                false,
                &[
                    "http://127.0.0.1/callback".to_string(),
                    OOB_REDIRECT.to_string(),
                ],
            )?;
        }
        Ok(())
    }

    /// Adds a user (Argon2id password hash).
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), ApiError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(ApiError::invalid(
                "a user name is 1–64 letters, digits, '-', '_', '.', '@'",
            ));
        }
        if password.chars().count() < 8 {
            return Err(ApiError::invalid("a password has at least 8 characters"));
        }
        let hash = hash_password(password)?;
        self.tx(|tx| {
            let n = tx.execute(
                "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, hash, now_ms()],
            )?;
            if n == 0 {
                return Err(ApiError::conflict("exists", format!("user {name} exists")));
            }
            Ok(())
        })
    }

    /// Whether `password` is the user's. An unknown user costs the same
    /// time (a dummy hash is verified), so names cannot be probed.
    pub fn check_password(&self, name: &str, password: &str) -> Result<bool, ApiError> {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let stored: Option<String> = self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT password_hash FROM users WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        let known = stored.is_some();
        let hash = match stored {
            Some(h) => h,
            None => DUMMY
                .get_or_init(|| hash_password("not anyone's password").unwrap_or_default())
                .clone(),
        };
        let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    }

    /// Registers a client; returns its secret when confidential (shown once).
    pub fn add_client(
        &self,
        client_id: &str,
        name: &str,
        confidential: bool,
        redirect_uris: &[String],
    ) -> Result<Option<String>, ApiError> {
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(ApiError::invalid("a client id is 1–64 characters"));
        }
        if redirect_uris.is_empty() {
            return Err(ApiError::invalid(
                "a client needs at least one redirect URI",
            ));
        }
        for u in redirect_uris {
            if u != OOB_REDIRECT && url::Url::parse(u).is_err() {
                return Err(ApiError::invalid(format!(
                    "redirect URI {u:?} is not a URL"
                )));
            }
        }
        let secret = confidential.then(|| random_secret(CLIENT_SECRET_PREFIX));
        let uris = serde_json::to_string(redirect_uris).map_err(ApiError::internal)?;
        self.tx(|tx| {
            let n = tx.execute(
                "INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (client_id) DO NOTHING",
                params![client_id, name, secret.as_deref().map(secret_hash), uris, now_ms()],
            )?;
            if n == 0 {
                return Err(ApiError::conflict("exists", format!("client {client_id} exists")));
            }
            Ok(())
        })?;
        Ok(secret)
    }

    /// A registered client.
    pub fn client(&self, client_id: &str) -> Result<Option<Client>, ApiError> {
        self.tx(|tx| {
            let row: Option<(String, Option<String>, String)> = tx
                .query_row(
                    "SELECT name, secret_hash, redirect_uris FROM oauth_clients WHERE client_id = ?1",
                    params![client_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(row.map(|(name, secret, uris)| Client {
                client_id: client_id.to_string(),
                name,
                confidential: secret.is_some(),
                redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
            }))
        })
    }

    /// Authenticates a client at the token or revocation endpoint.
    pub(crate) fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<Client, OAuthError> {
        let stored: Option<Option<String>> = self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT secret_hash FROM oauth_clients WHERE client_id = ?1",
                    params![client_id],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        let Some(stored) = stored else {
            return Err(OAuthError::new(
                "invalid_client",
                format!("unknown client {client_id:?}"),
            ));
        };
        match (stored, secret) {
            (Some(h), Some(s)) if subtle::ConstantTimeEq::ct_eq(h.as_bytes(), secret_hash(s).as_bytes()).into() => {}
            (Some(_), _) => {
                return Err(OAuthError::new("invalid_client", "client authentication failed: a confidential client sends its secret (HTTP Basic or client_secret)"))
            }
            (None, Some(_)) => {
                return Err(OAuthError::new("invalid_client", "this client is public: it has no secret to send"))
            }
            (None, None) => {}
        }
        self.client(client_id)?
            .ok_or_else(|| OAuthError::new("invalid_client", "unknown client"))
    }

    /// Adds an API key; returns it (shown once).
    pub fn add_api_key(&self, name: &str) -> Result<String, ApiError> {
        let key = random_secret(API_KEY_PREFIX);
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO api_keys (hash, name, created_at) VALUES (?1, ?2, ?3)",
                params![secret_hash(&key), name, now_ms()],
            )?;
            Ok(())
        })?;
        Ok(key)
    }

    /// Who a bearer credential belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let invalid = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is not valid (unknown, expired or revoked); refresh it, or sign in again with `runner login`",
            )
        };
        let h = secret_hash(token);
        let now = now_ms();
        if token.starts_with(API_KEY_PREFIX) {
            let name: Option<String> = self.tx(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT name FROM api_keys WHERE hash = ?1 AND revoked = 0",
                        params![h],
                        |r| r.get(0),
                    )
                    .optional()?)
            })?;
            return name
                .map(|name| Principal::ApiKey { name })
                .ok_or_else(invalid);
        }
        if !token.starts_with(ACCESS_PREFIX) {
            return Err(invalid());
        }
        let row: Option<(String, String)> = self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT user_name, client_id FROM tokens WHERE hash = ?1 AND kind = 'access' AND state = 'active' AND expires_at > ?2",
                    params![h, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })?;
        row.map(|(user, client_id)| Principal::User { user, client_id })
            .ok_or_else(invalid)
    }

    /// Stores an authorization code; returns it.
    pub(crate) fn create_code(
        &self,
        client_id: &str,
        user: &str,
        redirect_uri: &str,
        challenge: Option<(&str, &str)>,
        scope: &str,
    ) -> Result<String, ApiError> {
        let code = random_secret(CODE_PREFIX);
        let expires = now_ms() + self.auth_settings().code_seconds as i64 * 1000;
        self.tx(|tx| {
            // Codes are worth nothing once expired: forget them.
            tx.execute("DELETE FROM auth_codes WHERE expires_at < ?1", params![now_ms() - 3_600_000])?;
            tx.execute(
                "INSERT INTO auth_codes (code_hash, client_id, user_name, redirect_uri, challenge, challenge_method, scope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![secret_hash(&code), client_id, user, redirect_uri, challenge.map(|c| c.0), challenge.map(|c| c.1), scope, expires],
            )?;
            Ok(())
        })?;
        Ok(code)
    }

    /// The authorization-code grant: checks the code, the redirect URI
    /// and the PKCE verifier, then issues a new token family. A code used
    /// twice revokes what the first use issued (RFC 6749 §4.1.2).
    pub(crate) fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<IssuedTokens, OAuthError> {
        let settings = self.auth_settings();
        let now = now_ms();
        let result = self.tx(|tx| {
            type Row = (String, String, String, Option<String>, Option<String>, String, i64, Option<String>);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT client_id, user_name, redirect_uri, challenge, challenge_method, scope, expires_at, family FROM auth_codes WHERE code_hash = ?1",
                    params![secret_hash(code)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
                )
                .optional()?;
            let Some((cid, user, redirect, challenge, method, scope, expires, family)) = row else {
                return Ok(Err(OAuthError::new("invalid_grant", "unknown authorization code")));
            };
            if cid != client.client_id {
                return Ok(Err(OAuthError::new("invalid_grant", "the code was issued to another client")));
            }
            if expires <= now {
                return Ok(Err(OAuthError::new("invalid_grant", "the authorization code expired; sign in again")));
            }
            // Used twice while still valid: someone else has it; what the
            // first use gave is revoked (RFC 6749 §4.1.2).
            if let Some(f) = family {
                tx.execute("UPDATE tokens SET state = 'revoked' WHERE family = ?1", params![f])?;
                return Ok(Err(OAuthError::new("invalid_grant", "the authorization code was already used; the tokens it gave were revoked")));
            }
            if redirect != redirect_uri {
                return Ok(Err(OAuthError::new("invalid_grant", "redirect_uri differs from the one the code was issued for")));
            }
            match (challenge.as_deref(), method.as_deref(), verifier) {
                (Some(c), Some("S256"), Some(v)) if subtle::ConstantTimeEq::ct_eq(s256(v).as_bytes(), c.as_bytes()).into() => {}
                (Some(_), _, None) => return Ok(Err(OAuthError::new("invalid_grant", "code_verifier is missing (PKCE)"))),
                (Some(_), _, Some(_)) => return Ok(Err(OAuthError::new("invalid_grant", "code_verifier does not match the code_challenge (PKCE)"))),
                (None, _, _) if !client.confidential => {
                    return Ok(Err(OAuthError::new("invalid_grant", "public clients must use PKCE (S256)")))
                }
                (None, _, _) => {}
            }
            let family = uuid::Uuid::new_v4().simple().to_string();
            tx.execute("UPDATE auth_codes SET family = ?2 WHERE code_hash = ?1", params![secret_hash(code), family])?;
            Ok(Ok(issue(tx, &settings, &family, &client.client_id, &user, &scope, now)?))
        })?;
        result
    }

    /// The refresh-token grant with rotation: the old refresh token is
    /// spent; presenting a spent one again revokes the whole family (the
    /// token was stolen, or the client is confused: either way, sign in
    /// again).
    pub(crate) fn refresh(
        &self,
        client: &Client,
        refresh_token: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let settings = self.auth_settings();
        let now = now_ms();
        self.tx(|tx| {
            let row: Option<(String, String, String, String, i64, String)> = tx
                .query_row(
                    "SELECT family, client_id, user_name, scope, expires_at, state FROM tokens WHERE hash = ?1 AND kind = 'refresh'",
                    params![secret_hash(refresh_token)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((family, cid, user, scope, expires, state)) = row else {
                return Ok(Err(OAuthError::new("invalid_grant", "unknown refresh token; sign in again with `runner login`")));
            };
            if cid != client.client_id {
                return Ok(Err(OAuthError::new("invalid_grant", "the refresh token was issued to another client")));
            }
            match state.as_str() {
                "rotated" => {
                    tx.execute("UPDATE tokens SET state = 'revoked' WHERE family = ?1", params![family])?;
                    tracing::warn!(user = %user, "refresh token reuse: every token of that sign-in was revoked");
                    return Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "refresh token reuse detected: every token of this sign-in was revoked; sign in again with `runner login`",
                    )));
                }
                "revoked" => return Ok(Err(OAuthError::new("invalid_grant", "the refresh token was revoked; sign in again with `runner login`"))),
                _ => {}
            }
            if expires <= now {
                return Ok(Err(OAuthError::new("invalid_grant", "the refresh token expired; sign in again with `runner login`")));
            }
            tx.execute("UPDATE tokens SET state = 'rotated' WHERE hash = ?1", params![secret_hash(refresh_token)])?;
            Ok(Ok(issue(tx, &settings, &family, &cid, &user, &scope, now)?))
        })?
    }

    /// Revokes a token of `client` (RFC 7009). A refresh token revokes
    /// every refresh token of its sign-in; its access tokens end at their
    /// (short) expiry. Unknown tokens are not an error.
    pub(crate) fn revoke(&self, client: &Client, token: &str) -> Result<(), OAuthError> {
        self.tx(|tx| {
            let row: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT kind, family, client_id FROM tokens WHERE hash = ?1",
                    params![secret_hash(token)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match row {
                Some((_, _, cid)) if cid != client.client_id => {}
                Some((kind, family, _)) if kind == "refresh" => {
                    tx.execute("UPDATE tokens SET state = 'revoked' WHERE family = ?1 AND kind = 'refresh'", params![family])?;
                }
                Some(_) => {
                    tx.execute("UPDATE tokens SET state = 'revoked' WHERE hash = ?1", params![secret_hash(token)])?;
                }
                None => {}
            }
            Ok(())
        })
        .map_err(OAuthError::from)
    }

    /// Signs a user out of a client: every refresh token of theirs is
    /// revoked (their workers cannot refresh, release their sessions and
    /// stop; access tokens end at their short expiry). Returns how many
    /// sign-ins were ended.
    pub fn revoke_user(&self, user: &str, client_id: &str) -> Result<usize, ApiError> {
        self.tx(|tx| {
            let n = tx.execute(
                "UPDATE tokens SET state = 'revoked' WHERE user_name = ?1 AND client_id = ?2 AND kind = 'refresh' AND state = 'active'",
                params![user, client_id],
            )?;
            Ok(n)
        })
    }

    /// Issues a token pair for a user directly, without the browser flow:
    /// for `runner up`'s embedded control plane, benchmarks and admin use.
    pub fn issue_tokens(&self, user: &str, client_id: &str) -> Result<IssuedTokens, ApiError> {
        let settings = self.auth_settings();
        let family = uuid::Uuid::new_v4().simple().to_string();
        self.tx(|tx| issue(tx, &settings, &family, client_id, user, "agent", now_ms()))
    }
}

fn issue(
    tx: &rusqlite::Transaction<'_>,
    settings: &AuthSettings,
    family: &str,
    client_id: &str,
    user: &str,
    scope: &str,
    now: i64,
) -> Result<IssuedTokens, ApiError> {
    let access = random_secret(ACCESS_PREFIX);
    let refresh = random_secret(REFRESH_PREFIX);
    for (token, kind, life) in [
        (&access, "access", settings.access_seconds),
        (&refresh, "refresh", settings.refresh_seconds),
    ] {
        tx.execute(
            "INSERT INTO tokens (hash, kind, family, client_id, user_name, scope, expires_at, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8)",
            params![secret_hash(token), kind, family, client_id, user, scope, now + life as i64 * 1000, now],
        )?;
    }
    Ok(IssuedTokens {
        access_token: access,
        token_type: "Bearer",
        expires_in: settings.access_seconds,
        refresh_token: refresh,
        scope: scope.to_string(),
    })
}
