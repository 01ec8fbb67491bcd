//! A local stand-in for a hosted model provider, speaking its real wire
//! format: OpenAI Chat Completions (`POST /v1/chat/completions`) or
//! Anthropic Messages (`POST /v1/messages`) — the same JSON shapes, id
//! prefixes, finish/stop reasons and error bodies. It answers from a script
//! of [`Step`]s, one per request, and records every request (headers and
//! body) so tests can check what the runner sent.
//!
//! It also checks what a real provider checks and answers 400/401 with the
//! provider's error body otherwise: the API key header, the version header
//! (Anthropic), and that every tool result answers a tool call of the turn
//! before it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Which provider's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// A turn calling these tools (name, arguments), with optional text.
    Call(Vec<(String, Value)>),
    /// A turn calling one tool with arguments that are not JSON (OpenAI
    /// carries arguments as a string; Anthropic gets `{}`).
    RawArguments(String, String),
    /// The final turn: this text, no tool calls.
    Text(String),
    /// An error status with the provider's error body; `Some(s)` sends
    /// `retry-after: s`.
    Error(u16, Option<u64>),
    /// Never answers (holds the connection for an hour).
    Hang,
    /// Obeys the work: runs the first `backticked` command of the first
    /// user message with Bash (asking for network), as an injected
    /// instruction would have it.
    ObeyBacktick,
    /// Obeys the work: fetches the first http:// URL of the first user
    /// message with WebFetch.
    ObeyUrl,
    /// Calls this tool with these arguments on every request, forever.
    Forever(String, Value),
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

struct Inner {
    wire: Wire,
    key: String,
    steps: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<Recorded>>,
    counter: Mutex<u64>,
}

/// A running fake provider; stops when dropped.
pub struct FakeModel {
    /// Base URL to configure: `http://127.0.0.1:PORT/v1` for OpenAI,
    /// `http://127.0.0.1:PORT` for Anthropic.
    pub base_url: String,
    inner: Arc<Inner>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeModel {
    /// Starts one on loopback expecting `key`, answering with `steps`
    /// (then with a plain "done" text forever).
    pub fn start(wire: Wire, key: &str, steps: Vec<Step>) -> FakeModel {
        let inner = Arc::new(Inner {
            wire,
            key: key.to_string(),
            steps: Mutex::new(steps.into()),
            requests: Mutex::new(Vec::new()),
            counter: Mutex::new(0),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let path = match wire {
                    Wire::OpenAi => "/v1/chat/completions",
                    Wire::Anthropic => "/v1/messages",
                };
                let app = Router::new().route(path, post(handle)).with_state(state);
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        let base_url = match wire {
            Wire::OpenAi => format!("http://{addr}/v1"),
            Wire::Anthropic => format!("http://{addr}"),
        };
        FakeModel {
            base_url,
            inner,
            _stop: stop_tx,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The system prompt of a recorded request.
    pub fn system_of(&self, r: &Recorded) -> String {
        match self.inner.wire {
            Wire::OpenAi => r.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Wire::Anthropic => r.body["system"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Names of the tools offered in a recorded request.
    pub fn tools_of(&self, r: &Recorded) -> Vec<String> {
        r.body["tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        t.pointer("/function/name")
                            .or_else(|| t.get("name"))
                            .and_then(|n| n.as_str())
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tool results (content, is_error) of a recorded request's last
    /// turn, in order.
    pub fn last_results(&self, r: &Recorded) -> Vec<(String, bool)> {
        let msgs = r.body["messages"].as_array().cloned().unwrap_or_default();
        match self.inner.wire {
            Wire::OpenAi => msgs
                .iter()
                .rev()
                .take_while(|m| m["role"] == "tool")
                .map(|m| (m["content"].as_str().unwrap_or_default().to_string(), false))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            Wire::Anthropic => msgs
                .last()
                .and_then(|m| m["content"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .map(|b| {
                    (
                        b["content"].as_str().unwrap_or_default().to_string(),
                        b["is_error"].as_bool().unwrap_or(false),
                    )
                })
                .collect(),
        }
    }

    /// All user-turn text of a recorded request.
    pub fn user_text(&self, r: &Recorded) -> String {
        user_texts(self.inner.wire, &r.body).join("\n")
    }
}

fn user_texts(wire: Wire, body: &Value) -> Vec<String> {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for m in msgs.iter().filter(|m| m["role"] == "user") {
        match (wire, &m["content"]) {
            (_, Value::String(s)) => out.push(s.clone()),
            (_, Value::Array(blocks)) => out.extend(
                blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str().map(str::to_string)),
            ),
            _ => {}
        }
    }
    out
}

async fn handle(State(s): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error(s.wire, 400, &format!("invalid JSON body: {e}"), None),
    };
    s.requests.lock().unwrap().push(Recorded {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
    });
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    match s.wire {
        Wire::OpenAi => {
            if header("authorization") != format!("Bearer {}", s.key) {
                return error(s.wire, 401, "Incorrect API key provided.", None);
            }
        }
        Wire::Anthropic => {
            if header("x-api-key") != s.key {
                return error(s.wire, 401, "invalid x-api-key", None);
            }
            if header("anthropic-version").is_empty() {
                return error(s.wire, 400, "anthropic-version: header is required", None);
            }
        }
    }
    if let Err(m) = check_pairs(s.wire, &body) {
        return error(s.wire, 400, &m, None);
    }
    let step = {
        let mut steps = s.steps.lock().unwrap();
        match steps.front() {
            Some(Step::Forever(..)) => steps.front().cloned(),
            _ => steps.pop_front(),
        }
    }
    .unwrap_or_else(|| Step::Text("done".into()));
    let n = {
        let mut c = s.counter.lock().unwrap();
        *c += 1;
        *c
    };
    let model = body["model"].as_str().unwrap_or("fake").to_string();
    let first_user = user_texts(s.wire, &body)
        .into_iter()
        .next()
        .unwrap_or_default();
    let calls: Vec<(String, Value)> = match step {
        Step::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            return error(s.wire, 500, "hung", None);
        }
        Step::Error(code, retry) => {
            let msg = match code {
                429 => "Rate limit reached for requests",
                529 => "Overloaded",
                _ => "The server had an error while processing your request. Sorry about that!",
            };
            return error(s.wire, code, msg, retry);
        }
        Step::Text(t) => return Json(reply(s.wire, n, &model, &t, &[], None)).into_response(),
        Step::RawArguments(tool, raw) => {
            return Json(reply(
                s.wire,
                n,
                &model,
                "",
                &[(tool, Value::Null)],
                Some(raw),
            ))
            .into_response()
        }
        Step::Call(c) => c,
        Step::Forever(t, a) => vec![(t, a)],
        Step::ObeyBacktick => {
            let cmd = first_user.split('`').nth(1).unwrap_or("true").to_string();
            vec![("Bash".into(), json!({"command": cmd}))]
        }
        Step::ObeyUrl => {
            let url = first_user
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap_or("http://example.invalid/")
                .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '/')
                .to_string();
            vec![("WebFetch".into(), json!({"url": url}))]
        }
    };
    Json(reply(s.wire, n, &model, "", &calls, None)).into_response()
}

/// Every tool result must answer a call of the assistant turn before it.
fn check_pairs(wire: Wire, body: &Value) -> Result<(), String> {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let mut open: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        match wire {
            Wire::OpenAi => match m["role"].as_str() {
                Some("assistant") => {
                    open = m["tool_calls"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|c| c["id"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                }
                Some("tool") => {
                    let id = m["tool_call_id"].as_str().unwrap_or_default();
                    if !open.iter().any(|o| o == id) {
                        return Err(format!("messages[{i}]: tool message with tool_call_id {id} does not answer a tool call of the preceding assistant message"));
                    }
                }
                Some("system") | Some("user") => open.clear(),
                other => return Err(format!("messages[{i}]: unknown role {other:?}")),
            },
            Wire::Anthropic => {
                let role = m["role"].as_str().unwrap_or_default();
                let expected = if i % 2 == 0 { "user" } else { "assistant" };
                if role != expected {
                    return Err(format!("messages: roles must alternate between \"user\" and \"assistant\", starting with user (messages[{i}] is {role:?})"));
                }
                let blocks = m["content"].as_array().cloned().unwrap_or_default();
                if blocks.is_empty() {
                    return Err(format!("messages[{i}]: content must be non-empty"));
                }
                if role == "assistant" {
                    open = blocks
                        .iter()
                        .filter(|b| b["type"] == "tool_use")
                        .filter_map(|b| b["id"].as_str().map(str::to_string))
                        .collect();
                } else {
                    for b in blocks.iter().filter(|b| b["type"] == "tool_result") {
                        let id = b["tool_use_id"].as_str().unwrap_or_default();
                        if !open.iter().any(|o| o == id) {
                            return Err(format!("messages[{i}]: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."));
                        }
                    }
                    open.clear();
                }
            }
        }
    }
    Ok(())
}

fn reply(
    wire: Wire,
    n: u64,
    model: &str,
    text: &str,
    calls: &[(String, Value)],
    raw: Option<String>,
) -> Value {
    let id = |p: &str, i: usize| format!("{p}{n:04}x{i}{}", "a1b2c3d4e5f6");
    match wire {
        Wire::OpenAi => {
            let tool_calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": id("call_", i), "type": "function", "function": {
                        "name": name,
                        "arguments": raw.clone().unwrap_or_else(|| args.to_string()),
                    }})
                })
                .collect();
            let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }, "refusal": null});
            if !tool_calls.is_empty() {
                message["tool_calls"] = json!(tool_calls);
            }
            json!({
                "id": format!("chatcmpl-fake{n}"),
                "object": "chat.completion",
                "created": 1_764_000_000u64 + n,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null,
                    "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" }}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                "system_fingerprint": "fp_fake",
            })
        }
        Wire::Anthropic => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            for (i, (name, args)) in calls.iter().enumerate() {
                let input = if raw.is_some() {
                    json!({})
                } else {
                    args.clone()
                };
                content.push(json!({"type": "tool_use", "id": id("toolu_", i), "name": name, "input": input}));
            }
            json!({
                "id": format!("msg_fake{n}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
                "stop_sequence": null,
                "usage": {"input_tokens": 100, "output_tokens": 20},
            })
        }
    }
}

fn error(wire: Wire, code: u16, message: &str, retry_after: Option<u64>) -> Response {
    let body = match wire {
        Wire::OpenAi => json!({"error": {"message": message, "type": match code {
            401 => "invalid_request_error", 429 => "requests", 400 => "invalid_request_error", _ => "server_error" },
            "param": null, "code": if code == 429 { json!("rate_limit_exceeded") } else { Value::Null }}}),
        Wire::Anthropic => json!({"type": "error", "error": {"type": match code {
            400 => "invalid_request_error", 401 => "authentication_error", 429 => "rate_limit_error",
            529 => "overloaded_error", _ => "api_error" }, "message": message}}),
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, Json(body)).into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    r
}
