//! Runs: a session as the identities API (after
//! `seeds/cloud-agent-identities.txt`, Warp's Oz API) shows it — its
//! vendor state, what started it, whom it runs as. The vendor's run states
//! come from ours in exactly one function ([`vendor_state`]); nothing here
//! touches the database or HTTP.

use protocol::session::{Session, SessionState};
use serde::Serialize;
use serde_json::{json, Value};

/// The vendor's run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum RunState {
    /// Waiting for a worker (also again after a follow-up).
    Queued,
    /// Its lease ran out; about to be queued again.
    Pending,
    /// A worker has it, and has reported nothing yet.
    Claimed,
    /// A worker is working on it.
    Inprogress,
    /// Finished.
    Succeeded,
    /// The worker reported that it failed.
    Failed,
    /// Waiting for a person's answer.
    Blocked,
    /// It could not be run to its end (out of attempts: its workers kept
    /// losing it).
    Error,
    /// Stopped by a person.
    Cancelled,
}

/// Every vendor state, in the order the vendor lists them.
pub(crate) const ALL_STATES: [RunState; 9] = [
    RunState::Queued,
    RunState::Pending,
    RunState::Claimed,
    RunState::Inprogress,
    RunState::Succeeded,
    RunState::Failed,
    RunState::Blocked,
    RunState::Error,
    RunState::Cancelled,
];

impl RunState {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "QUEUED",
            RunState::Pending => "PENDING",
            RunState::Claimed => "CLAIMED",
            RunState::Inprogress => "INPROGRESS",
            RunState::Succeeded => "SUCCEEDED",
            RunState::Failed => "FAILED",
            RunState::Blocked => "BLOCKED",
            RunState::Error => "ERROR",
            RunState::Cancelled => "CANCELLED",
        }
    }

    /// The state of a wire name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|x| x.as_str() == s)
    }

    /// Our state it comes from (several vendor states share one).
    pub(crate) fn ours(self) -> SessionState {
        match self {
            RunState::Queued => SessionState::Queued,
            RunState::Pending => SessionState::Stale,
            RunState::Claimed | RunState::Inprogress => SessionState::Active,
            RunState::Blocked => SessionState::AwaitingInput,
            RunState::Succeeded => SessionState::Complete,
            RunState::Failed | RunState::Error => SessionState::Error,
            RunState::Cancelled => SessionState::Cancelled,
        }
    }

    /// Whether the run has ended.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Error | RunState::Cancelled
        )
    }
}

/// The vendor state of a session in `state`: `started` — its worker has
/// reported something under its current claim; `lost` — it ended in error
/// because its leases kept running out (not because its worker said so).
pub(crate) fn vendor_state(state: SessionState, started: bool, lost: bool) -> RunState {
    match state {
        SessionState::Queued => RunState::Queued,
        SessionState::Stale => RunState::Pending,
        SessionState::Active if started => RunState::Inprogress,
        SessionState::Active => RunState::Claimed,
        SessionState::AwaitingInput => RunState::Blocked,
        SessionState::Complete => RunState::Succeeded,
        SessionState::Error if lost => RunState::Error,
        SessionState::Error => RunState::Failed,
        SessionState::Cancelled => RunState::Cancelled,
    }
}

/// What the store knows of a run beyond its session.
#[derive(Debug, Clone)]
pub(crate) struct RunRecord {
    /// The session.
    pub(crate) session: Session,
    /// Whether its worker has reported something under its current claim.
    pub(crate) started: bool,
    /// Whether it ended in error for lost leases.
    pub(crate) lost: bool,
    /// The person who started it (for an agent's key: who made the key).
    pub(crate) creator: Option<String>,
    /// The schedule that started it, with that schedule's name and cron.
    pub(crate) schedule: Option<(String, String, String)>,
    /// The metadata it was started with.
    pub(crate) metadata: Option<Value>,
    /// When its first claim began (ms).
    pub(crate) started_at: Option<i64>,
}

impl RunRecord {
    /// Its vendor state.
    pub(crate) fn state(&self) -> RunState {
        vendor_state(self.session.state, self.started, self.lost)
    }
}

/// The JSON of a run (the vendor's `RunItem`).
#[derive(Debug, Serialize)]
pub(crate) struct RunItem {
    run_id: String,
    task_id: String,
    state: RunState,
    title: String,
    prompt: String,
    source: &'static str,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    executor: Value,
    creator: Value,
    run_as: Option<String>,
    agent_config: Value,
    metadata: Option<Value>,
    schedule: Option<Value>,
    status_message: Option<Value>,
    session_link: String,
    is_run_type_cancellable: bool,
}

/// A principal as the vendor shows one: `agent:ID` is a service account,
/// `user:NAME` a user.
fn principal(who: Option<&str>) -> Value {
    match who.and_then(|w| w.split_once(':')) {
        Some(("agent", id)) => json!({"uid": id, "type": "service_account"}),
        Some((_, name)) => json!({"uid": name, "type": "user", "display_name": name}),
        None => Value::Null,
    }
}

/// The run of `r`; `public_url`: the control plane's URL (the base of its
/// session link).
pub(crate) fn run_item(r: RunRecord, public_url: &str, rfc3339: fn(i64) -> String) -> RunItem {
    let state = r.state();
    let s = r.session;
    let status_message = match state {
        RunState::Failed => {
            Some(json!({"message": s.outcome, "error_code": "invalid_request", "retryable": false}))
        }
        RunState::Error => {
            Some(json!({"message": s.outcome, "error_code": "internal_error", "retryable": true}))
        }
        _ => None,
    };
    RunItem {
        run_id: s.id.to_string(),
        task_id: s.id.to_string(),
        state,
        title: s.source.title.clone(),
        prompt: s.source.prompt.clone(),
        source: s.trigger.as_str(),
        created_at: s.created_at.clone(),
        updated_at: s.updated_at.clone(),
        started_at: r.started_at.map(rfc3339),
        executor: principal(s.run_as.as_deref()),
        creator: principal(r.creator.map(|c| format!("user:{c}")).as_deref()),
        run_as: s.run_as.clone(),
        agent_config: json!({"model_id": s.agent.model, "name": s.agent.name, "agent_uid": s.agent_id, "version": s.agent.version}),
        metadata: r.metadata,
        schedule: r.schedule.map(|(id, name, cron)| json!({"schedule_id": id, "schedule_name": name, "cron_schedule": cron})),
        status_message,
        session_link: format!("{public_url}/sessions/{}", s.id),
        is_run_type_cancellable: !state.is_terminal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_of_ours_maps_to_one_vendor_state_and_back() {
        use SessionState::*;
        let cases = [
            (Queued, false, false, RunState::Queued),
            (Stale, false, false, RunState::Pending),
            (Active, false, false, RunState::Claimed),
            (Active, true, false, RunState::Inprogress),
            (AwaitingInput, true, false, RunState::Blocked),
            (Complete, true, false, RunState::Succeeded),
            (Error, true, false, RunState::Failed),
            (Error, false, true, RunState::Error),
            (Cancelled, false, false, RunState::Cancelled),
        ];
        for (ours, started, lost, theirs) in cases {
            assert_eq!(vendor_state(ours, started, lost), theirs, "{ours:?}");
            assert_eq!(theirs.ours(), ours);
            assert_eq!(RunState::parse(theirs.as_str()), Some(theirs));
        }
        assert_eq!(RunState::parse("RUNNING"), None);
        let terminal: Vec<_> = ALL_STATES.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [
                RunState::Succeeded,
                RunState::Failed,
                RunState::Error,
                RunState::Cancelled
            ]
        );
    }
}
