//! Stopping a running session: the real `control-plane` and `runner
//! worker`, a fake model whose Bash call sleeps for minutes. A person's
//! `POST /v1/sessions/{id}/cancel` reaches the worker over the session's
//! event stream and its sandbox is gone within a second; without a stream
//! to be had, the worker's check of its held claims still stops it.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::{terminal, ControlPlane, WorkerProc};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "sk-fake-0123456789";
const MODEL: &str = "m-stop";

/// A fresh marker, and a Bash call that sleeps for five minutes with the
/// marker in its own name (`exec -a`) and in the sandbox's command line.
fn sleeper() -> (String, Step) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let marker = format!("m-{}-{nanos:x}", std::process::id());
    let command = format!("exec -a {marker} sleep 300 # {marker}");
    (
        marker,
        Step::Call(vec![("Bash".into(), json!({ "command": command }))]),
    )
}

/// The processes whose command line has `marker`.
fn pids(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A worker config for `fake`, with these extra `[worker]` lines.
fn worker_config(dir: &Path, fake: &FakeModel, worker: &str) -> String {
    let key = dir.join("model.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "{worker}\n[[providers]]\nname = \"fake\"\napi = \"openai\"\nbase_url = {:?}\nmodels = [{MODEL:?}]\napi_key = {{ file = {:?} }}\n",
        fake.base_url,
        key.display().to_string()
    )
}

/// Waits until `marker`'s sandbox runs; panics after a minute.
fn wait_running(cp: &ControlPlane, id: &str, marker: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    while pids(marker).is_empty() {
        assert!(
            Instant::now() < until,
            "the sleeping Bash call never started: {}",
            cp.session(id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cancels `id` and waits until nothing of `marker` runs; how long that
/// took (panics past `limit`).
fn stop_and_time(cp: &ControlPlane, id: &str, marker: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    let (s, b) = cp.post(&format!("/v1/sessions/{id}/cancel"), &json!({}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "cancelled", "{b}");
    loop {
        let left = pids(marker);
        if left.is_empty() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "the sandbox still runs {:?} after {:?} (pids {left:?}): {}",
            t0.elapsed(),
            limit,
            cp.session(id)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_stop_kills_the_running_sandbox_within_a_second_and_a_follow_up_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let (marker, sleep) = sleeper();
    let fake = FakeModel::start(
        Wire::OpenAi,
        KEY,
        vec![sleep, Step::Text("went on after the stop".into())],
    );
    // The worker's user has every stream of its own caller limit open
    // (16) on another session: the worker's watcher streams under its
    // claim, which that limit does not count.
    let (s, b) = cp.post(
        "/v1/sessions",
        &json!({"workspace": "elsewhere", "agent_profile": "p",
                "agent": {"name": "t", "model": MODEL, "enabled_tools": []},
                "source": {"title": "nobody serves this"}}),
    );
    assert_eq!(s, 200, "{b}");
    let other = b["id"].as_str().unwrap().to_string();
    let token = cp.token();
    let open = || {
        ureq::get(&format!("{}/v1/sessions/{other}/events", cp.url))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map_err(status_of)
    };
    let held: Vec<ureq::Response> = (0..16).map(|_| open().expect("a stream")).collect();
    assert!(matches!(open(), Err(429)));
    // The held-claims fallback is far off: only the event stream can
    // deliver the stop within the second.
    let cfg = worker_config(d.path(), &fake, "claims_check_seconds = 3600");
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);
    let id = cp.queue_model(MODEL, &["Bash"], json!({"title": "sleep on it"}));
    wait_running(&cp, &id, &marker);

    let took = stop_and_time(&cp, &id, &marker, Duration::from_secs(1));
    println!("cancel → sandbox gone: {} ms", took.as_millis());
    let v = cp.session(&id);
    assert_eq!(v["session"]["state"], "cancelled", "{v}");
    // Stopped is final until a person says more: a second stop is refused.
    let (s, b) = cp.post(&format!("/v1/sessions/{id}/cancel"), &json!({}));
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["type"], "invalid_transition", "{b}");
    // The worker sent nothing more under the stopped claim: no completion,
    // no failure.
    std::thread::sleep(Duration::from_millis(300));
    let v = cp.session(&id);
    let after_stop = v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| matches!(a["activity"]["type"].as_str(), Some("completed" | "failed")))
        .count();
    assert_eq!(after_stop, 0, "{v}");

    // A stopped session takes a follow-up: the worker claims it again and
    // resumes the conversation (the killed call answered as unknown).
    let (s, b) = cp.post(
        &format!("/v1/sessions/{id}/follow-up"),
        &json!({"message": "never mind the sleep; wrap up"}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "queued", "{b}");
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(v["session"]["outcome"], "went on after the stop", "{v}");
    let requests = fake.requests();
    let text = fake.user_text(requests.last().unwrap());
    assert!(text.contains("wrap up"), "{text}");
    drop(held);
}

#[test]
fn without_an_event_stream_a_stop_still_reaches_the_worker_by_its_claims_check() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let (marker, sleep) = sleeper();
    let fake = FakeModel::start(Wire::OpenAi, KEY, vec![sleep]);
    // The session is queued before any worker runs, and every stream it
    // may have is taken (32 per session: 16 by its user's token, 16 by a
    // key of hers): the worker's watcher is refused with 429 and only its
    // held-claims check can learn of the stop.
    let id = cp.queue_model(MODEL, &["Bash"], json!({"title": "sleep on it"}));
    let key = cp.admin(&["api-key-add", "stream-holder", "--user", e2e::USER], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let open = |auth: &str| {
        ureq::get(&format!("{}/v1/sessions/{id}/events", cp.url))
            .set("Authorization", &format!("Bearer {auth}"))
            .call()
            .map_err(status_of)
    };
    let token = cp.token();
    let held: Vec<ureq::Response> = (0..32)
        .map(|i| open(if i < 16 { &token } else { &key }).expect("a stream"))
        .collect();
    assert!(
        matches!(open(&key), Err(429)),
        "a 33rd stream of the session must be refused"
    );

    let cfg = worker_config(d.path(), &fake, "claims_check_seconds = 1");
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);
    wait_running(&cp, &id, &marker);
    let took = stop_and_time(&cp, &id, &marker, Duration::from_secs(5));
    println!(
        "cancel → sandbox gone by the claims check: {} ms",
        took.as_millis()
    );
    drop(held);
}

/// The status of a refused request (0 for a transport error).
fn status_of(e: ureq::Error) -> u16 {
    match e {
        ureq::Error::Status(code, _) => code,
        _ => 0,
    }
}
