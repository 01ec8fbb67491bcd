//! `runner run` end to end: the real `control-plane`, a `runner worker`
//! with the fake OpenAI-compatible model, and `runner run` as a child
//! process. An agent of the team is named on the command line; the runs
//! end in a terminal state with `trigger: CLI`, run as the agent, and
//! the exit code says how each ended.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::repo_rig::{Rig, MODEL_KEY, REPO};
use e2e::WorkerProc;
use serde_json::json;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// `runner run ARGS` with these environment variables (and no API key
/// unless one is given): (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = command(args, env).output().expect("runner run starts");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut c = std::process::Command::new(e2e::bin("runner"));
    c.arg("run")
        .args(args)
        .env_remove("RUNNER_API_KEY")
        .env("RUNNER_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The one line `runner run` prints on stdout: the session id.
fn session_id(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line, the session id: {stdout:?}");
    assert!(lines[0].starts_with("ses_"), "{stdout:?}");
    lines[0].to_string()
}

/// Creates an agent of alice's team once the worker has reported the
/// fake model (until then the model is unknown: 400); its id.
fn create_agent(rig: &Rig, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, b) = rig.cp.post(
            "/api/v1/cloud/agents",
            &json!({"name": name, "model": "fake-coder", "system": "You answer briefly."}),
        );
        if s == 201 {
            return b["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "{s} {b}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config_of(dir: &Path, name: &str) -> String {
    dir.join(name)
        .join("worker.toml")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn cli_runs_end_in_their_terminal_state_as_the_agent_with_trigger_cli_and_the_exit_code_says_how() {
    let rig = Rig::start();
    let fake = FakeModel::start(
        Wire::OpenAi,
        MODEL_KEY,
        vec![
            // 1: followed with an API key: complete.
            Step::Text("Hello from the agent.".into()),
            // 2: followed with the stored sign-in: the provider refuses.
            Step::Error(400, None),
            // 3: followed, then cancelled while the model thinks.
            Step::Hang,
            // 4: by id, not followed.
            Step::Text("Done without anyone watching.".into()),
        ],
    );
    let (_w, _log) = rig.worker("w1", Some(&fake));
    let key = rig
        .cp
        .admin(&["api-key-add", "cli", "--user", e2e::USER], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let env = [("RUNNER_API_KEY", key.as_str())];
    let agent = create_agent(&rig, "cli-coder");
    let worker_cfg = config_of(rig.dir.path(), "w1");

    // 1. By name, on the repository, followed: exit 0 once complete.
    let repository = rig.git.url(REPO);
    let (code, out, err) = run(
        &[
            "--agent",
            "cli-coder",
            "--config",
            &worker_cfg,
            "--repo",
            &repository,
            "--ref",
            "main",
            "--follow",
            "Say hello\n\nBriefly, please.",
        ],
        &env,
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let id = session_id(&out);
    assert!(err.contains("state          queued → active"), "{err}");
    assert!(err.contains(&format!("{id} complete")), "{err}");
    let v = rig.cp.session(&id);
    let s = &v["session"];
    assert_eq!(s["state"], "complete", "{v}");
    assert_eq!(s["trigger"], "CLI", "{v}");
    assert_eq!(
        s["run_as"],
        format!("user:{}", e2e::USER),
        "a person's key runs as its user: {v}"
    );
    assert_eq!(s["agent_id"], agent.as_str(), "{v}");
    assert_eq!(s["agent"]["version"], 1, "{v}");
    assert_eq!(s["agent"]["system_prompt"], "You answer briefly.", "{v}");
    assert_eq!(s["source"]["title"], "Say hello", "{v}");
    assert_eq!(
        s["source"]["prompt"], "Say hello\n\nBriefly, please.",
        "{v}"
    );
    assert_eq!(s["repo"]["repository"], repository.as_str(), "{v}");
    assert_eq!(s["repo"]["ref"], "main", "{v}");
    assert!(fake
        .user_text(&fake.requests()[0])
        .contains("Briefly, please."));

    // 2. With the stored sign-in of another config (no key), followed:
    // the model fails the session, exit 1.
    let cli_cfg = WorkerProc::configure(rig.dir.path(), "cli", &rig.cp.url, "", "");
    let (ok, out) = WorkerProc::login(&rig.cp, &cli_cfg);
    assert!(ok, "login: {out}");
    let (code, out, err) = run(
        &[
            "--agent",
            "cli-coder",
            "--config",
            cli_cfg.to_str().unwrap(),
            "--follow",
            "Fail, please",
        ],
        &[],
    );
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let id = session_id(&out);
    assert!(err.contains(&format!("{id} error")), "{err}");
    let v = rig.cp.session(&id);
    assert_eq!(v["session"]["state"], "error", "{v}");
    assert_eq!(v["session"]["trigger"], "CLI", "{v}");
    assert_eq!(v["session"]["run_as"], format!("user:{}", e2e::USER), "{v}");

    // 3. Followed, and cancelled while the model hangs: exit 3.
    let log = rig.dir.path().join("run3.err");
    let mut child = command(
        &[
            "--agent",
            "cli-coder",
            "--control-plane",
            &rig.cp.url,
            "--workspace",
            "w",
            "--profile",
            "p",
            "--follow",
            "Think forever",
        ],
        &env,
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id = line.trim().to_string();
    assert!(id.starts_with("ses_"), "{line:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.requests().len() < 3 {
        assert!(Instant::now() < deadline, "the model was never asked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, b) = rig
        .cp
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}));
    assert_eq!(s, 200, "{b}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "runner run did not end after the cancel: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("{id} cancelled")), "{err}");
    assert_eq!(rig.cp.session(&id)["session"]["trigger"], "CLI");

    // 4. By id, not followed: exit 0 at once; the run still ends complete.
    let (code, out, err) = run(
        &["--agent", &agent, "--config", &worker_cfg, "Quietly"],
        &env,
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let id = session_id(&out);
    let v = rig.cp.wait_for(&id, 120, e2e::terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(v["session"]["trigger"], "CLI", "{v}");
    assert_eq!(v["session"]["agent_id"], agent.as_str(), "{v}");

    // No such agent: exit 2, naming what there is; nothing queued.
    let (_, before) = rig.cp.get("/v1/sessions");
    let (code, out, err) = run(
        &["--agent", "nope", "--config", &worker_cfg, "--follow", "x"],
        &env,
    );
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no agent named nope in your team; list: cli-coder"),
        "{err}"
    );
    // Two of one name: exit 2, listing both ids.
    let twins = [create_agent(&rig, "twin"), create_agent(&rig, "twin")];
    let (code, _, err) = run(&["--agent", "twin", "--config", &worker_cfg, "x"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 agents are named twin") && twins.iter().all(|t| err.contains(t.as_str())),
        "{err}"
    );
    // A key the control plane does not know: refused, exit 2.
    let (code, _, err) = run(
        &["--agent", "cli-coder", "--config", &worker_cfg, "x"],
        &[("RUNNER_API_KEY", "rk_not_a_key_of_this_control_plane")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refused"), "{err}");
    // No credential at all: exit 2, saying both ways.
    let bare = WorkerProc::configure(rig.dir.path(), "bare", &rig.cp.url, "", "");
    let (code, _, err) = run(
        &[
            "--agent",
            "cli-coder",
            "--config",
            bare.to_str().unwrap(),
            "x",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("RUNNER_API_KEY") && err.contains("runner login"),
        "{err}"
    );
    let (_, after) = rig.cp.get("/v1/sessions");
    assert_eq!(
        before.as_array().map(Vec::len),
        after.as_array().map(Vec::len),
        "a refused run queues nothing"
    );
}
