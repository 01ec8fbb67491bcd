//! `Read {path, offset?, limit?}`: a text file's lines, numbered from 1.

use runner_guest::{fail, workspace_path, Result};
use serde::{Deserialize, Serialize};

/// Largest file Read returns whole (bigger files need offset/limit).
const MAX_BYTES: usize = 256 * 1024;
const DEFAULT_LIMIT: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    path: String,
    /// First line to return, counting from 1.
    #[serde(default)]
    offset: Option<usize>,
    /// How many lines at most.
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Output {
    path: String,
    content: String,
    start_line: usize,
    lines: usize,
    total_lines: usize,
    truncated: bool,
}

fn read(i: Input) -> Result<Output> {
    let p = workspace_path(&i.path)?;
    let meta = std::fs::metadata(&p).map_err(|e| format!("cannot read {}: {e}", i.path))?;
    if meta.is_dir() {
        return fail(format!(
            "{} is a directory; use List to see its entries",
            i.path
        ));
    }
    let bytes = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", i.path))?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return fail(format!(
            "{} is a binary file; Read returns text only",
            i.path
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    let start = i.offset.unwrap_or(1).max(1);
    let limit = i.limit.unwrap_or(DEFAULT_LIMIT);
    let total_lines = text.lines().count();
    let mut content = String::new();
    let mut lines = 0;
    let mut truncated = false;
    for line in text.lines().skip(start - 1) {
        if lines == limit || content.len() + line.len() > MAX_BYTES {
            truncated = true;
            break;
        }
        content.push_str(line);
        content.push('\n');
        lines += 1;
    }
    Ok(Output {
        path: i.path,
        content,
        start_line: start,
        lines,
        total_lines,
        truncated,
    })
}

fn main() {
    runner_guest::run(read)
}
