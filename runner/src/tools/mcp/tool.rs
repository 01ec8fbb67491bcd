//! One tool of an MCP server, as the model is offered it
//! (`mcp__<server>__<tool>`): its call is one `mcp.call` action (server,
//! URL, tool name and the arguments exactly as sent) and the connection to
//! the server a `net.connect` decided in two phases; the result comes back
//! as untrusted data, with every secret of the server redacted.

use super::client::{Connection, McpClient};
use super::McpSection;
use crate::cancel::Cancel;
use crate::policy::connect;
use crate::secret::Secret;
use crate::tools::{Tool, ToolError, ToolRun, ToolSpec};
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, ActionDetail};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where an MCP server is and what the worker sends it.
#[derive(Clone)]
pub(crate) struct ServerLink {
    /// The server's name in the pinned agent version.
    pub name: String,
    /// Its URL as pinned.
    pub url: String,
    /// Host (no brackets), port and scheme of `url`.
    pub host: String,
    pub port: u16,
    pub scheme: String,
    /// The header and its full value, when the worker has a credential.
    pub auth: Option<(String, Secret)>,
    /// The raw secret values, redacted from everything that comes back.
    pub secrets: Vec<Secret>,
    /// Limits.
    pub limits: McpSection,
}

impl ServerLink {
    /// The connection target for the policy, as tool `tool`.
    pub(crate) fn target<'a>(&'a self, tool: &'a str) -> connect::Target<'a> {
        connect::Target {
            tool,
            host: &self.host,
            port: self.port,
            scheme: &self.scheme,
            method: Some("POST"),
        }
    }

    /// Connects to exactly `addrs` and completes the MCP handshake; every
    /// request of the client is bounded by `call_timeout_ms`, and all of
    /// them together by `deadline`; `cancel` stops one between reads.
    pub(crate) fn connect(
        &self,
        addrs: &[SocketAddr],
        deadline: Instant,
        cancel: &Cancel,
    ) -> Result<McpClient, String> {
        McpClient::connect(&Connection {
            url: &self.url,
            addrs,
            auth: self.auth.as_ref().map(|(h, v)| (h.as_str(), v)),
            connect_timeout: Duration::from_millis(self.limits.connect_timeout_ms),
            call_timeout: self.call_timeout(),
            deadline,
            cancel,
            max_bytes: self.limits.max_result_bytes,
        })
        .map_err(|e| self.redact(&e))
    }

    /// The time one request to the server may take in all.
    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.call_timeout_ms)
    }

    /// `text` with every secret value of this server replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter().filter(|s| !s.expose().is_empty()) {
            out = out.replace(s.expose(), "[redacted]");
        }
        out
    }
}

/// A tool of an MCP server.
pub struct McpTool {
    spec: ToolSpec,
    link: ServerLink,
    tool_name: String,
}

impl McpTool {
    /// The tool `tool_name` of the server behind `link`, offered under
    /// `spec` (its name `mcp__<server>__<tool>`, its schema the server's).
    pub(crate) fn new(spec: ToolSpec, link: ServerLink, tool_name: String) -> McpTool {
        McpTool {
            spec,
            link,
            tool_name,
        }
    }
}

impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &Value) -> Result<Vec<Action>, ToolError> {
        Ok(vec![
            Action {
                tool: self.spec.name.clone(),
                detail: ActionDetail::McpCall {
                    server: self.link.name.clone(),
                    url: self.link.url.clone(),
                    tool_name: self.tool_name.clone(),
                    arguments: input.clone(),
                },
            },
            // The server's host alone: nothing is resolved before it is
            // allowed; its addresses are decided as the follow-up.
            connect::host_action(&self.link.target(&self.spec.name)),
        ])
    }

    fn follow_up(&self, action: &Action) -> Option<Action> {
        match &action.detail {
            ActionDetail::NetConnect {
                resolved: false, ..
            } => Some(connect::resolved_action(&self.link.target(&self.spec.name))),
            _ => None,
        }
    }

    fn run(&self, run: ToolRun<'_>) -> Result<Value, ToolError> {
        // The decided call is the call made: its arguments, its tool.
        let call = run
            .decisions
            .iter()
            .find_map(|d| match &d.action {
                Some(NormalizedAction::McpCall(c)) => Some(c),
                _ => None,
            })
            .ok_or_else(|| ToolError::Failed("no decision on the MCP call was made".into()))?;
        if call.url != self.link.url || call.tool_name != self.tool_name {
            return Err(ToolError::Failed(
                "the decided MCP call is not this tool's; nothing was sent".into(),
            ));
        }
        let resolved = crate::tools::resolved_connect(run.decisions, "the server's addresses")?;
        if resolved.port != self.link.port {
            return Err(ToolError::Failed(
                "the decided connection is to another port; nothing was sent".into(),
            ));
        }
        let addrs: Vec<SocketAddr> = resolved
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|ip| SocketAddr::new(ip, resolved.port))
            .collect();
        if run.cancel.is_cancelled() {
            return Err(ToolError::Failed("cancelled; nothing was sent".into()));
        }
        let server = &self.link.name;
        let fail =
            |e: String| ToolError::Failed(self.link.redact(&format!("MCP server {server}: {e}")));
        // Handshake and call: one call's time, twice over at most.
        let deadline = Instant::now() + 2 * self.link.call_timeout();
        let mut client = self
            .link
            .connect(&addrs, deadline, run.cancel)
            .map_err(fail)?;
        let result = client.call_tool(&self.tool_name, &call.arguments);
        client.close();
        let result = result.map_err(fail)?;
        let (text, is_error) = result_text(&result);
        let text = self.link.redact(&text);
        if is_error {
            return Err(ToolError::Failed(format!(
                "MCP server {server}, tool {}: {text}",
                self.tool_name
            )));
        }
        let mut out = json!({
            "server": server,
            "tool": self.tool_name,
            "content": text,
        });
        if let Some(s) = result.get("structuredContent").filter(|s| !s.is_null()) {
            let s = self.link.redact(&s.to_string());
            out["structured"] = serde_json::from_str(&s).unwrap_or(Value::String(s));
        }
        Ok(out)
    }
}

/// The text of a `CallToolResult` (its text parts joined, other parts
/// named) and its `isError`.
fn result_text(r: &Value) -> (String, bool) {
    let is_error = r.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let parts: Vec<String> = r
        .get("content")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|p| match p.get("type").and_then(Value::as_str) {
                    Some("text") => p
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    Some(kind) => format!(
                        "({kind} {} omitted)",
                        p.get("mimeType")
                            .and_then(Value::as_str)
                            .unwrap_or("content")
                    ),
                    None => "(untyped content omitted)".into(),
                })
                .collect()
        })
        .unwrap_or_default();
    (parts.join("\n"), is_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ToolSource;

    fn link(secret: &str) -> ServerLink {
        ServerLink {
            name: "a".into(),
            url: "http://127.0.0.1:1/mcp".into(),
            host: "127.0.0.1".into(),
            port: 1,
            scheme: "http".into(),
            auth: Some((
                "Authorization".into(),
                Secret::new(format!("Bearer {secret}")),
            )),
            secrets: vec![Secret::new(secret)],
            limits: McpSection::default(),
        }
    }

    #[test]
    fn an_echoed_secret_is_redacted() {
        let l = link("tok-123");
        assert_eq!(
            l.redact("you sent Bearer tok-123, tok-123!"),
            "you sent Bearer [redacted], [redacted]!"
        );
    }

    #[test]
    fn the_plan_is_the_call_then_the_host() {
        let t = McpTool::new(
            ToolSpec {
                name: "mcp__a__lookup".into(),
                description: String::new(),
                input_schema: json!({"type": "object"}),
                source: ToolSource::Mcp,
                capabilities: vec![],
                operator_only: false,
            },
            link("x"),
            "lookup".into(),
        );
        let plan = t.plan(&json!({"key": "k"})).unwrap();
        assert_eq!(plan.len(), 2);
        match &plan[0].detail {
            ActionDetail::McpCall {
                server,
                url,
                tool_name,
                arguments,
            } => {
                assert_eq!(
                    (server.as_str(), url.as_str(), tool_name.as_str()),
                    ("a", "http://127.0.0.1:1/mcp", "lookup")
                );
                assert_eq!(arguments, &json!({"key": "k"}));
            }
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            plan[1].detail,
            ActionDetail::NetConnect {
                resolved: false,
                ..
            }
        ));
    }

    #[test]
    fn results_keep_text_and_name_other_parts() {
        let (t, e) = result_text(
            &json!({"content": [{"type": "text", "text": "42"}, {"type": "image", "mimeType": "image/png", "data": "AAA"}], "isError": false}),
        );
        assert_eq!(t, "42\n(image image/png omitted)");
        assert!(!e);
        assert!(result_text(&json!({"content": [], "isError": true})).1);
    }
}
