//! What a session's worker hands over and fetches beyond its events:
//! the artifacts it delivers from `/data` (`PUT
//! /v1/sessions/{session}/artifacts`, under its claim), their listing and
//! bytes for whoever may read the session, and the files of the skills
//! the session pinned (`GET /v1/sessions/{session}/skills/{id}/{version}`,
//! under the claim). A download is always an attachment with `nosniff`
//! and a sandboxing CSP: the bytes are the agent's, and never become a
//! page of the control plane's origin.

use super::openapi::CallerErrors;
use super::{blocking, read_limited, Shared};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::artifacts::ArtifactContent;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::platform::ErrorBody;
use protocol::toolset::{ArtifactInfo, SkillBundle, ARTIFACT_MAX_FILE_BYTES};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Query of the worker's `PUT …/artifacts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutQuery {
    /// The worker's claim; it must hold the session.
    #[serde(rename = "claimId")]
    claim_id: String,
    /// The artifact's path in the sandbox, `/data/…`.
    path: String,
}

/// Query naming one artifact by its path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathQuery {
    /// The artifact's path, `/data/…`.
    path: String,
}

/// Query of the worker's skill fetch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimQuery {
    /// The worker's claim; it must hold the session.
    #[serde(rename = "claimId")]
    claim_id: String,
}

/// The artifacts of a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ArtifactList {
    /// By path; at most 100.
    pub(crate) artifacts: Vec<ArtifactInfo>,
}

fn query<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

/// Deliver a file from the session's `/data` as an artifact (the
/// worker, under its claim). A path delivered before is replaced. The
/// server computes the digest and media type itself.
#[utoipa::path(put, path = "/v1/sessions/{session}/artifacts", tag = "claims", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("claimId" = String, Query, description = "The worker's claim on the session."), ("path" = String, Query, description = "The file's path in the sandbox: `/data/` and a relative path.")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes (at most 25 MiB)."), responses((status = 200, description = "The artifact as stored.", body = ArtifactInfo), (status = 400, description = "`invalid_request`: a malformed query or a path outside /data.", body = ErrorBody), (status = 404, description = "`not_found`: no such session.", body = ErrorBody), (status = 409, description = "`claim_invalid`: claimId does not hold the session; stop working on it.", body = ErrorBody), (status = 413, description = "`payload_too_large`: over 25 MiB, or the session's 100 artifacts or 100 MiB; the message names the limit.", body = ErrorBody), CallerErrors))]
pub(crate) async fn put_artifact(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    q: Result<Query<PutQuery>, axum::extract::rejection::QueryRejection>,
    req: axum::extract::Request,
) -> Result<Json<ArtifactInfo>, ApiError> {
    let q = query(q)?;
    crate::store::artifacts::check_path(&q.path).map_err(ApiError::from)?;
    let Some(data) = read_limited(req.into_body(), ARTIFACT_MAX_FILE_BYTES as usize).await? else {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("an artifact has at most {ARTIFACT_MAX_FILE_BYTES} bytes"),
        ));
    };
    let user = super::caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), Some(&q.claim_id))?;
        st.put_artifact(&id, &q.claim_id, &q.path, data)
    })
    .await
}

/// The artifacts a session delivered, by path.
#[utoipa::path(get, path = "/v1/sessions/{session}/artifacts", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`).")), responses((status = 200, description = "Its artifacts (path, size, sha256, media type, when stored).", body = ArtifactList), (status = 404, description = "`not_found`: no such session (another user's included).", body = ErrorBody), CallerErrors))]
pub(crate) async fn list_artifacts(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<ArtifactList>, ApiError> {
    let user = super::caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.artifacts(&id)
            .map(|artifacts| ArtifactList { artifacts })
    })
    .await
}

/// The bytes of one artifact, as a download.
#[utoipa::path(get, path = "/v1/sessions/{session}/artifacts/content", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("path" = String, Query, description = "The artifact's path, `/data/…`.")), responses((status = 200, description = "The bytes, as an attachment (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`): `text/plain; charset=utf-8` for UTF-8 text, else `application/octet-stream`; never HTML.", content((Vec<u8> = "application/octet-stream"), (String = "text/plain"))), (status = 400, description = "`invalid_request`: a malformed query.", body = ErrorBody), (status = 404, description = "`not_found`: no such session or artifact.", body = ErrorBody), CallerErrors))]
pub(crate) async fn artifact_content(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    q: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let user = super::caller_user(&who);
    let Json(a) = blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.artifact(&id, &q.path)
    })
    .await?;
    Ok(download(a))
}

/// The files of a skill the session pinned (the worker, under its claim):
/// the bundle whose digest the pin names.
#[utoipa::path(get, path = "/v1/sessions/{session}/skills/{skill_id}/{version}", tag = "claims", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("skill_id" = String, Path, description = "The pinned skill (`skill_…`)."), ("version" = String, Path, description = "The pinned version."), ("claimId" = String, Query, description = "The worker's claim on the session.")), responses((status = 200, description = "The skill's files, sorted by path, base64.", body = SkillBundle), (status = 400, description = "`invalid_request`: a malformed query.", body = ErrorBody), (status = 404, description = "`not_found`: no such session, or the session pins no such skill version.", body = ErrorBody), (status = 409, description = "`claim_invalid`: claimId does not hold the session; stop working on it.", body = ErrorBody), CallerErrors))]
pub(crate) async fn skill_bundle(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((id, skill, version)): Path<(String, String, String)>,
    q: Result<Query<ClaimQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SkillBundle>, ApiError> {
    let q = query(q)?;
    let user = super::caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), Some(&q.claim_id))?;
        st.skill_bundle(&id, &q.claim_id, &skill, &version)
    })
    .await
}

/// The `Content-Type` an artifact is served with: UTF-8 text as plain
/// text, everything else as bytes — never a type a browser would render
/// as a page or run.
pub(crate) fn served_type(a: &ArtifactContent) -> &'static str {
    let texty = matches!(
        a.info.media_type.as_str(),
        "text/plain" | "text/markdown" | "text/csv" | "application/json"
    );
    if texty && std::str::from_utf8(&a.data).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// `Content-Disposition: attachment` with the file's name (RFC 6266): an
/// ASCII `filename` with anything unsafe replaced, and the exact name in
/// `filename*` (RFC 5987 percent-encoding).
pub(crate) fn disposition(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("artifact");
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// An artifact's bytes as a download: attachment, `nosniff`, a sandboxing
/// CSP, not cached by shared caches.
pub(crate) fn download(a: ArtifactContent) -> Response {
    (
        [
            (header::CONTENT_TYPE, served_type(&a).to_string()),
            (header::CONTENT_DISPOSITION, disposition(&a.info.path)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        a.data,
    )
        .into_response()
}
