//! Workers: one per workspace + agent profile + runtime, found again when
//! it registers again; heartbeats report health and change nothing else.

use super::limits::{check_len, check_name};
use super::{now_ms, rfc3339, Missing, Store, StoreError, Tx};
use protocol::platform::{Heartbeat, RegisterWorker, Worker};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Finds or creates the worker for a workspace + agent + runtime; `owner`
    /// (the signed-in user registering it) becomes the worker's owner, the
    /// only user who may drive it (claims, heartbeats, repository reports).
    /// Registering it again as another user is refused; `None` keeps the
    /// owner it has.
    pub(crate) fn register_worker_as(
        &self,
        reg: RegisterWorker,
        owner: Option<&str>,
    ) -> Result<Worker, StoreError> {
        validate_worker(&reg)?;
        let now = now_ms();
        let json = serde_json::to_string(&reg).map_err(StoreError::corrupt)?;
        self.tx(|tx| {
            let existing: Option<String> = tx
                .sql.query_row(
                    "SELECT id FROM workers WHERE workspace = ?1 AND agent_profile = ?2 AND runtime = ?3",
                    params![reg.workspace, reg.agent_profile, reg.runtime],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => {
                    // Nobody takes over another user's worker by
                    // registering its triple again.
                    if let (Some(current), Some(new)) = (super::access::worker_owner(tx, &id)?, owner) {
                        if current != new {
                            return Err(StoreError::Forbidden {
                                kind: "worker_not_owned",
                                message: "a worker of this workspace, agent profile and runtime is registered by another user; register with another runtime or state directory, or sign in as its user".into(),
                            });
                        }
                    }
                    tx.sql.execute(
                        "UPDATE workers SET registration = ?2, user_name = COALESCE(?3, user_name) WHERE id = ?1",
                        params![id, json, owner],
                    )?;
                    id
                }
                None => {
                    let id = format!("wrk_{}", uuid::Uuid::new_v4().simple());
                    tx.sql.execute(
                        "INSERT INTO workers (id, workspace, agent_profile, runtime, registration, created_at, user_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, reg.workspace, reg.agent_profile, reg.runtime, json, now, owner],
                    )?;
                    id
                }
            };
            load_worker(tx, &id)
        })
    }

    /// A worker by id (unknown ids are refused).
    pub(crate) fn worker(&self, id: &str) -> Result<Worker, StoreError> {
        self.tx(|tx| load_worker(tx, id))
    }

    /// Records a heartbeat (health only).
    pub(crate) fn heartbeat(&self, worker: &str, hb: Heartbeat) -> Result<(), StoreError> {
        if hb.status.len() > 32 {
            return Err(StoreError::invalid("status is longer than 32 characters"));
        }
        let now = now_ms();
        let json = serde_json::to_string(&hb).map_err(StoreError::corrupt)?;
        self.tx(|tx| {
            load_worker(tx, worker)?;
            tx.sql.execute(
                "UPDATE workers SET last_heartbeat_at = ?2, heartbeat = ?3 WHERE id = ?1",
                params![worker, now, json],
            )?;
            Ok(())
        })
    }
}

pub(super) fn load_worker(tx: &Tx<'_>, id: &str) -> Result<Worker, StoreError> {
    let row: Option<(String, Option<i64>)> = tx
        .sql
        .query_row(
            "SELECT registration, last_heartbeat_at FROM workers WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((reg, hb)) = row else {
        return Err(StoreError::not_found(Missing::Worker,
            format!("no worker {id}: it was never registered or was removed; register again (reconfigure the worker)"),
        ));
    };
    Ok(Worker {
        worker_id: id.into(),
        registration: serde_json::from_str(&reg).map_err(StoreError::corrupt)?,
        last_heartbeat_at: hb.map(rfc3339),
    })
}

fn validate_worker(r: &RegisterWorker) -> Result<(), StoreError> {
    check_name("workspace", &r.workspace)?;
    check_name("agent_profile", &r.agent_profile)?;
    check_name("runtime", &r.runtime)?;
    check_name("display_name", &r.display_name)?;
    if r.execution_mode != "cloud" {
        return Err(StoreError::invalid("execution_mode must be \"cloud\""));
    }
    if !(1..=256).contains(&r.concurrency) {
        return Err(StoreError::invalid("concurrency must be between 1 and 256"));
    }
    if r.capabilities.len() > 100 || r.policy_entries.len() > 100 {
        return Err(StoreError::invalid(
            "capabilities and policy_entries: at most 100 entries each",
        ));
    }
    if let Some(c) = &r.custom_instructions {
        check_len("custom_instructions", c, 16 * 1024)?;
    }
    if r.models.len() > 200 {
        return Err(StoreError::invalid("models: at most 200 model ids"));
    }
    for m in &r.models {
        check_name("models[]", m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{store, worker};
    use super::*;

    #[test]
    fn registering_again_finds_the_same_worker() {
        let (_d, store) = store();
        assert_eq!(worker(&store, "r").worker_id, worker(&store, "r").worker_id);
        assert_ne!(worker(&store, "r").worker_id, worker(&store, "s").worker_id);
    }

    #[test]
    fn unknown_worker_must_register_again() {
        let (_d, store) = store();
        let e = store.worker("wrk_nope").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NotFound {
                    what: Missing::Worker,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
