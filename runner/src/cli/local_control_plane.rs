//! The `control-plane` binary as `runner up`'s child process: started on a
//! database in the state directory, asked for the worker's tokens, stopped
//! when `runner up` ends. Running it as a separate binary keeps the worker
//! free of the control plane's HTTP server, SQLite and password hashing.

use anyhow::Context;
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The OAuth client id the control plane registers for workers.
pub(super) const RUNNER_CLIENT: &str = "runner";

/// Names the control-plane binary to run instead of the one beside `runner`.
const BINARY_ENV: &str = "RUNNER_CONTROL_PLANE_BIN";

/// How long the control plane may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Tokens the control plane issued for the local user.
#[derive(Clone, Deserialize)]
pub(super) struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// A running control plane; stopped (SIGINT, then SIGKILL) when dropped.
pub(super) struct LocalControlPlane {
    child: Child,
    /// `http://ADDR` it serves on.
    pub url: String,
    /// The worker's sign-in.
    pub issued: Issued,
    /// A one-time link (a path) that signs the local user in to the web
    /// pages; `None` when the control plane could not make one.
    pub web_link: Option<String>,
}

/// A one-time sign-in link to the web pages for the local user (made if
/// missing); the demo works without it, so a failure is only a note.
fn web_link(bin: &Path, db: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Link {
        path: String,
    }
    let out = Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(["admin", "web-link", "local", "--create"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "note: no sign-in link to the web pages: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    serde_json::from_slice::<Link>(&out.stdout)
        .ok()
        .map(|l| l.path)
}

/// Starts the control plane on `<state>/control-plane.db`, listening on
/// `listen`, and issues the local worker's tokens.
pub(super) fn start(state: &Path, listen: &str) -> anyhow::Result<LocalControlPlane> {
    let bin = binary()?;
    let db = state.join("control-plane.db");
    let out = Command::new(&bin)
        .arg("--db")
        .arg(&db)
        .args(["admin", "issue-tokens", "local", "--client", RUNNER_CLIENT])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} could not issue the worker's tokens: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let issued: Issued = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{} printed no tokens; is it the control-plane of this build?",
            bin.display()
        )
    })?;

    let web_link = web_link(&bin, &db);

    let mut cmd = Command::new(&bin);
    cmd.arg("--db")
        .arg(&db)
        .args([
            "--listen",
            listen,
            "--max-attempts",
            "3",
            "--sweep-ms",
            "500",
        ])
        // Its log in the format of `runner up`'s own.
        .args(["--log-format", super::logging::format_name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Its own process group: a Ctrl-C at the terminal reaches `runner up`
    // alone, whose worker drains its sessions while the control plane still
    // answers; the control plane is stopped after that (on drop).
    cmd.process_group(0);
    if std::env::var_os("CONTROL_PLANE_LOG").is_none() {
        cmd.env("CONTROL_PLANE_LOG", "warn");
    }
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    // The control plane must not outlive `runner up`, even when it is killed.
    // (The signal follows the spawning thread: `start` runs on the main one.)
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from the control plane")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep draining so the control plane never blocks on a full pipe.
        for _ in lines {}
    });
    let mut cp = LocalControlPlane {
        child,
        url: String::new(),
        issued,
        web_link,
    };
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) => line,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let status = cp
                .child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            anyhow::bail!(
                "the control plane exited before it listened ({status}); its error is above (is {listen} free?)"
            )
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => anyhow::bail!(
            "the control plane did not start within {}s (is {listen} free?)",
            START_TIMEOUT.as_secs()
        ),
    };
    cp.url = line
        .strip_prefix("listening on ")
        .filter(|u| u.starts_with("http://"))
        .with_context(|| format!("unexpected first line from the control plane: {line:?}"))?
        .to_string();
    Ok(cp)
}

/// `$RUNNER_CONTROL_PLANE_BIN`, else `control-plane` beside this binary,
/// else on `PATH` (absolute entries only: an empty or relative entry would
/// name whatever the current directory holds).
fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(BINARY_ENV) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot locate the runner binary")?;
    if let Some(beside) = exe.parent().map(|d| d.join("control-plane")) {
        if executable(&beside) {
            return Ok(beside);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
            let p = dir.join("control-plane");
            if executable(&p) {
                return Ok(p);
            }
        }
    }
    anyhow::bail!(
        "cannot find the control-plane binary beside {} or on PATH; build it \
         (`cargo build -p control-plane`) or set {BINARY_ENV}=/path/to/control-plane",
        exe.display()
    )
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Drop for LocalControlPlane {
    fn drop(&mut self) {
        // SIGINT is the control plane's graceful shutdown.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
