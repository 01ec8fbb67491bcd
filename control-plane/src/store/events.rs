//! A session's events: its activities and its state changes as one stream,
//! numbered 1, 2, 3, … per session in the order they were written
//! (`GET /v1/sessions/{id}/events`).
//!
//! The number is taken when the row is written ([`next_event`]), in the
//! transaction that writes it, from one counter per session that both
//! tables share. Every write is a `BEGIN IMMEDIATE` transaction, so the
//! numbers follow the commit order exactly, also with several processes on
//! one file, and a number never changes once given: a client that has seen
//! event `n` resumes with "everything after `n`" and misses nothing, and
//! sees nothing twice.

use super::sessions::{load_session, Transition};
use super::{rfc3339, Store, StoreError, Tx};
use protocol::activity::{Activity, ActivityEntry};
use protocol::session::SessionState;
use rusqlite::params;

/// One event of a session's stream.
#[derive(Debug, Clone)]
pub(crate) enum SessionEvent {
    /// An activity, as the session view shows it.
    Activity(ActivityEntry),
    /// A state change, as the session view shows it.
    State(Transition),
}

/// Events of a session after a given number, and where the session is now.
#[derive(Debug, Clone)]
pub(crate) struct EventPage {
    /// `(number, event)`, oldest first, consecutive.
    pub(crate) events: Vec<(u64, SessionEvent)>,
    /// The session's last event number when this page was read (0: none).
    pub(crate) last: u64,
    /// The session's state when this page was read.
    pub(crate) state: SessionState,
}

/// The number the next event of `session` takes (call it in the
/// transaction that writes the event).
pub(super) fn next_event(tx: &Tx<'_>, session: &str) -> Result<i64, StoreError> {
    tx.session_changed(session);
    Ok(tx.sql.query_row(
        "SELECT COALESCE(MAX(m), 0) + 1 FROM (SELECT MAX(event) AS m FROM activities WHERE session_id = ?1 UNION ALL SELECT MAX(event) FROM transitions WHERE session_id = ?1)",
        params![session],
        |r| r.get(0),
    )?)
}

impl Store {
    /// At most `limit` events of `session` numbered after `after`, with the
    /// session's last number and state read in the same transaction (so a
    /// terminal state with `last` reached means nothing more is coming,
    /// unless a follow-up queues it again).
    pub(crate) fn session_events(
        &self,
        session: &str,
        after: u64,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.tx(|tx| {
            let state = load_session(tx, session)?.state;
            let last: i64 = tx.sql.query_row(
                "SELECT COALESCE(MAX(m), 0) FROM (SELECT MAX(event) AS m FROM activities WHERE session_id = ?1 UNION ALL SELECT MAX(event) FROM transitions WHERE session_id = ?1)",
                params![session],
                |r| r.get(0),
            )?;
            let mut events = Vec::new();
            let mut st = tx.sql.prepare(
                "SELECT event, seq, at, claim_id, body FROM activities WHERE session_id = ?1 AND event > ?2 ORDER BY event LIMIT ?3",
            )?;
            let rows = st.query_map(params![session, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            for row in rows {
                let (n, seq, at, claim_id, body) = row?;
                let activity: Activity =
                    serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                events.push((
                    n as u64,
                    SessionEvent::Activity(ActivityEntry {
                        seq: seq as u64,
                        at: rfc3339(at),
                        claim_id: claim_id.into(),
                        activity,
                    }),
                ));
            }
            let mut st = tx.sql.prepare(
                "SELECT event, from_state, to_state, at, reason FROM transitions WHERE session_id = ?1 AND event > ?2 ORDER BY event LIMIT ?3",
            )?;
            let rows = st.query_map(params![session, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Transition {
                        from: r.get(1)?,
                        to: r.get(2)?,
                        at: rfc3339(r.get(3)?),
                        reason: r.get(4)?,
                    },
                ))
            })?;
            for row in rows {
                let (n, t) = row?;
                events.push((n as u64, SessionEvent::State(t)));
            }
            // Each list holds its first `limit` after `after`, so the first
            // `limit` of both together are exactly the next `limit` events.
            events.sort_by_key(|(n, _)| *n);
            events.truncate(limit as usize);
            Ok(EventPage {
                events,
                last: last as u64,
                state,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{claimed, store};
    use super::*;
    use protocol::platform::{Finish, PostActivity};

    fn progress(store: &Store, session: &str, claim: &protocol::ids::ClaimId, m: &str) {
        store
            .post_activity(
                session,
                PostActivity {
                    claim_id: claim.clone(),
                    activity: Activity::Progress {
                        message: m.into(),
                        step: None,
                    },
                },
            )
            .unwrap();
    }

    /// The events are the view's activities and transitions, numbered
    /// 1..=n in the order they were written, and a page after `n` holds
    /// exactly the rest.
    #[test]
    fn events_are_numbered_in_write_order_and_resume_exactly() {
        let (_d, store) = store();
        let (_w, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        progress(&store, &id, &c.claim_id, "one");
        progress(&store, &id, &c.claim_id, "two");
        store
            .finish(
                &id,
                crate::store::Outcome::Complete,
                Finish {
                    claim_id: c.claim_id.clone(),
                    message: "done".into(),
                },
            )
            .unwrap();
        let all = store.session_events(&id, 0, 100).unwrap();
        assert_eq!(all.last, 5);
        assert_eq!(all.state, SessionState::Complete);
        let numbers: Vec<u64> = all.events.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
        let kinds: Vec<String> = all
            .events
            .iter()
            .map(|(_, e)| match e {
                SessionEvent::State(t) => format!("{}>{}", t.from, t.to),
                SessionEvent::Activity(a) => format!("a{}", a.seq),
            })
            .collect();
        assert_eq!(
            kinds,
            ["new>queued", "queued>active", "a1", "a2", "active>complete"]
        );
        let rest = store.session_events(&id, 3, 100).unwrap();
        let numbers: Vec<u64> = rest.events.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![4, 5]);
        let page = store.session_events(&id, 1, 2).unwrap();
        let numbers: Vec<u64> = page.events.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![2, 3], "a page is the next `limit` events");
        assert!(store.session_events(&id, 5, 100).unwrap().events.is_empty());
    }

    /// A transition written with an activity (awaiting input) comes first,
    /// as it was written.
    #[test]
    fn a_transition_and_its_activity_keep_their_order() {
        let (_d, store) = store();
        let (_w, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        store
            .post_activity(
                &id,
                PostActivity {
                    claim_id: c.claim_id.clone(),
                    activity: Activity::AwaitingInput {
                        question: "ok?".into(),
                        question_id: None,
                    },
                },
            )
            .unwrap();
        let page = store.session_events(&id, 2, 100).unwrap();
        assert!(matches!(&page.events[0], (3, SessionEvent::State(t)) if t.to == "awaiting_input"));
        assert!(matches!(&page.events[1], (4, SessionEvent::Activity(a)) if a.seq == 1));
    }

    /// A file written before event numbers existed gets them when opened:
    /// per session, in time order, and new events continue after them.
    #[test]
    fn an_older_file_is_numbered_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE activities (session_id TEXT NOT NULL, seq INTEGER NOT NULL, claim_id TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (session_id, seq));
                 CREATE TABLE transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL);
                 INSERT INTO transitions (session_id, from_state, to_state, at, reason) VALUES ('s', 'new', 'queued', 10, 'q'), ('s', 'queued', 'active', 20, 'c'), ('t', 'new', 'queued', 15, 'q'), ('s', 'active', 'complete', 40, 'done');
                 INSERT INTO activities VALUES ('s', 1, 'clm', 30, '{}'), ('s', 2, 'clm', 40, '{}');",
            )
            .unwrap();
        }
        drop(Store::open(&path, 2).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        let order: Vec<(String, i64)> = c
            .prepare("SELECT 't' || id, event FROM transitions WHERE session_id = 's' UNION ALL SELECT 'a' || seq, event FROM activities WHERE session_id = 's' ORDER BY 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(String, i64)> = [("t1", 1), ("t2", 2), ("a1", 3), ("t4", 4), ("a2", 5)]
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        assert_eq!(order, want, "same millisecond: the transition first");
        let t: i64 = c
            .query_row(
                "SELECT event FROM transitions WHERE session_id = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(t, 1, "numbers are per session");
    }
}
