//! Host-side git: the runner (never the agent) clones a session's repository
//! into the workspace before the first tool call and, at the end, commits the
//! workspace and pushes the target branch.
//!
//! Everything goes through libgit2 (`git2`), which runs no hooks, filters,
//! fsmonitor or credential helpers and spawns no process; the only network
//! transport is ours ([`transport`]: reqwest + rustls, the token in one
//! header, the URL pinned). The repository the runner works on lives in a
//! runner-private git dir outside the workspace, whose config holds no
//! remote, URL or token; the agent gets a throw-away copy as the
//! workspace's `.git`, which the runner never reads.

mod checkout;
mod commit;
mod error;
mod limits;
mod private;
mod push;
mod remote;
mod transport;

/// The token type [`Remote::new`] takes, re-exported so callers outside the
/// crate can hand one over.
pub use crate::secret::Secret;
pub use checkout::{checkout, CheckedOut, CheckoutRequest, Want};
pub use commit::{commit_all, head, Identity};
pub use error::RepoError;
pub use limits::{MAX_COMMIT_BYTES, MAX_FILE_BYTES};
pub use private::{discard_incomplete, is_checked_out};
pub use push::{push, push_mode, PushMode};
pub use remote::{list_refs, Remote, RemoteRefs};

/// Prepares libgit2 for the runner; call once before any other git use (the
/// functions of this module call it too, so forgetting it is harmless).
///
/// It empties the system, global, XDG and ProgramData config search paths
/// (no `~/.gitconfig` or `/etc/gitconfig` can reach host-side git) and
/// registers the runner's `https` transport; plain `http` gets a transport
/// that refuses, so libgit2's built-in HTTP client is never used.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use git2::ConfigLevel::{Global, ProgramData, System, XDG};
        for level in [System, Global, XDG, ProgramData] {
            // SAFETY: inside the Once, before any other libgit2 use by the
            // runner (every entry point of this module calls init first).
            if let Err(e) = unsafe { git2::opts::set_search_path(level, "") } {
                panic!("libgit2 refused to clear its {level:?} config search path: {e}");
            }
        }
        // SAFETY: as above; registration happens exactly once.
        unsafe { transport::register() };
    });
}
