//! The workers that may run the signed-in person's sessions, with their
//! health: when each was last heard from, what its heartbeat said, and
//! the claims it holds.

use super::layout::{self, badge, Page};
use super::sign_in::Viewer;
use crate::api::Shared;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

/// A worker silent for longer than this is shown as stale (three missed
/// heartbeats of the worker's default 10 s interval, and then some).
const STALE_MS: i64 = 45_000;

/// `GET /ui/workers`.
pub(crate) async fn list(State(store): State<Shared>, viewer: Viewer) -> Response {
    let (s, user) = (store.clone(), viewer.user.clone());
    let workers = match tokio::task::spawn_blocking(move || s.workers_for(&user)).await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return layout::store_error(e),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let body = html! {
        @if workers.is_empty() { p.muted { "No worker that may run your sessions has registered." } }
        @else {
            table.workers {
                thead { tr { th { "Worker" } th { "Health" } th { "Last heard" } th { "Status" } th { "Claims" } th { "Models" } th { "Owner" } } }
                tbody {
                    @for w in &workers {
                        @let health = match w.silent_ms { None => "never", Some(ms) if ms > STALE_MS => "stale", Some(_) => "healthy" };
                        tr {
                            td { (w.worker.registration.display_name) br; small.mono { (w.worker.worker_id.as_str()) } }
                            td { (badge("health", health)) }
                            td.mono { (w.worker.last_heartbeat_at.as_deref().unwrap_or("—")) @if let Some(ms) = w.silent_ms { " (" (ms / 1000) " s ago)" } }
                            td { (w.heartbeat.as_ref().and_then(|h| h["status"].as_str()).unwrap_or("—")) }
                            td { (w.active_claims) " / " (w.worker.registration.concurrency) }
                            td.mono { (w.worker.registration.models.join(", ")) }
                            td.mono { (w.owner.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    };
    layout::render(StatusCode::OK, &Page::new("Workers", &viewer), body)
}
