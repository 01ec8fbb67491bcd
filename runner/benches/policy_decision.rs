//! Policy decision benchmark: prints its figures.
//!
//! - warm decision latency, p50/p90/p99, with the default policy over a mix
//!   of realistic actions, measured around `PolicyGate::check` — input
//!   building, evaluation and the decision record all included (audit log
//!   write excluded; measured separately);
//! - decisions per second on 1 and 2 threads;
//! - cold start: the shipped policies/ read from disk with their Rego tests
//!   run on load, and the embedded default (tested at build time).
//!
//! Run: `cargo bench -p runner --bench policy_decision`. Set
//! `POLICY_BENCH_DIR=/path/to/policies` to measure your own policy set (its
//! entrypoint must be `data.runner.decision`) on the same inputs.

use protocol::policy::{Action, ActionDetail};
use protocol::session::SourceWork;
use runner::activity::NullSink;
use runner::policy::audit::AuditLog;
use runner::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `from_dir`: the shipped `policies/` directory, read from disk with its
/// Rego tests run on load (as an operator's policy directory is); else the
/// copy embedded in the binary. `POLICY_BENCH_DIR`, when set, replaces
/// both (an operator measuring their own policies).
fn settings(from_dir: bool) -> EngineSettings {
    let dirs = if let Some(dir) = std::env::var_os("POLICY_BENCH_DIR") {
        vec![std::path::PathBuf::from(dir)]
    } else if from_dir {
        vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")]
    } else {
        Vec::new()
    };
    EngineSettings {
        dirs,
        entrypoint: "data.runner.decision".into(),
        // Under valgrind (see POLICY_BENCH_COUNT) everything runs ~50x slower.
        eval_timeout: Duration::from_millis(if std::env::var_os("POLICY_BENCH_COUNT").is_some() {
            10_000
        } else {
            50
        }),
        mask: vec!["/action/env".into()],
        run_tests: true,
        workspaces: Vec::new(),
    }
}

fn context(root: &std::path::Path) -> SessionContext {
    let trusted = Trusted {
        agent: serde_json::json!({
            "name": "coder", "model": "claude-sonnet", "system": "You are a careful coding agent.",
            "enabled_tools": ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "List", "WebFetch"],
            "grants": {"workspace_write": ["comment"], "network": {"allow_hosts": ["docs.rs", "crates.io"]}},
        }),
        worker: serde_json::json!({"protected_paths": ["deploy/**"], "hidden_paths": [], "network": {"allow_hosts": ["*.github.com"], "deny_hosts": [], "allow_cidrs": []}}),
        platform: serde_json::json!({"max_turns": 50}),
    };
    let untrusted = SourceWork {
        title: "Fix flaky test in scheduler".into(),
        description: "The scheduler test fails about one run in twenty. ".repeat(8),
        comments: vec![
            "Seen on main since Tuesday.".into(),
            "Probably a timing issue.".into(),
        ],
        prompt: "Please fix it and add a regression test.".into(),
        images: vec![],
    };
    SessionContext::new(root.to_path_buf(), trusted, untrusted).with_session(
        Some("sess-bench".into()),
        Some("claim-bench".into()),
        1,
    )
}

/// The same action made distinct by `i` (another file, command, host…),
/// so no decision can come from the cache.
fn vary(a: &Action, i: usize) -> Action {
    let mut a = a.clone();
    match &mut a.detail {
        ActionDetail::FsRead { path } | ActionDetail::FsWrite { path } => {
            path.push_str(&format!(".{i}"))
        }
        ActionDetail::ShellExec { command, .. } => command.push_str(&format!(" --seed {i}")),
        ActionDetail::NetConnect { method, .. } => *method = Some(format!("GET-{i}")),
        ActionDetail::WorkspaceWrite { target, .. } | ActionDetail::External { target, .. } => {
            *target = Some(format!("t{i}"))
        }
        ActionDetail::McpCall { arguments, .. } => *arguments = serde_json::json!({ "i": i }),
        ActionDetail::WebSearch { query, .. } => query.push_str(&format!(" {i}")),
    }
    a
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn summarize(label: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    println!(
        "{label}\n  p50 {:.1} us   p90 {:.1} us   p99 {:.1} us   max {:.1} us   (n={})",
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        *samples.last().unwrap() as f64 / 1000.0,
        samples.len()
    );
}

fn time_checks(gate: &PolicyGate, ctx: &SessionContext, actions: &[Action]) -> (Vec<u64>, usize) {
    let mut samples = Vec::with_capacity(actions.len());
    let mut hits = 0;
    for a in actions {
        let t = Instant::now();
        let rec = gate.check(a, ctx);
        samples.push(t.elapsed().as_nanos() as u64);
        hits += rec.cache_hit as usize;
        std::hint::black_box(rec);
    }
    (samples, hits)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("policy_decision: bench");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
    let actions = test_support::actions::every_kind();

    // Cold start: load, compile (interpreter + VM + differential check),
    // the policy's own Rego tests, first decision.
    let t = Instant::now();
    let engine = Arc::new(PolicyEngine::load(settings(true)).unwrap());
    let gate = PolicyGate::builder(engine.clone(), Arc::new(NullSink)).without_audit();
    let ctx = context(&root);
    let _ = gate.check(&actions[0], &ctx);
    let cold_with_tests = t.elapsed();
    let t = Instant::now();
    let engine2 = Arc::new(PolicyEngine::load(settings(false)).unwrap());
    let gate2 = PolicyGate::builder(engine2, Arc::new(NullSink)).without_audit();
    let _ = gate2.check(&actions[0], &context(&root));
    let cold_without_tests = t.elapsed();
    println!(
        "backend: {}",
        if engine.with_set(|s| s.uses_vm()) == Some(true) {
            "register VM"
        } else {
            "interpreter"
        }
    );

    // `POLICY_BENCH_COUNT=distinct|recurring`: only that workload, 2,000
    // decisions, for an instruction count that this noisy machine cannot
    // blur: `valgrind --tool=callgrind --collect-atstart=no
    // --toggle-collect='*time_checks*'` (Ir / 2,000 = instructions per
    // decision).
    // `POLICY_BENCH_ACTION=K` counts only the K-th action of the mix.
    if let Ok(mode) = std::env::var("POLICY_BENCH_COUNT") {
        let only: Option<usize> = std::env::var("POLICY_BENCH_ACTION")
            .ok()
            .and_then(|k| k.parse().ok());
        let pick = |i: usize| &actions[only.unwrap_or(i % actions.len()) % actions.len()];
        let inputs: Vec<Action> = (0..2_000)
            .map(|i| match mode.as_str() {
                "recurring" => pick(i).clone(),
                _ => vary(pick(i), 40_000_000 + i),
            })
            .collect();
        let _ = gate.check(&actions[1], &ctx);
        let (_, hits) = time_checks(&gate, &ctx, &inputs);
        println!("{mode}: {} decisions, {hits} cache hits", inputs.len());
        return;
    }

    // Warm up.
    let warm: Vec<Action> = (0..3_000)
        .map(|i| vary(&actions[i % actions.len()], 9_000_000 + i))
        .collect();
    let _ = time_checks(&gate, &ctx, &warm);

    let n = 30_000;
    // 1. Every input distinct: each decision is a full evaluation.
    let unique: Vec<Action> = (0..n)
        .map(|i| vary(&actions[i % actions.len()], i))
        .collect();
    let (s, hits) = time_checks(&gate, &ctx, &unique);
    assert_eq!(hits, 0);
    summarize("warm decision, every input distinct (full evaluation, 0 cache hits), 10 action kinds/tools mixed, input + eval + record:", s);

    // 2. Recurring actions (a session re-reading its files, re-running its
    //    tests): the same 10 inputs again and again, answered from the cache.
    let recurring: Vec<Action> = (0..n).map(|i| actions[i % actions.len()].clone()).collect();
    let (s, hits) = time_checks(&gate, &ctx, &recurring);
    summarize(
        &format!("warm decision, 10 recurring inputs ({hits} cache hits), input + cache + record:"),
        s,
    );

    // 3. Realistic mix: 80% recurring, 20% new.
    let mixed: Vec<Action> = (0..n)
        .map(|i| {
            if i % 5 == 0 {
                vary(&actions[i % actions.len()], 5_000_000 + i)
            } else {
                actions[i % actions.len()].clone()
            }
        })
        .collect();
    let (s, hits) = time_checks(&gate, &ctx, &mixed);
    summarize(
        &format!("warm decision, 80% recurring / 20% new ({hits} cache hits):"),
        s,
    );

    // Breakdown: the evaluation alone (VM, prebuilt input) vs the whole check.
    let inputs: Vec<regorus::Value> = unique
        .iter()
        .take(10_000)
        .map(|a| regorus::Value::from(gate.check(a, &ctx).input.to_value()))
        .collect();
    let evals: Vec<u64> = engine
        .with_set(|set| {
            inputs
                .iter()
                .map(|i| {
                    let t = Instant::now();
                    std::hint::black_box(set.evaluate(i.clone()));
                    t.elapsed().as_nanos() as u64
                })
                .collect()
        })
        .unwrap();
    summarize("policy evaluation alone (prebuilt input, same mix):", evals);

    println!("per action, full evaluation (distinct inputs):");
    for (k, a) in actions.iter().enumerate() {
        let distinct: Vec<Action> = (0..3_000)
            .map(|i| vary(a, 1_000_000 + k * 10_000 + i))
            .collect();
        let (mut s, _) = time_checks(&gate, &ctx, &distinct);
        s.sort_unstable();
        println!(
            "  {:<16} {:<10} p50 {:>6.1} us  p99 {:>6.1} us",
            a.detail.kind(),
            a.tool,
            percentile(&s, 0.5),
            percentile(&s, 0.99)
        );
    }

    for threads in [1usize, 2] {
        let per_thread = 20_000;
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let gate = &gate;
                let actions = &actions;
                let root = root.clone();
                s.spawn(move || {
                    let ctx = context(&root);
                    for i in 0..per_thread {
                        let a = vary(&actions[i % actions.len()], 20_000_000 + th * 1_000_000 + i);
                        std::hint::black_box(gate.check(&a, &ctx));
                    }
                });
            }
        });
        let secs = t.elapsed().as_secs_f64();
        println!(
            "throughput, distinct inputs: {threads} thread(s): {:.0} decisions/s",
            (threads * per_thread) as f64 / secs
        );
    }

    let log_path = root.join("audit.jsonl");
    let gate_logged = PolicyGate::builder(engine.clone(), Arc::new(NullSink))
        .audit(Arc::new(AuditLog::open(&log_path, false).unwrap()));
    let distinct: Vec<Action> = (0..10_000)
        .map(|i| vary(&actions[i % actions.len()], 3_000_000 + i))
        .collect();
    let (s, _) = time_checks(&gate_logged, &ctx, &distinct);
    summarize("with audit log append (no fsync), distinct inputs:", s);

    println!(
        "cold start, policies/ from disk (read + compile + Rego tests + VM check + first decision): {:.1} ms",
        cold_with_tests.as_secs_f64() * 1000.0
    );
    println!(
        "cold start, embedded default (compile + VM check + first decision): {:.1} ms",
        cold_without_tests.as_secs_f64() * 1000.0
    );
}
