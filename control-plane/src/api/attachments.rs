//! `GET /v1/sessions/{session}/attachments/{image}`: the bytes of an image
//! attached to a session's work or a follow-up. Everything else names the
//! image by reference ([`protocol::image::ImageRef`]); this is the one
//! place its bytes leave the control plane — to the worker building a
//! model request under its claim, or to a person reading the session.

use super::openapi::CallerErrors;
use super::{blocking, Shared};
use crate::auth::Caller;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::Json;
use protocol::platform::ErrorBody;
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// Query of `GET /v1/sessions/{session}/attachments/{image}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachmentQuery {
    /// The worker's claim: the read is refused (409 `claim_invalid`)
    /// unless it holds the session.
    #[serde(rename = "claimId")]
    claim_id: Option<String>,
}

/// An image attached to the session's work or a follow-up: its bytes,
/// with its media type. The worker reads it under its claim while it
/// builds a model request; people read it like the rest of the session.
#[utoipa::path(get, path = "/v1/sessions/{session}/attachments/{image}", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("image" = String, Path, description = "The image's id (`img_…`, from `source.images` or a follow-up)."), ("claimId" = Option<String>, Query, description = "The worker's claim on the session; when given, it must hold the session.")), responses((status = 200, description = "The image's bytes, with its media type.", content((String = "image/png"), (String = "image/jpeg"), (String = "image/gif"), (String = "image/webp"))), (status = 400, description = "`invalid_request`: a malformed query.", body = ErrorBody), (status = 404, description = "`not_found`: the session has no such image (an image of another session included).", body = ErrorBody), (status = 409, description = "`claim_invalid`: claimId does not hold the session; stop working on it.", body = ErrorBody), CallerErrors))]
pub(crate) async fn attachment(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((id, image)): Path<(String, String)>,
    q: Result<Query<AttachmentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let user = super::caller_user(&who);
    let Json(a) = blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), q.claim_id.as_deref())?;
        st.attachment(&id, &image, q.claim_id.as_deref())
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, a.media_type),
            // The type is the sniffed one; nothing is to guess another.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
        ],
        a.data,
    )
        .into_response())
}
