//! Metrics and logs of the real binaries: both `/metrics` endpoints read
//! with the Prometheus project's own Python parsers
//! (`tests/python/metrics_check.py`) before and after a model session,
//! the counts moving as the session ran; the worker's JSON log, every line
//! JSON, the session's lines carrying its ids, no secret anywhere.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::{bin, terminal, ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY: &str = "sk-fake-metrics-5d1e0c";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The samples of `url`'s exposition as the Python parsers read them;
/// asserts the content type the endpoint declares.
fn scrape(url: &str, token: Option<&str>) -> Vec<Value> {
    let mut req = ureq::get(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(
        resp.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = resp.into_string().unwrap();
    parse(&text)
}

/// `tests/python/metrics_check.py` on `text`: the samples it printed.
fn parse(text: &str) -> Vec<Value> {
    use std::io::Write;
    let pydeps = root().join("target/pydeps");
    assert!(
        pydeps.join("prometheus_client").is_dir(),
        "prometheus-client is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
        pydeps.display()
    );
    let mut child = std::process::Command::new("python3")
        .arg(root().join("tests/python/metrics_check.py"))
        .env("PYTHONPATH", &pydeps)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parsers refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when
/// there is none yet: a labelled counter appears on its first count).
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

/// How much `name{labels}` grew from `before` to `after`.
fn delta(before: &[Value], after: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

/// No label value of any sample is an id, a path or a URL.
fn assert_closed_labels(samples: &[Value]) {
    for s in samples {
        for (k, v) in s["labels"].as_object().unwrap() {
            let v = v.as_str().unwrap();
            let id_like = ["ses_", "clm_", "wrk_", "cpk_", "http", "/etc", "127.0.0.1"]
                .iter()
                .any(|p| v.contains(p));
            // Route templates are paths of a kind: their variable parts
            // are `{names}`, never values.
            assert!(
                !id_like,
                "label {k}={v:?} of {} carries an id or URL",
                s["name"]
            );
        }
    }
}

fn provider(dir: &Path, fake: &FakeModel) -> String {
    let key = dir.join("model.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "\n[[providers]]\nname = \"fake\"\napi = \"openai\"\nbase_url = {:?}\nmodels = [\"fake-coder\"]\napi_key = {{ file = {:?} }}\n",
        fake.base_url,
        key.display().to_string()
    )
}

/// Waits for `<state>/metrics.addr`, written once the endpoint listens.
fn metrics_url(state: &Path) -> String {
    let file = state.join("metrics.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(a) = std::fs::read_to_string(&file) {
            return format!("http://{}/metrics", a.trim());
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_move_as_a_session_runs_and_the_json_log_carries_its_ids_and_no_secret() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let fake = FakeModel::start(
        Wire::OpenAi,
        KEY,
        vec![
            Step::Call(vec![(
                "Write".into(),
                json!({"path": "notes.txt", "content": "hello\n"}),
            )]),
            Step::Call(vec![("Read".into(), json!({"path": "/etc/shadow"}))]),
            Step::Call(vec![("Bash".into(), json!({"command": "cat notes.txt"}))]),
            Step::Text("Wrote notes.txt; /etc/shadow is not mine to read.".into()),
        ],
    );
    let extra = format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        provider(d.path(), &fake)
    );
    let cfg = WorkerProc::configure(d.path(), "w1", &cp.url, "", &extra);
    let (ok, out) = WorkerProc::login(&cp, &cfg);
    assert!(ok, "runner login failed: {out}");
    let log = d.path().join("worker.log");
    let mut worker = std::process::Command::new(bin("runner"))
        .args(["--log-format", "json", "worker", "--config"])
        .arg(&cfg)
        .env("RUNNER_LOG", "info,runner=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("runner worker starts");
    let state = cfg.parent().unwrap();
    let worker_url = metrics_url(state);
    let cp_url = format!("{}/metrics", cp.url);

    let w0 = scrape(&worker_url, None);
    let c0 = scrape(&cp_url, None);
    assert_eq!(
        value(&c0, "control_plane_sessions", &[("state", "complete")]),
        0.0
    );
    let id = cp.queue_model(
        "fake-coder",
        &["Read", "Write", "Bash"],
        json!({"title": "Write some notes"}),
    );
    let v = cp.wait_for(&id, 90, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    // The worker counts a session's end just after reporting it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let w1 = loop {
        let w = scrape(&worker_url, None);
        if delta(&w0, &w, "runner_sessions_total", &[("outcome", "complete")]) >= 1.0
            || Instant::now() > deadline
        {
            break w;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let c1 = scrape(&cp_url, None);
    let _ = worker.kill();
    let _ = worker.wait();

    // The worker: decisions by result and kind, with their latency.
    let decisions = "runner_policy_decisions_total";
    assert_eq!(
        delta(
            &w0,
            &w1,
            decisions,
            &[("result", "allow"), ("kind", "fs.write")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &w0,
            &w1,
            decisions,
            &[("result", "deny"), ("kind", "fs.read")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &w0,
            &w1,
            decisions,
            &[("result", "allow"), ("kind", "shell.exec")]
        ),
        1.0
    );
    assert_eq!(
        delta(&w0, &w1, "runner_policy_decision_seconds_count", &[]),
        3.0
    );
    // Tool calls by tool and status; the sandboxes they started.
    let calls = "runner_tool_call_seconds_count";
    assert_eq!(
        delta(&w0, &w1, calls, &[("tool", "Read"), ("status", "denied")]),
        1.0
    );
    assert_eq!(
        delta(&w0, &w1, calls, &[("tool", "Bash"), ("status", "ok")]),
        1.0
    );
    assert_eq!(
        delta(
            &w0,
            &w1,
            "runner_sandbox_spawn_seconds_count",
            &[("sandbox", "process")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &w0,
            &w1,
            "runner_sandbox_spawn_seconds_count",
            &[("sandbox", "wasm")]
        ),
        1.0,
        "the Write guest ran; the denied Read never started"
    );
    assert!(
        delta(
            &w0,
            &w1,
            "runner_sandbox_spawn_seconds_sum",
            &[("sandbox", "process")]
        ) > 0.0
    );
    // Four model calls of 100 prompt and 20 completion tokens each (what
    // the fake provider reports), none failed.
    assert_eq!(
        delta(
            &w0,
            &w1,
            "runner_model_call_seconds_count",
            &[("outcome", "ok")]
        ),
        4.0
    );
    assert_eq!(
        delta(&w0, &w1, "runner_model_tokens_total", &[("type", "prompt")]),
        400.0
    );
    assert_eq!(
        delta(
            &w0,
            &w1,
            "runner_model_tokens_total",
            &[("type", "completion")]
        ),
        80.0
    );
    assert_eq!(delta(&w0, &w1, "runner_model_errors_total", &[]), 0.0);
    assert_eq!(
        delta(&w0, &w1, "runner_claims_total", &[("result", "claimed")]),
        1.0
    );
    assert_eq!(delta(&w0, &w1, "runner_claims_lost_total", &[]), 0.0);
    assert_eq!(
        delta(
            &w0,
            &w1,
            "runner_sessions_total",
            &[("outcome", "complete")]
        ),
        1.0
    );

    // The control plane: sessions by state, claims, requests by route.
    assert_eq!(
        value(&c1, "control_plane_sessions", &[("state", "complete")]),
        1.0
    );
    assert_eq!(
        value(&c1, "control_plane_sessions", &[("state", "queued")]),
        0.0
    );
    assert_eq!(
        delta(
            &c0,
            &c1,
            "control_plane_claims_total",
            &[("result", "granted")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &c0,
            &c1,
            "control_plane_claims_total",
            &[("result", "conflict")]
        ),
        0.0
    );
    let claim_route = c1
        .iter()
        .find(|s| {
            s["name"] == "control_plane_http_requests_total"
                && s["labels"]["route"]
                    .as_str()
                    .is_some_and(|r| r.ends_with("/claim") && r.contains('{'))
        })
        .unwrap_or_else(|| panic!("no request counted under the claim route: {c1:?}"));
    assert_eq!(claim_route["labels"]["status"], "2xx", "{claim_route}");
    assert!(
        delta(
            &c0,
            &c1,
            "control_plane_http_requests_total",
            &[("route", "/metrics"), ("status", "2xx")]
        ) >= 1.0
    );
    assert_closed_labels(&w1);
    assert_closed_labels(&c1);

    // The JSON log: every line an object; the session's lines carry its
    // ids as span fields; neither the model key nor a token anywhere.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{text}");
    let in_session: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|sp| sp["session_id"] == id.as_str()))
        })
        .collect();
    assert!(
        in_session
            .iter()
            .any(|l| l["fields"]["message"] == "session claimed; running it"),
        "{text}"
    );
    assert!(
        in_session.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("session ended"))),
        "{text}"
    );
    for l in &in_session {
        let span = l["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "session")
            .unwrap();
        assert!(
            span["claim_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("clm_")),
            "{l}"
        );
    }
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("metrics on http://127.0.0.1:"))),
        "the worker's notices are JSON lines too: {text}"
    );
    // The model's key, and any of the control plane's tokens, codes or
    // secrets (all carry their prefix).
    assert!(!text.contains(KEY), "the model key was logged");
    for prefix in ["cpat_", "cprt_", "cpk_", "cpac_", "cpcs_"] {
        assert!(!text.contains(prefix), "a {prefix}… credential was logged");
    }
    assert!(!text.to_ascii_lowercase().contains("bearer "), "{text}");
}

#[test]
fn the_control_planes_metrics_can_ask_for_a_token_and_its_log_is_json() {
    let d = tempfile::tempdir().unwrap();
    let token = "mt-3f9a0c51d2e8b4a7";
    let token_file = d.path().join("metrics.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // A token others may read is refused, saying what to run.
    let out = std::process::Command::new(bin("control-plane"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(d.path().join("cp.db"))
        .arg("--metrics-token-file")
        .arg(&token_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let log = d.path().join("cp.log");
    let mut child = std::process::Command::new(bin("control-plane"))
        .args(["--log-format", "json", "--listen", "127.0.0.1:0", "--db"])
        .arg(d.path().join("cp.db"))
        .arg("--metrics-token-file")
        .arg(&token_file)
        .env("CONTROL_PLANE_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = format!(
        "{}/metrics",
        line.trim().strip_prefix("listening on ").unwrap()
    );
    // Without the token, or with another: 401 with the bearer challenge
    // and the JSON error body.
    for given in [None, Some("Bearer wrong")] {
        let mut req = ureq::get(&url);
        if let Some(g) = given {
            req = req.set("Authorization", g);
        }
        match req.call() {
            Err(ureq::Error::Status(401, r)) => {
                assert!(r
                    .header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Bearer")));
                let b: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                assert_eq!(b["error"]["type"], "unauthorized", "{b}");
            }
            other => panic!("{given:?}: {other:?}"),
        }
    }
    let samples = scrape(&url, Some(token));
    assert_eq!(
        value(&samples, "control_plane_sessions", &[("state", "queued")]),
        0.0
    );
    // The scheme is case-insensitive (RFC 9110).
    let r = ureq::get(&url)
        .set("Authorization", &format!("bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    // A second request shows the refused ones counted, by status class.
    let samples = scrape(&url, Some(token));
    assert_eq!(
        value(
            &samples,
            "control_plane_http_requests_total",
            &[("route", "/metrics"), ("status", "4xx")]
        ),
        2.0
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing was logged at debug");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(!text.contains(token), "the metrics token was logged");
}

/// The text log has no colour codes when stderr is not a terminal
/// (journald, a file): they would be stored as text.
#[test]
fn the_text_log_has_no_colour_codes_off_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("cp.log");
    let mut child = std::process::Command::new(bin("control-plane"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(d.path().join("cp.db"))
        .env("CONTROL_PLANE_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let _ = ureq::get(&format!("{base}/healthz")).call();
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.trim().is_empty(), "nothing was logged at debug");
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    // The runner's text log too.
    let out = std::process::Command::new(bin("runner"))
        .args(["tools", "list"])
        .env("RUNNER_LOG", "debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in the runner's log:\n{err}"
    );
}

#[test]
fn every_binary_takes_log_format_and_refuses_another_value() {
    for (binary, args) in [
        ("runner", vec!["--log-format", "yaml", "tools", "list"]),
        ("control-plane", vec!["--log-format", "yaml"]),
        ("runner-sandbox", vec!["--log-format", "yaml", "{}"]),
    ] {
        let out = std::process::Command::new(bin(binary))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{binary}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("yaml"), "{binary}: {err}");
    }
    // A one-shot command under --log-format json prints its result as
    // usual on stdout.
    let out = std::process::Command::new(bin("runner"))
        .args(["--log-format", "json", "tools", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tools.is_array() || tools.is_object(), "{tools}");
}
