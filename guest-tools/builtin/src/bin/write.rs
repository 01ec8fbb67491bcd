//! `Write {path, content}`: creates or replaces a file (and its parent
//! directories) in the workspace.

use runner_guest::{fail, workspace_path, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    path: String,
    content: String,
}

#[derive(Serialize)]
struct Output {
    path: String,
    bytes_written: usize,
    created: bool,
}

fn write(i: Input) -> Result<Output> {
    let p = workspace_path(&i.path)?;
    if p.is_dir() {
        return fail(format!("{} is a directory", i.path));
    }
    let created = !p.exists();
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the directories of {}: {e}", i.path))?;
    }
    std::fs::write(&p, i.content.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", i.path))?;
    Ok(Output {
        path: i.path,
        bytes_written: i.content.len(),
        created,
    })
}

fn main() {
    runner_guest::run(write)
}
