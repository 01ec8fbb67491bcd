//! Agents as versioned configurations: create, read (latest or any
//! version), list, update under optimistic concurrency, archive. Every
//! call names the caller's team, and another team's agent is "not found",
//! exactly like one that does not exist.
//!
//! The concurrency check is exact: each call is one `BEGIN IMMEDIATE`
//! transaction, so of two updates made against the same version one
//! commits and the other reads the new version and gets the conflict —
//! in one process or several on one file.

use super::{now_ms, ConflictKind, Missing, Store, StoreError, Tx};
use crate::agent_configs::{agent_version, new_agent_id, AgentConfig, AgentPatch, AgentRecord};
use base64::Engine;
use protocol::platform::RegisterWorker;
use protocol::session::AgentVersion;
use rusqlite::{params, params_from_iter, OptionalExtension};

/// Where a page of agents starts: after (older than) or before (newer
/// than) one agent, in the list's order (newest first), by its creation
/// order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AgentCursor {
    /// The agents created before the one of this `seq`.
    After(i64),
    /// The agents created after the one of this `seq`.
    Before(i64),
}

impl AgentCursor {
    /// The opaque `page` token of this cursor.
    pub(crate) fn encode(&self) -> String {
        let raw = match self {
            AgentCursor::After(seq) => format!("a:{seq}"),
            AgentCursor::Before(seq) => format!("b:{seq}"),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// A `page` token back; `None` for one this server did not make.
    pub(crate) fn decode(token: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (dir, seq) = raw.split_once(':')?;
        let seq = seq.parse().ok()?;
        match dir {
            "a" => Some(AgentCursor::After(seq)),
            "b" => Some(AgentCursor::Before(seq)),
            _ => None,
        }
    }
}

/// Where a list of agents starts, as the caller named it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AgentStart {
    /// From the newest.
    Newest,
    /// A `page` token.
    Page(AgentCursor),
    /// After (older than) the agent with this id.
    AfterId(String),
    /// Before (newer than) the agent with this id.
    BeforeId(String),
}

/// What a list of agents asks.
#[derive(Debug, Clone)]
pub(crate) struct AgentQuery {
    /// 1–100.
    pub(crate) limit: u32,
    /// Where it starts.
    pub(crate) start: AgentStart,
    /// Whether archived agents are listed too.
    pub(crate) include_archived: bool,
    /// Only agents created at or after this (ms).
    pub(crate) created_gte: Option<i64>,
    /// Only agents created at or before this (ms).
    pub(crate) created_lte: Option<i64>,
}

/// One page of a list, in order, with what follows.
#[derive(Debug)]
pub(crate) struct ListPage<T, C> {
    /// The items.
    pub(crate) items: Vec<T>,
    /// Whether more follow in the page's direction.
    pub(crate) has_more: bool,
    /// The cursor of the next page (present exactly when `has_more`).
    pub(crate) next: Option<C>,
}

fn not_found(id: &str) -> StoreError {
    StoreError::not_found(
        Missing::AgentConfig,
        format!("no agent {id:?}; list yours with GET /api/v1/cloud/agents"),
    )
}

/// A row of `agents`: (version, archived_at, created_at, seq).
type AgentRow = (u32, Option<i64>, i64, i64);

/// The row of `agents` of `id` in `team`.
fn agent_row(tx: &Tx<'_>, team: &str, id: &str) -> Result<Option<AgentRow>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT version, archived_at, created_at, seq FROM agents WHERE id = ?1 AND team = ?2",
            params![id, team],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

/// The agent `id` of `team` at `version` (its latest when `None`).
fn record(
    tx: &Tx<'_>,
    team: &str,
    id: &str,
    version: Option<u32>,
) -> Result<AgentRecord, StoreError> {
    let Some((latest, archived_at, created_at, _)) = agent_row(tx, team, id)? else {
        return Err(not_found(id));
    };
    let v = version.unwrap_or(latest);
    let row: Option<(String, i64)> = tx
        .sql
        .query_row(
            "SELECT config, created_at FROM agent_versions WHERE agent_id = ?1 AND version = ?2",
            params![id, v],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((config, updated_at)) = row else {
        return Err(StoreError::not_found(
            Missing::AgentConfig,
            format!("agent {id:?} has no version {v}; its versions are 1 to {latest}"),
        ));
    };
    Ok(AgentRecord {
        id: id.to_string(),
        version: v,
        config: serde_json::from_str(&config).map_err(StoreError::corrupt)?,
        archived_at,
        created_at,
        updated_at,
    })
}

fn insert_version(
    tx: &Tx<'_>,
    id: &str,
    version: u32,
    config: &AgentConfig,
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(config).map_err(StoreError::corrupt)?;
    tx.sql.execute(
        "INSERT INTO agent_versions (agent_id, version, config, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, version, json, now, by],
    )?;
    Ok(())
}

/// Every model the registered workers serve, each once, with when a
/// worker that serves it first registered; newest registration's models
/// first, as [`Store::served_models`] orders them.
pub(crate) fn served_models_in(tx: &Tx<'_>) -> Result<Vec<(String, i64)>, StoreError> {
    let mut st = tx.sql.prepare(
        "SELECT registration, created_at FROM workers ORDER BY COALESCE(last_heartbeat_at, created_at) DESC, id",
    )?;
    let rows: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<(String, i64)> = Vec::new();
    for (reg, created) in rows {
        let Ok(w) = serde_json::from_str::<RegisterWorker>(&reg) else {
            continue;
        };
        for m in w.models {
            match out.iter_mut().find(|(x, _)| *x == m) {
                Some((_, t)) => *t = (*t).min(created),
                None => out.push((m, created)),
            }
        }
    }
    Ok(out)
}

fn served_ids(tx: &Tx<'_>) -> Result<Vec<String>, StoreError> {
    Ok(served_models_in(tx)?.into_iter().map(|(m, _)| m).collect())
}

/// The version a session queued by `owner` runs when it names the agent
/// `id` of the owner's team (at `version`, or its latest), and the pin
/// the session records `(agent id, version)`. An archived agent starts
/// nothing; another team's is not found.
pub(super) fn resolve(
    tx: &Tx<'_>,
    owner: Option<&str>,
    id: &str,
    version: Option<u32>,
) -> Result<(AgentVersion, Option<(String, u32)>), StoreError> {
    let Some(user) = owner else {
        return Err(StoreError::invalid(
            "an agent reference needs a caller of a team (a user's token or key); this key belongs to no user: give the agent whole, or use a user's key",
        ));
    };
    let team = super::teams::team_of_user(tx, user)?.ok_or_else(|| not_found(id))?;
    let r = record(tx, &team, id, version)?;
    if r.archived_at.is_some() {
        return Err(StoreError::invalid(format!(
            "agent {id:?} is archived, and an archived agent starts nothing; use another agent"
        )));
    }
    Ok((agent_version(&r.config, r.version), Some((r.id, r.version))))
}

impl Store {
    /// Creates an agent of `team` at version 1; `by`: who (`user:NAME`).
    pub(crate) fn create_agent_config(
        &self,
        team: &str,
        by: &str,
        patch: AgentPatch,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            let config = patch.create(&served_ids(tx)?).map_err(StoreError::Invalid)?;
            let id = new_agent_id();
            let now = now_ms();
            tx.sql.execute(
                "INSERT INTO agents (id, seq, team, version, created_at, updated_at) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM agents), ?2, 1, ?3, ?3)",
                params![id, team, now],
            )?;
            insert_version(tx, &id, 1, &config, by, now)?;
            record(tx, team, &id, None)
        })
    }

    /// The agent `id` of `team`, at `version` or its latest.
    pub(crate) fn agent_config(
        &self,
        team: &str,
        id: &str,
        version: Option<u32>,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| record(tx, team, id, version))
    }

    /// Updates the agent `id` of `team` with `patch`, made against
    /// `patch.version`. The checks, in order: a `version` (400), the sent
    /// fields (400), the agent (404), not archived (400), the version
    /// still the latest (409); then the merged configuration (400) becomes
    /// the next version.
    pub(crate) fn update_agent_config(
        &self,
        team: &str,
        id: &str,
        by: &str,
        patch: AgentPatch,
    ) -> Result<AgentRecord, StoreError> {
        let Some(expected) = patch.version else {
            return Err(StoreError::invalid("Field 'version' is required."));
        };
        self.tx(|tx| {
            let served = served_ids(tx)?;
            patch.check(&served).map_err(StoreError::Invalid)?;
            let Some((latest, archived_at, _, _)) = agent_row(tx, team, id)? else {
                return Err(not_found(id));
            };
            if archived_at.is_some() {
                return Err(StoreError::invalid(
                    "Archived agents cannot be updated; create a new agent instead.",
                ));
            }
            if i64::from(latest) != expected {
                return Err(StoreError::conflict(
                    ConflictKind::Version,
                    format!("Version conflict. Expected version {latest}, got {expected}."),
                ));
            }
            let current = record(tx, team, id, Some(latest))?;
            let next = patch
                .update(&current.config, &served)
                .map_err(StoreError::Invalid)?;
            let now = now_ms();
            let n = tx.sql.execute(
                "UPDATE agents SET version = version + 1, updated_at = ?3 WHERE id = ?1 AND version = ?2",
                params![id, latest, now],
            )?;
            if n != 1 {
                return Err(StoreError::conflict(
                    ConflictKind::Version,
                    format!("Version conflict. Expected version {latest}, got {expected}."),
                ));
            }
            insert_version(tx, id, latest + 1, &next, by, now)?;
            record(tx, team, id, None)
        })
    }

    /// Archives the agent `id` of `team` (again: unchanged).
    pub(crate) fn archive_agent_config(
        &self,
        team: &str,
        id: &str,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            if agent_row(tx, team, id)?.is_none() {
                return Err(not_found(id));
            }
            tx.sql.execute(
                "UPDATE agents SET archived_at = ?2 WHERE id = ?1 AND archived_at IS NULL",
                params![id, now_ms()],
            )?;
            record(tx, team, id, None)
        })
    }

    /// A page of `team`'s agents, newest first, each at its latest version.
    pub(crate) fn list_agent_configs(
        &self,
        team: &str,
        q: &AgentQuery,
    ) -> Result<ListPage<AgentRecord, AgentCursor>, StoreError> {
        self.tx(|tx| {
            let anchor = |id: &str| -> Result<i64, StoreError> {
                match agent_row(tx, team, id)? {
                    Some((_, _, _, seq)) => Ok(seq),
                    None => Err(StoreError::invalid(format!(
                        "{id:?} names none of your agents; page from an id GET /api/v1/cloud/agents listed"
                    ))),
                }
            };
            let (newer, at) = match &q.start {
                AgentStart::Newest => (false, None),
                AgentStart::Page(AgentCursor::After(seq)) => (false, Some(*seq)),
                AgentStart::Page(AgentCursor::Before(seq)) => (true, Some(*seq)),
                AgentStart::AfterId(id) => (false, Some(anchor(id)?)),
                AgentStart::BeforeId(id) => (true, Some(anchor(id)?)),
            };
            let mut sql = String::from("SELECT id, seq FROM agents WHERE team = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![team.to_string().into()];
            if !q.include_archived {
                sql.push_str(" AND archived_at IS NULL");
            }
            if let Some(t) = q.created_gte {
                sql.push_str(" AND created_at >= ?");
                args.push(t.into());
            }
            if let Some(t) = q.created_lte {
                sql.push_str(" AND created_at <= ?");
                args.push(t.into());
            }
            if let Some(seq) = at {
                sql.push_str(if newer { " AND seq > ?" } else { " AND seq < ?" });
                args.push(seq.into());
            }
            sql.push_str(if newer {
                " ORDER BY seq ASC LIMIT ?"
            } else {
                " ORDER BY seq DESC LIMIT ?"
            });
            args.push(i64::from(q.limit + 1).into());
            let mut st = tx.sql.prepare(&sql)?;
            let mut ids: Vec<(String, i64)> = st
                .query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let has_more = ids.len() > q.limit as usize;
            ids.truncate(q.limit as usize);
            if newer {
                ids.reverse();
            }
            let items: Vec<AgentRecord> = ids
                .iter()
                .map(|(id, _)| record(tx, team, id, None))
                .collect::<Result<_, _>>()?;
            let next = if !has_more {
                None
            } else if newer {
                ids.first().map(|(_, seq)| AgentCursor::Before(*seq))
            } else {
                ids.last().map(|(_, seq)| AgentCursor::After(*seq))
            };
            Ok(ListPage { items, has_more, next })
        })
    }

    /// A page of the versions of `team`'s agent `id`, newest first,
    /// starting below version `below` (from the latest when `None`); the
    /// next page's cursor is the last version listed.
    pub(crate) fn agent_config_versions(
        &self,
        team: &str,
        id: &str,
        limit: u32,
        below: Option<u32>,
    ) -> Result<ListPage<AgentRecord, u32>, StoreError> {
        self.tx(|tx| {
            let Some((latest, _, _, _)) = agent_row(tx, team, id)? else {
                return Err(not_found(id));
            };
            let top = below
                .map(|b| b.saturating_sub(1))
                .unwrap_or(latest)
                .min(latest);
            let bottom = top.saturating_sub(limit).saturating_add(1).max(1);
            let items: Vec<AgentRecord> = (bottom..=top)
                .rev()
                .filter(|_| top >= 1)
                .map(|v| record(tx, team, id, Some(v)))
                .collect::<Result<_, _>>()?;
            let has_more = top >= 1 && bottom > 1;
            Ok(ListPage {
                has_more,
                next: has_more.then_some(bottom),
                items,
            })
        })
    }

    /// Every model the registered workers serve, with when it was first
    /// reported.
    pub(crate) fn served_model_list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.tx(served_models_in)
    }
}
