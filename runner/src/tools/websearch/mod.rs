//! `WebSearch`: a query to the worker's search provider (SearXNG's JSON
//! API, or Brave's Web Search API), decided as a `web.search` action and
//! its connection as a `net.connect`; results come back as untrusted
//! title/url/snippet.
//!
//! The provider is the operator's choice (`[websearch]`), never the
//! model's: the model writes only the query and a count. The connection to
//! the provider's host is decided like WebFetch's — the host first, then
//! the addresses the runner resolved — and dials exactly the decided
//! addresses through the pinned agent WebFetch uses
//! ([`super::webfetch::pinned_agent`]), so the address guard of `net.rego`
//! judges what is actually dialled. The providers themselves are pure
//! (build a request, parse a body): all I/O is here.

mod brave;
mod searxng;

pub use brave::Brave;
pub use searxng::Searxng;

use super::webfetch::{html_to_text, pinned_agent};
use super::{Tool, ToolError, ToolRun, ToolSource, ToolSpec};
use crate::policy::connect;
use crate::secret::{Secret, SecretRef};
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, ActionDetail};
use serde::Deserialize;
use std::io::Read;
use std::net::SocketAddr;

/// Longest query, in characters (the policy refuses longer ones too).
pub const MAX_QUERY_CHARS: usize = 400;
/// Most results one call may ask for (Brave's own limit).
pub const MAX_COUNT: u32 = 20;
/// Longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 200;
/// Longest snippet kept, in characters.
const MAX_SNIPPET_CHARS: usize = 500;
/// Longest result URL kept, in bytes; longer ones are dropped.
const MAX_URL_BYTES: usize = 2048;

/// Which search API the worker talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// A SearXNG instance (`GET /search?format=json`), usually self-hosted.
    Searxng,
    /// Brave's hosted Web Search API (needs an API key).
    Brave,
}

impl ProviderKind {
    /// The name policies see (`searxng`, `brave`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Searxng => "searxng",
            ProviderKind::Brave => "brave",
        }
    }
}

/// Brave's API, when `[websearch] url` is not given for `brave`.
pub const BRAVE_DEFAULT_URL: &str = "https://api.search.brave.com";

/// `[websearch]` in the worker config: which provider, where. Without a
/// provider the WebSearch tool is not registered, so it is never offered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSearchSection {
    /// `searxng` or `brave`; none means no WebSearch tool.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
    /// The provider's base URL (SearXNG: required; Brave: default
    /// [`BRAVE_DEFAULT_URL`]). Its host is the one host WebSearch may reach.
    #[serde(default)]
    pub url: Option<String>,
    /// Brave's subscription token, as a secret reference (never inline).
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// Results returned at most (1–20), whatever the call asks for.
    #[serde(default = "default_max_results")]
    pub max_results: u32,
    /// Time limit of the provider's answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest response body read from the provider; a larger one fails
    /// the call rather than being parsed in part.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_max_results() -> u32 {
    5
}
fn default_timeout_ms() -> u64 {
    15_000
}
fn default_max_response_bytes() -> usize {
    1 << 20
}

impl Default for WebSearchSection {
    fn default() -> Self {
        WebSearchSection {
            provider: None,
            url: None,
            api_key: None,
            max_results: default_max_results(),
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// Where the provider is: its base URL and the parts a `net.connect`
/// names.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The base URL requests are built on.
    pub url: url::Url,
    /// Host as the policy sees it: lower case, no brackets, no final dot.
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// `http` or `https`.
    pub scheme: String,
}

impl Endpoint {
    /// Parses a provider's base URL, refusing anything but http(s) without
    /// credentials (a key belongs in `api_key`, not in a URL that is shown).
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let mut url =
            url::Url::parse(raw).map_err(|e| format!("websearch.url `{raw}` is not a URL: {e}"))?;
        let scheme = url.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "websearch.url `{raw}` must be an http:// or https:// URL"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "websearch.url must not carry credentials; give the key as websearch.api_key"
                    .into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "websearch.url `{raw}` must be a base URL without query or fragment"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("websearch.url `{raw}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("websearch.url `{raw}` has no port"))?;
        // Paths are joined onto the base: it must end in `/`.
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Endpoint {
            url,
            host,
            port,
            scheme,
        })
    }
}

impl WebSearchSection {
    /// The provider's endpoint, or `None` when no provider is configured.
    pub fn endpoint(&self) -> Result<Option<Endpoint>, String> {
        let Some(kind) = self.provider else {
            return Ok(None);
        };
        let raw = match (kind, &self.url) {
            (_, Some(u)) => u.as_str(),
            (ProviderKind::Brave, None) => BRAVE_DEFAULT_URL,
            (ProviderKind::Searxng, None) => {
                return Err(
                    "websearch.url is required for provider = \"searxng\" (the instance's base URL, e.g. http://127.0.0.1:8888/)"
                        .into(),
                )
            }
        };
        Endpoint::parse(raw).map(Some)
    }

    /// Checks the section as the config is loaded: the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.provider.is_none() {
            if self.url.is_some() || self.api_key.is_some() {
                return Err(
                    "websearch.url/api_key are set but websearch.provider is not; set provider = \"searxng\" or \"brave\""
                        .into(),
                );
            }
            return Ok(());
        }
        self.endpoint()?;
        if !(1..=MAX_COUNT).contains(&self.max_results) {
            return Err(format!(
                "websearch.max_results must be between 1 and {MAX_COUNT}"
            ));
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return Err("websearch.timeout_ms must be between 100 and 120000".into());
        }
        if !(1024..=(16 << 20)).contains(&self.max_response_bytes) {
            return Err("websearch.max_response_bytes must be between 1024 and 16777216".into());
        }
        match (self.provider, &self.api_key) {
            (Some(ProviderKind::Brave), None) => Err(
                "websearch.api_key is required for provider = \"brave\" (e.g. api_key = { env = \"BRAVE_API_KEY\" })"
                    .into(),
            ),
            (Some(ProviderKind::Searxng), Some(_)) => Err(
                "websearch.api_key is only used by provider = \"brave\"; remove it for searxng"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// What policies see under `trusted.worker.websearch`: the provider's
    /// name and host, never its key. Empty when no provider is configured
    /// (the policy then denies every search).
    pub fn trusted_view(&self) -> serde_json::Value {
        match (self.provider, self.endpoint()) {
            (Some(kind), Ok(Some(e))) => {
                serde_json::json!({"provider": kind.as_str(), "host": e.host})
            }
            _ => serde_json::json!({}),
        }
    }
}

/// What one search asks the provider for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query as decided.
    pub query: String,
    /// Results wanted (1–20).
    pub count: u32,
}

/// One result, as the provider gave it (cleaned by the tool afterwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The page's title.
    pub title: String,
    /// The page's address.
    pub url: String,
    /// The provider's excerpt of the page.
    pub snippet: String,
}

/// A request header's value: a key travels as a [`Secret`], so it never
/// shows up in a `Debug` print, and is scrubbed from every error message.
#[derive(Debug)]
pub enum HeaderValue {
    /// An ordinary value (`Accept: application/json`).
    Plain(String),
    /// A credential (`X-Subscription-Token`).
    Secret(Secret),
}

impl HeaderValue {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(s) => s,
            HeaderValue::Secret(s) => s.expose(),
        }
    }
}

/// The one request a search makes.
#[derive(Debug)]
pub struct HttpCall {
    /// Always `GET` for the providers here.
    pub method: &'static str,
    /// The full request URL (on the provider's endpoint).
    pub url: url::Url,
    /// Request headers.
    pub headers: Vec<(&'static str, HeaderValue)>,
}

/// A search API: builds the request and parses the answer, with no I/O of
/// its own, so both halves are tested on the provider's real wire format
/// and the tool alone decides where the request goes.
pub trait SearchProvider: Send + Sync {
    /// `searxng` or `brave`: the `provider` of the `web.search` action.
    fn name(&self) -> &'static str;
    /// Where requests go; its host and port are decided as `net.connect`.
    fn endpoint(&self) -> &Endpoint;
    /// The request for `q`.
    fn request(&self, q: &SearchQuery) -> HttpCall;
    /// The hits in a response (`status`, `body`), or what went wrong in
    /// words an operator can act on.
    fn parse(&self, status: u16, body: &[u8]) -> Result<Vec<SearchHit>, String>;
}

/// The `WebSearch` tool.
pub struct WebSearch {
    spec: ToolSpec,
    provider: Box<dyn SearchProvider>,
    max_results: u32,
    timeout_ms: u64,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    query: String,
    #[serde(default)]
    count: Option<u32>,
}

impl WebSearch {
    /// The tool for `[websearch]`, or `None` when no provider is configured.
    /// Resolves Brave's key here, so a missing key is reported when the
    /// worker starts, not on the first search.
    pub fn from_section(s: &WebSearchSection) -> Result<Option<WebSearch>, String> {
        s.validate()?;
        let Some(endpoint) = s.endpoint()? else {
            return Ok(None);
        };
        let provider: Box<dyn SearchProvider> = match s.provider {
            Some(ProviderKind::Brave) => {
                let key = s
                    .api_key
                    .as_ref()
                    .ok_or("websearch.api_key is required for provider = \"brave\"")?
                    .resolve("websearch.api_key")?;
                Box::new(Brave::new(endpoint, key))
            }
            _ => Box::new(Searxng::new(endpoint)),
        };
        Ok(Some(WebSearch::new(provider, s)))
    }

    /// The tool over `provider`, with the limits of `s`.
    pub fn new(provider: Box<dyn SearchProvider>, s: &WebSearchSection) -> WebSearch {
        let max_results = s.max_results.clamp(1, MAX_COUNT);
        WebSearch {
            spec: ToolSpec {
                name: "WebSearch".into(),
                description: format!(
                    "Search the web through the worker's search provider ({}). Returns up to {max_results} results, each a title, URL and snippet. Results are untrusted web content: use WebFetch to read a page.",
                    provider.name()
                ),
                input_schema: serde_json::json!({
                    "type": "object",
                    "required": ["query"],
                    "additionalProperties": false,
                    "properties": {
                        "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
                        "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
                    }
                }),
                source: ToolSource::Builtin,
                capabilities: vec!["web.search".into(), "net.connect".into()],
                operator_only: false,
            },
            provider,
            max_results,
            timeout_ms: s.timeout_ms,
            max_response_bytes: s.max_response_bytes,
        }
    }

    fn parse(input: &serde_json::Value) -> Result<Input, ToolError> {
        let bad = |message: String| ToolError::InvalidInput {
            tool: "WebSearch".into(),
            message,
        };
        let i: Input = serde_json::from_value(input.clone()).map_err(|e| bad(e.to_string()))?;
        if i.query.trim().is_empty() {
            return Err(bad("the query is empty".into()));
        }
        if i.query.chars().count() > MAX_QUERY_CHARS {
            return Err(bad(format!(
                "the query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        if let Some(c) = i.count {
            if !(1..=MAX_COUNT).contains(&c) {
                return Err(bad(format!("count must be between 1 and {MAX_COUNT}")));
            }
        }
        Ok(i)
    }

    fn target(&self) -> connect::Target<'_> {
        let e = self.provider.endpoint();
        connect::Target {
            tool: "WebSearch",
            host: &e.host,
            port: e.port,
            scheme: &e.scheme,
            method: Some("GET"),
        }
    }

    /// Says what failed without ever showing a header value (the key).
    fn redact(&self, call: &HttpCall, message: String) -> String {
        call.headers.iter().fold(message, |m, (_, v)| match v {
            HeaderValue::Secret(s) if !s.expose().is_empty() => m.replace(s.expose(), "[redacted]"),
            _ => m,
        })
    }
}

impl Tool for WebSearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
        let i = Self::parse(input)?;
        let count = i.count.unwrap_or(self.max_results).min(self.max_results);
        Ok(vec![
            Action {
                tool: "WebSearch".into(),
                detail: ActionDetail::WebSearch {
                    provider: self.provider.name().into(),
                    query: i.query,
                    count: Some(count),
                },
            },
            // The provider's host, before anything is resolved; its
            // addresses are decided by the follow-up.
            connect::host_action(&self.target()),
        ])
    }

    fn follow_up(&self, action: &Action) -> Option<Action> {
        match &action.detail {
            ActionDetail::NetConnect {
                resolved: false, ..
            } => Some(connect::resolved_action(&self.target())),
            _ => None,
        }
    }

    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
        // The decided object is the acted object: the query and count the
        // policy saw, and the addresses it allowed.
        let search = run
            .decisions
            .iter()
            .find_map(|d| match &d.action {
                Some(NormalizedAction::WebSearch(s)) => Some(s),
                _ => None,
            })
            .ok_or_else(|| ToolError::Failed("no decision on the search was made".into()))?;
        if search.provider != self.provider.name() {
            return Err(ToolError::Failed(format!(
                "the decided search is for provider {}, this worker's is {}; nothing was sent",
                search.provider,
                self.provider.name()
            )));
        }
        let e = self.provider.endpoint();
        let resolved = crate::tools::resolved_connect(run.decisions, "the provider's addresses")?;
        if resolved.host != e.host || resolved.port != e.port {
            return Err(ToolError::Failed(format!(
                "the decided connection is to {}:{}, the provider is at {}:{}; nothing was sent",
                resolved.host, resolved.port, e.host, e.port
            )));
        }
        let addrs: Vec<SocketAddr> = resolved
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|ip| SocketAddr::new(ip, resolved.port))
            .collect();
        if addrs.is_empty() {
            return Err(ToolError::Failed(format!(
                "the search provider's host {} did not resolve",
                e.host
            )));
        }
        let q = SearchQuery {
            query: search.query.clone(),
            count: search
                .count
                .unwrap_or(self.max_results)
                .clamp(1, self.max_results),
        };
        let call = self.provider.request(&q);
        let fail = |m: String| ToolError::Failed(self.redact(&call, m));
        let agent = pinned_agent(
            &addrs,
            self.timeout_ms,
            concat!("runner-websearch/", env!("CARGO_PKG_VERSION")),
        );
        let mut req = agent.request(call.method, call.url.as_str());
        for (name, value) in &call.headers {
            req = req.set(name, value.expose());
        }
        let what = format!("the search provider {} at {}", self.provider.name(), e.host);
        let response = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(fail(format!("{what} could not be reached: {t}")))
            }
        };
        let status = response.status();
        let mut body = Vec::new();
        response
            .into_reader()
            .take(self.max_response_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|err| fail(format!("reading the answer of {what} failed: {err}")))?;
        if body.len() > self.max_response_bytes {
            return Err(fail(format!(
                "{what} answered more than {} bytes (websearch.max_response_bytes)",
                self.max_response_bytes
            )));
        }
        let hits = self
            .provider
            .parse(status, &body)
            .map_err(|m| fail(format!("{what}: {m}")))?;
        let (results, truncated) = clean_hits(hits, q.count as usize);
        Ok(serde_json::json!({
            "provider": self.provider.name(),
            "query": q.query,
            "results": results,
            "truncated": truncated,
        }))
    }
}

/// The hits as the model gets them: at most `max`, each field cleaned and
/// capped, results without a usable http(s) URL dropped. `true` when more
/// usable results were cut.
fn clean_hits(hits: Vec<SearchHit>, max: usize) -> (Vec<serde_json::Value>, bool) {
    let mut out = Vec::new();
    let mut truncated = false;
    for h in hits {
        let Some(url) = clean_url(&h.url) else {
            continue;
        };
        if out.len() == max {
            truncated = true;
            break;
        }
        out.push(serde_json::json!({
            "title": clean_text(&h.title, MAX_TITLE_CHARS),
            "url": url,
            "snippet": clean_text(&h.snippet, MAX_SNIPPET_CHARS),
        }));
    }
    (out, truncated)
}

/// Text with tags and entities stripped, control and bidirectional
/// formatting characters removed, whitespace folded, at most `max` chars.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    let text = html_to_text(s);
    let folded = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control() && !is_format_char(*c))
        .collect::<String>();
    if folded.chars().count() <= max {
        folded
    } else {
        let mut cut: String = folded.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Zero-width and bidirectional-override characters: invisible in a UI,
/// they could hide text from a reader of the transcript.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// An http(s) URL without credentials, at most [`MAX_URL_BYTES`]; `None`
/// for anything else.
pub(crate) fn clean_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() > MAX_URL_BYTES {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    if !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    let out = u.to_string();
    (out.len() <= MAX_URL_BYTES).then_some(out)
}

/// A provider's non-2xx answer in a few words: its status and the start of
/// the body, cleaned (a body is untrusted).
pub(crate) fn status_error(status: u16, body: &[u8]) -> String {
    let text = clean_text(&String::from_utf8_lossy(body), 200);
    if text.is_empty() {
        format!("answered HTTP {status}")
    } else {
        format!("answered HTTP {status}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Result<WebSearchSection, String> {
        let s: WebSearchSection = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn no_provider_means_no_tool_and_an_empty_view() {
        let s = section("").unwrap();
        assert_eq!(s.trusted_view(), serde_json::json!({}));
        assert!(WebSearch::from_section(&s).unwrap().is_none());
    }

    #[test]
    fn the_trusted_view_is_provider_and_lower_case_host_never_the_key() {
        std::env::set_var("WEBSEARCH_TEST_KEY", "BSA-very-secret-key");
        let s = section(
            "provider = \"brave\"\napi_key = { env = \"WEBSEARCH_TEST_KEY\" }\nurl = \"https://API.Search.Brave.com.\"",
        )
        .unwrap();
        let v = s.trusted_view();
        assert_eq!(
            v,
            serde_json::json!({"provider": "brave", "host": "api.search.brave.com"})
        );
        let t = WebSearch::from_section(&s).unwrap().unwrap();
        let call = t.provider.request(&SearchQuery {
            query: "q".into(),
            count: 3,
        });
        assert!(!format!("{call:?}").contains("very-secret"));
        assert_eq!(
            t.redact(
                &call,
                "echoed BSA-very-secret-key as application/json".into()
            ),
            "echoed [redacted] as application/json"
        );
        let s = section("provider = \"searxng\"\nurl = \"http://127.0.0.1:8888\"").unwrap();
        assert_eq!(
            s.trusted_view(),
            serde_json::json!({"provider": "searxng", "host": "127.0.0.1"})
        );
    }

    #[test]
    fn bad_sections_are_refused_naming_the_key() {
        for (text, needle) in [
            ("provider = \"searxng\"", "websearch.url is required"),
            ("provider = \"brave\"", "websearch.api_key is required"),
            (
                "provider = \"searxng\"\nurl = \"ftp://x/\"",
                "http:// or https://",
            ),
            (
                "provider = \"searxng\"\nurl = \"http://u:p@x/\"",
                "credentials",
            ),
            (
                "provider = \"searxng\"\nurl = \"http://x/\"\nmax_results = 21",
                "max_results",
            ),
            (
                "provider = \"searxng\"\nurl = \"http://x/\"\nmax_results = 0",
                "max_results",
            ),
            ("url = \"http://x/\"", "provider is not"),
            ("provider = \"bing\"", "unknown variant"),
            (
                "provider = \"searxng\"\nurl = \"http://x/\"\napi_key = { env = \"K\" }",
                "only used by",
            ),
        ] {
            let e = section(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn brave_without_its_key_set_fails_at_start_naming_the_reference() {
        let s = section("provider = \"brave\"\napi_key = { env = \"WEBSEARCH_TEST_UNSET_KEY\" }")
            .unwrap();
        let e = WebSearch::from_section(&s).err().unwrap();
        assert!(e.contains("WEBSEARCH_TEST_UNSET_KEY"), "{e}");
    }

    fn tool(max_results: u32) -> WebSearch {
        let s = section(&format!(
            "provider = \"searxng\"\nurl = \"http://search.example:8080/\"\nmax_results = {max_results}"
        ))
        .unwrap();
        WebSearch::from_section(&s).unwrap().unwrap()
    }

    #[test]
    fn plan_is_the_search_then_the_providers_host() {
        let t = tool(5);
        let a = t
            .plan(&serde_json::json!({"query": "rust sandbox", "count": 9}))
            .unwrap();
        assert_eq!(a.len(), 2);
        match &a[0].detail {
            ActionDetail::WebSearch {
                provider,
                query,
                count,
            } => {
                assert_eq!(
                    (provider.as_str(), query.as_str()),
                    ("searxng", "rust sandbox")
                );
                assert_eq!(*count, Some(5), "capped at max_results");
            }
            d => panic!("{d:?}"),
        }
        match &a[1].detail {
            ActionDetail::NetConnect {
                host,
                port,
                resolved,
                addresses,
                ..
            } => {
                assert_eq!(
                    (host.as_str(), *port, *resolved),
                    ("search.example", 8080, false)
                );
                assert!(
                    addresses.is_empty(),
                    "nothing is resolved before the host is allowed"
                );
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(a[1].tool, "WebSearch");
        assert!(t.follow_up(&a[0]).is_none());
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_decided() {
        let t = tool(5);
        for i in [
            serde_json::json!({}),
            serde_json::json!({"query": "  "}),
            serde_json::json!({"query": "x".repeat(401)}),
            serde_json::json!({"query": "x", "count": 0}),
            serde_json::json!({"query": "x", "count": 21}),
            serde_json::json!({"query": "x", "provider": "brave"}),
        ] {
            assert!(
                matches!(t.plan(&i), Err(ToolError::InvalidInput { .. })),
                "{i}"
            );
        }
        assert!(t
            .plan(&serde_json::json!({"query": "é".repeat(400)}))
            .is_ok());
    }

    #[test]
    fn hits_are_cleaned_capped_and_bad_urls_dropped() {
        let hit = |title: &str, url: &str, snippet: &str| SearchHit {
            title: title.into(),
            url: url.into(),
            snippet: snippet.into(),
        };
        let (r, truncated) = clean_hits(
            vec![
                hit(
                    "<b>Rust</b> &amp; \u{202E}sandboxes\u{7}",
                    "https://a.example/x",
                    &"s".repeat(900),
                ),
                hit("creds", "https://u:p@b.example/", "x"),
                hit("file", "file:///etc/passwd", "x"),
                hit("js", "javascript:alert(1)", "x"),
                hit(
                    "long",
                    &format!("https://c.example/{}", "a".repeat(3000)),
                    "x",
                ),
                hit("second", "http://d.example/", "two\n\nlines"),
                hit("third", "http://e.example/", "cut"),
            ],
            2,
        );
        assert_eq!(r.len(), 2);
        assert!(truncated);
        assert_eq!(r[0]["title"], "Rust & sandboxes");
        assert_eq!(r[0]["url"], "https://a.example/x");
        assert_eq!(
            r[0]["snippet"].as_str().unwrap().chars().count(),
            MAX_SNIPPET_CHARS
        );
        assert_eq!(r[1]["title"], "second");
        assert_eq!(r[1]["snippet"], "two lines");
    }
}
