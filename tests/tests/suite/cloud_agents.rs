//! The Cloud Agents API end to end: the real `control-plane` and `runner
//! worker` binaries, step 3's git server and fake GitHub, the fake
//! OpenAI-compatible model. An agent is launched over HTTP with an API key
//! (Basic, as Cursor's clients send it), runs on the repository to
//! FINISHED with a summary, a branch and a pull request, tells a webhook
//! receiver (signed, retried), takes a follow-up that adds a commit, and is
//! deleted.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::repo_rig::{Rig, MODEL_KEY, REPO};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `/v0` client with one user's API key.
struct V0 {
    base: String,
    auth: String,
}

impl V0 {
    /// A user with an email and a key of theirs, on the rig's control plane.
    fn new(rig: &Rig, user: &str) -> V0 {
        rig.cp.admin(
            &["user-add", user, "--email", &format!("{user}@example.com")],
            Some("a long enough password"),
        );
        let k = rig
            .cp
            .admin(&["api-key-add", "e2e key", "--user", user], None);
        let key = k["api_key"].as_str().unwrap();
        use base64::Engine;
        V0 {
            base: rig.cp.url.clone(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
            ),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let req = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &self.auth)
            .set("Accept", "application/json");
        let r = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn agent(&self, id: &str) -> Value {
        let (s, a) = self.call("GET", &format!("/v0/agents/{id}"), None);
        assert_eq!(s, 200, "{a}");
        a
    }

    /// Polls the agent until `done` holds (or fails after `secs`).
    fn wait(&self, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.agent(id);
            if done(&a) {
                return a;
            }
            assert!(Instant::now() < deadline, "timed out: {a}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One request a [`Receiver`] got.
type Received = test_support::http_request::Request;

/// A webhook receiver on loopback (plain HTTP/1.1 over a socket): answers
/// the first `fail_first` requests 500, the rest 200, and keeps them all.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/cursor", l.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let Some(r) = test_support::http_request::read_request(&mut c) else {
                    continue;
                };
                let n = {
                    let mut v = g.lock().unwrap();
                    v.push(r);
                    v.len()
                };
                let status = if n <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
            }
        });
        Receiver { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.received();
            if v.len() >= n {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries: {v:?}",
                v.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// HMAC-SHA256 written out from RFC 2104 over a plain SHA-256, so that the
/// check does not share code with the control plane's signer (`ring`).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_independent_hmac_matches_rfc_4231() {
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Case 6: a key longer than the block.
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn call(tool: &str, args: Value) -> Step {
    Step::Call(vec![(tool.to_string(), args)])
}

#[test]
fn a_launched_agent_finishes_on_its_repository_tells_its_webhook_takes_a_follow_up_and_is_deleted()
{
    // The worker signs in as the operator (e2e::USER), whose workers run
    // every user's agents; carol launches.
    let rig = Rig::start_with(&[
        "--allow-private-webhooks",
        "--webhook-retry-schedule",
        "0,1",
        "--worker-user",
        e2e::USER,
    ]);
    let fake = FakeModel::start(
        Wire::OpenAi,
        MODEL_KEY,
        vec![
            call(
                "Edit",
                json!({"path": "widget.py", "old": "a - b", "new": "a + b"}),
            ),
            call(
                "Bash",
                json!({"command": "python3 -m unittest -q 2>&1 && echo TESTS-PASS"}),
            ),
            Step::Text("Fixed add() to add its arguments; the tests pass.".into()),
            // The follow-up run.
            call(
                "Write",
                json!({"path": "CHANGELOG.md", "content": "- add() adds\n"}),
            ),
            Step::Text("Added a changelog entry.".into()),
        ],
    );
    // The provider takes images: the launch's mock-up reaches the model.
    let (_w, _log) = rig.worker_with("w1", Some(&fake), "images = true\n");
    let v0 = V0::new(&rig, "carol");
    let hook = Receiver::start(1);
    let secret = "whsec-e2e-0123456789abcdefghijklmnopqrstuv";
    // The worker reported its models when it registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = v0.call("GET", "/v0/models", None);
        if m["models"] == json!(["fake-coder"]) {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let repository = rig.git.url(REPO);
    let (s, a) = v0.call(
        "POST",
        "/v0/agents",
        Some(&json!({
            "prompt": {"text": "Fix add in widget\n\nadd(2, 3) should be 5.",
                       "images": [{"data": PNG, "dimension": {"width": 1, "height": 1}}]},
            "source": {"repository": repository, "ref": "main"},
            "target": {"autoCreatePr": true},
            "webhook": {"url": hook.url, "secret": secret},
        })),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["status"], "CREATING");
    assert_eq!(a["name"], "Fix add in widget");
    let id = a["id"].as_str().unwrap().to_string();
    let branch = a["target"]["branchName"].as_str().unwrap().to_string();
    assert!(branch.starts_with("runner/fix-add-in-widget-"), "{branch}");

    let done = v0.wait(&id, 120, |a| {
        a["status"] != "CREATING" && a["status"] != "RUNNING"
    });
    assert_eq!(done["status"], "FINISHED", "{done}");
    // The model's summary, then what the runner delivered.
    let summary = done["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Fixed add() to add its arguments; the tests pass.\n"),
        "{summary}"
    );
    assert_eq!(done["target"]["branchName"], branch.as_str());
    let pr = done["target"]["prUrl"]
        .as_str()
        .expect("a pull request")
        .to_string();
    assert!(
        summary.contains(&branch) && summary.contains(&pr),
        "{summary}"
    );
    assert!(pr.ends_with("/acme/widget/pull/1"), "{pr}");
    let tip = rig.branch_tip(&branch).expect("the branch was pushed");
    let file = rig.git.git(REPO, &["show", &format!("{tip}:widget.py")]);
    assert!(file.contains("a + b"), "{file}");
    assert_eq!(rig.github.pulls()[0].head_ref, branch);
    // The image reached the model as an OpenAI image part, byte for byte.
    let first = fake.requests()[0].body.to_string();
    assert!(
        first.contains(&format!("data:image/png;base64,{PNG}")),
        "no image_url part: {first:.600}"
    );
    // The model was given the prompt as the work.
    assert!(fake
        .user_text(&fake.requests()[0])
        .contains("add(2, 3) should be 5."));

    let (s, conv) = v0.call("GET", &format!("/v0/agents/{id}/conversation"), None);
    assert_eq!(s, 200, "{conv}");
    let msgs: Vec<(String, String)> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().into(),
                m["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        [
            (
                "user_message".to_string(),
                "Fix add in widget\n\nadd(2, 3) should be 5.".to_string()
            ),
            (
                "assistant_message".into(),
                "Fixed add() to add its arguments; the tests pass.".into()
            ),
        ]
    );

    // statusChange: refused once, retried, the same delivery id; signed.
    let got = hook.wait_for(2, 30);
    assert_eq!(got.len(), 2, "one failure, one retry: {got:?}");
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(first.body, second.body);
    assert_eq!(first.header("x-webhook-id"), second.header("x-webhook-id"));
    assert!(first.header("x-webhook-id").is_some_and(|i| !i.is_empty()));
    for r in &got {
        assert_eq!(r.header("x-webhook-event"), Some("statusChange"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r
            .header("user-agent")
            .unwrap()
            .starts_with("Cursor-Agent-Webhook/1.0"));
        let want = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &r.body)));
        assert_eq!(r.header("x-webhook-signature"), Some(want.as_str()));
    }
    let body: Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(body["event"], "statusChange");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(id.as_str()), Some("FINISHED"))
    );
    assert_eq!(body["summary"], done["summary"]);
    assert_eq!(
        body["source"],
        json!({"repository": repository, "ref": "main"})
    );
    assert_eq!(body["target"]["prUrl"], pr.as_str());
    assert_eq!(body["target"]["branchName"], branch.as_str());
    assert_eq!(body["target"]["url"], done["target"]["url"]);
    // A tampered body would not verify.
    let mut forged = second.body.clone();
    forged[2] ^= 1;
    assert_ne!(
        format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &forged))),
        second.header("x-webhook-signature").unwrap()
    );

    // A follow-up runs it again on the same branch: one more commit.
    let (s, b) = v0.call(
        "POST",
        &format!("/v0/agents/{id}/followup"),
        Some(&json!({"prompt": {"text": "Also add a changelog entry"}})),
    );
    assert_eq!((s, &b), (200, &json!({"id": id})));
    let again = v0.wait(&id, 120, |a| {
        a["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("Added a changelog entry."))
    });
    assert_eq!(again["status"], "FINISHED");
    assert_eq!(
        again["target"]["prUrl"],
        pr.as_str(),
        "the same pull request"
    );
    let tip2 = rig.branch_tip(&branch).unwrap();
    let log = rig
        .git
        .git(REPO, &["log", "--format=%s", &format!("main..{tip2}")]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "Added a changelog entry.",
            "Fixed add() to add its arguments; the tests pass."
        ]
    );
    let (_, conv) = v0.call("GET", &format!("/v0/agents/{id}/conversation"), None);
    let texts: Vec<&str> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 4, "{conv}");
    assert_eq!(texts[2], "Also add a changelog entry");
    // The second FINISHED is told too.
    let got = hook.wait_for(3, 30);
    let last: Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(last["summary"], again["summary"]);
    assert_ne!(got[2].header("x-webhook-id"), got[0].header("x-webhook-id"));

    // Another user sees none of it.
    let dave = V0::new(&rig, "dave");
    assert_eq!(dave.call("GET", &format!("/v0/agents/{id}"), None).0, 404);
    assert_eq!(
        dave.call("GET", "/v0/agents", None).1,
        json!({"agents": []})
    );

    // Deleted: every route answers 404; the branch stays on the forge.
    let (s, b) = v0.call("DELETE", &format!("/v0/agents/{id}"), None);
    assert_eq!((s, b), (200, json!({"id": id})));
    for (m, p) in [("GET", ""), ("GET", "/conversation"), ("POST", "/stop")] {
        let (s, b) = v0.call(m, &format!("/v0/agents/{id}{p}"), None);
        assert_eq!(s, 404, "{m} {p}: {b}");
        assert!(
            b["message"].as_str().unwrap().contains("GET /v0/agents"),
            "{b}"
        );
    }
    assert_eq!(rig.branch_tip(&branch), Some(tip2));
    assert_eq!(hook.received().len(), 3, "a delete sends nothing");
}

/// Whether a process whose command line contains `marker` runs.
fn running(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn cursors_own_python_client_drives_me_models_launch_status_conversation_followup_stop_and_delete()
{
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pydeps = root.join("target/pydeps");
    assert!(
        pydeps.join("cursor_agent").is_dir(),
        "cursor-agent-sdk is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
        pydeps.display()
    );
    let rig = Rig::start_with(&["--worker-user", e2e::USER]);
    // A marker on the follow-up's command line: it must be gone after the
    // stop.
    let marker = format!("m-{}", std::process::id());
    let fake = FakeModel::start(
        Wire::OpenAi,
        MODEL_KEY,
        vec![
            call(
                "Edit",
                json!({"path": "widget.py", "old": "a - b", "new": "a + b"}),
            ),
            Step::Text("Fixed add(): it subtracted.".into()),
            // The follow-up: busy until it is stopped.
            call("Bash", json!({"command": format!("sleep 300 # {marker}")})),
            Step::Text("never reached".into()),
        ],
    );
    let (_w, _log) = rig.worker("w1", Some(&fake));
    rig.cp.admin(
        &["user-add", "erin", "--email", "erin@example.com"],
        Some("a long enough password"),
    );
    let key = rig
        .cp
        .admin(&["api-key-add", "Conformance", "--user", "erin"], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    // The worker's models are known once it registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ureq::get(&format!("{}/v0/models", rig.cp.url))
            .set("Authorization", &format!("Bearer {key}"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default();
        if out.contains("fake-coder") {
            break;
        }
        assert!(Instant::now() < deadline, "no models: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The worker has reported its repositories (read from the database:
    // every /v0/repositories call counts against the user's limit).
    let db = rusqlite::Connection::open(rig.dir.path().join("cp.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db
        .query_row("SELECT COUNT(*) FROM worker_repositories", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(0)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the worker never reported its repositories"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let child = std::process::Command::new("python3")
        .arg(root.join("tests/python/cas_conformance.py"))
        .env("PYTHONPATH", &pydeps)
        .env("BASE_URL", &rig.cp.url)
        .env("API_KEY", &key)
        .env("REPO_URL", rig.git.url(REPO))
        .env("REF", "main")
        .env("EXPECT_EMAIL", "erin@example.com")
        .env("EXPECT_KEY_NAME", "Conformance")
        .env(
            "EXPECT_REPOSITORY",
            format!("https://127.0.0.1:{}/acme/widget", rig.git.port()),
        )
        .env("FINISH_TIMEOUT", "120")
        .env("STOP_TIMEOUT", "5")
        .env("STOP_DELAY", "1.5")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    // Watch the follow-up's command while the client runs: it must have
    // run (the stop lands mid-run), and be gone once the client is done.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (marker, watching) = (marker.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut seen = false;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                seen |= running(&marker);
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    let out = child.wait_with_output().unwrap();
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen_running = watcher.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && last.ends_with(" passed, 0 failed"),
        "the client's run failed:\n{stdout}\n{stderr}"
    );
    let passed: u32 = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 80, "{last}");
    assert!(seen_running, "the follow-up's Bash call never ran");
    // The follow-up's Bash call was stopped with the agent.
    let deadline = Instant::now() + Duration::from_secs(1);
    while running(&marker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(&marker), "the stopped agent's sandbox still runs");
}
