//! The gate every side effect passes: decide, record, report — in that
//! order, before the tool runs.
//!
//! Trust rule 4: every decision, allow, deny or ask, goes to the local audit
//! log *and* to the session as a `policy_decision` activity. If the audit
//! log cannot be written the action is denied: an action nobody can audit
//! does not happen.

use super::audit::AuditLog;
use super::engine::PolicyEngine;
use super::input::SessionContext;
use crate::activity::ActivitySink;
use crate::metrics::Metrics;
use protocol::activity::Activity;
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, DecisionRecord, DecisionResult};
use std::sync::Arc;

/// A recorded decision and the normalised action it was made on.
#[derive(Debug, Clone)]
pub struct Decided {
    /// What was recorded and reported (its action masked as configured).
    pub record: DecisionRecord,
    /// The unmasked normalised action the policy saw; `None` when the
    /// action could not be normalised (and was denied).
    pub action: Option<NormalizedAction>,
}

/// Decides, records and reports actions.
pub struct PolicyGate {
    engine: Arc<PolicyEngine>,
    audit: Option<Arc<AuditLog>>,
    sink: Arc<dyn ActivitySink>,
    degraded: Option<String>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PolicyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGate")
            .field("revision", &self.engine.revision())
            .field(
                "audit",
                &self.audit.as_ref().map(|a| a.path().to_path_buf()),
            )
            .field("degraded", &self.degraded)
            .finish()
    }
}

/// A gate being put together: where it reports is given up front, where it
/// records must be said explicitly — [`GateBuilder::audit`] or
/// [`GateBuilder::without_audit`] — so no gate loses its audit log by a
/// forgotten `None`.
#[must_use = "a gate is only built by .audit(log) or .without_audit()"]
pub struct GateBuilder {
    engine: Arc<PolicyEngine>,
    sink: Arc<dyn ActivitySink>,
    degraded: Option<String>,
    metrics: Option<Arc<Metrics>>,
}

impl GateBuilder {
    /// Marks every record with a degraded-mode note (the shell sandbox runs
    /// without Landlock because the operator opted in).
    pub fn degraded(mut self, note: Option<String>) -> Self {
        self.degraded = note;
        self
    }

    /// Counts every decision (and, through [`PolicyGate::metrics`], the
    /// tool calls and sandboxes behind it) in `metrics`, the worker's;
    /// without it they go to a registry of the gate's own that nobody
    /// reads.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The gate, recording every decision in `log` before it is reported;
    /// a decision the log cannot take is a denial.
    pub fn audit(self, log: Arc<AuditLog>) -> PolicyGate {
        self.build(Some(log))
    }

    /// The gate, reporting decisions only to the sink: for `runner call`
    /// without a state directory, tests and benchmarks.
    pub fn without_audit(self) -> PolicyGate {
        self.build(None)
    }

    fn build(self, audit: Option<Arc<AuditLog>>) -> PolicyGate {
        PolicyGate {
            engine: self.engine,
            audit,
            sink: self.sink,
            degraded: self.degraded,
            metrics: self.metrics.unwrap_or_default(),
        }
    }
}

impl PolicyGate {
    /// Starts a gate over `engine` that reports to `sink`.
    pub fn builder(engine: Arc<PolicyEngine>, sink: Arc<dyn ActivitySink>) -> GateBuilder {
        GateBuilder {
            engine,
            sink,
            degraded: None,
            metrics: None,
        }
    }

    /// Where this gate's decisions are counted; the tools that call
    /// through the gate count their calls and sandboxes there too.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The engine behind the gate.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// Decides `action`, records and reports the decision, and returns it.
    /// The caller performs the action only if the result is `Allow`.
    pub fn check(&self, action: &Action, ctx: &SessionContext) -> DecisionRecord {
        self.decide(action, ctx, None).record
    }

    /// [`PolicyGate::check`] with the normalised action the decision was
    /// made on, for the tool that then acts on exactly that; and for a
    /// call a person approved (`approved_by`), an `ask` is recorded with
    /// who approved it ([`DecisionRecord::permits`] is then true). Allow
    /// and deny are unchanged: an approval never overrides a deny.
    pub fn decide(
        &self,
        action: &Action,
        ctx: &SessionContext,
        approved_by: Option<&str>,
    ) -> Decided {
        let started = std::time::Instant::now();
        let (mut record, normalised) = self.engine.decide(action, ctx);
        let took = started.elapsed();
        if record.result == DecisionResult::Ask {
            record.approved_by = approved_by.map(str::to_string);
        }
        let record = self.report(record);
        self.metrics
            .decision(record.result.as_str(), action.detail.kind(), Some(took));
        Decided {
            record,
            action: normalised,
        }
    }

    /// Records and reports a refusal the runner makes before any action
    /// exists to decide — a model calling a tool this session does not
    /// offer. It is a deny like any other in the audit log and the
    /// session's decision history, with `kind: "tool.call"`.
    pub fn refuse(&self, tool: &str, reason: String, ctx: &SessionContext) -> DecisionRecord {
        let action = serde_json::to_value(NormalizedAction::ToolCall {
            tool: tool.to_string(),
        })
        .unwrap_or_else(|_| serde_json::json!({"kind": "tool.call", "tool": tool}));
        let record = self.engine.record(
            ctx.session_id.clone(),
            ctx.claim_id.clone(),
            action,
            super::set::Evaluation {
                decision: protocol::policy::Decision::deny(reason),
                eval_ns: 0,
                cache_hit: false,
                failed: false,
            },
            self.engine.revision(),
            &ctx.masked_shared(&self.engine.settings().mask),
        );
        let record = self.report(record);
        self.metrics
            .decision(record.result.as_str(), "tool.call", None);
        record
    }

    fn report(&self, mut record: DecisionRecord) -> DecisionRecord {
        record.degraded = self.degraded.clone();
        if let Some(log) = &self.audit {
            if let Err(e) = log.append(&record) {
                tracing::error!(error = %e, "audit log write failed; denying the action");
                record.result = DecisionResult::Deny;
                record.confine = None;
                record.reasons.push(format!(
                    "the decision could not be written to the audit log ({e}); the action was not performed"
                ));
            }
        }
        let activity = Activity::PolicyDecision {
            record: Box::new(record),
        };
        self.sink.emit(&activity);
        match activity {
            Activity::PolicyDecision { record } => *record,
            _ => unreachable!("built as a policy decision just above"),
        }
    }
}
