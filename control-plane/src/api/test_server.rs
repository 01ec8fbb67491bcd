//! The API served over real HTTP on loopback, against a store on a real
//! SQLite file in a temporary directory: what the route tests start. Each
//! suite's rig holds one and derefs to it (`r.store`, `r.addr`, `r.http`).

use crate::store::Store;
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running control plane; stopped when dropped.
pub(crate) struct Served {
    /// Holds the database file.
    _dir: tempfile::TempDir,
    /// The store it serves.
    pub(crate) store: Arc<Store>,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// A client for it.
    pub(crate) http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Served {
    /// Opens a store (set up by `configure`) and serves it.
    pub(crate) async fn start(configure: impl FnOnce(Store) -> Store) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(configure(
            Store::open(&dir.path().join("cp.db"), 3).unwrap(),
        ));
        let (listener, addr) = crate::bind("127.0.0.1:0").await.unwrap();
        let router = crate::api::router(store.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Served {
            _dir: dir,
            store,
            addr,
            http: reqwest::Client::new(),
            server,
        }
    }
}

/// `(status, headers, body)` of an answer; a body that is not JSON is a
/// JSON string of its text.
pub(crate) type Answer = (u16, reqwest::header::HeaderMap, serde_json::Value);

impl Served {
    /// `method path` (an absolute path) with `auth` as the `Authorization`
    /// (none when empty) and `body` as JSON.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
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
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, headers, body)
    }

    /// The database file (a second store may open it, as a second process
    /// would).
    pub(crate) fn db_path(&self) -> std::path::PathBuf {
        self._dir.path().join("cp.db")
    }
}

/// The `Authorization` value of an API key sent as Cursor's clients do:
/// Basic, the key as the user name, an empty password.
pub(crate) fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// The `Authorization` value of `user`'s new access token.
pub(crate) fn bearer(store: &Store, user: &str) -> String {
    format!(
        "Bearer {}",
        store
            .issue_tokens(user, crate::auth::RUNNER_CLIENT)
            .unwrap()
            .access_token
    )
}
