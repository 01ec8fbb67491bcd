//! The error body of the token and revocation endpoints (RFC 6749 §5.2):
//! `{"error", "error_description"}`, never cached, with a Basic challenge
//! on 401.

use crate::error::ApiError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error of the token or revocation endpoint.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    /// 400 or 401 (500/503 when the store fails).
    pub(crate) status: StatusCode,
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub(crate) error: &'static str,
    /// For a person.
    pub(crate) description: String,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: if error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error,
            description: description.into(),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        let e = ApiError::from(e);
        OAuthError {
            status: e.status,
            error: "server_error",
            description: e.message,
        }
    }
}

/// The body of an [`OAuthError`] (RFC 6749 §5.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type` or `server_error`.
    error: &'static str,
    /// For a person.
    error_description: String,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error,
            error_description: self.description,
        };
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth\""),
            );
        }
        r
    }
}
