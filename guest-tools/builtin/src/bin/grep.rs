//! `Grep {pattern, path?, glob?, case_insensitive?, max_results?}`: lines
//! matching a regular expression (the `regex` crate's syntax), searched the
//! way ripgrep does by default: .gitignore honoured, dot files and binary
//! files (a NUL byte) skipped, hidden paths never searched.
//!
//! Each file is read whole and the regex runs over the buffer, not line by
//! line: most files have no match, and one scan with the regex's literal
//! prefilter is what keeps this close to ripgrep.

use memchr::{memchr, memrchr};
use regex::bytes::RegexBuilder;
use runner_guest::{fail, walk, workspace_path, Hidden, Result, Walk};
use serde::{Deserialize, Serialize};

const DEFAULT_MAX_RESULTS: usize = 200;
/// Longest line text returned per match.
const MAX_LINE: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    max_results: Option<usize>,
}

#[derive(Serialize)]
struct Match {
    path: String,
    line: usize,
    text: String,
}

#[derive(Serialize)]
struct Output {
    matches: Vec<Match>,
    files_searched: usize,
    truncated: bool,
}

fn grep(i: Input) -> Result<Output> {
    let re = RegexBuilder::new(&i.pattern)
        .case_insensitive(i.case_insensitive)
        .multi_line(true)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))?;
    let filter = match &i.glob {
        Some(g) => Some(
            globset::GlobBuilder::new(g)
                .literal_separator(!g.starts_with("*.") && g.contains('/'))
                .build()
                .map_err(|e| format!("invalid glob {g}: {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let root = workspace_path(i.path.as_deref().unwrap_or("."))?;
    if !root.exists() {
        return fail(format!(
            "{} does not exist",
            i.path.as_deref().unwrap_or(".")
        ));
    }
    let max = i.max_results.unwrap_or(DEFAULT_MAX_RESULTS).max(1);
    let hidden = Hidden::from_env()?;
    let mut out = Output {
        matches: Vec::new(),
        files_searched: 0,
        truncated: false,
    };
    let mut buf = Vec::new();
    let opts = Walk {
        gitignore: true,
        hidden_files: false,
        max_depth: None,
    };
    walk(&root, &opts, &hidden, |path, rel, ft| {
        if !ft.is_file() {
            return true;
        }
        if let Some(f) = &filter {
            let name = path.file_name().map(std::path::Path::new).unwrap_or(path);
            if !f.is_match(rel) && !f.is_match(name) {
                return true;
            }
        }
        // open + read + close only: `read_to_end` would add an fstat and a
        // seek per file, and each WASI call is a host round trip.
        let Ok(mut file) = std::fs::File::open(path) else {
            return true;
        };
        let Ok(len) = read_all(&mut file, &mut buf) else {
            return true;
        };
        out.files_searched += 1;
        search(&re, &buf[..len], rel, max, &mut out)
    })?;
    Ok(out)
}

/// Reads a whole file into the front of `buf` with plain reads; returns its
/// length (what was there when it was read: a file growing meanwhile may
/// be cut at a read boundary). `buf` stays initialised and only grows, so nothing is zeroed twice.
fn read_all(file: &mut std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    loop {
        if buf.len() - filled < 16 * 1024 {
            let grow = buf.len().max(64 * 1024);
            buf.resize(buf.len() + grow, 0);
        }
        let room = buf.len() - filled;
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Ok(filled),
            // A short read of a regular file is its end: one host call
            // fewer per file than reading on until a read returns 0.
            Ok(n) if n < room => return Ok(filled + n),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Adds the matching lines of one buffer, unless it is binary (has a NUL
/// byte); false once `max` is reached. The NUL check runs only once the
/// buffer has a match: most files have none, and for them one scan (the
/// regex's) is enough to know there is nothing to report.
fn search(re: &regex::bytes::Regex, buf: &[u8], rel: &str, max: usize, out: &mut Output) -> bool {
    let Some(first) = re.find(buf) else {
        return true;
    };
    if memchr(0, buf).is_some() {
        return true; // binary
    }
    let mut at = first.start();
    let mut line_no = 1;
    let mut counted_to = 0;
    while at <= buf.len() {
        let Some(m) = re.find_at(buf, at) else { break };
        let start = memrchr(b'\n', &buf[..m.start()]).map_or(0, |p| p + 1);
        let end = memchr(b'\n', &buf[m.start()..]).map_or(buf.len(), |p| m.start() + p);
        line_no += memchr::memchr_iter(b'\n', &buf[counted_to..start]).count();
        counted_to = start;
        if out.matches.len() == max {
            out.truncated = true;
            return false;
        }
        let line = &buf[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]).into_owned();
        if line.len() > MAX_LINE {
            text.push('…');
        }
        out.matches.push(Match {
            path: rel.to_string(),
            line: line_no,
            text,
        });
        at = end + 1;
    }
    true
}

fn main() {
    runner_guest::run(grep)
}
