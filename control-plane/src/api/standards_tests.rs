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
