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
            let owner = session_owner(tx, session)?;
            if owner.is_none() || owner.as_deref() == user {
                return Ok(());
            }
            if let Some(c) = claim {
                return valid_claim(tx, session, c, now).map(|_| ());
            }
            Err(no_session(session))
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

    /// Whether a worker of `worker_user` may run sessions of `owner`.
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
