//! `/api/v1/agent/schedules` over real HTTP on loopback: create, list,
//! get, full replacement, pause/resume, delete; the 400s that name what
//! is wrong; another team's schedule is 404 on every route (and ours is
//! unchanged); an agent's key is 403.

use crate::api::test_server::Served;
use protocol::platform::RegisterWorker;
use serde_json::{json, Value};

/// alice in team `a` (and an agent key of hers), bob in team `b`.
struct Rig {
    srv: Served,
    alice: String,
    bob: String,
    agent_key: String,
    agent: String,
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s).await;
    let st = &srv.store;
    st.add_team("a").unwrap();
    st.add_team("b").unwrap();
    st.add_user_in_team("alice", "alice-password", None, "a")
        .unwrap();
    st.add_user_in_team("bob", "bob-password", None, "b")
        .unwrap();
    st.register_worker_as(
        RegisterWorker {
            workspace: "w".into(),
            agent_profile: "p".into(),
            runtime: "r".into(),
            execution_mode: "cloud".into(),
            display_name: "worker".into(),
            capabilities: vec![],
            concurrency: 1,
            policy_entries: vec![],
            custom_instructions: None,
            models: vec!["m".into()],
        },
        Some("alice"),
    )
    .unwrap();
    let key = |u: &str| format!("Bearer {}", st.add_api_key("k", Some(u)).unwrap().key);
    let patch = serde_json::from_value(json!({"name": "reviewer"})).unwrap();
    let agent = st.create_identity("a", "user:alice", patch).unwrap().id;
    let agent_key = format!(
        "Bearer {}",
        st.add_agent_api_key("ak", "alice", &agent).unwrap().key
    );
    Rig {
        alice: key("alice"),
        bob: key("bob"),
        agent_key,
        agent,
        srv,
    }
}

impl Rig {
    /// `(status, x-should-retry, body)`.
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let mut req = self.srv.http.request(
            method.parse().unwrap(),
            format!("http://{}/api/v1/agent/{path}", self.srv.addr),
        );
        req = req.header("Authorization", auth);
        req = match body {
            Some(b) => req.json(&b),
            // As the vendor's client sends a bodiless POST.
            None => req
                .header("Content-Type", "application/json")
                .header("Content-Length", "0"),
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("x-should-retry")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        (
            status,
            retry,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn create(&self, body: Value) -> Value {
        let (s, _, b) = self
            .call("POST", "schedules", &self.alice, Some(body))
            .await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// The call fails with `status`, a problem body whose detail contains
    /// `contains`, and `x-should-retry: false`.
    async fn refused(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
        status: u16,
        contains: &str,
    ) {
        let (s, retry, b) = self.call(method, path, auth, body).await;
        assert_eq!(s, status, "{method} {path}: {b}");
        assert_eq!(b["status"], status, "{b}");
        assert_eq!(retry.as_deref(), Some("false"), "{method} {path}");
        let detail = b["detail"].as_str().unwrap_or_default();
        assert!(
            detail.to_lowercase().contains(&contains.to_lowercase()),
            "{method} {path}: {detail:?} lacks {contains:?}"
        );
    }
}

fn future(t: &Value) -> bool {
    t.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.timestamp_millis() > chrono::Utc::now().timestamp_millis())
}

#[tokio::test]
async fn create_list_get_replace_pause_resume_and_delete() {
    let r = rig().await;
    let s = r
        .create(json!({
            "name": "nightly", "cron_schedule": "*/5 * * * *", "prompt": "Check the build.",
            "agent_uid": r.agent, "enabled": true, "timezone": "Europe/Paris",
            "metadata": {"suite": "unit"}, "agent_config": {"model_id": "m"},
            "some_field_we_do_not_use": 1,
        }))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sch_"), "{s}");
    assert_eq!(s["name"], "nightly");
    assert_eq!(s["cron_schedule"], "*/5 * * * *");
    assert_eq!(s["prompt"], "Check the build.");
    assert_eq!(s["agent_uid"], r.agent.as_str());
    assert_eq!(s["enabled"], true);
    assert_eq!(s["timezone"], "Europe/Paris");
    assert_eq!(s["metadata"], json!({"suite": "unit"}));
    assert_eq!(s["agent_config"], json!({"model_id": "m"}));
    assert_eq!(s["created_by"]["uid"], "alice");
    assert_eq!(s["scope"], json!({"type": "Team", "uid": "a"}));
    assert!(future(&s["next_run_at"]), "{s}");
    assert_eq!(s["history"]["next_run"], s["next_run_at"]);
    assert_eq!(s["history"]["last_ran"], Value::Null);
    assert_eq!(s["last_spawn_error"], Value::Null);
    assert!(s["created_at"].is_string() && s["updated_at"].is_string());

    // UTC by default; enabled by default; no agent: the team's default.
    let utc = r
        .create(
            json!({"name": "a-weekdays", "cron_schedule": "0 9 * * 1-5", "prompt": "Weekdays."}),
        )
        .await;
    assert_eq!(utc["timezone"], "UTC");
    assert_eq!(utc["enabled"], true);
    assert_eq!(utc["agent_uid"], Value::Null);
    // Created disabled: no next run.
    let off = r
        .create(
            json!({"name": "b-off", "cron_schedule": "0 9 * * *", "prompt": "x", "enabled": false}),
        )
        .await;
    assert_eq!(off["next_run_at"], Value::Null);

    let (st, _, ls) = r.call("GET", "schedules", &r.alice, None).await;
    assert_eq!(st, 200, "{ls}");
    let names: Vec<&str> = ls["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-weekdays", "b-off", "nightly"], "by name");

    let (st, _, g) = r
        .call("GET", &format!("schedules/{id}"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{g}");
    assert_eq!(g["id"], id.as_str());
    assert_eq!(g["ticks"], json!([]), "GET one shows its ticks");

    // PUT: a full replacement; the timezone left out stays; the next run
    // follows the new cron.
    let (st, _, u) = r
        .call(
            "PUT",
            &format!("schedules/{id}"),
            &r.alice,
            Some(json!({"name": "nightly", "cron_schedule": "0 6 * * *", "enabled": true, "prompt": "Morning check."})),
        )
        .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["cron_schedule"], "0 6 * * *");
    assert_eq!(u["prompt"], "Morning check.");
    assert_eq!(u["timezone"], "Europe/Paris");
    assert_eq!(u["agent_uid"], Value::Null, "replaced: left out is cleared");
    assert_eq!(u["metadata"], Value::Null);
    let next = chrono::DateTime::parse_from_rfc3339(u["next_run_at"].as_str().unwrap()).unwrap();
    let local = next.with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(
        (
            chrono::Timelike::hour(&local),
            chrono::Timelike::minute(&local)
        ),
        (6, 0),
        "{u}"
    );

    // Pause: disabled, no next run; resume: a next run in the future.
    let (st, _, p) = r
        .call("POST", &format!("schedules/{id}/pause"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["enabled"], false);
    assert_eq!(p["next_run_at"], Value::Null);
    assert_eq!(p["history"]["next_run"], Value::Null);
    let (_, _, g) = r
        .call("GET", &format!("schedules/{id}"), &r.alice, None)
        .await;
    assert_eq!(g["enabled"], false);
    let (st, _, rs) = r
        .call("POST", &format!("schedules/{id}/resume"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{rs}");
    assert_eq!(rs["enabled"], true);
    assert!(future(&rs["next_run_at"]), "{rs}");

    // Delete: success, then 404 and not listed.
    let (st, _, d) = r
        .call("DELETE", &format!("schedules/{id}"), &r.alice, None)
        .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(d, json!({"success": true}));
    r.refused(
        "GET",
        &format!("schedules/{id}"),
        &r.alice,
        None,
        404,
        "no schedule",
    )
    .await;
    let (_, _, ls) = r.call("GET", "schedules", &r.alice, None).await;
    assert!(!ls["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == id.as_str()));
}

#[tokio::test]
async fn bad_input_is_a_400_naming_what_is_wrong() {
    let r = rig().await;
    let base = json!({"name": "x", "cron_schedule": "* * * * *", "prompt": "x"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (cron, names) in [
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day-of-week"),
        ("* * * *", "5"),
        ("@daily", "5"),
    ] {
        r.refused(
            "POST",
            "schedules",
            &r.alice,
            Some(with("cron_schedule", json!(cron))),
            400,
            names,
        )
        .await;
    }
    let cases = [
        (with("timezone", json!("Mars/Olympus")), "timezone"),
        (with("name", json!("")), "name"),
        (with("prompt", json!("")), "prompt"),
        (with("enabled", json!("yes")), "enabled"),
        (with("metadata", json!({"k": 1})), "metadata"),
        (
            with("agent_config", json!({"environment_id": "e"})),
            "agent_config.environment_id",
        ),
        (with("mode", json!("plan")), "mode"),
        (with("team", json!(false)), "team"),
        (
            json!({"cron_schedule": "* * * * *", "prompt": "x"}),
            "name is required",
        ),
        (
            json!({"name": "x", "prompt": "x"}),
            "cron_schedule is required",
        ),
    ];
    for (body, contains) in cases {
        r.refused("POST", "schedules", &r.alice, Some(body), 400, contains)
            .await;
    }
    // An agent that does not exist: 404.
    r.refused(
        "POST",
        "schedules",
        &r.alice,
        Some(with("agent_uid", json!("agent_nope"))),
        404,
        "agent_nope",
    )
    .await;
    // PUT needs name, cron_schedule and enabled.
    let s = r.create(base.clone()).await;
    let path = format!("schedules/{}", s["id"].as_str().unwrap());
    for (body, contains) in [
        (
            json!({"name": "x", "cron_schedule": "* * * * *", "prompt": "x"}),
            "enabled is required",
        ),
        (
            json!({"name": "x", "enabled": true, "prompt": "x"}),
            "cron_schedule is required",
        ),
        (
            json!({"cron_schedule": "* * * * *", "enabled": true, "prompt": "x"}),
            "name is required",
        ),
        (
            json!({"name": "x", "cron_schedule": "0 25 * * *", "enabled": true, "prompt": "x"}),
            "hour",
        ),
    ] {
        r.refused("PUT", &path, &r.alice, Some(body), 400, contains)
            .await;
    }
    let (_, _, g) = r.call("GET", &path, &r.alice, None).await;
    assert_eq!(g["cron_schedule"], "* * * * *", "refused changes nothing");
}

#[tokio::test]
async fn another_teams_schedule_is_not_found_on_every_route_and_stays_as_it_was() {
    let r = rig().await;
    let s = r
        .create(json!({"name": "ours", "cron_schedule": "0 0 1 1 *", "prompt": "x", "agent_uid": r.agent}))
        .await;
    let id = s["id"].as_str().unwrap();
    let one = format!("schedules/{id}");
    let put =
        json!({"name": "theirs", "cron_schedule": "* * * * *", "enabled": true, "prompt": "y"});
    for (method, path, body) in [
        ("GET", one.clone(), None),
        ("PUT", one.clone(), Some(put)),
        ("POST", format!("{one}/pause"), None),
        ("POST", format!("{one}/resume"), None),
        ("DELETE", one.clone(), None),
    ] {
        r.refused(method, &path, &r.bob, body, 404, "no schedule")
            .await;
    }
    // Nor may bob's schedule run as our agent.
    r.refused(
        "POST",
        "schedules",
        &r.bob,
        Some(
            json!({"name": "x", "cron_schedule": "* * * * *", "prompt": "x", "agent_uid": r.agent}),
        ),
        404,
        &r.agent,
    )
    .await;
    let (_, _, ls) = r.call("GET", "schedules", &r.bob, None).await;
    assert_eq!(ls["schedules"], json!([]));
    let (_, _, g) = r.call("GET", &one, &r.alice, None).await;
    assert_eq!(g["name"], "ours");
    assert_eq!(g["enabled"], true);
    assert_eq!(g["cron_schedule"], "0 0 1 1 *");
}

#[tokio::test]
async fn an_agents_key_manages_no_schedule() {
    let r = rig().await;
    let s = r
        .create(json!({"name": "ours", "cron_schedule": "0 0 1 1 *", "prompt": "x"}))
        .await;
    let one = format!("schedules/{}", s["id"].as_str().unwrap());
    let body = json!({"name": "x", "cron_schedule": "* * * * *", "enabled": true, "prompt": "x"});
    for (method, path, body) in [
        ("POST", "schedules".to_string(), Some(body.clone())),
        ("GET", "schedules".to_string(), None),
        ("GET", one.clone(), None),
        ("PUT", one.clone(), Some(body)),
        ("POST", format!("{one}/pause"), None),
        ("POST", format!("{one}/resume"), None),
        ("DELETE", one.clone(), None),
    ] {
        r.refused(method, &path, &r.agent_key, body, 403, "only a person")
            .await;
    }
    let (_, _, g) = r.call("GET", &one, &r.alice, None).await;
    assert_eq!(g["enabled"], true, "unchanged");
}
