//! What people send to a running or finished session — answers to a
//! question, follow-ups — kept until the worker that holds the claim takes
//! and acknowledges each one (so none is lost or delivered twice).

use super::attachments;
use super::claims::valid_claim;
use super::limits::{check_len, check_name};
use super::sessions::{load_session, set_state};
use super::{now_ms, ConflictKind, Missing, Store, StoreError, Tx};
use crate::transitions::{next, Event};
use protocol::activity::Activity;
use protocol::conversation::{
    Answer, FollowUp, HumanInput, PendingInput, QueuedFollowUp, TakeInput, TakenInput,
};
use protocol::session::{Session, SessionState};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// A person answers a session that is awaiting input; it is active
    /// again and its worker takes the answer.
    pub(crate) fn answer(&self, session: &str, a: Answer) -> Result<Session, StoreError> {
        check_name("by", &a.by)?;
        check_len("message", &a.message, 16 * 1024)?;
        let now = now_ms();
        let body =
            serde_json::to_string(&HumanInput::Answer(a.clone())).map_err(StoreError::corrupt)?;
        self.tx(|tx| {
            let s = load_session(tx, session)?;
            if s.state != SessionState::AwaitingInput {
                return Err(StoreError::conflict(ConflictKind::Transition,
                    format!(
                        "session {session} is {}, not awaiting_input: there is nothing to answer",
                        s.state.as_str()
                    ),
                ));
            }
            // The answer must name the question now asked.
            let last: Option<String> = tx
                .sql.query_row(
                    "SELECT body FROM activities WHERE session_id = ?1 AND body LIKE '{\"type\":\"awaiting_input\"%' ORDER BY seq DESC LIMIT 1",
                    params![session],
                    |r| r.get(0),
                )
                .optional()?;
            let asked = last
                .and_then(|b| serde_json::from_str::<Activity>(&b).ok())
                .and_then(|a| match a {
                    Activity::AwaitingInput { question_id, .. } => question_id,
                    _ => None,
                });
            if let Some(asked) = asked {
                match &a.question_id {
                    None => return Err(StoreError::invalid(format!("question_id is missing: answer question {asked} (the latest awaiting_input activity)"))),
                    Some(q) if q != &asked => {
                        return Err(StoreError::conflict(ConflictKind::StaleQuestion, format!("question {q} is not the one asked now ({asked}); read the session's latest awaiting_input activity")))
                    }
                    Some(_) => {}
                }
            }
            let reason = format!("answered by {}", a.by);
            add_input(tx, &s, Event::Resume, &reason, &body, now)?;
            load_session(tx, session)
        })
    }

    /// A person sends a follow-up to a finished (complete, error or
    /// cancelled) session: it is queued again, with a fresh attempt count,
    /// and the worker that claims it resumes the conversation with this
    /// message.
    pub(crate) fn follow_up(&self, session: &str, f: FollowUp) -> Result<Session, StoreError> {
        check_name("by", &f.by)?;
        check_len("message", &f.message, 64 * 1024)?;
        if f.message.trim().is_empty() {
            return Err(StoreError::invalid("message is empty; say what to do next"));
        }
        let images = attachments::prepare("images", &f.images)?;
        let now = now_ms();
        self.tx(|tx| {
            let s = load_session(tx, session)?;
            follow_up_in(tx, &s, &f.by, f.message, &images, now)?;
            load_session(tx, session)
        })
    }

    /// The oldest input not yet acknowledged, under a valid claim (the
    /// same one until it is acknowledged).
    pub(crate) fn next_input(&self, session: &str, t: TakeInput) -> Result<TakenInput, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &t.claim_id, now)?;
            let row: Option<(i64, String)> = tx
                .sql.query_row(
                    "SELECT id, body FROM inputs WHERE session_id = ?1 AND taken_at IS NULL AND id > ?2 ORDER BY id LIMIT 1",
                    params![session, t.after.unwrap_or(0) as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, body)) = row else {
                return Ok(TakenInput { input: None });
            };
            Ok(TakenInput {
                input: Some(PendingInput {
                    id: id as u64,
                    input: serde_json::from_str(&body).map_err(StoreError::corrupt)?,
                }),
            })
        })
    }

    /// Acknowledges an input (idempotent), under a valid claim.
    pub(crate) fn ack_input(
        &self,
        session: &str,
        input: u64,
        t: TakeInput,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &t.claim_id, now)?;
            let n = tx.sql.execute(
                "UPDATE inputs SET taken_at = COALESCE(taken_at, ?3) WHERE id = ?1 AND session_id = ?2",
                params![input as i64, session, now],
            )?;
            if n == 0 {
                return Err(StoreError::not_found(Missing::Input, format!("session {session} has no input {input}")));
            }
            Ok(())
        })
    }
}

/// A person's input: the state change it causes, and the input kept for
/// the worker to take.
/// Sends a checked follow-up to session `s` inside `tx`: the session is
/// queued again with its attempts reset and its outcome cleared.
pub(super) fn follow_up_in(
    tx: &Tx<'_>,
    s: &Session,
    by: &str,
    message: String,
    images: &[attachments::NewAttachment],
    now: i64,
) -> Result<(), StoreError> {
    if s.agent.model == "script" {
        return Err(StoreError::conflict(ConflictKind::Transition,
            "a scripted session takes no follow-up (it has no conversation to resume); queue a new session",
        ));
    }
    super::agent_configs::check_still_runnable(tx, s)?;
    let body = serde_json::to_string(&HumanInput::FollowUp(QueuedFollowUp {
        by: by.to_string(),
        message,
        images: attachments::references(images),
    }))
    .map_err(StoreError::corrupt)?;
    let reason = format!("follow-up from {by}");
    add_input(tx, s, Event::FollowUp, &reason, &body, now)?;
    attachments::insert(tx, s.id.as_str(), images, now)?;
    tx.sql.execute(
        "UPDATE sessions SET attempt = 1, outcome = NULL WHERE id = ?1",
        params![s.id.as_str()],
    )?;
    Ok(())
}

fn add_input(
    tx: &Tx<'_>,
    s: &Session,
    event: Event,
    reason: &str,
    body: &str,
    now: i64,
) -> Result<(), StoreError> {
    let to = next(s.state, event)?;
    set_state(tx, &s.id, s.state, to, now, reason)?;
    tx.sql.execute(
        "INSERT INTO inputs (session_id, at, body) VALUES (?1, ?2, ?3)",
        params![s.id.as_str(), now, body],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{claimed, store};
    use super::*;
    use protocol::platform::PostActivity;

    /// A claimed session asked a question, and answered.
    fn answered(store: &Store) -> (String, String) {
        let (_, c) = claimed(store, 60);
        store
            .post_activity(
                &c.session.id,
                PostActivity {
                    claim_id: c.claim_id.clone(),
                    activity: Activity::AwaitingInput {
                        question: "go on?".into(),
                        question_id: Some("q1".into()),
                    },
                },
            )
            .unwrap();
        let answer = Answer {
            by: "ann".into(),
            approve: Some(true),
            message: "yes".into(),
            question_id: Some("q1".into()),
        };
        assert_eq!(
            store.answer(&c.session.id, answer).unwrap().state,
            SessionState::Active
        );
        (c.session.id.to_string(), c.claim_id.to_string())
    }

    fn take(store: &Store, session: &str, claim: &str) -> Option<PendingInput> {
        store
            .next_input(
                session,
                TakeInput {
                    claim_id: claim.into(),
                    after: None,
                },
            )
            .unwrap()
            .input
    }

    #[test]
    fn inputs_are_delivered_once() {
        let (_d, store) = store();
        let (session, claim) = answered(&store);
        let first = take(&store, &session, &claim).expect("the answer is waiting");
        assert!(matches!(&first.input, HumanInput::Answer(a) if a.message == "yes"));
        assert_eq!(
            take(&store, &session, &claim).map(|i| i.id),
            Some(first.id),
            "unacknowledged, it is offered again"
        );
        let ack = || {
            store.ack_input(
                &session,
                first.id,
                TakeInput {
                    claim_id: claim.clone().into(),
                    after: None,
                },
            )
        };
        ack().unwrap();
        ack().expect("acknowledging again is idempotent");
        assert_eq!(take(&store, &session, &claim), None);
    }

    #[test]
    fn a_stopped_session_takes_a_follow_up_and_runs_again_under_a_new_claim() {
        let (_d, store) = store();
        let (w, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        assert_eq!(store.cancel(&id).unwrap().state, SessionState::Cancelled);
        // Built from JSON: fields added to FollowUp later take their
        // defaults here.
        let f: FollowUp =
            serde_json::from_value(serde_json::json!({"by": "ann", "message": "go on"})).unwrap();
        assert_eq!(store.follow_up(&id, f).unwrap().state, SessionState::Queued);
        // The stopped run's claim stays void; a new claim takes the
        // follow-up.
        let old = store.next_input(
            &id,
            TakeInput {
                claim_id: c.claim_id.clone(),
                after: None,
            },
        );
        assert!(
            matches!(old, Err(StoreError::ClaimInvalid { .. })),
            "{old:?}"
        );
        let again = store.claim(&w.worker_id, &id, Some(60)).unwrap();
        assert_eq!(again.session.state, SessionState::Active);
        let input = take(&store, &id, &again.claim_id).expect("the follow-up is waiting");
        assert!(matches!(&input.input, HumanInput::FollowUp(f) if f.message == "go on"));
        // And it can be stopped again.
        assert_eq!(store.cancel(&id).unwrap().state, SessionState::Cancelled);
    }

    #[test]
    fn ack_of_unknown_input_is_not_found() {
        let (_d, store) = store();
        let (session, claim) = answered(&store);
        let e = store
            .ack_input(
                &session,
                999,
                TakeInput {
                    claim_id: claim.into(),
                    after: None,
                },
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NotFound {
                    what: Missing::Input,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn answer_to_a_stale_question_is_conflict() {
        let (_d, store) = store();
        let (_, c) = claimed(&store, 60);
        store
            .post_activity(
                &c.session.id,
                PostActivity {
                    claim_id: c.claim_id.clone(),
                    activity: Activity::AwaitingInput {
                        question: "?".into(),
                        question_id: Some("q2".into()),
                    },
                },
            )
            .unwrap();
        let e = store
            .answer(
                &c.session.id,
                Answer {
                    by: "ann".into(),
                    approve: None,
                    message: "".into(),
                    question_id: Some("q1".into()),
                },
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    kind: ConflictKind::StaleQuestion,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            store.get(&c.session.id).unwrap().session.state,
            SessionState::AwaitingInput
        );
    }
}
