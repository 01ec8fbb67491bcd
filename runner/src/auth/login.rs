//! `runner login`: OAuth 2.0 as a native app does it. Where a browser runs
//! on this host, the authorization code with PKCE (S256) and a loopback
//! redirect to a one-shot listener on 127.0.0.1 (RFC 8252); on a host
//! without one — a server, an SSH session — the device authorization grant
//! (RFC 8628): the control plane gives a short code, the person enters it
//! on the verification page from any device, and this polls until it is
//! allowed. The tokens go straight into the encrypted token file; none is
//! printed.

use super::store::{StoredTokens, TokenFile};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
    DeviceCodeErrorResponseType, PkceCodeChallenge, RedirectUrl, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// How the sign-in reaches a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A browser on this host; a loopback listener receives its redirect.
    Loopback,
    /// No browser here: the device grant, approved from any device.
    Device,
}

impl Flow {
    /// The flow for a host whose environment `env` reads: the loopback
    /// redirect only where a browser can run and reach this host's
    /// loopback — a desktop session (`DISPLAY`, `WAYLAND_DISPLAY`, or
    /// macOS) that is not over SSH; the device grant everywhere else.
    pub(crate) fn for_host(env: impl Fn(&str) -> Option<String>) -> Flow {
        let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
        let desktop = cfg!(target_os = "macos") || set("DISPLAY") || set("WAYLAND_DISPLAY");
        let remote = set("SSH_CONNECTION") || set("SSH_TTY");
        if desktop && !remote {
            Flow::Loopback
        } else {
            Flow::Device
        }
    }
}

/// Signs in: prints what the person opens on `out` (the URL alone on the
/// first line), waits up to `wait` for their answer, and stores the
/// tokens.
pub(crate) fn login(
    auth: &super::AuthSection,
    control_plane: Option<&str>,
    file: TokenFile,
    flow: Flow,
    wait: Duration,
    out: &mut dyn Write,
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
    let secret = auth.client_secret()?;
    let http = crate::trust::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let tr = match flow {
        Flow::Loopback => loopback(auth, &base, secret, &http, wait, out)?,
        Flow::Device => device(auth, &base, secret, &http, wait, out)?,
    };
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

fn bad_url(base: &str) -> impl Fn(oauth2::url::ParseError) -> String + '_ {
    move |e| format!("bad control plane URL {base}: {e}")
}

/// The authorization code with PKCE through a loopback redirect.
fn loopback(
    auth: &super::AuthSection,
    base: &str,
    secret: Option<String>,
    http: &reqwest::blocking::Client,
    wait: Duration,
    out: &mut dyn Write,
) -> Result<BasicTokenResponse, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot listen on loopback for the redirect ({e}); use --device"))?;
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    );
    let bad = bad_url(base);
    let mut client = BasicClient::new(ClientId::new(auth.client_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth/authorize")).map_err(&bad)?)
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token")).map_err(&bad)?)
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(&bad)?);
    if let Some(s) = secret {
        client = client.set_client_secret(ClientSecret::new(s));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("agent".into()))
        .set_pkce_challenge(challenge)
        .url();
    writeln!(out, "{url}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("Open the URL above in a browser on this host and allow access; waiting up to {} s for the redirect to {redirect} … (no browser here? use --device)", wait.as_secs());
    let code = receive(&listener, csrf.secret(), wait)?;
    client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(http)
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
        })
}

/// The device authorization grant (RFC 8628): prints where to go and the
/// code, then polls the token endpoint at the interval the control plane
/// asks for (longer after a `slow_down`) until the person decides, the
/// code expires, or `wait` passes.
fn device(
    auth: &super::AuthSection,
    base: &str,
    secret: Option<String>,
    http: &reqwest::blocking::Client,
    wait: Duration,
    out: &mut dyn Write,
) -> Result<BasicTokenResponse, String> {
    let bad = bad_url(base);
    let mut client = BasicClient::new(ClientId::new(auth.client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{base}/oauth/device_authorization"))
                .map_err(&bad)?,
        )
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token")).map_err(&bad)?);
    if let Some(s) = secret {
        client = client.set_client_secret(ClientSecret::new(s));
    }
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("agent".into()))
        .request(http)
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => format!(
                "the control plane refused to start a device sign-in ({}: {}); check [auth] client_id",
                r.error(),
                r.error_description().cloned().unwrap_or_default()
            ),
            other => format!(
                "cannot start a device sign-in at {base}: {}",
                crate::trust::describe(&other)
            ),
        })?;
    let page = details.verification_uri().as_str();
    let code = details.user_code().secret();
    let complete = details
        .verification_uri_complete()
        .map(|u| u.secret().as_str())
        .unwrap_or(page);
    writeln!(out, "{complete}").map_err(|e| e.to_string())?;
    writeln!(out, "Or open {page} and enter the code {code}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let wait = wait.min(details.expires_in());
    eprintln!(
        "On any device with a browser, open the link above (or the page, and type the code), sign in and allow access; waiting up to {} s …",
        wait.as_secs()
    );
    client
        .exchange_device_access_token(&details)
        .request(http, std::thread::sleep, Some(wait))
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => match r.error() {
                DeviceCodeErrorResponseType::AccessDenied => {
                    "access was denied on the verification page; run `runner login` again to retry"
                        .to_string()
                }
                DeviceCodeErrorResponseType::ExpiredToken => format!(
                    "nobody allowed the code {code} within {} s; run `runner login` again for a new one",
                    wait.as_secs()
                ),
                other => format!(
                    "the control plane refused the device sign-in ({}: {}); run `runner login` again",
                    other.as_ref(),
                    r.error_description().cloned().unwrap_or_default()
                ),
            },
            other => format!(
                "polling {base}/oauth/token failed: {}",
                crate::trust::describe(&other)
            ),
        })
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
                    return Err(format!("no redirect arrived within {} s; run `runner login` again (or use --device)", wait.as_secs()));
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

#[cfg(test)]
mod tests {
    use super::Flow;

    #[test]
    fn the_device_grant_is_the_default_without_a_local_browser() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        if !cfg!(target_os = "macos") {
            assert_eq!(Flow::for_host(env(&[])), Flow::Device);
            assert_eq!(Flow::for_host(env(&[("DISPLAY", "")])), Flow::Device);
        }
        assert_eq!(Flow::for_host(env(&[("DISPLAY", ":0")])), Flow::Loopback);
        assert_eq!(
            Flow::for_host(env(&[("WAYLAND_DISPLAY", "wayland-0")])),
            Flow::Loopback
        );
        // A desktop reached over SSH: its browser is not on this host.
        assert_eq!(
            Flow::for_host(env(&[("DISPLAY", ":10"), ("SSH_CONNECTION", "1 2 3 4")])),
            Flow::Device
        );
    }
}
