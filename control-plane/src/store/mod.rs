//! The control plane's state on SQLite (WAL mode), and the only place that
//! speaks SQL.
//!
//! One file per table family: [`sessions`] (and their transitions),
//! [`workers`], [`claims`] (leases, finishing, the sweep), [`activities`]
//! (and metadata), [`events`] (a session's activities and transitions as
//! one numbered stream), [`conversation`], [`inputs`] (answers and follow-ups),
//! [`attachments`] (the images of work and follow-ups),
//! [`webhooks`] (subscriptions and the outbox), [`auth`] (the
//! authorization server's users, clients, codes, tokens and API keys),
//! [`repositories`] (what workers report they can work on),
//! [`rate_limit`] (per-user call counts), [`cloud_agents`] (the Cloud
//! Agents API's agents beside their sessions), [`teams`] (what users
//! belong to), [`agent_configs`] (agents as versioned configurations) and
//! [`schedules`] (cron triggers and their ticks). [`access`] says which user
//! may see and drive which session and worker.
//! [`schema`] creates every table.
//!
//! Every call is one `BEGIN IMMEDIATE` transaction ([`Store::tx`]), so
//! several control-plane processes on one database file stay correct: the
//! write lock, not process memory, serialises them. "At most one active
//! claim per session" is also a partial unique index, so even a bug here
//! could not create a second one. State changes go through
//! [`crate::transitions::next`].
//!
//! The store knows nothing of HTTP: it answers with a [`StoreError`], and
//! the API layer decides the status and body. The webhook sender and the
//! authorization server sit above it and reach the database only through
//! the repository functions of [`webhooks`] and [`auth`], on a [`Tx`] the
//! store opened. A PostgreSQL backend would re-implement this module (the
//! seam is the methods of [`Store`] and those repository functions; no SQL
//! lives anywhere else).

mod access;
mod activities;
mod agent_configs;
pub(crate) mod artifacts;
pub(crate) mod attachments;
pub(crate) mod auth;
mod claims;
mod cloud_agents;
mod conversation;
pub(crate) mod device;
mod error;
mod events;
mod inputs;
mod limits;
mod rate_limit;
mod repositories;
mod review;
mod runs;
mod schedules;
mod schema;
mod sessions;
pub(crate) mod skills;
mod teams;
mod web_sessions;
pub(crate) mod webhooks;
mod workers;

pub(crate) use agent_configs::{check_agent_for_key, AgentCursor, AgentQuery, AgentStart};
pub use auth::AuthSettings;
pub(crate) use claims::Outcome;
pub(crate) use cloud_agents::{AgentWebhook, NewAgent, ServingWorker, CURSOR_FORMAT};
pub use error::{ClaimProblem, ConflictKind, Missing, StoreError};
pub(crate) use events::{EventPage, SessionEvent};
#[cfg(test)]
pub(crate) use rate_limit::testing as rate_limit_testing;
pub(crate) use rate_limit::Admission;
pub(crate) use repositories::Reported;
pub(crate) use review::{DecisionFilter, ReviewedSession, SessionFilter};
pub(crate) use runs::{RunQuery, RunRequest, RunSort, Starter};
pub(crate) use schedules::{ScheduleRecord, ScheduleSpec};
pub(crate) use sessions::SessionView;
pub use web_sessions::LINK_TTL_MS;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// The SQLite store.
pub struct Store {
    conn: Mutex<Connection>,
    max_attempts: u32,
    auth: AuthSettings,
    /// Set when a transaction wrote webhook events; taken after its commit
    /// to wake [`Store::outbox`]. Per store: another store's commit (tests
    /// and benchmarks run several in one process) must not take it.
    outbox_dirty: AtomicBool,
    outbox: tokio::sync::Notify,
    /// The id of every session that got a new event (activity or
    /// transition), sent after the commit that wrote it: what wakes the
    /// event streams of this process. (Another process writing to the
    /// same file wakes nobody here; the streams' slow poll finds those.)
    events: tokio::sync::broadcast::Sender<Arc<str>>,
    retry_schedule: Vec<u64>,
    private_webhooks: bool,
    /// Users whose workers run every user's sessions (the operator's), not
    /// only their own: [`access`].
    trusted_worker_users: Vec<String>,
    /// Bytes of images one user's Cloud Agents launches may keep stored.
    image_quota: i64,
    /// Launches and follow-ups one user may make a minute and an hour.
    prompt_limits: [usize; 2],
    /// The control plane's URL as its users reach it (no trailing slash):
    /// the base of the agents' pages (`target.url`).
    public_url: String,
    /// How many live agents a team may have and run (its plan's limit).
    max_agents: usize,
    /// What schedules count their ticks by (the real clock, or a test
    /// clock that runs faster).
    schedule_clock: crate::schedules::ScheduleClock,
    /// How often [`crate::serve`] looks for due schedules.
    schedule_tick: Duration,
    /// This control plane's counts (`GET /metrics`).
    metrics: crate::metrics::Metrics,
    /// The bearer token a scrape of `/metrics` must send; `None`: open.
    metrics_token: Option<String>,
}

/// One open transaction of a [`Store`]. Only the store's modules can run
/// SQL on it; the layers above hand it to the store's repository functions,
/// so that several of them commit or roll back together.
pub(crate) struct Tx<'c> {
    sql: Transaction<'c>,
    outbox_dirty: &'c AtomicBool,
    /// Sessions this transaction wrote an event of (announced after the
    /// commit, forgotten on a rollback).
    sessions_changed: RefCell<Vec<String>>,
    /// [`Store::public_url`], for what a change writes that names a page.
    public_url: &'c str,
    /// [`Store::max_agents`], for what counts a team's agents.
    max_agents: usize,
    /// [`Store::trusted_worker_users`], for what asks which workers may
    /// run whose sessions.
    trusted_worker_users: &'c [String],
}

impl Tx<'_> {
    /// Records that webhook events were written in this transaction.
    fn outbox_written(&self) {
        self.outbox_dirty.store(true, Ordering::SeqCst);
    }

    /// Records that session `id` got a new event in this transaction.
    fn session_changed(&self, id: &str) {
        let mut v = self.sessions_changed.borrow_mut();
        if !v.iter().any(|s| s == id) {
            v.push(id.to_string());
        }
    }
}

/// How many live agents a team may have by default (`--max-agents`); the
/// default agent counts.
pub const DEFAULT_MAX_AGENTS: usize = 10;

/// Milliseconds since the epoch: how every time is stored.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored time as the API shows it (RFC 3339, milliseconds, UTC).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating it) the database file in WAL mode. `max_attempts`:
    /// a session whose lease expired this many times goes to `error`.
    pub fn open(path: &Path, max_attempts: u32) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::create(&conn)?;
        let store = Store {
            conn: Mutex::new(conn),
            max_attempts: max_attempts.max(1),
            auth: AuthSettings::default(),
            outbox_dirty: AtomicBool::new(false),
            outbox: tokio::sync::Notify::new(),
            events: tokio::sync::broadcast::channel(1024).0,
            retry_schedule: vec![0, 60, 300],
            private_webhooks: false,
            public_url: "http://127.0.0.1:8700".into(),
            max_agents: DEFAULT_MAX_AGENTS,
            trusted_worker_users: Vec::new(),
            image_quota: 256 << 20,
            prompt_limits: cloud_agents::PROMPT_LIMITS,
            schedule_clock: crate::schedules::ScheduleClock::real(),
            schedule_tick: Duration::from_secs(1),
            metrics: crate::metrics::Metrics::new(),
            metrics_token: None,
        };
        store.tx(auth::seed_runner_client)?;
        Ok(store)
    }

    /// Requires `token` as the bearer of every `GET /metrics` (`None`:
    /// the endpoint is open; it carries counts only).
    pub fn with_metrics_token(mut self, token: Option<String>) -> Store {
        self.metrics_token = token;
        self
    }

    /// The bearer token `GET /metrics` asks for, if any.
    pub(crate) fn metrics_token(&self) -> Option<&str> {
        self.metrics_token.as_deref()
    }

    /// This control plane's counts.
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// How many sessions are in each state, for the metrics.
    pub(crate) fn session_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.tx(|tx| {
            let mut st = tx
                .sql
                .prepare("SELECT state, COUNT(*) FROM sessions GROUP BY state")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, i64)>, _>>()?;
            Ok(rows)
        })
    }

    /// Sets the lifetimes of issued tokens and codes (before serving).
    pub fn with_auth_settings(mut self, auth: AuthSettings) -> Store {
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

    /// How many live agents a team may have (at least 1; the default agent
    /// counts): those over it are listed unavailable, and cannot be
    /// changed, get keys or start runs.
    pub fn with_max_agents(mut self, n: usize) -> Store {
        self.max_agents = n.max(1);
        self
    }

    /// Sets the URL people and clients reach the control plane at (the
    /// base of `target.url` in the Cloud Agents API and its webhooks).
    pub fn with_public_url(mut self, url: &str) -> Store {
        self.public_url = url.trim_end_matches('/').to_string();
        self
    }

    /// Users whose workers may run every user's sessions (by default a
    /// session with an owner runs only on its owner's workers).
    pub fn with_worker_users(mut self, users: Vec<String>) -> Store {
        self.trusted_worker_users = users;
        self
    }

    /// Sets how many bytes of images one user's agents may keep stored
    /// (default 256 MiB; a launch or follow-up over it is refused).
    pub fn with_image_quota(mut self, bytes: i64) -> Store {
        self.image_quota = bytes;
        self
    }

    /// Sets how many launches and follow-ups one user may make a minute
    /// and an hour (default 30 and 600).
    pub fn with_prompt_limits(mut self, per_minute: usize, per_hour: usize) -> Store {
        self.prompt_limits = [per_minute, per_hour];
        self
    }

    /// Counts schedules' ticks by `clock` (a test clock makes cron minutes
    /// pass in seconds; every process on one file must get the same).
    pub fn with_schedule_clock(mut self, clock: crate::schedules::ScheduleClock) -> Store {
        self.schedule_clock = clock;
        self
    }

    /// Looks for due schedules every `every` (default 1 s; at least 10 ms).
    pub fn with_schedule_tick(mut self, every: Duration) -> Store {
        self.schedule_tick = every.max(Duration::from_millis(10));
        self
    }

    /// How often due schedules are looked for.
    pub fn schedule_tick(&self) -> Duration {
        self.schedule_tick
    }

    /// Now, for schedules (milliseconds since the epoch).
    pub fn schedule_now(&self) -> i64 {
        self.schedule_clock.now_ms()
    }

    /// The URL people and clients reach the control plane at.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Whether private webhook targets are allowed.
    pub fn private_webhooks(&self) -> bool {
        self.private_webhooks
    }

    /// The webhook retry schedule.
    pub fn retry_schedule(&self) -> Vec<u64> {
        self.retry_schedule.clone()
    }

    /// Notified after a commit that wrote webhook events.
    pub(crate) fn outbox(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    /// Announces, from now on, the id of every session that gets a new
    /// event, after the commit that wrote it. Subscribe before reading, so
    /// that nothing committed after the read goes unannounced. A receiver
    /// that lags behind is told so (`Lagged`) and should read again.
    pub(crate) fn session_events_written(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// The lifetimes in force.
    pub fn auth_settings(&self) -> AuthSettings {
        self.auth
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when `f`
    /// succeeds, rolled back (events included) when it fails.
    pub(crate) fn tx<R>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = Tx {
            sql: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
            outbox_dirty: &self.outbox_dirty,
            sessions_changed: RefCell::new(Vec::new()),
            public_url: &self.public_url,
            max_agents: self.max_agents,
            trusted_worker_users: &self.trusted_worker_users,
        };
        let r = f(&tx);
        let changed = tx.sessions_changed.take();
        let committed = match r {
            Ok(r) => tx.sql.commit().map(|()| r).map_err(StoreError::from),
            Err(e) => Err(e),
        };
        // Events of a rolled-back transaction were never written.
        if self.outbox_dirty.swap(false, Ordering::SeqCst) && committed.is_ok() {
            self.outbox.notify_one();
        }
        if committed.is_ok() {
            for id in changed {
                // No receiver (no stream open) is not an error.
                let _ = self.events.send(id.into());
            }
        }
        committed
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A store on a fresh file, and the inputs most tests need.

    use super::Store;
    use protocol::platform::{Claim, RegisterWorker, Worker};
    use protocol::session::{AgentVersion, NewSession, NewSource, Session};

    /// A store on a new database in its own temporary directory (kept
    /// alive by the returned guard).
    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cp.db"), 2).unwrap();
        (dir, store)
    }

    /// A worker of workspace `w`, profile `p`, runtime `r` serving
    /// `models`, with Bash and Read.
    pub(crate) fn registration(models: &[&str]) -> RegisterWorker {
        RegisterWorker {
            workspace: "w".into(),
            agent_profile: "p".into(),
            runtime: "r".into(),
            execution_mode: "cloud".into(),
            display_name: "worker".into(),
            capabilities: vec!["Bash".into(), "Read".into()],
            concurrency: 1,
            policy_entries: vec![],
            custom_instructions: None,
            models: models.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// A model session for workspace `w`, profile `p`, not yet queued.
    pub(crate) fn new_session() -> NewSession {
        NewSession {
            workspace: "w".into(),
            agent_profile: "p".into(),
            agent: AgentVersion {
                name: "a".into(),
                version: 1,
                model: "m".into(),
                ..Default::default()
            }
            .into(),
            source: NewSource::default(),
            script: None,
            repo: None,
            trigger: None,
        }
    }

    /// [`new_session`], queued.
    pub(crate) fn queue(store: &Store) -> Session {
        store.queue(new_session()).unwrap()
    }

    /// A worker of workspace `w`, profile `p`, runtime `runtime`, of no
    /// user (it runs only sessions that are everyone's).
    pub(crate) fn worker(store: &Store, runtime: &str) -> Worker {
        worker_of(store, runtime, None)
    }

    /// [`worker`], registered by `user`.
    pub(crate) fn worker_of(store: &Store, runtime: &str, user: Option<&str>) -> Worker {
        store
            .register_worker_as(
                RegisterWorker {
                    workspace: "w".into(),
                    agent_profile: "p".into(),
                    runtime: runtime.into(),
                    execution_mode: "cloud".into(),
                    display_name: runtime.into(),
                    capabilities: vec![],
                    concurrency: 1,
                    policy_entries: vec![],
                    custom_instructions: None,
                    models: vec![],
                },
                user,
            )
            .unwrap()
    }

    /// A queued session claimed by a new worker, with a `lease` in seconds.
    pub(crate) fn claimed(store: &Store, lease: u32) -> (Worker, Claim) {
        let s = queue(store);
        let w = worker(store, "r");
        let c = store.claim(&w.worker_id, &s.id, Some(lease)).unwrap();
        (w, c)
    }

    /// Moves every active claim's lease expiry into the past.
    pub(crate) fn expire_leases(store: &Store) {
        store
            .tx(|tx| {
                tx.sql.execute(
                    "UPDATE claims SET lease_expires_at = 0 WHERE state = 'active'",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::store;
    use super::webhooks::{enqueue, NewSubscription, SESSION_QUEUED};
    use super::*;

    fn subscribed() -> (tempfile::TempDir, Store) {
        let (d, s) = store();
        s.add_subscription(
            NewSubscription {
                url: "https://hooks.example/in".into(),
                key: "k".into(),
                event_types: vec!["*".into()],
                sign: false,
            },
            None,
        )
        .unwrap();
        (d, s)
    }

    /// Whether the store's delivery loop would be woken now.
    async fn woken(s: &Store) -> bool {
        tokio::time::timeout(Duration::from_millis(50), s.outbox().notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn outbox_flag_is_per_store() {
        let (_a, a) = subscribed();
        let (_b, b) = subscribed();
        // b commits while a's transaction holds an event: b's commit must
        // not take a's news, nor wake b's loop.
        a.tx(|tx| {
            enqueue(tx, SESSION_QUEUED, serde_json::json!({}))?;
            b.tx(|_| Ok(()))
        })
        .unwrap();
        assert!(!woken(&b).await, "b wrote nothing");
        assert!(woken(&a).await, "a wrote an event");
    }

    #[tokio::test]
    async fn rolled_back_events_wake_nobody() {
        let (_a, a) = subscribed();
        let r: Result<(), _> = a.tx(|tx| {
            enqueue(tx, SESSION_QUEUED, serde_json::json!({}))?;
            Err(StoreError::invalid("changed my mind"))
        });
        assert!(r.is_err());
        assert!(!woken(&a).await);
        a.tx(|_| Ok(())).unwrap();
        assert!(!woken(&a).await, "the next commit does not inherit it");
    }
}
