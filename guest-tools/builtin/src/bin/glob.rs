//! `Glob {pattern, path?}`: files whose path (relative to `path`, default the
//! workspace) matches a glob; `*` stays within a directory, `**` crosses
//! them. Honours .gitignore like ripgrep; hidden paths never appear.

use runner_guest::{walk, workspace_path, Hidden, Result, Walk};
use serde::{Deserialize, Serialize};

const MAX_FILES: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Serialize)]
struct Output {
    files: Vec<String>,
    truncated: bool,
}

fn glob(i: Input) -> Result<Output> {
    let root = workspace_path(i.path.as_deref().unwrap_or("."))?;
    let matcher = globset::GlobBuilder::new(&i.pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob {}: {e}", i.pattern))?
        .compile_matcher();
    let hidden = Hidden::from_env()?;
    let mut files = Vec::new();
    let mut truncated = false;
    let opts = Walk {
        gitignore: true,
        hidden_files: true,
        max_depth: None,
    };
    walk(&root, &opts, &hidden, |path, rel, ft| {
        if !ft.is_file() {
            return true;
        }
        let under_root = path.strip_prefix(&root).unwrap_or(path);
        if matcher.is_match(under_root) {
            if files.len() == MAX_FILES {
                truncated = true;
                return false;
            }
            files.push(rel.to_string());
        }
        true
    })?;
    Ok(Output { files, truncated })
}

fn main() {
    runner_guest::run(glob)
}
