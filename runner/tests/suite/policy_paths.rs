//! Paths reach the policy normalised; escapes are denied by the default
//! policy and the record shows the resolved path.

use protocol::policy::{Action, ActionDetail, DecisionResult};
use protocol::session::SourceWork;
use test_support::*;

fn write(path: &str) -> Action {
    Action {
        tool: "Write".into(),
        detail: ActionDetail::FsWrite { path: path.into() },
    }
}

fn read(path: &str) -> Action {
    Action {
        tool: "Read".into(),
        detail: ActionDetail::FsRead { path: path.into() },
    }
}

#[test]
fn escapes_are_normalised_and_denied() {
    let (d, root) = workspace();
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("innocent.txt")).unwrap();
    let (gate, _) = gate(default_engine(), None);
    let c = ctx(&root, SourceWork::default());
    let cases = [
        "../../etc/passwd",
        "/etc/passwd",
        "escape/secret.txt",
        "innocent.txt",
        "a/./b/../../..",
        "src/../../ws-sibling/x",
    ];
    for p in cases {
        for action in [read(p), write(p)] {
            let rec = gate.check(&action, &c);
            assert_eq!(rec.result, DecisionResult::Deny, "{p}: {:?}", rec.reasons);
            assert_eq!(rec.action["in_workspace"], false, "{p}");
            let seen = rec.action["path"].as_str().unwrap();
            assert!(
                seen.starts_with('/') && !seen.contains(".."),
                "{p} -> {seen}"
            );
            assert_eq!(rec.action["path_requested"], p);
            assert!(
                rec.reasons
                    .iter()
                    .any(|r| r.contains("outside the workspace")),
                "{p}: {:?}",
                rec.reasons
            );
        }
    }
}

#[test]
fn symlink_target_is_what_policy_sees() {
    let (d, root) = workspace();
    std::os::unix::fs::symlink(d.path().join("nowhere"), root.join("dangling")).unwrap();
    let (gate, _) = gate(default_engine(), None);
    let rec = gate.check(&write("dangling"), &ctx(&root, SourceWork::default()));
    assert_eq!(rec.result, DecisionResult::Deny);
    assert_eq!(
        rec.action["path_abs"],
        std::fs::canonicalize(d.path())
            .unwrap()
            .join("nowhere")
            .to_str()
            .unwrap()
    );
}

#[test]
fn protected_path_reached_through_a_symlink_is_protected() {
    let (_d, root) = workspace();
    std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
    std::os::unix::fs::symlink(".git/hooks", root.join("hooks")).unwrap();
    let (gate, _) = gate(default_engine(), None);
    let rec = gate.check(
        &write("hooks/pre-commit"),
        &ctx(&root, SourceWork::default()),
    );
    assert_eq!(rec.result, DecisionResult::Deny);
    assert_eq!(rec.action["path"], ".git/hooks/pre-commit");
}

#[test]
fn clean_paths_inside_are_allowed_relative() {
    let (_d, root) = workspace();
    let (gate, _) = gate(default_engine(), None);
    let c = ctx(&root, SourceWork::default());
    for (p, want) in [
        ("src/main.rs", "src/main.rs"),
        ("./src/../src/new.rs", "src/new.rs"),
    ] {
        let rec = gate.check(&write(p), &c);
        assert_eq!(rec.result, DecisionResult::Allow, "{p}: {:?}", rec.reasons);
        assert_eq!(rec.action["path"], want);
        assert_eq!(rec.action["in_workspace"], true);
    }
    let abs = root.join("src/main.rs");
    let rec = gate.check(&read(abs.to_str().unwrap()), &c);
    assert_eq!(rec.result, DecisionResult::Allow);
    assert_eq!(rec.action["path"], "src/main.rs");
}
