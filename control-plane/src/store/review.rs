//! What the web pages read for a reviewer: sessions with their denial
//! counts, policy decisions searched across sessions, and the health of
//! the workers that may run the viewer's sessions. Every query sees
//! exactly the sessions `/v1` shows the same person (see [`super::access`]:
//! their own while they are in the session's team, and everyone's).

use super::sessions::load_session;
use super::workers::load_worker;
use super::{now_ms, rfc3339, Store, StoreError, Tx};
use protocol::platform::Worker;
use protocol::policy::DecisionRecord;
use protocol::session::{Session, SessionState, Trigger};
use rusqlite::params_from_iter;
use rusqlite::types::Value;

/// The sessions a person may see, as a SQL condition on `s` (a
/// `sessions` row) with two parameters: the viewer and their team.
const VISIBLE: &str = "(s.owner IS NULL OR (s.owner = ? AND (s.team IS NULL OR s.team IS ?)))";

/// Which sessions the list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionFilter {
    /// Only sessions in this state.
    pub(crate) state: Option<SessionState>,
    /// Only sessions queued from this agent (`agent_…`).
    pub(crate) agent: Option<String>,
    /// Only sessions started this way.
    pub(crate) source: Option<Trigger>,
    /// Only sessions with at least one denied action.
    pub(crate) has_denials: bool,
    /// At most this many, newest first.
    pub(crate) limit: u32,
}

/// A session with what a reviewer looks for first.
#[derive(Debug, Clone)]
pub(crate) struct ReviewedSession {
    /// The session.
    pub(crate) session: Session,
    /// Its denied actions.
    pub(crate) denials: u32,
    /// Its actions the policy asked a person about.
    pub(crate) asks: u32,
}

/// How far back the decisions search looks when it is given no time:
/// a week (a search over everything scans every decision ever recorded).
pub(crate) const DEFAULT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Which decisions the search finds.
#[derive(Debug, Clone, Default)]
pub(crate) struct DecisionFilter {
    /// `allow`, `deny` or `ask`.
    pub(crate) result: Option<String>,
    /// The action's kind (`fs.read`, `shell.exec`, …).
    pub(crate) kind: Option<String>,
    /// The tool that asked (`Bash`, `Read`, …).
    pub(crate) tool: Option<String>,
    /// The agent the session was queued from (`agent_…`).
    pub(crate) agent: Option<String>,
    /// Recorded at or after (ms).
    pub(crate) since_ms: Option<i64>,
    /// Recorded before (ms).
    pub(crate) until_ms: Option<i64>,
    /// At most this many, newest first.
    pub(crate) limit: u32,
}

/// One decision found, with the session it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct FoundDecision {
    /// The session.
    pub(crate) session_id: String,
    /// Its title.
    pub(crate) title: String,
    /// The agent it was queued from.
    pub(crate) agent_id: Option<String>,
    /// The activity's number on the session.
    pub(crate) seq: u64,
    /// When it was posted (RFC 3339).
    pub(crate) at: String,
    /// The decision.
    pub(crate) record: DecisionRecord,
}

/// A worker and how it is doing.
#[derive(Debug, Clone)]
pub(crate) struct WorkerHealth {
    /// The worker.
    pub(crate) worker: Worker,
    /// Who registered it.
    pub(crate) owner: Option<String>,
    /// What its last heartbeat said (`status`, `active_sessions`, …).
    pub(crate) heartbeat: Option<serde_json::Value>,
    /// Milliseconds since its last heartbeat.
    pub(crate) silent_ms: Option<i64>,
    /// Claims it holds now.
    pub(crate) active_claims: u32,
}

/// A worker's row: id, owner, last heartbeat (ms), its JSON, active claims.
type WorkerRow = (String, Option<String>, Option<i64>, Option<String>, u32);

fn viewer_args(tx: &Tx<'_>, viewer: &str) -> Result<Vec<Value>, StoreError> {
    let team = super::teams::team_of_user(tx, viewer)?;
    Ok(vec![
        Value::Text(viewer.to_string()),
        team.map_or(Value::Null, Value::Text),
    ])
}

/// A JSON path the activity bodies of policy decisions are searched by.
const RESULT: &str = "json_extract(a.body, '$.record.result')";

impl Store {
    /// The sessions `viewer` may see that pass `f`, newest first. The
    /// page is chosen first (an index walk), and only its sessions'
    /// decisions are counted.
    pub(crate) fn review_sessions(
        &self,
        viewer: &str,
        f: &SessionFilter,
    ) -> Result<Vec<ReviewedSession>, StoreError> {
        self.tx(|tx| {
            let mut sql = format!("SELECT s.id FROM sessions s WHERE {VISIBLE}");
            let mut args = viewer_args(tx, viewer)?;
            if let Some(st) = f.state {
                sql.push_str(" AND s.state = ?");
                args.push(Value::Text(st.as_str().into()));
            }
            if let Some(a) = &f.agent {
                sql.push_str(" AND s.agent_id = ?");
                args.push(Value::Text(a.clone()));
            }
            if let Some(t) = f.source {
                sql.push_str(" AND s.trigger = ?");
                args.push(Value::Text(t.as_str().into()));
            }
            if f.has_denials {
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM activities a WHERE a.session_id = s.id \
                     AND a.body LIKE '{{\"type\":\"policy_decision\"%' AND {RESULT} = 'deny')"
                ));
            }
            sql.push_str(" ORDER BY s.created_at DESC, s.id LIMIT ?");
            args.push(Value::Integer(i64::from(f.limit)));
            let ids: Vec<String> = {
                let mut st = tx.sql.prepare(&sql)?;
                let v = st
                    .query_map(params_from_iter(args), |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                v
            };
            let mut count = tx.sql.prepare(&format!(
                "SELECT COALESCE(SUM({RESULT} = 'deny'), 0), COALESCE(SUM({RESULT} = 'ask'), 0) \
                 FROM activities a WHERE a.session_id = ?1 AND a.body LIKE '{{\"type\":\"policy_decision\"%'"
            ))?;
            ids.iter()
                .map(|id| {
                    let (denials, asks) =
                        count.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    Ok(ReviewedSession {
                        session: load_session(tx, id)?,
                        denials,
                        asks,
                    })
                })
                .collect()
        })
    }

    /// The policy decisions of sessions `viewer` may see that pass `f`,
    /// newest first.
    pub(crate) fn search_decisions(
        &self,
        viewer: &str,
        f: &DecisionFilter,
    ) -> Result<Vec<FoundDecision>, StoreError> {
        self.tx(|tx| {
            let mut sql = format!(
                "SELECT a.session_id, a.seq, a.at, a.body, s.agent_id, s.body \
                 FROM activities a JOIN sessions s ON s.id = a.session_id \
                 WHERE {VISIBLE} AND a.body LIKE '{{\"type\":\"policy_decision\"%'"
            );
            let mut args = viewer_args(tx, viewer)?;
            for (path, value) in [
                ("$.record.result", &f.result),
                ("$.record.action.kind", &f.kind),
                ("$.record.action.tool", &f.tool),
            ] {
                if let Some(v) = value {
                    sql.push_str(&format!(" AND json_extract(a.body, '{path}') = ?"));
                    args.push(Value::Text(v.clone()));
                }
            }
            if let Some(a) = &f.agent {
                sql.push_str(" AND s.agent_id = ?");
                args.push(Value::Text(a.clone()));
            }
            // No time given: the last week (see DEFAULT_WINDOW_MS).
            let since = match (f.since_ms, f.until_ms) {
                (None, None) => Some(now_ms() - DEFAULT_WINDOW_MS),
                (s, _) => s,
            };
            if let Some(t) = since {
                sql.push_str(" AND a.at >= ?");
                args.push(Value::Integer(t));
            }
            if let Some(t) = f.until_ms {
                sql.push_str(" AND a.at < ?");
                args.push(Value::Integer(t));
            }
            sql.push_str(" ORDER BY a.at DESC, a.session_id, a.seq DESC LIMIT ?");
            args.push(Value::Integer(i64::from(f.limit)));
            let mut st = tx.sql.prepare(&sql)?;
            let rows = st.query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (session_id, seq, at, body, agent_id, session_body) = row?;
                let activity: protocol::activity::Activity =
                    serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                let protocol::activity::Activity::PolicyDecision { record } = activity else {
                    continue;
                };
                let title = serde_json::from_str::<serde_json::Value>(&session_body)
                    .ok()
                    .and_then(|b| b["source"]["title"].as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push(FoundDecision {
                    session_id,
                    title,
                    agent_id,
                    seq: seq as u64,
                    at: rfc3339(at),
                    record: *record,
                });
            }
            Ok(out)
        })
    }

    /// The workers that may run `viewer`'s sessions (their own, and the
    /// operator's trusted worker users'), most recently heard from first.
    pub(crate) fn workers_for(&self, viewer: &str) -> Result<Vec<WorkerHealth>, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let rows: Vec<WorkerRow> = {
                let mut st = tx.sql.prepare(
                    "SELECT w.id, w.user_name, w.last_heartbeat_at, w.heartbeat, \
                       (SELECT COUNT(*) FROM claims c WHERE c.worker_id = w.id AND c.state = 'active') \
                     FROM workers w ORDER BY w.last_heartbeat_at IS NULL, w.last_heartbeat_at DESC, w.id",
                )?;
                let v = st
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect::<Result<_, _>>()?;
                v
            };
            let mut out = Vec::new();
            for (id, owner, last, heartbeat, active_claims) in rows {
                let serves = match owner.as_deref() {
                    Some(o) => o == viewer || tx.trusted_worker_users.iter().any(|t| t == o),
                    None => false,
                };
                if !serves {
                    continue;
                }
                out.push(WorkerHealth {
                    worker: load_worker(tx, &id)?,
                    owner,
                    heartbeat: heartbeat.and_then(|h| serde_json::from_str(&h).ok()),
                    silent_ms: last.map(|l| now - l),
                    active_claims,
                });
            }
            Ok(out)
        })
    }
}
