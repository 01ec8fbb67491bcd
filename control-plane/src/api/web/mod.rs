//! The web pages: a reviewer's and an operator's view of the control
//! plane, served by it under `/ui/` — sessions, a session's timeline with
//! every policy decision, approvals, the decisions search, agents and
//! their versions, workers.
//!
//! Server-rendered HTML (`maud`, which escapes every value it is given)
//! with one small script file that re-reads a session's live part when its
//! event stream says something happened. Nothing to build, nothing from a
//! CDN, and work content — titles, prompts, tool output, the model's
//! words — is untrusted text everywhere: escaped, under a Content-Security-
//! Policy that runs no inline script (see [`layout`]). Signing in is
//! [`sign_in`]'s.

mod agents;
mod decisions;
mod layout;
mod sessions;
mod sign_in;
mod workers;

use super::Shared;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Where the pages are mounted.
pub(crate) const MOUNT: &str = "/ui";
/// The client the pages' event streams are counted under.
pub(crate) const STREAM_CLIENT: &str = "web";

/// The style sheet and the script, compiled in.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "ui.css",
        "text/css; charset=utf-8",
        include_str!("static/ui.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("static/live.js"),
    ),
];

/// The pages' routes (relative to [`MOUNT`]).
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/sessions") }))
        .route(
            "/login",
            get(sign_in::login_page).post(sign_in::login_submit),
        )
        .route("/login/link", get(sign_in::login_link))
        .route("/logout", post(sign_in::logout))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::page))
        .route("/sessions/{id}/live", get(sessions::live))
        .route("/sessions/{id}/events", get(sessions::events))
        .route("/sessions/{id}/answer", post(sessions::answer))
        .route("/sessions/{id}/artifact", get(sessions::artifact))
        .route("/decisions", get(decisions::search))
        .route("/agents", get(agents::list))
        .route("/agents/{id}", get(agents::page))
        .route("/agents/{id}/diff", get(agents::diff))
        .route("/workers", get(workers::list))
        .route("/static/{file}", get(asset))
        .fallback(|| async {
            layout::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
        })
        .method_not_allowed_fallback(|| async {
            layout::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "This page does not take that method.",
            )
        })
}

/// A compiled-in asset.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, ty, body)) => {
            let mut r = (*body).into_response();
            layout::protect(&mut r);
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        None => layout::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such file."),
    }
}

#[cfg(test)]
mod tests;
