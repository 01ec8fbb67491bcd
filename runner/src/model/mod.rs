//! Model providers behind one trait: an OpenAI-compatible Chat Completions
//! client ([`openai`]: OpenAI, vLLM, Ollama, llama.cpp's server) and an
//! Anthropic Messages client ([`anthropic`]).
//!
//! Both speak the provider-neutral [`Message`] of the stored conversation;
//! each maps it to its wire format and back. The HTTP part they share
//! ([`http`]) bounds every call: a total timeout, retries with backoff on
//! 408/409/429/5xx honouring `Retry-After`, and cancellation that returns at
//! once. A provider error becomes a [`ModelError`] carrying the provider's
//! own message, never a hang.
//!
//! Images ride in user turns only. A stored message names them by
//! reference; the loop hands the client their bytes ([`ImageData`]) with
//! each request, and a provider configured without `images = true` gets
//! [`images_note`] in the text instead.

pub(crate) mod anthropic;
pub(crate) mod config;
mod http;
pub mod openai;

pub use config::{ApiKind, ProviderConfig, Providers};
pub use protocol::conversation::{Message, ToolCall};

use crate::cancel::Cancel;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The bytes of the images a request's user turns name, standard base64
/// by image id (`img_…`). Empty for a model that does not take images.
pub type ImageData = BTreeMap<String, Arc<str>>;

/// What a model that does not take images reads in a user turn that
/// carries `n` of them.
pub fn images_note(n: usize) -> String {
    if n == 1 {
        "(1 image was attached; this model does not take images)".into()
    } else {
        format!("({n} images were attached; this model does not take images)")
    }
}

/// A tool as offered to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    /// Name the model calls it by.
    pub name: String,
    /// What the tool does, as the model is told (trusted text: from the registry, never from the work).
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: serde_json::Value,
}

/// One model call: the trusted system prompt, the conversation so far, the
/// tools on offer.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// Trusted text only.
    pub system: &'a str,
    /// The conversation, oldest first.
    pub messages: &'a [Message],
    /// Tools the model may call.
    pub tools: &'a [OfferedTool],
    /// The bytes of the images the user turns name (when the model takes
    /// images; see [`ModelClient::takes_images`]).
    pub images: &'a ImageData,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It hit the token limit.
    MaxTokens,
    /// Anything else the provider said.
    Other(String),
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens the provider counted in the request (prompt).
    pub input_tokens: u64,
    /// Tokens the provider generated (completion).
    pub output_tokens: u64,
}

/// A model's answer to one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// Text of the turn (may be empty).
    pub content: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model ended the turn; only `EndTurn` and `ToolUse` mean it may be done.
    pub stop: StopReason,
    /// What the call cost, as the provider reported it.
    pub usage: Usage,
}

/// A model call that did not produce a reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The provider answered with an error status (after any retries).
    #[error("{provider} answered HTTP {status}: {message}")]
    Provider {
        /// Provider name from the config.
        provider: String,
        /// The HTTP status the provider answered with.
        status: u16,
        /// The provider's own message.
        message: String,
    },
    /// No answer within the configured timeout (after any retries).
    #[error("{provider} did not answer within {seconds} s (timeout_seconds); check that it is up, or raise the timeout")]
    Timeout {
        /// Provider name from the config.
        provider: String,
        /// The provider's `timeout_seconds`.
        seconds: u64,
    },
    /// The provider could not be reached.
    #[error("{provider} could not be reached at {url}: {message}")]
    Transport {
        /// Provider name from the config.
        provider: String,
        /// The URL the call went to (never carries the key).
        url: String,
        /// The transport's error (DNS, refused, TLS).
        message: String,
    },
    /// The answer was not the provider's documented shape.
    #[error("{provider} sent an answer this runner cannot read: {message}")]
    Malformed {
        /// Provider name from the config.
        provider: String,
        /// Which part of the answer did not match the documented shape.
        message: String,
    },
    /// The session was cancelled while waiting.
    #[error("cancelled while waiting for the model")]
    Cancelled,
}

impl ModelError {
    /// What kind of failure this is, as the metrics count it: `provider`,
    /// `timeout`, `transport`, `malformed` or `cancelled`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Provider { .. } => "provider",
            ModelError::Timeout { .. } => "timeout",
            ModelError::Transport { .. } => "transport",
            ModelError::Malformed { .. } => "malformed",
            ModelError::Cancelled => "cancelled",
        }
    }
}

/// A model behind some provider's API.
pub trait ModelClient: Send + Sync {
    /// The model id sent to the provider.
    fn model(&self) -> &str;
    /// Whether the model is sent images (`[[providers]] images = true`);
    /// only then does the loop fetch their bytes for a request.
    fn takes_images(&self) -> bool {
        false
    }
    /// One call. Returns when the reply arrives, the call fails for good,
    /// or `cancel` is set.
    fn complete(&self, req: &ModelRequest<'_>, cancel: &Cancel) -> Result<ModelReply, ModelError>;
}
