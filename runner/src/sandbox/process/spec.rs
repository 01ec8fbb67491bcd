//! What one sandboxed run is: the command, where, and the confinement and
//! limits it runs under. The runner builds it from the decision; the helper
//! (`runner-sandbox`) receives it as JSON and applies it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Resource limits of one sandboxed process tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    #[serde(default = "d_cpu")]
    pub cpu_seconds: u64,
    /// Address space per process, MiB (RLIMIT_AS).
    #[serde(default = "d_mem")]
    pub memory_mb: u64,
    /// Largest file a process may write, MiB (RLIMIT_FSIZE).
    #[serde(default = "d_fsize")]
    pub file_size_mb: u64,
    /// Open files per process (RLIMIT_NOFILE).
    #[serde(default = "d_nofile")]
    pub open_files: u64,
    /// Processes of the sandbox user (RLIMIT_NPROC): stops fork bombs.
    #[serde(default = "d_nproc")]
    pub processes: u64,
    /// Bytes kept of stdout and of stderr each; the rest is dropped and
    /// `truncated` set.
    #[serde(default = "d_output")]
    pub output_bytes: usize,
    /// Wall-clock limit when the call gives none, milliseconds.
    #[serde(default = "d_timeout")]
    pub default_timeout_ms: u64,
    /// Largest wall-clock limit a call may ask for, milliseconds.
    #[serde(default = "d_max_timeout")]
    pub max_timeout_ms: u64,
    /// Size of the private /tmp, MiB.
    #[serde(default = "d_tmp")]
    pub tmp_mb: u64,
}

fn d_cpu() -> u64 {
    300
}
fn d_mem() -> u64 {
    4096
}
fn d_fsize() -> u64 {
    1024
}
fn d_nofile() -> u64 {
    1024
}
fn d_nproc() -> u64 {
    256
}
fn d_output() -> usize {
    1 << 20
}
fn d_timeout() -> u64 {
    120_000
}
fn d_max_timeout() -> u64 {
    600_000
}
fn d_tmp() -> u64 {
    512
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_seconds: d_cpu(),
            memory_mb: d_mem(),
            file_size_mb: d_fsize(),
            open_files: d_nofile(),
            processes: d_nproc(),
            output_bytes: d_output(),
            default_timeout_ms: d_timeout(),
            max_timeout_ms: d_max_timeout(),
            tmp_mb: d_tmp(),
        }
    }
}

/// Everything the helper needs; serialised onto its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// The command line, run as `bash -c COMMAND`.
    pub command: String,
    /// Canonical workspace root.
    pub workspace: PathBuf,
    /// Working directory (absolute, inside the workspace).
    pub cwd: PathBuf,
    /// Paths readable (and executable) beneath, absolute.
    pub readable: Vec<PathBuf>,
    /// Paths writable beneath, absolute.
    pub writable: Vec<PathBuf>,
    /// Absolute paths kept read-only even under a writable root.
    pub read_only: Vec<PathBuf>,
    /// Outside uid (and gid) the sandbox's root maps to.
    pub uid: u32,
    /// Outside gid.
    pub gid: u32,
    /// Resource limits.
    pub limits: Limits,
    /// Extra environment the decision allowed (name, value).
    pub env: Vec<(String, String)>,
    /// Run even though Landlock is not enforced (operator's degraded mode).
    pub allow_degraded: bool,
    /// Network mode `proxy`: the runner's proxy socket, reachable inside the
    /// sandbox at 127.0.0.1:3128. `None` is network mode `none`.
    #[serde(default)]
    pub proxy_socket: Option<PathBuf>,
}

impl SandboxSpec {
    /// A spec with the usual system confinement — system roots readable,
    /// the workspace and the private /tmp writable, network `none` — for
    /// probes and benchmarks that are not driven by a policy decision.
    pub fn system_default(
        command: &str,
        workspace: PathBuf,
        uid: u32,
        gid: u32,
        limits: Limits,
    ) -> Self {
        SandboxSpec {
            command: command.to_string(),
            cwd: workspace.clone(),
            readable: [
                "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/dev",
            ]
            .map(PathBuf::from)
            .to_vec(),
            writable: vec![
                workspace.clone(),
                PathBuf::from("/tmp"),
                PathBuf::from("/dev/null"),
            ],
            workspace,
            read_only: Vec::new(),
            uid,
            gid,
            limits,
            env: Vec::new(),
            allow_degraded: false,
            proxy_socket: None,
        }
    }
}
