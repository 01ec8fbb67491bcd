//! Helpers shared by the end-to-end tests: find the real binaries, run them,
//! and make workspaces and policy directories.

pub mod fake_model;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace's target directory of the running test binary.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary (`runner`, later `control-plane`), which
/// `cargo test --workspace` builds before any test runs.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test.sh does) before `cargo test -p e2e`",
        p.display()
    );
    p
}

/// Result of running the runner binary.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `runner ARGS` with a private state directory.
pub fn runner(state: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(bin("runner"))
        .args(args)
        .env("RUNNER_STATE_DIR", state)
        .env_remove("RUNNER_LOG")
        .output()
        .expect("runner starts");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temporary workspace with a couple of files.
pub fn workspace() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(d.path()).unwrap().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("README.md"), "# demo\n").unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    (d, ws)
}

/// A directory of policy files with safe permissions.
pub fn policy_dir(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// The repository's shipped `policies/` directory.
pub fn shipped_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// A `control-plane` process on a free loopback port; killed on drop.
pub struct ControlPlane {
    child: std::process::Child,
    /// Its base URL.
    pub url: String,
    /// Its database file.
    pub db: PathBuf,
}

impl ControlPlane {
    /// Starts one on `db` with a fast lease sweeper.
    pub fn start(db: &Path) -> ControlPlane {
        use std::io::BufRead;
        let mut child = Command::new(bin("control-plane"))
            .args([
                "--db",
                db.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--sweep-ms",
                "100",
                "--max-attempts",
                "3",
            ])
            .env("CONTROL_PLANE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("control-plane starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("address line")
            .to_string();
        ControlPlane {
            child,
            url,
            db: db.to_path_buf(),
        }
    }

    /// POSTs JSON; returns (status, body).
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, &body.to_string())
    }

    /// POSTs raw bytes as JSON; returns (status, body).
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = ureq::post(&format!("{}{path}", self.url))
            .set("Content-Type", "application/json")
            .send_string(body);
        unpack(r)
    }

    /// GETs; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        unpack(ureq::get(&format!("{}{path}", self.url)).call())
    }

    /// Queues a scripted session; returns its id.
    pub fn queue(&self, title: &str, script: serde_json::Value) -> String {
        let (s, b) = self.post(
            "/v1/sessions",
            &serde_json::json!({
                "workspace": "w", "agent_profile": "p",
                "agent": {"name": "t", "model": "script", "enabled_tools": ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "List", "WebFetch"]},
                "source": {"title": title},
                "script": script,
            }),
        );
        assert_eq!(s, 200, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// Queues a model-driven session pinned to `model` with these enabled
    /// tools and this untrusted work; returns its id.
    pub fn queue_model(
        &self,
        model: &str,
        enabled_tools: &[&str],
        source: serde_json::Value,
    ) -> String {
        let (s, b) = self.post(
            "/v1/sessions",
            &serde_json::json!({
                "workspace": "w", "agent_profile": "p",
                "agent": {"name": "coder", "model": model, "enabled_tools": enabled_tools,
                          "system_prompt": "You fix small programs. Keep changes minimal."},
                "source": source,
            }),
        );
        assert_eq!(s, 200, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// A session's view (session, activities, transitions).
    pub fn session(&self, id: &str) -> serde_json::Value {
        let (s, b) = self.get(&format!("/v1/sessions/{id}"));
        assert_eq!(s, 200, "{b}");
        b
    }

    /// Waits until `f` holds for the session, up to `secs`.
    pub fn wait_for(
        &self,
        id: &str,
        secs: u64,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let v = self.session(id);
            if f(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < until,
                "timed out waiting on {id}: {v}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn unpack(r: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match r {
        Ok(resp) => (resp.status(), body_json(resp)),
        Err(ureq::Error::Status(code, resp)) => (code, body_json(resp)),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn body_json(resp: ureq::Response) -> serde_json::Value {
    let text = resp.into_string().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `runner worker` process; killed on drop.
pub struct WorkerProc {
    /// The process.
    pub child: std::process::Child,
    /// Its state directory.
    pub state: PathBuf,
}

impl WorkerProc {
    /// Starts `runner worker` against `url` with its own state directory
    /// under `dir`; `extra` is appended to its `[worker]` section.
    pub fn start(dir: &Path, name: &str, url: &str, extra: &str) -> WorkerProc {
        Self::start_with_tools(dir, name, url, "", extra)
    }

    /// [`WorkerProc::start`] with `tools` appended to its `[tools]` section
    /// (e.g. `dirs = [...]` of custom tools).
    pub fn start_with_tools(
        dir: &Path,
        name: &str,
        url: &str,
        tools: &str,
        extra: &str,
    ) -> WorkerProc {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o711)).unwrap();
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-wasm-cache");
        let cfg = state.join("worker.toml");
        std::fs::write(
            &cfg,
            format!(
                "state_dir = {:?}\n[tools]\ncache_dir = {:?}\n{tools}\n[worker]\ncontrol_plane = {url:?}\nworkspace = \"w\"\nagent_profile = \"p\"\ndisplay_name = {name:?}\npoll_interval_ms = 100\nheartbeat_interval_ms = 500\n{extra}",
                state.display().to_string(),
                cache.display().to_string()
            ),
        )
        .unwrap();
        let child = Command::new(bin("runner"))
            .args(["worker", "--config", cfg.to_str().unwrap()])
            .env("RUNNER_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("runner worker starts");
        WorkerProc { child, state }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for exit up to `secs`; the exit status, or None on timeout.
    pub fn wait(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
