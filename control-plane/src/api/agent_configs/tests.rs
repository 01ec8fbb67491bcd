//! The agent-configuration API (`/api/v1/cloud/…`) over real HTTP on
//! loopback: the seed's create/get/update semantics and messages exactly,
//! optimistic concurrency (and its race), every version kept, pages,
//! archive, the error envelope and its headers, and another team seeing
//! nothing (404 on every route, our agent unchanged).

use crate::api::test_server::{basic, bearer, Answer, Served};
use crate::store::testing::registration;
use protocol::platform::RegisterWorker;
use serde_json::{json, Value};

/// alice and ann in team `a`, bob in team `b`; a worker serving two models.
struct Rig {
    srv: Served,
    alice: String,
    ann: String,
    bob: String,
    ownerless: String,
}

impl std::ops::Deref for Rig {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.srv
    }
}

/// A worker alice registers (a runtime of her own).
fn alices_worker() -> RegisterWorker {
    RegisterWorker {
        runtime: "alice".into(),
        ..registration(&["fake-coder"])
    }
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s.with_max_agents(100).with_worker_users(vec!["ops".into()])).await;
    let st = &srv.store;
    st.add_team("a").unwrap();
    st.add_team("b").unwrap();
    st.add_user_in_team("alice", "alice-password", None, "a")
        .unwrap();
    st.add_user_in_team("ann", "ann-password", None, "a")
        .unwrap();
    st.add_user_in_team("bob", "bob-password", None, "b")
        .unwrap();
    st.add_user("ops", "ops-password", None).unwrap();
    st.register_worker_as(registration(&["fake-coder", "fake-large"]), Some("ops"))
        .unwrap();
    let key = |u: &str| format!("Bearer {}", st.add_api_key("k", Some(u)).unwrap().key);
    Rig {
        alice: key("alice"),
        ann: bearer(st, "ann"),
        bob: key("bob"),
        ownerless: basic(&st.add_api_key("n", None).unwrap().key),
        srv,
    }
}

impl Rig {
    async fn call(&self, method: &str, path: &str, auth: &str, body: Option<Value>) -> Answer {
        self.srv
            .send(method, &format!("/api/v1/cloud/{path}"), auth, body)
            .await
    }

    async fn ok(&self, method: &str, path: &str, auth: &str, body: Option<Value>) -> Value {
        let (st, _, b) = self.call(method, path, auth, body).await;
        assert!(st == 200 || st == 201, "{method} {path}: {st} {b}");
        b
    }

    async fn create(&self, auth: &str, body: Value) -> Value {
        let (st, _, b) = self.call("POST", "agents", auth, Some(body)).await;
        assert_eq!(st, 201, "{b}");
        b
    }
}

/// The envelope of an error, checked: status, `{type: error, error:
/// {type, message}}`, a request id, `x-should-retry: false`; the message.
fn error_of(a: &Answer, status: u16, kind: &str) -> String {
    let (st, h, b) = a;
    assert_eq!(*st, status, "{b}");
    assert_eq!(b["type"], "error", "{b}");
    assert_eq!(b["error"]["type"], kind, "{b}");
    assert!(h.get("request-id").is_some() && h.get("x-request-id").is_some());
    if status != 429 {
        assert_eq!(h.get("x-should-retry").unwrap(), "false");
    }
    b["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn create_answers_201_with_the_seeds_defaults_and_echoes_what_was_sent() {
    let r = rig().await;
    let a = r
        .create(
            &r.alice,
            json!({"name": "code-reviewer", "model": "fake-coder", "system": "Review.",
                   "tools": [{"type": "agent_toolset_20260401", "enabled_tools": ["Bash", "Read", "Write"]}],
                   "metadata": {"team": "backend"}, "an_unknown_field": 1}),
        )
        .await;
    let id = a["id"].as_str().unwrap();
    assert!(crate::agent_configs::is_agent_id(id), "{id}");
    assert_eq!(a["type"], "agent");
    assert_eq!(a["version"], 1);
    assert_eq!(a["description"], "");
    assert_eq!(a["mcp_servers"], json!([]));
    assert_eq!(a["skills"], json!([]));
    assert_eq!(a["metadata"], json!({"team": "backend"}));
    assert_eq!(
        a["tools"][0]["enabled_tools"],
        json!(["Bash", "Read", "Write"])
    );
    assert_eq!(a["archived"], false);
    assert_eq!(a["archived_at"], Value::Null);
    assert!(a["created_at"].as_str().unwrap().ends_with('Z'));
    let m = r
        .create(
            &r.ann,
            json!({"name": "m", "model": {"id": "fake-large", "effort": "high"}}),
        )
        .await;
    assert_eq!(m["model"], json!({"id": "fake-large", "effort": "high"}));
    assert_eq!(
        (m["system"].clone(), m["tools"].clone()),
        (json!(""), json!([]))
    );
    // A user token works as well as a key; the same team sees both.
    let got = r.ok("GET", &format!("agents/{id}"), &r.ann, None).await;
    assert_eq!(got["name"], "code-reviewer");
}

#[tokio::test]
async fn invalid_fields_are_400s_that_name_the_field_and_create_nothing() {
    let r = rig().await;
    for (body, names) in [
        (
            json!({"name": "Code_Reviewer", "model": "fake-coder"}),
            "name",
        ),
        (
            json!({"name": "a".repeat(65), "model": "fake-coder"}),
            "name",
        ),
        (json!({"name": "x-", "model": "fake-coder"}), "name"),
        (json!({"model": "fake-coder"}), "Field 'name' is required."),
        (
            json!({"name": null, "model": "fake-coder"}),
            "Field 'name' is required.",
        ),
        (json!({"name": "x"}), "Field 'model' is required."),
        (json!({"name": "x", "model": "no-such-model"}), "model"),
        (json!({"name": "x", "model": {"effort": "high"}}), "model"),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "agent_toolset_20260401", "enabled_tools": ["Teleport"]}]}),
            "Teleport",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "agent_toolset_20260401", "configs": [{"name": "warp_drive"}]}]}),
            "warp_drive",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "sometimes"}}}]}),
            "sometimes",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "laser"}]}),
            "tools[0]",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "custom", "name": "t"}]}),
            "custom",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "tools": [{"type": "mcp_toolset", "mcp_server_name": "gh"}]}),
            "mcp_server_name",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "mcp_servers": [{"type": "url", "name": "gh", "url": "https://mcp.example", "headers": {"Authorization": "Bearer s"}}]}),
            "credentials",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "metadata": {"n": 1}}),
            "metadata",
        ),
        (
            json!({"name": "x", "model": "fake-coder", "skills": [{"id": 1}]}),
            "skills[0]",
        ),
        (json!({"name": 5, "model": "fake-coder"}), "name"),
    ] {
        let a = r.call("POST", "agents", &r.alice, Some(body.clone())).await;
        let msg = error_of(&a, 400, "invalid_request_error");
        assert!(msg.contains(names), "{body}: {msg}");
    }
    let list = r
        .ok("GET", "agents?include_archived=true", &r.alice, None)
        .await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"], "only the team's default agent");
}

#[tokio::test]
async fn updates_need_the_current_version_and_keep_every_version() {
    let r = rig().await;
    let a = r
        .create(
            &r.alice,
            json!({"name": "rev", "model": "fake-coder", "system": "v1", "metadata": {"k": "v"}}),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    let path = format!("agents/{id}");
    // POST (the client's) and PUT (the seed's) are the same update.
    let u = r
        .ok(
            "POST",
            &path,
            &r.alice,
            Some(json!({"version": 1, "system": "v2"})),
        )
        .await;
    assert_eq!(
        (u["version"].clone(), u["system"].clone()),
        (json!(2), json!("v2"))
    );
    assert_eq!(u["metadata"], json!({"k": "v"}), "omitted fields stay");
    assert!(u["updated_at"].as_str() >= a["updated_at"].as_str());
    let u = r
        .ok(
            "PUT",
            &path,
            &r.ann,
            Some(json!({"version": 2, "system": "v3", "description": null})),
        )
        .await;
    assert_eq!(
        (u["version"].clone(), u["description"].clone()),
        (json!(3), json!(""))
    );
    // Stale, missing, null: the seed's messages exactly; nothing written.
    let m = error_of(
        &r.call(
            "PUT",
            &path,
            &r.alice,
            Some(json!({"version": 1, "system": "lost"})),
        )
        .await,
        409,
        "conflict_error",
    );
    assert_eq!(m, "Version conflict. Expected version 3, got 1.");
    for body in [
        json!({"system": "lost"}),
        json!({"version": null, "system": "lost"}),
    ] {
        let m = error_of(
            &r.call("POST", &path, &r.alice, Some(body)).await,
            400,
            "invalid_request_error",
        );
        assert_eq!(m, "Field 'version' is required.");
    }
    // A bad field is a 400 even against a stale version.
    let m = error_of(
        &r.call(
            "POST",
            &path,
            &r.alice,
            Some(json!({"version": 1, "name": "BAD"})),
        )
        .await,
        400,
        "invalid_request_error",
    );
    assert!(m.contains("name"), "{m}");
    let now = r.ok("GET", &path, &r.alice, None).await;
    assert_eq!(
        (now["version"].clone(), now["system"].clone()),
        (json!(3), json!("v3"))
    );
    // Every version kept, newest first; any one readable by ?version.
    let vs = r
        .ok("GET", &format!("{path}/versions"), &r.alice, None)
        .await;
    let systems: Vec<&str> = vs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["system"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["v3", "v2", "v1"]);
    assert_eq!(vs["has_more"], false);
    assert_eq!(vs["next_page"], Value::Null);
    let old = r
        .ok("GET", &format!("{path}?version=1"), &r.alice, None)
        .await;
    assert_eq!(
        (old["version"].clone(), old["system"].clone()),
        (json!(1), json!("v1"))
    );
    error_of(
        &r.call("GET", &format!("{path}?version=9"), &r.alice, None)
            .await,
        404,
        "not_found_error",
    );
    error_of(
        &r.call("GET", &format!("{path}?version=x"), &r.alice, None)
            .await,
        400,
        "invalid_request_error",
    );
    // Paging the versions one by one finds each once.
    let mut seen = Vec::new();
    let mut q = format!("{path}/versions?limit=1");
    loop {
        let p = r.ok("GET", &q, &r.alice, None).await;
        seen.push(p["data"][0]["version"].as_u64().unwrap());
        assert_eq!(p["has_more"], p["next_page"].is_string());
        match p["next_page"].as_str() {
            Some(t) => q = format!("{path}/versions?limit=1&page={t}"),
            None => break,
        }
    }
    assert_eq!(seen, [3, 2, 1]);
}

#[tokio::test]
async fn of_two_concurrent_updates_on_one_version_exactly_one_wins() {
    let r = rig().await;
    let a = r
        .create(&r.alice, json!({"name": "race", "model": "fake-coder"}))
        .await;
    let path = format!("agents/{}", a["id"].as_str().unwrap());
    for round in 1..=20u32 {
        let body =
            |tag: &str| Some(json!({"version": round, "description": format!("{round} {tag}")}));
        let (x, y) = tokio::join!(
            r.call("POST", &path, &r.alice, body("a")),
            r.call("PUT", &path, &r.ann, body("b"))
        );
        let mut st = [x.0, y.0];
        st.sort();
        assert_eq!(st, [200, 409], "round {round}: {} {}", x.2, y.2);
        let loser = if x.0 == 409 { &x } else { &y };
        assert_eq!(
            loser.2["error"]["message"],
            format!(
                "Version conflict. Expected version {}, got {round}.",
                round + 1
            )
        );
        let now = r.ok("GET", &path, &r.alice, None).await;
        assert_eq!(now["version"], round + 1);
    }
    let vs = r
        .ok("GET", &format!("{path}/versions?limit=100"), &r.alice, None)
        .await;
    assert_eq!(vs["data"].as_array().unwrap().len(), 21);
}

#[tokio::test]
async fn lists_page_newest_first_with_one_cursor_at_most() {
    let r = rig().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let a = r
            .create(
                &r.alice,
                json!({"name": format!("a{i}"), "model": "fake-coder"}),
            )
            .await;
        ids.push(a["id"].as_str().unwrap().to_string());
    }
    ids.reverse();
    let first = r.ok("GET", "agents", &r.alice, None).await;
    assert_eq!(
        first["data"].as_array().unwrap().len(),
        20,
        "default limit 20"
    );
    let mut seen: Vec<String> = Vec::new();
    let mut q = "agents?limit=10".to_string();
    loop {
        let p = r.ok("GET", &q, &r.alice, None).await;
        let page: Vec<String> = p["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(p["first_id"], json!(page.first()));
        assert_eq!(p["last_id"], json!(page.last()));
        assert_eq!(p["has_more"], p["next_page"].is_string());
        seen.extend(page);
        match p["next_page"].as_str() {
            Some(t) => q = format!("agents?limit=10&page={t}"),
            None => break,
        }
    }
    let default = seen.pop().unwrap();
    assert_eq!(seen, ids, "every agent once, newest first");
    let d = r
        .ok("GET", &format!("agents/{default}"), &r.alice, None)
        .await;
    assert_eq!(
        d["name"], "default",
        "the team's default agent, made first, is last"
    );
    let after = r
        .ok(
            "GET",
            &format!("agents?limit=3&after_id={}", ids[4]),
            &r.alice,
            None,
        )
        .await;
    let got: Vec<&str> = after["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [&ids[5], &ids[6], &ids[7]]);
    let before = r
        .ok(
            "GET",
            &format!("agents?limit=3&before_id={}", ids[4]),
            &r.alice,
            None,
        )
        .await;
    let got: Vec<&str> = before["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [&ids[1], &ids[2], &ids[3]]);
    assert_eq!(before["has_more"], true);
    for q in [
        format!("agents?after_id={}&before_id={}", ids[1], ids[2]),
        format!("agents?page=x&after_id={}", ids[1]),
        "agents?limit=0".into(),
        "agents?limit=101".into(),
        "agents?limit=ten".into(),
        "agents?page=bm90IGEgY3Vyc29y".into(),
        "agents?after_id=agent_00000000000000000000000000000000".into(),
        "agents?include_archived=maybe".into(),
        "agents?created_at[gte]=yesterday".into(),
        "agents?colour=red".into(),
        "agents?limit=1&limit=2".into(),
    ] {
        error_of(
            &r.call("GET", &q, &r.alice, None).await,
            400,
            "invalid_request_error",
        );
    }
    let future = r
        .ok(
            "GET",
            "agents?created_at[gte]=2999-01-01T00:00:00Z",
            &r.alice,
            None,
        )
        .await;
    assert_eq!(future["data"], json!([]));
    let past = r
        .ok(
            "GET",
            "agents?limit=100&created_at[gte]=2000-01-01T00:00:00Z",
            &r.alice,
            None,
        )
        .await;
    assert_eq!(
        past["data"].as_array().unwrap().len(),
        26,
        "25 and the default"
    );
}

#[tokio::test]
async fn an_archived_agent_is_hidden_kept_and_frozen() {
    let r = rig().await;
    let a = r
        .create(&r.alice, json!({"name": "old", "model": "fake-coder"}))
        .await;
    let id = a["id"].as_str().unwrap();
    let path = format!("agents/{id}");
    // The vendor's client sends `{}`; an empty body is the same.
    let (st, _, ar) = r
        .call(
            "POST",
            &format!("{path}/archive"),
            &r.alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200, "{ar}");
    assert_eq!(ar["archived"], true);
    let at = ar["archived_at"].as_str().unwrap().to_string();
    let again = r
        .http
        .post(format!("http://{}/api/v1/cloud/{path}/archive", r.addr))
        .header("Authorization", &r.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again["archived_at"],
        at.as_str(),
        "archiving again changes nothing"
    );
    let listed = r.ok("GET", "agents", &r.alice, None).await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["id"] != id));
    let all = r
        .ok("GET", "agents?include_archived=true", &r.alice, None)
        .await;
    assert_eq!(all["data"][0]["id"], id);
    let m = error_of(
        &r.call(
            "POST",
            &path,
            &r.alice,
            Some(json!({"version": 1, "system": "x"})),
        )
        .await,
        400,
        "invalid_request_error",
    );
    assert!(m.contains("Archived"), "{m}");
    assert_eq!(r.ok("GET", &path, &r.alice, None).await["version"], 1);
}

#[tokio::test]
async fn another_team_gets_404_on_every_route_and_changes_nothing() {
    let r = rig().await;
    let a = r
        .create(&r.alice, json!({"name": "ours", "model": "fake-coder"}))
        .await;
    let id = a["id"].as_str().unwrap();
    let v = json!({"version": 1, "system": "theirs"});
    for (method, path, body) in [
        ("GET", format!("agents/{id}"), None),
        ("GET", format!("agents/{id}?version=1"), None),
        ("POST", format!("agents/{id}"), Some(v.clone())),
        ("PUT", format!("agents/{id}"), Some(v.clone())),
        ("GET", format!("agents/{id}/versions"), None),
        ("POST", format!("agents/{id}/archive"), Some(json!({}))),
    ] {
        let ours = r.call(method, &path, &r.bob, body.clone()).await;
        let theirs = error_of(&ours, 404, "not_found_error");
        // The same answer as for an agent that does not exist.
        let none = r
            .call(
                method,
                &path.replace(id, "agent_ffffffffffffffffffffffffffffffff"),
                &r.bob,
                body,
            )
            .await;
        assert_eq!(
            theirs.replace(id, "X"),
            error_of(&none, 404, "not_found_error")
                .replace("agent_ffffffffffffffffffffffffffffffff", "X"),
            "{method} {path}"
        );
    }
    let listed = r
        .ok("GET", "agents?include_archived=true", &r.bob, None)
        .await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["id"] != id && a["name"] == "default"));
    error_of(
        &r.call("GET", &format!("agents?after_id={id}"), &r.bob, None)
            .await,
        400,
        "invalid_request_error",
    );
    let now = r.ok("GET", &format!("agents/{id}"), &r.alice, None).await;
    assert_eq!(
        (
            now["version"].clone(),
            now["archived"].clone(),
            now["system"].clone()
        ),
        (json!(1), json!(false), json!(""))
    );
    // A workspace header naming another team is not found either.
    let h = r
        .http
        .get(format!("http://{}/api/v1/cloud/agents/{id}", r.addr))
        .header("Authorization", &r.alice)
        .header("qoder-workspace-id", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 404);
}

#[tokio::test]
async fn callers_routes_and_methods_get_the_envelope() {
    let r = rig().await;
    error_of(
        &r.call("GET", "agents", "", None).await,
        401,
        "authentication_error",
    );
    error_of(
        &r.call("GET", "agents", "Bearer cpk_nope", None).await,
        401,
        "authentication_error",
    );
    error_of(
        &r.call("GET", "agents", &r.ownerless, None).await,
        403,
        "permission_error",
    );
    error_of(
        &r.call("GET", "nothing-here", &r.alice, None).await,
        404,
        "not_found_error",
    );
    error_of(
        &r.call("DELETE", "agents", &r.alice, None).await,
        405,
        "not_found_error",
    );
    let text = r
        .http
        .post(format!("http://{}/api/v1/cloud/agents", r.addr))
        .header("Authorization", &r.alice)
        .header("Content-Type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    let h = text.headers().clone();
    let a = (415, h, text.json::<Value>().await.unwrap());
    error_of(&a, 415, "invalid_request_error");
}

#[tokio::test]
async fn models_are_what_registered_workers_serve() {
    let r = rig().await;
    let m = r.ok("GET", "models", &r.alice, None).await;
    let ids: Vec<&str> = m["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fake-coder", "fake-large"]);
    assert_eq!(m["data"][0]["type"], "model");
    let p = r.ok("GET", "models?limit=1", &r.alice, None).await;
    assert_eq!(
        (p["has_more"].clone(), p["last_id"].clone()),
        (json!(true), json!("fake-coder"))
    );
    let p = r
        .ok("GET", "models?limit=1&after_id=fake-coder", &r.alice, None)
        .await;
    assert_eq!(
        (p["data"][0]["id"].clone(), p["has_more"].clone()),
        (json!("fake-large"), json!(false))
    );
    let p = r
        .ok("GET", "models?before_id=fake-large", &r.alice, None)
        .await;
    assert_eq!(p["data"][0]["id"], "fake-coder");
}

/// Qoder's own Python client (`qca-sdk` from PyPI, unchanged) creates,
/// reads, updates (POST, and PUT by hand) and meets the 409 and the 400s,
/// races two updates, lists and pages, reads versions, archives, uploads
/// a skill and its versions (multipart), lists, pins and deletes them —
/// and another team's key gets 404 everywhere
/// (tests/python/qca_conformance.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qoders_own_python_client_drives_create_update_conflict_list_versions_archive() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pydeps = root.join("target/pydeps");
    assert!(
        pydeps.join("qca").is_dir(),
        "qca-sdk is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
        pydeps.display()
    );
    let r = rig().await;
    let key = |auth: &str| auth.trim_start_matches("Bearer ").to_string();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(root.join("tests/python/qca_conformance.py"))
        .env("PYTHONPATH", &pydeps)
        .env("BASE_URL", format!("http://{}", r.addr))
        .env("API_KEY", key(&r.alice))
        .env("OTHER_API_KEY", key(&r.bob))
        .env("RACE_ROUNDS", "5");
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
    assert!(passed >= 170, "{last}");
    // The skills registry, through the client's own multipart upload.
    for step in [
        "ok   skills create: 201",
        "ok   skills version: name, description, directory from SKILL.md",
        "ok   skills versions: newest first",
        "ok   skills download: the files as a zip",
        "ok   skills other team: get: 404",
        "ok   skills delete: gone: 404",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    eprintln!("qca-sdk: {last}");
}

/// `POST /v1/sessions` as `auth` with `agent`; `(status, body)`.
async fn queue(r: &Rig, auth: &str, agent: Value) -> (u16, Value) {
    let resp = r
        .http
        .post(format!("http://{}/v1/sessions", r.addr))
        .header("Authorization", auth)
        .json(
            &json!({"workspace": "w", "agent_profile": "p", "agent": agent,
                       "source": {"title": "t", "prompt": "do it"}}),
        )
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_session_pins_the_version_it_was_queued_with_and_an_update_mid_run_changes_nothing() {
    let r = rig().await;
    let a = r
        .create(
            &r.alice,
            json!({"name": "pinned", "model": "fake-coder", "system": "v1 rules",
                   "tools": [{"type": "agent_toolset_20260401", "enabled_tools": ["Bash", "Read"],
                              "disallowed_tools": ["WebFetch"],
                              "configs": [{"name": "bash", "permission_policy": {"type": "always_ask"}}]}]}),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    let (st, s1) = queue(&r, &r.alice, json!(id)).await;
    assert_eq!(st, 200, "{s1}");
    assert_eq!(s1["agent_id"], id.as_str());
    assert_eq!(s1["trigger"], "API");
    assert_eq!(
        s1["run_as"], "user:alice",
        "a person's key runs as its user, whichever agent it names"
    );
    assert_eq!(s1["agent"]["version"], 1);
    assert_eq!(s1["agent"]["name"], "pinned");
    assert_eq!(s1["agent"]["model"], "fake-coder");
    assert_eq!(s1["agent"]["system_prompt"], "v1 rules");
    assert_eq!(s1["agent"]["enabled_tools"], json!(["Bash", "Read"]));
    assert_eq!(s1["agent"]["disallowed_tools"], json!(["WebFetch"]));
    assert_eq!(s1["agent"]["tool_policies"], json!({"Bash": "always_ask"}));
    // A worker runs it; the agent is updated while it runs.
    let worker = r
        .store
        .register_worker_as(alices_worker(), Some("alice"))
        .unwrap()
        .worker_id
        .to_string();
    let sid = s1["id"].as_str().unwrap().to_string();
    let claim = r.store.claim(&worker, &sid, Some(60)).unwrap();
    assert_eq!(claim.session.agent.system_prompt, "v1 rules");
    r.ok(
        "PUT",
        &format!("agents/{id}"),
        &r.ann,
        Some(json!({"version": 1, "system": "v2 rules", "tools": []})),
    )
    .await;
    let running = r.store.get(&sid).unwrap().session;
    assert_eq!(
        (running.agent.version, running.agent.system_prompt.as_str()),
        (1, "v1 rules")
    );
    assert_eq!(running.agent.enabled_tools, ["Bash", "Read"]);
    // The next session gets the new version; a pin gets the old one.
    let (_, s2) = queue(&r, &r.ann, json!(id)).await;
    assert_eq!(
        (
            s2["agent"]["version"].clone(),
            s2["agent"]["system_prompt"].clone()
        ),
        (json!(2), json!("v2 rules"))
    );
    assert_eq!(
        s2["agent"]["enabled_tools"],
        json!([]),
        "tools: [] enables nothing"
    );
    let (st, s3) = queue(
        &r,
        &r.alice,
        json!({"type": "agent", "id": id, "version": 1}),
    )
    .await;
    assert_eq!(st, 200, "{s3}");
    assert_eq!(
        (
            s3["agent"]["version"].clone(),
            s3["agent"]["system_prompt"].clone()
        ),
        (json!(1), json!("v1 rules"))
    );
    let (_, s4) = queue(&r, &r.alice, json!({"type": "agent", "id": id})).await;
    assert_eq!(s4["agent"]["version"], 2);
    // What cannot be run is refused, and nothing is queued.
    let before = r.store.audit_counts().unwrap().len();
    for (auth, agent, status) in [
        (&r.bob, json!(id), 404),
        (
            &r.alice,
            json!({"type": "agent", "id": id, "version": 7}),
            404,
        ),
        (
            &r.alice,
            json!("agent_ffffffffffffffffffffffffffffffff"),
            404,
        ),
        (&r.alice, json!("code-reviewer"), 400),
        (
            &r.alice,
            json!({"type": "agent", "id": id, "version": 0}),
            400,
        ),
        (
            &r.alice,
            json!({"type": "agent", "id": id, "colour": "red"}),
            400,
        ),
        (&r.ownerless, json!(id), 400),
    ] {
        let (st, b) = queue(&r, auth, agent.clone()).await;
        assert_eq!(st, status, "{agent}: {b}");
    }
    r.ok("POST", &format!("agents/{id}/archive"), &r.alice, None)
        .await;
    let (st, b) = queue(&r, &r.alice, json!(id)).await;
    assert_eq!(st, 400, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("archived"),
        "{b}"
    );
    assert_eq!(r.store.audit_counts().unwrap().len(), before);
}

#[tokio::test]
async fn a_session_records_what_started_it_and_whom_it_runs_as() {
    let r = rig().await;
    let post = |trigger: Value| {
        r.http
            .post(format!("http://{}/v1/sessions", r.addr))
            .header("Authorization", &r.alice)
            .json(&json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"},
                           "trigger": trigger}))
            .send()
    };
    let s: Value = post(json!("CLI")).await.unwrap().json().await.unwrap();
    assert_eq!(
        (s["trigger"].clone(), s["run_as"].clone()),
        (json!("CLI"), json!("user:alice"))
    );
    let s: Value = post(Value::Null).await.unwrap().json().await.unwrap();
    assert_eq!(s["trigger"], "API");
    for t in ["SCHEDULED_AGENT", "WEB_APP", "cron"] {
        let resp = post(json!(t)).await.unwrap();
        assert_eq!(resp.status(), 400, "{t}");
    }
    assert_eq!(r.store.audit_counts().unwrap().len(), 2);
}

#[tokio::test]
async fn webhooks_of_one_team_get_and_show_nothing_of_another() {
    let r = rig().await;
    let sub = |auth: String| {
        let r = &r;
        async move {
            let resp = r
                .http
                .post(format!("http://{}/v1/webhooks", r.addr))
                .header("Authorization", auth)
                .json(&json!({"url": "https://hooks.example/in", "key": "k", "event_types": ["*"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let ours = sub(r.alice.clone()).await;
    let theirs = sub(r.bob.clone()).await;
    let (st, _) = queue(&r, &r.alice, json!({"name": "a", "model": "m"})).await;
    assert_eq!(st, 200);
    let log = |id: &str, auth: &str| {
        r.http
            .get(format!("http://{}/v1/webhooks/{id}/deliveries", r.addr))
            .header("Authorization", auth)
            .send()
    };
    let mine: Value = log(&ours, &r.ann).await.unwrap().json().await.unwrap();
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "team a's subscription got team a's event: {mine}"
    );
    let bobs: Value = log(&theirs, &r.bob).await.unwrap().json().await.unwrap();
    assert!(
        bobs.as_array().unwrap().is_empty(),
        "team b's got nothing: {bobs}"
    );
    assert_eq!(log(&ours, &r.bob).await.unwrap().status(), 404);
    let listed: Value = r
        .http
        .get(format!("http://{}/v1/webhooks", r.addr))
        .header("Authorization", &r.bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [theirs.as_str()]);
}

#[tokio::test]
async fn a_cloud_agents_launch_runs_the_teams_default_agent() {
    let r = rig().await;
    r.store
        .register_worker_as(alices_worker(), Some("alice"))
        .unwrap();
    let list = r.ok("GET", "agents", &r.alice, None).await;
    let default = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "default")
        .unwrap()
        .clone();
    let id = default["id"].as_str().unwrap();
    r.ok(
        "PUT",
        &format!("agents/{id}"),
        &r.ann,
        Some(json!({"version": 1, "system": "Team rules."})),
    )
    .await;
    let resp = r
        .http
        .post(format!("http://{}/v0/agents", r.addr))
        .header("Authorization", &r.alice)
        .json(&json!({"prompt": {"text": "Fix the bug"}, "source": {"repository": "https://github.com/acme/widget"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let launched: Value = resp.json().await.unwrap();
    let session = format!(
        "ses_{}",
        launched["id"].as_str().unwrap().trim_start_matches("bc_")
    );
    let s = r.store.get(&session).unwrap().session;
    assert_eq!(s.agent_id.as_deref(), Some(id));
    assert_eq!(
        (s.agent.version, s.agent.system_prompt.as_str()),
        (2, "Team rules.")
    );
    assert_eq!(s.agent.model, "fake-coder");
    assert_eq!(
        s.agent.enabled_tools,
        ["Read", "Bash"],
        "the default's tools, within the worker's"
    );
    assert_eq!(s.run_as.as_deref(), Some("user:alice"));
}

/// Two stores on one database file — two control-plane processes — race
/// updates against the same version: exactly one commits each round.
#[tokio::test]
async fn of_two_processes_updating_one_version_exactly_one_wins() {
    let r = rig().await;
    let a = r
        .create(&r.alice, json!({"name": "shared", "model": "fake-coder"}))
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    let path = r.db_path();
    let stores: Vec<std::sync::Arc<crate::Store>> = (0..2)
        .map(|_| std::sync::Arc::new(crate::Store::open(&path, 3).unwrap()))
        .collect();
    for round in 1..=10i64 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let (st, barrier, id) = (st.clone(), barrier.clone(), id.clone());
                std::thread::spawn(move || {
                    let patch: crate::agent_configs::AgentPatch = serde_json::from_value(
                        json!({"version": round, "description": format!("{round} by {i}")}),
                    )
                    .unwrap();
                    barrier.wait();
                    st.update_agent_config("a", &id, "alice", patch)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|x| x.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|x| {
                matches!(
                    x,
                    Err(crate::StoreError::Conflict {
                        kind: crate::ConflictKind::Version,
                        ..
                    })
                )
            })
            .count();
        assert_eq!((wins, conflicts), (1, 1), "round {round}: {results:?}");
    }
    let now = r.ok("GET", &format!("agents/{id}"), &r.alice, None).await;
    assert_eq!(now["version"], 11);
}

/// A session queued from an agent pins the skills it names: the newest
/// live version at that moment (a later upload does not change a queued
/// session), or the version named; an unknown one is a 400 naming the
/// entry and queues nothing; another team cannot name ours; built-in
/// (`qoder`) skills are refused on create.
#[tokio::test]
async fn a_queued_session_pins_the_agents_skills_from_the_teams_registry() {
    use crate::store::skills::testing::upload;
    let r = rig().await;
    let sk = r
        .store
        .create_skill("a", "alice", None, Default::default(), upload("pdf", "v1"))
        .unwrap();
    let v1 = sk.latest_version.clone().unwrap();
    let a = r
        .create(
            &r.alice,
            json!({"name": "pinner", "model": "fake-coder",
                   "skills": [{"type": "custom", "skill_id": sk.id}]}),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    let (st, s1) = queue(&r, &r.alice, json!(id)).await;
    assert_eq!(st, 200, "{s1}");
    let pins = &s1["agent"]["pinned_skills"];
    assert_eq!(pins[0]["skill_id"], sk.id.as_str());
    assert_eq!(pins[0]["version"], v1.as_str());
    assert_eq!(pins[0]["name"], "pdf");
    assert_eq!(pins[0]["sha256"].as_str().unwrap().len(), 64);
    let v2 = r
        .store
        .create_skill_version("a", &sk.id, upload("pdf", "v2"))
        .unwrap();
    let (_, s2) = queue(&r, &r.alice, json!(id)).await;
    assert_eq!(
        s2["agent"]["pinned_skills"][0]["version"],
        v2.version.as_str()
    );
    assert_ne!(s2["agent"]["pinned_skills"][0]["sha256"], pins[0]["sha256"]);
    let first = r.store.get(s1["id"].as_str().unwrap()).unwrap().session;
    assert_eq!(
        first.agent.pinned_skills[0].version, v1,
        "a queued session keeps its pin"
    );
    // The skill gone: the agent queues nothing, naming the entry.
    r.store.delete_skill("a", &sk.id).unwrap();
    let before = r.store.list(None, 100, None).unwrap().len();
    let (st, b) = queue(&r, &r.alice, json!(id)).await;
    assert_eq!(st, 400, "{b}");
    assert!(b.to_string().contains("skills[0]"), "{b}");
    assert_eq!(r.store.list(None, 100, None).unwrap().len(), before);
    // Built-in skills: refused when the agent is made.
    let (st, _, b) = r
        .call(
            "POST",
            "agents",
            &r.alice,
            Some(json!({"name": "builtin", "model": "fake-coder",
                        "skills": [{"type": "qoder", "skill_id": "pdf"}]})),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(b.to_string().contains("no built-in skills"), "{b}");
}

/// A multipart body of `parts` (`(name, filename, bytes)`).
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cpstore-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads are for people (an agent's key: 403), within the size limit
/// (413 in the envelope), with known parts only (400), and another
/// team's skill is a 404 on every route.
#[tokio::test]
async fn skill_uploads_are_checked_before_anything_is_stored() {
    let r = rig().await;
    let skill_md: &[u8] = b"---\nname: pdf\ndescription: d\n---\n";
    let post = |auth: String, ct: String, body: Vec<u8>| {
        let http = r.http.clone();
        let url = format!("http://{}/api/v1/cloud/skills", r.addr);
        async move {
            let a = http
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let st = a.status().as_u16();
            (st, a.json::<Value>().await.unwrap())
        }
    };
    let (ct, body) = multipart(&[("files", Some("pdf/SKILL.md"), skill_md)]);
    let (st, ok) = post(r.alice.clone(), ct.clone(), body.clone()).await;
    assert_eq!(st, 201, "{ok}");
    let id = ok["id"].as_str().unwrap().to_string();
    let agent = r
        .create(&r.alice, json!({"name": "bot", "model": "fake-coder"}))
        .await;
    let key = format!(
        "Bearer {}",
        r.store
            .add_agent_api_key("bot", "alice", agent["id"].as_str().unwrap())
            .unwrap()
            .key
    );
    let (st, e) = post(key, ct.clone(), body).await;
    assert_eq!(st, 403, "{e}");
    let big = vec![b'x'; (protocol::toolset::SKILL_MAX_BYTES as usize) + (2 << 20)];
    let (ct2, body) = multipart(&[
        ("files", Some("pdf/SKILL.md"), skill_md),
        ("files", Some("pdf/big"), &big),
    ]);
    let (st, e) = post(r.alice.clone(), ct2, body).await;
    assert_eq!((st, e["type"].as_str()), (413, Some("error")), "{e}");
    let (ct3, body) = multipart(&[
        ("files", Some("pdf/SKILL.md"), skill_md),
        ("evil", None, b"x"),
    ]);
    let (st, e) = post(r.alice.clone(), ct3, body).await;
    assert_eq!(st, 400, "{e}");
    assert!(e.to_string().contains("unknown part"), "{e}");
    let (st, _, listed) = r.call("GET", "skills", &r.alice, None).await;
    assert_eq!(st, 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    for (method, path) in [
        ("GET", format!("skills/{id}")),
        ("DELETE", format!("skills/{id}")),
        ("GET", format!("skills/{id}/versions")),
        ("GET", format!("skills/{id}/versions/latest")),
    ] {
        let (st, _, _) = r.call(method, &path, &r.bob, None).await;
        assert_eq!(st, 404, "{method} {path}");
    }
    assert!(r.store.skill("a", &id).is_ok());
}
