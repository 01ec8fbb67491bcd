//! The decisions search: policy decisions across every session the
//! signed-in person may see, by result, kind, tool, agent and time.

use super::layout::{self, badge, Page};
use super::sessions::decision;
use super::sign_in::Viewer;
use crate::api::Shared;
use crate::error::ApiError;
use crate::store::DecisionFilter;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

/// Decisions shown at most.
const LIMIT: u32 = 200;

/// The search form's fields.
#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    result: Option<String>,
    kind: Option<String>,
    tool: Option<String>,
    agent: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// A time of the form: RFC 3339, or what `<input type=datetime-local>`
/// sends (read as UTC), in milliseconds.
fn time_ms(field: &str, v: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis());
    }
    Err(format!("{field} {v:?} is not a time: give RFC 3339 (2026-12-01T09:30:00Z) or a date (2026-12-01), in UTC"))
}

impl SearchQuery {
    fn filter(&self) -> Result<DecisionFilter, String> {
        let some = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let result = some(&self.result);
        if let Some(r) = &result {
            if !["allow", "deny", "ask"].contains(&r.as_str()) {
                return Err(format!("result {r:?} is none of allow, deny, ask"));
            }
        }
        Ok(DecisionFilter {
            result,
            kind: some(&self.kind),
            tool: some(&self.tool),
            agent: some(&self.agent),
            since_ms: some(&self.since)
                .map(|v| time_ms("since", &v))
                .transpose()?,
            until_ms: some(&self.until)
                .map(|v| time_ms("until", &v))
                .transpose()?,
            limit: LIMIT,
        })
    }
}

/// `GET /ui/decisions`.
pub(crate) async fn search(
    State(store): State<Shared>,
    viewer: Viewer,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let (found, problem) = match q.filter() {
        Ok(f) => {
            let (s, user) = (store.clone(), viewer.user.clone());
            match tokio::task::spawn_blocking(move || s.search_decisions(&user, &f)).await {
                Ok(Ok(v)) => (v, None),
                Ok(Err(e)) => return layout::store_error(e),
                Err(e) => return ApiError::internal(e).into_response(),
            }
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/ui/decisions" {
            label { "Result " select name="result" {
                option value="" { "any" }
                @for r in ["allow", "deny", "ask"] { option value=(r) selected[q.result.as_deref() == Some(r)] { (r) } }
            } }
            label { "Kind " input type="text" name="kind" placeholder="fs.write" value=(v(&q.kind)); }
            label { "Tool " input type="text" name="tool" placeholder="Bash" value=(v(&q.tool)); }
            label { "Agent " input type="text" name="agent" placeholder="agent_…" value=(v(&q.agent)); }
            label { "Since " input type="text" name="since" placeholder="2026-12-01" value=(v(&q.since)); }
            label { "Until " input type="text" name="until" placeholder="2026-12-02T00:00:00Z" value=(v(&q.until)); }
            button type="submit" { "Search" }
        }
        @if let Some(p) = &problem { p.err role="alert" { (p) } }
        @if found.is_empty() && problem.is_none() { p.muted { "No decisions match." } }
        ol.found {
            @for d in &found {
                li class={ "activity decision result-" (d.record.result.as_str()) } {
                    p.where {
                        a href={ "/ui/sessions/" (d.session_id) } { (if d.title.is_empty() { d.session_id.as_str() } else { d.title.as_str() }) }
                        " · " span.mono { (d.session_id) } " #" (d.seq) " · " span.mono { (d.at) }
                        @if let Some(a) = &d.agent_id { " · " span.mono { (a) } }
                        " · " (badge("result", d.record.result.as_str()))
                    }
                    (decision(&d.record))
                }
            }
        }
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    layout::render(status, &Page::new("Decisions", &viewer), body)
}

#[cfg(test)]
mod tests {
    use super::time_ms;

    #[test]
    fn times_of_the_form() {
        assert_eq!(time_ms("since", "1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(time_ms("since", "1970-01-01T00:01"), Ok(60_000));
        assert_eq!(time_ms("since", "1970-01-02"), Ok(86_400_000));
        assert!(time_ms("since", "yesterday")
            .unwrap_err()
            .contains("since \"yesterday\""));
    }
}
