//! Building the policy `input` document exactly as DESIGN.md shows it:
//! `action`, `session`, `trusted`, `untrusted`.
//!
//! Trust rule 2 lives here: untrusted source work is placed under
//! `input.untrusted` and nowhere else. The session part of the document is
//! built once per session ([`SessionContext`]) and shared by reference
//! between decisions, so a decision only adds its normalised action.

use super::mask::{mask_shared, MaskedShared};
use super::paths::{normalize, NormalizedPath};
use protocol::normalized::{
    NormalizedAction, NormalizedConnect, NormalizedFile, NormalizedMcpCall, NormalizedOperation,
    NormalizedSearch, NormalizedShell,
};
use protocol::policy::{Action, ActionDetail};
use protocol::session::SourceWork;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Trusted configuration visible to policies under `input.trusted`.
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    /// The pinned agent version (model, system prompt, enabled tools, grants).
    pub agent: Value,
    /// What the worker config shows policies (the `[files]` and `[network]` config sections).
    pub worker: Value,
    /// Platform policy sent by the control plane.
    pub platform: Value,
}

/// Everything about a session that does not change between its decisions.
#[derive(Debug)]
pub struct SessionContext {
    /// Session id, when the action belongs to a session.
    pub session_id: Option<String>,
    /// Claim id under which the session runs.
    pub claim_id: Option<String>,
    /// Attempt number (1 for the first claim).
    pub attempt: u32,
    /// Canonical workspace root: every path in the input is relative to it.
    pub workspace: PathBuf,
    /// What the operator and platform configured: the only part policies may trust.
    pub trusted: Trusted,
    /// The session's work (title, prompt, comments): data to decide about, never instructions.
    pub untrusted: SourceWork,
    /// Places besides the workspace the session's tools may reach at fixed
    /// sandbox paths (`/skills`, `/data`); empty unless the session has them.
    pub roots: Vec<SessionRoot>,
    base: OnceLock<InputBase>,
    cache_id: u64,
}

/// A session root: a host directory the runner made for this session and
/// maps at a fixed path in both sandboxes. Paths under `at` are normalised
/// against `host`, never against the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRoot {
    /// `skills` or `artifacts`: the `root` of a normalised file there.
    pub name: &'static str,
    /// The path inside the sandbox (`/skills`, `/data`).
    pub at: PathBuf,
    /// The canonical host directory.
    pub host: PathBuf,
    /// Whether tools may write there (never for skills).
    pub writable: bool,
}

impl SessionRoot {
    /// The policy input's `session` key naming this root's host directory.
    pub fn input_key(&self) -> String {
        match self.name {
            "artifacts" => "artifacts_dir".to_string(),
            other => format!("{other}_dir"),
        }
    }
}

static NEXT_CONTEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The session-constant part of the input, in both representations, and
/// its masked copy for records (masked once, shared by every record).
#[derive(Debug)]
pub(crate) struct InputBase {
    pub(crate) rego: regorus::Value,
    json: Map<String, Value>,
    masked: OnceLock<(Vec<String>, MaskedShared)>,
}

impl SessionContext {
    /// A context for decisions in `workspace` (which must be canonical).
    pub fn new(workspace: PathBuf, trusted: Trusted, untrusted: SourceWork) -> Self {
        SessionContext {
            session_id: None,
            claim_id: None,
            attempt: 1,
            workspace,
            trusted,
            untrusted,
            roots: Vec::new(),
            base: OnceLock::new(),
            cache_id: NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Adds the session's roots (builder style; before the first decision).
    pub fn with_roots(mut self, roots: Vec<SessionRoot>) -> Self {
        self.roots = roots;
        self.base = OnceLock::new();
        self.cache_id = NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed);
        self
    }

    /// The root named `name`, when the session has it.
    pub fn root(&self, name: &str) -> Option<&SessionRoot> {
        self.roots.iter().find(|r| r.name == name)
    }

    /// Sets the session and claim ids (builder style).
    pub fn with_session(
        mut self,
        session_id: Option<String>,
        claim_id: Option<String>,
        attempt: u32,
    ) -> Self {
        self.session_id = session_id;
        self.claim_id = claim_id;
        self.attempt = attempt;
        self.base = OnceLock::new();
        self.cache_id = NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed);
        self
    }

    /// Identifies this context's (immutable) session part in decision-cache
    /// keys: two contexts never share cached decisions.
    pub(crate) fn cache_id(&self) -> u64 {
        self.cache_id
    }

    pub(crate) fn base(&self) -> &InputBase {
        self.base.get_or_init(|| {
            let mut session = json!({
                "id": self.session_id,
                "attempt": self.attempt,
                "workspace_dir": self.workspace.to_string_lossy(),
            });
            for r in &self.roots {
                session[r.input_key()] = Value::from(r.host.to_string_lossy().into_owned());
            }
            let json = json!({
                "session": session,
                "trusted": {
                    "agent": self.trusted.agent,
                    "worker": self.trusted.worker,
                    "platform": self.trusted.platform,
                },
                "untrusted": self.untrusted,
            });
            InputBase {
                rego: regorus::Value::from(json.clone()),
                json: match json {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                masked: OnceLock::new(),
            }
        })
    }

    /// The session part of the input masked by `pointers`, for records.
    /// Computed once per context (an engine's mask never changes); a
    /// different mask list is computed afresh rather than cached.
    pub(crate) fn masked_shared(&self, pointers: &[String]) -> MaskedShared {
        let base = self.base();
        let (cached_for, masked) = base
            .masked
            .get_or_init(|| (pointers.to_vec(), mask_shared(base.json.clone(), pointers)));
        if cached_for == pointers {
            masked.clone()
        } else {
            mask_shared(base.json.clone(), pointers)
        }
    }
}

/// Turns a requested action into the normalised `input.action`: clean paths
/// with `in_workspace`, canonical host and addresses. An `Err` is the reason
/// the action is denied without evaluating the policy.
pub(crate) fn normalize_action(
    action: &Action,
    ctx: &SessionContext,
) -> Result<NormalizedAction, String> {
    let tool = action.tool.clone();
    Ok(match &action.detail {
        ActionDetail::FsRead { path } => NormalizedAction::FsRead(file(ctx, tool, path)?),
        ActionDetail::FsWrite { path } => NormalizedAction::FsWrite(file(ctx, tool, path)?),
        ActionDetail::ShellExec {
            command,
            cwd,
            network,
            env,
        } => {
            let n = normalize_path(ctx, cwd)?;
            NormalizedAction::ShellExec(NormalizedShell {
                tool,
                command: command.clone(),
                cwd: n.policy_path(),
                cwd_abs: n.abs.to_string_lossy().into_owned(),
                cwd_requested: cwd.clone(),
                cwd_in_workspace: n.in_workspace(),
                network: *network,
                env: env.clone(),
            })
        }
        ActionDetail::NetConnect {
            host,
            port,
            scheme,
            method,
            addresses,
            resolved,
        } => {
            let host_clean = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if host_clean.is_empty() {
                return Err("the connection has no host".into());
            }
            let literal = host_clean
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok();
            let mut addrs: Vec<String> = Vec::new();
            for a in literal
                .iter()
                .map(|ip| Ok(*ip))
                .chain(addresses.iter().map(|s| {
                    s.parse::<IpAddr>()
                        .map_err(|_| format!("resolved address `{s}` is not an IP address"))
                }))
            {
                let s = canonical_ip(a?).to_string();
                if !addrs.contains(&s) {
                    addrs.push(s);
                }
            }
            NormalizedAction::NetConnect(NormalizedConnect {
                tool,
                host: host_clean,
                host_is_ip: literal.is_some(),
                port: *port,
                scheme: scheme.clone(),
                method: method.clone(),
                addresses: addrs,
                resolved: *resolved,
            })
        }
        ActionDetail::WorkspaceWrite {
            operation,
            target,
            artifact,
        } => NormalizedAction::WorkspaceWrite(NormalizedOperation {
            tool,
            operation: operation.clone(),
            target: target.clone(),
            git: None,
            artifact: artifact.clone(),
        }),
        ActionDetail::McpCall {
            server,
            url,
            tool_name,
            arguments,
        } => NormalizedAction::McpCall(NormalizedMcpCall {
            tool,
            server: server.clone(),
            host: url_host(url)?,
            url: url.clone(),
            tool_name: tool_name.clone(),
            arguments: arguments.clone(),
        }),
        ActionDetail::WebSearch {
            provider,
            query,
            count,
        } => {
            let query = query.trim();
            if query.is_empty() {
                return Err("the search has no query".into());
            }
            NormalizedAction::WebSearch(NormalizedSearch {
                tool,
                provider: provider.clone(),
                query: query.to_string(),
                count: *count,
            })
        }
        ActionDetail::External {
            operation,
            target,
            git,
        } => NormalizedAction::External(NormalizedOperation {
            tool,
            operation: operation.clone(),
            target: target.clone(),
            git: git.clone(),
            artifact: None,
        }),
    })
}

/// The host of an `http(s)` URL, lower case, without a trailing dot; a URL
/// with credentials, another scheme or no host is refused (it is denied
/// before the policy sees it).
fn url_host(raw: &str) -> Result<String, String> {
    let u = url::Url::parse(raw).map_err(|e| format!("the URL {raw:?} is not valid: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("the URL {raw:?} is not http(s)"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the URL carries credentials; give them to the worker as a secret".into());
    }
    let host = u
        .host_str()
        .ok_or_else(|| format!("the URL {raw:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(format!("the URL {raw:?} has no host"));
    }
    Ok(host)
}

fn normalize_path(ctx: &SessionContext, requested: &str) -> Result<NormalizedPath, String> {
    normalize(&ctx.workspace, requested)
        .map_err(|e| format!("path `{requested}` cannot be normalised: {e}"))
}

/// A path under one of the session's roots, resolved against the root's
/// host directory: `(root, sandbox path, host path)`. `None` when the
/// request does not start with a root's sandbox path (`/data`, `/skills`).
/// A result that leaves the root's directory (a `..`, a symlink pointing
/// elsewhere) is `Some` with root `""`: outside everything, whatever it
/// names on the host.
fn in_root(
    ctx: &SessionContext,
    requested: &str,
) -> Result<Option<(&'static str, String, PathBuf)>, String> {
    let req = std::path::Path::new(requested);
    for r in &ctx.roots {
        let Ok(rest) = req.strip_prefix(&r.at) else {
            continue;
        };
        // `/data` itself, or `/data/…`: resolved with the same
        // symlink-following resolver, the host directory as its base.
        let rest = match rest.to_str() {
            Some("") => ".",
            Some(s) => s,
            None => return Err(format!("path `{requested}` is not valid UTF-8")),
        };
        let n = normalize(&r.host, rest)
            .map_err(|e| format!("path `{requested}` cannot be normalised: {e}"))?;
        return Ok(Some(match n.rel {
            Some(rel) => {
                let sandbox = if rel == "." {
                    r.at.to_string_lossy().into_owned()
                } else {
                    format!("{}/{rel}", r.at.to_string_lossy())
                };
                (r.name, sandbox, n.abs)
            }
            None => ("", n.abs.to_string_lossy().into_owned(), n.abs),
        }));
    }
    Ok(None)
}

/// The normalised form of a path-carrying action's path.
fn file(ctx: &SessionContext, tool: String, requested: &str) -> Result<NormalizedFile, String> {
    if let Some((root, path, abs)) = in_root(ctx, requested)? {
        let path_components = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        return Ok(NormalizedFile {
            tool,
            path_abs: abs.to_string_lossy().into_owned(),
            path_requested: requested.to_string(),
            in_workspace: false,
            path_components,
            git_state: false,
            root: root.to_string(),
            path,
        });
    }
    let n = normalize_path(ctx, requested)?;
    let path = n.policy_path();
    // Components let policies check names with set lookups instead of
    // pattern loops (`.git` at any depth, the root entry, the extension).
    let path_components = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    Ok(NormalizedFile {
        tool,
        path_abs: n.abs.to_string_lossy().into_owned(),
        path_requested: requested.to_string(),
        in_workspace: n.in_workspace(),
        path_components,
        git_state: n.rel.is_some() && inside_git_dir(&n.abs, &ctx.workspace),
        root: if n.in_workspace() {
            "workspace".to_string()
        } else {
            String::new()
        },
        path,
    })
}

/// Whether `abs` lies in a git directory — whatever it is called (the
/// target of a `gitdir:` file need not be `.git`): a directory at or above
/// it, up to and including the workspace root, that git itself would take
/// for one (`HEAD`, `objects/`, `refs/`). Policies deny file tools writing
/// there. (A layout assembled one write at a time is caught afterwards: a
/// writing guest's run is followed by the same git-state check as a
/// shell command.)
fn inside_git_dir(abs: &std::path::Path, root: &std::path::Path) -> bool {
    abs.ancestors()
        .take_while(|a| a.starts_with(root))
        .any(|a| {
            let is = |name: &str, dir: bool| {
                std::fs::symlink_metadata(a.join(name)).is_ok_and(|m| {
                    if dir {
                        m.is_dir()
                    } else {
                        m.is_file()
                    }
                })
            };
            is("HEAD", false) && is("objects", true) && is("refs", true)
        })
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) becomes plain IPv4, so a policy's
/// IPv4 ranges catch it.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The full input document for one action, as the evaluator takes it. The
/// session part is shared with every other decision of the session.
pub(crate) fn rego_input(ctx: &SessionContext, action: &Value) -> regorus::Value {
    let mut rego = ctx.base().rego.clone();
    if let Ok(obj) = rego.as_object_mut() {
        obj.insert(
            regorus::Value::from("action"),
            regorus::Value::from(action.clone()),
        );
    }
    rego
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> (tempfile::TempDir, SessionContext) {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        (
            d,
            SessionContext::new(root, Trusted::default(), SourceWork::default()),
        )
    }

    fn net(host: &str, addrs: &[&str]) -> Action {
        Action {
            tool: "WebFetch".into(),
            detail: ActionDetail::NetConnect {
                host: host.into(),
                port: 443,
                scheme: "https".into(),
                method: None,
                addresses: addrs.iter().map(|s| s.to_string()).collect(),
                resolved: true,
            },
        }
    }

    #[test]
    fn mapped_ipv6_becomes_ipv4() {
        let (_d, c) = ctx();
        let a = serde_json::to_value(
            normalize_action(&net("Example.COM.", &["::ffff:127.0.0.1"]), &c).unwrap(),
        )
        .unwrap();
        assert_eq!(a["host"], "example.com");
        assert_eq!(a["addresses"], json!(["127.0.0.1"]));
        assert_eq!(a["host_is_ip"], false);
    }

    #[test]
    fn ip_literal_host_is_its_own_address() {
        let (_d, c) = ctx();
        let a = serde_json::to_value(normalize_action(&net("[::1]", &[]), &c).unwrap()).unwrap();
        assert_eq!(a["addresses"], json!(["::1"]));
        assert_eq!(a["host_is_ip"], true);
    }

    #[test]
    fn garbage_address_is_refused() {
        let (_d, c) = ctx();
        assert!(normalize_action(&net("a.com", &["not-an-ip"]), &c).is_err());
    }

    #[test]
    fn untrusted_lands_only_under_untrusted() {
        let (_d, mut c) = ctx();
        c.untrusted.description = "MARKER-untrusted".into();
        let (json, _, _) =
            super::super::mask::mask_record(&c.masked_shared(&[]), json!({"kind": "fs.read"}), &[]);
        for key in ["session", "trusted", "action"] {
            assert!(!json[key].to_string().contains("MARKER"), "{key}");
        }
        assert!(json["untrusted"].to_string().contains("MARKER"));
    }

    /// `input.action` keeps exactly the fields DESIGN.md documents, per
    /// kind: policies (and recorded inputs) see the same document the typed
    /// action serialises to.
    #[test]
    fn the_normalised_action_serialises_to_the_documented_fields() {
        let (_d, c) = ctx();
        let keys = |a: &Action| -> Vec<String> {
            let v = serde_json::to_value(normalize_action(a, &c).unwrap()).unwrap();
            v.as_object().unwrap().keys().cloned().collect()
        };
        let act = |detail| Action {
            tool: "T".into(),
            detail,
        };
        assert_eq!(
            keys(&act(ActionDetail::FsWrite { path: "a/b".into() })),
            [
                "git_state",
                "in_workspace",
                "kind",
                "path",
                "path_abs",
                "path_components",
                "path_requested",
                "root",
                "tool"
            ]
        );
        assert_eq!(
            keys(&act(ActionDetail::ShellExec {
                command: "make".into(),
                cwd: ".".into(),
                network: protocol::policy::NetworkMode::None,
                env: Default::default(),
            })),
            [
                "command",
                "cwd",
                "cwd_abs",
                "cwd_in_workspace",
                "cwd_requested",
                "kind",
                "network",
                "tool"
            ]
        );
        assert_eq!(
            keys(&net("a.example", &["192.0.2.1"])),
            [
                "addresses",
                "host",
                "host_is_ip",
                "kind",
                "port",
                "resolved",
                "scheme",
                "tool"
            ]
        );
        assert_eq!(
            keys(&act(ActionDetail::External {
                operation: "git.push".into(),
                target: None,
                git: None,
            })),
            ["kind", "operation", "tool"]
        );
    }

    /// The toolset's kinds: an MCP call names its server's host (lower
    /// case); a URL with credentials or another scheme, and an empty query,
    /// are refused before any policy sees them.
    #[test]
    fn mcp_calls_and_searches_normalise_or_are_refused() {
        let (_d, c) = ctx();
        let mcp = |url: &str| Action {
            tool: "mcp__docs__search".into(),
            detail: ActionDetail::McpCall {
                server: "docs".into(),
                url: url.into(),
                tool_name: "search".into(),
                arguments: json!({"q": 1}),
            },
        };
        let v = serde_json::to_value(
            normalize_action(&mcp("https://MCP.Example.:8443/mcp"), &c).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"kind": "mcp.call", "tool": "mcp__docs__search", "server": "docs", "url": "https://MCP.Example.:8443/mcp",
                   "host": "mcp.example", "tool_name": "search", "arguments": {"q": 1}})
        );
        for bad in ["https://u:p@h/mcp", "file:///etc/passwd", "not a url"] {
            assert!(normalize_action(&mcp(bad), &c).is_err(), "{bad}");
        }
        let search = |q: &str| Action {
            tool: "WebSearch".into(),
            detail: ActionDetail::WebSearch {
                provider: "searxng".into(),
                query: q.into(),
                count: Some(5),
            },
        };
        let v = serde_json::to_value(normalize_action(&search("  rust  "), &c).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": "rust", "count": 5})
        );
        assert!(normalize_action(&search(" \n "), &c).is_err());
    }

    /// A context whose workspace and roots are fresh directories beside
    /// each other, as the worker lays them out.
    fn rooted() -> (tempfile::TempDir, SessionContext, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let (ws, skills, data) = (
            base.join("s1"),
            base.join("s1.skills"),
            base.join("s1.data"),
        );
        for p in [&ws, &skills, &data] {
            std::fs::create_dir(p).unwrap();
        }
        let c =
            SessionContext::new(ws, Trusted::default(), SourceWork::default()).with_roots(vec![
                SessionRoot {
                    name: "skills",
                    at: "/skills".into(),
                    host: skills.clone(),
                    writable: false,
                },
                SessionRoot {
                    name: "artifacts",
                    at: "/data".into(),
                    host: data.clone(),
                    writable: true,
                },
            ]);
        (d, c, skills, data)
    }

    fn fs_read(path: &str) -> Action {
        Action {
            tool: "Read".into(),
            detail: ActionDetail::FsRead { path: path.into() },
        }
    }

    /// `/data/...` and `/skills/...` resolve against their host
    /// directories: the policy sees the sandbox path, the tool gets the
    /// host path, and neither is in the workspace.
    #[test]
    fn root_paths_normalise_against_their_host_dirs() {
        let (_d, c, skills, data) = rooted();
        let v = serde_json::to_value(normalize_action(&fs_read("/data/out/r.md"), &c).unwrap())
            .unwrap();
        assert_eq!(v["root"], "artifacts");
        assert_eq!(v["path"], "/data/out/r.md");
        assert_eq!(v["path_abs"], data.join("out/r.md").to_str().unwrap());
        assert_eq!(v["in_workspace"], false);
        assert_eq!(v["path_components"], json!(["data", "out", "r.md"]));
        let v = serde_json::to_value(normalize_action(&fs_read("/skills"), &c).unwrap()).unwrap();
        assert_eq!(
            (v["root"].as_str(), v["path"].as_str()),
            (Some("skills"), Some("/skills"))
        );
        assert_eq!(v["path_abs"], skills.to_str().unwrap());
        // `/database` is not under `/data`.
        let v = serde_json::to_value(normalize_action(&fs_read("/database"), &c).unwrap()).unwrap();
        assert_eq!(v["root"], "");
    }

    /// Leaving a root — by `..` or by a symlink to anywhere else, the
    /// workspace included — lands outside everything (`root: ""`, the host
    /// path), so the policy denies it.
    #[test]
    fn escapes_from_a_root_are_outside_everything() {
        let (_d, c, _skills, data) = rooted();
        std::os::unix::fs::symlink("/etc/passwd", data.join("pw")).unwrap();
        std::os::unix::fs::symlink("../s1", data.join("ws")).unwrap();
        std::os::unix::fs::symlink("/data/x", data.join("abs")).unwrap();
        for (req, abs) in [
            (
                "/data/../etc/passwd",
                data.parent().unwrap().join("etc/passwd"),
            ),
            ("/data/pw", PathBuf::from("/etc/passwd")),
            ("/data/ws/src", data.parent().unwrap().join("s1/src")),
            ("/skills/../s1.data/x", data.join("x")),
        ] {
            let v = serde_json::to_value(normalize_action(&fs_read(req), &c).unwrap()).unwrap();
            if req.starts_with("/skills/..") {
                // Back into a root by a lexical `..`: not the skills root.
                assert_ne!(v["root"], "skills", "{req}");
                continue;
            }
            assert_eq!(v["root"], "", "{req}");
            assert_eq!(v["in_workspace"], false, "{req}");
            assert_eq!(v["path_abs"], abs.to_str().unwrap(), "{req}");
        }
        // An absolute link target is a host path, not a sandbox one.
        let v = serde_json::to_value(normalize_action(&fs_read("/data/abs"), &c).unwrap()).unwrap();
        assert_eq!(
            (v["root"].as_str(), v["path_abs"].as_str()),
            (Some(""), Some("/data/x"))
        );
        // A relative link staying inside is followed and stays in the root.
        std::os::unix::fs::symlink("out", data.join("o")).unwrap();
        let v = serde_json::to_value(normalize_action(&fs_read("/data/o/x"), &c).unwrap()).unwrap();
        assert_eq!(
            (v["root"].as_str(), v["path"].as_str()),
            (Some("artifacts"), Some("/data/out/x"))
        );
    }

    /// Without the root in the session, `/data/x` is just an absolute path
    /// outside the workspace.
    #[test]
    fn without_the_root_data_is_an_ordinary_absolute_path() {
        let (_d, c) = ctx();
        let v = serde_json::to_value(normalize_action(&fs_read("/data/x"), &c).unwrap()).unwrap();
        assert_eq!(
            (v["root"].as_str(), v["path"].as_str()),
            (Some(""), Some("/data/x"))
        );
        assert_eq!(v["in_workspace"], false);
    }

    /// The session's roots appear in `input.session` under their keys.
    #[test]
    fn roots_are_named_in_the_session_part() {
        let (_d, c) = ctx();
        let c = c.with_roots(vec![SessionRoot {
            name: "artifacts",
            at: "/data".into(),
            host: "/w/s.data".into(),
            writable: true,
        }]);
        let (json, _, _) =
            super::super::mask::mask_record(&c.masked_shared(&[]), json!({"kind": "fs.read"}), &[]);
        assert_eq!(json["session"]["artifacts_dir"], "/w/s.data");
        assert!(json["session"].get("skills_dir").is_none());
    }

    /// The optional fields, when present, are in the document exactly as
    /// the request carried them.
    #[test]
    fn optional_fields_are_kept_when_present() {
        let (_d, c) = ctx();
        let doc = |a: Action| serde_json::to_value(normalize_action(&a, &c).unwrap()).unwrap();
        let mut env = std::collections::BTreeMap::new();
        env.insert("CI".to_string(), "1".to_string());
        let shell = doc(Action {
            tool: "Bash".into(),
            detail: ActionDetail::ShellExec {
                command: "make".into(),
                cwd: ".".into(),
                network: protocol::policy::NetworkMode::Proxy,
                env,
            },
        });
        assert_eq!(shell["env"], json!({"CI": "1"}));
        assert_eq!(shell["network"], "proxy");
        assert_eq!(shell["cwd"], ".");
        assert_eq!(shell["cwd_in_workspace"], true);
        let connect = doc(Action {
            tool: "WebFetch".into(),
            detail: ActionDetail::NetConnect {
                host: "Docs.RS".into(),
                port: 443,
                scheme: "https".into(),
                method: Some("GET".into()),
                addresses: vec!["192.0.2.1".into(), "192.0.2.1".into()],
                resolved: true,
            },
        });
        assert_eq!(
            connect,
            json!({"kind": "net.connect", "tool": "WebFetch", "host": "docs.rs", "host_is_ip": false, "port": 443, "scheme": "https", "method": "GET", "addresses": ["192.0.2.1"], "resolved": true})
        );
        let external = doc(Action {
            tool: "Bash".into(),
            detail: ActionDetail::External {
                operation: "git.push".into(),
                target: Some("origin".into()),
                git: None,
            },
        });
        assert_eq!(
            external,
            json!({"kind": "external", "tool": "Bash", "operation": "git.push", "target": "origin"})
        );
    }
}
