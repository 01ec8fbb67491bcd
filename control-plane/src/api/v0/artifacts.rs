//! The Cloud Agents API's artifacts (`/v0/agents/{id}/artifacts…`): the
//! files the agent's session delivered from `/data`, listed in that API's
//! shape, and a download as a one-time URL that expires after 15 minutes
//! (a random token, stored as its hash; the URL itself carries no other
//! credential, so it works once and for a short time only).

use super::{blocking, V0Result};
use crate::auth::KeyCaller;
use crate::error::{V0Error, V0ErrorBody};
use crate::store::rfc3339;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::Shared;

/// One artifact, as the Cloud Agents API lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V0Artifact {
    /// Its path in the sandbox (`/data/report.md`).
    absolute_path: String,
    /// Its size in bytes.
    size_bytes: u64,
    /// When it was last delivered (RFC 3339).
    updated_at: String,
}

/// The answer of `GET /v0/agents/{id}/artifacts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct V0Artifacts {
    /// At most 100, by path.
    artifacts: Vec<V0Artifact>,
}

/// The answer of `GET /v0/agents/{id}/artifacts/download`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct V0Download {
    /// Fetch this once, without credentials, within 15 minutes.
    url: String,
    /// When the URL stops working (RFC 3339).
    expires_at: String,
}

/// Query of the download route.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadQuery {
    /// The artifact's `absolutePath`.
    path: String,
}

/// The files the agent delivered.
#[utoipa::path(get, path = "/v0/agents/{id}/artifacts", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), responses((status = 200, description = "Its artifacts, by path (at most 100).", body = V0Artifacts), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`: no such agent, a deleted one, or another user's.", body = V0ErrorBody)))]
pub(crate) async fn list_artifacts(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
) -> V0Result<V0Artifacts> {
    let list = blocking(s, move |s| {
        let (_, session) = s.agent(&key.user, &id)?;
        s.artifacts(&session.id)
    })
    .await?;
    Ok(Json(V0Artifacts {
        artifacts: list
            .into_iter()
            .map(|a| V0Artifact {
                absolute_path: a.path,
                size_bytes: a.size_bytes,
                updated_at: a.created_at,
            })
            .collect(),
    }))
}

/// A one-time download URL for one of the agent's artifacts.
#[utoipa::path(get, path = "/v0/agents/{id}/artifacts/download", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`)."), ("path" = String, Query, description = "The artifact's `absolutePath`.")), responses((status = 200, description = "A URL that serves the file once, without credentials, for 15 minutes.", body = V0Download), (status = 400, description = "`invalid_request`: no path.", body = V0ErrorBody), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`: no such agent or artifact.", body = V0ErrorBody)))]
pub(crate) async fn download_link(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
    q: Result<Query<DownloadQuery>, axum::extract::rejection::QueryRejection>,
) -> V0Result<V0Download> {
    let Query(q) = q.map_err(|e| V0Error(crate::error::ApiError::invalid(e.body_text())))?;
    let base = s.public_url().trim_end_matches('/').to_string();
    let (token, expires) = blocking(s, move |s| {
        let (_, session) = s.agent(&key.user, &id)?;
        s.artifact_link(&session.id, &q.path)
    })
    .await?;
    Ok(Json(V0Download {
        url: format!("{base}/v0/artifact-downloads/{token}"),
        expires_at: rfc3339(expires),
    }))
}

/// The file a one-time URL names, once (no credentials: the token is the
/// credential).
#[utoipa::path(get, path = "/v0/artifact-downloads/{token}", tag = "cloud-agents", params(("token" = String, Path, description = "From `GET /v0/agents/{id}/artifacts/download`.")), responses((status = 200, description = "The file, as an attachment (`nosniff`, never HTML).", content((Vec<u8> = "application/octet-stream"), (String = "text/plain"))), (status = 404, description = "`not_found`: an unknown, used or expired URL.", body = V0ErrorBody)))]
pub(crate) async fn redeem(
    State(s): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, V0Error> {
    let a = blocking(s, move |s| s.redeem_artifact_link(&token)).await?;
    Ok(crate::api::artifacts::download(a))
}
