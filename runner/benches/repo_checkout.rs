//! Repository step benchmark: prints its figures.
//!
//! Against a real smart-HTTP server on loopback (`git http-backend` behind
//! HTTPS and Basic auth, `test_support::git_server::GitServer`), on a
//! generated repository of realistic size (3,000 source files in 150
//! directories plus a few binary assets, ~5 MB of files, 200 commits of
//! history; the same bytes on every run):
//! - `runner::repo::checkout` at depth 1 and with full history, each into
//!   fresh directories, against `git clone --depth 1` and a full
//!   `git clone` of the git CLI over the same HTTPS URL — medians and the
//!   ratio runner / CLI; the runner's time is also split at its progress
//!   lines (ref listing, fetch, checkout + the workspace's copy of `.git`,
//!   the copy's share estimated by repeating it), and the CLI's by running
//!   `clone --no-checkout` and `checkout` apart;
//! - a small change delivered: `commit_all` + `push` of a new branch
//!   against `git add -A && git commit && git push`.
//!
//! Run: `cargo bench -p runner --bench repo_checkout`
//! (`REPO_BENCH_RUNS=N` sets the runs per row, default 9;
//! `REPO_BENCH_DIR=DIR` where the clones go, default `/var/tmp`).

mod common;
use base64::Engine;
use common::median;
use runner::cancel::Cancel;
use runner::repo::{self, CheckoutRequest, Identity, PushMode, Remote, Secret, Want};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::git_server::GitServer;

const USER: &str = "x-access-token";
const TOKEN: &str = "bench-fixture-token";
const REPO: &str = "bench";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("repo_checkout: bench");
        return;
    }
    let runs: usize = std::env::var("REPO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    // On disk by default, as a session's workspace is; REPO_BENCH_DIR=/dev/shm
    // takes the disk (and this VM's swings in its write speed) out.
    let tmp =
        tempfile::tempdir_in(std::env::var("REPO_BENCH_DIR").unwrap_or("/var/tmp".into())).unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let srv = GitServer::start(USER, TOKEN);
    let t = Instant::now();
    let shape = generate(&srv, &dir.join("gen"));
    println!(
        "repository: {} files in {} directories, {:.1} MB of files, {} commits; served pack {:.1} MB (generated in {:.1} s)",
        shape.files,
        shape.dirs,
        shape.bytes as f64 / 1e6,
        shape.commits,
        pack_bytes(&srv.repo_dir(REPO)) as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let cli = Cli::new(&srv, &dir);
    let remote = Remote::new(&srv.url(REPO), Some(Secret::new(TOKEN)), client(&srv)).unwrap();

    let mut fresh = {
        let dir = dir.clone();
        let mut n = 0;
        move || {
            n += 1;
            let d = dir.join(format!("run{n}"));
            std::fs::create_dir_all(d.join("workspace")).unwrap();
            d
        }
    };

    // One of each first: warm page cache, TLS session, server-side packs.
    lib_checkout(&remote, &fresh(), Some(1));
    cli.clone(&srv.url(REPO), &fresh(), true);

    let mut rows = Vec::new();
    for (label, depth) in [("depth 1", Some(1)), ("full history", None)] {
        let mut lib = Vec::new();
        let mut phases = Vec::new();
        let mut git = Vec::new();
        let mut split = Vec::new();
        // Interleaved, so a slow moment of this shared VM hits both.
        for _ in 0..runs {
            let (total, p) = lib_checkout(&remote, &fresh(), depth);
            lib.push(total);
            phases.push(p);
            git.push(cli.clone(&srv.url(REPO), &fresh(), depth.is_some()));
            split.push(cli.clone_split(&srv.url(REPO), &fresh(), depth.is_some()));
        }
        let split = [0, 1].map(|i| median(split.iter().map(|s: &[f64; 2]| s[i]).collect()));
        rows.push((label, median(lib), median(git), phases, split));
    }

    println!("clone + checkout over HTTPS on loopback, n={runs} each, median ms:");
    for (label, lib, git, phases, cli_split) in &rows {
        let split = |i: usize| median(phases.iter().map(|p: &[f64; 4]| p[i]).collect());
        println!(
            "  {label:<13} runner::repo::checkout {lib:>7.1}   git clone {git:>7.1}   ratio {:.2}   (runner: list refs {:.1}, fetch {:.1}, checkout + .git copy {:.1}, of which the copy ~{:.1})",
            lib / git,
            split(0),
            split(1),
            split(2),
            split(3)
        );
        println!(
            "  {:<13} git clone --no-checkout {:.1} + git checkout {:.1} (the CLI's fetch and checkout, timed apart)",
            "",
            cli_split[0],
            cli_split[1]
        );
    }

    // Where the checkout phase goes: libgit2 hashes every blob again as it
    // reads it for the checkout (strict hash verification, on by default
    // and in the runner). Measured with it off, as a diagnosis only.
    git2::opts::strict_hash_verification(false);
    let unverified = median(
        (0..runs)
            .map(|_| lib_checkout(&remote, &fresh(), Some(1)).1[2])
            .collect(),
    );
    git2::opts::strict_hash_verification(true);
    println!(
        "  (diagnosis) depth 1, checkout + .git copy with libgit2's strict hash verification off: {unverified:.1} (the runner keeps it on)"
    );

    // A small change delivered: 3 files edited, 1 added, on a new branch.
    let lib_ws = fresh();
    lib_checkout(&remote, &lib_ws, Some(1));
    let cli_ws = fresh();
    cli.clone(&srv.url(REPO), &cli_ws, true);
    let (mut commit, mut push, mut git) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 1 {
        let ws = lib_ws.join("workspace");
        small_change(&ws, i);
        let t = Instant::now();
        let id = repo::commit_all(
            &lib_ws.join("private.git"),
            &ws,
            &who("Agent"),
            &who("Runner"),
            "bench: a small change",
        )
        .unwrap();
        assert!(id.is_some(), "nothing to commit");
        let c = ms(t);
        // The session branch is pushed under a new name each time.
        let branch = format!("lib-{i}");
        rename_head(&lib_ws.join("private.git"), &branch);
        let t = Instant::now();
        repo::push(
            &lib_ws.join("private.git"),
            &remote,
            &branch,
            PushMode::New,
            &Cancel::never(),
        )
        .unwrap();
        let p = ms(t);
        let ws = cli_ws.join("workspace");
        small_change(&ws, i);
        let g = cli.commit_push(&ws, &format!("cli-{i}"));
        if i > 0 {
            commit.push(c);
            push.push(p);
            git.push(g);
        }
    }
    let (c, p, g) = (median(commit), median(push), median(git));
    println!(
        "small change (3 files edited, 1 added) committed and pushed as a new branch, n={runs}, median ms:\n  runner commit_all {c:.1} + push {p:.1} = {:.1}   git add -A + commit + push {g:.1}   ratio {:.2}",
        c + p,
        (c + p) / g
    );
}

/// The shape of the generated repository.
struct Shape {
    files: usize,
    dirs: usize,
    bytes: u64,
    commits: usize,
}

/// A small deterministic generator (xorshift64*), so every run serves the
/// same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 32] = [
    "let",
    "fn",
    "self",
    "value",
    "result",
    "config",
    "request",
    "session",
    "path",
    "error",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "return",
    "impl",
    "struct",
    "workspace",
    "policy",
    "decision",
    "len",
    "iter",
    "map",
    "collect",
    "into",
    "as_ref",
    "unwrap_or",
    "branch",
    "commit",
    "remote",
    "token",
];

/// Source-like text: indented lines of identifiers, ~`size` bytes.
fn source_text(rng: &mut Rng, size: usize) -> String {
    let mut s = String::with_capacity(size + 80);
    while s.len() < size {
        for _ in 0..rng.below(3) * 4 {
            s.push(' ');
        }
        for w in 0..3 + rng.below(8) {
            if w > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            if rng.below(4) == 0 {
                s.push_str(&rng.below(1000).to_string());
            }
        }
        s.push_str(";\n");
    }
    s
}

/// Builds the repository with the git CLI (fixed identities and dates) and
/// pushes it to the server as `bench.git`.
fn generate(srv: &GitServer, work: &Path) -> Shape {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    std::fs::create_dir_all(work).unwrap();
    let (dirs, per_dir) = (150, 20);
    let mut files = Vec::new();
    for d in 0..dirs {
        let sub = format!("crates/c{:02}/src/m{d:03}", d % 12);
        std::fs::create_dir_all(work.join(&sub)).unwrap();
        for f in 0..per_dir {
            let rel = format!("{sub}/f{f:02}.rs");
            // Sizes from ~200 B to ~3.4 KB, a few larger.
            let size = 200 + rng.below(3200) as usize + if f == 0 { 12_000 } else { 0 };
            std::fs::write(work.join(&rel), source_text(&mut rng, size)).unwrap();
            files.push(rel);
        }
    }
    std::fs::create_dir_all(work.join("assets")).unwrap();
    for a in 0..4 {
        let blob: Vec<u8> = (0..256 * 1024 / 8)
            .flat_map(|_| rng.next().to_le_bytes())
            .collect();
        let rel = format!("assets/blob{a}.bin");
        std::fs::write(work.join(&rel), blob).unwrap();
        files.push(rel);
    }
    let git = |args: &[&str], date: u64| {
        let out = fixture_git(work)
            .args(args)
            .env("GIT_AUTHOR_DATE", format!("@{date} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{date} +0000"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let t0 = 1_700_000_000;
    git(&["init", "-q", "-b", "main"], t0);
    // No background auto-gc racing the explicit one below.
    git(&["config", "gc.auto", "0"], t0);
    git(&["add", "-A"], t0);
    git(&["commit", "-q", "-m", "initial import"], t0);
    let commits = 200;
    for c in 1..commits {
        for _ in 0..5 {
            // Source files only (the assets are the last four).
            let f = &files[rng.below(files.len() as u64 - 4) as usize];
            let mut text = std::fs::read_to_string(work.join(f)).unwrap();
            text.push_str(&source_text(&mut rng, 300));
            std::fs::write(work.join(f), text).unwrap();
        }
        git(
            &["commit", "-q", "-a", "-m", &format!("change {c}")],
            t0 + c,
        );
    }
    git(&["gc", "-q"], t0 + commits);
    let bare = srv.repo_dir(REPO);
    git(
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        t0,
    );
    git(&["push", "-q", bare.to_str().unwrap(), "main"], t0);
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(work.join(f)).unwrap().len())
        .sum();
    Shape {
        files: files.len(),
        dirs: dirs + 1,
        bytes,
        commits: commits as usize,
    }
}

fn pack_bytes(bare: &Path) -> u64 {
    std::fs::read_dir(bare.join("objects/pack"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// git with a hermetic environment, for building the fixture.
fn fixture_git(dir: &Path) -> Command {
    test_support::git_server::hermetic_git(dir, dir)
}

fn client(srv: &GitServer) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(srv.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// One checkout into `run/private.git` and `run/workspace`: the total and
/// its phases (ref listing, fetch, checkout + copy, and the copy alone
/// repeated), in ms.
fn lib_checkout(remote: &Remote, run: &Path, depth: Option<u32>) -> (f64, [f64; 4]) {
    let marks = std::cell::RefCell::new(Vec::new());
    let t = Instant::now();
    let progress = |line: &str| marks.borrow_mut().push((line.to_string(), t.elapsed()));
    let out = repo::checkout(&CheckoutRequest {
        remote,
        want: Want::DefaultBranch,
        target_branch: "session",
        git_dir: &run.join("private.git"),
        workspace: &run.join("workspace"),
        depth,
        cancel: &Cancel::never(),
        progress: &progress,
    })
    .unwrap();
    let total = t.elapsed();
    assert_eq!(out.shallow, depth.is_some());
    let marks = marks.into_inner();
    let at = |prefix: &str| {
        marks
            .iter()
            .find(|(l, _)| l.starts_with(prefix))
            .map(|(_, d)| d.as_secs_f64() * 1e3)
            .unwrap_or_else(|| panic!("no progress line {prefix:?} in {marks:?}"))
    };
    let (fetch, co) = (at("fetching"), at("checking out"));
    let total = total.as_secs_f64() * 1e3;
    // The last phase includes the workspace's copy of the private git dir;
    // repeating that copy (same read + create_new + write per file) says
    // how much of it.
    let t = Instant::now();
    copy_dir(&run.join("private.git"), &run.join("copy-probe"));
    let copy = ms(t);
    (total, [fetch - at("listing"), co - fetch, total - co, copy])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)
                .unwrap()
                .write_all(&std::fs::read(&src).unwrap())
                .unwrap();
        }
    }
}

/// The git CLI, given the fixture's CA and the credentials as a header.
struct Cli {
    home: PathBuf,
    ca: PathBuf,
    header: String,
}

impl Cli {
    fn new(srv: &GitServer, dir: &Path) -> Cli {
        let home = dir.join("cli-home");
        std::fs::create_dir_all(&home).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, srv.ca_pem()).unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"));
        Cli {
            home,
            ca,
            header: format!("http.extraHeader=Authorization: Basic {basic}"),
        }
    }

    fn git(&self, dir: &Path) -> Command {
        let mut c = fixture_git(dir);
        c.env("HOME", &self.home)
            .env("GIT_SSL_CAINFO", &self.ca)
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["-c", &self.header]);
        c
    }

    fn run(&self, dir: &Path, args: &[&str]) {
        let out = self.git(dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `git clone [--depth 1] URL run/workspace`, in ms.
    fn clone(&self, url: &str, run: &Path, shallow: bool) -> f64 {
        let ws = run.join("workspace");
        let mut args = vec!["clone", "-q"];
        if shallow {
            args.extend(["--depth", "1"]);
        }
        args.extend([url, ws.to_str().unwrap()]);
        let t = Instant::now();
        self.run(run, &args);
        ms(t)
    }

    /// [`Cli::clone`] in two steps, `clone --no-checkout` then `checkout`,
    /// each in ms.
    fn clone_split(&self, url: &str, run: &Path, shallow: bool) -> [f64; 2] {
        let ws = run.join("workspace");
        let mut args = vec!["clone", "-q", "--no-checkout"];
        if shallow {
            args.extend(["--depth", "1"]);
        }
        args.extend([url, ws.to_str().unwrap()]);
        let t = Instant::now();
        self.run(run, &args);
        let fetch = ms(t);
        let t = Instant::now();
        self.run(&ws, &["checkout", "-q", "main"]);
        [fetch, ms(t)]
    }

    /// `git add -A && git commit && git push origin HEAD:refs/heads/<b>`,
    /// in ms.
    fn commit_push(&self, ws: &Path, branch: &str) -> f64 {
        let t = Instant::now();
        self.run(ws, &["add", "-A"]);
        self.run(ws, &["commit", "-q", "-m", "bench: a small change"]);
        self.run(
            ws,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
        ms(t)
    }
}

/// Edits three files and adds one, different each time.
fn small_change(ws: &Path, i: usize) {
    for d in [3, 70, 141] {
        let f = ws.join(format!("crates/c{:02}/src/m{d:03}/f05.rs", d % 12));
        let mut text = std::fs::read_to_string(&f).unwrap();
        text.push_str(&format!("let change = {i};\n"));
        std::fs::write(&f, text).unwrap();
    }
    std::fs::write(ws.join(format!("NOTES-{i}.md")), format!("change {i}\n")).unwrap();
}

/// Moves the private repository's HEAD branch to a new name, so each push
/// creates a branch (as a session's first delivery does).
fn rename_head(git_dir: &Path, to: &str) {
    let repo = git2::Repository::open_bare(git_dir).unwrap();
    let head = repo.head().unwrap();
    let mut branch = git2::Branch::wrap(head);
    branch.rename(to, true).unwrap();
    repo.set_head(&format!("refs/heads/{to}")).unwrap();
}

fn who(name: &str) -> Identity {
    Identity {
        name: name.into(),
        email: format!("{}@example.invalid", name.to_lowercase()),
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
