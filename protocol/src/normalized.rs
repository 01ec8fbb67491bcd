//! The normalised action: what the policy saw (`input.action`) and what the
//! tool then acts on. Typed per kind so a tool reads `cwd_abs` or the
//! allowed `addresses` from a field, not by indexing a JSON document; the
//! serialised form is exactly the `input.action` of DESIGN.md.
//!
//! A [`crate::policy::DecisionRecord`] keeps its own copy of the action as a
//! JSON document, because the operator's masks may erase any part of it;
//! this type is the unmasked original the decision was made on.

use crate::policy::NetworkMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One normalised action, tagged by `kind` as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum NormalizedAction {
    /// Read a file or list a directory.
    #[serde(rename = "fs.read")]
    FsRead(NormalizedFile),
    /// Create, change or delete a file.
    #[serde(rename = "fs.write")]
    FsWrite(NormalizedFile),
    /// Run a shell command.
    #[serde(rename = "shell.exec")]
    ShellExec(NormalizedShell),
    /// Open a connection.
    #[serde(rename = "net.connect")]
    NetConnect(NormalizedConnect),
    /// A side effect on the platform.
    #[serde(rename = "workspace.write")]
    WorkspaceWrite(NormalizedOperation),
    /// A side effect outside both the sandbox and the platform.
    #[serde(rename = "external")]
    External(NormalizedOperation),
    /// A call to a tool of an MCP server.
    #[serde(rename = "mcp.call")]
    McpCall(NormalizedMcpCall),
    /// A query to the search provider.
    #[serde(rename = "web.search")]
    WebSearch(NormalizedSearch),
    /// A call the runner refused before any action existed (a tool the
    /// session does not offer); recorded, never performed.
    #[serde(rename = "tool.call")]
    ToolCall {
        /// The tool the model called.
        tool: String,
    },
}

impl NormalizedAction {
    /// The tool that asked for it.
    pub fn tool(&self) -> &str {
        match self {
            NormalizedAction::FsRead(f) | NormalizedAction::FsWrite(f) => &f.tool,
            NormalizedAction::ShellExec(s) => &s.tool,
            NormalizedAction::NetConnect(c) => &c.tool,
            NormalizedAction::WorkspaceWrite(o) | NormalizedAction::External(o) => &o.tool,
            NormalizedAction::McpCall(m) => &m.tool,
            NormalizedAction::WebSearch(w) => &w.tool,
            NormalizedAction::ToolCall { tool } => tool,
        }
    }

    /// The `kind` string as policies see it.
    pub fn kind(&self) -> &'static str {
        match self {
            NormalizedAction::FsRead(_) => "fs.read",
            NormalizedAction::FsWrite(_) => "fs.write",
            NormalizedAction::ShellExec(_) => "shell.exec",
            NormalizedAction::NetConnect(_) => "net.connect",
            NormalizedAction::WorkspaceWrite(_) => "workspace.write",
            NormalizedAction::External(_) => "external",
            NormalizedAction::McpCall(_) => "mcp.call",
            NormalizedAction::WebSearch(_) => "web.search",
            NormalizedAction::ToolCall { .. } => "tool.call",
        }
    }

    /// The file of an `fs.read` or `fs.write`.
    pub fn file(&self) -> Option<&NormalizedFile> {
        match self {
            NormalizedAction::FsRead(f) | NormalizedAction::FsWrite(f) => Some(f),
            _ => None,
        }
    }
}

/// A path-carrying action after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedFile {
    /// The tool that asked.
    pub tool: String,
    /// Workspace-relative clean path when inside (`.` for the root),
    /// absolute otherwise: what policies compare.
    pub path: String,
    /// The absolute, resolved path.
    pub path_abs: String,
    /// The path as the tool (or the model) wrote it.
    pub path_requested: String,
    /// Whether the resolved path lies inside the workspace.
    pub in_workspace: bool,
    /// `path` split on `/`, for set lookups (`.git` at any depth).
    pub path_components: Vec<String>,
    /// Whether the path lies inside a git directory of any name.
    pub git_state: bool,
    /// Which of the session's places the resolved path lies in:
    /// `workspace`, `skills` (read-only), `artifacts` (`/data`), or `""`
    /// (outside all of them).
    pub root: String,
}

/// A shell command after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedShell {
    /// The tool that asked.
    pub tool: String,
    /// The command line, run as `bash -c COMMAND`.
    pub command: String,
    /// Working directory as policies compare it (relative when inside).
    pub cwd: String,
    /// The absolute, resolved working directory the command runs in.
    pub cwd_abs: String,
    /// The working directory as requested.
    pub cwd_requested: String,
    /// Whether the working directory lies inside the workspace.
    pub cwd_in_workspace: bool,
    /// Network mode asked for.
    pub network: NetworkMode,
    /// Extra environment asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A connection after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedConnect {
    /// The tool that asked.
    pub tool: String,
    /// Lower-case host name or IP literal, without a trailing dot.
    pub host: String,
    /// Whether `host` is an IP literal.
    pub host_is_ip: bool,
    /// Port.
    pub port: u16,
    /// `http`, `https`, …
    pub scheme: String,
    /// HTTP method when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Canonical addresses (the literal, or what the name resolved to): the
    /// only addresses an allowed connection may go to.
    pub addresses: Vec<String>,
    /// `false` for the host-only phase, before any lookup.
    pub resolved: bool,
}

/// A platform or external operation (nothing to normalise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedOperation {
    /// The tool that asked.
    pub tool: String,
    /// `comment`, `git.push`, …
    pub operation: String,
    /// Remote, repository, channel…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A repository operation's details (`external` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<crate::policy::GitOperation>,
    /// The file an `artifact.deliver` delivers (`workspace.write` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::policy::ArtifactFile>,
}

/// An MCP tool call after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedMcpCall {
    /// The tool that asked (`mcp__<server>__<tool>`).
    pub tool: String,
    /// The server's name in the pinned agent version.
    pub server: String,
    /// The server's URL.
    pub url: String,
    /// The URL's host, lower case, without a trailing dot or port.
    pub host: String,
    /// The tool's name on the server.
    pub tool_name: String,
    /// The arguments sent.
    pub arguments: serde_json::Value,
}

/// A search query after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedSearch {
    /// The tool that asked.
    pub tool: String,
    /// The provider's name.
    pub provider: String,
    /// The query, trimmed.
    pub query: String,
    /// Results asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}
