//! Every table the control plane keeps, created when missing. One place,
//! so that the whole database can be read at a glance (and a second
//! backend has one list to port).

use rusqlite::Connection;

/// Sessions, workers, claims, activities, transitions, conversations and
/// inputs.
const SESSIONS: &str = "
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY,
  workspace TEXT NOT NULL, agent_profile TEXT NOT NULL, runtime TEXT NOT NULL,
  registration TEXT NOT NULL, created_at INTEGER NOT NULL,
  last_heartbeat_at INTEGER, heartbeat TEXT, user_name TEXT,
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
  at INTEGER NOT NULL, body TEXT NOT NULL, event INTEGER,
  PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  from_state TEXT NOT NULL, to_state TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL,
  event INTEGER
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

/// Images people attached to a session's work or follow-ups: the bytes,
/// kept apart from the session's body so that no session, input or
/// message row carries them (those name an image by its `img_…` id).
const ATTACHMENTS: &str = "
CREATE TABLE IF NOT EXISTS attachments (
  id TEXT PRIMARY KEY, session_id TEXT NOT NULL, media_type TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, data BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_session ON attachments (session_id);
";

/// Files a session delivered from its `/data` (`PUT
/// /v1/sessions/{id}/artifacts`): blobs, so that one database file holds
/// everything; a re-delivery of a path replaces it. `artifact_links` are
/// the one-time download URLs of the Cloud Agents API (the token's hash
/// only).
const ARTIFACTS: &str = "
CREATE TABLE IF NOT EXISTS artifacts (
  id TEXT PRIMARY KEY, session_id TEXT NOT NULL, path TEXT NOT NULL,
  size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, media_type TEXT NOT NULL,
  data BLOB NOT NULL, claim_id TEXT NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, UNIQUE (session_id, path)
);
CREATE TABLE IF NOT EXISTS artifact_links (
  token_sha256 TEXT PRIMARY KEY, artifact_id TEXT NOT NULL, expires_at INTEGER NOT NULL
);
";

/// The skills registry (`/api/v1/cloud/skills`): a team's skills, their
/// versions (immutable once uploaded) and each version's files as blobs.
/// A deleted skill or version is hidden (`deleted_at`), its rows kept, so
/// a session that pinned it still runs what it pinned.
const SKILLS: &str = "
CREATE TABLE IF NOT EXISTS skills (
  id TEXT PRIMARY KEY, team TEXT NOT NULL, display_title TEXT,
  metadata TEXT NOT NULL DEFAULT '{}', created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS skills_team ON skills (team, created_at);
CREATE TABLE IF NOT EXISTS skill_versions (
  skill_id TEXT NOT NULL, version TEXT NOT NULL, name TEXT NOT NULL,
  description TEXT NOT NULL, front_matter TEXT NOT NULL, sha256 TEXT NOT NULL,
  size_bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER,
  PRIMARY KEY (skill_id, version)
);
CREATE TABLE IF NOT EXISTS skill_files (
  skill_id TEXT NOT NULL, version TEXT NOT NULL, path TEXT NOT NULL,
  executable INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (skill_id, version, path)
);
";

/// The event numbers of a session's stream (`GET /v1/sessions/{id}/events`):
/// every activity and every transition of a session takes the next number
/// of that session, shared by both tables, when it is written. Created
/// after [`number_events`], which gives older files the column first.
const EVENTS: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS activities_event ON activities (session_id, event);
CREATE UNIQUE INDEX IF NOT EXISTS transitions_event ON transitions (session_id, event);
";

/// The Cloud Agents API's agents: what a launch keeps beside its session
/// (`flags`: the echoed target flags, JSON). Webhooks of an agent are
/// subscriptions with its `session_id` and the `cursor_v0` format (columns
/// [`agent_webhooks`] adds).
const CLOUD_AGENTS: &str = "
CREATE TABLE IF NOT EXISTS cloud_agents (
  id TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, user_name TEXT NOT NULL,
  api_key_id TEXT NOT NULL, name TEXT NOT NULL, repository TEXT NOT NULL,
  git_ref TEXT, pr_url TEXT, flags TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_agents_user ON cloud_agents (user_name, created_at, id);
";

/// Webhook subscriptions and the outbox of deliveries.
const WEBHOOKS: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
  id TEXT PRIMARY KEY, url TEXT NOT NULL, key TEXT NOT NULL, signing_secret TEXT,
  event_types TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_id TEXT NOT NULL, event_id TEXT NOT NULL,
  event_type TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER, state TEXT NOT NULL, log TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_sub ON deliveries (subscription_id, id);
";

/// The authorization server: users, OAuth clients, authorization codes,
/// tokens and API keys (secrets only as hashes). A user's `email` may be
/// NULL (users added before emails existed, or without `--email`); an API
/// key's `user_name` is NULL for a key that belongs to nobody (added with
/// `api-key-add NAME` alone, or before keys had owners).
const AUTH: &str = "
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
  email TEXT
);
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT,
  redirect_uris TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_codes (
  code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_name TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, challenge TEXT, challenge_method TEXT, scope TEXT NOT NULL,
  expires_at INTEGER NOT NULL, family TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, family TEXT NOT NULL, client_id TEXT NOT NULL,
  user_name TEXT NOT NULL, scope TEXT NOT NULL, expires_at INTEGER NOT NULL,
  state TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE TABLE IF NOT EXISTS api_keys (
  hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
  id TEXT, user_name TEXT, revoked_at INTEGER
);
";

/// Device authorization grants (RFC 8628): the device code and the user
/// code only as hashes; `state` is `pending`, `approved` (by `user_name`),
/// `denied` or `redeemed` (it issued the token family `family`);
/// `interval_s` grows by 5 at every `slow_down`; `last_poll_at` is when
/// the client last asked. Indexed by `expires_at` (every insert purges
/// codes expired an hour ago) and by client and state (the cap on a
/// client's pending codes counts them at every insert).
const DEVICE: &str = "
CREATE TABLE IF NOT EXISTS device_codes (
  device_hash TEXT PRIMARY KEY, user_code_hash TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL, scope TEXT NOT NULL, state TEXT NOT NULL,
  user_name TEXT, family TEXT, interval_s INTEGER NOT NULL, last_poll_at INTEGER,
  expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS device_codes_expires ON device_codes (expires_at);
CREATE INDEX IF NOT EXISTS device_codes_pending ON device_codes (client_id, state, expires_at);
";

/// Indexes over the columns [`own_keys`] gives older files first.
const KEYS: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_id ON api_keys (id);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_name, created_at);
";

/// What each worker reports it can work on (replaced wholesale by every
/// report), and the calls of rate-limited routes, per user (a refused call
/// is not written; hits older than the longest window are dropped as new
/// ones come).
const REPOSITORIES: &str = "
CREATE TABLE IF NOT EXISTS worker_repositories (
  worker_id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, repository TEXT NOT NULL,
  PRIMARY KEY (worker_id, repository)
);
CREATE INDEX IF NOT EXISTS worker_repositories_url ON worker_repositories (repository);
CREATE TABLE IF NOT EXISTS rate_hits (
  user TEXT NOT NULL, route TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_hits_user ON rate_hits (user, route, at);
";

/// Teams, and the agents of each: an agent is a row of `agents` (its
/// team, its creation order in the team `seq` — what lists page by, as
/// agents made in one millisecond have no other order; counted per team,
/// so a cursor tells nothing of other teams —, its latest version — the column optimistic concurrency checks —
/// and whether it is archived) and one row of `agent_versions` per version,
/// every one kept (`config`: the [`crate::agent_configs::AgentConfig`]
/// JSON; `created_by`: `user:NAME`). Each team has one default agent
/// (`is_default`, made when first needed); a deleted agent keeps its rows
/// (`deleted_at`) and is "not found" everywhere. Users get their `team`,
/// sessions theirs and API keys their `agent_id` (NULL: a person's key)
/// from [`teams`].
const AGENTS: &str = "
CREATE TABLE IF NOT EXISTS teams (
  id TEXT PRIMARY KEY, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, team TEXT NOT NULL,
  version INTEGER NOT NULL, archived_at INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0, deleted_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS agents_team ON agents (team, seq);
CREATE UNIQUE INDEX IF NOT EXISTS agents_default ON agents (team) WHERE is_default = 1 AND deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS agent_versions (
  agent_id TEXT NOT NULL, version INTEGER NOT NULL, config TEXT NOT NULL,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
  PRIMARY KEY (agent_id, version)
);
";

/// Schedules and their ticks. A schedule (`cron`: 5 fields, read in
/// `timezone`) belongs to a team and starts runs of `agent_id` (NULL: the
/// team's default agent at each tick) as `created_by` (a user name);
/// `next_run_at` is NULL while it is paused; a deleted one keeps its row
/// (`deleted_at`) so that its runs still name it. A tick is one cron
/// occurrence (`tick_at`, ms UTC — the occurrence, never a process's
/// "now"): its primary key is what makes a tick start at most one run
/// however many control planes share the file. `missed`: the occurrences
/// it stands for that passed while nothing fired (catch-up); `session_id`
/// or `error` say what the tick did.
const SCHEDULES: &str = "
CREATE TABLE IF NOT EXISTS schedules (
  id TEXT PRIMARY KEY, team TEXT NOT NULL, name TEXT NOT NULL, cron TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT 'UTC', prompt TEXT NOT NULL, agent_id TEXT,
  agent_config TEXT, metadata TEXT, enabled INTEGER NOT NULL,
  next_run_at INTEGER, last_ran_at INTEGER, last_spawn_error TEXT,
  created_by TEXT NOT NULL, updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (enabled, next_run_at);
CREATE INDEX IF NOT EXISTS schedules_team ON schedules (team, name);
CREATE TABLE IF NOT EXISTS schedule_ticks (
  schedule_id TEXT NOT NULL, tick_at INTEGER NOT NULL, claimed_at INTEGER NOT NULL,
  session_id TEXT, error TEXT, missed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (schedule_id, tick_at)
);
";

/// Sign-ins of the web pages: the SHA-256 of the cookie's token, the
/// user, the CSRF token of its forms, and when it ends; and one-time
/// sign-in links (`admin web-link`), by the SHA-256 of their code; and
/// activities by time, which the decisions search walks.
const WEB: &str = "
CREATE TABLE IF NOT EXISTS web_sessions (
  token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_at ON activities (at);
CREATE TABLE IF NOT EXISTS web_links (
  token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, expires_at INTEGER NOT NULL
);
";

/// Creates the tables that do not exist yet, and numbers the events of a
/// file written before event numbers existed.
pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    // A table new to an older file is simply created here (ATTACHMENTS,
    // CLOUD_AGENTS, REPOSITORIES).
    for tables in [
        SESSIONS,
        ATTACHMENTS,
        WEBHOOKS,
        AUTH,
        DEVICE,
        CLOUD_AGENTS,
        REPOSITORIES,
        AGENTS,
        SCHEDULES,
        WEB,
        ARTIFACTS,
        SKILLS,
    ] {
        conn.execute_batch(tables)?;
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match number_events(conn)
        .and_then(|()| own_keys(conn))
        .and_then(|()| agent_webhooks(conn))
        .and_then(|()| own_workers(conn))
        .and_then(|()| teams(conn))
    {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    conn.execute_batch(EVENTS)?;
    conn.execute_batch(KEYS)
}

/// Gives `sessions` its `owner` and `subscriptions` the columns of an
/// agent's own webhook: `format`
/// (`cloudevents` for every subscription made with `POST /v1/webhooks`,
/// `cursor_v0` for an agent's) and `session_id` (NULL for the former: they
/// get every event; an agent's gets only its own `statusChange`).
fn agent_webhooks(conn: &Connection) -> rusqlite::Result<()> {
    // A session's owner: the user who queued it (NULL: everyone's — a key
    // of nobody's, or a file from before owners). See `access`.
    if !has_column(conn, "sessions", "owner")? {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN owner TEXT")?;
    }
    if !has_column(conn, "subscriptions", "format")? {
        conn.execute_batch(
            "ALTER TABLE subscriptions ADD COLUMN format TEXT NOT NULL DEFAULT 'cloudevents'",
        )?;
    }
    if !has_column(conn, "subscriptions", "session_id")? {
        conn.execute_batch("ALTER TABLE subscriptions ADD COLUMN session_id TEXT")?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS subscriptions_session ON subscriptions (session_id)",
    )
}

/// Whether `table` has the column `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
        [column],
        |r| r.get(0),
    )
}

/// Brings a file written before users had emails and keys had owners up
/// to date: `users.email` (NULL for every existing user: nothing tells
/// what it is; `admin user-set-email` sets it), `api_keys.user_name` (NULL:
/// the key keeps working on `/v1` as before, and belongs to nobody),
/// `api_keys.id` (a fresh `key_…` for every key, so it can be revoked by
/// id) and `api_keys.revoked_at` (the creation time for a key revoked
/// before revocation times were kept: the true time is lost, and it was no
/// earlier than that).
fn own_keys(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "users", "email")? {
        conn.execute_batch("ALTER TABLE users ADD COLUMN email TEXT")?;
    }
    for (column, ty) in [
        ("id", "TEXT"),
        ("user_name", "TEXT"),
        ("revoked_at", "INTEGER"),
    ] {
        if !has_column(conn, "api_keys", column)? {
            conn.execute_batch(&format!("ALTER TABLE api_keys ADD COLUMN {column} {ty}"))?;
        }
    }
    conn.execute_batch(
        "UPDATE api_keys SET id = 'key_' || lower(hex(randomblob(16))) WHERE id IS NULL;
         UPDATE api_keys SET revoked_at = created_at WHERE revoked != 0 AND revoked_at IS NULL;",
    )
}

/// Gives a file written before workers had owners `workers.user_name`:
/// NULL for every existing worker (nothing tells who signed it in); a
/// worker's next registration records it, and until then the worker's
/// repository reports are refused (`worker_not_owned`).
fn own_workers(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "workers", "user_name")? {
        conn.execute_batch("ALTER TABLE workers ADD COLUMN user_name TEXT")?;
    }
    Ok(())
}

/// Gives `users` their `team` (and makes sure the default team exists:
/// every user of a file from before teams is in it), and `sessions` the
/// agent they were queued from.
fn teams(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "users", "team")? {
        conn.execute_batch("ALTER TABLE users ADD COLUMN team TEXT")?;
    }
    // The agent a session was queued from by reference, and its version
    // (NULL: the version was given whole).
    // What started it, whom it runs as, the schedule that started it, and
    // the runs view's metadata of it (JSON).
    for (column, ty) in [
        ("agent_id", "TEXT"),
        ("agent_version", "INTEGER"),
        ("trigger", "TEXT NOT NULL DEFAULT 'API'"),
        ("team", "TEXT"),
        ("run_as", "TEXT"),
        ("schedule_id", "TEXT"),
        ("run_metadata", "TEXT"),
    ] {
        if !has_column(conn, "sessions", column)? {
            conn.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {column} {ty}"))?;
        }
    }
    // A subscription's team: it gets that team's sessions' events only.
    if !has_column(conn, "subscriptions", "team")? {
        conn.execute_batch(
            "ALTER TABLE subscriptions ADD COLUMN team TEXT;
             UPDATE subscriptions SET team = 'default' WHERE session_id IS NULL;",
        )?;
    }
    if !has_column(conn, "api_keys", "agent_id")? {
        conn.execute_batch("ALTER TABLE api_keys ADD COLUMN agent_id TEXT")?;
    }
    conn.execute(
        "INSERT INTO teams (id, created_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        rusqlite::params![
            super::teams::DEFAULT_TEAM,
            chrono::Utc::now().timestamp_millis()
        ],
    )?;
    conn.execute(
        "UPDATE users SET team = ?1 WHERE team IS NULL",
        [super::teams::DEFAULT_TEAM],
    )?;
    // Sessions from before teams belong to their owner's team.
    conn.execute_batch(
        "UPDATE sessions SET team = (SELECT u.team FROM users u WHERE u.name = sessions.owner) WHERE team IS NULL AND owner IS NOT NULL",
    )?;
    Ok(())
}

/// Gives `activities` and `transitions` their `event` column when a file
/// predates it, and numbers every row that has none: per session, after
/// the numbers it already has, in the order the rows were written as far
/// as the file still tells (time, then a transition before an activity of
/// the same millisecond — the order `post_activity` writes them —, then
/// id or seq). New rows are numbered as they are written, exactly.
fn number_events(conn: &Connection) -> rusqlite::Result<()> {
    for table in ["activities", "transitions"] {
        if !has_column(conn, table, "event")? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN event INTEGER"))?;
        }
    }
    // (session, at, 0 = transition | 1 = activity, id or seq)
    let mut st = conn.prepare(
        "SELECT session_id, at, 0, id FROM transitions WHERE event IS NULL
         UNION ALL SELECT session_id, at, 1, seq FROM activities WHERE event IS NULL
         ORDER BY 1, 2, 3, 4",
    )?;
    let rows: Vec<(String, i64, i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut session = String::new();
    let mut n = 0i64;
    for (s, _, kind, key) in rows {
        if s != session {
            n = conn.query_row(
                "SELECT COALESCE(MAX(m), 0) FROM (SELECT MAX(event) AS m FROM activities WHERE session_id = ?1 UNION ALL SELECT MAX(event) FROM transitions WHERE session_id = ?1)",
                [&s],
                |r| r.get(0),
            )?;
            session = s;
        }
        n += 1;
        let sql = if kind == 0 {
            "UPDATE transitions SET event = ?3 WHERE session_id = ?1 AND id = ?2"
        } else {
            "UPDATE activities SET event = ?3 WHERE session_id = ?1 AND seq = ?2"
        };
        conn.execute(sql, rusqlite::params![session, key, n])?;
    }
    Ok(())
}
