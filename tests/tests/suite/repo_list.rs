//! `GET /v0/repositories` end to end: the real `runner worker` reports the
//! static `list` of a push-only host (a real git server) and what a fake
//! GitHub lists for its token (two pages), the real control plane answers
//! their union to an API key — once a minute — and a listed URL is one a
//! session checks out. A forge that stops listing is warned about once,
//! keeps its last good listing, and never stops the worker; a forge API
//! the policy does not let the runner reach is never listed.

use e2e::{terminal, ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::fake_github::FakeGitHub;
use test_support::git_server::GitServer;

const TOKEN: &str = "ghs_listE2eSecretToken0123456789abcXYZ";
/// The forge's web host in the config; nothing ever connects to it (its
/// API base is the fake on loopback).
const FORGE_HOST: &str = "github.test";
/// Repositories the fake GitHub lists: more than one page of 100.
const LISTED: usize = 120;

struct Rig {
    dir: tempfile::TempDir,
    git: GitServer,
    github: FakeGitHub,
    cp: ControlPlane,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let git = GitServer::start("x-access-token", TOKEN);
        git.create_repo(
            "acme/widget",
            &[("widget.py", "def add(a, b):\n    return a + b\n")],
        );
        let github = FakeGitHub::start(TOKEN, Arc::new(|_: &str, _: &str, _: &str| None));
        for i in 0..LISTED {
            github.add_repo(
                "octo",
                &format!("repo-{i:03}"),
                "https://github.test/x.git",
                "main",
            );
        }
        let cp = ControlPlane::start(&dir.path().join("cp.db"));
        Rig {
            dir,
            git,
            github,
            cp,
        }
    }

    /// The worker's config: the git server's host (push only, a static
    /// list) and the forge host (listed through the fake's API).
    fn config(&self, name: &str, allow_loopback: bool) -> PathBuf {
        let token = self.dir.path().join("git.token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ca = self.dir.path().join("ca.pem");
        std::fs::write(&ca, self.git.ca_pem()).unwrap();
        let network = if allow_loopback {
            "\n[network]\nallow_cidrs = [\"127.0.0.0/8\"]\n"
        } else {
            ""
        };
        let extra = format!(
            "{network}\n[repositories]\nca_file = {ca:?}\nreport_interval_seconds = 1\n\n[[repositories.hosts]]\nhost = \"127.0.0.1:{port}\"\nforge = \"none\"\ntoken = {{ file = {token:?} }}\nlist = [\"acme/widget\", \"acme/widget\", \"ops/infra\"]\n\n[[repositories.hosts]]\nhost = \"{FORGE_HOST}\"\ntoken = {{ file = {token:?} }}\napi_base = {api:?}\n",
            ca = ca.display().to_string(),
            port = self.git.port(),
            token = token.display().to_string(),
            api = self.github.api_base(),
        );
        let cfg = WorkerProc::configure(self.dir.path(), name, &self.cp.url, "", &extra);
        let (ok, out) = WorkerProc::login(&self.cp, &cfg);
        assert!(ok, "login: {out}");
        cfg
    }

    /// Starts a worker (log level info) whose stderr goes to `<name>.log`.
    fn worker(&self, cfg: &Path, name: &str) -> (WorkerProc, PathBuf) {
        e2e::repo_rig::spawn_worker(self.dir.path(), cfg, name, "info")
    }

    /// A key of alice's (`admin api-key-add NAME --user alice`), as the
    /// Basic header `-u KEY:` sends.
    fn key(&self) -> String {
        use base64::Engine;
        let k = self
            .cp
            .admin(&["api-key-add", "lister", "--user", e2e::USER], None);
        let k = k["api_key"].as_str().unwrap();
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{k}:"))
        )
    }

    /// `GET /v0/repositories`: (status, Retry-After, body).
    fn list(&self, auth: &str) -> (u16, Option<String>, Value) {
        let r = ureq::get(&format!("{}/v0/repositories", self.cp.url))
            .set("Authorization", auth)
            .call();
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = resp.status();
        let retry = resp.header("retry-after").map(str::to_string);
        let text = resp.into_string().unwrap();
        (
            status,
            retry,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Waits until `log` holds `needle` at least `times` times; the log.
fn wait_log(log: &Path, needle: &str, times: usize, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return text;
        }
        assert!(
            Instant::now() < until,
            "no {times}× {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn urls(b: &Value) -> Vec<String> {
    b["repositories"]
        .as_array()
        .unwrap_or_else(|| panic!("no list: {b}"))
        .iter()
        .map(|r| r["repository"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_worker_reports_its_static_list_and_its_forges_and_v0_lists_them_once_a_minute() {
    let rig = Rig::start();
    let cfg = rig.config("w1", true);
    let (_w, log) = rig.worker(&cfg, "w1");
    let all = LISTED + 2;
    wait_log(&log, &format!("reported {all} repositories"), 1, 60);
    let key = rig.key();
    let (st, _, b) = rig.list(&key);
    assert_eq!(st, 200, "{b}");
    let got = urls(&b);
    let git = format!("https://127.0.0.1:{}", rig.git.port());
    let mut want: Vec<String> = (0..LISTED)
        .map(|i| format!("https://{FORGE_HOST}/octo/repo-{i:03}"))
        .collect();
    want.push(format!("{git}/acme/widget"));
    want.push(format!("{git}/ops/infra"));
    want.sort();
    assert_eq!(got, want, "the static list once, both forge pages, sorted");
    let widget = &b["repositories"][0];
    assert_eq!(
        (&widget["owner"], &widget["name"]),
        (&json!("acme"), &json!("widget"))
    );
    // Both pages were asked for, with the token.
    let pages: Vec<String> = rig
        .github
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/user/repos") && r.token_ok)
        .map(|r| r.path)
        .collect();
    assert!(
        pages.contains(&"/user/repos?per_page=100&page=2".to_string()),
        "{pages:?}"
    );

    // The limit: the next call within the minute is refused, with when.
    let (st, retry, b) = rig.list(&key);
    assert_eq!(st, 429, "{b}");
    let secs: u64 = retry.expect("Retry-After").parse().expect("whole seconds");
    assert!((1..=60).contains(&secs), "{secs}");
    assert_eq!(b["error"]["type"], "rate_limited");
    assert!(
        b["message"].as_str().unwrap().contains("once a minute"),
        "{b}"
    );

    // A listed URL is one a session checks out.
    let (st, s) = rig.cp.post(
        "/v1/sessions",
        &json!({
            "workspace": "w", "agent_profile": "p",
            "agent": {"name": "scripter", "model": "script", "enabled_tools": ["Bash"]},
            "source": {"title": "listed"},
            "repo": {"repository": got.iter().find(|u| u.ends_with("/acme/widget")).unwrap()},
            "script": [{"tool": "Bash", "input": {"command": "sed -n 2p widget.py | tr a-z A-Z"}}],
        }),
    );
    assert_eq!(st, 200, "{s}");
    let v = rig.cp.wait_for(s["id"].as_str().unwrap(), 120, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert!(v.to_string().contains("RETURN A + B"), "{v}");

    // The forge stops accepting the token: one warning naming the host,
    // however many reports follow; its last good listing is still reported.
    rig.github.set_token("ghs_rotated");
    let before = std::fs::read_to_string(&log)
        .unwrap()
        .matches("reported ")
        .count();
    let text = wait_log(&log, "reported ", before + 3, 30);
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("listing the repositories of github.test"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("401"),
        "{}",
        warned[0]
    );
    assert!(
        text.lines()
            .rev()
            .find(|l| l.contains("reported "))
            .unwrap()
            .contains(&format!("reported {all} repositories")),
        "the last good listing stays in the report"
    );
    // Back: said once, and listing goes on.
    rig.github.set_token(TOKEN);
    wait_log(&log, "works again", 1, 30);
    assert!(!text.contains(TOKEN), "the token is in the worker's log");
    let db = std::fs::read(rig.dir.path().join("cp.db")).unwrap();
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
}

#[test]
fn a_forge_api_the_policy_does_not_let_the_runner_reach_is_never_listed() {
    let rig = Rig::start();
    // Without allow_cidrs the default policy refuses loopback addresses:
    // the fake's API is never dialled, the static list is still reported.
    let cfg = rig.config("w2", false);
    let (mut w, log) = rig.worker(&cfg, "w2");
    let text = wait_log(&log, "reported 2 repositories", 1, 60);
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("listing the repositories of github.test"))
        .collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert!(refused[0].contains("denied"), "{}", refused[0]);
    assert!(
        !rig.github
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/user/repos")),
        "the forge was reached: {:?}",
        rig.github.requests()
    );
    let (st, _, b) = rig.list(&rig.key());
    assert_eq!(st, 200, "{b}");
    assert_eq!(urls(&b).len(), 2, "{b}");
    // The refusal is a decision on the record, like every connection's.
    let audit = std::fs::read_to_string(w.state.join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("net.connect") && l.contains("\"runner\"") && l.contains("deny")),
        "{audit}"
    );
    // The worker keeps running.
    assert!(w.child.try_wait().unwrap().is_none(), "the worker stopped");
}

#[test]
fn a_worker_whose_owner_is_unknown_registers_again_and_reports() {
    let rig = Rig::start();
    let cfg = rig.config("w3", true);
    let (_w, log) = rig.worker(&cfg, "w3");
    let all = format!("reported {} repositories", LISTED + 2);
    let before = wait_log(&log, &all, 1, 60).matches(&all).count();
    // As a control plane upgraded under a running worker would have it:
    // the worker registered before workers had owners.
    let db = rusqlite::Connection::open(rig.dir.path().join("cp.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        db.execute("UPDATE workers SET user_name = NULL", [])
            .unwrap(),
        1
    );
    // The next report is refused once; the worker registers again (the
    // same worker, now owned) and reports, without a warning.
    let text = wait_log(&log, &all, before + 2, 60);
    assert!(!text.contains("worker_not_owned"), "{text}");
    let owners: Vec<Option<String>> = db
        .prepare("SELECT user_name FROM workers")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        owners,
        [Some(e2e::USER.to_string())],
        "one worker, owned again"
    );
}
