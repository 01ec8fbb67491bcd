//! Which tools a model is offered: exactly the pinned agent version's
//! `enabled_tools` that this worker has, custom ones only as the worker
//! config allows (`[agent] custom_tools`), never an operator-only tool —
//! plus the loop's own two tools, which have no side effects.

use crate::model::OfferedTool;
use crate::tools::{Registry, ToolSource};
use protocol::session::AgentVersion;
use serde_json::json;

/// The loop's tool the model states or revises its plan with.
pub const UPDATE_PLAN: &str = "update_plan";
/// The loop's tool the model asks the user a question with.
pub const ASK_USER: &str = "ask_user";

/// The tools offered for a session, sorted by name, the loop's own last.
pub fn offered_tools(
    registry: &Registry,
    agent: &AgentVersion,
    custom_allowed: &[String],
) -> Vec<OfferedTool> {
    let mut out: Vec<OfferedTool> = registry
        .specs()
        .into_iter()
        .filter(|s| !s.operator_only)
        // The loop's own tools keep their names.
        .filter(|s| s.name != UPDATE_PLAN && s.name != ASK_USER)
        .filter(|s| match s.source {
            // An MCP server's tool is offered exactly as the version's
            // `mcp_toolsets` say (the default policy reads the same).
            ToolSource::Mcp => crate::tools::mcp_name_parts(&s.name)
                .is_some_and(|(server, tool)| agent.mcp_tool_permission(server, tool).is_some()),
            ToolSource::Builtin | ToolSource::Custom => {
                agent.enabled_tools.iter().any(|t| t == &s.name)
                    && !agent.disallowed_tools.iter().any(|t| t == &s.name)
                    && (s.source == ToolSource::Builtin
                        || custom_allowed.iter().any(|c| c == "*" || c == &s.name))
            }
        })
        .map(|s| OfferedTool {
            name: s.name.clone(),
            description: s.description.clone(),
            input_schema: s.input_schema.clone(),
        })
        .collect();
    out.push(OfferedTool {
        name: UPDATE_PLAN.into(),
        description: "State or revise your plan: the full list of steps, in order. People follow the work by it.".into(),
        input_schema: json!({
            "type": "object",
            "required": ["steps"],
            "additionalProperties": false,
            "properties": {"steps": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 500}}}
        }),
    });
    out.push(OfferedTool {
        name: ASK_USER.into(),
        description: "Ask the person who sent the work a question and wait for the answer. Use it only when you cannot go on without one.".into(),
        input_schema: json!({
            "type": "object",
            "required": ["question"],
            "additionalProperties": false,
            "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 2000}}
        }),
    });
    out
}
