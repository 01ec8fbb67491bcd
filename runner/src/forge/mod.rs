//! The forge layer: opening and reading pull requests on the forge that
//! hosts a session's repository, and listing the repositories a token can
//! see (GitHub today, through its REST API).
//!
//! A session names a repository (or a pull request by URL); at the end of a
//! successful run the runner may open a pull request for the branch it
//! pushed, and the PR's web URL becomes the session's external URL. This
//! module is the client side only: deciding *whether* to open one is the
//! policy's job (an `external` action `pr.create`), and pushing the branch is
//! the git layer's.
//!
//! - [`address`]: repository and pull-request URLs → host + owner/name, and
//!   the API base for a host (with its https-or-loopback rule);
//! - [`github`]: [`GitHub`], the REST client (API version 2022-11-28);
//! - [`error`]: [`ForgeError`], whose every message says what to do next
//!   and never holds the token.
//!
//! Everything a forge answers is untrusted text: messages are capped and
//! stripped of control characters before they reach an error, and the
//! fields the runner acts on (SHAs, URLs) are checked.

mod address;
mod error;
pub mod github;
mod wire;

/// Re-exported so a caller outside the crate (the config, a test) can hand
/// the client a token resolved from a reference, never a plain string.
pub use crate::secret::{Secret, SecretRef};
pub use address::{github_api_base, parse_pr_url, parse_repo_url, RepoPath};
pub use error::ForgeError;
pub use github::GitHub;

/// A pull request to open: `head` is the pushed branch (`branch`, or
/// `owner:branch` for a fork in the same network), `base` the branch it
/// should merge into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    /// The PR title (required by every forge).
    pub title: String,
    /// The PR description (Markdown).
    pub body: String,
    /// The branch with the changes.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// Open as a draft, so nobody merges it by accident before review.
    pub draft: bool,
}

/// A pull request as the runner uses it: enough to report its URL, and to
/// check out and push to its head for a session started from a `pr_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number in the base repository.
    pub number: u64,
    /// The web page, shown to users as the session's external URL.
    pub html_url: String,
    /// The API URL of the pull request.
    pub api_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it is a draft.
    pub draft: bool,
    /// The head branch name.
    pub head_ref: String,
    /// The head commit (hex object id, checked).
    pub head_sha: String,
    /// Where the head branch lives; `None` when the head repository (a fork)
    /// was deleted — then the head cannot be pushed to.
    pub head_clone_url: Option<String>,
    /// `owner/name` of the head repository, when it still exists; differs
    /// from the base repository for a fork.
    pub head_full_name: Option<String>,
    /// The branch it merges into.
    pub base_ref: String,
    /// The base repository's clone URL.
    pub base_clone_url: String,
    /// Whether the base repository's maintainers may push to a fork's head.
    pub maintainer_can_modify: bool,
}

/// What opening a pull request came to: a new one, or the one already open
/// for the same head (a rerun of a session must not fail on its own PR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The forge opened a new pull request.
    Opened(PullRequest),
    /// A pull request for this head was already open; this is it.
    AlreadyOpen(PullRequest),
}

impl Created {
    /// The pull request either way.
    pub fn pull_request(&self) -> &PullRequest {
        match self {
            Created::Opened(p) | Created::AlreadyOpen(p) => p,
        }
    }
}

/// The repositories a token can see, as a forge listed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// Owner and name of each, in the forge's order.
    pub repositories: Vec<RepoPath>,
    /// Entries whose owner or name a URL cannot carry, left out.
    pub skipped: usize,
    /// Whether the forge had more than the cap asked for.
    pub truncated: bool,
}

/// A forge's pull-request API, one implementation per forge (GitHub now;
/// GitLab and Gitea can follow) so the worker does not care which it is.
/// No method retries a write: a POST that may have happened is never sent
/// twice blindly.
pub trait Forge: Send + Sync {
    /// A short stable name for records and errors (`github`).
    fn name(&self) -> &'static str;
    /// The repositories the token can see, at most `max` of them (the
    /// forge's pages followed until then). Read-only.
    fn list_repositories(&self, max: usize) -> Result<Listed, ForgeError>;
    /// Opens a pull request; one already open for the same head is
    /// returned as [`Created::AlreadyOpen`], not an error.
    fn create_pull_request(
        &self,
        repo: &RepoPath,
        pr: &NewPullRequest,
    ) -> Result<Created, ForgeError>;
    /// Reads one pull request by number (for a session started from a PR URL).
    fn pull_request(&self, repo: &RepoPath, number: u64) -> Result<PullRequest, ForgeError>;
    /// Asks these users to review; a refusal (not a collaborator, the
    /// author) is [`ForgeError::Rejected`], which callers record as a
    /// warning rather than failing the session.
    fn request_reviewers(
        &self,
        repo: &RepoPath,
        number: u64,
        reviewers: &[String],
    ) -> Result<(), ForgeError>;
}
