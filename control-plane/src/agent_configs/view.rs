//! What the agent-configuration API answers: an agent at one version, and
//! the page envelope every list shares.

use super::config::AgentConfig;
use serde::Serialize;

/// An agent at one version, as the store keeps it.
#[derive(Debug, Clone)]
pub(crate) struct AgentRecord {
    /// `agent_…`.
    pub(crate) id: String,
    /// The version this record is.
    pub(crate) version: u32,
    /// Its configuration at that version.
    pub(crate) config: AgentConfig,
    /// When it was archived (ms), if it was.
    pub(crate) archived_at: Option<i64>,
    /// When the agent was created (ms).
    pub(crate) created_at: i64,
    /// When this version was written (ms).
    pub(crate) updated_at: i64,
    /// Whether it is its team's default agent.
    pub(crate) is_default: bool,
    /// Whether the team's plan lets it run (its place among the team's
    /// live agents is within the limit).
    pub(crate) available: bool,
}

/// The JSON of an agent: the seed's fields.
#[derive(Debug, Serialize)]
pub(crate) struct AgentView {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    config: AgentConfig,
    version: u32,
    archived: bool,
    archived_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<AgentRecord> for AgentView {
    fn from(r: AgentRecord) -> Self {
        AgentView {
            id: r.id,
            kind: "agent",
            config: r.config,
            version: r.version,
            archived: r.archived_at.is_some(),
            archived_at: r.archived_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// A model a worker serves.
#[derive(Debug, Serialize)]
pub(crate) struct ModelView {
    /// The id to give as an agent's `model`.
    pub(crate) id: String,
    /// Always `model`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// The id again (workers report no other name).
    pub(crate) display_name: String,
    /// When a worker first reported it (its registration).
    pub(crate) created_at: String,
}

/// A page of a list: `{data, has_more, first_id, last_id, next_page}`.
/// `next_page` is the cursor of the next page (`?page=`), present exactly
/// when `has_more` is: the vendor's client stops at a page without one.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    /// The items.
    pub(crate) data: Vec<T>,
    /// Whether more follow.
    pub(crate) has_more: bool,
    /// The first item's id.
    pub(crate) first_id: Option<String>,
    /// The last item's id.
    pub(crate) last_id: Option<String>,
    /// The next page's cursor.
    pub(crate) next_page: Option<String>,
}

/// RFC 3339 in UTC with milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
