//! The audit log: every decision recorded, chained, tamper-evident, and
//! replayable against another policy.

use protocol::policy::{Action, ActionDetail, DecisionResult, NetworkMode};
use protocol::session::SourceWork;
use runner::policy::audit::{read_records, verify, AuditLog};
use runner::policy::replay::replay;
use runner::policy::PolicyEngine;
use std::collections::BTreeMap;
use std::path::Path;
use test_support::*;

fn mixed_actions() -> Vec<Action> {
    let mut v = Vec::new();
    for p in [
        "src/main.rs",
        "README.md",
        ".git/hooks/pre-push",
        "../x",
        ".env",
        "docs/a.md",
    ] {
        v.push(Action {
            tool: "Write".into(),
            detail: ActionDetail::FsWrite { path: p.into() },
        });
        v.push(Action {
            tool: "Read".into(),
            detail: ActionDetail::FsRead { path: p.into() },
        });
    }
    let mut env = BTreeMap::new();
    env.insert("API_TOKEN".to_string(), "tok-SECRET-123".to_string());
    v.push(Action {
        tool: "Bash".into(),
        detail: ActionDetail::ShellExec {
            command: "make test".into(),
            cwd: ".".into(),
            network: NetworkMode::None,
            env,
        },
    });
    v
}

fn write_log(path: &Path) -> Vec<protocol::policy::DecisionRecord> {
    let (_d, root) = workspace();
    let (gate, sink) = gate(default_engine(), Some(path));
    let c = ctx(&root, SourceWork::default());
    let recs: Vec<_> = mixed_actions().iter().map(|a| gate.check(a, &c)).collect();
    assert_eq!(
        sink.take().len(),
        recs.len(),
        "every decision is also an activity"
    );
    recs
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn put(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn every_decision_is_logged_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let recs = write_log(&log);
    let chain = verify(&log).unwrap().unwrap();
    assert_eq!(chain.records as usize, recs.len());
    let back = read_records(&log).unwrap();
    assert_eq!(back.len(), recs.len());
    for (a, b) in back.iter().zip(&recs) {
        assert_eq!(&a.record, b);
        assert!(a.record.policy_revision.starts_with("sha256:"));
    }
    // Reopening continues the chain.
    let again = AuditLog::open(&log, false).unwrap();
    again.append(&recs[0]).unwrap();
    assert_eq!(
        verify(&log).unwrap().unwrap().records as usize,
        recs.len() + 1
    );
}

#[test]
fn masked_values_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let recs = write_log(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("tok-SECRET-123"));
    let shell = recs
        .iter()
        .find(|r| r.action["kind"] == "shell.exec")
        .unwrap();
    assert_eq!(shell.erased, vec!["/action/env".to_string()]);
    assert!(shell.action.get("env").is_none());
}

#[test]
fn one_edited_byte_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut l = lines(&log);
    l[4] = l[4]
        .replacen("\"deny\"", "\"allw\"", 1)
        .replacen("\"allow\"", "\"alloW\"", 1);
    put(&log, &l);
    let f = verify(&log).unwrap().unwrap_err();
    assert_eq!(f.line, 5, "{f}");
    assert!(f.reason.contains("edited"), "{f}");
}

#[test]
fn an_edited_hash_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut l = lines(&log);
    let v: serde_json::Value = serde_json::from_str(&l[2]).unwrap();
    let h = v["hash"].as_str().unwrap();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    l[2] = l[2].replace(h, &flipped);
    put(&log, &l);
    assert_eq!(verify(&log).unwrap().unwrap_err().line, 3);
}

#[test]
fn a_deleted_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut l = lines(&log);
    l.remove(6);
    put(&log, &l);
    let f = verify(&log).unwrap().unwrap_err();
    assert_eq!(f.line, 7, "{f}");
}

#[test]
fn swapped_lines_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut l = lines(&log);
    l.swap(2, 3);
    put(&log, &l);
    assert_eq!(verify(&log).unwrap().unwrap_err().line, 3);
}

#[test]
fn opening_a_log_with_a_torn_tail_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"seq\":99,\"prev\":\"");
    std::fs::write(&log, text).unwrap();
    let err = AuditLog::open(&log, false).unwrap_err();
    assert!(err.to_string().contains("runner audit verify"), "{err}");
}

#[test]
fn replay_lists_exactly_the_decisions_that_flip() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let recs = write_log(&log);
    // Stricter: the shipped policy plus "README.md is never written".
    let stricter = shipped_policy_copy();
    write_policy_files(stricter.path(), &[(
        "readme.rego",
        "package runner\nimport rego.v1\ndeny contains \"README.md is frozen\" if {\n  input.action.kind == \"fs.write\"\n  input.action.path == \"README.md\"\n}\n",
    )]);
    let candidate = PolicyEngine::load(settings(vec![stricter.path().to_path_buf()])).unwrap();
    assert!(
        candidate.load_error().is_none(),
        "{:?}",
        candidate.load_error()
    );
    let flips = replay(&read_records(&log).unwrap(), &candidate);
    let expected: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.action["kind"] == "fs.write"
                && r.action["path"] == "README.md"
                && r.result == DecisionResult::Allow
        })
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(expected.len(), 1);
    assert_eq!(
        flips.iter().map(|f| f.line as usize).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(flips[0].after.result, DecisionResult::Deny);
    assert!(flips[0]
        .after
        .reasons
        .contains(&"README.md is frozen".to_string()));

    // The same policy replayed changes nothing.
    let same =
        PolicyEngine::load(settings(vec![shipped_policy_copy().path().to_path_buf()])).unwrap();
    assert!(replay(&read_records(&log).unwrap(), &same).is_empty());
}
