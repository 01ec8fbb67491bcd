//! `Edit {path, old, new, replace_all?}`: replaces an exact string in a
//! file. `old` must occur exactly once unless `replace_all` is set, so an
//! edit never lands somewhere the agent did not mean.

use runner_guest::{fail, workspace_path, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    path: String,
    old: String,
    new: String,
    #[serde(default)]
    replace_all: bool,
}

#[derive(Serialize)]
struct Output {
    path: String,
    replacements: usize,
}

fn edit(i: Input) -> Result<Output> {
    if i.old.is_empty() {
        return fail("`old` is empty; give the exact text to replace (use Write to create a file)");
    }
    if i.old == i.new {
        return fail("`old` and `new` are the same; nothing to do");
    }
    let p = workspace_path(&i.path)?;
    let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", i.path))?;
    let count = text.matches(&i.old).count();
    if count == 0 {
        return fail(format!(
            "`old` does not occur in {}; read the file and copy the text exactly",
            i.path
        ));
    }
    if count > 1 && !i.replace_all {
        return fail(format!(
            "`old` occurs {count} times in {}; add surrounding lines to make it unique, or set replace_all",
            i.path
        ));
    }
    let out = if i.replace_all {
        text.replace(&i.old, &i.new)
    } else {
        text.replacen(&i.old, &i.new, 1)
    };
    std::fs::write(&p, out).map_err(|e| format!("cannot write {}: {e}", i.path))?;
    Ok(Output {
        path: i.path,
        replacements: if i.replace_all { count } else { 1 },
    })
}

fn main() {
    runner_guest::run(edit)
}
