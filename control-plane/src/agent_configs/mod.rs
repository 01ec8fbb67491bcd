//! Agents as versioned configurations (after `seeds/agent-configuration.txt`):
//! an agent of a team is a history of configuration versions, of which the
//! latest is what a new session gets unless it pins another. This module
//! is the model only — what a configuration holds, how a change merges into
//! it, what is valid, how its tools become what the policy reads — and
//! touches neither the database nor HTTP: the store keeps the versions,
//! and each vendor's API is a view of the same [`AgentConfig`].

mod config;
mod identity;
mod tools;
mod view;

pub(crate) use config::{AgentConfig, AgentPatch, ModelRef};
pub(crate) use identity::{IdentityPatch, IdentityView};
pub(crate) use tools::agent_version;
pub(crate) use view::{rfc3339, AgentRecord, AgentView, ModelView, Page};

/// Prefix of an agent's id: `agent_` and 32 lowercase hex digits.
pub(crate) const AGENT_ID_PREFIX: &str = "agent_";

/// A fresh agent id: `agent_` + 16 random bytes in lowercase hex.
pub(crate) fn new_agent_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!("{AGENT_ID_PREFIX}{}", hex::encode(b))
}

/// Whether `id` has the shape of an agent id (anything else is "not
/// found" without a lookup).
pub(crate) fn is_agent_id(id: &str) -> bool {
    id.strip_prefix(AGENT_ID_PREFIX).is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests;
