//! `runner login`: OAuth 2.0 authorization code with PKCE (S256), as a
//! native app does it (RFC 8252): a loopback redirect to a one-shot
//! listener on 127.0.0.1, or — on a headless host — the control plane shows
//! the code and the operator pastes it here. The tokens go straight into
//! the encrypted token file; none is printed.

use super::store::{StoredTokens, TokenFile};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// The redirect URI of the paste-the-code flow.
pub(crate) const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

/// How the code comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A loopback listener receives the browser's redirect.
    Loopback,
    /// The person pastes the code the control plane shows.
    Paste,
}

/// Signs in: prints the URL to open on `out` (alone on its line), reads a
/// pasted code from `input` in the paste flow, and stores the tokens.
pub(crate) fn login(
    auth: &super::AuthSection,
    control_plane: Option<&str>,
    file: TokenFile,
    flow: Flow,
    wait: Duration,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<String, String> {
    let base = control_plane
        .ok_or("worker.control_plane is not set; give the control plane's URL in the config")?;
    let base = base.trim_end_matches('/').to_string();
    super::check_transport(&base)?;
    if let Some(dir) = file.path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    file.check_permissions()?;
    let listener = match flow {
        Flow::Loopback => Some(TcpListener::bind("127.0.0.1:0").map_err(|e| {
            format!("cannot listen on loopback for the redirect ({e}); use --paste")
        })?),
        Flow::Paste => None,
    };
    let redirect = match &listener {
        Some(l) => format!(
            "http://127.0.0.1:{}/callback",
            l.local_addr().map_err(|e| e.to_string())?.port()
        ),
        None => OOB.to_string(),
    };
    let bad = |e: oauth2::url::ParseError| format!("bad control plane URL {base}: {e}");
    let mut client = BasicClient::new(ClientId::new(auth.client_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth/authorize")).map_err(bad)?)
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token")).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(bad)?);
    let secret = auth.client_secret()?;
    if let Some(s) = &secret {
        client = client.set_client_secret(ClientSecret::new(s.clone()));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("agent".into()))
        .set_pkce_challenge(challenge)
        .url();
    writeln!(out, "{url}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let code = match listener {
        Some(l) => {
            eprintln!("Open the URL above in a browser and allow access; waiting up to {} s for the redirect to {redirect} …", wait.as_secs());
            receive(&l, csrf.secret(), wait)?
        }
        None => {
            eprintln!(
                "Open the URL above in a browser, allow access, and paste the code it shows here:"
            );
            let mut line = String::new();
            input
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the code: {e}"))?;
            let code = line.trim().to_string();
            if code.is_empty() {
                return Err("no code was pasted; run `runner login --paste` again".into());
            }
            code
        }
    };
    let http = crate::trust::client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let tr = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http)
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => format!(
                "the control plane refused the code ({}: {}); run `runner login` again",
                r.error(),
                r.error_description().cloned().unwrap_or_default()
            ),
            other => format!(
                "exchanging the code failed: {}",
                crate::trust::describe(&other)
            ),
        })?;
    let lifetime = tr
        .expires_in()
        .map(|d| d.as_secs() as i64)
        .unwrap_or(900)
        .max(1);
    let refresh = tr
        .refresh_token()
        .ok_or("the control plane issued no refresh token; the worker could not stay signed in")?;
    file.save(&StoredTokens {
        control_plane: base.clone(),
        client_id: auth.client_id.clone(),
        access_token: tr.access_token().secret().clone(),
        refresh_token: refresh.secret().clone(),
        access_expires_at: chrono::Utc::now().timestamp() + lifetime,
        access_lifetime: lifetime,
    })?;
    Ok(format!(
        "signed in to {base}; tokens stored encrypted in {}",
        file.path.display()
    ))
}

/// Waits for the one redirect, checks its state, answers the browser.
fn receive(l: &TcpListener, state: &str, wait: Duration) -> Result<String, String> {
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let until = std::time::Instant::now() + wait;
    loop {
        let stream = match l.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= until {
                    return Err(format!("no redirect arrived within {} s; run `runner login` again (or use --paste)", wait.as_secs()));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("");
        let url = match oauth2::url::Url::parse(&format!("http://127.0.0.1{target}")) {
            Ok(u) if u.path() == "/callback" => u,
            _ => {
                respond(stream, 404, "Not found");
                continue;
            }
        };
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        if get("state").as_deref() != Some(state) {
            // A stale tab or a forged request: refuse it, keep waiting.
            respond(
                stream,
                400,
                "This sign-in answer does not belong to the login in progress (state mismatch).",
            );
            tracing::warn!("ignored a redirect whose state does not match this login");
            continue;
        }
        if let Some(err) = get("error") {
            let desc = get("error_description").unwrap_or_default();
            respond(
                stream,
                200,
                &format!("Not signed in: {err}. You can close this tab."),
            );
            return Err(format!("access was not granted ({err}: {desc})"));
        }
        let Some(code) = get("code") else {
            respond(stream, 400, "No code in the redirect.");
            return Err("the redirect carried no code".into());
        };
        respond(
            stream,
            200,
            "Signed in. You can close this tab and return to the terminal.",
        );
        return Ok(code);
    }
}

fn respond(mut s: std::net::TcpStream, status: u16, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>runner login</title><p>{}</p>",
        text.replace('<', "&lt;")
    );
    let _ = write!(
        s,
        "HTTP/1.1 {status} {}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    );
}
