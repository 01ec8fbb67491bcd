//! runner — a hardened worker for cloud AI agents.
//!
//! Data flows one way: `platform` (client of the control plane) → `worker`
//! (claim, lease, finish) → `agent` (model loop) → [`tools`] (registry) →
//! [`policy`] (Rego decisions) → `sandbox` (process, wasm) → results back up.
//! [`activity`] is the single way anything is reported.
//!
//! Every side effect a tool wants is an [`protocol::policy::Action`]; the
//! [`policy::PolicyGate`] decides it, records the decision (audit log and
//! activity) and only then does the tool run, inside the confinement the
//! decision names.

#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod activity;
pub mod agent;
pub mod artifacts;
pub mod auth;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod forge;
pub mod metrics;
pub mod model;
pub mod platform;
pub mod policy;
pub mod repo;
pub mod repository;
pub mod sandbox;
pub(crate) mod secret;
pub mod skills;
pub mod tools;
pub mod trust;
pub(crate) mod webhook;
pub mod wiring;
pub(crate) mod worker;
