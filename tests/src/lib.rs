//! Helpers shared by the end-to-end tests: find the real binaries, run them,
//! and make workspaces and policy directories.

pub mod fake_model;
pub mod fake_search;
pub mod repo_rig;

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

/// Path of a workspace binary (`runner`, `control-plane`), which
/// `cargo test --workspace` builds before any test runs. `E2E_BIN_DIR`
/// names another directory holding them (a copy that a concurrent build
/// in a shared target directory cannot replace mid-run).
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("E2E_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(target_dir);
    let p = dir.join(name);
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
    /// A user access token of [`USER`] and its refresh token (sent with
    /// every helper request; refreshed on a 401).
    tokens: std::sync::Mutex<(String, String)>,
    client_secret: String,
}

/// Whether a session view shows a state nothing leaves by itself.
pub fn terminal(v: &serde_json::Value) -> bool {
    matches!(
        v["session"]["state"].as_str(),
        Some("complete" | "error" | "cancelled")
    )
}

/// The activity types of a session view, in order.
pub fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activity"]["type"].as_str().unwrap().to_string())
        .collect()
}

/// `runner call Bash INPUT --workspace ws --config cfg` with its state in
/// `state` and `env` added: the whole JSON answer (a panic shows what the
/// runner printed when the answer is not JSON).
pub fn call_bash(
    state: &Path,
    ws: &Path,
    cfg: &Path,
    input: &serde_json::Value,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let mut cmd = Command::new(bin("runner"));
    cmd.args(["call", "--workspace"])
        .arg(ws)
        .arg("--config")
        .arg(cfg)
        .arg("Bash")
        .arg(input.to_string())
        .env("RUNNER_STATE_DIR", state);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runner call runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The user every e2e control plane has.
pub const USER: &str = "alice";
/// Her password.
pub const PASSWORD: &str = "correct horse battery staple";

impl ControlPlane {
    /// Starts one on `db` with a fast lease sweeper, adds [`USER`], and
    /// signs in as her through the OAuth flow (a confidential client).
    pub fn start(db: &Path) -> ControlPlane {
        Self::start_with(db, &[])
    }

    /// [`ControlPlane::start`] with extra flags.
    pub fn start_with(db: &Path, extra: &[&str]) -> ControlPlane {
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
                // Device sign-ins (`runner login`) poll every second.
                "--device-interval-seconds",
                "1",
            ])
            .args(extra)
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
        let mut cp = ControlPlane {
            child,
            url,
            db: db.to_path_buf(),
            tokens: std::sync::Mutex::new((String::new(), String::new())),
            client_secret: String::new(),
        };
        cp.admin(&["user-add", USER], Some(PASSWORD));
        let client = cp.admin(
            &[
                "client-add",
                "e2e",
                "--name",
                "e2e tests",
                "--confidential",
                "--redirect-uri",
                "http://127.0.0.1/cb",
            ],
            None,
        );
        let secret = client["client_secret"].as_str().unwrap().to_string();
        let code = cp.authorize(&[
            ("response_type", "code"),
            ("client_id", "e2e"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", "s1"),
        ]);
        let code = code.expect("a code");
        let r = ureq::post(&format!("{}/oauth/token", cp.url))
            .set("Authorization", &format!("Basic {}", basic("e2e", &secret)))
            .send_form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
            ]);
        let (s, b) = unpack(r);
        assert_eq!(s, 200, "{b}");
        cp.tokens = std::sync::Mutex::new((
            b["access_token"].as_str().unwrap().to_string(),
            b["refresh_token"].as_str().unwrap().to_string(),
        ));
        cp.client_secret = secret;
        cp
    }

    /// The current access token of [`USER`].
    pub fn token(&self) -> String {
        self.tokens.lock().unwrap().0.clone()
    }

    fn refresh(&self) {
        let mut t = self.tokens.lock().unwrap();
        let r = ureq::post(&format!("{}/oauth/token", self.url))
            .set(
                "Authorization",
                &format!("Basic {}", basic("e2e", &self.client_secret)),
            )
            .send_form(&[("grant_type", "refresh_token"), ("refresh_token", &t.1)]);
        let (s, b) = unpack(r);
        assert_eq!(s, 200, "refresh: {b}");
        *t = (
            b["access_token"].as_str().unwrap().to_string(),
            b["refresh_token"].as_str().unwrap().to_string(),
        );
    }

    /// Sends with the user's token, refreshing it once on a 401.
    fn authed(&self, send: impl Fn(&str) -> (u16, serde_json::Value)) -> (u16, serde_json::Value) {
        let (s, b) = send(&self.token());
        if s == 401 {
            self.refresh();
            return send(&self.token());
        }
        (s, b)
    }

    /// Runs `control-plane admin …` on this database; its JSON output.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        admin_on(&self.db, args, stdin)
    }

    /// Submits the consent form as [`USER`] (allow) with these authorization
    /// parameters; the code from the redirect.
    pub fn authorize(&self, params: &[(&str, &str)]) -> Option<String> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.extend([
            ("username", USER),
            ("password", PASSWORD),
            ("decision", "allow"),
        ]);
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let r = agent
            .post(&format!("{}/oauth/authorize", self.url))
            .send_form(&form);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("authorize: {e}"),
        };
        let u = url_query(resp.header("location")?);
        u.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v)
    }

    /// Decides a device sign-in on the verification page as [`USER`]: posts
    /// its form (`decision` `allow` or `deny`) with `user_code` as typed;
    /// (status, the page's HTML).
    pub fn verify_device(&self, user_code: &str, decision: &str) -> (u16, String) {
        let r = ureq::post(&format!("{}/oauth/device", self.url)).send_form(&[
            ("user_code", user_code),
            ("username", USER),
            ("password", PASSWORD),
            ("decision", decision),
        ]);
        match r {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
            Err(e) => panic!("verification page: {e}"),
        }
    }

    /// A new API key.
    pub fn api_key(&self) -> String {
        self.admin(&["api-key-add", "automation"], None)["api_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POSTs JSON; returns (status, body).
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, &body.to_string())
    }

    /// POSTs raw bytes as JSON; returns (status, body).
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.authed(|t| {
            unpack(
                ureq::post(&format!("{}{path}", self.url))
                    .set("Content-Type", "application/json")
                    .set("Authorization", &format!("Bearer {t}"))
                    .send_string(body),
            )
        })
    }

    /// GETs; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.authed(|t| {
            unpack(
                ureq::get(&format!("{}{path}", self.url))
                    .set("Authorization", &format!("Bearer {t}"))
                    .call(),
            )
        })
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

/// HTTP Basic credentials (RFC 6749 §2.3.1: form-encoded, then base64).
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |x: &str| url::form_urlencoded::byte_serialize(x.as_bytes()).collect::<String>();
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
}

/// The decoded query pairs of a URL.
pub fn url_query(u: &str) -> Vec<(String, String)> {
    url::Url::parse(u)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
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
    pub fn start(dir: &Path, name: &str, cp: &ControlPlane, extra: &str) -> WorkerProc {
        Self::start_with_tools(dir, name, cp, "", extra)
    }

    /// [`WorkerProc::start`] with `tools` appended to its `[tools]` section
    /// (e.g. `dirs = [...]` of custom tools).
    pub fn start_with_tools(
        dir: &Path,
        name: &str,
        cp: &ControlPlane,
        tools: &str,
        extra: &str,
    ) -> WorkerProc {
        let cfg = Self::configure(dir, name, &cp.url, tools, extra);
        let (ok, out) = Self::login(cp, &cfg);
        assert!(ok, "runner login failed: {out}");
        Self::spawn(&cfg)
    }

    /// Writes a worker config (and its token key, 0600) under `dir/name`;
    /// returns the config's path.
    pub fn configure(dir: &Path, name: &str, url: &str, tools: &str, extra: &str) -> PathBuf {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o711)).unwrap();
        let key = state.join("token.key");
        let mut k = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut k))
            .unwrap();
        std::fs::write(
            &key,
            k.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-wasm-cache");
        let cfg = state.join("worker.toml");
        let poll = if extra.contains("poll_interval_ms") {
            ""
        } else {
            "poll_interval_ms = 100\n"
        };
        std::fs::write(
            &cfg,
            format!(
                "state_dir = {:?}\n[tools]\ncache_dir = {:?}\n{tools}\n[auth]\nkey = {{ file = {:?} }}\n[worker]\ncontrol_plane = {url:?}\nworkspace = \"w\"\nagent_profile = \"p\"\ndisplay_name = {name:?}\n{poll}heartbeat_interval_ms = 500\n{extra}",
                state.display().to_string(),
                cache.display().to_string(),
                key.display().to_string(),
            ),
        )
        .unwrap();
        cfg
    }

    /// `runner login --device` for `cfg`, allowing access as [`USER`] on
    /// the verification page with the code it prints; (success, what it
    /// printed on stderr).
    pub fn login(cp: &ControlPlane, cfg: &Path) -> (bool, String) {
        use std::io::{BufRead, Read};
        let mut c = Command::new(bin("runner"))
            .args(["login", "--device", "--config", cfg.to_str().unwrap()])
            .env("RUNNER_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if !line.starts_with("http") {
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            let _ = c.wait();
            return (false, err);
        }
        let code = url_query(line.trim())
            .into_iter()
            .find(|(k, _)| k == "user_code")
            .map(|(_, v)| v)
            .expect("verification_uri_complete has the user code");
        let (status, page) = cp.verify_device(&code, "allow");
        assert_eq!(status, 200, "{page}");
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (c.wait().unwrap().success(), err)
    }

    /// Starts `runner worker --config cfg`.
    pub fn spawn(cfg: &Path) -> WorkerProc {
        let child = Command::new(bin("runner"))
            .args(["worker", "--config", cfg.to_str().unwrap()])
            .env("RUNNER_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("runner worker starts");
        WorkerProc {
            child,
            state: cfg.parent().unwrap().to_path_buf(),
        }
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

/// Runs `control-plane --db DB admin ARGS` (`stdin`: a line to give it, such
/// as a password); its JSON output. Panics when it fails.
pub fn admin_on(db: &Path, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    use std::io::Write;
    let mut c = Command::new(bin("control-plane"))
        .args(["--db", db.to_str().unwrap(), "admin"])
        .args(args)
        .env("CONTROL_PLANE_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        writeln!(c.stdin.take().unwrap(), "{s}").unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "admin {args:?} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}
