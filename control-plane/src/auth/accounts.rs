//! Who may sign in and who may ask for tokens: users (Argon2id password
//! hashes), OAuth clients (confidential ones by a hashed secret), API keys,
//! and the lookup that turns a bearer credential into a [`Principal`].

use super::error::OAuthError;
use super::{
    random_secret, secret_hash, Principal, ACCESS_PREFIX, API_KEY_PREFIX, CLIENT_SECRET_PREFIX,
};
use crate::store::auth as db;
use crate::store::{now_ms, Missing, Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

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

    fn from_row(client_id: &str, row: db::ClientRow) -> Client {
        Client {
            client_id: client_id.to_string(),
            name: row.name,
            confidential: row.secret_hash.is_some(),
            redirect_uris: row.redirect_uris,
        }
    }
}

/// Whether `password` matches the PHC-format Argon2 `hash` (a malformed
/// hash matches nothing). Slow and ~19 MiB on purpose: call it only from
/// [`super::lockout`]'s verification threads.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(StoreError::corrupt)?;
    let salt = SaltString::encode_b64(&salt).map_err(StoreError::corrupt)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(StoreError::corrupt)
}

impl Store {
    /// Adds a user (Argon2id password hash), with the email address the
    /// Cloud Agents API shows as `userEmail` (optional: `/v0/me` answers
    /// `null` until one is set).
    pub fn add_user(
        &self,
        name: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(StoreError::invalid(
                "a user name is 1–64 letters, digits, '-', '_', '.', '@'",
            ));
        }
        if password.chars().count() < 8 {
            return Err(StoreError::invalid("a password has at least 8 characters"));
        }
        if let Some(e) = email {
            check_email(e)?;
        }
        let hash = hash_password(password)?;
        self.tx(|tx| db::insert_user(tx, name, &hash, email))
    }

    /// A one-time sign-in link's code for `user` (what `runner up` prints
    /// so the demo's pages open signed in): redeemed at most once, within
    /// ten minutes, kept only as its hash. With `create`, a missing user is
    /// added first, with a random password nobody is told (it signs in by
    /// such links only).
    pub fn web_sign_in_link(&self, user: &str, create: bool) -> Result<String, StoreError> {
        if !self.user_exists(user)? {
            if !create {
                return Err(StoreError::invalid(format!(
                    "no user {user}: add it first (control-plane admin user-add {user}), or pass --create"
                )));
            }
            self.add_user(user, &super::random_secret(""), None)?;
        }
        let code = super::random_secret("cpwl_");
        self.insert_web_link(&secret_hash(&code), user)?;
        Ok(code)
    }

    /// Sets (or changes) a user's email: how users added before emails
    /// existed get one.
    pub fn set_user_email(&self, name: &str, email: &str) -> Result<(), StoreError> {
        check_email(email)?;
        if self.tx(|tx| db::set_user_email(tx, name, email))? {
            Ok(())
        } else {
            Err(StoreError::not_found(
                Missing::User,
                format!("no user {name:?}; add one with `control-plane admin user-add {name} --email {email}`"),
            ))
        }
    }

    /// The hash `name`'s password is checked against, and whether the user
    /// exists. An unknown user gets a dummy hash, verified all the same
    /// (see [`verify_password`]), so the time taken does not tell which
    /// names exist. Split from the verification so that the slow part runs
    /// on [`super::lockout`]'s few threads while the store read stays here.
    pub(crate) fn password_hash_to_check(&self, name: &str) -> Result<(String, bool), StoreError> {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Ok(match self.tx(|tx| db::password_hash(tx, name))? {
            Some(h) => (h, true),
            None => (
                DUMMY
                    .get_or_init(|| hash_password("not anyone's password").unwrap_or_default())
                    .clone(),
                false,
            ),
        })
    }

    /// Registers a client; returns its secret when confidential (shown once).
    pub fn add_client(
        &self,
        client_id: &str,
        name: &str,
        confidential: bool,
        redirect_uris: &[String],
    ) -> Result<Option<String>, StoreError> {
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(StoreError::invalid("a client id is 1–64 characters"));
        }
        if redirect_uris.is_empty() {
            return Err(StoreError::invalid(
                "a client needs at least one redirect URI",
            ));
        }
        for u in redirect_uris {
            if u == super::oauth::OOB_REDIRECT {
                return Err(StoreError::invalid(super::oauth::OOB_REFUSED));
            }
            if url::Url::parse(u).is_err() {
                return Err(StoreError::invalid(format!(
                    "redirect URI {u:?} is not a URL"
                )));
            }
        }
        let secret = confidential.then(|| random_secret(CLIENT_SECRET_PREFIX));
        let row = db::ClientRow {
            name: name.to_string(),
            secret_hash: secret.as_deref().map(secret_hash),
            redirect_uris: redirect_uris.to_vec(),
        };
        self.tx(|tx| db::insert_client(tx, client_id, &row))?;
        Ok(secret)
    }

    /// A registered client.
    pub(crate) fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = self.tx(|tx| db::client(tx, client_id))?;
        Ok(row.map(|r| Client::from_row(client_id, r)))
    }

    /// Authenticates a client at the token or revocation endpoint.
    pub(crate) fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<Client, OAuthError> {
        let Some(row) = self.tx(|tx| db::client(tx, client_id))? else {
            return Err(OAuthError::new(
                "invalid_client",
                format!("unknown client {client_id:?}"),
            ));
        };
        match (&row.secret_hash, secret) {
            (Some(h), Some(s))
                if subtle::ConstantTimeEq::ct_eq(h.as_bytes(), secret_hash(s).as_bytes())
                    .into() => {}
            (Some(_), _) => {
                return Err(OAuthError::new("invalid_client", "client authentication failed: a confidential client sends its secret (HTTP Basic or client_secret)"))
            }
            (None, Some(_)) => {
                return Err(OAuthError::new("invalid_client", "this client is public: it has no secret to send"))
            }
            (None, None) => {}
        }
        Ok(Client::from_row(client_id, row))
    }

    /// Who a bearer credential belongs to; `None` when it is unknown,
    /// expired or revoked. The stored hashes are looked up by the hash of
    /// what was presented (an index lookup, not a comparison with a
    /// secret: timing tells at most how much of the SHA-256 of the
    /// caller's own guess matches some stored digest, which does not help
    /// find a key).
    pub(crate) fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let h = secret_hash(token);
        if token.starts_with(API_KEY_PREFIX) {
            let key = self.tx(|tx| db::api_key_by_hash(tx, &h))?;
            return Ok(key.map(|k| Principal::ApiKey {
                id: k.id,
                name: k.name,
                user: k.user,
                agent: k.agent,
            }));
        }
        if !token.starts_with(ACCESS_PREFIX) {
            return Ok(None);
        }
        let now = now_ms();
        let owner = self.tx(|tx| db::access_token_owner(tx, &h, now))?;
        Ok(owner.map(|(user, client_id)| Principal::User { user, client_id }))
    }
}

/// A plausible email address: one `@` between a non-empty local part and
/// a domain, no spaces or control characters, at most 254 bytes (RFC
/// 5321's path limit). Deliverability is not checked: nothing is sent.
fn check_email(email: &str) -> Result<(), StoreError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(format!(
            "{email:?} is not an email address (name@example.com)"
        )))
    }
}
