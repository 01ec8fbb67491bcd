//! `GET /v1/sessions/{id}/events`: a session's activities and state
//! changes as Server-Sent Events, live, so that a client follows a session
//! without reading the whole of it again and again.
//!
//! Each event carries the session's event number as its `id:` (1, 2, 3, …,
//! in the order the store wrote them; see [`crate::store`]'s `events`), so
//! a client that reconnects with `Last-Event-ID: n` (or `?after=n`, for a
//! client that cannot set headers) gets exactly the events after `n`.
//!
//! A stream waits on the store's announcement of new events (sent after
//! the commit that wrote them), so an event reaches an open stream as soon
//! as it is committed, without a query per client per tick; a slow poll
//! ([`StreamSettings::fallback_poll`]) finds what no announcement reached
//! (another process writing to the same file). When the session is
//! terminal and everything was sent, the stream sends `event: end` and
//! closes.

use super::{who_name, Shared};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{EventPage, SessionEvent, StoreError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use protocol::platform::ErrorBody;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Events read from the store at once: a long session streams in pages,
/// never all in memory.
const PAGE: u32 = 200;

/// How event streams behave; the router holds one for all of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamSettings {
    /// Between keep-alive comments (`: keep-alive`), so that proxies and
    /// clients do not take a quiet session for a dead connection.
    pub(crate) keep_alive: Duration,
    /// How often a stream reads the store when nothing was announced:
    /// only for writes the announcements cannot reach.
    pub(crate) fallback_poll: Duration,
    /// Open streams of one session, at most (each holds a connection).
    pub(crate) per_session: usize,
    /// Open streams of one caller, at most.
    pub(crate) per_caller: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            keep_alive: Duration::from_secs(15),
            fallback_poll: Duration::from_secs(1),
            per_session: 32,
            per_caller: 16,
        }
    }
}

/// The open streams, counted per session and per caller, and the
/// settings they run with.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    settings: StreamSettings,
    open: Mutex<HashMap<String, usize>>,
}

impl Streams {
    /// Streams with these settings.
    pub(crate) fn new(settings: StreamSettings) -> Streams {
        Streams {
            settings,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more stream of `session` by `caller`, or the 429
    /// saying which limit it would pass.
    fn take(self: &Arc<Self>, session: &str, caller: &str) -> Result<Slot, ApiError> {
        // A worker's stream under its claim is not one of the session's
        // 32 (which anyone who may read the session could fill).
        let session_key = if caller.starts_with("claim ") {
            format!("claimed-session:{session}")
        } else {
            format!("session:{session}")
        };
        let keys = [session_key, format!("caller:{caller}")];
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let s = &self.settings;
        for (key, max, whose) in [
            (&keys[0], s.per_session, "this session"),
            (&keys[1], s.per_caller, "this caller"),
        ] {
            if open.get(key).copied().unwrap_or(0) >= max {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_streams",
                    format!("{whose} has {max} event streams open already, the most allowed; close one (or read GET /v1/sessions/{session} instead)"),
                ));
            }
        }
        for k in &keys {
            *open.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(Slot {
            streams: self.clone(),
            keys,
        })
    }
}

/// One open stream's place; given back when the stream ends or the client
/// goes away (the response body, and with it this, is dropped).
struct Slot {
    streams: Arc<Streams>,
    keys: [String; 2],
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(n) = open.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    open.remove(k);
                }
            }
        }
    }
}

/// Query of `GET /v1/sessions/{id}/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<String>,
    /// A worker's claim on this session: its stream counts against the
    /// claim, not against the caller's limit (one user's workers may run
    /// more sessions at once than the caller limit of streams).
    #[serde(rename = "claimId")]
    claim_id: Option<String>,
}

/// Where to resume: after the `Last-Event-ID` header if it has a value
/// (a reconnecting EventSource sends it, and it is newer than the URL's
/// query), else after `?after=`, else from the first event.
fn resume_after(headers: &HeaderMap, query: &EventsQuery) -> Result<(u64, &'static str), ApiError> {
    let bad = |name: &str, v: &str| {
        ApiError::invalid(format!(
            "{name} {v:?} is not an event id: send the number of an `id:` line this stream sent, or no {name} to read from the first event"
        ))
    };
    if let Some(h) = headers.get("last-event-id") {
        let v = h
            .to_str()
            .map_err(|_| {
                ApiError::invalid(
                    "Last-Event-ID is not text: send the number of an `id:` line this stream sent",
                )
            })?
            .trim();
        if !v.is_empty() {
            return v
                .parse()
                .map(|n| (n, "Last-Event-ID"))
                .map_err(|_| bad("Last-Event-ID", v));
        }
    }
    match query.after.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => v.parse().map(|n| (n, "after")).map_err(|_| bad("after", v)),
        _ => Ok((0, "after")),
    }
}

/// A session's activities and state changes as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/events",
    tag = "sessions",
    security(("user_token" = ["agent"]), ("api_key" = [])),
    params(
        ("session" = String, Path, description = "The session id (`ses_…`)."),
        ("after" = Option<u64>, Query, description = "Send only the events after this id (for clients that cannot set Last-Event-ID). Last-Event-ID, when sent, wins."),
        ("claimId" = Option<String>, Query, description = "A worker's active claim on this session: the stream then counts against that claim (one at a time) instead of the caller's limit, so a worker watches every session it runs. A claim that does not hold the session is a 409 `claim_invalid`."),
        ("Last-Event-ID" = Option<u64>, Header, description = "The id of the last event received: the stream resumes strictly after it (what an EventSource sends when it reconnects).")
    ),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`), in the order things happened: `event: activity` (data: an ActivityEntry, as in the session view) and `event: state` (data: a Transition, {from, to, at, reason}), each with `id:` — the session's event number, 1, 2, 3, …, the same on every connection. Comments `: keep-alive` every 15 s. Once the session is complete, error or cancelled and everything was sent: `event: end` (data: {\"state\", \"last_event_id\"}), and the stream closes; do not reconnect then (an EventSource must be closed on `end`).", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_request`: Last-Event-ID or `after` is not an event id of this session (not a number, or beyond its last event), or an unknown query parameter.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such session.", body = ErrorBody),
        (status = 409, description = "`claim_invalid`: `claimId` does not hold this session (released, expired, cancelled, or another session's).", body = ErrorBody),
        (status = 429, description = "`too_many_streams`: this session or this caller (or this claim) has as many streams open as allowed (32 per session, 16 per caller, 16 per claim); close one.", body = ErrorBody),
        super::CallerErrors
    )
)]
pub(crate) async fn session_events(
    State(store): State<Shared>,
    Caller(who): Caller,
    Extension(streams): Extension<Arc<Streams>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    stream(store, who, streams, id, &headers, q).await
}

/// The event stream of session `id` as `who` may read it: what
/// [`session_events`] answers, and what the web pages follow a session by
/// (signed in by their cookie instead of a bearer credential).
pub(crate) async fn stream(
    store: Shared,
    who: crate::auth::Principal,
    streams: Arc<Streams>,
    id: String,
    headers: &HeaderMap,
    q: EventsQuery,
) -> Result<Response, ApiError> {
    let (after, named) = resume_after(headers, &q)?;
    // Subscribed before the first read: whatever commits after that read
    // is announced to this receiver.
    let announced = store.session_events_written();
    // Who may read comes first: nothing of a session the caller may not
    // see (not even how many events it has) is told before.
    {
        let (s, session, user, claim) = (
            store.clone(),
            id.clone(),
            super::caller_user(&who),
            q.claim_id.clone(),
        );
        tokio::task::spawn_blocking(move || {
            s.check_session_access(&session, user.as_deref(), claim.as_deref())
        })
        .await
        .map_err(ApiError::internal)??;
    }
    let first = read(&store, &id, after).await?;
    if after > first.last {
        return Err(ApiError::invalid(format!(
            "{named} {after} is beyond the last event ({}) of session {id}: it is not an id this session's stream sent; reconnect without it to read from the first event",
            first.last
        )));
    }
    let caller = match &q.claim_id {
        Some(claim) => format!("claim {claim}"),
        None => stream_caller(&who),
    };
    let slot = streams.take(&id, &caller)?;
    let follow = Follow {
        store,
        id,
        after,
        announced,
        fallback_poll: streams.settings.fallback_poll,
        ready: VecDeque::new(),
        first: Some(first),
        caught_up: false,
        done: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(follow, Follow::next);
    let sse = Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(streams.settings.keep_alive)
            .text("keep-alive"),
    );
    // Proxies that buffer responses (nginx) would hold the events back.
    let no_buffering = (
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(([no_buffering], sse).into_response())
}

/// Whose limit of streams a caller's stream counts against: a user, or an
/// API key by its id (two keys of the same name are two callers).
fn stream_caller(who: &crate::auth::Principal) -> String {
    match who {
        crate::auth::Principal::ApiKey { id, .. } => format!("key {id}"),
        // The web pages' streams (one per open session tab) count apart
        // from the person's API clients.
        crate::auth::Principal::User { user, client_id }
            if client_id == super::web::STREAM_CLIENT =>
        {
            format!("web {user}")
        }
        other => who_name(other),
    }
}

/// The events of `id` after `after`, read on a blocking thread.
async fn read(store: &Shared, id: &str, after: u64) -> Result<EventPage, ApiError> {
    let (s, id) = (store.clone(), id.to_string());
    tokio::task::spawn_blocking(move || s.session_events(&id, after, PAGE))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// One stream's progress through its session.
struct Follow {
    store: Shared,
    id: String,
    /// The last event sent (or the one the client resumed after).
    after: u64,
    announced: Receiver<Arc<str>>,
    fallback_poll: Duration,
    /// Events read, not sent yet.
    ready: VecDeque<Event>,
    /// The page the handler read (sent before anything else is read).
    first: Option<EventPage>,
    /// Whether the last read reached the session's last event.
    caught_up: bool,
    /// Whether `end` (or an error) is queued and nothing follows it.
    done: bool,
    _slot: Slot,
}

impl Follow {
    /// The next event to send, or `None` when the stream is over.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Follow)> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some((Ok(e), self));
            }
            if self.done {
                return None;
            }
            if self.caught_up {
                self.wait().await;
            }
            let page = match self.first.take() {
                Some(p) => p,
                None => match read(&self.store, &self.id, self.after).await {
                    Ok(p) => p,
                    Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                        // Busy: try again at the next wake-up.
                        self.caught_up = true;
                        continue;
                    }
                    Err(e) => {
                        self.ready.push_back(error_event(e));
                        self.done = true;
                        continue;
                    }
                },
            };
            for (n, ev) in page.events {
                self.after = n;
                self.ready.push_back(sse_event(n, ev));
            }
            self.caught_up = self.after >= page.last;
            if self.caught_up && page.state.is_terminal() {
                let end =
                    serde_json::json!({"state": page.state.as_str(), "last_event_id": self.after});
                self.ready
                    .push_back(Event::default().event("end").data(end.to_string()));
                self.done = true;
            }
        }
    }

    /// Until this session's next announcement, a lagging receiver (it may
    /// have missed one), or the fallback poll's time, whichever is first.
    async fn wait(&mut self) {
        let deadline = tokio::time::sleep(self.fallback_poll);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = self.announced.recv() => match r {
                    Ok(s) if *s == *self.id => return,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => return deadline.await,
                },
                () = &mut deadline => return,
            }
        }
    }
}

/// An event as the stream sends it.
fn sse_event(n: u64, ev: SessionEvent) -> Event {
    let (name, data) = match ev {
        SessionEvent::Activity(a) => ("activity", serde_json::to_string(&a)),
        SessionEvent::State(t) => ("state", serde_json::to_string(&t)),
    };
    match data {
        Ok(d) => Event::default().id(n.to_string()).event(name).data(d),
        Err(e) => error_event(ApiError::internal(StoreError::corrupt(e))),
    }
}

/// A failure after the stream started: `event: error` with the error body
/// any other route would answer; the stream ends after it (reconnect with
/// Last-Event-ID to go on).
fn error_event(e: ApiError) -> Event {
    let body = serde_json::json!({"error": {"type": e.kind, "message": e.message}});
    Event::default().event("error").data(body.to_string())
}

#[cfg(test)]
mod tests;
