//! Signing in to the web pages: the same user names, passwords and
//! lockout as the OAuth consent page, and then a session cookie.
//!
//! - The cookie (`cp_web`) holds a random 256-bit token; the store keeps
//!   only its SHA-256 ([`crate::store`]'s `web_sessions`). It is
//!   `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//!   page sends it), `Path=/ui`, and `Secure` when the control plane's
//!   public URL is https. It lives [`SIGN_IN_TTL`].
//! - Every form that changes something carries the sign-in's CSRF token
//!   (compared in constant time), and every POST must come from this
//!   origin (`Origin`/`Sec-Fetch-Site`, when the browser sends them). The
//!   sign-in form itself carries a token matched by a short-lived cookie
//!   (`cp_login`, double submit), so no other site can sign a browser in
//!   as someone else.

use super::layout::{self, Page};
use crate::api::Shared;
use crate::auth::lockout::{self, Verdict};
use crate::auth::{random_secret, secret_hash};
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

/// How long a sign-in lasts (12 hours): a working day, then sign in again.
pub(crate) const SIGN_IN_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// The person signed in to the web pages.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// User name.
    pub(crate) user: String,
    /// The sign-in's CSRF token, put in every form.
    pub(crate) csrf: String,
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this sign-in's.
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), Refused> {
        if subtle::ConstantTimeEq::ct_eq(self.csrf.as_bytes(), sent.as_bytes()).into() {
            Ok(())
        } else {
            Err(Refused::StaleForm)
        }
    }
}

/// A form refused before it changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It did not carry this sign-in's CSRF token.
    StaleForm,
    /// The browser says another site sent it.
    CrossSite,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::StaleForm => layout::error_page(
                StatusCode::FORBIDDEN,
                "This form is out of date",
                "The form did not carry this sign-in's token (it came from another page, or you signed in again since). Reload the page and send it again.",
            ),
            Refused::CrossSite => layout::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site. Open the control plane's own page and send it from there.",
            ),
        }
    }
}

/// The value of cookie `name` in the request, if it has one.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Why a request has no viewer: no or a stale cookie (sent to sign in),
/// or the store failed.
pub(crate) enum NoViewer {
    /// Sign in first, then come back to this path.
    SignIn(String),
    /// The store could not say.
    Failed(crate::error::ApiError),
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::SignIn(back) => {
                let to = format!(
                    "/ui/login?next={}",
                    url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
                );
                Redirect::to(&to).into_response()
            }
            NoViewer::Failed(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<Shared> for Viewer {
    type Rejection = NoViewer;
    async fn from_request_parts(
        parts: &mut Parts,
        store: &Shared,
    ) -> Result<Self, Self::Rejection> {
        // The router is nested under the mount, which it took off the path.
        let back = parts
            .uri
            .path_and_query()
            .map(|p| format!("{}{}", super::MOUNT, p.as_str()))
            .unwrap_or_else(|| "/ui/sessions".into());
        let Some(token) = cookie(&parts.headers, cookie_name(store, Jar::Session)) else {
            return Err(NoViewer::SignIn(back));
        };
        let hash = secret_hash(token);
        let s = store.clone();
        let found = tokio::task::spawn_blocking(move || s.web_session(&hash))
            .await
            .map_err(|e| NoViewer::Failed(crate::error::ApiError::internal(e)))?
            .map_err(|e| NoViewer::Failed(e.into()))?;
        match found {
            Some(w) => Ok(Viewer {
                user: w.user,
                csrf: w.csrf,
            }),
            None => Err(NoViewer::SignIn(back)),
        }
    }
}

/// Refuses a POST another origin sent: a browser says where a request
/// comes from (`Sec-Fetch-Site`, `Origin`); a client that says nothing
/// (not a browser) is left to the CSRF token. The origin must be the
/// control plane's public URL's — or, reached by an IP address or
/// `localhost`, that address's own: a DNS name is trusted only as the
/// public URL names it, so a site that rebinds its own name to this
/// address gains nothing.
pub(crate) fn check_same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), Refused> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(Refused::CrossSite);
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let public = url::Url::parse(public_url)
        .ok()
        .map(|u| u.origin().ascii_serialization());
    if public.as_deref() == Some(origin) {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let literal = url::Url::parse(&format!("http://{host}/"))
        .ok()
        .and_then(|u| {
            u.host().map(|h| {
                matches!(h, url::Host::Ipv4(_) | url::Host::Ipv6(_))
                    || h == url::Host::Domain("localhost")
            })
        })
        .unwrap_or(false);
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    if literal && origin_host == Some(host) {
        Ok(())
    } else {
        Err(Refused::CrossSite)
    }
}

/// The two cookies of the pages.
#[derive(Debug, Clone, Copy)]
enum Jar {
    /// The sign-in.
    Session,
    /// The sign-in form's double-submit token.
    Login,
}

/// Whether the pages are served over https (then their cookies are
/// `Secure` and `__Host-` prefixed).
fn secure(store: &Shared) -> bool {
    store.public_url().starts_with("https://")
}

/// A cookie's name. Over https the `__Host-` prefix makes the browser
/// refuse one set by any other host or with a `Domain` or another path, so
/// a neighbouring site cannot swap in its own sign-in.
fn cookie_name(store: &Shared, jar: Jar) -> &'static str {
    match (secure(store), jar) {
        (true, Jar::Session) => "__Host-cp_web",
        (false, Jar::Session) => "cp_web",
        (true, Jar::Login) => "__Host-cp_login",
        (false, Jar::Login) => "cp_login",
    }
}

/// A cookie for this control plane's pages: over plain HTTP scoped to
/// `path`; over https `Secure`, `__Host-` and so `Path=/` (the prefix
/// demands it).
fn set_cookie(store: &Shared, jar: Jar, value: &str, max_age: u64, path: &str) -> HeaderValue {
    let name = cookie_name(store, jar);
    let (path, secure) = if secure(store) {
        ("/", "; Secure")
    } else {
        (path, "")
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are base64url")
}

/// Where to go after signing in: a page of these web pages only — never
/// another site, a scheme-relative `//host`, a dot segment (`/ui/../v1`
/// is `/v1` to a browser, `%2e` included) or a control character.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains("..")
                && !n.to_ascii_lowercase().contains("%2e")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 1024 =>
        {
            n.to_string()
        }
        _ => "/ui/sessions".into(),
    }
}

/// `?next=` of the sign-in page.
#[derive(Deserialize, Default)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The sign-in form (with a fresh double-submit token).
pub(crate) async fn login_page(
    State(store): State<Shared>,
    q: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next);
    login_form(&store, next.as_deref(), StatusCode::OK, None)
}

fn login_form(
    store: &Shared,
    next: Option<&str>,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let token = random_secret("");
    let body = html! {
        @if let Some(e) = error { p.err role="alert" { (e) } }
        form.signin method="post" action="/ui/login" {
            input type="hidden" name="login_token" value=(token);
            input type="hidden" name="next" value=(safe_next(next));
            label { "User name" input type="text" name="username" autocomplete="username" required autofocus; }
            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
        p.muted { "The same user name and password as the control plane's OAuth sign-in (" code { "control-plane admin user-add" } ")." }
    };
    let mut r = layout::render(status, &Page::anonymous("Sign in"), body);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(store, Jar::Login, &token, 600, "/ui/login"),
    );
    r
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    login_token: String,
    username: String,
    password: String,
    next: Option<String>,
}

/// Signs in: the double-submit token, the lockout, the password; then the
/// session cookie and back to where the person was going.
pub(crate) async fn login_submit(
    State(store): State<Shared>,
    headers: HeaderMap,
    f: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Err(r) = check_same_origin(&headers, store.public_url()) {
        return r.into_response();
    }
    let Ok(Form(f)) = f else {
        return login_form(
            &store,
            None,
            StatusCode::BAD_REQUEST,
            Some("The form was malformed; sign in again."),
        );
    };
    let matches = cookie(&headers, cookie_name(&store, Jar::Login)).is_some_and(|c| {
        !c.is_empty()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                c.as_bytes(),
                f.login_token.as_bytes(),
            ))
    });
    if !matches {
        return login_form(
            &store,
            f.next.as_deref(),
            StatusCode::FORBIDDEN,
            Some("This sign-in form is out of date or came from another site; sign in again here."),
        );
    }
    let s = store.clone();
    let (user, password) = (f.username.clone(), f.password.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        match lockout::check_password(&s, &user, &password) {
            Verdict::Right => {}
            Verdict::LockedOut => return Err(StatusCode::TOO_MANY_REQUESTS),
            Verdict::Wrong => return Err(StatusCode::UNAUTHORIZED),
            Verdict::Busy => return Err(StatusCode::SERVICE_UNAVAILABLE),
        }
        let token = random_secret("cpws_");
        let csrf = random_secret("");
        s.create_web_session(
            &secret_hash(&token),
            &user,
            &csrf,
            SIGN_IN_TTL.as_millis() as i64,
        )
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        Ok(token)
    })
    .await
    .unwrap_or(Err(StatusCode::INTERNAL_SERVER_ERROR));
    match outcome {
        Ok(token) => {
            let mut r = Redirect::to(&safe_next(f.next.as_deref())).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&store, Jar::Session, &token, SIGN_IN_TTL.as_secs(), "/ui"),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&store, Jar::Login, "", 0, "/ui/login"),
            );
            r
        }
        Err(StatusCode::TOO_MANY_REQUESTS) => login_form(
            &store,
            f.next.as_deref(),
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed sign-ins for this user; try again in 15 minutes."),
        ),
        Err(StatusCode::UNAUTHORIZED) => login_form(
            &store,
            f.next.as_deref(),
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        ),
        Err(StatusCode::SERVICE_UNAVAILABLE) => {
            // Too many password checks waiting, or the store failed.
            let mut r = login_form(
                &store,
                f.next.as_deref(),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The control plane is busy and could not sign you in just now; try again in a few seconds."),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, lockout::BUSY_RETRY_SECONDS.into());
            r
        }
        Err(_) => login_form(
            &store,
            f.next.as_deref(),
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The control plane could not sign you in just now; try again."),
        ),
    }
}

/// `?code=` of a sign-in link.
#[derive(Deserialize)]
pub(crate) struct LinkQuery {
    code: String,
}

/// `GET /ui/login/link?code=…`: a one-time link (`control-plane admin
/// web-link USER`, which `runner up` prints) signs its user in and opens
/// the sessions. A used, expired or unknown code is the sign-in form.
pub(crate) async fn login_link(
    State(store): State<Shared>,
    q: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return login_form(
            &store,
            None,
            StatusCode::BAD_REQUEST,
            Some("This sign-in link has no code; sign in here."),
        );
    };
    let s = store.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let Some(user) = s.redeem_web_link(&secret_hash(&q.code))? else {
            return Ok(None);
        };
        let token = random_secret("cpws_");
        s.create_web_session(
            &secret_hash(&token),
            &user,
            &random_secret(""),
            SIGN_IN_TTL.as_millis() as i64,
        )?;
        Ok::<_, crate::store::StoreError>(Some(token))
    })
    .await;
    match signed {
        Ok(Ok(Some(token))) => {
            let mut r = Redirect::to("/ui/sessions").into_response();
            r.headers_mut().append(header::SET_COOKIE, set_cookie(&store, Jar::Session, &token, SIGN_IN_TTL.as_secs(), "/ui"));
            layout::protect(&mut r);
            r
        }
        Ok(Ok(None)) => login_form(&store, None, StatusCode::UNAUTHORIZED, Some("This sign-in link was used already or has expired (links last 10 minutes); sign in here, or make a new one.")),
        _ => login_form(&store, None, StatusCode::SERVICE_UNAVAILABLE, Some("The control plane could not sign you in just now; try again.")),
    }
}

/// The sign-out form's fields.
#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// Signs out: the sign-in is deleted and the cookie cleared.
pub(crate) async fn logout(
    State(store): State<Shared>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Err(r) =
        check_same_origin(&headers, store.public_url()).and_then(|()| viewer.check_csrf(&f.csrf))
    {
        return r.into_response();
    }
    if let Some(token) = cookie(&headers, cookie_name(&store, Jar::Session)) {
        let (s, hash) = (store.clone(), secret_hash(token));
        let _ = tokio::task::spawn_blocking(move || s.end_web_session(&hash)).await;
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&store, Jar::Session, "", 0, "/ui"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_these_pages() {
        assert_eq!(safe_next(Some("/ui/sessions/ses_1")), "/ui/sessions/ses_1");
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/v1/sessions",
            "/ui\\x",
            "javascript:alert(1)",
            "/ui/../v1/sessions",
            "/ui/%2E%2e/v1",
            "/ui/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/sessions", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/sessions");
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        let public = "http://cp.example:8080";
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("cp.example:8080"));
        assert!(
            check_same_origin(&h, public).is_ok(),
            "no browser headers: left to the token"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://cp.example:8080"),
        );
        assert!(check_same_origin(&h, public).is_ok());
        assert!(
            check_same_origin(&h, "https://cp.example:8080").is_err(),
            "the scheme counts"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(check_same_origin(&h, public).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_same_origin(&h, public).is_err());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_same_origin(&h, public).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_same_origin(&h, public).is_ok());
    }

    #[test]
    fn a_rebound_name_is_not_this_origin_but_an_address_is() {
        let public = "http://127.0.0.1:8700";
        let mut h = HeaderMap::new();
        // evil.example resolved to 127.0.0.1 by its owner: same Host and
        // Origin, but a name the public URL does not give.
        h.insert(header::HOST, HeaderValue::from_static("evil.example:8700"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example:8700"),
        );
        assert!(check_same_origin(&h, public).is_err());
        for (host, origin) in [
            ("127.0.0.1:9999", "http://127.0.0.1:9999"),
            ("localhost:8700", "http://localhost:8700"),
            ("[::1]:8700", "http://[::1]:8700"),
        ] {
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            assert!(check_same_origin(&h, public).is_ok(), "{host}");
        }
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xcp_web=no; cp_web=yes; cp_login=l"),
        );
        assert_eq!(cookie(&h, "cp_web"), Some("yes"));
        assert_eq!(cookie(&h, "cp_login"), Some("l"));
        assert_eq!(cookie(&h, "other"), None);
    }
}
