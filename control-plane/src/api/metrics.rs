//! `GET /metrics` and the layer that counts every request by route
//! template ([`crate::metrics`] says what is counted).

use super::Shared;
use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;

/// The control plane's metrics (OpenMetrics text). Open unless the
/// control plane was started with `--metrics-token-file`: then only a
/// scrape that sends that token as its bearer.
#[utoipa::path(get, path = "/metrics", tag = "meta", security((), ("metrics_token" = [])), responses((status = 200, description = "Counts of sessions by state, claims, lease expiries, webhook deliveries and requests, in the OpenMetrics text format.", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String), (status = 401, description = "`unauthorized`: this control plane asks scrapes for its metrics token (`Authorization: Bearer …`).", body = protocol::platform::ErrorBody)))]
pub(crate) async fn metrics(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(want) = s.metrics_token() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let ok = given.is_some_and(|g| crate::metrics::token_matches(g, want));
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this control plane's metrics need its metrics token: send Authorization: Bearer with the token of --metrics-token-file",
            ));
        }
    }
    let text = tokio::task::spawn_blocking(move || {
        s.session_counts().map(|counts| s.metrics().encode(&counts))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}

/// Counts each request once it is answered, by method, the route
/// template it matched (never the path: that holds ids) and status class.
pub(crate) async fn count_requests(
    State(s): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = req.method().clone();
    let r = next.run(req).await;
    s.metrics()
        .http_request(method.as_str(), route.as_deref(), r.status().as_u16());
    r
}
