//! Host-side git against a real smart-HTTP server (git http-backend behind
//! HTTPS and Basic auth on loopback): checkout of every kind of ref,
//! commit, push and its modes, the server's refusals, the token staying out
//! of every file and error, and repository content that tries to run code
//! on the host or redirect the runner.

use runner::cancel::Cancel;
use runner::repo::{self, CheckoutRequest, Identity, PushMode, Remote, RepoError, Secret, Want};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use test_support::git_server::GitServer;

const USER: &str = "x-access-token";
const TOKEN: &str = "tok_S3CRET_value_4242";

fn server() -> GitServer {
    GitServer::start(USER, TOKEN)
}

fn client(srv: &GitServer) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(srv.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

fn remote_with(srv: &GitServer, repo: &str, token: &str) -> Remote {
    Remote::new(&srv.url(repo), Some(Secret::new(token)), client(srv)).unwrap()
}

fn remote(srv: &GitServer, repo: &str) -> Remote {
    remote_with(srv, repo, TOKEN)
}

/// A session's directories: the private git dir (not yet created) and an
/// empty workspace, side by side.
struct Dirs {
    _tmp: tempfile::TempDir,
    git_dir: PathBuf,
    ws: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("workspace");
    std::fs::create_dir(&ws).unwrap();
    Dirs {
        git_dir: tmp.path().join("private.git"),
        ws,
        _tmp: tmp,
    }
}

fn checkout(
    remote: &Remote,
    d: &Dirs,
    want: Want,
    branch: &str,
    depth: Option<u32>,
) -> Result<repo::CheckedOut, RepoError> {
    repo::checkout(&CheckoutRequest {
        remote,
        want,
        target_branch: branch,
        git_dir: &d.git_dir,
        workspace: &d.ws,
        depth,
        cancel: &Cancel::never(),
        progress: &|_| {},
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// The git CLI in the workspace, the way the sandboxed agent would run it.
fn ws_git(ws: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", ws.parent().unwrap())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn agent() -> Identity {
    Identity {
        name: "Agent Smith".into(),
        email: "agent@example.invalid".into(),
    }
}

fn runner_id() -> Identity {
    Identity {
        name: "Runner".into(),
        email: "runner@example.invalid".into(),
    }
}

/// Every file under `dir` (not following symlinks) that holds `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let data = std::fs::read(e.path()).unwrap();
                if data.windows(needle.len()).any(|w| w == needle) {
                    hits.push(e.path());
                }
            }
        }
    }
    hits
}

fn assert_no_token(d: &Dirs) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"));
    for needle in [TOKEN.as_bytes(), b64.as_bytes()] {
        assert_eq!(files_containing(&d.ws, needle), Vec::<PathBuf>::new());
        assert_eq!(files_containing(&d.git_dir, needle), Vec::<PathBuf>::new());
    }
}

#[test]
fn checks_out_the_default_branch_a_branch_and_tags_with_a_usable_workspace_git() {
    let srv = server();
    let main = srv.create_repo("r", &[("a.txt", "main a\n"), ("dir/b.txt", "b\n")]);
    let feature = srv.commit(
        "r",
        "feature",
        &[("a.txt", "feature a\n")],
        &[],
        "feature work",
    );
    srv.git("r", &["tag", "v1", "main"]);
    srv.git("r", &["tag", "-a", "-m", "annotated", "v2", "feature"]);
    let r = remote(&srv, "r");

    let refs = repo::list_refs(&r).unwrap();
    assert_eq!(refs.default_branch.as_deref(), Some("main"));
    assert_eq!(refs.refs["refs/heads/main"], main);
    assert_eq!(refs.refs["refs/heads/feature"], feature);
    assert_eq!(refs.refs["refs/tags/v1"], main);
    assert_eq!(
        refs.refs["refs/tags/v2"], feature,
        "annotated tags are peeled"
    );

    let d = dirs();
    let co = checkout(&r, &d, Want::DefaultBranch, "agent/one", Some(1)).unwrap();
    assert_eq!(co.base_ref, "refs/heads/main");
    assert_eq!(co.base_commit, main);
    assert!(co.shallow);
    assert_eq!(read(&d.ws.join("a.txt")), "main a\n");
    assert_eq!(read(&d.ws.join("dir/b.txt")), "b\n");
    assert_eq!(repo::head(&d.git_dir).unwrap(), main);
    let mode = std::fs::metadata(&d.git_dir).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "the private git dir is private");
    // The agent's .git: a real copy with a config that names no remote.
    assert_eq!(ws_git(&d.ws, &["status", "--porcelain"]), "");
    assert_eq!(ws_git(&d.ws, &["rev-parse", "HEAD"]).trim(), main);
    assert_eq!(
        ws_git(&d.ws, &["branch", "--show-current"]).trim(),
        "agent/one"
    );
    let ws_config = read(&d.ws.join(".git/config"));
    let private_config = read(&d.git_dir.join("config"));
    for cfg in [&ws_config, &private_config] {
        assert!(
            !cfg.contains("url") && !cfg.contains("remote") && !cfg.contains("127.0.0.1"),
            "{cfg}"
        );
    }
    for f in walk(&d.ws.join(".git")) {
        assert_eq!(
            std::fs::metadata(&f).unwrap().nlink(),
            1,
            "{} is a hard link",
            f.display()
        );
    }
    assert!(!d.ws.join(".git/objects/info/alternates").exists());
    assert_no_token(&d);

    for (want, base_ref, commit, a) in [
        (
            Want::Ref("feature".into()),
            "refs/heads/feature",
            &feature,
            "feature a\n",
        ),
        (
            Want::Branch("feature".into()),
            "refs/heads/feature",
            &feature,
            "feature a\n",
        ),
        (Want::Ref("v1".into()), "refs/tags/v1", &main, "main a\n"),
        (
            Want::Ref("v2".into()),
            "refs/tags/v2",
            &feature,
            "feature a\n",
        ),
        (
            Want::Ref("refs/tags/v2".into()),
            "refs/tags/v2",
            &feature,
            "feature a\n",
        ),
    ] {
        let d = dirs();
        let co = checkout(&r, &d, want.clone(), "agent/x", None).unwrap();
        assert_eq!(
            (co.base_ref.as_str(), &co.base_commit),
            (base_ref, commit),
            "{want:?}"
        );
        assert!(!co.shallow);
        assert_eq!(read(&d.ws.join("a.txt")), a, "{want:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn checks_out_commit_ids_with_and_without_the_servers_sha_in_want_and_short_ids() {
    let srv = server();
    let first = srv.create_repo("r", &[("a.txt", "one\n")]);
    let second = srv.commit("r", "main", &[("a.txt", "two\n")], &[], "second");
    let r = remote(&srv, "r");
    // Without allow*SHA1InWant: the direct fetch is refused, the full
    // fetch of the branches finds it.
    for id in [first.clone(), first[..8].to_string(), first.to_uppercase()] {
        let d = dirs();
        let co = checkout(&r, &d, Want::Ref(id.clone()), "agent/c", Some(1)).unwrap();
        assert_eq!(co.base_commit, first, "{id}");
        assert_eq!(co.base_ref, first);
        assert!(!co.shallow, "the fallback fetches full history");
        assert_eq!(read(&d.ws.join("a.txt")), "one\n");
        assert_eq!(ws_git(&d.ws, &["status", "--porcelain"]), "");
    }
    // With it: the commit itself, shallow.
    srv.git(
        "r",
        &["config", "uploadpack.allowReachableSHA1InWant", "true"],
    );
    let d = dirs();
    let co = checkout(&r, &d, Want::Ref(first.clone()), "agent/c", Some(1)).unwrap();
    assert_eq!(co.base_commit, first);
    assert!(co.shallow, "fetched directly at depth 1");
    assert_eq!(read(&d.ws.join("a.txt")), "one\n");
    assert_ne!(first, second);
}

#[test]
fn missing_refs_are_named() {
    let srv = server();
    srv.create_repo("r", &[("a.txt", "x\n")]);
    let r = remote(&srv, "r");
    for (want, named) in [
        (Want::Ref("nope".into()), "nope"),
        (Want::Branch("nope".into()), "refs/heads/nope"),
        (Want::PullHead(7), "refs/pull/7/head"),
        (Want::Ref("refs/heads/nope".into()), "refs/heads/nope"),
        (
            Want::Ref("0123456789abcdef0123456789abcdef01234567".into()),
            "0123456789abcdef0123456789abcdef01234567",
        ),
        (Want::Ref("deadbeef".into()), "deadbeef"),
    ] {
        let d = dirs();
        match checkout(&r, &d, want.clone(), "agent/m", Some(1)) {
            Err(e @ RepoError::MissingRef(_)) => {
                assert!(e.to_string().contains(named), "{want:?}: {e}")
            }
            other => panic!("{want:?}: expected MissingRef, got {other:?}"),
        }
    }
    let d = dirs();
    assert!(matches!(
        checkout(&r, &d, Want::DefaultBranch, "bad..name", None),
        Err(RepoError::BadRef(_))
    ));
    assert!(!d.git_dir.exists(), "a refused request changes nothing");
}

#[test]
fn a_wrong_or_revoked_token_is_unauthorized_and_never_echoed_and_a_missing_repo_is_not_found() {
    let srv = server();
    srv.create_repo("r", &[("a.txt", "x\n")]);
    let wrong = "tok_WRONG_guess_9999";
    let r = remote_with(&srv, "r", wrong);
    let d = dirs();
    let e = checkout(&r, &d, Want::DefaultBranch, "agent/w", None).unwrap_err();
    assert!(
        matches!(&e, RepoError::Unauthorized { host } if host == &format!("127.0.0.1:{}", srv.port())),
        "{e:?}"
    );
    let e2 = repo::list_refs(&r).unwrap_err();
    for msg in [
        e.to_string(),
        format!("{e:?}"),
        e2.to_string(),
        format!("{r:?}"),
    ] {
        assert!(!msg.contains(wrong) && !msg.contains(TOKEN), "{msg}");
    }
    assert!(
        srv.requests().iter().all(|q| q.had_auth),
        "the token is sent with every request"
    );

    let e = checkout(
        &remote(&srv, "missing"),
        &dirs(),
        Want::DefaultBranch,
        "agent/w",
        None,
    )
    .unwrap_err();
    assert!(matches!(e, RepoError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.git"), "{e}");

    // Revoked between checkout and push.
    let r = remote(&srv, "r");
    let d = dirs();
    checkout(&r, &d, Want::DefaultBranch, "agent/w", None).unwrap();
    std::fs::write(d.ws.join("n.txt"), "n\n").unwrap();
    repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "n")
        .unwrap()
        .unwrap();
    srv.set_token("tok_rotated");
    let e = repo::push(&d.git_dir, &r, "agent/w", PushMode::New, &Cancel::never()).unwrap_err();
    assert!(matches!(e, RepoError::Unauthorized { .. }), "{e:?}");
    assert!(!e.to_string().contains(TOKEN));
    assert_no_token(&d);
}

#[test]
fn commits_add_modify_delete_with_author_and_committer_and_pushes_every_mode() {
    let srv = server();
    srv.create_repo(
        "r",
        &[
            ("a.txt", "a\n"),
            ("c.txt", "c\n"),
            (".gitignore", "*.log\n"),
        ],
    );
    srv.commit("r", "main", &[("more.txt", "history\n")], &[], "second");
    let r = remote(&srv, "r");
    let d = dirs();
    let co = checkout(&r, &d, Want::DefaultBranch, "agent/work", Some(1)).unwrap();
    assert!(co.shallow);
    assert_eq!(
        repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "nothing").unwrap(),
        None,
        "an unchanged tree makes no commit"
    );
    std::fs::write(d.ws.join("a.txt"), "a edited\n").unwrap();
    std::fs::create_dir(d.ws.join("new")).unwrap();
    std::fs::write(d.ws.join("new/b.txt"), "b\n").unwrap();
    std::fs::remove_file(d.ws.join("c.txt")).unwrap();
    std::fs::write(d.ws.join("debug.log"), "ignored\n").unwrap();
    let id = repo::commit_all(
        &d.git_dir,
        &d.ws,
        &agent(),
        &runner_id(),
        "agent: changes\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(repo::head(&d.git_dir).unwrap(), id);

    assert_eq!(
        repo::push_mode(&d.git_dir, &r, "agent/work").unwrap(),
        (PushMode::New, None)
    );
    repo::push(
        &d.git_dir,
        &r,
        "agent/work",
        PushMode::New,
        &Cancel::never(),
    )
    .unwrap();
    assert_eq!(
        srv.git("r", &["rev-parse", "refs/heads/agent/work"]).trim(),
        id
    );
    assert_eq!(
        srv.git(
            "r",
            &["log", "-1", "--format=%an|%ae|%cn|%ce|%s", "agent/work"]
        )
        .trim(),
        "Agent Smith|agent@example.invalid|Runner|runner@example.invalid|agent: changes"
    );
    let files = srv.git("r", &["ls-tree", "-r", "--name-only", "agent/work"]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(
        files,
        [".gitignore", "a.txt", "more.txt", "new/b.txt"],
        "no .git, no ignored file, c.txt deleted"
    );
    assert_eq!(srv.git("r", &["show", "agent/work:a.txt"]), "a edited\n");
    srv.git("r", &["fsck", "--no-progress"]);

    // A second commit fast-forwards.
    std::fs::write(d.ws.join("a.txt"), "a again\n").unwrap();
    let id2 = repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "again")
        .unwrap()
        .unwrap();
    assert_eq!(
        repo::push_mode(&d.git_dir, &r, "agent/work").unwrap(),
        (PushMode::Update, Some(id.clone()))
    );
    repo::push(
        &d.git_dir,
        &r,
        "agent/work",
        PushMode::Update,
        &Cancel::never(),
    )
    .unwrap();
    assert_eq!(srv.git("r", &["rev-parse", "agent/work"]).trim(), id2);
    assert_eq!(
        repo::push_mode(&d.git_dir, &r, "agent/work").unwrap(),
        (PushMode::Update, Some(id2.clone()))
    );

    // Someone else moves the branch: only a forced push may overwrite it.
    let theirs = srv.commit("r", "agent/work", &[("theirs.txt", "t\n")], &[], "theirs");
    assert_eq!(
        repo::push_mode(&d.git_dir, &r, "agent/work").unwrap(),
        (PushMode::Force, Some(theirs.clone()))
    );
    let e = repo::push(
        &d.git_dir,
        &r,
        "agent/work",
        PushMode::Update,
        &Cancel::never(),
    )
    .unwrap_err();
    assert!(matches!(e, RepoError::NotFastForward), "{e:?}");
    assert_eq!(
        srv.git("r", &["rev-parse", "agent/work"]).trim(),
        theirs,
        "refused pushes change nothing"
    );
    repo::push(
        &d.git_dir,
        &r,
        "agent/work",
        PushMode::Force,
        &Cancel::never(),
    )
    .unwrap();
    assert_eq!(srv.git("r", &["rev-parse", "agent/work"]).trim(), id2);

    assert!(
        srv.requests().iter().all(|q| q.had_auth && q.status == 200),
        "{:?}",
        srv.requests()
    );
    assert_no_token(&d);
}

#[test]
fn a_server_hook_rejection_and_a_cancelled_session_are_errors() {
    let srv = server();
    srv.create_repo("r", &[("a.txt", "a\n")]);
    let r = remote(&srv, "r");
    let d = dirs();
    checkout(&r, &d, Want::DefaultBranch, "agent/rej", Some(1)).unwrap();
    std::fs::write(d.ws.join("a.txt"), "b\n").unwrap();
    repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "x")
        .unwrap()
        .unwrap();
    srv.reject_pushes("r", "no pushes today");
    let e = repo::push(&d.git_dir, &r, "agent/rej", PushMode::New, &Cancel::never()).unwrap_err();
    assert!(matches!(e, RepoError::Rejected(_)), "{e:?}");
    assert!(e.to_string().contains("agent/rej"), "{e}");
    assert!(srv.git("r", &["branch", "--list", "agent/rej"]).is_empty());

    let cancel = Cancel::never();
    cancel.cancel();
    let e = repo::push(&d.git_dir, &r, "agent/rej", PushMode::New, &cancel).unwrap_err();
    assert!(matches!(e, RepoError::Cancelled), "{e:?}");
    let d2 = dirs();
    let e = repo::checkout(&CheckoutRequest {
        remote: &r,
        want: Want::DefaultBranch,
        target_branch: "agent/c",
        git_dir: &d2.git_dir,
        workspace: &d2.ws,
        depth: None,
        cancel: &cancel,
        progress: &|_| {},
    })
    .unwrap_err();
    assert!(matches!(e, RepoError::Cancelled), "{e:?}");
}

#[test]
fn repository_content_and_an_agent_written_workspace_git_run_nothing_on_the_host() {
    let srv = server();
    let tmp = tempfile::tempdir().unwrap();
    let markers = tmp.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    let m = |n: &str| markers.join(n).display().to_string();
    // A would-be submodule source: a local repository on the host.
    let sub_src = tmp.path().join("subsrc");
    std::fs::create_dir(&sub_src).unwrap();
    srv.create_repo(
        "r",
        &[
            ("a.txt", "a\n"),
            (".gitattributes", "* filter=x diff=x\n"),
            (
                ".gitmodules",
                &format!(
                    "[submodule \"sub\"]\n\tpath = sub\n\turl = file://{}\n",
                    sub_src.display()
                ),
            ),
        ],
    );
    srv.create_repo("evil", &[("e.txt", "e\n")]);
    let r = remote(&srv, "r");
    let d = dirs();
    let progress = std::cell::RefCell::new(Vec::<String>::new());
    repo::checkout(&CheckoutRequest {
        remote: &r,
        want: Want::DefaultBranch,
        target_branch: "agent/h",
        git_dir: &d.git_dir,
        workspace: &d.ws,
        depth: Some(1),
        cancel: &Cancel::never(),
        progress: &|l| progress.borrow_mut().push(l.to_string()),
    })
    .unwrap();
    assert!(!progress.borrow().is_empty());
    assert!(!d.ws.join("sub/.git").exists(), "submodules are not cloned");

    // The agent, in the sandbox, rewrites its .git to attack the runner.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("host-secret.txt"), "host\n").unwrap();
    let included = tmp.path().join("included.cfg");
    std::fs::write(
        &included,
        format!("[core]\n\tworktree = {}\n", outside.display()),
    )
    .unwrap();
    let hooks = d.ws.join(".git/hooks");
    let alt_hooks = tmp.path().join("althooks");
    std::fs::create_dir(&alt_hooks).unwrap();
    for dir in [&hooks, &alt_hooks] {
        for hook in [
            "pre-commit",
            "commit-msg",
            "post-commit",
            "pre-push",
            "post-checkout",
            "reference-transaction",
        ] {
            let p = dir.join(hook);
            std::fs::write(&p, format!("#!/bin/sh\ntouch {}\n", m(hook))).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
    }
    let cfg = d.ws.join(".git/config");
    let mut c = read(&cfg);
    c.push_str(&format!(
        "\tworktree = {outside}\n\tfsmonitor = touch {fsm}\n\thooksPath = {alt}\n\tsshCommand = touch {ssh}\n\
         [filter \"x\"]\n\tclean = touch {clean}\n\tsmudge = touch {smudge}\n\tprocess = touch {process}\n\trequired = true\n\
         [diff \"x\"]\n\ttextconv = touch {textconv}\n\
         [url \"{evil}\"]\n\tinsteadOf = {good}\n\tpushInsteadOf = {good}\n\
         [credential]\n\thelper = !touch {cred}\n\
         [include]\n\tpath = {inc}\n",
        outside = outside.display(),
        fsm = m("fsmonitor"),
        alt = alt_hooks.display(),
        ssh = m("ssh"),
        clean = m("clean"),
        smudge = m("smudge"),
        process = m("process"),
        textconv = m("textconv"),
        evil = srv.url("evil"),
        good = srv.url("r"),
        cred = m("credential"),
        inc = included.display(),
    ));
    std::fs::write(&cfg, c).unwrap();
    std::fs::write(d.ws.join("a.txt"), "changed by the agent\n").unwrap();
    std::fs::write(
        d.ws.join(".git/objects/info/alternates"),
        outside.display().to_string(),
    )
    .unwrap();

    let id = repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "hostile")
        .unwrap()
        .unwrap();
    assert_eq!(
        repo::push_mode(&d.git_dir, &r, "agent/h").unwrap().0,
        PushMode::New
    );
    repo::push(&d.git_dir, &r, "agent/h", PushMode::New, &Cancel::never()).unwrap();

    let ran: Vec<_> = std::fs::read_dir(&markers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        ran.is_empty(),
        "host-side git ran repository-controlled commands: {ran:?}"
    );
    assert_eq!(
        srv.git("r", &["rev-parse", "agent/h"]).trim(),
        id,
        "pushed to the session's repository"
    );
    assert!(
        srv.git("evil", &["branch", "--list", "agent/h"]).is_empty(),
        "insteadOf was not applied"
    );
    let files = srv.git("r", &["ls-tree", "-r", "--name-only", "agent/h"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [".gitattributes", ".gitmodules", "a.txt"],
        "the workspace, not core.worktree"
    );
    assert_eq!(
        srv.git("r", &["show", "agent/h:a.txt"]),
        "changed by the agent\n",
        "no clean filter"
    );
    assert!(!read(&d.git_dir.join("config")).contains("worktree"));
    assert_no_token(&d);
}

#[test]
fn a_pull_request_head_checks_out_and_a_rewritten_url_or_symlinked_git_dir_is_refused() {
    let srv = server();
    srv.create_repo("r", &[("a.txt", "a\n")]);
    let pr = srv.commit("r", "contrib", &[("a.txt", "from the pr\n")], &[], "pr");
    srv.git("r", &["update-ref", "refs/pull/12/head", &pr]);
    srv.git("r", &["branch", "-D", "contrib"]);
    srv.create_repo("evil", &[("e.txt", "e\n")]);
    let r = remote(&srv, "r");
    let d = dirs();
    let co = checkout(&r, &d, Want::PullHead(12), "agent/pr", Some(1)).unwrap();
    assert_eq!(
        (co.base_ref.as_str(), co.base_commit.as_str()),
        ("refs/pull/12/head", pr.as_str())
    );
    assert_eq!(read(&d.ws.join("a.txt")), "from the pr\n");

    // Even a rewrite in the private config (which only the runner writes)
    // cannot send a push elsewhere.
    std::fs::write(d.ws.join("a.txt"), "x\n").unwrap();
    repo::commit_all(&d.git_dir, &d.ws, &agent(), &runner_id(), "x")
        .unwrap()
        .unwrap();
    let cfg = d.git_dir.join("config");
    let mut c = read(&cfg);
    c.push_str(&format!(
        "[url \"{}\"]\n\tinsteadOf = {}\n",
        srv.url("evil"),
        srv.url("r")
    ));
    std::fs::write(&cfg, c).unwrap();
    let e = repo::push(&d.git_dir, &r, "agent/pr", PushMode::New, &Cancel::never()).unwrap_err();
    assert!(matches!(e, RepoError::BadUrl(_)), "{e:?}");
    assert!(srv
        .git("evil", &["branch", "--list", "agent/pr"])
        .is_empty());

    // A private git dir reached through a symlink is refused.
    let d = dirs();
    let real = d.ws.parent().unwrap().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = d.ws.parent().unwrap().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = repo::checkout(&CheckoutRequest {
        remote: &r,
        want: Want::DefaultBranch,
        target_branch: "agent/s",
        git_dir: &link.join("private.git"),
        workspace: &d.ws,
        depth: None,
        cancel: &Cancel::never(),
        progress: &|_| {},
    })
    .unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(&d.ws).unwrap().count(),
        0,
        "nothing checked out"
    );
}
