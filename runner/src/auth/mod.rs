//! The worker's sign-in to the control plane: OAuth 2.0 user tokens, never
//! API keys (agent endpoints refuse those).
//!
//! - [`api_key`]: an API key as the bearer, for `runner run` (a person's
//!   call, not a worker's: the session routes take keys).
//! - [`login`]: `runner login` — authorization code with PKCE (S256)
//!   through a loopback redirect where a browser runs on this host, the
//!   device authorization grant (RFC 8628) on a host without one.
//! - [`store`]: the tokens at rest — encrypted (XChaCha20-Poly1305) with a
//!   key from a systemd credential, a key file or an environment variable,
//!   in a 0600 file in a state directory nobody else can read, written
//!   atomically.
//! - [`tokens`]: the tokens in use — refreshed ahead of expiry, one refresh
//!   at a time, the new refresh token persisted before the new access token
//!   is used; a refresh refused for good marks the sign-in lost, and the
//!   worker releases its sessions and stops.

pub mod api_key;
pub(crate) mod login;
pub mod store;
pub mod tokens;

pub use tokens::{TokenManager, TokenSource};

use crate::secret::SecretRef;
use serde::Deserialize;
use std::path::PathBuf;

/// `[auth]` in the worker config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// The OAuth client the runner signs in as (the control plane creates a
    /// public client `runner`).
    #[serde(default = "default_client")]
    pub client_id: String,
    /// A confidential client's secret, by reference.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// The key the token file is encrypted with: 32 random bytes, hex or
    /// base64, by reference (`{ credential = "runner-token-key" }`,
    /// `{ file = "…" }`, `{ env = "…" }`).
    #[serde(default)]
    pub key: Option<SecretRef>,
    /// The encrypted token file (default `<state_dir>/tokens.enc`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Refresh when less than this share of the access token's life is
    /// left (0.0–0.9).
    #[serde(default = "default_refresh_at")]
    pub refresh_when_left: f64,
}

/// Tokens travel only over HTTPS, or plain HTTP to a loopback address.
pub fn check_transport(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url)
        .map_err(|e| format!("worker.control_plane {url:?} is not a URL ({e})"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "worker.control_plane {url} would carry the sign-in's tokens in clear: use https (plain http only to a loopback address)"
        )),
    }
}

impl AuthSection {
    /// The confidential client's secret, when one is configured.
    pub fn client_secret(&self) -> Result<Option<String>, String> {
        self.client_secret
            .as_ref()
            .map(|s| {
                s.resolve("[auth] client_secret")
                    .map(|v| v.expose().to_string())
            })
            .transpose()
    }
}

fn default_client() -> String {
    "runner".into()
}

fn default_refresh_at() -> f64 {
    0.25
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            client_id: default_client(),
            client_secret: None,
            key: None,
            token_file: None,
            refresh_when_left: default_refresh_at(),
        }
    }
}
