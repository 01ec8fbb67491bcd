//! At session start: for each MCP server of the pinned agent version that
//! offers at least one tool, decide the connection (host, then addresses),
//! connect to exactly the decided addresses, list the tools, and turn the
//! ones the version offers into [`McpTool`]s. A server that is refused or
//! unreachable leaves the session without its tools, with a note saying
//! why — it never fails the session.

use super::tool::{McpTool, ServerLink};
use super::McpSection;
use crate::cancel::Cancel;
use crate::policy::{connect, PolicyGate, SessionContext};
use crate::secret::Secret;
use crate::tools::{Tool, ToolSource, ToolSpec, MCP_PREFIX};
use protocol::session::{AgentVersion, McpServerRef};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// What connecting a session's MCP servers gave: the tools to offer, and
/// notes (a refused server, a dropped tool) for progress activities.
pub(crate) struct Connected {
    /// The tools, each `mcp__<server>__<tool>`.
    pub tools: Vec<Arc<dyn Tool>>,
    /// One line per server left out or tool dropped, never a secret.
    pub notes: Vec<String>,
}

/// Connects every server of `agent` that has a toolset (each connection
/// decided through `gate` as tool `mcp__<server>`), lists its tools and
/// keeps those the version offers.
pub(crate) fn connect_servers(
    cfg: &McpSection,
    gate: &PolicyGate,
    ctx: &SessionContext,
    agent: &AgentVersion,
    cancel: &Cancel,
) -> Connected {
    let mut out = Connected {
        tools: Vec::new(),
        notes: Vec::new(),
    };
    for server in &agent.mcp_servers {
        let Some(set) = agent.mcp_toolsets.get(&server.name) else {
            continue;
        };
        if !set.enabled && !set.configs.values().any(|c| c.enabled == Some(true)) {
            continue;
        }
        if cancel.is_cancelled() {
            break;
        }
        if let Err(e) = connect_one(cfg, gate, ctx, agent, server, cancel, &mut out) {
            out.notes.push(format!(
                "MCP server {}: not connected, its tools are not offered: {e}",
                server.name
            ));
        }
    }
    out
}

fn connect_one(
    cfg: &McpSection,
    gate: &PolicyGate,
    ctx: &SessionContext,
    agent: &AgentVersion,
    server: &McpServerRef,
    cancel: &Cancel,
    out: &mut Connected,
) -> Result<(), String> {
    let link = link(cfg, server)?;
    let listing = format!("{MCP_PREFIX}{}", server.name);
    let (addrs, _) = connect::decide(gate, ctx, &link.target(&listing)).map_err(|r| {
        format!(
            "the connection was not allowed by policy ({}): {}",
            r.0.result.as_str(),
            r.0.reasons.join("; ")
        )
    })?;
    // The whole listing phase of one server (handshake, every page) is
    // bounded by one call's time: a slow server delays the session's
    // start by that much at most.
    let deadline = Instant::now() + link.call_timeout();
    let mut client = link.connect(&addrs, deadline, cancel)?;
    let listed = client.list_tools(cfg.max_tools_per_server);
    client.close();
    let listed = listed.map_err(|e| link.redact(&e))?;
    let mut kept = 0usize;
    for t in &listed {
        let tool_name = t.get("name").and_then(Value::as_str).unwrap_or("");
        let full = format!("{listing}__{tool_name}");
        let shown = link.redact(&full.chars().take(100).collect::<String>());
        if tool_name.is_empty() || !valid_name(&full) {
            out.notes.push(format!(
                "MCP server {}: tool {shown:?} left out: a tool's full name must be 1–64 letters, digits, '_' or '-'",
                server.name
            ));
            continue;
        }
        if agent.mcp_tool_permission(&server.name, tool_name).is_none() {
            continue;
        }
        if kept >= cfg.max_tools_per_server {
            out.notes.push(format!(
                "MCP server {}: more than {} tools; the rest are left out",
                server.name, cfg.max_tools_per_server
            ));
            break;
        }
        let schema = t
            .get("inputSchema")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        if schema.to_string().len() > cfg.max_schema_bytes {
            out.notes.push(format!(
                "MCP server {}: tool {tool_name} left out: its input schema is larger than {} bytes",
                server.name, cfg.max_schema_bytes
            ));
            continue;
        }
        if let Err(why) = offerable_schema(&schema) {
            out.notes.push(format!(
                "MCP server {}: tool {tool_name} left out: {why}",
                server.name
            ));
            continue;
        }
        if let Err(e) = jsonschema::validator_for(&schema) {
            out.notes.push(format!(
                "MCP server {}: tool {tool_name} left out: its input schema is invalid: {}",
                server.name,
                link.redact(&e.to_string())
            ));
            continue;
        }
        let description = t.get("description").and_then(Value::as_str).unwrap_or("");
        let description: String = link
            .redact(description)
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(cfg.max_description_chars)
            .collect();
        let spec = ToolSpec {
            name: full,
            description: format!(
                "[MCP server {}; external, untrusted] {description}",
                server.name
            ),
            input_schema: schema,
            source: ToolSource::Mcp,
            capabilities: vec!["mcp.call".into(), "net.connect".into()],
            operator_only: false,
        };
        out.tools.push(Arc::new(McpTool::new(
            spec,
            link.clone(),
            tool_name.to_string(),
        )));
        kept += 1;
    }
    Ok(())
}

/// Whether the model APIs accept `schema` as a tool's input schema: an
/// object schema (`"type": "object"`) without a top-level `allOf`, `anyOf`
/// or `oneOf`. Anthropic refuses the whole request otherwise, so one such
/// tool would fail every turn of the session; it is left out instead.
fn offerable_schema(schema: &Value) -> Result<(), String> {
    let Some(o) = schema.as_object() else {
        return Err("its input schema is not a JSON object".into());
    };
    if o.get("type").and_then(Value::as_str) != Some("object") {
        return Err("its input schema is not of \"type\": \"object\"".into());
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if o.contains_key(k) {
            return Err(format!(
                "its input schema has a top-level {k}, which the model APIs refuse"
            ));
        }
    }
    Ok(())
}

/// `^[A-Za-z0-9_-]{1,64}$`: what OpenAI's and Anthropic's APIs accept.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The server's endpoint and the worker's credential for it, resolved now.
fn link(cfg: &McpSection, server: &McpServerRef) -> Result<ServerLink, String> {
    let url = url::Url::parse(&server.url).map_err(|e| format!("its URL is invalid: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("only http and https servers are supported".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with credentials are refused".into());
    }
    let host = url
        .host_str()
        .ok_or("its URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().ok_or("its URL has no port")?;
    let (auth, secrets) = match cfg.servers.iter().find(|c| c.matches(&server.name, &url)) {
        None => (None, Vec::new()),
        Some(c) => {
            let secret = c
                .secret
                .resolve(&format!("[[mcp.servers]] credential for {}", server.name))?;
            let value = if c.header.eq_ignore_ascii_case("authorization") {
                Secret::new(format!("Bearer {}", secret.expose()))
            } else {
                secret.clone()
            };
            (Some((c.header.clone(), value)), vec![secret])
        }
    };
    Ok(ServerLink {
        name: server.name.clone(),
        url: server.url.clone(),
        host,
        port,
        scheme: url.scheme().to_string(),
        auth,
        secrets,
        limits: cfg.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_models_accept() {
        assert!(valid_name("mcp__a__lookup"));
        assert!(!valid_name("mcp__a__bad.name"));
        assert!(!valid_name(&format!("mcp__a__{}", "x".repeat(60))));
    }

    #[test]
    fn only_object_schemas_without_top_level_combinators_are_offered() {
        use serde_json::json;
        assert!(offerable_schema(&json!({"type": "object"})).is_ok());
        assert!(offerable_schema(
            &json!({"type": "object", "properties": {"q": {"anyOf": [{"type": "string"}]}}})
        )
        .is_ok());
        for bad in [
            json!(true),
            json!("object"),
            json!({}),
            json!({"type": "string"}),
            json!({"type": ["object", "null"]}),
            json!({"type": "object", "anyOf": [{"required": ["a"]}]}),
            json!({"type": "object", "oneOf": []}),
            json!({"type": "object", "allOf": []}),
        ] {
            assert!(offerable_schema(&bad).is_err(), "{bad}");
        }
    }
}
