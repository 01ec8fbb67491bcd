//! The control plane's state on SQLite (WAL mode).
//!
//! Every call is one `BEGIN IMMEDIATE` transaction, so several control-plane
//! processes on one database file stay correct: the write lock, not process
//! memory, serialises them. "At most one active claim per session" is also a
//! partial unique index, so even a bug here could not create a second one.
//! State changes go through [`crate::transitions::next`]. A PostgreSQL
//! backend would implement the same methods (the seam is this type's API).

use crate::error::ApiError;
use crate::transitions::{next, Event};
use protocol::activity::{Activity, ActivityEntry};
use protocol::conversation::{
    Answer, AppendConversation, ConversationEntry, FollowUp, HumanInput, PendingInput, TakeInput,
    TakenInput,
};
use protocol::platform::{
    Claim, ClaimableSession, ExtendRequest, Finish, Heartbeat, HeldClaim, Lease, MetadataUpdate,
    PostActivity, RegisterWorker, Worker, DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS,
    MIN_LEASE_SECONDS,
};
use protocol::session::{NewSession, Session, SessionState};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// How a claimed session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `complete`.
    Complete,
    /// `fail`.
    Fail,
    /// `release`.
    Release,
}

/// A session with its activity history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session.
    #[schema(value_type = Object)]
    pub session: Session,
    /// Its activities, in order.
    #[schema(value_type = Vec<Object>)]
    pub activities: Vec<ActivityEntry>,
    /// Its state changes, in order.
    pub transitions: Vec<Transition>,
}

/// One recorded state change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    /// Previous state.
    pub from: String,
    /// New state.
    pub to: String,
    /// RFC 3339.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// The stored body of a session (what does not change).
#[derive(Serialize, Deserialize)]
struct Body {
    agent: protocol::session::AgentVersion,
    source: protocol::session::SourceWork,
    script: Option<Vec<protocol::session::ScriptStep>>,
}

/// The SQLite store.
pub struct Store {
    conn: Mutex<Connection>,
    max_attempts: u32,
    auth: crate::auth::AuthSettings,
    outbox: tokio::sync::Notify,
    retry_schedule: Vec<u64>,
    private_webhooks: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY,
  workspace TEXT NOT NULL, agent_profile TEXT NOT NULL, runtime TEXT NOT NULL,
  registration TEXT NOT NULL, created_at INTEGER NOT NULL,
  last_heartbeat_at INTEGER, heartbeat TEXT,
  UNIQUE (workspace, agent_profile, runtime)
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  workspace TEXT NOT NULL, agent_profile TEXT NOT NULL, body TEXT NOT NULL,
  state TEXT NOT NULL, attempt INTEGER NOT NULL,
  plan TEXT NOT NULL DEFAULT '[]', external_url TEXT, outcome TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_claimable ON sessions (state, workspace, agent_profile, created_at);
CREATE TABLE IF NOT EXISTS claims (
  id TEXT PRIMARY KEY, session_id TEXT NOT NULL, worker_id TEXT NOT NULL,
  state TEXT NOT NULL, lease_expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL, ended_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_claim ON claims (session_id) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (state, lease_expires_at);
CREATE INDEX IF NOT EXISTS claims_worker ON claims (worker_id, state);
CREATE TABLE IF NOT EXISTS activities (
  session_id TEXT NOT NULL, seq INTEGER NOT NULL, claim_id TEXT NOT NULL,
  at INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  from_state TEXT NOT NULL, to_state TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_session ON transitions (session_id, id);
CREATE TABLE IF NOT EXISTS messages (
  session_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS inputs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  at INTEGER NOT NULL, body TEXT NOT NULL, taken_at INTEGER
);
CREATE INDEX IF NOT EXISTS inputs_pending ON inputs (session_id, taken_at, id);
";

/// Longest message of a conversation the store keeps.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most messages one append may carry.
const MAX_APPEND_MESSAGES: usize = 100;

/// A claim row.
struct ClaimRow {
    session_id: String,
    worker_id: String,
    state: String,
    lease_expires_at: i64,
}

impl Store {
    /// Opens (creating it) the database file in WAL mode. `max_attempts`:
    /// a session whose lease expired this many times goes to `error`.
    pub fn open(path: &Path, max_attempts: u32) -> Result<Store, ApiError> {
        let conn = Connection::open(path).map_err(|e| {
            ApiError::internal(format!("cannot open the database {}: {e}", path.display()))
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::auth::db_schema())?;
        conn.execute_batch(crate::webhooks::SCHEMA)?;
        let store = Store {
            conn: Mutex::new(conn),
            max_attempts: max_attempts.max(1),
            auth: crate::auth::AuthSettings::default(),
            outbox: tokio::sync::Notify::new(),
            retry_schedule: vec![0, 60, 300],
            private_webhooks: false,
        };
        store.ensure_runner_client()?;
        Ok(store)
    }

    /// Sets the lifetimes of issued tokens and codes (before serving).
    pub fn with_auth_settings(mut self, auth: crate::auth::AuthSettings) -> Store {
        self.auth = auth;
        self
    }

    /// Seconds to wait before each retry of a failed webhook delivery
    /// (default: immediately, 1 min, 5 min); after the last, it fails.
    pub fn with_retry_schedule(mut self, schedule: Vec<u64>) -> Store {
        self.retry_schedule = schedule;
        self
    }

    /// Allows webhook subscriptions to loopback and private addresses
    /// (test rigs, one-machine setups). Off by default: a subscription is
    /// a request the control plane makes on the caller's behalf.
    pub fn with_private_webhooks(mut self, allow: bool) -> Store {
        self.private_webhooks = allow;
        self
    }

    /// Whether private webhook targets are allowed.
    pub fn private_webhooks(&self) -> bool {
        self.private_webhooks
    }

    /// The webhook retry schedule.
    pub fn retry_schedule(&self) -> Vec<u64> {
        self.retry_schedule.clone()
    }

    /// Notified when webhook events were written.
    pub(crate) fn outbox(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    /// The lifetimes in force.
    pub fn auth_settings(&self) -> crate::auth::AuthSettings {
        self.auth
    }

    pub(crate) fn tx<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        if crate::webhooks::take_dirty() {
            self.outbox.notify_one();
        }
        Ok(r)
    }

    /// Queues a session.
    pub fn queue(&self, new: NewSession) -> Result<Session, ApiError> {
        validate_new(&new)?;
        let id = format!("ses_{}", uuid::Uuid::new_v4().simple());
        let body = serde_json::to_string(&Body {
            agent: new.agent,
            source: new.source,
            script: new.script,
        })
        .map_err(ApiError::internal)?;
        let now = now_ms();
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO sessions (id, workspace, agent_profile, body, state, attempt, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'queued', 1, ?5, ?5)",
                params![id, new.workspace, new.agent_profile, body, now],
            )?;
            record(tx, &id, "new", SessionState::Queued, now, "queued")?;
            crate::webhooks::enqueue(
                tx,
                crate::webhooks::SESSION_QUEUED,
                serde_json::json!({"session_id": id, "workspace": new.workspace, "agent_profile": new.agent_profile}),
            )?;
            load_session(tx, &id)
        })
    }

    /// A session with its activities and transitions.
    pub fn get(&self, id: &str) -> Result<SessionView, ApiError> {
        self.tx(|tx| {
            let session = load_session(tx, id)?;
            let mut st = tx.prepare(
                "SELECT seq, at, claim_id, body FROM activities WHERE session_id = ?1 ORDER BY seq",
            )?;
            let activities = st
                .query_map(params![id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
                })?
                .map(|row| {
                    let (seq, at, claim_id, body) = row?;
                    let activity: Activity = serde_json::from_str(&body).map_err(ApiError::internal)?;
                    Ok(ActivityEntry { seq: seq as u64, at: rfc3339(at), claim_id, activity })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let mut st = tx.prepare(
                "SELECT from_state, to_state, at, reason FROM transitions WHERE session_id = ?1 ORDER BY id",
            )?;
            let transitions = st
                .query_map(params![id], |r| {
                    Ok(Transition {
                        from: r.get(0)?,
                        to: r.get(1)?,
                        at: rfc3339(r.get(2)?),
                        reason: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SessionView { session, activities, transitions })
        })
    }

    /// Sessions, newest first, optionally in one state.
    pub fn list(&self, state: Option<SessionState>, limit: u32) -> Result<Vec<Session>, ApiError> {
        self.tx(|tx| {
            let ids: Vec<String> = match state {
                Some(s) => {
                    let mut st = tx.prepare("SELECT id FROM sessions WHERE state = ?1 ORDER BY created_at DESC, id LIMIT ?2")?;
                    let v = st.query_map(params![s.as_str(), limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
                    v
                }
                None => {
                    let mut st = tx.prepare("SELECT id FROM sessions ORDER BY created_at DESC, id LIMIT ?1")?;
                    let v = st.query_map(params![limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
                    v
                }
            };
            ids.iter().map(|id| load_session(tx, id)).collect()
        })
    }

    /// A person stops a session; its claim (if any) is void from now on.
    pub fn cancel(&self, id: &str) -> Result<Session, ApiError> {
        let now = now_ms();
        self.tx(|tx| {
            let s = load_session(tx, id)?;
            let to = next(s.state, Event::Cancel)?;
            set_state(tx, id, s.state, to, now, "cancelled by a person")?;
            tx.execute(
                "UPDATE claims SET state = 'cancelled', ended_at = ?2 WHERE session_id = ?1 AND state = 'active'",
                params![id, now],
            )?;
            load_session(tx, id)
        })
    }

    /// Finds or creates the worker for a workspace + agent + runtime.
    pub fn register_worker(&self, reg: RegisterWorker) -> Result<Worker, ApiError> {
        validate_worker(&reg)?;
        let now = now_ms();
        let json = serde_json::to_string(&reg).map_err(ApiError::internal)?;
        self.tx(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT id FROM workers WHERE workspace = ?1 AND agent_profile = ?2 AND runtime = ?3",
                    params![reg.workspace, reg.agent_profile, reg.runtime],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => {
                    tx.execute("UPDATE workers SET registration = ?2 WHERE id = ?1", params![id, json])?;
                    id
                }
                None => {
                    let id = format!("wrk_{}", uuid::Uuid::new_v4().simple());
                    tx.execute(
                        "INSERT INTO workers (id, workspace, agent_profile, runtime, registration, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![id, reg.workspace, reg.agent_profile, reg.runtime, json, now],
                    )?;
                    id
                }
            };
            load_worker(tx, &id)
        })
    }

    /// A worker by id (unknown ids are refused).
    pub fn worker(&self, id: &str) -> Result<Worker, ApiError> {
        self.tx(|tx| load_worker(tx, id))
    }

    /// Sessions this worker may claim, oldest first (one query, no bodies).
    pub fn claimable(&self, worker: &str, limit: u32) -> Result<Vec<ClaimableSession>, ApiError> {
        self.tx(|tx| {
            let w = load_worker(tx, worker)?;
            let mut st = tx.prepare_cached(
                "SELECT id, attempt, created_at FROM sessions WHERE state = 'queued' AND workspace = ?1 AND agent_profile = ?2 ORDER BY created_at, id LIMIT ?3",
            )?;
            let v = st
                .query_map(params![w.registration.workspace, w.registration.agent_profile, limit], |r| {
                    Ok(ClaimableSession { id: r.get(0)?, attempt: r.get(1)?, created_at: rfc3339(r.get(2)?) })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// Claims a session: the lock every other worker respects.
    pub fn claim(
        &self,
        worker: &str,
        session: &str,
        lease: Option<u32>,
    ) -> Result<Claim, ApiError> {
        let lease = lease_seconds(lease)?;
        let now = now_ms();
        self.tx(|tx| {
            let w = load_worker(tx, worker)?;
            let s = load_session(tx, session)?;
            if s.workspace != w.registration.workspace || s.agent_profile != w.registration.agent_profile {
                return Err(ApiError::not_found(
                    "not_found",
                    format!("session {session} is not one this worker may claim"),
                ));
            }
            if s.state != SessionState::Queued {
                return Err(ApiError::conflict(
                    "claim_conflict",
                    format!("session {session} is {}, not queued: another worker has it or it is finished; leave it alone", s.state.as_str()),
                ));
            }
            let to = next(s.state, Event::Claim)?;
            let changed = tx.execute(
                "UPDATE sessions SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'queued'",
                params![session, to.as_str(), now],
            )?;
            if changed != 1 {
                return Err(ApiError::conflict("claim_conflict", format!("session {session} was claimed by another worker")));
            }
            crate::webhooks::enqueue(
                tx,
                crate::webhooks::SESSION_STATE_CHANGED,
                serde_json::json!({"session_id": session, "from": s.state.as_str(), "to": to.as_str(), "reason": "claimed"}),
            )?;
            record(tx, session, s.state.as_str(), to, now, &format!("claimed by {worker}"))?;
            let claim_id = format!("clm_{}", uuid::Uuid::new_v4().simple());
            let expires = now + i64::from(lease) * 1000;
            tx.execute(
                "INSERT INTO claims (id, session_id, worker_id, state, lease_expires_at, created_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
                params![claim_id, session, worker, expires, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    ApiError::conflict("claim_conflict", format!("session {session} already has an active claim"))
                }
                e => e.into(),
            })?;
            Ok(Claim {
                claim_id,
                worker_id: worker.to_string(),
                lease_expires_at: rfc3339(expires),
                session: load_session(tx, session)?,
            })
        })
    }

    /// Extends a lease (from now).
    pub fn extend(&self, session: &str, req: ExtendRequest) -> Result<Lease, ApiError> {
        let lease = lease_seconds(req.lease_seconds)?;
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &req.claim_id, now)?;
            let expires = now + i64::from(lease) * 1000;
            tx.execute(
                "UPDATE claims SET lease_expires_at = ?2 WHERE id = ?1",
                params![req.claim_id, expires],
            )?;
            Ok(Lease {
                claim_id: req.claim_id.clone(),
                lease_expires_at: rfc3339(expires),
            })
        })
    }

    /// Records a heartbeat (health only).
    pub fn heartbeat(&self, worker: &str, hb: Heartbeat) -> Result<(), ApiError> {
        if hb.status.len() > 32 {
            return Err(ApiError::invalid("status is longer than 32 characters"));
        }
        let now = now_ms();
        let json = serde_json::to_string(&hb).map_err(ApiError::internal)?;
        self.tx(|tx| {
            load_worker(tx, worker)?;
            tx.execute(
                "UPDATE workers SET last_heartbeat_at = ?2, heartbeat = ?3 WHERE id = ?1",
                params![worker, now, json],
            )?;
            Ok(())
        })
    }

    /// Appends an activity under a valid claim.
    pub fn post_activity(
        &self,
        session: &str,
        post: PostActivity,
    ) -> Result<ActivityEntry, ApiError> {
        validate_activity(&post.activity)?;
        let now = now_ms();
        let body = serde_json::to_string(&post.activity).map_err(ApiError::internal)?;
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
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM activities WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO activities (session_id, seq, claim_id, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session, seq, post.claim_id, now, body],
            )?;
            Ok(ActivityEntry { seq: seq as u64, at: rfc3339(now), claim_id: post.claim_id.clone(), activity: post.activity.clone() })
        })
    }

    /// Updates the plan and/or external URL under a valid claim.
    pub fn metadata(&self, session: &str, m: MetadataUpdate) -> Result<Session, ApiError> {
        if let Some(p) = &m.plan {
            if p.len() > 200 || p.iter().any(|s| s.len() > 2000) {
                return Err(ApiError::invalid(
                    "plan: at most 200 steps of 2000 characters",
                ));
            }
        }
        if let Some(u) = &m.external_url {
            if u.len() > 2048 || !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ApiError::invalid(
                    "external_url must be an http(s) URL of at most 2048 characters",
                ));
            }
        }
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &m.claim_id, now)?;
            if let Some(p) = &m.plan {
                tx.execute(
                    "UPDATE sessions SET plan = ?2, updated_at = ?3 WHERE id = ?1",
                    params![
                        session,
                        serde_json::to_string(p).map_err(ApiError::internal)?,
                        now
                    ],
                )?;
            }
            if let Some(u) = &m.external_url {
                tx.execute(
                    "UPDATE sessions SET external_url = ?2, updated_at = ?3 WHERE id = ?1",
                    params![session, u, now],
                )?;
            }
            load_session(tx, session)
        })
    }

    /// Completes, fails or releases a session under a valid claim.
    pub fn finish(&self, session: &str, outcome: Outcome, f: Finish) -> Result<Session, ApiError> {
        if f.message.len() > 16 * 1024 {
            return Err(ApiError::invalid("message is longer than 16 KiB"));
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
            set_state(tx, session, s.state, to, now, claim_state)?;
            if outcome != Outcome::Release {
                tx.execute(
                    "UPDATE sessions SET outcome = ?2 WHERE id = ?1",
                    params![session, f.message],
                )?;
            }
            tx.execute(
                "UPDATE claims SET state = ?2, ended_at = ?3 WHERE id = ?1",
                params![f.claim_id, claim_state, now],
            )?;
            load_session(tx, session)
        })
    }

    /// Appends messages to a session's conversation under a valid claim.
    pub fn append_conversation(
        &self,
        session: &str,
        a: AppendConversation,
    ) -> Result<u64, ApiError> {
        if a.messages.len() > MAX_APPEND_MESSAGES {
            return Err(ApiError::invalid(format!(
                "messages: at most {MAX_APPEND_MESSAGES} per call"
            )));
        }
        let bodies = a
            .messages
            .iter()
            .map(|m| serde_json::to_string(m).map_err(ApiError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(i) = bodies.iter().position(|b| b.len() > MAX_MESSAGE_BYTES) {
            return Err(ApiError::invalid(format!(
                "messages[{i}] is longer than {} KiB; cap tool results before sending",
                MAX_MESSAGE_BYTES / 1024
            )));
        }
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &a.claim_id, now)?;
            let mut seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )?;
            if let Some(expect) = a.expect_count {
                let expect = expect as i64;
                if seq == expect + bodies.len() as i64 {
                    // A retry of an append that landed.
                    let landed: Vec<String> = {
                        let mut st = tx.prepare("SELECT body FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq")?;
                        let v = st.query_map(params![session, expect], |r| r.get(0))?.collect::<Result<_, _>>()?;
                        v
                    };
                    if landed == bodies {
                        return Ok(seq as u64);
                    }
                }
                if seq != expect {
                    return Err(ApiError::conflict(
                        "conversation_conflict",
                        format!("the conversation has {seq} messages, not {expect}; read it again before appending"),
                    ));
                }
            }
            for b in &bodies {
                seq += 1;
                tx.execute(
                    "INSERT INTO messages (session_id, seq, at, body) VALUES (?1, ?2, ?3, ?4)",
                    params![session, seq, now, b],
                )?;
            }
            Ok(seq as u64)
        })
    }

    /// A session's conversation, oldest first.
    pub fn conversation(&self, session: &str) -> Result<Vec<ConversationEntry>, ApiError> {
        self.tx(|tx| {
            load_session(tx, session)?;
            let mut st = tx
                .prepare("SELECT seq, at, body FROM messages WHERE session_id = ?1 ORDER BY seq")?;
            let rows = st
                .query_map(params![session], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(seq, at, body)| {
                    Ok(ConversationEntry {
                        seq: seq as u64,
                        at: rfc3339(at),
                        message: serde_json::from_str(&body).map_err(ApiError::internal)?,
                    })
                })
                .collect()
        })
    }

    /// A person answers a session that is awaiting input; it is active
    /// again and its worker takes the answer.
    pub fn answer(&self, session: &str, a: Answer) -> Result<Session, ApiError> {
        check_name("by", &a.by)?;
        check_len("message", &a.message, 16 * 1024)?;
        let now = now_ms();
        let body =
            serde_json::to_string(&HumanInput::Answer(a.clone())).map_err(ApiError::internal)?;
        self.tx(|tx| {
            let s = load_session(tx, session)?;
            if s.state != SessionState::AwaitingInput {
                return Err(ApiError::conflict(
                    "invalid_transition",
                    format!(
                        "session {session} is {}, not awaiting_input: there is nothing to answer",
                        s.state.as_str()
                    ),
                ));
            }
            // The answer must name the question now asked.
            let last: Option<String> = tx
                .query_row(
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
                    None => return Err(ApiError::invalid(format!("question_id is missing: answer question {asked} (the latest awaiting_input activity)"))),
                    Some(q) if q != &asked => {
                        return Err(ApiError::conflict("stale_question", format!("question {q} is not the one asked now ({asked}); read the session's latest awaiting_input activity")))
                    }
                    Some(_) => {}
                }
            }
            let reason = format!("answered by {}", a.by);
            add_input(tx, &s, Event::Resume, &reason, &body, now)?;
            load_session(tx, session)
        })
    }

    /// A person sends a follow-up to a finished (complete or error)
    /// session: it is queued again, with a fresh attempt count, and the
    /// worker that claims it resumes the conversation with this message.
    pub fn follow_up(&self, session: &str, f: FollowUp) -> Result<Session, ApiError> {
        check_name("by", &f.by)?;
        check_len("message", &f.message, 64 * 1024)?;
        if f.message.trim().is_empty() {
            return Err(ApiError::invalid("message is empty; say what to do next"));
        }
        let now = now_ms();
        let body =
            serde_json::to_string(&HumanInput::FollowUp(f.clone())).map_err(ApiError::internal)?;
        self.tx(|tx| {
            let s = load_session(tx, session)?;
            if s.agent.model == "script" {
                return Err(ApiError::conflict(
                    "invalid_transition",
                    "a scripted session takes no follow-up (it has no conversation to resume); queue a new session",
                ));
            }
            let reason = format!("follow-up from {}", f.by);
            add_input(tx, &s, Event::FollowUp, &reason, &body, now)?;
            tx.execute(
                "UPDATE sessions SET attempt = 1, outcome = NULL WHERE id = ?1",
                params![session],
            )?;
            load_session(tx, session)
        })
    }

    /// The oldest input not yet acknowledged, under a valid claim (the
    /// same one until it is acknowledged).
    pub fn next_input(&self, session: &str, t: TakeInput) -> Result<TakenInput, ApiError> {
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &t.claim_id, now)?;
            let row: Option<(i64, String)> = tx
                .query_row(
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
                    input: serde_json::from_str(&body).map_err(ApiError::internal)?,
                }),
            })
        })
    }

    /// Acknowledges an input (idempotent), under a valid claim.
    pub fn ack_input(&self, session: &str, input: u64, t: TakeInput) -> Result<(), ApiError> {
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &t.claim_id, now)?;
            let n = tx.execute(
                "UPDATE inputs SET taken_at = COALESCE(taken_at, ?3) WHERE id = ?1 AND session_id = ?2",
                params![input as i64, session, now],
            )?;
            if n == 0 {
                return Err(ApiError::not_found("not_found", format!("session {session} has no input {input}")));
            }
            Ok(())
        })
    }

    /// Active claims a worker holds.
    pub fn held_claims(&self, worker: &str) -> Result<Vec<HeldClaim>, ApiError> {
        self.tx(|tx| {
            load_worker(tx, worker)?;
            let mut st = tx.prepare(
                "SELECT id, session_id, lease_expires_at FROM claims WHERE worker_id = ?1 AND state = 'active' ORDER BY created_at",
            )?;
            let v = st
                .query_map(params![worker], |r| {
                    Ok(HeldClaim { claim_id: r.get(0)?, session_id: r.get(1)?, lease_expires_at: rfc3339(r.get(2)?) })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// Voids expired claims: their sessions go `stale`, then `queued` with
    /// the attempt counted, or `error` once out of attempts. Returns how
    /// many claims expired.
    pub fn sweep(&self) -> Result<usize, ApiError> {
        let now = now_ms();
        let max = self.max_attempts;
        self.tx(|tx| {
            let mut st = tx.prepare(
                "SELECT id, session_id FROM claims WHERE state = 'active' AND lease_expires_at <= ?1",
            )?;
            let expired: Vec<(String, String)> =
                st.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            for (claim, session) in &expired {
                tx.execute("UPDATE claims SET state = 'expired', ended_at = ?2 WHERE id = ?1", params![claim, now])?;
                let s = load_session(tx, session)?;
                let stale = next(s.state, Event::LeaseExpired)?;
                set_state(tx, session, s.state, stale, now, &format!("lease of {claim} expired"))?;
                if s.attempt >= max {
                    let to = next(stale, Event::GiveUp)?;
                    set_state(tx, session, stale, to, now, &format!("out of attempts ({max})"))?;
                    tx.execute(
                        "UPDATE sessions SET outcome = ?2 WHERE id = ?1",
                        params![session, format!("the lease expired on all {max} attempts")],
                    )?;
                } else {
                    let to = next(stale, Event::Requeue)?;
                    set_state(tx, session, stale, to, now, "requeued after a stale claim")?;
                    tx.execute("UPDATE sessions SET attempt = attempt + 1 WHERE id = ?1", params![session])?;
                }
            }
            Ok(expired.len())
        })
    }

    /// Claims per session and activities counts (for tests and audits):
    /// `(session id, state, claims, terminal transitions)`.
    pub fn audit_counts(&self) -> Result<Vec<(String, String, u32, u32)>, ApiError> {
        self.tx(|tx| {
            let mut st = tx.prepare(
                "SELECT s.id, s.state,
                    (SELECT COUNT(*) FROM claims c WHERE c.session_id = s.id),
                    (SELECT COUNT(*) FROM transitions t WHERE t.session_id = s.id AND t.to_state IN ('complete','error','cancelled'))
                 FROM sessions s ORDER BY s.created_at",
            )?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }
}

fn lease_seconds(lease: Option<u32>) -> Result<u32, ApiError> {
    let l = lease.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&l) {
        return Err(ApiError::invalid(format!(
            "leaseSeconds must be between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS} (got {l})"
        )));
    }
    Ok(l)
}

fn record(
    tx: &Transaction<'_>,
    id: &str,
    from: &str,
    to: SessionState,
    now: i64,
    reason: &str,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO transitions (session_id, from_state, to_state, at, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, from, to.as_str(), now, reason],
    )?;
    Ok(())
}

/// A person's input: the state change it causes, and the input kept for
/// the worker to take.
fn add_input(
    tx: &Transaction<'_>,
    s: &Session,
    event: Event,
    reason: &str,
    body: &str,
    now: i64,
) -> Result<(), ApiError> {
    let to = next(s.state, event)?;
    set_state(tx, &s.id, s.state, to, now, reason)?;
    tx.execute(
        "INSERT INTO inputs (session_id, at, body) VALUES (?1, ?2, ?3)",
        params![s.id, now, body],
    )?;
    Ok(())
}

fn set_state(
    tx: &Transaction<'_>,
    id: &str,
    from: SessionState,
    to: SessionState,
    now: i64,
    reason: &str,
) -> Result<(), ApiError> {
    let changed = tx.execute(
        "UPDATE sessions SET state = ?3, updated_at = ?4 WHERE id = ?1 AND state = ?2",
        params![id, from.as_str(), to.as_str(), now],
    )?;
    if changed != 1 {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("session {id} changed state concurrently; retry"),
        ));
    }
    crate::webhooks::enqueue(
        tx,
        crate::webhooks::SESSION_STATE_CHANGED,
        serde_json::json!({"session_id": id, "from": from.as_str(), "to": to.as_str(), "reason": reason}),
    )?;
    if to == SessionState::Queued {
        crate::webhooks::enqueue(
            tx,
            crate::webhooks::SESSION_QUEUED,
            serde_json::json!({"session_id": id}),
        )?;
    }
    record(tx, id, from.as_str(), to, now, reason)
}

/// The session of a claim that is active, unexpired and belongs to it.
fn valid_claim(
    tx: &Transaction<'_>,
    session: &str,
    claim: &str,
    now: i64,
) -> Result<Session, ApiError> {
    let row = tx
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
        return Err(ApiError::conflict(
            "claim_invalid",
            format!("claim {claim} does not exist; claim the session first"),
        ));
    };
    if row.session_id != session {
        return Err(ApiError::conflict(
            "claim_invalid",
            format!("claim {claim} is not a claim on session {session}"),
        ));
    }
    if row.state != "active" {
        return Err(ApiError::conflict(
            "claim_invalid",
            format!(
                "claim {claim} is {} and no longer holds session {session}; stop working on it",
                row.state
            ),
        ));
    }
    if row.lease_expires_at <= now {
        return Err(ApiError::conflict(
            "claim_invalid",
            format!("the lease of claim {claim} (worker {}) has expired; stop working on session {session}", row.worker_id),
        ));
    }
    load_session(tx, session)
}

fn load_session(tx: &Transaction<'_>, id: &str) -> Result<Session, ApiError> {
    let row = tx
        .query_row(
            "SELECT id, workspace, agent_profile, body, state, attempt, plan, external_url, outcome, created_at, updated_at FROM sessions WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?, r.get::<_, u32>(5)?, r.get::<_, String>(6)?, r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?, r.get::<_, i64>(9)?, r.get::<_, i64>(10)?,
                ))
            },
        )
        .optional()?;
    let Some((
        id,
        workspace,
        agent_profile,
        body,
        state,
        attempt,
        plan,
        external_url,
        outcome,
        created,
        updated,
    )) = row
    else {
        return Err(ApiError::not_found("not_found", format!("no session {id}")));
    };
    let body: Body = serde_json::from_str(&body).map_err(ApiError::internal)?;
    Ok(Session {
        id,
        workspace,
        agent_profile,
        agent: body.agent,
        source: body.source,
        script: body.script,
        state: SessionState::parse(&state)
            .ok_or_else(|| ApiError::internal(format!("bad state {state}")))?,
        attempt,
        plan: serde_json::from_str(&plan).unwrap_or_default(),
        external_url,
        outcome,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

fn load_worker(tx: &Transaction<'_>, id: &str) -> Result<Worker, ApiError> {
    let row: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT registration, last_heartbeat_at FROM workers WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((reg, hb)) = row else {
        return Err(ApiError::not_found(
            "unknown_worker",
            format!("no worker {id}: it was never registered or was removed; register again (reconfigure the worker)"),
        ));
    };
    Ok(Worker {
        worker_id: id.to_string(),
        registration: serde_json::from_str(&reg).map_err(ApiError::internal)?,
        last_heartbeat_at: hb.map(rfc3339),
    })
}

fn check_len(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() > max {
        return Err(ApiError::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

fn check_name(field: &str, s: &str) -> Result<(), ApiError> {
    check_len(field, s, 200)?;
    if s.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    Ok(())
}

fn validate_new(n: &NewSession) -> Result<(), ApiError> {
    check_name("workspace", &n.workspace)?;
    check_name("agent_profile", &n.agent_profile)?;
    check_name("agent.name", &n.agent.name)?;
    check_name("agent.model", &n.agent.model)?;
    check_len("agent.system_prompt", &n.agent.system_prompt, 64 * 1024)?;
    if n.agent.enabled_tools.len() > 64 {
        return Err(ApiError::invalid("agent.enabled_tools: at most 64 tools"));
    }
    check_len("source.title", &n.source.title, 1000)?;
    check_len("source.description", &n.source.description, 64 * 1024)?;
    check_len("source.prompt", &n.source.prompt, 64 * 1024)?;
    if n.source.comments.len() > 500 || n.source.comments.iter().any(|c| c.len() > 16 * 1024) {
        return Err(ApiError::invalid(
            "source.comments: at most 500 comments of 16 KiB",
        ));
    }
    match (&n.script, n.agent.model.as_str()) {
        (Some(s), "script") if s.len() <= 200 => Ok(()),
        (Some(_), "script") => Err(ApiError::invalid("script: at most 200 steps")),
        (Some(_), _) => Err(ApiError::invalid(
            "script is only allowed when agent.model is \"script\"",
        )),
        (None, "script") => Err(ApiError::invalid(
            "agent.model \"script\" needs a script (a list of {tool, input})",
        )),
        (None, _) => Ok(()),
    }
}

fn validate_worker(r: &RegisterWorker) -> Result<(), ApiError> {
    check_name("workspace", &r.workspace)?;
    check_name("agent_profile", &r.agent_profile)?;
    check_name("runtime", &r.runtime)?;
    check_name("display_name", &r.display_name)?;
    if r.execution_mode != "cloud" {
        return Err(ApiError::invalid("execution_mode must be \"cloud\""));
    }
    if !(1..=256).contains(&r.concurrency) {
        return Err(ApiError::invalid("concurrency must be between 1 and 256"));
    }
    if r.capabilities.len() > 100 || r.policy_entries.len() > 100 {
        return Err(ApiError::invalid(
            "capabilities and policy_entries: at most 100 entries each",
        ));
    }
    if let Some(c) = &r.custom_instructions {
        check_len("custom_instructions", c, 16 * 1024)?;
    }
    Ok(())
}

fn validate_activity(a: &Activity) -> Result<(), ApiError> {
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
        return Err(ApiError::invalid("activity text is longer than 64 KiB"));
    }
    Ok(())
}
