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
