//! `Bash`: a shell command in the process sandbox.
//!
//! Input `{"command": "...", "timeout_ms": N?, "cwd": "rel/dir"?}`; output
//! `{exit_code, stdout, stderr, truncated, duration_ms, killed_by?,
//! sandbox_notes?}` — the notes say when the sandbox (no network, a
//! protected path, a limit, a connection the proxy refused) is why
//! something failed, and which setting would change it. The
//! policy sees the command line and working directory (`shell.exec`); the
//! sandbox enforces the decision's confinement.

use super::{Tool, ToolError, ToolRun, ToolSource, ToolSpec};
use crate::sandbox::process::proxy::NetProxy;
use crate::sandbox::process::{self, Limits, ProcessSandbox, SandboxSpec};
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, ActionDetail, NetworkMode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the Bash tool runs its commands.
#[derive(Debug, Clone)]
pub struct BashSettings {
    /// The sandbox helper binary (`runner-sandbox`).
    pub helper: PathBuf,
    /// Outside uid/gid of the sandbox's root when the runner is root.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Per-command limits (`[sandbox.limits]`).
    pub limits: Limits,
    /// Run without Landlock when the kernel lacks it (operator opt-in).
    pub degraded: bool,
    /// Fixed variables of every command (`sandbox.env`, git identity).
    pub env: Vec<(String, String)>,
    /// Most MiB the session's `/data` may hold (`artifacts.max_total_mb`):
    /// more is never delivered, so a command is not let fill the disk.
    pub data_mb: u64,
}

/// The `Bash` tool.
pub struct Bash {
    spec: ToolSpec,
    settings: BashSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    command: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    cwd: Option<String>,
}

impl Bash {
    /// The tool with its settings.
    pub fn new(settings: BashSettings) -> Self {
        Bash {
            spec: ToolSpec {
                name: "Bash".into(),
                description: "Run a shell command (bash -c) in the workspace, sandboxed: the workspace is writable, system directories read-only, no network unless granted.".into(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "required": ["command"],
                    "additionalProperties": false,
                    "properties": {
                        "command": {"type": "string", "description": "the command line"},
                        "timeout_ms": {"type": "integer", "minimum": 1},
                        "cwd": {"type": "string", "description": "working directory relative to the workspace"}
                    }
                }),
                source: ToolSource::Builtin,
                capabilities: vec!["shell.exec".into()],
                operator_only: false,
            },
            settings,
        }
    }

    fn parse(input: &serde_json::Value) -> Result<Input, ToolError> {
        serde_json::from_value(input.clone()).map_err(|e| ToolError::InvalidInput {
            tool: "Bash".into(),
            message: e.to_string(),
        })
    }
}

impl Tool for Bash {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
        let i = Self::parse(input)?;
        Ok(vec![Action {
            tool: "Bash".into(),
            detail: ActionDetail::ShellExec {
                command: i.command,
                cwd: i.cwd.unwrap_or_else(|| ".".into()),
                network: NetworkMode::None,
                env: BTreeMap::new(),
            },
        }])
    }

    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
        let i = Self::parse(run.input)?;
        let decision = run
            .decisions
            .first()
            .ok_or_else(|| ToolError::Failed("no decision was made".into()))?;
        let confine = decision.record.confine.as_ref().ok_or_else(|| {
            ToolError::Failed(
                "the policy allowed shell.exec without a confinement; refusing to run unconfined (return `confine` in the decision)".into(),
            )
        })?;
        // The command and the directory that were decided, not the input
        // read again.
        let Some(NormalizedAction::ShellExec(shell)) = &decision.action else {
            return Err(ToolError::Failed(
                "the decision has no normalised cwd".into(),
            ));
        };
        let spec = SandboxSpec::confined(
            shell.command.clone(),
            run.ctx.workspace.clone(),
            PathBuf::from(&shell.cwd_abs),
            confine,
            process::sandbox_ids(self.settings.uid, self.settings.gid),
            self.settings.limits.clone(),
        )
        .with_roots(
            confine,
            &run.ctx
                .roots
                .iter()
                .map(|r| process::Bind {
                    host: r.host.clone(),
                    at: r.at.clone(),
                    writable: r.writable,
                    limit_mb: if r.writable { self.settings.data_mb } else { 0 },
                })
                .collect::<Vec<_>>(),
        )
        .allow_degraded(self.settings.degraded)
        .with_env(self.settings.env.clone());
        let timeout_ms = i
            .timeout_ms
            .unwrap_or(self.settings.limits.default_timeout_ms)
            .min(self.settings.limits.max_timeout_ms);
        let sandbox = ProcessSandbox::new(self.settings.helper.clone());
        let timeout = Duration::from_millis(timeout_ms);
        let out = if confine.network == protocol::policy::NetworkMode::Proxy {
            // Every connection through the proxy is its own decision.
            let proxy = NetProxy::bind(&std::env::temp_dir())
                .map_err(|e| ToolError::Failed(format!("cannot start the network proxy: {e}")))?;
            let spec = spec.with_proxy(proxy.socket().to_path_buf());
            std::thread::scope(|scope| {
                let decider = PolicyConnect {
                    gate: run.gate,
                    ctx: run.ctx,
                };
                let proxy = &proxy;
                scope.spawn(move || proxy.serve(&decider));
                let out = sandbox.run_cancellable(&spec, timeout, run.cancel);
                proxy.stop();
                out.map(|mut out| {
                    out.sandbox_notes
                        .extend(process::notes::proxy_denied(&proxy.denied()));
                    out
                })
            })
        } else {
            sandbox.run_cancellable(&spec, timeout, run.cancel)
        }
        .map_err(|e| ToolError::Failed(e.to_string()))?;
        if let Some(took) = out.spawn {
            run.gate.metrics().sandbox_spawn("process", took);
        }
        serde_json::to_value(out).map_err(|e| ToolError::Failed(e.to_string()))
    }
}

/// The proxy's decisions, made by the session's policy gate: each
/// connection is two recorded decisions (the host, then its addresses),
/// as actions of the Bash tool.
pub struct PolicyConnect<'a> {
    /// The gate that decides and records.
    pub gate: &'a crate::policy::PolicyGate,
    /// The session the connections belong to.
    pub ctx: &'a crate::policy::SessionContext,
}

impl crate::sandbox::process::proxy::ConnectDecider for PolicyConnect<'_> {
    fn decide(
        &self,
        req: &crate::sandbox::process::proxy::ConnectRequest<'_>,
    ) -> Result<Vec<std::net::SocketAddr>, Vec<String>> {
        let target = crate::policy::connect::Target {
            tool: "Bash",
            host: req.host,
            port: req.port,
            scheme: req.scheme,
            method: Some(req.method),
        };
        crate::policy::connect::decide(self.gate, self.ctx, &target)
            .map(|(addrs, _)| addrs)
            .map_err(|refused| refused.0.reasons)
    }
}
