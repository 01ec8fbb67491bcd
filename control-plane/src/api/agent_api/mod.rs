//! The identities API (`/api/v1/agent/…`, after
//! `seeds/cloud-agent-identities.txt` and Warp's wire details), served so
//! that Warp's own client (`oz-agent-sdk`) works against it with only a
//! base URL: a team's agents as service identities ([`identities`]), the
//! runs that start them ([`runs`]), and the schedules that start runs on
//! a cron ([`schedules`]). Every error is RFC 7807 problem details ([`OzError`]).

mod identities;
mod runs;
mod schedules;

use super::Shared;
use crate::auth::Member;
use crate::error::{ApiError, OzError};
use crate::store::{Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Where this API is mounted.
pub(crate) const MOUNT: &str = "/api/v1/agent";

/// The routes, with this API's own 404 and 405.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/identities",
            get(identities::list).post(identities::create),
        )
        .route(
            "/identities/{uid}",
            get(identities::get)
                .put(identities::update)
                .delete(identities::delete),
        )
        .route("/runs", get(runs::list).post(runs::start))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/followups", post(runs::followup))
        .route("/schedules", get(schedules::list).post(schedules::create))
        .route(
            "/schedules/{id}",
            get(schedules::get)
                .put(schedules::replace)
                .delete(schedules::delete),
        )
        .route("/schedules/{id}/pause", post(schedules::pause))
        .route("/schedules/{id}/resume", post(schedules::resume))
        .fallback(|| async {
            OzError(ApiError::not_found(
                "not_found",
                "no such route; this API serves identities, runs and schedules",
            ))
        })
        .method_not_allowed_fallback(|| async {
            OzError(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            ))
        })
}

/// The caller: a member of a team (a person, or an agent's key).
pub(crate) struct Caller(Member);

impl FromRequestParts<Arc<Store>> for Caller {
    type Rejection = OzError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, OzError> {
        Ok(Caller(crate::auth::member(parts, store).await?))
    }
}

/// A JSON body; an empty one reads as `{}` (the vendor's client sends
/// `Content-Type: application/json` on every POST, even without a body).
pub(crate) struct OzBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for OzBody<T> {
    type Rejection = OzError;
    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, OzError> {
        super::json_or_empty(req).await.map(OzBody).map_err(OzError)
    }
}

/// Runs a store call off the async runtime; its error becomes this API's.
async fn blocking<T: Send + 'static>(
    store: Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, OzError> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(OzError::from)
}

fn invalid(message: impl Into<String>) -> OzError {
    OzError(ApiError::invalid(message))
}

/// The query's pairs, in order (keys may repeat), each key one of
/// `allowed`: a filter this API does not implement is refused, never
/// silently ignored.
fn query_pairs(raw: Option<String>, allowed: &[&str]) -> Result<Vec<(String, String)>, OzError> {
    let raw = raw.unwrap_or_default();
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(invalid(format!(
                "query parameter {k:?} is not supported here; this route takes {}",
                allowed.join(", ")
            )));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// The one value of `key` (twice is a 400).
fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, OzError> {
    let mut it = pairs.iter().filter(|(k, _)| k == key);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(invalid(format!("query parameter {key:?} is given twice")));
    }
    Ok(first)
}

#[cfg(test)]
mod tests;
