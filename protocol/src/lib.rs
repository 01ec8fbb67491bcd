//! Wire types of the runner session contract.
//!
//! Both sides of the contract — the worker (`runner`) and the reference
//! control plane — serialise exactly these types, so a field renamed here is
//! renamed on the wire for both at once. Nothing in this crate does I/O.
//!
//! The session, claim and activity types arrive with the session loop (step
//! 4); the policy types are here from the start because every
//! `policy_decision` activity carries a [`policy::DecisionRecord`].

#![deny(missing_docs)]

pub mod activity;
pub mod policy;
pub mod session;
