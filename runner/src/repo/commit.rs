//! Commit at the end of a session: everything in the workspace (honouring
//! `.gitignore`, deletions included) on the session branch, with the
//! identities the caller names — never ones from the environment or a
//! config file.

use super::{private, RepoError};
use std::path::Path;

/// A commit identity (author: the agent; committer: the runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

impl Identity {
    fn signature(&self, role: &str) -> Result<git2::Signature<'static>, RepoError> {
        git2::Signature::now(&self.name, &self.email).map_err(|e| {
            RepoError::Git(format!(
                "the {role} identity {:?} <{}> is not usable: {}; set a non-empty name and email without '<', '>' or newlines",
                self.name,
                self.email,
                e.message()
            ))
        })
    }
}

/// Refuses a branch name git would not accept as `refs/heads/<name>`.
pub(super) fn check_branch(name: &str) -> Result<(), RepoError> {
    let full = format!("refs/heads/{name}");
    if name.is_empty() || name.starts_with('-') || !git2::Reference::is_valid_name(&full) {
        return Err(RepoError::BadRef(name.to_string()));
    }
    Ok(())
}

/// Stages everything in the workspace (new and changed files honouring
/// `.gitignore`, deletions) and commits it on HEAD (the session branch).
/// Returns the new commit id, or `None` when the tree did not change. The
/// workspace's own `.git` is never read and never committed.
pub fn commit_all(
    git_dir: &Path,
    workspace: &Path,
    author: &Identity,
    committer: &Identity,
    message: &str,
) -> Result<Option<String>, RepoError> {
    let author = author.signature("author")?;
    let committer = committer.signature("committer")?;
    if message.trim().is_empty() {
        return Err(RepoError::Git(
            "the commit message is empty; give one".into(),
        ));
    }
    let repo = private::open_with(git_dir, workspace)?;
    let parent = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| RepoError::git("reading the session branch", e))?;
    let mut index = repo
        .index()
        .map_err(|e| RepoError::git("opening the index", e))?;
    let mut staging = super::limits::Staging::new(workspace);
    let added = index.add_all(
        ["*"],
        git2::IndexAddOption::DEFAULT,
        Some(&mut |path: &Path, _: &[u8]| staging.admit(path)),
    );
    if let Some(refused) = staging.refusal() {
        return Err(refused);
    }
    added.map_err(|e| {
        RepoError::git(
            "staging the workspace",
            format!(
                "{}; rename or remove that path (git refuses names like .git, .git., git~1 and a symlinked .gitmodules)",
                e.message()
            ),
        )
    })?;
    index
        .update_all(["*"], None)
        .map_err(|e| RepoError::git("staging deletions", e))?;
    index
        .write()
        .map_err(|e| RepoError::git("writing the index", e))?;
    let tree_id = index
        .write_tree()
        .map_err(|e| RepoError::git("writing the tree", e))?;
    if tree_id == parent.tree_id() {
        return Ok(None);
    }
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| RepoError::git("reading the tree", e))?;
    let id = repo
        .commit(
            Some("HEAD"),
            &author,
            &committer,
            message,
            &tree,
            &[&parent],
        )
        .map_err(|e| RepoError::git("committing", e))?;
    Ok(Some(id.to_string()))
}

/// The session branch's head commit id.
pub fn head(git_dir: &Path) -> Result<String, RepoError> {
    let repo = private::open(git_dir)?;
    let c = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| RepoError::git("reading the session branch", e))?;
    Ok(c.id().to_string())
}
