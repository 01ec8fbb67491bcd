//! Process sandbox benchmark: prints its figures.
//!
//! Spawn-to-exit of `bash -c /bin/true`, side by side in one run:
//! - a plain `std::process::Command` (no isolation);
//! - bubblewrap with comparable flags (all namespaces, read-only system
//!   roots, the workspace bound writable, fresh /proc, minimal /dev, private
//!   /tmp, new session, die-with-parent) — skipped when `bwrap` is absent;
//! - the runner's sandbox (namespaces + Landlock + seccomp + rlimits +
//!   capability drop + mounts), through `ProcessSandbox::run`.
//!
//! Run: `cargo bench -p runner --bench sandbox_spawn`.

use runner::sandbox::process::{sandbox_ids, Limits, ProcessSandbox, SandboxSpec};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn percentiles(mut v: Vec<u64>) -> (f64, f64, f64) {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e6;
    (p(0.5), p(0.9), p(0.99))
}

fn time<F: FnMut()>(n: usize, mut f: F) -> Vec<u64> {
    for _ in 0..5 {
        f();
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("sandbox_spawn: bench");
        return;
    }
    let n = 200;
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(&ws).unwrap();

    let plain = time(n, || {
        let s = Command::new("/bin/bash")
            .args(["-c", "/bin/true"])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success());
    });

    let bwrap = which("bwrap").map(|bwrap| {
        time(n, || {
            let s = Command::new(&bwrap)
                .args([
                    "--unshare-all",
                    "--die-with-parent",
                    "--new-session",
                    "--cap-drop",
                    "ALL",
                ])
                .args(["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"])
                .args([
                    "--symlink",
                    "usr/bin",
                    "/bin",
                    "--symlink",
                    "usr/lib",
                    "/lib",
                    "--symlink",
                    "usr/lib64",
                    "/lib64",
                    "--symlink",
                    "usr/sbin",
                    "/sbin",
                ])
                .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
                .arg("--bind")
                .arg(&ws)
                .arg(&ws)
                .arg("--chdir")
                .arg(&ws)
                .args(["/bin/bash", "-c", "/bin/true"])
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
        })
    });

    let (uid, gid) = sandbox_ids(65534, 65534);
    let spec = SandboxSpec::system_default("/bin/true", ws.clone(), uid, gid, Limits::default());
    let sandbox = ProcessSandbox::new(PathBuf::from(env!("CARGO_BIN_EXE_runner-sandbox")));
    let ours = time(n, || {
        let out = sandbox.run(&spec, Duration::from_secs(10)).unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
    });

    println!("spawn-to-exit of `bash -c /bin/true`, n={n} each, ms:");
    let show = |label: &str, v: Vec<u64>| {
        let (p50, p90, p99) = percentiles(v);
        println!("  {label:<44} p50 {p50:>6.2}   p90 {p90:>6.2}   p99 {p99:>6.2}");
        p50
    };
    let base = show("plain std::process::Command", plain);
    let bw = bwrap.map(|v| show("bwrap (comparable flags)", v));
    let us = show("runner sandbox (ns + landlock + seccomp + ...)", ours);
    println!(
        "  overhead over plain: runner {:.2} ms{}",
        us - base,
        bw.map(|b| format!(", bwrap {:.2} ms", b - base))
            .unwrap_or_default()
    );

    repo_workspace(&sandbox, uid, gid);
    proxy_latency(&ws);
}

/// The same spawn in a workspace shaped like a real checkout — a git
/// repository of 2,000 files in 200 directories, hooks and config, one
/// `.env` — so the per-command git-state scan and restore, the hidden-path
/// masking and the size check are in the figure.
fn repo_workspace(sandbox: &ProcessSandbox, uid: u32, gid: u32) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    for d in 0..200 {
        let sub = ws.join(format!("src/m{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..10 {
            std::fs::write(sub.join(format!("f{f}.rs")), "fn main() {}\n").unwrap();
        }
    }
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    std::fs::create_dir_all(ws.join(".git/objects")).unwrap();
    std::fs::create_dir_all(ws.join(".git/refs/heads")).unwrap();
    std::fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(ws.join(".git/hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
    std::fs::write(ws.join(".env"), "KEY=1\n").unwrap();
    let spec = SandboxSpec::system_default("/bin/true", ws.clone(), uid, gid, Limits::default())
        .protecting(
            vec![".git/hooks".into(), ".git/config".into()],
            vec!["**/.env".into(), "**/*.pem".into()],
        );
    let ours = time(100, || {
        let out = sandbox.run(&spec, Duration::from_secs(10)).unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
    });
    let (p50, p90, p99) = percentiles(ours);
    println!(
        "  runner sandbox, 2,000-file git checkout      p50 {p50:>6.2}   p90 {p90:>6.2}   p99 {p99:>6.2}"
    );
}

/// Added latency per connection of the policy-checked proxy on loopback:
/// a GET straight to a local server vs the same GET through the proxy's
/// socket (parse, resolve, decide with the default policy, record, connect,
/// relay).
fn proxy_latency(ws: &std::path::Path) {
    use runner::activity::NullSink;
    use runner::policy::{EngineSettings, PolicyEngine, PolicyGate, SessionContext, Trusted};
    use std::io::{Read, Write};
    use std::sync::Arc;

    let server = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in server.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = c.read(&mut buf);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    let engine = Arc::new(
        PolicyEngine::load(EngineSettings {
            dirs: vec![],
            entrypoint: "data.runner.decision".into(),
            eval_timeout: Duration::from_millis(50),
            mask: vec![],
            run_tests: false,
            workspaces: vec![],
        })
        .unwrap(),
    );
    let gate = PolicyGate::builder(engine, Arc::new(NullSink)).without_audit();
    let trusted = Trusted {
        agent: serde_json::json!({"enabled_tools": ["Bash"], "grants": {}}),
        worker: serde_json::json!({"network": {"allow_hosts": ["127.0.0.2"], "allow_cidrs": ["127.0.0.2/32"]}}),
        platform: serde_json::json!({}),
    };
    let ctx = SessionContext::new(ws.to_path_buf(), trusted, Default::default());
    let proxy = runner::sandbox::process::proxy::NetProxy::bind(&std::env::temp_dir()).unwrap();
    let n = 500;
    fn fetch<S: Read + Write>(mut s: S, req: &str) {
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.ends_with("ok"), "{out}");
    }
    std::thread::scope(|scope| {
        let decider = runner::tools::PolicyConnect {
            gate: &gate,
            ctx: &ctx,
        };
        let proxy = &proxy;
        scope.spawn(move || proxy.serve(&decider));
        let direct = time(n, || {
            let s = std::net::TcpStream::connect(("127.0.0.2", port)).unwrap();
            fetch(
                s,
                "GET / HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: close\r\n\r\n",
            );
        });
        let proxied = time(n, || {
            let s = std::os::unix::net::UnixStream::connect(proxy.socket()).unwrap();
            fetch(
                s,
                &format!("GET http://127.0.0.2:{port}/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n"),
            );
        });
        proxy.stop();
        let (d50, _, d99) = percentiles(direct);
        let (p50, _, p99) = percentiles(proxied);
        println!(
            "HTTP GET on loopback, n={n}, ms: direct p50 {d50:.3} p99 {d99:.3}; through the proxy p50 {p50:.3} p99 {p99:.3}; added per connection p50 {:.3} ms",
            p50 - d50
        );
    });
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}
