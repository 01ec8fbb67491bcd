//! The repositories workers can work on: a worker reports its list
//! (`PUT /v1/workers/{worker}/repositories`, its owner's user token), and
//! the Cloud Agents API answers the union (`GET /v0/repositories`, a
//! user's API key, 1 call a minute and 30 an hour per user — the limits
//! the API documents, kept so that clients written against it behave).

use super::openapi::BodyErrors;
use super::{Body, Shared};
use crate::auth::{AgentCaller, KeyCaller};
use crate::error::{ApiError, V0Error, V0ErrorBody};
use crate::store::{Admission, Reported};
use axum::extract::{Path, State};
use axum::http::{header::RETRY_AFTER, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::platform::ErrorBody;
use protocol::repo_list::RepositoryList;

#[cfg(test)]
mod tests;

/// The answer to a worker's report.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RepositoriesAck {
    /// How many repositories the worker's list now holds (duplicates
    /// counted once).
    stored: usize,
}

/// Report the repositories this worker can work on; replaces its last
/// report. Only the user who registered the worker may.
#[utoipa::path(put, path = "/v1/workers/{worker}/repositories", tag = "workers", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`).")), request_body = RepositoryList, responses((status = 200, description = "Stored: the worker's list is now this report.", body = RepositoriesAck), (status = 401, description = "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.", body = ErrorBody), (status = 403, description = "`oauth_required`: an API key; `worker_not_owned`: another user registered this worker (or nobody did since workers have owners: register it again).", body = ErrorBody), (status = 404, description = "`unknown_worker`: no such worker; register again.", body = ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = ErrorBody), BodyErrors))]
pub(crate) async fn report_repositories(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path(worker): Path<String>,
    Body(list): Body<RepositoryList>,
) -> Result<Json<RepositoriesAck>, ApiError> {
    let id = worker.clone();
    let reported = tokio::task::spawn_blocking(move || s.report_repositories(&id, &user, list))
        .await
        .map_err(ApiError::internal)??;
    match reported {
        Reported::Stored(stored) => Ok(Json(RepositoriesAck { stored })),
        Reported::NotOwner { owned: true } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "worker_not_owned",
            format!("worker {worker} was registered by another user; a worker reports only its own repositories, signed in as the user who registered it"),
        )),
        Reported::NotOwner { owned: false } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "worker_not_owned",
            format!("worker {worker} has no owner (it was registered before workers had owners); register it again (POST /v1/workers with its registration) signed in as its user, then report"),
        )),
    }
}

/// Repositories the workers can work on, from the forges and lists in
/// their configs: one entry per URL, sorted by it. At most 1 call a
/// minute and 30 an hour per user.
#[utoipa::path(get, path = "/v0/repositories", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), responses((status = 200, description = "Every repository some worker reported, once each, sorted by URL; `repository` is what `source.repository` of a launch takes.", body = RepositoryList), (status = 401, description = "`unauthorized`: no credentials, a malformed Authorization header, or a key that is unknown or revoked.", body = V0ErrorBody), (status = 403, description = "`key_without_user`: the key belongs to no user; `api_key_required`: a user access token, not a key.", body = V0ErrorBody), (status = 429, description = "`rate_limited`: this user called within the last minute, or 30 times within the last hour; the refused call is not counted.", body = V0ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds until a call will be answered (at least 1)."))), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = V0ErrorBody)))]
pub(crate) async fn list_repositories(
    State(s): State<Shared>,
    key: KeyCaller,
) -> Result<Json<RepositoryList>, Response> {
    let user = key.user;
    let admitted = tokio::task::spawn_blocking(move || s.list_repositories(&user))
        .await
        .map_err(|e| V0Error::from(ApiError::internal(e)).into_response())?
        .map_err(|e| V0Error::from(e).into_response())?;
    match admitted {
        Admission::Allowed(list) => Ok(Json(list)),
        Admission::Limited {
            retry_after_seconds,
        } => Err((
            [(RETRY_AFTER, retry_after_seconds.to_string())],
            V0Error(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("GET /v0/repositories answers each user at most once a minute and 30 times an hour; try again in {retry_after_seconds} seconds (Retry-After)"),
            )),
        )
            .into_response()),
    }
}
