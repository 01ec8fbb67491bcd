//! Session content. The full session, claim and lease types arrive with the
//! session loop (step 4); the *untrusted* source work is here already because
//! the policy input carries it.

use serde::{Deserialize, Serialize};

/// The work a person sent to an agent: title, description, comments and
/// prompt. All of it is **untrusted**: it reaches policies only under
/// `input.untrusted` and the model only as delimited data, never as
/// instructions, never in `trusted`, `data` or the system prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceWork {
    /// Title of the initiative, bug or todo.
    #[serde(default)]
    pub title: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// Comments on it, oldest first.
    #[serde(default)]
    pub comments: Vec<String>,
    /// The prompt the person wrote when sending the work.
    #[serde(default)]
    pub prompt: String,
}
