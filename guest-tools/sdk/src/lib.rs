//! The guest side of runner's tool ABI (see DESIGN.md, "Guest tool ABI").
//!
//! A guest tool is a WASI preview-1 command: the runner writes the call's
//! JSON input to stdin, preopens the workspace at `/workspace`, and reads one
//! JSON object from stdout. Exit code 0 means success; on failure the guest
//! prints `{"error": "..."}` and exits 1. [`run`] does all of that around a
//! plain function, so a tool is `fn main() { runner_guest::run(my_tool) }`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[cfg(target_os = "wasi")]
mod realpath_shim;

/// Where the runner mounts the workspace inside the guest.
pub const WORKSPACE: &str = "/workspace";

/// The environment variable through which the runner passes the paths the
/// policy hides (a JSON array of globs relative to the workspace). Guests
/// skip them; the runner filters results again regardless.
pub const HIDDEN_ENV: &str = "RUNNER_HIDDEN_PATHS";

/// A tool failure: its message reaches the agent as the tool error.
#[derive(Debug)]
pub struct ToolError(pub String);

impl<E: std::fmt::Display> From<E> for ToolError {
    fn from(e: E) -> Self {
        ToolError(e.to_string())
    }
}

/// Shorthand for a tool's result.
pub type Result<T> = std::result::Result<T, ToolError>;

/// Builds an error from a message.
pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(ToolError(msg.into()))
}

/// Reads the input from stdin, calls `tool`, prints its output (or the
/// error) as one JSON object, and exits 0 (ok) or 1 (error).
pub fn run<I: DeserializeOwned, O: Serialize>(tool: impl FnOnce(I) -> Result<O>) -> ! {
    let result = read_input().and_then(tool).and_then(|o| {
        serde_json::to_vec(&o).map_err(|e| ToolError(format!("cannot encode the output: {e}")))
    });
    let mut out = std::io::stdout().lock();
    let code = match result {
        Ok(bytes) => {
            let _ = out.write_all(&bytes);
            0
        }
        Err(ToolError(msg)) => {
            let _ = serde_json::to_writer(&mut out, &serde_json::json!({ "error": msg }));
            1
        }
    };
    let _ = out.flush();
    std::process::exit(code)
}

fn read_input<I: DeserializeOwned>() -> Result<I> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| ToolError(format!("cannot read the input: {e}")))?;
    serde_json::from_slice(&buf).map_err(|e| ToolError(format!("invalid input: {e}")))
}

/// The guest path of the path the runner decided on.
///
/// The runner hands a tool the path exactly as the policy saw it: resolved,
/// relative to the workspace, with no `..`, no `.` and no symlink on the
/// way (it followed them, as the kernel would, before deciding). So
/// nothing is resolved here — resolving again could land on another file
/// than the one decided. A path of any other shape is refused, and so is a
/// symlink met on the way (the workspace changed since the decision): the
/// tool acts on the decided object or on nothing.
pub fn workspace_path(rel: &str) -> Result<PathBuf> {
    let mut out = PathBuf::from(WORKSPACE);
    if rel == "." {
        return Ok(out);
    }
    if rel.is_empty() || rel.starts_with('/') || rel.ends_with('/') || rel.contains("//") {
        return fail(format!(
            "{rel:?} is not a path as the runner decides them (relative to the workspace, clean)"
        ));
    }
    for c in rel.split('/') {
        if c == "." || c == ".." {
            return fail(format!(
                "{rel:?} is not a path as the runner decides them (it contains `{c}`)"
            ));
        }
        out.push(c);
        match std::fs::symlink_metadata(&out) {
            Ok(m) if m.file_type().is_symlink() => {
                return fail(format!(
                    "{} is now a symlink; the workspace changed since the call was decided, so nothing was done",
                    relative(&out)
                ))
            }
            Ok(_) => {}
            // The rest does not exist yet (a file about to be created).
            Err(_) => break,
        }
    }
    Ok(PathBuf::from(WORKSPACE).join(rel))
}

/// The workspace-relative form of a guest path, with `/` separators.
pub fn relative(path: &Path) -> String {
    let p = path.strip_prefix(WORKSPACE).unwrap_or(path);
    let s = p.to_string_lossy().into_owned();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// The hidden-path matcher the runner passed in.
#[derive(Clone)]
pub struct Hidden {
    set: Option<globset::GlobSet>,
}

impl Hidden {
    /// Reads [`HIDDEN_ENV`]; no variable means nothing hidden.
    pub fn from_env() -> Result<Hidden> {
        let Ok(raw) = std::env::var(HIDDEN_ENV) else {
            return Ok(Hidden { set: None });
        };
        let patterns: Vec<String> = serde_json::from_str(&raw)
            .map_err(|e| ToolError(format!("{HIDDEN_ENV} is not a JSON array of strings: {e}")))?;
        let mut b = globset::GlobSetBuilder::new();
        for p in &patterns {
            let g = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| ToolError(format!("hidden pattern {p}: {e}")))?;
            b.add(g);
        }
        Ok(Hidden {
            set: Some(b.build()?),
        })
    }

    /// Whether a workspace-relative path is hidden (a walk prunes hidden
    /// directories, so their contents never reach this check).
    pub fn hides(&self, rel: &str) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(rel))
    }
}

/// Options of a workspace walk.
pub struct Walk {
    /// Honour `.gitignore`, `.ignore` and `.git/info/exclude` as ripgrep does.
    pub gitignore: bool,
    /// Include dot files and directories (ripgrep skips them by default).
    pub hidden_files: bool,
    /// Deepest level to descend to (the root is 0).
    pub max_depth: Option<usize>,
}

/// Walks `root` (a guest path) depth-first in name order, calling `visit`
/// with each entry's guest path, its workspace-relative path and its type;
/// `visit` returns false to stop. Hidden paths are pruned with everything
/// below them, and `.git` itself is never descended into.
pub fn walk(
    root: &Path,
    opts: &Walk,
    hidden: &Hidden,
    mut visit: impl FnMut(&Path, &str, std::fs::FileType) -> bool,
) -> Result<()> {
    let mut b = ignore::WalkBuilder::new(root);
    let prune = hidden.clone();
    b.standard_filters(opts.gitignore)
        .hidden(!opts.hidden_files)
        .require_git(false)
        .follow_links(false)
        .max_depth(opts.max_depth)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            if e.depth() == 0 {
                return true;
            }
            if e.file_name() == ".git" {
                return false;
            }
            !prune.hides(&relative(e.path()))
        });
    for entry in b.build() {
        let Ok(entry) = entry else { continue };
        let Some(ft) = entry.file_type() else {
            continue;
        };
        if !visit(entry.path(), &relative(entry.path()), ft) {
            break;
        }
    }
    Ok(())
}
