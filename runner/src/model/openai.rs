//! OpenAI-compatible Chat Completions with tool calling: OpenAI, vLLM,
//! Ollama (`/v1`), llama.cpp's server. `POST {base_url}/chat/completions`.

use super::http::HttpCaller;
use super::{
    images_note, ImageData, Message, ModelClient, ModelError, ModelReply, ModelRequest,
    ProviderConfig, StopReason, ToolCall, Usage,
};
use crate::cancel::Cancel;
use crate::secret::Secret;
use protocol::image::ImageRef;
use serde_json::{json, Value};

/// A model behind a Chat Completions endpoint.
pub struct OpenAi {
    model: String,
    provider: String,
    max_tokens: u32,
    max_tokens_field: String,
    images: bool,
    http: HttpCaller,
}

impl OpenAi {
    /// A client for `model` at the provider's base URL.
    pub fn new(cfg: &ProviderConfig, model: &str, key: Option<Secret>) -> Result<OpenAi, String> {
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let mut headers = Vec::new();
        if let Some(k) = key {
            headers.push(("authorization", format!("Bearer {}", k.expose()), true));
        }
        Ok(OpenAi {
            model: model.to_string(),
            provider: cfg.name.clone(),
            max_tokens: cfg.max_tokens,
            max_tokens_field: cfg.max_tokens_field.clone(),
            images: cfg.images,
            http: HttpCaller::new(cfg, url, headers)?,
        })
    }

    /// The request body (public for the wire-format tests).
    pub fn body(&self, req: &ModelRequest<'_>) -> Value {
        let mut messages = vec![json!({"role": "system", "content": req.system})];
        for m in req.messages {
            messages.push(match m {
                Message::User { content, images } => {
                    json!({"role": "user", "content": self.user_content(content, images, req.images)})
                }
                Message::Assistant { content, tool_calls } => {
                    let mut v = json!({
                        "role": "assistant",
                        "content": if content.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(content) },
                    });
                    if !tool_calls.is_empty() {
                        v["tool_calls"] = tool_calls
                            .iter()
                            .map(|c| {
                                json!({
                                    "id": c.id,
                                    "type": "function",
                                    "function": {"name": c.name, "arguments": arguments_text(&c.arguments)},
                                })
                            })
                            .collect();
                    }
                    v
                }
                Message::Tool { tool_call_id, content, .. } => {
                    json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
                }
            });
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
        });
        body[self.max_tokens_field.as_str()] = json!(self.max_tokens);
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.input_schema,
                    }})
                })
                .collect();
        }
        body
    }

    /// A user turn's `content`: the text alone (a string, as before images
    /// existed), or — with images, for a model that takes them — content
    /// parts, the text then each image as a `data:` URL. A model that does
    /// not take them reads a note saying how many were attached.
    fn user_content(&self, text: &str, images: &[ImageRef], data: &ImageData) -> Value {
        if images.is_empty() {
            return json!(text);
        }
        if !self.images {
            return json!(format!("{text}\n\n{}", images_note(images.len())));
        }
        let mut parts = vec![json!({"type": "text", "text": text})];
        for i in images {
            parts.push(match data.get(&i.id) {
                Some(b64) => json!({"type": "image_url", "image_url": {
                    "url": format!("data:{};base64,{b64}", i.media_type),
                }}),
                None => {
                    json!({"type": "text", "text": format!("(image {} could not be loaded)", i.id)})
                }
            });
        }
        Value::Array(parts)
    }

    /// Reads a `chat.completion` object.
    pub fn parse(&self, v: &Value) -> Result<ModelReply, ModelError> {
        let bad = |m: &str| ModelError::Malformed {
            provider: self.provider.clone(),
            message: m.to_string(),
        };
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| bad("no choices[0] in the completion"))?;
        let message = choice
            .get("message")
            .ok_or_else(|| bad("choices[0] has no message"))?;
        let content = message
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string();
        let mut tool_calls = Vec::new();
        for (i, c) in message
            .get("tool_calls")
            .and_then(|t| t.as_array())
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let f = c
                .get("function")
                .ok_or_else(|| bad(&format!("tool_calls[{i}] has no function")))?;
            let name = f
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| bad(&format!("tool_calls[{i}] has no function.name")))?;
            // Arguments are a JSON *string*; one that does not parse is kept
            // as a string and answered with an error result. Some
            // compatible servers send an object: taken as it is.
            let arguments = match f.get("arguments") {
                Some(Value::String(raw)) if raw.trim().is_empty() => json!({}),
                Some(Value::String(raw)) => {
                    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
                }
                Some(v @ Value::Object(_)) => v.clone(),
                None | Some(Value::Null) => json!({}),
                Some(other) => Value::String(other.to_string()),
            };
            let id = c
                .get("id")
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{i}"));
            tool_calls.push(ToolCall {
                id,
                name: name.to_string(),
                arguments,
            });
        }
        let stop = match choice.get("finish_reason").and_then(|f| f.as_str()) {
            Some("stop") => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
            None if !tool_calls.is_empty() => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        let usage = v.get("usage").map(|u| Usage {
            input_tokens: u.get("prompt_tokens").and_then(|x| x.as_u64()).unwrap_or(0),
            output_tokens: u
                .get("completion_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
        });
        Ok(ModelReply {
            content,
            tool_calls,
            stop,
            usage: usage.unwrap_or_default(),
        })
    }
}

/// Arguments as Chat Completions carries them: a JSON text.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ModelClient for OpenAi {
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

    fn client(extra: &str) -> OpenAi {
        let cfg: ProviderConfig = toml::from_str(&format!(
            "name = \"o\"\napi = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"m\"]\n{extra}"
        ))
        .unwrap();
        OpenAi::new(&cfg, "m", None).unwrap()
    }

    #[test]
    fn system_first_arguments_as_text_and_the_token_field() {
        let msgs = vec![
            Message::User {
                content: "work".into(),
                images: vec![],
            },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "Read".into(),
                    arguments: json!({"path": "a"}),
                }],
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                name: "Read".into(),
                content: "x".into(),
                is_error: false,
            },
        ];
        let b = client("").body(&ModelRequest {
            system: "sys",
            messages: &msgs,
            tools: &[],
            images: &ImageData::new(),
        });
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert_eq!(b["messages"][3]["tool_call_id"], "call_1");
        assert_eq!(b["max_tokens"], 4096);
        assert!(b.get("tools").is_none());
        let b = client("max_tokens_field = \"max_completion_tokens\"").body(&ModelRequest {
            system: "s",
            messages: &[],
            tools: &[],
            images: &ImageData::new(),
        });
        assert!(b.get("max_tokens").is_none() && b["max_completion_tokens"] == 4096);
    }

    fn with_image() -> (Vec<Message>, ImageData) {
        let msgs = vec![Message::User {
            content: "look (work)".into(),
            images: vec![
                ImageRef {
                    id: "img_a".into(),
                    media_type: "image/png".into(),
                    width: 1,
                    height: 1,
                },
                ImageRef {
                    id: "img_b".into(),
                    media_type: "image/jpeg".into(),
                    width: 2,
                    height: 2,
                },
            ],
        }];
        let data = ImageData::from([
            ("img_a".to_string(), "iVBORw0KGgo=".into()),
            ("img_b".to_string(), "/9j/4AAQ".into()),
        ]);
        (msgs, data)
    }

    #[test]
    fn images_go_as_content_parts_with_data_urls_to_a_model_that_takes_them() {
        let (msgs, data) = with_image();
        let c = client("images = true");
        assert!(c.takes_images());
        let b = c.body(&ModelRequest {
            system: "sys",
            messages: &msgs,
            tools: &[],
            images: &data,
        });
        assert_eq!(
            b["messages"][1],
            json!({"role": "user", "content": [
                {"type": "text", "text": "look (work)"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ]})
        );
    }

    #[test]
    fn a_model_without_images_reads_a_note_and_no_bytes() {
        let (msgs, data) = with_image();
        let c = client("");
        assert!(!c.takes_images());
        let b = c.body(&ModelRequest {
            system: "sys",
            messages: &msgs,
            tools: &[],
            images: &data,
        });
        assert_eq!(
            b["messages"][1],
            json!({"role": "user", "content": "look (work)\n\n(2 images were attached; this model does not take images)"})
        );
        assert!(!b.to_string().contains("iVBORw0KGgo"));
    }

    #[test]
    fn reads_string_object_and_broken_arguments_and_finish_reasons() {
        let reply = |args: Value, finish: &str| {
            client("").parse(&json!({"choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": args}}]}}]}))
        };
        assert_eq!(
            reply(json!("{\"path\":\"a\"}"), "tool_calls")
                .unwrap()
                .tool_calls[0]
                .arguments,
            json!({"path": "a"})
        );
        assert_eq!(
            reply(json!({"path": "b"}), "tool_calls")
                .unwrap()
                .tool_calls[0]
                .arguments,
            json!({"path": "b"})
        );
        assert_eq!(
            reply(json!("{\"path\": "), "tool_calls")
                .unwrap()
                .tool_calls[0]
                .arguments,
            json!("{\"path\": ")
        );
        assert_eq!(
            reply(json!("{}"), "content_filter").unwrap().stop,
            StopReason::Other("content_filter".into())
        );
        assert_eq!(
            reply(json!("{}"), "length").unwrap().stop,
            StopReason::MaxTokens
        );
        assert!(client("").parse(&json!({"choices": []})).is_err());
    }
}
