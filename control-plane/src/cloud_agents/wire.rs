//! The wire types of `/v0`, field for field as the seed (and Cursor's
//! clients) have them: camelCase names, unknown fields refused in what a
//! client sends, optional fields left out rather than `null` in answers.

use serde::{Deserialize, Serialize};

/// `POST /v0/agents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Launch {
    /// The task.
    pub(crate) prompt: Prompt,
    /// A model id of `GET /v0/models`; absent (or `"auto"`) lets the
    /// control plane choose.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// The repository (and ref), or a pull request, to work on. Required;
    /// optional here so that its absence gets a message naming it.
    #[serde(default)]
    pub(crate) source: Option<LaunchSource>,
    /// Where the work goes.
    #[serde(default)]
    pub(crate) target: Option<LaunchTarget>,
    /// Told when the agent reaches a terminal status.
    #[serde(default)]
    pub(crate) webhook: Option<Webhook>,
}

/// A prompt: the text, and up to five images.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Prompt {
    /// The instruction.
    pub(crate) text: String,
    /// `{data: base64, dimension: {width, height}}` each, at most 5:
    /// PNG, JPEG, GIF or WebP, at most 4 MiB decoded.
    #[serde(default)]
    pub(crate) images: Vec<protocol::image::ImageInput>,
}

/// `source` of a launch.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LaunchSource {
    /// `https://host/owner/name`; required unless `prUrl` is given.
    #[serde(default)]
    pub(crate) repository: Option<String>,
    /// Branch, tag or commit to start from (ignored with `prUrl`).
    #[serde(default, rename = "ref")]
    pub(crate) git_ref: Option<String>,
    /// A pull request to work on: its repository and branches.
    #[serde(default)]
    pub(crate) pr_url: Option<String>,
}

/// `target` of a launch.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LaunchTarget {
    /// Open a pull request when the agent finishes (default false).
    #[serde(default)]
    pub(crate) auto_create_pr: Option<bool>,
    /// Accepted and echoed; this control plane opens pull requests with
    /// the forge token the worker is configured with either way.
    #[serde(default)]
    pub(crate) open_as_cursor_github_app: Option<bool>,
    /// Accepted and echoed; see `openAsCursorGithubApp`.
    #[serde(default)]
    pub(crate) skip_reviewer_request: Option<bool>,
    /// The branch to push to (default `runner/<name>-<id>`).
    #[serde(default)]
    pub(crate) branch_name: Option<String>,
    /// With `prUrl`: a new branch (true, default) or the PR's own head
    /// branch (false).
    #[serde(default)]
    pub(crate) auto_branch: Option<bool>,
}

/// `webhook` of a launch.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    /// Where `statusChange` is POSTed (http or https).
    pub(crate) url: String,
    /// Signs each delivery (`X-Webhook-Signature: sha256=<hex>`); at least
    /// 32 characters.
    #[serde(default)]
    pub(crate) secret: Option<String>,
}

/// `POST /v0/agents/{id}/followup`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FollowupRequest {
    /// What to do next.
    pub(crate) prompt: Prompt,
}

/// The seed's status table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    /// Waiting for a worker.
    Creating,
    /// A worker runs it (or it waits for a person).
    Running,
    /// Done; `summary` says what it did.
    Finished,
    /// Stopped by its owner; a follow-up runs it again.
    Stopped,
    /// It failed; `summary` says why.
    Failed,
}

impl Status {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::Stopped => "STOPPED",
            Status::Failed => "FAILED",
        }
    }

    /// No worker runs it now and none will until a follow-up.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Status::Finished | Status::Stopped | Status::Failed)
    }
}

/// An agent, as every `/v0` answer shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Agent {
    /// `bc_…`.
    pub(crate) id: String,
    /// From the prompt's first line.
    pub(crate) name: String,
    /// See [`Status`].
    pub(crate) status: Status,
    /// What it works on.
    pub(crate) source: AgentSource,
    /// Where its work goes.
    pub(crate) target: AgentTarget,
    /// What it did (FINISHED) or why it failed (FAILED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) summary: Option<String>,
    /// RFC 3339.
    pub(crate) created_at: String,
}

/// `source` of an [`Agent`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentSource {
    /// The repository's URL (a pull request's repository for `prUrl`).
    pub(crate) repository: String,
    /// The ref it started from, when one was given.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub(crate) git_ref: Option<String>,
    /// The pull request it was launched on, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pr_url: Option<String>,
}

/// `target` of an [`Agent`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentTarget {
    /// The branch the work is pushed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) branch_name: Option<String>,
    /// The agent's page on the control plane.
    pub(crate) url: String,
    /// The pull request, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pr_url: Option<String>,
    /// As launched.
    pub(crate) auto_create_pr: bool,
    /// As launched (no effect here).
    pub(crate) open_as_cursor_github_app: bool,
    /// As launched (no effect here).
    pub(crate) skip_reviewer_request: bool,
}

/// `GET /v0/agents`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentList {
    /// Newest first.
    pub(crate) agents: Vec<Agent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

/// `{id}`: the answer of follow-up, stop and delete.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct AgentId {
    /// The agent's id.
    pub(crate) id: String,
}

/// `GET /v0/agents/{id}/conversation`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Conversation {
    /// The agent's id.
    pub(crate) id: String,
    /// The prompts and the model's answers, oldest first.
    pub(crate) messages: Vec<ConversationMessage>,
}

/// One message of a [`Conversation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct ConversationMessage {
    /// Stable: `msg_u0` (the launch prompt), `msg_i<n>` (follow-ups),
    /// `msg_a<n>` (the model's answers).
    pub(crate) id: String,
    /// `user_message` or `assistant_message`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// The text, as the person wrote it or the model answered.
    pub(crate) text: String,
}

/// `GET /v0/models`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Models {
    /// Model ids the registered workers' providers serve.
    pub(crate) models: Vec<String>,
}
