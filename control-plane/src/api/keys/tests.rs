//! API keys over real HTTP on loopback, against a store on a real SQLite
//! file: HTTP Basic and Bearer, the 401s of a wrong, revoked or malformed
//! credential, keys at rest only as hashes, self-service create / list /
//! revoke between two users, `/v0/me`, and a file from before keys had
//! owners.

use crate::auth::RUNNER_CLIENT;
use crate::store::Store;
use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// A control plane on a file in a temporary directory, with alice (an
/// email) and bob (none), each signed in.
struct Rig {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    addr: SocketAddr,
    http: reqwest::Client,
    alice: String,
    bob: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("cp.db"), 3).unwrap());
    store
        .add_user("alice", "alice-password", Some("alice@example.com"))
        .unwrap();
    store.add_user("bob", "bob-password", None).unwrap();
    let token = |u: &str| store.issue_tokens(u, RUNNER_CLIENT).unwrap().access_token;
    let (alice, bob) = (token("alice"), token("bob"));
    let (listener, addr) = crate::bind("127.0.0.1:0").await.unwrap();
    let router = crate::api::router(store.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Rig {
        dir,
        store,
        addr,
        http: reqwest::Client::new(),
        alice,
        bob,
        server,
    }
}

fn basic(user_and_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_and_password)
    )
}

impl Rig {
    /// `method path` with this Authorization header (none for `None`) and
    /// an optional JSON body; (status, body).
    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("http://{}{path}", self.addr),
        );
        if let Some(a) = auth {
            req = req.header("Authorization", a);
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

    /// Creates a key as the signed-in user with this access token.
    async fn create(&self, token: &str, name: &str) -> Value {
        let (st, b) = self
            .call(
                "POST",
                "/v1/api-keys",
                Some(&format!("Bearer {token}")),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        b
    }
}

/// The message of an error body: the top-level one on `/v0`, the error
/// object's on `/v1`.
fn message(path: &str, b: &Value) -> String {
    let m = if path.starts_with("/v0/") {
        assert_eq!(b["message"], b["error"]["message"], "{b}");
        assert_eq!(b["error"]["code"], b["error"]["type"], "{b}");
        &b["message"]
    } else {
        &b["error"]["message"]
    };
    m.as_str()
        .unwrap_or_else(|| panic!("no message: {b}"))
        .to_string()
}

#[tokio::test]
async fn basic_with_an_empty_password_and_bearer_both_authenticate_a_key() {
    let r = rig().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let k = r
        .store
        .add_api_key("Production API Key", Some("alice"))
        .unwrap();
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    for auth in [
        basic(&format!("{}:", k.key)),
        format!("Bearer {}", k.key),
        format!("bearer {}", k.key),
    ] {
        let (st, me) = r.call("GET", "/v0/me", Some(&auth), None).await;
        assert_eq!(st, 200, "{auth:.10}: {me}");
        // Exactly the seed's fields.
        let keys: Vec<&String> = me.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiKeyName", "createdAt", "userEmail"], "{me}");
        assert_eq!(me["apiKeyName"], "Production API Key");
        assert_eq!(me["userEmail"], "alice@example.com");
        let at = chrono::DateTime::parse_from_rfc3339(me["createdAt"].as_str().unwrap()).unwrap();
        assert!(before <= at && at <= after, "{at}");
        assert_eq!(me["createdAt"], k.created_at);
        // The same key by the same header on the native API.
        let (st, b) = r.call("GET", "/v1/sessions", Some(&auth), None).await;
        assert_eq!(st, 200, "{b}");
    }
}

#[tokio::test]
async fn wrong_revoked_and_malformed_credentials_are_401_naming_the_problem() {
    let r = rig().await;
    let k = r.store.add_api_key("ci", Some("alice")).unwrap();
    let gone = r.create(&r.alice, "gone").await;
    let gone_key = gone["key"].as_str().unwrap().to_string();
    let (st, _) = r
        .call(
            "DELETE",
            &format!("/v1/api-keys/{}", gone["id"].as_str().unwrap()),
            Some(&format!("Bearer {}", r.alice)),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let wrong = format!("cpk_{}", "A".repeat(43));
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "no credentials"),
        (Some("Bearer".into()), "no token"),
        (Some("Bearer   ".into()), "no token"),
        (
            Some(format!("Token {}", k.key)),
            "must be `Bearer <token>` or `Basic",
        ),
        (Some("Basic !!!not base64".into()), "not base64"),
        (Some(basic(&k.key)), "no `:`"),
        (
            Some(basic(&format!("{}:secret", k.key))),
            "leave the password empty",
        ),
        (
            Some(basic("alice:alice-password")),
            "an API key (cpk_…) as the user name",
        ),
        (Some(format!("Bearer {wrong}")), "API key is not valid"),
        (Some(basic(&format!("{wrong}:"))), "API key is not valid"),
        (Some(format!("Bearer {gone_key}")), "API key is not valid"),
        (Some(basic(&format!("{gone_key}:"))), "API key is not valid"),
        (Some("Bearer cpat_nothing".into()), "token is not valid"),
    ];
    for path in ["/v0/me", "/v1/sessions"] {
        for (auth, says) in &cases {
            let (st, b) = r.call("GET", path, auth.as_deref(), None).await;
            assert_eq!(st, 401, "{path} {auth:?}: {b}");
            assert_eq!(b["error"]["type"], "unauthorized", "{path} {auth:?}: {b}");
            let m = message(path, &b);
            assert!(
                m.contains(says),
                "{path} {auth:?}: {m:?} should say {says:?}"
            );
            // A credential never comes back in an answer.
            assert!(!b.to_string().contains(&k.key) && !b.to_string().contains(&gone_key));
        }
    }
    // The valid key still works: the 401s were about the credentials.
    let (st, _) = r
        .call("GET", "/v0/me", Some(&basic(&format!("{}:", k.key))), None)
        .await;
    assert_eq!(st, 200);
}

/// Every byte the database keeps on disk (the main file and its WAL).
fn disk_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes_and_shown_once() {
    let r = rig().await;
    let made = r.create(&r.alice, "laptop").await;
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("cpk_") && key.len() > 40, "{made}");
    assert!(made["id"].as_str().unwrap().starts_with("key_"), "{made}");
    let admin = r.store.add_api_key("admin-made", Some("bob")).unwrap();
    for k in [&key, &admin.key] {
        let disk = disk_bytes(r.dir.path());
        assert!(!contains(&disk, k), "the key itself is on disk");
        // What is there is its hash: the check above looks in the right
        // bytes.
        assert!(contains(&disk, &crate::auth::secret_hash(k)));
    }
    // The list and every later answer carry no secret.
    let (st, list) = r
        .call(
            "GET",
            "/v1/api-keys",
            Some(&format!("Bearer {}", r.alice)),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(list[0].get("key").is_none(), "{list}");
    assert!(!list.to_string().contains("cpk_"), "{list}");
    // Nor does a Debug print of the one answer that holds it.
    assert!(!format!("{admin:?}").contains(&admin.key));
}

#[tokio::test]
async fn users_create_list_and_revoke_only_their_own_keys() {
    let r = rig().await;
    let (alice, bob) = (format!("Bearer {}", r.alice), format!("Bearer {}", r.bob));
    let one = r.create(&r.alice, "one").await;
    let two = r.create(&r.alice, "two").await;
    let theirs = r.create(&r.bob, "bob's").await;
    let (_, list) = r.call("GET", "/v1/api-keys", Some(&alice), None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["two", "one"], "newest first, only alice's: {list}");
    assert_eq!(list[1]["id"], one["id"]);
    assert_eq!(list[1]["created_at"], one["created_at"]);
    assert!(list[1].get("revoked_at").is_none());
    let (_, list) = r.call("GET", "/v1/api-keys", Some(&bob), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], theirs["id"]);

    // Bob cannot revoke alice's key, nor learn that it exists.
    let one_path = format!("/v1/api-keys/{}", one["id"].as_str().unwrap());
    let (st, b) = r.call("DELETE", &one_path, Some(&bob), None).await;
    assert_eq!(st, 404, "{b}");
    let (st, unknown) = r
        .call("DELETE", "/v1/api-keys/key_nothing", Some(&bob), None)
        .await;
    assert_eq!(st, 404);
    assert_eq!(b["error"]["type"], unknown["error"]["type"]);
    assert!(message("/v1/", &b).contains("GET /v1/api-keys"), "{b}");
    let one_key = basic(&format!("{}:", one["key"].as_str().unwrap()));
    assert_eq!(r.call("GET", "/v0/me", Some(&one_key), None).await.0, 200);

    // Alice revokes it: it stops working at once, the list says when.
    let (st, revoked) = r.call("DELETE", &one_path, Some(&alice), None).await;
    assert_eq!(st, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (st, b) = r.call("GET", "/v0/me", Some(&one_key), None).await;
    assert_eq!(st, 401, "{b}");
    let (st, again) = r.call("DELETE", &one_path, Some(&alice), None).await;
    assert_eq!((st, &again["revoked_at"]), (200, &revoked["revoked_at"]));
    let (_, list) = r.call("GET", "/v1/api-keys", Some(&alice), None).await;
    assert_eq!(list[1]["revoked_at"], revoked["revoked_at"], "{list}");
    assert!(
        list[0].get("revoked_at").is_none(),
        "two still works: {list}"
    );
    let two_key = format!("Bearer {}", two["key"].as_str().unwrap());
    assert_eq!(r.call("GET", "/v0/me", Some(&two_key), None).await.0, 200);

    // A key cannot manage keys; nobody can without credentials.
    for (method, path, body) in [
        ("POST", "/v1/api-keys", Some(json!({"name": "more"}))),
        ("GET", "/v1/api-keys", None),
        ("DELETE", two_path(&two).as_str(), None),
    ] {
        let (st, b) = r.call(method, path, Some(&two_key), body.clone()).await;
        assert_eq!(
            (st, &b["error"]["type"]),
            (403, &json!("oauth_required")),
            "{method} {path}: {b}"
        );
        let (st, _) = r.call(method, path, None, body).await;
        assert_eq!(st, 401, "{method} {path}");
    }
    // Bad bodies change nothing.
    for body in [
        json!({"name": ""}),
        json!({"name": "x", "user": "bob"}),
        json!({}),
    ] {
        let (st, b) = r
            .call("POST", "/v1/api-keys", Some(&alice), Some(body.clone()))
            .await;
        assert_eq!(st, 400, "{body}: {b}");
        assert!(!message("/v1/", &b).is_empty());
    }
    let (_, list) = r.call("GET", "/v1/api-keys", Some(&alice), None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

fn two_path(k: &Value) -> String {
    format!("/v1/api-keys/{}", k["id"].as_str().unwrap())
}

#[tokio::test]
async fn me_needs_a_key_that_belongs_to_a_user() {
    let r = rig().await;
    // A user without an email: null, not a made-up address.
    let b = r.store.add_api_key("bob's", Some("bob")).unwrap();
    let (st, me) = r
        .call("GET", "/v0/me", Some(&basic(&format!("{}:", b.key))), None)
        .await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["userEmail"], Value::Null);
    assert_eq!(me["apiKeyName"], "bob's");
    r.store.set_user_email("bob", "bob@example.com").unwrap();
    let (_, me) = r
        .call("GET", "/v0/me", Some(&basic(&format!("{}:", b.key))), None)
        .await;
    assert_eq!(me["userEmail"], "bob@example.com");

    // A key of nobody's works on /v1 as before; /v0 says how to get one.
    let legacy = r.store.add_api_key("automation", None).unwrap();
    let auth = format!("Bearer {}", legacy.key);
    assert_eq!(
        r.call("GET", "/v1/sessions", Some(&auth), None).await.0,
        200
    );
    let (st, b) = r.call("GET", "/v0/me", Some(&auth), None).await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (403, &json!("key_without_user")),
        "{b}"
    );
    assert!(
        message("/v0/me", &b).contains("api-key-add NAME --user"),
        "{b}"
    );
    // A user token is not a key.
    let (st, b) = r
        .call("GET", "/v0/me", Some(&format!("Bearer {}", r.alice)), None)
        .await;
    assert_eq!(
        (st, &b["error"]["type"]),
        (403, &json!("api_key_required")),
        "{b}"
    );
    assert!(!message("/v0/me", &b).is_empty());
}

#[test]
fn keys_need_an_existing_user_and_users_a_plausible_email() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cp.db"), 3).unwrap();
    let e = store.add_api_key("x", Some("nobody")).unwrap_err();
    assert!(
        matches!(
            e,
            crate::StoreError::NotFound {
                what: crate::Missing::User,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("user-add nobody"), "{e}");
    for bad in ["", "alice", "a@", "@b", "a b@c", "a@b@c", "a@.b", "a@b."] {
        assert!(
            store.add_user("u", "password1", Some(bad)).is_err(),
            "{bad:?}"
        );
        assert!(store.set_user_email("nobody", bad).is_err(), "{bad:?}");
    }
    store
        .add_user("u", "password1", Some("u@example.com"))
        .unwrap();
    assert!(store.set_user_email("nobody", "n@example.com").is_err());
    for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
        assert!(store.add_api_key(bad, Some("u")).is_err(), "{bad:?}");
    }
    store.add_api_key(&"x".repeat(100), Some("u")).unwrap();
}

/// A file written before users had emails and keys had owners: its keys
/// keep working (belonging to nobody), its revoked key stays revoked, its
/// users get an email column, empty.
#[test]
fn a_file_from_before_owned_keys_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let (live, dead) = ("cpk_live-old-key", "cpk_dead-old-key");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
             CREATE TABLE api_keys (hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
             INSERT INTO users VALUES ('carol', 'x', 1000);",
        )
        .unwrap();
        for (k, revoked) in [(live, 0), (dead, 1)] {
            c.execute(
                "INSERT INTO api_keys VALUES (?1, ?2, 1700000000000, ?3)",
                rusqlite::params![crate::auth::secret_hash(k), k, revoked],
            )
            .unwrap();
        }
    }
    let store = Store::open(&path, 3).unwrap();
    let Some(crate::auth::Principal::ApiKey { id, name, user, .. }) =
        store.authenticate(live).unwrap()
    else {
        panic!("the old key no longer works");
    };
    assert!(id.starts_with("key_") && id.len() > 20, "{id}");
    assert_eq!((name.as_str(), user), (live, None));
    let live_id = id;
    assert_eq!(store.authenticate(dead).unwrap(), None);
    let c = rusqlite::Connection::open(&path).unwrap();
    let (ids, revoked_at): (i64, Option<i64>) = c
        .query_row(
            "SELECT COUNT(DISTINCT id), (SELECT revoked_at FROM api_keys WHERE revoked = 1) FROM api_keys",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ids, revoked_at), (2, Some(1_700_000_000_000)));
    drop(c);
    store.set_user_email("carol", "carol@example.com").unwrap();
    let k = store.add_api_key("new", Some("carol")).unwrap();
    let id = match store.authenticate(&k.key).unwrap() {
        Some(crate::auth::Principal::ApiKey { id, .. }) => id,
        other => panic!("{other:?}"),
    };
    let owner = store.key_owner(&id).unwrap().unwrap();
    assert_eq!(owner.email.as_deref(), Some("carol@example.com"));
    // Opening it again changes nothing (the ids stay).
    drop(store);
    let again = Store::open(&path, 3).unwrap();
    assert!(
        matches!(again.authenticate(live).unwrap(), Some(crate::auth::Principal::ApiKey { id, .. }) if id == live_id)
    );
}
