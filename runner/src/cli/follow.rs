//! Following sessions live for `runner up`: one thread per session reads
//! its event stream (`GET /v1/sessions/{id}/events`) and hands each event
//! on as it arrives, in the session's order, until `event: end`. A broken
//! connection is resumed with `Last-Event-ID`, so nothing is shown twice
//! and nothing is missed; nothing reads whole sessions again and again.
//! A follower may be told to give up when the control plane stays out of
//! reach (`runner run --follow`, which says so in its exit code).

use crate::platform::{Platform, PlatformError};
use protocol::activity::{Activity, ActivityEntry};
use protocol::ids::SessionId;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Longest wait between reconnections (also while the control plane
/// refuses more streams with 429).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a follower reports.
#[derive(Debug)]
pub(super) enum Update {
    /// An event of the stream, with its number.
    Event {
        /// The session.
        session: SessionId,
        /// The stream's `id:` (1, 2, 3, … per session).
        id: u64,
        /// What happened.
        what: What,
    },
    /// The session is finished (`event: end`): nothing more comes.
    End {
        /// The session.
        session: SessionId,
    },
    /// The session cannot be followed any more (gone, or refused).
    Lost {
        /// The session.
        session: SessionId,
        /// Why.
        why: String,
    },
}

/// One event's content.
#[derive(Debug)]
pub(super) enum What {
    /// An activity.
    Activity(Activity),
    /// A state change.
    State {
        /// The state before.
        from: String,
        /// The state after.
        to: String,
    },
    /// An event this runner does not know how to read (a newer control
    /// plane); its name.
    Other(String),
}

/// Follows `session` on a thread of its own, sending what happens to `tx`
/// until the session ends, cannot be followed, or `tx`'s reader is gone.
/// With `give_up_after`, a control plane that gives no stream for that
/// long (unreachable, failing) ends the follow with [`Update::Lost`];
/// without it the follower retries for as long as its reader waits.
pub(super) fn spawn(
    platform: &Platform,
    session: SessionId,
    tx: Sender<Update>,
    give_up_after: Option<Duration>,
) {
    let platform = platform.clone();
    let name = format!("follow-{session}");
    let _ = std::thread::Builder::new()
        .name(name)
        .spawn(move || follow(&platform, session, &tx, give_up_after));
}

fn follow(
    platform: &Platform,
    session: SessionId,
    tx: &Sender<Update>,
    give_up_after: Option<Duration>,
) {
    let mut last: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    // Since when no stream could be opened (reset by each one opened).
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        match platform.session_events(&session, last.as_deref(), None) {
            // The body ended or broke (`Ok(None)`, `Err`): resume it.
            Ok(mut stream) => {
                failing_since = None;
                while let Ok(Some(ev)) = stream.next_event() {
                    backoff = Duration::from_millis(100);
                    if ev.event == "end" {
                        let _ = tx.send(Update::End { session });
                        return;
                    }
                    if ev.event == "error" {
                        break; // the stream ended with an error: resume it
                    }
                    let Some(id) = ev.id.as_deref().and_then(|i| i.parse::<u64>().ok()) else {
                        continue;
                    };
                    last = ev.id.clone();
                    let update = Update::Event {
                        session: session.clone(),
                        id,
                        what: what(&ev.event, &ev.data),
                    };
                    if tx.send(update).is_err() {
                        return;
                    }
                }
            }
            Err(PlatformError::Api {
                status, message, ..
            }) if matches!(status, 400 | 403 | 404 | 410) => {
                let _ = tx.send(Update::Lost {
                    session,
                    why: format!("the control plane answered {status}: {message}"),
                });
                return;
            }
            Err(PlatformError::AuthLost(why)) if platform.signed_out().is_some() => {
                let _ = tx.send(Update::Lost { session, why });
                return;
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                if give_up_after.is_some_and(|limit| since.elapsed() >= limit) {
                    let _ = tx.send(Update::Lost {
                        session,
                        why: format!("no event stream for {}s: {e}", since.elapsed().as_secs()),
                    });
                    return;
                }
                tracing::debug!("following {session}: {e}; retrying in {backoff:?}")
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One readable line per activity; denials marked (`runner up` and
/// `runner run --follow` print the same).
pub(super) fn line(a: &Activity) -> String {
    match a {
        Activity::PlanUpdated { steps } => format!("plan           {}", steps.join(" | ")),
        Activity::Progress { message, .. } => format!("progress       {message}"),
        Activity::PolicyDecision { record } => {
            let mark = match record.result {
                protocol::policy::DecisionResult::Allow => "allow",
                protocol::policy::DecisionResult::Deny => "DENY ✗",
                protocol::policy::DecisionResult::Ask => "ASK  ?",
            };
            let what = record
                .action
                .get("path")
                .or(record.action.get("command"))
                .or(record.action.get("host"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            format!(
                "decision       {mark:<7} {} {} ({}) — {}",
                record.action["kind"].as_str().unwrap_or(""),
                what,
                record.action["tool"].as_str().unwrap_or(""),
                record.reasons.join("; ")
            )
        }
        Activity::Completed { summary } => format!("completed      {summary}"),
        Activity::Failed { error } => format!("failed         {error}"),
        Activity::AwaitingInput { question, .. } => format!("awaiting input {question}"),
        Activity::ExternalUrlUpdated { url } => format!("external url   {url}"),
    }
}

/// An event's content from its name and data.
fn what(event: &str, data: &str) -> What {
    match event {
        "activity" => match serde_json::from_str::<ActivityEntry>(data) {
            Ok(e) => What::Activity(e.activity),
            Err(_) => What::Other(event.into()),
        },
        "state" => {
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
            What::State {
                from: s("from"),
                to: s("to"),
            }
        }
        other => What::Other(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_as_activities_and_state_changes() {
        let a = what(
            "activity",
            r#"{"seq":1,"at":"2026-01-01T00:00:00Z","claim_id":"clm_1","activity":{"type":"progress","message":"step 1","step":1}}"#,
        );
        assert!(
            matches!(&a, What::Activity(Activity::Progress { message, .. }) if message == "step 1"),
            "{a:?}"
        );
        let s = what(
            "state",
            r#"{"from":"queued","to":"active","at":"x","reason":"claimed by wrk_1"}"#,
        );
        assert!(
            matches!(&s, What::State { from, to } if from == "queued" && to == "active"),
            "{s:?}"
        );
        assert!(matches!(what("activity", "{}"), What::Other(_)));
        assert!(matches!(what("deleted", "{}"), What::Other(n) if n == "deleted"));
    }

    #[test]
    fn a_bounded_follower_gives_up_on_an_unreachable_control_plane() {
        // Nothing listens on port 1: every connection is refused at once.
        let platform = Platform::new("http://127.0.0.1:1").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(
            &platform,
            SessionId::from("ses_x"),
            tx,
            Some(Duration::from_millis(300)),
        );
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Update::Lost { why, .. }) => assert!(why.contains("no event stream"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Unbounded, it keeps trying.
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(&platform, SessionId::from("ses_y"), tx, None);
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
    }
}
