//! Real work on real repositories, end to end: the real `control-plane`
//! and `runner worker` binaries, git's own smart HTTP (`git http-backend`
//! behind basic auth over TLS, `test_support::git_server`) and a fake of
//! GitHub's REST API that speaks its wire format
//! (`test_support::fake_github`). A session clones at a ref, edits, runs
//! the project's tests in Bash, delivers a branch and a pull request; the
//! token never appears anywhere it must not.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::repo_rig::{Rig, MODEL_KEY, PROJECT, REPO, TOKEN};
use e2e::terminal;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use test_support::fake_github::FakePull;

fn state(v: &Value) -> &str {
    v["session"]["state"].as_str().unwrap_or("")
}

fn outcome(v: &Value) -> String {
    v["session"]["outcome"].as_str().unwrap_or("").to_string()
}

/// The session's activities of one type.
fn of_type<'a>(v: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v["activities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| &a["activity"])
        .filter(move |a| a["type"] == kind)
}

fn progress(v: &Value) -> Vec<String> {
    of_type(v, "progress")
        .map(|a| a["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn decisions_of(v: &Value, operation: &str) -> Vec<Value> {
    of_type(v, "policy_decision")
        .map(|a| a["record"].clone())
        .filter(|r| r["action"]["operation"] == operation)
        .collect()
}

/// Every file under `dir` (following nothing), as bytes.
fn grep_tree(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                if let Ok(bytes) = std::fs::read(&p) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        hits.push(p);
                    }
                }
            }
        }
    }
    hits
}

/// The token, and its base64 forms in a Basic header, appear nowhere in
/// `dir` (the worker's state: workspaces, clones, audit log, logs) nor in
/// the control plane's database.
fn assert_no_token(rig: &Rig, extra: &[&str]) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let needles = [
        TOKEN.to_string(),
        b64.encode(format!("x-access-token:{TOKEN}")),
        b64.encode(format!("runner-bot:{TOKEN}")),
        b64.encode(format!(":{TOKEN}")),
    ];
    for n in &needles {
        let mut hits: Vec<PathBuf> = grep_tree(rig.dir.path(), n.as_bytes())
            .into_iter()
            .filter(|p| !p.ends_with("git.token"))
            .collect();
        hits.sort();
        assert!(hits.is_empty(), "the token is in {hits:?}");
        for e in extra {
            assert!(!e.contains(n.as_str()), "the token is in {e}");
        }
    }
}

fn model_repo_session(rig: &Rig) -> String {
    let (s, b) = rig.queue(
        json!({"name": "coder", "model": "fake-coder", "enabled_tools": ["Bash", "Read", "Write", "Edit"],
               "system_prompt": "You fix small programs."}),
        "Fix add in widget",
        json!({"repository": rig.git.url(REPO), "ref": "main", "auto_create_pr": true, "reviewers": ["octocat"]}),
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert!(
        b["repo"]["branch_name"]
            .as_str()
            .unwrap()
            .starts_with("runner/fix-add-in-widget-"),
        "{b}"
    );
    b["id"].as_str().unwrap().to_string()
}

fn call(tool: &str, args: Value) -> Step {
    Step::Call(vec![(tool.to_string(), args)])
}

#[test]
fn a_session_clones_fixes_tests_and_delivers_a_branch_and_a_pull_request_then_a_follow_up_adds_a_commit(
) {
    let rig = Rig::start();
    let fake = FakeModel::start(
        Wire::OpenAi,
        MODEL_KEY,
        vec![
            call(
                "Bash",
                json!({"command": "python3 -m unittest -q 2>&1; git status -sb; git log --oneline -1"}),
            ),
            call(
                "Edit",
                json!({"path": "widget.py", "old": "a - b", "new": "int(a) + int(b)"}),
            ),
            call(
                "Bash",
                json!({"command": "python3 -m unittest -q 2>&1 && echo TESTS-PASS; env"}),
            ),
            Step::Text("Fixed add() to add its arguments".into()),
            // The follow-up run.
            call(
                "Write",
                json!({"path": "CHANGELOG.md", "content": "- add() adds\n"}),
            ),
            Step::Text("Added a changelog entry".into()),
        ],
    );
    let (_w, log) = rig.worker("w1", Some(&fake));
    let id = model_repo_session(&rig);
    let v = rig.done(&id);
    assert_eq!(state(&v), "complete", "{v}");
    let branch = v["session"]["repo"]["branch_name"]
        .as_str()
        .unwrap()
        .to_string();
    // Checked out before the first tool call, at the ref, on the branch.
    let first = &fake.requests()[1];
    let results = fake.last_results(first);
    assert!(results[0].0.contains("FAILED"), "{results:?}");
    assert!(
        results[0].0.contains("## "),
        "git status works in the sandbox: {results:?}"
    );
    assert!(results[0].0.contains("initial commit"), "{results:?}");
    let edit = &fake.last_results(&fake.requests()[2])[0];
    assert!(
        !edit.1 && edit.0.contains("replacements"),
        "the Edit worked: {edit:?}"
    );
    let third = &fake.requests()[3];
    let out = &fake.last_results(third)[0].0;
    assert!(out.contains("TESTS-PASS"), "{out}");
    assert!(
        !out.contains(TOKEN),
        "the token is in the sandbox's environment"
    );
    // Delivered: the branch on the server, author the agent, committer the runner.
    let tip = rig.branch_tip(&branch).expect("the branch was pushed");
    let log1 = rig
        .git
        .git(REPO, &["log", "-1", "--format=%an|%cn|%s", &tip]);
    assert_eq!(log1.trim(), "coder|runner|Fixed add() to add its arguments");
    let file = rig.git.git(REPO, &["show", &format!("{tip}:widget.py")]);
    assert!(file.contains("int(a) + int(b)"), "{file}");
    assert!(rig.branch_tip("main").is_some());
    // The pull request: opened on GitHub, the session's external URL.
    let pulls = rig.github.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0].head_ref, branch);
    assert_eq!(pulls[0].base_ref, "main");
    let url = v["session"]["external_url"].as_str().unwrap().to_string();
    assert!(url.ends_with("/acme/widget/pull/1"), "{url}");
    let out = outcome(&v);
    assert!(out.contains(&branch) && out.contains(&url), "{out}");
    assert!(
        v["activities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["activity"]["type"] == "external_url_updated"),
        "{v}"
    );
    assert!(
        progress(&v).iter().any(|p| p.starts_with("checking out")),
        "{v}"
    );
    for op in ["git.fetch", "git.push", "pr.create"] {
        let d = decisions_of(&v, op);
        assert_eq!(d.len(), 1, "{op}: {d:?}");
        assert_eq!(d[0]["result"], "allow", "{op}: {d:?}");
    }
    assert_eq!(
        decisions_of(&v, "git.push")[0]["action"]["git"]["mode"],
        "new"
    );

    // A follow-up continues on the same branch: one more commit, same PR.
    let (s, b) = rig.cp.post(
        &format!("/v1/sessions/{id}/follow-up"),
        &json!({"by": "alice", "message": "add a changelog entry"}),
    );
    assert!(s == 200 || s == 202, "{s} {b}");
    let v2 = rig.cp.wait_for(&id, 120, |v| {
        terminal(v) && decisions_of(v, "git.push").len() == 2
    });
    assert_eq!(state(&v2), "complete", "{v2}");
    let tip2 = rig.branch_tip(&branch).unwrap();
    assert_ne!(tip2, tip);
    let parents = rig
        .git
        .git(REPO, &["log", "--format=%s", &format!("main..{tip2}")]);
    assert_eq!(
        parents.lines().collect::<Vec<_>>(),
        [
            "Added a changelog entry",
            "Fixed add() to add its arguments"
        ]
    );
    assert_eq!(
        decisions_of(&v2, "git.push")[1]["action"]["git"]["mode"],
        "update"
    );
    assert_eq!(rig.github.pulls().len(), 1);
    assert_eq!(v2["session"]["external_url"].as_str().unwrap(), url);

    // The token is nowhere: workspace (with its .git), clones, audit log,
    // activities, database, logs, the sandbox's environment.
    let session_json = v2.to_string();
    let cp_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(cp_log.contains("worker"), "the log was captured");
    assert_no_token(&rig, &[&session_json]);
    let ws = rig.dir.path().join("w1/workspaces").join(&id);
    assert!(ws.join(".git/HEAD").exists(), "the agent has a .git");
    assert!(grep_tree(&ws, TOKEN.as_bytes()).is_empty());
    let cfg = std::fs::read_to_string(ws.join(".git/config")).unwrap();
    assert!(
        !cfg.contains("127.0.0.1"),
        "no remote URL in the agent's .git: {cfg}"
    );
}

#[test]
fn refused_and_broken_deliveries_fail_the_session_with_the_reason_and_leak_nothing() {
    let rig = Rig::start();
    // A branch someone else owns, with a commit the session lacks.
    rig.git.commit(
        REPO,
        "taken",
        &[("other.txt", "theirs\n")],
        &[],
        "their work",
    );
    let taken_tip = rig.branch_tip("taken").unwrap();
    let main_tip = rig.branch_tip("main").unwrap();
    let (_w, log) = rig.worker("w2", None);
    let edit = json!([{"tool": "Bash", "input": {"command": "echo change >> README.md"}}]);
    let url = rig.git.url(REPO);

    // Pushing to the default branch: denied by policy, main untouched.
    let (v, o) = rig.fails(
        "to main",
        json!({"repository": url, "branch_name": "main"}),
        &edit,
    );
    assert!(
        o.contains("default branch") && o.contains("kept locally"),
        "{o}"
    );
    assert_eq!(rig.branch_tip("main").unwrap(), main_tip);
    assert_eq!(decisions_of(&v, "git.push")[0]["result"], "deny");

    // A force push over someone's branch: denied, their commit kept.
    let (v, o) = rig.fails(
        "force",
        json!({"repository": url, "branch_name": "taken"}),
        &edit,
    );
    assert!(o.contains("force push"), "{o}");
    assert_eq!(
        decisions_of(&v, "git.push")[0]["action"]["git"]["mode"],
        "force"
    );
    assert_eq!(rig.branch_tip("taken").unwrap(), taken_tip);

    // A missing ref: the checkout fails naming it; no tool ran.
    let (v, o) = rig.fails(
        "missing",
        json!({"repository": url, "ref": "no-such-branch"}),
        &edit,
    );
    assert!(o.contains("no-such-branch"), "{o}");
    assert!(
        !v["activities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["activity"]["type"] == "policy_decision"
                && a["activity"]["record"]["action"]["kind"] == "shell.exec"),
        "no tool ran: {v}"
    );

    // A host this worker has no entry for: denied before any connection.
    let (_, o) = rig.fails(
        "elsewhere",
        json!({"repository": "https://git.invalid/acme/widget.git"}),
        &edit,
    );
    assert!(o.contains("not a repository host"), "{o}");

    // Bad URLs never get queued.
    for bad in [
        json!({"repository": "http://127.0.0.1/acme/widget.git"}),
        json!({"repository": format!("https://runner-bot:{TOKEN}@127.0.0.1/acme/widget.git")}),
        json!({"repository": "git@github.com:acme/widget.git"}),
        json!({"repository": url, "ref": "a..b"}),
        json!({"repository": url, "branch_name": "-x"}),
        json!({"ref": "main"}),
    ] {
        let (s, b) = rig.queue(
            json!({"name": "scripter", "model": "script"}),
            "bad",
            bad.clone(),
            Some(edit.clone()),
        );
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(
            b["error"].is_object() || b["message"].is_string() || b["error"].is_string(),
            "{b}"
        );
        assert!(!b.to_string().contains(TOKEN), "{b}");
    }

    // A revoked token: the checkout fails saying the credentials were
    // refused, and the old token is still nowhere.
    rig.git.set_token("ghs_rotatedTokenValue999");
    let (_, o) = rig.fails("revoked", json!({"repository": url}), &edit);
    let o = o.to_lowercase();
    assert!(
        o.contains("credential") || o.contains("unauthori") || o.contains("401"),
        "{o}"
    );
    rig.git.set_token(TOKEN);

    // A push the server refuses (a pre-receive hook): the session fails
    // with the server's reason.
    rig.git.reject_pushes(REPO, "pushes are frozen");
    let (_, o) = rig.fails("frozen", json!({"repository": url}), &edit);
    assert!(o.contains("kept locally"), "{o}");

    let all = rig.cp.get("/v1/sessions?limit=50").1.to_string();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_no_token(&rig, &[&all, &log]);
}

#[test]
fn repository_content_and_agent_written_git_state_run_nothing_on_the_host() {
    let rig = Rig::start();
    let marker_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(marker_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = |n: &str| marker_dir.path().join(n);
    let m = |n: &str| marker(n).display().to_string();
    // Content that would run code under a git CLI: a filter driver named by
    // .gitattributes, a file:// submodule.
    rig.git.commit(
        REPO,
        "main",
        &[
            (".gitattributes", "*.py filter=evil\n"),
            (
                ".gitmodules",
                &format!(
                    "[submodule \"s\"]\n\tpath = s\n\turl = file://{}\n",
                    marker_dir.path().display()
                ),
            ),
        ],
        &[],
        "hostile attributes",
    );
    let (_w, _log) = rig.worker("w3", None);
    // The agent writes what a host-side git CLI would run: hooks, a filter
    // driver, fsmonitor, a hooks path, and a remote URL rewrite.
    let script = json!([{"tool": "Bash", "input": {"command": format!(
        "git config filter.evil.smudge 'touch {f}' && git config filter.evil.clean 'touch {f}' && \
         git config core.fsmonitor 'touch {fs}' && git config core.hooksPath /tmp && \
         git config url.https://evil.invalid/.insteadOf https://127.0.0.1 && \
         printf '#!/bin/sh\\ntouch {h}\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; \
         cp .git/hooks/pre-commit .git/hooks/pre-push 2>/dev/null; echo edited >> README.md; true",
        f = m("filter"), fs = m("fsmonitor"), h = m("hook"))}}]);
    let id = rig.scripted("hostile", json!({"repository": rig.git.url(REPO)}), script);
    let v = rig.done(&id);
    assert_eq!(state(&v), "complete", "{v}");
    let branch = v["session"]["repo"]["branch_name"].as_str().unwrap();
    let tip = rig
        .branch_tip(branch)
        .expect("pushed to the real remote, not the rewrite");
    let readme = rig.git.git(REPO, &["show", &format!("{tip}:README.md")]);
    assert!(readme.contains("edited"), "{readme}");
    for n in ["filter", "fsmonitor", "hook"] {
        assert!(!marker(n).exists(), "{n} ran on the host");
    }
    let tree = rig.git.git(REPO, &["ls-tree", "-r", "--name-only", &tip]);
    assert!(!tree.lines().any(|l| l.starts_with(".git/")), "{tree}");
}

/// A session on a pull request: a new branch on top of the pull request's
/// head (`auto_branch`, the default), or more commits on the head branch
/// itself (`auto_branch: false`), whose pull request is the one already
/// open.
#[test]
fn a_session_on_a_pull_request_works_on_its_head() {
    let rig = Rig::start();
    // GitHub's web host is its git host: pull-request URLs name it.
    rig.github
        .set_web_base(&format!("https://127.0.0.1:{}", rig.git.port()));
    let head = rig.git.commit(
        REPO,
        "feature",
        &[("feature.txt", "one\n")],
        &[],
        "start the feature",
    );
    rig.git
        .git(REPO, &["update-ref", "refs/pull/1/head", &head]);
    let mut pull = FakePull::open("acme", "widget", "feature", &head, "main");
    pull.head_repo = Some(("acme/widget".into(), rig.git.url(REPO)));
    assert_eq!(rig.github.add_pull(pull), 1);
    let pr_url = format!("https://127.0.0.1:{}/acme/widget/pull/1", rig.git.port());
    let (_w, _log) = rig.worker("w4", None);
    let script = json!([{"tool": "Bash", "input": {"command": "grep -q one feature.txt && echo two >> feature.txt"}}]);

    // A new branch on the head, and a pull request into the head branch.
    let id = rig.scripted(
        "stacked",
        json!({"pr_url": pr_url, "auto_create_pr": true}),
        script.clone(),
    );
    let v = rig.done(&id);
    assert_eq!(state(&v), "complete", "{v}");
    let branch = v["session"]["repo"]["branch_name"]
        .as_str()
        .unwrap()
        .to_string();
    let tip = rig.branch_tip(&branch).expect("pushed");
    let parent = rig.git.git(REPO, &["rev-parse", &format!("{tip}^")]);
    assert_eq!(parent.trim(), head, "built on the pull request's head");
    let pulls = rig.github.pulls();
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(
        (pulls[1].head_ref.as_str(), pulls[1].base_ref.as_str()),
        (branch.as_str(), "feature")
    );
    assert_eq!(
        rig.branch_tip("feature").unwrap(),
        head,
        "the head branch is untouched"
    );
    assert!(v["session"]["external_url"]
        .as_str()
        .unwrap()
        .ends_with("/pull/2"));

    // More commits on the head branch itself; its pull request is the one
    // already open.
    let id = rig.scripted(
        "same branch",
        json!({"pr_url": pr_url, "auto_branch": false, "auto_create_pr": true}),
        script,
    );
    let v = rig.done(&id);
    assert_eq!(state(&v), "complete", "{v}");
    assert_eq!(v["session"]["repo"]["branch_name"], Value::Null);
    let tip = rig.branch_tip("feature").unwrap();
    assert_ne!(tip, head);
    assert_eq!(
        rig.git.git(REPO, &["rev-parse", &format!("{tip}^")]).trim(),
        head
    );
    assert_eq!(
        decisions_of(&v, "git.push")[0]["action"]["git"]["mode"],
        "update"
    );
    assert_eq!(rig.github.pulls().len(), 2, "no third pull request");
    assert_eq!(v["session"]["external_url"].as_str().unwrap(), pr_url);
}

/// Push-only delivery takes any repository path (GitLab groups, a plain
/// git server); a pull request needs `owner/repo`.
#[test]
fn a_push_only_session_takes_any_repository_path() {
    let rig = Rig::start();
    rig.git.create_repo("group/sub/tool", PROJECT);
    let (_w, _log) = rig.worker("w5", None);
    let edit = json!([{"tool": "Bash", "input": {"command": "echo deeper >> README.md"}}]);
    let url = rig.git.url("group/sub/tool");
    let id = rig.scripted("deep path", json!({"repository": url}), edit.clone());
    let v = rig.done(&id);
    assert_eq!(state(&v), "complete", "{v}");
    let branch = v["session"]["repo"]["branch_name"].as_str().unwrap();
    let readme = rig.git.git(
        "group/sub/tool",
        &["show", &format!("refs/heads/{branch}:README.md")],
    );
    assert!(readme.contains("deeper"), "{readme}");
    let (_, o) = rig.fails(
        "deep path with a pull request",
        json!({"repository": url, "auto_create_pr": true}),
        &edit,
    );
    assert!(o.contains("owner"), "{o}");
}
