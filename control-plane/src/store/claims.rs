//! Claims: the lock a worker takes before any work, its lease, the one
//! terminal call that ends it (complete, fail, release), and the sweep
//! that voids claims whose lease ran out.

use super::sessions::{load_session, record, set_state};
use super::workers::load_worker;
use super::{
    now_ms, rfc3339, webhooks, ClaimProblem, ConflictKind, Missing, Store, StoreError, Tx,
};
use crate::transitions::{next, Event};
use protocol::platform::{
    Claim, ClaimableSession, ExtendRequest, Finish, HeldClaim, Lease, DEFAULT_LEASE_SECONDS,
    MAX_LEASE_SECONDS, MIN_LEASE_SECONDS,
};
use protocol::session::{Session, SessionState};
use rusqlite::{params, OptionalExtension};

pub(crate) use protocol::platform::Outcome;

/// A claim row.
struct ClaimRow {
    session_id: String,
    worker_id: String,
    state: String,
    lease_expires_at: i64,
}

impl Store {
    /// Sessions this worker may claim, oldest first (one query, no bodies).
    pub(crate) fn claimable(
        &self,
        worker: &str,
        limit: u32,
    ) -> Result<Vec<ClaimableSession>, StoreError> {
        self.tx(|tx| {
            let w = load_worker(tx, worker)?;
            let owner = super::access::worker_owner(tx, worker)?;
            // Sessions of every owner when this worker's user is trusted;
            // else only everyone's and its user's own.
            let all = self.serves_everyone(owner.as_deref());
            let mut st = tx.sql.prepare_cached(
                "SELECT id, attempt, created_at FROM sessions WHERE state = 'queued' AND workspace = ?1 AND agent_profile = ?2 AND (?4 OR owner IS NULL OR owner = ?5) ORDER BY created_at, id LIMIT ?3",
            )?;
            let v = st
                .query_map(params![w.registration.workspace, w.registration.agent_profile, limit, all, owner], |r| {
                    Ok(ClaimableSession { id: r.get::<_, String>(0)?.into(), attempt: r.get(1)?, created_at: rfc3339(r.get(2)?) })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// Claims a session: the lock every other worker respects.
    pub(crate) fn claim(
        &self,
        worker: &str,
        session: &str,
        lease: Option<u32>,
    ) -> Result<Claim, StoreError> {
        let lease = lease_seconds(lease)?;
        let now = now_ms();
        let claimed = self.claim_tx(worker, session, lease, now);
        match &claimed {
            Ok(_) => self.metrics().claim("granted"),
            Err(StoreError::Conflict {
                kind: ConflictKind::Claimed,
                ..
            }) => self.metrics().claim("conflict"),
            Err(_) => {}
        }
        claimed
    }

    fn claim_tx(
        &self,
        worker: &str,
        session: &str,
        lease: u32,
        now: i64,
    ) -> Result<Claim, StoreError> {
        self.tx(|tx| {
            let w = load_worker(tx, worker)?;
            let s = load_session(tx, session)?;
            let owner = super::access::worker_owner(tx, worker)?;
            let session_owner = super::access::session_owner(tx, session)?;
            if s.workspace != w.registration.workspace
                || s.agent_profile != w.registration.agent_profile
                || !self.may_serve(owner.as_deref(), session_owner.as_deref())
            {
                return Err(StoreError::not_found(Missing::Session,
                    format!("session {session} is not one this worker may claim"),
                ));
            }
            if s.state != SessionState::Queued {
                return Err(StoreError::conflict(ConflictKind::Claimed,
                    format!("session {session} is {}, not queued: another worker has it or it is finished; leave it alone", s.state.as_str()),
                ));
            }
            let to = next(s.state, Event::Claim)?;
            let changed = tx.sql.execute(
                "UPDATE sessions SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'queued'",
                params![session, to.as_str(), now],
            )?;
            if changed != 1 {
                return Err(StoreError::conflict(ConflictKind::Claimed, format!("session {session} was claimed by another worker")));
            }
            webhooks::enqueue(
                tx,
                webhooks::SESSION_STATE_CHANGED,
                serde_json::json!({"session_id": session, "from": s.state.as_str(), "to": to.as_str(), "reason": "claimed"}),
            )?;
            record(tx, session, s.state.as_str(), to, now, &format!("claimed by {worker}"))?;
            let claim_id = format!("clm_{}", uuid::Uuid::new_v4().simple());
            let expires = now + i64::from(lease) * 1000;
            tx.sql.execute(
                "INSERT INTO claims (id, session_id, worker_id, state, lease_expires_at, created_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
                params![claim_id, session, worker, expires, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::conflict(ConflictKind::Claimed, format!("session {session} already has an active claim"))
                }
                e => e.into(),
            })?;
            Ok(Claim {
                claim_id: claim_id.into(),
                worker_id: worker.into(),
                lease_expires_at: rfc3339(expires),
                session: load_session(tx, session)?,
            })
        })
    }

    /// Extends a lease (from now).
    pub(crate) fn extend(&self, session: &str, req: ExtendRequest) -> Result<Lease, StoreError> {
        let lease = lease_seconds(req.lease_seconds)?;
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &req.claim_id, now)?;
            let expires = now + i64::from(lease) * 1000;
            tx.sql.execute(
                "UPDATE claims SET lease_expires_at = ?2 WHERE id = ?1",
                params![req.claim_id.as_str(), expires],
            )?;
            Ok(Lease {
                claim_id: req.claim_id.clone(),
                lease_expires_at: rfc3339(expires),
            })
        })
    }

    /// Completes, fails or releases a session under a valid claim.
    pub(crate) fn finish(
        &self,
        session: &str,
        outcome: Outcome,
        f: Finish,
    ) -> Result<Session, StoreError> {
        if f.message.len() > 16 * 1024 {
            return Err(StoreError::invalid("message is longer than 16 KiB"));
        }
        let now = now_ms();
        self.tx(|tx| {
            let s = valid_claim(tx, session, &f.claim_id, now)?;
            let (event, claim_state) = match outcome {
                Outcome::Complete => (Event::Complete, "completed"),
                Outcome::Fail => (Event::Fail, "failed"),
                Outcome::Release => (Event::Release, "released"),
            };
            let to = next(s.state, event)?;
            // The outcome first: what the state change announces (a
            // `statusChange` webhook's summary) reads it.
            if outcome != Outcome::Release {
                tx.sql.execute(
                    "UPDATE sessions SET outcome = ?2 WHERE id = ?1",
                    params![session, f.message],
                )?;
            }
            set_state(tx, session, s.state, to, now, claim_state)?;
            tx.sql.execute(
                "UPDATE claims SET state = ?2, ended_at = ?3 WHERE id = ?1",
                params![f.claim_id.as_str(), claim_state, now],
            )?;
            load_session(tx, session)
        })
    }

    /// Active claims a worker holds.
    pub(crate) fn held_claims(&self, worker: &str) -> Result<Vec<HeldClaim>, StoreError> {
        self.tx(|tx| {
            load_worker(tx, worker)?;
            let mut st = tx.sql.prepare(
                "SELECT id, session_id, lease_expires_at FROM claims WHERE worker_id = ?1 AND state = 'active' ORDER BY created_at",
            )?;
            let v = st
                .query_map(params![worker], |r| {
                    Ok(HeldClaim { claim_id: r.get::<_, String>(0)?.into(), session_id: r.get::<_, String>(1)?.into(), lease_expires_at: rfc3339(r.get(2)?) })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// Voids expired claims: their sessions go `stale`, then `queued` with
    /// the attempt counted, or `error` once out of attempts. Returns how
    /// many claims expired.
    pub(crate) fn sweep(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let max = self.max_attempts;
        self.tx(|tx| {
            let mut st = tx.sql.prepare(
                "SELECT id, session_id FROM claims WHERE state = 'active' AND lease_expires_at <= ?1",
            )?;
            let expired: Vec<(String, String)> =
                st.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            for (claim, session) in &expired {
                tx.sql.execute("UPDATE claims SET state = 'expired', ended_at = ?2 WHERE id = ?1", params![claim, now])?;
                let s = load_session(tx, session)?;
                let stale = next(s.state, Event::LeaseExpired)?;
                set_state(tx, session, s.state, stale, now, &format!("lease of {claim} expired"))?;
                if s.attempt >= max {
                    let to = next(stale, Event::GiveUp)?;
                    tx.sql.execute(
                        "UPDATE sessions SET outcome = ?2 WHERE id = ?1",
                        params![session, format!("the lease expired on all {max} attempts")],
                    )?;
                    set_state(tx, session, stale, to, now, &format!("out of attempts ({max})"))?;
                } else {
                    let to = next(stale, Event::Requeue)?;
                    set_state(tx, session, stale, to, now, "requeued after a stale claim")?;
                    tx.sql.execute("UPDATE sessions SET attempt = attempt + 1 WHERE id = ?1", params![session])?;
                }
            }
            Ok(expired.len())
        })
        .inspect(|n| self.metrics().leases_expired(*n))
    }
}

fn lease_seconds(lease: Option<u32>) -> Result<u32, StoreError> {
    let l = lease.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&l) {
        return Err(StoreError::invalid(format!(
            "leaseSeconds must be between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS} (got {l})"
        )));
    }
    Ok(l)
}

/// The session of a claim that is active, unexpired and belongs to it.
pub(super) fn valid_claim(
    tx: &Tx<'_>,
    session: &str,
    claim: &str,
    now: i64,
) -> Result<Session, StoreError> {
    let row = tx
        .sql
        .query_row(
            "SELECT session_id, worker_id, state, lease_expires_at FROM claims WHERE id = ?1",
            params![claim],
            |r| {
                Ok(ClaimRow {
                    session_id: r.get(0)?,
                    worker_id: r.get(1)?,
                    state: r.get(2)?,
                    lease_expires_at: r.get(3)?,
                })
            },
        )
        .optional()?;
    let Some(row) = row else {
        return Err(StoreError::claim(
            ClaimProblem::Unknown,
            format!("claim {claim} does not exist; claim the session first"),
        ));
    };
    if row.session_id != session {
        return Err(StoreError::claim(
            ClaimProblem::OtherSession,
            format!("claim {claim} is not a claim on session {session}"),
        ));
    }
    if row.state != "active" {
        return Err(StoreError::claim(
            ClaimProblem::Ended,
            format!(
                "claim {claim} is {} and no longer holds session {session}; stop working on it",
                row.state
            ),
        ));
    }
    if row.lease_expires_at <= now {
        return Err(StoreError::claim(ClaimProblem::Expired,
            format!("the lease of claim {claim} (worker {}) has expired; stop working on session {session}", row.worker_id),
        ));
    }
    load_session(tx, session)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{claimed, expire_leases, queue, worker};
    use super::*;

    fn finish(store: &Store, c: &Claim) -> Result<Session, StoreError> {
        store.finish(
            &c.session.id,
            Outcome::Complete,
            Finish {
                claim_id: c.claim_id.clone(),
                message: "done".into(),
            },
        )
    }

    #[test]
    fn second_claim_is_conflict() {
        let (_d, store) = super::super::testing::store();
        let (_, first) = claimed(&store, 60);
        let other = worker(&store, "other");
        let e = store
            .claim(&other.worker_id, &first.session.id, None)
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    kind: ConflictKind::Claimed,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(store.held_claims(&other.worker_id).unwrap(), vec![]);
    }

    #[test]
    fn claim_of_unknown_session_is_not_found() {
        let (_d, store) = super::super::testing::store();
        let w = worker(&store, "r");
        let e = store.claim(&w.worker_id, "ses_nope", None).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NotFound {
                    what: Missing::Session,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn lease_out_of_range_is_invalid() {
        let (_d, store) = super::super::testing::store();
        let s = queue(&store);
        let w = worker(&store, "r");
        let e = store
            .claim(&w.worker_id, &s.id, Some(MAX_LEASE_SECONDS + 1))
            .unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
        assert_eq!(
            store.get(&s.id).unwrap().session.state,
            SessionState::Queued
        );
    }

    #[test]
    fn expired_claim_cannot_complete() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        expire_leases(&store);
        let e = finish(&store, &c).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::ClaimInvalid {
                    why: ClaimProblem::Expired,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            store.get(&c.session.id).unwrap().session.state,
            SessionState::Active
        );
    }

    #[test]
    fn completing_twice_is_conflict() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        assert_eq!(finish(&store, &c).unwrap().state, SessionState::Complete);
        let e = finish(&store, &c).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::ClaimInvalid {
                    why: ClaimProblem::Ended,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn claim_of_another_session_is_refused() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        let other = queue(&store);
        let e = store
            .extend(
                &other.id,
                ExtendRequest {
                    claim_id: c.claim_id.clone(),
                    lease_seconds: None,
                },
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::ClaimInvalid {
                    why: ClaimProblem::OtherSession,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn sweep_voids_expired_claims() {
        let (_d, store) = super::super::testing::store();
        let (w, c) = claimed(&store, 60);
        assert_eq!(store.sweep().unwrap(), 0, "an unexpired lease stays");
        expire_leases(&store);
        assert_eq!(store.sweep().unwrap(), 1);
        let s = store.get(&c.session.id).unwrap().session;
        assert_eq!((s.state, s.attempt), (SessionState::Queued, 2));
        assert_eq!(store.held_claims(&w.worker_id).unwrap(), vec![]);
        let e = finish(&store, &c).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::ClaimInvalid {
                    why: ClaimProblem::Ended,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn claims_conflicts_and_expiries_are_counted_where_they_happen() {
        let (_d, store) = super::super::testing::store();
        let (_w, c) = claimed(&store, 60);
        let other = super::super::testing::worker(&store, "r2");
        let e = store
            .claim(&other.worker_id, &c.session.id, Some(60))
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
        expire_leases(&store);
        assert_eq!(store.sweep().unwrap(), 1);
        let text = store.metrics().encode(&store.session_counts().unwrap());
        for line in [
            "control_plane_claims_total{result=\"granted\"} 1",
            "control_plane_claims_total{result=\"conflict\"} 1",
            "control_plane_lease_expiries_total 1",
            "control_plane_sessions{state=\"queued\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn sweep_gives_up_after_the_last_attempt() {
        // The test store allows two attempts.
        let (_d, store) = super::super::testing::store();
        let (w, c) = claimed(&store, 60);
        expire_leases(&store);
        store.sweep().unwrap();
        store.claim(&w.worker_id, &c.session.id, None).unwrap();
        expire_leases(&store);
        store.sweep().unwrap();
        let s = store.get(&c.session.id).unwrap().session;
        assert_eq!(s.state, SessionState::Error);
        assert_eq!(s.attempt, 2);
    }
}
