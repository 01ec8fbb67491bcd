//! `Decide`: the decision itself as a tool. Its input is one action exactly
//! as a tool would ask for it; running it performs nothing — the decision,
//! recorded and reported like any other, is the whole effect. Operators use
//! it to ask "would this be allowed?" of the policy in force; it is never
//! offered to a model.

use super::{Tool, ToolError, ToolRun, ToolSource, ToolSpec};
use protocol::policy::{Action, ActionDetail};
use serde::Deserialize;

/// The `Decide` tool.
pub struct Decide {
    spec: ToolSpec,
}

impl Default for Decide {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Deserialize)]
struct Input {
    #[serde(default = "default_tool")]
    tool: String,
    #[serde(flatten)]
    detail: ActionDetail,
}

fn default_tool() -> String {
    "Decide".to_string()
}

impl Decide {
    /// The tool with its spec.
    pub fn new() -> Self {
        Decide {
            spec: ToolSpec {
                name: "Decide".into(),
                description: "Decide one action against the policy in force without performing it. Input: an action, e.g. {\"kind\": \"fs.write\", \"path\": \"src/main.rs\", \"tool\": \"Edit\"}.".into(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "kind": {"enum": ["fs.read", "fs.write", "shell.exec", "net.connect", "workspace.write", "external"]},
                        "tool": {"type": "string", "description": "the tool the action is decided for"}
                    }
                }),
                source: ToolSource::Builtin,
                capabilities: vec![
                    "fs.read".into(),
                    "fs.write".into(),
                    "shell.exec".into(),
                    "net.connect".into(),
                    "workspace.write".into(),
                    "external".into(),
                ],
                operator_only: true,
            },
        }
    }
}

impl Tool for Decide {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
        let i: Input =
            serde_json::from_value(input.clone()).map_err(|e| ToolError::InvalidInput {
                tool: "Decide".into(),
                message: e.to_string(),
            })?;
        Ok(vec![Action {
            tool: i.tool,
            detail: i.detail,
        }])
    }

    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
        let d = run
            .decisions
            .first()
            .ok_or_else(|| ToolError::Failed("no decision was made".into()))?;
        Ok(serde_json::json!({
            "result": d.record.result,
            "reasons": d.record.reasons,
            "confine": d.record.confine,
        }))
    }
}
