//! Fixtures the runner's tests and benchmarks share, in one crate so every
//! suite and bench links them once and none keeps its own copy.

pub mod actions;
pub mod fake_github;
pub mod git_server;
pub mod http_request;
pub mod policy;

pub use policy::*;
