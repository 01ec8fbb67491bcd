//! The identities API (`/api/v1/agent/…`) over real HTTP on loopback:
//! identities (the default among them, availability under the plan's
//! limit, updates that clear and keep, soft delete revoking keys), agent
//! keys (runs as the agent, never managing anything), runs (the vendor's
//! states and filters, cancel and follow-up rules), problem-details
//! errors that tell the client not to retry, and another team seeing
//! nothing.

use crate::api::test_server::{Answer, Served};
use protocol::platform::RegisterWorker;
use serde_json::{json, Value};

/// alice (team `a`) and bob (team `b`) with keys; a worker of the
/// operator's serving `fake-coder`; at most 4 agents a team.
struct Rig {
    srv: Served,
    alice: String,
    bob: String,
    worker: String,
}

impl std::ops::Deref for Rig {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.srv
    }
}

fn registration() -> RegisterWorker {
    crate::store::testing::registration(&["fake-coder"])
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s.with_max_agents(4).with_worker_users(vec!["ops".into()])).await;
    let st = &srv.store;
    st.add_team("a").unwrap();
    st.add_team("b").unwrap();
    st.add_user_in_team("alice", "alice-password", None, "a")
        .unwrap();
    st.add_user_in_team("bob", "bob-password", None, "b")
        .unwrap();
    st.add_user("ops", "ops-password", None).unwrap();
    let worker = st
        .register_worker_as(registration(), Some("ops"))
        .unwrap()
        .worker_id
        .to_string();
    let key = |u: &str| format!("Bearer {}", st.add_api_key("k", Some(u)).unwrap().key);
    Rig {
        alice: key("alice"),
        bob: key("bob"),
        worker,
        srv,
    }
}

impl Rig {
    async fn call(&self, method: &str, path: &str, auth: &str, body: Option<Value>) -> Answer {
        self.srv
            .send(method, &format!("/api/v1/agent/{path}"), auth, body)
            .await
    }

    async fn ok(&self, method: &str, path: &str, auth: &str, body: Option<Value>) -> Value {
        let (st, _, b) = self.call(method, path, auth, body).await;
        assert!((200..300).contains(&st), "{method} {path}: {st} {b}");
        b
    }

    /// An agent key of `agent`, made by alice.
    fn agent_key(&self, agent: &str) -> String {
        format!(
            "Bearer {}",
            self.store
                .add_agent_api_key("bot", "alice", agent)
                .unwrap()
                .key
        )
    }
}

/// The problem body of an error, checked: status, RFC 7807 fields, the
/// media type, `x-should-retry: false`; its detail.
fn problem(a: &Answer, status: u16) -> String {
    let (st, h, b) = a;
    assert_eq!(*st, status, "{b}");
    assert_eq!(b["status"], status, "{b}");
    assert!(
        b["type"]
            .as_str()
            .unwrap()
            .starts_with("/reference/api-and-sdk/troubleshooting/errors/"),
        "{b}"
    );
    assert!(b["title"].is_string() && b["error"].is_string(), "{b}");
    assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
    assert_eq!(h.get("x-should-retry").unwrap(), "false");
    b["detail"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_team_has_one_default_identity_that_cannot_be_deleted() {
    let r = rig().await;
    let ls = r.ok("GET", "identities", &r.alice, None).await;
    let agents = ls["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1);
    let d = &agents[0];
    assert_eq!(
        (
            d["is_default"].clone(),
            d["available"].clone(),
            d["name"].clone()
        ),
        (json!(true), json!(true), json!("default"))
    );
    let uid = d["uid"].as_str().unwrap();
    // The same agent in the configuration view.
    let cfg = r
        .http
        .get(format!("http://{}/api/v1/cloud/agents/{uid}", r.addr))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(cfg.status(), 200);
    let m = problem(
        &r.call("DELETE", &format!("identities/{uid}"), &r.alice, None)
            .await,
        400,
    );
    assert!(m.contains("default"), "{m}");
    assert_eq!(
        r.ok("GET", "identities", &r.alice, None).await["agents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // bob's team has its own.
    let theirs = r.ok("GET", "identities", &r.bob, None).await;
    assert_ne!(theirs["agents"][0]["uid"], uid);
}

#[tokio::test]
async fn identities_are_created_updated_and_deleted_as_the_vendor_says() {
    let r = rig().await;
    let (st, _, a) = r
        .call(
            "POST",
            "identities",
            &r.alice,
            Some(
                json!({"name": "Reviewer Bot", "description": "Reviews", "prompt": "Be terse.",
                        "skills": ["acme/w:.skills/r/SKILL.md"], "secrets": [{"name": "GH_TOKEN"}],
                        "mcp_servers": {"docs": {"url": "https://mcp.example/docs"}},
                        "agent_type": "CUSTOM", "worker_host": "warp", "memory": {}}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let uid = a["uid"].as_str().unwrap().to_string();
    assert!(crate::agent_configs::is_agent_id(&uid));
    assert_eq!(a["prompt"], "Be terse.");
    assert_eq!(a["secrets"], json!([{"name": "GH_TOKEN"}]));
    assert_eq!(
        a["mcp_servers"],
        json!({"docs": {"url": "https://mcp.example/docs"}})
    );
    assert_eq!(
        (a["available"].clone(), a["is_default"].clone()),
        (json!(true), json!(false))
    );
    let path = format!("identities/{uid}");
    let u = r
        .ok(
            "PUT",
            &path,
            &r.alice,
            Some(json!({"description": "All", "prompt": null})),
        )
        .await;
    assert_eq!(
        (
            u["description"].clone(),
            u["prompt"].clone(),
            u["version"].clone()
        ),
        (json!("All"), json!("Be terse."), json!(2))
    );
    let u = r
        .ok(
            "PUT",
            &path,
            &r.alice,
            Some(json!({"description": "", "skills": [], "mcp_servers": {}})),
        )
        .await;
    assert_eq!(
        (
            u["description"].clone(),
            u["skills"].clone(),
            u["mcp_servers"].clone()
        ),
        (json!(""), json!([]), json!({}))
    );
    assert_eq!(
        u["secrets"],
        json!([{"name": "GH_TOKEN"}]),
        "omitted: unchanged"
    );
    for body in [
        json!({"name": ""}),
        json!({"base_model": "no-such-model"}),
        json!({"mcp_servers": {"x": {"url": "https://h", "headers": {"Authorization": "t"}}}}),
        json!({"mcp_servers": {"x": {"command": "npx"}}}),
    ] {
        problem(&r.call("PUT", &path, &r.alice, Some(body)).await, 400);
    }
    problem(
        &r.call("POST", "identities", &r.alice, Some(json!({"name": " "})))
            .await,
        400,
    );
    // Every change is a version of the one configuration.
    let cfg: Value = r
        .http
        .get(format!(
            "http://{}/api/v1/cloud/agents/{uid}/versions",
            r.addr
        ))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["data"].as_array().unwrap().len(), 3);
    // Delete: gone everywhere, and its keys with it.
    let key = r.agent_key(&uid);
    let (st, _, _) = r.call("DELETE", &path, &r.alice, None).await;
    assert_eq!(st, 204);
    problem(&r.call("GET", &path, &r.alice, None).await, 404);
    problem(&r.call("DELETE", &path, &r.alice, None).await, 404);
    assert!(r.ok("GET", "identities", &r.alice, None).await["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["uid"] != uid.as_str()));
    problem(&r.call("GET", "runs", &key, None).await, 401);
}

#[tokio::test]
async fn agents_over_the_plans_limit_are_unavailable_and_cannot_change_get_keys_or_run() {
    let r = rig().await;
    let mut uids = Vec::new();
    for i in 0..3 {
        let a = r
            .ok(
                "POST",
                "identities",
                &r.alice,
                Some(json!({"name": format!("a{i}")})),
            )
            .await;
        uids.push(a["uid"].as_str().unwrap().to_string());
    }
    // Default + 3 = the limit of 4: a fifth is refused.
    let m = problem(
        &r.call("POST", "identities", &r.alice, Some(json!({"name": "a3"})))
            .await,
        403,
    );
    assert!(m.contains("plan"), "{m}");
    // Archiving one (configuration view) makes room; the new one is
    // available, the archived one not.
    let arch = r
        .http
        .post(format!(
            "http://{}/api/v1/cloud/agents/{}/archive",
            r.addr, uids[0]
        ))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(arch.status(), 200);
    let fresh = r
        .ok("POST", "identities", &r.alice, Some(json!({"name": "a4"})))
        .await;
    assert_eq!(fresh["available"], true);
    let ls = r.ok("GET", "identities", &r.alice, None).await;
    let avail: Vec<(String, bool)> = ls["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["available"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(avail.iter().filter(|(_, a)| *a).count(), 4, "{avail:?}");
    assert!(
        avail.contains(&("a0".into(), false)),
        "archived: unavailable"
    );
}

#[tokio::test]
async fn an_unavailable_agent_is_refused_everything() {
    let srv = Served::start(|s| s.with_max_agents(2).with_worker_users(vec!["ops".into()])).await;
    let st = &srv.store;
    st.add_user("alice", "alice-password", None).unwrap();
    st.add_user("ops", "ops-password", None).unwrap();
    st.register_worker_as(registration(), Some("ops")).unwrap();
    let key = format!("Bearer {}", st.add_api_key("k", Some("alice")).unwrap().key);
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut req = srv
            .http
            .request(
                method.parse().unwrap(),
                format!("http://{}/api/v1/agent/{path}", srv.addr),
            )
            .header("Authorization", &key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let a: Value = call("POST", "identities", Some(json!({"name": "one"})))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = a["uid"].as_str().unwrap().to_string();
    // The same file under a plan of one agent: only the default is available.
    let shrunk = std::sync::Arc::new(
        crate::Store::open(&srv.db_path(), 3)
            .unwrap()
            .with_max_agents(1),
    );
    let r = shrunk.identity("default", &uid).unwrap();
    assert!(!r.available);
    let e = shrunk.add_agent_api_key("k2", "alice", &uid).unwrap_err();
    assert!(
        matches!(
            e,
            crate::StoreError::Forbidden {
                kind: "feature_not_available",
                ..
            }
        ),
        "{e:?}"
    );
    let e = shrunk
        .start_run(
            &crate::store::Starter {
                team: "default",
                user: "alice",
                key_agent: None,
            },
            crate::store::RunRequest {
                prompt: "x".into(),
                agent: Some(uid.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::Forbidden { .. }), "{e:?}");
    let e = shrunk
        .update_identity(
            "default",
            &uid,
            "alice",
            serde_json::from_value(json!({"description": "x"})).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::Forbidden { .. }), "{e:?}");
}

#[tokio::test]
async fn a_run_starts_as_its_agent_reads_lists_cancels_and_follows_up() {
    let r = rig().await;
    let a = r
        .ok(
            "POST",
            "identities",
            &r.alice,
            Some(json!({"name": "runner", "prompt": "Agent rules."})),
        )
        .await;
    let uid = a["uid"].as_str().unwrap().to_string();
    let started = r
        .ok(
            "POST",
            "runs",
            &r.alice,
            Some(
                json!({"prompt": "Say hello.\nThen stop.", "agent_identity_uid": uid,
                                                   "metadata": {"suite": "x"}, "team": true}),
            ),
        )
        .await;
    let rid = started["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        (started["task_id"].as_str(), started["state"].as_str()),
        (Some(rid.as_str()), Some("QUEUED"))
    );
    let run = r.ok("GET", &format!("runs/{rid}"), &r.alice, None).await;
    assert_eq!(run["title"], "Say hello.", "the prompt's first line");
    assert_eq!(run["source"], "API");
    assert_eq!(
        (
            run["executor"]["uid"].clone(),
            run["executor"]["type"].clone()
        ),
        (json!("alice"), json!("user")),
        "a person's key runs as its user"
    );
    assert_eq!(run["agent_config"]["agent_uid"], uid.as_str());
    assert_eq!(run["creator"]["uid"], "alice");
    assert_eq!(run["metadata"], json!({"suite": "x"}));
    assert_eq!(
        run["agent_config"]["model_id"], "fake-coder",
        "no model: the worker's"
    );
    // The session is the run: pinned to the agent's version, run as it.
    let s = r.store.get(&rid).unwrap().session;
    assert_eq!(
        (s.agent.system_prompt.as_str(), s.agent_id.as_deref()),
        ("Agent rules.", Some(uid.as_str()))
    );
    // CLAIMED once a worker has it, INPROGRESS once it reports.
    let c = r.store.claim(&r.worker, &rid, Some(60)).unwrap();
    assert_eq!(
        r.ok("GET", &format!("runs/{rid}"), &r.alice, None).await["state"],
        "CLAIMED"
    );
    r.store
        .post_activity(
            &rid,
            protocol::platform::PostActivity {
                claim_id: c.claim_id.clone(),
                activity: serde_json::from_value(json!({"type": "progress", "message": "working"}))
                    .unwrap(),
            },
        )
        .unwrap();
    assert_eq!(
        r.ok("GET", &format!("runs/{rid}"), &r.alice, None).await["state"],
        "INPROGRESS"
    );
    let ls = r
        .ok(
            "GET",
            "runs?state=CLAIMED&state=INPROGRESS&source=API",
            &r.alice,
            None,
        )
        .await;
    assert_eq!(ls["runs"].as_array().unwrap().len(), 1);
    let ls = r.ok("GET", "runs?state=CLAIMED", &r.alice, None).await;
    assert!(
        ls["runs"].as_array().unwrap().is_empty(),
        "INPROGRESS is not CLAIMED"
    );
    let m = problem(
        &r.call(
            "POST",
            &format!("runs/{rid}/followups"),
            &r.alice,
            Some(json!({"message": "more"})),
        )
        .await,
        409,
    );
    assert!(m.contains("still going"), "{m}");
    // Cancel: no body, the id as a JSON string; again is a 400.
    let resp = r
        .http
        .post(format!("http://{}/api/v1/agent/runs/{rid}/cancel", r.addr))
        .header("Authorization", &r.alice)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), format!("\"{rid}\""));
    assert_eq!(
        r.ok("GET", &format!("runs/{rid}"), &r.alice, None).await["state"],
        "CANCELLED"
    );
    problem(
        &r.call("POST", &format!("runs/{rid}/cancel"), &r.alice, None)
            .await,
        400,
    );
    problem(
        &r.call(
            "POST",
            &format!("runs/{rid}/followups"),
            &r.alice,
            Some(json!({"message": ""})),
        )
        .await,
        400,
    );
    let f = r
        .ok(
            "POST",
            &format!("runs/{rid}/followups"),
            &r.alice,
            Some(json!({"message": "and goodbye"})),
        )
        .await;
    assert_eq!(f["state"], "QUEUED");
}

#[tokio::test]
async fn runs_are_refused_what_they_cannot_do_and_lists_take_only_known_filters() {
    let r = rig().await;
    for (body, names) in [
        (json!({"prompt": ""}), "prompt"),
        (
            json!({"prompt": "x", "agent_identity_uid": "agent_ffffffffffffffffffffffffffffffff"}),
            "",
        ),
        (json!({"prompt": "x", "mode": "plan"}), "mode"),
        (json!({"prompt": "x", "attachments": []}), "attachments"),
        (
            json!({"prompt": "x", "config": {"model_id": "no-such"}}),
            "model_id",
        ),
        (json!({"prompt": "x", "metadata": {"n": 1}}), "metadata"),
    ] {
        let a = r.call("POST", "runs", &r.alice, Some(body.clone())).await;
        let status = if names.is_empty() { 404 } else { 400 };
        let m = problem(&a, status);
        assert!(m.contains(names), "{body}: {m}");
    }
    for q in [
        "runs?state=RUNNING",
        "runs?limit=0",
        "runs?creator=alice",
        "runs?sort_by=name",
        "runs?cursor=zzz",
        "runs?limit=1&limit=2",
    ] {
        problem(&r.call("GET", q, &r.alice, None).await, 400);
    }
    // Pages by cursor: each run once.
    for i in 0..5 {
        r.ok(
            "POST",
            "runs",
            &r.alice,
            Some(json!({"prompt": format!("run {i}")})),
        )
        .await;
        // Runs made in one millisecond have no order but their ids'.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let mut seen = Vec::new();
    let mut q = "runs?limit=2&sort_by=created_at".to_string();
    loop {
        let p = r.ok("GET", &q, &r.alice, None).await;
        seen.extend(
            p["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["prompt"].as_str().unwrap().to_string()),
        );
        match p["page_info"]["next_cursor"].as_str() {
            Some(c) => q = format!("runs?limit=2&sort_by=created_at&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["run 4", "run 3", "run 2", "run 1", "run 0"]);
    let asc = r
        .ok(
            "GET",
            "runs?sort_by=created_at&sort_order=asc&limit=1",
            &r.alice,
            None,
        )
        .await;
    assert_eq!(asc["runs"][0]["prompt"], "run 0");
    // The team's default agent's configuration ran them.
    let default = r.ok("GET", "identities", &r.alice, None).await["agents"][0]["uid"].clone();
    assert_eq!(asc["runs"][0]["agent_config"]["agent_uid"], default);
}

#[tokio::test]
async fn an_agent_key_runs_as_its_agent_and_manages_nothing() {
    let r = rig().await;
    let a = r
        .ok("POST", "identities", &r.alice, Some(json!({"name": "bot"})))
        .await;
    let uid = a["uid"].as_str().unwrap().to_string();
    let key = r.agent_key(&uid);
    let run = r
        .ok(
            "POST",
            "runs",
            &key,
            Some(json!({"prompt": "as the agent"})),
        )
        .await;
    let got = r
        .ok(
            "GET",
            &format!("runs/{}", run["run_id"].as_str().unwrap()),
            &key,
            None,
        )
        .await;
    assert_eq!(
        (
            got["executor"]["uid"].clone(),
            got["executor"]["type"].clone()
        ),
        (json!(uid), json!("service_account"))
    );
    assert_eq!(got["run_as"], format!("agent:{uid}"));
    // Another agent of the team: refused.
    let other = r.ok("GET", "identities", &r.alice, None).await["agents"][0]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    problem(
        &r.call(
            "POST",
            "runs",
            &key,
            Some(json!({"prompt": "x", "agent_identity_uid": other})),
        )
        .await,
        403,
    );
    // Managing: 403 here, in the configuration view, on keys, /v1 and /v0.
    problem(
        &r.call("POST", "identities", &key, Some(json!({"name": "x"})))
            .await,
        403,
    );
    problem(
        &r.call(
            "PUT",
            &format!("identities/{uid}"),
            &key,
            Some(json!({"description": "x"})),
        )
        .await,
        403,
    );
    problem(
        &r.call("DELETE", &format!("identities/{uid}"), &key, None)
            .await,
        403,
    );
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/cloud/agents",
            Some(json!({"name": "x", "model": "fake-coder"})),
        ),
        (
            "POST",
            &format!("/api/v1/cloud/agents/{uid}/archive") as &str,
            None,
        ),
        ("POST", "/v1/api-keys", Some(json!({"name": "x"}))),
        ("GET", "/v1/sessions", None),
        ("GET", "/v0/me", None),
    ] {
        let mut req = r
            .http
            .request(method.parse().unwrap(), format!("http://{}{path}", r.addr))
            .header("Authorization", &key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        assert_eq!(req.send().await.unwrap().status(), 403, "{method} {path}");
    }
    // Identities are for people only, reading them too.
    problem(&r.call("GET", "identities", &key, None).await, 403);
    problem(
        &r.call("GET", &format!("identities/{uid}"), &key, None)
            .await,
        403,
    );
    // A key for another team's agent cannot be made.
    let theirs = r.ok("GET", "identities", &r.bob, None).await["agents"][0]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(r.store.add_agent_api_key("x", "alice", &theirs).is_err());
    let resp = r
        .http
        .post(format!("http://{}/v1/api-keys", r.addr))
        .header(
            "Authorization",
            crate::api::test_server::bearer(&r.store, "alice"),
        )
        .json(&json!({"name": "bot2", "agent_id": uid}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let k: Value = resp.json().await.unwrap();
    assert_eq!(k["agent_id"], uid.as_str());
}

#[tokio::test]
async fn another_team_gets_404_on_every_identity_and_run_route() {
    let r = rig().await;
    let a = r
        .ok(
            "POST",
            "identities",
            &r.alice,
            Some(json!({"name": "ours"})),
        )
        .await;
    let uid = a["uid"].as_str().unwrap().to_string();
    let run = r
        .ok(
            "POST",
            "runs",
            &r.alice,
            Some(json!({"prompt": "ours", "agent_identity_uid": uid})),
        )
        .await;
    let rid = run["run_id"].as_str().unwrap().to_string();
    for (method, path, body) in [
        ("GET", format!("identities/{uid}"), None),
        (
            "PUT",
            format!("identities/{uid}"),
            Some(json!({"description": "theirs"})),
        ),
        ("DELETE", format!("identities/{uid}"), None),
        (
            "POST",
            "runs".to_string(),
            Some(json!({"prompt": "x", "agent_identity_uid": uid})),
        ),
        ("GET", format!("runs/{rid}"), None),
        ("POST", format!("runs/{rid}/cancel"), None),
        (
            "POST",
            format!("runs/{rid}/followups"),
            Some(json!({"message": "x"})),
        ),
    ] {
        problem(&r.call(method, &path, &r.bob, body).await, 404);
    }
    assert!(r.ok("GET", "identities", &r.bob, None).await["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["uid"] != uid.as_str()));
    assert!(r.ok("GET", "runs?limit=100", &r.bob, None).await["runs"]
        .as_array()
        .unwrap()
        .is_empty());
    let ours = r.ok("GET", &format!("runs/{rid}"), &r.alice, None).await;
    assert_eq!(ours["state"], "QUEUED", "our run unchanged");
    assert_eq!(
        r.ok("GET", &format!("identities/{uid}"), &r.alice, None)
            .await["description"],
        ""
    );
    problem(&r.call("GET", "nothing", &r.alice, None).await, 404);
    problem(&r.call("PATCH", "runs", &r.alice, None).await, 405);
    problem(&r.call("GET", "runs", "Bearer cpk_nope", None).await, 401);
}

/// Warp's own Python client (`oz-agent-sdk` from PyPI, unchanged) lists
/// identities, creates, updates and deletes one, starts and cancels a run,
/// follows it up, creates, pauses, resumes and deletes a schedule; an
/// agent's key manages nothing, and another team's key gets 404
/// everywhere (tests/python/oz_conformance.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warps_own_python_client_drives_identities_runs_and_schedules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pydeps = root.join("target/pydeps");
    assert!(
        pydeps.join("oz_agent_sdk").is_dir(),
        "oz-agent-sdk is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
        pydeps.display()
    );
    let r = rig().await;
    let bot = r
        .ok("POST", "identities", &r.alice, Some(json!({"name": "bot"})))
        .await;
    let agent_key = r.agent_key(bot["uid"].as_str().unwrap());
    let key = |auth: &str| auth.trim_start_matches("Bearer ").to_string();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(root.join("tests/python/oz_conformance.py"))
        .env("PYTHONPATH", &pydeps)
        .env("BASE_URL", format!("http://{}", r.addr))
        .env("API_KEY", key(&r.alice))
        .env("OTHER_API_KEY", key(&r.bob))
        .env("AGENT_API_KEY", key(&agent_key))
        .env("CANCEL_TIMEOUT", "5");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python3 runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && last.ends_with(" passed, 0 failed"),
        "the client's run failed:\n{stdout}\n{stderr}"
    );
    let passed: u32 = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 190, "{last}");
    eprintln!("oz-agent-sdk: {last}");
}

/// What an attack on teams and agent keys found, each closed: follow-ups
/// that drove others' runs or revived agents that start nothing, models
/// of other users' workers, keys that outlived their maker's move, and
/// session existence told by event and claim errors.
#[tokio::test]
async fn follow_ups_models_moves_and_streams_tell_and_allow_nothing_more() {
    let r = rig().await;
    let st = &r.store;
    st.add_user_in_team("carol", "carol-password", None, "a")
        .unwrap();
    let carol = format!("Bearer {}", st.add_api_key("k", Some("carol")).unwrap().key);
    let bot = r
        .ok("POST", "identities", &r.alice, Some(json!({"name": "bot"})))
        .await;
    let uid = bot["uid"].as_str().unwrap().to_string();
    let key = r.agent_key(&uid);
    // alice's run: neither the agent's key nor carol follows it up.
    let run = r
        .ok("POST", "runs", &r.alice, Some(json!({"prompt": "mine"})))
        .await;
    let rid = run["run_id"].as_str().unwrap().to_string();
    problem(
        &r.call("POST", &format!("runs/{rid}/cancel"), &key, None)
            .await,
        403,
    );
    r.ok("POST", &format!("runs/{rid}/cancel"), &carol, None)
        .await;
    for who in [&key, &carol] {
        problem(
            &r.call(
                "POST",
                &format!("runs/{rid}/followups"),
                who,
                Some(json!({"message": "again"})),
            )
            .await,
            403,
        );
    }
    // The agent's own run: once its agent is archived, nothing revives it.
    let own = r
        .ok("POST", "runs", &key, Some(json!({"prompt": "as bot"})))
        .await;
    let own = own["run_id"].as_str().unwrap().to_string();
    r.ok("POST", &format!("runs/{own}/cancel"), &key, None)
        .await;
    let arch = r
        .http
        .post(format!(
            "http://{}/api/v1/cloud/agents/{uid}/archive",
            r.addr
        ))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(arch.status(), 200);
    let m = problem(
        &r.call(
            "POST",
            &format!("runs/{own}/followups"),
            &r.alice,
            Some(json!({"message": "again"})),
        )
        .await,
        409,
    );
    assert!(m.contains("archived"), "{m}");
    assert_eq!(
        r.ok("GET", &format!("runs/{own}"), &r.alice, None).await["state"],
        "CANCELLED"
    );
    // bob's worker's model is not alice's to see or be given.
    let mut reg = registration();
    reg.runtime = "bob".into();
    reg.models = vec!["bob-secret-model".into()];
    st.register_worker_as(reg, Some("bob")).unwrap();
    let models: Value = r
        .http
        .get(format!("http://{}/api/v1/cloud/models", r.addr))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!models.to_string().contains("bob-secret-model"), "{models}");
    let theirs: Value = r
        .http
        .get(format!("http://{}/api/v1/cloud/models", r.addr))
        .header("Authorization", &r.bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(theirs.to_string().contains("bob-secret-model"), "{theirs}");
    let run2 = r
        .ok("POST", "runs", &r.alice, Some(json!({"prompt": "x"})))
        .await;
    let s = st.get(run2["run_id"].as_str().unwrap()).unwrap().session;
    assert_eq!(s.agent.model, "fake-coder");
    // A user moved to another team loses the agents' keys they made.
    let a2 = r
        .ok(
            "POST",
            "identities",
            &r.alice,
            Some(json!({"name": "carols"})),
        )
        .await;
    let carols_key = format!(
        "Bearer {}",
        st.add_agent_api_key("c", "carol", a2["uid"].as_str().unwrap())
            .unwrap()
            .key
    );
    r.ok("GET", "runs", &carols_key, None).await;
    let queued: Value = r
        .http
        .post(format!("http://{}/v1/sessions", r.addr))
        .header("Authorization", &carol)
        .json(&json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "fake-coder"},
                       "source": {"title": "team a's", "prompt": "secret"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = |auth: String| {
        let r = &r;
        async move {
            r.http
                .get(format!("http://{}/v1/sessions", r.addr))
                .header("Authorization", auth)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert!(listed(carol.clone())
        .await
        .to_string()
        .contains(queued["id"].as_str().unwrap()));
    st.set_user_team("carol", "b").unwrap();
    problem(&r.call("GET", "runs", &carols_key, None).await, 401);
    // ...and leaves the old team's sessions behind, in lists too.
    assert!(!listed(carol.clone())
        .await
        .to_string()
        .contains(queued["id"].as_str().unwrap()));
    // Another team's session: the event stream and a claim id say nothing.
    let mut seen = Vec::new();
    for q in [
        "events?after=999999",
        "events?claimId=clm_x",
        "conversation?claimId=clm_x",
    ] {
        let resp = r
            .http
            .get(format!("http://{}/v1/sessions/{rid}/{q}", r.addr))
            .header("Authorization", &r.bob)
            .send()
            .await
            .unwrap();
        seen.push((q, resp.status().as_u16()));
    }
    assert_eq!(
        seen,
        [
            ("events?after=999999", 404),
            ("events?claimId=clm_x", 404),
            ("conversation?claimId=clm_x", 404)
        ]
    );
    // Another user's worker is not described to them.
    let w = r
        .http
        .get(format!("http://{}/v1/workers/{}", r.addr, r.worker))
        .header(
            "Authorization",
            crate::api::test_server::bearer(st, "alice"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(w.status(), 403);
    // Names that pass for others, credentials in URLs, huge metadata.
    problem(
        &r.call(
            "POST",
            "identities",
            &r.alice,
            Some(json!({"name": "bo\u{200B}t"})),
        )
        .await,
        400,
    );
    problem(
        &r.call("POST", "identities", &r.alice, Some(json!({"name": "m", "mcp_servers": {"gh": {"url": "https://u:ghp_s@mcp.example/"}}}))).await,
        400,
    );
    problem(
        &r.call(
            "POST",
            "runs",
            &r.alice,
            Some(json!({"prompt": "x", "metadata": {"k": "v".repeat(513)}})),
        )
        .await,
        400,
    );
}
