//! The policy layer: every side effect is decided here, by Rego, before it
//! happens.
//!
//! How the parts fit:
//! - [`loader`] finds the policy files (refusing any from a workspace or
//!   writable by others) and hashes them into a revision;
//! - [`set`] compiles them into a warmed [`PolicySet`] and evaluates the
//!   entrypoint on a per-thread engine clone;
//! - [`paths`] and [`input`] turn a tool's [`protocol::policy::Action`] into
//!   the normalised `input` document;
//! - [`decision`] reads the answer, denying anything malformed;
//! - [`engine`] holds the set in force and swaps it atomically on reload;
//! - [`gate`] decides, writes the [`audit`] log and emits the activity;
//! - [`connect`] decides a connection in two phases, host then addresses;
//! - [`rego_test`] runs the policies' own tests; [`replay`] re-decides a log.

pub mod audit;
pub(crate) mod connect;
pub(crate) mod decision;
pub(crate) mod engine;
pub(crate) mod gate;
pub(crate) mod input;
pub mod loader;
pub(crate) mod mask;
pub(crate) mod paths;
pub mod probes;
pub(crate) mod rego_test;
pub mod replay;
mod section;
pub(crate) mod set;

pub use engine::{EngineSettings, PolicyEngine, ReloadError};
pub use gate::{Decided, GateBuilder, PolicyGate};
pub use input::{SessionContext, SessionRoot, Trusted};
pub use section::PolicySection;
pub use set::PolicySet;
