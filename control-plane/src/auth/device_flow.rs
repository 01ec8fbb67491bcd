//! The device grant's endpoints (RFC 8628): `POST
//! /oauth/device_authorization` for the client, and the verification page
//! `GET`/`POST /oauth/device` for the person. The page is the consent
//! page's kind — no script, not frameable, never cached — and is safe from
//! cross-site posts the same way: a decision counts only with the
//! person's password in the same form, which another site cannot fill in.
//! Wrong passwords and wrong user codes each lock the user name out for a
//! while ([`super::lockout`]).

use super::device::{self, CodeRefused, Decision};
use super::error::{OAuthError, OAuthErrorBody};
use super::{lockout, oauth, page};
use crate::error::ApiError;
use crate::store::{Store, StoreError};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use std::sync::Arc;

type Shared = Arc<Store>;

/// Where the verification page is served.
pub(crate) const VERIFICATION_PATH: &str = "/oauth/device";
/// The device grant's `grant_type` at the token endpoint.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /oauth/device_authorization` form.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct DeviceAuthorizationForm {
    /// The client, when it does not authenticate with HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret, when not sent with HTTP Basic.
    client_secret: Option<String>,
    /// `agent` (the default and the only scope).
    scope: Option<String>,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceAuthorization {
    /// The secret the client polls the token endpoint with.
    device_code: String,
    /// What the person enters on the verification page, `XXXX-XXXX`.
    user_code: String,
    /// The verification page.
    verification_uri: String,
    /// The verification page with the user code filled in.
    verification_uri_complete: String,
    /// Seconds the codes live.
    expires_in: u64,
    /// Seconds the client waits between polls.
    interval: u64,
}

/// Starts a device grant: a device code for the client and a user code
/// for the person.
#[utoipa::path(post, path = "/oauth/device_authorization", tag = "oauth", security(("client" = []), ()), request_body(content = DeviceAuthorizationForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "The codes and where the person enters the user code (never cached).", body = DeviceAuthorization), (status = 400, description = "`invalid_request` (a malformed form), `invalid_scope`: see error_description.", body = OAuthErrorBody), (status = 401, description = "`invalid_client`: unknown client, or its authentication failed.", body = OAuthErrorBody), (status = 429, description = "`slow_down`: this client has too many codes waiting for a person (1000); wait `Retry-After` seconds.", body = OAuthErrorBody)))]
pub(crate) async fn device_authorization(
    State(s): State<Shared>,
    headers: HeaderMap,
    f: Result<Form<DeviceAuthorizationForm>, FormRejection>,
) -> Response {
    let ids = |f: &DeviceAuthorizationForm| (f.client_id.clone(), f.client_secret.clone());
    oauth::client_endpoint(s, headers, f, ids, |s, client, f| {
        let scope = f
            .scope
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "agent".into());
        if scope != "agent" {
            return Err(OAuthError::new(
                "invalid_scope",
                "the only scope is `agent`",
            ));
        }
        let d = match s.create_device_code(client, &scope) {
            Ok(d) => d,
            // Too many codes wait for a person: RFC 8628's `slow_down`, as
            // a 429 the client can wait out.
            Err(StoreError::RateLimited {
                message,
                retry_after_seconds,
            }) => {
                let mut r = OAuthError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    error: "slow_down",
                    description: message,
                }
                .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
                return Ok(r);
            }
            Err(e) => return Err(e.into()),
        };
        let verification_uri = format!("{}{VERIFICATION_PATH}", s.public_url());
        let complete = format!("{verification_uri}?user_code={}", d.user_code);
        let mut r = Json(DeviceAuthorization {
            device_code: d.device_code,
            user_code: d.user_code,
            verification_uri,
            verification_uri_complete: complete,
            expires_in: d.expires_in,
            interval: d.interval,
        })
        .into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    })
    .await
}

/// Query of the verification page.
#[derive(Deserialize)]
pub(crate) struct VerificationQuery {
    /// The user code, when the person followed `verification_uri_complete`.
    user_code: Option<String>,
}

/// The verification page's form.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct VerificationForm {
    /// The code the device shows (case, dashes and spaces do not matter).
    user_code: Option<String>,
    /// The person signing in.
    username: Option<String>,
    /// Their password.
    password: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
}

impl std::fmt::Debug for VerificationForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationForm")
            .field("username", &self.username)
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

/// The page: the code (filled in when known), sign-in, allow or deny.
fn form_page(status: StatusCode, user_code: &str, error: Option<&str>) -> Response {
    let err = error
        .map(|e| format!("<p class=err role=alert>{}</p>", page::esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>A device — a worker's <code>runner login</code> on a host without a browser — asks to act as you on this control plane: register workers, claim queued agent sessions and run them, and post their activities and results.</p>\
         <p>Enter the code it shows, and check that it is the one on <em>your</em> terminal: whoever started this sign-in gets access as you.</p>{err}\
         <form method=post action=\"{VERIFICATION_PATH}\">\
         <label>Code<input type=text name=user_code value=\"{}\" autocomplete=off autocapitalize=characters spellcheck=false required></label>\
         <label>User name<input type=text name=username autocomplete=username required></label>\
         <label>Password<input type=password name=password autocomplete=current-password required></label>\
         <button type=submit name=decision value=allow>Allow</button>\
         <button type=submit name=decision value=deny>Deny</button></form>",
        page::esc(user_code)
    );
    page::page(status, "Sign in a device", &body)
}

/// The verification page.
#[utoipa::path(get, path = "/oauth/device", tag = "oauth", params(("user_code" = Option<String>, Query, description = "The user code, when the person followed `verification_uri_complete`; filled in.")), responses((status = 200, description = "The verification page: the code, sign-in, allow or deny.", content_type = "text/html", body = String), (status = 400, description = "The page, empty, saying the link is malformed (the query could not be read).", content_type = "text/html", body = String)))]
pub(crate) async fn verification_page(
    q: Result<Query<VerificationQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return form_page(
            StatusCode::BAD_REQUEST,
            "",
            Some("the link is malformed; type the code your terminal shows"),
        );
    };
    // Shown as given (escaped); it is checked only with the sign-in, so the
    // page tells nobody which codes exist.
    form_page(StatusCode::OK, &q.user_code.unwrap_or_default(), None)
}

/// The lockout key of a user's wrong user codes.
fn code_key(user: &str) -> String {
    format!("device-code:{user}")
}

/// A person's decision on the verification page.
#[utoipa::path(post, path = "/oauth/device", tag = "oauth", request_body(content = VerificationForm, content_type = "application/x-www-form-urlencoded", description = "The code, the sign-in and the decision."), responses((status = 200, description = "Done: the device is signed in (allow) or refused (deny); the person returns to it.", content_type = "text/html", body = String), (status = 400, description = "The page again: a malformed form, or a code that is mistyped, already decided or expired.", content_type = "text/html", body = String), (status = 401, description = "The page again: wrong user name or password.", content_type = "text/html", body = String), (status = 429, description = "Too many wrong passwords or codes for this user; try again in 15 minutes.", content_type = "text/html", body = String), (status = 503, description = "The page again: too many password checks waiting; try again after `Retry-After` seconds.", content_type = "text/html", body = String)))]
pub(crate) async fn verification_submit(
    State(s): State<Shared>,
    f: Result<Form<VerificationForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = f else {
        return form_page(StatusCode::BAD_REQUEST, "", Some("the form is malformed"));
    };
    tokio::task::spawn_blocking(move || decide(&s, f))
        .await
        .unwrap_or_else(|_| ApiError::internal("the verification page failed").into_response())
}

/// The page saying the user is locked out.
fn locked_out_page() -> Response {
    page::page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "<p class=err>Too many wrong passwords or codes for this user; try again in 15 minutes.</p>",
    )
}

/// The form again, 503 with `Retry-After`: the password checks are busy.
fn busy_page(typed: &str) -> Response {
    let mut r = form_page(
        StatusCode::SERVICE_UNAVAILABLE,
        typed,
        Some("the control plane is busy checking other sign-ins; try again in a few seconds"),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(lockout::BUSY_RETRY_SECONDS),
    );
    r
}

/// The decision. A code is looked up only after the right password, and
/// only then can a wrong one count against the user (no one without the
/// password can lock them out); the count is [`lockout::reserve`]d before
/// the lookup, so parallel wrong codes get no more than five looks.
fn decide(s: &Store, f: VerificationForm) -> Response {
    let typed = f.user_code.unwrap_or_default();
    let user = f.username.unwrap_or_default();
    let decision = match f.decision.as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return form_page(
                StatusCode::BAD_REQUEST,
                &typed,
                Some("choose Allow or Deny"),
            )
        }
    };
    let Some(code) = device::normalise(&typed) else {
        // Not a guess at any code: counted against nobody.
        return form_page(
            StatusCode::BAD_REQUEST,
            &typed,
            Some("a code is eight letters, like BCDF-GHJK: copy it from your terminal"),
        );
    };
    match lockout::check_password(s, &user, f.password.as_deref().unwrap_or_default()) {
        lockout::Verdict::Right => {}
        lockout::Verdict::LockedOut => return locked_out_page(),
        lockout::Verdict::Busy => return busy_page(&typed),
        lockout::Verdict::Wrong => {
            return form_page(
                StatusCode::UNAUTHORIZED,
                &typed,
                Some("wrong user name or password"),
            );
        }
    }
    let key = code_key(&user);
    match lockout::reserve(&key) {
        lockout::Reserved::Yes => {}
        lockout::Reserved::LockedOut => return locked_out_page(),
        lockout::Reserved::Full => return busy_page(&typed),
    }
    match s.decide_device_code(&code, &user, decision) {
        Ok(name) => {
            lockout::forget(&key);
            let (title, what) = match decision {
                Decision::Allow => ("Device signed in", "is signed in as you"),
                Decision::Deny => ("Device refused", "was refused"),
            };
            page::page(
                StatusCode::OK,
                title,
                &format!(
                    "<p><strong>{}</strong> ({}) {what}. Return to its terminal; you can close this page.</p>",
                    page::esc(&name),
                    page::esc(&device::display(&code))
                ),
            )
        }
        Err(CodeRefused::Unknown) => {
            // The reserved failure stands.
            form_page(
                StatusCode::BAD_REQUEST,
                &typed,
                Some("no sign-in waits for this code: it is mistyped, already decided, or expired; check your terminal, or run `runner login` again there"),
            )
        }
        Err(CodeRefused::Store(e)) => {
            lockout::release(&key);
            let e = ApiError::from(e);
            page::page(
                e.status,
                "Cannot sign in",
                &format!("<p class=err>{}</p>", page::esc(&e.message)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(code: &str, user: &str, password: Option<&str>) -> VerificationForm {
        VerificationForm {
            user_code: Some(code.into()),
            username: Some(user.into()),
            password: password.map(Into::into),
            decision: Some("allow".into()),
        }
    }

    fn new_code(s: &Store) -> String {
        s.add_client("dev", "Dev", false, &["http://127.0.0.1/cb".into()])
            .ok();
        let client = s.client("dev").unwrap().unwrap();
        s.create_device_code(&client, "agent").unwrap().user_code
    }

    #[test]
    fn parallel_wrong_codes_get_no_more_than_the_allowed_looks() {
        let (_d, s) = crate::store::testing::store();
        s.add_user("coder", "the-right-password", None).unwrap();
        let s = Arc::new(s);
        // Rounds of four at once: fewer than the password lockout's five,
        // so only the code count limits them; a count checked before the
        // slow password check and recorded after lets whole rounds through.
        let mut statuses = Vec::new();
        for round in 0..6 {
            let rounds: Vec<_> = (0..4)
                .map(|i| {
                    let s = s.clone();
                    // Distinct, well-formed, wrong codes.
                    let code = format!(
                        "BCDF-GH{}{}",
                        ["J", "K", "L", "M"][i],
                        ["N", "P", "Q", "R", "S", "T"][round]
                    );
                    std::thread::spawn(move || {
                        decide(&s, form(&code, "coder", Some("the-right-password"))).status()
                    })
                })
                .collect();
            statuses.extend(rounds.into_iter().map(|t| t.join().unwrap()));
        }
        let looked = statuses
            .iter()
            .filter(|c| **c == StatusCode::BAD_REQUEST)
            .count();
        assert_eq!(looked, lockout::MAX_FAILURES as usize, "{statuses:?}");
        assert!(statuses
            .iter()
            .all(|c| *c == StatusCode::BAD_REQUEST || *c == StatusCode::TOO_MANY_REQUESTS));
    }

    #[test]
    fn codes_without_the_password_lock_nobody_out() {
        let (_d, s) = crate::store::testing::store();
        s.add_user("erin", "erins-password", None).unwrap();
        let code = new_code(&s);
        for bad in ["x", "", "BCDF-GHJ", "BCDF-GHJKA", "AEIO-UAEI"] {
            for pw in [None, Some("")] {
                let st = decide(&s, form(bad, "erin", pw)).status();
                assert_eq!(st, StatusCode::BAD_REQUEST);
            }
        }
        // Wrong passwords count as such (four of five), never as codes.
        for _ in 0..4 {
            let st = decide(&s, form("BCDF-GHJK", "erin", Some("guess"))).status();
            assert_eq!(st, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            decide(&s, form(&code, "erin", Some("erins-password"))).status(),
            StatusCode::OK,
            "malformed or unchecked codes without the password count against nobody"
        );
    }
}
