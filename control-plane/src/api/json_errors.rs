//! Every 4xx in its mount's JSON shape. axum answers what its extractors
//! refuse (a query, path, form or JSON body it cannot read, a path with a
//! bad percent-encoding, a missing or malformed header, a body over the
//! limit) and what its routers refuse (a wrong method, no route) in plain
//! text, or with no body. A client of one of the APIs served here reads
//! errors in that API's shape, so one layer re-says every such answer in
//! the shape of the mount the request was for, keeping axum's text as the
//! message; answers that are already JSON, and the pages meant for a
//! person's browser (HTML), pass unchanged.

use super::{agent_api, agent_configs};
use crate::auth::OAuthError;
use crate::error::{ApiError, OzError, QoderError, V0Error};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The API a path belongs to, by the error shape its clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mount {
    /// `/v1/…` and everything else: `{"error": {"type", "message"}}`.
    Api,
    /// `/oauth/…`, `/.well-known/…`: RFC 6749 §5.2 `{"error",
    /// "error_description"}`.
    OAuth,
    /// `/v0/…`, after Cursor's Cloud Agents API.
    V0,
    /// `/api/v1/cloud/…`, after Qoder's API.
    Qoder,
    /// `/api/v1/agent/…`, after Warp's Oz API: RFC 7807.
    Oz,
}

/// Whether `path` is `mount` or below it.
fn under(path: &str, mount: &str) -> bool {
    path.strip_prefix(mount)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Mount {
    /// The mount of a request path.
    pub(crate) fn of(path: &str) -> Mount {
        if under(path, "/v0") {
            Mount::V0
        } else if under(path, agent_configs::MOUNT) {
            Mount::Qoder
        } else if under(path, agent_api::MOUNT) {
            Mount::Oz
        } else if under(path, "/oauth") || under(path, "/.well-known") {
            Mount::OAuth
        } else {
            Mount::Api
        }
    }

    /// `e` as this mount's clients read errors.
    pub(crate) fn answer(self, e: ApiError) -> Response {
        match self {
            Mount::Api => e.into_response(),
            Mount::V0 => V0Error(e).into_response(),
            Mount::Qoder => QoderError(e).into_response(),
            Mount::Oz => OzError(e).into_response(),
            Mount::OAuth => OAuthError {
                status: e.status,
                error: match e.status {
                    StatusCode::UNAUTHORIZED => "invalid_client",
                    _ => "invalid_request",
                },
                description: e.message,
            }
            .into_response(),
        }
    }
}

/// The `type` of an error axum answered, by its status.
fn kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        _ => "invalid_request",
    }
}

/// What to tell a person when axum gave no text.
fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route; see GET /openapi.json",
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not take that method; see GET /openapi.json"
        }
        _ => "the request was refused; see GET /openapi.json for what this route takes",
    }
}

/// Whether an answer's body is already fit for a client: JSON of any
/// kind, or a page for a person.
fn keeps_its_body(r: &Response) -> bool {
    super::media_type(r.headers()).is_some_and(|essence| {
        essence == "application/json"
            || essence.ends_with("+json")
            || essence == "text/html"
            || essence == "text/event-stream"
    })
}

/// The largest body of axum's own that is read back as the message.
const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// The layer: a 4xx that is neither JSON nor a page is answered again in
/// the shape of the request's mount, with axum's text as the message and
/// the original headers (`Allow` of a 405, `WWW-Authenticate`, …) kept.
pub(crate) async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mount = Mount::of(req.uri().path());
    let r = next.run(req).await;
    if !r.status().is_client_error() || keeps_its_body(&r) {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| default_message(parts.status).to_string());
    let mut answer = mount.answer(ApiError::new(parts.status, kind(parts.status), text));
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !answer.headers().contains_key(name)
        {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::Mount;

    #[test]
    fn a_path_belongs_to_the_mount_it_starts_with() {
        for (path, mount) in [
            ("/v1/sessions", Mount::Api),
            ("/v0/agents/x", Mount::V0),
            ("/v0", Mount::V0),
            ("/v0x", Mount::Api),
            ("/api/v1/cloud/agents", Mount::Qoder),
            ("/api/v1/agent/runs", Mount::Oz),
            ("/api/v1/agents", Mount::Api),
            ("/oauth/token", Mount::OAuth),
            ("/.well-known/oauth-authorization-server", Mount::OAuth),
            ("/healthz", Mount::Api),
        ] {
            assert_eq!(Mount::of(path), mount, "{path}");
        }
    }
}
