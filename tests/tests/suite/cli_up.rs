//! `runner up`: the whole loop on one machine, with the control plane as its
//! own process (the worker binary does not link it).

use e2e::*;
use std::path::PathBuf;
use std::process::Command;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/sessions")
}

/// `runner up` on the sessions of `sessions` with its state in `state`,
/// stopping after `timeout` seconds at most.
fn up(
    d: &std::path::Path,
    state: &std::path::Path,
    sessions: &std::path::Path,
    timeout: &str,
) -> e2e::Run {
    runner(
        d,
        &[
            "up",
            "--state",
            state.to_str().unwrap(),
            "--sessions",
            sessions.to_str().unwrap(),
            "--timeout-seconds",
            timeout,
        ],
    )
}

#[test]
fn up_runs_the_example_sessions_against_a_control_plane_process_and_stops_it() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("up");
    let sessions = examples();
    let r = up(d.path(), &state, &sessions, "300");
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("control plane  http://127.0.0.1:"),
        "{}",
        r.stdout
    );
    // And a one-time link into the web pages, signed in as the local user.
    let link = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("web pages      "))
        .unwrap_or_else(|| panic!("no web pages line: {}", r.stdout));
    assert!(
        link.starts_with("http://127.0.0.1:") && link.contains("/ui/login/link?code=cpwl_"),
        "{link}"
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

/// `runner up` follows each session's event stream: every line it prints
/// for a session carries the stream's event number, and the numbers are
/// exactly 1, 2, 3, … (none missed, none twice), with the state changes in
/// their place among the activities — what only the stream gives (a
/// session read whole has no event numbers, and keeps its activities and
/// its state changes apart).
#[test]
fn up_prints_each_session_s_events_live_numbered_in_order_from_its_stream() {
    let d = tempfile::tempdir().unwrap();
    let sessions = d.path().join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let one = serde_json::json!({
        "workspace": "local", "agent_profile": "example",
        "agent": {"name": "lister", "model": "script", "enabled_tools": ["List", "Write"]},
        "source": {"title": "list twice"},
        "script": [
            {"tool": "Write", "input": {"path": "a.txt", "content": "a\n"}},
            {"tool": "List", "input": {}},
            {"tool": "List", "input": {}}
        ]
    });
    std::fs::write(sessions.join("one.json"), one.to_string()).unwrap();
    let state = d.path().join("up");
    let r = up(d.path(), &state, &sessions, "120");
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let id = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("queued"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a queued line")
        .to_string();
    // `<session> <event id>  <what> …`, up to the summary table.
    let events: Vec<(u64, String)> = r
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("session "))
        .filter(|l| l.starts_with(&id))
        .map(|l| {
            let mut w = l.split_whitespace().skip(1);
            let n = w
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no event number in {l:?}:\n{}", r.stdout));
            (n, w.collect::<Vec<_>>().join(" "))
        })
        .collect();
    let numbers: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "{}",
        r.stdout
    );
    let what: Vec<&str> = events.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(what.first(), Some(&"state new → queued"), "{}", r.stdout);
    assert_eq!(what.get(1), Some(&"state queued → active"), "{}", r.stdout);
    assert_eq!(
        what.last(),
        Some(&"state active → complete"),
        "{}",
        r.stdout
    );
    let completed = what.iter().position(|w| w.starts_with("completed"));
    assert_eq!(completed, Some(what.len() - 2), "{}", r.stdout);
    assert_eq!(
        what.iter().filter(|w| w.starts_with("progress")).count(),
        3,
        "{}",
        r.stdout
    );
}
