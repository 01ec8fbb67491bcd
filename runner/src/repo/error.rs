//! The errors of host-side git, typed where the caller branches on them
//! (wrong credentials, a moved branch, a refused push) and never holding a
//! token: URLs in them have no userinfo (refused by [`super::Remote::new`])
//! and the token only ever travels in a request header.

/// What went wrong with a repository operation; each message says what to
/// do next.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The repository URL is not one the runner accepts.
    #[error("repository URL refused: {0}; give an https URL like https://github.com/owner/repo.git with no user name, password, query or fragment")]
    BadUrl(String),
    /// A branch name is not a valid git ref name.
    #[error("{0:?} is not a valid branch name; use letters, digits, '-', '_', '.' and '/' (no '..', no leading '-', no trailing '.lock')")]
    BadRef(String),
    /// The server refused the credentials (HTTP 401/403).
    #[error("the git server {host} refused the credentials (HTTP 401/403); check that the token is valid, not expired and allowed to access this repository")]
    Unauthorized {
        /// host[:port] of the server.
        host: String,
    },
    /// The server has no such repository (HTTP 404).
    #[error("repository {url} not found (HTTP 404); check the URL, or that the token may see the repository")]
    NotFound {
        /// The repository URL.
        url: String,
    },
    /// The remote has no ref or commit of that name.
    #[error("the repository has no {0}; check the branch, tag or commit name")]
    MissingRef(String),
    /// The server refused to update a ref (a hook, a protected branch).
    #[error("the git server refused the push: {0}; check branch protection and server hooks, or push to another branch")]
    Rejected(String),
    /// The remote branch has commits the local one lacks.
    #[error("the remote branch has commits that are not in the session's branch; push to a new branch name or force the push")]
    NotFastForward,
    /// The server could not be reached or answered in a way git cannot use.
    #[error(
        "git network error: {0}; check that the server is reachable and serves git over https"
    )]
    Network(String),
    /// The work is too large to commit or push (a size limit, named).
    #[error("too much to commit: {0}")]
    TooLarge(String),
    /// The session was cancelled while git was working.
    #[error("git operation cancelled")]
    Cancelled,
    /// A local repository or workspace operation failed.
    #[error("git: {0}")]
    Git(String),
}

impl RepoError {
    /// A local failure, with what was being done.
    pub(crate) fn git(doing: &str, e: impl std::fmt::Display) -> RepoError {
        RepoError::Git(format!("{doing}: {e}"))
    }
}
