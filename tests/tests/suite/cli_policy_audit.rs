//! `runner policy test|eval` and `runner audit verify|list|replay` end to end.

use e2e::*;

#[test]
fn shipped_policies_pass_their_tests() {
    let d = tempfile::tempdir().unwrap();
    let r = runner(
        d.path(),
        &["policy", "test", shipped_policies().to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let last = r.stdout.lines().last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 40, "{last}");
}

#[test]
fn failing_and_skipped_tests_are_counted_and_fail_the_run() {
    let d = tempfile::tempdir().unwrap();
    let pol = policy_dir(d.path(), "pol", &[
        ("p.rego", "package p\nimport rego.v1\nallow if input.user == \"admin\"\n"),
        ("p_test.rego", "package p_test\nimport rego.v1\nimport data.p\ntest_admin if p.allow with input as {\"user\": \"admin\"}\ntest_bob if p.allow with input as {\"user\": \"bob\"}\ntodo_test_later if true\n"),
    ]);
    let r = runner(
        d.path(),
        &["policy", "test", pol.to_str().unwrap(), "--coverage"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("FAIL    data.p_test.test_bob"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("coverage:"), "{}", r.stdout);
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "1 passed, 1 failed, 1 skipped"
    );
}

#[test]
fn eval_prints_decision_record_and_explanation() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("input.json");
    std::fs::write(&input, r#"{"action": {"kind": "fs.write", "tool": "Write", "path": ".git/hooks/pre-commit", "in_workspace": true, "path_components": [".git", "hooks", "pre-commit"]},
        "session": {"id": "s-9", "attempt": 1, "workspace_dir": "/w"},
        "trusted": {"agent": {"enabled_tools": ["Write"]}, "worker": {}, "platform": {}}, "untrusted": {}}"#).unwrap();
    let r = runner(
        d.path(),
        &[
            "policy",
            "eval",
            "--policy",
            shipped_policies().to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--explain",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["decision"]["result"], "deny");
    assert_eq!(v["record"]["session_id"], "s-9");
    assert!(v["record"]["policy_revision"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(v["explain"]["rules_fired"]["is_protected"], true);
    let fired = &v["explain"]["rules_fired"];
    assert_eq!(fired["fs_deny"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        fired.get("net_deny").is_none(),
        "rules of other kinds do not fire: {v}"
    );
}

fn fill_log(state: &std::path::Path, ws: &std::path::Path, log: &std::path::Path) {
    for action in [
        r#"{"kind": "fs.write", "path": "README.md", "tool": "Write"}"#,
        r#"{"kind": "fs.write", "path": "src/main.rs", "tool": "Edit"}"#,
        r#"{"kind": "fs.read", "path": "/etc/shadow", "tool": "Read"}"#,
        r#"{"kind": "fs.write", "path": ".git/config", "tool": "Write"}"#,
        r#"{"kind": "fs.read", "path": "README.md", "tool": "Read"}"#,
    ] {
        runner(
            state,
            &[
                "call",
                "--workspace",
                ws.to_str().unwrap(),
                "--audit",
                log.to_str().unwrap(),
                "Decide",
                action,
            ],
        );
    }
}

#[test]
fn audit_verify_list_and_tamper_detection() {
    let (d, ws) = workspace();
    let log = d.path().join("log/audit.jsonl");
    fill_log(d.path(), &ws, &log);
    let ok = runner(d.path(), &["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(ok.stdout.starts_with("ok: 5 records"), "{}", ok.stdout);

    let denies = runner(
        d.path(),
        &["audit", "list", log.to_str().unwrap(), "--result", "deny"],
    );
    assert_eq!(denies.stdout.lines().count(), 2, "{}", denies.stdout);
    assert!(denies.stdout.contains("/etc/shadow") && denies.stdout.contains(".git/config"));

    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replacen("src/main.rs", "src/mair.rs", 1);
    std::fs::write(&log, tampered).unwrap();
    let bad = runner(d.path(), &["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("line 2"), "{}", bad.stdout);
}

#[test]
fn audit_replay_lists_the_flips() {
    let (d, ws) = workspace();
    let log = d.path().join("audit.jsonl");
    fill_log(d.path(), &ws, &log);
    let mut files: Vec<(String, String)> = std::fs::read_dir(shipped_policies())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.push(("readme.rego".into(), "package runner\nimport rego.v1\ndeny contains \"README.md is frozen\" if {\n  input.action.kind == \"fs.write\"\n  input.action.path == \"README.md\"\n}\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let stricter = policy_dir(d.path(), "stricter", &refs);
    let r = runner(
        d.path(),
        &[
            "audit",
            "replay",
            log.to_str().unwrap(),
            "--policy",
            stricter.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(
        lines[0].starts_with("line 1 ")
            && lines[0].contains("allow -> deny")
            && lines[0].contains("README.md is frozen"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("1 of 5 decisions would change"),
        "{}",
        lines[1]
    );
}
