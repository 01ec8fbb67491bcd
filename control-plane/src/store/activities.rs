//! Activities (the user-visible progress of a session, in order) and the
//! session metadata a worker keeps up to date (plan, external URL), both
//! only under a valid claim.

use super::claims::valid_claim;
use super::sessions::{load_session, set_state};
use super::{now_ms, rfc3339, Store, StoreError};
use crate::transitions::{next, Event};
use protocol::activity::{Activity, ActivityEntry};
use protocol::platform::{MetadataUpdate, PostActivity};
use protocol::session::{Session, SessionState};
use rusqlite::params;

impl Store {
    /// Appends an activity under a valid claim.
    pub(crate) fn post_activity(
        &self,
        session: &str,
        post: PostActivity,
    ) -> Result<ActivityEntry, StoreError> {
        validate_activity(&post.activity)?;
        let now = now_ms();
        let body = serde_json::to_string(&post.activity).map_err(StoreError::corrupt)?;
        self.tx(|tx| {
            let s = valid_claim(tx, session, &post.claim_id, now)?;
            let event = match &post.activity {
                Activity::AwaitingInput { .. } if s.state == SessionState::Active => Some(Event::AwaitInput),
                Activity::Progress { .. } if s.state == SessionState::AwaitingInput => Some(Event::Resume),
                _ => None,
            };
            if let Some(e) = event {
                let to = next(s.state, e)?;
                set_state(tx, session, s.state, to, now, post.activity.kind())?;
            }
            let seq: i64 = tx.sql.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM activities WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )?;
            let event = super::events::next_event(tx, session)?;
            tx.sql.execute(
                "INSERT INTO activities (session_id, seq, claim_id, at, body, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![session, seq, post.claim_id.as_str(), now, body, event],
            )?;
            Ok(ActivityEntry { seq: seq as u64, at: rfc3339(now), claim_id: post.claim_id.clone(), activity: post.activity.clone() })
        })
    }

    /// Updates the plan and/or external URL under a valid claim.
    pub(crate) fn metadata(&self, session: &str, m: MetadataUpdate) -> Result<Session, StoreError> {
        if let Some(p) = &m.plan {
            if p.len() > 200 || p.iter().any(|s| s.len() > 2000) {
                return Err(StoreError::invalid(
                    "plan: at most 200 steps of 2000 characters",
                ));
            }
        }
        if let Some(u) = &m.external_url {
            if u.len() > 2048 || !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(StoreError::invalid(
                    "external_url must be an http(s) URL of at most 2048 characters",
                ));
            }
        }
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &m.claim_id, now)?;
            if let Some(p) = &m.plan {
                tx.sql.execute(
                    "UPDATE sessions SET plan = ?2, updated_at = ?3 WHERE id = ?1",
                    params![
                        session,
                        serde_json::to_string(p).map_err(StoreError::corrupt)?,
                        now
                    ],
                )?;
            }
            if let Some(u) = &m.external_url {
                tx.sql.execute(
                    "UPDATE sessions SET external_url = ?2, updated_at = ?3 WHERE id = ?1",
                    params![session, u, now],
                )?;
            }
            load_session(tx, session)
        })
    }
}

fn validate_activity(a: &Activity) -> Result<(), StoreError> {
    let text = match a {
        Activity::Progress { message, .. } => message.len(),
        Activity::PlanUpdated { steps } => steps.iter().map(String::len).sum(),
        Activity::ExternalUrlUpdated { url } => url.len(),
        Activity::AwaitingInput {
            question,
            question_id,
        } => question.len() + question_id.as_ref().map_or(0, |q| q.len()),
        Activity::Completed { summary } => summary.len(),
        Activity::Failed { error } => error.len(),
        Activity::PolicyDecision { .. } => 0,
    };
    if text > 64 * 1024 {
        return Err(StoreError::invalid("activity text is longer than 64 KiB"));
    }
    Ok(())
}
