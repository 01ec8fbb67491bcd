//! The sessions list and a session's page: plan, timeline (activities,
//! every policy decision with its normalised action, reasons and policy
//! revision, and the state changes), conversation, branch and pull
//! request, and the approval form of an `awaiting_input`. The page follows
//! the session through its event stream (`live.js` re-reads the live part
//! when an event arrives).

use super::layout::{self, badge, Page};
use super::sign_in::{check_same_origin, Viewer};
use crate::api::events::{self, EventsQuery, Streams};
use crate::api::Shared;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::store::{ReviewedSession, SessionFilter, SessionView};
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use protocol::activity::Activity;
use protocol::conversation::{Answer, ConversationEntry, Message};
use protocol::policy::DecisionRecord;
use protocol::session::{SessionState, Trigger};
use serde::Deserialize;
use std::sync::Arc;

/// Sessions listed at most.
const LIST_LIMIT: u32 = 200;
/// Activities a session's page shows at most (its latest): a session may
/// have tens of thousands, and the live part is read again at each event.
const TIMELINE_LIMIT: u32 = 500;
/// Conversation messages a session's page shows at most (its latest).
const CONVERSATION_LIMIT: usize = 200;

/// The list's filters, as the filter form sends them.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    state: Option<String>,
    agent: Option<String>,
    source: Option<String>,
    denials: Option<String>,
}

impl ListQuery {
    /// The store's filter, or what is wrong with the query.
    fn filter(&self) -> Result<SessionFilter, String> {
        let some = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let state = match some(&self.state) {
            None => None,
            Some(s) => Some(SessionState::parse(&s).ok_or_else(|| format!("state {s:?} is none of queued, active, awaiting_input, complete, error, cancelled"))?),
        };
        let source = match some(&self.source) {
            None => None,
            Some(s) => Some(Trigger::parse(&s).ok_or_else(|| {
                format!("source {s:?} is none of API, CLI, SCHEDULED_AGENT, WEB_APP")
            })?),
        };
        Ok(SessionFilter {
            state,
            agent: some(&self.agent),
            source,
            has_denials: some(&self.denials).is_some(),
            limit: LIST_LIMIT,
        })
    }
}

const STATES: [&str; 6] = [
    "queued",
    "active",
    "awaiting_input",
    "complete",
    "error",
    "cancelled",
];
const SOURCES: [&str; 4] = ["API", "CLI", "SCHEDULED_AGENT", "WEB_APP"];

/// `GET /ui/sessions`.
pub(crate) async fn list(
    State(store): State<Shared>,
    viewer: Viewer,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let (filter, problem) = match q.filter() {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e)),
    };
    let rows = match filter {
        Some(f) => {
            let (s, user) = (store.clone(), viewer.user.clone());
            match tokio::task::spawn_blocking(move || s.review_sessions(&user, &f)).await {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return layout::store_error(e),
                Err(e) => return ApiError::internal(e).into_response(),
            }
        }
        None => Vec::new(),
    };
    let selected = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let body = html! {
        form.filters method="get" action="/ui/sessions" {
            label { "State " select name="state" {
                option value="" { "any" }
                @for s in STATES { option value=(s) selected[selected(&q.state, s)] { (s) } }
            } }
            label { "Agent " input type="text" name="agent" placeholder="agent_…" value=[q.agent.as_deref()]; }
            label { "Source " select name="source" {
                option value="" { "any" }
                @for s in SOURCES { option value=(s) selected[selected(&q.source, s)] { (s) } }
            } }
            label { input type="checkbox" name="denials" value="1" checked[q.denials.is_some()]; " has denials" }
            button type="submit" { "Filter" }
        }
        @if let Some(p) = &problem { p.err role="alert" { (p) } }
        @if rows.is_empty() && problem.is_none() { p.muted { "No sessions match." } }
        @else if !rows.is_empty() {
            table.sessions {
                thead { tr { th { "Session" } th { "State" } th { "Agent" } th { "Source" } th { "Denials" } th { "Asks" } th { "Created" } } }
                tbody { @for r in &rows { (session_row(r)) } }
            }
        }
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    layout::render(status, &Page::new("Sessions", &viewer), body)
}

fn session_row(r: &ReviewedSession) -> Markup {
    let s = &r.session;
    let title = if s.source.title.trim().is_empty() {
        s.id.as_str()
    } else {
        s.source.title.as_str()
    };
    html! {
        tr {
            td { a.title href={ "/ui/sessions/" (s.id.as_str()) } { (title) } br; small.mono { (s.id.as_str()) } }
            td { (badge("state", s.state.as_str())) }
            td.mono { (s.agent_id.as_deref().unwrap_or("—")) }
            td { (s.trigger.as_str()) }
            td { @if r.denials > 0 { (badge("result", "deny")) " " } (r.denials) }
            td { (r.asks) }
            td.mono { (s.created_at) }
        }
    }
}

/// What a session's page shows: the session with its latest activities,
/// how many it has in all, its latest messages, and its last event.
struct Shown {
    view: SessionView,
    activities: u64,
    conversation: Vec<ConversationEntry>,
    messages: usize,
    last_event: u64,
    artifacts: Vec<protocol::toolset::ArtifactInfo>,
}

/// Reads what a session's page shows, if `viewer` may see it.
async fn read_session(store: &Shared, viewer: &Viewer, id: &str) -> Result<Shown, Response> {
    let (s, user, id) = (store.clone(), viewer.user.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        s.check_session_access(&id, Some(&user), None)?;
        let (view, activities) = s.get_recent(&id, TIMELINE_LIMIT)?;
        let mut conversation = s.conversation(&id)?;
        let messages = conversation.len();
        conversation.drain(..messages.saturating_sub(CONVERSATION_LIMIT));
        let last_event = s.session_events(&id, 0, 1)?.last;
        let artifacts = s.artifacts(&id)?;
        Ok(Shown {
            view,
            activities,
            conversation,
            messages,
            last_event,
            artifacts,
        })
    })
    .await
    .map_err(|e| ApiError::internal(e).into_response())?
    .map_err(layout::store_error)
}

/// `GET /ui/sessions/{id}`.
pub(crate) async fn page(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let shown = match read_session(&store, &viewer, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (view, last) = (&shown.view, shown.last_event);
    let s = &view.session;
    let title = if s.source.title.trim().is_empty() {
        s.id.as_str().to_string()
    } else {
        s.source.title.clone()
    };
    let body = html! {
        dl.facts {
            dt { "Session" } dd.mono { (s.id.as_str()) }
            dt { "Agent" } dd.mono { (s.agent_id.as_deref().unwrap_or("inline")) " · version " (s.agent.version) " · " (s.agent.model) }
            dt { "Source" } dd { (s.trigger.as_str()) }
            dt { "Runs as" } dd.mono { (s.run_as.as_deref().unwrap_or("—")) }
            dt { "Created" } dd.mono { (s.created_at) }
            @if let Some(repo) = &s.repo {
                dt { "Repository" } dd.mono { (repo.repository.as_deref().unwrap_or("—")) @if let Some(r) = &repo.git_ref { " @ " (r) } }
                dt { "Branch" } dd.mono.branch { (repo.branch_name.as_deref().unwrap_or("—")) }
            }
        }
        div #live data-live={ "/ui/sessions/" (s.id.as_str()) "/live" } data-events={ "/ui/sessions/" (s.id.as_str()) "/events?after=" (last) } {
            (live_parts(&shown, &viewer))
        }
    };
    layout::render(StatusCode::OK, &Page::new(title, &viewer), body)
}

/// `GET /ui/sessions/{id}/live`: the part of the page that changes.
pub(crate) async fn live(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match read_session(&store, &viewer, &id).await {
        Ok(shown) => {
            let mut r = (
                StatusCode::OK,
                Html(live_parts(&shown, &viewer).into_string()),
            )
                .into_response();
            layout::protect(&mut r);
            r
        }
        Err(r) => r,
    }
}

/// `GET /ui/sessions/{id}/events`: the session's event stream, for the
/// signed-in person (what `GET /v1/sessions/{id}/events` sends).
pub(crate) async fn events(
    State(store): State<Shared>,
    viewer: Viewer,
    Extension(streams): Extension<Arc<Streams>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let who = Principal::User {
        user: viewer.user,
        client_id: super::STREAM_CLIENT.into(),
    };
    events::stream(store, who, streams, id, &headers, q).await
}

/// Query of the artifact download.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactQuery {
    /// The artifact's path, `/data/…`.
    path: String,
}

/// `GET /ui/sessions/{id}/artifact?path=`: one artifact's bytes for the
/// signed-in person who may read the session, served as the API serves
/// them (an attachment, `nosniff`, a sandboxing CSP: never a page of this
/// origin).
pub(crate) async fn artifact(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    q: Result<Query<ArtifactQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return layout::error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "give the artifact's path: ?path=/data/…",
        );
    };
    let user = viewer.user.clone();
    let got = tokio::task::spawn_blocking(move || {
        store.check_session_access(&id, Some(&user), None)?;
        store.artifact(&id, &q.path)
    })
    .await;
    match got {
        Ok(Ok(a)) => crate::api::artifacts::download(a),
        Ok(Err(e)) => layout::store_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The question a session awaits an answer to now, if it does.
fn pending_question(view: &SessionView) -> Option<(&str, Option<&str>)> {
    if view.session.state != SessionState::AwaitingInput {
        return None;
    }
    view.activities
        .iter()
        .rev()
        .find_map(|a| match &a.activity {
            Activity::AwaitingInput {
                question,
                question_id,
            } => Some((question.as_str(), question_id.as_deref())),
            _ => None,
        })
}

/// Plan, the pending question, the outcome, the timeline and the
/// conversation.
fn live_parts(shown: &Shown, viewer: &Viewer) -> Markup {
    let (view, conversation) = (&shown.view, &shown.conversation);
    let s = &view.session;
    // Activities and state changes, in time order (both RFC 3339 of the
    // same form, so their text orders as their times do).
    let mut timeline: Vec<(&str, Markup)> = view
        .activities
        .iter()
        .map(|a| (a.at.as_str(), activity(a.seq, &a.at, &a.activity)))
        .collect();
    for t in &view.transitions {
        timeline.push((t.at.as_str(), html! {
            li.transition { span.mono.at { (t.at) } " " (badge("state", &t.from)) " → " (badge("state", &t.to)) " " span.reason { (t.reason) } }
        }));
    }
    timeline.sort_by(|a, b| a.0.cmp(b.0));
    html! {
        p.state { "State: " (badge("state", s.state.as_str())) @if let Some(o) = &s.outcome { " " span.outcome { (o) } } }
        @if let Some(u) = &s.external_url {
            p.pr { "Pull request: " a href=(u) rel="noopener noreferrer" { (u) } }
        }
        @if let Some((question, question_id)) = pending_question(view) {
            section.ask {
                h2 { "Awaiting your answer" }
                p.question { (question) }
                form.answer method="post" action={ "/ui/sessions/" (s.id.as_str()) "/answer" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    @if let Some(q) = question_id { input type="hidden" name="question_id" value=(q); }
                    label { "Message (optional) " input type="text" name="message" maxlength="2000"; }
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button type="submit" name="decision" value="refuse" { "Refuse" }
                    button type="submit" name="decision" value="answer" { "Send as answer" }
                }
            }
        }
        @if !s.plan.is_empty() {
            section.plan { h2 { "Plan" } ol { @for step in &s.plan { li { (step) } } } }
        }
        section.timeline {
            h2 { "Timeline" }
            @if shown.activities > view.activities.len() as u64 {
                p.muted { "The latest " (view.activities.len()) " of " (shown.activities) " activities; all of them: " code { "GET /v1/sessions/" (s.id.as_str()) } "." }
            }
            ol.timeline { @for (_, m) in &timeline { (m) } }
        }
        @if !shown.artifacts.is_empty() {
            section.artifacts {
                h2 { "Artifacts" }
                table.artifacts {
                    thead { tr { th { "Path" } th { "Size" } th { "Delivered" } th {} } }
                    tbody {
                        @for a in &shown.artifacts {
                            tr {
                                td.mono { (a.path) }
                                td.mono { (a.size_bytes) " bytes" }
                                td.mono { (a.created_at) }
                                td { a href={ "/ui/sessions/" (s.id.as_str()) "/artifact?path=" (url::form_urlencoded::byte_serialize(a.path.as_bytes()).collect::<String>()) } download { "Download" } }
                            }
                        }
                    }
                }
            }
        }
        section.conversation {
            h2 { "Conversation" }
            @if conversation.is_empty() { p.muted { "No messages yet." } }
            @if shown.messages > conversation.len() {
                p.muted { "The latest " (conversation.len()) " of " (shown.messages) " messages; all of them: " code { "GET /v1/sessions/" (s.id.as_str()) "/conversation" } "." }
            }
            ol.conversation { @for e in conversation { (message(e)) } }
        }
    }
}

fn activity(seq: u64, at: &str, a: &Activity) -> Markup {
    let body = match a {
        Activity::Progress { message, .. } => {
            html! { span.kind { "progress" } " " span.text { (message) } }
        }
        Activity::PlanUpdated { steps } => {
            html! { span.kind { "plan updated" } " " (steps.len()) " steps" }
        }
        Activity::ExternalUrlUpdated { url } => {
            html! { span.kind { "external URL" } " " span.mono { (url) } }
        }
        Activity::AwaitingInput { question, .. } => {
            html! { span.kind { "awaiting input" } " " span.text { (question) } }
        }
        Activity::Completed { summary } => {
            html! { span.kind { "completed" } " " span.text { (summary) } }
        }
        Activity::Failed { error } => html! { span.kind { "failed" } " " span.text { (error) } },
        Activity::PolicyDecision { record } => decision(record),
    };
    let class = match a {
        Activity::PolicyDecision { record } => {
            format!("activity decision result-{}", record.result.as_str())
        }
        other => format!("activity {}", other.kind()),
    };
    // A decision carries its own time.
    let stamp = !matches!(a, Activity::PolicyDecision { .. });
    html! { li class=(class) data-seq=(seq) { @if stamp { span.mono.at { (at) } " " } (body) } }
}

/// One policy decision, whole: what a reviewer reads.
pub(crate) fn decision(r: &DecisionRecord) -> Markup {
    let kind = r.action.get("kind").and_then(|v| v.as_str()).unwrap_or("?");
    let tool = r.action.get("tool").and_then(|v| v.as_str());
    let action = serde_json::to_string_pretty(&r.action).unwrap_or_default();
    html! {
        div.decision {
            span.mono.at { (r.timestamp) } " "
            (badge("result", r.result.as_str())) " "
            span.kind.mono { (kind) }
            @if let Some(t) = tool { " by " span.tool { (t) } }
            @if let Some(by) = &r.approved_by { " · approved by " span.approver { (by) } }
            @if r.cache_hit { " · cached" }
            ul.reasons { @for reason in &r.reasons { li { (reason) } } }
            details {
                summary { "Action as the policy saw it" }
                pre.action { (action) }
            }
            small.revision.mono title=(r.policy_revision) { "policy " (r.policy_revision.get(..19).unwrap_or(&r.policy_revision)) " · " (r.eval_ns / 1000) " µs · " (r.decision_id) }
            @if let Some(d) = &r.degraded { p.err { "degraded: " (d) } }
        }
    }
}

fn message(e: &ConversationEntry) -> Markup {
    match &e.message {
        Message::User { content, .. } => {
            html! { li.user { span.role { "user" } pre { (content) } } }
        }
        Message::Assistant {
            content,
            tool_calls,
        } => html! {
            li.assistant {
                span.role { "assistant" }
                @if !content.is_empty() { pre { (content) } }
                @for c in tool_calls { p.call { "calls " span.tool { (c.name) } " " code { (c.arguments.to_string()) } } }
            }
        },
        Message::Tool {
            name,
            content,
            is_error,
            ..
        } => html! {
            li.tool_result.error[*is_error] { span.role { "tool " (name) } pre { (content) } }
        },
    }
}

/// The approval form's fields.
#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    message: String,
    question_id: Option<String>,
}

/// `POST /ui/sessions/{id}/answer`: approve, refuse or answer, recorded
/// under the signed-in person.
pub(crate) async fn answer(
    State(store): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    f: Result<Form<AnswerForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = f else {
        return layout::error_page(
            StatusCode::BAD_REQUEST,
            "Malformed form",
            "The answer form was malformed; reload the session's page and answer again.",
        );
    };
    if let Err(r) =
        check_same_origin(&headers, store.public_url()).and_then(|()| viewer.check_csrf(&f.csrf))
    {
        return r.into_response();
    }
    let approve = match f.decision.as_str() {
        "approve" => Some(true),
        "refuse" => Some(false),
        "answer" => None,
        other => {
            return layout::error_page(
                StatusCode::BAD_REQUEST,
                "Unknown decision",
                &format!("decision {other:?} is none of approve, refuse, answer"),
            )
        }
    };
    let a = Answer {
        by: viewer.user.clone(),
        approve,
        message: f.message,
        question_id: f.question_id.filter(|q| !q.is_empty()),
    };
    let (s, user, sid) = (store.clone(), viewer.user.clone(), id.clone());
    let r = tokio::task::spawn_blocking(move || {
        s.check_session_access(&sid, Some(&user), None)?;
        s.answer(&sid, a)
    })
    .await;
    match r {
        Ok(Ok(_)) => Redirect::to(&format!("/ui/sessions/{id}")).into_response(),
        Ok(Err(e)) => layout::store_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
