//! Wire types of the runner session contract.
//!
//! Both sides of the contract — the worker (`runner`) and the reference
//! control plane — serialise exactly these types, so a field renamed here is
//! renamed on the wire for both at once. Nothing in this crate does I/O.
//!
//! - [`session`]: sessions, the untrusted source work, the pinned agent version;
//! - [`platform`]: workers, claims, leases, heartbeats, outcomes, errors;
//! - [`activity`]: the seven activity types;
//! - [`conversation`]: a model session's messages, answers and follow-ups;
//! - [`image`]: images attached to work and follow-ups, in and stored;
//! - [`policy`]: actions, decisions and the records every `policy_decision`
//!   activity carries;
//! - [`normalized`]: the action as the policy saw it and the tool acts on it;
//! - [`repository`]: the repository a session checks out and delivers to;
//! - [`repo_list`]: the repositories a worker reports it can work on;
//! - [`toolset`]: skill bundles and delivered artifacts on the wire.

#![deny(missing_docs)]

pub mod activity;
pub mod conversation;
pub mod ids;
pub mod image;
pub mod normalized;
pub mod platform;
pub mod policy;
pub mod repo_list;
pub mod repository;
pub mod session;
pub mod toolset;
