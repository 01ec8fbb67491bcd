//! Host-side git under attack: a workspace the agent shaped to make the
//! root-run commit read host files, hang or exhaust the host, repository
//! content crafted to make the checkout write outside the workspace or
//! plant git's state, a checkout that stopped half-way, (the token echoed back by a server
//! is a unit test of the transport).

use runner::cancel::Cancel;
use runner::repo::{self, CheckoutRequest, Identity, Remote, RepoError, Secret, Want};
use std::path::{Path, PathBuf};
use std::time::Duration;
use test_support::git_server::GitServer;

const TOKEN: &str = "tok_ATTACK_secret_7";

struct Session {
    srv: GitServer,
    remote: Remote,
    tmp: tempfile::TempDir,
    git_dir: PathBuf,
    ws: PathBuf,
}

/// A served repository `r` (with `files` on main) and an empty session.
fn session(files: &[(&str, &str)]) -> Session {
    let srv = GitServer::start("x-access-token", TOKEN);
    srv.create_repo("r", files);
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(srv.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let remote = Remote::new(&srv.url("r"), Some(Secret::new(TOKEN)), client).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    Session {
        git_dir: tmp.path().join("private.git"),
        srv,
        remote,
        ws,
        tmp,
    }
}

impl Session {
    fn checkout(&self) -> Result<repo::CheckedOut, RepoError> {
        repo::checkout(&CheckoutRequest {
            remote: &self.remote,
            want: Want::DefaultBranch,
            target_branch: "agent/x",
            git_dir: &self.git_dir,
            workspace: &self.ws,
            depth: None,
            cancel: &Cancel::never(),
            progress: &|_| {},
        })
    }

    /// The commit, on a thread: a hang is a failure, not a stuck suite.
    fn commit(&self) -> Result<Option<String>, RepoError> {
        let (git_dir, ws) = (self.git_dir.clone(), self.ws.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let id = Identity {
                name: "Agent".into(),
                email: "agent@example.invalid".into(),
            };
            let _ = tx.send(repo::commit_all(&git_dir, &ws, &id, &id, "work"));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the commit hung")
    }

    /// `git ls-tree -r` of the private repository's HEAD: mode, type and
    /// path per line.
    fn tree(&self) -> Vec<String> {
        let out = git(&self.git_dir, &["ls-tree", "-r", "HEAD"], b"");
        out.lines()
            .map(|l| {
                let (meta, path) = l.split_once('\t').unwrap();
                let mut m = meta.split(' ');
                format!("{} {} {path}", m.next().unwrap(), m.next().unwrap())
            })
            .collect()
    }

    fn show(&self, path: &str) -> String {
        git(&self.git_dir, &["show", &format!("HEAD:{path}")], b"")
    }
}

fn git(dir: &Path, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "x")
        .env("GIT_AUTHOR_EMAIL", "x@x")
        .env("GIT_COMMITTER_NAME", "x")
        .env("GIT_COMMITTER_EMAIL", "x@x")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[test]
fn sparse_and_oversized_files_are_refused_from_their_size_before_git_reads_them() {
    let s = session(&[("a.txt", "a\n"), (".gitignore", "/build/\n")]);
    s.checkout().unwrap();
    // Ignored output never counts, however large.
    std::fs::create_dir(s.ws.join("build")).unwrap();
    sparse(&s.ws.join("build/huge.bin"), 50 << 30);
    std::fs::write(s.ws.join("a.txt"), "changed\n").unwrap();
    assert!(s.commit().unwrap().is_some());

    // One file over the per-file limit: 8 GiB that costs no disk.
    sparse(&s.ws.join("core.dump"), 8 << 30);
    let started = std::time::Instant::now();
    let e = s.commit().unwrap_err();
    assert!(matches!(e, RepoError::TooLarge(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("core.dump") && msg.contains(".gitignore"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it read the file"
    );
    std::fs::remove_file(s.ws.join("core.dump")).unwrap();

    // Many files each under the limit, together over the commit's.
    let per = repo::MAX_FILE_BYTES - 1;
    let n = repo::MAX_COMMIT_BYTES / per + 1;
    std::fs::create_dir(s.ws.join("blobs")).unwrap();
    for i in 0..n {
        sparse(&s.ws.join(format!("blobs/{i}.bin")), per);
    }
    let started = std::time::Instant::now();
    let e = s.commit().unwrap_err();
    assert!(matches!(e, RepoError::TooLarge(_)), "{e:?}");
    assert!(e.to_string().contains("add up to"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it read the files"
    );
    // Nothing of the refused attempt was committed.
    assert_eq!(
        s.tree(),
        ["100644 blob .gitignore", "100644 blob a.txt"],
        "the last good commit"
    );
}

#[test]
fn links_to_host_files_are_committed_as_links_and_special_files_are_skipped() {
    let s = session(&[("a.txt", "a\n")]);
    s.checkout().unwrap();
    let secret_dir = s.tmp.path().join("host");
    std::fs::create_dir(&secret_dir).unwrap();
    let secret = secret_dir.join("shadow");
    std::fs::write(&secret, "root:HOSTSECRET:19000::::::\n").unwrap();
    std::os::unix::fs::symlink(&secret, s.ws.join("shadow")).unwrap();
    std::os::unix::fs::symlink(&secret_dir, s.ws.join("etc")).unwrap();
    // A FIFO (the sandbox cannot make one, but a degraded host might) would
    // block a reader forever; a socket cannot be read at all.
    nix::unistd::mkfifo(
        &s.ws.join("pipe"),
        nix::sys::stat::Mode::from_bits(0o644).unwrap(),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(s.ws.join("sock")).unwrap();
    s.commit().unwrap().unwrap();
    assert_eq!(
        s.tree(),
        ["100644 blob a.txt", "120000 blob etc", "120000 blob shadow"]
    );
    assert_eq!(s.show("shadow"), secret.display().to_string());
    let objects = git(
        &s.git_dir,
        &["cat-file", "--batch-all-objects", "--batch"],
        b"",
    );
    assert!(
        !objects.contains("HOSTSECRET"),
        "host file content committed"
    );
}

#[test]
fn nested_repositories_and_names_git_reserves_fail_the_commit_saying_what_to_do() {
    for (name, plant, expect) in [
        (
            "nested repository",
            &(|ws: &Path| {
                let sub = ws.join("vendor/lib");
                std::fs::create_dir_all(&sub).unwrap();
                git(&sub, &["init", "-q"], b"");
                std::fs::write(sub.join("x.c"), "x").unwrap();
                git(&sub, &["add", "."], b"");
                git(&sub, &["commit", "-qm", "x"], b"");
            }) as &dyn Fn(&Path),
            "vendor/lib/ is a nested git repository",
        ),
        (
            "gitdir file pointing at a host repository",
            &(|ws: &Path| {
                let sub = ws.join("sub");
                std::fs::create_dir(&sub).unwrap();
                std::fs::write(sub.join(".git"), "gitdir: /root/.git\n").unwrap();
                std::fs::write(sub.join("f"), "f").unwrap();
            }),
            "sub/ is a nested git repository",
        ),
        (
            "NTFS alias of .git",
            &(|ws: &Path| {
                std::fs::create_dir(ws.join("git~1")).unwrap();
                std::fs::write(ws.join("git~1/config"), "x").unwrap();
            }),
            "rename or remove that path",
        ),
        (
            "HFS alias of .git",
            &(|ws: &Path| {
                let d = ws.join(".g\u{200c}it");
                std::fs::create_dir(&d).unwrap();
                std::fs::write(d.join("config"), "[core]\n\tfsmonitor = x\n").unwrap();
            }),
            "rename or remove that path",
        ),
    ] {
        let s = session(&[("a.txt", "a\n")]);
        s.checkout().unwrap();
        plant(&s.ws);
        let e = s.commit().expect_err(name);
        assert!(e.to_string().contains(expect), "{name}: {e}");
    }
}

/// Writes a tree object from raw entries (mode, name bytes, object id),
/// the way a hostile repository author can, bypassing git's own checks.
fn raw_tree(repo: &Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(mode.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(name);
        raw.push(0);
        for i in 0..20 {
            raw.push(u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap());
        }
    }
    git(
        repo,
        &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
        &raw,
    )
}

fn blob(repo: &Path, data: &[u8]) -> String {
    git(repo, &["hash-object", "-w", "--stdin"], data)
}

/// Every path under `dir`, not following symlinks.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn crafted_trees_never_write_outside_the_workspace_or_plant_git_state() {
    type Build = fn(&Path, &Path) -> String;
    let cases: [(&str, Build); 8] = [
        ("..", |r, _| {
            let b = blob(r, b"x");
            raw_tree(r, &[("100644", b"..", &b)])
        }),
        ("absolute path", |r, o| {
            let b = blob(r, b"x");
            raw_tree(
                r,
                &[("100644", format!("{}/pwned", o.display()).as_bytes(), &b)],
            )
        }),
        (".git", |r, _| {
            let c = blob(r, b"[core]\n\tfsmonitor = touch /tmp/pwned\n");
            let g = raw_tree(r, &[("100644", b"config", &c)]);
            raw_tree(r, &[("040000", b".git", &g)])
        }),
        (".GIT", |r, _| {
            let c = blob(r, b"x");
            let g = raw_tree(r, &[("100644", b"config", &c)]);
            raw_tree(r, &[("040000", b".GIT", &g)])
        }),
        (".git with a trailing space", |r, _| {
            let c = blob(r, b"x");
            let g = raw_tree(r, &[("100644", b"config", &c)]);
            raw_tree(r, &[("040000", b".git ", &g)])
        }),
        ("HFS alias of .git", |r, _| {
            let c = blob(r, b"x");
            let g = raw_tree(r, &[("100644", b"config", &c)]);
            raw_tree(r, &[("040000", ".g\u{200c}it".as_bytes(), &g)])
        }),
        ("symlink, then a directory of the same name", |r, o| {
            let l = blob(r, o.display().to_string().as_bytes());
            let f = blob(r, b"pwned");
            let sub = raw_tree(r, &[("100644", b"pwned", &f)]);
            raw_tree(r, &[("120000", b"a", &l), ("040000", b"a", &sub)])
        }),
        ("symlinked .gitmodules", |r, o| {
            let l = blob(r, o.display().to_string().as_bytes());
            raw_tree(r, &[("120000", b".gitmodules", &l)])
        }),
    ];
    for (name, build) in cases {
        let s = session(&[("a.txt", "a\n")]);
        let outside = s.tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let served = s.srv.repo_dir("r");
        let tree = build(&served, &outside);
        let commit = git(&served, &["commit-tree", &tree, "-m", "evil"], b"");
        git(&served, &["update-ref", "refs/heads/main", &commit], b"");
        let e = s.checkout().expect_err(name);
        assert!(e.to_string().contains("writing the files"), "{name}: {e}");
        assert_eq!(walk(&outside), Vec::<PathBuf>::new(), "{name}");
        let planted: Vec<_> = walk(&s.ws)
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().to_lowercase();
                n.contains("git") || n == "pwned" && !p.starts_with(s.ws.join("a"))
            })
            .collect();
        assert_eq!(planted, Vec::<PathBuf>::new(), "{name}");
        // The attempt is not mistaken for a finished checkout later.
        assert!(!repo::is_checked_out(&s.git_dir), "{name}");
    }
}

#[test]
fn a_checkout_that_stopped_half_way_is_discarded_not_resumed() {
    let s = session(&[("a.txt", "a\n")]);
    let served = s.srv.repo_dir("r");
    let good = blob(&served, b"kept\n");
    let l = blob(&served, b"/nowhere");
    let f = blob(&served, b"f");
    let sub = raw_tree(&served, &[("100644", b"f", &f)]);
    // `a` is written as a directory, then its symlink twin fails: a
    // workspace with some of the files and a private dir with the branch.
    let tree = raw_tree(
        &served,
        &[
            ("120000", b"a", &l),
            ("040000", b"a", &sub),
            ("100644", b"z.txt", &good),
        ],
    );
    let bad = git(&served, &["commit-tree", &tree, "-m", "half"], b"");
    git(&served, &["update-ref", "refs/heads/main", &bad], b"");
    s.checkout().unwrap_err();
    assert!(s.git_dir.join("HEAD").exists() && s.ws.join("a").exists());
    assert!(!repo::is_checked_out(&s.git_dir));

    // The next attempt throws the half-checkout away and starts afresh.
    s.srv
        .commit("r", "main", &[("a.txt", "fixed\n")], &[], "fixed");
    repo::discard_incomplete(&s.git_dir, &s.ws).unwrap();
    assert!(!s.git_dir.exists());
    assert_eq!(std::fs::read_dir(&s.ws).unwrap().count(), 0);
    s.checkout().unwrap();
    assert!(repo::is_checked_out(&s.git_dir));
    assert_eq!(
        std::fs::read_to_string(s.ws.join("a.txt")).unwrap(),
        "fixed\n"
    );
    // A finished checkout is resumed, never discarded.
    let e = repo::discard_incomplete(&s.git_dir, &s.ws).unwrap_err();
    assert!(e.to_string().contains("resumed"), "{e}");
    assert!(s.ws.join("a.txt").exists());
}
