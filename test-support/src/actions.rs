//! One action of every kind (and the interesting cases of the common ones):
//! the fixture the policy benchmarks time and the trust suite checks, so a
//! new action kind is added in one place.

use protocol::policy::{Action, ActionDetail, NetworkMode};
use std::collections::BTreeMap;

/// Ten actions: reads inside and outside the workspace, writes to source
/// and to a git hook, a shell command with environment, connections to a
/// public host and to the metadata address, an external side effect and a
/// workspace write. The benchmarks' "10-action mix".
pub fn every_kind() -> Vec<Action> {
    let a = |tool: &str, detail| Action {
        tool: tool.into(),
        detail,
    };
    let mut env = BTreeMap::new();
    env.insert("CI".to_string(), "1".to_string());
    vec![
        a(
            "Read",
            ActionDetail::FsRead {
                path: "src/main.rs".into(),
            },
        ),
        a(
            "Read",
            ActionDetail::FsRead {
                path: "crates/core/src/lib.rs".into(),
            },
        ),
        a(
            "Edit",
            ActionDetail::FsWrite {
                path: "src/lib.rs".into(),
            },
        ),
        a(
            "Write",
            ActionDetail::FsWrite {
                path: ".git/hooks/pre-commit".into(),
            },
        ),
        a(
            "Read",
            ActionDetail::FsRead {
                path: "../../etc/passwd".into(),
            },
        ),
        a(
            "Bash",
            ActionDetail::ShellExec {
                command: "cargo test --workspace".into(),
                cwd: ".".into(),
                network: NetworkMode::None,
                env,
            },
        ),
        a(
            "WebFetch",
            ActionDetail::NetConnect {
                host: "docs.rs".into(),
                port: 443,
                scheme: "https".into(),
                method: Some("GET".into()),
                addresses: vec!["18.154.101.2".into()],
                resolved: true,
            },
        ),
        a(
            "WebFetch",
            ActionDetail::NetConnect {
                host: "evil.example".into(),
                port: 443,
                scheme: "https".into(),
                method: None,
                addresses: vec!["169.254.169.254".into()],
                resolved: true,
            },
        ),
        a(
            "Bash",
            ActionDetail::External {
                operation: "git.push".into(),
                target: Some("origin".into()),
                git: None,
            },
        ),
        a(
            "Bash",
            ActionDetail::WorkspaceWrite {
                operation: "comment".into(),
                target: None,
                artifact: None,
            },
        ),
    ]
}
