//! The decision cache answers only identical inputs under the same policy
//! revision, never across sessions or reloads, and never for policies whose
//! result can change without the input changing.

use protocol::policy::{Action, ActionDetail, DecisionResult};
use protocol::session::SourceWork;
use runner::policy::PolicyEngine;
use test_support::*;

fn write(path: &str) -> Action {
    Action {
        tool: "Write".into(),
        detail: ActionDetail::FsWrite { path: path.into() },
    }
}

#[test]
fn identical_input_is_answered_from_the_cache_with_the_same_decision() {
    let (_d, root) = workspace();
    let engine = default_engine();
    let c = ctx(&root, SourceWork::default());
    let first = decide(&engine, &write("src/a.rs"), &c);
    let second = decide(&engine, &write("src/a.rs"), &c);
    assert!(!first.cache_hit);
    assert!(second.cache_hit);
    assert_eq!(first.result, second.result);
    assert_eq!(first.reasons, second.reasons);
    assert_eq!(first.confine, second.confine);
    assert_ne!(
        first.decision_id, second.decision_id,
        "every decision is its own record"
    );
}

#[test]
fn another_session_context_is_never_served_from_this_one() {
    let (_d, root) = workspace();
    let engine = default_engine();
    let a = ctx(&root, SourceWork::default());
    let b = ctx(&root, SourceWork::default());
    decide(&engine, &write("src/a.rs"), &a);
    // The cache is on: the same session is answered from it...
    assert!(decide(&engine, &write("src/a.rs"), &a).cache_hit);
    // ...and the other session is not.
    assert!(!decide(&engine, &write("src/a.rs"), &b).cache_hit);
}

#[test]
fn a_changed_filesystem_changes_the_key() {
    // The path is normalised per decision, so a symlink swapped in between
    // produces another input and a fresh evaluation.
    let (d, root) = workspace();
    let engine = default_engine();
    let c = ctx(&root, SourceWork::default());
    assert_eq!(
        decide(&engine, &write("out/x"), &c).result,
        DecisionResult::Allow
    );
    std::os::unix::fs::symlink(d.path(), root.join("out")).unwrap();
    let rec = decide(&engine, &write("out/x"), &c);
    assert!(!rec.cache_hit);
    assert_eq!(rec.result, DecisionResult::Deny);
}

#[test]
fn reload_never_serves_decisions_of_the_old_policy() {
    let pol = policy_dir(&[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\", \"reasons\": [\"v1\"]}\n")]);
    let engine =
        std::sync::Arc::new(PolicyEngine::load(settings(vec![pol.path().to_path_buf()])).unwrap());
    let (_d, root) = workspace();
    let c = ctx(&root, SourceWork::default());
    decide(&engine, &write("a"), &c);
    assert!(decide(&engine, &write("a"), &c).cache_hit);
    write_policy_files(pol.path(), &[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"deny\", \"reasons\": [\"v2\"]}\n")]);
    engine.reload().unwrap();
    let rec = decide(&engine, &write("a"), &c);
    assert!(!rec.cache_hit);
    assert_eq!(rec.reasons, vec!["v2".to_string()]);
}

#[test]
fn time_dependent_policy_is_never_cached() {
    // The same policy without the clock is cached, so the miss below is the
    // clock's doing and not a cache that is off.
    let steady = policy_dir(&[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\", \"reasons\": [\"business hours\"]} if 1 > 0\n")]);
    let engine = std::sync::Arc::new(
        PolicyEngine::load(settings(vec![steady.path().to_path_buf()])).unwrap(),
    );
    let (_s, sroot) = workspace();
    let sc = ctx(&sroot, SourceWork::default());
    decide(&engine, &write("a"), &sc);
    assert!(decide(&engine, &write("a"), &sc).cache_hit);

    let pol = policy_dir(&[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\", \"reasons\": [\"business hours\"]} if time.now_ns() > 0\n")]);
    let engine =
        std::sync::Arc::new(PolicyEngine::load(settings(vec![pol.path().to_path_buf()])).unwrap());
    let (_d, root) = workspace();
    let c = ctx(&root, SourceWork::default());
    decide(&engine, &write("a"), &c);
    assert!(!decide(&engine, &write("a"), &c).cache_hit);
}
