//! OAuth end to end: the control plane as authorization server, `runner
//! login` as its client (both flows: the loopback redirect, and the device
//! grant through the real verification page), refresh rotation and reuse detection,
//! revocation stopping a worker, API keys refused on agent endpoints, and
//! the encrypted token store's refusals.

use e2e::terminal;
use e2e::{basic, url_query, ControlPlane, WorkerProc};
use serde_json::json;
use std::io::{BufRead, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn form(url: &str, auth: Option<&str>, fields: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut r = ureq::post(url);
    if let Some(a) = auth {
        r = r.set("Authorization", a);
    }
    match r.send_form(fields) {
        Ok(r) => (r.status(), parse(r)),
        Err(ureq::Error::Status(s, r)) => (s, parse(r)),
        Err(e) => panic!("{e}"),
    }
}

fn parse(r: ureq::Response) -> serde_json::Value {
    serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or(json!(null))
}

fn bearer(url: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    match ureq::post(url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
    {
        Ok(r) => (r.status(), parse(r)),
        Err(ureq::Error::Status(s, r)) => (s, parse(r)),
        Err(e) => panic!("{e}"),
    }
}

fn runner_bin() -> std::path::PathBuf {
    e2e::bin("runner")
}

#[test]
fn loopback_login_then_a_worker_runs_sessions_with_the_stored_tokens() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let cfg = WorkerProc::configure(d.path(), "w1", &cp.url, "", "");
    // `runner login` with the loopback redirect: the "browser" is this test.
    let mut login = Command::new(runner_bin())
        .args([
            "login",
            "--browser",
            "--config",
            cfg.to_str().unwrap(),
            "--timeout-seconds",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(login.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let params = url_query(line.trim());
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(get("client_id"), "runner");
    let redirect = get("redirect_uri");
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "{redirect}"
    );
    // The consent page is a page a person can read.
    let page = ureq::get(line.trim()).call().unwrap();
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let html = page.into_string().unwrap();
    assert!(
        html.contains("runner (worker sign-in)") && html.contains("claim queued agent sessions"),
        "{html}"
    );
    // Allow; follow the redirect to the runner's loopback listener.
    let p: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut f = p.clone();
    f.extend([
        ("username", e2e::USER),
        ("password", e2e::PASSWORD),
        ("decision", "allow"),
    ]);
    let r = agent
        .post(&format!("{}/oauth/authorize", cp.url))
        .send_form(&f)
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.header("location").unwrap().to_string();
    assert!(
        loc.starts_with(&redirect) && loc.contains("code=cpac_"),
        "{loc}"
    );
    let done = ureq::get(&loc).call().unwrap().into_string().unwrap();
    assert!(done.contains("Signed in"));
    assert!(login.wait().unwrap().success());
    let mut err = String::new();
    login
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // The file holds no token in clear text, and nothing printed one.
    let state = cfg.parent().unwrap();
    let raw = std::fs::read_to_string(state.join("tokens.enc")).unwrap();
    assert!(!raw.contains("cpat_") && !raw.contains("cprt_"));
    assert!(!err.contains("cpat_") && !err.contains("cprt_") && !line.contains("cpat_"));
    assert_eq!(
        std::fs::metadata(state.join("tokens.enc"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A worker signed in this way runs a session.
    let _w = WorkerProc::spawn(&cfg);
    let id = cp.queue(
        "hello",
        json!([{"tool": "Write", "input": {"path": "a.txt", "content": "x"}}]),
    );
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
}

/// RFC 8628 end to end: `runner login` on a host without a browser uses
/// the device grant; a "person" (this test) approves it through the real
/// verification page over HTTP with the code as printed, and the worker
/// then runs a session on the stored tokens. The paste-the-code flow is
/// gone, with a message saying what to use.
#[test]
fn headless_login_signs_in_by_the_device_grant_through_the_verification_page() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let cfg = WorkerProc::configure(d.path(), "w1", &cp.url, "", "");
    let paste = Command::new(runner_bin())
        .args(["login", "--paste", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(paste.status.code(), Some(2));
    let said = String::from_utf8_lossy(&paste.stderr);
    assert!(said.contains("runner login --device"), "{said}");

    // Denied on the page: `runner login --device` says so and fails.
    let mut denied = Command::new(runner_bin())
        .args(["login", "--device", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Kept open: the runner prints a second line.
    let mut lines = std::io::BufReader::new(denied.stdout.take().unwrap());
    lines.read_line(&mut first).unwrap();
    let code = e2e::url_query(first.trim())
        .into_iter()
        .find(|(k, _)| k == "user_code")
        .unwrap()
        .1;
    assert_eq!(cp.verify_device(&code, "deny").0, 200);
    let out = denied.wait_with_output().unwrap();
    drop(lines);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("denied") && said.contains("runner login"),
        "{said}"
    );

    // No flag: a host without a desktop session gets the device grant.
    let mut login = Command::new(runner_bin())
        .args([
            "login",
            "--config",
            cfg.to_str().unwrap(),
            "--timeout-seconds",
            "60",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUNNER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(login.stdout.take().unwrap());
    let (mut complete, mut second) = (String::new(), String::new());
    out.read_line(&mut complete).unwrap();
    out.read_line(&mut second).unwrap();
    let page_url = format!("{}/oauth/device", cp.url);
    assert!(
        complete.starts_with(&format!("{page_url}?user_code=")),
        "{complete}"
    );
    // "Or open <page> and enter the code XXXX-XXXX"
    let code = second.trim().rsplit(' ').next().unwrap().to_string();
    assert!(
        second.contains(&page_url) && code.len() == 9 && code.as_bytes()[4] == b'-',
        "{second}"
    );
    assert!(code
        .bytes()
        .filter(|b| *b != b'-')
        .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    // The page a person opens: a form, not frameable, no script.
    let page = ureq::get(&page_url).call().unwrap();
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let html = page.into_string().unwrap();
    assert!(
        html.contains("name=user_code") && html.contains("name=password"),
        "{html}"
    );
    // A wrong password decides nothing.
    let r = ureq::post(&page_url).send_form(&[
        ("user_code", &code),
        ("username", e2e::USER),
        ("password", "not the password"),
        ("decision", "allow"),
    ]);
    let Err(ureq::Error::Status(401, _)) = r else {
        panic!("a wrong password is a 401 page")
    };
    // Typed as a person might: lower case, no dash.
    let typed = code.replace('-', "").to_lowercase();
    let (status, done) = cp.verify_device(&typed, "allow");
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Device signed in"), "{done}");
    assert!(login.wait().unwrap().success());
    let mut err = String::new();
    login
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("signed in to"), "{err}");
    assert!(!err.contains("cpat_") && !err.contains("cprt_") && !err.contains("cpdc_"));
    // The code was used: a second decision finds nothing waiting.
    let (status, again) = cp.verify_device(&code, "allow");
    assert_eq!(status, 400, "{again}");
    let state = cfg.parent().unwrap();
    let raw = std::fs::read_to_string(state.join("tokens.enc")).unwrap();
    assert!(!raw.contains("cpat_") && !raw.contains("cprt_"));
    // The stored credentials work: a worker runs a session on them.
    let _w = WorkerProc::spawn(&cfg);
    let id = cp.queue(
        "hello",
        json!([{"tool": "Write", "input": {"path": "a.txt", "content": "x"}}]),
    );
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
}

#[test]
fn api_keys_are_refused_on_agent_endpoints_and_missing_credentials_are_401() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let key = cp.api_key();
    let reg = json!({"workspace": "w", "agent_profile": "p", "runtime": "r", "display_name": "x"});
    let (s, b) = bearer(&format!("{}/v1/workers", cp.url), &key, reg.clone());
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["error"]["type"], "oauth_required");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs an OAuth user access token"),
        "{b}"
    );
    // The same key may queue work.
    let (s, b) = bearer(
        &format!("{}/v1/sessions", cp.url),
        &key,
        json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "script"}, "script": []}),
    );
    assert_eq!(s, 200, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    // No credentials, or made-up ones: 401 with the error body.
    let r = ureq::post(&format!("{}/v1/workers", cp.url))
        .set("Content-Type", "application/json")
        .send_string(&reg.to_string());
    let Err(ureq::Error::Status(401, r)) = r else {
        panic!("expected 401")
    };
    let b: serde_json::Value = parse(r);
    assert_eq!(b["error"]["type"], "unauthorized");
    let (s, _) = bearer(
        &format!("{}/v1/workers", cp.url),
        "cpat_forged",
        reg.clone(),
    );
    assert_eq!(s, 401);
    // A user token works there.
    let (s, b) = bearer(&format!("{}/v1/workers", cp.url), &cp.token(), reg);
    assert_eq!(s, 200, "{b}");
    let worker = b["worker_id"].as_str().unwrap().to_string();
    let (s, _) = bearer(
        &format!("{}/v1/workers/{worker}/sessions/{id}/claim", cp.url),
        &key,
        json!({}),
    );
    assert_eq!(s, 403);
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_whole_sign_in() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let secret = cp.admin(
        &[
            "client-add",
            "ci",
            "--name",
            "CI",
            "--confidential",
            "--redirect-uri",
            "http://127.0.0.1/cb",
        ],
        None,
    )["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Basic {}", basic("ci", &secret));
    let token_url = format!("{}/oauth/token", cp.url);
    let code = cp
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "ci"),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
            ("state", "x"),
        ])
        .unwrap();
    let (s, first) = form(
        &token_url,
        Some(&auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
        ],
    );
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    // A code works once.
    let (s, b) = form(
        &token_url,
        Some(&auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
        ],
    );
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    // Wrong client secret: 401 invalid_client.
    let (s, b) = form(
        &token_url,
        Some(&format!("Basic {}", basic("ci", "cpcs_wrong"))),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    );
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));

    let code = cp
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "ci"),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
            ("state", "y"),
        ])
        .unwrap();
    let (_, t1) = form(
        &token_url,
        Some(&auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7/cb"),
        ],
    );
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    // Rotation: a new refresh token every time.
    let (s, t2) = form(
        &token_url,
        Some(&auth),
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    );
    assert_eq!(s, 200, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    let a2 = t2["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let sessions = format!("{}/v1/sessions", cp.url);
    let ok = |tok: &str| {
        ureq::get(&sessions)
            .set("Authorization", &format!("Bearer {tok}"))
            .call()
            .is_ok()
    };
    assert!(ok(&a2));
    // Reuse of the rotated one: refused, and the whole family is revoked.
    let (s, b) = form(
        &token_url,
        Some(&auth),
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    );
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    assert!(
        b["error_description"].as_str().unwrap().contains("reuse"),
        "{b}"
    );
    let (s, _) = form(
        &token_url,
        Some(&auth),
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    );
    assert_eq!(s, 400, "the newest refresh token died with the family");
    assert!(!ok(&a2), "the family's access token is revoked too");
    // The other sign-in is untouched; RFC 7009 revocation ends it.
    let r_other = first["refresh_token"].as_str().unwrap();
    let (s, _) = form(
        &format!("{}/oauth/revoke", cp.url),
        Some(&auth),
        &[("token", r_other), ("token_type_hint", "refresh_token")],
    );
    assert_eq!(s, 200);
    let (s, b) = form(
        &token_url,
        Some(&auth),
        &[("grant_type", "refresh_token"), ("refresh_token", r_other)],
    );
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // PKCE: the public client must send S256, and the verifier must match.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = agent
        .get(&format!("{}/oauth/authorize?response_type=code&client_id=runner&redirect_uri=http://127.0.0.1:5/callback&state=z", cp.url))
        .call()
        .unwrap();
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains("error=invalid_request") && loc.contains("state=z"),
        "{loc}"
    );
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // S256 of RFC 7636's verifier
    let code = cp
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "runner"),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
            ("state", "z"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
    let (s, b) = form(
        &token_url,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "runner"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:5/callback"),
            (
                "code_verifier",
                "not-the-verifier-not-the-verifier-not-the-verifier",
            ),
        ],
    );
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    // An unregistered redirect is never followed.
    let r = agent
        .get(&format!("{}/oauth/authorize?response_type=code&client_id=runner&redirect_uri=https://evil.example/cb&code_challenge={challenge}&code_challenge_method=S256", cp.url))
        .call();
    let Err(ureq::Error::Status(400, r)) = r else {
        panic!("expected a 400 page")
    };
    assert!(r.header("location").is_none());
}

#[test]
fn a_worker_refreshes_its_short_lived_tokens_and_stops_cleanly_when_signed_out() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start_with(&d.path().join("cp.db"), &["--access-token-seconds", "4"]);
    let cfg = WorkerProc::configure(d.path(), "w1", &cp.url, "", "lease_seconds = 60\n");
    let (ok, out) = WorkerProc::login(&cp, &cfg);
    assert!(ok, "{out}");
    let file = cfg.parent().unwrap().join("tokens.enc");
    let before = std::fs::read(&file).unwrap();
    let mut w = Command::new(runner_bin())
        .args(["worker", "--config", cfg.to_str().unwrap()])
        .env("RUNNER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Past two access-token lifetimes, work still gets done: the worker
    // refreshed (and stored the rotated tokens).
    std::thread::sleep(Duration::from_secs(9));
    let id = cp.queue(
        "after refresh",
        json!([{"tool": "Write", "input": {"path": "a.txt", "content": "x"}}]),
    );
    let v = cp.wait_for(&id, 30, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_ne!(
        std::fs::read(&file).unwrap(),
        before,
        "the rotated tokens were persisted"
    );
    let db = rusqlite::Connection::open(&cp.db).unwrap();
    let rotated: i64 = db
        .query_row("SELECT COUNT(*) FROM tokens WHERE client_id = 'runner' AND kind = 'refresh' AND state = 'rotated'", [], |r| r.get(0))
        .unwrap();
    assert!(rotated >= 2, "{rotated}");
    // A long session is running when the user is signed out.
    let long = cp.queue(
        "long",
        json!([{"tool": "Bash", "input": {"command": "sleep 60"}}]),
    );
    cp.wait_for(&long, 30, |v| v["session"]["state"] == "active");
    cp.admin(&["sign-out", e2e::USER], None);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = w.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the worker did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3));
    let mut err = String::new();
    w.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("runner login"), "{err}");
    assert!(
        !err.contains("cprt_") && !err.contains("cpat_"),
        "a token in the log: {err}"
    );
    // It released its session before stopping.
    let v = cp.session(&long);
    assert_eq!(v["session"]["state"], "queued", "{v}");
    assert!(
        v["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["reason"] == "released"),
        "{v}"
    );
}

#[test]
fn the_token_store_refuses_a_wrong_key_open_permissions_and_no_sign_in() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let start = |cfg: &std::path::Path| {
        let out = Command::new(runner_bin())
            .args(["worker", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg = WorkerProc::configure(d.path(), "w1", &cp.url, "", "");
    let (code, err) = start(&cfg);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("not signed in") && err.contains("runner login"),
        "{err}"
    );
    let (ok, out) = WorkerProc::login(&cp, &cfg);
    assert!(ok, "{out}");
    let state = cfg.parent().unwrap();
    // 0644 token file: refused, saying how to fix it.
    std::fs::set_permissions(
        state.join("tokens.enc"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, err) = start(&cfg);
    assert_ne!(code, Some(0));
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(
        state.join("tokens.enc"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // A state directory others can read: refused.
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err) = start(&cfg);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("readable or writable by group or others"),
        "{err}"
    );
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o711)).unwrap();
    // Another key: a clear error.
    std::fs::write(state.join("token.key"), "ab".repeat(32)).unwrap();
    let (code, err) = start(&cfg);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("cannot decrypt") && err.contains("key"),
        "{err}"
    );
}
