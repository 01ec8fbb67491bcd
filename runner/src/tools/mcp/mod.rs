//! MCP servers' tools: the runner connects to each MCP server the pinned
//! agent version names (Streamable HTTP), lists its tools and offers them
//! as `mcp__<server>__<tool>`; every call is an `mcp.call` decision, and
//! the connection a `net.connect` decision under the address guard.

use serde::Deserialize;

/// `[mcp]` in the worker config: credentials and limits of MCP servers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSection {}
