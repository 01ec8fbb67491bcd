//! The agent loop of model-driven sessions: model turn → each tool call
//! validated → decided → run in its sandbox → result (capped) back to the
//! model → until the model finishes, `max_turns`, cancellation, or a lost
//! claim.
//!
//! The loop knows nothing of the control plane: everything it reports or
//! asks goes through a [`Host`] (the worker implements it over its claim),
//! so data keeps flowing one way — worker → agent → tools → policy.

mod error;
mod offer;
pub(crate) mod prompt;
mod run;

pub use error::AgentError;
pub use offer::{offered_tools, ASK_USER, UPDATE_PLAN};
pub use run::{Agent, RunOutcome, TurnStats};

use crate::activity::ActivitySink;
use crate::cancel::Cancel;
use protocol::conversation::{Answer, Message};
use protocol::image::ImageRef;
use serde::Deserialize;

/// `[agent]` in the worker config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Model calls a session may make before it fails (each follow-up run
    /// gets this many again).
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Bytes of one tool result given to the model; the rest is cut with a
    /// note saying how much was left out.
    #[serde(default = "default_max_tool_output")]
    pub max_tool_output_bytes: usize,
    /// How long a session waits for a person's answer (an approval or the
    /// model's question) before it fails saying nobody answered.
    #[serde(default = "default_await")]
    pub await_input_seconds: u64,
    /// How often the worker looks for the answer while waiting.
    #[serde(default = "default_await_poll")]
    pub await_poll_ms: u64,
    /// Custom tools (from `[tools] dirs`) a model may be offered, by name;
    /// `"*"` is all of them. A tool is offered only if the pinned agent
    /// version enables it too.
    #[serde(default = "default_custom_tools")]
    pub custom_tools: Vec<String>,
    /// Trusted platform rules given to every model first in its system
    /// prompt; the default describes the sandbox and the policy.
    #[serde(default)]
    pub platform_instructions: Option<String>,
}

fn default_max_turns() -> u32 {
    40
}
fn default_max_tool_output() -> usize {
    16 * 1024
}
fn default_await() -> u64 {
    600
}
fn default_await_poll() -> u64 {
    250
}
fn default_custom_tools() -> Vec<String> {
    vec!["*".into()]
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_turns: default_max_turns(),
            max_tool_output_bytes: default_max_tool_output(),
            await_input_seconds: default_await(),
            await_poll_ms: default_await_poll(),
            custom_tools: default_custom_tools(),
            platform_instructions: None,
        }
    }
}

/// How a wait for a person ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A person answered.
    Answered(Answer),
    /// Nobody answered in time.
    TimedOut,
    /// The session was cancelled (or its claim lost) while waiting.
    Cancelled,
}

/// What the loop needs from the session it runs in.
pub trait Host: ActivitySink {
    /// Appends messages to the stored conversation; Err ends the run.
    fn save(&self, messages: &[Message]) -> Result<(), String>;
    /// The model stated or revised its plan.
    fn plan(&self, steps: &[String]);
    /// A tool produced a URL meant for the user (a pushed branch, a PR).
    fn external_url(&self, url: &str);
    /// Emits `awaiting_input` with `question` and waits (bounded) for a
    /// person's answer, keeping the claim alive.
    fn ask(&self, question: &str, cancel: &Cancel) -> Reply;
    /// The bytes of an image a user turn names, standard base64, for a
    /// model that takes images (asked before every model call: cache
    /// them). A host without attachments has none to give.
    fn image(&self, image: &ImageRef) -> Result<std::sync::Arc<str>, String> {
        Err(format!(
            "image {} cannot be fetched here: this session has no attachments",
            image.id
        ))
    }
}
