//! The tool registry and the call path every tool call takes:
//! look up → plan the actions → decide each through the [`PolicyGate`] →
//! run only if every action is allowed, inside the decisions' confinement.
//!
//! A tool only *describes* its side effects ([`Tool::plan`]) and *performs*
//! them ([`Tool::run`]); it never decides. Adding a tool is adding a type
//! that implements [`Tool`] and one line in [`Registry::builtin`].

mod bash;
mod decide;
pub(crate) mod guest;
pub mod mcp;
mod section;
mod webfetch;
pub mod websearch;

pub use bash::{Bash, BashSettings, PolicyConnect};
pub use decide::Decide;
pub use guest::GuestTool;
pub use section::ToolsSection;
pub use webfetch::{WebFetch, WebFetchSettings};

use crate::cancel::Cancel;
use crate::policy::{Decided, PolicyGate, SessionContext};
use protocol::policy::{Action, DecisionRecord};
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
    /// A tool of one of the session's MCP servers (`mcp__<server>__<tool>`),
    /// offered only as the pinned agent version's `mcp_toolsets` say.
    Mcp,
}

/// The allowed, resolved `net.connect` among a call's decisions: the
/// addresses a network tool may dial, and only those. Its absence is a
/// failure naming `what` (`the provider's addresses`), never a fallback to
/// resolving again.
pub(crate) fn resolved_connect<'a>(
    decisions: &'a [Decided],
    what: &str,
) -> Result<&'a protocol::normalized::NormalizedConnect, ToolError> {
    decisions
        .iter()
        .find_map(|d| match &d.action {
            Some(protocol::normalized::NormalizedAction::NetConnect(c)) if c.resolved => Some(c),
            _ => None,
        })
        .ok_or_else(|| ToolError::Failed(format!("no decision on {what} was made")))
}

/// The prefix of every MCP tool's name; reserved for them.
pub const MCP_PREFIX: &str = "mcp__";

/// The server and the server's tool an MCP tool's name stands for
/// (`mcp__docs__search` → `("docs", "search")`); server names never
/// contain `__`, tool names may.
pub fn mcp_name_parts(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(MCP_PREFIX)?;
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
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
        /// The tool that was called.
        tool: String,
        /// What the schema check refused, for the model to fix its call.
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
    /// The decisions that allowed the planned actions, in plan order, each
    /// with the normalised action it was made on (what the tool acts on).
    pub decisions: &'a [Decided],
    /// For actions only known while running (a redirect, a proxied
    /// connection): each must pass the gate too.
    pub gate: &'a PolicyGate,
    /// Set when the run must stop at once.
    pub cancel: &'a Cancel,
}

/// A tool: describes its side effects, then performs them once allowed.
pub trait Tool: Send + Sync {
    /// Its description.
    fn spec(&self) -> &ToolSpec;
    /// The actions this call would take, decided before anything runs.
    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError>;
    /// A further action to decide once `action` was allowed, and only then
    /// (WebFetch resolves a host's name only after the host is allowed,
    /// then the addresses are decided). Most tools have none.
    fn follow_up(&self, _action: &Action) -> Option<Action> {
        None
    }
    /// Performs the call. Called only when every planned action is allowed.
    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError>;
}

/// All tools by name, each with its compiled input schema.
#[derive(Default, Clone)]
pub struct Registry {
    tools: BTreeMap<String, (Arc<dyn Tool>, Arc<jsonschema::Validator>)>,
    problems: Vec<String>,
}

impl Registry {
    /// The host tools of this build (Decide, Bash, WebFetch); the guest
    /// tools come from [`Registry::add_guest_dir`].
    pub fn builtin(bash: BashSettings, fetch: WebFetchSettings) -> Registry {
        let mut r = Registry::default();
        for t in [
            Arc::new(Decide::new()) as Arc<dyn Tool>,
            Arc::new(Bash::new(bash)),
            Arc::new(WebFetch::new(fetch)),
        ] {
            r.add(t).expect("the host tools' schemas are valid");
        }
        r
    }

    /// Adds a tool, refusing one whose input schema does not compile or
    /// whose name is taken (a custom tool cannot replace a built-in one).
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> Result<(), String> {
        let name = tool.spec().name.clone();
        // The runner's own repository actions carry the tool name `runner`,
        // and the default policy gives them rules of their own: no tool may
        // borrow it.
        if name.eq_ignore_ascii_case("runner") {
            return Err(
                "the tool name runner is reserved for the runner's own actions; rename the custom tool"
                    .into(),
            );
        }
        // The policy gives `mcp__<server>__<tool>` the rules of that MCP
        // server's tool: only the runner's own MCP tools may carry it.
        if name.to_ascii_lowercase().starts_with(MCP_PREFIX)
            && tool.spec().source != ToolSource::Mcp
        {
            return Err(format!(
                "tool names starting with {MCP_PREFIX} are reserved for MCP servers' tools; rename the custom tool {name}"
            ));
        }
        if self.tools.contains_key(&name) {
            return Err(format!(
                "a tool named {name} is already registered; rename the custom tool"
            ));
        }
        let validator = jsonschema::validator_for(&tool.spec().input_schema)
            .map_err(|e| format!("the input schema of {name} is invalid: {e}"))?;
        self.tools.insert(name, (tool, Arc::new(validator)));
        Ok(())
    }

    /// Loads every guest tool under `dir`; tools that fail to load are
    /// kept as [`Registry::problems`], the rest are added.
    pub fn add_guest_dir(
        &mut self,
        dir: &std::path::Path,
        source: ToolSource,
        sandbox: &crate::sandbox::wasm::WasmSandbox,
        grants: &BTreeMap<String, Vec<String>>,
    ) {
        let (tools, errors) = guest::load_dir(dir, source, sandbox, grants);
        self.problems.extend(errors.iter().map(|e| e.to_string()));
        for t in tools {
            if let Err(e) = self.add(Arc::new(t)) {
                self.problems.push(format!("{}: {e}", dir.display()));
            }
        }
    }

    /// Records a problem found while assembling the registry.
    pub fn note_problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Tools that could not be loaded, each with why.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Looks a tool up by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name).map(|(t, _)| t)
    }

    /// Checks an input against the tool's schema: every violation, or Ok.
    pub fn validate(&self, name: &str, input: &serde_json::Value) -> Result<(), Vec<String>> {
        let Some((_, v)) = self.tools.get(name) else {
            return Err(vec![format!("unknown tool {name}")]);
        };
        let errors: Vec<String> = v
            .iter_errors(input)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every tool's spec, by name.
    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.tools.values().map(|(t, _)| t.spec()).collect()
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
    /// The tool that was called.
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
    call_cancellable(
        registry,
        gate,
        ctx,
        tool_name,
        input,
        dry_run,
        &Cancel::never(),
    )
}

/// [`call`] that stops (killing a running sandbox) when `cancel` is set.
pub fn call_cancellable(
    registry: &Registry,
    gate: &PolicyGate,
    ctx: &SessionContext,
    tool_name: &str,
    input: &serde_json::Value,
    dry_run: bool,
    cancel: &Cancel,
) -> CallOutcome {
    call_with(
        registry,
        gate,
        ctx,
        tool_name,
        input,
        &CallOptions {
            dry_run,
            cancel: cancel.clone(),
            approved_by: None,
        },
    )
}

/// How a call is made besides its input.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Decide and record, but do not run.
    pub dry_run: bool,
    /// Stops the call (and kills its sandbox) when set.
    pub cancel: Cancel,
    /// A person approved this one call: the policy's `ask` decisions are
    /// recorded with this name and let through within their confinement.
    /// Denials stay denials.
    pub approved_by: Option<String>,
}

impl CallStatus {
    /// `ok`, `denied` or `error`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ok => "ok",
            CallStatus::Denied => "denied",
            CallStatus::Error => "error",
        }
    }
}

/// The call path with every option; [`call`] and [`call_cancellable`] are
/// its common forms. Every call of a registered tool is timed in the
/// gate's metrics (an unknown name is not: the model chooses it).
pub fn call_with(
    registry: &Registry,
    gate: &PolicyGate,
    ctx: &SessionContext,
    tool_name: &str,
    input: &serde_json::Value,
    options: &CallOptions,
) -> CallOutcome {
    let started = std::time::Instant::now();
    let out = call_timed(registry, gate, ctx, tool_name, input, options);
    if registry.get(tool_name).is_some() {
        gate.metrics()
            .tool_call(tool_name, out.status.as_str(), started.elapsed());
    }
    out
}

fn call_timed(
    registry: &Registry,
    gate: &PolicyGate,
    ctx: &SessionContext,
    tool_name: &str,
    input: &serde_json::Value,
    options: &CallOptions,
) -> CallOutcome {
    let (dry_run, cancel) = (options.dry_run, &options.cancel);
    let outcome = |status, output, decisions| CallOutcome {
        status,
        tool: tool_name.to_string(),
        output,
        decisions,
    };
    let Some(tool) = registry.get(tool_name) else {
        let mut msg = format!(
            "unknown tool `{tool_name}`; known tools: {}",
            registry.names().join(", ")
        );
        if !registry.problems().is_empty() {
            msg.push_str(&format!(
                " (tools that failed to load: {})",
                registry.problems().join("; ")
            ));
        }
        return outcome(
            CallStatus::Error,
            serde_json::json!({ "error": msg }),
            Vec::new(),
        );
    };
    // The schema is checked before anything is decided or run.
    if let Err(errors) = registry.validate(tool_name, input) {
        return outcome(
            CallStatus::Error,
            serde_json::json!({
                "error": format!("invalid input for {tool_name}: {}", errors.join("; ")),
                "schema": tool.spec().input_schema,
            }),
            Vec::new(),
        );
    }
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
    let mut pending: std::collections::VecDeque<Action> = actions.into();
    let mut decided = 0usize;
    while let Some(action) = pending.pop_front() {
        let action = &action;
        decided += 1;
        let d = gate.decide(action, ctx, options.approved_by.as_deref());
        let result = d.record.result;
        let reasons = d.record.reasons.clone();
        let permits = d.record.permits();
        decisions.push(d);
        if !permits {
            return outcome(
                CallStatus::Denied,
                serde_json::json!({"denied": action.detail.kind(), "result": result, "reasons": reasons}),
                records(decisions),
            );
        }
        if let Some(next) = tool.follow_up(action) {
            pending.push_front(next);
        }
    }
    if dry_run {
        return outcome(
            CallStatus::Ok,
            serde_json::json!({"dry_run": true, "allowed": decided}),
            records(decisions),
        );
    }
    if cancel.is_cancelled() {
        return outcome(
            CallStatus::Error,
            serde_json::json!({"error": "cancelled before the tool ran"}),
            records(decisions),
        );
    }
    let ran = tool.run(ToolRun {
        input,
        ctx,
        decisions: &decisions,
        gate,
        cancel,
    });
    match ran {
        Ok(output) => outcome(CallStatus::Ok, output, records(decisions)),
        Err(e) => outcome(
            CallStatus::Error,
            serde_json::json!({"error": e.to_string()}),
            records(decisions),
        ),
    }
}

/// What a call reports of its decisions: the records, as logged.
fn records(decisions: Vec<Decided>) -> Vec<DecisionRecord> {
    decisions.into_iter().map(|d| d.record).collect()
}

/// Where the built-in guest tools are when the config does not say:
/// `guest-tools/` beside the runner binary (an installation) or one level up
/// (`target/guest-tools/` of a source checkout, from scripts/build-guests.sh).
pub fn default_builtin_dir(exe: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut out = vec![dir.join("guest-tools")];
    if let Some(up) = dir.parent() {
        out.push(up.join("guest-tools"));
    }
    out
}

#[cfg(test)]
mod reserved_name_tests {
    use super::{Registry, Tool, ToolError, ToolRun, ToolSource, ToolSpec};
    use protocol::policy::Action;
    use std::sync::Arc;

    struct Named(ToolSpec);

    impl Tool for Named {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        fn plan(&self, _: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
            Ok(vec![])
        }
        fn run(&self, _: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
            Ok(serde_json::json!({}))
        }
    }

    fn named(name: &str) -> Arc<dyn Tool> {
        Arc::new(Named(ToolSpec {
            name: name.into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            source: ToolSource::Builtin,
            capabilities: vec![],
            operator_only: false,
        }))
    }

    /// The policy gives the runner's own repository actions (tool
    /// `runner`) rules no agent tool may borrow.
    #[test]
    fn no_tool_may_be_named_runner() {
        let mut r = Registry::default();
        for name in ["runner", "Runner", "RUNNER"] {
            let e = r.add(named(name)).unwrap_err();
            assert!(e.contains("reserved"), "{e}");
        }
        r.add(named("runner-helper")).unwrap();
        assert_eq!(r.names(), ["runner-helper"]);
    }
}
