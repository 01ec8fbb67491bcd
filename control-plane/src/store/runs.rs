//! Runs: the identities API's sessions — started for an agent of a team
//! (its default when none is named), read, listed with the vendor's
//! filters, cancelled and followed up. Every call names the caller's team;
//! another team's run is "not found", exactly like one that does not
//! exist.

use super::agent_configs::{default_agent, runnable, served_models_in};
use super::inputs::follow_up_in;
use super::sessions::{cancel_in, load_session, queue_with, validate_new, QueueExtras};
use super::{now_ms, ConflictKind, Missing, Store, StoreError, Tx};
use crate::runs::{RunRecord, RunState};
use base64::Engine;
use protocol::platform::RegisterWorker;
use protocol::session::{
    AgentPin, AgentPinKind, AgentRef, NewSession, NewSource, SessionState, Trigger,
};
use rusqlite::{params, params_from_iter, OptionalExtension};

/// What a run is started with.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunRequest {
    /// The work (untrusted).
    pub(crate) prompt: String,
    /// The agent (`agent_…`); the caller's key's agent, else the team's
    /// default, when `None`.
    pub(crate) agent: Option<String>,
    /// The model for this run only.
    pub(crate) model: Option<String>,
    /// Its title; the prompt's first line when `None`.
    pub(crate) title: Option<String>,
    /// Kept and shown (a JSON object).
    pub(crate) metadata: Option<serde_json::Value>,
}

/// Who starts a run.
#[derive(Debug, Clone)]
pub(crate) struct Starter<'a> {
    /// The team it belongs to.
    pub(crate) team: &'a str,
    /// The person (whose workers may run it, and who is its creator).
    pub(crate) user: &'a str,
    /// The agent of the caller's key, if the call is made with one.
    pub(crate) key_agent: Option<&'a str>,
}

/// Sort keys of a list of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RunSort {
    /// By creation.
    Created,
    /// By last change (the vendor's default).
    Updated,
}

/// What a list of runs asks.
#[derive(Debug, Clone)]
pub(crate) struct RunQuery {
    /// 1–100.
    pub(crate) limit: u32,
    /// The `cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Only runs in one of these states (none: all).
    pub(crate) states: Vec<RunState>,
    /// Only runs started so.
    pub(crate) source: Option<Trigger>,
    /// Only runs of this schedule.
    pub(crate) schedule_id: Option<String>,
    /// Created at or after / before (ms).
    pub(crate) created_after: Option<i64>,
    /// Created before (ms).
    pub(crate) created_before: Option<i64>,
    /// Changed at or after (ms).
    pub(crate) updated_after: Option<i64>,
    /// The sort key.
    pub(crate) sort: RunSort,
    /// Ascending instead of descending.
    pub(crate) ascending: bool,
}

/// The title of a run: the one given, else the prompt's first line, cut
/// at a character boundary to at most 80 characters.
fn title_of(title: Option<String>, prompt: &str) -> String {
    match title.filter(|t| !t.trim().is_empty()) {
        Some(t) => t,
        None => prompt
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect(),
    }
}

/// Starts a run inside `tx` (a schedule's tick starts its runs here too).
pub(super) fn start_run_in(
    tx: &Tx<'_>,
    who: &Starter<'_>,
    req: RunRequest,
    trigger: Trigger,
    schedule_id: Option<String>,
) -> Result<String, StoreError> {
    if req.prompt.trim().is_empty() {
        return Err(StoreError::invalid(
            "prompt is required: say what the run should do",
        ));
    }
    let agent_id = match (&req.agent, who.key_agent) {
        (Some(a), Some(k)) if a != k => {
            return Err(StoreError::Forbidden {
                kind: "not_authorized",
                message: "an agent's key starts runs as its own agent only; leave agent_identity_uid out, or use a person's key".into(),
            })
        }
        (Some(a), _) => a.clone(),
        (None, Some(k)) => k.to_string(),
        (None, None) => default_agent(tx, who.team)?,
    };
    let agent = runnable(tx, who.team, &agent_id, None)?;
    let served: Vec<String> = served_models_in(tx, Some(who.user))?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let model = match req.model.filter(|m| !m.is_empty()) {
        Some(m) if served.contains(&m) => m,
        Some(m) => {
            return Err(StoreError::invalid(format!(
                "config.model_id {m:?} is not served by any registered worker; see GET /api/v1/cloud/models"
            )))
        }
        None => match agent.config.model.id().filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => served.first().cloned().ok_or_else(|| {
                StoreError::invalid("no registered worker serves a model yet; start a worker (`runner up`)")
            })?,
        },
    };
    let worker = workers_serving(tx, &model, who.user)?.ok_or_else(|| {
        StoreError::invalid(format!(
            "no registered worker that may run your team's sessions serves model {model:?}; start one (`runner up`), or pick another model"
        ))
    })?;
    // An agent's key runs as its agent, and so does a schedule (no person
    // starts it); a person's call runs as the person.
    let run_as = if who.key_agent.is_some() || trigger == Trigger::ScheduledAgent {
        format!("agent:{agent_id}")
    } else {
        format!("user:{}", who.user)
    };
    let new = NewSession {
        workspace: worker.workspace,
        agent_profile: worker.agent_profile,
        agent: AgentRef::Pinned(AgentPin {
            kind: AgentPinKind::Agent,
            id: agent_id.clone(),
            version: Some(agent.version),
        }),
        source: NewSource {
            title: title_of(req.title, &req.prompt),
            prompt: req.prompt,
            ..Default::default()
        },
        script: None,
        repo: None,
        trigger: None,
    };
    validate_new(&new)?;
    let s = queue_with(
        tx,
        new,
        &[],
        Some(who.user),
        QueueExtras {
            model: Some(model),
            run_as: Some(run_as),
            schedule_id,
            metadata: req.metadata,
            trigger: Some(trigger),
            tools_within: None,
        },
    )?;
    Ok(s.id.to_string())
}

/// The most recently reporting worker that serves `model` and may run
/// `user`'s sessions.
fn workers_serving(
    tx: &Tx<'_>,
    model: &str,
    user: &str,
) -> Result<Option<RegisterWorker>, StoreError> {
    Ok(super::cloud_agents::workers_by_recency(tx)?
        .into_iter()
        .find(|(w, owner)| {
            super::access::may_serve_in(tx, owner.as_deref(), Some(user))
                && w.models.iter().any(|m| m == model)
        })
        .map(|(w, _)| w))
}

fn not_found(id: &str) -> StoreError {
    StoreError::not_found(
        Missing::Session,
        format!("no run {id:?}; list yours with GET /api/v1/agent/runs"),
    )
}

/// The run `id` of `team`.
pub(super) fn load_run(tx: &Tx<'_>, team: &str, id: &str) -> Result<RunRecord, StoreError> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = tx
        .sql
        .query_row(
            "SELECT owner, schedule_id, run_metadata FROM sessions WHERE id = ?1 AND team = ?2",
            params![id, team],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((creator, schedule_id, metadata)) = row else {
        return Err(not_found(id));
    };
    let session = load_session(tx, id)?;
    let started: bool = tx.sql.query_row(
        "SELECT EXISTS (SELECT 1 FROM activities a JOIN claims c ON c.id = a.claim_id WHERE c.session_id = ?1 AND c.state = 'active')",
        params![id],
        |r| r.get(0),
    )?;
    let lost = session.state == SessionState::Error && {
        let reason: Option<String> = tx
            .sql
            .query_row(
                "SELECT reason FROM transitions WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        reason.is_some_and(|r| r.starts_with("out of attempts"))
    };
    let started_at: Option<i64> = tx.sql.query_row(
        "SELECT MIN(created_at) FROM claims WHERE session_id = ?1",
        params![id],
        |r| r.get(0),
    )?;
    let schedule = match schedule_id {
        Some(sid) => {
            let named: Option<(String, String)> = tx
                .sql
                .query_row(
                    "SELECT name, cron FROM schedules WHERE id = ?1",
                    params![sid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (name, cron) = named.unwrap_or_default();
            Some((sid, name, cron))
        }
        None => None,
    };
    Ok(RunRecord {
        session,
        started,
        lost,
        creator,
        schedule,
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        started_at,
    })
}

/// Refuses `who` driving run `r` as it may not: an agent's key drives
/// only its own agent's runs; a follow-up (which runs it again for the
/// person it ran for, on their workers) is theirs alone to send; any
/// person of the team may cancel.
fn check_driver(who: &Starter<'_>, r: &RunRecord, follow_up: bool) -> Result<(), StoreError> {
    let run_as = r.session.run_as.as_deref().unwrap_or("");
    let ok = match who.key_agent {
        Some(a) => run_as == format!("agent:{a}"),
        // A follow-up runs again for the one it ran for (its owner's
        // workers, its owner's name): only that person sends one.
        None if follow_up => r.creator.as_deref() == Some(who.user),
        None => true,
    };
    if ok {
        return Ok(());
    }
    Err(StoreError::Forbidden {
        kind: "not_authorized",
        message: if who.key_agent.is_some() {
            "an agent's key drives its own agent's runs only".into()
        } else {
            "this run ran for another person (on their workers); only they follow it up: start a run of your own".to_string()
        },
    })
}

/// The keyset cursor of a list of runs: the sort key and id of the last
/// run of a page.
fn encode_cursor(key: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (k, id) = raw.split_once(':')?;
    Some((k.parse().ok()?, id.to_string()))
}

impl Store {
    /// Starts a run for `who` (trigger `API`).
    pub(crate) fn start_run(
        &self,
        who: &Starter<'_>,
        req: RunRequest,
    ) -> Result<RunRecord, StoreError> {
        self.tx(|tx| {
            let id = start_run_in(tx, who, req, Trigger::Api, None)?;
            load_run(tx, who.team, &id)
        })
    }

    /// The run `id` of `team`.
    pub(crate) fn run(&self, team: &str, id: &str) -> Result<RunRecord, StoreError> {
        self.tx(|tx| load_run(tx, team, id))
    }

    /// A page of `team`'s runs, and the cursor of the next page.
    pub(crate) fn list_runs(
        &self,
        team: &str,
        q: &RunQuery,
    ) -> Result<(Vec<RunRecord>, Option<String>), StoreError> {
        let column = match q.sort {
            RunSort::Created => "created_at",
            RunSort::Updated => "updated_at",
        };
        let after = match &q.cursor {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                StoreError::invalid("cursor is not one this API gave; use page_info.next_cursor of the previous page")
            })?),
            None => None,
        };
        self.tx(|tx| {
            let mut sql = format!("SELECT id, {column} FROM sessions WHERE team = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![team.to_string().into()];
            if !q.states.is_empty() {
                let mut ours: Vec<&str> = q.states.iter().map(|s| s.ours().as_str()).collect();
                ours.dedup();
                sql.push_str(&format!(
                    " AND state IN ({})",
                    vec!["?"; ours.len()].join(", ")
                ));
                args.extend(ours.into_iter().map(|s| s.to_string().into()));
            }
            if let Some(t) = q.source {
                sql.push_str(" AND trigger = ?");
                args.push(t.as_str().to_string().into());
            }
            if let Some(s) = &q.schedule_id {
                sql.push_str(" AND schedule_id = ?");
                args.push(s.clone().into());
            }
            for (cond, v) in [
                (" AND created_at >= ?", q.created_after),
                (" AND created_at < ?", q.created_before),
                (" AND updated_at >= ?", q.updated_after),
            ] {
                if let Some(v) = v {
                    sql.push_str(cond);
                    args.push(v.into());
                }
            }
            let (cmp, order) = if q.ascending {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            if let Some((k, id)) = &after {
                sql.push_str(&format!(
                    " AND ({column} {cmp} ? OR ({column} = ? AND id {cmp} ?))"
                ));
                args.push((*k).into());
                args.push((*k).into());
                args.push(id.clone().into());
            }
            sql.push_str(&format!(" ORDER BY {column} {order}, id {order} LIMIT ?"));
            args.push(i64::from(q.limit + 1).into());
            let mut st = tx.sql.prepare(&sql)?;
            let mut rows: Vec<(String, i64)> = st
                .query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let more = rows.len() > q.limit as usize;
            rows.truncate(q.limit as usize);
            let next = if more {
                rows.last().map(|(id, k)| encode_cursor(*k, id))
            } else {
                None
            };
            let mut runs = Vec::new();
            for (id, _) in &rows {
                let r = load_run(tx, team, id)?;
                // CLAIMED and INPROGRESS (FAILED and ERROR) share a state
                // of ours: told apart here.
                if q.states.is_empty() || q.states.contains(&r.state()) {
                    runs.push(r);
                }
            }
            Ok((runs, next))
        })
    }

    /// Cancels the run `id` of `who`'s team; a run that has ended is
    /// refused. An agent's key cancels only its own agent's runs.
    pub(crate) fn cancel_run(&self, who: &Starter<'_>, id: &str) -> Result<RunRecord, StoreError> {
        let team = who.team;
        self.tx(|tx| {
            let r = load_run(tx, team, id)?;
            check_driver(who, &r, false)?;
            let state = r.state();
            if state.is_terminal() {
                return Err(StoreError::invalid(format!(
                    "the run has ended ({}); there is nothing to cancel",
                    state.as_str()
                )));
            }
            cancel_in(tx, &r.session, now_ms(), "cancelled by a person")?;
            load_run(tx, team, id)
        })
    }

    /// Sends the run `id` of `team` a follow-up: it runs again with it. A
    /// run that is still going is a conflict.
    pub(crate) fn follow_up_run(
        &self,
        who: &Starter<'_>,
        id: &str,
        by: &str,
        message: String,
    ) -> Result<RunRecord, StoreError> {
        let team = who.team;
        if message.trim().is_empty() {
            return Err(StoreError::invalid(
                "message is required: say what to do next",
            ));
        }
        super::limits::check_len("message", &message, 64 * 1024)?;
        self.tx(|tx| {
            let r = load_run(tx, team, id)?;
            check_driver(who, &r, true)?;
            if !r.state().is_terminal() {
                return Err(StoreError::conflict(
                    ConflictKind::Transition,
                    "the run is still going; wait for it to end, or cancel it, then follow up",
                ));
            }
            follow_up_in(tx, &r.session, by, message, &[], now_ms())?;
            load_run(tx, team, id)
        })
    }
}
