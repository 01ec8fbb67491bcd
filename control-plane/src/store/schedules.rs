//! Schedules: a team's cron triggers — created, listed, read, replaced,
//! paused, resumed and deleted, always within the caller's team (another
//! team's is "not found", like one that does not exist) — and
//! [`Store::fire_due`], which starts their runs.
//!
//! Exactly once: `fire_due` is one `BEGIN IMMEDIATE` transaction (the
//! write lock serialises every control plane on the file), and a tick is
//! the row `(schedule_id, tick_at)` of `schedule_ticks`, keyed by the cron
//! occurrence rather than by anyone's "now": a second process that reaches
//! the same occurrence inserts nothing and starts nothing. After downtime
//! the missed occurrences collapse into one tick (the latest), which
//! records how many it stands for. A tick whose run cannot start (the
//! agent archived, unavailable or deleted; no worker for the model)
//! records why, on the tick and as the schedule's `last_spawn_error`, and
//! is not retried: the next occurrence tries again.

use super::agent_configs::runnable;
use super::limits::{check_len, check_name};
use super::runs::{start_run_in, RunRequest, Starter};
use super::{Missing, Store, StoreError, Tx};
use crate::schedules::Pattern;
use protocol::session::Trigger;
use rusqlite::{params, OptionalExtension};

/// How many ticks a schedule's record carries ([`Store::schedule`]).
const TICKS_SHOWN: i64 = 20;

/// What a schedule is made (or wholly replaced) with.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScheduleSpec {
    /// Its name (1–200 characters).
    pub(crate) name: String,
    /// 5 fields: minute hour day-of-month month day-of-week.
    pub(crate) cron: String,
    /// An IANA time zone name; `None`: UTC for a new schedule, unchanged
    /// for a replaced one.
    pub(crate) timezone: Option<String>,
    /// The work each run is given (untrusted).
    pub(crate) prompt: String,
    /// The agent its runs run as (`agent_…` of the team); `None`: the
    /// team's default agent at each tick.
    pub(crate) agent_id: Option<String>,
    /// The model its runs use instead of the agent's (`agent_config.model_id`).
    pub(crate) model: Option<String>,
    /// Given to every run it starts (a JSON object of strings).
    pub(crate) metadata: Option<serde_json::Value>,
    /// Whether it fires (a disabled one is paused).
    pub(crate) enabled: bool,
}

/// One tick of a schedule: what one cron occurrence did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TickRecord {
    /// The occurrence (ms).
    pub(crate) tick_at: i64,
    /// The run it started.
    pub(crate) session_id: Option<String>,
    /// Why it started none.
    pub(crate) error: Option<String>,
    /// The earlier occurrences it stands for (they passed while nothing
    /// fired).
    pub(crate) missed: u32,
}

/// A schedule as stored.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleRecord {
    /// `sch_…`.
    pub(crate) id: String,
    /// The team it belongs to.
    pub(crate) team: String,
    /// See [`ScheduleSpec`].
    pub(crate) name: String,
    /// See [`ScheduleSpec`].
    pub(crate) cron: String,
    /// The IANA time zone its cron is read in.
    pub(crate) timezone: String,
    /// See [`ScheduleSpec`].
    pub(crate) prompt: String,
    /// See [`ScheduleSpec`].
    pub(crate) agent_id: Option<String>,
    /// See [`ScheduleSpec`].
    pub(crate) model: Option<String>,
    /// See [`ScheduleSpec`].
    pub(crate) metadata: Option<serde_json::Value>,
    /// Whether it fires.
    pub(crate) enabled: bool,
    /// Its next occurrence (ms); `None` while paused.
    pub(crate) next_run_at: Option<i64>,
    /// Its last tick (ms).
    pub(crate) last_ran_at: Option<i64>,
    /// Why its last tick started no run (cleared by one that does).
    pub(crate) last_spawn_error: Option<String>,
    /// The person who made it (whose workers run its runs).
    pub(crate) created_by: String,
    /// The person who changed it last.
    pub(crate) updated_by: String,
    /// Times (ms, on the schedule clock).
    pub(crate) created_at: i64,
    /// See `created_at`.
    pub(crate) updated_at: i64,
    /// Its latest ticks, newest first (only [`Store::schedule`] fills it).
    pub(crate) ticks: Vec<TickRecord>,
}

/// What one [`Store::fire_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fired {
    /// Ticks this call claimed.
    pub(crate) ticks: u32,
    /// Runs they started (the others recorded why not).
    pub(crate) started: u32,
}

fn not_found(id: &str) -> StoreError {
    StoreError::not_found(
        Missing::Schedule,
        format!("no schedule {id:?}; list yours with GET /api/v1/agent/schedules"),
    )
}

const COLUMNS: &str = "id, team, name, cron, timezone, prompt, agent_id, agent_config, metadata, enabled, next_run_at, last_ran_at, last_spawn_error, created_by, updated_by, created_at, updated_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRecord> {
    let config: Option<String> = r.get(7)?;
    let metadata: Option<String> = r.get(8)?;
    Ok(ScheduleRecord {
        id: r.get(0)?,
        team: r.get(1)?,
        name: r.get(2)?,
        cron: r.get(3)?,
        timezone: r.get(4)?,
        prompt: r.get(5)?,
        agent_id: r.get(6)?,
        model: config
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .and_then(|c| c.get("model_id")?.as_str().map(str::to_string)),
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        enabled: r.get(9)?,
        next_run_at: r.get(10)?,
        last_ran_at: r.get(11)?,
        last_spawn_error: r.get(12)?,
        created_by: r.get(13)?,
        updated_by: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        ticks: Vec::new(),
    })
}

/// The live schedule `id` of `team`.
fn load(tx: &Tx<'_>, team: &str, id: &str) -> Result<ScheduleRecord, StoreError> {
    tx.sql
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM schedules WHERE id = ?1 AND team = ?2 AND deleted_at IS NULL"
            ),
            params![id, team],
            from_row,
        )
        .optional()?
        .ok_or_else(|| not_found(id))
}

fn ticks_of(tx: &Tx<'_>, id: &str) -> Result<Vec<TickRecord>, StoreError> {
    let mut st = tx.sql.prepare(
        "SELECT tick_at, session_id, error, missed FROM schedule_ticks WHERE schedule_id = ?1 ORDER BY tick_at DESC LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![id, TICKS_SHOWN], |r| {
            Ok(TickRecord {
                tick_at: r.get(0)?,
                session_id: r.get(1)?,
                error: r.get(2)?,
                missed: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Checks `spec` for `team` (the timezone given, else `timezone`): its
/// pattern, and its agent (live in the team, runnable).
fn check(
    tx: &Tx<'_>,
    team: &str,
    spec: &ScheduleSpec,
    timezone: &str,
) -> Result<Pattern, StoreError> {
    check_name("name", &spec.name)?;
    if spec.name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "name must not contain control characters",
        ));
    }
    if spec.prompt.contains('\0') {
        return Err(StoreError::invalid(
            "prompt must not contain NUL characters",
        ));
    }
    if spec.prompt.trim().is_empty() {
        return Err(StoreError::invalid(
            "prompt is required: say what each run should do",
        ));
    }
    check_len("prompt", &spec.prompt, 64 * 1024)?;
    let pattern = Pattern::parse(&spec.cron, timezone).map_err(StoreError::Invalid)?;
    if let Some(a) = &spec.agent_id {
        runnable(tx, team, a, None)?;
    }
    Ok(pattern)
}

/// Writes `spec` with `sql`, whose parameters are, in order: id, team,
/// the spec's fields (name, cron, timezone, prompt, agent, config,
/// metadata, enabled), the next run, the person, the time.
fn write_spec(
    tx: &Tx<'_>,
    sql: &str,
    (id, team, user, now): (&str, &str, &str, i64),
    spec: &ScheduleSpec,
    timezone: &str,
    next: Option<i64>,
) -> Result<(), StoreError> {
    tx.sql.execute(
        sql,
        params![
            id,
            team,
            spec.name,
            spec.cron.trim(),
            timezone,
            spec.prompt,
            spec.agent_id,
            config_json(&spec.model),
            json_text(&spec.metadata),
            spec.enabled,
            next,
            user,
            now
        ],
    )?;
    Ok(())
}

/// The most live schedules a team may have: each is parsed at every tick
/// inside the write lock every team shares.
const MAX_SCHEDULES: i64 = 100;

fn config_json(model: &Option<String>) -> Option<String> {
    model
        .as_ref()
        .map(|m| serde_json::json!({ "model_id": m }).to_string())
}

fn json_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

impl Store {
    /// Creates a schedule of `team` made by the person `user`.
    pub(crate) fn create_schedule(
        &self,
        team: &str,
        user: &str,
        spec: ScheduleSpec,
    ) -> Result<ScheduleRecord, StoreError> {
        let now = self.schedule_now();
        let timezone = spec.timezone.clone().unwrap_or_else(|| "UTC".into());
        self.tx(|tx| {
            let pattern = check(tx, team, &spec, &timezone)?;
            let live: i64 = tx.sql.query_row(
                "SELECT COUNT(*) FROM schedules WHERE team = ?1 AND deleted_at IS NULL",
                params![team],
                |r| r.get(0),
            )?;
            if live >= MAX_SCHEDULES {
                return Err(StoreError::Forbidden {
                    kind: "feature_not_available",
                    message: format!("your team has {live} schedules, the most it may have; delete one first"),
                });
            }
            let id = format!("sch_{}", uuid::Uuid::new_v4().simple());
            let next = spec.enabled.then(|| pattern.next_after(now)).flatten();
            write_spec(
                tx,
                "INSERT INTO schedules (id, team, name, cron, timezone, prompt, agent_id, agent_config, metadata, enabled, next_run_at, created_by, updated_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?13)",
                (&id, team, user, now),
                &spec,
                &timezone,
                next,
            )?;
            load(tx, team, &id)
        })
    }

    /// The live schedules of `team`, by name.
    pub(crate) fn schedules(&self, team: &str) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.tx(|tx| {
            let mut st = tx.sql.prepare(&format!(
                "SELECT {COLUMNS} FROM schedules WHERE team = ?1 AND deleted_at IS NULL ORDER BY name, id"
            ))?;
            let rows = st
                .query_map(params![team], from_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The schedule `id` of `team`, with its latest ticks.
    pub(crate) fn schedule(&self, team: &str, id: &str) -> Result<ScheduleRecord, StoreError> {
        self.tx(|tx| {
            let mut s = load(tx, team, id)?;
            s.ticks = ticks_of(tx, id)?;
            Ok(s)
        })
    }

    /// Replaces the schedule `id` of `team` wholly by `spec` (its
    /// timezone stays when `spec` gives none). Its next run is computed
    /// again from now when its cron or timezone changed or it was paused.
    pub(crate) fn replace_schedule(
        &self,
        team: &str,
        id: &str,
        user: &str,
        spec: ScheduleSpec,
    ) -> Result<ScheduleRecord, StoreError> {
        let now = self.schedule_now();
        self.tx(|tx| {
            let old = load(tx, team, id)?;
            let timezone = spec.timezone.clone().unwrap_or(old.timezone.clone());
            let pattern = check(tx, team, &spec, &timezone)?;
            let same_times = old.cron == spec.cron.trim() && old.timezone == timezone;
            let next = match (spec.enabled, old.next_run_at) {
                (false, _) => None,
                (true, Some(n)) if old.enabled && same_times => Some(n),
                (true, _) => pattern.next_after(now),
            };
            write_spec(
                tx,
                "UPDATE schedules SET name = ?3, cron = ?4, timezone = ?5, prompt = ?6, agent_id = ?7, agent_config = ?8, metadata = ?9, enabled = ?10, next_run_at = ?11, updated_by = ?12, updated_at = ?13
                 WHERE id = ?1 AND team = ?2",
                (id, team, user, now),
                &spec,
                &timezone,
                next,
            )?;
            load(tx, team, id)
        })
    }

    /// Pauses (`enabled = false`: no next run) or resumes (its next run
    /// computed from now: the paused time is not caught up) the schedule
    /// `id` of `team`. Resuming one that is not paused changes nothing.
    pub(crate) fn set_schedule_enabled(
        &self,
        team: &str,
        id: &str,
        enabled: bool,
    ) -> Result<ScheduleRecord, StoreError> {
        let now = self.schedule_now();
        self.tx(|tx| {
            let old = load(tx, team, id)?;
            let next = match (enabled, old.enabled, old.next_run_at) {
                (false, _, _) => None,
                (true, true, Some(n)) => Some(n),
                (true, _, _) => Pattern::parse(&old.cron, &old.timezone)
                    .map_err(StoreError::corrupt)?
                    .next_after(now),
            };
            if enabled != old.enabled || next != old.next_run_at {
                tx.sql.execute(
                    // Who the schedule runs for stays: pausing or resuming
                    // changes when it runs, not what or as whom.
                    "UPDATE schedules SET enabled = ?3, next_run_at = ?4, updated_at = ?5 WHERE id = ?1 AND team = ?2",
                    params![id, team, enabled, next, now],
                )?;
            }
            load(tx, team, id)
        })
    }

    /// Deletes the schedule `id` of `team`: it fires no more and is "not
    /// found" from now on; its row and ticks stay, so that the runs it
    /// started still name it.
    pub(crate) fn delete_schedule(&self, team: &str, id: &str) -> Result<(), StoreError> {
        let now = self.schedule_now();
        self.tx(|tx| {
            load(tx, team, id)?;
            tx.sql.execute(
                "UPDATE schedules SET deleted_at = ?3, enabled = 0, next_run_at = NULL WHERE id = ?1 AND team = ?2",
                params![id, team, now],
            )?;
            Ok(())
        })
    }

    /// Fires every schedule due at `now` (ms, on the schedule clock), in
    /// one transaction: each claims the tick of its latest occurrence at
    /// or before `now` (the missed ones before it collapse into it) and,
    /// if no one claimed that tick before, starts its run. Then its next
    /// run is the first occurrence after `now`.
    pub(crate) fn fire_due(&self, now: i64) -> Result<Fired, StoreError> {
        self.tx(|tx| {
            let mut st = tx.sql.prepare(&format!(
                "SELECT {COLUMNS} FROM schedules WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= ?1 AND deleted_at IS NULL ORDER BY next_run_at, id"
            ))?;
            let due: Vec<ScheduleRecord> = st
                .query_map(params![now], from_row)?
                .collect::<Result<_, _>>()?;
            let mut fired = Fired::default();
            for s in due {
                if self.fire_one(tx, &s, now)? {
                    fired.started += 1;
                }
                fired.ticks += 1;
            }
            Ok(fired)
        })
    }

    /// Fires the due schedule `s`; whether a run started.
    fn fire_one(&self, tx: &Tx<'_>, s: &ScheduleRecord, now: i64) -> Result<bool, StoreError> {
        let due = s.next_run_at.unwrap_or(now);
        let pattern = match Pattern::parse(&s.cron, &s.timezone) {
            Ok(p) => p,
            Err(e) => {
                // Stored before a rule changed: say so, and stop it.
                tx.sql.execute(
                    "UPDATE schedules SET next_run_at = NULL, last_spawn_error = ?2 WHERE id = ?1",
                    params![s.id, e],
                )?;
                return Ok(false);
            }
        };
        let tick = pattern.latest_at_or_before(now).map_or(due, |t| t.max(due));
        let missed = pattern.count_between(due, tick);
        let claimed = tx.sql.execute(
            "INSERT OR IGNORE INTO schedule_ticks (schedule_id, tick_at, claimed_at, missed) VALUES (?1, ?2, ?3, ?4)",
            params![s.id, tick, now, missed],
        )? == 1;
        let next = pattern.next_after(now);
        if !claimed {
            // Another process fired this occurrence: only move on.
            tx.sql.execute(
                "UPDATE schedules SET next_run_at = ?2 WHERE id = ?1",
                params![s.id, next],
            )?;
            return Ok(false);
        }
        let started = self.start_tick_run(tx, s)?;
        let error = started.as_ref().err().cloned();
        tx.sql.execute(
            "UPDATE schedule_ticks SET session_id = ?3, error = ?4 WHERE schedule_id = ?1 AND tick_at = ?2",
            params![s.id, tick, started.as_ref().ok(), error],
        )?;
        tx.sql.execute(
            "UPDATE schedules SET next_run_at = ?2, last_ran_at = ?3, last_spawn_error = ?4 WHERE id = ?1",
            params![s.id, next, tick, error],
        )?;
        if let Some(e) = &error {
            tracing::warn!("schedule {} started no run: {e}", s.id);
        }
        Ok(started.is_ok())
    }

    /// Starts the run of a tick of `s` (its id), or says why it could not:
    /// a refusal leaves nothing of the attempt behind (a savepoint), and
    /// only a failing database fails the whole call.
    fn start_tick_run(
        &self,
        tx: &Tx<'_>,
        s: &ScheduleRecord,
    ) -> Result<Result<String, String>, StoreError> {
        tx.sql.execute_batch("SAVEPOINT schedule_tick")?;
        let req = RunRequest {
            prompt: s.prompt.clone(),
            agent: s.agent_id.clone(),
            model: s.model.clone(),
            title: Some(s.name.clone()),
            metadata: s.metadata.clone(),
        };
        // A tick runs for the person who last set what it runs (made or
        // replaced it): on their workers, under their name — never a
        // prompt someone else wrote under another person's identity.
        let who = Starter {
            team: &s.team,
            user: &s.updated_by,
            key_agent: None,
        };
        let r = match super::teams::team_of_user(tx, &s.updated_by)? {
            Some(t) if t == s.team => start_run_in(
                tx,
                &who,
                req,
                Trigger::ScheduledAgent,
                Some(s.id.clone()),
            ),
            _ => Err(StoreError::invalid(format!(
                "the schedule's owner {} is no longer in this team; a teammate takes it over by replacing it (PUT)",
                s.updated_by
            ))),
        };
        match r {
            Ok(id) => {
                tx.sql.execute_batch("RELEASE schedule_tick")?;
                Ok(Ok(id))
            }
            Err(e @ (StoreError::Busy | StoreError::Storage(_) | StoreError::Open { .. })) => {
                Err(e)
            }
            Err(e) => {
                tx.sql
                    .execute_batch("ROLLBACK TO schedule_tick; RELEASE schedule_tick")?;
                Ok(Err(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
