//! The wasm sandbox and the guest tools, end to end through `tools::call`:
//! real wasmtime, the real guest modules built by scripts/build-guests.sh,
//! the shipped default policy, a real workspace on disk.

use protocol::session::SourceWork;
use runner::policy::{PolicyEngine, PolicyGate, SessionContext, Trusted};
use runner::sandbox::wasm::{WasmLimits, WasmSandbox};
use runner::tools::{self, CallOutcome, CallStatus, Registry, ToolSource, WebFetchSettings};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn guests(sub: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(sub);
    assert!(
        p.is_dir(),
        "{} is missing: run scripts/build-guests.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

const TOOLS: &[&str] = &[
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "List",
    "Misbehave",
    "MisbehaveRW",
    "WordCount",
];

struct Rig {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    registry: Registry,
    gate: PolicyGate,
    ctx: SessionContext,
    sink: Arc<runner::activity::MemorySink>,
}

/// A registry with the built-in guests, the test guest (read-only and, when
/// the policy grants it, read-write) and the example custom tool.
fn rig_with(engine: Arc<PolicyEngine>, limits: WasmLimits) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let ws = base.join("ws");
    std::fs::create_dir_all(ws.join("src/nested")).unwrap();
    std::fs::write(ws.join("README.md"), "# demo\nline two\nline three\n").unwrap();
    std::fs::write(
        ws.join("src/main.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    std::fs::write(ws.join("src/nested/lib.rs"), "pub fn hi() {}\n").unwrap();
    std::fs::write(ws.join(".env"), "API_KEY=secret-value\n").unwrap();
    std::fs::write(ws.join("src/server.pem"), "-----BEGIN secret-value\n").unwrap();
    std::fs::create_dir_all(ws.join(".ssh")).unwrap();
    std::fs::write(ws.join(".ssh/id_rsa"), "secret-value\n").unwrap();
    std::fs::write(ws.join("ignored.log"), "fn main secret? no, ignored\n").unwrap();
    std::fs::write(ws.join(".gitignore"), "*.log\n").unwrap();
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
    // Custom tools: the test guest twice (fs.read only, and fs.read+write).
    let custom = base.join("custom");
    for (name, caps) in [
        ("Misbehave", r#"["fs.read"]"#),
        ("MisbehaveRW", r#"["fs.read", "fs.write"]"#),
    ] {
        let d = custom.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(
            guests("guest-tools-testing").join("Misbehave/tool.wasm"),
            d.join("tool.wasm"),
        )
        .unwrap();
        std::fs::write(
            d.join("tool.toml"),
            format!(
                "name = \"{name}\"\ndescription = \"test guest\"\ncapabilities = {caps}\npath_arg = \"target\"\n[input_schema]\ntype = \"object\"\nrequired = [\"mode\"]\n[input_schema.properties.mode]\ntype = \"string\"\n[input_schema.properties.target]\ntype = \"string\"\n"
            ),
        )
        .unwrap();
    }
    chmod_go_w(&custom);
    // One compiled-module cache for the suite (written atomically, keyed by
    // module and engine), so each guest is compiled once per run.
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-wasm-cache");
    let sandbox = WasmSandbox::new(limits, Some(cache)).unwrap();
    let grants = engine.tool_grants().unwrap();
    let mut registry = Registry::builtin(
        runner::wiring::bash_settings(
            &runner::config::Config::default(),
            PathBuf::from("/nonexistent"),
        ),
        WebFetchSettings::default(),
    );
    registry.add_guest_dir(
        &guests("guest-tools"),
        ToolSource::Builtin,
        &sandbox,
        &grants,
    );
    registry.add_guest_dir(&custom, ToolSource::Custom, &sandbox, &grants);
    registry.add_guest_dir(
        &guests("custom-tools"),
        ToolSource::Custom,
        &sandbox,
        &grants,
    );
    let (gate, sink) = test_support::gate(engine, Some(&base.join("audit.jsonl")));
    let trusted = Trusted {
        agent: serde_json::json!({"name": "t", "enabled_tools": TOOLS, "grants": {}}),
        ..test_support::trusted()
    };
    let ctx = SessionContext::new(ws.clone(), trusted, SourceWork::default());
    Rig {
        _tmp: tmp,
        ws,
        registry,
        gate,
        ctx,
        sink,
    }
}

fn chmod_go_w(p: &Path) {
    for e in walk(p) {
        let m = std::fs::metadata(&e).unwrap().permissions().mode();
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(m & !0o022)).unwrap();
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

fn rig() -> Rig {
    rig_with(test_support::default_engine(), WasmLimits::default())
}

impl Rig {
    fn call(&self, tool: &str, input: serde_json::Value) -> CallOutcome {
        tools::call(&self.registry, &self.gate, &self.ctx, tool, &input, false)
    }
    fn ok(&self, tool: &str, input: serde_json::Value) -> serde_json::Value {
        let o = self.call(tool, input);
        assert_eq!(o.status, CallStatus::Ok, "{tool}: {}", o.output);
        o.output
    }
    fn error(&self, tool: &str, input: serde_json::Value) -> String {
        let o = self.call(tool, input);
        assert_eq!(o.status, CallStatus::Error, "{tool}: {}", o.output);
        o.output["error"].as_str().unwrap().to_string()
    }
}

// ---- the file tools work ----

#[test]
fn read_write_edit_roundtrip() {
    let r = rig();
    let out = r.ok(
        "Read",
        serde_json::json!({"path": "README.md", "offset": 2, "limit": 1}),
    );
    assert_eq!(out["content"], "line two\n");
    assert_eq!(out["total_lines"], 3);
    let out = r.ok(
        "Write",
        serde_json::json!({"path": "src/new/file.txt", "content": "one\ntwo\n"}),
    );
    assert_eq!(out["created"], true);
    assert_eq!(
        std::fs::read_to_string(r.ws.join("src/new/file.txt")).unwrap(),
        "one\ntwo\n"
    );
    r.ok(
        "Edit",
        serde_json::json!({"path": "src/new/file.txt", "old": "two", "new": "2"}),
    );
    assert_eq!(
        std::fs::read_to_string(r.ws.join("src/new/file.txt")).unwrap(),
        "one\n2\n"
    );
    // Absent and ambiguous `old` fail clearly and change nothing.
    let e = r.error(
        "Edit",
        serde_json::json!({"path": "src/new/file.txt", "old": "zzz", "new": "y"}),
    );
    assert!(e.contains("does not occur"), "{e}");
    std::fs::write(r.ws.join("dup.txt"), "a a a").unwrap();
    let e = r.error(
        "Edit",
        serde_json::json!({"path": "dup.txt", "old": "a", "new": "b"}),
    );
    assert!(e.contains("occurs 3 times"), "{e}");
    assert_eq!(
        std::fs::read_to_string(r.ws.join("dup.txt")).unwrap(),
        "a a a"
    );
    let out = r.ok(
        "Edit",
        serde_json::json!({"path": "dup.txt", "old": "a", "new": "b", "replace_all": true}),
    );
    assert_eq!(out["replacements"], 3);
    assert_eq!(
        std::fs::read_to_string(r.ws.join("dup.txt")).unwrap(),
        "b b b"
    );
}

/// The operator's masks erase parts of the *record*; the tool still acts on
/// the action that was decided, not on what is left of the record's copy.
#[test]
fn masking_the_recorded_path_does_not_change_what_the_tool_acts_on() {
    let mut s = test_support::settings(Vec::new());
    s.mask.extend(
        [
            "/action/path",
            "/action/path_abs",
            "/action/in_workspace",
            "/action/kind",
        ]
        .map(String::from),
    );
    let r = rig_with(
        Arc::new(PolicyEngine::load(s).unwrap()),
        WasmLimits::default(),
    );
    let o = r.call("Read", serde_json::json!({"path": "README.md", "limit": 1}));
    assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
    assert_eq!(o.output["content"], "# demo\n");
    let rec = &o.decisions[0];
    assert!(rec.action.get("path").is_none(), "{:?}", rec.action);
    assert!(
        rec.erased.contains(&"/action/path".to_string()),
        "{:?}",
        rec.erased
    );
    let o = r.call(
        "Write",
        serde_json::json!({"path": "src/masked.txt", "content": "written\n"}),
    );
    assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
    assert_eq!(
        std::fs::read_to_string(r.ws.join("src/masked.txt")).unwrap(),
        "written\n"
    );
}

#[test]
fn glob_grep_list_and_the_custom_tool() {
    let r = rig();
    let files = r.ok("Glob", serde_json::json!({"pattern": "**/*.rs"}))["files"].clone();
    assert_eq!(
        files,
        serde_json::json!(["src/main.rs", "src/nested/lib.rs"])
    );
    let m = r.ok(
        "Grep",
        serde_json::json!({"pattern": "fn \\w+", "glob": "*.rs"}),
    );
    let hits: Vec<(String, u64)> = m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["path"].as_str().unwrap().to_string(),
                h["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hits,
        vec![("src/main.rs".into(), 1), ("src/nested/lib.rs".into(), 1)]
    );
    // .gitignore is honoured like ripgrep: ignored.log is not searched.
    let m = r.ok("Grep", serde_json::json!({"pattern": "ignored"}));
    assert_eq!(m["matches"], serde_json::json!([]));
    let l = r.ok("List", serde_json::json!({"path": "src"}));
    let names: Vec<&str> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["src/main.rs", "src/nested"]);
    let wc = r.ok("WordCount", serde_json::json!({"path": "README.md"}));
    assert_eq!(
        (wc["lines"].as_u64(), wc["words"].as_u64()),
        (Some(3), Some(6))
    );
}

// ---- policy ----

#[test]
fn protected_and_outside_paths_are_denied_with_records() {
    let r = rig();
    let o = r.call("Read", serde_json::json!({"path": ".env"}));
    assert_eq!(o.status, CallStatus::Denied, "{}", o.output);
    assert_eq!(o.decisions.len(), 1);
    assert!(o.decisions[0].reasons[0].contains("hidden path"));
    let o = r.call(
        "Write",
        serde_json::json!({"path": "../outside.txt", "content": "x"}),
    );
    assert_eq!(o.status, CallStatus::Denied);
    assert!(o.decisions[0].reasons[0].contains("outside the workspace"));
    assert!(!r.ws.parent().unwrap().join("outside.txt").exists());
    let o = r.call(
        "Write",
        serde_json::json!({"path": "/etc/runner-test", "content": "x"}),
    );
    assert_eq!(o.status, CallStatus::Denied);
    let o = r.call(
        "Edit",
        serde_json::json!({"path": ".git/config", "old": "[core]", "new": "[x]"}),
    );
    assert_eq!(o.status, CallStatus::Denied);
    assert_eq!(
        std::fs::read_to_string(r.ws.join(".git/config")).unwrap(),
        "[core]\n"
    );
    // Every decision reached the activity sink.
    assert_eq!(r.sink.take().len(), 4);
}

#[test]
fn glob_grep_list_never_return_hidden_files() {
    let r = rig();
    for (tool, input) in [
        ("Glob", serde_json::json!({"pattern": "**/*"})),
        ("Grep", serde_json::json!({"pattern": "secret-value"})),
        ("List", serde_json::json!({"depth": 5})),
    ] {
        let out = r.ok(tool, input);
        let text = out.to_string();
        for secret in [".env", "id_rsa", "server.pem", "secret-value"] {
            assert!(!text.contains(secret), "{tool} returned {secret}: {text}");
        }
    }
    // Grep with hidden files explicitly included by glob still finds nothing.
    let out = r.ok(
        "Grep",
        serde_json::json!({"pattern": "secret", "glob": "*.pem"}),
    );
    assert_eq!(out["matches"], serde_json::json!([]));
}

#[test]
fn a_manifest_asking_for_more_than_the_policy_grants_is_refused() {
    let r = rig();
    assert!(r.registry.get("MisbehaveRW").is_none());
    let p = r.registry.problems().join("\n");
    assert!(
        p.contains("MisbehaveRW asks for fs.write but the policy grants it only [fs.read]"),
        "{p}"
    );
    // A policy granting it makes it load.
    let dir = test_support::shipped_policy_copy();
    test_support::write_policy_files(
        dir.path(),
        &[("grants.rego", "package runner\n\nimport rego.v1\n\ntool_grants[\"MisbehaveRW\"] := [\"fs.read\", \"fs.write\"]\n")],
    );
    let engine = Arc::new(
        PolicyEngine::load(test_support::settings(vec![dir.path().to_path_buf()])).unwrap(),
    );
    let r = rig_with(engine, WasmLimits::default());
    assert!(
        r.registry.get("MisbehaveRW").is_some(),
        "{:?}",
        r.registry.problems()
    );
    let out = r.ok(
        "MisbehaveRW",
        serde_json::json!({"mode": "write", "target": "w.txt", "path": "/workspace/w.txt"}),
    );
    assert_eq!(out["wrote"], "/workspace/w.txt");
    assert_eq!(
        std::fs::read_to_string(r.ws.join("w.txt")).unwrap(),
        "written by a guest"
    );
}

// ---- schema ----

#[test]
fn inputs_that_break_the_schema_are_refused_before_any_decision() {
    let r = rig();
    for (tool, input, expect) in [
        ("Read", serde_json::json!({}), "required"),
        ("Read", serde_json::json!({"path": 7}), "not of type"),
        (
            "Read",
            serde_json::json!({"path": "README.md", "extra": 1}),
            "Additional properties",
        ),
        ("Write", serde_json::json!({"path": "x"}), "required"),
        (
            "Grep",
            serde_json::json!({"pattern": "x", "max_results": 0}),
            "minimum",
        ),
        (
            "WordCount",
            serde_json::json!({"path": "a", "nope": true}),
            "Additional properties",
        ),
    ] {
        let o = r.call(tool, input.clone());
        assert_eq!(o.status, CallStatus::Error, "{tool} {input}");
        assert!(o.decisions.is_empty(), "{tool} {input} was decided");
        let e = o.output["error"].as_str().unwrap();
        assert!(e.contains(expect), "{tool} {input}: {e}");
    }
    assert_eq!(r.sink.take().len(), 0, "nothing was decided");
    assert!(!r.ws.join("x").exists());
}

// ---- containment ----

#[test]
fn paths_cannot_leave_the_workspace() {
    let r = rig();
    let outside = r.ws.parent().unwrap().join("outside-secret.txt");
    std::fs::write(&outside, "outside").unwrap();
    std::os::unix::fs::symlink(&outside, r.ws.join("link")).unwrap();
    // `..`, absolute and symlinked paths: the policy decides on the
    // normalised path and denies.
    for p in [
        "../outside-secret.txt",
        "src/../../outside-secret.txt",
        outside.to_str().unwrap(),
        "link",
    ] {
        let o = r.call("Read", serde_json::json!({"path": p}));
        assert_eq!(o.status, CallStatus::Denied, "{p}: {}", o.output);
    }
    // A guest that tries anyway (its decision was on `.`) is stopped by WASI.
    for p in [
        "/workspace/../outside-secret.txt",
        "/workspace/link",
        "/etc/passwd",
        outside.to_str().unwrap(),
    ] {
        let e = r.error("Misbehave", serde_json::json!({"mode": "read", "path": p}));
        assert!(e.contains("failed (exit code 1)"), "{p}: {e}");
    }
}

#[test]
fn grep_skips_binary_files_as_ripgrep_does() {
    let r = rig();
    std::fs::create_dir_all(r.ws.join("bin")).unwrap();
    // The match comes before the NUL byte: still a binary file.
    std::fs::write(
        r.ws.join("bin/blob.dat"),
        b"needle here\n\0\x01\x02 needle\n",
    )
    .unwrap();
    std::fs::write(r.ws.join("bin/text.txt"), "no match\nneedle in text\n").unwrap();
    let out = r.ok(
        "Grep",
        serde_json::json!({"pattern": "needle", "path": "bin"}),
    );
    let m = out["matches"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{out}");
    assert_eq!(m[0]["path"], "bin/text.txt");
    assert_eq!(m[0]["line"], 2);
    assert_eq!(out["files_searched"], 2);
}

#[test]
fn a_stack_limit_beyond_the_calling_thread_is_refused() {
    let e = WasmSandbox::new(
        WasmLimits {
            stack_kib: 4096,
            ..WasmLimits::default()
        },
        None,
    )
    .err()
    .expect("refused");
    assert!(
        e.to_string().contains("stack_kib is 4096: at most 1024"),
        "{e}"
    );
}

#[test]
fn directory_listings_are_whole_and_typed() {
    // A directory far bigger than a guest's read buffer (4 KiB in
    // wasi-libc), so listings continue from cookies and cut entries
    // mid-name, with every kind of entry a workspace has.
    let r = rig();
    let big = r.ws.join("big");
    std::fs::create_dir_all(big.join("sub")).unwrap();
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..400 {
        let name = format!("file-with-a-rather-long-name-{i:04}.txt");
        std::fs::write(big.join(&name), "x".repeat(i)).unwrap();
        expect.insert(format!("big/{name}"), ("file", Some(i as u64)));
    }
    std::os::unix::fs::symlink("sub", big.join("link-to-sub")).unwrap();
    std::fs::write(big.join("sub/inner.txt"), "inner").unwrap();
    expect.insert("big/link-to-sub".into(), ("symlink", None));
    expect.insert("big/sub".into(), ("dir", None));
    expect.insert("big/sub/inner.txt".into(), ("file", Some(5)));
    let answered = WasmSandbox::listings_answered();
    let out = r.ok("List", serde_json::json!({"path": "big", "depth": 2}));
    assert!(
        WasmSandbox::listings_answered() > answered,
        "the listing came from wasmtime, not from the runner's own"
    );
    let got: std::collections::BTreeMap<String, (&str, Option<u64>)> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let kind = match e["type"].as_str().unwrap() {
                "file" => "file",
                "dir" => "dir",
                "symlink" => "symlink",
                other => panic!("unexpected type {other}"),
            };
            (
                e["path"].as_str().unwrap().to_string(),
                (kind, e["size"].as_u64()),
            )
        })
        .collect();
    assert_eq!(
        out["entries"].as_array().unwrap().len(),
        got.len(),
        "no duplicates"
    );
    let wrong: Vec<_> = expect
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: expected {v:?}, got {:?}", got.get(k)))
        .chain(
            got.keys()
                .filter(|k| !expect.contains_key(*k))
                .map(|k| format!("{k}: unexpected")),
        )
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Each entry's d_ino is the inode the guest's stat reports.
    let out = r.ok(
        "Misbehave",
        serde_json::json!({"mode": "inodes", "path": "/workspace/big"}),
    );
    assert_eq!(out["entries"], 402, "{out}");
    let mismatched = out["mismatched"].as_array().unwrap();
    assert!(
        mismatched.is_empty(),
        "{} entries' d_ino differ from their stat, e.g. {}",
        mismatched.len(),
        mismatched[0]
    );
    // A socket in a directory is typed unknown; a search walks past it.
    std::fs::create_dir_all(r.ws.join("sockdir")).unwrap();
    std::fs::write(r.ws.join("sockdir/a.txt"), "inner\n").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(r.ws.join("sockdir/s.sock")).unwrap();
    let out = r.ok(
        "Grep",
        serde_json::json!({"pattern": "inner", "path": "sockdir"}),
    );
    assert_eq!(out["files_searched"], 1, "{out}");
    // Grep walks the same listings: every file searched once.
    let out = r.ok(
        "Grep",
        serde_json::json!({"pattern": "inner", "path": "big"}),
    );
    assert_eq!(out["files_searched"], 401, "{out}");
}

/// Runs `f` on its own thread and fails the test if it has not returned
/// in `secs` (a guest stuck in the host would otherwise hang the suite).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("the call did not come back: a guest blocked in a host call")
}

#[test]
fn a_guest_cannot_block_in_the_host_past_its_time_limit() {
    let limits = WasmLimits {
        timeout_ms: 500,
        ..WasmLimits::default()
    };
    let r = Arc::new(rig_with(test_support::default_engine(), limits));
    // A FIFO (the shell sandbox cannot make one; an operator's directory
    // might hold one): opening it would block until a writer comes.
    std::fs::create_dir_all(r.ws.join("sub")).unwrap();
    let fifo = std::ffi::CString::new(r.ws.join("sub/pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("sub/pipe", r.ws.join("pipe-link")).unwrap();
    let rr = r.clone();
    within(20, move || {
        // Sleeping past the limit stops at once as a timeout; a short
        // sleep is served.
        let e = rr.error(
            "Misbehave",
            serde_json::json!({"mode": "sleep", "ms": 600_000}),
        );
        assert!(e.contains("time limit of 500 ms"), "{e}");
        let out = rr.ok("Misbehave", serde_json::json!({"mode": "sleep", "ms": 20}));
        assert_eq!(out["slept_ms"], 20);
        // Opening the FIFO (it waits for a writer that never comes),
        // directly, through a symlink or from a guest of its own: the
        // blocked open is interrupted at the deadline and the call ends as
        // a timeout.
        for p in ["sub/pipe", "pipe-link"] {
            let e = rr.error("Read", serde_json::json!({"path": p}));
            assert!(e.contains("time limit of 500 ms"), "{p}: {e}");
        }
        let e = rr.error(
            "Misbehave",
            serde_json::json!({"mode": "read", "path": "/workspace/sub/pipe"}),
        );
        assert!(e.contains("time limit of 500 ms"), "{e}");
        // The thread that was interrupted serves the next call normally.
        assert_eq!(
            rr.ok("Misbehave", serde_json::json!({"mode": "echo"}))["ok"],
            true
        );
        // Searching past it is fine: Grep only opens regular files.
        let out = rr.ok("Grep", serde_json::json!({"pattern": "println"}));
        assert_eq!(out["matches"].as_array().unwrap().len(), 1, "{out}");
    });
}

#[test]
fn a_read_only_grant_cannot_write() {
    let r = rig();
    let e = r.error(
        "Misbehave",
        serde_json::json!({"mode": "write", "path": "/workspace/README.md"}),
    );
    assert!(e.contains("write /workspace/README.md"), "{e}");
    assert_eq!(
        std::fs::read_to_string(r.ws.join("README.md")).unwrap(),
        "# demo\nline two\nline three\n"
    );
}

#[test]
fn misbehaving_guests_fail_cleanly_and_the_runner_keeps_serving() {
    let limits = WasmLimits {
        memory_mib: 64,
        timeout_ms: 500,
        max_output_bytes: 64 * 1024,
        max_input_bytes: 1 << 20,
        ..WasmLimits::default()
    };
    let r = rig_with(test_support::default_engine(), limits);
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"mode": "loop"}), "time limit of 500 ms"),
        (
            serde_json::json!({"mode": "alloc"}),
            "memory limit of 64 MiB",
        ),
        (
            serde_json::json!({"mode": "recurse"}),
            "overflowed its stack",
        ),
        (
            serde_json::json!({"mode": "recurse_frames"}),
            "out of bounds memory access",
        ),
        (
            serde_json::json!({"mode": "flood"}),
            "output exceeded the limit",
        ),
        (
            serde_json::json!({"mode": "stdin", "padding": "x".repeat(2 << 20)}),
            "more than the guest input limit",
        ),
        (serde_json::json!({"mode": "trap"}), "trapped"),
        (serde_json::json!({"mode": "exit"}), "exit code 7"),
        (
            serde_json::json!({"mode": "not_json"}),
            "did not print one JSON object",
        ),
        (
            serde_json::json!({"mode": "two_json"}),
            "did not print one JSON object",
        ),
        (serde_json::json!({"mode": "net"}), "connect"),
    ];
    for (input, expect) in cases {
        let e = r.error("Misbehave", input.clone());
        assert!(
            e.contains(expect),
            "{}: expected {expect:?} in {e}",
            input["mode"]
        );
        // The next call is served normally.
        assert_eq!(
            r.ok("Misbehave", serde_json::json!({"mode": "echo"}))["ok"],
            true
        );
    }
    // A big input under the limit is fine.
    let out = r.ok(
        "Misbehave",
        serde_json::json!({"mode": "stdin", "padding": "x".repeat(512 << 10)}),
    );
    assert_eq!(out["ok"], "read");
    // Nothing inherited: only the variable the runner sets, no arguments.
    let out = r.ok("Misbehave", serde_json::json!({"mode": "env"}));
    assert_eq!(out["env"], serde_json::json!(["RUNNER_HIDDEN_PATHS"]));
    assert!(out["args"].as_array().unwrap().len() <= 1);
}

#[test]
fn compiled_modules_come_from_the_private_disk_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let wasm = std::fs::read(guests("guest-tools-testing").join("Misbehave/tool.wasm")).unwrap();
    let a = WasmSandbox::new(WasmLimits::default(), Some(cache.clone())).unwrap();
    assert!(!a.load(&wasm).unwrap().from_cache);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let b = WasmSandbox::new(WasmLimits::default(), Some(cache.clone())).unwrap();
    assert!(b.load(&wasm).unwrap().from_cache);
    // A cache file someone else could have written is never deserialized.
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let c = WasmSandbox::new(WasmLimits::default(), Some(cache.clone())).unwrap();
    assert!(!c.load(&wasm).unwrap().from_cache);
    // Garbage under the right name is recompiled, not run.
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        std::fs::write(&f, b"not a module").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let d = WasmSandbox::new(WasmLimits::default(), Some(cache)).unwrap();
    let m = d.load(&wasm).unwrap();
    assert!(!m.from_cache);
}

// ---- the decided object is the acted object ----

/// `Write {"path": ".git/d/../config"}` with `.git/d` a symlink to `zz/yy`:
/// the kernel (and the policy) resolve it to `zz/config`, and that is the
/// file written — `.git/config` is untouched.
#[test]
fn a_write_lands_on_the_path_that_was_decided_not_a_textual_fold() {
    let r = rig();
    std::fs::create_dir_all(r.ws.join("zz/yy")).unwrap();
    std::os::unix::fs::symlink("../zz/yy", r.ws.join(".git/d")).unwrap();
    let o = r.call(
        "Write",
        serde_json::json!({"path": ".git/d/../config", "content": "decided"}),
    );
    assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
    assert_eq!(o.decisions[0].action["path"], "zz/config");
    assert_eq!(
        std::fs::read_to_string(r.ws.join("zz/config")).unwrap(),
        "decided"
    );
    assert_eq!(
        std::fs::read_to_string(r.ws.join(".git/config")).unwrap(),
        "[core]\n"
    );
}

/// An absolute path inside the workspace is decided as its workspace-relative
/// form, and that file is the one read (not `/workspace/<absolute path>`).
#[test]
fn an_absolute_path_inside_the_workspace_reads_the_decided_file() {
    let r = rig();
    let abs = r.ws.join("README.md");
    let out = r.ok("Read", serde_json::json!({"path": abs.to_str().unwrap()}));
    assert_eq!(out["content"], "# demo\nline two\nline three\n");
    let o = r.call(
        "List",
        serde_json::json!({"path": r.ws.join("src").to_str().unwrap()}),
    );
    assert_eq!(o.status, CallStatus::Ok, "{}", o.output);
    assert_eq!(o.decisions[0].action["path"], "src");
}

/// `ln .env x; Read x`: the content is the hidden file's, whatever the name.
#[test]
fn a_hard_link_of_a_hidden_file_is_refused_by_the_file_tools() {
    let r = rig();
    std::fs::hard_link(r.ws.join(".env"), r.ws.join("innocent.txt")).unwrap();
    std::fs::hard_link(r.ws.join(".ssh/id_rsa"), r.ws.join("src/key.txt")).unwrap();
    for p in ["innocent.txt", "src/key.txt"] {
        let e = r.error("Read", serde_json::json!({"path": p}));
        assert!(e.contains("hard link of a hidden file"), "{p}: {e}");
        let e = r.error(
            "Edit",
            serde_json::json!({"path": p, "old": "secret", "new": "x"}),
        );
        assert!(e.contains("hard link of a hidden file"), "{p}: {e}");
    }
    let out = r.ok("Grep", serde_json::json!({"pattern": "secret-value"}));
    assert!(!out.to_string().contains("innocent.txt"), "{out}");
    assert!(!out.to_string().contains("key.txt"), "{out}");
    // A hard link between two ordinary files is an ordinary file.
    std::fs::hard_link(r.ws.join("README.md"), r.ws.join("README.copy")).unwrap();
    let out = r.ok("Read", serde_json::json!({"path": "README.copy"}));
    assert_eq!(out["content"], "# demo\nline two\nline three\n");
    assert_eq!(
        std::fs::read_to_string(r.ws.join(".env")).unwrap(),
        "API_KEY=secret-value\n"
    );
}

/// A small deterministic generator (xorshift64*): the property test's
/// inputs are reproducible from the seed printed on failure.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

fn ino(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Every regular file under `root` (not following symlinks) with its content.
fn files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push((
                    e.path(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

/// For random path strings (`..`, `.`, `//`, absolute, symlinks at random
/// depths pointing in and out of the workspace) over a generated tree: the
/// object each file tool touched (device + inode) is the one its decision
/// named, or the call was refused.
#[test]
fn property_every_file_tool_acts_on_the_object_that_was_decided() {
    for seed in [
        0x9e37_79b9_7f4a_7c15u64,
        0xdead_beef_cafe_f00d,
        0x1234_5678_9abc_def1,
    ] {
        let r = rig();
        let outside = r.ws.parent().unwrap().join("outside");
        std::fs::create_dir_all(outside.join("o1")).unwrap();
        std::fs::write(outside.join("f1"), "outside:f1").unwrap();
        std::fs::write(outside.join("o1/f2"), "outside:f2").unwrap();
        let mut g = Gen(seed);
        let dirs = ["a", "a/b", "a/b/c", "d", "d/e"];
        for d in dirs {
            std::fs::create_dir_all(r.ws.join(d)).unwrap();
        }
        let mut n = 0;
        for d in ["", "a", "a/b", "a/b/c", "d", "d/e"] {
            for f in ["f1", "f2"] {
                n += 1;
                std::fs::write(r.ws.join(d).join(f), format!("id:{n}")).unwrap();
            }
        }
        // Symlinks at random depths, in and out.
        let targets: Vec<String> = vec![
            "../d".into(),
            "b".into(),
            "../../a".into(),
            "f1".into(),
            "e/f2".into(),
            outside.to_str().unwrap().into(),
            outside.join("f1").to_str().unwrap().into(),
            "../../../../..".into(),
            "nonexistent/x".into(),
        ];
        for i in 0..8 {
            let dir = g.pick(&["", "a", "a/b", "d", "d/e"]).to_string();
            let t = g.pick(&targets).clone();
            let _ = std::os::unix::fs::symlink(&t, r.ws.join(&dir).join(format!("l{i}")));
        }
        let parts = [
            ".", "..", "a", "b", "c", "d", "e", "f1", "f2", "l0", "l1", "l2", "l3", "l4", "l5",
            "l6", "l7", "new.txt", "",
        ];
        let ws_abs = r.ws.to_str().unwrap().to_string();
        for step in 0..120 {
            let len = 1 + g.next() % 5;
            let mut comps: Vec<&str> = (0..len).map(|_| *g.pick(&parts)).collect();
            if comps.iter().all(|c| c.is_empty()) {
                comps.push("f1");
            }
            let sep = if g.next().is_multiple_of(6) {
                "//"
            } else {
                "/"
            };
            let mut path = comps.join(sep);
            match g.next() % 5 {
                0 => path = format!("{ws_abs}/{path}"),
                1 => path = format!("/{path}"),
                _ => {}
            }
            if path.is_empty() {
                continue;
            }
            let tool = *g.pick(&["Read", "Write", "Edit", "Glob", "Grep", "List"]);
            let marker = format!("written:{seed:x}:{step}");
            let input = match tool {
                "Read" => serde_json::json!({"path": path}),
                "Write" => serde_json::json!({"path": path, "content": marker}),
                "Edit" => serde_json::json!({"path": path, "old": "id:", "new": marker}),
                "Glob" => serde_json::json!({"path": path, "pattern": "**/*"}),
                "Grep" => serde_json::json!({"path": path, "pattern": "id:"}),
                _ => serde_json::json!({"path": path}),
            };
            let before: Vec<_> = files(&outside);
            let o = r.call(tool, input.clone());
            let why = format!(
                "seed {seed:x} step {step}: {tool} {input} -> {:?} {}",
                o.status, o.output
            );
            assert_eq!(files(&outside), before, "outside changed: {why}");
            if o.status != CallStatus::Ok {
                // Refused or failed: nothing was written anywhere.
                assert!(
                    files(&r.ws).iter().all(|(_, c)| !c.contains(&marker)),
                    "a refused call wrote: {why}"
                );
                continue;
            }
            let decided = PathBuf::from(o.decisions[0].action["path_abs"].as_str().unwrap());
            assert!(decided.starts_with(&r.ws), "allowed outside: {why}");
            match tool {
                "Read" => {
                    let content = o.output["content"].as_str().unwrap().trim_end().to_string();
                    let touched: Vec<_> = files(&r.ws)
                        .into_iter()
                        .filter(|(_, c)| c.trim_end() == content)
                        .map(|(p, _)| ino(&p))
                        .collect();
                    assert!(touched.contains(&ino(&decided)), "read another file: {why}");
                }
                "Write" | "Edit" => {
                    let written: Vec<_> = files(&r.ws)
                        .into_iter()
                        .filter(|(_, c)| c.contains(&marker))
                        .map(|(p, _)| ino(&p))
                        .collect();
                    assert_eq!(written, vec![ino(&decided)], "wrote another file: {why}");
                }
                _ => {
                    // Listing and searching: every result lies beneath the
                    // decided directory.
                    let rel = o.decisions[0].action["path"].as_str().unwrap().to_string();
                    for v in o.output.as_object().unwrap().values() {
                        for item in v.as_array().into_iter().flatten() {
                            let p = item
                                .as_str()
                                .or_else(|| item.get("path").and_then(|p| p.as_str()))
                                .unwrap_or_default();
                            if p.is_empty() || rel == "." {
                                continue;
                            }
                            assert!(
                                Path::new(p).starts_with(&rel) || p == rel,
                                "{p} is not beneath the decided {rel}: {why}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A repository layout assembled one file-tool write at a time (config
/// first, then HEAD, objects/, refs/) is caught after the write that
/// completes it: its config does not survive.
#[test]
fn file_tools_cannot_assemble_a_repository_with_a_config() {
    let r = rig();
    let mut reports = String::new();
    for (path, content) in [
        ("src/config", "[core]\n\tpager = touch /tmp/pwned\n"),
        ("src/HEAD", "ref: refs/heads/main\n"),
        ("src/objects/info/alternates", ""),
        ("src/refs/heads/keep", ""),
    ] {
        let out = r.ok(
            "Write",
            serde_json::json!({"path": path, "content": content}),
        );
        reports.push_str(&out["removed_protected"].to_string());
    }
    // The write that made `src` a repository (its HEAD) took the config.
    assert!(!r.ws.join("src/config").exists(), "{reports}");
    assert!(reports.contains("src/config"), "{reports}");
    // Once it is a repository, writing its config is denied outright.
    let o = r.call(
        "Write",
        serde_json::json!({"path": "src/config", "content": "x"}),
    );
    assert_eq!(o.status, CallStatus::Denied, "{}", o.output);
}

// ---- session roots: /skills (read-only) and /data (writable) ----

/// The rig with both session roots beside the workspace, as the worker
/// lays them out: a skill placed read-only, an empty data directory.
fn rooted_rig() -> (Rig, PathBuf, PathBuf) {
    let mut r = rig();
    let base = r.ws.parent().unwrap().to_path_buf();
    let (skills, data) = (base.join("ws.skills"), base.join("ws.data"));
    std::fs::create_dir_all(skills.join("pdf")).unwrap();
    std::fs::write(
        skills.join("pdf/SKILL.md"),
        "---\nname: pdf\n---\nUse pdftotext.\n",
    )
    .unwrap();
    std::fs::set_permissions(
        skills.join("pdf/SKILL.md"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    for p in ["pdf", ""] {
        std::fs::set_permissions(skills.join(p), std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    std::fs::create_dir(&data).unwrap();
    let trusted = Trusted {
        agent: serde_json::json!({"name": "t", "enabled_tools": TOOLS, "grants": {}}),
        ..test_support::trusted()
    };
    r.ctx = SessionContext::new(r.ws.clone(), trusted, SourceWork::default()).with_roots(vec![
        runner::policy::SessionRoot {
            name: "skills",
            at: "/skills".into(),
            host: skills.clone(),
            writable: false,
        },
        runner::policy::SessionRoot {
            name: "artifacts",
            at: "/data".into(),
            host: data.clone(),
            writable: true,
        },
    ]);
    (r, skills, data)
}

#[test]
fn skills_are_readable_and_never_writable_by_file_tools() {
    let (r, skills, _) = rooted_rig();
    let out = r.ok("Read", serde_json::json!({"path": "/skills/pdf/SKILL.md"}));
    assert_eq!(out["content"], "---\nname: pdf\n---\nUse pdftotext.\n");
    let files = r.ok(
        "Glob",
        serde_json::json!({"path": "/skills", "pattern": "**/*.md"}),
    )["files"]
        .clone();
    assert_eq!(files, serde_json::json!(["/skills/pdf/SKILL.md"]));
    for (tool, input) in [
        (
            "Write",
            serde_json::json!({"path": "/skills/pdf/SKILL.md", "content": "pwned"}),
        ),
        (
            "Write",
            serde_json::json!({"path": "/skills/pdf/new.md", "content": "pwned"}),
        ),
        (
            "Edit",
            serde_json::json!({"path": "/skills/pdf/SKILL.md", "old": "Use", "new": "Ignore"}),
        ),
    ] {
        let o = r.call(tool, input);
        assert_eq!(o.status, CallStatus::Denied, "{tool}: {}", o.output);
        assert!(
            o.output.to_string().contains("skills are read-only"),
            "{}",
            o.output
        );
    }
    assert_eq!(
        std::fs::read_to_string(skills.join("pdf/SKILL.md")).unwrap(),
        "---\nname: pdf\n---\nUse pdftotext.\n"
    );
    assert!(!skills.join("pdf/new.md").exists());
}

#[test]
fn data_is_writable_and_its_escapes_are_denied() {
    let (r, _, data) = rooted_rig();
    let out = r.ok(
        "Write",
        serde_json::json!({"path": "/data/out/r.md", "content": "# report\n"}),
    );
    assert_eq!(out["created"], true);
    assert_eq!(
        std::fs::read_to_string(data.join("out/r.md")).unwrap(),
        "# report\n"
    );
    r.ok(
        "Edit",
        serde_json::json!({"path": "/data/out/r.md", "old": "report", "new": "Report"}),
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out/r.md")).unwrap(),
        "# Report\n"
    );
    let l = r.ok("List", serde_json::json!({"path": "/data"}));
    assert_eq!(l["entries"][0]["path"], "/data/out");
    // A symlink in /data to a file outside, and `..` out of it: denied,
    // nothing read or written.
    std::os::unix::fs::symlink("/etc/passwd", data.join("pw")).unwrap();
    std::os::unix::fs::symlink("../ws/.env", data.join("env")).unwrap();
    for (tool, input) in [
        ("Read", serde_json::json!({"path": "/data/pw"})),
        ("Read", serde_json::json!({"path": "/data/env"})),
        ("Read", serde_json::json!({"path": "/data/../ws/README.md"})),
        (
            "Write",
            serde_json::json!({"path": "/data/pw", "content": "x"}),
        ),
        (
            "Write",
            serde_json::json!({"path": "/data/../ws.skills/pdf/SKILL.md", "content": "x"}),
        ),
    ] {
        let o = r.call(tool, input.clone());
        assert_eq!(o.status, CallStatus::Denied, "{tool} {input}: {}", o.output);
        assert!(!o.output.to_string().contains("root:"), "{}", o.output);
        assert!(
            !o.output.to_string().contains("secret-value"),
            "{}",
            o.output
        );
    }
    // A hard link into /data (a file under a second name) is refused.
    std::fs::hard_link(r.ws.join("README.md"), data.join("hl")).unwrap();
    let e = r.error("Read", serde_json::json!({"path": "/data/hl"}));
    assert!(e.contains("more than one link"), "{e}");
}

#[test]
fn without_the_roots_data_and_skills_are_outside_the_workspace() {
    let r = rig();
    for (tool, input) in [
        ("Read", serde_json::json!({"path": "/skills/pdf/SKILL.md"})),
        (
            "Write",
            serde_json::json!({"path": "/data/r.md", "content": "x"}),
        ),
    ] {
        let o = r.call(tool, input);
        assert_eq!(o.status, CallStatus::Denied, "{tool}: {}", o.output);
        assert!(
            o.output.to_string().contains("outside the workspace"),
            "{}",
            o.output
        );
    }
}
