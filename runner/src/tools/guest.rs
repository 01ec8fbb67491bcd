//! Guest tools: a WASI command module plus its `tool.toml` manifest, run in
//! the wasm sandbox. The built-in file tools (Read, Write, Edit, Glob, Grep,
//! List) and every custom tool are this one type; they differ only in their
//! manifests.
//!
//! A call is planned from the manifest: one `fs.read` / `fs.write` action
//! (per capability) on the path in the input property `path_arg` names
//! (default `.`, the whole workspace). The guest then runs with the
//! workspace read-only unless a write was allowed, and — for tools that list
//! or search (`filters_hidden`) — with the decision's hidden paths both
//! passed in and filtered out of its results again here.

use super::{Tool, ToolError, ToolRun, ToolSource, ToolSpec};
use crate::sandbox::beneath::Beneath;
use crate::sandbox::wasm::{GuestCall, GuestModule, WasmSandbox};
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, ActionDetail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Capabilities a guest may ask for: WASI gives it files and nothing else.
pub(crate) const GUEST_CAPABILITIES: &[&str] = &["fs.read", "fs.write"];

/// The environment variable that passes hidden-path globs to a guest.
pub(crate) const HIDDEN_ENV: &str = "RUNNER_HIDDEN_PATHS";

/// `tool.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Name the model calls the tool by.
    pub name: String,
    pub description: String,
    /// `fs.read` and/or `fs.write`.
    pub capabilities: Vec<String>,
    /// Input property holding the workspace path the call acts on.
    #[serde(default)]
    pub path_arg: Option<String>,
    /// The tool lists or searches many files: hidden paths are filtered
    /// from its results.
    #[serde(default)]
    pub filters_hidden: bool,
    /// Module file beside the manifest (default `tool.wasm`).
    #[serde(default)]
    pub module: Option<String>,
    /// A shorter time limit than the sandbox's, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// JSON Schema of the input.
    pub input_schema: serde_json::Value,
}

/// A guest tool: manifest checked at load; its module compiled (or taken
/// from the disk cache) on first use, so a one-shot `runner call` pays for
/// one module, not all of them.
pub struct GuestTool {
    spec: ToolSpec,
    manifest: Manifest,
    module_path: PathBuf,
    module: std::sync::OnceLock<Result<GuestModule, String>>,
    sandbox: WasmSandbox,
    /// The last hidden-path matcher built, with its patterns: they change
    /// only with the policy, and compiling globs costs more than a call.
    hidden: std::sync::Mutex<Option<(Vec<String>, Arc<HiddenMatcher>)>>,
}

/// Why a tool directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{dir}: {message}")]
pub struct LoadError {
    /// The tool's directory.
    pub dir: PathBuf,
    /// What is wrong, and what to do.
    pub message: String,
}

fn load_err(dir: &Path, message: impl Into<String>) -> LoadError {
    LoadError {
        dir: dir.to_path_buf(),
        message: message.into(),
    }
}

/// Files that decide what runs must not be writable by group or others (as
/// for policies): anyone who could edit them could change a tool.
fn check_not_shared(path: &Path) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:o}); run `chmod go-w {}`",
            path.display(),
            meta.permissions().mode() & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

impl GuestTool {
    /// Loads a tool directory (`tool.toml` + module), checking the manifest
    /// against the capabilities the policy grants (`grants`: tool name or
    /// `"*"` → kinds).
    pub fn load(
        dir: &Path,
        source: ToolSource,
        sandbox: &WasmSandbox,
        grants: &BTreeMap<String, Vec<String>>,
    ) -> Result<GuestTool, LoadError> {
        let manifest_path = dir.join("tool.toml");
        check_not_shared(dir).map_err(|m| load_err(dir, m))?;
        check_not_shared(&manifest_path).map_err(|m| load_err(dir, m))?;
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| load_err(dir, format!("cannot read tool.toml: {e}")))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| load_err(dir, format!("tool.toml is invalid: {e}")))?;
        validate_manifest(&manifest).map_err(|m| load_err(dir, format!("tool.toml: {m}")))?;
        let granted = grants
            .get(&manifest.name)
            .or_else(|| match source {
                ToolSource::Custom => grants.get("*"),
                ToolSource::Builtin | ToolSource::Mcp => None,
            })
            .cloned()
            .unwrap_or_default();
        let excess: Vec<&String> = manifest
            .capabilities
            .iter()
            .filter(|c| !granted.contains(c))
            .collect();
        if !excess.is_empty() {
            return Err(load_err(
                dir,
                format!(
                    "tool {} asks for {} but the policy grants it only [{}]; grant more in a policy file (tool_grants[\"{}\"] := [...]) or remove the capability from tool.toml",
                    manifest.name,
                    excess.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    granted.join(", "),
                    manifest.name
                ),
            ));
        }
        let module_path = dir.join(manifest.module.as_deref().unwrap_or("tool.wasm"));
        check_not_shared(&module_path).map_err(|m| load_err(dir, m))?;
        let spec = ToolSpec {
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            input_schema: manifest.input_schema.clone(),
            source,
            capabilities: manifest.capabilities.clone(),
            operator_only: false,
        };
        Ok(GuestTool {
            spec,
            manifest,
            module_path,
            module: std::sync::OnceLock::new(),
            sandbox: sandbox.clone(),
            hidden: std::sync::Mutex::new(None),
        })
    }

    /// The compiled module, compiling (or loading from the cache) it on
    /// first use. A long-running worker calls this at start-up.
    pub fn module(&self) -> Result<&GuestModule, String> {
        self.module
            .get_or_init(|| {
                let p = &self.module_path;
                check_not_shared(p)?;
                let wasm = std::fs::read(p)
                    .map_err(|e| format!("cannot read the module {}: {e}", p.display()))?;
                self.sandbox
                    .load(&wasm)
                    .map_err(|e| format!("{}: {e}", p.display()))
            })
            .as_ref()
            .map_err(|e| e.clone())
    }
}

fn validate_manifest(m: &Manifest) -> Result<(), String> {
    let name_ok = m.name.len() <= 64
        && m.name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && m.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return Err(format!(
            "name {:?} must start with a letter and use only letters, digits, `_` and `-` (at most 64)",
            m.name
        ));
    }
    if m.capabilities.is_empty() {
        return Err("capabilities is empty; a guest tool needs at least \"fs.read\"".into());
    }
    for c in &m.capabilities {
        if !GUEST_CAPABILITIES.contains(&c.as_str()) {
            return Err(format!(
                "unknown capability {c:?}; guest tools may ask for {}",
                GUEST_CAPABILITIES.join(", ")
            ));
        }
    }
    if m.input_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("input_schema must describe an object (type = \"object\")".into());
    }
    jsonschema::validator_for(&m.input_schema)
        .map_err(|e| format!("input_schema is not a valid JSON Schema: {e}"))?;
    if let Some(arg) = &m.path_arg {
        let ty = m.input_schema["properties"][arg]["type"].as_str();
        if ty != Some("string") {
            return Err(format!(
                "path_arg {arg:?} must name a string property of input_schema"
            ));
        }
    }
    Ok(())
}

impl GuestTool {
    fn target(&self, input: &serde_json::Value) -> String {
        self.manifest
            .path_arg
            .as_ref()
            .and_then(|a| input.get(a))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(".")
            .to_string()
    }
}

/// Where a call's decided path lies.
enum DecidedPath {
    /// Workspace-relative.
    Workspace(String),
    /// In the session root named first; the second is its sandbox path
    /// (`/data/r.md`).
    Root(String, String),
}

impl GuestTool {
    /// The path the decisions named for the call's path argument (all of
    /// a call's decisions name the same one): workspace-relative, or
    /// relative to the session root it lies in.
    fn decided_path(
        &self,
        decisions: &[crate::policy::Decided],
    ) -> Result<Option<DecidedPath>, ToolError> {
        if self.manifest.path_arg.is_none() {
            return Ok(None);
        }
        let Some(d) = decisions.first() else {
            return Err(ToolError::Failed("no decision was made".into()));
        };
        let Some(file) = d.action.as_ref().and_then(NormalizedAction::file) else {
            return Err(ToolError::Failed("the decision names no file".into()));
        };
        let path = &file.path;
        if file.in_workspace {
            return Ok(Some(DecidedPath::Workspace(path.to_string())));
        }
        if file.root == "skills" || file.root == "artifacts" {
            return Ok(Some(DecidedPath::Root(file.root.clone(), path.to_string())));
        }
        Err(ToolError::Failed(format!(
            "{}: {path} resolves outside the workspace and the session's /skills and /data; file tools reach only those",
            self.spec.name
        )))
    }

    /// A call whose decided path lies in a session root (toolset.md §3.2):
    /// the root's host directory is the guest's `/workspace`, the path is
    /// root-relative, and paths in the output get the root's sandbox path
    /// back. Writable only in a writable root (never `/skills`) and only
    /// when an allowed fs.write's confinement names its directory. The
    /// workspace's git and hidden-path checks do not apply (neither lives
    /// there); a file with more than one link is refused, since it may be
    /// another file under a second name.
    fn run_in_root(
        &self,
        run: &ToolRun<'_>,
        root: &str,
        path: &str,
    ) -> Result<serde_json::Value, ToolError> {
        let Some(r) = run.ctx.root(root) else {
            return Err(ToolError::Failed(format!(
                "{}: {path} is in a session root this session does not have",
                self.spec.name
            )));
        };
        let at = r.at.to_string_lossy().into_owned();
        let rel = match Path::new(path).strip_prefix(&r.at) {
            Ok(p) if p.as_os_str().is_empty() => ".".to_string(),
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => {
                return Err(ToolError::Failed(format!(
                    "{}: {path} is not under {at}",
                    self.spec.name
                )))
            }
        };
        let writable = r.writable
            && run.decisions.iter().any(|d| {
                matches!(d.action, Some(NormalizedAction::FsWrite(_)))
                    && d.record
                        .confine
                        .as_ref()
                        .is_some_and(|c| c.writable_roots.iter().any(|w| Path::new(w) == r.host))
            });
        if rel != "." {
            let b = Beneath::open(&r.host)
                .map_err(|e| ToolError::Failed(format!("cannot open {at}: {e}")))?;
            if let Ok(Some(e)) = b.lstat(Path::new(&rel)) {
                if e.nlink > 1 && e.kind == rustix::fs::FileType::RegularFile {
                    return Err(ToolError::Failed(format!(
                        "{}: {path} has more than one link (it may be another file under a second name); file tools do not use it",
                        self.spec.name
                    )));
                }
            }
        }
        let mut input = run.input.clone();
        if let Some(arg) = &self.manifest.path_arg {
            input[arg.as_str()] = serde_json::Value::String(rel);
        }
        let limit = self.sandbox.limits().timeout_ms;
        let timeout = Duration::from_millis(self.manifest.timeout_ms.unwrap_or(limit).min(limit));
        let module = self
            .module()
            .map_err(|e| ToolError::Failed(format!("{}: {e}", self.spec.name)))?;
        let out = self
            .sandbox
            .run(
                module,
                GuestCall {
                    stdin: serde_json::to_vec(&input).unwrap_or_default(),
                    workspace: r.host.clone(),
                    writable,
                    env: vec![(HIDDEN_ENV.to_string(), "[]".to_string())],
                    timeout,
                },
            )
            .map_err(|e| ToolError::Failed(format!("{}: {e}", self.spec.name)))?;
        run.gate.metrics().sandbox_spawn("wasm", out.spawn);
        let mut value = parse_output(&self.spec.name, &out)?;
        prefix_paths(&mut value, &at);
        Ok(value)
    }

    fn matcher(&self, patterns: &[String]) -> Result<Arc<HiddenMatcher>, ToolError> {
        let mut slot = self.hidden.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, m)) = slot.as_ref() {
            if p == patterns {
                return Ok(m.clone());
            }
        }
        let m = Arc::new(HiddenMatcher::new(patterns)?);
        *slot = Some((patterns.to_vec(), m.clone()));
        Ok(m)
    }
}

impl Tool for GuestTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, input: &serde_json::Value) -> Result<Vec<Action>, ToolError> {
        let path = self.target(input);
        Ok(self
            .manifest
            .capabilities
            .iter()
            .map(|c| Action {
                tool: self.spec.name.clone(),
                detail: if c == "fs.write" {
                    ActionDetail::FsWrite { path: path.clone() }
                } else {
                    ActionDetail::FsRead { path: path.clone() }
                },
            })
            .collect())
    }

    fn run(&self, run: ToolRun<'_>) -> Result<serde_json::Value, ToolError> {
        if let Some(DecidedPath::Root(root, path)) = self.decided_path(run.decisions)? {
            return self.run_in_root(&run, &root, &path);
        }
        let workspace = run.ctx.workspace.clone();
        // A write is granted only by an allowed fs.write whose confinement
        // makes the workspace writable (roots compared by components).
        let writable = run.decisions.iter().any(|d| {
            matches!(d.action, Some(NormalizedAction::FsWrite(_)))
                && d.record.confine.as_ref().is_some_and(|c| {
                    c.writable_roots
                        .iter()
                        .any(|r| workspace.starts_with(Path::new(r)))
                })
        });
        // The guest acts on the path that was decided — resolved and
        // workspace-relative — never on the raw input to resolve again.
        let mut input = run.input.clone();
        let decided = match self.decided_path(run.decisions)? {
            Some(DecidedPath::Workspace(rel)) => Some(rel),
            _ => None,
        };
        if let (Some(arg), Some(rel)) = (&self.manifest.path_arg, &decided) {
            input[arg.as_str()] = serde_json::Value::String(rel.clone());
        }
        let mut hidden: Vec<String> = run
            .decisions
            .iter()
            .filter_map(|d| d.record.confine.as_ref())
            .flat_map(|c| c.hidden_paths.iter().cloned())
            .collect();
        hidden.sort();
        hidden.dedup();
        let matcher = self.matcher(&hidden)?;
        if let Some(rel) = &decided {
            refuse_alias_of_hidden(&workspace, rel, &matcher)?;
        }
        let env = vec![(
            HIDDEN_ENV.to_string(),
            serde_json::to_string(&hidden).unwrap_or_else(|_| "[]".into()),
        )];
        let limit = self.sandbox.limits().timeout_ms;
        let timeout = Duration::from_millis(self.manifest.timeout_ms.unwrap_or(limit).min(limit));
        let module = self
            .module()
            .map_err(|e| ToolError::Failed(format!("{}: {e}", self.spec.name)))?;
        // A guest that may write is checked like a shell command: git's
        // state in the workspace is what it was before, afterwards.
        let guard = if writable {
            let b = Beneath::open(&workspace)
                .map_err(|e| ToolError::Failed(format!("cannot open the workspace: {e}")))?;
            let before = crate::sandbox::git_guard::scan(&b, &[])
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            Some((b, before))
        } else {
            None
        };
        let out = self
            .sandbox
            .run(
                module,
                GuestCall {
                    stdin: serde_json::to_vec(&input).unwrap_or_default(),
                    workspace: workspace.clone(),
                    writable,
                    env,
                    timeout,
                },
            )
            .map_err(|e| ToolError::Failed(format!("{}: {e}", self.spec.name)));
        let restored = match &guard {
            Some((b, before)) => {
                let (now, unseen) = crate::sandbox::git_guard::survey(b, &[], None);
                let restored = before.restore(b, &now).map_err(|e| {
                    ToolError::Failed(format!(
                        "{} changed git's state in the workspace and it could not be put back: {e}; inspect the workspace before running git in it",
                        self.spec.name
                    ))
                })?;
                if !unseen.is_empty() {
                    return Err(ToolError::Failed(format!(
                        "after {} ran, part of the workspace could not be checked ({}); what could be seen was put back",
                        self.spec.name,
                        unseen.join("; ")
                    )));
                }
                Some(restored)
            }
            None => None,
        };
        let out = out?;
        run.gate.metrics().sandbox_spawn("wasm", out.spawn);
        let mut value = parse_output(&self.spec.name, &out)?;
        if let (Some(r), Some(obj)) = (restored, value.as_object_mut()) {
            if !r.removed.is_empty() {
                obj.insert("removed_protected".into(), serde_json::json!(r.removed));
            }
            if !r.restored.is_empty() {
                obj.insert("restored_protected".into(), serde_json::json!(r.restored));
            }
        }
        if self.manifest.filters_hidden || !hidden.is_empty() {
            matcher.filter(&mut value);
            matcher.filter_aliases(&workspace, &mut value);
        }
        Ok(value)
    }
}

/// Gives root-relative paths in a guest's output their sandbox prefix
/// (`SKILL.md` → `/skills/pdf/SKILL.md` for a root at `/skills`): the
/// top-level `path`, and the items of top-level arrays that are paths or
/// carry one in `path` (the convention the hidden-path filter relies on).
fn prefix_paths(value: &mut serde_json::Value, at: &str) {
    let join = |p: &str| {
        let p = p.trim_start_matches("./");
        if p.is_empty() || p == "." {
            at.to_string()
        } else {
            format!("{at}/{p}")
        }
    };
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    for (k, v) in obj.iter_mut() {
        match v {
            serde_json::Value::String(p) if k == "path" => *p = join(p),
            serde_json::Value::Array(items) => {
                for item in items {
                    match item {
                        serde_json::Value::String(p) => *p = join(p),
                        serde_json::Value::Object(o) => {
                            if let Some(serde_json::Value::String(p)) = o.get_mut("path") {
                                *p = join(p);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// Turns a finished guest's stdout into the tool's output or error.
fn parse_output(
    name: &str,
    out: &crate::sandbox::wasm::GuestOutput,
) -> Result<serde_json::Value, ToolError> {
    if out.stdout_truncated {
        return Err(ToolError::Failed(format!(
            "{name}: the guest's output exceeded the limit of {} bytes and was cut off",
            out.stdout.len()
        )));
    }
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if out.exit_code != 0 {
        let msg = parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get("error"))
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                if stderr.is_empty() {
                    "no message".to_string()
                } else {
                    stderr.chars().take(400).collect()
                }
            });
        return Err(ToolError::Failed(format!(
            "{name} failed (exit code {}): {msg}",
            out.exit_code
        )));
    }
    match parsed {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(ToolError::Failed(format!(
            "{name}: the guest printed JSON that is not an object; a guest must print exactly one JSON object"
        ))),
        Err(e) => {
            let shown: String = String::from_utf8_lossy(&out.stdout).chars().take(120).collect();
            Err(ToolError::Failed(format!(
                "{name}: the guest did not print one JSON object ({e}); it printed {shown:?}"
            )))
        }
    }
}

/// Hidden-path globs, applied to a path and each of its ancestors.
struct HiddenMatcher {
    set: globset::GlobSet,
}

impl HiddenMatcher {
    fn new(patterns: &[String]) -> Result<Self, ToolError> {
        let mut b = globset::GlobSetBuilder::new();
        for p in patterns {
            let g = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    ToolError::Failed(format!("the policy's hidden path {p:?} is not a glob: {e}"))
                })?;
            b.add(g);
        }
        let set = b
            .build()
            .map_err(|e| ToolError::Failed(format!("hidden paths: {e}")))?;
        Ok(HiddenMatcher { set })
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Drops results whose file is a hard link of a hidden file (Grep's
    /// hits in `x` when `x` is `.env` under another name).
    fn filter_aliases(&self, workspace: &Path, value: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        let Ok(b) = Beneath::open(workspace) else {
            return;
        };
        let Some(obj) = value.as_object_mut() else {
            return;
        };
        // None until needed; Some(None) when the hidden files could not be
        // surveyed: then every multiply-linked file is dropped (fail closed).
        let mut aliases: Option<Option<std::collections::HashSet<(u64, u64)>>> = None;
        for v in obj.values_mut() {
            let Some(items) = v.as_array_mut() else {
                continue;
            };
            items.retain(|item| {
                let Some(path) = item
                    .as_str()
                    .or_else(|| item.get("path").and_then(|p| p.as_str()))
                else {
                    return true;
                };
                let Ok(Some(e)) = b.lstat(Path::new(path.trim_start_matches("./"))) else {
                    return true;
                };
                if e.nlink <= 1 || e.kind != rustix::fs::FileType::RegularFile {
                    return true;
                }
                match aliases.get_or_insert_with(|| hidden_inodes(&b, self).ok()) {
                    Some(set) => !set.contains(&(e.dev, e.ino)),
                    None => false,
                }
            });
        }
    }

    fn hides(&self, rel: &str) -> bool {
        let mut candidate = rel.trim_start_matches("./");
        loop {
            if self.set.is_match(candidate) {
                return true;
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return false,
            }
        }
    }

    /// Drops, from every array at the top level of the output, the items
    /// that are (or carry in `path`) a hidden path.
    fn filter(&self, value: &mut serde_json::Value) {
        let Some(obj) = value.as_object_mut() else {
            return;
        };
        for v in obj.values_mut() {
            if let Some(items) = v.as_array_mut() {
                items.retain(|item| {
                    let path = item
                        .as_str()
                        .or_else(|| item.get("path").and_then(|p| p.as_str()));
                    !path.is_some_and(|p| self.hides(p))
                });
            }
        }
    }
}

/// A regular file with more than one link may be a hidden file under
/// another name (`ln .env x`): the policy decided on `x`, but the content
/// is the secret's. Such a file is refused when any of its names in the
/// workspace is hidden. Files with one link — nearly all — cost one lstat.
fn refuse_alias_of_hidden(
    workspace: &Path,
    rel: &str,
    matcher: &HiddenMatcher,
) -> Result<(), ToolError> {
    if matcher.is_empty() || rel == "." {
        return Ok(());
    }
    let b = Beneath::open(workspace)
        .map_err(|e| ToolError::Failed(format!("cannot open the workspace: {e}")))?;
    let Ok(Some(e)) = b.lstat(Path::new(rel)) else {
        return Ok(());
    };
    if e.nlink <= 1 || e.kind != rustix::fs::FileType::RegularFile {
        return Ok(());
    }
    let aliases = hidden_inodes(&b, matcher)?;
    if aliases.contains(&(e.dev, e.ino)) {
        return Err(ToolError::Failed(format!(
            "{rel} is a hard link of a hidden file (the same file under another name); file tools may not read or write it"
        )));
    }
    Ok(())
}

/// (device, inode) of every multiply-linked regular file at or below a
/// hidden path in the workspace.
fn hidden_inodes(
    b: &Beneath,
    matcher: &HiddenMatcher,
) -> Result<std::collections::HashSet<(u64, u64)>, ToolError> {
    let scan = crate::sandbox::git_guard::scan_hiding(b, &[], Some(&matcher.set))
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let mut out = std::collections::HashSet::new();
    let mut stack: Vec<PathBuf> = scan.hidden().to_vec();
    let mut budget = 1_000_000usize;
    while let Some(p) = stack.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            return Err(ToolError::Failed(
                "too many hidden entries to check for hard links".into(),
            ));
        }
        let Ok(Some(e)) = b.lstat(&p) else { continue };
        match e.kind {
            rustix::fs::FileType::RegularFile if e.nlink > 1 => {
                out.insert((e.dev, e.ino));
            }
            rustix::fs::FileType::Directory => {
                if let Ok(entries) = b.list(&p) {
                    stack.extend(entries.into_iter().map(|(n, _)| p.join(n)));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Loads every tool directory under `root` (each subdirectory with a
/// `tool.toml`). A directory that fails to load is reported, not fatal to
/// the others.
pub(crate) fn load_dir(
    root: &Path,
    source: ToolSource,
    sandbox: &WasmSandbox,
    grants: &BTreeMap<String, Vec<String>>,
) -> (Vec<GuestTool>, Vec<LoadError>) {
    let mut tools = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) => {
            errors.push(load_err(
                root,
                format!("cannot read the tool directory: {e}"),
            ));
            return (tools, errors);
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("tool.toml").is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        match GuestTool::load(&d, source, sandbox, grants) {
            Ok(t) => tools.push(t),
            Err(e) => errors.push(e),
        }
    }
    (tools, errors)
}
