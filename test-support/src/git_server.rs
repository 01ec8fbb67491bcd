//! A real smart-HTTP git server on loopback for the runner's git tests:
//! HTTPS with a self-signed certificate, Basic auth against one user and
//! token, and `git http-backend` (the git CLI's own server side) behind it
//! as CGI with a cleared environment. The git CLI is used here, in the
//! fixture, to build and inspect the served repositories — never by the
//! code under test.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// One request the server saw (never the credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// GET or POST.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Whether an `Authorization` header came with it.
    pub had_auth: bool,
}

struct Shared {
    user: String,
    token: Mutex<String>,
    root: PathBuf,
    home: PathBuf,
    backend: PathBuf,
    log: Mutex<Vec<Logged>>,
}

/// The running server; dropping it stops it and deletes its repositories.
pub struct GitServer {
    shared: Arc<Shared>,
    port: u16,
    ca_pem: String,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl GitServer {
    /// Starts a server accepting `Authorization: Basic user:token`.
    pub fn start(user: &str, token: &str) -> GitServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let exec = Command::new("git").arg("--exec-path").output().unwrap();
        assert!(exec.status.success(), "git --exec-path failed");
        let backend =
            PathBuf::from(String::from_utf8(exec.stdout).unwrap().trim()).join("git-http-backend");
        assert!(backend.exists(), "{} is missing", backend.display());
        let shared = Arc::new(Shared {
            user: user.into(),
            token: Mutex::new(token.into()),
            root,
            home,
            backend,
            log: Mutex::new(Vec::new()),
        });
        let ck = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .unwrap();
        let ca_pem = ck.cert.pem();
        let tls = tls_config(ck.cert.der().to_vec(), ck.key_pair.serialize_der());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(256 << 20))
            .with_state(shared.clone());
        runtime.spawn(serve(listener, app, tls));
        GitServer {
            shared,
            port,
            ca_pem,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// The server certificate (self-signed, for 127.0.0.1 and localhost), to
    /// trust with `reqwest::Certificate::from_pem`.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// `https://127.0.0.1:<port>/<repo>.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{repo}.git", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bare repository's directory.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.shared.root.join(format!("{repo}.git"))
    }

    /// Creates a bare repository whose `main` has one commit with `files`;
    /// returns that commit's id.
    pub fn create_repo(&self, name: &str, files: &[(&str, &str)]) -> String {
        let dir = self.repo_dir(name);
        run_git(
            &self.shared.home,
            &self.shared.root,
            &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()],
        );
        self.commit(name, "main", files, &[], "initial commit")
    }

    /// Adds a commit to `branch` (created from `main` if absent) writing
    /// `files` and deleting `delete`; returns its id.
    pub fn commit(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        delete: &[&str],
        message: &str,
    ) -> String {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let h = &self.shared.home;
        let bare = self.repo_dir(repo);
        run_git(h, w, &["init", "-q", "-b", branch]);
        run_git(
            h,
            w,
            &[
                "fetch",
                "-q",
                bare.to_str().unwrap(),
                "+refs/heads/*:refs/remotes/o/*",
            ],
        );
        let have = |b: &str| {
            git_ok(
                h,
                w,
                &[
                    "rev-parse",
                    "--verify",
                    "-q",
                    &format!("refs/remotes/o/{b}"),
                ],
            )
        };
        if have(branch) {
            run_git(h, w, &["reset", "-q", "--hard", &format!("o/{branch}")]);
        } else if have("main") {
            run_git(h, w, &["reset", "-q", "--hard", "o/main"]);
        }
        for (path, content) in files {
            let p = w.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        for path in delete {
            std::fs::remove_file(w.join(path)).unwrap();
        }
        run_git(h, w, &["add", "-A"]);
        run_git(h, w, &["commit", "-q", "--allow-empty", "-m", message]);
        run_git(
            h,
            w,
            &[
                "push",
                "-q",
                "-f",
                bare.to_str().unwrap(),
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
        run_git(h, w, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs git in the bare repository (`log`, `rev-parse`, `tag`,
    /// `config`…); panics on failure, returns stdout.
    pub fn git(&self, repo: &str, args: &[&str]) -> String {
        run_git(&self.shared.home, &self.repo_dir(repo), args)
    }

    /// Replaces the accepted token (a revocation).
    pub fn set_token(&self, token: &str) {
        *self.shared.token.lock().unwrap() = token.into();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Installs a `pre-receive` hook in the served repository that refuses
    /// every push with `message`.
    pub fn reject_pushes(&self, repo: &str, message: &str) {
        use std::os::unix::fs::PermissionsExt;
        let hooks = self.repo_dir(repo).join("hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        let hook = hooks.join("pre-receive");
        std::fs::write(&hook, format!("#!/bin/sh\necho '{message}' >&2\nexit 1\n")).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// git with a hermetic environment (no user or system config).
/// The git CLI in `dir` with a hermetic environment: no user or system
/// config (`HOME` is `home`), a fixed identity. For fixtures only — the
/// runner itself never runs git.
pub fn hermetic_git(home: &Path, dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid");
    c
}

fn git_cmd(home: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = hermetic_git(home, dir);
    c.args(args);
    c
}

fn run_git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(home, dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn git_ok(home: &Path, dir: &Path, args: &[&str]) -> bool {
    git_cmd(home, dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn tls_config(cert: Vec<u8>, key: Vec<u8>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    Arc::new(cfg)
}

async fn serve(listener: tokio::net::TcpListener, app: Router, cfg: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let expected = {
        use base64::Engine;
        let token = s.token.lock().unwrap().clone();
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{token}", s.user))
        )
    };
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let shown = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let log = |status: u16| {
        s.log.lock().unwrap().push(Logged {
            method: method.to_string(),
            path: shown.clone(),
            status,
            had_auth: auth.is_some(),
        })
    };
    if auth.as_deref() != Some(expected.as_str()) {
        log(401);
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
        )
            .into_response();
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut env: Vec<(&str, String)> = vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", s.home.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_PROJECT_ROOT", s.root.display().to_string()),
        ("GIT_HTTP_EXPORT_ALL", "1".into()),
        ("PATH_INFO", path.clone()),
        ("QUERY_STRING", query.clone()),
        ("REQUEST_METHOD", method.to_string()),
        ("CONTENT_TYPE", header("content-type").unwrap_or_default()),
        ("CONTENT_LENGTH", body.len().to_string()),
        ("REMOTE_USER", s.user.clone()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
    ];
    if let Some(ce) = header("content-encoding") {
        env.push(("HTTP_CONTENT_ENCODING", ce));
    }
    if let Some(gp) = header("git-protocol") {
        env.push(("GIT_PROTOCOL", gp));
    }
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let backend = s.backend.clone();
    let out = tokio::task::spawn_blocking(move || cgi(&backend, &env, &body))
        .await
        .unwrap();
    let (status, hdrs, content) = match out {
        Ok(x) => x,
        Err(e) => {
            log(500);
            return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response();
        }
    };
    log(status);
    let mut resp = Response::builder().status(status);
    for (k, v) in hdrs {
        resp = resp.header(k, v);
    }
    resp.body(axum::body::Body::from(content)).unwrap()
}

type CgiOut = (u16, Vec<(String, String)>, Vec<u8>);

/// Runs the CGI backend: body on stdin, headers and body from stdout.
fn cgi(backend: &Path, env: &[(String, String)], body: &[u8]) -> Result<CgiOut, String> {
    use std::io::Write;
    let mut child = Command::new(backend)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning git-http-backend: {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if out.stdout.is_empty() {
        return Err(format!(
            "git-http-backend failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let raw = out.stdout;
    let (head_end, skip) = match find(&raw, b"\r\n\r\n") {
        Some(i) => (i, 4),
        None => match find(&raw, b"\n\n") {
            Some(i) => (i, 2),
            None => return Err("git-http-backend sent no header end".into()),
        },
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut status = 200u16;
    let mut hdrs = Vec::new();
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        if k.eq_ignore_ascii_case("status") {
            status = v
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
        } else {
            hdrs.push((k.trim().to_string(), v));
        }
    }
    Ok((status, hdrs, raw[head_end + skip..].to_vec()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
