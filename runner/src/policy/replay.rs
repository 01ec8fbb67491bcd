//! What-if: re-evaluate recorded inputs against another policy set and list
//! the decisions whose result would change — the check an operator runs
//! before rolling out a policy.
//!
//! Recorded inputs are masked; a policy that reads an erased field sees it
//! missing during replay, as it would in OPA's decision-log replay.

use super::audit::LoggedRecord;
use super::engine::PolicyEngine;
use protocol::policy::{Decision, DecisionResult};

/// One decision that would come out differently.
#[derive(Debug, Clone)]
pub struct Flip {
    /// Line of the audit log.
    pub line: u64,
    /// The recorded decision's id.
    pub decision_id: String,
    /// The recorded action (masked as it was logged).
    pub action: serde_json::Value,
    /// What the recorded policy decided.
    pub before: DecisionResult,
    /// What the candidate policy decides.
    pub after: Decision,
}

/// Re-evaluates every record with `candidate`; returns the flips in log order.
pub fn replay(records: &[LoggedRecord], candidate: &PolicyEngine) -> Vec<Flip> {
    records
        .iter()
        .filter_map(|r| {
            let (evaluation, _) = candidate.evaluate_input(&r.record.input.to_value());
            (evaluation.decision.result != r.record.result).then(|| Flip {
                line: r.line,
                decision_id: r.record.decision_id.clone(),
                action: r.record.action.clone(),
                before: r.record.result,
                after: evaluation.decision,
            })
        })
        .collect()
}
