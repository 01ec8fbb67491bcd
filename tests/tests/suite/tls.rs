//! HTTPS on the control plane (`--tls-cert`/`--tls-key`): a worker whose
//! config trusts the operator's CA (`worker.ca_file`) signs in and runs a
//! session through it; a client that does not trust the CA fails with a
//! message saying what to set; plain HTTP off loopback is refused.

use e2e::{admin_on, bin, url_query, WorkerProc, PASSWORD, USER};
use serde_json::json;
use std::io::{BufRead, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An operator CA and a server certificate it signed for localhost and
/// 127.0.0.1, written under `dir`: (ca.pem, cert.pem, key.pem).
fn operator_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "e2e operator CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&paths.2, std::fs::Permissions::from_mode(0o600)).unwrap();
    (paths.0, paths.1, paths.2)
}

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path, cert: &Path, key: &Path) -> Served {
    let mut child = Command::new(bin("control-plane"))
        .args(["--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--sweep-ms", "100", "--tls-cert", cert.to_str().unwrap()])
        .args(["--tls-key", key.to_str().unwrap()])
        .env("CONTROL_PLANE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("address line: {line:?}"))
        .to_string();
    Served { child, url }
}

fn trusting(ca: &Path) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `runner login --browser` (the loopback redirect) for `cfg`: the consent form is
/// submitted over HTTPS as [`USER`], and the redirect delivered to the
/// runner's loopback listener.
fn login(cfg: &Path, client: &reqwest::blocking::Client, base: &str) {
    let mut c = Command::new(bin("runner"))
        .args(["login", "--browser", "--config", cfg.to_str().unwrap()])
        .env("RUNNER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with(base), "the authorization URL: {line:?}");
    let mut form = url_query(line.trim());
    form.extend([
        ("username".into(), USER.into()),
        ("password".into(), PASSWORD.into()),
        ("decision".into(), "allow".into()),
    ]);
    let r = client
        .post(format!("{base}/oauth/authorize"))
        .form(&form)
        .send()
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    reqwest::blocking::get(&back).unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(c.wait().unwrap().success(), "runner login: {err}");
}

#[test]
fn a_worker_runs_a_session_through_an_https_control_plane_signed_by_an_operator_ca() {
    let d = tempfile::tempdir().unwrap();
    let (ca, cert, key) = operator_pki(d.path());
    let db = d.path().join("cp.db");
    let cp = serve(&db, &cert, &key);
    assert!(cp.url.starts_with("https://127.0.0.1:"), "{}", cp.url);
    admin_on(&db, &["user-add", USER], Some(PASSWORD));
    let client = trusting(&ca);
    // With TLS on, the public URL (the OAuth issuer, the base of its
    // endpoints) is https:// by default.
    let meta: serde_json::Value = client
        .get(format!("{}/.well-known/oauth-authorization-server", cp.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(meta["issuer"], cp.url.as_str(), "{meta}");
    assert_eq!(
        meta["token_endpoint"],
        format!("{}/oauth/token", cp.url).as_str()
    );

    let cfg = WorkerProc::configure(
        d.path(),
        "w1",
        &cp.url,
        "",
        &format!("ca_file = {:?}\n", ca.display().to_string()),
    );
    login(&cfg, &client, &cp.url);
    let _worker = WorkerProc::spawn(&cfg);
    // runner doctor (the unit's ExecStartPre) checks the transport too.
    let doctor = |cfg: &Path| {
        let out = Command::new(bin("runner"))
            .args(["doctor", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = doctor(&cfg);
    assert!(ok.contains("PASS  control plane"), "{ok}");
    let untrusting = WorkerProc::configure(d.path(), "w2", &cp.url, "", "");
    let bad = doctor(&untrusting);
    assert!(
        bad.contains("FAIL  control plane") && bad.contains("fix: set [worker] ca_file"),
        "{bad}"
    );

    let key = admin_on(&db, &["api-key-add", "tls", "--user", USER], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client
        .post(format!("{}/v1/sessions", cp.url))
        .bearer_auth(&key)
        .json(&json!({
            "workspace": "w", "agent_profile": "p",
            "agent": {"name": "t", "model": "script", "enabled_tools": ["Write"]},
            "source": {"title": "over https"},
            "script": [{"tool": "Write", "input": {"path": "out.txt", "content": "tls\n"}}],
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let until = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let v: serde_json::Value = client
            .get(format!("{}/v1/sessions/{id}", cp.url))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let s = v["session"]["state"].as_str().unwrap_or("").to_string();
        if matches!(s.as_str(), "complete" | "error" | "cancelled") {
            break s;
        }
        assert!(Instant::now() < until, "session not finished: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(state, "complete");

    // `runner run` without the CA: the certificate is not trusted, and the
    // message says what to set.
    let out = Command::new(bin("runner"))
        .args(["run", "--control-plane", &cp.url, "--workspace", "w"])
        .args(["--profile", "p", "--agent", "agent_x", "hello"])
        .env("RUNNER_API_KEY", &key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("not trusted") && err.contains("--ca-file"),
        "{err}"
    );
    // With --ca-file the same call reaches the control plane (which knows
    // no such agent).
    let out = Command::new(bin("runner"))
        .args(["run", "--control-plane", &cp.url, "--workspace", "w"])
        .args(["--profile", "p", "--agent", "agent_x", "hello"])
        .args(["--ca-file", ca.to_str().unwrap()])
        .env("RUNNER_API_KEY", &key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not trusted"), "{err}");
}

#[test]
fn plain_http_off_loopback_is_refused_and_says_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(bin("control-plane"))
        .args(["--db", d.path().join("cp.db").to_str().unwrap()])
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to serve plain HTTP")
            && err.contains("--tls-cert")
            && err.contains("--insecure-http"),
        "{err}"
    );
}
