//! Actions, decisions and decision records: what the policy engine is asked,
//! what it answers, and what is reported to the session and the audit log.

use crate::ids::{ClaimId, SessionId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A side effect a tool wants to perform, as the tool describes it.
///
/// This is the *request*: paths are as the tool (or the model) wrote them.
/// The policy layer normalises it (clean paths, `in_workspace`, resolved
/// addresses) before any Rego sees it, so policies never compare raw strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The tool that asked for the action (`Read`, `Bash`, `WebFetch`, …).
    pub tool: String,
    /// What the action is, tagged by `kind` on the wire.
    #[serde(flatten)]
    pub detail: ActionDetail,
}

/// The kinds of action of DESIGN.md's table, each with the fields a policy
/// needs to decide it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ActionDetail {
    /// A file tool reading a path.
    #[serde(rename = "fs.read")]
    FsRead {
        /// Path as requested, relative to the workspace or absolute.
        path: String,
    },
    /// A file tool creating or changing a path.
    #[serde(rename = "fs.write")]
    FsWrite {
        /// Path as requested, relative to the workspace or absolute.
        path: String,
    },
    /// A shell command (the Bash tool or any subprocess).
    #[serde(rename = "shell.exec")]
    ShellExec {
        /// The command line as given to `bash -c`.
        command: String,
        /// Working directory, relative to the workspace or absolute.
        #[serde(default = "dot")]
        cwd: String,
        /// Network the command asks for; the policy decides what it gets.
        #[serde(default)]
        network: NetworkMode,
        /// Extra environment the command asks for (names and values). Values
        /// are usually masked out of the recorded input.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// An outgoing network connection (WebFetch, a guest socket, a proxied
    /// connection of a shell process).
    #[serde(rename = "net.connect")]
    NetConnect {
        /// Host name or IP literal as requested.
        host: String,
        /// Destination port.
        port: u16,
        /// `http`, `https`, `tcp`, …
        scheme: String,
        /// HTTP method when the proxy can see it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// Addresses the *caller* resolved the host to. The policy checks
        /// every one of them, so a name that resolves to loopback is caught.
        #[serde(default)]
        addresses: Vec<String>,
        /// False for the first decision, made before the name is resolved
        /// (so a host the policy refuses never reaches DNS, which would be
        /// a channel out); true for the second, with `addresses` filled.
        /// A connection needs both allowed.
        #[serde(default)]
        resolved: bool,
    },
    /// A write to the team workspace on the platform (comment, status, todo).
    #[serde(rename = "workspace.write")]
    WorkspaceWrite {
        /// What is written: `comment`, `status`, `todo`, …
        operation: String,
        /// What it is written to, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// `artifact.deliver`: the file delivered, as the runner read it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact: Option<ArtifactFile>,
    },
    /// A call to a tool of one of the agent's MCP servers. The server's
    /// host is decided again as a `net.connect` when the runner connects.
    #[serde(rename = "mcp.call")]
    McpCall {
        /// The server's name in the pinned agent version.
        server: String,
        /// The server's URL in the pinned agent version.
        url: String,
        /// The tool's name on that server (without the `mcp__` prefix).
        tool_name: String,
        /// The arguments the model gave, sent to the server as they are.
        #[serde(default)]
        arguments: serde_json::Value,
    },
    /// A query sent to the worker's search provider (WebSearch). The
    /// provider's host is decided again as a `net.connect`.
    #[serde(rename = "web.search")]
    WebSearch {
        /// The provider's name (`searxng`, `brave`).
        provider: String,
        /// The query as the model wrote it.
        query: String,
        /// Results asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// A side effect outside both the sandbox and the platform.
    #[serde(rename = "external")]
    External {
        /// `git.fetch`, `git.push`, `pr.create`, `message.send`, …
        operation: String,
        /// Remote, repository, channel…
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// What a repository operation of the runner does, for policies to
        /// compare (`input.action.git`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        git: Option<GitOperation>,
    },
}

/// The repository side of a `git.fetch`, `git.push` or `pr.create` the
/// runner performs (never the agent: it has no credentials). Policies
/// compare these fields, so each is exactly what the runner then acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitOperation {
    /// The remote's https URL.
    pub remote: String,
    /// Its host (lower case, without port).
    pub host: String,
    /// `git.fetch`: the branch, tag or commit asked for (`""` for the
    /// remote's default branch).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// `git.push`: the branch pushed; `pr.create`: the pull request's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `git.push`: `new` (the branch is absent on the remote), `update` (a
    /// fast-forward) or `force` (the remote has commits that would be lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The remote's default branch, when it advertises one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// The session's own target branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_branch: Option<String>,
    /// `pr.create`: the branch the pull request merges into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `pr.create`: whether it opens as a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<bool>,
}

/// A file the runner delivers from the session's artifacts directory
/// (`/data` in the sandbox), as it measured it: policies compare these and
/// the bytes uploaded are exactly the ones hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactFile {
    /// The path inside the sandbox (`/data/report.md`).
    pub path: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// The media type guessed from its name (`application/octet-stream` when unknown).
    pub media_type: String,
}

fn dot() -> String {
    ".".to_string()
}

impl ActionDetail {
    /// The `kind` string as policies see it (`fs.read`, `shell.exec`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ActionDetail::FsRead { .. } => "fs.read",
            ActionDetail::FsWrite { .. } => "fs.write",
            ActionDetail::ShellExec { .. } => "shell.exec",
            ActionDetail::NetConnect { .. } => "net.connect",
            ActionDetail::WorkspaceWrite { .. } => "workspace.write",
            ActionDetail::External { .. } => "external",
            ActionDetail::McpCall { .. } => "mcp.call",
            ActionDetail::WebSearch { .. } => "web.search",
        }
    }
}

/// Network a sandboxed process gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A network namespace with loopback only: nothing leaves the sandbox.
    #[default]
    None,
    /// No route out, except the runner's proxy, which asks the policy per
    /// connection.
    Proxy,
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DecisionResult {
    /// Go ahead, within the confinement.
    Allow,
    /// Do not perform the action.
    Deny,
    /// A person must approve first; until then it is not performed.
    Ask,
}

impl DecisionResult {
    /// Lowercase name as on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionResult::Allow => "allow",
            DecisionResult::Deny => "deny",
            DecisionResult::Ask => "ask",
        }
    }
}

/// What a sandbox must enforce for an allowed action. The policy states it;
/// the sandbox applies it whatever the tool asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Confinement {
    /// Absolute paths the action may write beneath.
    #[serde(default)]
    pub writable_roots: Vec<String>,
    /// Absolute paths the action may read (and execute) beneath.
    #[serde(default)]
    pub readable_roots: Vec<String>,
    /// Paths relative to the workspace that stay read-only even under a
    /// writable grant (the literal protected paths).
    #[serde(default)]
    pub read_only_paths: Vec<String>,
    /// Globs relative to the workspace whose matches (and everything below
    /// them) a tool that lists or searches many files must leave out of its
    /// results (secrets inside an allowed root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_paths: Vec<String>,
    /// Network the sandbox gets.
    #[serde(default)]
    pub network: NetworkMode,
}

/// A decision as the policy engine returns it: a result, why, and for
/// allowed actions the confinement to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Allow, deny or ask.
    pub result: DecisionResult,
    /// Sentences a person can read, saying why.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Confinement for an allowed action (for an `ask`: the confinement
    /// that applies once a person approves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confinement>,
}

impl Decision {
    /// A deny with one reason: what every failure to evaluate becomes.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision {
            result: DecisionResult::Deny,
            reasons: vec![reason.into()],
            confine: None,
        }
    }
}

/// One decision as reported: to the session as a `policy_decision` activity
/// and to the local audit log. It carries enough to re-evaluate the decision
/// later against another policy (`runner audit replay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    /// Unique id of this decision.
    pub decision_id: String,
    /// When the decision was made, RFC 3339 UTC.
    pub timestamp: String,
    /// Session the action belongs to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Claim under which the session ran, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<ClaimId>,
    /// The normalised action, as the policy saw it.
    pub action: serde_json::Value,
    /// Allow, deny or ask.
    pub result: DecisionResult,
    /// Why.
    pub reasons: Vec<String>,
    /// Confinement applied to an allowed action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confinement>,
    /// `sha256:` hash over every loaded policy and data file.
    pub policy_revision: String,
    /// Time spent evaluating the policy, in nanoseconds.
    pub eval_ns: u64,
    /// The decision was answered from the decision cache: an identical input
    /// was evaluated by the same policy revision before (deterministic
    /// policies only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
    /// The full input document after masking.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: RecordedInput,
    /// JSON pointers (into `input`) that were erased before recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<String>,
    /// Set when the shell sandbox ran without Landlock because the operator
    /// opted into degraded mode; says so on every record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Who approved an action the policy asked about; only then is an
    /// `ask` performed (within its confinement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

impl DecisionRecord {
    /// Whether the action may be performed: allowed, or asked and approved.
    pub fn permits(&self) -> bool {
        self.result == DecisionResult::Allow
            || (self.result == DecisionResult::Ask && self.approved_by.is_some())
    }
}

/// The input document of a record: one JSON object on the wire, as the
/// policy saw it (after masking).
///
/// Its session part (`session`, `trusted`, `untrusted`: a few kilobytes with
/// the source work) is the same for every decision of a session, so records
/// share one copy of it behind an `Arc` and own only their `action`. A
/// decision then costs no deep copy of the session, which matters on the
/// hot path where every tool call is decided and recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordedInput {
    shared: std::sync::Arc<serde_json::Map<String, serde_json::Value>>,
    action: Option<serde_json::Value>,
}

impl RecordedInput {
    /// The key the decision's own part lives under.
    pub const ACTION: &'static str = "action";

    /// A document from its shared part (whose `action` key, if any, is
    /// ignored) and this decision's action.
    pub fn new(
        shared: std::sync::Arc<serde_json::Map<String, serde_json::Value>>,
        action: Option<serde_json::Value>,
    ) -> Self {
        RecordedInput { shared, action }
    }

    /// Splits a whole document (a hand-written input, a record read back).
    /// A value that is not an object becomes an empty document.
    pub fn from_value(value: serde_json::Value) -> Self {
        let mut map = match value {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let action = map.remove(Self::ACTION);
        RecordedInput {
            shared: std::sync::Arc::new(map),
            action,
        }
    }

    /// The member `key` of the document.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        if key == Self::ACTION {
            self.action.as_ref()
        } else {
            self.shared.get(key)
        }
    }

    /// The whole document as one JSON value (a copy).
    pub fn to_value(&self) -> serde_json::Value {
        let mut map = (*self.shared).clone();
        map.remove(Self::ACTION);
        if let Some(a) = &self.action {
            map.insert(Self::ACTION.to_string(), a.clone());
        }
        serde_json::Value::Object(map)
    }
}

impl std::ops::Index<&str> for RecordedInput {
    type Output = serde_json::Value;

    /// As `serde_json::Value` indexing: `Null` for a missing member.
    fn index(&self, key: &str) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl Serialize for RecordedInput {
    /// Members in key order, exactly as `serde_json` writes the same
    /// document as one object (the audit log hashes these bytes).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let len = self.shared.len() + usize::from(self.action.is_some())
            - usize::from(self.shared.contains_key(Self::ACTION));
        let mut map = serializer.serialize_map(Some(len))?;
        let mut action = self.action.as_ref();
        for (k, v) in self.shared.iter() {
            if k.as_str() == Self::ACTION {
                continue;
            }
            if k.as_str() > Self::ACTION {
                if let Some(a) = action.take() {
                    map.serialize_entry(Self::ACTION, a)?;
                }
            }
            map.serialize_entry(k, v)?;
        }
        if let Some(a) = action {
            map.serialize_entry(Self::ACTION, a)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RecordedInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        Ok(RecordedInput::from_value(serde_json::Value::Object(map)))
    }
}

#[cfg(test)]
mod recorded_input_tests {
    use super::RecordedInput;
    use serde_json::json;

    #[test]
    fn serializes_byte_for_byte_as_the_whole_document() {
        for doc in [
            json!({"action": {"kind": "fs.read"}, "session": {"id": "s"}, "trusted": {}, "untrusted": {"t": "x"}}),
            json!({"aardvark": 1, "action": [1], "zebra": null}),
            json!({"session": {}, "zebra": 2}),
            json!({"action": 1}),
            json!({}),
        ] {
            let r = RecordedInput::from_value(doc.clone());
            assert_eq!(serde_json::to_string(&r).unwrap(), doc.to_string());
            assert_eq!(r.to_value(), doc);
            let back: RecordedInput = serde_json::from_str(&doc.to_string()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn the_shared_action_key_never_shadows_the_decisions_own() {
        let shared = serde_json::Map::from_iter([
            ("action".to_string(), json!("stale")),
            ("session".to_string(), json!({})),
        ]);
        let r = RecordedInput::new(std::sync::Arc::new(shared), Some(json!("own")));
        assert_eq!(r["action"], "own");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"action":"own","session":{}}"#
        );
        assert_eq!(r["missing"], serde_json::Value::Null);
    }
}
