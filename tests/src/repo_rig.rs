//! The rig of the suites that work on real repositories: git's own smart
//! HTTP (`git http-backend` behind basic auth over TLS,
//! `test_support::git_server`) holding [`REPO`], a fake of GitHub's REST
//! API backed by it (`test_support::fake_github`), and a real control
//! plane; workers configured with the repository host, its token and,
//! optionally, a fake model provider.

use crate::fake_model::FakeModel;
use crate::{terminal, ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use test_support::fake_github::FakeGitHub;
use test_support::git_server::GitServer;

pub const TOKEN: &str = "ghs_e2eSecretToken0123456789abcdefXYZ";
pub const MODEL_KEY: &str = "sk-fake-repo-0123456789";
pub const REPO: &str = "acme/widget";

/// The project the agent works on: a Python module with a bug and its
/// unittest suite.
pub const PROJECT: &[(&str, &str)] = &[
    ("README.md", "# widget\n\nAdds numbers.\n"),
    ("widget.py", "def add(a, b):\n    return a - b\n"),
    (
        "test_widget.py",
        "import unittest\nimport widget\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(widget.add(2, 3), 5)\n\n\nif __name__ == '__main__':\n    unittest.main()\n",
    ),
];

/// A git server holding [`REPO`], a fake GitHub backed by it, and a
/// control plane.
pub struct Rig {
    /// Everything the rig writes (worker state, tokens, the database).
    pub dir: tempfile::TempDir,
    /// The git server.
    pub git: GitServer,
    /// The forge API in front of it.
    pub github: FakeGitHub,
    /// The control plane.
    pub cp: ControlPlane,
    /// The git server's CA certificate (PEM), for the workers.
    pub ca: PathBuf,
}

impl Rig {
    /// A rig with a control plane started with no extra flags.
    pub fn start() -> Rig {
        Rig::start_with(&[])
    }

    /// A rig whose control plane gets `extra` flags.
    pub fn start_with(extra: &[&str]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let git = GitServer::start("x-access-token", TOKEN);
        git.create_repo(REPO, PROJECT);
        let bare = git.repo_dir(REPO);
        let lookup: test_support::fake_github::BranchLookup =
            Arc::new(move |_o: &str, _r: &str, branch: &str| {
                let out = std::process::Command::new("git")
                    .args(["rev-parse", "--verify", "-q"])
                    .arg(format!("refs/heads/{branch}"))
                    .current_dir(&bare)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            });
        let github = FakeGitHub::start(TOKEN, lookup);
        github.add_repo("acme", "widget", &git.url(REPO), "main");
        github.add_collaborator("acme", "widget", "octocat");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, git.ca_pem()).unwrap();
        let cp = ControlPlane::start_with(&dir.path().join("cp.db"), extra);
        Rig {
            dir,
            git,
            github,
            cp,
            ca,
        }
    }

    /// The worker's extra config: the token in a 0600 file, the repository
    /// host with its forge, loopback exempted from the address guard.
    pub fn worker_config(&self, model: Option<&FakeModel>) -> String {
        let token = self.dir.path().join("git.token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut extra = format!(
            "\n[network]\nallow_cidrs = [\"127.0.0.0/8\"]\n\n[repositories]\nca_file = {:?}\n\n[[repositories.hosts]]\nhost = \"127.0.0.1:{}\"\ntoken = {{ file = {:?} }}\napi_base = {:?}\n",
            self.ca.display().to_string(),
            self.git.port(),
            token.display().to_string(),
            self.github.api_base(),
        );
        if let Some(m) = model {
            let key = self.dir.path().join("model.key");
            std::fs::write(&key, format!("{MODEL_KEY}\n")).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            extra.push_str(&format!(
                "\n[[providers]]\nname = \"fake\"\napi = \"openai\"\nbase_url = {:?}\nmodels = [\"fake-coder\"]\napi_key = {{ file = {:?} }}\n",
                m.base_url,
                key.display().to_string()
            ));
        }
        extra
    }

    /// Starts a worker whose log (debug level) goes to `worker.log`.
    pub fn worker(&self, name: &str, model: Option<&FakeModel>) -> (WorkerProc, PathBuf) {
        self.worker_with(name, model, "")
    }

    /// [`Rig::worker`] with `extra` appended to its config (after the
    /// model's `[[providers]]` entry, so bare keys land in it).
    pub fn worker_with(
        &self,
        name: &str,
        model: Option<&FakeModel>,
        extra: &str,
    ) -> (WorkerProc, PathBuf) {
        let cfg = WorkerProc::configure(
            self.dir.path(),
            name,
            &self.cp.url,
            "",
            &format!("{}{extra}", self.worker_config(model)),
        );
        let (ok, out) = WorkerProc::login(&self.cp, &cfg);
        assert!(ok, "login: {out}");
        spawn_worker(self.dir.path(), &cfg, name, "debug")
    }

    /// Queues a session; (status, body).
    pub fn queue(
        &self,
        agent: Value,
        title: &str,
        repo: Value,
        script: Option<Value>,
    ) -> (u16, Value) {
        let mut body = json!({
            "workspace": "w", "agent_profile": "p", "agent": agent,
            "source": {"title": title}, "repo": repo,
        });
        if let Some(s) = script {
            body["script"] = s;
        }
        self.cp.post("/v1/sessions", &body)
    }

    pub fn scripted(&self, title: &str, repo: Value, script: Value) -> String {
        let (s, b) = self.queue(
            json!({"name": "scripter", "model": "script", "enabled_tools": ["Bash", "Read", "Write", "Edit"]}),
            title,
            repo,
            Some(script),
        );
        assert_eq!(s, 200, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    pub fn done(&self, id: &str) -> Value {
        self.cp.wait_for(id, 120, terminal)
    }

    /// Runs a scripted session that must fail; its view and outcome.
    pub fn fails(&self, title: &str, repo: Value, script: &Value) -> (Value, String) {
        let id = self.scripted(title, repo, script.clone());
        let v = self.done(&id);
        assert_eq!(v["session"]["state"], "error", "{v}");
        let o = v["session"]["outcome"].as_str().unwrap_or("").to_string();
        (v, o)
    }

    pub fn branch_tip(&self, branch: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "-q"])
            .arg(format!("refs/heads/{branch}"))
            .current_dir(self.git.repo_dir(REPO))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// Starts `runner worker --config cfg` with log filter `level`, its stderr
/// in `<dir>/<name>.log`.
pub fn spawn_worker(
    dir: &std::path::Path,
    cfg: &std::path::Path,
    name: &str,
    level: &str,
) -> (WorkerProc, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let child = std::process::Command::new(crate::bin("runner"))
        .args(["worker", "--config", cfg.to_str().unwrap()])
        .env("RUNNER_LOG", level)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (
        WorkerProc {
            child,
            state: cfg.parent().unwrap().to_path_buf(),
        },
        log,
    )
}
