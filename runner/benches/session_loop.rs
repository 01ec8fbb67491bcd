//! Session-loop benchmark: prints its figures.
//!
//! - Claims/s: 8 concurrent claimers (each its own registered worker and
//!   HTTP client) against one in-process control plane on a SQLite file,
//!   4,000 queued sessions; then every session is checked for exactly one
//!   claim (zero double claims).
//! - Queued → claimed latency with a 1 s poll interval: the real `runner
//!   worker` binary; sessions queued at random moments; the latency is the
//!   control plane's own transition times.
//! - Runner RSS: the worker process idle, and with 4 concurrent sessions
//!   (each a sandboxed `sleep`).
//!
//! Run: `cargo bench -p runner --bench session_loop` (after
//! scripts/build-guests.sh).

use protocol::platform::RegisterWorker;
use runner::platform::PlatformError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("session_loop: bench");
        return;
    }
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();

    // 1. Claims/s.
    let (url, store) = start_control_plane(&dir.join("claims.db"), false);
    let p = platform(&url, &store);
    let n = 4000;
    let new =
        session(serde_json::json!([{"tool": "Write", "input": {"path": "a", "content": "b"}}]));
    for _ in 0..n {
        p.queue(&new).unwrap();
    }
    let claimed = Arc::new(AtomicUsize::new(0));
    let conflicts = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (url, claimed, conflicts) = (url.clone(), claimed.clone(), conflicts.clone());
            let p = platform(&url, &store);
            std::thread::spawn(move || {
                let w = p
                    .register(&RegisterWorker {
                        workspace: "w".into(),
                        agent_profile: "p".into(),
                        runtime: format!("bench-{i}"),
                        execution_mode: "cloud".into(),
                        display_name: format!("bench {i}"),
                        capabilities: vec![],
                        concurrency: 64,
                        policy_entries: vec![],
                        custom_instructions: None,
                        models: vec![],
                    })
                    .unwrap();
                loop {
                    let list = p.claimable(&w.worker_id, 100).unwrap();
                    if list.is_empty() {
                        return;
                    }
                    // A random order per worker, as `runner worker` does.
                    let mut order: Vec<usize> = (0..list.len()).collect();
                    for a in (1..order.len()).rev() {
                        let b = (uuid::Uuid::new_v4().as_u128() % (a as u128 + 1)) as usize;
                        order.swap(a, b);
                    }
                    // Like a worker with free slots: take a few, then look
                    // again (a list goes stale as the others claim).
                    let (mut got, mut lost) = (0, 0);
                    for j in order {
                        if got == 4 || lost == 2 {
                            break;
                        }
                        let s = &list[j];
                        match p.claim(&w.worker_id, &s.id, 900) {
                            Ok(_) => {
                                got += 1;
                                claimed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(PlatformError::ClaimConflict(_)) => {
                                lost += 1;
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let counts = store.audit_counts().unwrap();
    let doubles = counts.iter().filter(|c| c.2 != 1).count();
    println!("claims with 8 concurrent workers, one SQLite control plane ({n} sessions):");
    println!(
        "  {:.0} claims/s ({} claimed in {:.2} s, {} conflicts answered 409, {} sessions with other than one claim)",
        claimed.load(Ordering::Relaxed) as f64 / secs,
        claimed.load(Ordering::Relaxed),
        secs,
        conflicts.load(Ordering::Relaxed),
        doubles
    );

    // 2 and 3: the real worker binary.
    let exe = std::env::current_exe().unwrap();
    let runner = exe.parent().unwrap().parent().unwrap().join("runner");
    assert!(
        runner.exists(),
        "{} missing: cargo build --release",
        runner.display()
    );
    let (url, store) = start_control_plane(&dir.join("loop.db"), false);
    let mut child = spawn_worker(
        &runner,
        &dir.join("worker"),
        &url,
        &store,
        "poll_interval_ms = 1000\nconcurrency = 4\n",
    );
    let p = platform(&url, &store);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_kib(child.id());
    let mut ids = Vec::new();
    let mut seed = 0x2545F4914F6CDD1Du64;
    for _ in 0..30 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 1200));
        ids.push(p.queue(&new).unwrap().id);
    }
    let mut lat = latencies(&p, &ids);
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    println!(
        "queued -> claimed, 1 s poll interval, real `runner worker` (n={}):",
        lat.len()
    );
    println!(
        "  p50 {} ms  p99 {} ms  max {} ms",
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );

    // RSS with 4 concurrent sessions.
    let busy: Vec<protocol::ids::SessionId> = (0..4)
        .map(|_| {
            p.queue(&session(
                serde_json::json!([{"tool": "Bash", "input": {"command": "sleep 4"}}]),
            ))
            .unwrap()
            .id
        })
        .collect();
    let mut peak = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(6) {
        peak = peak.max(rss_kib(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in &busy {
        let _ = p.session(id);
    }
    println!("runner worker RSS:");
    println!(
        "  idle {:.1} MB; with 4 concurrent sessions {:.1} MB ({:.1} MB per session)",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(idle)) as f64 / 4096.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
