//! Containment. The policy decides; the sandbox enforces the decision's
//! confinement whatever the tool or the command tries.
//!
//! - [`process`]: Bash and any subprocess — namespaces, Landlock, seccomp,
//!   rlimits, a wall-clock timeout, capped output, a scrubbed environment.
//! - [`wasm`]: file tools and custom tools as WASI guests on wasmtime.

pub mod process;
pub mod wasm;
