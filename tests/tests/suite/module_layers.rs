//! The module graph stays a DAG: each crate's top-level modules may import
//! only the modules listed for them below, and the lists themselves have no
//! cycle. Read from the source (every `crate::x` and `super::…::x` that
//! leaves the module), so the picture in docs/architecture.md stays true.
//! A new edge is a design decision: add it here, and to the module map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The runner's layers, lowest first. Data flows platform → worker → agent
/// → tools → policy/sandbox; leaves (`activity`, `cancel`, `secret`) are
/// what several layers share.
const RUNNER: &[(&str, &[&str])] = &[
    ("activity", &[]),
    ("cancel", &[]),
    ("secret", &[]),
    ("metrics", &[]),
    ("trust", &[]),
    ("sandbox", &["cancel"]),
    ("policy", &["activity", "metrics"]),
    ("tools", &["cancel", "policy", "sandbox", "secret"]),
    ("skills", &["sandbox"]),
    ("artifacts", &["sandbox"]),
    ("model", &["cancel", "secret"]),
    ("repo", &["cancel", "secret"]),
    ("agent", &["activity", "cancel", "model", "policy", "tools"]),
    ("auth", &["secret", "trust"]),
    ("forge", &["secret"]),
    (
        "repository",
        &["cancel", "forge", "policy", "repo", "secret"],
    ),
    ("webhook", &["secret"]),
    ("platform", &["auth", "trust"]),
    (
        "config",
        &[
            "agent",
            "artifacts",
            "auth",
            "metrics",
            "model",
            "policy",
            "repository",
            "sandbox",
            "tools",
            "webhook",
        ],
    ),
    ("wiring", &["auth", "config", "policy", "sandbox", "tools"]),
    (
        "worker",
        &[
            "activity",
            "agent",
            "artifacts",
            "auth",
            "cancel",
            "config",
            "metrics",
            "model",
            "platform",
            "policy",
            "repository",
            "skills",
            "tools",
            "webhook",
            "wiring",
        ],
    ),
    (
        "cli",
        &[
            "activity", "auth", "config", "metrics", "platform", "policy", "sandbox", "tools",
            "trust", "webhook", "wiring", "worker",
        ],
    ),
];

/// The control plane's layers: storage at the bottom (all SQL is in
/// `store`), HTTP on top; `webhooks` only sends what the store's outbox
/// holds.
const CONTROL_PLANE: &[(&str, &[&str])] = &[
    ("transitions", &[]),
    ("metrics", &[]),
    ("tls", &[]),
    ("cloud_agents", &[]),
    ("agent_configs", &[]),
    ("runs", &[]),
    ("schedules", &[]),
    (
        "store",
        &[
            "agent_configs",
            "cloud_agents",
            "metrics",
            "runs",
            "schedules",
            "transitions",
        ],
    ),
    ("webhooks", &["store"]),
    ("error", &["store"]),
    ("auth", &["error", "store"]),
    (
        "api",
        &[
            "agent_configs",
            "auth",
            "cloud_agents",
            "error",
            "metrics",
            "runs",
            "store",
            "webhooks",
        ],
    ),
];

fn crate_src(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

/// Top-level modules of a crate: `src/x.rs` and `src/x/` (not `bin/`).
fn top_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            if p.is_dir() {
                (name != "bin").then_some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (!matches!(stem, "lib" | "main")).then(|| stem.to_string())
            }
        })
        .collect()
}

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().filter_map(|e| e.ok()) {
            rust_files(&e.path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

/// The module path of a file below `src` (`sandbox/process/mod.rs` is
/// `[sandbox, process]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// First segments of the paths a `{…}` group names: `{a, b::c, d as e}`.
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut expect) = (0, true);
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expect = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect = true,
            c if expect && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                if let Some(id) = ident_at(&s[i..]) {
                    heads.push(id.to_string());
                }
                expect = false;
            }
            _ => {}
        }
    }
    heads
}

/// For each byte of `code`, how many inline `mod x { … }` blocks enclose
/// it (braces in strings come in pairs, so counting them is enough).
fn inline_mod_depths(code: &str) -> Vec<usize> {
    let bytes = code.as_bytes();
    let mut out = vec![0; bytes.len() + 1];
    let (mut depth, mut opened): (usize, Vec<usize>) = (0, Vec::new());
    let mut pending_mod = false;
    for (i, &b) in bytes.iter().enumerate() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if word_start && bytes[i..].starts_with(b"mod ") {
            pending_mod = true;
        }
        match b {
            b';' => pending_mod = false,
            b'{' => {
                if pending_mod {
                    opened.push(depth);
                    pending_mod = false;
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if opened.last() == Some(&depth) {
                    opened.pop();
                }
            }
            _ => {}
        }
        out[i] = opened.len();
    }
    out
}

/// Names the crate root re-exports (`pub use store::{Store, …}` in
/// `lib.rs`), with the module each comes from: `crate::Store` is an edge
/// to `store`.
fn reexports(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some(module) = ident_at(rest) else {
            continue;
        };
        let names = match rest.find('{') {
            Some(i) => rest[i + 1..]
                .trim_end_matches(['}', ';'])
                .split(',')
                .map(|n| n.trim().rsplit("::").next().unwrap_or("").to_string())
                .collect::<Vec<_>>(),
            None => vec![rest
                .trim_end_matches(';')
                .rsplit("::")
                .next()
                .unwrap_or("")
                .to_string()],
        };
        for n in names.into_iter().filter(|n| !n.is_empty()) {
            out.insert(n, module.to_string());
        }
    }
    out
}

/// Ways of naming another module that the edge reading would not see; the
/// source must not use them.
fn evasions(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut v = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(src).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            let squeezed: String = l.split_whitespace().collect::<Vec<_>>().join(" ");
            for bad in [
                "crate::*",
                "use crate as",
                "use crate::{self",
                "crate ::",
                "crate:: ",
                "$crate::",
            ] {
                if squeezed.contains(bad) {
                    v.push(format!(
                        "{rel}:{}: `{bad}` hides which module is used",
                        n + 1
                    ));
                }
            }
            let top_level_file = module_path(src, &f).len() == 1;
            if top_level_file && squeezed.contains("use super::*") && !squeezed.contains("mod ") {
                // Allowed only inside an inline test module, where `super`
                // is this module itself.
                let inline = inline_mod_depths(&text);
                let at = text.lines().take(n).map(|l| l.len() + 1).sum::<usize>();
                if inline.get(at).copied().unwrap_or(0) == 0 {
                    v.push(format!(
                        "{rel}:{}: `use super::*` imports the crate root",
                        n + 1
                    ));
                }
            }
        }
    }
    v
}

/// Top-level modules that the code of `file` names outside its own.
fn imports(src: &Path, file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    // Comments (doc links included) are not dependencies.
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let here = module_path(src, file);
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if rest.starts_with('{') {
            found.extend(group_heads(rest));
        } else if let Some(id) = ident_at(rest) {
            found.insert(id.to_string());
        }
    }
    // A name the crate root re-exports stands for its module.
    let re = reexports(src);
    let via_root: Vec<String> = found.iter().filter_map(|n| re.get(n).cloned()).collect();
    found.extend(via_root);
    // `super::super::x` from a nested module can reach the crate root too.
    let inline = inline_mod_depths(&code);
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::")
            || code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let mut rest = &code[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        // A file's own module is `here`, plus the inline `mod x { … }`
        // blocks around the path; `super` from `a/b.rs` is `a`.
        if ups >= here.len() + inline[i] {
            if rest.starts_with('{') {
                found.extend(group_heads(rest));
            } else if let Some(id) = ident_at(rest) {
                found.insert(id.to_string());
            }
        }
    }
    found
}

/// Edges the source has, by top-level module: `(from, to) -> files`.
fn edges(src: &Path) -> BTreeMap<(String, String), Vec<String>> {
    let tops = top_modules(src);
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for f in files {
        let path = module_path(src, &f);
        let Some(from) = path.first().filter(|m| tops.contains(*m)) else {
            continue; // lib.rs, main.rs, bin/
        };
        for to in imports(src, &f) {
            if tops.contains(&to) && &to != from {
                out.entry((from.clone(), to))
                    .or_default()
                    .push(f.strip_prefix(src).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Every way the source and the list disagree.
fn violations(src: &Path, allowed: &[(&str, &[&str])]) -> Vec<String> {
    let list: BTreeMap<&str, BTreeSet<&str>> = allowed
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let mut v = evasions(src);
    for m in top_modules(src) {
        if !list.contains_key(m.as_str()) {
            v.push(format!(
                "module `{m}` has no line in the allowed-edges list"
            ));
        }
    }
    let found = edges(src);
    for ((from, to), files) in &found {
        if !list
            .get(from.as_str())
            .is_some_and(|d| d.contains(to.as_str()))
        {
            v.push(format!(
                "`{from}` imports `{to}` ({}), an edge not in the list",
                files.join(", ")
            ));
        }
    }
    for (from, deps) in &list {
        for to in deps {
            if !found.contains_key(&(from.to_string(), to.to_string())) {
                v.push(format!(
                    "the list allows `{from}` → `{to}` but no code uses it; remove it"
                ));
            }
        }
    }
    v
}

/// A cycle in the list, if any (depth-first search).
fn cycle(allowed: &[(&str, &[&str])]) -> Option<Vec<String>> {
    let graph: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
    fn visit<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, &'a [&'a str]>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|m| *m == n) {
            let mut c: Vec<String> = stack[i..].iter().map(|s| s.to_string()).collect();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n);
        for d in g.get(n).copied().unwrap_or(&[]) {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n);
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn runner_modules_import_only_the_layers_below_them() {
    let v = violations(&crate_src("runner"), RUNNER);
    assert!(v.is_empty(), "module graph changed:\n{}", v.join("\n"));
}

#[test]
fn control_plane_modules_import_only_the_layers_below_them() {
    let v = violations(&crate_src("control-plane"), CONTROL_PLANE);
    assert!(v.is_empty(), "module graph changed:\n{}", v.join("\n"));
}

#[test]
fn allowed_edges_have_no_cycle() {
    assert_eq!(cycle(RUNNER), None);
    assert_eq!(cycle(CONTROL_PLANE), None);
}

#[test]
fn removing_any_allowed_edge_of_the_runner_fails_the_check() {
    removing_any_allowed_edge_fails("runner", RUNNER);
}

#[test]
fn removing_any_allowed_edge_of_the_control_plane_fails_the_check() {
    removing_any_allowed_edge_fails("control-plane", CONTROL_PLANE);
}

fn removing_any_allowed_edge_fails(krate: &str, allowed: &[(&str, &[&str])]) {
    let src = crate_src(krate);
    for (i, (from, deps)) in allowed.iter().enumerate() {
        for (j, to) in deps.iter().enumerate() {
            let fewer: Vec<&str> = deps
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != j)
                .map(|(_, d)| *d)
                .collect();
            let mut list: Vec<(&str, &[&str])> = allowed.to_vec();
            list[i] = (from, &fewer);
            let v = violations(&src, &list);
            assert!(
                v.iter()
                    .any(|m| m.contains(&format!("`{from}` imports `{to}`"))),
                "removing {from} → {to} went unnoticed: {v:?}"
            );
        }
    }
}

#[test]
fn a_cycle_in_the_list_is_found() {
    let looped: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c"]), ("c", &["a"])];
    assert_eq!(
        cycle(looped),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn imports_are_read_from_paths_groups_and_supers() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::create_dir_all(src.join("a/inner")).unwrap();
    std::fs::write(src.join("lib.rs"), "").unwrap();
    std::fs::write(src.join("b.rs"), "").unwrap();
    std::fs::write(src.join("c.rs"), "").unwrap();
    std::fs::write(src.join("e.rs"), "").unwrap();
    std::fs::write(src.join("f.rs"), "").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "use crate::{b::X, c as _};\n/// [`crate::e`] is only a doc link\nfn f() {}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner/deep.rs"),
        "use super::super::super::e::Y;\nuse super::super::Z;\n\
         mod tests {\n    use super::super::super::super::f::W;\n    use super::super::super::Q;\n}\n",
    )
    .unwrap();
    let found: BTreeSet<(String, String)> = edges(src).into_keys().collect();
    let want: BTreeSet<(String, String)> = [("a", "b"), ("a", "c"), ("a", "e"), ("a", "f")]
        .iter()
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect();
    assert_eq!(found, want);
}

#[test]
fn ways_around_the_reading_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::write(src.join("lib.rs"), "pub use b::Thing;\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct Thing;\n").unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::*;\nuse crate as r;\nuse crate :: b;\nuse super::*;\nfn f(_: crate::Thing) {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    let v = evasions(src);
    for bad in ["crate::*", "use crate as", "crate ::", "use super::*"] {
        assert!(v.iter().any(|m| m.contains(bad)), "{bad} not caught: {v:?}");
    }
    // The test module's `use super::*` is its own module, not the root.
    assert_eq!(
        v.iter().filter(|m| m.contains("use super::*")).count(),
        1,
        "{v:?}"
    );
    // A re-exported name is an edge to the module it comes from.
    let found: BTreeSet<(String, String)> = edges(src).into_keys().collect();
    assert!(
        found.contains(&("a".to_string(), "b".to_string())),
        "{found:?}"
    );
}
