//! A cgroup v2 per command: one ceiling on the memory, the processes and
//! the CPU share of a command's whole process tree.
//!
//! rlimits bound each process (4 GiB × 256 processes is still a terabyte);
//! a cgroup bounds them together. It needs the host to delegate cgroup v2
//! to the runner (systemd: `Delegate=yes` in the unit, see
//! examples/runner.service). The runner then moves itself into a leaf
//! `supervisor` group of its own cgroup (the "no internal processes" rule),
//! enables the `memory`, `pids` and `cpu` controllers for its subtree and
//! makes one `cmd-N` group per command, removed when the command ends.
//! Without delegation the commands run with rlimits only; `runner doctor`
//! says which applies and how to enable it.

use super::spec::Limits;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const UNIFIED: &str = "/sys/fs/cgroup";

/// Controllers a command's group needs.
const NEEDED: [&str; 3] = ["memory", "pids", "cpu"];

/// The runner's delegated cgroup, or why there is none.
fn delegated() -> &'static Result<PathBuf, String> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(setup)
}

/// Whether per-command cgroups are in force, and if not why.
pub(crate) fn status() -> Result<PathBuf, String> {
    delegated().clone()
}

fn own_cgroup() -> Result<PathBuf, String> {
    if !Path::new(UNIFIED).join("cgroup.controllers").exists() {
        return Err(format!(
            "{UNIFIED} is not a cgroup v2 (unified) hierarchy; boot with systemd.unified_cgroup_hierarchy=1 (the default on current distributions)"
        ));
    }
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("the runner is in no cgroup v2 group")?;
    Ok(Path::new(UNIFIED).join(rel.trim_start_matches('/')))
}

fn setup() -> Result<PathBuf, String> {
    let mut dir = own_cgroup()?;
    if dir.file_name().is_some_and(|n| n == "supervisor") {
        dir.pop();
    }
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|c| !controllers.split_whitespace().any(|x| x == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the runner's cgroup {} lacks the {} controller(s); run the runner as a systemd service with Delegate=yes",
            dir.display(),
            missing.join(", ")
        ));
    }
    let supervisor = dir.join("supervisor");
    match std::fs::create_dir(&supervisor) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "cannot create cgroups under {} ({e}); run the runner as a systemd service with Delegate=yes",
                dir.display()
            ))
        }
    }
    std::fs::write(supervisor.join("cgroup.procs"), "0")
        .map_err(|e| format!("cannot move the runner into {}: {e}", supervisor.display()))?;
    let enable: String = NEEDED.iter().map(|c| format!("+{c} ")).collect();
    std::fs::write(dir.join("cgroup.subtree_control"), enable.trim()).map_err(|e| {
        format!(
            "cannot enable {} in {}: {e}",
            NEEDED.join(", "),
            dir.display()
        )
    })?;
    Ok(dir)
}

/// One command's group; removed (its processes killed) when dropped.
#[derive(Debug)]
pub(crate) struct CommandGroup {
    dir: PathBuf,
    procs: CString,
}

impl CommandGroup {
    /// A new group with the limits' ceilings, or `None` when the host did
    /// not delegate cgroup v2 (the reason is `runner doctor`'s).
    pub(crate) fn create(limits: &Limits) -> Result<Option<CommandGroup>, String> {
        let Ok(root) = delegated() else {
            return Ok(None);
        };
        Self::create_in(root, limits).map(Some)
    }

    /// A new group under `root` (the delegated cgroup; a plain directory
    /// in tests, which shows what is written where).
    fn create_in(root: &Path, limits: &Limits) -> Result<CommandGroup, String> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let dir = root.join(format!(
            "cmd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let group = CommandGroup {
            procs: CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
                .map_err(|e| e.to_string())?,
            dir,
        };
        let mib = 1u64 << 20;
        for (file, value) in [
            ("memory.max", (limits.tree_memory_mb * mib).to_string()),
            ("memory.swap.max", "0".to_string()),
            ("pids.max", limits.tree_pids.to_string()),
            ("cpu.weight", limits.cpu_weight.to_string()),
        ] {
            let p = group.dir.join(file);
            // memory.swap.max is absent without swap accounting.
            if file == "memory.swap.max" && !p.exists() {
                continue;
            }
            std::fs::write(&p, value).map_err(|e| format!("cannot set {}: {e}", p.display()))?;
        }
        Ok(group)
    }

    /// `cgroup.procs` of the group, for the child to move itself into
    /// before it execs the helper (so nothing it starts escapes the group).
    pub(crate) fn procs(&self) -> &CString {
        &self.procs
    }

    /// Whether the kernel killed something of the tree for memory.
    pub(crate) fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.dir.join("memory.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    }
}

impl Drop for CommandGroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        // (In a real cgroup only the kernel's interface files are left,
        // which rmdir ignores; a test directory is emptied here.)
        #[cfg(test)]
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        tracing::warn!(group = %self.dir.display(), "a command's cgroup could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_group_gets_the_limits_and_is_removed_after() {
        let root = tempfile::tempdir().unwrap();
        let limits = Limits {
            tree_memory_mb: 512,
            tree_pids: 64,
            cpu_weight: 50,
            ..Limits::default()
        };
        let g = CommandGroup::create_in(root.path(), &limits).unwrap();
        let read = |f: &str| std::fs::read_to_string(g.dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (512u64 << 20).to_string());
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.weight"), "50");
        assert!(g.procs().to_str().unwrap().ends_with("/cgroup.procs"));
        assert!(!g.oom_killed());
        std::fs::write(g.dir.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        assert!(g.oom_killed());
        let dir = g.dir.clone();
        drop(g);
        assert!(!dir.exists(), "the group is removed when the command ends");
    }
}
