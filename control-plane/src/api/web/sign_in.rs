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

/// The session cookie.
const COOKIE: &str = "cp_web";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "cp_login";
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
        let Some(token) = cookie(&parts.headers, COOKIE) else {
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
/// (not a browser) is left to the CSRF token.
pub(crate) fn check_same_origin(headers: &HeaderMap) -> Result<(), Refused> {
    let refuse = || Err(Refused::CrossSite);
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return refuse();
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if origin_host.is_none() || origin_host != host {
            return refuse();
        }
    }
    Ok(())
}

/// A cookie for this control plane's pages: `Secure` when it is served
/// over https.
fn set_cookie(store: &Shared, name: &str, value: &str, max_age: u64, path: &str) -> HeaderValue {
    let secure = if store.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are base64url")
}

/// Where to go after signing in: a page of these web pages only (never
/// another site, never a scheme-relative `//host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => {
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
        set_cookie(store, LOGIN_COOKIE, &token, 600, "/ui/login"),
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
    if let Err(r) = check_same_origin(&headers) {
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
    let matches = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| {
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
                set_cookie(&store, COOKIE, &token, SIGN_IN_TTL.as_secs(), "/ui"),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&store, LOGIN_COOKIE, "", 0, "/ui/login"),
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
            r.headers_mut().append(header::SET_COOKIE, set_cookie(&store, COOKIE, &token, SIGN_IN_TTL.as_secs(), "/ui"));
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
    if let Err(r) = check_same_origin(&headers).and_then(|()| viewer.check_csrf(&f.csrf)) {
        return r.into_response();
    }
    if let Some(token) = cookie(&headers, COOKIE) {
        let (s, hash) = (store.clone(), secret_hash(token));
        let _ = tokio::task::spawn_blocking(move || s.end_web_session(&hash)).await;
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&store, COOKIE, "", 0, "/ui"));
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
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/sessions", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/sessions");
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("cp.example:8080"));
        assert!(
            check_same_origin(&h).is_ok(),
            "no browser headers: left to the token"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://cp.example:8080"),
        );
        assert!(check_same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(check_same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_same_origin(&h).is_err());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_same_origin(&h).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_same_origin(&h).is_ok());
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
