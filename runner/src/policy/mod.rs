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
pub mod connect;
pub mod decision;
pub mod engine;
pub mod gate;
pub mod input;
pub mod loader;
pub mod mask;
pub mod paths;
pub mod probes;
pub mod rego_test;
pub mod replay;
mod section;
pub mod set;

pub use engine::{EngineSettings, PolicyEngine, ReloadError};
pub use gate::{GateBuilder, PolicyGate};
pub use input::{SessionContext, Trusted};
pub use section::PolicySection;
pub use set::PolicySet;
