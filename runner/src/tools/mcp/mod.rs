//! MCP servers' tools: the runner connects to each MCP server the pinned
//! agent version names (Streamable HTTP), lists its tools and offers them
//! as `mcp__<server>__<tool>`; every call is an `mcp.call` decision, and
//! the connection a `net.connect` decision under the address guard.
//!
//! The agent version names servers by URL only; their credentials live in
//! the worker config (`[[mcp.servers]]`, secret references), are resolved
//! when a session connects and are sent only as the configured header to
//! the decided addresses — never offered to the model, never returned in a
//! result (every secret value is redacted from what comes back).

mod client;
mod session;
mod tool;

pub(crate) use session::connect_servers;
pub use tool::McpTool;

use crate::secret::SecretRef;
use serde::Deserialize;

/// `[mcp]` in the worker config: credentials and limits of MCP servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSection {
    /// Time to establish a TCP (and TLS) connection to a server.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time a server may take to answer one request (a `tools/call` too).
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Tools offered from one server at most; the rest are left out with a
    /// note (a server cannot flood the model's context).
    #[serde(default = "default_max_tools")]
    pub max_tools_per_server: usize,
    /// A tool description is cut to this many characters.
    #[serde(default = "default_max_description_chars")]
    pub max_description_chars: usize,
    /// A tool whose input schema is larger (as JSON) is left out.
    #[serde(default = "default_max_schema_bytes")]
    pub max_schema_bytes: usize,
    /// Largest answer read from a server; a result is cut to it.
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: usize,
    /// Per server: the credential the worker sends to it.
    #[serde(default)]
    pub servers: Vec<McpServerCredential>,
}

impl Default for McpSection {
    fn default() -> Self {
        McpSection {
            connect_timeout_ms: default_connect_timeout_ms(),
            call_timeout_ms: default_call_timeout_ms(),
            max_tools_per_server: default_max_tools(),
            max_description_chars: default_max_description_chars(),
            max_schema_bytes: default_max_schema_bytes(),
            max_result_bytes: default_max_result_bytes(),
            servers: Vec::new(),
        }
    }
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_call_timeout_ms() -> u64 {
    60_000
}
fn default_max_tools() -> usize {
    100
}
fn default_max_description_chars() -> usize {
    1_000
}
fn default_max_schema_bytes() -> usize {
    64 << 10
}
fn default_max_result_bytes() -> usize {
    1 << 20
}

/// `[[mcp.servers]]`: the secret the worker sends to one MCP server. An
/// agent's server matches by `url` (same scheme, host and port, and a path
/// at or under this one, whole segments), narrowed by `name` when it is
/// set; the first match wins. `url` is required: the agent version (which
/// may be inline, written by whoever starts the session) chooses the URL
/// behind a name, so a name alone would send the operator's token anywhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerCredential {
    /// The agent version's server name this credential is for (optional:
    /// it only narrows the `url` match further).
    #[serde(default)]
    pub name: Option<String>,
    /// The server URL (or a prefix of it, whole path segments) this
    /// credential is for; required.
    #[serde(default)]
    pub url: Option<String>,
    /// The header it is sent in; `Authorization` sends `Bearer <secret>`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Where the secret comes from (`{ env = "…" }`, `{ file = "…" }`, …).
    pub secret: SecretRef,
}

fn default_header() -> String {
    "Authorization".into()
}

impl McpSection {
    /// Refuses a credential that could go to an origin the operator did
    /// not name: every `[[mcp.servers]]` entry needs a parseable http(s)
    /// `url`. The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (i, c) in self.servers.iter().enumerate() {
            let key = match &c.name {
                Some(n) => format!("mcp.servers[{i}] (name = {n:?})"),
                None => format!("mcp.servers[{i}]"),
            };
            let Some(u) = &c.url else {
                return Err(format!(
                    "{key} has no url: a credential is sent only to the server URL it names; add url = \"https://…\" (name alone would let an agent version send it to any URL)"
                ));
            };
            match url::Url::parse(u) {
                Ok(p)
                    if (p.scheme() == "http" || p.scheme() == "https")
                        && p.host_str().is_some() => {}
                _ => {
                    return Err(format!(
                        "{key}.url `{u}` must be an absolute http:// or https:// URL"
                    ))
                }
            }
        }
        Ok(())
    }
}

impl McpServerCredential {
    /// Whether this entry is the credential of the agent's server `name`
    /// at `url`: an entry matches only its own origin and path (whole
    /// segments: `/tenantA` is not a prefix of `/tenantAB`), so a secret is
    /// never sent to another host whatever the agent's config names.
    pub(crate) fn matches(&self, name: &str, url: &url::Url) -> bool {
        if let Some(n) = &self.name {
            if n != name {
                return false;
            }
        }
        let Some(Ok(u)) = self.url.as_deref().map(url::Url::parse) else {
            return false;
        };
        u.scheme() == url.scheme()
            && u.host_str().map(str::to_ascii_lowercase)
                == url.host_str().map(str::to_ascii_lowercase)
            && u.port_or_known_default() == url.port_or_known_default()
            && path_under(url.path(), u.path())
    }
}

/// Whether `path` is `prefix` or below it, comparing whole segments.
fn path_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(name: Option<&str>, url: Option<&str>) -> McpServerCredential {
        McpServerCredential {
            name: name.map(str::to_string),
            url: url.map(str::to_string),
            header: default_header(),
            secret: SecretRef::default(),
        }
    }

    #[test]
    fn a_credential_matches_only_its_own_origin() {
        let u = url::Url::parse("https://mcp.example:8443/mcp").unwrap();
        assert!(cred(None, Some("https://mcp.example:8443/")).matches("a", &u));
        assert!(cred(Some("a"), Some("https://mcp.example:8443/mcp")).matches("a", &u));
        assert!(!cred(Some("b"), Some("https://mcp.example:8443/mcp")).matches("a", &u));
        // A known name pointed at another origin gets no token.
        assert!(!cred(Some("a"), None).matches("a", &u));
        assert!(!cred(None, Some("https://mcp.example/mcp")).matches("a", &u));
        assert!(!cred(None, Some("http://mcp.example:8443/mcp")).matches("a", &u));
        assert!(!cred(None, Some("https://evil.example:8443/mcp")).matches("a", &u));
        assert!(!cred(None, Some("https://mcp.example:8443/other")).matches("a", &u));
        assert!(!cred(Some("a"), Some("https://evil.example/")).matches("a", &u));
        assert!(!cred(None, None).matches("a", &u));
    }

    #[test]
    fn a_credential_path_matches_whole_segments() {
        let c = cred(None, Some("https://mcp.example/tenantA"));
        let m = |p: &str| c.matches("a", &url::Url::parse(p).unwrap());
        assert!(m("https://mcp.example/tenantA"));
        assert!(m("https://mcp.example/tenantA/"));
        assert!(m("https://mcp.example/tenantA/mcp"));
        assert!(!m("https://mcp.example/tenantAB-other"));
        assert!(!m("https://mcp.example/tenant"));
        let slash = cred(None, Some("https://mcp.example/tenantA/"));
        assert!(slash.matches(
            "a",
            &url::Url::parse("https://mcp.example/tenantA/mcp").unwrap()
        ));
        assert!(!slash.matches(
            "a",
            &url::Url::parse("https://mcp.example/tenantAB").unwrap()
        ));
    }

    #[test]
    fn a_name_only_credential_is_refused_at_config_load() {
        let mut s = McpSection::default();
        s.servers.push(cred(Some("docs"), None));
        let e = s.validate().unwrap_err();
        assert!(
            e.contains("mcp.servers[0]") && e.contains("docs") && e.contains("add url"),
            "{e}"
        );
        s.servers[0].url = Some("ftp://x/".into());
        assert!(s.validate().unwrap_err().contains("mcp.servers[0]"));
        s.servers[0].url = Some("https://mcp.example/mcp".into());
        s.validate().unwrap();
    }
}
