//! Wasm sandbox benchmark: prints its figures.
//!
//! - A trivial guest call end to end through `tools::call` (schema check,
//!   decide, record, instantiate, run, parse) with a warm module: the same
//!   call repeated (decision-cache hits) and calls with distinct targets
//!   (a full policy evaluation each).
//! - Cold first call: a new sandbox loading the Grep module (1.8 MB of wasm)
//!   and running it once, without and with the disk cache.
//! - `Grep` over a generated corpus (10,000 files, ~52 MB) against
//!   `rg -j1` on the same corpus, in one run, page cache warm for both.
//!
//! Needs the guests (scripts/build-guests.sh). Run:
//! `cargo bench -p runner --bench wasm_tools`.

use protocol::session::SourceWork;
use runner::activity::NullSink;
use runner::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
use runner::sandbox::wasm::{WasmLimits, WasmSandbox};
use runner::tools::{self, CallStatus, Registry, ToolSource, WebFetchSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pct(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (p(0.5), p(0.99))
}

fn target(sub: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(sub);
    assert!(
        p.is_dir(),
        "{} missing: run scripts/build-guests.sh",
        p.display()
    );
    p
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("wasm_tools: bench");
        return;
    }
    // `cargo bench --bench wasm_tools -- grep` runs only the parts named
    // (trivial, cold, grep); nothing named runs all three.
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let part = |p: &str| named.is_empty() || named.iter().any(|n| n == p);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let ws = base.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let engine = Arc::new(
        PolicyEngine::load(EngineSettings::from_config(
            &runner::policy::PolicySection::default(),
            Vec::new(),
        ))
        .unwrap(),
    );
    let grants = engine.tool_grants().unwrap();
    let gate = PolicyGate::builder(engine, Arc::new(NullSink)).without_audit();
    let trusted = Trusted {
        agent: serde_json::json!({"name": "bench", "enabled_tools": ["Misbehave", "Grep"], "grants": {}}),
        worker: serde_json::json!({}),
        platform: serde_json::json!({}),
    };
    let ctx = SessionContext::new(ws.clone(), trusted, SourceWork::default());
    let sandbox = WasmSandbox::new(WasmLimits::default(), Some(base.join("cache"))).unwrap();
    let mut reg = Registry::builtin(
        runner::wiring::bash_settings(
            &runner::config::Config::default(),
            PathBuf::from("/nonexistent"),
        ),
        WebFetchSettings::default(),
    );
    reg.add_guest_dir(
        &target("guest-tools"),
        ToolSource::Builtin,
        &sandbox,
        &grants,
    );
    reg.add_guest_dir(
        &target("guest-tools-testing"),
        ToolSource::Custom,
        &sandbox,
        &grants,
    );
    assert!(reg.problems().is_empty(), "{:?}", reg.problems());

    if part("trivial") {
        // 1. Trivial call, end to end.
        let echo = serde_json::json!({"mode": "echo"});
        let call = |input: &serde_json::Value| {
            let o = tools::call(&reg, &gate, &ctx, "Misbehave", input, false);
            assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
        };
        for _ in 0..200 {
            call(&echo);
        }
        let n = 3000;
        let same: Vec<u64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                call(&echo);
                t.elapsed().as_nanos() as u64
            })
            .collect();
        let inputs: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"mode": "echo", "target": format!("src/f{i}.rs")}))
            .collect();
        let distinct: Vec<u64> = inputs
            .iter()
            .map(|i| {
                let t = Instant::now();
                call(i);
                t.elapsed().as_nanos() as u64
            })
            .collect();
        let (a50, a99) = pct(same);
        let (b50, b99) = pct(distinct);
        println!("trivial guest call, end to end (n={n}):");
        println!("  same call (decision cached)   p50 {a50:8.1} µs  p99 {a99:8.1} µs");
        println!("  distinct targets (full eval)  p50 {b50:8.1} µs  p99 {b99:8.1} µs");
    }

    if part("cold") {
        // 2. Cold first call.
        let grep_wasm = std::fs::read(target("guest-tools").join("Grep/tool.wasm")).unwrap();
        std::fs::write(ws.join("a.txt"), "hello\n").unwrap();
        let cold = |cache: Option<PathBuf>| -> (f64, bool) {
            let t = Instant::now();
            let sb = WasmSandbox::new(WasmLimits::default(), cache).unwrap();
            let m = sb.load(&grep_wasm).unwrap();
            let out = sb
                .run(
                    &m,
                    runner::sandbox::wasm::GuestCall {
                        stdin: br#"{"pattern":"hello"}"#.to_vec(),
                        workspace: ws.clone(),
                        writable: false,
                        env: Vec::new(),
                        timeout: Duration::from_secs(30),
                    },
                )
                .unwrap();
            assert_eq!(out.exit_code, 0);
            (t.elapsed().as_secs_f64() * 1e3, m.from_cache)
        };
        let fresh = base.join("cold-cache");
        let (no_cache, _) = cold(None);
        let (filling, hit1) = cold(Some(fresh.clone()));
        let (from_disk, hit2) = cold(Some(fresh));
        assert!(!hit1 && hit2);
        println!(
            "cold first call (new engine + load Grep, {} KB wasm + one call):",
            grep_wasm.len() / 1024
        );
        println!("  no disk cache (compile)        {no_cache:8.1} ms");
        println!("  empty disk cache (compile+store){filling:7.1} ms");
        println!("  warm disk cache (deserialize)  {from_disk:8.1} ms");
    }

    if !part("grep") {
        return;
    }
    // 3. Grep vs rg -j1.
    let corpus = base.join("ws-corpus");
    let bytes = make_corpus(&corpus, 10_000);
    let ctx2 = SessionContext::new(
        corpus.clone(),
        Trusted {
            agent: serde_json::json!({"name": "bench", "enabled_tools": ["Grep"], "grants": {}}),
            worker: serde_json::json!({}),
            platform: serde_json::json!({}),
        },
        SourceWork::default(),
    );
    let pattern = "needle_[0-9]+";
    let input = serde_json::json!({"pattern": pattern, "max_results": 10000});
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut counts = (0, 0);
    let rg = which("rg");
    // WASM_BENCH_GREP_RUNS (default 11) repeats the Grep comparison, e.g.
    // to profile it.
    let runs: usize = std::env::var("WASM_BENCH_GREP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    for _ in 0..runs {
        let t = Instant::now();
        let o = tools::call(&reg, &gate, &ctx2, "Grep", &input, false);
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
        counts.0 = o.output["matches"].as_array().unwrap().len();
        if let Some(rg) = &rg {
            let t = Instant::now();
            let out = std::process::Command::new(rg)
                .args(["-j1", "-n", "--no-heading", pattern, "."])
                .current_dir(&corpus)
                .output()
                .unwrap();
            theirs.push(t.elapsed().as_secs_f64() * 1e3);
            counts.1 = out.stdout.iter().filter(|&&b| b == b'\n').count();
        }
    }
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    println!(
        "Grep over {} files, {:.1} MB (median of {runs}, warm page cache):",
        10_000,
        bytes as f64 / 1e6
    );
    println!(
        "  runner Grep (guest)  {:8.1} ms  ({} matching lines)",
        ours[runs / 2],
        counts.0
    );
    if rg.is_some() {
        println!(
            "  rg -j1               {:8.1} ms  ({} matching lines)",
            theirs[runs / 2],
            counts.1
        );
        println!(
            "  ratio                {:8.2}x",
            ours[runs / 2] / theirs[runs / 2]
        );
    } else {
        println!("  rg not installed (scripts/setup.sh installs ripgrep)");
    }
}

/// 10,000 files of ~5.2 KB of source-like text in 100 directories; one
/// line in about every 100 files holds `needle_N`.
fn make_corpus(root: &Path, files: usize) -> usize {
    let mut total = 0;
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let words = [
        "fn", "let", "match", "struct", "impl", "return", "value", "error", "self", "config",
        "request", "buffer", "index", "policy", "result", "option", "string", "vector",
    ];
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::with_capacity(5400);
        let mut line = 0;
        while text.len() < 5200 {
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(words[(seed % words.len() as u64) as usize]);
                text.push(' ');
            }
            if i % 100 == 0 && line == 20 {
                text.push_str(&format!("needle_{i}"));
            }
            text.push('\n');
            line += 1;
        }
        total += text.len();
        std::fs::write(dir.join(format!("f{i:05}.rs")), text).unwrap();
    }
    total
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}
