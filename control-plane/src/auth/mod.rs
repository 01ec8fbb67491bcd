//! Who is calling: OAuth 2.0 user access tokens and API keys.
//!
//! The control plane is its own authorization server ([`oauth`]):
//! registered clients (confidential with a secret, or public), the
//! authorization-code grant with PKCE (S256 required for public clients), a
//! consent page, the device authorization grant for hosts without a
//! browser ([`device`], RFC 8628), short-lived access tokens, rotating
//! refresh tokens whose reuse revokes the whole login, and revocation
//! (RFC 7009).
//!
//! Agent execution — worker registration, claims, leases, activities,
//! conversation, inputs, finishing — needs a **user access token**
//! ([`AgentCaller`]); an API key there is refused with 403. The other
//! routes (queueing, reading, answering, cancelling) take either
//! ([`Caller`]). Managing one's own API keys takes a user token
//! ([`UserCaller`]); the Cloud Agents API's `/v0/me` takes an API key that
//! belongs to a user ([`KeyCaller`]). Every secret is random (32 bytes from
//! the OS), kept only as a SHA-256 hash (passwords: Argon2id), and compared
//! by hash lookup.
//!
//! A credential arrives as `Authorization: Bearer <token>` (an access
//! token or an API key) or — what Cursor's clients send — as HTTP Basic
//! with the API key as the user name and an empty password
//! (`curl -u KEY:`). Nothing here logs the header or the credential.

mod accounts;
mod device;
pub(crate) mod device_flow;
mod error;
mod keys;
pub(crate) mod lockout;
pub(crate) mod oauth;
mod page;
mod tokens;

pub use crate::store::auth::{AuthSettings, RUNNER_CLIENT};
pub(crate) use error::OAuthError;
pub use keys::{ApiKeyInfo, IssuedApiKey};
pub use tokens::IssuedTokens;

use crate::error::{ApiError, V0Error};
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
/// Prefix of device codes (RFC 8628).
pub(crate) const DEVICE_CODE_PREFIX: &str = "cpdc_";
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
        /// The key's id (`key_…`).
        id: String,
        /// The key's name.
        name: String,
        /// Its owner; `None` for a key that belongs to nobody (it works
        /// on `/v1`, not on the Cloud Agents API). For an agent's key:
        /// the person who made it.
        user: Option<String>,
        /// The agent the key is bound to: it calls the team APIs as that
        /// agent, and nothing else.
        agent: Option<String>,
    },
}

/// The 403 of an agent's key on a route that is not for agents.
fn agent_key_refused(name: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_authorized",
        format!(
            "API key {name:?} is an agent's key: {what}. An agent's key starts, reads and cancels its team's runs (/api/v1/agent/runs); only a person may manage agents, users or keys"
        ),
    )
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

/// The credential of a request: `Bearer <token>` (any case of the
/// scheme), or `Basic base64(<API key>:)` — HTTP Basic with the key as the
/// user name and an empty password, as Cursor's Cloud Agents clients send
/// it. Each malformed form gets a 401 naming what is wrong.
pub(crate) fn credential(parts: &Parts) -> Result<String, ApiError> {
    let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthorized(
            "no credentials: send Authorization: Bearer <token> (a user access token from `runner login`, or an API key), or an API key by HTTP Basic as the user name with an empty password (curl -u KEY:)",
        ));
    };
    let h = h
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(unauthorized(
                "the Authorization header has no token after `Bearer`",
            ));
        }
        return Ok(rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <token>` or `Basic base64(<API key>:)`",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            unauthorized("the Basic credentials are not base64 of UTF-8 text `<API key>:`")
        })?;
    let Some((user, password)) = decoded.split_once(':') else {
        return Err(unauthorized(
            "the Basic credentials have no `:`; send the API key as the user name and an empty password (`<API key>:`, curl -u KEY:)",
        ));
    };
    if !user.starts_with(API_KEY_PREFIX) {
        return Err(unauthorized(
            "HTTP Basic takes an API key (cpk_…) as the user name; a user access token goes in `Authorization: Bearer <token>`",
        ));
    }
    if !password.is_empty() {
        return Err(unauthorized(
            "HTTP Basic takes the API key as the user name and an empty password; leave the password empty (curl -u KEY:)",
        ));
    }
    Ok(user.to_string())
}

async fn principal(parts: &Parts, store: &Arc<Store>) -> Result<Principal, ApiError> {
    let token = credential(parts)?;
    let is_key = token.starts_with(API_KEY_PREFIX);
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.authenticate(&token))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| {
            unauthorized(if is_key {
                "the API key is not valid (unknown or revoked); create a new one with POST /v1/api-keys (signed in) or `control-plane admin api-key-add NAME --user USER`"
            } else {
                "the token is not valid (unknown, expired or revoked); refresh it, or sign in again with `runner login`"
            })
        })
}

/// Any valid caller: a user access token or an API key.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Arc<Store>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, ApiError> {
        match principal(parts, store).await? {
            Principal::ApiKey {
                name,
                agent: Some(_),
                ..
            } => Err(agent_key_refused(&name, "this route is not open to it")),
            p => Ok(Caller(p)),
        }
    }
}

/// A caller allowed to execute agents: a user access token only, with
/// the user's name (a worker belongs to the user who registered it).
#[derive(Debug, Clone)]
pub(crate) struct AgentCaller(pub(crate) String);

impl FromRequestParts<Arc<Store>> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, ApiError> {
        match principal(parts, store).await? {
            Principal::User { user, .. } => Ok(AgentCaller(user)),
            Principal::ApiKey { name, .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "oauth_required",
                format!(
                    "API key {name:?} refused: agent execution (workers, claims, leases, activities, finishing) needs an OAuth user access token; sign the worker in with `runner login`"
                ),
            )),
        }
    }
}

/// A signed-in user (an OAuth user access token), for what only a person
/// may do: create, list and revoke their own API keys. A key cannot mint
/// keys (a leaked key would otherwise outlive its revocation).
#[derive(Debug, Clone)]
pub(crate) struct UserCaller(pub(crate) String);

impl FromRequestParts<Arc<Store>> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, ApiError> {
        match principal(parts, store).await? {
            Principal::User { user, .. } => Ok(UserCaller(user)),
            Principal::ApiKey { name, .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "oauth_required",
                format!(
                    "API key {name:?} refused: API keys are managed by a signed-in user (an OAuth user access token), not by another key"
                ),
            )),
        }
    }
}

/// An API key that belongs to a user: the Cloud Agents API's caller
/// (`/v0/me` answers about this key).
#[derive(Debug, Clone)]
pub(crate) struct KeyCaller {
    /// The key's id (`key_…`).
    pub(crate) id: String,
    /// The user it belongs to: whose agents the call sees, and whom per-user
    /// limits count.
    pub(crate) user: String,
}

impl FromRequestParts<Arc<Store>> for KeyCaller {
    type Rejection = V0Error;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, V0Error> {
        match principal(parts, store).await? {
            Principal::ApiKey {
                name,
                agent: Some(_),
                ..
            } => Err(V0Error(agent_key_refused(&name, "the Cloud Agents API is not open to it"))),
            Principal::ApiKey {
                id,
                user: Some(user),
                ..
            } => Ok(KeyCaller { id, user }),
            Principal::ApiKey { name, user: None, .. } => Err(V0Error(ApiError::new(
                StatusCode::FORBIDDEN,
                "key_without_user",
                format!(
                    "API key {name:?} belongs to no user; the Cloud Agents API needs a user's key: `control-plane admin api-key-add NAME --user USER`, or POST /v1/api-keys signed in"
                ),
            ))),
            Principal::User { .. } => Err(V0Error(ApiError::new(
                StatusCode::FORBIDDEN,
                "api_key_required",
                "this route answers about the API key it is called with; call it with an API key (curl -u KEY:), not a user access token",
            ))),
        }
    }
}

/// A person calling as a member of a team: with a user access token, or
/// with an API key that belongs to a user. What the team-scoped APIs
/// (agents, identities, runs, schedules) are called with.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The team: every read and change of the call is confined to it.
    pub(crate) team: String,
    /// The person (for an agent's key: the person who made the key, whose
    /// workers and limits its runs use).
    pub(crate) user: String,
    /// The agent, when the call is made with an agent's key.
    pub(crate) agent: Option<String>,
}

impl Member {
    /// Who made a change, as versions and sessions record it
    /// (`agent:agent_…` or `user:NAME`).
    pub(crate) fn actor(&self) -> String {
        match &self.agent {
            Some(a) => format!("agent:{a}"),
            None => format!("user:{}", self.user),
        }
    }

    /// The call is a person's, or a 403: an agent's key never manages
    /// agents, users or keys.
    pub(crate) fn person(&self) -> Result<&str, ApiError> {
        match &self.agent {
            None => Ok(&self.user),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_authorized",
                "this call was made with an agent's key, and only a person may manage agents, users or keys; use a person's key or sign-in",
            )),
        }
    }
}

/// The [`Member`] a request is made by: 401 without a valid credential,
/// 403 for a key that belongs to no user (it has no team).
pub(crate) async fn member(parts: &Parts, store: &Arc<Store>) -> Result<Member, ApiError> {
    let (user, agent) = match principal(parts, store).await? {
        Principal::User { user, .. } => (user, None),
        Principal::ApiKey {
            user: Some(user),
            agent,
            ..
        } => (user, agent),
        Principal::ApiKey { name, user: None, .. } => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "key_without_user",
                format!(
                    "API key {name:?} belongs to no user, so to no team; use a user's key: `control-plane admin api-key-add NAME --user USER`, or POST /v1/api-keys signed in"
                ),
            ))
        }
    };
    let s = store.clone();
    let (u, a) = (user.clone(), agent.clone());
    // An agent's key works in its agent's team; a person's in theirs.
    let team = tokio::task::spawn_blocking(move || match a {
        // ...and only while its maker is still of that team.
        Some(a) => Ok(s
            .team_of_agent(&a)?
            .filter(|t| s.team_of(&u).ok().flatten().as_deref() == Some(t.as_str()))),
        None => s.team_of(&u),
    })
    .await
    .map_err(ApiError::internal)??
    .ok_or_else(|| {
        unauthorized("the credential's user or agent no longer exists; use another key, or sign in")
    })?;
    Ok(Member { team, user, agent })
}
