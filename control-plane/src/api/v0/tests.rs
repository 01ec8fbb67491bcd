//! The Cloud Agents API over real HTTP on loopback, against a store on a
//! real SQLite file: launch, status, list and its pages, the conversation,
//! follow-up, stop, delete, models, and every refusal with the `/v0` error
//! body. (The whole loop with a real worker, git server and Cursor's own
//! Python client is in the e2e suite.)

use crate::api::test_server::{basic, bearer, Served};
use protocol::conversation::{AppendConversation, Message};
use protocol::platform::{Finish, RegisterWorker};
use serde_json::{json, Value};
use std::collections::HashSet;

/// A control plane with alice's and bob's keys, a key of nobody's, and a
/// worker of the operator's (`ops`, a trusted worker user).
struct Rig {
    srv: Served,
    /// Basic credentials of alice's key, bob's, and a key of nobody's.
    alice: String,
    bob: String,
    ownerless: String,
    worker: String,
}

impl std::ops::Deref for Rig {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.srv
    }
}

fn registration(models: &[&str]) -> RegisterWorker {
    RegisterWorker {
        workspace: "w".into(),
        agent_profile: "p".into(),
        runtime: "r".into(),
        execution_mode: "cloud".into(),
        display_name: "worker".into(),
        capabilities: vec!["Bash".into(), "Read".into(), "Decide".into()],
        concurrency: 1,
        policy_entries: vec![],
        custom_instructions: None,
        models: models.iter().map(|m| m.to_string()).collect(),
    }
}

async fn rig() -> Rig {
    let srv = Served::start(|s| {
        s.with_public_url("https://agents.example/")
            .with_worker_users(vec!["ops".into()])
    })
    .await;
    let store = &srv.store;
    store
        .add_user("alice", "alice-password", Some("alice@example.com"))
        .unwrap();
    store.add_user("bob", "bob-password", None).unwrap();
    let alice = basic(&store.add_api_key("a", Some("alice")).unwrap().key);
    let bob = basic(&store.add_api_key("b", Some("bob")).unwrap().key);
    let ownerless = basic(&store.add_api_key("n", None).unwrap().key);
    let worker = store
        .register_worker_as(registration(&["fake-coder", "fake-large"]), Some("ops"))
        .unwrap()
        .worker_id
        .to_string();
    Rig {
        srv,
        alice,
        bob,
        ownerless,
        worker,
    }
}

impl Rig {
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("http://{}{path}", self.addr),
        );
        if !auth.is_empty() {
            req = req.header("Authorization", auth);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Launches as `auth`; the answer must be 200.
    async fn launch(&self, auth: &str, body: Value) -> Value {
        let (st, b) = self.call("POST", "/v0/agents", auth, Some(body)).await;
        assert_eq!(st, 200, "{b}");
        b
    }

    /// Claims the agent's session and ends it as `complete` (with
    /// `summary`) or `error`.
    fn finish(&self, agent: &str, ok: bool, summary: &str) {
        let session = format!("ses_{}", agent.trim_start_matches("bc_"));
        let c = self.store.claim(&self.worker, &session, Some(60)).unwrap();
        self.store
            .append_conversation(
                &session,
                AppendConversation {
                    claim_id: c.claim_id.clone(),
                    expect_count: None,
                    messages: vec![
                        Message::User {
                            content: "<work>…</work>".into(),
                            images: vec![],
                        },
                        Message::Assistant {
                            content: String::new(),
                            tool_calls: vec![],
                        },
                        Message::Assistant {
                            content: summary.into(),
                            tool_calls: vec![],
                        },
                    ],
                },
            )
            .unwrap();
        let outcome = if ok {
            crate::store::Outcome::Complete
        } else {
            crate::store::Outcome::Fail
        };
        self.store
            .finish(
                &session,
                outcome,
                Finish {
                    claim_id: c.claim_id,
                    message: summary.into(),
                },
            )
            .unwrap();
    }
}

fn task(text: &str) -> Value {
    json!({"prompt": {"text": text}, "source": {"repository": "https://github.com/acme/widget", "ref": "main"}})
}

/// The `/v0` error body's message (and its shape).
fn message(b: &Value) -> String {
    assert_eq!(b["message"], b["error"]["message"], "{b}");
    assert_eq!(b["error"]["code"], b["error"]["type"], "{b}");
    b["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {b}"))
        .to_string()
}

#[tokio::test]
async fn a_launch_answers_the_seeds_agent_and_reads_back_only_for_its_owner() {
    let r = rig().await;
    let a = r
        .launch(
            &r.alice,
            json!({"prompt": {"text": "Add a README\nwith install steps"}, "model": "fake-large",
                   "source": {"repository": "https://github.com/acme/widget", "ref": "main"},
                   "target": {"autoCreatePr": true, "openAsCursorGithubApp": true}}),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("bc_") && id.len() == 35, "{id}");
    assert_eq!(a["name"], "Add a README");
    assert_eq!(a["status"], "CREATING");
    assert_eq!(
        a["source"],
        json!({"repository": "https://github.com/acme/widget", "ref": "main"})
    );
    assert_eq!(
        a["target"]["url"],
        format!("https://agents.example/agents/{id}")
    );
    assert_eq!(a["target"]["autoCreatePr"], true);
    assert_eq!(a["target"]["openAsCursorGithubApp"], true);
    assert_eq!(a["target"]["skipReviewerRequest"], false);
    let branch = a["target"]["branchName"].as_str().unwrap();
    assert!(branch.starts_with("runner/add-a-readme-"), "{branch}");
    assert!(
        a.get("summary").is_none() && a["target"].get("prUrl").is_none(),
        "{a}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(a["createdAt"].as_str().unwrap()).is_ok());
    // The session runs the model asked for, with the worker's coding tools.
    let s = r.store.get(&format!("ses_{}", &id[3..])).unwrap().session;
    assert_eq!(s.agent.model, "fake-large");
    assert_eq!(s.agent.enabled_tools, ["Read", "Bash"]);
    assert_eq!(s.source.prompt, "Add a README\nwith install steps");
    assert!(s.repo.as_ref().unwrap().auto_create_pr);

    let (st, got) = r
        .call("GET", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!((st, &got), (200, &a));
    for path in [
        format!("/v0/agents/{id}"),
        format!("/v0/agents/{id}/conversation"),
    ] {
        let (st, b) = r.call("GET", &path, &r.bob, None).await;
        assert_eq!(st, 404, "{path}: {b}");
        assert!(message(&b).contains("GET /v0/agents"), "{b}");
    }
    let (_, list) = r.call("GET", "/v0/agents", &r.bob, None).await;
    assert_eq!(list, json!({"agents": []}));

    r.finish(&id, true, "Added README.md with install steps.");
    let (_, done) = r
        .call("GET", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!(done["status"], "FINISHED");
    assert_eq!(done["summary"], "Added README.md with install steps.");
    let (_, conv) = r
        .call(
            "GET",
            &format!("/v0/agents/{id}/conversation"),
            &r.alice,
            None,
        )
        .await;
    assert_eq!(
        conv,
        json!({"id": id, "messages": [
            {"id": "msg_u0", "type": "user_message", "text": "Add a README\nwith install steps"},
            {"id": "msg_a3", "type": "assistant_message", "text": "Added README.md with install steps."},
        ]})
    );
}

#[tokio::test]
async fn without_a_model_the_freshest_workers_first_model_runs_and_models_follow_registration() {
    let r = rig().await;
    let (st, m) = r.call("GET", "/v0/models", &r.alice, None).await;
    assert_eq!(
        (st, m),
        (200, json!({"models": ["fake-coder", "fake-large"]}))
    );
    let a = r.launch(&r.alice, task("Fix it")).await;
    let s = r
        .store
        .get(&format!("ses_{}", &a["id"].as_str().unwrap()[3..]))
        .unwrap()
        .session;
    assert_eq!(s.agent.model, "fake-coder");
    // The worker starts again with other providers: the list follows.
    r.store
        .register_worker_as(registration(&["gpt-local"]), Some("ops"))
        .unwrap();
    let (_, m) = r.call("GET", "/v0/models", &r.alice, None).await;
    assert_eq!(m, json!({"models": ["gpt-local"]}));
    let (st, b) = r
        .call("POST", "/v0/agents", &r.alice, Some(json!({"prompt": {"text": "x"}, "model": "fake-coder", "source": {"repository": "https://github.com/acme/widget"}})))
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(message(&b).contains("GET /v0/models"), "{b}");
}

#[tokio::test]
async fn every_bad_launch_is_refused_with_a_message_naming_the_field_and_changes_nothing() {
    let r = rig().await;
    let repo = json!({"repository": "https://github.com/acme/widget"});
    let img = json!({"data": "iVBORw0KGgo=", "dimension": {"width": 1, "height": 1}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"prompt": {"text": "x"}, "source": repo, "colour": 1}),
            "colour",
        ),
        (
            json!({"prompt": {"text": "x", "tone": "calm"}, "source": repo}),
            "tone",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": {"repository": "https://github.com/a/b", "branch": "m"}}),
            "branch",
        ),
        (json!({"source": repo}), "prompt"),
        (
            json!({"prompt": {"text": "  "}, "source": repo}),
            "prompt.text",
        ),
        (json!({"prompt": {"text": "x"}}), "source"),
        (json!({"prompt": {"text": "x"}, "source": {}}), "prUrl"),
        (
            json!({"prompt": {"text": "x"}, "source": {"repository": "https://github.com/a/b", "prUrl": "https://github.com/a/b/pull/1"}}),
            "not both",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": {"repository": "http://github.com/a/b"}}),
            "source.repository",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": {"repository": "https://github.com/a/b", "ref": "-x"}}),
            "source.ref",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": {"prUrl": "https://github.com/a/b/issues/1"}}),
            "source.prUrl",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "target": {"branchName": "a..b"}}),
            "target.branchName",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "target": {"autoBranch": false}}),
            "target.autoBranch",
        ),
        (
            json!({"prompt": {"text": "x", "images": [img, img, img, img, img, img]}, "source": repo}),
            "at most 5",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "webhook": {"url": "https://hooks.example/x", "secret": "short"}}),
            "webhook.secret",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "webhook": {"url": "http://127.0.0.1:9/x"}}),
            "--allow-private-webhooks",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "webhook": {"url": "ftp://hooks.example/x"}}),
            "webhook.url",
        ),
        (
            // A line break (a forged log line after it) is refused, not
            // dropped by the URL parser and kept in the stored text.
            json!({"prompt": {"text": "x"}, "source": repo, "webhook": {"url": "https://hooks.example/x\n2026-01-01T00:00:00Z  INFO forged"}}),
            "webhook.url holds the control character",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "webhook": {}}),
            "url",
        ),
        (
            json!({"prompt": {"text": "x"}, "source": repo, "model": "nope"}),
            "\"nope\"",
        ),
    ];
    for (body, needle) in cases {
        let (st, b) = r
            .call("POST", "/v0/agents", &r.alice, Some(body.clone()))
            .await;
        assert_eq!(st, 400, "{body}: {b}");
        assert_eq!(b["error"]["type"], "invalid_request", "{b}");
        let m = message(&b);
        assert!(m.contains(needle), "{body}: {m:?} does not name {needle:?}");
    }
    let (_, list) = r.call("GET", "/v0/agents", &r.alice, None).await;
    assert_eq!(list["agents"], json!([]), "nothing was launched");
    // prUrl with a ref is what Cursor's client sends: the ref is ignored.
    let a = r
        .launch(&r.alice, json!({"prompt": {"text": "x"}, "source": {"prUrl": "https://github.com/acme/widget/pull/7", "ref": "main"}}))
        .await;
    assert_eq!(
        a["source"],
        json!({"repository": "https://github.com/acme/widget", "prUrl": "https://github.com/acme/widget/pull/7"})
    );
}

#[tokio::test]
async fn auth_and_transport_errors_carry_the_v0_body() {
    let r = rig().await;
    let cases = [
        ("GET", "/v0/agents", String::new(), 401, "unauthorized"),
        ("GET", "/v0/agents", basic("cpk_wrong"), 401, "unauthorized"),
        (
            "GET",
            "/v0/models",
            r.ownerless.clone(),
            403,
            "key_without_user",
        ),
        (
            "GET",
            "/v0/agents/bc_00000000000000000000000000000000",
            r.alice.clone(),
            404,
            "not_found",
        ),
        (
            "PUT",
            "/v0/agents",
            r.alice.clone(),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/v0/agents?limit=0",
            r.alice.clone(),
            400,
            "invalid_request",
        ),
        (
            "GET",
            "/v0/agents?limit=101",
            r.alice.clone(),
            400,
            "invalid_request",
        ),
        (
            "GET",
            "/v0/agents?cursor=bm90LW91cnM",
            r.alice.clone(),
            400,
            "invalid_request",
        ),
        (
            "GET",
            "/v0/agents?page=2",
            r.alice.clone(),
            400,
            "invalid_request",
        ),
    ];
    for (method, path, auth, status, kind) in cases {
        let (st, b) = r.call(method, path, &auth, None).await;
        assert_eq!(st, status, "{method} {path}: {b}");
        if method != "PUT" {
            assert_eq!(b["error"]["type"], kind, "{b}");
            message(&b);
        } else {
            assert_eq!(b["error"]["type"], kind, "{b}");
        }
    }
    // A body over the limit: 413, with the body.
    let big = "x".repeat(super::MAX_PROMPT_BODY_BYTES + 1024);
    let (st, b) = r
        .call("POST", "/v0/agents", &r.alice, Some(json!({"prompt": {"text": big}, "source": {"repository": "https://github.com/a/b"}})))
        .await;
    assert_eq!(st, 413, "{b}");
    assert!(message(&b).contains("MiB"), "{b}");
    // Not JSON: 415 naming the content type.
    let resp = r
        .http
        .post(format!("http://{}/v0/agents", r.addr))
        .header("Authorization", &r.alice)
        .body("prompt=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let b: Value = resp.json().await.unwrap();
    assert!(message(&b).contains("application/json"), "{b}");
}

#[tokio::test]
async fn stop_follow_up_and_delete_follow_the_status_table() {
    let r = rig().await;
    let id = r.launch(&r.alice, task("Slow work")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = |p: &str| format!("/v0/agents/{id}{p}");
    // Running (not started yet): a follow-up must wait.
    let (st, b) = r
        .call(
            "POST",
            &path("/followup"),
            &r.alice,
            Some(json!({"prompt": {"text": "more"}})),
        )
        .await;
    assert_eq!(st, 409, "{b}");
    assert!(message(&b).contains("CREATING"), "{b}");
    // Cursor's client sends stop with no body and no Content-Type.
    let resp = r
        .http
        .post(format!("http://{}{}", r.addr, path("/stop")))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"id": id}));
    let (_, a) = r.call("GET", &path(""), &r.alice, None).await;
    assert_eq!(a["status"], "STOPPED");
    let (st, b) = r.call("POST", &path("/stop"), &r.alice, None).await;
    assert_eq!(st, 409, "{b}");
    assert!(message(&b).contains("only a running agent"), "{b}");
    // bob cannot stop, follow up or delete it.
    for (m, p) in [("POST", "/stop"), ("POST", "/followup"), ("DELETE", "")] {
        let body = (p == "/followup").then(|| json!({"prompt": {"text": "x"}}));
        let (st, _) = r.call(m, &path(p), &r.bob, body).await;
        assert_eq!(st, 404, "{m} {p}");
    }
    // A follow-up runs a stopped agent again.
    let (st, b) = r
        .call(
            "POST",
            &path("/followup"),
            &r.alice,
            Some(json!({"prompt": {"text": "Also add tests"}})),
        )
        .await;
    assert_eq!((st, b), (200, json!({"id": id})));
    let (_, a) = r.call("GET", &path(""), &r.alice, None).await;
    assert_eq!(a["status"], "CREATING");
    r.finish(&id, false, "the tests failed: 2 errors");
    let (_, a) = r.call("GET", &path(""), &r.alice, None).await;
    assert_eq!(
        (a["status"].clone(), a["summary"].clone()),
        (json!("FAILED"), json!("the tests failed: 2 errors"))
    );
    let (_, conv) = r.call("GET", &path("/conversation"), &r.alice, None).await;
    let texts: Vec<(&str, &str)> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["type"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            ("user_message", "Slow work"),
            ("user_message", "Also add tests"),
            ("assistant_message", "the tests failed: 2 errors")
        ]
    );
    let (st, b) = r
        .call(
            "POST",
            &path("/followup"),
            &r.alice,
            Some(json!({"prompt": {"text": ""}})),
        )
        .await;
    assert_eq!(st, 400, "{b}");

    // Delete: gone for every route, from the list, and from the store.
    let (st, b) = r.call("DELETE", &path(""), &r.alice, None).await;
    assert_eq!((st, b), (200, json!({"id": id})));
    for (m, p) in [
        ("GET", ""),
        ("GET", "/conversation"),
        ("POST", "/stop"),
        ("POST", "/followup"),
        ("DELETE", ""),
    ] {
        let body = (p == "/followup").then(|| json!({"prompt": {"text": "x"}}));
        let (st, b) = r.call(m, &path(p), &r.alice, body).await;
        assert_eq!(st, 404, "{m} {p}: {b}");
    }
    let (_, list) = r.call("GET", "/v0/agents", &r.alice, None).await;
    assert_eq!(list["agents"], json!([]));
    assert!(
        r.store.get(&format!("ses_{}", &id[3..])).is_err(),
        "the session is gone"
    );
}

#[tokio::test]
async fn deleting_a_running_agent_voids_its_claim() {
    let r = rig().await;
    let id = r.launch(&r.alice, task("Work")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = format!("ses_{}", &id[3..]);
    let c = r.store.claim(&r.worker, &session, Some(60)).unwrap();
    let (_, a) = r
        .call("GET", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!(a["status"], "RUNNING");
    let (st, _) = r
        .call("DELETE", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!(st, 200);
    assert!(r.store.held_claims(&r.worker).unwrap().is_empty());
    let e = r
        .store
        .finish(
            &session,
            crate::store::Outcome::Complete,
            Finish {
                claim_id: c.claim_id,
                message: "done".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            crate::StoreError::ClaimInvalid { .. } | crate::StoreError::NotFound { .. }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn pages_never_overlap_even_with_launches_between_them() {
    let r = rig().await;
    let mut launched = Vec::new();
    for i in 0..25 {
        launched.push(
            r.launch(&r.alice, task(&format!("Task {i}"))).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    r.launch(&r.bob, task("bob's")).await;
    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v0/agents?limit=10&cursor={c}"),
            None => "/v0/agents?limit=10".into(),
        };
        let (st, page) = r.call("GET", &q, &r.alice, None).await;
        assert_eq!(st, 200, "{page}");
        let ids: Vec<String> = page["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        sizes.push(ids.len());
        seen.extend(ids);
        // Launched between two pages: newer than every page, so on none.
        if cursor.is_none() {
            r.launch(&r.alice, task("in between")).await;
        }
        match page.get("nextCursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 25, "no agent twice");
    let want: HashSet<&String> = launched.iter().collect();
    assert_eq!(
        unique, want,
        "exactly the 25 launched before the first page"
    );
    // Newest first; within one millisecond, by id.
    let (_, all) = r.call("GET", "/v0/agents?limit=100", &r.alice, None).await;
    let keys: Vec<(String, String)> = all["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["createdAt"].as_str().unwrap().to_string(),
                a["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    let (_, all) = r.call("GET", "/v0/agents?limit=100", &r.alice, None).await;
    assert_eq!(all["agents"].as_array().unwrap().len(), 26);
    assert!(all.get("nextCursor").is_none());
    let (_, first) = r.call("GET", "/v0/agents", &r.alice, None).await;
    assert_eq!(
        first["agents"].as_array().unwrap().len(),
        20,
        "default limit"
    );
}

#[tokio::test]
async fn pr_url_filters_by_the_launch_or_the_delivered_pull_request() {
    let r = rig().await;
    let on_pr = r
        .launch(&r.alice, json!({"prompt": {"text": "review"}, "source": {"prUrl": "https://github.com/acme/widget/pull/7"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let delivered = r.launch(&r.alice, task("make a PR")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.launch(&r.alice, task("other")).await;
    let session = format!("ses_{}", &delivered[3..]);
    let c = r.store.claim(&r.worker, &session, Some(60)).unwrap();
    r.store
        .metadata(
            &session,
            protocol::platform::MetadataUpdate {
                claim_id: c.claim_id,
                plan: None,
                external_url: Some("https://github.com/acme/widget/pull/9".into()),
            },
        )
        .unwrap();
    for (pr, want) in [("7", &on_pr), ("9", &delivered)] {
        let q = format!("/v0/agents?prUrl=https://github.com/acme/widget/pull/{pr}");
        let (_, page) = r.call("GET", &q, &r.alice, None).await;
        let ids: Vec<&str> = page["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [want.as_str()], "{pr}");
    }
    let (_, page) = r
        .call(
            "GET",
            "/v0/agents?prUrl=https://github.com/acme/widget/pull/7",
            &r.bob,
            None,
        )
        .await;
    assert_eq!(page["agents"], json!([]));
}

#[tokio::test]
async fn a_terminal_status_writes_one_signed_status_change_for_the_agents_webhook_only() {
    let r = rig().await;
    let secret = "s".repeat(32);
    let id = r
        .launch(
            &r.alice,
            json!({"prompt": {"text": "x"}, "source": {"repository": "https://github.com/acme/widget", "ref": "main"},
                   "webhook": {"url": "https://hooks.example/in", "secret": secret}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Not terminal yet: nothing due; the agent's subscription is not
    // listed with the /v1 ones.
    assert!(r.store.take_due(10).unwrap().is_empty());
    assert!(r.store.subscriptions(None).unwrap().is_empty());
    assert!(r.store.subscriptions(Some("default")).unwrap().is_empty());
    r.finish(&id, true, "Done it.");
    let due = r.store.take_due(10).unwrap();
    assert_eq!(due.len(), 1);
    let d = &due[0];
    assert_eq!(
        (d.format.as_str(), d.event_type.as_str(), d.url.as_str()),
        ("cursor_v0", "statusChange", "https://hooks.example/in")
    );
    assert_eq!(d.secret.as_deref(), Some(secret.as_str()));
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["event"], "statusChange");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "FINISHED");
    assert_eq!(body["summary"], "Done it.");
    assert_eq!(
        body["source"],
        json!({"repository": "https://github.com/acme/widget", "ref": "main"})
    );
    assert_eq!(
        body["target"]["url"],
        format!("https://agents.example/agents/{id}")
    );
    assert!(body["target"]["branchName"]
        .as_str()
        .unwrap()
        .starts_with("runner/"));
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn the_openapi_document_has_every_v0_route_with_its_errors() {
    let r = rig().await;
    let (st, doc) = r.call("GET", "/openapi.json", "", None).await;
    assert_eq!(st, 200);
    let routes: &[(&str, &str, &[&str])] = &[
        ("/v0/me", "get", &["200", "401", "403"]),
        ("/v0/models", "get", &["200", "401", "403"]),
        (
            "/v0/agents",
            "post",
            &["200", "400", "401", "403", "413", "415"],
        ),
        ("/v0/agents", "get", &["200", "400", "401", "403"]),
        ("/v0/agents/{id}", "get", &["200", "401", "403", "404"]),
        ("/v0/agents/{id}", "delete", &["200", "401", "403", "404"]),
        (
            "/v0/agents/{id}/conversation",
            "get",
            &["200", "401", "404"],
        ),
        (
            "/v0/agents/{id}/followup",
            "post",
            &["200", "400", "404", "409", "413"],
        ),
        ("/v0/agents/{id}/stop", "post", &["200", "404", "409"]),
    ];
    for (path, method, statuses) in routes {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        for s in *statuses {
            assert!(op["responses"][s].is_object(), "{method} {path} lacks {s}");
        }
        let schemes: Vec<String> = op["security"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s.as_object().unwrap().keys().cloned())
            .collect();
        assert!(
            schemes.contains(&"api_key_basic".to_string()),
            "{path}: {schemes:?}"
        );
    }
    for schema in [
        "Agent",
        "AgentList",
        "Launch",
        "Conversation",
        "V0ErrorBody",
        "Models",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key_basic"]["scheme"],
        "basic"
    );
}

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

#[tokio::test]
async fn prompt_images_are_kept_by_reference_named_in_errors_and_deleted_with_the_agent() {
    let r = rig().await;
    let img = json!({"data": PNG, "dimension": {"width": 1, "height": 1}});
    let mut body = task("Match this mock-up");
    body["prompt"]["images"] = json!([img]);
    let a = r.launch(&r.alice, body).await;
    assert!(!a.to_string().contains(PNG), "the answer echoes no image");
    let id = a["id"].as_str().unwrap().to_string();
    let session = format!("ses_{}", &id[3..]);
    let s = r.store.get(&session).unwrap().session;
    assert_eq!(s.source.images.len(), 1);
    assert_eq!(s.source.images[0].media_type, "image/png");
    let img_id = s.source.images[0].id.clone();
    assert!(r.store.attachment(&session, &img_id, None).is_ok());
    // A bad image: 400 naming the element, nothing launched.
    let mut bad = task("x");
    bad["prompt"]["images"] =
        json!([img, {"data": "not base64!", "dimension": {"width": 1, "height": 1}}]);
    let (st, b) = r.call("POST", "/v0/agents", &r.alice, Some(bad)).await;
    assert_eq!(st, 400, "{b}");
    assert!(message(&b).contains("prompt.images[1].data"), "{b}");
    let (_, list) = r.call("GET", "/v0/agents", &r.alice, None).await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
    // A follow-up's image is kept with the input; a delete removes all.
    r.finish(&id, true, "done");
    let (st, b) = r
        .call(
            "POST",
            &format!("/v0/agents/{id}/followup"),
            &r.alice,
            Some(json!({"prompt": {"text": "and this one", "images": [img]}})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, _) = r
        .call("DELETE", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!(st, 200);
    assert!(
        r.store.attachment(&session, &img_id, None).is_err(),
        "deleted with the agent"
    );
}

#[tokio::test]
async fn stopped_and_failed_agents_tell_their_webhooks_too_and_a_delete_drops_whats_pending() {
    let r = rig().await;
    let hooked = |text: &str| {
        json!({"prompt": {"text": text}, "source": {"repository": "https://github.com/acme/widget"},
               "webhook": {"url": "https://hooks.example/in"}})
    };
    let stopped = r.launch(&r.alice, hooked("stop me")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = r.launch(&r.alice, hooked("fail me")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = r.launch(&r.alice, hooked("delete me")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = r
        .call(
            "POST",
            &format!("/v0/agents/{stopped}/stop"),
            &r.alice,
            None,
        )
        .await;
    assert_eq!(st, 200);
    r.finish(&failed, false, "the tests failed");
    // Deleting a running agent sends nothing (it is gone).
    let (st, _) = r
        .call("DELETE", &format!("/v0/agents/{deleted}"), &r.alice, None)
        .await;
    assert_eq!(st, 200);
    let due = r.store.take_due(10).unwrap();
    let mut got: Vec<(String, String, Option<String>)> = due
        .iter()
        .map(|d| {
            let b: Value = serde_json::from_str(&d.body).unwrap();
            assert_eq!(d.secret, None, "no secret, no signature");
            (
                b["id"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
                b["summary"].as_str().map(str::to_string),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (stopped, "STOPPED".to_string(), None),
        (
            failed,
            "FAILED".to_string(),
            Some("the tests failed".to_string()),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn another_user_cannot_read_stop_or_steer_an_agent_through_the_native_api() {
    let r = rig().await;
    let id = r.launch(&r.alice, task("alice's secret work")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = format!("ses_{}", &id[3..]);
    let bob_token = bearer(&r.store, "bob");
    for bob in [&r.bob, &bob_token] {
        for (m, p, body) in [
            ("GET", format!("/v1/sessions/{session}"), None),
            ("GET", format!("/v1/sessions/{session}/conversation"), None),
            ("GET", format!("/v1/sessions/{session}/events"), None),
            (
                "GET",
                format!("/v1/sessions/{session}/attachments/img_0"),
                None,
            ),
            (
                "POST",
                format!("/v1/sessions/{session}/cancel"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("/v1/sessions/{session}/follow-up"),
                Some(json!({"message": "push my backdoor"})),
            ),
            (
                "POST",
                format!("/v1/sessions/{session}/answer"),
                Some(json!({"message": "yes"})),
            ),
        ] {
            let (st, b) = r.call(m, &p, bob, body).await;
            assert_eq!(st, 404, "{m} {p}: {b}");
        }
        let (_, list) = r.call("GET", "/v1/sessions", bob, None).await;
        assert!(!list.to_string().contains(&session), "{list}");
    }
    // Its owner sees it on /v1 too, and it is untouched.
    let (st, v) = r
        .call("GET", &format!("/v1/sessions/{session}"), &r.alice, None)
        .await;
    assert_eq!(
        (st, v["session"]["state"].as_str()),
        (200, Some("queued")),
        "{v}"
    );
    let (_, list) = r.call("GET", "/v1/sessions", &r.alice, None).await;
    assert!(list.to_string().contains(&session));
}

#[tokio::test]
async fn another_users_worker_is_never_chosen_cannot_claim_and_cannot_take_a_worker_over() {
    let r = rig().await;
    let token = |u: &str| bearer(&r.store, u);
    r.store.add_user("ops", "ops-password", None).unwrap();
    let (bob, ops) = (token("bob"), token("ops"));
    // bob registers a worker that claims to serve every model, freshest.
    let mut reg = serde_json::to_value(registration(&["fake-coder", "fake-large"])).unwrap();
    reg["runtime"] = json!("bob's");
    let (st, w) = r.call("POST", "/v1/workers", &bob, Some(reg)).await;
    assert_eq!(st, 200, "{w}");
    let bob_worker = w["worker_id"].as_str().unwrap().to_string();
    let (st, _) = r
        .call(
            "POST",
            &format!("/v1/workers/{bob_worker}/heartbeat"),
            &bob,
            Some(json!({"status": "ok", "active_sessions": 0})),
        )
        .await;
    assert_eq!(st, 200);
    let id = r.launch(&r.alice, task("alice's")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = format!("ses_{}", &id[3..]);
    // Not offered to bob's worker, and not claimable by it.
    let (st, list) = r
        .call(
            "GET",
            &format!("/v1/workers/{bob_worker}/sessions"),
            &bob,
            None,
        )
        .await;
    assert_eq!(st, 200, "{list}");
    assert!(!list.to_string().contains(&session), "{list}");
    let (st, b) = r
        .call(
            "POST",
            &format!("/v1/workers/{bob_worker}/sessions/{session}/claim"),
            &bob,
            None,
        )
        .await;
    assert_eq!(st, 404, "{b}");
    // Nor can bob drive the operator's worker, or register its triple.
    let ops_worker = r.worker.clone();
    for (m, p) in [
        ("GET", format!("/v1/workers/{ops_worker}/sessions")),
        (
            "POST",
            format!("/v1/workers/{ops_worker}/sessions/{session}/claim"),
        ),
        ("GET", format!("/v1/workers/{ops_worker}/claims")),
    ] {
        let (st, b) = r.call(m, &p, &bob, None).await;
        assert_eq!(
            (st, b["error"]["type"].as_str()),
            (403, Some("worker_not_owned")),
            "{m} {p}: {b}"
        );
    }
    let (st, b) = r
        .call(
            "POST",
            "/v1/workers",
            &bob,
            Some(serde_json::to_value(registration(&["x"])).unwrap()),
        )
        .await;
    assert_eq!(
        (st, b["error"]["type"].as_str()),
        (403, Some("worker_not_owned")),
        "{b}"
    );
    // The operator's (trusted) worker takes it.
    let (st, c) = r
        .call(
            "POST",
            &format!("/v1/workers/{ops_worker}/sessions/{session}/claim"),
            &ops,
            None,
        )
        .await;
    assert_eq!(st, 200, "{c}");
    // bob's own launches may run on bob's own worker.
    let mine = r.launch(&r.bob, task("bob's")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = r
        .call(
            "GET",
            &format!("/v1/workers/{bob_worker}/sessions"),
            &bob,
            None,
        )
        .await;
    assert!(list.to_string().contains(&mine[3..]), "{list}");
}

#[tokio::test]
async fn launches_are_rate_limited_and_stored_images_have_a_quota_per_user() {
    let r = rig().await;
    for i in 0..30 {
        r.launch(&r.alice, task(&format!("t{i}"))).await;
    }
    let resp = r
        .http
        .post(format!("http://{}/v0/agents", r.addr))
        .header("Authorization", &r.alice)
        .json(&task("one too many"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["type"], "rate_limited");
    assert!(message(&b).contains("30 times a minute"), "{b}");
    // bob is not limited by alice's launches.
    r.launch(&r.bob, task("bob's")).await;

    // A quota of images: a second launch that would pass it is refused.
    let q = Served::start(|s| {
        s.with_worker_users(vec!["ops".into()])
            .with_image_quota(100)
    })
    .await;
    q.store.add_user("carol", "carol-password", None).unwrap();
    let carol = basic(&q.store.add_api_key("c", Some("carol")).unwrap().key);
    q.store
        .register_worker_as(registration(&["fake-coder"]), Some("ops"))
        .unwrap();
    let mut body = task("with an image");
    body["prompt"]["images"] = json!([{"data": PNG, "dimension": {"width": 1, "height": 1}}]);
    let post = |b: Value| {
        q.http
            .post(format!("http://{}/v0/agents", q.addr))
            .header("Authorization", &carol)
            .json(&b)
            .send()
    };
    assert_eq!(post(body.clone()).await.unwrap().status(), 200);
    let refused = post(body.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let b: Value = refused.json().await.unwrap();
    assert_eq!(b["error"]["type"], "quota_exceeded", "{b}");
    assert!(message(&b).contains("DELETE /v0/agents"), "{b}");
    // Without images it still launches.
    assert_eq!(post(task("no image")).await.unwrap().status(), 200);
}

/// The agent's artifacts in this API's shape, and a download URL that
/// works once, without credentials, and not after it expires; another
/// user's agent is a 404.
#[tokio::test]
async fn artifacts_are_listed_and_downloaded_once_by_a_url_that_expires() {
    let r = rig().await;
    let id = r.launch(&r.alice, task("Write a report")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = format!("ses_{}", id.trim_start_matches("bc_"));
    let c = r.store.claim(&r.worker, &session, Some(60)).unwrap();
    r.store
        .put_artifact(
            &session,
            &c.claim_id,
            "/data/report.md",
            b"# Report".to_vec(),
        )
        .unwrap();
    let (st, list) = r
        .call("GET", &format!("/v0/agents/{id}/artifacts"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{list}");
    let a = &list["artifacts"][0];
    assert_eq!(a["absolutePath"], "/data/report.md");
    assert_eq!(a["sizeBytes"], 8);
    assert!(a["updatedAt"].as_str().unwrap().ends_with('Z'), "{a}");
    let (st, _) = r
        .call("GET", &format!("/v0/agents/{id}/artifacts"), &r.bob, None)
        .await;
    assert_eq!(st, 404);
    let link = |path: &str| format!("/v0/agents/{id}/artifacts/download?path={path}");
    let (st, d) = r.call("GET", &link("/data/nope"), &r.alice, None).await;
    assert_eq!((st, d["error"].is_object()), (404, true), "{d}");
    let (st, _) = r.call("GET", &link("/data/report.md"), &r.bob, None).await;
    assert_eq!(st, 404);
    let (st, d) = r
        .call("GET", &link("/data/report.md"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{d}");
    let url = d["url"].as_str().unwrap();
    let local = url.replace("https://agents.example", &format!("http://{}", r.addr));
    assert!(
        url.starts_with("https://agents.example/v0/artifact-downloads/"),
        "{url}"
    );
    let exp = chrono::DateTime::parse_from_rfc3339(d["expiresAt"].as_str().unwrap()).unwrap();
    let left = exp.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    assert!((14 * 60_000..=15 * 60_000).contains(&left), "{left}");
    let got = reqwest::get(&local).await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert!(got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"report.md\""));
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"# Report");
    assert_eq!(
        reqwest::get(&local).await.unwrap().status().as_u16(),
        404,
        "used once"
    );
    let (_, d) = r
        .call("GET", &link("/data/report.md"), &r.alice, None)
        .await;
    let local = d["url"]
        .as_str()
        .unwrap()
        .replace("https://agents.example", &format!("http://{}", r.addr));
    crate::store::artifacts::testing::expire_links(&r.store);
    assert_eq!(
        reqwest::get(&local).await.unwrap().status().as_u16(),
        404,
        "expired"
    );
    // Deleting the agent deletes its artifacts.
    let (st, _) = r
        .call("DELETE", &format!("/v0/agents/{id}"), &r.alice, None)
        .await;
    assert_eq!(st, 200);
    assert!(r.store.artifacts(&session).unwrap().is_empty());
}
