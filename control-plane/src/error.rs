//! API errors: an HTTP status plus the JSON body `{"error": {"type",
//! "message"}}` every 4xx and 5xx carries. The one place a store error
//! becomes a status and a `type`.

use crate::store::{ConflictKind, Missing, StoreError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::platform::{ErrorBody, ErrorDetail};

/// An error an API call returns.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// Machine-readable type.
    pub(crate) kind: &'static str,
    /// For a person.
    pub(crate) message: String,
    /// Seconds for `Retry-After` (a 429).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// 400.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// 404.
    pub(crate) fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }
    /// 409.
    pub(crate) fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }
    /// 500 (the message is logged, not leaked in detail).
    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {message}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the control plane failed; retry, and check its log if it persists",
        )
    }
    /// Any status.
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::NotFound { what, message } => ApiError::not_found(
                match what {
                    Missing::Worker => "unknown_worker",
                    Missing::User => "unknown_user",
                    Missing::Team => "unknown_team",
                    Missing::Session
                    | Missing::Agent
                    | Missing::Input
                    | Missing::Attachment
                    | Missing::Subscription
                    | Missing::ApiKey
                    | Missing::Schedule
                    | Missing::Artifact
                    | Missing::Skill
                    | Missing::AgentConfig => "not_found",
                },
                message,
            ),
            StoreError::Conflict { kind, message } => ApiError::conflict(
                match kind {
                    ConflictKind::Claimed => "claim_conflict",
                    ConflictKind::Transition => "invalid_transition",
                    ConflictKind::Conversation => "conversation_conflict",
                    ConflictKind::StaleQuestion => "stale_question",
                    ConflictKind::Exists => "exists",
                    ConflictKind::Version => "version_conflict",
                },
                message,
            ),
            StoreError::ClaimInvalid { message, .. } => {
                ApiError::conflict("claim_invalid", message)
            }
            StoreError::RateLimited {
                message,
                retry_after_seconds,
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            StoreError::Forbidden { kind, message } => {
                ApiError::new(StatusCode::FORBIDDEN, kind, message)
            }
            StoreError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
            }
            StoreError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the database is busy; retry shortly",
            ),
            e @ (StoreError::Open { .. } | StoreError::Storage(_) | StoreError::Corrupt(_)) => {
                ApiError::internal(e)
            }
        }
    }
}

/// `Retry-After` of an error that has one.
fn retry_after(r: &mut Response, seconds: Option<u64>) {
    if let Some(n) = seconds {
        if let Ok(v) = axum::http::HeaderValue::from_str(&n.to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let seconds = self.retry_after;
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                message: self.message,
            },
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        retry_after(&mut r, seconds);
        r
    }
}

/// An error of the Cloud Agents API (`/v0`): the same [`ApiError`],
/// answered with a top-level `message` — what Cursor's client reads
/// (`body["message"]`) and puts in its exception — beside the error object
/// of our own API and of Cursor's newer shape.
#[derive(Debug, Clone)]
pub(crate) struct V0Error(pub(crate) ApiError);

impl From<ApiError> for V0Error {
    fn from(e: ApiError) -> Self {
        V0Error(e)
    }
}

impl From<StoreError> for V0Error {
    fn from(e: StoreError) -> Self {
        V0Error(ApiError::from(e))
    }
}

/// The body of every `/v0` error: `{"message", "error": {"type", "code",
/// "message"}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct V0ErrorBody {
    /// For a person, saying what to do.
    message: String,
    /// The same, for clients that read an error object.
    error: V0ErrorDetail,
}

/// The error object of a [`V0ErrorBody`].
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct V0ErrorDetail {
    /// Machine-readable: `unauthorized`, `key_without_user`,
    /// `api_key_required`, `busy`, `internal`.
    #[serde(rename = "type")]
    kind: String,
    /// The same as `type` (Cursor's newer clients read `code`).
    code: String,
    /// The same as the top-level `message`.
    message: String,
}

impl IntoResponse for V0Error {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = V0ErrorBody {
            message: e.message.clone(),
            error: V0ErrorDetail {
                kind: e.kind.to_string(),
                code: e.kind.to_string(),
                message: e.message,
            },
        };
        let mut r = (e.status, axum::Json(body)).into_response();
        retry_after(&mut r, e.retry_after);
        r
    }
}

/// An error of the agent-configuration API (`/api/v1/cloud/…`, after
/// Qoder's): the same [`ApiError`], answered in that API's envelope
/// `{"type": "error", "error": {"type", "message"}}`, its `type` named
/// from the status, and `x-should-retry: false` on every 4xx but 408 and
/// 429 (the vendor's client would otherwise retry what cannot succeed).
#[derive(Debug, Clone)]
pub(crate) struct QoderError(pub(crate) ApiError);

impl From<ApiError> for QoderError {
    fn from(e: ApiError) -> Self {
        QoderError(e)
    }
}

impl From<StoreError> for QoderError {
    fn from(e: StoreError) -> Self {
        QoderError(ApiError::from(e))
    }
}

/// The agent-configuration API's name of an error status.
fn qoder_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 | 405 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

impl IntoResponse for QoderError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = serde_json::json!({
            "type": "error",
            "error": {"type": qoder_type(e.status), "message": e.message},
        });
        let mut r = (e.status, axum::Json(body)).into_response();
        retry_after(&mut r, e.retry_after);
        if e.status.is_client_error() && !matches!(e.status.as_u16(), 408 | 429) {
            r.headers_mut().insert(
                "x-should-retry",
                axum::http::HeaderValue::from_static("false"),
            );
        }
        r
    }
}

/// An error of the identities API (`/api/v1/agent/…`, after Warp's Oz
/// API): the same [`ApiError`], answered as RFC 7807 problem details
/// (`application/problem+json`) with the vendor's error code, and
/// `x-should-retry: false` on everything a retry cannot fix — the vendor's
/// client retries 409 and 5xx otherwise, POST included.
#[derive(Debug, Clone)]
pub(crate) struct OzError(pub(crate) ApiError);

impl From<ApiError> for OzError {
    fn from(e: ApiError) -> Self {
        OzError(e)
    }
}

impl From<StoreError> for OzError {
    fn from(e: StoreError) -> Self {
        OzError(ApiError::from(e))
    }
}

/// The vendor's error code of an error, and its title.
fn oz_code(e: &ApiError) -> (&'static str, &'static str) {
    match (e.status.as_u16(), e.kind) {
        (403, "feature_not_available") => (
            "feature_not_available",
            "This feature is not available on your plan.",
        ),
        (403, _) => (
            "not_authorized",
            "You are not authorized to perform this action.",
        ),
        (400 | 413 | 415 | 422, _) => (
            "invalid_request",
            "The request contains invalid or missing parameters.",
        ),
        (401, _) => ("authentication_required", "Authentication is required."),
        (404 | 405, _) => (
            "resource_not_found",
            "The requested resource was not found.",
        ),
        (409, _) => (
            "conflict",
            "The request conflicts with the current state of the resource.",
        ),
        (429, _) => ("rate_limited", "Too many requests."),
        (503, _) => (
            "resource_unavailable",
            "The service is temporarily unavailable.",
        ),
        _ => ("internal_error", "An internal error occurred."),
    }
}

impl IntoResponse for OzError {
    fn into_response(self) -> Response {
        let e = self.0;
        let (code, title) = oz_code(&e);
        let retryable = matches!(e.status.as_u16(), 429 | 503);
        let body = serde_json::json!({
            "type": format!("/reference/api-and-sdk/troubleshooting/errors/{}/", code.replace('_', "-")),
            "title": title,
            "status": e.status.as_u16(),
            "detail": e.message,
            "error": format!("{title} ({})", e.message),
            "error_code": code,
            "retryable": retryable,
        });
        let mut r = (e.status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        retry_after(&mut r, e.retry_after);
        if !retryable {
            r.headers_mut().insert(
                "x-should-retry",
                axum::http::HeaderValue::from_static("false"),
            );
        }
        r
    }
}
