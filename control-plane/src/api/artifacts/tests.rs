//! Artifacts and pinned skills over real HTTP on loopback, against a
//! store on a real SQLite file: the worker's delivery under its claim (a
//! re-delivery replaces, a wrong claim is a 409, over the limits a 413,
//! a path outside /data a 400), the listing and download for the
//! session's reader (another user's session a 404 like a missing one,
//! download headers that keep the bytes from becoming a page), and the
//! worker's skill fetch (only what the session pinned, only under the
//! claim).

use crate::api::test_server::Served;
use crate::auth::RUNNER_CLIENT;
use crate::store::Outcome;
use serde_json::{json, Value};

struct Rig {
    srv: Served,
    alice: String,
    bob: String,
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s).await;
    srv.store.add_user("alice", "alice-password", None).unwrap();
    srv.store.add_team("other").unwrap();
    srv.store
        .add_user_in_team("bob", "bob-password", None, "other")
        .unwrap();
    let tok = |u| {
        srv.store
            .issue_tokens(u, RUNNER_CLIENT)
            .unwrap()
            .access_token
    };
    let (alice, bob) = (tok("alice"), tok("bob"));
    Rig { srv, alice, bob }
}

impl Rig {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let ct = if method == reqwest::Method::POST {
            "application/json"
        } else {
            "application/octet-stream"
        };
        let r = self
            .srv
            .http
            .request(method, format!("http://{}{path}", self.srv.addr))
            .bearer_auth(token)
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let h = r.headers().clone();
        (st, h, r.bytes().await.unwrap().to_vec())
    }

    /// A session of alice's, claimed by a worker of hers: (session, claim).
    async fn claimed(&self, agent: Value) -> (String, String) {
        let body = json!({"workspace": "w", "agent_profile": "p", "agent": agent,
                          "source": {"prompt": "go"}});
        let (st, _, b) = self
            .send(
                reqwest::Method::POST,
                "/v1/sessions",
                &self.alice,
                body.to_string().into_bytes(),
            )
            .await;
        let b: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(st, 200, "{b}");
        let id = b["id"].as_str().unwrap().to_string();
        let w = crate::store::testing::worker_of(&self.srv.store, "r", Some("alice"));
        let c = self.srv.store.claim(&w.worker_id, &id, Some(60)).unwrap();
        (id, c.claim_id.to_string())
    }

    async fn put(&self, id: &str, claim: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let (st, _, b) = self
            .send(
                reqwest::Method::PUT,
                &format!("/v1/sessions/{id}/artifacts?claimId={claim}&path={path}"),
                &self.alice,
                body,
            )
            .await;
        (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

fn plain() -> Value {
    json!({"name": "a", "model": "m"})
}

#[tokio::test]
async fn a_delivery_is_listed_downloaded_and_replaced() {
    let r = rig().await;
    let (id, claim) = r.claimed(plain()).await;
    let (st, a) = r
        .put(&id, &claim, "/data/report.md", b"# one".to_vec())
        .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["size_bytes"], 5);
    assert_eq!(a["media_type"], "text/markdown");
    let (st, b) = r
        .put(&id, &claim, "/data/report.md", b"# two!".to_vec())
        .await;
    assert_eq!(st, 200, "{b}");
    r.put(
        &id,
        &claim,
        "/data/page.html",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    let (st, _, list) = r
        .send(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/artifacts"),
            &r.alice,
            vec![],
        )
        .await;
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(st, 200);
    let paths: Vec<&str> = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/data/page.html", "/data/report.md"]);
    assert_eq!(
        list["artifacts"][1]["size_bytes"], 6,
        "the re-delivery replaced it"
    );
    let (st, h, bytes) = r
        .send(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/artifacts/content?path=/data/report.md"),
            &r.alice,
            vec![],
        )
        .await;
    assert_eq!((st, bytes.as_slice()), (200, b"# two!".as_slice()));
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"report.md\"; filename*=UTF-8''report.md"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    // HTML is never served as HTML.
    let (_, h, _) = r
        .send(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/artifacts/content?path=/data/page.html"),
            &r.alice,
            vec![],
        )
        .await;
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
}

#[tokio::test]
async fn wrong_claims_bad_paths_and_limits_are_refused() {
    let r = rig().await;
    let (id, claim) = r.claimed(plain()).await;
    let (st, e) = r.put(&id, "clm_nope", "/data/x", b"x".to_vec()).await;
    assert_eq!(
        (st, e["error"]["type"].as_str()),
        (409, Some("claim_invalid")),
        "{e}"
    );
    for bad in ["/etc/passwd", "/data/../x", "/data/", "data/x"] {
        let (st, e) = r.put(&id, &claim, bad, b"x".to_vec()).await;
        assert_eq!(
            (st, e["error"]["type"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {e}"
        );
    }
    let big = vec![0u8; protocol::toolset::ARTIFACT_MAX_FILE_BYTES as usize + 1];
    let (st, e) = r.put(&id, &claim, "/data/big", big).await;
    assert_eq!(
        (st, e["error"]["type"].as_str()),
        (413, Some("payload_too_large")),
        "{e}"
    );
    for i in 0..protocol::toolset::ARTIFACT_MAX_FILES {
        r.srv
            .store
            .put_artifact(&id, &claim, &format!("/data/{i}"), vec![1])
            .unwrap();
    }
    let (st, e) = r.put(&id, &claim, "/data/more", b"x".to_vec()).await;
    assert_eq!(st, 413, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100"),
        "{e}"
    );
    // After the claim ends, no more deliveries.
    r.srv
        .store
        .finish(
            &id,
            Outcome::Complete,
            protocol::platform::Finish {
                claim_id: claim.clone().into(),
                message: "done".into(),
            },
        )
        .unwrap();
    let (st, _) = r.put(&id, &claim, "/data/0", b"x".to_vec()).await;
    assert_eq!(st, 409);
}

#[tokio::test]
async fn another_users_session_is_a_404_like_a_missing_one() {
    let r = rig().await;
    let (id, claim) = r.claimed(plain()).await;
    r.put(&id, &claim, "/data/r.txt", b"secret".to_vec()).await;
    for path in [
        format!("/v1/sessions/{id}/artifacts"),
        format!("/v1/sessions/{id}/artifacts/content?path=/data/r.txt"),
    ] {
        let (st, _, b) = r.send(reqwest::Method::GET, &path, &r.bob, vec![]).await;
        let (st2, _, b2) = r
            .send(
                reqwest::Method::GET,
                &path.replace(&id, "ses_nope"),
                &r.bob,
                vec![],
            )
            .await;
        assert_eq!((st, st2), (404, 404), "{path}");
        let (e, e2): (Value, Value) = (
            serde_json::from_slice(&b).unwrap(),
            serde_json::from_slice(&b2).unwrap(),
        );
        assert_eq!(e["error"]["type"], e2["error"]["type"]);
        assert!(!String::from_utf8_lossy(&b).contains("secret"));
    }
    let (st, _, _) = r
        .send(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/artifacts/content?path=/data/nope"),
            &r.alice,
            vec![],
        )
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn the_worker_fetches_only_pinned_skills_under_its_claim() {
    let r = rig().await;
    let team = "default";
    let skill = r
        .srv
        .store
        .create_skill(
            team,
            "alice",
            None,
            Default::default(),
            crate::store::skills::testing::upload("pdf", "Read PDFs."),
        )
        .unwrap();
    let version = skill.latest_version.clone().unwrap();
    // An inline pin with a forged digest and name: re-resolved.
    let agent = json!({"name": "a", "model": "m", "pinned_skills": [{
        "skill_id": skill.id, "version": version, "name": "evil",
        "description": "x", "sha256": "00", "size_bytes": 1}]});
    let (id, claim) = r.claimed(agent).await;
    let s = r.srv.store.get(&id).unwrap().session;
    let pin = &s.agent.pinned_skills[0];
    assert_eq!(pin.name, "pdf");
    assert_eq!(pin.description, "Does pdf things.");
    let path = |v: &str, c: &str| format!("/v1/sessions/{id}/skills/{}/{v}?claimId={c}", skill.id);
    let (st, _, b) = r
        .send(
            reqwest::Method::GET,
            &path(&version, &claim),
            &r.alice,
            vec![],
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let bundle: protocol::toolset::SkillBundle = serde_json::from_slice(&b).unwrap();
    assert_eq!(bundle.digest().unwrap(), pin.sha256);
    assert_eq!(
        bundle
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["SKILL.md", "scripts/run.sh"]
    );
    let (st, _, _) = r
        .send(reqwest::Method::GET, &path("1", &claim), &r.alice, vec![])
        .await;
    assert_eq!(st, 404, "an unpinned version");
    let (st, _, _) = r
        .send(
            reqwest::Method::GET,
            &path(&version, "clm_nope"),
            &r.alice,
            vec![],
        )
        .await;
    assert_eq!(st, 409);
    // Another team's skill cannot be pinned inline.
    let body = json!({"workspace": "w", "agent_profile": "p", "source": {"prompt": "go"},
        "agent": {"name": "a", "model": "m", "pinned_skills": [{"skill_id": skill.id,
        "version": version, "name": "pdf", "description": "d", "sha256": pin.sha256, "size_bytes": 1}]}});
    let (st, _, b) = r
        .send(
            reqwest::Method::POST,
            "/v1/sessions",
            &r.bob,
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("pinned_skills[0]"));
}

#[tokio::test]
async fn the_routes_are_in_the_openapi_document() {
    let r = rig().await;
    let (st, _, b) = r
        .send(reqwest::Method::GET, "/openapi.json", &r.alice, vec![])
        .await;
    assert_eq!(st, 200);
    let doc: Value = serde_json::from_slice(&b).unwrap();
    for (path, method) in [
        ("/v1/sessions/{session}/artifacts", "put"),
        ("/v1/sessions/{session}/artifacts", "get"),
        ("/v1/sessions/{session}/artifacts/content", "get"),
        ("/v1/sessions/{session}/skills/{skill_id}/{version}", "get"),
        ("/v0/agents/{id}/artifacts", "get"),
        ("/v0/agents/{id}/artifacts/download", "get"),
        ("/v0/artifact-downloads/{token}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["SkillBundle"].is_object());
    assert!(doc["components"]["schemas"]["ArtifactInfo"].is_object());
}
