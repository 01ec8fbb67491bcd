//! The authorization server's endpoints: `GET`/`POST /oauth/authorize`
//! (consent), `POST /oauth/token` (authorization code with PKCE, refresh
//! with rotation, the device code of [`super::device_flow`]), `POST
//! /oauth/revoke` (RFC 7009), and the metadata (RFC 8414).

use super::accounts::Client;
use super::device_flow::DEVICE_GRANT;
use super::error::{OAuthError, OAuthErrorBody};
use super::IssuedTokens;
use super::{lockout, page};
use crate::error::ApiError;
use crate::store::Store;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;

type Shared = Arc<Store>;

/// The paste-the-code redirect URI some clients still send. It was never
/// a registered redirect (RFC 8252 §7 does not name it) and is refused
/// with what to use instead: the device authorization grant.
pub(super) const OOB_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// What a client asking for [`OOB_REDIRECT`] is told.
pub(super) const OOB_REFUSED: &str = "the paste-the-code redirect urn:ietf:wg:oauth:2.0:oob is not supported: on a host without a browser, sign in with the device authorization grant (RFC 8628): `runner login --device`, or POST /oauth/device_authorization";

/// The parameters of an authorization request (query of the GET, hidden
/// fields of the POST).
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct AuthorizeParams {
    /// `code`.
    response_type: Option<String>,
    /// The client asking.
    client_id: Option<String>,
    /// One of the client's registered redirect URIs.
    redirect_uri: Option<String>,
    /// Returned unchanged to the client.
    state: Option<String>,
    /// PKCE: base64url SHA-256 of the verifier (required of public clients).
    code_challenge: Option<String>,
    /// `S256`.
    code_challenge_method: Option<String>,
    /// `agent` (the default and the only scope).
    scope: Option<String>,
    // The POST's own fields.
    /// The user signing in (consent form).
    username: Option<String>,
    /// Their password (consent form).
    password: Option<String>,
    /// `allow` or `deny` (consent form).
    decision: Option<String>,
}

impl std::fmt::Debug for AuthorizeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeParams")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A checked authorization request.
struct Checked {
    client: Client,
    redirect_uri: String,
    state: String,
    challenge: Option<String>,
    scope: String,
}

/// What is wrong with an authorization request: shown on a page when the
/// client or its redirect cannot be trusted, otherwise sent back to the
/// client's redirect URI (RFC 6749 §4.1.2.1).
enum Refusal {
    Page(String),
    Redirect {
        uri: String,
        state: String,
        error: &'static str,
        description: String,
    },
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(m) => page::page(
                StatusCode::BAD_REQUEST,
                "Cannot sign in",
                &format!("<p class=err>{}</p>", page::esc(&m)),
            ),
            Refusal::Redirect {
                uri,
                state,
                error,
                description,
            } => redirect_with(
                &uri,
                &[
                    ("error", error),
                    ("error_description", &description),
                    ("state", &state),
                ],
            ),
        }
    }
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => {
            return page::page(
                StatusCode::BAD_REQUEST,
                "Cannot sign in",
                "<p class=err>bad redirect URI</p>",
            )
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn check(store: &Store, p: &AuthorizeParams) -> Result<Checked, Refusal> {
    let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(Refusal::Page(
            "client_id is missing from the sign-in link".into(),
        ));
    };
    if p.redirect_uri.as_deref() == Some(OOB_REDIRECT) {
        return Err(Refusal::Page(OOB_REFUSED.into()));
    }
    let client = match store.client(client_id) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(Refusal::Page(format!("unknown client {client_id:?}"))),
        Err(e) => return Err(Refusal::Page(ApiError::from(e).message)),
    };
    let Some(redirect_uri) = p.redirect_uri.clone().filter(|r| client.allows_redirect(r)) else {
        return Err(Refusal::Page(
            "redirect_uri is missing or not registered for this client".into(),
        ));
    };
    let state = p.state.clone().unwrap_or_default();
    let refuse = |error, description: &str| Refusal::Redirect {
        uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.to_string(),
    };
    match p.response_type.as_deref() {
        Some("code") => {}
        // RFC 6749 §4.1.2.1: a missing parameter is a malformed request;
        // only one that is there and unknown is unsupported.
        None | Some("") => {
            return Err(refuse(
                "invalid_request",
                "response_type is required: give response_type=code",
            ))
        }
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    let challenge = p.code_challenge.clone().filter(|c| !c.is_empty());
    match (&challenge, p.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => {}
        (Some(_), Some("S256")) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43–128 characters",
            ))
        }
        (Some(_), _) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (None, _) if !client.confidential => {
            return Err(refuse(
                "invalid_request",
                "public clients must send a PKCE code_challenge with code_challenge_method=S256",
            ))
        }
        (None, _) => {}
    }
    let scope = p
        .scope
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".into());
    if scope != "agent" {
        return Err(refuse("invalid_scope", "the only scope is `agent`"));
    }
    Ok(Checked {
        client,
        redirect_uri,
        state,
        challenge,
        scope,
    })
}

fn hidden(c: &Checked) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("response_type", "code".to_string()),
        ("client_id", c.client.client_id.clone()),
        ("redirect_uri", c.redirect_uri.clone()),
        ("state", c.state.clone()),
        ("scope", c.scope.clone()),
    ];
    if let Some(ch) = &c.challenge {
        v.push(("code_challenge", ch.clone()));
        v.push(("code_challenge_method", "S256".into()));
    }
    v
}

/// The consent page.
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth", params(("response_type" = String, Query, description = "`code`."), ("client_id" = String, Query, description = "The client asking."), ("redirect_uri" = String, Query, description = "One of the client's registered redirect URIs."), ("state" = Option<String>, Query, description = "Returned unchanged to the client."), ("code_challenge" = Option<String>, Query, description = "PKCE: base64url SHA-256 of the verifier (required of public clients)."), ("code_challenge_method" = Option<String>, Query, description = "`S256`."), ("scope" = Option<String>, Query, description = "`agent` (the default and the only scope).")), responses((status = 200, description = "The consent page (sign in, allow or deny).", content_type = "text/html", body = String), (status = 303, description = "Back to the redirect URI: with `code` and `state` when allowed, with `error` and `state` when refused or denied."), (status = 400, description = "A page saying why the request cannot be trusted (missing or unknown client, unregistered redirect URI — the paste-the-code `urn:ietf:wg:oauth:2.0:oob` among them: use the device grant —, malformed parameters).", content_type = "text/html", body = String)))]
pub(crate) async fn authorize_page(
    State(s): State<Shared>,
    q: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(p)) = q else {
        return Refusal::Page("the sign-in link's parameters are malformed".into()).into_response();
    };
    tokio::task::spawn_blocking(move || match check(&s, &p) {
        Ok(c) => {
            let h = hidden(&c);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            page::consent(&c.client.name, &h, None)
        }
        Err(r) => r.into_response(),
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The consent decision: sign-in plus allow or deny.
#[utoipa::path(post, path = "/oauth/authorize", tag = "oauth", request_body(content = AuthorizeParams, content_type = "application/x-www-form-urlencoded", description = "The authorization request's parameters (hidden fields of the consent page) and the person's decision."), responses((status = 303, description = "Back to the redirect URI: with `code` and `state` when allowed, with `error` and `state` when refused or denied."), (status = 400, description = "A page saying why the request cannot be trusted (missing or unknown client, unregistered redirect URI — the paste-the-code `urn:ietf:wg:oauth:2.0:oob` among them: use the device grant —, malformed parameters).", content_type = "text/html", body = String), (status = 401, description = "The consent page again: wrong user name or password.", content_type = "text/html", body = String), (status = 429, description = "Too many failed sign-ins for this user; try again in 15 minutes.", content_type = "text/html", body = String), (status = 503, description = "The consent page again: too many password checks waiting; try again after `Retry-After` seconds.", content_type = "text/html", body = String)))]
pub(crate) async fn authorize_submit(
    State(s): State<Shared>,
    f: Result<Form<AuthorizeParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = f else {
        return Refusal::Page("the form is malformed".into()).into_response();
    };
    tokio::task::spawn_blocking(move || {
        let c = match check(&s, &p) {
            Ok(c) => c,
            Err(r) => return r.into_response(),
        };
        if p.decision.as_deref() != Some("allow") {
            return redirect_with(
                &c.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied access"),
                    ("state", &c.state),
                ],
            );
        }
        let user = p.username.clone().unwrap_or_default();
        let verdict = lockout::check_password(&s, &user, p.password.as_deref().unwrap_or_default());
        if verdict == lockout::Verdict::LockedOut {
            return page::page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "<p class=err>Too many failed sign-ins for this user; try again in 15 minutes.</p>",
            );
        }
        if verdict != lockout::Verdict::Right {
            let h = hidden(&c);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if verdict == lockout::Verdict::Busy {
                // Not checked: too many checks wait. The form again, 503.
                let mut r = page::consent(
                    &c.client.name,
                    &h,
                    Some("the control plane is busy checking other sign-ins; try again in a few seconds"),
                );
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    lockout::BUSY_RETRY_SECONDS.into(),
                );
                return r;
            }
            return page::consent(&c.client.name, &h, Some("wrong user name or password"));
        }
        let challenge = c.challenge.as_deref().map(|ch| (ch, "S256"));
        match s.create_code(
            &c.client.client_id,
            &user,
            &c.redirect_uri,
            challenge,
            &c.scope,
        ) {
            Ok(code) => redirect_with(&c.redirect_uri, &[("code", &code), ("state", &c.state)]),
            Err(e) => ApiError::from(e).into_response(),
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `POST /oauth/token` form.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenForm {
    /// `authorization_code`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    grant_type: Option<String>,
    /// The authorization code (authorization_code grant).
    code: Option<String>,
    /// The redirect URI the code was issued for (authorization_code grant).
    redirect_uri: Option<String>,
    /// The PKCE verifier (authorization_code grant).
    code_verifier: Option<String>,
    /// The refresh token (refresh_token grant); it is spent.
    refresh_token: Option<String>,
    /// The device code (the device_code grant, RFC 8628).
    device_code: Option<String>,
    /// The client, when it does not authenticate with HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret, when not sent with HTTP Basic.
    client_secret: Option<String>,
    /// Accepted and ignored (RFC 6749 allows narrowing; there is one scope).
    #[allow(dead_code)]
    scope: Option<String>,
}

/// `POST /oauth/revoke` form.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct RevokeForm {
    /// The token to revoke (access or refresh).
    token: Option<String>,
    /// Accepted and ignored (RFC 7009 §2.1).
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    /// The client, when it does not authenticate with HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret, when not sent with HTTP Basic.
    client_secret: Option<String>,
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form.
fn client_credentials(
    headers: &HeaderMap,
    id: Option<String>,
    secret: Option<String>,
) -> Result<(String, Option<String>), OAuthError> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // RFC 9110 §11.1: the scheme is case-insensitive.
        let (scheme, b) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| {
                    OAuthError::new("invalid_client", "the Basic credentials are not base64")
                })?;
            let raw = String::from_utf8(raw).map_err(|_| {
                OAuthError::new("invalid_client", "the Basic credentials are not text")
            })?;
            let (i, s) = raw.split_once(':').ok_or_else(|| {
                OAuthError::new("invalid_client", "the Basic credentials lack ':'")
            })?;
            let dec = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            return Ok((dec(i), Some(dec(s)).filter(|s| !s.is_empty())));
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_client", "client_id is missing"))?;
    Ok((id, secret.filter(|s| !s.is_empty())))
}

fn tokens_response(t: IssuedTokens) -> Response {
    let mut r = Json(t).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The RFC 6749 error for a body the form extractor refused, with the
/// status that says what is wrong: 413 for a body over the limit (a
/// client that sends it again unchanged fails again), 415 for another
/// content type, 400 for a form that does not parse.
fn form_refused(r: &FormRejection) -> OAuthError {
    let (status, description) = match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is too large ({}); a token or revocation request is a few hundred bytes",
                r.body_text()
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/x-www-form-urlencoded (send that Content-Type)".into(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not an application/x-www-form-urlencoded form this endpoint reads: {}",
                r.body_text()
            ),
        ),
    };
    OAuthError {
        status,
        error: "invalid_request",
        description,
    }
}

/// Runs `f` for an authenticated client of a form endpoint (token,
/// revocation) off the async runtime; every failure is an RFC 6749 error
/// body.
pub(super) async fn client_endpoint<F: Send + 'static>(
    s: Shared,
    headers: HeaderMap,
    f: Result<Form<F>, FormRejection>,
    ids: impl FnOnce(&F) -> (Option<String>, Option<String>) + Send + 'static,
    then: impl FnOnce(&Store, &Client, F) -> Result<Response, OAuthError> + Send + 'static,
) -> Response {
    let f = match f {
        Ok(Form(f)) => f,
        Err(r) => return form_refused(&r).into_response(),
    };
    tokio::task::spawn_blocking(move || -> Result<Response, OAuthError> {
        let (id, secret) = ids(&f);
        let (id, secret) = client_credentials(&headers, id, secret)?;
        let client = s.authenticate_client(&id, secret.as_deref())?;
        then(&s, &client, f)
    })
    .await
    .unwrap_or_else(|_| Err(OAuthError::new("server_error", "the control plane failed")))
    .unwrap_or_else(IntoResponse::into_response)
}

/// The token endpoint.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth", security(("client" = []), ()), request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "A new token pair (never cached).", body = IssuedTokens), (status = 400, description = "`invalid_request`, `invalid_grant`, `unsupported_grant_type`; for the device grant (RFC 8628 §3.5) also `authorization_pending` (poll again after the interval), `slow_down` (poll 5 s less often from now on), `access_denied`, `expired_token`: see error_description.", body = OAuthErrorBody), (status = 401, description = "`invalid_client`: unknown client, or its authentication failed.", body = OAuthErrorBody)))]
pub(crate) async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    f: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let ids = |f: &TokenForm| (f.client_id.clone(), f.client_secret.clone());
    client_endpoint(s, headers, f, ids, |s, client, f| {
        let t = match f.grant_type.as_deref() {
            Some("authorization_code") => {
                let code = f
                    .code
                    .as_deref()
                    .ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
                let redirect = f
                    .redirect_uri
                    .as_deref()
                    .ok_or_else(|| OAuthError::new("invalid_request", "redirect_uri is missing"))?;
                s.exchange_code(client, code, redirect, f.code_verifier.as_deref())?
            }
            Some("refresh_token") => {
                let rt = f.refresh_token.as_deref().ok_or_else(|| {
                    OAuthError::new("invalid_request", "refresh_token is missing")
                })?;
                s.refresh(client, rt)?
            }
            Some(DEVICE_GRANT) => {
                let dc = f
                    .device_code
                    .as_deref()
                    .ok_or_else(|| OAuthError::new("invalid_request", "device_code is missing"))?;
                s.poll_device_code(client, dc)?
            }
            Some(other) => {
                return Err(OAuthError::new(
                    "unsupported_grant_type",
                    format!(
                        "grant_type {other} is not supported (authorization_code, refresh_token, {DEVICE_GRANT})"
                    ),
                ))
            }
            None => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
        };
        Ok(tokens_response(t))
    })
    .await
}

/// The revocation endpoint (RFC 7009): 200 whether or not the token was
/// known.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth", security(("client" = []), ()), request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "Revoked, or unknown (not an error)."), (status = 400, description = "`invalid_request`, `invalid_grant`, `unsupported_grant_type`: see error_description.", body = OAuthErrorBody), (status = 401, description = "`invalid_client`: unknown client, or its authentication failed.", body = OAuthErrorBody)))]
pub(crate) async fn revoke(
    State(s): State<Shared>,
    headers: HeaderMap,
    f: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let ids = |f: &RevokeForm| (f.client_id.clone(), f.client_secret.clone());
    client_endpoint(s, headers, f, ids, |s, client, f| {
        let token = f
            .token
            .as_deref()
            .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
        s.revoke(client, token)?;
        Ok(StatusCode::OK.into_response())
    })
    .await
}

/// Authorization server metadata (RFC 8414 §2): the fields this server
/// has.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AuthServerMetadata {
    /// The issuer: `--public-url`.
    issuer: String,
    /// Where a person signs in and consents.
    authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    token_endpoint: String,
    /// Where tokens are revoked (RFC 7009).
    revocation_endpoint: String,
    /// Where a device without a browser starts the device grant (RFC
    /// 8628 §4).
    device_authorization_endpoint: String,
    /// `code`.
    response_types_supported: Vec<&'static str>,
    /// `authorization_code`, `refresh_token`,
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    grant_types_supported: Vec<&'static str>,
    /// `S256` (RFC 7636; `plain` is refused).
    code_challenge_methods_supported: Vec<&'static str>,
    /// `agent`.
    scopes_supported: Vec<&'static str>,
    /// How clients authenticate at the token endpoint.
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// How clients authenticate at the revocation endpoint.
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
}

/// Authorization server metadata (RFC 8414): where a client finds the
/// endpoints and what they support, so it needs only the issuer's URL.
/// The issuer is `--public-url`.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth", responses((status = 200, description = "The authorization server's metadata (RFC 8414 §2).", body = AuthServerMetadata)))]
pub(crate) async fn metadata(State(s): State<Shared>) -> Json<AuthServerMetadata> {
    let issuer = s.public_url().to_string();
    let auth = vec!["client_secret_basic", "client_secret_post", "none"];
    Json(AuthServerMetadata {
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        token_endpoint: format!("{issuer}/oauth/token"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
        issuer,
        response_types_supported: vec!["code"],
        grant_types_supported: vec!["authorization_code", "refresh_token", DEVICE_GRANT],
        code_challenge_methods_supported: vec!["S256"],
        scopes_supported: vec!["agent"],
        token_endpoint_auth_methods_supported: auth.clone(),
        revocation_endpoint_auth_methods_supported: auth,
    })
}
