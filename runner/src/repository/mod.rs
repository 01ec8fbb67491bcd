//! A session's repository: checked out into its workspace before the
//! first tool call, delivered after a successful run (commit, push, pull
//! request). Every step that reaches out is a decided action first — a
//! `net.connect` to each host, then an `external` `git.fetch`, `git.push`
//! or `pr.create` — and acts on exactly what was decided: the connection
//! goes only to the decided addresses, the push moves only the decided
//! branch in the decided mode.
//!
//! The credentials stay in this process: the git transport and the forge
//! client put the token in a request header for the configured host, and
//! nothing else — the workspace, the sandbox, a record, a log — ever holds
//! it. The clone itself lives in a runner-private directory the sandbox
//! cannot reach; the agent works on a copy in its workspace.
//!
//! [`listing`] says which repositories this worker can work on (its static
//! lists and its forges'), for the control plane's repository list.

mod client;
mod deliver;
pub mod listing;
mod prepare;
pub mod section;

pub use deliver::{Deliver, Delivered, DeliveryError};
pub use prepare::{prepare, Prepare};
pub use section::{ForgeKind, IdentitySection, RepositoriesSection, RepositoryHost};

use crate::forge::{Forge, RepoPath};
use crate::repo::Remote;
use std::path::PathBuf;

/// A session's checked-out repository, between checkout and delivery.
pub struct SessionRepo {
    /// The remote pushed to (and checked out from).
    remote: Remote,
    /// Its host, as policies see it (lower case, no port).
    host_name: String,
    /// The runner-private git directory.
    git_dir: PathBuf,
    /// The session's workspace (the work tree).
    workspace: PathBuf,
    /// The branch the work goes to.
    branch: String,
    /// The branch a pull request merges into (the checked-out branch, or
    /// the remote's default branch when a tag or commit was checked out).
    base_branch: Option<String>,
    /// The remote's default branch, when it advertises one.
    default_branch: Option<String>,
    /// The forge, for pull requests, and where the repository is on it.
    forge: Option<(Box<dyn Forge>, RepoPath)>,
    /// Open a pull request after the push.
    auto_create_pr: bool,
    /// Open it as a draft.
    draft: bool,
    /// Ask these people to review it.
    reviewers: Vec<String>,
    /// The pull request the work is delivered to already (`pr_url` with
    /// `auto_branch = false`: its head branch is pushed).
    existing_pr: Option<String>,
    /// Whether this run resumed an earlier checkout (a follow-up).
    resumed: bool,
}

impl SessionRepo {
    /// The target branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Whether the checkout was kept from an earlier run of the session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }
}
