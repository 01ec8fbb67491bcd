//! Shared fixtures for the policy suites.

use protocol::session::SourceWork;
use runner::activity::MemorySink;
use runner::policy::audit::AuditLog;
use runner::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const ALL_TOOLS: &[&str] = &[
    "Read", "Write", "Edit", "Bash", "WebFetch", "Glob", "Grep", "List", "Decide",
];

pub fn settings(dirs: Vec<PathBuf>) -> EngineSettings {
    EngineSettings {
        dirs,
        entrypoint: "data.runner.decision".into(),
        eval_timeout: Duration::from_millis(50),
        mask: vec!["/action/env".into()],
        run_tests: true,
        workspaces: Vec::new(),
    }
}

/// The shipped default policy (embedded).
pub fn default_engine() -> Arc<PolicyEngine> {
    Arc::new(PolicyEngine::load(settings(Vec::new())).expect("default policy loads"))
}

pub fn workspace() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap().join("ws");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    (d, root)
}

pub fn trusted() -> Trusted {
    Trusted {
        agent: serde_json::json!({"name": "test", "enabled_tools": ALL_TOOLS, "grants": {}}),
        worker: serde_json::json!({"protected_paths": [], "hidden_paths": [], "network": {"allow_hosts": ["example.com"], "deny_hosts": [], "allow_cidrs": []}}),
        platform: serde_json::json!({}),
    }
}

pub fn ctx(root: &Path, untrusted: SourceWork) -> SessionContext {
    SessionContext::new(root.to_path_buf(), trusted(), untrusted).with_session(
        Some("sess-1".into()),
        Some("claim-1".into()),
        1,
    )
}

/// Decides `action` the one public way, through a gate (reporting to a
/// sink nobody reads, no audit log).
pub fn decide(
    engine: &Arc<PolicyEngine>,
    action: &protocol::policy::Action,
    ctx: &SessionContext,
) -> protocol::policy::DecisionRecord {
    gate(engine.clone(), None).0.check(action, ctx)
}

pub fn gate(engine: Arc<PolicyEngine>, audit: Option<&Path>) -> (PolicyGate, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let log = audit.map(|p| Arc::new(AuditLog::open(p, false).unwrap()));
    let b = PolicyGate::builder(engine, sink.clone());
    let gate = match log {
        Some(log) => b.audit(log),
        None => b.without_audit(),
    };
    (gate, sink)
}

/// Writes a policy directory with the given files (mode 0644, dir 0755).
pub fn policy_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    write_policy_files(d.path(), files);
    d
}

pub fn write_policy_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Copies the shipped policies/ into a fresh directory.
pub fn shipped_policy_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let d = policy_dir(&[]);
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        write_policy_files(d.path(), &[(e.file_name().to_str().unwrap(), &text)]);
    }
    d
}
