//! Cloud Agents API latency: launch → first RUNNING and launch → first
//! activity, as a client of `/v0` sees them on the session's event stream,
//! with webhooks on; and the `statusChange` webhook's delivery time.
//!
//! The rig: the control plane in process (private webhook targets allowed,
//! its outbox delivering `agent.session_queued` to the worker's receiver on
//! loopback, so claims are push-driven: the worker's poll interval is 5 s),
//! the real `runner worker` binary with a repository host
//! (`test_support::git_server::GitServer`: `git http-backend` behind HTTPS
//! and Basic auth, a three-file repository) and a provider pointing at a
//! fake OpenAI-compatible model in this process that answers every chat
//! completion at once with a final text. A user with an email and an API
//! key of theirs launches agents one after the other with `POST
//! /v0/agents` (HTTP Basic `KEY:`, as Cursor's clients send it), each with
//! a `webhook` to a receiver here. For each launch: t0 just before the
//! POST; right after its answer the client opens `GET
//! /v1/sessions/ses_<id>/events` (it replays from the first event, so
//! nothing is missed) and notes when the first `state` event with `to =
//! "active"` (t1) and the first `activity` event (t2) arrive, then reads
//! to `end` before the next launch. The `statusChange` delivery time is the
//! receiver's clock at arrival minus the `at` of the session's terminal
//! transition (one machine, one clock; ms resolution).
//!
//! Each measured launch is followed by one whose stream is read by a client
//! that acknowledges every TCP segment at once (`TCP_QUICKACK`), printed
//! as a diagnosis: the difference is what Nagle's algorithm on the control
//! plane's socket, meeting the client's delayed ACK, adds to the stream.
//!
//! Run: `cargo bench -p runner --bench cloud_agents`
//! (`CLOUD_AGENTS_BENCH_N=N` launches of each kind, default 100, after 2
//! warm-ups; `BENCH_RUNNER_LOG=debug` for the worker's log on stderr).

mod common;
use common::*;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use test_support::git_server::GitServer;

const GIT_USER: &str = "x-access-token";
const GIT_TOKEN: &str = "bench-git-token-0123456789";
const REPO: &str = "acme/widget";
const MODEL: &str = "fake-coder";
const WARM_UP: usize = 2;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("cloud_agents: bench");
        return;
    }
    let n: usize = std::env::var("CLOUD_AGENTS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let runner = private_binaries(&dir.join("bin"));

    let (url, store) = start_control_plane(&dir.join("cp.db"), true);
    let git = GitServer::start(GIT_USER, GIT_TOKEN);
    git.create_repo(
        REPO,
        &[
            ("README.md", "# widget\n\nAdds numbers.\n"),
            ("widget.py", "def add(a, b):\n    return a + b\n"),
            (
                "test_widget.py",
                "import widget\nassert widget.add(2, 3) == 5\n",
            ),
        ],
    );
    let model_url = fake_model();
    let (hook_url, hooks) = hook_receiver();

    store
        .add_user("bench", "a long enough password", Some("bench@example.com"))
        .unwrap();
    let key = store.add_api_key("bench key", Some("bench")).unwrap().key;

    let state = dir.join("worker");
    std::fs::create_dir_all(&state).unwrap();
    let rest = worker_config(&store, &state, &git, &model_url);
    let mut child = spawn_worker_with(
        &runner,
        &state,
        &url,
        &store,
        "poll_interval_ms = 5000\nconcurrency = 4\n",
        &rest,
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let api = Api {
        url: url.clone(),
        key,
        client,
        repository: git.url(REPO),
        hook_url,
    };
    api.wait_for_model();

    for i in 0..WARM_UP {
        api.launch(i % 2 == 1);
    }
    // Interleaved with the diagnosis's launches, so that a slow moment of
    // this shared VM hits both.
    let started = Instant::now();
    let (mut runs, mut quick) = (Vec::new(), Vec::new());
    for _ in 0..n {
        runs.push(api.launch(false));
        quick.push(api.launch(true));
    }
    let wall = started.elapsed();
    // Every agent's statusChange, warm-ups included.
    let delivered = hooks.wait_for(WARM_UP + 2 * n, Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();

    let kinds: std::collections::BTreeMap<&str, usize> =
        runs.iter().fold(Default::default(), |mut m, r| {
            *m.entry(r.first_activity.as_str()).or_default() += 1;
            m
        });
    println!(
        "cloud agents: {n} sequential launches over POST /v0/agents (Basic auth), each followed to its end on GET /v1/sessions/{{id}}/events (reqwest); webhooks on (worker poll 5 s), real `runner worker`, {REPO} on a local HTTPS git server, a fake model answering at once; {} launches in {:.1} s:",
        2 * n,
        wall.as_secs_f64()
    );
    let row = |label: &str, mut v: Vec<f64>| {
        let (p50, p99) = (pct(&mut v, 0.5), pct(&mut v, 0.99));
        println!(
            "  {label:<46} n={:<3} p50 {p50:>7.1} ms  p99 {p99:>7.1} ms  min {:>7.1} ms  max {:>7.1} ms",
            v.len(),
            v[0],
            v[v.len() - 1]
        );
    };
    row(
        "launch -> first RUNNING (SSE state active)",
        runs.iter().map(|r| r.active).collect(),
    );
    row(
        "launch -> first activity (SSE)",
        runs.iter().map(|r| r.activity).collect(),
    );
    row(
        "launch -> FINISHED (SSE end)",
        runs.iter().map(|r| r.end).collect(),
    );
    println!("  of which:");
    row(
        "  POST /v0/agents answered",
        runs.iter().map(|r| r.answered).collect(),
    );
    row(
        "  queued -> active (control plane's clock)",
        runs.iter()
            .map(|r| ms_between(&r.queued_at, &r.active_at))
            .collect(),
    );
    println!("  first activity kinds: {kinds:?}");
    println!("  (diagnosis) the same, read by a client that ACKs every segment at once (TCP_QUICKACK), interleaved:");
    row(
        "  launch -> first RUNNING (SSE state active)",
        quick.iter().map(|r| r.active).collect(),
    );
    row(
        "  launch -> first activity (SSE)",
        quick.iter().map(|r| r.activity).collect(),
    );
    row(
        "  launch -> FINISHED (SSE end)",
        quick.iter().map(|r| r.end).collect(),
    );
    let by_id: std::collections::HashMap<&str, &Run> = runs
        .iter()
        .chain(&quick)
        .map(|r| (r.id.as_str(), r))
        .collect();
    let delivery: Vec<f64> = delivered
        .iter()
        .filter_map(|d| {
            let r = by_id.get(d.id.as_str())?;
            assert_eq!(d.status, "FINISHED", "statusChange of {}", d.id);
            Some((d.at - r.finished_at).num_microseconds()? as f64 / 1e3)
        })
        .collect();
    assert_eq!(delivery.len(), 2 * n, "a statusChange per measured agent");
    row("statusChange: FINISHED -> delivered", delivery);
}

/// One measured launch, times in ms from just before the POST.
struct Run {
    id: String,
    answered: f64,
    active: f64,
    activity: f64,
    end: f64,
    first_activity: String,
    queued_at: chrono::DateTime<chrono::Utc>,
    active_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
}

/// A `/v0` client with one user's key.
struct Api {
    url: String,
    key: String,
    client: reqwest::blocking::Client,
    repository: String,
    hook_url: String,
}

impl Api {
    /// Until the worker registered and reported its model.
    fn wait_for_model(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let m: Value = self
                .client
                .get(format!("{}/v0/models", self.url))
                .basic_auth(&self.key, Some(""))
                .send()
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            if m["models"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(MODEL)))
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the worker never reported {MODEL}: {m}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Launches one agent and follows its session's stream to the end;
    /// `quick_ack`: read the stream with [`quick_ack_stream`] instead of
    /// reqwest.
    fn launch(&self, quick_ack: bool) -> Run {
        let body = json!({
            "prompt": {"text": "Check the widget\n\nadd(2, 3) should be 5; say whether it is."},
            "source": {"repository": self.repository, "ref": "main"},
            "webhook": {"url": self.hook_url},
        });
        let t0 = Instant::now();
        let r = self
            .client
            .post(format!("{}/v0/agents", self.url))
            .basic_auth(&self.key, Some(""))
            .json(&body)
            .send()
            .unwrap();
        let status = r.status();
        let a: Value = r.json().unwrap();
        let answered = ms(t0);
        assert_eq!(status, 200, "launch: {a}");
        let id = a["id"].as_str().unwrap().to_string();
        let session = format!("ses_{}", id.trim_start_matches("bc_"));
        let events: Box<dyn Iterator<Item = (String, String)>> = if quick_ack {
            Box::new(sse(quick_ack_stream(&self.url, &session, &self.key)))
        } else {
            let resp = self
                .client
                .get(format!("{}/v1/sessions/{session}/events", self.url))
                .basic_auth(&self.key, Some(""))
                .header("accept", "text/event-stream")
                .timeout(Duration::from_secs(120))
                .send()
                .unwrap();
            assert_eq!(resp.status(), 200, "events of {session}");
            Box::new(sse(resp))
        };
        let (mut active, mut activity) = (None, None);
        let (mut queued_at, mut active_at, mut finished_at) = (None, None, None);
        let mut first_activity = String::new();
        let mut end = None;
        for (event, data) in events {
            let at = ms(t0);
            let d: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            match event.as_str() {
                "state" => {
                    let when = chrono::DateTime::parse_from_rfc3339(d["at"].as_str().unwrap())
                        .unwrap()
                        .with_timezone(&chrono::Utc);
                    match d["to"].as_str().unwrap() {
                        "queued" if queued_at.is_none() => queued_at = Some(when),
                        "active" if active.is_none() => {
                            active = Some(at);
                            active_at = Some(when);
                        }
                        "complete" | "error" | "cancelled" => finished_at = Some(when),
                        _ => {}
                    }
                }
                "activity" if activity.is_none() => {
                    activity = Some(at);
                    first_activity = d["activity"]["type"].as_str().unwrap_or("?").to_string();
                }
                "end" => {
                    assert_eq!(d["state"], "complete", "{id} ended: {d}");
                    end = Some(at);
                    break;
                }
                "error" => panic!("{session}'s stream failed: {data}"),
                _ => {}
            }
        }
        Run {
            id,
            answered,
            active: active.expect("an active state event"),
            activity: activity.expect("an activity event"),
            end: end.expect("the stream's end"),
            first_activity,
            queued_at: queued_at.expect("a queued state event"),
            active_at: active_at.unwrap(),
            finished_at: finished_at.expect("a terminal state event"),
        }
    }
}

/// The events of a Server-Sent Events body as (event name, data), each
/// yielded as soon as its blank line is read; comments are skipped.
fn sse(body: impl Read) -> impl Iterator<Item = (String, String)> {
    let mut lines = BufReader::new(body);
    std::iter::from_fn(move || {
        let (mut event, mut data) = (String::new(), Vec::<String>::new());
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() || !event.is_empty() {
                    return Some((std::mem::take(&mut event), data.join("\n")));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_string(),
                "data" => data.push(value.to_string()),
                _ => {}
            }
        }
    })
}

/// A session's event stream over a plain socket that acknowledges every
/// segment at once (`TCP_QUICKACK` after each read), for the diagnosis
/// row: with the usual delayed ACK, a server that sends small writes with
/// Nagle's algorithm on holds an event until the previous one is acked
/// (up to 40 ms on Linux). HTTP/1.0, so the body is not chunked; the
/// body, after the headers.
fn quick_ack_stream(url: &str, session: &str, key: &str) -> impl Read {
    use base64::Engine;
    struct QuickAck(std::net::TcpStream);
    impl Read for QuickAck {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            let on: libc::c_int = 1;
            // SAFETY: a valid socket descriptor and a c_int option value.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&self.0),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            Ok(n)
        }
    }
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    write!(
        s,
        "GET /v1/sessions/{session}/events HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(QuickAck(s));
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "events of {session}: {status}");
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
            break;
        }
        assert!(
            !h.to_ascii_lowercase().starts_with("transfer-encoding"),
            "{h}"
        );
    }
    r
}

/// `runner` and `runner-sandbox` as cargo built them for this bench,
/// copied so that another build of the shared target directory cannot
/// replace them mid-run; the path of the copied `runner`.
fn private_binaries(bin: &Path) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().parent().unwrap();
    std::fs::create_dir_all(bin).unwrap();
    for name in ["runner", "runner-sandbox"] {
        std::fs::copy(built.join(name), bin.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", built.join(name).display()));
    }
    bin.join("runner")
}

/// The worker's config after `[worker]`: its webhook receiver (subscribed
/// here to `agent.session_queued`), loopback allowed, the repository host
/// with its token, and the fake model's provider.
fn worker_config(
    store: &control_plane::Store,
    state: &Path,
    git: &GitServer,
    model_url: &str,
) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = |name: &str, value: &str| {
        let p = state.join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    store
        .add_subscription(
            control_plane::webhooks::NewSubscription {
                url: format!("http://127.0.0.1:{port}/webhooks/one"),
                key: "bench-key".into(),
                event_types: vec!["agent.session_queued".into()],
                sign: false,
            },
            Some(control_plane::webhooks::ALL_TEAMS),
        )
        .unwrap();
    let ca = state.join("git-ca.pem");
    std::fs::write(&ca, git.ca_pem()).unwrap();
    format!(
        "[webhook]\nlisten = \"127.0.0.1:{port}\"\nplain_http = true\nkey = {{ file = {:?} }}\n\n\
         [network]\nallow_cidrs = [\"127.0.0.0/8\"]\n\n\
         [repositories]\nca_file = {:?}\n\n\
         [[repositories.hosts]]\nhost = \"127.0.0.1:{}\"\ntoken = {{ file = {:?} }}\nforge = \"none\"\n\n\
         [[providers]]\nname = \"fake\"\napi = \"openai\"\nbase_url = {model_url:?}\nmodels = [\"{MODEL}\"]\napi_key = {{ file = {:?} }}\n",
        secret("hook.key", "bench-key"),
        ca.display().to_string(),
        git.port(),
        secret("git.token", GIT_TOKEN),
        secret("model.key", "sk-bench-0123456789"),
    )
}

/// A local OpenAI Chat Completions endpoint answering every request at
/// once with a final text (no tool calls), in the provider's response
/// shape; its base URL (`http://127.0.0.1:PORT/v1`).
fn fake_model() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    async fn complete(body: String) -> Json<Value> {
        let n = N.fetch_add(1, Ordering::Relaxed) + 1;
        let model = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|b| b["model"].as_str().map(str::to_string))
            .unwrap_or_else(|| MODEL.into());
        Json(json!({
            "id": format!("chatcmpl-bench{n}"),
            "object": "chat.completion",
            "created": 1_764_000_000u64 + n,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant",
                "content": "add(2, 3) is 5 already; nothing to change.", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112},
            "system_fingerprint": "fp_bench",
        }))
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let app = Router::new().route("/v1/chat/completions", post(complete));
            axum::serve(l, app).await.unwrap();
        });
    });
    format!("http://{}/v1", rx.recv().unwrap())
}

/// One `statusChange` the receiver got.
struct Delivered {
    id: String,
    status: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// The deliveries a [`hook_receiver`] got.
struct Hooks(mpsc::Receiver<Delivered>);

impl Hooks {
    /// At least `n` deliveries (fewer after `wait`), in arrival order.
    fn wait_for(&self, n: usize, wait: Duration) -> Vec<Delivered> {
        let until = Instant::now() + wait;
        let mut got = Vec::new();
        while got.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(d) => got.push(d),
                Err(_) => break,
            }
        }
        got
    }
}

/// A plain HTTP/1.1 receiver on loopback for the agents' webhooks: notes
/// the time each request's body is in, answers 200; its URL.
fn hook_receiver() -> (String, Hooks) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/cursor", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let Some(body) = test_support::http_request::read_request(&mut c).map(|r| r.body)
            else {
                continue;
            };
            let at = chrono::Utc::now();
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = tx.send(Delivered {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                status: v["status"].as_str().unwrap_or_default().to_string(),
                at,
            });
        }
    });
    (url, Hooks(rx))
}

/// The `q` quantile of `v` (nearest rank; sorts `v`).
fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms_between(a: &chrono::DateTime<chrono::Utc>, b: &chrono::DateTime<chrono::Utc>) -> f64 {
    (*b - *a).num_microseconds().unwrap_or(0) as f64 / 1e3
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
