//! The agent-configuration API (`/api/v1/cloud/…`, after
//! `seeds/agent-configuration.txt` and Qoder's wire details), served so
//! that Qoder's own client (`qca-sdk`) works against it with only a base
//! URL: agents as versioned configurations of the caller's team, with
//! optimistic concurrency, every version kept, archive, and the models the
//! workers serve. Updates come by PUT (the seed) and by POST to the same
//! path (what the client sends). Every error is in that API's envelope
//! ([`QoderError`]); every answer has a request id.

use super::Shared;
use crate::agent_configs::{is_agent_id, AgentPatch, AgentView, ModelView, Page};
use crate::auth::Member;
use crate::error::{ApiError, QoderError};
use crate::store::{AgentCursor, AgentQuery, AgentStart, Store, StoreError};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use std::sync::Arc;

mod skills;

/// Where this API is mounted.
pub(crate) const MOUNT: &str = "/api/v1/cloud";

type QResult<T> = Result<Json<T>, QoderError>;

/// The routes, with this API's own 404 and 405, and a request id on
/// every answer.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/agents", get(list_agents).post(create_agent))
        .route(
            "/agents/{id}",
            get(get_agent).put(update_agent).post(update_agent),
        )
        .route("/agents/{id}/versions", get(list_versions))
        .route("/agents/{id}/archive", post(archive_agent))
        .route("/models", get(list_models))
        .merge(skills::routes())
        .fallback(|| async {
            QoderError(ApiError::not_found(
                "not_found",
                "no such route; this API serves agents, agents/{id}, agents/{id}/versions, agents/{id}/archive, models, skills, skills/{id}, skills/{id}/versions and skills/{id}/versions/{version}",
            ))
        })
        .method_not_allowed_fallback(|| async {
            QoderError(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            ))
        })
        .layer(axum::middleware::map_response(with_request_id))
}

/// Gives an answer its `request-id` and `x-request-id` (`req_…`), which
/// the vendor's client reads into its errors and responses.
async fn with_request_id(mut r: Response) -> Response {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the OS random source works");
    if let Ok(v) = HeaderValue::from_str(&format!("req_{}", hex::encode(b))) {
        r.headers_mut().insert("request-id", v.clone());
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

/// The caller: a member of a team. A `qoder-workspace-id` header that
/// names another team is "not found" (as that team's things would be).
pub(crate) struct Caller(Member);

impl FromRequestParts<Arc<Store>> for Caller {
    type Rejection = QoderError;

    async fn from_request_parts(parts: &mut Parts, store: &Arc<Store>) -> Result<Self, QoderError> {
        let m = crate::auth::member(parts, store).await?;
        if let Some(w) = parts.headers.get("qoder-workspace-id") {
            if w.to_str().ok() != Some(m.team.as_str()) {
                return Err(QoderError(ApiError::not_found(
                    "not_found",
                    "no such workspace; leave qoder-workspace-id out, or give your team's name",
                )));
            }
        }
        Ok(Caller(m))
    }
}

/// A JSON body of at most 1 MiB; an empty one reads as `{}` (the
/// vendor's client sends `{}` or nothing on archive).
pub(crate) struct QBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for QBody<T> {
    type Rejection = QoderError;
    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, QoderError> {
        super::json_or_empty(req)
            .await
            .map(QBody)
            .map_err(QoderError)
    }
}

/// Runs a store call off the async runtime; its error becomes this API's.
async fn blocking<T: Send + 'static>(
    store: Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, QoderError> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(QoderError::from)
}

/// The query's pairs, each key at most once and each one of `allowed`.
fn query_pairs(raw: Option<String>, allowed: &[&str]) -> Result<Vec<(String, String)>, QoderError> {
    let raw = raw.unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(invalid(format!(
                "unknown query parameter {k:?}; this route takes {}",
                allowed.join(", ")
            )));
        }
        if out.iter().any(|(x, _)| *x == k) {
            return Err(invalid(format!("query parameter {k:?} is given twice")));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn invalid(message: impl Into<String>) -> QoderError {
    QoderError(ApiError::invalid(message))
}

fn get_param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `limit`: 1–100, 20 when absent.
fn limit(pairs: &[(String, String)]) -> Result<u32, QoderError> {
    match get_param(pairs, "limit") {
        None => Ok(20),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(invalid(format!(
                "limit must be an integer from 1 to 100, not {v:?}"
            ))),
        },
    }
}

fn time_param(pairs: &[(String, String)], key: &str) -> Result<Option<i64>, QoderError> {
    get_param(pairs, key)
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    invalid(format!(
                        "{key} must be an RFC 3339 time (2026-01-31T12:00:00Z), not {v:?}"
                    ))
                })
        })
        .transpose()
}

fn not_found(id: &str) -> QoderError {
    QoderError(ApiError::not_found(
        "not_found",
        format!("no agent {id:?}; list yours with GET /api/v1/cloud/agents"),
    ))
}

fn page_of(
    items: Vec<AgentView>,
    ids: Vec<String>,
    has_more: bool,
    next: Option<String>,
) -> Page<AgentView> {
    Page {
        first_id: ids.first().cloned(),
        last_id: ids.last().cloned(),
        data: items,
        has_more,
        next_page: next,
    }
}

/// `POST agents`: a new agent at version 1 (201).
async fn create_agent(
    State(s): State<Shared>,
    Caller(m): Caller,
    QBody(patch): QBody<AgentPatch>,
) -> Result<Response, QoderError> {
    m.person()?;
    let r = blocking(s, move |st| st.create_agent_config(&m.team, &m.user, patch)).await?;
    Ok((StatusCode::CREATED, Json(AgentView::from(r))).into_response())
}

/// `GET agents/{id}[?version=N]`: the latest version, or version N.
async fn get_agent(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> QResult<AgentView> {
    let pairs = query_pairs(q, &["version"])?;
    let version = get_param(&pairs, "version")
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid(format!("version must be a positive integer, not {v:?}")))
        })
        .transpose()?;
    if !is_agent_id(&id) {
        return Err(not_found(&id));
    }
    let r = blocking(s, move |st| st.agent_config(&m.team, &id, version)).await?;
    Ok(Json(r.into()))
}

/// `PUT` or `POST agents/{id}`: the next version, made against `version`.
async fn update_agent(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    QBody(patch): QBody<AgentPatch>,
) -> QResult<AgentView> {
    m.person()?;
    if patch.version.is_none() {
        return Err(invalid("Field 'version' is required."));
    }
    if !is_agent_id(&id) {
        return Err(not_found(&id));
    }
    let r = blocking(s, move |st| {
        st.update_agent_config(&m.team, &id, &m.user, patch)
    })
    .await?;
    Ok(Json(r.into()))
}

/// `POST agents/{id}/archive`: archived from now on (again: unchanged).
async fn archive_agent(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    QBody(_): QBody<serde_json::Value>,
) -> QResult<AgentView> {
    m.person()?;
    if !is_agent_id(&id) {
        return Err(not_found(&id));
    }
    let r = blocking(s, move |st| st.archive_agent_config(&m.team, &id)).await?;
    Ok(Json(r.into()))
}

/// `GET agents`: the team's agents, newest first.
async fn list_agents(
    State(s): State<Shared>,
    Caller(m): Caller,
    RawQuery(q): RawQuery,
) -> QResult<Page<AgentView>> {
    let pairs = query_pairs(
        q,
        &[
            "limit",
            "page",
            "after_id",
            "before_id",
            "include_archived",
            "created_at[gte]",
            "created_at[lte]",
        ],
    )?;
    let cursors: Vec<&str> = ["page", "after_id", "before_id"]
        .into_iter()
        .filter(|k| get_param(&pairs, k).is_some())
        .collect();
    if cursors.len() > 1 {
        return Err(invalid(format!(
            "give at most one of page, after_id and before_id (got {})",
            cursors.join(" and ")
        )));
    }
    let start = if let Some(p) = get_param(&pairs, "page") {
        AgentStart::Page(AgentCursor::decode(p).ok_or_else(|| {
            invalid("page is not a cursor this API gave; use next_page of the previous page")
        })?)
    } else if let Some(a) = get_param(&pairs, "after_id") {
        AgentStart::AfterId(a.to_string())
    } else if let Some(b) = get_param(&pairs, "before_id") {
        AgentStart::BeforeId(b.to_string())
    } else {
        AgentStart::Newest
    };
    let include_archived = match get_param(&pairs, "include_archived") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(invalid(format!(
                "include_archived must be true or false, not {v:?}"
            )))
        }
    };
    let query = AgentQuery {
        limit: limit(&pairs)?,
        start,
        include_archived,
        created_gte: time_param(&pairs, "created_at[gte]")?,
        created_lte: time_param(&pairs, "created_at[lte]")?,
    };
    let page = blocking(s, move |st| st.list_agent_configs(&m.team, &query)).await?;
    let ids = page.items.iter().map(|r| r.id.clone()).collect();
    Ok(Json(page_of(
        page.items.into_iter().map(AgentView::from).collect(),
        ids,
        page.has_more,
        page.next.map(|c| c.encode()),
    )))
}

/// The `page` token of the versions below `v`.
fn version_token(v: u32) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v:{v}"))
}

fn version_from_token(t: &str) -> Option<u32> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("v:")?
        .parse()
        .ok()
}

/// `GET agents/{id}/versions`: every version, newest first, each the
/// whole agent as it was.
async fn list_versions(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> QResult<Page<AgentView>> {
    let pairs = query_pairs(q, &["limit", "page"])?;
    let n = limit(&pairs)?;
    let below = get_param(&pairs, "page")
        .map(|p| {
            version_from_token(p).ok_or_else(|| {
                invalid("page is not a cursor this API gave; use next_page of the previous page")
            })
        })
        .transpose()?;
    if !is_agent_id(&id) {
        return Err(not_found(&id));
    }
    let page = blocking(s, move |st| {
        st.agent_config_versions(&m.team, &id, n, below)
    })
    .await?;
    let ids = page.items.iter().map(|r| r.id.clone()).collect();
    Ok(Json(page_of(
        page.items.into_iter().map(AgentView::from).collect(),
        ids,
        page.has_more,
        page.next.map(version_token),
    )))
}

/// `GET models`: the models registered workers serve (`after_id` /
/// `before_id` page through them).
async fn list_models(
    State(s): State<Shared>,
    Caller(m): Caller,
    RawQuery(q): RawQuery,
) -> QResult<Page<ModelView>> {
    let pairs = query_pairs(q, &["limit", "after_id", "before_id"])?;
    let n = limit(&pairs)? as usize;
    if get_param(&pairs, "after_id").is_some() && get_param(&pairs, "before_id").is_some() {
        return Err(invalid("give at most one of after_id and before_id"));
    }
    let all = blocking(s, move |st| st.served_model_list(&m.user)).await?;
    let position = |key: &str| -> Result<Option<usize>, QoderError> {
        get_param(&pairs, key)
            .map(|id| {
                all.iter()
                    .position(|(m, _)| m == id)
                    .ok_or_else(|| invalid(format!("{key} {id:?} names no model GET models lists")))
            })
            .transpose()
    };
    let (from, to) = match (position("after_id")?, position("before_id")?) {
        (Some(i), _) => (i + 1, (i + 1 + n).min(all.len())),
        (_, Some(j)) => (j.saturating_sub(n), j),
        _ => (0, n.min(all.len())),
    };
    let has_more = if get_param(&pairs, "before_id").is_some() {
        from > 0
    } else {
        to < all.len()
    };
    let data: Vec<ModelView> = all[from..to]
        .iter()
        .map(|(id, at)| ModelView {
            id: id.clone(),
            kind: "model",
            display_name: id.clone(),
            created_at: crate::agent_configs::rfc3339(*at),
        })
        .collect();
    Ok(Json(Page {
        first_id: data.first().map(|m| m.id.clone()),
        last_id: data.last().map(|m| m.id.clone()),
        data,
        has_more,
        next_page: None,
    }))
}

#[cfg(test)]
mod tests;
