//! The Cloud Agents API (`/v0`, after `seeds/cloud-agents-api.md`):
//! called with a user's API key, by HTTP Basic (`curl -u KEY:`, what
//! Cursor's clients send) or Bearer; every error has a top-level `message`
//! ([`V0Error`]). So far: `GET /v0/me`.

use super::Shared;
use crate::auth::KeyCaller;
use crate::error::{ApiError, V0Error, V0ErrorBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// The answer of `GET /v0/me`, field for field as the seed has it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    /// The name of the key this call was made with.
    api_key_name: String,
    /// When that key was created (RFC 3339, UTC).
    created_at: String,
    /// Its owner's email; null while the owner has none
    /// (`control-plane admin user-set-email`).
    user_email: Option<String>,
}

/// The API key this call is made with.
#[utoipa::path(get, path = "/v0/me", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), responses((status = 200, description = "The key's name, when it was created, and its owner's email.", body = Me), (status = 401, description = "`unauthorized`: no credentials, a malformed Authorization header, or a key that is unknown or revoked.", body = V0ErrorBody), (status = 403, description = "`key_without_user`: the key belongs to no user; `api_key_required`: a user access token, not a key.", body = V0ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = V0ErrorBody)))]
pub(crate) async fn me(State(s): State<Shared>, key: KeyCaller) -> Result<Json<Me>, V0Error> {
    let owner = tokio::task::spawn_blocking(move || s.key_owner(&key.id))
        .await
        .map_err(ApiError::internal)??;
    // Revoked between the authentication and this read.
    let owner = owner.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key was revoked; create a new one",
        )
    })?;
    Ok(Json(Me {
        api_key_name: owner.name,
        created_at: owner.created_at,
        user_email: owner.email,
    }))
}
