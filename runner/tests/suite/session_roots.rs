//! The session roots in the process sandbox, through the real Bash tool
//! (the `runner-sandbox` helper, the shipped default policy): `/skills`
//! is there read-only whatever the command tries, `/data` is writable, and
//! neither exists in a session without it. Every refused attempt sits
//! beside work that must succeed, so a sandbox that breaks everything
//! fails too.

use protocol::session::SourceWork;
use runner::policy::{PolicyGate, SessionContext, SessionRoot, Trusted};
use runner::tools::{self, CallStatus, Registry, WebFetchSettings};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct Rig {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    skills: PathBuf,
    data: PathBuf,
    registry: Registry,
    gate: PolicyGate,
    ctx: SessionContext,
}

fn rig(with_roots: bool) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let (ws, skills, data) = (
        base.join("s1"),
        base.join("s1.skills"),
        base.join("s1.data"),
    );
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(skills.join("pdf")).unwrap();
    std::fs::write(
        skills.join("pdf/SKILL.md"),
        "---\nname: pdf\n---\nUse pdftotext.\n",
    )
    .unwrap();
    std::fs::set_permissions(
        skills.join("pdf/SKILL.md"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    for d in [skills.join("pdf"), skills.clone()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let mut config = runner::config::Config::default();
    // Made and given to the sandbox user as the worker does.
    let data =
        runner::artifacts::prepare_dir(&data, config.sandbox.uid, config.sandbox.gid).unwrap();
    config.sandbox.limits.default_timeout_ms = 20_000;
    config.artifacts.max_total_mb = 1;
    let registry = Registry::builtin(
        runner::wiring::bash_settings(&config, PathBuf::from(env!("CARGO_BIN_EXE_runner-sandbox"))),
        WebFetchSettings::default(),
    );
    let (gate, _sink) = test_support::gate(test_support::default_engine(), None);
    let trusted = Trusted {
        agent: serde_json::json!({"name": "t", "enabled_tools": ["Bash"], "grants": {}}),
        ..test_support::trusted()
    };
    let mut ctx = SessionContext::new(ws.clone(), trusted, SourceWork::default());
    if with_roots {
        ctx = ctx.with_roots(vec![
            SessionRoot {
                name: "skills",
                at: "/skills".into(),
                host: skills.clone(),
                writable: false,
            },
            SessionRoot {
                name: "artifacts",
                at: "/data".into(),
                host: data.clone(),
                writable: true,
            },
        ]);
    }
    Rig {
        _tmp: tmp,
        ws,
        skills,
        data,
        registry,
        gate,
        ctx,
    }
}

impl Rig {
    fn bash(&self, command: &str) -> serde_json::Value {
        let o = tools::call(
            &self.registry,
            &self.gate,
            &self.ctx,
            "Bash",
            &serde_json::json!({ "command": command }),
            false,
        );
        assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
        o.output
    }
}

const SKILL: &str = "---\nname: pdf\n---\nUse pdftotext.\n";

#[test]
fn skills_are_read_only_in_bash_and_data_is_writable() {
    let r = rig(true);
    let out = r.bash(
        "cat /skills/pdf/SKILL.md; \
         echo x > /skills/pdf/SKILL.md; echo x >> /skills/pdf/SKILL.md; echo x > /skills/pdf/new; \
         rm -f /skills/pdf/SKILL.md; chmod 777 /skills/pdf/SKILL.md; mv /skills/pdf /skills/gone; \
         mkdir /skills/new; touch /skills/pdf; \
         echo report > /data/out.txt; mkdir -p /data/sub && echo b > /data/sub/b.md; \
         printf '#!/bin/sh\\necho ran\\n' > /data/run.sh; chmod +x /data/run.sh; /data/run.sh; \
         echo done",
    );
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.starts_with(SKILL), "{out}");
    assert!(stdout.ends_with("done\n"), "{out}");
    // /data is noexec: the script was written but did not run.
    assert!(!stdout.contains("ran\n"), "{out}");
    assert!(
        out["stderr"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(r.skills.join("pdf/SKILL.md")).unwrap(),
        SKILL
    );
    let mut names: Vec<String> = std::fs::read_dir(&r.skills)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["pdf"]);
    assert!(!r.skills.join("pdf/new").exists());
    assert_eq!(
        std::fs::metadata(r.skills.join("pdf/SKILL.md"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o444
    );
    assert_eq!(
        std::fs::read_to_string(r.data.join("out.txt"))
            .map_err(|e| format!("{e}: {out}"))
            .unwrap(),
        "report\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.data.join("sub/b.md")).unwrap(),
        "b\n"
    );
    // The workspace is still the workspace.
    r.bash("echo w > w.txt");
    assert_eq!(std::fs::read_to_string(r.ws.join("w.txt")).unwrap(), "w\n");
}

#[test]
fn a_symlink_placed_in_data_does_not_lead_out_of_the_sandbox() {
    let r = rig(true);
    let out = r.bash(
        "ln -s /etc/shadow /data/sh; cat /data/sh 2>&1; ln /etc/passwd /data/pw 2>&1; echo done",
    );
    assert!(out["stdout"].as_str().unwrap().ends_with("done\n"), "{out}");
    assert!(!out["stdout"].as_str().unwrap().contains("root:"), "{out}");
    assert!(!r.data.join("pw").exists());
}

#[test]
fn without_the_roots_neither_path_exists_in_the_sandbox() {
    let r = rig(false);
    let out = r.bash("ls /skills 2>&1; echo x > /data/x 2>&1; echo done");
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.contains("No such file or directory"), "{out}");
    assert!(stdout.ends_with("done\n"), "{out}");
    assert!(!r.data.join("x").exists());
}

/// `/data` is held to `artifacts.max_total_mb`: a command that fills it
/// past the limit fails saying so, and the next one does not run until it
/// is emptied.
#[test]
fn data_past_its_limit_fails_the_command_saying_so() {
    let r = rig(true);
    let call = |command: &str| {
        tools::call(
            &r.registry,
            &r.gate,
            &r.ctx,
            "Bash",
            &serde_json::json!({ "command": command }),
            false,
        )
    };
    r.bash("head -c 500000 /dev/zero > /data/small.bin");
    let o = call("head -c 2000000 /dev/zero > /data/big.bin");
    assert_eq!(o.status, CallStatus::Error, "{}", o.output);
    assert!(o.output.to_string().contains("/data uses"), "{}", o.output);
    let o = call("echo again > w.txt");
    assert_eq!(o.status, CallStatus::Error, "{}", o.output);
    assert!(!r.ws.join("w.txt").exists());
    std::fs::remove_file(r.data.join("big.bin")).unwrap();
    r.bash("echo again > w.txt");
}

/// The delivery the worker decides for each file of /data is allowed by
/// the shipped policy exactly when the agent enables DeliverArtifacts,
/// and the collection uploads only what was allowed, byte for byte.
#[test]
fn artifact_delivery_is_decided_by_the_default_policy() {
    struct ThroughGate<'a> {
        gate: &'a PolicyGate,
        ctx: &'a SessionContext,
        uploaded: Vec<(String, Vec<u8>)>,
    }
    impl runner::artifacts::Deliver for ThroughGate<'_> {
        fn decide(&mut self, f: &protocol::policy::ArtifactFile) -> Result<(), String> {
            let r = self
                .gate
                .check(&runner::artifacts::deliver_action(f), self.ctx);
            match r.result {
                protocol::policy::DecisionResult::Allow => Ok(()),
                _ => Err(r.reasons.join("; ")),
            }
        }
        fn upload(&mut self, f: &protocol::policy::ArtifactFile, b: &[u8]) -> Result<(), String> {
            self.uploaded.push((f.path.clone(), b.to_vec()));
            Ok(())
        }
    }
    let r = rig(true);
    std::fs::write(r.data.join("r.md"), "# report\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.data.join("pw")).unwrap();
    for (enabled, delivered) in [
        (vec!["Bash", "DeliverArtifacts"], 1usize),
        (vec!["Bash"], 0),
    ] {
        let trusted = Trusted {
            agent: serde_json::json!({"name": "t", "enabled_tools": enabled, "grants": {}}),
            ..test_support::trusted()
        };
        let ctx = SessionContext::new(r.ws.clone(), trusted, SourceWork::default())
            .with_roots(r.ctx.roots.clone());
        let mut out = ThroughGate {
            gate: &r.gate,
            ctx: &ctx,
            uploaded: vec![],
        };
        let got =
            runner::artifacts::collect(&r.data, "/data", &Default::default(), &mut out).unwrap();
        assert_eq!(got.delivered.len(), delivered, "{got:?}");
        assert_eq!(out.uploaded.len(), delivered);
        if delivered == 1 {
            assert_eq!(
                out.uploaded[0],
                ("/data/r.md".to_string(), b"# report\n".to_vec())
            );
        } else {
            let why = &got
                .left_out
                .iter()
                .find(|(p, _)| p == "/data/r.md")
                .unwrap()
                .1;
            assert!(why.contains("DeliverArtifacts is not enabled"), "{why}");
        }
        assert!(got
            .left_out
            .iter()
            .any(|(p, w)| p == "/data/pw" && w.contains("symlink")));
    }
}
