//! Containment. The policy decides; the sandbox enforces the decision's
//! confinement whatever the tool or the command tries.
//!
//! - [`process`]: Bash and any subprocess — namespaces, Landlock, seccomp,
//!   rlimits, a wall-clock timeout, capped output, a scrubbed environment.
//! - [`wasm`]: file tools and custom tools as WASI guests on wasmtime.
//! - [`beneath`]: how the privileged runner touches workspace content at
//!   all — through descriptors, never by following a path string.
//! - [`git_guard`]: git's state in the workspace, checked and restored
//!   after every command, so nothing left behind runs code on the host.
//! - [`reach`]: whether the sandbox user can get to a path at all, with
//!   the fix when it cannot.

pub(crate) mod beneath;
pub(crate) mod git_guard;
pub mod process;
pub mod reach;
mod section;
pub mod wasm;

pub use section::{GitIdentity, SandboxSection};
