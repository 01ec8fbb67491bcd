//! What one sandboxed run is: the command, where, and the confinement and
//! limits it runs under. The runner builds it from the decision; the helper
//! (`runner-sandbox`) receives it as JSON and applies it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Largest the workspace may grow, MiB: checked after every command,
    /// which fails (saying so) when the workspace is larger.
    #[serde(default = "d_workspace")]
    pub workspace_mb: u64,
    /// Memory of a command's whole process tree, MiB (cgroup v2
    /// `memory.max`, when the host delegates cgroup v2 to the runner).
    #[serde(default = "d_tree_mem")]
    pub tree_memory_mb: u64,
    /// Processes of a command's whole tree (cgroup v2 `pids.max`).
    #[serde(default = "d_tree_pids")]
    pub tree_pids: u64,
    /// CPU weight of a command's tree against the runner's other work
    /// (cgroup v2 `cpu.weight`, 1–10000; the kernel's default is 100).
    #[serde(default = "d_cpu_weight")]
    pub cpu_weight: u64,
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
fn d_workspace() -> u64 {
    10 * 1024
}
fn d_tree_mem() -> u64 {
    8 * 1024
}
fn d_tree_pids() -> u64 {
    1024
}
fn d_cpu_weight() -> u64 {
    100
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
            workspace_mb: d_workspace(),
            tree_memory_mb: d_tree_mem(),
            tree_pids: d_tree_pids(),
            cpu_weight: d_cpu_weight(),
        }
    }
}

impl Limits {
    /// Refuses limits that would void the confinement or make every
    /// command fail without a word (`memory_mb = 0` kills each command at
    /// start). `section` names the keys in the message
    /// (`sandbox.limits`).
    pub fn validate(&self, section: &str) -> Result<(), String> {
        let at_least = |key: &str, v: u64, min: u64, why: &str| {
            if v < min {
                Err(format!(
                    "{section}.{key} = {v} is below {min}: {why}; raise it or remove the key to use the default"
                ))
            } else {
                Ok(())
            }
        };
        at_least(
            "cpu_seconds",
            self.cpu_seconds,
            1,
            "every command would be killed at once",
        )?;
        at_least(
            "memory_mb",
            self.memory_mb,
            64,
            "bash cannot even start in less address space",
        )?;
        at_least(
            "file_size_mb",
            self.file_size_mb,
            1,
            "no command could write a file",
        )?;
        at_least(
            "open_files",
            self.open_files,
            16,
            "bash needs a few descriptors to start",
        )?;
        at_least("processes", self.processes, 1, "not even bash could run")?;
        at_least(
            "output_bytes",
            self.output_bytes as u64,
            1024,
            "no output would reach the agent",
        )?;
        at_least(
            "default_timeout_ms",
            self.default_timeout_ms,
            100,
            "every command would time out",
        )?;
        at_least(
            "max_timeout_ms",
            self.max_timeout_ms,
            self.default_timeout_ms,
            "it must be at least default_timeout_ms",
        )?;
        at_least("tmp_mb", self.tmp_mb, 1, "the private /tmp needs room")?;
        at_least(
            "workspace_mb",
            self.workspace_mb,
            1,
            "the workspace needs room",
        )?;
        at_least(
            "tree_memory_mb",
            self.tree_memory_mb,
            64,
            "bash cannot start in less memory",
        )?;
        at_least(
            "tree_pids",
            self.tree_pids,
            2,
            "a command could not start a single child",
        )?;
        if !(1..=10_000).contains(&self.cpu_weight) {
            return Err(format!(
                "{section}.cpu_weight = {} must be between 1 and 10000 (cgroup v2 cpu.weight)",
                self.cpu_weight
            ));
        }
        Ok(())
    }
}

/// Everything the helper needs; serialised onto its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// The command line, run as `bash -c COMMAND`.
    pub(crate) command: String,
    pub(crate) workspace: PathBuf,
    /// Working directory (absolute, inside the workspace).
    pub(crate) cwd: PathBuf,
    /// Paths readable (and executable) beneath, absolute.
    pub(crate) readable: Vec<PathBuf>,
    /// Paths writable beneath, absolute.
    pub(crate) writable: Vec<PathBuf>,
    /// Paths relative to the workspace kept read-only even under a writable
    /// root (bound onto themselves, opened beneath the workspace).
    pub(crate) read_only: Vec<PathBuf>,
    /// Paths relative to the workspace masked inside the sandbox (an empty
    /// file or directory bound over each): the hidden paths that exist.
    #[serde(default)]
    pub(crate) hidden: Vec<PathBuf>,
    /// Globs (over workspace-relative paths) of what is hidden; the runner
    /// turns them into [`SandboxSpec::hidden`] just before the run.
    #[serde(skip)]
    pub(crate) hidden_globs: Vec<String>,
    /// Outside uid (and gid) the sandbox's root maps to.
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) limits: Limits,
    /// Extra environment (name, value): the operator's `sandbox.env` and
    /// git identity.
    pub(crate) env: Vec<(String, String)>,
    /// Run even though Landlock is not enforced (operator's degraded mode).
    pub(crate) allow_degraded: bool,
    /// Network mode `proxy`: the runner's proxy socket, reachable inside the
    /// sandbox at 127.0.0.1:3128. `None` is network mode `none`.
    #[serde(default)]
    pub(crate) proxy_socket: Option<PathBuf>,
    /// The session roots bound in at their fixed paths (`/skills` read
    /// only, `/data` writable), as the confinement names them.
    #[serde(default)]
    pub(crate) binds: Vec<Bind>,
}

/// A session root as the sandbox binds it: the host directory `host` at
/// `at` inside, read-write only when `writable` (and then `noexec`), else
/// read-only; both `nosuid,nodev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    /// The canonical host directory.
    pub host: PathBuf,
    /// The absolute path inside the sandbox.
    pub at: PathBuf,
    /// Whether the command may write it.
    pub writable: bool,
    /// Most MiB a writable root may hold, checked before and after each
    /// command (0: no limit of its own).
    #[serde(default)]
    pub limit_mb: u64,
}

/// Devices and directories every confined command may write besides its
/// writable roots: the private /tmp and the harmless devices of the
/// sandbox's own minimal /dev.
const SANDBOX_WRITABLE: [&str; 7] = [
    "/tmp",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/pts",
    "/dev/shm",
];

impl SandboxSpec {
    /// The spec a decision's confinement grants, and nothing more: its
    /// readable roots (plus the sandbox's own /proc and /dev), its writable
    /// roots that lie inside the workspace (whatever the policy says,
    /// nothing outside is writable but the private /tmp and devices), its
    /// read-only and hidden paths, no network (add [`SandboxSpec::with_proxy`]
    /// for mode `proxy`), no extra environment, and a refusal to run
    /// without Landlock (unless [`SandboxSpec::allow_degraded`]).
    pub fn confined(
        command: impl Into<String>,
        workspace: PathBuf,
        cwd: PathBuf,
        confine: &protocol::policy::Confinement,
        (uid, gid): (u32, u32),
        limits: Limits,
    ) -> Self {
        let mut readable: Vec<PathBuf> = confine.readable_roots.iter().map(PathBuf::from).collect();
        readable.extend(["/proc", "/dev"].map(PathBuf::from));
        let mut writable: Vec<PathBuf> = confine
            .writable_roots
            .iter()
            .map(PathBuf::from)
            // Compared by components, so only a clean absolute path counts:
            // `<workspace>/../etc` starts with the workspace too.
            .filter(|p| {
                p.starts_with(&workspace)
                    && p.components().all(|c| {
                        matches!(
                            c,
                            std::path::Component::RootDir | std::path::Component::Normal(_)
                        )
                    })
            })
            .collect();
        writable.extend(SANDBOX_WRITABLE.map(PathBuf::from));
        SandboxSpec {
            command: command.into(),
            workspace,
            cwd,
            readable,
            writable,
            read_only: confine.read_only_paths.iter().map(PathBuf::from).collect(),
            hidden: Vec::new(),
            hidden_globs: confine.hidden_paths.clone(),
            uid,
            gid,
            limits,
            env: Vec::new(),
            allow_degraded: false,
            proxy_socket: None,
            binds: Vec::new(),
        }
    }

    /// Binds the session's roots (`roots`, what the session has) that the
    /// decision's confinement names: a root in `readable_roots` read-only,
    /// a writable root in `writable_roots` read-write. A root's host path
    /// is never bound at its own path (it is taken out of the readable
    /// roots); one the confinement leaves out is not there at all (policy
    /// decides, sandbox contains). Landlock grants the inside paths.
    pub fn with_roots(mut self, confine: &protocol::policy::Confinement, roots: &[Bind]) -> Self {
        let named = |list: &[String], host: &PathBuf| list.iter().any(|r| Path::new(r) == host);
        for r in roots {
            self.readable.retain(|p| p != &r.host);
            self.writable.retain(|p| p != &r.host);
            let writable = r.writable && named(&confine.writable_roots, &r.host);
            if writable || named(&confine.readable_roots, &r.host) {
                self.binds.push(Bind {
                    host: r.host.clone(),
                    at: r.at.clone(),
                    writable,
                    limit_mb: r.limit_mb,
                });
            }
        }
        self
    }

    /// The Landlock read and write lists: the spec's own plus the bound
    /// roots' inside paths.
    pub(crate) fn landlock_lists(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut readable = self.readable.clone();
        let mut writable = self.writable.clone();
        for b in &self.binds {
            readable.push(b.at.clone());
            if b.writable {
                writable.push(b.at.clone());
            }
        }
        (readable, writable)
    }

    /// The operator's fixed variables (`sandbox.env`, the git identity),
    /// set over the sandbox's own defaults. The config refuses the names
    /// the sandbox itself controls (HOME, TMPDIR, the proxy variables).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Network mode `proxy`: the runner's proxy socket, reachable inside
    /// the sandbox at 127.0.0.1:3128.
    pub fn with_proxy(mut self, socket: PathBuf) -> Self {
        self.proxy_socket = Some(socket);
        self
    }

    /// Runs even where the kernel does not enforce Landlock: only when the
    /// operator set `sandbox.degraded` (every decision record then says so).
    pub fn allow_degraded(mut self, operator_opted_in: bool) -> Self {
        self.allow_degraded = operator_opted_in;
        self
    }

    /// Keeps these workspace-relative paths read-only and hides what these
    /// globs match, as a decision's confinement would.
    pub fn protecting(mut self, read_only: Vec<PathBuf>, hidden_globs: Vec<String>) -> Self {
        self.read_only = read_only;
        self.hidden_globs = hidden_globs;
        self
    }

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
            hidden: Vec::new(),
            hidden_globs: Vec::new(),
            uid,
            gid,
            limits,
            env: Vec::new(),
            allow_degraded: false,
            proxy_socket: None,
            binds: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::policy::{Confinement, NetworkMode};

    fn confine(writable: &[&str]) -> Confinement {
        Confinement {
            writable_roots: writable.iter().map(|s| s.to_string()).collect(),
            readable_roots: vec!["/usr".into()],
            read_only_paths: vec![".git/hooks".into()],
            hidden_paths: vec!["**/.env".into()],
            network: NetworkMode::None,
        }
    }

    #[test]
    fn only_clean_roots_inside_the_workspace_become_writable() {
        let ws = PathBuf::from("/srv/ws/s1");
        let spec = SandboxSpec::confined(
            "true",
            ws.clone(),
            ws.clone(),
            &confine(&[
                "/srv/ws/s1",
                "/srv/ws/s1/../../etc",
                "/etc",
                "/srv/ws/s1/sub",
                "/srv/ws/s10",
            ]),
            (65534, 65534),
            Limits::default(),
        );
        let granted: Vec<&PathBuf> = spec
            .writable
            .iter()
            .filter(|p| !SANDBOX_WRITABLE.iter().any(|s| p.as_os_str() == *s))
            .collect();
        assert_eq!(granted, vec![&ws, &ws.join("sub")]);
        assert_eq!(spec.read_only, vec![PathBuf::from(".git/hooks")]);
        assert_eq!(spec.hidden_globs, vec!["**/.env".to_string()]);
        assert!(spec.readable.contains(&PathBuf::from("/usr")));
        assert!(!spec.allow_degraded && spec.proxy_socket.is_none() && spec.env.is_empty());
    }
}
