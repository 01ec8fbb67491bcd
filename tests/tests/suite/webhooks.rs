//! Webhooks end to end: the runner's receiver (key, media type, size,
//! CloudEvents attributes, signatures, de-duplication across restarts,
//! HTTPS), the control plane's deliveries (outbox, signing, retries, log),
//! and polling that keeps working without any of it.

use e2e::{ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "hook-key-7c1d0e";

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A worker polling only every `poll_ms`, with a plain-HTTP receiver on
/// loopback; its receiver URL.
fn worker(
    d: &Path,
    cp: &ControlPlane,
    name: &str,
    poll_ms: u64,
    port: u16,
    extra: &str,
) -> (WorkerProc, String) {
    std::fs::create_dir_all(d.join(name)).unwrap();
    let key = secret_file(&d.join(name), "hook.key", KEY);
    let cfg = format!(
        "poll_interval_ms = {poll_ms}\n[webhook]\nlisten = \"127.0.0.1:{port}\"\nplain_http = true\nkey = {{ file = {key:?} }}\n{extra}"
    );
    let w = WorkerProc::start(d, name, cp, &cfg);
    let addr_file = d.join(name).join("webhook.addr");
    let t = Instant::now();
    while !addr_file.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the receiver did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = std::fs::read_to_string(addr_file).unwrap();
    // Ready means polling: its first heartbeat comes right before its
    // start-up poll, so a session queued after this waits for the next one.
    let saved = d.join(name).join("worker.json");
    loop {
        let id = std::fs::read_to_string(&saved)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["worker_id"].as_str().map(str::to_string));
        if let Some(id) = id {
            let (s, v) = cp.get(&format!("/v1/workers/{id}"));
            if s == 200 && !v["last_heartbeat_at"].is_null() {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the worker did not start polling"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    (w, url)
}

fn event(id: &str, ty: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "type": ty, "source": "/runner/control-plane",
           "time": "2026-11-24T01:00:00Z", "datacontenttype": "application/json", "data": {}})
}

fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut r = ureq::post(url);
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let resp = match r.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let s = resp.status();
    (
        s,
        serde_json::from_str(&resp.into_string().unwrap_or_default()).unwrap_or(Value::Null),
    )
}

const CE: (&str, &str) = ("Content-Type", "application/cloudevents+json");

fn state(cp: &ControlPlane, id: &str) -> String {
    cp.session(id)["session"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn claimed_within(cp: &ControlPlane, id: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    while state(cp, id) == "queued" {
        assert!(t.elapsed() < limit, "not claimed within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

#[test]
fn the_receiver_checks_every_delivery_and_wakes_once_per_event() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let port = free_port();
    let (w, url) = worker(d.path(), &cp, "w1", 60_000, port, "");
    // The verification handshake.
    assert_eq!(ureq::get(&url).call().unwrap().status(), 200);
    assert_eq!(ureq::head(&url).call().unwrap().status(), 200);
    let o = ureq::request("OPTIONS", &url)
        .set("WebHook-Request-Origin", "cp.example")
        .call()
        .unwrap();
    assert_eq!(o.header("webhook-allowed-origin"), Some("cp.example"));
    assert_eq!(o.header("webhook-allowed-rate"), Some("*"));
    let o = ureq::request("OPTIONS", &url)
        .set("WebHook-Request-Origin", "cp.example")
        .set("WebHook-Request-Rate", "120")
        .call()
        .unwrap();
    assert_eq!(o.header("webhook-allowed-rate"), Some("120"));
    let ev = event("evt_1", "agent.session_queued").to_string();
    let key = ("X-One-Webhook-Key", KEY);
    // Refusals, each with its status and a JSON body.
    let (s, b) = post(&url, &[CE, ("X-One-Webhook-Key", "forged")], ev.as_bytes());
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(post(&url, &[CE], ev.as_bytes()).0, 401);
    assert_eq!(
        post(
            &url,
            &[("Content-Type", "application/json"), key],
            ev.as_bytes()
        )
        .0,
        415
    );
    let big = vec![b'x'; 300 * 1024];
    assert_eq!(post(&url, &[CE, key], &big).0, 413);
    assert_eq!(post(&url, &[CE, key], b"{not json").0, 400);
    // `time` is optional in CloudEvents 1.0 (this one wakes nothing).
    let mut no_time = event("evt_2", "agent.session_state_changed");
    no_time.as_object_mut().unwrap().remove("time");
    let (s, b) = post(&url, &[CE, key], no_time.to_string().as_bytes());
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    let mut no_id = event("evt_x", "agent.session_state_changed");
    no_id.as_object_mut().unwrap().remove("id");
    let (s, b) = post(&url, &[CE, key], no_id.to_string().as_bytes());
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("id"),
        "{b}"
    );
    // Binary mode: the attributes as ce-* headers, the data the body.
    fn binary<'a>(
        key: (&'a str, &'a str),
        id: &'a str,
        version: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![
            ("Content-Type", "application/json"),
            key,
            ("ce-specversion", version),
            ("ce-type", "agent.session_state_changed"),
            ("ce-source", "%2Frunner%2Fcontrol-plane"),
        ];
        if !id.is_empty() {
            h.push(("ce-id", id));
        }
        h
    }
    let (s, b) = post(
        &url,
        &binary(key, "evt_b1", "1.0"),
        br#"{"session_id": "ses_x"}"#,
    );
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")), "{b}");
    let (s, b) = post(
        &url,
        &binary(key, "evt_b1", "1.0"),
        br#"{"session_id": "ses_x"}"#,
    );
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    assert_eq!(
        post(&url, &binary(key, "", "1.0"), b"{}").0,
        400,
        "no ce-id"
    );
    assert_eq!(post(&url, &binary(key, "evt_b2", "0.3"), b"{}").0, 400);
    assert_eq!(
        post(&url, &binary(key, "evt_b3", "1.0"), b"{not json").0,
        400
    );
    let mut v03 = event("evt_3", "agent.session_queued");
    v03["specversion"] = json!("0.3");
    assert_eq!(post(&url, &[CE, key], v03.to_string().as_bytes()).0, 400);
    // Nothing refused woke the worker.
    let st: Value =
        serde_json::from_str(&ureq::get(&url).call().unwrap().into_string().unwrap()).unwrap();
    assert_eq!(st["wakeups"], 0, "{st}");

    // A session queued after the worker's start-up poll waits for the next
    // one (60 s away) — until a webhook says "look now". The same event
    // delivered five times wakes the worker once.
    let id = cp.queue(
        "woken",
        json!([{"tool": "Write", "input": {"path": "a", "content": "b"}}]),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&cp, &id), "queued");
    let ev = event("evt_queued_1", "agent.session_queued").to_string();
    let t = Instant::now();
    let (s, b) = post(&url, &[CE, key], ev.as_bytes());
    assert_eq!((s, b["status"].as_str()), (202, Some("accepted")));
    for _ in 0..4 {
        let (s, b) = post(&url, &[CE, key], ev.as_bytes());
        assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")));
    }
    claimed_within(&cp, &id, Duration::from_secs(5));
    eprintln!("woken and claimed in {:?}", t.elapsed());
    let st: Value =
        serde_json::from_str(&ureq::get(&url).call().unwrap().into_string().unwrap()).unwrap();
    assert_eq!(
        (st["wakeups"].as_u64(), st["duplicates"].as_u64()),
        // Four of the queued event, one of the binary-mode one above.
        (Some(1), Some(5)),
        "{st}"
    );
    let v = cp.wait_for(&id, 30, |v| v["session"]["state"] == "complete");
    let runs = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["to"] == "active")
        .count();
    assert_eq!(runs, 1, "one execution: {v}");
    // Another type is accepted but wakes nothing.
    assert_eq!(
        post(
            &url,
            &[CE, key],
            event("evt_x", "agent.session_state_changed")
                .to_string()
                .as_bytes()
        )
        .0,
        202
    );

    // Event ids survive a restart: the replay is still a duplicate.
    drop(w);
    let cfg = d.path().join("w1/worker.toml");
    let _w = WorkerProc::spawn(&cfg);
    let t = Instant::now();
    loop {
        if ureq::get(&url).call().is_ok() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, b) = post(&url, &[CE, key], ev.as_bytes());
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")));
}

#[test]
fn control_plane_deliveries_are_signed_retried_logged_and_wake_the_worker() {
    let d = tempfile::tempdir().unwrap();
    // By default a subscription to a loopback address is refused.
    {
        let strict = ControlPlane::start(&d.path().join("strict.db"));
        let (s, b) = strict.post(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/x", "key": KEY}),
        );
        assert_eq!(s, 400, "{b}");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-private-webhooks"));
        let (s, _) = strict.post(
            "/v1/webhooks",
            &json!({"url": "http://169.254.169.254/x", "key": KEY}),
        );
        assert_eq!(s, 400);
    }
    let cp = ControlPlane::start_with(
        &d.path().join("cp.db"),
        &[
            "--webhook-retry-schedule",
            "0,1",
            "--allow-private-webhooks",
        ],
    );
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/webhooks/one");
    let (s, sub) = cp.post(
        "/v1/webhooks",
        &json!({"url": hook, "key": KEY, "event_types": ["agent.session_queued"], "sign": true}),
    );
    assert_eq!(s, 200, "{sub}");
    let secret = sub["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // Bad subscriptions are refused.
    let (s, _) = cp.post("/v1/webhooks", &json!({"url": "ftp://x", "key": KEY}));
    assert_eq!(s, 400);
    let (s, _) = cp.post(
        "/v1/webhooks",
        &json!({"url": hook, "key": KEY, "event_types": ["agent.everything"]}),
    );
    assert_eq!(s, 400);
    // The listing shows no secret.
    let (_, list) = cp.get("/v1/webhooks");
    assert!(!list.to_string().contains("whsec_"), "{list}");

    std::fs::create_dir_all(d.path().join("w1")).unwrap();
    let sfile = secret_file(&d.path().join("w1"), "signing.secret", &secret);
    let (_w, url) = worker(
        d.path(),
        &cp,
        "w1",
        60_000,
        port,
        &format!("signing_secret = {{ file = {sfile:?} }}\n"),
    );
    assert_eq!(url, hook);
    // Queued → a signed delivery → the worker polls at once.
    std::thread::sleep(Duration::from_millis(300));
    let id = cp.queue(
        "delivered",
        json!([{"tool": "Write", "input": {"path": "a", "content": "b"}}]),
    );
    let took = claimed_within(&cp, &id, Duration::from_secs(5));
    eprintln!("queued → claimed through a webhook: {took:?}");
    cp.wait_for(&id, 30, |v| v["session"]["state"] == "complete");
    let sub_id = sub["id"].as_str().unwrap();
    let (_, log) = cp.get(&format!("/v1/webhooks/{sub_id}/deliveries"));
    let ok = log
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["state"] == "delivered")
        .expect("a delivered event");
    assert_eq!(ok["log"][0]["status"], 202, "{log}");
    // Unsigned or forged deliveries are refused by this receiver.
    let ev = event("evt_unsigned", "agent.session_queued").to_string();
    let (s, b) = post(&url, &[CE, ("X-One-Webhook-Key", KEY)], ev.as_bytes());
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (401, Some("bad_signature"))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = (now - 600).to_string();
    let (s, _) = post(
        &url,
        &[
            CE,
            ("X-One-Webhook-Key", KEY),
            ("webhook-id", "evt_unsigned"),
            ("webhook-timestamp", &old),
            ("webhook-signature", "v1,AAAA"),
        ],
        ev.as_bytes(),
    );
    assert_eq!(s, 401);

    // A receiver that fails once: retried on the schedule, and logged.
    let flaky = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let flaky_url = format!("http://{}/hook", flaky.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for (n, c) in flaky.incoming().enumerate() {
            let mut c = c.unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            while let Ok(k) = c.read(&mut buf) {
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len {
                        break;
                    }
                }
                if k == 0 {
                    break;
                }
            }
            s2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&got).to_string());
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "204 No Content"
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    let (s, sub2) = cp.post(
        "/v1/webhooks",
        &json!({"url": flaky_url, "key": "k2", "event_types": ["agent.session_state_changed"]}),
    );
    assert_eq!(s, 200, "{sub2}");
    let id2 = cp.queue("state changes", json!([]));
    cp.post(&format!("/v1/sessions/{id2}/cancel"), &json!({}));
    let sub2_id = sub2["id"].as_str().unwrap();
    let t = Instant::now();
    let log = loop {
        let (_, log) = cp.get(&format!("/v1/webhooks/{sub2_id}/deliveries"));
        if log
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["state"] == "delivered")
        {
            break log;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never delivered: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let dl = &log.as_array().unwrap()[0];
    assert_eq!(dl["attempts"], 2, "{log}");
    assert_eq!(
        (
            dl["log"][0]["status"].as_u64(),
            dl["log"][1]["status"].as_u64()
        ),
        (Some(500), Some(204)),
        "{log}"
    );
    let reqs = seen.lock().unwrap().clone();
    assert!(reqs[0]
        .to_ascii_lowercase()
        .contains("content-type: application/cloudevents+json"));
    assert!(reqs[0].contains("x-one-webhook-key: k2"));
    assert!(reqs[0].contains("\"type\":\"agent.session_state_changed\""));
    // Both attempts carry the same event id (the receiver's idempotency key).
    let id_of = |r: &str| {
        r.lines()
            .find(|l| l.starts_with("webhook-id:"))
            .map(str::to_string)
    };
    assert_eq!(id_of(&reqs[0]), id_of(&reqs[1]));
}

#[test]
fn without_webhooks_sessions_are_still_claimed_by_polling() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let _w = WorkerProc::start(d.path(), "w1", &cp, "poll_interval_ms = 1000\n");
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        let id = cp.queue(&format!("polled {i}"), json!([]));
        // Nothing but polling can claim it (no receiver is configured).
        // The bound only keeps a broken poller from hanging the suite; how
        // fast polling claims is a figure of the session_loop benchmark.
        let took = claimed_within(&cp, &id, Duration::from_secs(15));
        eprintln!("claimed by polling in {took:?}");
        std::thread::sleep(Duration::from_millis(317 * (i + 1)));
    }
}

#[test]
fn https_receiver_serves_its_certificate_and_refuses_plain_http_off_loopback() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let dir = d.path().join("w1");
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    let keyf = secret_file(&dir, "key.pem", &ck.key_pair.serialize_pem());
    let hk = secret_file(&dir, "hook.key", KEY);
    let port = free_port();
    let _w = WorkerProc::start(
        d.path(),
        "w1",
        &cp,
        &format!("[webhook]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {keyf:?}\nkey = {{ file = {hk:?} }}\n", cert.display().to_string()),
    );
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/webhooks/one");
    let t = Instant::now();
    let r = loop {
        match client.get(&url).send() {
            Ok(r) => break r,
            Err(_) if t.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(r.status(), 200);
    let r = client
        .post(&url)
        .header("content-type", "application/cloudevents+json")
        .header("x-one-webhook-key", KEY)
        .body(event("evt_tls", "agent.session_queued").to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    // Plain HTTP on a non-loopback address: the worker refuses to start.
    let cfg = WorkerProc::configure(
        d.path(),
        "w2",
        &cp.url,
        "",
        &format!(
            "[webhook]\nlisten = \"0.0.0.0:0\"\nplain_http = true\nkey = {{ file = {hk:?} }}\n"
        ),
    );
    let (ok, out) = WorkerProc::login(&cp, &cfg);
    assert!(ok, "{out}");
    let out = std::process::Command::new(e2e::bin("runner"))
        .args(["worker", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("plain_http is allowed only on a loopback address"));
}
