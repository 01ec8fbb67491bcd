//! The process sandbox: how Bash (and any subprocess) runs.
//!
//! Defence in depth — the policy decided the command may run and with which
//! confinement; this module makes sure that, whatever the command does, it
//! cannot reach past that confinement:
//! - new user, pid, mount, net, ipc and uts namespaces; a fresh /proc; its
//!   own session; it dies with the runner ([`helper`]);
//! - Landlock: read + execute on the readable roots, read-write only on the
//!   workspace and a private /tmp, no TCP at all ([`landlock`]);
//! - protected paths bound read-only, a minimal /dev ([`mounts`]);
//! - no capabilities, no_new_privs, rlimits ([`privileges`]);
//! - a seccomp filter ([`seccomp`]);
//! - a wall-clock timeout that kills the whole pid namespace, capped
//!   output, a scrubbed environment (here).
//!
//! Network: mode `none` is a namespace with loopback only; mode `proxy`
//! adds one way out, the runner's [`proxy`], which decides every connection.

pub(crate) mod cgroup;
pub(crate) mod dns_stub;
pub mod helper;
pub(crate) mod landlock;
pub(crate) mod mounts;
pub(crate) mod notes;
pub(crate) mod privileges;
pub mod proxy;
pub(crate) mod seccomp;
pub(crate) mod spec;

pub use spec::{Bind, Limits, SandboxSpec};

use crate::sandbox::beneath::Beneath;
use crate::sandbox::git_guard;

use serde::Serialize;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why a command did not end on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KilledBy {
    /// The wall-clock limit ran out.
    Timeout,
    /// A signal (CPU limit, memory, …).
    Signal,
    /// The runner cancelled it (the session's claim was lost, or shutdown).
    Cancelled,
    /// The workspace grew past `sandbox.limits.workspace_mb`.
    WorkspaceFull,
}

/// What a sandboxed command did.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxOutput {
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// Standard output, up to the cap.
    pub stdout: String,
    /// Standard error, up to the cap.
    pub stderr: String,
    /// Either stream was cut at the cap.
    pub truncated: bool,
    /// Wall-clock time.
    pub duration_ms: u64,
    /// From the call to the command's exec inside the sandbox (checks,
    /// helper start, namespaces, Landlock, seccomp): the sandbox's start-up
    /// cost, for the metrics; `None` when the command never started.
    #[serde(skip)]
    pub spawn: Option<Duration>,
    /// Set when the command did not end on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<KilledBy>,
    /// The command's tree reached its cgroup memory ceiling
    /// (`sandbox.limits.tree_memory_mb`) and the kernel killed part of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub out_of_memory: bool,
    /// Protected entries the command created (a hook, a nested
    /// repository's config, a planted `.git` file, a `.bashrc` where there
    /// was none): removed afterwards, and listed here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_protected: Vec<String>,
    /// Protected entries the command changed or removed (through a copied
    /// `.git`, say): put back as they were, and listed here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored_protected: Vec<String>,
    /// When the sandbox was why something failed (no network, a protected
    /// path, a limit): one sentence each, naming the setting that would
    /// change it (see the `notes` module). Absent when there is nothing
    /// to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sandbox_notes: Vec<String>,
}

/// The sandbox could not be built; nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The helper could not be started.
    #[error(
        "cannot start the sandbox helper {path}: {source}; install `runner-sandbox` beside `runner` (both are built by `cargo build --release -p runner`)"
    )]
    Spawn {
        /// Where the `runner-sandbox` helper was looked for.
        path: PathBuf,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// A setup step inside the sandbox failed.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// Protected state (git's, or a protected path) could not be checked or
    /// put back after the command: the call fails rather than leave
    /// something behind that runs on the host.
    #[error("the workspace's protected state is not as it was: {0}; inspect the workspace before running git in it")]
    Protection(String),
    /// The workspace grew past its limit during the command.
    #[error("the workspace uses {used_mb} MiB, more than sandbox.limits.workspace_mb = {limit_mb} MiB; no command runs in it (one that makes it grow past the limit is stopped) until the operator removes files from it or raises the limit")]
    WorkspaceFull {
        /// MiB in use after the command.
        used_mb: u64,
        /// The limit, MiB.
        limit_mb: u64,
    },
    /// A writable session root (`/data`) holds more than its limit.
    #[error("{at} uses {used_mb} MiB, more than its limit of {limit_mb} MiB (artifacts.max_total_mb); remove files from it before writing more")]
    RootFull {
        /// The root's inside path.
        at: String,
        /// MiB in use.
        used_mb: u64,
        /// The limit, MiB.
        limit_mb: u64,
    },
}

/// How long after `called_ns` the helper said it started the command.
fn started_after(status: &str, called_ns: u64) -> Option<Duration> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(helper::STATUS_STARTED))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map(|at| Duration::from_nanos(at.saturating_sub(called_ns)))
}

/// Runs commands in the sandbox, through the helper binary.
#[derive(Debug, Clone)]
pub struct ProcessSandbox {
    helper: PathBuf,
}

/// File name of the dedicated helper binary.
pub const HELPER_NAME: &str = "runner-sandbox";

/// The helper of a runner at `runner_binary`: `runner-sandbox`, installed
/// beside it.
pub fn helper_beside(runner_binary: &Path) -> PathBuf {
    runner_binary.with_file_name(HELPER_NAME)
}

impl ProcessSandbox {
    /// A sandbox whose helper is the `runner-sandbox` binary at `helper`.
    pub fn new(helper: PathBuf) -> Self {
        ProcessSandbox { helper }
    }

    /// Runs `spec` with the wall-clock limit `timeout`.
    pub fn run(
        &self,
        spec: &SandboxSpec,
        timeout: Duration,
    ) -> Result<SandboxOutput, SandboxError> {
        self.run_cancellable(spec, timeout, &crate::cancel::Cancel::never())
    }

    /// Runs `spec` with the wall-clock limit `timeout`; when `cancel` fires
    /// the whole sandbox is killed at once (within about 20 ms).
    pub fn run_cancellable(
        &self,
        spec: &SandboxSpec,
        timeout: Duration,
        cancel: &crate::cancel::Cancel,
    ) -> Result<SandboxOutput, SandboxError> {
        let called_ns = helper::monotonic_ns();
        check_workspace_reachable(
            &spec.workspace,
            (spec.uid, spec.gid),
            "the workspace",
            crate::sandbox::reach::Need::Above,
        )
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
        check_roots_reachable(spec)?;
        let beneath = Beneath::open(&spec.workspace).map_err(|e| {
            SandboxError::Setup(format!(
                "cannot open the workspace {}: {e}",
                spec.workspace.display()
            ))
        })?;
        give_to_sandbox_user(&beneath, spec.uid, spec.gid)?;
        // A workspace already past its size limit runs nothing more.
        let limit = spec.limits.workspace_mb.saturating_mul(1 << 20);
        check_size(&beneath, &spec.limits)?;
        check_binds_size(spec)?;
        // What git's state and the protected paths are before the command:
        // afterwards they are made so again, whatever the command did.
        let hidden = hidden_set(&spec.hidden_globs)?;
        let protected = spec.read_only.clone();
        let before = git_guard::scan_hiding(&beneath, &protected, hidden.as_ref())
            .map_err(|e| SandboxError::Setup(e.to_string()))?;
        let mut spec = spec.clone();
        spec.read_only = before.roots().map(Path::to_path_buf).collect();
        spec.hidden = before.hidden().to_vec();
        let spec = &spec;
        let spec_json =
            serde_json::to_string(spec).map_err(|e| SandboxError::Setup(e.to_string()))?;
        let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| SandboxError::Setup(format!("pipe: {e}")))?;
        let status_w_raw = std::os::fd::AsRawFd::as_raw_fd(&status_w);
        let mut cmd = Command::new(&self.helper);
        cmd.arg(spec_json)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The command's own cgroup (when the host delegates cgroup v2): the
        // helper moves into it before exec, so its whole tree is inside.
        let group = cgroup::CommandGroup::create(&spec.limits).map_err(SandboxError::Setup)?;
        let procs = group.as_ref().map(|g| g.procs().clone());
        // SAFETY: dup2, open, write and close are async-signal-safe; this
        // puts the status pipe on fd 3 (without CLOEXEC) in the child only,
        // and moves the child into its cgroup.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(status_w_raw, helper::STATUS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(procs) = &procs {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            path: self.helper.clone(),
            source,
        })?;
        drop(status_w);
        let pid = child.id() as i32;
        let cap = spec.limits.output_bytes;
        let out = capture(child.stdout.take(), cap);
        let err = capture(child.stderr.take(), cap);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let deadline = start + timeout;
        // The workspace's size is looked at while the command runs too, at
        // most every second and never more than a twentieth of the time:
        // past the limit the command is killed (and the call fails below).
        let mut next_size_check = start + Duration::from_secs(1);
        let waited = loop {
            let now = Instant::now();
            if cancel.is_cancelled() {
                break Err(KilledBy::Cancelled);
            }
            if now >= next_size_check {
                let t = Instant::now();
                // A size that cannot be measured counts as too large.
                let over = beneath.usage().map(|u| u > limit).unwrap_or(true);
                next_size_check = Instant::now() + (t.elapsed() * 20).max(Duration::from_secs(1));
                if over {
                    break Err(KilledBy::WorkspaceFull);
                }
            }
            if now >= deadline {
                break Err(KilledBy::Timeout);
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            match rx.recv_timeout(slice) {
                Ok(s) => break Ok(s),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Ok(Err(std::io::Error::other("wait thread ended")))
                }
            }
        };
        let (status, killed_by) = match waited {
            Ok(s) => (s.ok(), None),
            Err(why) => {
                // The helper leads its own process group, with the sandbox's
                // pid 1 in it: SIGKILL from here reaches pid 1, and when pid 1
                // dies the kernel kills everything in its pid namespace.
                // SAFETY: signalling our own child's process group.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
                (rx.recv().ok().and_then(|s| s.ok()), Some(why))
            }
        };
        let mut status_text = String::new();
        let _ = std::fs::File::from(status_r).read_to_string(&mut status_text);
        if let Some(msg) = status_text.lines().find_map(|l| l.strip_prefix("error ")) {
            return Err(SandboxError::Setup(msg.to_string()));
        }
        let (stdout, t1) = out.join().unwrap_or_default();
        let (stderr, t2) = err.join().unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let exit_code = match status {
            Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)),
            None => -1,
        };
        let killed_by =
            killed_by.or((exit_code > 128 && exit_code < 160).then_some(KilledBy::Signal));
        let out_of_memory = group.as_ref().is_some_and(|g| g.oom_killed());
        drop(group);
        let duration_ms = start.elapsed().as_millis() as u64;
        // Whatever could be seen is put back, even when part of the
        // workspace could not be looked at; then that is the call's error.
        let (now, unseen) = git_guard::survey(&beneath, &protected, None);
        let restored = before.restore(&beneath, &now).map_err(|e| {
            SandboxError::Protection(format!(
                "the command changed protected paths and they could not be put back: {e}"
            ))
        })?;
        if !unseen.is_empty() {
            return Err(SandboxError::Protection(format!(
                "after the command ran, part of the workspace could not be checked ({}); what could be seen was put back",
                unseen.join("; ")
            )));
        }
        check_size(&beneath, &spec.limits)?;
        check_binds_size(spec)?;
        let mut out = SandboxOutput {
            exit_code,
            stdout,
            stderr,
            truncated: t1 || t2,
            duration_ms,
            spawn: started_after(&status_text, called_ns),
            killed_by,
            out_of_memory,
            removed_protected: restored.removed,
            restored_protected: restored.restored,
            sandbox_notes: Vec::new(),
        };
        let lookups = notes::Lookups::from_status(&status_text);
        let facts = notes::Run {
            spec,
            protected: &protected,
            hidden: hidden.as_ref(),
            timeout,
            lookups: &lookups,
        };
        out.sandbox_notes = notes::for_run(&facts, &out);
        Ok(out)
    }
}

/// Fails when a writable session root holds more than its limit (measured
/// through descriptors, like the workspace).
fn check_binds_size(spec: &SandboxSpec) -> Result<(), SandboxError> {
    for b in spec.binds.iter().filter(|b| b.writable && b.limit_mb > 0) {
        let used = Beneath::open(&b.host)
            .and_then(|r| r.usage())
            .map_err(|e| SandboxError::Setup(format!("cannot measure {}: {e}", b.at.display())))?;
        if used > b.limit_mb.saturating_mul(1 << 20) {
            return Err(SandboxError::RootFull {
                at: b.at.display().to_string(),
                used_mb: used >> 20,
                limit_mb: b.limit_mb,
            });
        }
    }
    Ok(())
}

/// Fails when the workspace is larger than `sandbox.limits.workspace_mb`.
fn check_size(b: &Beneath, limits: &Limits) -> Result<(), SandboxError> {
    let used = b
        .usage()
        .map_err(|e| SandboxError::Setup(format!("cannot measure the workspace: {e}")))?;
    if used > limits.workspace_mb.saturating_mul(1 << 20) {
        return Err(SandboxError::WorkspaceFull {
            used_mb: used >> 20,
            limit_mb: limits.workspace_mb,
        });
    }
    Ok(())
}

/// The hidden-path globs as one matcher (`None` when there are none).
fn hidden_set(globs: &[String]) -> Result<Option<globset::GlobSet>, SandboxError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                SandboxError::Setup(format!(
                    "the policy's hidden path {g:?} is not a glob ({e}); fix the policy's hidden_paths"
                ))
            })?;
        b.add(glob);
    }
    b.build()
        .map(Some)
        .map_err(|e| SandboxError::Setup(format!("hidden paths: {e}")))
}

/// Reads a stream to its end, keeping at most `cap` bytes (the rest is
/// drained so the writer never blocks).
fn capture<R: Read + Send + 'static>(
    stream: Option<R>,
    cap: usize,
) -> std::thread::JoinHandle<(String, bool)> {
    std::thread::spawn(move || {
        let Some(mut s) = stream else {
            return (String::new(), false);
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut truncated = false;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    if n > room {
                        truncated = true;
                    }
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        (String::from_utf8_lossy(&kept).into_owned(), truncated)
    })
}

/// The sandbox user must be able to walk down to the workspace: every
/// directory above it must let that uid pass. Directories under /tmp are
/// exempt: the sandbox recreates that path in its private /tmp. `what`
/// names the path in the message (`the workspace`,
/// `worker.workspaces_dir`); `need` is [`Need::Above`] for a workspace
/// (it is given to the sandbox user) and [`Need::Pass`] for the directory
/// that holds the workspaces.
///
/// [`Need::Above`]: crate::sandbox::reach::Need::Above
/// [`Need::Pass`]: crate::sandbox::reach::Need::Pass
pub fn check_workspace_reachable(
    workspace: &Path,
    (uid, gid): (u32, u32),
    what: &str,
    need: crate::sandbox::reach::Need,
) -> Result<(), crate::sandbox::reach::Unreachable> {
    if workspace.starts_with("/tmp") {
        return Ok(());
    }
    crate::sandbox::reach::check(workspace, uid, gid, what, need)
}

/// Every readable root the sandbox binds in must be reachable by its user,
/// or it would silently be missing inside (and the command fail with "not
/// found"). Roots that do not exist are left out as the mount setup leaves
/// them out; `/` (an allow-everything policy) is taken apart there, so the
/// closed directories it holds only stay closed.
fn check_roots_reachable(spec: &SandboxSpec) -> Result<(), SandboxError> {
    for root in &spec.readable {
        if root == Path::new("/")
            || mounts::never_bound(root)
            || root.starts_with(&spec.workspace)
            || std::fs::symlink_metadata(root).is_err()
        {
            continue;
        }
        crate::sandbox::reach::check(
            root,
            spec.uid,
            spec.gid,
            "the readable root",
            crate::sandbox::reach::Need::Above,
        )
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
    }
    Ok(())
}

/// The sandbox's root is an unprivileged uid outside; it must own the
/// workspace to write it. Only the runner running as root can (and needs
/// to) change owners; otherwise the sandbox maps to the runner's own uid.
/// The walk goes through descriptors and never follows a symlink.
fn give_to_sandbox_user(b: &Beneath, uid: u32, gid: u32) -> Result<(), SandboxError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let owned = rustix::fs::fstat(b.fd())
        .map(|st| st.st_uid == uid && st.st_gid == gid)
        .unwrap_or(false);
    if owned {
        return Ok(());
    }
    b.chown_tree(uid, gid).map_err(|e| {
        SandboxError::Setup(format!(
            "cannot give the workspace to the sandbox user (uid {uid}): {e}"
        ))
    })
}

/// The uid/gid the sandbox's root maps to outside: the configured one when
/// the runner is root, else the runner's own (all an unprivileged user
/// namespace can map).
pub fn sandbox_ids(configured_uid: u32, configured_gid: u32) -> (u32, u32) {
    // SAFETY: geteuid/getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == 0 {
        (configured_uid, configured_gid)
    } else {
        (euid, egid)
    }
}
