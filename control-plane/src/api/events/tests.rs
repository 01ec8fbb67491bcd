//! The event stream over real HTTP on loopback, against a store on a real
//! SQLite file: a session progresses while clients read, disconnect and
//! reconnect; what they read together is compared to the session view.

use super::StreamSettings;
use crate::store::{SessionView, Store};
use protocol::activity::{Activity, ActivityEntry};
use protocol::platform::{Claim, Finish, PostActivity, RegisterWorker, Worker};
use protocol::session::Session;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One event as a client parses it from the stream.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: String,
}

/// A Server-Sent Events parser after the WHATWG rules: lines end in LF,
/// CRLF or CR; a blank line dispatches; `:` starts a comment; `field:
/// value` drops one leading space; `data` lines join with LF.
#[derive(Default)]
struct Parser {
    buf: String,
    id: Option<String>,
    event: String,
    data: Vec<String>,
    comments: Vec<String>,
}

impl Parser {
    /// Feeds text; returns the events it completes.
    fn feed(&mut self, text: &str) -> Vec<SseEvent> {
        self.buf.push_str(text);
        let mut out = vec![];
        while let Some(i) = self.buf.find(['\r', '\n']) {
            // A CR at the very end may be the first half of a CRLF.
            if self.buf.as_bytes()[i] == b'\r' && i + 1 == self.buf.len() {
                break;
            }
            let line: String = self.buf[..i].to_string();
            let skip = if self.buf[i..].starts_with("\r\n") {
                2
            } else {
                1
            };
            self.buf.drain(..i + skip);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(SseEvent {
                        id: self.id.clone(),
                        event: if self.event.is_empty() {
                            "message".into()
                        } else {
                            std::mem::take(&mut self.event)
                        },
                        data: self.data.join("\n"),
                    });
                }
                self.data.clear();
                self.event.clear();
                continue;
            }
            if let Some(c) = line.strip_prefix(':') {
                self.comments
                    .push(c.strip_prefix(' ').unwrap_or(c).to_string());
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.id = Some(value.to_string()),
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[test]
fn the_parser_reads_multi_line_data_comments_and_any_line_end() {
    let mut p = Parser::default();
    let mut got = p.feed(": hello\r\nid: 7\nevent: state\ndata: {\"a\":\rdata:1}\r\n\r\n");
    got.extend(p.feed("data: x\n"));
    assert_eq!(got.len(), 1, "the second event is not finished");
    got.extend(p.feed("\n: keep-alive\n\n"));
    assert_eq!(
        got,
        vec![
            SseEvent {
                id: Some("7".into()),
                event: "state".into(),
                data: "{\"a\":\n1}".into()
            },
            SseEvent {
                id: Some("7".into()),
                event: "message".into(),
                data: "x".into()
            },
        ]
    );
    assert_eq!(p.comments, ["hello", "keep-alive"]);
}

/// A control plane serving a store on a file in a temporary directory.
struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    addr: SocketAddr,
    http: reqwest::Client,
    key: String,
    user: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn rig(settings: StreamSettings) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.db");
    let store = Arc::new(Store::open(&path, 3).unwrap());
    let key = store.add_api_key("reader", None).unwrap().key;
    let user = store
        .issue_tokens("alice", crate::auth::RUNNER_CLIENT)
        .unwrap()
        .access_token;
    let (listener, addr) = crate::bind("127.0.0.1:0").await.unwrap();
    let router = super::super::router_with(store.clone(), settings);
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Rig {
        _dir: dir,
        path,
        addr,
        http: reqwest::Client::new(),
        key,
        user,
        server,
    }
}

/// An open stream being read.
struct Stream {
    resp: reqwest::Response,
    parser: Parser,
    pending: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

impl Stream {
    /// The next event, `None` once the server closed the stream; panics
    /// after `wait` without either.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("an event or the end of the stream in time")
                .unwrap();
            match chunk {
                Some(b) => {
                    let text = std::str::from_utf8(&b).unwrap();
                    self.pending.extend(self.parser.feed(text));
                }
                None => self.ended = true,
            }
        }
    }

    /// Whether nothing arrives within `wait` (comments aside).
    async fn quiet_for(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while self.pending.is_empty() && !self.ended {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return true,
                Ok(c) => match c.unwrap() {
                    Some(b) => self
                        .pending
                        .extend(self.parser.feed(std::str::from_utf8(&b).unwrap())),
                    None => self.ended = true,
                },
            }
        }
        false
    }
}

const SOON: Duration = Duration::from_secs(5);

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> T {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    async fn queue(&self) -> Session {
        let new = crate::store::testing::new_session();
        self.post(&self.key, "/v1/sessions", &new).await
    }

    async fn claim(&self, session: &str) -> Claim {
        let reg = RegisterWorker {
            workspace: "w".into(),
            agent_profile: "p".into(),
            runtime: "r".into(),
            execution_mode: "cloud".into(),
            display_name: "r".into(),
            capabilities: vec![],
            concurrency: 1,
            policy_entries: vec![],
            custom_instructions: None,
            models: vec![],
        };
        let w: Worker = self.post(&self.user, "/v1/workers", &reg).await;
        let path = format!("/v1/workers/{}/sessions/{session}/claim", w.worker_id);
        self.post(&self.user, &path, &serde_json::json!({})).await
    }

    async fn activity(&self, c: &Claim, activity: Activity) -> ActivityEntry {
        let path = format!("/v1/sessions/{}/activities", c.session.id);
        let post = PostActivity {
            claim_id: c.claim_id.clone(),
            activity,
        };
        self.post(&self.user, &path, &post).await
    }

    async fn progress(&self, c: &Claim, message: &str) -> ActivityEntry {
        self.activity(
            c,
            Activity::Progress {
                message: message.into(),
                step: None,
            },
        )
        .await
    }

    async fn complete(&self, c: &Claim) -> Session {
        let path = format!("/v1/sessions/{}/complete", c.session.id);
        let f = Finish {
            claim_id: c.claim_id.clone(),
            message: "done".into(),
        };
        self.post(&self.user, &path, &f).await
    }

    async fn view(&self, session: &str) -> SessionView {
        self.http
            .get(self.url(&format!("/v1/sessions/{session}")))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET …/events` with `query` and an optional Last-Event-ID, by `token`.
    async fn get_events(
        &self,
        token: Option<&str>,
        session: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url(&format!("/v1/sessions/{session}/events{query}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.unwrap()
    }

    /// An open stream (asserting it opened as one).
    async fn stream(&self, session: &str, query: &str, last_event_id: Option<&str>) -> Stream {
        let resp = self
            .get_events(Some(&self.key), session, query, last_event_id)
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            resp,
            parser: Parser::default(),
            pending: Default::default(),
            ended: false,
        }
    }
}

/// Every event until `end`, which is checked and left out; the stream must
/// close right after it.
async fn until_end(s: &mut Stream) -> Vec<SseEvent> {
    let mut v = vec![];
    loop {
        let e = s.next(SOON).await.expect("an end event before the close");
        if e.event == "end" {
            assert!(s.next(SOON).await.is_none(), "the stream closes after end");
            return v;
        }
        v.push(e);
    }
}

/// What the session view says happened, as a stream would send it:
/// `(event, data)` of every activity and transition, in the stream's order
/// — which the view does not keep across the two lists, so this is checked
/// as two subsequences.
fn assert_is_the_view(events: &[SseEvent], view: &SessionView) {
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    let want: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, want, "ids are 1..=n, none missing, none twice");
    let data = |kind: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e.event == kind)
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    };
    let activities: Vec<Value> = view
        .activities
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .collect();
    let transitions: Vec<Value> = view
        .transitions
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    assert_eq!(data("activity"), activities);
    assert_eq!(data("state"), transitions);
    assert_eq!(
        events.len(),
        activities.len() + transitions.len(),
        "no other events: {events:?}"
    );
}

/// A reader follows the session as it is queued, claimed and worked on,
/// drops the connection mid-way, reconnects with the last id it saw and
/// reads exactly the rest, up to `end`. `?after=` and a fresh read agree.
#[tokio::test]
async fn reconnecting_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let rig = rig(StreamSettings::default()).await;
    let s = rig.queue().await;
    let id = s.id.to_string();
    let mut a = rig.stream(&id, "", None).await;
    let queued = a.next(SOON).await.unwrap();
    assert_eq!(
        (queued.event.as_str(), queued.id.as_deref()),
        ("state", Some("1"))
    );
    let c = rig.claim(&id).await;
    rig.progress(&c, "reading the code").await;
    let mut seen = vec![queued];
    for _ in 0..2 {
        seen.push(a.next(SOON).await.unwrap());
    }
    assert_eq!(seen[1].event, "state");
    assert_eq!(seen[2].event, "activity");
    let last = seen.last().unwrap().id.clone().unwrap();
    // The reader goes away; the session goes on without it.
    drop(a);
    rig.progress(&c, "a long message\nover two lines").await;
    rig.activity(
        &c,
        Activity::AwaitingInput {
            question: "go on?".into(),
            question_id: None,
        },
    )
    .await;
    rig.progress(&c, "going on").await;
    rig.complete(&c).await;

    let mut b = rig.stream(&id, "", Some(&last)).await;
    let rest = until_end(&mut b).await;
    assert_eq!(
        rest[0].id.as_deref(),
        Some("4"),
        "resumes right after {last}"
    );
    let all: Vec<SseEvent> = seen.iter().cloned().chain(rest.iter().cloned()).collect();
    let view = rig.view(&id).await;
    assert_eq!(view.session.state.as_str(), "complete");
    assert_is_the_view(&all, &view);
    // The order of one transaction: awaiting_input, then its activity.
    let kinds: Vec<String> = all
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(&e.data).unwrap();
            match e.event.as_str() {
                "state" => d["to"].as_str().unwrap().to_string(),
                _ => d["activity"]["type"].as_str().unwrap().to_string(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "queued",
            "active",
            "progress",
            "progress",
            "awaiting_input",
            "awaiting_input",
            "active",
            "progress",
            "complete"
        ]
    );

    // A fresh reader of the finished session: everything, then end.
    let mut fresh = rig.stream(&id, "", None).await;
    assert_eq!(until_end(&mut fresh).await, all);
    // `?after=` for clients that cannot set the header.
    let mut q = rig.stream(&id, "?after=6", None).await;
    assert_eq!(until_end(&mut q).await, all[6..]);
    // A reconnecting EventSource keeps its first URL and adds the header:
    // the header wins.
    let mut both = rig.stream(&id, "?after=2", Some("8")).await;
    assert_eq!(until_end(&mut both).await, all[8..]);
    // After the last event: only end.
    let mut none = rig.stream(&id, "", Some("9")).await;
    assert_eq!(until_end(&mut none).await, vec![]);
}

/// Events reach an open stream right after the write that made them (the
/// store's announcement), not at the next poll: the poll here is 30 s.
#[tokio::test]
async fn events_arrive_right_after_the_write() {
    let rig = rig(StreamSettings {
        fallback_poll: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let s = rig.queue().await;
    let id = s.id.to_string();
    let mut st = rig.stream(&id, "", None).await;
    assert_eq!(st.next(SOON).await.unwrap().id.as_deref(), Some("1"));
    let c = rig.claim(&id).await;
    assert_eq!(st.next(SOON).await.unwrap().id.as_deref(), Some("2"));
    // Caught up and waiting.
    assert!(st.quiet_for(Duration::from_millis(200)).await);
    for (n, message) in ["one", "two", "three"].iter().enumerate() {
        let entry = rig.progress(&c, message).await;
        let written = Instant::now();
        let e = st.next(SOON).await.unwrap();
        let took = written.elapsed();
        assert!(took < Duration::from_millis(500), "took {took:?}");
        assert_eq!(e.id, Some((n + 3).to_string()));
        let got: ActivityEntry = serde_json::from_str(&e.data).unwrap();
        assert_eq!(got, entry);
    }
    rig.complete(&c).await;
    let written = Instant::now();
    let done = st.next(SOON).await.unwrap();
    assert_eq!(done.event, "state");
    let end = st.next(SOON).await.unwrap();
    assert!(written.elapsed() < Duration::from_millis(500));
    assert_eq!(end.event, "end");
    let body: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"state": "complete", "last_event_id": 6})
    );
    assert!(st.next(SOON).await.is_none());
}

/// Another process writing to the same file announces nothing here: the
/// slow poll finds its events.
#[tokio::test]
async fn the_slow_poll_finds_what_another_process_wrote() {
    let rig = rig(StreamSettings {
        fallback_poll: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let s = rig.queue().await;
    let id = s.id.to_string();
    let mut st = rig.stream(&id, "", None).await;
    assert_eq!(st.next(SOON).await.unwrap().id.as_deref(), Some("1"));
    let other = Store::open(&rig.path, 3).unwrap();
    other.cancel(&id).unwrap();
    let e = st.next(SOON).await.unwrap();
    assert_eq!((e.event.as_str(), e.id.as_deref()), ("state", Some("2")));
    assert_eq!(st.next(SOON).await.unwrap().event, "end");
    assert!(st.next(SOON).await.is_none());
}

/// A quiet session's stream carries `: keep-alive` comments.
#[tokio::test]
async fn a_quiet_stream_is_kept_alive() {
    let rig = rig(StreamSettings {
        keep_alive: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let s = rig.queue().await;
    let mut st = rig.stream(s.id.as_ref(), "", None).await;
    assert_eq!(st.next(SOON).await.unwrap().id.as_deref(), Some("1"));
    assert!(st.quiet_for(Duration::from_millis(450)).await);
    let n = st
        .parser
        .comments
        .iter()
        .filter(|c| *c == "keep-alive")
        .count();
    assert!(n >= 2, "{:?}", st.parser.comments);
    assert_eq!(st.parser.comments.len(), n, "no other comments");
}

async fn error_of(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"]["type"].as_str().unwrap().to_string(),
        body["error"]["message"].as_str().unwrap().to_string(),
    )
}

/// Refusals are JSON a person can act on, and name what was wrong.
#[tokio::test]
async fn bad_requests_are_refused_with_json() {
    let rig = rig(StreamSettings::default()).await;
    let s = rig.queue().await;
    let id = s.id.to_string();
    let key = Some(rig.key.as_str());

    let (st, kind, _) = error_of(rig.get_events(None, &id, "", None).await).await;
    assert_eq!((st, kind.as_str()), (401, "unauthorized"));
    let (st, kind, _) = error_of(rig.get_events(Some("cpat_nope"), &id, "", None).await).await;
    assert_eq!((st, kind.as_str()), (401, "unauthorized"));

    let (st, kind, m) = error_of(rig.get_events(key, "ses_nope", "", None).await).await;
    assert_eq!((st, kind.as_str()), (404, "not_found"), "{m}");
    assert!(m.contains("ses_nope"), "{m}");

    let (st, kind, m) = error_of(rig.get_events(key, &id, "", Some("abc")).await).await;
    assert_eq!((st, kind.as_str()), (400, "invalid_request"));
    assert!(m.contains("Last-Event-ID") && m.contains("abc"), "{m}");
    let (st, _, m) = error_of(rig.get_events(key, &id, "", Some("-1")).await).await;
    assert_eq!(st, 400, "{m}");
    let (st, _, m) = error_of(rig.get_events(key, &id, "?after=x", None).await).await;
    assert_eq!(st, 400);
    assert!(m.contains("after") && m.contains("\"x\""), "{m}");
    let (st, _, m) = error_of(rig.get_events(key, &id, "", Some("2")).await).await;
    assert_eq!(st, 400);
    assert!(m.contains("beyond the last event (1)"), "{m}");
    let (st, _, m) = error_of(rig.get_events(key, &id, "?since=1", None).await).await;
    assert_eq!(st, 400);
    assert!(m.contains("since"), "{m}");

    // A user token reads it too, as it reads the session.
    let r = rig.get_events(Some(&rig.user), &id, "", None).await;
    assert_eq!(r.status(), 200);
    // An empty Last-Event-ID is no Last-Event-ID (what the spec's
    // reconnection sends when no event had an id).
    let mut st = rig.stream(&id, "", Some("")).await;
    assert_eq!(st.next(SOON).await.unwrap().id.as_deref(), Some("1"));
}

/// Open streams are capped per session and per caller; a closed stream
/// gives its place back.
#[tokio::test]
async fn streams_are_capped_and_places_come_back() {
    let rig = rig(StreamSettings {
        keep_alive: Duration::from_millis(50),
        per_session: 2,
        per_caller: 3,
        ..Default::default()
    })
    .await;
    let one = rig.queue().await.id.to_string();
    let two = rig.queue().await.id.to_string();
    let a = rig.stream(&one, "", None).await;
    let _b = rig.stream(&one, "", None).await;
    let (st, kind, m) = error_of(rig.get_events(Some(&rig.key), &one, "", None).await).await;
    assert_eq!((st, kind.as_str()), (429, "too_many_streams"));
    assert!(m.contains("this session has 2"), "{m}");
    // Another caller is held by the session's limit too.
    let r = rig.get_events(Some(&rig.user), &one, "", None).await;
    assert_eq!(r.status(), 429);
    let _c = rig.stream(&two, "", None).await;
    let (st, _, m) = error_of(rig.get_events(Some(&rig.key), &two, "", None).await).await;
    assert_eq!(st, 429);
    assert!(m.contains("this caller has 3"), "{m}");
    // A stream of another caller is not held by the key's limit.
    let r = rig.get_events(Some(&rig.user), &two, "", None).await;
    assert_eq!(r.status(), 200);
    drop(r);

    drop(a);
    // The server notices at its next write (a keep-alive) and frees it.
    let deadline = Instant::now() + SOON;
    loop {
        let r = rig.get_events(Some(&rig.key), &one, "", None).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
