//! An agent's tool entries, and what they become for the policy: the
//! pinned [`AgentVersion`]'s `enabled_tools`, `disallowed_tools` and
//! `tool_policies`, which `policies/decision.rego` reads as
//! `input.trusted.agent` (a disallowed tool is denied, an `always_ask`
//! one asks).

use super::config::AgentConfig;
use protocol::session::AgentVersion;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The built-in toolset's type.
pub(crate) const TOOLSET: &str = "agent_toolset_20260401";

/// The built-in tools an agent may enable (the seed's list), by the names
/// the runner and the policy use. `WebSearch` and `DeliverArtifacts` are
/// accepted; a worker that has no such tool does not offer it.
pub(crate) const BUILTIN_TOOLS: [&str; 9] = [
    "Bash",
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "WebFetch",
    "WebSearch",
    "DeliverArtifacts",
];

/// The vendor client's other spelling of each (`configs[].name`).
const SNAKE: [(&str, &str); 9] = [
    ("bash", "Bash"),
    ("read", "Read"),
    ("write", "Write"),
    ("edit", "Edit"),
    ("glob", "Glob"),
    ("grep", "Grep"),
    ("web_fetch", "WebFetch"),
    ("web_search", "WebSearch"),
    ("deliver_artifacts", "DeliverArtifacts"),
];

/// A built-in tool's name as the runner knows it, from either spelling
/// (`Bash` or `bash`, `WebFetch` or `web_fetch`); `None` for no such tool.
pub(crate) fn canonical_tool(name: &str) -> Option<&'static str> {
    BUILTIN_TOOLS
        .iter()
        .find(|t| **t == name)
        .copied()
        .or_else(|| SNAKE.iter().find(|(s, _)| *s == name).map(|(_, t)| *t))
}

/// One entry of `tools`.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Tool {
    #[serde(rename = "agent_toolset_20260401")]
    Toolset(Toolset),
    #[serde(rename = "mcp_toolset")]
    Mcp(McpToolset),
    #[serde(rename = "custom")]
    Custom {},
}

#[derive(Deserialize)]
struct Toolset {
    #[serde(default)]
    enabled_tools: Option<Vec<String>>,
    #[serde(default)]
    disallowed_tools: Option<Vec<String>>,
    #[serde(default)]
    default_config: Option<ToolConfig>,
    #[serde(default)]
    configs: Option<Vec<NamedConfig>>,
}

#[derive(Deserialize)]
struct McpToolset {
    mcp_server_name: String,
    #[serde(default)]
    default_config: Option<ToolConfig>,
    #[serde(default)]
    configs: Option<Vec<NamedConfig>>,
}

#[derive(Deserialize, Default)]
struct ToolConfig {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    permission_policy: Option<PermissionPolicy>,
}

#[derive(Deserialize)]
struct NamedConfig {
    name: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    permission_policy: Option<PermissionPolicy>,
}

#[derive(Deserialize, Clone, Copy)]
struct PermissionPolicy {
    #[serde(rename = "type")]
    kind: Policy,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Policy {
    AlwaysAllow,
    AlwaysAsk,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::AlwaysAllow => "always_allow",
            Policy::AlwaysAsk => "always_ask",
        }
    }
}

fn parse(i: usize, v: &Value) -> Result<Tool, String> {
    serde_json::from_value::<Tool>(v.clone()).map_err(|e| {
        format!(
            "tools[{i}]: {e}; an entry is {{\"type\": \"{TOOLSET}\", \"enabled_tools\"?, \"disallowed_tools\"?, \"default_config\"?, \"configs\"?}} or {{\"type\": \"mcp_toolset\", \"mcp_server_name\"}}"
        )
    })
}

fn check_names(i: usize, field: &str, names: &[String]) -> Result<(), String> {
    for (j, n) in names.iter().enumerate() {
        if canonical_tool(n).is_none() {
            return Err(format!(
                "tools[{i}].{field}[{j}]: unknown tool {n:?}; the toolset's tools are {}",
                BUILTIN_TOOLS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks every entry: its shape, tool names that exist, permission
/// policies that are `always_allow` or `always_ask`, MCP toolsets that name
/// one of `mcp_servers`. Client-side (`custom`) tools are refused: nothing
/// here can run them.
pub(crate) fn check_tools(tools: &[Value], mcp_servers: &[&str]) -> Result<(), String> {
    let mut toolsets = 0;
    for (i, v) in tools.iter().enumerate() {
        match parse(i, v)? {
            Tool::Toolset(t) => {
                toolsets += 1;
                if toolsets > 1 {
                    return Err(format!("tools[{i}]: give the {TOOLSET} toolset once"));
                }
                check_names(i, "enabled_tools", t.enabled_tools.as_deref().unwrap_or(&[]))?;
                check_names(i, "disallowed_tools", t.disallowed_tools.as_deref().unwrap_or(&[]))?;
                for (j, c) in t.configs.iter().flatten().enumerate() {
                    if canonical_tool(&c.name).is_none() {
                        return Err(format!(
                            "tools[{i}].configs[{j}].name: unknown tool {:?}; the toolset's tools are {}",
                            c.name,
                            BUILTIN_TOOLS.join(", ")
                        ));
                    }
                }
            }
            Tool::Mcp(m) => {
                if !mcp_servers.contains(&m.mcp_server_name.as_str()) {
                    return Err(format!(
                        "tools[{i}].mcp_server_name {:?} names none of mcp_servers",
                        m.mcp_server_name
                    ));
                }
            }
            Tool::Custom {} => {
                return Err(format!(
                    "tools[{i}]: custom (client-side) tools are not supported here: nothing would run them; use the {TOOLSET} toolset or an MCP server"
                ))
            }
        }
    }
    Ok(())
}

/// The version a session pins: `config` at `version`, its tools read as
/// the policy reads them.
///
/// - `enabled_tools`: the toolset's `enabled_tools`, or every built-in
///   tool when it gives none and `default_config.enabled` is not `false`;
///   plus `configs` with `enabled: true`, minus those with `enabled:
///   false`, minus `disallowed_tools`. No toolset: no tools (the seed: an
///   agent without tools only talks).
/// - `disallowed_tools`: as given (the policy denies them even if
///   something else enabled them).
/// - `tool_policies`: each tool's `configs[].permission_policy`, else the
///   toolset's `default_config.permission_policy`; a tool with neither has
///   no entry (always allow).
///
/// The config must have been checked ([`check_tools`]); an entry that
/// does not parse is skipped (enabling nothing).
pub(crate) fn agent_version(config: &AgentConfig, version: u32) -> AgentVersion {
    let mut enabled: Vec<String> = Vec::new();
    let mut disallowed: Vec<String> = Vec::new();
    let mut policies: BTreeMap<String, String> = BTreeMap::new();
    for (i, v) in config.tools.iter().enumerate() {
        let Ok(Tool::Toolset(t)) = parse(i, v) else {
            continue;
        };
        let default = t.default_config.unwrap_or_default();
        let base: Vec<&'static str> = match &t.enabled_tools {
            Some(names) => names.iter().filter_map(|n| canonical_tool(n)).collect(),
            None if default.enabled == Some(false) => Vec::new(),
            None => BUILTIN_TOOLS.to_vec(),
        };
        let mut on: Vec<&'static str> = base;
        for c in t.configs.iter().flatten() {
            let Some(name) = canonical_tool(&c.name) else {
                continue;
            };
            match c.enabled {
                Some(true) if !on.contains(&name) => on.push(name),
                Some(false) => on.retain(|x| *x != name),
                _ => {}
            }
        }
        let off: Vec<&'static str> = t
            .disallowed_tools
            .iter()
            .flatten()
            .filter_map(|n| canonical_tool(n))
            .collect();
        on.retain(|x| !off.contains(x));
        for name in &on {
            let explicit = t
                .configs
                .iter()
                .flatten()
                .find(|c| canonical_tool(&c.name) == Some(name))
                .and_then(|c| c.permission_policy);
            if let Some(p) = explicit.or(default.permission_policy) {
                policies.insert(name.to_string(), p.kind.as_str().to_string());
            }
        }
        for name in on {
            if !enabled.iter().any(|e| e == name) {
                enabled.push(name.to_string());
            }
        }
        for name in off {
            if !disallowed.iter().any(|e| e == name) {
                disallowed.push(name.to_string());
            }
        }
    }
    let mut mcp_toolsets: BTreeMap<String, protocol::session::McpToolset> = BTreeMap::new();
    for (i, v) in config.tools.iter().enumerate() {
        let Ok(Tool::Mcp(m)) = parse(i, v) else {
            continue;
        };
        let default = m.default_config.unwrap_or_default();
        let set = protocol::session::McpToolset {
            enabled: default.enabled.unwrap_or(true),
            // The vendors' default for an MCP server's tools is to ask.
            permission_policy: default
                .permission_policy
                .map_or(Policy::AlwaysAsk, |p| p.kind)
                .as_str()
                .to_string(),
            configs: m
                .configs
                .iter()
                .flatten()
                .map(|c| {
                    (
                        c.name.clone(),
                        protocol::session::McpToolConfig {
                            enabled: c.enabled,
                            permission_policy: c
                                .permission_policy
                                .map(|p| p.kind.as_str().to_string()),
                        },
                    )
                })
                .collect(),
        };
        mcp_toolsets.insert(m.mcp_server_name, set);
    }
    let mcp_servers = config
        .mcp_servers
        .iter()
        .filter_map(|s| {
            Some(protocol::session::McpServerRef {
                name: s.get("name")?.as_str()?.to_string(),
                url: s.get("url")?.as_str()?.to_string(),
            })
        })
        .collect();
    AgentVersion {
        mcp_servers,
        mcp_toolsets,
        pinned_skills: Vec::new(),
        name: config.name.clone(),
        version,
        model: config.model.id().unwrap_or_default().to_string(),
        system_prompt: config.system.clone(),
        enabled_tools: enabled,
        disallowed_tools: disallowed,
        tool_policies: policies,
        skills: config
            .skills
            .iter()
            .filter_map(|s| s.get("skill_id").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        metadata: config.metadata.clone(),
        grants: serde_json::Map::new(),
    }
}
