//! Who is calling: OAuth 2.0 user access tokens and API keys.
//!
//! The control plane is its own authorization server ([`oauth`]):
//! registered clients (confidential with a secret, or public), the
//! authorization-code grant with PKCE (S256 required for public clients), a
//! consent page, short-lived access tokens, rotating refresh tokens whose
//! reuse revokes the whole login, and revocation (RFC 7009).
//!
//! Agent execution — worker registration, claims, leases, activities,
//! conversation, inputs, finishing — needs a **user access token**
//! ([`AgentCaller`]); an API key there is refused with 403. The other
//! routes (queueing, reading, answering, cancelling) take either
//! ([`Caller`]). Every secret is random (32 bytes from the OS), kept only as
//! a SHA-256 hash (passwords: Argon2id), and compared by hash lookup.

mod accounts;
mod error;
pub(crate) mod oauth;
mod page;
mod tokens;

pub(crate) use crate::store::auth::OOB_REDIRECT;
pub use crate::store::auth::{AuthSettings, RUNNER_CLIENT};
pub use tokens::IssuedTokens;

use crate::error::ApiError;
use crate::store::Store;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;
use sha2::Digest;
use std::sync::Arc;

/// Prefix of access tokens.
pub(crate) const ACCESS_PREFIX: &str = "cpat_";
/// Prefix of refresh tokens.
pub(crate) const REFRESH_PREFIX: &str = "cprt_";
/// Prefix of API keys.
pub(crate) const API_KEY_PREFIX: &str = "cpk_";
/// Prefix of authorization codes.
pub(crate) const CODE_PREFIX: &str = "cpac_";
/// Prefix of client secrets.
pub(crate) const CLIENT_SECRET_PREFIX: &str = "cpcs_";
/// Who a valid credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A person, through an OAuth client.
    User {
        /// User name.
        user: String,
        /// The client the token was issued to.
        client_id: String,
    },
    /// An API key (automation that queues and reads sessions).
    ApiKey {
        /// The key's name.
        name: String,
    },
}

/// A fresh random secret with a prefix: 32 bytes from the OS, base64url.
pub(crate) fn random_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// How a secret is stored: hex SHA-256. The secrets are 256-bit random,
/// so a fast hash is enough (no dictionary to guess from).
pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthorized(
            "no credentials: send Authorization: Bearer <token> (a user access token from `runner login`, or an API key)",
        ));
    };
    let h = h
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    let Some(t) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    Ok(t.trim().to_string())
}

async fn principal(parts: &Parts, store: &Arc<Store>) -> Result<Principal, ApiError> {
    let token = bearer(parts)?;
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.authenticate(&token))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| {
            unauthorized(
                "the token is not valid (unknown, expired or revoked); refresh it, or sign in again with `runner login`",
            )
        })
}

/// Any valid caller: a user access token or an API key.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Arc<Store>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, ApiError> {
        principal(parts, store).await.map(Caller)
    }
}

/// A caller allowed to execute agents: a user access token only.
#[derive(Debug, Clone)]
pub(crate) struct AgentCaller;

impl FromRequestParts<Arc<Store>> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, ApiError> {
        match principal(parts, store).await? {
            Principal::User { .. } => Ok(AgentCaller),
            Principal::ApiKey { name } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "oauth_required",
                format!(
                    "API key {name:?} refused: agent execution (workers, claims, leases, activities, finishing) needs an OAuth user access token; sign the worker in with `runner login`"
                ),
            )),
        }
    }
}
