//! The team's agents, each with its versions, and the difference between
//! any two versions (their configurations as JSON, line by line).

use super::layout::{self, badge, Page};
use super::sign_in::Viewer;
use crate::agent_configs::AgentRecord;
use crate::api::Shared;
use crate::error::ApiError;
use crate::store::StoreError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// Versions listed on an agent's page at most.
const VERSIONS: u32 = 100;

/// The viewer's team (every user has one; a file from before teams put
/// them in `default`).
fn team(store: &crate::store::Store, user: &str) -> Result<String, StoreError> {
    store
        .team_of(user)?
        .ok_or_else(|| StoreError::invalid(format!("user {user} is in no team; an operator adds them to one (control-plane admin user-set-team)")))
}

async fn on_store<T: Send + 'static>(
    store: &Shared,
    f: impl FnOnce(&crate::store::Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ApiError::internal(e).into_response())?
        .map_err(layout::store_error)
}

fn flags(a: &AgentRecord) -> Markup {
    html! {
        @if a.is_default { (badge("flag", "default")) " " }
        @if a.archived_at.is_some() { (badge("flag", "archived")) " " }
        @if !a.available { (badge("flag", "unavailable")) }
    }
}

/// `GET /ui/agents`.
pub(crate) async fn list(State(store): State<Shared>, viewer: Viewer) -> Response {
    let user = viewer.user.clone();
    let agents = match on_store(&store, move |s| s.list_identities(&team(s, &user)?)).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = html! {
        table.agents {
            thead { tr { th { "Agent" } th { "Version" } th { "Model" } th { "Tools" } th { "" } } }
            tbody {
                @for a in &agents {
                    tr {
                        td { a href={ "/ui/agents/" (a.id) } { (a.config.name) } br; small.mono { (a.id) } }
                        td { (a.version) }
                        td.mono { (a.config.model.id().unwrap_or("(the worker's)")) }
                        td { (a.config.tools.len()) }
                        td { (flags(a)) }
                    }
                }
            }
        }
    };
    layout::render(StatusCode::OK, &Page::new("Agents", &viewer), body)
}

/// `GET /ui/agents/{id}`: the agent and its versions.
pub(crate) async fn page(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (user, aid) = (viewer.user.clone(), id.clone());
    let versions = match on_store(&store, move |s| {
        Ok(
            s.agent_config_versions(&team(s, &user)?, &aid, VERSIONS, None)?
                .items,
        )
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(latest) = versions.first() else {
        return layout::error_page(
            StatusCode::NOT_FOUND,
            "No such agent",
            "This agent has no versions.",
        );
    };
    let config = serde_json::to_string_pretty(&latest.config).unwrap_or_default();
    let body = html! {
        p { (flags(latest)) span.mono { (latest.id) } " · latest version " (latest.version) }
        @if latest.version > 1 {
            p { a href={ "/ui/agents/" (latest.id) "/diff?from=" (latest.version - 1) "&to=" (latest.version) } { "What changed in version " (latest.version) } }
        }
        h2 { "Configuration (version " (latest.version) ")" }
        pre.config { (config) }
        h2 { "Versions" }
        form.filters method="get" action={ "/ui/agents/" (latest.id) "/diff" } {
            label { "Compare version " input type="number" name="from" min="1" max=(latest.version) value=(latest.version.saturating_sub(1).max(1)); }
            label { " with " input type="number" name="to" min="1" max=(latest.version) value=(latest.version); }
            button type="submit" { "Diff" }
        }
        table.versions {
            thead { tr { th { "Version" } th { "Written" } th { "Model" } th { "Tools" } } }
            tbody {
                @for v in &versions {
                    tr { td { (v.version) } td.mono { (crate::store::rfc3339(v.updated_at)) } td.mono { (v.config.model.id().unwrap_or("(the worker's)")) } td { (v.config.tools.len()) } }
                }
            }
        }
    };
    layout::render(
        StatusCode::OK,
        &Page::new(format!("Agent {}", latest.config.name), &viewer),
        body,
    )
}

/// `?from=&to=` of the diff page.
#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    from: u32,
    to: u32,
}

/// `GET /ui/agents/{id}/diff?from=N&to=M`.
pub(crate) async fn diff(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    q: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return layout::error_page(
            StatusCode::BAD_REQUEST,
            "Which versions?",
            "Give two version numbers: ?from=1&to=2.",
        );
    };
    let (user, aid) = (viewer.user.clone(), id.clone());
    let (from, to) = match on_store(&store, move |s| {
        let team = team(s, &user)?;
        Ok((
            s.agent_config(&team, &aid, Some(q.from))?,
            s.agent_config(&team, &aid, Some(q.to))?,
        ))
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = serde_json::to_string_pretty(&from.config).unwrap_or_default();
    let b = serde_json::to_string_pretty(&to.config).unwrap_or_default();
    let body = html! {
        p { a href={ "/ui/agents/" (id) } { "Back to the agent" } }
        (diff_lines(&a, &b))
    };
    layout::render(
        StatusCode::OK,
        &Page::new(
            format!(
                "{}: version {} → {}",
                to.config.name, from.version, to.version
            ),
            &viewer,
        ),
        body,
    )
}

/// The line diff of two texts: removed lines marked `-`, added `+`.
fn diff_lines(a: &str, b: &str) -> Markup {
    let d = similar::TextDiff::from_lines(a, b);
    html! {
        @if a == b { p.muted { "The two versions are the same." } }
        pre.diff {
            @for c in d.iter_all_changes() {
                @match c.tag() {
                    similar::ChangeTag::Delete => span.del { "- " (c.value()) },
                    similar::ChangeTag::Insert => span.ins { "+ " (c.value()) },
                    similar::ChangeTag::Equal => span.same { "  " (c.value()) },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diff_marks_what_changed_and_escapes_it() {
        let m = super::diff_lines("{\n  \"a\": 1\n}\n", "{\n  \"a\": \"<b>\"\n}\n").into_string();
        assert!(
            m.contains("<span class=\"del\">-   &quot;a&quot;: 1\n</span>"),
            "{m}"
        );
        assert!(m.contains("&lt;b&gt;"), "{m}");
        assert!(!m.contains("<b>"), "{m}");
    }
}
