//! `runner up`: the whole loop on one machine, with the control plane as its
//! own process (the worker binary does not link it).

use e2e::*;
use std::path::PathBuf;
use std::process::Command;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/sessions")
}

#[test]
fn up_runs_the_example_sessions_against_a_control_plane_process_and_stops_it() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("up");
    let sessions = examples();
    let r = runner(
        d.path(),
        &[
            "up",
            "--state",
            state.to_str().unwrap(),
            "--sessions",
            sessions.to_str().unwrap(),
            "--timeout-seconds",
            "300",
        ],
    );
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("control plane  http://127.0.0.1:"),
        "{}",
        r.stdout
    );
    // Both example sessions reach a final state and the summary counts the
    // denials of the one that tries too much.
    let summary: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("01-build-and-test") || l.contains("02-tries-too-much"))
        .filter(|l| !l.starts_with("queued"))
        .collect();
    assert_eq!(summary.len(), 2, "{}", r.stdout);
    assert!(
        summary.iter().all(|l| !l.contains("unfinished")),
        "{}",
        r.stdout
    );
    let denies: u32 = summary
        .iter()
        .find(|l| l.contains("02-tries-too-much"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|n| n.parse().ok())
        .expect("a denies column");
    assert!(denies >= 1, "{}", r.stdout);
    assert!(state.join("control-plane.db").is_file());
    // The control plane it started is gone when `runner up` returns.
    let left = Command::new("pgrep")
        .args(["-f", &format!("{}/control-plane.db", state.display())])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "control plane still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn up_without_a_control_plane_binary_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("up");
    let out = Command::new(bin("runner"))
        .args(["up", "--state", state.to_str().unwrap(), "--sessions"])
        .arg(examples())
        .env("RUNNER_STATE_DIR", d.path())
        .env(
            "RUNNER_CONTROL_PLANE_BIN",
            d.path().join("no-such-control-plane"),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("no-such-control-plane"), "{err}");
}
