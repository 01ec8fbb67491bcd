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
use crate::agent_configs::{
    agent_version, new_agent_id, AgentConfig, AgentPatch, AgentRecord, IdentityPatch,
};
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

/// A live (not deleted) row of `agents`.
struct AgentRow {
    version: u32,
    archived_at: Option<i64>,
    created_at: i64,
    seq: i64,
    is_default: bool,
}

/// The live row of `agents` of `id` in `team`.
fn agent_row(tx: &Tx<'_>, team: &str, id: &str) -> Result<Option<AgentRow>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT version, archived_at, created_at, seq, is_default FROM agents WHERE id = ?1 AND team = ?2 AND deleted_at IS NULL",
            params![id, team],
            |r| {
                Ok(AgentRow {
                    version: r.get(0)?,
                    archived_at: r.get(1)?,
                    created_at: r.get(2)?,
                    seq: r.get(3)?,
                    is_default: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Whether the agent of `row` may run under the team's plan: not archived,
/// and among the first `max_agents` of the team's live, unarchived agents
/// (the default first, then by creation).
fn is_available(tx: &Tx<'_>, team: &str, row: &AgentRow) -> Result<bool, StoreError> {
    if row.archived_at.is_some() {
        return Ok(false);
    }
    let before: i64 = tx.sql.query_row(
        "SELECT COUNT(*) FROM agents WHERE team = ?1 AND deleted_at IS NULL AND archived_at IS NULL AND (is_default > ?2 OR (is_default = ?2 AND seq < ?3))",
        params![team, row.is_default, row.seq],
        |r| r.get(0),
    )?;
    Ok((before as u64) < tx.max_agents as u64)
}

fn unavailable(id: &str) -> StoreError {
    StoreError::Forbidden {
        kind: "feature_not_available",
        message: format!(
            "agent {id:?} is over your team's plan limit of agents, so it cannot be changed, get keys or start runs; delete or archive agents you no longer need"
        ),
    }
}

/// The agent `id` of `team` at `version` (its latest when `None`).
fn record(
    tx: &Tx<'_>,
    team: &str,
    id: &str,
    version: Option<u32>,
) -> Result<AgentRecord, StoreError> {
    let Some(row) = agent_row(tx, team, id)? else {
        return Err(not_found(id));
    };
    let latest = row.version;
    let v = version.unwrap_or(latest);
    let stored: Option<(String, i64)> = tx
        .sql
        .query_row(
            "SELECT config, created_at FROM agent_versions WHERE agent_id = ?1 AND version = ?2",
            params![id, v],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((config, updated_at)) = stored else {
        return Err(StoreError::not_found(
            Missing::AgentConfig,
            format!("agent {id:?} has no version {v}; its versions are 1 to {latest}"),
        ));
    };
    Ok(AgentRecord {
        id: id.to_string(),
        version: v,
        config: serde_json::from_str(&config).map_err(StoreError::corrupt)?,
        archived_at: row.archived_at,
        created_at: row.created_at,
        updated_at,
        is_default: row.is_default,
        available: is_available(tx, team, &row)?,
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

/// Every model the registered workers that may run `user`'s sessions
/// serve (another user's workers are not `user`'s to learn of), each
/// once, with when such a worker first registered; the most recently
/// reporting worker's models first.
pub(crate) fn served_models_in(
    tx: &Tx<'_>,
    user: Option<&str>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut st = tx.sql.prepare(
        "SELECT registration, created_at, user_name FROM workers ORDER BY COALESCE(last_heartbeat_at, created_at) DESC, id",
    )?;
    let rows: Vec<(String, i64, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<(String, i64)> = Vec::new();
    for (reg, created, worker_user) in rows {
        if user.is_none() || !super::access::may_serve_in(tx, worker_user.as_deref(), user) {
            continue;
        }
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

fn served_ids(tx: &Tx<'_>, user: &str) -> Result<Vec<String>, StoreError> {
    Ok(served_models_in(tx, Some(user))?
        .into_iter()
        .map(|(m, _)| m)
        .collect())
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
    let r = runnable(tx, &team, id, version)?;
    let mut v = agent_version(&r.config, r.version);
    // The skills it names, each pinned now to one version and its digest:
    // what the worker fetches and checks, whatever is uploaded later.
    v.pinned_skills = super::skills::pin(tx, Some(&team), &r.config.skills)?;
    Ok((v, Some((r.id, r.version))))
}

/// The agent `id` of `team` (at `version`, or its latest) if it may start
/// a run: not archived, and available under the team's plan.
pub(super) fn runnable(
    tx: &Tx<'_>,
    team: &str,
    id: &str,
    version: Option<u32>,
) -> Result<AgentRecord, StoreError> {
    let r = record(tx, team, id, version)?;
    if r.archived_at.is_some() {
        return Err(StoreError::invalid(format!(
            "agent {id:?} is archived, and an archived agent starts nothing; use another agent"
        )));
    }
    if !r.available {
        return Err(unavailable(id));
    }
    Ok(r)
}

/// Refuses to run `s` again (a follow-up) when the agent it was queued
/// from can no longer start runs: deleted, archived, or over its team's
/// plan. A session given its agent whole has nothing to check.
pub(super) fn check_still_runnable(
    tx: &Tx<'_>,
    s: &protocol::session::Session,
) -> Result<(), StoreError> {
    let Some(agent) = &s.agent_id else {
        return Ok(());
    };
    let team: Option<String> = tx
        .sql
        .query_row(
            "SELECT team FROM agents WHERE id = ?1",
            params![agent],
            |r| r.get(0),
        )
        .optional()?;
    let refused = |why: &str| {
        StoreError::conflict(
            ConflictKind::Transition,
            format!("the session's agent {agent} {why}, so it starts nothing more; start a new session with another agent"),
        )
    };
    let Some(team) = team else {
        return Err(refused("no longer exists"));
    };
    match runnable(tx, &team, agent, None) {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. }) => Err(refused("was deleted")),
        Err(StoreError::Invalid(_)) => Err(refused("is archived")),
        Err(StoreError::Forbidden { .. }) => Err(refused("is over its team's plan of agents")),
        Err(e) => Err(e),
    }
}

/// What the default agent of a team is made with: every built-in tool,
/// the model the worker that runs it chooses.
const DEFAULT_SYSTEM: &str = "You are your team's default agent. Do the task you are given in your workspace. When a repository is checked out there, you are on the branch your work will be delivered on: make the change the task asks for, run the project's tests when it has them, and finish with a short summary of what you changed and why; it is shown to the person who started you.";

/// The id of `team`'s default agent, made now if the team has none yet.
pub(super) fn default_agent(tx: &Tx<'_>, team: &str) -> Result<String, StoreError> {
    let id: Option<String> = tx
        .sql
        .query_row(
            "SELECT id FROM agents WHERE team = ?1 AND is_default = 1 AND deleted_at IS NULL",
            params![team],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        return Ok(id);
    }
    let mut config = AgentConfig::new(
        "default".into(),
        crate::agent_configs::ModelRef::Id(String::new()),
    );
    config.system = DEFAULT_SYSTEM.into();
    config.tools = vec![serde_json::json!({"type": "agent_toolset_20260401"})];
    let id = insert_agent(tx, team, &config, "system", true)?;
    Ok(id)
}

/// Inserts a new agent at version 1; its id.
fn insert_agent(
    tx: &Tx<'_>,
    team: &str,
    config: &AgentConfig,
    by: &str,
    is_default: bool,
) -> Result<String, StoreError> {
    let id = new_agent_id();
    let now = now_ms();
    tx.sql.execute(
        "INSERT INTO agents (id, seq, team, version, created_at, updated_at, is_default) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM agents WHERE team = ?2), ?2, 1, ?3, ?3, ?4)",
        params![id, team, now, is_default],
    )?;
    insert_version(tx, &id, 1, config, by, now)?;
    Ok(id)
}

/// Adds `config` as a new agent of `team` made by `user` (the team's
/// default made first, the plan's limit checked).
fn create_in(
    tx: &Tx<'_>,
    team: &str,
    user: &str,
    config: &AgentConfig,
) -> Result<AgentRecord, StoreError> {
    default_agent(tx, team)?;
    check_room(tx, team)?;
    let id = insert_agent(tx, team, config, &format!("user:{user}"), false)?;
    record(tx, team, &id, None)
}

/// Refuses a new agent when `team` already has as many live agents as its
/// plan allows.
fn check_room(tx: &Tx<'_>, team: &str) -> Result<(), StoreError> {
    let live: i64 = tx.sql.query_row(
        "SELECT COUNT(*) FROM agents WHERE team = ?1 AND deleted_at IS NULL AND archived_at IS NULL",
        params![team],
        |r| r.get(0),
    )?;
    if live as u64 >= tx.max_agents as u64 {
        return Err(StoreError::Forbidden {
            kind: "feature_not_available",
            message: format!(
                "your team has {live} agents, the most its plan allows ({}); delete or archive one first",
                tx.max_agents
            ),
        });
    }
    Ok(())
}

/// Writes the next version of the live agent `id` of `team`: `change`
/// makes it from the current configuration. Refused for an archived or
/// unavailable agent.
fn write_next(
    tx: &Tx<'_>,
    team: &str,
    id: &str,
    by: &str,
    change: impl FnOnce(&AgentConfig) -> Result<AgentConfig, String>,
) -> Result<AgentRecord, StoreError> {
    let current = record(tx, team, id, None)?;
    if current.archived_at.is_some() {
        return Err(StoreError::invalid(
            "Archived agents cannot be updated; create a new agent instead.",
        ));
    }
    if !current.available {
        return Err(unavailable(id));
    }
    let next = change(&current.config).map_err(StoreError::Invalid)?;
    let now = now_ms();
    tx.sql.execute(
        "UPDATE agents SET version = version + 1, updated_at = ?3 WHERE id = ?1 AND version = ?2",
        params![id, current.version, now],
    )?;
    insert_version(tx, id, current.version + 1, &next, by, now)?;
    record(tx, team, id, None)
}

/// Checks that `user` may bind a key to `agent`: the agent is live in the
/// user's team, and available (an agent over the plan's limit gets no
/// keys; another team's is not found).
pub(crate) fn check_agent_for_key(tx: &Tx<'_>, user: &str, agent: &str) -> Result<(), StoreError> {
    let team = super::teams::team_of_user(tx, user)?.ok_or_else(|| not_found(agent))?;
    runnable(tx, &team, agent, None).map(|_| ())
}

/// The team of the live agent `id`; `None` when there is none.
pub(super) fn team_of_agent_in(tx: &Tx<'_>, id: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT team FROM agents WHERE id = ?1 AND deleted_at IS NULL",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

impl Store {
    /// The team of the live agent `id`; `None` when it does not exist (or
    /// was deleted).
    pub(crate) fn team_of_agent(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.tx(|tx| team_of_agent_in(tx, id))
    }

    /// Creates an agent of `team` at version 1, made by the person `user`.
    pub(crate) fn create_agent_config(
        &self,
        team: &str,
        user: &str,
        patch: AgentPatch,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            let config = patch
                .create(&served_ids(tx, user)?)
                .map_err(StoreError::Invalid)?;
            create_in(tx, team, user, &config)
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
        user: &str,
        patch: AgentPatch,
    ) -> Result<AgentRecord, StoreError> {
        let Some(expected) = patch.version else {
            return Err(StoreError::invalid("Field 'version' is required."));
        };
        self.tx(|tx| {
            let served = served_ids(tx, user)?;
            patch.check(&served).map_err(StoreError::Invalid)?;
            let Some(row) = agent_row(tx, team, id)? else {
                return Err(not_found(id));
            };
            if row.archived_at.is_some() {
                return Err(StoreError::invalid(
                    "Archived agents cannot be updated; create a new agent instead.",
                ));
            }
            if i64::from(row.version) != expected {
                return Err(StoreError::conflict(
                    ConflictKind::Version,
                    format!(
                        "Version conflict. Expected version {}, got {expected}.",
                        row.version
                    ),
                ));
            }
            write_next(tx, team, id, &format!("user:{user}"), |c| {
                patch.update(c, &served)
            })
        })
    }

    /// Archives the agent `id` of `team` (again: unchanged).
    pub(crate) fn archive_agent_config(
        &self,
        team: &str,
        id: &str,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            let Some(row) = agent_row(tx, team, id)? else {
                return Err(not_found(id));
            };
            if row.is_default {
                return Err(StoreError::invalid(
                    "the default agent cannot be archived: every team keeps one",
                ));
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
            default_agent(tx, team)?;
            let anchor = |id: &str| -> Result<i64, StoreError> {
                match agent_row(tx, team, id)? {
                    Some(row) => Ok(row.seq),
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
            let mut sql =
                String::from("SELECT id, seq FROM agents WHERE team = ? AND deleted_at IS NULL");
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
            let Some(AgentRow {
                version: latest, ..
            }) = agent_row(tx, team, id)?
            else {
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

    /// Every agent of `team` (its default made if it has none yet): the
    /// default first, then by creation.
    pub(crate) fn list_identities(&self, team: &str) -> Result<Vec<AgentRecord>, StoreError> {
        self.tx(|tx| {
            default_agent(tx, team)?;
            let mut st = tx.sql.prepare(
                "SELECT id FROM agents WHERE team = ?1 AND deleted_at IS NULL ORDER BY is_default DESC, seq",
            )?;
            let ids: Vec<String> = st
                .query_map(params![team], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.iter().map(|id| record(tx, team, id, None)).collect()
        })
    }

    /// The agent `id` of `team` (its default made if it has none yet, so
    /// that it can be read by id).
    pub(crate) fn identity(&self, team: &str, id: &str) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            default_agent(tx, team)?;
            record(tx, team, id, None)
        })
    }

    /// Creates an agent of `team` from the identities view.
    pub(crate) fn create_identity(
        &self,
        team: &str,
        user: &str,
        patch: IdentityPatch,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            let config = patch
                .create(&served_ids(tx, user)?)
                .map_err(StoreError::Invalid)?;
            create_in(tx, team, user, &config)
        })
    }

    /// Updates an agent of `team` from the identities view: the next
    /// version, made against the latest (this view has no version to
    /// check).
    pub(crate) fn update_identity(
        &self,
        team: &str,
        id: &str,
        user: &str,
        patch: IdentityPatch,
    ) -> Result<AgentRecord, StoreError> {
        self.tx(|tx| {
            let served = served_ids(tx, user)?;
            write_next(tx, team, id, &format!("user:{user}"), |c| {
                patch.update(c, &served)
            })
        })
    }

    /// Deletes an agent of `team`: kept for the history of its sessions,
    /// "not found" from now on, and every key bound to it revoked. The
    /// default agent cannot be deleted.
    pub(crate) fn delete_identity(&self, team: &str, id: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            let Some(row) = agent_row(tx, team, id)? else {
                return Err(not_found(id));
            };
            if row.is_default {
                return Err(StoreError::invalid(
                    "the default agent cannot be deleted: every team keeps one",
                ));
            }
            let now = now_ms();
            tx.sql.execute(
                "UPDATE agents SET deleted_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            tx.sql.execute(
                "UPDATE api_keys SET revoked = 1, revoked_at = ?2 WHERE agent_id = ?1 AND revoked = 0",
                params![id, now],
            )?;
            Ok(())
        })
    }

    /// Every model the registered workers serve, with when it was first
    /// reported.
    pub(crate) fn served_model_list(&self, user: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.tx(|tx| served_models_in(tx, Some(user)))
    }
}
