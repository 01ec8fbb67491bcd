//! Helpers the benchmarks that run the whole loop share.
#![allow(dead_code)]

use protocol::session::{AgentVersion, NewSession, NewSource, ScriptStep};
use runner::platform::Platform;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn session(script: serde_json::Value) -> NewSession {
    NewSession {
        workspace: "w".into(),
        agent_profile: "p".into(),
        agent: AgentVersion {
            name: "bench".into(),
            model: "script".into(),
            enabled_tools: vec!["Bash".into(), "Write".into()],
            ..Default::default()
        }
        .into(),
        source: NewSource::default(),
        script: Some(serde_json::from_value::<Vec<ScriptStep>>(script).unwrap()),
        repo: None,
        trigger: None,
    }
}

pub fn start_control_plane(
    db: &Path,
    private_webhooks: bool,
) -> (String, Arc<control_plane::Store>) {
    let store = Arc::new(
        control_plane::Store::open(db, 3)
            .unwrap()
            .with_private_webhooks(private_webhooks)
            // The benches launch far more than a user may a minute.
            .with_prompt_limits(usize::MAX, usize::MAX),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (l, addr) = control_plane::bind("127.0.0.1:0").await.unwrap();
            tx.send(addr).unwrap();
            control_plane::serve(l, s, Duration::from_millis(200), std::future::pending())
                .await
                .unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), store)
}

/// A signed-in client: tokens issued by the store (as `runner up` does).
pub fn platform(url: &str, store: &control_plane::Store) -> Platform {
    let t = store.issue_tokens("bench", "runner").unwrap();
    let tokens = runner::auth::TokenManager::new(
        stored(url, t),
        runner::auth::tokens::Persist::Memory,
        None,
        0.25,
    )
    .unwrap();
    Platform::new(url).unwrap().with_tokens(Arc::new(tokens))
}

pub fn stored(
    url: &str,
    t: control_plane::auth::IssuedTokens,
) -> runner::auth::store::StoredTokens {
    runner::auth::store::StoredTokens {
        control_plane: url.to_string(),
        client_id: "runner".into(),
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        access_expires_at: chrono::Utc::now().timestamp() + t.expires_in as i64,
        access_lifetime: t.expires_in as i64,
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts the real `runner worker` in `state`, signed in with tokens the
/// store issues (sealed in its token file); `worker` is appended to its
/// `[worker]` section and `rest` after it.
pub fn spawn_worker(
    runner: &Path,
    state: &Path,
    url: &str,
    store: &control_plane::Store,
    worker: &str,
) -> std::process::Child {
    spawn_worker_with(runner, state, url, store, worker, "")
}

/// [`spawn_worker`] with more config after `[worker]`.
pub fn spawn_worker_with(
    runner: &Path,
    state: &Path,
    url: &str,
    store: &control_plane::Store,
    worker: &str,
    rest: &str,
) -> std::process::Child {
    std::fs::create_dir_all(state).unwrap();
    for d in [state.parent().unwrap(), state] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    }
    let key = "5a".repeat(32);
    std::fs::write(state.join("token.key"), &key).unwrap();
    std::fs::set_permissions(
        state.join("token.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    runner::auth::store::TokenFile::new(
        state.join("tokens.enc"),
        runner::auth::store::TokenKey::parse(&key).unwrap(),
    )
    .save(&stored(url, store.issue_tokens("bench", "runner").unwrap()))
    .unwrap();
    std::fs::write(
        state.join("worker.toml"),
        format!(
            "state_dir = {:?}\n[auth]\nkey = {{ file = {:?} }}\n[worker]\ncontrol_plane = {url:?}\nworkspace = \"w\"\nagent_profile = \"p\"\n{worker}\n{rest}",
            state.display().to_string(),
            state.join("token.key").display().to_string()
        ),
    )
    .unwrap();
    std::process::Command::new(runner)
        .args([
            "worker",
            "--config",
            state.join("worker.toml").to_str().unwrap(),
        ])
        .env(
            "RUNNER_LOG",
            std::env::var("BENCH_RUNNER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .spawn()
        .unwrap()
}

/// Queued → claimed of each session, in ms, from the control plane's own
/// transition times.
pub fn latencies(p: &Platform, ids: &[protocol::ids::SessionId]) -> Vec<i64> {
    let mut lat = Vec::new();
    for id in ids {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let v = p.session(id).unwrap();
            let tr = v["transitions"].as_array().cloned().unwrap_or_default();
            let at = |to: &str| {
                tr.iter()
                    .find(|t| t["to"] == to)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t["at"].as_str()?).ok())
            };
            if let (Some(q), Some(a)) = (at("queued"), at("active")) {
                lat.push((a - q).num_milliseconds());
                break;
            }
            assert!(Instant::now() < until, "{id} never claimed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    lat
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
