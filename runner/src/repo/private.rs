//! The runner-private git dir and the agent's copy of it.
//!
//! The runner's repository lives outside the workspace, where the sandbox
//! cannot write: the agent cannot plant `core.worktree`, `include.path`,
//! `url.*.insteadOf`, alternates or a gitlink there. It is opened only with
//! the workdir set by the runner, never discovered, never from the
//! environment. The workspace gets a copy (plain files, fresh config) so git
//! works inside the sandbox; the runner never reads that copy.

use super::RepoError;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path};

/// The config the private repository keeps: no remote, no URL, no token,
/// nothing that points elsewhere. `protectNTFS`/`protectHFS` are libgit2's
/// defaults only in part (HFS is off on Linux): set both, so a tree entry
/// that is `.git` on some file system (`.GIT`, `.git.`, `git~1`,
/// `.g\u{200c}it`) is neither checked out nor committed and pushed to
/// someone else's Mac or Windows machine.
const PRIVATE_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tsymlinks = true\n\tautocrlf = false\n\tprotectNTFS = true\n\tprotectHFS = true\n";

/// Written into the private git dir as the very last step of a checkout.
/// Without it the dir is an attempt that stopped half-way (a crash, a
/// hostile tree, a full disk): resuming it would commit every file the
/// checkout had not written yet as deleted.
const COMPLETE: &str = "runner-checkout-complete";

/// The config of the agent's copy: enough for `git status`/`diff`/`log`.
const WORKSPACE_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";

/// Refuses a path with a symlink in it (a symlinked git dir could be made to
/// point into the workspace), or a relative one.
fn no_symlinks(path: &Path, what: &str) -> Result<(), RepoError> {
    if !path.is_absolute() {
        return Err(RepoError::Git(format!(
            "the {what} {} is not an absolute path",
            path.display()
        )));
    }
    let mut cur = std::path::PathBuf::new();
    for c in path.components() {
        if matches!(c, Component::ParentDir) {
            return Err(RepoError::Git(format!(
                "the {what} {} contains '..'",
                path.display()
            )));
        }
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(RepoError::Git(format!(
                    "the {what} {} goes through the symlink {}; give a path without symlinks",
                    path.display(),
                    cur.display()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates the private git dir (mode 0700; an existing one must be an empty
/// directory) and initialises a bare repository in it without templates.
pub(super) fn create(git_dir: &Path) -> Result<git2::Repository, RepoError> {
    no_symlinks(git_dir, "private git dir")?;
    match std::fs::symlink_metadata(git_dir) {
        Err(_) => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(git_dir)
            .map_err(|e| RepoError::git(&format!("creating {}", git_dir.display()), e))?,
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(git_dir)
                .map_err(|e| RepoError::git(&format!("reading {}", git_dir.display()), e))?;
            if entries.next().is_some() {
                return Err(RepoError::Git(format!(
                    "the private git dir {} is not empty; give a fresh directory per session",
                    git_dir.display()
                )));
            }
        }
        Ok(_) => {
            return Err(RepoError::Git(format!(
                "the private git dir {} exists and is not a directory",
                git_dir.display()
            )))
        }
    }
    std::fs::set_permissions(git_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| RepoError::git(&format!("chmod 700 {}", git_dir.display()), e))?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true)
        .no_reinit(true)
        .mkdir(false)
        .external_template(false);
    git2::Repository::init_opts(git_dir, &opts)
        .map_err(|e| RepoError::git("initialising the private repository", e))?;
    std::fs::write(git_dir.join("config"), PRIVATE_CONFIG)
        .map_err(|e| RepoError::git("writing the private repository's config", e))?;
    open(git_dir)
}

/// Opens the private repository exactly at `git_dir`: no discovery, no
/// `.git` appended, no environment, `core.worktree` ignored.
pub(super) fn open(git_dir: &Path) -> Result<git2::Repository, RepoError> {
    super::init();
    no_symlinks(git_dir, "private git dir")?;
    let flags = git2::RepositoryOpenFlags::NO_SEARCH
        | git2::RepositoryOpenFlags::NO_DOTGIT
        | git2::RepositoryOpenFlags::BARE;
    git2::Repository::open_ext(git_dir, flags, std::iter::empty::<&std::ffi::OsStr>()).map_err(
        |e| {
            RepoError::Git(format!(
                "opening the private repository {}: {}; was the session checked out?",
                git_dir.display(),
                e.message()
            ))
        },
    )
}

/// Opens the private repository with the workspace as its work tree.
pub(super) fn open_with(git_dir: &Path, workspace: &Path) -> Result<git2::Repository, RepoError> {
    let repo = open(git_dir)?;
    no_symlinks(workspace, "workspace")?;
    repo.set_workdir(workspace, false)
        .map_err(|e| RepoError::git("setting the work tree", e))?;
    Ok(repo)
}

/// Records that the checkout into `git_dir` finished.
pub(super) fn mark_complete(git_dir: &Path) -> Result<(), RepoError> {
    std::fs::write(git_dir.join(COMPLETE), b"")
        .map_err(|e| RepoError::git("recording the finished checkout", e))
}

/// Whether `git_dir` holds a checkout that finished (and can be resumed).
pub fn is_checked_out(git_dir: &Path) -> bool {
    std::fs::symlink_metadata(git_dir.join(COMPLETE)).is_ok_and(|m| m.is_file())
}

/// Removes what a checkout that did not finish left — the private git dir
/// and everything in the workspace — so the next attempt starts afresh.
/// Only a checkout writes there before it finishes (it starts on an empty
/// workspace and no tool runs before it is done), so nothing else is lost.
/// Does nothing when there is no private git dir; refuses a finished one.
pub fn discard_incomplete(git_dir: &Path, workspace: &Path) -> Result<(), RepoError> {
    no_symlinks(git_dir, "private git dir")?;
    no_symlinks(workspace, "workspace")?;
    if std::fs::symlink_metadata(git_dir).is_err() {
        return Ok(());
    }
    if is_checked_out(git_dir) {
        return Err(RepoError::Git(format!(
            "{} holds a finished checkout; it is resumed, not discarded",
            git_dir.display()
        )));
    }
    let clear = |e: std::io::Error| RepoError::git("removing the unfinished checkout", e);
    // remove_dir_all never follows a symlink it meets.
    std::fs::remove_dir_all(git_dir).map_err(clear)?;
    for entry in std::fs::read_dir(workspace).map_err(clear)? {
        let entry = entry.map_err(clear)?;
        if entry.file_type().map_err(clear)?.is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(clear)?;
        } else {
            std::fs::remove_file(entry.path()).map_err(clear)?;
        }
    }
    Ok(())
}

/// Copies the private repository to `workspace/.git` (regular files and
/// directories only, no hooks, a fresh config): the agent's git.
pub(super) fn copy_to_workspace(git_dir: &Path, workspace: &Path) -> Result<(), RepoError> {
    let dest = workspace.join(".git");
    copy_dir(git_dir, &dest, true)
        .map_err(|e| RepoError::git("copying the repository into the workspace", e))
}

fn copy_dir(from: &Path, to: &Path, top: bool) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o755).create(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        let (src, dst) = (entry.path(), to.join(&name));
        if top && name == "config" {
            write_new(&dst, WORKSPACE_CONFIG.as_bytes())?;
        } else if top && name == "hooks" {
            std::fs::DirBuilder::new().mode(0o755).create(&dst)?;
        } else if kind.is_dir() {
            copy_dir(&src, &dst, false)?;
        } else if kind.is_file() {
            write_new(&dst, &std::fs::read(&src)?)?;
        }
    }
    Ok(())
}

fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(data)
}
