//! Repository reports and `GET /v0/repositories` over real HTTP on
//! loopback: the union of two workers' reports, the per-user limit (429
//! with a whole-seconds `Retry-After`, refused calls not counted, another
//! user unaffected, the hourly cap with time moved by ageing the recorded
//! hits), and a worker's list written only by its own user.

use crate::api::test_server::{basic, bearer, Served};
use serde_json::{json, Value};

/// A control plane with alice and bob, each signed in (user tokens) and
/// each with an API key.
struct Rig {
    srv: Served,
    alice: String,
    bob: String,
    alice_key: String,
    bob_key: String,
}

impl std::ops::Deref for Rig {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.srv
    }
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s).await;
    let store = &srv.store;
    store.add_user("alice", "alice-password", None).unwrap();
    store.add_user("bob", "bob-password", None).unwrap();
    let key = |u: &str| basic(&store.add_api_key("k", Some(u)).unwrap().key);
    let (alice, bob) = (bearer(store, "alice"), bearer(store, "bob"));
    let (alice_key, bob_key) = (key("alice"), key("bob"));
    Rig {
        srv,
        alice,
        bob,
        alice_key,
        bob_key,
    }
}

/// `(status, Retry-After, body)`.
type Answer = (u16, Option<String>, Value);

impl Rig {
    async fn call(&self, method: &str, path: &str, auth: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", self.addr),
            )
            .header("Authorization", auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        (
            status,
            retry,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Registers a worker (runtime `runtime`) as the user of `token`.
    async fn worker(&self, token: &str, runtime: &str) -> String {
        let reg = json!({
            "workspace": "w", "agent_profile": "p", "runtime": runtime,
            "display_name": runtime,
        });
        let (st, _, w) = self.call("POST", "/v1/workers", token, Some(reg)).await;
        assert_eq!(st, 200, "{w}");
        w["worker_id"].as_str().unwrap().to_string()
    }

    async fn report(&self, token: &str, worker: &str, repos: &[(&str, &str, &str)]) -> Answer {
        let list: Vec<Value> = repos
            .iter()
            .map(|(h, o, n)| json!({"owner": o, "name": n, "repository": format!("https://{h}/{o}/{n}")}))
            .collect();
        self.call(
            "PUT",
            &format!("/v1/workers/{worker}/repositories"),
            token,
            Some(json!({ "repositories": list })),
        )
        .await
    }

    async fn list(&self, key: &str) -> Answer {
        self.call("GET", "/v0/repositories", key, None).await
    }
}

fn urls(b: &Value) -> Vec<String> {
    b["repositories"]
        .as_array()
        .unwrap_or_else(|| panic!("no list: {b}"))
        .iter()
        .map(|r| r["repository"].as_str().unwrap().to_string())
        .collect()
}

/// A 429 with an integer `Retry-After` of at least 1, a top-level
/// `message`, type `rate_limited`; the seconds.
fn limited(a: &Answer) -> u64 {
    let (st, retry, b) = a;
    assert_eq!(*st, 429, "{b}");
    let secs: u64 = retry
        .as_deref()
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1);
    assert_eq!(b["error"]["type"], "rate_limited", "{b}");
    assert_eq!(b["error"]["code"], "rate_limited", "{b}");
    let m = b["message"].as_str().expect("a top-level message");
    assert!(
        m.contains("once a minute") && m.contains(&secs.to_string()),
        "{m}"
    );
    secs
}

#[tokio::test]
async fn the_list_is_the_union_of_two_workers_reports() {
    let r = rig().await;
    let a = r.worker(&r.alice, "a").await;
    let b = r.worker(&r.bob, "b").await;
    let (st, _, ack) = r
        .report(
            &r.alice,
            &a,
            &[
                ("127.0.0.1:8443", "acme", "widget"),
                ("github.com", "acme", "gadget"),
            ],
        )
        .await;
    assert_eq!((st, &ack["stored"]), (200, &json!(2)), "{ack}");
    let (st, _, _) = r
        .report(
            &r.bob,
            &b,
            &[
                ("github.com", "acme", "gadget"),
                ("github.com", "octo", "cat"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, list) = r.list(&r.alice_key).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(
        urls(&list),
        [
            "https://127.0.0.1:8443/acme/widget",
            "https://github.com/acme/gadget",
            "https://github.com/octo/cat",
        ]
    );
    // Exactly the documented fields.
    let keys: Vec<&String> = list["repositories"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["name", "owner", "repository"]);
    assert_eq!(list["repositories"][0]["owner"], "acme");
    assert_eq!(list["repositories"][0]["name"], "widget");
}

#[tokio::test]
async fn a_second_call_within_a_minute_is_429_and_refusals_do_not_count() {
    let r = rig().await;
    assert_eq!(r.list(&r.alice_key).await.0, 200);
    let secs = limited(&r.list(&r.alice_key).await);
    assert!((59..=60).contains(&secs), "{secs}");
    // Another user has their own count.
    assert_eq!(r.list(&r.bob_key).await.0, 200);
    // Retrying early, again and again, never pushes the wait out: a
    // minute after the one answered call, the next is answered.
    for _ in 0..5 {
        limited(&r.list(&r.alice_key).await);
    }
    crate::store::rate_limit_testing::age_hits(&r.store, 60_000);
    assert_eq!(r.list(&r.alice_key).await.0, 200);
    // A user token is not a key: refused before anything is counted.
    let (st, _, b) = r.list(&r.alice).await;
    assert_eq!((st, &b["error"]["type"]), (403, &json!("api_key_required")));
}

#[tokio::test]
async fn the_31st_call_within_an_hour_is_429() {
    let r = rig().await;
    for i in 0..30 {
        let (st, _, b) = r.list(&r.alice_key).await;
        assert_eq!(st, 200, "call {i}: {b}");
        crate::store::rate_limit_testing::age_hits(&r.store, 61_000);
    }
    // The first call is 30 × 61 s old: it leaves the hour in 1770 s.
    let secs = limited(&r.list(&r.alice_key).await);
    assert!((1769..=1770).contains(&secs), "{secs}");
    assert_eq!(r.list(&r.bob_key).await.0, 200, "bob is unaffected");
    crate::store::rate_limit_testing::age_hits(&r.store, 1_770_000);
    assert_eq!(r.list(&r.alice_key).await.0, 200);
}

#[tokio::test]
async fn a_worker_cannot_put_another_workers_list() {
    let r = rig().await;
    let a = r.worker(&r.alice, "a").await;
    r.report(&r.alice, &a, &[("github.com", "acme", "widget")])
        .await;
    let (st, _, b) = r
        .report(&r.bob, &a, &[("github.com", "evil", "fork")])
        .await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (403, &json!("worker_not_owned")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another user"),
        "{b}"
    );
    let (st, _, b) = r.report(&r.bob, &a, &[]).await;
    assert_eq!(st, 403, "nor empty it: {b}");
    // An API key is not a worker.
    let (st, _, b) = r.report(&r.alice_key, &a, &[]).await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (403, &json!("oauth_required")),
        "{b}"
    );
    let (st, _, b) = r.report(&r.alice, "wrk_nope", &[]).await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (404, &json!("unknown_worker")),
        "{b}"
    );
    // Bad reports are 400s naming the entry, and change nothing.
    for (body, says) in [
        (
            json!({"repositories": [{"owner": "acme", "name": "w", "repository": "https://github.com/acme/x"}]}),
            "repositories[0].repository",
        ),
        (
            json!({"repositories": [{"owner": "a/b", "name": "w", "repository": "https://github.com/a/b/w"}]}),
            "repositories[0].owner",
        ),
        (
            json!({"repositories": [{"owner": "acme", "name": "w", "repository": "http://github.com/acme/w"}]}),
            "https",
        ),
        (json!({"repositories": [], "more": 1}), "more"),
    ] {
        let (st, _, b) = r
            .call(
                "PUT",
                &format!("/v1/workers/{a}/repositories"),
                &r.alice,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, 400, "{body}: {b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{body}: {m}");
    }
    // Nobody takes the worker over by registering its triple again.
    let reg = json!({"workspace": "w", "agent_profile": "p", "runtime": "a", "display_name": "a"});
    let (st, _, b) = r.call("POST", "/v1/workers", &r.bob, Some(reg)).await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (403, &json!("worker_not_owned")),
        "{b}"
    );
    let (st, _, _) = r.report(&r.bob, &a, &[("github.com", "bob", "own")]).await;
    assert_eq!(st, 403);
    assert_eq!(
        r.worker(&r.alice, "a").await,
        a,
        "its own user registers it again"
    );
    let (_, _, list) = r.list(&r.alice_key).await;
    assert_eq!(urls(&list), ["https://github.com/acme/widget"]);
}
