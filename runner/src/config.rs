//! The worker configuration file (`worker.toml`).
//!
//! One struct per section, every one with `deny_unknown_fields`, so a typo is
//! an error that names the key instead of a setting silently ignored. What a
//! policy may see of this file is [`Config::trusted_view`]: the policy-facing
//! grants and lists, never paths to secrets.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole worker configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the runner's own state (audit log, worker id, caches).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Where policies come from and how they are evaluated.
    #[serde(default)]
    pub policy: crate::policy::PolicySection,
    /// The local append-only decision log.
    #[serde(default)]
    pub audit: AuditSection,
    /// Files inside a workspace that get extra protection.
    #[serde(default)]
    pub files: FilesSection,
    /// Network grants of this worker (for every agent it runs).
    #[serde(default)]
    pub network: NetworkSection,
    /// The process sandbox.
    #[serde(default)]
    pub sandbox: crate::sandbox::SandboxSection,
    /// Guest tools and the wasm sandbox.
    #[serde(default)]
    pub tools: crate::tools::ToolsSection,
    /// The WebFetch host tool.
    #[serde(default)]
    pub webfetch: crate::tools::WebFetchSettings,
    /// The worker loop (`runner worker`, `runner up`).
    #[serde(default)]
    pub worker: WorkerSection,
    /// The agent loop of model-driven sessions.
    #[serde(default)]
    pub agent: crate::agent::AgentSettings,
    /// The webhook receiver (wake-ups from the control plane).
    #[serde(default)]
    pub webhook: crate::webhook::WebhookSection,
    /// Signing in to the control plane (`runner login`).
    #[serde(default)]
    pub auth: crate::auth::AuthSection,
    /// Model providers (`[[providers]]`), by the model ids they serve.
    #[serde(default)]
    pub providers: Vec<crate::model::ProviderConfig>,
    /// Repository hosts, their credentials and the delivery identities.
    #[serde(default)]
    pub repositories: crate::repository::RepositoriesSection,
    /// Where the worker serves its metrics (`GET /metrics`); off by default.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsSection,
    /// MCP servers: credentials by server URL, limits.
    #[serde(default)]
    pub mcp: crate::tools::mcp::McpSection,
    /// The WebSearch tool's provider.
    #[serde(default)]
    pub websearch: crate::tools::websearch::WebSearchSection,
    /// Limits of the artifacts a session delivers from `/data`.
    #[serde(default)]
    pub artifacts: crate::artifacts::ArtifactsSection,
}

/// `[worker]`: which control plane, which sessions, how many at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Base URL of the control plane.
    #[serde(default)]
    pub control_plane: Option<String>,
    /// PEM file of CA certificates trusted for the control plane's HTTPS
    /// certificate, besides the web PKI roots (an operator's own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Workspace whose sessions this worker runs.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Agent profile whose sessions this worker runs.
    #[serde(default)]
    pub agent_profile: Option<String>,
    /// Label people see.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Sessions at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Lease asked for on each claim; extended every third of it.
    #[serde(default = "default_lease")]
    pub lease_seconds: u32,
    /// Poll interval (jittered ±20%; backs off on errors).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Heartbeat interval.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_interval_ms: u64,
    /// How often the worker compares the claims the control plane lists
    /// as held with the sessions it runs: the fallback that stops a
    /// session whose stop no event stream delivered (each session's
    /// event stream stops it within moments; this bounds the wait when
    /// the stream cannot be had).
    #[serde(default = "default_claims_check")]
    pub claims_check_seconds: u64,
    /// After the first SIGTERM/SIGINT, how long in-flight sessions may run
    /// before they are released.
    #[serde(default = "default_grace")]
    pub grace_seconds: u64,
    /// Where session workspaces are created; default `<state_dir>/workspaces`.
    #[serde(default)]
    pub workspaces_dir: Option<PathBuf>,
    /// Worker-level custom instructions (trusted).
    #[serde(default)]
    pub custom_instructions: Option<String>,
}

fn default_display_name() -> String {
    "runner".into()
}
fn default_concurrency() -> u32 {
    4
}
fn default_lease() -> u32 {
    900
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_heartbeat_ms() -> u64 {
    30_000
}
fn default_claims_check() -> u64 {
    5
}
fn default_grace() -> u64 {
    30
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            control_plane: None,
            ca_file: None,
            workspace: None,
            agent_profile: None,
            display_name: default_display_name(),
            concurrency: default_concurrency(),
            lease_seconds: default_lease(),
            poll_interval_ms: default_poll_ms(),
            heartbeat_interval_ms: default_heartbeat_ms(),
            claims_check_seconds: default_claims_check(),
            grace_seconds: default_grace(),
            workspaces_dir: None,
            custom_instructions: None,
        }
    }
}

/// `[audit]`: the hash-chained JSONL decision log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Log file; default `<state_dir>/audit.jsonl`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// fsync after every record (durable across power loss, slower).
    #[serde(default)]
    pub fsync: bool,
}

/// `[files]`: paths inside a workspace with extra protection, as globs
/// relative to the workspace root (`**` crosses directories).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    /// Added to the default policy's protected paths: never written by tools.
    #[serde(default)]
    pub protected_paths: Vec<String>,
    /// Added to the default policy's hidden paths: never read or written.
    #[serde(default)]
    pub hidden_paths: Vec<String>,
}

/// `[network]`: hosts this worker lets agents reach.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Host names or `*.suffix` patterns that may be connected to.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Hosts never connected to; wins over `allow_hosts`.
    #[serde(default)]
    pub deny_hosts: Vec<String>,
    /// Address ranges exempt from the built-in guard against loopback,
    /// private and link-local addresses (CIDR). For test rigs and on-premise
    /// services; empty in production.
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file named on the command line or by default.
        path: PathBuf,
        /// Why it could not be read (missing, permissions).
        source: std::io::Error,
    },
    /// The file is not valid for this schema; the message names the key.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The config file whose content was refused.
        path: PathBuf,
        /// The parser's message, naming the key and the line.
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let w = &self.worker;
        if !(1..=256).contains(&w.concurrency) {
            return Err("worker.concurrency must be between 1 and 256".into());
        }
        if !(3..=3600).contains(&w.lease_seconds) {
            return Err("worker.lease_seconds must be between 3 and 3600".into());
        }
        if w.poll_interval_ms < 10 {
            return Err("worker.poll_interval_ms must be at least 10".into());
        }
        if w.heartbeat_interval_ms < 100 {
            return Err("worker.heartbeat_interval_ms must be at least 100".into());
        }
        if !(1..=3600).contains(&w.claims_check_seconds) {
            return Err("worker.claims_check_seconds must be between 1 and 3600".into());
        }
        if let Some(u) = &w.control_plane {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "worker.control_plane `{u}` must be an http:// or https:// URL"
                ));
            }
        }
        self.policy.validate()?;
        self.sandbox.validate()?;
        self.repositories.validate()?;
        self.artifacts.validate()?;
        self.websearch.validate()?;
        self.mcp.validate()?;
        let state = self.state_dir();
        let workspaces = self.workspaces_dir();
        self.sandbox.validate_roots_against(&[
            ("state_dir", state.as_path()),
            ("worker.workspaces_dir", workspaces.as_path()),
        ])?;
        // A glob no engine can compile would match nothing in the policy's
        // VM (a protected path left writable): refuse it here instead.
        for (key, globs) in [
            ("files.protected_paths", &self.files.protected_paths),
            ("files.hidden_paths", &self.files.hidden_paths),
        ] {
            for g in globs {
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        format!("{key} entry `{g}` is not a valid glob ({e}); fix or remove it")
                    })?;
            }
        }
        for c in &self.network.allow_cidrs {
            if !c.contains('/') {
                return Err(format!(
                    "network.allow_cidrs entry `{c}` must be a CIDR like 127.0.0.1/32"
                ));
            }
        }
        Ok(())
    }

    /// Directory for state: the config's `state_dir`, else
    /// `$RUNNER_STATE_DIR`, else `$XDG_STATE_HOME/runner`, else
    /// `~/.local/state/runner`.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("RUNNER_STATE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
            return PathBuf::from(d).join("runner");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/var/lib".into());
        PathBuf::from(home).join(".local/state/runner")
    }

    /// Where session workspaces are created: `worker.workspaces_dir`, else
    /// `<state_dir>/workspaces`.
    pub fn workspaces_dir(&self) -> PathBuf {
        self.worker
            .workspaces_dir
            .clone()
            .unwrap_or_else(|| self.state_dir().join("workspaces"))
    }

    /// The audit log path.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("audit.jsonl"))
    }

    /// The compiled-module cache directory.
    pub fn wasm_cache_dir(&self) -> PathBuf {
        self.tools
            .cache_dir
            .clone()
            .unwrap_or_else(|| self.state_dir().join("wasm-cache"))
    }

    /// What policies see of this worker under `input.trusted.worker`.
    pub fn trusted_view(&self) -> serde_json::Value {
        serde_json::json!({
            "protected_paths": self.files.protected_paths,
            "hidden_paths": self.files.hidden_paths,
            "network": self.network,
            "repositories": self.repositories.trusted_view(),
            "sandbox": self.sandbox.trusted_view(),
            "websearch": self.websearch.trusted_view(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[policy]\nentrypont = \"data.x\"\n").unwrap_err();
        assert!(err.contains("entrypont"), "{err}");
    }

    #[test]
    fn unknown_section_is_named() {
        let err = Config::parse("[polcy]\n").unwrap_err();
        assert!(err.contains("polcy"), "{err}");
    }

    #[test]
    fn defaults_are_safe() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.policy.entrypoint, "data.runner.decision");
        assert!(c.policy.run_tests_on_load);
        assert!(c.network.allow_hosts.is_empty());
        assert_eq!(c.policy.mask, vec!["/action/env".to_string()]);
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/worker.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.policy.dirs, vec![PathBuf::from("/etc/runner/policies")]);
        assert!(c.network.allow_hosts.contains(&"crates.io".to_string()));
    }

    #[test]
    fn a_glob_that_does_not_compile_is_refused_naming_the_key() {
        let err = Config::parse("[files]\nprotected_paths = [\"src/[ab\"]\n").unwrap_err();
        assert!(err.contains("files.protected_paths"), "{err}");
        let err = Config::parse("[files]\nhidden_paths = [\"{a,b\"]\n").unwrap_err();
        assert!(err.contains("files.hidden_paths"), "{err}");
        assert!(Config::parse("[files]\nprotected_paths = [\"deploy/**\"]\n").is_ok());
    }

    #[test]
    fn settings_that_void_the_confinement_are_refused() {
        for (cfg, key) in [
            ("[sandbox]\ngid = 0\n", "sandbox.gid"),
            (
                "[sandbox.limits]\nworkspace_mb = 0\n",
                "sandbox.limits.workspace_mb",
            ),
            (
                "[sandbox.limits]\ncpu_weight = 0\n",
                "sandbox.limits.cpu_weight",
            ),
            (
                "[sandbox.limits]\noutput_bytes = 0\n",
                "sandbox.limits.output_bytes",
            ),
        ] {
            let err = Config::parse(cfg).unwrap_err();
            assert!(err.contains(key), "{cfg}: {err}");
        }
    }

    #[test]
    fn sandbox_roots_env_and_identity_are_refused_naming_the_key() {
        // Not under /tmp: the sandbox never binds a root from there.
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let real = std::fs::canonicalize(d.path()).unwrap();
        let file = real.join("file");
        std::fs::write(&file, "").unwrap();
        let link = real.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let state = format!("state_dir = \"{}\"\n", real.display());
        for (cfg, key, why) in [
            (
                "[sandbox]\nreadable_roots = [\"opt/rust\"]\n".to_string(),
                "sandbox.readable_roots",
                "absolute",
            ),
            (
                "[sandbox]\nreadable_roots = [\"/usr/../etc\"]\n".into(),
                "sandbox.readable_roots",
                "clean",
            ),
            (
                "[sandbox]\nreadable_roots = [\"/usr/\"]\n".into(),
                "sandbox.readable_roots",
                "write it as /usr",
            ),
            (
                "[sandbox]\nreadable_roots = [\"/\"]\n".into(),
                "sandbox.readable_roots",
                "whole host",
            ),
            (
                "[sandbox]\nreadable_roots = [\"/nonexistent-runner-root\"]\n".into(),
                "sandbox.readable_roots",
                "create it",
            ),
            (
                format!("[sandbox]\nreadable_roots = [\"{}\"]\n", file.display()),
                "sandbox.readable_roots",
                "not a directory",
            ),
            (
                format!("[sandbox]\nreadable_roots = [\"{}\"]\n", link.display()),
                "sandbox.readable_roots",
                "symlink",
            ),
            (
                "[sandbox]\nreadable_roots = [\"/run/user\"]\n".into(),
                "sandbox.readable_roots",
                "never binds",
            ),
            (
                format!(
                    "{state}[sandbox]\nreadable_roots = [\"{}\"]\n",
                    real.display()
                ),
                "overlaps state_dir",
                "",
            ),
            (
                format!(
                    "[worker]\nworkspaces_dir = \"{}/ws\"\n[sandbox]\nreadable_roots = [\"{}\"]\n",
                    real.display(),
                    real.display()
                ),
                "overlaps worker.workspaces_dir",
                "",
            ),
            (
                "[sandbox.env]\n\"1X\" = \"a\"\n".into(),
                "sandbox.env `1X`",
                "variable name",
            ),
            (
                "[sandbox.env]\n\"A-B\" = \"a\"\n".into(),
                "sandbox.env `A-B`",
                "variable name",
            ),
            (
                "[sandbox.env]\nHOME = \"/x\"\n".into(),
                "sandbox.env `HOME`",
                "workspace",
            ),
            (
                "[sandbox.env]\nTMPDIR = \"/x\"\n".into(),
                "sandbox.env `TMPDIR`",
                "private /tmp",
            ),
            (
                "[sandbox.env]\nhttps_proxy = \"http://x\"\n".into(),
                "sandbox.env `https_proxy`",
                "network.allow_hosts",
            ),
            (
                "[sandbox.env]\nNO_PROXY = \"*\"\n".into(),
                "sandbox.env `NO_PROXY`",
                "proxy",
            ),
            (
                "[sandbox.env]\nGIT_AUTHOR_NAME = \"x\"\n".into(),
                "sandbox.env `GIT_AUTHOR_NAME`",
                "sandbox.git_identity",
            ),
            (
                "[sandbox.env]\nGIT_CONFIG_NOSYSTEM = \"0\"\n".into(),
                "sandbox.env `GIT_CONFIG_NOSYSTEM`",
                "host's git",
            ),
            (
                "[sandbox.env]\nA = \"a\\u0000b\"\n".into(),
                "sandbox.env `A`",
                "NUL",
            ),
            (
                "[sandbox.git_identity]\nname = \"\"\n".into(),
                "sandbox.git_identity.name",
                "non-empty",
            ),
            (
                "[sandbox.git_identity]\nemail = \"a <b@c>\"\n".into(),
                "sandbox.git_identity.email",
                "<",
            ),
            (
                "[sandbox.git_identity]\nemail = \"nobody\"\n".into(),
                "sandbox.git_identity.email",
                "not an email",
            ),
            (
                "[sandbox.git_identity]\nmail = \"a@b\"\n".into(),
                "mail",
                "",
            ),
        ] {
            let err = Config::parse(&cfg).unwrap_err();
            assert!(err.contains(key) && err.contains(why), "{cfg}: {err}");
        }
        let ok = format!(
            "[sandbox]\nreadable_roots = [\"/usr\", \"{}\"]\n[sandbox.env]\nRUSTUP_HOME = \"/opt/rustup\"\nPATH = \"/opt/cargo/bin:/usr/bin:/bin\"\nLD_LIBRARY_PATH = \"/opt/lib\"\n[sandbox.git_identity]\nname = \"CI bot\"\nemail = \"ci@example.com\"\n",
            real.display()
        );
        let c = Config::parse(&ok).unwrap();
        let view = c.trusted_view();
        assert_eq!(
            view["sandbox"]["readable_roots"],
            serde_json::json!(["/usr", real.display().to_string()])
        );
        assert_eq!(view["sandbox"]["env"]["RUSTUP_HOME"], "/opt/rustup");
        assert_eq!(view["sandbox"]["git_identity"]["email"], "ci@example.com");
        let env = c.sandbox.command_env();
        assert!(env.contains(&("PATH".into(), "/opt/cargo/bin:/usr/bin:/bin".into())));
        assert!(env.contains(&("GIT_COMMITTER_NAME".into(), "CI bot".into())));
        let defaults = Config::parse("").unwrap().sandbox.command_env();
        assert!(defaults.contains(&("GIT_AUTHOR_EMAIL".into(), "agent@runner.invalid".into())));
    }

    #[test]
    fn bad_mask_pointer_is_refused() {
        let err = Config::parse("[policy]\nmask = [\"action/env\"]\n").unwrap_err();
        assert!(err.contains("JSON pointer"), "{err}");
    }
}
