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
/// tokens and API keys (secrets only as hashes).
const AUTH: &str = "
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL
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
  hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
";

/// Creates the tables that do not exist yet.
pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    for tables in [SESSIONS, WEBHOOKS, AUTH] {
        conn.execute_batch(tables)?;
    }
    Ok(())
}
