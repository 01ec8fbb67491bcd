//! `WordCount {path, max_files?}`: lines, words and bytes of a workspace file,
//! or summed over the files under a workspace directory (not following
//! symlinks).
//!
//! The whole guest-tool ABI, with no SDK: the input is one JSON object on
//! stdin; the workspace is the directory preopened at `/workspace`; the
//! result is one JSON object on stdout; exit code 0 means success, anything
//! else is a tool error (we print `{"error": ...}` so the message is clear).

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Input {
    path: String,
    #[serde(default = "default_max_files")]
    max_files: usize,
}

fn default_max_files() -> usize {
    10_000
}

#[derive(Serialize, Default)]
struct Counts {
    files: usize,
    lines: usize,
    words: usize,
    bytes: usize,
    truncated: bool,
}

fn main() {
    let mut raw = String::new();
    let result = std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| format!("cannot read the input: {e}"))
        .and_then(|_| {
            serde_json::from_str::<Input>(&raw).map_err(|e| format!("invalid input: {e}"))
        })
        .and_then(count);
    match result {
        Ok(c) => println!("{}", serde_json::to_string(&c).unwrap()),
        Err(e) => {
            println!("{}", serde_json::json!({ "error": e }));
            std::process::exit(1);
        }
    }
}

fn count(i: Input) -> Result<Counts, String> {
    // The agent names paths relative to the workspace; the guest sees the
    // workspace at /workspace and nothing else.
    let path = Path::new("/workspace").join(i.path.trim_start_matches('/'));
    let mut c = Counts::default();
    let mut stack: Vec<PathBuf> = vec![path];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            children.sort();
            stack.extend(children.into_iter().rev());
        } else if meta.is_file() {
            if c.files == i.max_files {
                c.truncated = true;
                break;
            }
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            c.files += 1;
            c.bytes += bytes.len();
            c.lines += bytes.iter().filter(|&&b| b == b'\n').count();
            c.words += String::from_utf8_lossy(&bytes).split_whitespace().count();
        }
    }
    Ok(c)
}
