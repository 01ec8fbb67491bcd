//! Agent-loop benchmark: the per-turn overhead the runner adds around the
//! model call — deciding the call, running it in its sandbox, capping the
//! result, reporting activities and bookkeeping — with p50/p99.
//!
//! A local server speaking OpenAI Chat Completions answers every request at
//! once with the same tool call; the loop runs real tools (wasm guests,
//! the process sandbox for Bash) under the embedded default policy, with
//! the audit log on a file. Overhead per turn = turn time − time inside the
//! model call (the HTTP round trip, request encoding and reply parsing).
//!
//! Run: `cargo bench -p runner --bench agent_turn` (after
//! scripts/build-guests.sh).

use protocol::conversation::Message;
use protocol::session::{AgentVersion, SourceWork};
use runner::agent::{Agent, AgentSettings, Host, Reply};
use runner::cancel::Cancel;
use runner::model::{ApiKind, ModelClient, ProviderConfig};
use runner::policy::audit::AuditLog;
use runner::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

struct NullHost;
impl runner::activity::ActivitySink for NullHost {
    fn emit(&self, _a: &protocol::activity::Activity) {}
}
impl Host for NullHost {
    fn save(&self, _m: &[Message]) -> Result<(), String> {
        Ok(())
    }
    fn plan(&self, _s: &[String]) {}
    fn external_url(&self, _u: &str) {}
    fn ask(&self, _q: &str, _c: &Cancel) -> Reply {
        Reply::TimedOut
    }
}

/// A Chat Completions server that always calls `tool` with `args`.
fn fake_provider(tool: &'static str, args: serde_json::Value) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let reply = serde_json::json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": tool, "arguments": args.to_string()}}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || serve(s, &reply));
        }
    });
    format!("http://{addr}/v1")
}

/// Answers requests on one keep-alive connection.
fn serve(s: std::net::TcpStream, reply: &str) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let _ = w.set_nodelay(true);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        let out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if w.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.99))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("agent_turn: bench");
        return;
    }
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let workspaces = base.join("workspaces");
    std::fs::create_dir_all(&workspaces).unwrap();
    let mut config = runner::config::Config::default();
    config.tools.cache_dir = Some(base.join("cache"));
    let engine = Arc::new(
        PolicyEngine::load(EngineSettings::from_config(
            &config.policy,
            vec![workspaces.clone()],
        ))
        .unwrap(),
    );
    let exe = Path::new(env!("CARGO_BIN_EXE_runner"));
    let registry = runner::wiring::tool_registry(&config, exe, &engine).unwrap();
    assert!(registry.problems().is_empty(), "{:?}", registry.problems());
    let audit = Arc::new(AuditLog::open(&base.join("audit.jsonl"), false).unwrap());
    let settings = AgentSettings::default();
    println!(
        "agent_turn: per-turn overhead around the model call (decision + sandbox + bookkeeping)"
    );
    let cases: Vec<(&str, &'static str, serde_json::Value)> = vec![
        (
            "update_plan (no tool, loop only)",
            "update_plan",
            serde_json::json!({"steps": ["a", "b"]}),
        ),
        (
            "Read (wasm guest)",
            "Read",
            serde_json::json!({"path": "src/lib.rs"}),
        ),
        (
            "Edit (wasm guest, fs.write)",
            "Edit",
            serde_json::json!({"path": "src/lib.rs", "old": "x", "new": "x", "replace_all": true}),
        ),
        (
            "Grep (wasm guest)",
            "Grep",
            serde_json::json!({"pattern": "fn"}),
        ),
        (
            "Bash `true` (process sandbox)",
            "Bash",
            serde_json::json!({"command": "true"}),
        ),
    ];
    for (label, tool, args) in cases {
        let url = fake_provider(tool, args);
        let provider = ProviderConfig {
            name: "bench".into(),
            api: ApiKind::Openai,
            base_url: url,
            models: vec!["bench".into()],
            api_key: None,
            timeout_seconds: 30,
            connect_timeout_seconds: 5,
            retries: 0,
            max_retry_after_seconds: 1,
            max_tokens: 256,
            max_tokens_field: "max_tokens".into(),
            images: false,
        };
        let model: Arc<dyn ModelClient> =
            Arc::new(runner::model::openai::OpenAi::new(&provider, "bench", None).unwrap());
        let agent = AgentVersion {
            name: "bench".into(),
            model: "bench".into(),
            enabled_tools: ["Read", "Edit", "Grep", "Bash"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Default::default()
        };
        let mut overhead = Vec::new();
        let mut model_ms = Vec::new();
        for run in 0..6 {
            let ws = workspaces.join(format!("{tool}-{run}"));
            std::fs::create_dir_all(ws.join("src")).unwrap();
            std::fs::write(
                ws.join("src/lib.rs"),
                "fn main() { let x = 1; }\n".repeat(40),
            )
            .unwrap();
            let ws = std::fs::canonicalize(&ws).unwrap();
            let trusted = Trusted {
                agent: serde_json::to_value(&agent).unwrap(),
                worker: config.trusted_view(),
                platform: serde_json::json!({}),
            };
            let ctx = SessionContext::new(ws, trusted, SourceWork::default()).with_session(
                Some(format!("ses_bench_{run}")),
                Some("claim".into()),
                1,
            );
            let gate = PolicyGate::builder(engine.clone(), Arc::new(runner::activity::NullSink))
                .audit(audit.clone());
            let s = AgentSettings {
                max_turns: 41,
                ..settings.clone()
            };
            let a = Agent {
                registry: &registry,
                gate: &gate,
                ctx: &ctx,
                agent: &agent,
                model: model.as_ref(),
                settings: &s,
                worker_instructions: None,
                session_instructions: &[],
                host: &NullHost,
                cancel: &Cancel::never(),
            };
            let out = a.run(
                Vec::new(),
                vec![Message::User {
                    content: "bench".into(),
                    images: vec![],
                }],
            );
            assert!(
                matches!(out.result, Err(runner::agent::AgentError::MaxTurns(_))),
                "stops at max_turns"
            );
            // The first turns warm the caches; keep the rest.
            for t in out.turns.iter().skip(if run == 0 { 5 } else { 0 }) {
                overhead.push((t.total - t.model - t.waiting).as_secs_f64() * 1e6);
                model_ms.push(t.model.as_secs_f64() * 1e6);
            }
        }
        let (p50, p99) = percentiles(overhead.clone());
        let (m50, _) = percentiles(model_ms);
        println!(
            "  {label:<34} overhead p50 {p50:>8.1} µs  p99 {p99:>8.1} µs   (model call p50 {m50:.1} µs, {} turns)",
            overhead.len()
        );
    }
}
