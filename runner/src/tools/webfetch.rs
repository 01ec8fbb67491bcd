//! `WebFetch`: an HTTP(S) GET or HEAD from the runner itself (a host tool,
//! not a guest), under policy.
//!
//! Every request — the first and each redirect hop — is decided twice
//! ([`crate::policy::connect`]): on the host alone before the name is
//! resolved (a refused name never reaches DNS), then on *the addresses the
//! runner itself resolved*; the connection then goes to exactly those addresses (the
//! resolver is pinned), so a name that re-resolves elsewhere between the
//! decision and the connect (DNS rebinding) gains nothing. The policy's
//! address guard therefore judges what is actually dialled. Redirects are
//! followed by hand, at most [`MAX_REDIRECTS`], and stop at the first hop
//! the policy does not allow. Size and time are capped.

use super::{Tool, ToolError, ToolRun, ToolSource, ToolSpec};
use crate::policy::connect;
use protocol::policy::{Action, ActionDetail};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

/// Redirect hops followed at most.
pub(super) const MAX_REDIRECTS: usize = 5;

/// Limits of WebFetch (`[webfetch]` in the worker config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFetchSettings {
    /// Largest body returned unless the call asks for less.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Time limit of each request (connect + response).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_max_bytes() -> usize {
    1 << 20
}
fn default_timeout_ms() -> u64 {
    20_000
}

impl Default for WebFetchSettings {
    fn default() -> Self {
        WebFetchSettings {
            max_bytes: default_max_bytes(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// The `WebFetch` tool.
pub struct WebFetch {
    spec: ToolSpec,
    settings: WebFetchSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    max_bytes: Option<usize>,
}

struct Target {
    url: url::Url,
    host: String,
    port: u16,
    scheme: String,
}

impl WebFetch {
    /// The tool with its limits.
    pub fn new(settings: WebFetchSettings) -> Self {
        WebFetch {
            spec: ToolSpec {
                name: "WebFetch".into(),
                description: "Fetch a web page or file over HTTP(S) (GET or HEAD). Returns the status, content type and the body as text (HTML reduced to readable text). Only hosts the policy allows; redirects are checked hop by hop.".into(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "required": ["url"],
                    "additionalProperties": false,
                    "properties": {
                        "url": {"type": "string", "description": "http:// or https:// URL"},
                        "method": {"enum": ["GET", "HEAD"]},
                        "max_bytes": {"type": "integer", "minimum": 1}
                    }
                }),
                source: ToolSource::Builtin,
                capabilities: vec!["net.connect".into()],
                operator_only: false,
            },
            settings,
        }
    }

    fn parse(input: &serde_json::Value) -> Result<Input, ToolError> {
        serde_json::from_value(input.clone()).map_err(|e| ToolError::InvalidInput {
            tool: "WebFetch".into(),
            message: e.to_string(),
        })
    }
}

fn target(raw: &str) -> Result<Target, ToolError> {
    let url =
        url::Url::parse(raw).map_err(|e| ToolError::Failed(format!("{raw} is not a URL: {e}")))?;
    let scheme = url.scheme().to_string();
    if scheme != "http" && scheme != "https" {
        return Err(ToolError::Failed(format!(
            "{raw}: only http and https URLs can be fetched"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ToolError::Failed(format!(
            "{raw}: URLs with credentials are refused"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| ToolError::Failed(format!("{raw} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ToolError::Failed(format!("{raw} has no port")))?;
    Ok(Target {
        url,
        host,
        port,
        scheme,
    })
}

fn connect_target<'a>(t: &'a Target, method: &'a str) -> connect::Target<'a> {
    connect::Target {
        tool: "WebFetch",
        host: &t.host,
        port: t.port,
        scheme: &t.scheme,
        method: Some(method),
    }
}

fn refused(from: Option<&str>, t: &Target, r: connect::Refused) -> ToolError {
    let record = r.0;
    let what = match from {
        Some(from) => format!("redirect from {from} to {}", t.url),
        None => format!("{}", t.url),
    };
    ToolError::Failed(format!(
        "{what} was not allowed by policy ({}): {}",
        record.result.as_str(),
        record.reasons.join("; ")
    ))
}

impl Tool for WebFetch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
        let i = Self::parse(input)?;
        let t = target(&i.url)?;
        let method = i.method.as_deref().unwrap_or("GET");
        // Decided on the host alone: nothing is resolved before this is
        // allowed. The addresses are decided in `run`.
        Ok(vec![connect::host_action(&connect_target(&t, method))])
    }

    fn follow_up(&self, action: &Action) -> Option<Action> {
        // Only once the host is allowed is its name resolved.
        match &action.detail {
            ActionDetail::NetConnect {
                host,
                port,
                scheme,
                method,
                resolved: false,
                ..
            } => Some(connect::resolved_action(&connect::Target {
                tool: "WebFetch",
                host,
                port: *port,
                scheme,
                method: method.as_deref(),
            })),
            _ => None,
        }
    }

    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
        let i = Self::parse(run.input)?;
        let method = i.method.clone().unwrap_or_else(|| "GET".into());
        let max = i
            .max_bytes
            .unwrap_or(self.settings.max_bytes)
            .min(self.settings.max_bytes);
        // The first hop dials exactly the addresses that were decided (the
        // second, resolved decision of the call).
        let mut t = target(&i.url)?;
        let resolved = super::resolved_connect(run.decisions, "the resolved addresses")?;
        if resolved.port != t.port {
            return Err(ToolError::Failed(format!(
                "the decided connection is to port {}, the request to {}; nothing was sent",
                resolved.port, t.port
            )));
        }
        let mut addrs: Vec<SocketAddr> = resolved
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|ip| SocketAddr::new(ip, resolved.port))
            .collect();
        let mut hops: Vec<String> = Vec::new();
        loop {
            let response = self.request(&t, &method, &addrs)?;
            let status = response.status();
            let location = response.header("location").map(str::to_string);
            if (300..400).contains(&status) && location.is_some() {
                let loc = location.unwrap_or_default();
                let next = t.url.join(&loc).map_err(|e| {
                    ToolError::Failed(format!("redirect to an invalid URL {loc:?}: {e}"))
                })?;
                hops.push(t.url.to_string());
                if hops.len() > MAX_REDIRECTS {
                    return Err(ToolError::Failed(format!(
                        "more than {MAX_REDIRECTS} redirects; stopped at {next}"
                    )));
                }
                t = target(next.as_str())?;
                addrs = connect::decide(run.gate, run.ctx, &connect_target(&t, &method))
                    .map_err(|r| refused(hops.last().map(String::as_str), &t, r))?
                    .0;
                continue;
            }
            return self.body(response, &t, &method, max, hops);
        }
    }
}

impl WebFetch {
    fn request(
        &self,
        t: &Target,
        method: &str,
        addrs: &[SocketAddr],
    ) -> Result<ureq::Response, ToolError> {
        if addrs.is_empty() {
            return Err(ToolError::Failed(format!("{} did not resolve", t.host)));
        }
        let agent = pinned_agent(
            addrs,
            self.settings.timeout_ms,
            concat!("runner-webfetch/", env!("CARGO_PKG_VERSION")),
        );
        match agent.request(method, t.url.as_str()).call() {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(_, r)) => Ok(r),
            Err(ureq::Error::Transport(e)) => {
                Err(ToolError::Failed(format!("fetching {} failed: {e}", t.url)))
            }
        }
    }

    fn body(
        &self,
        response: ureq::Response,
        t: &Target,
        method: &str,
        max: usize,
        redirects: Vec<String>,
    ) -> Result<serde_json::Value, ToolError> {
        let status = response.status();
        let content_type = response.content_type().to_string();
        let mut bytes = Vec::new();
        if method != "HEAD" {
            response
                .into_reader()
                .take(max as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| ToolError::Failed(format!("reading {} failed: {e}", t.url)))?;
        }
        let truncated = bytes.len() > max;
        bytes.truncate(max);
        let text = if content_type.contains("html") {
            html_to_text(&String::from_utf8_lossy(&bytes))
        } else if content_type.starts_with("text/")
            || content_type.contains("json")
            || content_type.contains("xml")
            || std::str::from_utf8(&bytes).is_ok()
        {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            format!("({} bytes of {content_type}, not text)", bytes.len())
        };
        Ok(serde_json::json!({
            "url": t.url.as_str(),
            "status": status,
            "content_type": content_type,
            "body": text,
            "truncated": truncated,
            "redirects": redirects,
        }))
    }
}

/// An HTTP agent that dials only `addrs` — the addresses a resolved
/// `net.connect` decision allowed — whatever name the URL carries (the
/// resolver is pinned, so a name that re-resolves elsewhere after the
/// decision gains nothing), follows no redirect (each hop must be decided
/// by its caller) and gives up after `timeout_ms`. Shared by every host
/// tool that speaks HTTP (WebFetch, WebSearch).
pub(super) fn pinned_agent(addrs: &[SocketAddr], timeout_ms: u64, user_agent: &str) -> ureq::Agent {
    let pinned = addrs.to_vec();
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_millis(timeout_ms))
        .user_agent(user_agent)
        // Only the decided addresses are ever dialled.
        .resolver(move |_netloc: &str| Ok(pinned.clone()))
        .build()
}

/// HTML reduced to readable text: scripts, styles and tags dropped, block
/// elements on their own lines, common entities decoded, blank runs folded.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let b = html.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &lower[i..];
            for skip in ["script", "style", "noscript", "template"] {
                if rest[1..].starts_with(skip) {
                    let close = format!("</{skip}");
                    i = match rest.find(&close) {
                        Some(p) => i + p,
                        None => b.len(),
                    };
                    break;
                }
            }
            if i >= b.len() {
                break;
            }
            let end = lower[i..].find('>').map_or(b.len(), |p| i + p + 1);
            let tag = lower[i + 1..end.saturating_sub(1).max(i + 1)]
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("");
            if matches!(
                tag,
                "p" | "div"
                    | "br"
                    | "li"
                    | "tr"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "pre"
                    | "section"
                    | "article"
                    | "header"
                    | "footer"
                    | "table"
                    | "ul"
                    | "ol"
                    | "blockquote"
                    | "title"
            ) {
                out.push('\n');
            }
            i = end;
        } else {
            let next = html[i..].find('<').map_or(html.len(), |p| i + p);
            out.push_str(&decode_entities(&html[i..next]));
            i = next;
        }
    }
    let mut folded = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        folded.push_str(&line);
        folded.push('\n');
    }
    folded.trim().to_string()
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text() {
        let t = html_to_text(
            "<html><head><title>T</title><style>p{}</style><script>alert(1)</script></head><body><h1>Hello</h1><p>a &amp; b</p></body></html>",
        );
        assert_eq!(t, "T\n\nHello\n\na & b");
    }

    #[test]
    fn only_http_urls_without_credentials() {
        assert!(target("file:///etc/passwd").is_err());
        assert!(target("http://user:pw@example.com/").is_err());
        let t = target("https://example.com/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
    }
}
