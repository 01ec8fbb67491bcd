//! Who may see and act on what, until teams exist: a session belongs to
//! the user who queued it (a Cloud Agents launch: the key's user), a
//! worker to the user who registered it.
//!
//! - A session with an owner is seen and changed only by that user; its
//!   worker reads it under its claim. Another user's session is "not
//!   found", exactly like one that does not exist. A session without an
//!   owner (queued by a key that belongs to nobody, or before owners) is
//!   everyone's, as before.
//! - A worker is driven (claims, heartbeats, its claims list) only by the
//!   user who registered it, and nobody else can register it again.
//! - A worker runs a session with an owner only when its own user is that
//!   owner or one of the operator's trusted worker users
//!   (`control-plane --worker-user NAME`): another user's worker can
//!   neither be chosen for a launch nor claim it.

use super::claims::valid_claim;
use super::{now_ms, Missing, Store, StoreError, Tx};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Refuses, as not found, a session `user` may not read or change;
    /// `claim`, when given and holding the session, lets its worker read
    /// it whoever owns it.
    pub(crate) fn check_session_access(
        &self,
        session: &str,
        user: Option<&str>,
        claim: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let (owner, team) = session_owner_and_team(tx, session)?;
            // A claim of one of the caller's own workers is checked as a
            // claim (a worker that lost it must hear so); any other claim
            // id is as if none was given, so it tells nothing about a
            // session the caller may not see.
            if let Some(c) = claim {
                if claim_of_callers_worker(tx, session, c, user)? {
                    return valid_claim(tx, session, c, now).map(|_| ());
                }
            }
            let mine = match (&owner, user) {
                (None, _) => true,
                // The owner, while still in the session's team (a user
                // moved to another team leaves its sessions behind).
                (Some(o), Some(u)) if o == u => match &team {
                    None => true,
                    Some(t) => super::teams::team_of_user(tx, u)?.as_deref() == Some(t.as_str()),
                },
                _ => false,
            };
            if mine {
                Ok(())
            } else {
                Err(no_session(session))
            }
        })
    }

    /// Refuses a call about `worker` by anyone but the user who registered
    /// it (a worker registered before workers had owners takes anyone).
    pub(crate) fn check_worker_caller(&self, worker: &str, user: &str) -> Result<(), StoreError> {
        self.tx(|tx| match worker_owner(tx, worker)? {
            Some(o) if o != user => Err(StoreError::Forbidden {
                kind: "worker_not_owned",
                message: format!("worker {worker} was registered by another user; drive a worker signed in as the user who registered it"),
            }),
            _ => Ok(()),
        })
    }

    /// Whether a worker of `worker_user` may run sessions of `owner` (see
    /// [`may_serve_in`]).
    pub(crate) fn may_serve(&self, worker_user: Option<&str>, owner: Option<&str>) -> bool {
        match owner {
            None => true,
            Some(o) => worker_user == Some(o) || self.serves_everyone(worker_user),
        }
    }

    /// Whether a worker of `worker_user` runs every user's sessions (its
    /// user is one of the operator's trusted worker users).
    pub(crate) fn serves_everyone(&self, worker_user: Option<&str>) -> bool {
        worker_user.is_some_and(|w| self.trusted_worker_users.iter().any(|t| t == w))
    }
}

/// The session's owner (`None`: everyone's); not found when it does not
/// exist.
pub(super) fn session_owner(tx: &Tx<'_>, session: &str) -> Result<Option<String>, StoreError> {
    tx.sql
        .query_row(
            "SELECT owner FROM sessions WHERE id = ?1",
            params![session],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| no_session(session))
}

/// Whether a worker of `worker_user` may run sessions of `owner`, inside a
/// transaction: [`Store::may_serve`]'s rule.
pub(super) fn may_serve_in(tx: &Tx<'_>, worker_user: Option<&str>, owner: Option<&str>) -> bool {
    match owner {
        None => true,
        Some(o) => {
            worker_user == Some(o)
                || worker_user.is_some_and(|w| tx.trusted_worker_users.iter().any(|t| t == w))
        }
    }
}

/// The session's owner and team; not found when it does not exist.
fn session_owner_and_team(
    tx: &Tx<'_>,
    session: &str,
) -> Result<(Option<String>, Option<String>), StoreError> {
    tx.sql
        .query_row(
            "SELECT owner, team FROM sessions WHERE id = ?1",
            params![session],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| no_session(session))
}

/// Whether `claim` is a claim on `session` of a worker `user` registered.
fn claim_of_callers_worker(
    tx: &Tx<'_>,
    session: &str,
    claim: &str,
    user: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(user) = user else {
        return Ok(false);
    };
    let worker_user: Option<Option<String>> = tx
        .sql
        .query_row(
            "SELECT w.user_name FROM claims c JOIN workers w ON w.id = c.worker_id WHERE c.id = ?1 AND c.session_id = ?2",
            params![claim, session],
            |r| r.get(0),
        )
        .optional()?;
    Ok(matches!(worker_user, Some(Some(u)) if u == user))
}

/// The worker's owner (`None` for a worker registered before owners);
/// not found when it does not exist.
pub(super) fn worker_owner(tx: &Tx<'_>, worker: &str) -> Result<Option<String>, StoreError> {
    tx.sql
        .query_row("SELECT user_name FROM workers WHERE id = ?1", params![worker], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            StoreError::not_found(
                Missing::Worker,
                format!("no worker {worker}: it was never registered or was removed; register again (reconfigure the worker)"),
            )
        })
}

fn no_session(session: &str) -> StoreError {
    StoreError::not_found(Missing::Session, format!("no session {session}"))
}
