//! Images over real HTTP on loopback, against a store on a real SQLite
//! file: queued and followed-up images served back byte for byte with
//! their type and never echoed, another session's image a 404, the
//! worker's read under its claim, bad images a 400 naming the field, and
//! the 32 MiB limit of the two routes that take images (1 MiB elsewhere).

use crate::api::test_server::Served;
use crate::auth::RUNNER_CLIENT;
use crate::store::Outcome;
use base64::Engine;
use serde_json::{json, Value};

/// A 1×1 PNG, base64.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A control plane with alice signed in.
struct Rig {
    srv: Served,
    token: String,
}

impl std::ops::Deref for Rig {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.srv
    }
}

async fn rig() -> Rig {
    let srv = Served::start(|s| s).await;
    srv.store.add_user("alice", "alice-password", None).unwrap();
    let token = srv
        .store
        .issue_tokens("alice", RUNNER_CLIENT)
        .unwrap()
        .access_token;
    Rig { srv, token }
}

fn png() -> Value {
    json!({"data": PNG_B64, "dimension": {"width": 1, "height": 1}})
}

fn session(images: Value) -> Value {
    json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"},
           "source": {"prompt": "look", "images": images}})
}

impl Rig {
    /// POSTs raw JSON text; (status, body).
    async fn post(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs; (status, content type, bytes).
    async fn get(&self, path: &str) -> (u16, String, Vec<u8>, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, r.bytes().await.unwrap().to_vec(), headers)
    }

    async fn queue(&self, images: Value) -> Value {
        let (s, b) = self.post("/v1/sessions", session(images).to_string()).await;
        assert_eq!(s, 200, "{b}");
        b
    }
}

fn error(b: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(b).unwrap();
    (
        v["error"]["type"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_queued_image_is_served_byte_for_byte_and_never_echoed() {
    let r = rig().await;
    let s = r.queue(json!([png()])).await;
    let text = s.to_string();
    assert!(!text.contains(PNG_B64), "{text}");
    let img = &s["source"]["images"][0];
    assert_eq!(
        img.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["height", "id", "media_type", "width"]
    );
    assert_eq!(img["media_type"], "image/png");
    let id = s["id"].as_str().unwrap();
    let path = format!(
        "/v1/sessions/{id}/attachments/{}",
        img["id"].as_str().unwrap()
    );
    let (st, ct, bytes, headers) = r.get(&path).await;
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        bytes,
        base64::engine::general_purpose::STANDARD
            .decode(PNG_B64)
            .unwrap()
    );
    // The session as it is read back names the image, nothing more.
    let (_, _, view, _) = r.get(&format!("/v1/sessions/{id}")).await;
    let view = String::from_utf8(view).unwrap();
    assert!(view.contains(img["id"].as_str().unwrap()) && !view.contains(PNG_B64));
    // No credentials, no image.
    let anon = reqwest::get(format!("http://{}{path}", r.addr))
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
}

#[tokio::test]
async fn another_sessions_image_is_a_404() {
    let r = rig().await;
    let a = r.queue(json!([png()])).await;
    let b = r.queue(json!([])).await;
    assert!(
        b["source"].get("images").is_none(),
        "no images, no field: {b}"
    );
    let img = a["source"]["images"][0]["id"].as_str().unwrap();
    for path in [
        format!(
            "/v1/sessions/{}/attachments/{img}",
            b["id"].as_str().unwrap()
        ),
        format!(
            "/v1/sessions/{}/attachments/img_nope",
            a["id"].as_str().unwrap()
        ),
        format!("/v1/sessions/ses_nope/attachments/{img}"),
    ] {
        let (st, ct, body, _) = r.get(&path).await;
        assert_eq!((st, ct.as_str()), (404, "application/json"), "{path}");
        assert_eq!(error(&body).0, "not_found");
    }
}

#[tokio::test]
async fn the_worker_reads_under_a_claim_that_holds() {
    let r = rig().await;
    let s = r.queue(json!([png()])).await;
    let id = s["id"].as_str().unwrap().to_string();
    let img = s["source"]["images"][0]["id"].as_str().unwrap().to_string();
    let w = crate::store::testing::worker_of(&r.store, "r", Some("alice"));
    let c = r.store.claim(&w.worker_id, &id, Some(60)).unwrap();
    let path = |claim: &str| format!("/v1/sessions/{id}/attachments/{img}?claimId={claim}");
    assert_eq!(r.get(&path(c.claim_id.as_str())).await.0, 200);
    r.store
        .finish(
            &id,
            Outcome::Complete,
            protocol::platform::Finish {
                claim_id: c.claim_id.clone(),
                message: "done".into(),
            },
        )
        .unwrap();
    let (st, _, body, _) = r.get(&path(c.claim_id.as_str())).await;
    assert_eq!((st, error(&body).0.as_str()), (409, "claim_invalid"));
    let (st, _, _, _) = r
        .get(&format!("/v1/sessions/{id}/attachments/{img}?claim=x"))
        .await;
    assert_eq!(st, 400, "unknown query fields are refused");
}

#[tokio::test]
async fn a_bad_image_is_a_400_naming_the_field_and_stores_nothing() {
    let r = rig().await;
    let bad = json!({"data": "%%%", "dimension": {"width": 1, "height": 1}});
    let (st, b) = r
        .post("/v1/sessions", session(json!([png(), bad])).to_string())
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error"]["type"], "invalid_request");
    let m = b["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with("source.images[1].data: not valid standard base64"),
        "{m}"
    );
    let (st, b) = r
        .post(
            "/v1/sessions",
            session(json!([{"data": PNG_B64}])).to_string(),
        )
        .await;
    assert_eq!(st, 400, "a missing dimension: {b}");
    assert!(r.store.list(None, 10, None).unwrap().is_empty());
    // A follow-up's images, the same.
    let s = r.queue(json!([])).await;
    let id = s["id"].as_str().unwrap().to_string();
    let w = crate::store::testing::worker_of(&r.store, "r", Some("alice"));
    let c = r.store.claim(&w.worker_id, &id, Some(60)).unwrap();
    r.store
        .finish(
            &id,
            Outcome::Complete,
            protocol::platform::Finish {
                claim_id: c.claim_id,
                message: "done".into(),
            },
        )
        .unwrap();
    let f = json!({"message": "and this", "images": [{"data": PNG_B64, "dimension": {"width": 9000, "height": 1}}]});
    let (st, b) = r
        .post(&format!("/v1/sessions/{id}/follow-up"), f.to_string())
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("images[0].dimension.width: 9000 is outside 1–8192"),
        "{b}"
    );
    let f = json!({"message": "and this", "images": [png()]});
    let (st, b) = r
        .post(&format!("/v1/sessions/{id}/follow-up"), f.to_string())
        .await;
    assert_eq!((st, &b["state"]), (200, &json!("queued")), "{b}");
    assert!(!b.to_string().contains(PNG_B64));
}

#[tokio::test]
async fn image_routes_take_32_mib_and_the_others_1_mib() {
    let r = rig().await;
    // Three images of 3 MiB: over 1 MiB, under 32 MiB — taken.
    let mut big = base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .unwrap();
    big.resize(3 << 20, 0);
    let big = json!({"data": base64::engine::general_purpose::STANDARD.encode(&big), "dimension": {"width": 1, "height": 1}});
    let s = r.queue(json!([big.clone(), big.clone(), big])).await;
    assert_eq!(s["source"]["images"].as_array().unwrap().len(), 3);
    // Over 32 MiB: 413 with the JSON error body, on both routes.
    let huge =
        session(json!([{"data": "A".repeat(33 << 20), "dimension": {"width": 1, "height": 1}}]));
    let id = s["id"].as_str().unwrap();
    for path in [
        "/v1/sessions".to_string(),
        format!("/v1/sessions/{id}/follow-up"),
    ] {
        let (st, b) = r.post(&path, huge.to_string()).await;
        assert_eq!(st, 413, "{path}: {b}");
        assert_eq!(b["error"]["type"], "payload_too_large");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&(32usize << 20).to_string()),
            "{b}"
        );
    }
    // A body without a declared length is cut off at the limit too.
    let (addr, token) = (r.addr, r.token.clone());
    let answer =
        tokio::task::spawn_blocking(move || chunked(addr, &token, "/v1/webhooks", (1 << 20) + 1))
            .await
            .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Elsewhere the limit stays 1 MiB.
    let hook = json!({"url": "https://hooks.example/in", "key": "k".repeat(2 << 20), "event_types": ["*"]});
    let (st, b) = r.post("/v1/webhooks", hook.to_string()).await;
    assert_eq!(st, 413, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&(1usize << 20).to_string()));
}

#[test]
fn the_document_describes_images_in_and_out() {
    let doc = serde_json::to_value(super::super::openapi::document("http://h")).unwrap();
    let schemas = &doc["components"]["schemas"];
    let items = |schema: &str| schemas[schema]["properties"]["images"]["items"]["$ref"].clone();
    assert_eq!(items("NewSource"), "#/components/schemas/ImageInput");
    assert_eq!(items("FollowUp"), "#/components/schemas/ImageInput");
    assert_eq!(items("SourceWork"), "#/components/schemas/ImageRef");
    assert_eq!(items("QueuedFollowUp"), "#/components/schemas/ImageRef");
    assert_eq!(
        schemas["ImageInput"]["required"],
        json!(["data", "dimension"])
    );
    let paths = &doc["paths"];
    for p in ["/v1/sessions", "/v1/sessions/{session}/follow-up"] {
        let d = paths[p]["post"]["responses"]["413"]["description"].to_string();
        assert!(d.contains("32 MiB"), "{p}: {d}");
    }
    let get = &paths["/v1/sessions/{session}/attachments/{image}"]["get"];
    assert!(
        get["responses"]["200"]["content"]["image/png"].is_object(),
        "{get}"
    );
    assert!(get["responses"]["404"].is_object());
}

/// POSTs `n` bytes (spaces) with `Transfer-Encoding: chunked` and no
/// Content-Length on a raw connection, without the final chunk (the
/// server must answer once the limit is passed, not at the end); the
/// answer's head and body.
fn chunked(addr: std::net::SocketAddr, token: &str, path: &str, n: usize) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..n.div_ceil(chunk.len()) {
        write!(c, "{:x}\r\n", chunk.len()).unwrap();
        c.write_all(&chunk).unwrap();
        c.write_all(b"\r\n").unwrap();
    }
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that writes a body over the limit to its end, as most do
/// before reading the answer, gets the 413 rather than a broken pipe: the
/// server reads on (and drops) what it cannot take.
#[tokio::test]
async fn a_body_over_the_limit_is_read_to_its_end_before_the_413() {
    let r = rig().await;
    let (addr, token) = (r.addr, r.token.clone());
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let n = 3usize << 20;
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            c,
            "POST /v1/webhooks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![b' '; 64 << 10];
        for i in 0..n / chunk.len() {
            if let Err(e) = c.write_all(&chunk) {
                return format!("write {i} failed: {e}");
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    assert!(answer.contains("payload_too_large"), "{answer:.300}");
}
