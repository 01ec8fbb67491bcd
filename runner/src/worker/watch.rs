//! A running session's watcher: it follows the session's event stream
//! (`GET /v1/sessions/{id}/events`) on its own thread, so the worker learns
//! within moments — not at its next call under the claim — that a person
//! stopped the session, or deleted it, and loses the claim at once (the
//! session's `Cancel` kills its sandbox; nothing more is posted).
//!
//! What counts: a `state` event to anything but active or awaiting_input
//! (checked against the claims the worker still holds, because the stream
//! starts with the session's whole history, earlier runs' ends included),
//! `end` (the session is finished on the control plane), `deleted`, and a
//! 404 or 410 (the session is gone). A broken connection is resumed with
//! `Last-Event-ID` after a short backoff, until the session ends locally.

use super::session::ClaimLoss;
use crate::platform::sse::SseEvent;
use crate::platform::{Platform, PlatformError};
use protocol::ids::{ClaimId, SessionId, WorkerId};
use protocol::platform::Claim;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The watcher of one session; [`Watcher::finish`] (or dropping it) tells
/// it the session ended locally. Its thread is not joined: it notices at
/// the stream's next event or keep-alive, and goes.
pub(super) struct Watcher {
    ended: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts following `claim`'s session; what it learns goes to `loss`.
    pub(super) fn start(platform: &Platform, claim: &Claim, loss: ClaimLoss) -> Watcher {
        Self::follow(
            platform,
            &claim.worker_id,
            &claim.session.id,
            &claim.claim_id,
            loss,
        )
    }

    fn follow(
        platform: &Platform,
        worker: &WorkerId,
        session: &SessionId,
        claim: &ClaimId,
        loss: ClaimLoss,
    ) -> Watcher {
        let ended = Arc::new(AtomicBool::new(false));
        let follow = Follow {
            platform: platform.clone(),
            worker: worker.clone(),
            session: session.clone(),
            claim: claim.clone(),
            loss,
            ended: ended.clone(),
        };
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new()
            .name(format!("watch-{session}"))
            .spawn(move || span.in_scope(|| follow.run()));
        if let Err(e) = spawned {
            // The lease keeper, the calls under the claim and the worker
            // loop's claims check still notice a stop, only later.
            tracing::warn!("cannot watch the events of {session}: {e}; a stop reaches it later");
        }
        Watcher { ended }
    }

    /// The session ended locally: what the stream says from now on is the
    /// worker's own doing.
    pub(super) fn finish(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What one event says about the claim.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Nothing about it.
    Nothing,
    /// The session left the running states — now, or in an earlier run:
    /// ask whether the claim still holds.
    Suspect(String),
    /// The session is finished or gone: the claim is void.
    Gone(String),
    /// The stream broke (`event: error`): reconnect.
    Broken(String),
}

fn judge(ev: &SseEvent) -> Seen {
    let data: serde_json::Value = serde_json::from_str(&ev.data).unwrap_or_default();
    let text = |k: &str| data[k].as_str().unwrap_or("?").to_string();
    match ev.event.as_str() {
        "state" => match data["to"].as_str() {
            Some("active" | "awaiting_input") => Seen::Nothing,
            _ => Seen::Suspect(format!(
                "the session went {} → {} ({})",
                text("from"),
                text("to"),
                text("reason")
            )),
        },
        "end" => Seen::Gone(format!(
            "the session is {} on the control plane",
            text("state")
        )),
        "deleted" => Seen::Gone("the session was deleted".into()),
        "error" if data["error"]["type"] == "not_found" => {
            Seen::Gone("the session no longer exists on the control plane".into())
        }
        "error" => Seen::Broken(
            data["error"]["message"]
                .as_str()
                .unwrap_or(&ev.data)
                .to_string(),
        ),
        _ => Seen::Nothing,
    }
}

/// One watcher's thread.
struct Follow {
    platform: Platform,
    worker: WorkerId,
    session: SessionId,
    claim: ClaimId,
    loss: ClaimLoss,
    ended: Arc<AtomicBool>,
}

impl Follow {
    fn over(&self) -> bool {
        self.ended.load(Ordering::SeqCst) || self.loss.is_lost()
    }

    fn run(self) {
        let mut last: Option<String> = None;
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        while !self.over() {
            match self
                .platform
                .session_events(&self.session, last.as_deref(), Some(&self.claim))
            {
                Ok(mut stream) => loop {
                    let ev = match stream.next_event() {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!("the event stream of {} broke: {e}", self.session);
                            break;
                        }
                    };
                    if self.over() {
                        return;
                    }
                    if ev.id.is_some() {
                        last = ev.id.clone();
                    }
                    backoff = Duration::from_millis(100);
                    match judge(&ev) {
                        Seen::Nothing => {}
                        Seen::Suspect(why) => {
                            if !self.still_held() && !self.ended.load(Ordering::SeqCst) {
                                return self.loss.lose(&why);
                            }
                        }
                        Seen::Gone(why) => return self.loss.lose(&why),
                        Seen::Broken(why) => {
                            tracing::debug!("the event stream of {} ended: {why}", self.session);
                            break;
                        }
                    }
                },
                Err(PlatformError::ClaimLost(why)) => {
                    if !self.ended.load(Ordering::SeqCst) {
                        self.loss.lose(&why);
                    }
                    return;
                }
                Err(PlatformError::Api {
                    status: 404 | 410, ..
                }) => {
                    if !self.ended.load(Ordering::SeqCst) {
                        self.loss
                            .lose("the session no longer exists on the control plane");
                    }
                    return;
                }
                // The numbering restarted (a restored database): read
                // from the first event again.
                Err(PlatformError::Api { status: 400, .. }) if last.is_some() => {
                    last = None;
                    continue;
                }
                Err(PlatformError::AuthLost(_)) if self.platform.signed_out().is_some() => {
                    return; // the worker loop releases everything
                }
                // Too many streams open for this user (the control plane's
                // limit per caller): the worker loop's claims check covers
                // this session until a place frees up.
                Err(PlatformError::Api { status: 429, .. }) => {
                    tracing::debug!("no event stream for {} yet (429)", self.session);
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(
                            "cannot follow the events of {} ({e}); retrying (its stop may reach it later)",
                            self.session
                        );
                        warned = true;
                    }
                }
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Whether the control plane still lists this claim as held (a failed
    /// check counts as held: the stream's next word, the lease keeper or
    /// the worker loop's own check decides then).
    fn still_held(&self) -> bool {
        for attempt in 0..3u32 {
            match self.platform.held_claims(&self.worker) {
                Ok(held) => return held.iter().any(|h| h.claim_id == self.claim),
                Err(e) => {
                    tracing::debug!("checking the claims of {} failed: {e}", self.worker);
                    std::thread::sleep(Duration::from_millis(50 << attempt));
                }
            }
        }
        true
    }

    fn sleep(&self, d: Duration) {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until && !self.over() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: Some("4".into()),
        }
    }

    #[test]
    fn leaving_the_running_states_is_suspect_and_the_ends_are_final() {
        let st = |to: &str| {
            judge(&ev(
                "state",
                &format!(
                    r#"{{"from":"active","to":"{to}","at":"t","reason":"cancelled by a person"}}"#
                ),
            ))
        };
        assert_eq!(st("active"), Seen::Nothing);
        assert_eq!(st("awaiting_input"), Seen::Nothing);
        for to in ["cancelled", "complete", "error", "queued", "stale"] {
            match st(to) {
                Seen::Suspect(why) => assert!(why.contains(to), "{why}"),
                other => panic!("{to}: {other:?}"),
            }
        }
        assert_eq!(
            judge(&ev("end", r#"{"state":"cancelled","last_event_id":9}"#)),
            Seen::Gone("the session is cancelled on the control plane".into())
        );
        assert!(matches!(judge(&ev("deleted", "{}")), Seen::Gone(_)));
        assert!(matches!(
            judge(&ev(
                "error",
                r#"{"error":{"type":"not_found","message":"no such session"}}"#
            )),
            Seen::Gone(_)
        ));
        assert_eq!(
            judge(&ev(
                "error",
                r#"{"error":{"type":"unavailable","message":"busy"}}"#
            )),
            Seen::Broken("busy".into())
        );
        assert_eq!(
            judge(&ev("activity", r#"{"seq":1,"activity":{}}"#)),
            Seen::Nothing
        );
    }

    /// A control plane on loopback that answers each request with what
    /// `answer` says for its request line: (status, content type, body).
    /// Bodies are close-delimited, as a stream's is.
    fn serve(answer: impl Fn(&str) -> (u16, &'static str, String) + Send + 'static) -> String {
        use std::io::{BufRead, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut h = String::new();
                while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                let (status, kind, body) = answer(first.trim());
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\nconnection: close\r\n\r\n{body}"
                );
            }
        });
        url
    }

    fn wait_lost(loss: &ClaimLoss, within: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            if loss.is_lost() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    const HISTORY: &str = "id: 1\nevent: state\ndata: {\"from\":\"new\",\"to\":\"queued\"}\n\nid: 2\nevent: state\ndata: {\"from\":\"queued\",\"to\":\"active\"}\n\nid: 3\nevent: state\ndata: {\"from\":\"active\",\"to\":\"cancelled\"}\n\nid: 4\nevent: state\ndata: {\"from\":\"cancelled\",\"to\":\"queued\"}\n\nid: 5\nevent: state\ndata: {\"from\":\"queued\",\"to\":\"active\"}\n\n";

    fn held(claims: &[&str]) -> String {
        serde_json::to_string(
            &claims
                .iter()
                .map(|c| serde_json::json!({"claimId": c, "session_id": "ses_1", "lease_expires_at": "2030-01-01T00:00:00Z"}))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn an_earlier_run_s_stop_in_the_history_is_not_this_claim_s_but_a_new_one_is() {
        // The stream replays a stopped and followed-up session's history
        // (its earlier run was cancelled), then breaks; the claim is held.
        let cancelled = Arc::new(AtomicBool::new(false));
        let c = cancelled.clone();
        let url = serve(move |line| {
            let now = c.load(Ordering::SeqCst);
            if line.starts_with("GET /v1/workers/wrk_1/claims") {
                return (
                    200,
                    "application/json",
                    held(if now { &[] } else { &["clm_2"] }),
                );
            }
            let body = if now {
                "id: 6\nevent: state\ndata: {\"from\":\"active\",\"to\":\"cancelled\"}\n\n"
                    .to_string()
            } else if line.contains("events") {
                HISTORY.to_string()
            } else {
                String::new()
            };
            (200, "text/event-stream", body)
        });
        let platform = Platform::new(&url).unwrap();
        let loss = ClaimLoss::new("ses_1".into(), crate::cancel::Cancel::default());
        let w = Watcher::follow(
            &platform,
            &"wrk_1".into(),
            &"ses_1".into(),
            &"clm_2".into(),
            loss.clone(),
        );
        assert!(
            !wait_lost(&loss, Duration::from_millis(600)),
            "an earlier run's stop is no news"
        );
        // Now a person stops this run: the reconnected stream says so and
        // the claims list no longer has it.
        cancelled.store(true, Ordering::SeqCst);
        assert!(
            wait_lost(&loss, Duration::from_secs(10)),
            "the stop is news"
        );
        assert!(loss.cancel().is_cancelled());
        drop(w);
    }

    #[test]
    fn a_session_that_is_gone_loses_the_claim_and_one_that_ended_here_does_not() {
        let url = serve(|_| {
            (
                404,
                "application/json",
                r#"{"error":{"type":"not_found","message":"no such session"}}"#.into(),
            )
        });
        let platform = Platform::new(&url).unwrap();
        let gone = ClaimLoss::new("ses_1".into(), crate::cancel::Cancel::default());
        let _w = Watcher::follow(
            &platform,
            &"wrk_1".into(),
            &"ses_1".into(),
            &"clm_1".into(),
            gone.clone(),
        );
        assert!(wait_lost(&gone, Duration::from_secs(10)));

        let url = serve(|_| {
            (
                200,
                "text/event-stream",
                "event: end\ndata: {\"state\":\"complete\"}\n\n".into(),
            )
        });
        let platform = Platform::new(&url).unwrap();
        let mine = ClaimLoss::new("ses_2".into(), crate::cancel::Cancel::default());
        let w = Watcher::follow(
            &platform,
            &"wrk_1".into(),
            &"ses_2".into(),
            &"clm_2".into(),
            mine.clone(),
        );
        w.finish();
        assert!(
            !wait_lost(&mine, Duration::from_millis(300)),
            "the worker's own end is no loss"
        );
    }
}
