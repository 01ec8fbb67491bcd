//! The toolset's own costs on the worker, outside any model or network:
//! placing a session's pinned skills (digest check, descriptor-relative
//! writes, modes, rename) and collecting `/data` at the session's end (the
//! walk, reading and hashing each file, one `artifact.deliver` decision per
//! file through the real default policy, the upload handed to a sink).
//!
//! `cargo bench -p runner --bench toolset` prints the medians and p95 of
//! `TOOLSET_BENCH_RUNS` runs (default 20).

use base64::Engine as _;
use protocol::policy::{ArtifactFile, DecisionResult};
use protocol::session::{PinnedSkill, SourceWork};
use protocol::toolset::{SkillBundle, SkillFile};
use runner::activity::NullSink;
use runner::artifacts::{collect, deliver_action, ArtifactsSection, Deliver};
use runner::policy::{
    EngineSettings, PolicyEngine, PolicyGate, SessionContext, SessionRoot, Trusted,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runs() -> usize {
    std::env::var("TOOLSET_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{label}: median {:.2} ms, p95 {:.2} ms ({} runs)",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        samples.len()
    );
}

/// One skill at the registry's limits: 200 files, about 7.8 MiB.
fn bundle() -> (PinnedSkill, SkillBundle) {
    let mut files = vec![SkillFile {
        path: "SKILL.md".into(),
        content_base64: base64::engine::general_purpose::STANDARD
            .encode("---\nname: bench\ndescription: A skill at the limits.\n---\nRead me.\n"),
        executable: false,
    }];
    for i in 1..200 {
        let bytes: Vec<u8> = (0..40 * 1024).map(|j| ((i * 31 + j) % 251) as u8).collect();
        files.push(SkillFile {
            path: format!("references/part-{i:03}.bin"),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            executable: i % 50 == 0,
        });
    }
    let b = SkillBundle {
        skill_id: "skill_bench".into(),
        version: "1".into(),
        name: "bench".into(),
        files,
    };
    let size = b
        .files
        .iter()
        .map(|f| f.bytes().unwrap().len() as u64)
        .sum();
    let pin = PinnedSkill {
        skill_id: "skill_bench".into(),
        version: "1".into(),
        name: "bench".into(),
        description: "A skill at the limits.".into(),
        sha256: b.digest().unwrap(),
        size_bytes: size,
    };
    (pin, b)
}

struct Gated<'a> {
    gate: &'a PolicyGate,
    ctx: &'a SessionContext,
    uploaded: u64,
}

impl Deliver for Gated<'_> {
    fn decide(&mut self, file: &ArtifactFile) -> Result<(), String> {
        let r = self.gate.check(&deliver_action(file), self.ctx);
        match r.result {
            DecisionResult::Allow => Ok(()),
            _ => Err(r.reasons.join("; ")),
        }
    }
    fn upload(&mut self, _file: &ArtifactFile, bytes: &[u8]) -> Result<(), String> {
        self.uploaded += bytes.len() as u64;
        Ok(())
    }
}

fn main() {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();

    // Skills: fetch is in memory, so this is the runner's own work.
    let (pin, b) = bundle();
    let mut placing = Vec::new();
    for i in 0..runs() {
        let dir = root.join(format!("s{i}.skills"));
        let t = Instant::now();
        runner::skills::place(&dir, std::slice::from_ref(&pin), |_| Ok(b.clone())).unwrap();
        placing.push(t.elapsed());
        runner::skills::remove_tree(&dir).unwrap();
    }
    report("skills: place one 200-file, 7.8 MiB skill", placing);

    // Artifacts: 100 files of 256 KiB (25 MiB), each decided by the
    // embedded default policy.
    let data = root.join("s.data");
    std::fs::create_dir_all(data.join("out")).unwrap();
    for i in 0..100 {
        let bytes: Vec<u8> = (0..256 * 1024).map(|j| ((i * 7 + j) % 253) as u8).collect();
        std::fs::write(data.join(format!("out/f{i:03}.bin")), bytes).unwrap();
    }
    let engine = Arc::new(
        PolicyEngine::load(EngineSettings {
            dirs: Vec::new(),
            entrypoint: "data.runner.decision".into(),
            eval_timeout: Duration::from_millis(50),
            mask: Vec::new(),
            run_tests: false,
            workspaces: Vec::new(),
        })
        .unwrap(),
    );
    let gate = PolicyGate::builder(engine, Arc::new(NullSink)).without_audit();
    let ws = root.join("s");
    std::fs::create_dir_all(&ws).unwrap();
    let trusted = Trusted {
        agent: serde_json::json!({"name": "bench", "enabled_tools": ["Write", "DeliverArtifacts"]}),
        worker: serde_json::json!({}),
        platform: serde_json::json!({}),
    };
    let ctx = SessionContext::new(ws, trusted, SourceWork::default())
        .with_session(Some("ses_bench".into()), Some("claim".into()), 1)
        .with_roots(vec![SessionRoot {
            name: "artifacts",
            at: "/data".into(),
            host: data.clone(),
            writable: true,
        }]);
    let limits = ArtifactsSection::default();
    let mut collecting = Vec::new();
    for _ in 0..runs() {
        let mut out = Gated {
            gate: &gate,
            ctx: &ctx,
            uploaded: 0,
        };
        let t = Instant::now();
        let got = collect(&data, "/data", &limits, &mut out).unwrap();
        collecting.push(t.elapsed());
        assert_eq!(got.delivered.len(), 100, "{:?}", got.left_out);
        assert_eq!(out.uploaded, 100 * 256 * 1024);
    }
    report(
        "artifacts: collect, hash and decide 100 files of 256 KiB",
        collecting,
    );
}
