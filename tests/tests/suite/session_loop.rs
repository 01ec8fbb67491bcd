//! The session loop with real processes on loopback: the `control-plane`
//! binary on a SQLite file and `runner worker` binaries against it.

use e2e::{kinds, terminal};
use e2e::{ControlPlane, WorkerProc};
use serde_json::json;
use std::time::Duration;

fn setup() -> (tempfile::TempDir, ControlPlane) {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    (d, cp)
}

#[test]
fn scripted_sessions_end_with_the_right_activities_and_every_decision() {
    let (d, cp) = setup();
    let ok = cp.queue(
        "works",
        json!([
            {"tool": "Write", "input": {"path": "a.txt", "content": "alpha\n"}},
            {"tool": "Read", "input": {"path": "a.txt"}},
            {"tool": "Bash", "input": {"command": "cat a.txt && echo built > out.txt"}},
        ]),
    );
    let bad = cp.queue(
        "denied",
        json!([
            {"tool": "Write", "input": {"path": "../escape.txt", "content": "x"}},
            {"tool": "Read", "input": {"path": "a.txt"}},
            {"tool": "Teleport", "input": {}},
        ]),
    );
    let _w = WorkerProc::start(d.path(), "w1", &cp, "");
    let v = cp.wait_for(&ok, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let k = kinds(&v);
    assert_eq!(k.first().map(String::as_str), Some("plan_updated"), "{k:?}");
    assert_eq!(k.last().map(String::as_str), Some("completed"), "{k:?}");
    assert_eq!(k.iter().filter(|x| *x == "progress").count(), 3, "{k:?}");
    assert_eq!(
        k.iter().filter(|x| *x == "policy_decision").count(),
        3,
        "{k:?}"
    );
    // Each decision precedes its step's progress.
    let pos: Vec<usize> = k
        .iter()
        .enumerate()
        .filter(|(_, x)| *x == "policy_decision")
        .map(|(i, _)| i)
        .collect();
    let prog: Vec<usize> = k
        .iter()
        .enumerate()
        .filter(|(_, x)| *x == "progress")
        .map(|(i, _)| i)
        .collect();
    assert!(pos.iter().zip(&prog).all(|(a, b)| a < b), "{k:?}");
    assert_eq!(v["session"]["plan"].as_array().unwrap().len(), 3);
    let ws = d.path().join("w1/workspaces").join(&ok);
    assert_eq!(
        std::fs::read_to_string(ws.join("out.txt")).unwrap(),
        "built\n"
    );

    let v = cp.wait_for(&bad, 60, terminal);
    assert_eq!(v["session"]["state"], "error", "{v}");
    let k = kinds(&v);
    assert_eq!(k.last().map(String::as_str), Some("failed"), "{k:?}");
    // Write (denied) and Read (allowed) were decided; Teleport is not even
    // asked: the pinned agent version does not enable it.
    let decisions: Vec<&serde_json::Value> = v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activity"]["type"] == "policy_decision")
        .collect();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["activity"]["record"]["result"], "deny");
    assert_eq!(decisions[1]["activity"]["record"]["result"], "allow");
    assert!(!d.path().join("w1/workspaces/escape.txt").exists());
    // The decisions carry the session and claim they were made under.
    let claim = decisions[0]["claim_id"].as_str().unwrap();
    assert_eq!(decisions[0]["activity"]["record"]["claim_id"], claim);
    assert_eq!(
        decisions[0]["activity"]["record"]["session_id"],
        bad.as_str()
    );
}

#[test]
fn eight_workers_two_hundred_sessions_each_claimed_run_and_ended_once() {
    let (d, cp) = setup();
    let ids: Vec<String> = (0..200)
        .map(|i| cp.queue(&format!("s{i}"), json!([{"tool": "Write", "input": {"path": "out.txt", "content": format!("{i}\n")}}])))
        .collect();
    let workers: Vec<WorkerProc> = (0..8)
        .map(|i| WorkerProc::start(d.path(), &format!("w{i}"), &cp, "concurrency = 4\n"))
        .collect();
    for id in &ids {
        cp.wait_for(id, 180, terminal);
    }
    drop(workers);
    // From the database: one claim and one terminal transition per session.
    let store = control_plane::Store::open(&cp.db, 3).unwrap();
    let counts = store.audit_counts().unwrap();
    assert_eq!(counts.len(), 200);
    for (id, state, claims, terminals) in &counts {
        assert_eq!(
            (state.as_str(), *claims, *terminals),
            ("complete", 1, 1),
            "{id}"
        );
    }
    // From the activity log: run once (one decision, one progress), ended once.
    for id in &ids {
        let k = kinds(&cp.session(id));
        assert_eq!(
            k,
            vec!["plan_updated", "policy_decision", "progress", "completed"],
            "{id}"
        );
    }
}

#[test]
fn a_killed_runner_loses_its_session_to_another_after_the_lease() {
    let (d, cp) = setup();
    let id = cp.queue(
        "slow",
        json!([{"tool": "Bash", "input": {"command": "sleep 3; echo finished > done.txt"}}]),
    );
    let mut a = WorkerProc::start(d.path(), "a", &cp, "lease_seconds = 3\n");
    let v = cp.wait_for(&id, 30, |v| v["session"]["state"] == "active");
    let _ = v;
    // The claim id of A, from its decision activity.
    let v = cp.wait_for(&id, 30, |v| {
        kinds(v).contains(&"policy_decision".to_string())
    });
    let dead_claim = v["activities"][0]["claim_id"].as_str().unwrap().to_string();
    a.signal(libc::SIGKILL);
    a.wait(10).expect("killed");
    // After the lease: stale, then queued again with the attempt counted.
    let v = cp.wait_for(&id, 30, |v| v["session"]["state"] == "queued");
    let tr: Vec<String> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tr, vec!["queued", "active", "stale", "queued"]);
    assert_eq!(v["session"]["attempt"], 2);
    let _b = WorkerProc::start(d.path(), "b", &cp, "lease_seconds = 3\n");
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    // Anything under the dead runner's claim is refused.
    for (path, body) in [
        (
            "activities",
            json!({"claimId": dead_claim, "activity": {"type": "progress", "message": "late"}}),
        ),
        (
            "complete",
            json!({"claimId": dead_claim, "message": "late"}),
        ),
        ("extend", json!({"claimId": dead_claim})),
    ] {
        let (s, b) = cp.post(&format!("/v1/sessions/{id}/{path}"), &body);
        assert_eq!(s, 409, "{path}: {b}");
        assert_eq!(b["error"]["type"], "claim_invalid");
    }
}

#[test]
fn a_runner_stopped_past_its_lease_gets_nothing_in_afterwards() {
    let (d, cp) = setup();
    let id = cp.queue(
        "stopped",
        json!([
            {"tool": "Bash", "input": {"command": "sleep 1"}},
            {"tool": "Write", "input": {"path": "late.txt", "content": "late"}},
        ]),
    );
    let w = WorkerProc::start(d.path(), "s", &cp, "lease_seconds = 3\n");
    let v = cp.wait_for(&id, 30, |v| {
        kinds(v).contains(&"policy_decision".to_string())
    });
    let old_claim = v["activities"][0]["claim_id"].as_str().unwrap().to_string();
    w.signal(libc::SIGSTOP);
    // Past the lease the claim is void and the session is queued again.
    let v = cp.wait_for(&id, 30, |v| v["session"]["state"] == "queued");
    let voided_at = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "stale")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_string();
    w.signal(libc::SIGCONT);
    // It picks the session up again under a new claim and completes it.
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    // Nothing under the old claim landed after it was voided; the late
    // Write of the first attempt was never decided under the old claim.
    for a in v["activities"].as_array().unwrap() {
        if a["claim_id"] == old_claim.as_str() {
            assert!(
                a["at"].as_str().unwrap() <= voided_at.as_str(),
                "late activity under the voided claim: {a}"
            );
            assert_ne!(a["activity"]["record"]["action"]["path"], "late.txt", "{a}");
        }
    }
    let (s, _) = cp.post(
        &format!("/v1/sessions/{id}/complete"),
        &json!({"claimId": old_claim}),
    );
    assert_eq!(s, 409);
}

#[test]
fn sigterm_finishes_within_grace_and_a_second_signal_releases_at_once() {
    let (d, cp) = setup();
    // Finishes within the grace period.
    let id = cp.queue(
        "short",
        json!([{"tool": "Bash", "input": {"command": "sleep 2"}}]),
    );
    let mut w = WorkerProc::start(d.path(), "g1", &cp, "grace_seconds = 20\n");
    cp.wait_for(&id, 30, |v| {
        kinds(v).contains(&"policy_decision".to_string())
    });
    w.signal(libc::SIGTERM);
    let status = w.wait(30).expect("exits after finishing");
    assert!(status.success(), "{status:?}");
    assert_eq!(cp.session(&id)["session"]["state"], "complete");

    // A second signal releases at once.
    let id = cp.queue(
        "long",
        json!([{"tool": "Bash", "input": {"command": "sleep 60"}}]),
    );
    let mut w = WorkerProc::start(d.path(), "g2", &cp, "grace_seconds = 60\n");
    cp.wait_for(&id, 30, |v| {
        kinds(v).contains(&"policy_decision".to_string())
    });
    w.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        cp.session(&id)["session"]["state"],
        "active",
        "still finishing within grace"
    );
    let t = std::time::Instant::now();
    w.signal(libc::SIGTERM);
    w.wait(10).expect("exits at once on the second signal");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let v = cp.session(&id);
    assert_eq!(v["session"]["state"], "queued", "{v}");
    let tr: Vec<&str> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    assert!(tr.contains(&"released"), "{tr:?}");
}

#[test]
fn bad_input_gets_a_typed_4xx_and_changes_nothing() {
    let (_d, cp) = setup();
    let id = cp.queue("q", json!([{"tool": "Read", "input": {"path": "x"}}]));
    let before = cp.session(&id);
    let check = |(s, b): (u16, serde_json::Value), status: u16, kind: &str| {
        assert_eq!(s, status, "{b}");
        assert_eq!(b["error"]["type"], kind, "{b}");
        assert!(b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    };
    check(
        cp.post_raw("/v1/sessions", "{not json"),
        400,
        "invalid_request",
    );
    check(cp.post("/v1/sessions", &json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"}, "bogus": 1})), 400, "invalid_request");
    check(cp.post("/v1/sessions", &json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "script"}})), 400, "invalid_request");
    // Queueing takes images, so its body may reach 32 MiB; other routes 1 MiB.
    let huge = json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"}, "source": {"description": "x".repeat(33 << 20)}});
    check(cp.post("/v1/sessions", &huge), 413, "payload_too_large");
    let big = json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"}, "source": {"description": "x".repeat(2 << 20)}});
    check(cp.post("/v1/sessions", &big), 400, "invalid_request");
    let hook = json!({"url": "https://hooks.example/in", "key": "k".repeat(2 << 20), "event_types": ["*"]});
    check(cp.post("/v1/webhooks", &hook), 413, "payload_too_large");
    check(cp.post("/v1/sessions", &json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"}, "source": {"title": "t".repeat(5000)}})), 400, "invalid_request");
    // Unknown worker.
    check(
        cp.post(
            &format!("/v1/workers/wrk_nope/sessions/{id}/claim"),
            &json!({}),
        ),
        404,
        "unknown_worker",
    );
    let (s, w) = cp.post(
        "/v1/workers",
        &json!({"workspace": "w", "agent_profile": "p", "runtime": "test", "display_name": "t"}),
    );
    assert_eq!(s, 200, "{w}");
    let wid = w["worker_id"].as_str().unwrap();
    check(
        cp.post(
            &format!("/v1/workers/{wid}/sessions/{id}/claim"),
            &json!({"leaseSeconds": 0}),
        ),
        400,
        "invalid_request",
    );
    // Wrong claim id; complete a queued session.
    check(
        cp.post(
            &format!("/v1/sessions/{id}/complete"),
            &json!({"claimId": "clm_forged"}),
        ),
        409,
        "claim_invalid",
    );
    check(
        cp.post(
            &format!("/v1/sessions/{id}/activities"),
            &json!({"claimId": "clm_forged", "activity": {"type": "progress", "message": "x"}}),
        ),
        409,
        "claim_invalid",
    );
    let after = cp.session(&id);
    assert_eq!(before["session"], after["session"]);
    assert_eq!(after["activities"], json!([]));
    // Claim, complete, then: claim a complete session; complete it again.
    let (s, c) = cp.post(
        &format!("/v1/workers/{wid}/sessions/{id}/claim"),
        &json!({"leaseSeconds": 60}),
    );
    assert_eq!(s, 200, "{c}");
    let claim = c["claimId"].as_str().unwrap();
    check(
        cp.post(
            &format!("/v1/workers/{wid}/sessions/{id}/claim"),
            &json!({}),
        ),
        409,
        "claim_conflict",
    );
    check(
        cp.post(
            &format!("/v1/sessions/{id}/activities"),
            &json!({"claimId": claim, "activity": {"type": "nonsense"}}),
        ),
        400,
        "invalid_request",
    );
    let (s, _) = cp.post(
        &format!("/v1/sessions/{id}/complete"),
        &json!({"claimId": claim, "message": "done"}),
    );
    assert_eq!(s, 200);
    check(
        cp.post(
            &format!("/v1/workers/{wid}/sessions/{id}/claim"),
            &json!({}),
        ),
        409,
        "claim_conflict",
    );
    check(
        cp.post(
            &format!("/v1/sessions/{id}/complete"),
            &json!({"claimId": claim}),
        ),
        409,
        "claim_invalid",
    );
    check(
        cp.post(&format!("/v1/sessions/{id}/cancel"), &json!({})),
        409,
        "invalid_transition",
    );
    assert_eq!(cp.session(&id)["session"]["state"], "complete");
    check(cp.get("/v1/nowhere"), 404, "not_found");
    check(cp.get("/v1/sessions?state=bogus"), 400, "invalid_request");
    // The API describes itself.
    let (s, doc) = cp.get("/openapi.json");
    assert_eq!(s, 200);
    assert!(
        doc["paths"]["/v1/workers/{worker}/sessions/{session}/claim"].is_object(),
        "{doc}"
    );
}

#[test]
fn a_restarted_runner_releases_what_it_held_and_a_rejected_id_stops_it() {
    let (d, cp) = setup();
    let id = cp.queue(
        "held",
        json!([{"tool": "Bash", "input": {"command": "sleep 2; echo ok"}}]),
    );
    let mut a = WorkerProc::start(d.path(), "r", &cp, "");
    cp.wait_for(&id, 30, |v| {
        kinds(v).contains(&"policy_decision".to_string())
    });
    a.signal(libc::SIGKILL);
    a.wait(10).expect("killed");
    assert_eq!(cp.session(&id)["session"]["state"], "active");
    // Same state directory, same worker id: the leftover claim is released
    // at start-up (not left to a 900 s lease) and the session runs again.
    let _a2 = WorkerProc::start(d.path(), "r", &cp, "");
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let reasons: Vec<&str> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"released"), "{reasons:?}");
    drop(_a2);

    // A saved worker id the control plane does not know: stop, say why.
    let state = d.path().join("rejected");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("worker.json"),
        json!({"control_plane": cp.url, "workspace": "w", "agent_profile": "p", "worker_id": "wrk_gone"}).to_string(),
    )
    .unwrap();
    let mut w = WorkerProc::start(d.path(), "rejected", &cp, "");
    let status = w.wait(20).expect("exits");
    assert_eq!(status.code(), Some(2));
}
