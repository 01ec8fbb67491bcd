//! A signed-in user's own API keys: create (the key is in that answer
//! only), list (no secrets), revoke. Only a user access token may call
//! these; a key cannot mint or revoke keys.

use super::openapi::BodyErrors;
use super::{blocking, ApiResult, Body, Shared};
use crate::auth::{ApiKeyInfo, IssuedApiKey, UserCaller};
use axum::extract::{Path, State};
use protocol::platform::ErrorBody;

#[cfg(test)]
mod tests;

/// The body of `POST /v1/api-keys`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApiKey {
    /// A name to tell the key by (1–100 characters); `/v0/me` answers it
    /// as `apiKeyName`.
    name: String,
    /// An agent of your team (`agent_…`) to bind the key to: runs started
    /// with it run as that agent, and it can manage nothing.
    #[serde(default)]
    agent_id: Option<String>,
}

/// Create an API key for yourself. The key is in this answer only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("user_token" = ["agent"])), request_body = NewApiKey, responses((status = 200, description = "The new key; `key` is shown in this answer only (only its hash is kept).", body = IssuedApiKey), (status = 401, description = "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.", body = ErrorBody), (status = 403, description = "`oauth_required`: an API key; keys are managed by a signed-in user.", body = ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = ErrorBody), BodyErrors))]
pub(crate) async fn create_api_key(
    State(s): State<Shared>,
    UserCaller(user): UserCaller,
    Body(n): Body<NewApiKey>,
) -> ApiResult<IssuedApiKey> {
    blocking(s, move |st| match &n.agent_id {
        Some(agent) => st.add_agent_api_key(&n.name, &user, agent),
        None => st.add_api_key(&n.name, Some(&user)),
    })
    .await
}

/// Your API keys, newest first (no secrets; revoked ones with when).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("user_token" = ["agent"])), responses((status = 200, description = "Your keys, newest first, without secrets.", body = Vec<ApiKeyInfo>), (status = 401, description = "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.", body = ErrorBody), (status = 403, description = "`oauth_required`: an API key; keys are managed by a signed-in user.", body = ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = ErrorBody)))]
pub(crate) async fn list_api_keys(
    State(s): State<Shared>,
    UserCaller(user): UserCaller,
) -> ApiResult<Vec<ApiKeyInfo>> {
    blocking(s, move |st| st.api_keys(&user)).await
}

/// Revoke one of your API keys (again: no change). It stops working at
/// once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("user_token" = ["agent"])), params(("id" = String, Path, description = "The key id (`key_…`).")), responses((status = 200, description = "The revoked key (with `revoked_at`).", body = ApiKeyInfo), (status = 401, description = "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.", body = ErrorBody), (status = 403, description = "`oauth_required`: an API key; keys are managed by a signed-in user.", body = ErrorBody), (status = 404, description = "`not_found`: you have no key with this id (another user's key is not yours to see).", body = ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = ErrorBody)))]
pub(crate) async fn revoke_api_key(
    State(s): State<Shared>,
    UserCaller(user): UserCaller,
    Path(id): Path<String>,
) -> ApiResult<ApiKeyInfo> {
    blocking(s, move |st| st.revoke_api_key(&user, &id)).await
}
