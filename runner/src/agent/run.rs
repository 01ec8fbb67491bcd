//! The loop itself.

use super::offer::{offered_tools, ASK_USER, UPDATE_PLAN};
use super::{prompt, AgentError, AgentSettings, Host, Reply};
use crate::cancel::Cancel;
use crate::model::{ImageData, ModelClient, ModelRequest, OfferedTool, StopReason};
use crate::policy::{PolicyGate, SessionContext};
use crate::tools::{self, CallOptions, CallStatus, Registry};
use protocol::activity::Activity;
use protocol::conversation::{Message, ToolCall};
use protocol::policy::DecisionResult;
use protocol::session::AgentVersion;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Everything one run of the loop uses.
pub struct Agent<'a> {
    /// The worker's tools.
    pub registry: &'a Registry,
    /// Decides, records and reports every action.
    pub gate: &'a PolicyGate,
    /// The session's workspace, trusted and untrusted parts.
    pub ctx: &'a SessionContext,
    /// The pinned agent version (trusted).
    pub agent: &'a AgentVersion,
    /// The model the pinned agent version names, as this worker serves it.
    pub model: &'a dyn ModelClient,
    /// `[agent]` settings.
    pub settings: &'a AgentSettings,
    /// The worker's custom instructions (trusted).
    pub worker_instructions: Option<&'a str>,
    /// Trusted sections this session adds to the system prompt (its
    /// skills, its MCP servers, its artifacts directory), each a heading
    /// and its text, written by the runner from the pinned version.
    pub session_instructions: &'a [String],
    /// Reports and questions go here.
    pub host: &'a dyn Host,
    /// Set when the session must stop.
    pub cancel: &'a Cancel,
}

/// Time spent in one turn, for the per-turn overhead benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnStats {
    /// Waiting for the model.
    pub model: Duration,
    /// The whole turn: model, decisions, sandboxes, bookkeeping.
    pub total: Duration,
    /// Waiting for a person (not runner overhead either).
    pub waiting: Duration,
}

/// How a run ended: `Ok(summary)` or why it did not, and per-turn timings.
#[derive(Debug)]
pub struct RunOutcome {
    /// The model's final summary, or the failure.
    pub result: Result<String, AgentError>,
    /// One entry per model turn.
    pub turns: Vec<TurnStats>,
}

/// The longest summary passed on as the session's outcome.
const MAX_SUMMARY_CHARS: usize = 8000;

impl Agent<'_> {
    /// Runs the loop from `history` (the stored conversation; empty for a
    /// new session) plus `new_turns` (user turns to append first: the work,
    /// or follow-ups).
    pub fn run(&self, mut history: Vec<Message>, new_turns: Vec<Message>) -> RunOutcome {
        let mut turns = Vec::new();
        let result = self.run_inner(&mut history, new_turns, &mut turns);
        RunOutcome { result, turns }
    }

    fn run_inner(
        &self,
        messages: &mut Vec<Message>,
        new_turns: Vec<Message>,
        stats: &mut Vec<TurnStats>,
    ) -> Result<String, AgentError> {
        let system = prompt::system_prompt(
            self.agent,
            self.settings.platform_instructions.as_deref(),
            self.worker_instructions,
            self.session_instructions,
        );
        let tools = offered_tools(self.registry, self.agent, &self.settings.custom_tools);
        // A conversation cut off after a model turn whose calls never ran
        // (the previous worker stopped): answer each call so the
        // conversation is well formed again.
        let mut repaired = unanswered_calls(messages)
            .into_iter()
            .map(|c| Message::Tool {
                tool_call_id: c.id,
                name: c.name,
                content: "result unknown: the run stopped before this call's result was recorded (it may or may not have taken effect); check before calling it again".into(),
                is_error: true,
            })
            .collect::<Vec<_>>();
        repaired.extend(new_turns);
        if repaired.is_empty()
            && !matches!(
                messages.last(),
                Some(Message::User { .. } | Message::Tool { .. })
            )
        {
            repaired.push(Message::User {
                content: "(The session was resumed by another worker. Continue the work, then reply with a short summary.)".into(),
                images: vec![],
            });
        }
        self.push(messages, repaired)?;
        let mut step = 0u32;
        for turn in 1.. {
            if self.cancel.is_cancelled() {
                return Err(AgentError::Cancelled);
            }
            if turn > self.settings.max_turns {
                return Err(AgentError::MaxTurns(self.settings.max_turns));
            }
            let started = Instant::now();
            let images = self.images(messages)?;
            let called = Instant::now();
            let reply = self.model.complete(
                &ModelRequest {
                    system: &system,
                    messages,
                    tools: &tools,
                    images: &images,
                },
                self.cancel,
            );
            let model_time = started.elapsed();
            match &reply {
                Ok(r) => self.gate.metrics().model_call(
                    called.elapsed(),
                    Ok((r.usage.input_tokens, r.usage.output_tokens)),
                ),
                Err(crate::model::ModelError::Cancelled) => {}
                Err(e) => self
                    .gate
                    .metrics()
                    .model_call(called.elapsed(), Err(e.kind())),
            }
            let reply = match reply {
                Ok(r) => r,
                Err(crate::model::ModelError::Cancelled) => return Err(AgentError::Cancelled),
                Err(e) => return Err(AgentError::Model(format!("the model call failed: {e}"))),
            };
            let calls = reply.tool_calls.clone();
            self.push(
                messages,
                vec![Message::Assistant {
                    content: reply.content.clone(),
                    tool_calls: calls.clone(),
                }],
            )?;
            if calls.is_empty() {
                stats.push(TurnStats {
                    model: model_time,
                    total: started.elapsed(),
                    waiting: Duration::ZERO,
                });
                match &reply.stop {
                    StopReason::MaxTokens => {
                        return Err(AgentError::Model(format!(
                            "the model's reply was cut off at max_tokens without finishing; raise max_tokens for model {}",
                            self.model.model()
                        )))
                    }
                    // A content filter, a refusal, a paused turn: not a
                    // finished piece of work.
                    StopReason::Other(why) => {
                        return Err(AgentError::Model(format!(
                            "the model stopped without finishing ({why}): {}",
                            clip_chars(reply.content.trim(), 500)
                        )))
                    }
                    StopReason::EndTurn | StopReason::ToolUse => {}
                }
                let summary = reply.content.trim();
                return Ok(if summary.is_empty() {
                    "the model finished without a summary".to_string()
                } else {
                    clip_chars(summary, MAX_SUMMARY_CHARS)
                });
            }
            let mut waiting = Duration::ZERO;
            for call in &calls {
                if self.cancel.is_cancelled() {
                    return Err(AgentError::Cancelled);
                }
                step += 1;
                let (result, waited) = self.handle(call, &tools, step)?;
                waiting += waited;
                // Stored as soon as it exists: a run that stops later must
                // not tell the model a call that ran never did.
                self.push(messages, vec![result])?;
            }
            stats.push(TurnStats {
                model: model_time,
                total: started.elapsed(),
                waiting,
            });
        }
        unreachable!("the turn loop only ends by returning")
    }

    /// The bytes of every image the user turns name, for a model that
    /// takes images (none fetched for one that does not: it reads a note).
    /// An image that cannot be fetched ends the run: the model would
    /// otherwise work without what the person showed it.
    fn images(&self, messages: &[Message]) -> Result<ImageData, AgentError> {
        let mut data = ImageData::new();
        if !self.model.takes_images() {
            return Ok(data);
        }
        for m in messages {
            let Message::User { images, .. } = m else {
                continue;
            };
            for r in images {
                if data.contains_key(&r.id) {
                    continue;
                }
                let bytes = self.host.image(r).map_err(|e| {
                    if self.cancel.is_cancelled() {
                        AgentError::Cancelled
                    } else {
                        AgentError::Model(format!(
                            "image {} of the conversation could not be fetched for the model: {e}",
                            r.id
                        ))
                    }
                })?;
                data.insert(r.id.clone(), bytes);
            }
        }
        Ok(data)
    }

    /// Stores and appends; a conversation that cannot be stored ends the
    /// run (a follow-up could not resume it).
    fn push(&self, messages: &mut Vec<Message>, new: Vec<Message>) -> Result<(), AgentError> {
        if new.is_empty() {
            return Ok(());
        }
        self.host.save(&new).map_err(AgentError::Storage)?;
        messages.extend(new);
        Ok(())
    }

    /// One tool call → its result message. Err ends the session (nobody
    /// answered, or it was cancelled).
    fn handle(
        &self,
        call: &ToolCall,
        offered: &[OfferedTool],
        step: u32,
    ) -> Result<(Message, Duration), AgentError> {
        let reply = |content: String, is_error: bool| Message::Tool {
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            content: self.cap(content),
            is_error,
        };
        let progress = |status: &str, detail: &str| {
            self.host.emit(&Activity::Progress {
                message: clip_chars(
                    &format!(
                        "{} {}{}: {status}{}",
                        call.name,
                        target(&call.name, &call.arguments),
                        "",
                        detail
                    ),
                    300,
                ),
                step: Some(step),
            })
        };
        if !offered.iter().any(|t| t.name == call.name) {
            let reason = format!(
                "tool {} is not offered to this session (the pinned agent version and the worker config offer: {}); the call was refused",
                call.name,
                offered.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            );
            self.gate.refuse(&call.name, reason.clone(), self.ctx);
            progress("refused", " (not enabled)");
            return Ok((
                reply(json!({"error": reason}).to_string(), true),
                Duration::ZERO,
            ));
        }
        if let Value::String(raw) = &call.arguments {
            progress("error", " (arguments are not JSON)");
            return Ok((
                reply(
                    json!({"error": format!("the arguments of {} are not valid JSON: {}", call.name, clip_chars(raw, 200))}).to_string(),
                    true,
                ),
                Duration::ZERO,
            ));
        }
        match call.name.as_str() {
            UPDATE_PLAN => return Ok((self.update_plan(call, &progress, &reply), Duration::ZERO)),
            ASK_USER => return self.ask_user(call, &progress, &reply),
            _ => {}
        }
        let options = CallOptions {
            dry_run: false,
            cancel: self.cancel.clone(),
            approved_by: None,
        };
        let mut out = tools::call_with(
            self.registry,
            self.gate,
            self.ctx,
            &call.name,
            &call.arguments,
            &options,
        );
        let mut waited = Duration::ZERO;
        let asked = out.status == CallStatus::Denied
            && out
                .decisions
                .last()
                .is_some_and(|d| d.result == DecisionResult::Ask);
        if asked {
            let d = out.decisions.last().expect("checked just above");
            let question = format!(
                "Approve {} {}? {} (answer with approve true or false)",
                call.name,
                target(&call.name, &call.arguments),
                d.reasons.join("; ")
            );
            let began = Instant::now();
            let answer = self.host.ask(&question, self.cancel);
            waited = began.elapsed();
            match answer {
                Reply::Answered(a) if a.approve == Some(true) => {
                    out = tools::call_with(
                        self.registry,
                        self.gate,
                        self.ctx,
                        &call.name,
                        &call.arguments,
                        &CallOptions {
                            approved_by: Some(a.by.clone()),
                            ..options
                        },
                    );
                }
                Reply::Answered(a) => {
                    progress("denied", &format!(" (refused by {})", a.by));
                    let why = if a.message.is_empty() { "no reason given".to_string() } else { a.message.clone() };
                    return Ok((
                        reply(json!({"denied": true, "refused_by": a.by, "reason": why}).to_string(), true),
                        waited,
                    ));
                }
                Reply::TimedOut => {
                    return Err(AgentError::NobodyAnswered(format!(
                        "nobody answered within {} s whether to approve {} {}; the action was not performed (send a follow-up to continue)",
                        self.settings.await_input_seconds,
                        call.name,
                        target(&call.name, &call.arguments)
                    )))
                }
                Reply::Cancelled => return Err(AgentError::Cancelled),
            }
        }
        if self.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        let (status, is_error) = match out.status {
            CallStatus::Ok => ("ok", false),
            CallStatus::Denied => ("denied", true),
            CallStatus::Error => ("error", true),
        };
        if out.status == CallStatus::Ok {
            if let Some(url) = out.output.get("external_url").and_then(|u| u.as_str()) {
                if url.len() <= 2048 && (url.starts_with("https://") || url.starts_with("http://"))
                {
                    self.host.external_url(url);
                }
            }
        }
        let approved = out.decisions.iter().find_map(|d| d.approved_by.clone());
        let detail = match (&approved, status) {
            (Some(by), _) => format!(" (approved by {by})"),
            (None, "ok") => String::new(),
            (None, _) => format!(" — {}", brief(&out.output)),
        };
        progress(status, &detail);
        let content = match &out.output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok((reply(content, is_error), waited))
    }

    fn update_plan(
        &self,
        call: &ToolCall,
        progress: &dyn Fn(&str, &str),
        reply: &dyn Fn(String, bool) -> Message,
    ) -> Message {
        let steps: Option<Vec<String>> = call
            .arguments
            .get("steps")
            .and_then(|s| s.as_array())
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_str().map(|s| clip_chars(s, 500)))
                    .collect()
            });
        match steps {
            Some(steps) if steps.len() <= 50 => {
                self.host.plan(&steps);
                progress("ok", &format!(" ({} steps)", steps.len()));
                reply(json!({"ok": true, "steps": steps.len()}).to_string(), false)
            }
            _ => {
                progress("error", " (invalid arguments)");
                reply(
                    json!({"error": "update_plan takes {\"steps\": [\"...\"]}: at most 50 strings"}).to_string(),
                    true,
                )
            }
        }
    }

    fn ask_user(
        &self,
        call: &ToolCall,
        progress: &dyn Fn(&str, &str),
        reply: &dyn Fn(String, bool) -> Message,
    ) -> Result<(Message, Duration), AgentError> {
        let Some(question) = call
            .arguments
            .get("question")
            .and_then(|q| q.as_str())
            .filter(|q| !q.trim().is_empty())
        else {
            progress("error", " (invalid arguments)");
            return Ok((
                reply(
                    json!({"error": "ask_user takes {\"question\": \"...\"}"}).to_string(),
                    true,
                ),
                Duration::ZERO,
            ));
        };
        let began = Instant::now();
        match self.host.ask(&clip_chars(question, 2000), self.cancel) {
            Reply::Answered(a) => {
                progress("ok", &format!(" (answered by {})", a.by));
                Ok((
                    reply(
                        json!({"answer": a.message, "answered_by": a.by}).to_string(),
                        false,
                    ),
                    began.elapsed(),
                ))
            }
            Reply::TimedOut => Err(AgentError::NobodyAnswered(format!(
                "nobody answered the model's question within {} s: {}",
                self.settings.await_input_seconds,
                clip_chars(question, 200)
            ))),
            Reply::Cancelled => Err(AgentError::Cancelled),
        }
    }

    /// Caps a tool result at `max_tool_output_bytes` (on a character
    /// boundary), saying how much was left out.
    fn cap(&self, mut s: String) -> String {
        let max = self.settings.max_tool_output_bytes;
        if s.len() <= max {
            return s;
        }
        let total = s.len();
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(&format!(
            "\n[output truncated: {cut} of {total} bytes shown]"
        ));
        s
    }
}

/// Calls of the last assistant message that have no result after them.
fn unanswered_calls(messages: &[Message]) -> Vec<ToolCall> {
    let Some(pos) = messages
        .iter()
        .rposition(|m| matches!(m, Message::Assistant { .. }))
    else {
        return Vec::new();
    };
    let Message::Assistant { tool_calls, .. } = &messages[pos] else {
        return Vec::new();
    };
    let answered: Vec<&str> = messages[pos + 1..]
        .iter()
        .filter_map(|m| match m {
            Message::Tool { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    tool_calls
        .iter()
        .filter(|c| !answered.contains(&c.id.as_str()))
        .cloned()
        .collect()
}

/// What a call is about, for one-line summaries.
/// What a call acts on, for a progress line and an approval question. An
/// MCP tool's arguments are free-form (no `path` or `command` to show), so
/// the person approving sees its server, its tool and every argument (as
/// compact JSON, clipped): approving a call they cannot see is no decision.
fn target(name: &str, args: &Value) -> String {
    if let Some((server, tool)) = tools::mcp_name_parts(name) {
        return format!(
            "(MCP server {server}, tool {tool}, arguments {})",
            clip_chars(&args.to_string(), 300)
        );
    }
    ["path", "command", "url", "pattern", "question"]
        .iter()
        .find_map(|k| args.get(*k).and_then(|v| v.as_str()))
        .map(|t| clip_chars(t, 80))
        .unwrap_or_default()
}

fn brief(v: &Value) -> String {
    clip_chars(&v.to_string(), 160)
}

fn clip_chars(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mcp_call_is_shown_with_its_server_tool_and_arguments() {
        let t = target(
            "mcp__docs__delete_page",
            &json!({"page": "home", "force": true}),
        );
        assert!(t.contains("MCP server docs"), "{t}");
        assert!(t.contains("tool delete_page"), "{t}");
        assert!(t.contains(r#"{"force":true,"page":"home"}"#), "{t}");
        let long = target("mcp__docs__put", &json!({"body": "x".repeat(1000)}));
        let args = long.split("arguments ").nth(1).unwrap();
        assert!(args.chars().count() <= 301, "{}", args.chars().count());
        assert!(args.contains('…'));
        // Built-in tools keep showing their one target.
        assert_eq!(target("Read", &json!({"path": "a.txt"})), "a.txt");
    }
}
