//! Can the sandbox user get to a path at all?
//!
//! The sandbox's init runs as `sandbox.uid`/`gid` outside its user
//! namespace and opens every readable root from there: a root below a
//! directory that uid cannot pass (`/root` is 0700, so `/root/.rustup` is
//! out of reach even though `.rustup` itself is 0755) is simply not there
//! inside, and the command fails later with "command not found". This
//! module answers the question from the permission bits up front, so
//! `runner doctor`, the worker's start and each Bash call can refuse with
//! the fix instead.
//!
//! Only the classic mode bits are read (owner, group, others); ACLs are
//! not. The sandbox has no supplementary groups (the helper drops them).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why the sandbox user cannot reach a path, with the fix. Its `Display`
/// is the whole message an operator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// What the path is to the operator (`sandbox.readable_roots entry`,
    /// `the workspace`), so the message names the setting to change.
    pub what: String,
    /// The path that was asked about.
    pub path: PathBuf,
    /// What stops the sandbox user.
    pub reason: String,
    /// How to change that (commands an operator can run).
    pub fix: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}. Fix: {}",
            self.what,
            self.path.display(),
            self.reason,
            self.fix
        )
    }
}

impl std::error::Error for Unreachable {}

/// How much of the path the sandbox user needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Pass through every directory above the path (the path itself is
    /// handed to the sandbox user, as the workspace is).
    Above,
    /// That, and pass through the path itself (a directory whose entries
    /// are handed to the sandbox user: the workspaces directory).
    Pass,
    /// That, and read the path itself (list a directory and pass into it,
    /// or read a file): a readable root.
    Itself,
}

const READ: u32 = 4;
const SEARCH: u32 = 1;

/// The permission bits of `meta` that apply to `uid`/`gid`.
fn bits_for(meta: &std::fs::Metadata, uid: u32, gid: u32) -> u32 {
    let mode = meta.mode();
    if meta.uid() == uid {
        (mode >> 6) & 7
    } else if meta.gid() == gid {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// Checks that `uid`/`gid` can walk to `path` (and, with
/// [`Need::Itself`], read it), as the sandbox's init will. `what` names
/// the path in the message. Symlinks on the way are resolved first, so the
/// directories really passed are the ones checked; a final component that
/// is a symlink is the sandbox's own symlink, and only what is above it
/// counts.
pub fn check(path: &Path, uid: u32, gid: u32, what: &str, need: Need) -> Result<(), Unreachable> {
    let fail = |reason: String, fix: String| Unreachable {
        what: what.to_string(),
        path: path.to_path_buf(),
        reason,
        fix,
    };
    let fix_setting = || "create it, or fix the setting that names it".to_string();
    if uid == 0 {
        return Ok(());
    }
    let link = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .map_err(|e| fail(format!("cannot be looked at ({e})"), fix_setting()))?;
    let (parent, target) = match (path.parent(), link) {
        (Some(p), true) => (p.to_path_buf(), None),
        _ => {
            let real = std::fs::canonicalize(path)
                .map_err(|e| fail(format!("cannot be resolved ({e})"), fix_setting()))?;
            (
                real.parent().map(Path::to_path_buf).unwrap_or_default(),
                Some(real),
            )
        }
    };
    let parent = std::fs::canonicalize(&parent).unwrap_or(parent);
    // From `/` down: the first directory that does not let the uid pass.
    let mut passed: Vec<PathBuf> = parent.ancestors().map(Path::to_path_buf).collect();
    passed.reverse();
    if let (Need::Pass, Some(real)) = (need, &target) {
        passed.push(real.clone());
    }
    for dir in &passed {
        let meta = std::fs::metadata(dir).map_err(|e| {
            fail(
                format!("{} cannot be looked at ({e})", dir.display()),
                fix_setting(),
            )
        })?;
        if bits_for(&meta, uid, gid) & SEARCH == 0 {
            return Err(fail(
                format!(
                    "the sandbox user (uid {uid}, gid {gid}) cannot pass through {} (mode {:04o}, owner {}:{})",
                    dir.display(),
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                ),
                format!(
                    "either `chmod o+x {}` (lets every user pass through it, not list it), or move it to a directory every user can pass: {}",
                    dir.display(),
                    suggestion(path),
                ),
            ));
        }
    }
    if let (Need::Itself, Some(real)) = (need, target) {
        let meta = std::fs::metadata(&real)
            .map_err(|e| fail(format!("cannot be looked at ({e})"), fix_setting()))?;
        let needed = if meta.is_dir() { READ | SEARCH } else { READ };
        if bits_for(&meta, uid, gid) & needed != needed {
            let add = if meta.is_dir() { "rX" } else { "r" };
            return Err(fail(
                format!(
                    "the sandbox user (uid {uid}, gid {gid}) cannot read it (mode {:04o}, owner {}:{})",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                ),
                format!(
                    "`chmod -R o+{add} {}` (or give it to group {gid}: `chgrp -R {gid} {} && chmod -R g+{add} {}`)",
                    real.display(),
                    real.display(),
                    real.display(),
                ),
            ));
        }
    }
    Ok(())
}

/// Where a root could live instead: `/opt/<its name>`, with the rustup and
/// pyenv variables named for those.
fn suggestion(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "runner".into());
    let var = match name.as_str() {
        "rustup" => " and sandbox.env RUSTUP_HOME",
        "cargo" => " and sandbox.env CARGO_HOME and PATH",
        "pyenv" => " and sandbox.env PYENV_ROOT and PATH",
        _ => "",
    };
    format!(
        "`mv {} /opt/{name}`, then let sandbox.readable_roots{var} name /opt/{name}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_root_below_a_closed_directory_is_unreachable_with_both_fixes() {
        let d = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(d.path()).unwrap();
        mode(&top, 0o755);
        let closed = top.join("home");
        let root = closed.join(".rustup");
        std::fs::create_dir_all(&root).unwrap();
        mode(&closed, 0o700);
        mode(&root, 0o755);
        let e = check(
            &root,
            65534,
            65534,
            "sandbox.readable_roots entry",
            Need::Itself,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("chmod o+x {}", closed.display())),
            "{e}"
        );
        assert!(
            e.contains("/opt/rustup") && e.contains("RUSTUP_HOME"),
            "{e}"
        );
        assert!(e.starts_with("sandbox.readable_roots entry"), "{e}");
        mode(&closed, 0o711);
        check(&root, 65534, 65534, "x", Need::Itself).unwrap();
    }

    #[test]
    fn the_root_itself_must_be_readable_unless_only_above_counts() {
        let d = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(d.path()).unwrap();
        mode(&top, 0o755);
        let root = top.join("tc");
        std::fs::create_dir(&root).unwrap();
        mode(&root, 0o711);
        let e = check(&root, 65534, 65534, "x", Need::Itself).unwrap_err();
        assert!(e.fix.contains("o+rX"), "{e}");
        check(&root, 65534, 65534, "x", Need::Above).unwrap();
        check(&root, 65534, 65534, "x", Need::Pass).unwrap();
        mode(&root, 0o750);
        assert!(check(&root, 65534, 65534, "x", Need::Pass).is_err());
        // The owner's bits apply to the owner (changing it needs root).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        mode(&root, 0o700);
        std::os::unix::fs::chown(&root, Some(4242), Some(4242)).unwrap();
        check(&root, 4242, 4242, "x", Need::Itself).unwrap();
        assert!(check(&root, 4243, 4242, "x", Need::Itself).is_err());
    }

    #[test]
    fn a_missing_path_says_so() {
        let e = check(
            Path::new("/nonexistent/runner-reach"),
            65534,
            65534,
            "x",
            Need::Itself,
        )
        .unwrap_err();
        assert!(e.reason.contains("cannot be looked at"), "{e}");
    }
}
