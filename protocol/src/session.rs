//! Sessions: the work, the pinned agent version it runs with, its state.
//!
//! A session carries two kinds of content, kept apart on purpose: the
//! **source work** a person sent ([`SourceWork`], untrusted) and the pinned
//! **agent version** ([`AgentVersion`], trusted). Updating an agent never
//! changes a running session: the version is copied into the session when
//! it is queued.

use crate::image::{ImageInput, ImageRef};
use serde::{Deserialize, Serialize};

/// The work a person sent to an agent: title, description, comments and
/// prompt. All of it is **untrusted**: it reaches policies only under
/// `input.untrusted` and the model only as delimited data, never as
/// instructions, never in `trusted`, `data` or the system prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Images sent with the work, by reference (the control plane keeps
    /// the bytes as the session's attachments; absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRef>,
}

/// The work as a person sends it to `POST /v1/sessions`: the text of a
/// [`SourceWork`], with images as bytes. The control plane checks the
/// images, keeps them as the session's attachments and stores the work as
/// a [`SourceWork`] naming them, so no answer echoes the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSource {
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
    /// Images for the model (at most 5; PNG, JPEG, GIF or WebP; 4 MiB
    /// each decoded; sides 1–8192 px). A model whose provider does not
    /// take images is told how many were attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageInput>,
}

impl NewSource {
    /// The text as the stored work (without images yet), and the images
    /// sent with it.
    pub fn split(self) -> (SourceWork, Vec<ImageInput>) {
        (
            SourceWork {
                title: self.title,
                description: self.description,
                comments: self.comments,
                prompt: self.prompt,
                images: Vec::new(),
            },
            self.images,
        )
    }
}

/// The agent version a session is pinned to (trusted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentVersion {
    /// Agent name.
    pub name: String,
    /// Version number of the agent profile this copy was taken from.
    #[serde(default = "one")]
    pub version: u32,
    /// Model id; `"script"` runs the session's scripted tool calls.
    pub model: String,
    /// Trusted instructions.
    #[serde(default)]
    pub system_prompt: String,
    /// Tools this agent may use; nothing else can enable another.
    #[serde(default)]
    pub enabled_tools: Vec<String>,
    /// Tools this agent may never use, whatever `enabled_tools` says: the
    /// default policy denies them, and they are not offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disallowed_tools: Vec<String>,
    /// Per tool, its permission policy: `always_allow` (the policy decides
    /// as usual) or `always_ask` (an action the policy would allow asks a
    /// person first). A tool without an entry is `always_allow`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tool_policies: std::collections::BTreeMap<String, String>,
    /// Skill names.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Free-form trusted metadata.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Grants the policy reads (network hosts, platform operations).
    #[serde(default)]
    pub grants: serde_json::Map<String, serde_json::Value>,
    /// MCP servers the agent may use (Streamable HTTP only). Their
    /// credentials are never here: the worker adds them from its secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<McpServerRef>,
    /// Per MCP server name, which of its tools are offered and with which
    /// permission policy. A server without an entry offers nothing.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub mcp_toolsets: std::collections::BTreeMap<String, McpToolset>,
    /// The skills of the registry this version uses, each pinned to one
    /// version and its content hash when the session was queued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_skills: Vec<PinnedSkill>,
}

impl AgentVersion {
    /// The permission policy of tool `tool` of MCP server `server`
    /// (`always_allow` or `always_ask`), or `None` when the tool is not
    /// offered (no toolset for the server, the toolset or the tool
    /// disabled). The runner offers exactly the tools this names, and the
    /// default policy reads the same fields.
    pub fn mcp_tool_permission(&self, server: &str, tool: &str) -> Option<&str> {
        if !self.mcp_servers.iter().any(|s| s.name == server) {
            return None;
        }
        let set = self.mcp_toolsets.get(server)?;
        let per_tool = set.configs.get(tool);
        let enabled = per_tool.and_then(|c| c.enabled).unwrap_or(set.enabled);
        if !enabled {
            return None;
        }
        Some(
            per_tool
                .and_then(|c| c.permission_policy.as_deref())
                .unwrap_or(&set.permission_policy),
        )
    }
}

/// One MCP server of an agent version: `{type: "url", name, url}` as the
/// agent configuration gives it, without headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct McpServerRef {
    /// Name, unique in the version: the `<server>` of `mcp__<server>__<tool>`.
    pub name: String,
    /// The Streamable HTTP endpoint.
    pub url: String,
}

/// An `mcp_toolset` entry of the agent's `tools`, resolved per server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct McpToolset {
    /// Whether the server's tools are offered unless a tool's config says otherwise.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `always_ask` (the vendors' default for MCP) or `always_allow`.
    #[serde(default = "always_ask")]
    pub permission_policy: String,
    /// Per tool name on the server.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub configs: std::collections::BTreeMap<String, McpToolConfig>,
}

impl Default for McpToolset {
    fn default() -> Self {
        McpToolset {
            enabled: true,
            permission_policy: always_ask(),
            configs: Default::default(),
        }
    }
}

/// One tool's override within an [`McpToolset`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct McpToolConfig {
    /// Offered or not, overriding the toolset's `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Overrides the toolset's `permission_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_policy: Option<String>,
}

/// A skill of the registry pinned into a version: the worker fetches
/// exactly this version and checks its hash before placing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PinnedSkill {
    /// The registry's id (`skill_…`).
    pub skill_id: String,
    /// The version pinned.
    pub version: String,
    /// `name` from its SKILL.md front matter: its directory under `/skills`.
    pub name: String,
    /// `description` from its front matter, listed in the system prompt.
    pub description: String,
    /// SHA-256 of the version's bundle (see `protocol::platform::SkillBundle::digest`).
    pub sha256: String,
    /// Total bytes of its files.
    pub size_bytes: u64,
}

fn yes() -> bool {
    true
}

fn always_ask() -> String {
    "always_ask".to_string()
}

fn one() -> u32 {
    1
}

/// The agent a new session runs: a whole version given inline, or an
/// agent of the caller's team by reference — its latest version
/// (`"agent_…"`) or one version (`{"type": "agent", "id", "version"}`).
/// A reference is resolved, and the version copied into the session, when
/// it is queued: updating the agent later changes no queued or running
/// session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
// A request's agent lives for one request; boxing the inline version would
// only add an allocation to every session queued with one.
#[allow(clippy::large_enum_variant)]
pub enum AgentRef {
    /// The agent's latest version, by id.
    Latest(String),
    /// One version of an agent.
    Pinned(AgentPin),
    /// A version given whole.
    Inline(AgentVersion),
}

/// `{"type": "agent", "id", "version"?}`: one version of an agent (its
/// latest when `version` is left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentPin {
    /// Always `agent`.
    #[serde(rename = "type")]
    pub kind: AgentPinKind,
    /// `agent_…`.
    pub id: String,
    /// The version; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// The one `type` of an [`AgentPin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentPinKind {
    /// An agent.
    Agent,
}

impl AgentRef {
    /// The version, when it was given whole (or has been resolved).
    pub fn inline(&self) -> Option<&AgentVersion> {
        match self {
            AgentRef::Inline(v) => Some(v),
            _ => None,
        }
    }

    /// The version given whole, to change before queueing; a reference is
    /// first replaced by a default version.
    pub fn inline_mut(&mut self) -> &mut AgentVersion {
        if !matches!(self, AgentRef::Inline(_)) {
            *self = AgentRef::default();
        }
        match self {
            AgentRef::Inline(v) => v,
            _ => unreachable!("set just above"),
        }
    }
}

impl Default for AgentRef {
    fn default() -> Self {
        AgentRef::Inline(AgentVersion::default())
    }
}

impl From<AgentVersion> for AgentRef {
    fn from(v: AgentVersion) -> Self {
        AgentRef::Inline(v)
    }
}

// By hand rather than untagged, so that a mistake in an inline version or
// a reference gets that form's own error (an untagged enum says only that
// nothing matched): a string is a reference to the latest version, an
// object with `"type": "agent"` a pin, any other object a version.
impl<'de> Deserialize<'de> for AgentRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => Ok(AgentRef::Latest(s.clone())),
            serde_json::Value::Object(m) if m.contains_key("type") => {
                serde_json::from_value(v).map(AgentRef::Pinned).map_err(|e| {
                    D::Error::custom(format!(
                        "{e} (an agent reference is {{\"type\": \"agent\", \"id\": \"agent_…\", \"version\": N}})"
                    ))
                })
            }
            serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(AgentRef::Inline)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "agent must be an agent id (\"agent_…\"), {\"type\": \"agent\", \"id\", \"version\"}, or a whole version {name, model, …}",
            )),
        }
    }
}

/// One tool call of a scripted session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// Tool name.
    pub tool: String,
    /// Tool input.
    pub input: serde_json::Value,
}

/// Session states (One Horizon's). Transitions are enforced by the control
/// plane in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for a worker.
    Queued,
    /// Claimed and running.
    Active,
    /// Running, waiting for a person.
    AwaitingInput,
    /// Finished successfully.
    Complete,
    /// Finished with a failure, or out of attempts.
    Error,
    /// Its lease expired; about to be queued again.
    Stale,
    /// Stopped by a person.
    Cancelled,
}

impl SessionState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Queued => "queued",
            SessionState::Active => "active",
            SessionState::AwaitingInput => "awaiting_input",
            SessionState::Complete => "complete",
            SessionState::Error => "error",
            SessionState::Stale => "stale",
            SessionState::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<SessionState> {
        Some(match s {
            "queued" => SessionState::Queued,
            "active" => SessionState::Active,
            "awaiting_input" => SessionState::AwaitingInput,
            "complete" => SessionState::Complete,
            "error" => SessionState::Error,
            "stale" => SessionState::Stale,
            "cancelled" => SessionState::Cancelled,
            _ => return None,
        })
    }

    /// Finished: no work goes on, and only a person's follow-up queues the
    /// session again (an event stream ends here).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Complete | SessionState::Error | SessionState::Cancelled
        )
    }
}

/// `POST /v1/sessions`: queue work for an agent profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// Workspace the session belongs to.
    pub workspace: String,
    /// Agent profile the work is sent to.
    pub agent_profile: String,
    /// The agent: a version given whole, or an agent of the caller's team
    /// by reference (resolved and copied when queued).
    pub agent: AgentRef,
    /// The untrusted work.
    #[serde(default)]
    pub source: NewSource,
    /// Tool calls of a scripted session (`agent.model = "script"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<ScriptStep>>,
    /// The repository to check out and deliver the work to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<crate::repository::RepoWork>,
    /// What started it: `API` (the default) or `CLI` (`runner run`).
    /// Schedules start their own (`SCHEDULED_AGENT`); a caller cannot
    /// claim to be one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// What started a session, as the runs view reports it (`source`) and
/// lists filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    /// A call of an API (`POST /v1/sessions`, `POST /api/v1/agent/runs`, a
    /// Cloud Agents launch).
    #[default]
    Api,
    /// A schedule's tick.
    ScheduledAgent,
    /// `runner run`.
    Cli,
    /// The web pages.
    WebApp,
}

impl Trigger {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "API",
            Trigger::ScheduledAgent => "SCHEDULED_AGENT",
            Trigger::Cli => "CLI",
            Trigger::WebApp => "WEB_APP",
        }
    }

    /// The trigger of a stored or queried name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Trigger::Api,
            Trigger::ScheduledAgent,
            Trigger::Cli,
            Trigger::WebApp,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A session as the control plane returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// Session id.
    pub id: crate::ids::SessionId,
    /// Workspace.
    pub workspace: String,
    /// Agent profile.
    pub agent_profile: String,
    /// The pinned agent version (trusted).
    pub agent: AgentVersion,
    /// The agent it was copied from (`agent_…`), when the session named
    /// one by reference; `agent.version` is the version copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// What started it.
    #[serde(default)]
    pub trigger: Trigger,
    /// Whom it runs as: `agent:agent_…` (an agent's key, or an agent named
    /// by reference) or `user:NAME` (a person's call); absent for a key of
    /// nobody's, and for sessions from before identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// The source work (untrusted).
    pub source: SourceWork,
    /// Scripted tool calls, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<ScriptStep>>,
    /// The repository it works on, with its target branch filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<crate::repository::RepoWork>,
    /// Current state.
    pub state: SessionState,
    /// 1 for the first claim; counts claims whose lease expired.
    pub attempt: u32,
    /// Plan steps the worker reported.
    #[serde(default)]
    pub plan: Vec<String>,
    /// External URL the worker reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Summary (complete) or error (error) once terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agent(v: serde_json::Value) -> Result<AgentRef, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn an_agent_is_named_by_id_pinned_by_version_or_given_whole() {
        assert_eq!(
            agent(json!("agent_1")).unwrap(),
            AgentRef::Latest("agent_1".into())
        );
        assert_eq!(
            agent(json!({"type": "agent", "id": "agent_1", "version": 3})).unwrap(),
            AgentRef::Pinned(AgentPin {
                kind: AgentPinKind::Agent,
                id: "agent_1".into(),
                version: Some(3)
            })
        );
        let inline = agent(json!({"name": "a", "model": "m"})).unwrap();
        assert_eq!(inline.inline().map(|v| v.model.as_str()), Some("m"));
        // Round trip: each form serialises as it was given.
        for v in [json!("agent_1"), json!({"type": "agent", "id": "agent_1"})] {
            assert_eq!(serde_json::to_value(agent(v.clone()).unwrap()).unwrap(), v);
        }
    }

    #[test]
    fn a_mistake_gets_the_error_of_the_form_it_was_meant_as() {
        let e = agent(json!({"name": "a", "model": "m", "colour": "red"})).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = agent(json!({"type": "agent", "id": "agent_1", "colour": "red"})).unwrap_err();
        assert!(e.contains("colour") && e.contains("agent reference"), "{e}");
        let e = agent(json!({"type": "robot", "id": "x"})).unwrap_err();
        assert!(e.contains("robot"), "{e}");
        assert!(agent(json!(5)).unwrap_err().contains("agent id"));
    }
}
