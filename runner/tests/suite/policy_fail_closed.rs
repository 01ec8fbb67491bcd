//! Fail closed: anything the engine cannot evaluate is a deny with a reason,
//! and a broken reload keeps the old policy in force.

use protocol::policy::{Action, ActionDetail, DecisionResult};
use protocol::session::SourceWork;
use runner::policy::PolicyEngine;
use test_support::*;

fn read_action() -> Action {
    Action {
        tool: "Read".into(),
        detail: ActionDetail::FsRead {
            path: "src/main.rs".into(),
        },
    }
}

const ALLOW_ALL: &str = "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\", \"reasons\": [\"test allows all\"]}\n";

fn decide_with(files: &[(&str, &str)]) -> (Vec<String>, DecisionResult, Option<String>) {
    let pol = policy_dir(files);
    let mut s = settings(vec![pol.path().to_path_buf()]);
    s.run_tests = false;
    let engine = std::sync::Arc::new(PolicyEngine::load(s).unwrap());
    let (_d, root) = workspace();
    let rec = decide(&engine, &read_action(), &ctx(&root, SourceWork::default()));
    (rec.reasons, rec.result, engine.load_error())
}

#[test]
fn allow_all_control_is_allowed() {
    let (_, result, err) = decide_with(&[("p.rego", ALLOW_ALL)]);
    assert_eq!(result, DecisionResult::Allow);
    assert!(err.is_none());
}

#[test]
fn syntax_error_denies_with_reason() {
    let (reasons, result, err) = decide_with(&[(
        "p.rego",
        "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\"\n",
    )]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(err.is_some());
    assert!(
        reasons[0].contains("no working policy is loaded"),
        "{reasons:?}"
    );
    assert!(
        reasons[0].contains("p.rego"),
        "the reason names the file: {reasons:?}"
    );
}

#[test]
fn decision_returning_a_string_denies() {
    let (reasons, result, _) = decide_with(&[(
        "p.rego",
        "package runner\nimport rego.v1\ndecision := \"allow\"\n",
    )]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(reasons[0].contains("a string"), "{reasons:?}");
}

#[test]
fn decision_with_unknown_result_denies() {
    let (reasons, result, _) = decide_with(&[(
        "p.rego",
        "package runner\nimport rego.v1\ndecision := {\"result\": \"allow-ish\"}\n",
    )]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(reasons[0].contains("malformed"), "{reasons:?}");
}

#[test]
fn rule_looping_past_the_time_limit_denies() {
    let slow = "package runner\nimport rego.v1\n\
        n := numbers.range(1, 3000)\n\
        spin := count([x | some i in n; some j in n; x := i * j])\n\
        decision := {\"result\": \"allow\", \"reasons\": [sprintf(\"%d\", [spin])]}\n";
    let (reasons, result, _) = decide_with(&[("p.rego", slow)]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(
        reasons[0].contains("evaluation") && reasons[0].contains("time"),
        "{reasons:?}"
    );
}

#[test]
fn undefined_entrypoint_value_denies() {
    let (reasons, result, _) = decide_with(&[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\"} if input.nothing == 1\n")]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(reasons[0].contains("undefined"), "{reasons:?}");
}

#[test]
fn undeclared_entrypoint_denies() {
    let (reasons, result, err) = decide_with(&[(
        "p.rego",
        "package runner\nimport rego.v1\nverdict := {\"result\": \"allow\"}\n",
    )]);
    assert_eq!(result, DecisionResult::Deny);
    assert!(err.unwrap().contains("data.runner.decision"));
    assert!(reasons[0].contains("entrypoint"), "{reasons:?}");
}

#[test]
fn failing_rego_test_denies_on_first_load() {
    let pol = policy_dir(&[
        ("p.rego", ALLOW_ALL),
        ("p_test.rego", "package runner_test\nimport rego.v1\nimport data.runner\ntest_denies if runner.decision.result == \"deny\"\n"),
    ]);
    let engine =
        std::sync::Arc::new(PolicyEngine::load(settings(vec![pol.path().to_path_buf()])).unwrap());
    assert!(engine.load_error().unwrap().contains("test_denies"));
    let (_d, root) = workspace();
    let rec = decide(&engine, &read_action(), &ctx(&root, SourceWork::default()));
    assert_eq!(rec.result, DecisionResult::Deny);
}

#[test]
fn broken_reload_keeps_the_old_policy() {
    let pol = policy_dir(&[("p.rego", ALLOW_ALL)]);
    let engine =
        std::sync::Arc::new(PolicyEngine::load(settings(vec![pol.path().to_path_buf()])).unwrap());
    let (_d, root) = workspace();
    let c = ctx(&root, SourceWork::default());
    let before = engine.revision();
    assert_eq!(
        decide(&engine, &read_action(), &c).result,
        DecisionResult::Allow
    );

    for broken in [
        "package runner\nimport rego.v1\ndecision := {\n", // syntax
        "package runner\nimport rego.v1\nverdict := {\"result\": \"deny\"}\n", // no entrypoint
    ] {
        write_policy_files(pol.path(), &[("p.rego", broken)]);
        assert!(engine.reload().is_err());
        assert_eq!(engine.revision(), before);
        let rec = decide(&engine, &read_action(), &c);
        assert_eq!(
            rec.result,
            DecisionResult::Allow,
            "old policy still in force"
        );
        assert_eq!(rec.policy_revision, before);
    }

    // A policy whose own tests fail is not swapped in either.
    write_policy_files(pol.path(), &[
        ("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"deny\"}\n"),
        ("p_test.rego", "package runner_test\nimport rego.v1\nimport data.runner\ntest_allows if runner.decision.result == \"allow\"\n"),
    ]);
    let err = engine.reload().unwrap_err();
    assert!(err.to_string().contains("test_allows"), "{err}");
    assert_eq!(
        decide(&engine, &read_action(), &c).result,
        DecisionResult::Allow
    );

    // And a good reload takes effect.
    write_policy_files(
        pol.path(),
        &[("p_test.rego", "package runner_test\nimport rego.v1\n")],
    );
    let rev = engine.reload().unwrap();
    assert_ne!(rev, before);
    assert_eq!(
        decide(&engine, &read_action(), &c).result,
        DecisionResult::Deny
    );
}

#[test]
fn unwritable_audit_log_denies_the_action() {
    let (_d, root) = workspace();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("audit.jsonl");
    let log = std::sync::Arc::new(runner::policy::audit::AuditLog::open(&log_path, false).unwrap());
    // Replace the file's descriptor target with something unwritable: a full device.
    drop(log);
    let full = std::path::Path::new("/dev/full");
    assert!(
        full.exists(),
        "this test needs /dev/full (every Linux has it) to make the audit log unwritable"
    );
    let log = std::sync::Arc::new(runner::policy::audit::AuditLog::open(full, false).unwrap());
    let gate = runner::policy::PolicyGate::builder(
        default_engine(),
        std::sync::Arc::new(runner::activity::NullSink),
    )
    .audit(log);
    let rec = gate.check(&read_action(), &ctx(&root, SourceWork::default()));
    assert_eq!(rec.result, DecisionResult::Deny);
    assert!(
        rec.reasons.iter().any(|r| r.contains("audit log")),
        "{:?}",
        rec.reasons
    );
}
