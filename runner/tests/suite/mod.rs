//! One module per threat area; each was its own test binary before.

mod audit_log;
mod forge;
mod forge_listing;
mod offer;
mod policy_cache;
mod policy_fail_closed;
mod policy_paths;
mod policy_trust;
mod policy_vm;
mod repo;
mod repo_attacks;
mod session_roots;
mod wasm_tools;
