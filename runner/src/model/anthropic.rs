//! Anthropic Messages with `tool_use` / `tool_result`:
//! `POST {base_url}/v1/messages`, `x-api-key`, `anthropic-version`.

use super::http::HttpCaller;
use super::{
    images_note, ImageData, Message, ModelClient, ModelError, ModelReply, ModelRequest,
    ProviderConfig, StopReason, ToolCall, Usage,
};
use crate::cancel::Cancel;
use crate::secret::Secret;
use protocol::image::ImageRef;
use serde_json::{json, Value};

/// The API version header this client speaks.
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A model behind the Messages API.
pub(crate) struct Anthropic {
    model: String,
    provider: String,
    max_tokens: u32,
    images: bool,
    http: HttpCaller,
}

impl Anthropic {
    /// A client for `model` at the provider's base URL.
    pub(crate) fn new(
        cfg: &ProviderConfig,
        model: &str,
        key: Option<Secret>,
    ) -> Result<Anthropic, String> {
        let url = format!("{}/v1/messages", cfg.base_url.trim_end_matches('/'));
        let mut headers = vec![("anthropic-version", ANTHROPIC_VERSION.to_string(), false)];
        if let Some(k) = key {
            headers.push(("x-api-key", k.expose().to_string(), true));
        }
        Ok(Anthropic {
            model: model.to_string(),
            provider: cfg.name.clone(),
            max_tokens: cfg.max_tokens,
            images: cfg.images,
            http: HttpCaller::new(cfg, url, headers)?,
        })
    }

    /// The request body (public for the wire-format tests). Consecutive
    /// messages of one role are merged: the API wants user and assistant
    /// turns to alternate, and tool results travel in a user turn.
    pub(crate) fn body(&self, req: &ModelRequest<'_>) -> Value {
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for m in req.messages {
            let (role, blocks) = match m {
                Message::User { content, images } => {
                    ("user", self.user_blocks(content, images, req.images))
                }
                Message::Assistant {
                    content,
                    tool_calls,
                } => {
                    let mut b = Vec::new();
                    if !content.trim().is_empty() {
                        b.push(json!({"type": "text", "text": content}));
                    }
                    for c in tool_calls {
                        let input = if c.arguments.is_object() {
                            c.arguments.clone()
                        } else {
                            json!({})
                        };
                        b.push(
                            json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                        );
                    }
                    ("assistant", b)
                }
                Message::Tool {
                    tool_call_id,
                    content,
                    is_error,
                    ..
                } => (
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content, "is_error": is_error}),
                    ],
                ),
            };
            if blocks.is_empty() {
                continue;
            }
            match turns.last_mut() {
                Some((r, b)) if *r == role => b.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": req.system,
            "messages": messages,
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                .collect();
        }
        body
    }

    /// A user turn's blocks: each image (for a model that takes them) as
    /// a base64 `image` block, then the text — the order Anthropic
    /// recommends. A model that does not take images reads a note saying
    /// how many were attached. The API refuses whitespace-only text
    /// blocks, so blank text is left out.
    fn user_blocks(&self, text: &str, images: &[ImageRef], data: &ImageData) -> Vec<Value> {
        let mut blocks = Vec::new();
        let mut text = text.to_string();
        if !images.is_empty() && !self.images {
            text = format!("{text}\n\n{}", images_note(images.len()));
        }
        if self.images {
            for i in images {
                blocks.push(match data.get(&i.id) {
                    Some(b64) => json!({"type": "image", "source": {
                        "type": "base64", "media_type": i.media_type, "data": &**b64,
                    }}),
                    None => json!({"type": "text", "text": format!("(image {} could not be loaded)", i.id)}),
                });
            }
        }
        if !text.trim().is_empty() {
            blocks.push(json!({"type": "text", "text": text}));
        }
        blocks
    }

    /// Reads a `message` object.
    pub(crate) fn parse(&self, v: &Value) -> Result<ModelReply, ModelError> {
        let bad = |m: &str| ModelError::Malformed {
            provider: self.provider.clone(),
            message: m.to_string(),
        };
        if v.get("type").and_then(|t| t.as_str()) != Some("message") {
            return Err(bad("the answer is not a message object"));
        }
        let blocks = v
            .get("content")
            .and_then(|c| c.as_array())
            .ok_or_else(|| bad("the message has no content array"))?;
        let mut text = Vec::new();
        let mut tool_calls = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            match b.get("type").and_then(|t| t.as_str()) {
                Some("text") => {
                    text.push(b.get("text").and_then(|t| t.as_str()).unwrap_or_default())
                }
                Some("tool_use") => tool_calls.push(ToolCall {
                    id: b
                        .get("id")
                        .and_then(|x| x.as_str())
                        .ok_or_else(|| bad(&format!("content[{i}] tool_use has no id")))?
                        .to_string(),
                    name: b
                        .get("name")
                        .and_then(|x| x.as_str())
                        .ok_or_else(|| bad(&format!("content[{i}] tool_use has no name")))?
                        .to_string(),
                    arguments: b.get("input").cloned().unwrap_or_else(|| json!({})),
                }),
                // thinking and other blocks carry nothing the loop needs.
                _ => {}
            }
        }
        let stop = match v.get("stop_reason").and_then(|s| s.as_str()) {
            Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
            None => StopReason::EndTurn,
        };
        let usage = v.get("usage").map(|u| Usage {
            input_tokens: u.get("input_tokens").and_then(|x| x.as_u64()).unwrap_or(0),
            output_tokens: u.get("output_tokens").and_then(|x| x.as_u64()).unwrap_or(0),
        });
        Ok(ModelReply {
            content: text.join("\n"),
            tool_calls,
            stop,
            usage: usage.unwrap_or_default(),
        })
    }
}

impl ModelClient for Anthropic {
    fn model(&self) -> &str {
        &self.model
    }

    fn takes_images(&self) -> bool {
        self.images
    }

    fn complete(&self, req: &ModelRequest<'_>, cancel: &Cancel) -> Result<ModelReply, ModelError> {
        let answer = self.http.post(&self.body(req), cancel)?;
        self.parse(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OfferedTool;

    fn client() -> Anthropic {
        client_with("")
    }

    fn client_with(extra: &str) -> Anthropic {
        let cfg: ProviderConfig = toml::from_str(&format!(
            "name = \"a\"\napi = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\nmodels = [\"m\"]\n{extra}"
        ))
        .unwrap();
        Anthropic::new(&cfg, "m", None).unwrap()
    }

    fn with_image(text: &str) -> (Vec<Message>, ImageData) {
        let msgs = vec![Message::User {
            content: text.into(),
            images: vec![ImageRef {
                id: "img_a".into(),
                media_type: "image/png".into(),
                width: 1,
                height: 1,
            }],
        }];
        let data = ImageData::from([("img_a".to_string(), "iVBORw0KGgo=".into())]);
        (msgs, data)
    }

    #[test]
    fn images_go_as_base64_blocks_before_the_text_to_a_model_that_takes_them() {
        let (msgs, data) = with_image("look (work)");
        let c = client_with("images = true");
        assert!(c.takes_images());
        let req = |m| ModelRequest {
            system: "sys",
            messages: m,
            tools: &[],
            images: &data,
        };
        let b = c.body(&req(&msgs));
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "look (work)"},
            ]}])
        );
        // Blank text: the image alone.
        let (blank, _) = with_image(" ");
        let b = c.body(&req(&blank));
        assert_eq!(b["messages"][0]["content"].as_array().unwrap().len(), 1);
        assert_eq!(b["messages"][0]["content"][0]["type"], "image");
    }

    #[test]
    fn a_model_without_images_reads_a_note_and_no_bytes() {
        let (msgs, data) = with_image("look (work)");
        let c = client();
        assert!(!c.takes_images());
        let b = c.body(&ModelRequest {
            system: "sys",
            messages: &msgs,
            tools: &[],
            images: &data,
        });
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "look (work)\n\n(1 image was attached; this model does not take images)"},
            ]}])
        );
    }

    #[test]
    fn tool_results_travel_in_one_user_turn_and_blank_text_is_dropped() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "Read".into(),
            arguments: json!({"path": "a"}),
        };
        let msgs = vec![
            Message::User {
                content: "work".into(),
                images: vec![],
            },
            Message::Assistant {
                content: "  \n".into(),
                tool_calls: vec![call("toolu_1"), call("toolu_2")],
            },
            Message::Tool {
                tool_call_id: "toolu_1".into(),
                name: "Read".into(),
                content: "x".into(),
                is_error: false,
            },
            Message::Tool {
                tool_call_id: "toolu_2".into(),
                name: "Read".into(),
                content: "denied".into(),
                is_error: true,
            },
            Message::User {
                content: "follow-up".into(),
                images: vec![],
            },
        ];
        let tools = [OfferedTool {
            name: "Read".into(),
            description: "d".into(),
            input_schema: json!({"type": "object"}),
        }];
        let b = client().body(&ModelRequest {
            system: "sys",
            messages: &msgs,
            tools: &tools,
            images: &ImageData::new(),
        });
        assert_eq!(b["system"], "sys");
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "{b}");
        assert_eq!(m[1]["role"], "assistant");
        assert!(
            m[1]["content"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["type"] == "tool_use"),
            "blank text dropped"
        );
        assert_eq!(m[2]["role"], "user");
        let c = m[2]["content"].as_array().unwrap();
        assert_eq!(
            (
                c[0]["type"].as_str(),
                c[1]["is_error"].as_bool(),
                c[2]["type"].as_str()
            ),
            (Some("tool_result"), Some(true), Some("text"))
        );
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn reads_tool_use_and_stop_reasons() {
        let r = client()
            .parse(&json!({"type": "message", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {"path": "a"}}], "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}}))
            .unwrap();
        assert_eq!(r.tool_calls[0].id, "toolu_9");
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(r.usage.output_tokens, 4);
        let r = client()
            .parse(&json!({"type": "message", "content": [], "stop_reason": "refusal"}))
            .unwrap();
        assert_eq!(r.stop, StopReason::Other("refusal".into()));
        assert!(client().parse(&json!({"type": "error"})).is_err());
    }
}
