//! `runner call`: one tool call under policy, without a control plane.

use super::{load_config, read_json, EXIT_DENIED, EXIT_TOOL_ERROR};
use crate::activity::NullSink;
use crate::policy::audit::AuditLog;
use crate::policy::paths::canonical_root;
use crate::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
use crate::tools::{self, CallStatus};
use anyhow::Context;
use clap::Args;
use protocol::session::SourceWork;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The tools a pinned agent version enables when `--agent` is not given.
pub(super) const DEFAULT_ENABLED_TOOLS: &[&str] = &[
    "Bash", "Read", "Write", "Edit", "Glob", "Grep", "List", "WebFetch", "Decide",
];

/// Arguments of `runner call`.
#[derive(Args)]
pub(super) struct CallArgs {
    /// The workspace the call runs in.
    #[arg(long)]
    workspace: PathBuf,
    /// Policy directory (repeatable); overrides the config's policy.dirs.
    /// Without either, the default policy compiled into the binary decides.
    #[arg(long = "policy")]
    policy: Vec<PathBuf>,
    /// Worker config file (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Audit log to append to; default `<state_dir>/audit.jsonl`.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Session JSON: {"id", "attempt", "untrusted": {title, description, comments, prompt}}.
    #[arg(long)]
    session: Option<PathBuf>,
    /// Pinned agent version JSON (trusted): {"name", "enabled_tools", "grants"}.
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Decide and record, but do not run the tool.
    #[arg(long)]
    dry_run: bool,
    /// Tool name, e.g. Decide (see `runner tools list`).
    tool: String,
    /// Tool input as JSON.
    args: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    claim_id: Option<String>,
    #[serde(default = "one")]
    attempt: u32,
    #[serde(default)]
    untrusted: SourceWork,
}

fn one() -> u32 {
    1
}

pub(super) fn run(a: CallArgs) -> anyhow::Result<u8> {
    let mut config = load_config(a.config.as_deref())?;
    if !a.policy.is_empty() {
        config.policy.dirs = a.policy.clone();
    }
    let workspace = canonical_root(&a.workspace).map_err(anyhow::Error::msg)?;
    let input: serde_json::Value = serde_json::from_str(&a.args).with_context(|| {
        format!("tool input for {} is not valid JSON; pass one JSON object, e.g. '{{\"path\": \"README.md\"}}'", a.tool)
    })?;
    let session: SessionFile = match &a.session {
        Some(p) => serde_json::from_value(read_json(p, "session file")?)
            .with_context(|| format!("session file {} has the wrong shape", p.display()))?,
        None => SessionFile::default(),
    };
    let engine = Arc::new(PolicyEngine::load(EngineSettings::from_config(
        &config.policy,
        vec![workspace.clone()],
    ))?);
    let exe = std::env::current_exe().context("cannot locate the runner binary")?;
    let registry =
        crate::wiring::tool_registry(&config, &exe, &engine).map_err(anyhow::Error::msg)?;
    if registry.get(&a.tool).is_none() {
        let mut msg = format!(
            "unknown tool `{}`; known tools: {} (see `runner tools list`)",
            a.tool,
            registry.names().join(", ")
        );
        for p in registry.problems() {
            msg.push_str(&format!("\n  not loaded: {p}"));
        }
        anyhow::bail!(msg);
    }
    // The operator at the CLI: the default tools plus every custom tool.
    let agent = match &a.agent {
        Some(p) => read_json(p, "agent file")?,
        None => {
            let mut enabled: Vec<String> = DEFAULT_ENABLED_TOOLS
                .iter()
                .map(|s| s.to_string())
                .collect();
            for n in registry.names() {
                if !enabled.contains(&n) {
                    enabled.push(n);
                }
            }
            serde_json::json!({"name": "cli", "enabled_tools": enabled, "grants": {}})
        }
    };
    let audit_path = a.audit.clone().unwrap_or_else(|| config.audit_path());
    let audit = Arc::new(AuditLog::open(&audit_path, config.audit.fsync)?);
    let gate = PolicyGate::builder(engine, Arc::new(NullSink))
        .degraded(crate::wiring::degraded_note(&config))
        .audit(audit);
    let trusted = Trusted {
        agent,
        worker: config.trusted_view(),
        platform: serde_json::json!({}),
    };
    let ctx = SessionContext::new(workspace, trusted, session.untrusted).with_session(
        session.id,
        session.claim_id,
        session.attempt.max(1),
    );
    let outcome = tools::call(&registry, &gate, &ctx, &a.tool, &input, a.dry_run);
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(match outcome.status {
        CallStatus::Ok => 0,
        CallStatus::Denied => EXIT_DENIED,
        CallStatus::Error => EXIT_TOOL_ERROR,
    })
}
