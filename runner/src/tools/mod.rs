//! The tool registry and the call path every tool call takes:
//! look up → plan the actions → decide each through the [`PolicyGate`] →
//! run only if every action is allowed, inside the decisions' confinement.
//!
//! A tool only *describes* its side effects ([`Tool::plan`]) and *performs*
//! them ([`Tool::run`]); it never decides. Adding a tool is adding a type
//! that implements [`Tool`] and one line in [`Registry::builtin`].

mod bash;
mod decide;

pub use bash::{Bash, BashSettings};
pub use decide::Decide;

use crate::policy::{PolicyGate, SessionContext};
use protocol::policy::{Action, DecisionRecord, DecisionResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a tool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolSource {
    /// Compiled into the runner.
    Builtin,
    /// A guest module from a configured tool directory.
    Custom,
}

/// A tool's description, as listed and as offered to a model.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// Name the model calls it by.
    pub name: String,
    /// What it does, for the model and for `runner tools list`.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: serde_json::Value,
    /// Built-in or custom.
    pub source: ToolSource,
    /// Action kinds it may ask for (`fs.read`, `shell.exec`, …).
    pub capabilities: Vec<String>,
    /// Only an operator at the CLI may call it; never offered to a model.
    pub operator_only: bool,
}

/// A tool call that could not be carried out (not a denial).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The input does not fit the tool.
    #[error("invalid input for {tool}: {message}")]
    InvalidInput {
        /// The tool.
        tool: String,
        /// What is wrong.
        message: String,
    },
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// What a tool run gets besides its input.
pub struct ToolRun<'a> {
    /// The call's input.
    pub input: &'a serde_json::Value,
    /// The session the call belongs to.
    pub ctx: &'a SessionContext,
    /// The decisions that allowed the planned actions, in plan order.
    pub decisions: &'a [DecisionRecord],
    /// For actions only known while running (a redirect, a proxied
    /// connection): each must pass the gate too.
    pub gate: &'a PolicyGate,
}

/// A tool: describes its side effects, then performs them once allowed.
pub trait Tool: Send + Sync {
    /// Its description.
    fn spec(&self) -> &ToolSpec;
    /// The actions this call would take, decided before anything runs.
    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError>;
    /// Performs the call. Called only when every planned action is allowed.
    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError>;
}

/// All tools by name.
#[derive(Default, Clone)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl Registry {
    /// The built-in tools of this build.
    pub fn builtin(bash: BashSettings) -> Registry {
        let mut r = Registry::default();
        r.add(Arc::new(Decide::new()));
        r.add(Arc::new(Bash::new(bash)));
        r
    }

    /// Adds (or replaces) a tool.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name.clone(), tool);
    }

    /// Looks a tool up by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Every tool's spec, by name.
    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    /// Names of every tool, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// Every action allowed and the tool succeeded.
    Ok,
    /// An action was denied (or needs approval nobody gave): nothing ran.
    Denied,
    /// The tool failed, or its input was bad.
    Error,
}

/// The result of one tool call, as `runner call` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    /// Ok, denied or error.
    pub status: CallStatus,
    /// The tool called.
    pub tool: String,
    /// Tool output, the denial, or the error.
    pub output: serde_json::Value,
    /// Every decision made for the call, in order.
    pub decisions: Vec<DecisionRecord>,
}

/// Runs one tool call under policy. With `dry_run` the actions are decided
/// and recorded but the tool does not run.
pub fn call(
    registry: &Registry,
    gate: &PolicyGate,
    ctx: &SessionContext,
    tool_name: &str,
    input: &serde_json::Value,
    dry_run: bool,
) -> CallOutcome {
    let outcome = |status, output, decisions| CallOutcome {
        status,
        tool: tool_name.to_string(),
        output,
        decisions,
    };
    let Some(tool) = registry.get(tool_name) else {
        return outcome(
            CallStatus::Error,
            serde_json::json!({"error": format!("unknown tool `{tool_name}`; known tools: {}", registry.names().join(", "))}),
            Vec::new(),
        );
    };
    let actions = match tool.plan(input) {
        Ok(a) => a,
        Err(e) => {
            return outcome(
                CallStatus::Error,
                serde_json::json!({"error": e.to_string()}),
                Vec::new(),
            )
        }
    };
    let mut decisions = Vec::with_capacity(actions.len());
    for action in &actions {
        let record = gate.check(action, ctx);
        let result = record.result;
        let reasons = record.reasons.clone();
        decisions.push(record);
        if result != DecisionResult::Allow {
            return outcome(
                CallStatus::Denied,
                serde_json::json!({"denied": action.detail.kind(), "result": result, "reasons": reasons}),
                decisions,
            );
        }
    }
    if dry_run {
        return outcome(
            CallStatus::Ok,
            serde_json::json!({"dry_run": true, "allowed": actions.len()}),
            decisions,
        );
    }
    let ran = tool.run(ToolRun {
        input,
        ctx,
        decisions: &decisions,
        gate,
    });
    match ran {
        Ok(output) => outcome(CallStatus::Ok, output, decisions),
        Err(e) => outcome(
            CallStatus::Error,
            serde_json::json!({"error": e.to_string()}),
            decisions,
        ),
    }
}
