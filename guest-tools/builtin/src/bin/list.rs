//! `List {path?, depth?}`: the entries under a directory (default the
//! workspace), `depth` levels down (default 1), with type and size.
//! Hidden paths never appear; `.gitignore` is not applied (List shows what
//! is there).

use runner_guest::{fail, walk, workspace_path, Hidden, Result, Walk};
use serde::{Deserialize, Serialize};

const MAX_ENTRIES: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    depth: Option<usize>,
}

#[derive(Serialize)]
struct Entry {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

#[derive(Serialize)]
struct Output {
    entries: Vec<Entry>,
    truncated: bool,
}

fn list(i: Input) -> Result<Output> {
    let root = workspace_path(i.path.as_deref().unwrap_or("."))?;
    if !root.is_dir() {
        return fail(format!(
            "{} is not a directory",
            i.path.as_deref().unwrap_or(".")
        ));
    }
    let hidden = Hidden::from_env()?;
    let depth = i.depth.unwrap_or(1).clamp(1, 32);
    let mut entries = Vec::new();
    let mut truncated = false;
    let opts = Walk {
        gitignore: false,
        hidden_files: true,
        max_depth: Some(depth),
    };
    walk(&root, &opts, &hidden, |path, rel, ft| {
        if path == root {
            return true;
        }
        if entries.len() == MAX_ENTRIES {
            truncated = true;
            return false;
        }
        let (kind, size) = if ft.is_dir() {
            ("dir", None)
        } else if ft.is_symlink() {
            ("symlink", None)
        } else {
            (
                "file",
                std::fs::symlink_metadata(path).ok().map(|m| m.len()),
            )
        };
        entries.push(Entry {
            path: rel.to_string(),
            kind,
            size,
        });
        true
    })?;
    Ok(Output { entries, truncated })
}

fn main() {
    runner_guest::run(list)
}
