//! Queued → claimed with webhooks on vs polling only, both with a 5 s poll
//! interval: the control plane in process (its outbox delivering
//! CloudEvents to the worker's receiver on loopback), the real `runner
//! worker` binary, sessions queued at random moments, latencies from the
//! control plane's own transition times.
//!
//! Run: `cargo bench -p runner --bench webhook_latency`.

mod common;
use common::*;

use std::time::Duration;

fn pct(lat: &mut [i64], q: f64) -> i64 {
    lat.sort_unstable();
    lat[((lat.len() - 1) as f64 * q).round() as usize]
}

fn run(label: &str, webhooks: bool, n: usize) {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let runner = exe.parent().unwrap().parent().unwrap().join("runner");
    let (url, store) = start_control_plane(&dir.join("cp.db"), true);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rest = if webhooks {
        std::fs::create_dir_all(dir.join("worker")).unwrap();
        let key = dir.join("worker/hook.key");
        std::fs::write(&key, "bench-key").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
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
        format!(
            "[webhook]\nlisten = \"127.0.0.1:{port}\"\nplain_http = true\nkey = {{ file = {:?} }}\n",
            key.display().to_string()
        )
    } else {
        String::new()
    };
    let mut child = spawn_worker_with(
        &runner,
        &dir.join("worker"),
        &url,
        &store,
        "poll_interval_ms = 5000\nconcurrency = 4\n",
        &rest,
    );
    let p = platform(&url, &store);
    let new =
        session(serde_json::json!([{"tool": "Write", "input": {"path": "a", "content": "b"}}]));
    // Warm-up: measure only once the worker is up and polling.
    let first = p.queue(&new).unwrap().id;
    latencies(&p, &[first]);
    let mut ids = Vec::new();
    let mut seed = 0x9E3779B97F4A7C15u64;
    for _ in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(200 + seed % 1300));
        ids.push(p.queue(&new).unwrap().id);
    }
    let mut lat = latencies(&p, &ids);
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!(
        "  {label:<28} n={n:<3} p50 {p50:>5} ms  p99 {p99:>5} ms  max {:>5} ms",
        lat[lat.len() - 1]
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("webhook_latency: bench");
        return;
    }
    println!("queued -> claimed, 5 s poll interval, real `runner worker`:");
    if std::env::var("BENCH_ONLY_POLLING").is_err() {
        run("webhooks on (loopback)", true, 40);
    }
    run("polling only", false, 20);
}
