//! Standards third-party clients rely on, over real HTTP: every 401 has
//! `WWW-Authenticate: Bearer` (with `error="invalid_token"` when a
//! credential was refused, RFC 6750 §3), on every mount; the scheme is
//! read case-insensitively (RFC 9110 §11.1); every 4xx, 405 included,
//! has a JSON body; the OAuth server's metadata is at its RFC 8414 place.

use super::test_server::Served;

#[tokio::test]
async fn every_401_challenges_for_a_bearer_token_on_every_mount() {
    let srv = Served::start(|s| s).await;
    for path in [
        "/v1/sessions",
        "/v0/me",
        "/api/v1/cloud/agents",
        "/api/v1/agent/runs",
    ] {
        for (auth, invalid) in [
            (None, false),
            (Some("Bearer cpk_nope"), true),
            (Some("Basic bm9wZQ=="), true),
        ] {
            let (st, h, body) = srv.send("GET", path, auth.unwrap_or(""), None).await;
            assert_eq!(st, 401, "{path} {auth:?}: {body}");
            let c = h
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            assert!(c.starts_with("Bearer "), "{path} {auth:?}: {c:?}");
            assert_eq!(
                c.contains(r#"error="invalid_token""#),
                invalid,
                "{path} {auth:?}: {c:?}"
            );
            assert!(body.is_object(), "{path}: a JSON body: {body}");
        }
    }
    // The OAuth token endpoint keeps its own challenge (client auth).
    let r = srv
        .http
        .post(format!("http://{}/oauth/token", srv.addr))
        .header("Authorization", "Basic bm9wZTpub3Bl")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    if r.status() == 401 {
        let c = r
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(c.starts_with("Basic"), "{c}");
    }
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_every_4xx_has_a_json_body() {
    let srv = Served::start(|s| s).await;
    srv.store.add_user("alice", "alice-password", None).unwrap();
    let key = srv.store.add_api_key("k", Some("alice")).unwrap().key;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (st, _, body) = srv
            .send("GET", "/v1/sessions", &format!("{scheme} {key}"), None)
            .await;
        assert_eq!(st, 200, "{scheme}: {body}");
    }
    for (method, path) in [
        ("DELETE", "/v1/sessions"),
        ("PATCH", "/v0/agents"),
        ("DELETE", "/api/v1/cloud/agents"),
        ("PATCH", "/api/v1/agent/runs"),
        ("GET", "/no/such/route"),
    ] {
        let (st, h, body) = srv.send(method, path, &format!("Bearer {key}"), None).await;
        assert!((400..500).contains(&st), "{method} {path}: {st}");
        assert!(
            h.get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("json"),
            "{method} {path}"
        );
        assert!(body.is_object(), "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn the_authorization_servers_metadata_names_its_endpoints() {
    let srv = Served::start(|s| s.with_public_url("https://cp.example")).await;
    let (st, _, m) = srv
        .send("GET", "/.well-known/oauth-authorization-server", "", None)
        .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["issuer"], "https://cp.example");
    assert_eq!(m["token_endpoint"], "https://cp.example/oauth/token");
    assert_eq!(
        m["authorization_endpoint"],
        "https://cp.example/oauth/authorize"
    );
    assert_eq!(m["revocation_endpoint"], "https://cp.example/oauth/revoke");
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    // Each endpoint it names is served.
    for path in ["/oauth/authorize", "/oauth/token", "/oauth/revoke"] {
        let (st, _, _) = srv.send("GET", path, "", None).await;
        assert_ne!(st, 404, "{path}");
    }
}

/// RFC 7009 §2.1: revoking a refresh token ends the access tokens of its
/// grant, and a client cannot revoke another client's token; RFC 7636
/// §4.1: a code verifier is 43–128 unreserved characters.
#[tokio::test]
async fn revocation_ends_the_grant_and_stays_within_its_client_and_verifiers_are_checked() {
    let srv = Served::start(|s| s).await;
    let st = &srv.store;
    st.add_user("alice", "alice-password", None).unwrap();
    st.add_client("other", "Other", false, &["http://127.0.0.1/cb".into()])
        .unwrap();
    let t = st
        .issue_tokens("alice", crate::auth::RUNNER_CLIENT)
        .unwrap();
    let revoke = |client: &str, token: &str| {
        srv.http
            .post(format!("http://{}/oauth/revoke", srv.addr))
            .form(&[("client_id", client), ("token", token)])
            .send()
    };
    let authed = |token: &str| {
        let srv = &srv;
        let token = token.to_string();
        async move {
            srv.send("GET", "/v1/sessions", &format!("Bearer {token}"), None)
                .await
                .0
        }
    };
    assert_eq!(authed(&t.access_token).await, 200);
    // Another client's try is refused, and changes nothing.
    let r = revoke("other", &t.refresh_token).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(authed(&t.access_token).await, 200);
    // Its own client's revocation of the refresh token ends the access
    // token of the same sign-in at once.
    let r = revoke(crate::auth::RUNNER_CLIENT, &t.refresh_token)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(authed(&t.access_token).await, 401);
    // Verifiers of the wrong length or alphabet are malformed requests.
    for v in ["short", &"a".repeat(129), &format!("{}!", "a".repeat(50))] {
        let r = srv
            .http
            .post(format!("http://{}/oauth/token", srv.addr))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", crate::auth::RUNNER_CLIENT),
                ("code", "cpac_nothing"),
                ("redirect_uri", "http://127.0.0.1/cb"),
                ("code_verifier", v),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{v}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{v}: {body}");
    }
}

/// RFC 6749 §4.1.2.1: an authorization request without `response_type`
/// is `invalid_request`; one with another value is
/// `unsupported_response_type`.
#[tokio::test]
async fn a_missing_response_type_is_an_invalid_request() {
    let srv = Served::start(|s| s).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (rt, error) in [
        (None, "invalid_request"),
        (Some("token"), "unsupported_response_type"),
    ] {
        let mut q = vec![
            ("client_id", "runner"),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        if let Some(rt) = rt {
            q.push(("response_type", rt));
        }
        let r = client
            .get(format!("http://{}/oauth/authorize", srv.addr))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{rt:?}");
        let to = r
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(to.contains(&format!("error={error}")), "{rt:?}: {to}");
    }
}

/// `POST` of a form; (status, headers, body as JSON or as a string).
async fn post_form(
    srv: &Served,
    path: &str,
    auth: Option<&str>,
    fields: &[(&str, &str)],
) -> super::test_server::Answer {
    let mut req = srv
        .http
        .post(format!("http://{}{path}", srv.addr))
        .form(fields);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, body)
}

/// A device code and user code for `client` (a public client: by id).
async fn start_device(srv: &Served, client: &str) -> (String, String) {
    let (st, h, b) = post_form(
        srv,
        "/oauth/device_authorization",
        None,
        &[("client_id", client), ("scope", "agent")],
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    (
        b["device_code"].as_str().unwrap().to_string(),
        b["user_code"].as_str().unwrap().to_string(),
    )
}

async fn poll(srv: &Served, client: &str, device_code: &str) -> (u16, serde_json::Value) {
    let (st, _, b) = post_form(
        srv,
        "/oauth/token",
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client),
            ("device_code", device_code),
        ],
    )
    .await;
    (st, b)
}

/// The verification page's decision as `user`.
async fn decide(srv: &Served, user_code: &str, user: &str, password: &str, decision: &str) -> u16 {
    post_form(
        srv,
        "/oauth/device",
        None,
        &[
            ("user_code", user_code),
            ("username", user),
            ("password", password),
            ("decision", decision),
        ],
    )
    .await
    .0
}

/// RFC 8628 at the token endpoint: every answer of the device grant —
/// pending, slow_down (and the interval it grows), denied, expired, a
/// code redeemed twice (the tokens it gave are revoked), another client's
/// code, unknown and missing codes — and the device authorization
/// response itself.
#[tokio::test]
async fn the_device_grant_answers_each_of_its_errors() {
    let srv = Served::start(|s| s.with_public_url("https://cp.example")).await;
    let st = &srv.store;
    st.add_user("dora", "dora-password", None).unwrap();
    st.add_client("other", "Other", false, &["http://127.0.0.1/cb".into()])
        .unwrap();
    let runner = crate::auth::RUNNER_CLIENT;
    let (st_, _, b) = post_form(
        &srv,
        "/oauth/device_authorization",
        None,
        &[("client_id", runner)],
    )
    .await;
    assert_eq!(st_, 200, "{b}");
    let code = b["user_code"].as_str().unwrap();
    assert!(
        code.len() == 9
            && code.as_bytes()[4] == b'-'
            && code
                .bytes()
                .filter(|c| *c != b'-')
                .all(|c| b"BCDFGHJKLMNPQRSTVWXZ".contains(&c)),
        "{code}"
    );
    assert_eq!(b["verification_uri"], "https://cp.example/oauth/device");
    assert_eq!(
        b["verification_uri_complete"],
        format!("https://cp.example/oauth/device?user_code={code}")
    );
    assert_eq!(b["interval"], 5);
    assert_eq!(b["expires_in"], 600);
    assert!(b["device_code"].as_str().unwrap().starts_with("cpdc_"));
    // Another scope, or an unknown client, is refused.
    let (s1, _, b1) = post_form(
        &srv,
        "/oauth/device_authorization",
        None,
        &[("client_id", runner), ("scope", "admin")],
    )
    .await;
    assert_eq!((s1, b1["error"].as_str()), (400, Some("invalid_scope")));
    let (s1, _, b1) = post_form(
        &srv,
        "/oauth/device_authorization",
        None,
        &[("client_id", "nobody")],
    )
    .await;
    assert_eq!((s1, b1["error"].as_str()), (401, Some("invalid_client")));

    let (device, user_code) = start_device(&srv, runner).await;
    // Nobody decided yet.
    let (s, b) = poll(&srv, runner, &device).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_pending")),
        "{b}"
    );
    // At once again: too fast, and the interval grows by 5 s each time.
    let (s, b) = poll(&srv, runner, &device).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("slow_down")), "{b}");
    assert!(
        b["error_description"].as_str().unwrap().contains("10 s"),
        "{b}"
    );
    let (_, b) = poll(&srv, runner, &device).await;
    assert!(
        b["error_description"].as_str().unwrap().contains("15 s"),
        "{b}"
    );
    // Another client cannot redeem it; unknown and missing codes.
    let (s, b) = poll(&srv, "other", &device).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    let (s, b) = poll(&srv, runner, "cpdc_nothing").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    let (s, _, b) = post_form(
        &srv,
        "/oauth/token",
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", runner),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_request")),
        "{b}"
    );
    // Allowed on the page (a wrong password first decides nothing).
    assert_eq!(
        decide(&srv, &user_code, "dora", "wrong-password", "allow").await,
        401
    );
    let (s, b) = poll(&srv, runner, &device).await;
    assert_eq!(b["error"], "slow_down", "{s} {b}");
    assert_eq!(
        decide(&srv, &user_code, "dora", "dora-password", "allow").await,
        200
    );
    let (s, tokens) = poll(&srv, runner, &device).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {access}");
    assert_eq!(srv.send("GET", "/v1/sessions", &bearer, None).await.0, 200);
    // Redeemed once only; a second try revokes what the first gave.
    let (s, b) = poll(&srv, runner, &device).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    assert_eq!(srv.send("GET", "/v1/sessions", &bearer, None).await.0, 401);
    // A decided code cannot be decided again.
    assert_eq!(
        decide(&srv, &user_code, "dora", "dora-password", "deny").await,
        400
    );

    // Denied.
    let (device, user_code) = start_device(&srv, runner).await;
    assert_eq!(
        decide(&srv, &user_code, "dora", "dora-password", "deny").await,
        200
    );
    let (s, b) = poll(&srv, runner, &device).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("access_denied")),
        "{b}"
    );

    // Expired: a control plane whose codes live one second.
    let short = Served::start(|s| {
        s.with_auth_settings(crate::auth::AuthSettings {
            device_seconds: 1,
            ..Default::default()
        })
    })
    .await;
    short.store.add_user("dora", "dora-password", None).unwrap();
    let (device, user_code) = start_device(&short, runner).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, b) = poll(&short, runner, &device).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("expired_token")),
        "{b}"
    );
    assert_eq!(
        decide(&short, &user_code, "dora", "dora-password", "allow").await,
        400
    );

    // The metadata names the endpoint and the grant.
    let (_, _, m) = srv
        .send("GET", "/.well-known/oauth-authorization-server", "", None)
        .await;
    assert_eq!(
        m["device_authorization_endpoint"],
        "https://cp.example/oauth/device_authorization"
    );
    assert!(m["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(
            "urn:ietf:params:oauth:grant-type:device_code"
        )));
}

/// The verification page: not frameable, no script, the code shown as
/// text; wrong codes lock the user out like wrong passwords do (RFC 8628
/// §5.1), and the lock holds even for the right code.
#[tokio::test]
async fn the_verification_page_is_inert_and_wrong_codes_lock_the_user_out() {
    let srv = Served::start(|s| s).await;
    srv.store
        .add_user("guesser", "guesser-password", None)
        .unwrap();
    let r = srv
        .http
        .get(format!(
            "http://{}/oauth/device?user_code=%3Cscript%3Ealert(1)%3C/script%3E",
            srv.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("x-frame-options").unwrap(), "DENY");
    let csp = r.headers().get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("frame-ancestors 'none'"));
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "{html}"
    );

    let (_, user_code) = start_device(&srv, crate::auth::RUNNER_CLIENT).await;
    for wrong in [
        "BCDF-GHJK",
        "ZZZZ-ZZZZ",
        "XXXX-XXXX",
        "CCCC-CCCC",
        "BBBB-BBBB",
    ] {
        let s = decide(&srv, wrong, "guesser", "guesser-password", "allow").await;
        assert_eq!(s, 400, "{wrong}");
    }
    // A malformed code is no guess: refused, counted against nobody (but
    // the user is locked out by now).
    assert_eq!(
        decide(&srv, "not a code", "guesser", "guesser-password", "allow").await,
        400
    );
    assert_eq!(
        decide(&srv, &user_code, "guesser", "guesser-password", "allow").await,
        429
    );
}

/// The paste-the-code redirect is refused, with what to use instead:
/// on the consent page, and when registering a client.
#[tokio::test]
async fn the_out_of_band_redirect_is_refused_with_a_pointer_to_the_device_grant() {
    let srv = Served::start(|s| s).await;
    let r = srv
        .http
        .get(format!("http://{}/oauth/authorize", srv.addr))
        .query(&[
            ("response_type", "code"),
            ("client_id", "runner"),
            ("redirect_uri", "urn:ietf:wg:oauth:2.0:oob"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("runner login --device"), "{html}");
    let e = srv
        .store
        .add_client("x", "X", false, &["urn:ietf:wg:oauth:2.0:oob".into()])
        .unwrap_err();
    assert!(e.to_string().contains("device"), "{e}");
}

/// RFC 9110 §11.1: `basic` and `bearer` in any case, wherever a scheme is
/// read — the API's bearer tokens, the Cloud Agents API's `KEY:` Basic,
/// and the OAuth endpoints' client authentication.
#[tokio::test]
async fn every_authorization_scheme_is_read_case_insensitively() {
    use base64::Engine;
    let srv = Served::start(|s| s).await;
    srv.store.add_user("alice", "alice-password", None).unwrap();
    let key = srv.store.add_api_key("k", Some("alice")).unwrap().key;
    let token = srv
        .store
        .issue_tokens("alice", crate::auth::RUNNER_CLIENT)
        .unwrap()
        .access_token;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (st, _, b) = srv
            .send("GET", "/v1/sessions", &format!("{scheme} {token}"), None)
            .await;
        assert_eq!(st, 200, "{scheme}: {b}");
    }
    for scheme in ["basic", "BASIC", "Basic"] {
        let (st, _, b) = srv
            .send(
                "GET",
                "/v0/me",
                &format!("{scheme} {}", b64(&format!("{key}:"))),
                None,
            )
            .await;
        assert_eq!(st, 200, "{scheme}: {b}");
    }
    let secret = srv
        .store
        .add_client("ci", "CI", true, &["http://127.0.0.1/cb".into()])
        .unwrap()
        .unwrap();
    for scheme in ["basic", "BASIC"] {
        let auth = format!("{scheme} {}", b64(&format!("ci:{secret}")));
        let (st, _, b) = post_form(&srv, "/oauth/device_authorization", Some(&auth), &[]).await;
        assert_eq!(st, 200, "{scheme}: {b}");
        let (st, _, b) =
            post_form(&srv, "/oauth/revoke", Some(&auth), &[("token", "cprt_x")]).await;
        assert_eq!(st, 200, "{scheme}: {b}");
    }
    // A confidential client's secret is still required.
    let (st, _, b) = post_form(
        &srv,
        "/oauth/device_authorization",
        None,
        &[("client_id", "ci")],
    )
    .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (401, Some("invalid_client")),
        "{b}"
    );
}

/// Whether `body` (with content type `ct`) is an error in the shape the
/// clients of `path`'s mount read.
fn has_mount_shape(path: &str, ct: &str, body: &serde_json::Value) -> bool {
    let s = |v: &serde_json::Value| v.as_str().is_some_and(|s| !s.is_empty());
    let json = ct.starts_with("application/json") || ct.starts_with("application/problem+json");
    json && if path.starts_with("/v0/") {
        s(&body["message"]) && s(&body["error"]["type"]) && s(&body["error"]["code"])
    } else if path.starts_with("/api/v1/cloud/") {
        body["type"] == "error" && s(&body["error"]["type"]) && s(&body["error"]["message"])
    } else if path.starts_with("/api/v1/agent/") {
        ct.starts_with("application/problem+json")
            && body["status"].is_u64()
            && s(&body["title"])
            && s(&body["detail"])
    } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
        s(&body["error"]) && s(&body["error_description"])
    } else {
        s(&body["error"]["type"]) && s(&body["error"]["message"])
    }
}

/// Every route of the OpenAPI document and of the vendor mounts, asked
/// wrongly — a method it does not take, a path segment that is not
/// percent-encoded UTF-8, a malformed query, a body that is not JSON or
/// not JSON at all — answers every 4xx with a JSON body in its mount's
/// shape (axum's own answers would be text/plain, or empty).
#[tokio::test]
async fn every_4xx_of_every_route_has_its_mounts_json_error_body() {
    use std::collections::BTreeMap;
    let srv = Served::start(|s| s).await;
    srv.store.add_user("alice", "alice-password", None).unwrap();
    let key = srv.store.add_api_key("k", Some("alice")).unwrap().key;
    let token = super::test_server::bearer(&srv.store, "alice");
    let basic = super::test_server::basic(&key);
    let (_, _, doc) = srv.send("GET", "/openapi.json", "", None).await;
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
            .map(|m| m.to_uppercase())
            .collect();
        routes.insert(path.clone(), methods);
    }
    let vendor: &[(&str, &[&str])] = &[
        ("/api/v1/cloud/agents", &["GET", "POST"]),
        ("/api/v1/cloud/agents/{id}", &["GET", "PUT", "POST"]),
        ("/api/v1/cloud/agents/{id}/versions", &["GET"]),
        ("/api/v1/cloud/agents/{id}/archive", &["POST"]),
        ("/api/v1/cloud/models", &["GET"]),
        ("/api/v1/agent/identities", &["GET", "POST"]),
        ("/api/v1/agent/identities/{uid}", &["GET", "PUT", "DELETE"]),
        ("/api/v1/agent/runs", &["GET", "POST"]),
        ("/api/v1/agent/runs/{id}", &["GET"]),
        ("/api/v1/agent/runs/{id}/cancel", &["POST"]),
        ("/api/v1/agent/runs/{id}/followups", &["POST"]),
        ("/api/v1/agent/schedules", &["GET", "POST"]),
        ("/api/v1/agent/schedules/{id}", &["GET", "PUT", "DELETE"]),
        ("/api/v1/agent/schedules/{id}/pause", &["POST"]),
        ("/api/v1/agent/schedules/{id}/resume", &["POST"]),
    ];
    for (path, methods) in vendor {
        routes
            .entry(path.to_string())
            .or_insert_with(|| methods.iter().map(|m| m.to_string()).collect());
    }
    assert!(routes.len() > 50, "{} routes", routes.len());
    // The pages for a person's browser answer their own refusals in HTML.
    let pages = ["/oauth/authorize", "/oauth/device"];
    let fill = |p: &str, with: &str| {
        p.split('/')
            .map(|seg| if seg.starts_with('{') { with } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut bad = Vec::new();
    let mut asked = 0;
    let mut refused_encoding = 0;
    for (path, methods) in &routes {
        let auth = if path.starts_with("/v0/") {
            &basic
        } else {
            &token
        };
        let mut tries: Vec<(String, String, Option<&str>)> = Vec::new();
        if let Some(m) = ["GET", "POST", "PUT", "PATCH", "DELETE"]
            .into_iter()
            .find(|m| !methods.iter().any(|x| x == m))
        {
            tries.push((m.to_string(), fill(path, "x1"), None));
        }
        if !pages.contains(&path.as_str()) {
            for m in methods {
                if path.contains('{') {
                    tries.push((m.clone(), fill(path, "%FF%FE"), None));
                }
                tries.push((
                    m.clone(),
                    format!("{}?limit=many&%FF=1&state=%FF", fill(path, "x1")),
                    None,
                ));
                if m != "GET" && m != "DELETE" {
                    tries.push((m.clone(), fill(path, "x1"), Some("{not json")));
                }
            }
        }
        for (method, url, body) in tries {
            let mut req = srv
                .http
                .request(method.parse().unwrap(), format!("http://{}{url}", srv.addr))
                .header("Authorization", auth.as_str());
            if let Some(b) = body {
                req = req.header("Content-Type", "application/json").body(b);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let text = r.text().await.unwrap();
            asked += 1;
            if !(400..500).contains(&status) {
                continue;
            }
            if url.contains("%FF%FE") && status == 400 {
                refused_encoding += 1;
            }
            let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            if !has_mount_shape(path, &ct, &body) {
                bad.push(format!("{method} {url}: {status} {ct} {text}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} answers without their mount's JSON error body:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(asked > 150, "{asked}");
    // Bad percent-encodings did reach the path extractors (axum's text/plain
    // 400), and were re-said as JSON.
    assert!(refused_encoding > 10, "{refused_encoding}");
}

/// The token and revocation endpoints answer a body their form extractor
/// refuses with its real status, in RFC 6749's shape: 413 for one over
/// the limit (it was a 400 saying the content type was wrong), 415 for
/// another content type, 400 for a form that does not parse.
#[tokio::test]
async fn a_refused_form_keeps_its_status_on_the_oauth_endpoints() {
    let srv = Served::start(|s| s).await;
    let big = format!(
        "grant_type=refresh_token&refresh_token={}",
        "a".repeat(2 << 20)
    );
    for path in ["/oauth/token", "/oauth/revoke"] {
        for (ct, body, want, says) in [
            (
                "application/x-www-form-urlencoded",
                big.clone(),
                413,
                "too large",
            ),
            (
                "application/json",
                "{}".to_string(),
                415,
                "x-www-form-urlencoded",
            ),
            (
                "application/x-www-form-urlencoded",
                "client_id=a&client_id=b".to_string(),
                400,
                "form",
            ),
        ] {
            let r = srv
                .http
                .post(format!("http://{}{path}", srv.addr))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{path} {ct}");
            let b: serde_json::Value = r.json().await.unwrap();
            assert_eq!(b["error"], "invalid_request", "{path}: {b}");
            let d = b["error_description"].as_str().unwrap();
            assert!(d.contains(says), "{path} {want}: {d}");
        }
    }
}
