//! A small blocking MCP client over Streamable HTTP (JSON-RPC by hand), on
//! the runner's existing HTTP stack (`ureq`, as WebFetch uses it).
//!
//! Every wire detail of MCP lives in this file behind [`McpClient`], so it
//! can be replaced by an SDK in one place. The design named `rmcp` (async,
//! reqwest 0.13); this build uses the documented fallback instead: no
//! second HTTP stack, no async runtime, and the same pinning as WebFetch —
//! the client dials only the addresses the policy decided (its resolver
//! returns them whatever name is asked), follows no redirect and uses no
//! proxy.

use crate::cancel::Cancel;
use crate::secret::Secret;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The protocol revision asked for at `initialize` (the handshake era:
/// sessions with `Mcp-Session-Id`, before the stateless 2026 revision).
const PROTOCOL_VERSION: &str = "2025-11-25";

/// How a client connects: where, with what, within which limits.
pub(crate) struct Connection<'a> {
    /// The server's endpoint, exactly as the agent version pins it.
    pub url: &'a str,
    /// The decided addresses: the only ones ever dialled.
    pub addrs: &'a [SocketAddr],
    /// The header and its value (already `Bearer …` when it is Authorization).
    pub auth: Option<(&'a str, &'a Secret)>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Total time one request may take, answer read to its end included
    /// (a per-read timeout alone lets a server that drips keep-alive lines
    /// hold a call, and the session, forever).
    pub call_timeout: Duration,
    /// When every request of this client must be done by: the whole
    /// listing phase of a server at session start is bounded by it.
    pub deadline: Instant,
    /// Checked between reads of an answer: a cancelled session stops a
    /// call at the next line a server sends, not when the server is done.
    pub cancel: &'a Cancel,
    /// Largest answer read.
    pub max_bytes: usize,
}

/// One MCP session with one server.
pub(crate) struct McpClient {
    agent: ureq::Agent,
    url: String,
    auth: Option<(String, Secret)>,
    session: Option<String>,
    protocol: String,
    next_id: u64,
    max_bytes: usize,
    call_timeout: Duration,
    deadline: Instant,
    cancel: Cancel,
}

impl McpClient {
    /// Connects and completes the handshake (`initialize`, then
    /// `notifications/initialized`).
    pub(crate) fn connect(c: &Connection<'_>) -> Result<McpClient, String> {
        if c.addrs.is_empty() {
            return Err("the server's host resolved to no address".into());
        }
        let pinned = c.addrs.to_vec();
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(c.connect_timeout)
            .timeout_read(c.call_timeout)
            .user_agent(concat!("runner-mcp/", env!("CARGO_PKG_VERSION")))
            // Only the decided addresses are ever dialled.
            .resolver(move |_netloc: &str| Ok(pinned.clone()))
            .build();
        let mut client = McpClient {
            agent,
            url: c.url.to_string(),
            auth: c.auth.map(|(h, v)| (h.to_string(), v.clone())),
            session: None,
            protocol: PROTOCOL_VERSION.into(),
            next_id: 1,
            max_bytes: c.max_bytes,
            call_timeout: c.call_timeout,
            deadline: c.deadline,
            cancel: c.cancel.clone(),
        };
        let info = client.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "runner", "version": env!("CARGO_PKG_VERSION")},
            }),
        )?;
        if let Some(v) = info.get("protocolVersion").and_then(Value::as_str) {
            client.protocol = v.to_string();
        }
        client.notify("notifications/initialized")?;
        Ok(client)
    }

    /// Every tool the server lists (all pages), up to `max` + 1 so the
    /// caller can tell the list was cut.
    pub(crate) fn list_tools(&mut self, max: usize) -> Result<Vec<Value>, String> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params)?;
            let list = page
                .get("tools")
                .and_then(Value::as_array)
                .ok_or("tools/list answered without a tools list")?;
            tools.extend(list.iter().cloned());
            if tools.len() > max {
                tools.truncate(max + 1);
                return Ok(tools);
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(tools),
            }
        }
        Ok(tools)
    }

    /// Calls one tool with these arguments; the `CallToolResult` as sent.
    pub(crate) fn call_tool(&mut self, name: &str, arguments: &Value) -> Result<Value, String> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// Ends the session (`DELETE`); failures are ignored (the server
    /// expires it anyway).
    pub(crate) fn close(self) {
        if self.session.is_some() {
            let _ = self.with_headers(self.agent.delete(&self.url)).call();
        }
    }

    fn with_headers(&self, mut r: ureq::Request) -> ureq::Request {
        r = r.set("Accept", "application/json, text/event-stream");
        if let Some(s) = &self.session {
            r = r.set("Mcp-Session-Id", s);
        }
        if self.session.is_some() {
            r = r.set("MCP-Protocol-Version", &self.protocol);
        }
        if let Some((h, v)) = &self.auth {
            r = r.set(h, v.expose());
        }
        r
    }

    /// When the request starting now must be done by: its own timeout, or
    /// the client's deadline when that comes first.
    fn request_deadline(&self) -> Result<Instant, String> {
        if self.cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let end = (Instant::now() + self.call_timeout).min(self.deadline);
        if end <= Instant::now() {
            return Err("timed out: the server's time is used up".into());
        }
        Ok(end)
    }

    fn post(&self, body: &Value, end: Instant) -> Result<ureq::Response, String> {
        let r = self
            .with_headers(self.agent.post(&self.url))
            // The whole request, answer body included (ureq checks it on
            // every read).
            .timeout(end.saturating_duration_since(Instant::now()))
            .set("Content-Type", "application/json");
        match r.send_string(&body.to_string()) {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => {
                let mut text = String::new();
                let _ = r.into_reader().take(300).read_to_string(&mut text);
                Err(format!("the server answered HTTP {code}: {}", text.trim()))
            }
            Err(ureq::Error::Transport(e)) => Err(format!("connecting failed: {e}")),
        }
    }

    fn notify(&mut self, method: &str) -> Result<(), String> {
        let end = self.request_deadline()?;
        let r = self.post(&json!({"jsonrpc": "2.0", "method": method}), end)?;
        if r.status() >= 300 {
            return Err(format!("{method}: the server answered HTTP {}", r.status()));
        }
        Ok(())
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let end = self.request_deadline()?;
        let r = self.post(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            end,
        )?;
        if (300..400).contains(&r.status()) {
            return Err(format!(
                "{method}: the server answered a redirect (HTTP {}); redirects are not followed",
                r.status()
            ));
        }
        if let Some(s) = r.header("mcp-session-id") {
            if self.session.is_none() {
                self.session = Some(s.to_string());
            }
        }
        let sse = r.content_type().starts_with("text/event-stream");
        let reader = r.into_reader().take(self.max_bytes as u64 + 1);
        let stop = Stop {
            cancel: &self.cancel,
            end,
        };
        let message = if sse {
            sse_response(reader, id, self.max_bytes, &stop).map_err(|e| format!("{method}: {e}"))?
        } else {
            let mut body = Vec::new();
            let mut reader = reader;
            let mut chunk = [0u8; 8192];
            loop {
                stop.check().map_err(|e| format!("{method}: {e}"))?;
                let n = reader
                    .read(&mut chunk)
                    .map_err(|e| format!("{method}: reading the answer failed: {e}"))?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            if body.len() > self.max_bytes {
                return Err(format!(
                    "{method}: the answer is larger than {} bytes",
                    self.max_bytes
                ));
            }
            serde_json::from_slice(&body)
                .map_err(|e| format!("{method}: the answer is not JSON: {e}"))?
        };
        answer(method, id, message)
    }
}

/// The result of the JSON-RPC answer to request `id`, or its error.
fn answer(method: &str, id: u64, m: Value) -> Result<Value, String> {
    if m.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(format!("{method}: the answer is not for this request"));
    }
    if let Some(e) = m.get("error") {
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        return Err(format!("{method}: the server returned error {code}: {msg}"));
    }
    m.get("result")
        .cloned()
        .ok_or_else(|| format!("{method}: the answer has no result"))
}

/// What stops reading an answer early: the session's cancellation, and
/// the request's deadline.
struct Stop<'a> {
    cancel: &'a Cancel,
    end: Instant,
}

impl Stop<'_> {
    fn check(&self) -> Result<(), String> {
        if self.cancel.is_cancelled() {
            return Err("cancelled while the server was answering".into());
        }
        if Instant::now() >= self.end {
            return Err("timed out: the server did not finish its answer in time".into());
        }
        Ok(())
    }
}

/// Reads an SSE stream until the message answering `id` (notifications and
/// server requests before it are skipped), checking `stop` at every line.
fn sse_response(reader: impl Read, id: u64, max: usize, stop: &Stop<'_>) -> Result<Value, String> {
    let mut data = String::new();
    let mut read = 0usize;
    for line in BufReader::new(reader).lines() {
        stop.check()?;
        let line = line.map_err(|e| format!("reading the event stream failed: {e}"))?;
        read += line.len() + 1;
        if read > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        if line.is_empty() {
            if !data.is_empty() {
                let m: Value = serde_json::from_str(&data)
                    .map_err(|e| format!("an event of the stream is not JSON: {e}"))?;
                if m.get("id").and_then(Value::as_u64) == Some(id)
                    && (m.get("result").is_some() || m.get("error").is_some())
                {
                    return Ok(m);
                }
                data.clear();
            }
            continue;
        }
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    Err("the event stream ended without an answer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_answer_skips_notifications_and_reads_multi_line_data() {
        let body = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\n data: \"id\":7,\"result\":{\"x\":1}}\n\n";
        // "data: " continuation lines keep their JSON.
        let body = body.replace("\n data:", "\ndata:");
        let never = Cancel::never();
        let stop = Stop {
            cancel: &never,
            end: Instant::now() + Duration::from_secs(60),
        };
        let m = sse_response(body.as_bytes(), 7, 1 << 20, &stop).unwrap();
        assert_eq!(answer("m", 7, m).unwrap(), json!({"x": 1}));
        assert!(sse_response(body.as_bytes(), 8, 1 << 20, &stop).is_err());
        assert!(
            sse_response(body.as_bytes(), 7, 20, &stop).is_err(),
            "over the cap"
        );
    }

    #[test]
    fn a_json_rpc_error_is_an_error() {
        let e = answer(
            "tools/call",
            1,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}}),
        )
        .unwrap_err();
        assert!(e.contains("-32602") && e.contains("bad"), "{e}");
        assert!(answer("m", 2, json!({"id": 1, "result": {}})).is_err());
    }

    /// A one-purpose HTTP server: answers each request with the next
    /// canned response and records what it got.
    fn serve(answers: Vec<String>) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut c, _)) = l.accept() else { return };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                tx.send(format!("{head}\n{}", String::from_utf8_lossy(&body)))
                    .unwrap();
                let _ = c.write_all(answer.as_bytes());
            }
        });
        (addr, rx)
    }

    fn http(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn the_client_dials_only_the_decided_address_and_follows_no_redirect() {
        let init = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{}}}"#;
        let (addr, got) = serve(vec![
            http(
                "200 OK",
                "Content-Type: application/json\r\nMcp-Session-Id: s1\r\n",
                init,
            ),
            http("202 Accepted", "", ""),
            http(
                "307 Temporary Redirect",
                "Location: http://elsewhere.invalid/mcp\r\n",
                "",
            ),
        ]);
        let secret = Secret::new("Bearer tok");
        // A name that resolves nowhere: the connection still reaches the
        // decided address, and only it.
        let mut c = McpClient::connect(&Connection {
            url: "http://mcp.invalid:9/mcp",
            addrs: &[addr],
            auth: Some(("Authorization", &secret)),
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
            deadline: Instant::now() + Duration::from_secs(60),
            cancel: &Cancel::never(),
            max_bytes: 1 << 20,
        })
        .unwrap();
        let first = got.recv().unwrap().to_ascii_lowercase();
        assert!(first.starts_with("post /mcp "), "{first}");
        assert!(first.contains("host: mcp.invalid:9"), "{first}");
        assert!(first.contains("authorization: bearer tok"), "{first}");
        assert!(first.contains("\"initialize\""), "{first}");
        let second = got.recv().unwrap().to_ascii_lowercase();
        assert!(
            second.contains("mcp-session-id: s1")
                && second.contains("mcp-protocol-version: 2025-06-18"),
            "{second}"
        );
        let e = c.list_tools(10).unwrap_err();
        assert!(e.contains("redirect"), "{e}");
        assert!(McpClient::connect(&Connection {
            url: "http://mcp.invalid:9/mcp",
            addrs: &[],
            auth: None,
            connect_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(1),
            deadline: Instant::now() + Duration::from_secs(60),
            cancel: &Cancel::never(),
            max_bytes: 1 << 20,
        })
        .is_err());
    }

    /// A server that answers `initialize` and then, to every later POST,
    /// an SSE stream that only ever drips keep-alive comments.
    fn dripping_server() -> SocketAddr {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut n = 0;
            while let Ok((mut c, _)) = l.accept() {
                n += 1;
                let first = n == 1;
                std::thread::spawn(move || {
                    let mut r = BufReader::new(c.try_clone().unwrap());
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    let _ = r.read_exact(&mut body);
                    if first {
                        let b =
                            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#;
                        let _ = c.write_all(
                            http("200 OK", "Content-Type: application/json\r\n", b).as_bytes(),
                        );
                        return;
                    }
                    if String::from_utf8_lossy(&body).contains("notifications/") {
                        let _ = c.write_all(http("202 Accepted", "", "").as_bytes());
                        return;
                    }
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
                    for _ in 0..600 {
                        if c.write_all(b": keep-alive\n").is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
            }
        });
        addr
    }

    fn drip_client(addr: SocketAddr, call: Duration, cancel: &Cancel) -> McpClient {
        McpClient::connect(&Connection {
            url: "http://mcp.invalid/mcp",
            addrs: &[addr],
            auth: None,
            connect_timeout: Duration::from_secs(5),
            call_timeout: call,
            deadline: Instant::now() + Duration::from_secs(60),
            cancel,
            max_bytes: 1 << 20,
        })
        .unwrap()
    }

    #[test]
    fn a_dripping_server_does_not_outlast_the_call_timeout() {
        let addr = dripping_server();
        let never = Cancel::never();
        let mut c = drip_client(addr, Duration::from_millis(1500), &never);
        let t = Instant::now();
        let e = c.call_tool("slow", &json!({})).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.contains("tools/call"), "{e}");
    }

    #[test]
    fn a_cancelled_call_stops_while_the_server_drips() {
        let addr = dripping_server();
        let cancel = Cancel::default();
        let mut c = drip_client(addr, Duration::from_secs(60), &cancel);
        let flag = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            flag.cancel();
        });
        let t = Instant::now();
        let e = c.call_tool("slow", &json!({})).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.contains("cancelled"), "{e}");
    }

    #[test]
    fn the_client_deadline_bounds_every_request() {
        let addr = dripping_server();
        let never = Cancel::never();
        let mut c = McpClient::connect(&Connection {
            url: "http://mcp.invalid/mcp",
            addrs: &[addr],
            auth: None,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
            deadline: Instant::now() + Duration::from_millis(1500),
            cancel: &never,
            max_bytes: 1 << 20,
        })
        .unwrap();
        let t = Instant::now();
        assert!(c.list_tools(10).is_err());
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}
