//! Bounds on what the end-of-session commit takes in from the workspace.
//!
//! The commit runs as the runner (root on the host) over files the agent
//! wrote. A sparse file costs the agent nothing on disk but costs the host
//! its full length to hash, compress and — since a push is buffered in
//! memory — hold in RAM, so size is checked from metadata before libgit2
//! reads a byte. Only what changed counts (libgit2 offers each changed path
//! to [`Staging::admit`] before it reads it); ignored files never count.

use super::RepoError;
use std::path::{Path, PathBuf};

/// Largest single file a commit takes (GitHub refuses bigger ones anyway).
pub const MAX_FILE_BYTES: u64 = 100 << 20;

/// Most new or changed bytes one commit takes, all files together.
pub const MAX_COMMIT_BYTES: u64 = 1 << 30;

/// The running tally of one staging pass, and the first refusal.
pub(super) struct Staging<'a> {
    workspace: &'a Path,
    total: u64,
    refused: Option<RepoError>,
}

impl<'a> Staging<'a> {
    /// A fresh tally for `workspace`.
    pub(super) fn new(workspace: &'a Path) -> Staging<'a> {
        Staging {
            workspace,
            total: 0,
            refused: None,
        }
    }

    /// libgit2's add callback: 0 to stage `path`, negative to stop (the
    /// reason kept for [`Staging::refusal`]).
    pub(super) fn admit(&mut self, path: &Path) -> i32 {
        match self.check(path) {
            Ok(()) => 0,
            Err(e) => {
                self.refused.get_or_insert(e);
                -1
            }
        }
    }

    /// Why staging stopped, if this tally stopped it.
    pub(super) fn refusal(self) -> Option<RepoError> {
        self.refused
    }

    fn check(&mut self, rel: &Path) -> Result<(), RepoError> {
        let shown = rel.display();
        if rel.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(RepoError::Git(format!(
                "{shown} is a nested git repository (it has its own .git); the runner does not commit repositories inside the workspace — remove {shown}.git, or add {shown} to .gitignore"
            )));
        }
        let full: PathBuf = self.workspace.join(rel);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            // Gone: a deletion, which costs nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RepoError::git(&format!("inspecting {shown}"), e)),
        };
        if !meta.is_file() {
            return Ok(());
        }
        let size = meta.len();
        if size > MAX_FILE_BYTES {
            return Err(RepoError::TooLarge(format!(
                "{shown} is {} MiB, more than the {} MiB a committed file may have; delete it or add it to .gitignore",
                size >> 20,
                MAX_FILE_BYTES >> 20
            )));
        }
        self.total = self.total.saturating_add(size);
        if self.total > MAX_COMMIT_BYTES {
            return Err(RepoError::TooLarge(format!(
                "the changed files add up to more than the {} MiB one commit may take (at {shown}); delete large generated files or add them to .gitignore",
                MAX_COMMIT_BYTES >> 20
            )));
        }
        Ok(())
    }
}
