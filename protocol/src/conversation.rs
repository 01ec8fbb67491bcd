//! The conversation of a model-driven session: what the model was told and
//! answered, and the tool calls and results in between. The worker appends
//! to it under its claim; the control plane stores it so it can be shown
//! later and so a follow-up resumes it where it ended.
//!
//! The system prompt is not part of it: it holds only trusted text and is
//! rebuilt from the pinned agent version and the worker configuration on
//! every turn.

use crate::ids::ClaimId;
use crate::image::{ImageInput, ImageRef};
use serde::{Deserialize, Serialize};

/// One message, in a provider-neutral shape (each model client maps it to
/// its own wire format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// A user turn. Whatever came from people (the work, a follow-up) is
    /// inside the untrusted-work delimiters.
    User {
        /// The text as sent to the model.
        content: String,
        /// Images of the turn, by reference: the worker fetches the bytes
        /// when it builds a model request, so the stored conversation
        /// stays small.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ImageRef>,
    },
    /// A model turn: text and the tool calls it made.
    Assistant {
        /// Text (may be empty when the turn only calls tools).
        #[serde(default)]
        content: String,
        /// Tool calls, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call (untrusted data for the model).
    Tool {
        /// The call it answers.
        tool_call_id: String,
        /// The tool called.
        name: String,
        /// The result as given to the model (capped).
        content: String,
        /// The call failed, was denied or refused.
        #[serde(default)]
        is_error: bool,
    },
}

/// A tool call a model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The provider's id for the call; the result carries it back.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as the model gave them. A model that sent arguments that
    /// are not JSON gets them back as a string here (and an error result).
    pub arguments: serde_json::Value,
}

/// `POST /v1/sessions/{session}/conversation`: messages to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppendConversation {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// How many messages the worker believes are stored; the append is
    /// refused (409 `conversation_conflict`) unless that is so, and a
    /// retried append that already landed is acknowledged, not repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_count: Option<u64>,
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}

/// A stored message (`GET /v1/sessions/{session}/conversation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationEntry {
    /// Order in the conversation, from 1.
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    /// The message.
    pub message: Message,
}

/// `POST /v1/sessions/{session}/answer`: a person answers a session that
/// is `awaiting_input` (an approval asked by the policy, or the model's
/// question).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Who answered, recorded on the decision an approval lets through.
    /// The control plane sets it from the caller's credentials; a value in
    /// the request is ignored.
    #[serde(default)]
    pub by: String,
    /// For an approval: approve (`true`) or refuse (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
    /// Free text: the reply to a question, or why an approval was refused.
    #[serde(default)]
    pub message: String,
    /// The `question_id` of the `awaiting_input` activity answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_id: Option<String>,
}

/// `POST /v1/sessions/{session}/follow-up`: a person sends a new message to
/// a finished session; it is queued again and resumes the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Who sent it; set by the control plane from the caller's
    /// credentials (a value in the request is ignored).
    #[serde(default)]
    pub by: String,
    /// The message (untrusted, like the rest of the work).
    pub message: String,
    /// Images for the model, as bytes (at most 5; the same rules as
    /// `source.images` of a new session).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageInput>,
}

/// A follow-up as it waits for the worker ([`HumanInput::FollowUp`]): the
/// [`FollowUp`] with its images stored as attachments and named by
/// reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueuedFollowUp {
    /// Who sent it (the caller's name).
    pub by: String,
    /// The message (untrusted).
    pub message: String,
    /// Its images, by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRef>,
}

/// What a person sent to a session, waiting for its worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HumanInput {
    /// An answer while the session was awaiting input.
    Answer(Answer),
    /// A follow-up on a finished session.
    FollowUp(QueuedFollowUp),
}

/// `POST /v1/sessions/{session}/inputs/next` (the oldest input not yet
/// acknowledged; asking again gives the same one) and
/// `POST /v1/sessions/{session}/inputs/{id}/ack` (done with it). Two steps,
/// so an answer is never lost with a lost response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TakeInput {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// `inputs/next` only: look past inputs up to this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

/// An input waiting for its worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingInput {
    /// Its id (for the acknowledgement).
    pub id: u64,
    /// What the person sent.
    pub input: HumanInput,
}

/// The answer to `inputs/next`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TakenInput {
    /// The input, or none yet.
    pub input: Option<PendingInput>,
}
