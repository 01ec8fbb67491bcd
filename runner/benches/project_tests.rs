//! A real project's test suite inside the process sandbox vs on the host:
//! prints its figures.
//!
//! The project is SymPy (pure Python, with mpmath, its one dependency),
//! copied into a workspace; the suite is SymPy's own test runner
//! (`sympy.testing.runtests`, no pytest needed) over `sympy/logic` and
//! `sympy/sets` by default, run by the system's `/usr/bin/python3`. The same
//! command line runs N times on the host (a plain `bash -c` in its own copy,
//! with the environment the sandbox gives) and N times through
//! `ProcessSandbox::run` (namespaces, fresh root, Landlock, seccomp,
//! rlimits, the workspace scans before and after), interleaved so a slow
//! moment of this shared VM hits both. One warm-up run each first writes
//! the `__pycache__`s, so every timed run starts with compiled bytecode.
//! Besides wall clock it prints the children's CPU time (user, system) and,
//! for the sandbox, the command's own time without the runner's workspace
//! scans, to tell where a difference comes from.
//!
//! Run: `cargo bench -p runner --bench project_tests`. Finds SymPy in a
//! site-packages directory (`PROJECT_TESTS_SITE=DIR` names one holding
//! `sympy/` and `mpmath/`); `PROJECT_TESTS_RUNS=N` (default 5),
//! `PROJECT_TESTS_PATHS="sympy/logic sympy/sets"`,
//! `PROJECT_TESTS_PYTHON=/usr/bin/python3`; `PROJECT_TESTS_COMMAND=CMD`
//! times another command line in the same two workspaces instead (run from
//! the workspace, e.g. `python3 -m compileall -q -f sympy mpmath` for one
//! that is mostly file system work).

mod common;
use common::median;
use runner::sandbox::process::{sandbox_ids, Limits, ProcessSandbox, SandboxSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("project_tests: bench");
        return;
    }
    let Some(site) = find_site() else {
        println!(
            "project_tests: skipped: no site-packages directory with sympy/ and mpmath/ found; \
             install them (`pip install sympy==1.14.0`) or set PROJECT_TESTS_SITE=DIR"
        );
        return;
    };
    let runs: usize = env_or("PROJECT_TESTS_RUNS", "5").parse().unwrap();
    let paths = env_or("PROJECT_TESTS_PATHS", "sympy/logic sympy/sets");
    let python = env_or("PROJECT_TESTS_PYTHON", "/usr/bin/python3");
    let args = paths
        .split_whitespace()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "import sys; from sympy.testing.runtests import test; \
         sys.exit(not test({args}, seed=1, colors=False))"
    );
    let command = std::env::var("PROJECT_TESTS_COMMAND")
        .unwrap_or_else(|_| format!("{python} -c '{script}'"));

    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let host_ws = dir.join("host");
    let box_ws = dir.join("sandbox");
    let mut files = 0;
    for ws in [&host_ws, &box_ws] {
        files = 0;
        for pkg in ["sympy", "mpmath"] {
            files += copy_tree(&site.join(pkg), &ws.join(pkg));
        }
    }
    println!(
        "project: SymPy + mpmath from {} ({files} files copied per workspace)\ncommand: {command}",
        site.display()
    );

    // The environment the sandbox gives, for the host run too.
    let env = |ws: &Path| {
        vec![
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
            ("HOME", ws.display().to_string()),
            ("TMPDIR", "/tmp".into()),
            ("LANG", "C.UTF-8".into()),
            ("TERM", "dumb".into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            // Fixed: without it SymPy's runner re-executes itself with a
            // random hash seed.
            ("PYTHONHASHSEED", "0".into()),
        ]
    };
    let host = |ws: &Path| -> Run {
        let before = children_cpu();
        let t = Instant::now();
        let out = Command::new("/bin/bash")
            .args(["-c", &command])
            .current_dir(ws)
            .env_clear()
            .envs(env(ws))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let wall = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Run::new(out.status.code() == Some(0), &text, wall, wall, before)
    };

    let (uid, gid) = sandbox_ids(65534, 65534);
    let sandbox = ProcessSandbox::new(PathBuf::from(env!("CARGO_BIN_EXE_runner-sandbox")));
    let spec = SandboxSpec::system_default(&command, box_ws.clone(), uid, gid, Limits::default())
        .with_env(
            env(&box_ws)
                .into_iter()
                .filter(|(k, _)| *k == "PYTHONHASHSEED")
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
    let boxed = |_: &Path| -> Run {
        let before = children_cpu();
        let t = Instant::now();
        let out = sandbox.run(&spec, Duration::from_secs(600)).unwrap();
        let wall = t.elapsed().as_secs_f64();
        let ok = out.exit_code == 0;
        if !ok {
            eprintln!("sandboxed run failed: {out:?}");
        }
        Run::new(ok, &out.stdout, wall, out.duration_ms as f64 / 1e3, before)
    };

    let warm_h = host(&host_ws);
    let warm_s = boxed(&box_ws);
    assert!(warm_h.ok && warm_s.ok, "the suite must pass on both sides");
    assert_eq!(
        warm_h.summary, warm_s.summary,
        "the same tests must run on both sides"
    );
    println!("suite result (both sides): {}", warm_h.summary);

    let (mut h, mut s) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate which side goes first.
        if i % 2 == 0 {
            h.push(host(&host_ws));
            s.push(boxed(&box_ws));
        } else {
            s.push(boxed(&box_ws));
            h.push(host(&host_ws));
        }
        let (a, b) = (h.last().unwrap(), s.last().unwrap());
        assert!(a.ok && b.ok, "a run failed");
        println!(
            "  run {}: host {:.2} s, sandbox {:.2} s ({:.2})",
            i + 1,
            a.wall,
            b.wall,
            b.wall / a.wall
        );
    }
    let m = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
    let (hw, sw) = (m(&h, |r| r.wall), m(&s, |r| r.wall));
    println!("test suite, n={runs} each, medians:");
    println!(
        "  host    wall {hw:>7.2} s   cpu user {:>6.2} s  sys {:>5.2} s",
        m(&h, |r| r.user),
        m(&h, |r| r.sys)
    );
    println!(
        "  sandbox wall {sw:>7.2} s   cpu user {:>6.2} s  sys {:>5.2} s   (the command alone {:.2} s; the runner's workspace scans and setup {:.3} s)",
        m(&s, |r| r.user),
        m(&s, |r| r.sys),
        m(&s, |r| r.command),
        m(&s, |r| r.wall - r.command)
    );
    println!("  ratio sandbox / host {:.3} (target <= 1.1)", sw / hw);
}

/// One timed run.
struct Run {
    ok: bool,
    /// SymPy's last line: "tests finished: N passed, …" without the time.
    summary: String,
    wall: f64,
    /// For the sandbox: spawn to exit of the helper, without the scans.
    command: f64,
    user: f64,
    sys: f64,
}

impl Run {
    fn new(ok: bool, stdout: &str, wall: f64, command: f64, before: (f64, f64)) -> Run {
        let after = children_cpu();
        let summary = stdout
            .lines()
            .rev()
            .find_map(|l| {
                let l = l.trim_matches(|c: char| c == '=' || c.is_whitespace());
                l.starts_with("tests finished:").then(|| {
                    let l = l.split(" in ").next().unwrap_or(l);
                    l.trim_end_matches(',').to_string()
                })
            })
            .unwrap_or_else(|| format!("(no test summary line) {}", tail(stdout)));
        Run {
            ok,
            summary,
            wall,
            command,
            user: after.0 - before.0,
            sys: after.1 - before.1,
        }
    }
}

/// The last ~2,000 bytes of `s`, cut at a character boundary.
fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(2000);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// User and system CPU seconds of every waited-for descendant so far.
fn children_cpu() -> (f64, f64) {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct,
    // and getrusage only fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime))
}

/// A site-packages directory holding both `sympy/` and `mpmath/`.
fn find_site() -> Option<PathBuf> {
    let has = |d: &Path| d.join("sympy/testing/runtests.py").is_file() && d.join("mpmath").is_dir();
    if let Ok(d) = std::env::var("PROJECT_TESTS_SITE") {
        return Some(PathBuf::from(d)).filter(|d| has(d));
    }
    let mut candidates: Vec<PathBuf> = vec![
        "/usr/lib/python3/dist-packages".into(),
        "/usr/local/lib/python3/dist-packages".into(),
    ];
    for root in ["/usr/local/lib", "/root/.pyenv/versions"] {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        let mut found: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        found.sort();
        for p in found.into_iter().rev() {
            candidates.push(p.join("site-packages"));
            candidates.push(p.join("dist-packages"));
            if let Ok(rd) = std::fs::read_dir(p.join("lib")) {
                candidates.extend(rd.flatten().map(|e| e.path().join("site-packages")));
            }
        }
    }
    candidates.into_iter().find(|d| has(d))
}

/// Copies a tree of regular files and directories, leaving out
/// `__pycache__`; returns the number of files.
fn copy_tree(from: &Path, to: &Path) -> usize {
    std::fs::create_dir_all(to).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        let name = e.file_name();
        if name == "__pycache__" {
            continue;
        }
        if ft.is_dir() {
            n += copy_tree(&e.path(), &to.join(&name));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
            n += 1;
        }
    }
    n
}

fn env_or(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}
