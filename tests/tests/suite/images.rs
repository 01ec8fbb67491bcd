//! Images end to end: the real `control-plane` and `runner worker`
//! binaries and the fake OpenAI-compatible provider (`e2e::fake_model`),
//! which records every request body. An image queued with the work, and
//! one sent with a follow-up, reach a model configured with
//! `images = true` as `image_url` content parts carrying exactly the bytes
//! sent; a model without it reads a note instead; the stored session and
//! conversation name the images and never carry their bytes.

use base64::Engine;
use e2e::fake_model::{FakeModel, Recorded, Step, Wire};
use e2e::{terminal, ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const KEY: &str = "sk-fake-images-0123";
/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A 1×1 GIF.
const GIF: &str = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/// A `[[providers]]` entry for `fake` serving `model` (its key in a 0600
/// file), with `extra` keys.
fn provider(dir: &Path, fake: &FakeModel, model: &str, extra: &str) -> String {
    let key = dir.join(format!("{model}.key"));
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "\n[[providers]]\nname = {model:?}\napi = \"openai\"\nbase_url = {:?}\nmodels = [{model:?}]\napi_key = {{ file = {:?} }}\n{extra}\n",
        fake.base_url,
        key.display().to_string()
    )
}

fn image(data: &str) -> Value {
    json!({"data": data, "dimension": {"width": 1, "height": 1}})
}

/// The bytes of every `image_url` data URL in the user turns of a
/// request, with their media types, in order.
fn data_urls(r: &Recorded) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for m in r.body["messages"].as_array().unwrap() {
        if m["role"] != "user" {
            continue;
        }
        for part in m["content"].as_array().into_iter().flatten() {
            if part["type"] != "image_url" {
                continue;
            }
            let url = part["image_url"]["url"].as_str().unwrap();
            let (head, b64) = url
                .strip_prefix("data:")
                .and_then(|u| u.split_once(";base64,"))
                .unwrap_or_else(|| panic!("not a base64 data URL: {url:.60}"));
            out.push((
                head.to_string(),
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            ));
        }
    }
    out
}

fn bytes(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn images_reach_a_vision_model_and_others_read_a_note() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let vision = FakeModel::start(
        Wire::OpenAi,
        KEY,
        vec![
            Step::Text("a red dot".into()),
            Step::Text("a dot and a square".into()),
        ],
    );
    let plain = FakeModel::start(Wire::OpenAi, KEY, vec![Step::Text("no image".into())]);
    let cfg = format!(
        "{}{}",
        provider(d.path(), &vision, "vision", "images = true"),
        provider(d.path(), &plain, "plain", "")
    );
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);

    // Queued with the work: the model sees exactly the bytes sent.
    let id = cp.queue_model(
        "vision",
        &["Read"],
        json!({"prompt": "what is in the picture?", "images": [image(PNG)]}),
    );
    let v = cp.wait_for(&id, 90, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(v["session"]["outcome"], "a red dot");
    let img = v["session"]["source"]["images"][0].clone();
    assert_eq!(img["media_type"], "image/png", "{v}");
    assert!(!v.to_string().contains(PNG), "the session echoes no bytes");
    let reqs = vision.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(data_urls(&reqs[0]), vec![("image/png".into(), bytes(PNG))]);
    let user = &reqs[0].body["messages"][1]["content"];
    assert_eq!(user[0]["type"], "text", "text first: {user}");
    assert!(user[0]["text"]
        .as_str()
        .unwrap()
        .contains("what is in the picture?"));
    // The stored conversation keeps the reference, not the bytes.
    let (s, conv) = cp.get(&format!("/v1/sessions/{id}/conversation"));
    assert_eq!(s, 200, "{conv}");
    assert!(!conv.to_string().contains(PNG));
    assert_eq!(conv[0]["message"]["images"][0], img, "{conv}");

    // A follow-up's image reaches the next run, after the first one.
    let (s, b) = cp.post(
        &format!("/v1/sessions/{id}/follow-up"),
        &json!({"message": "and this one?", "images": [image(GIF)]}),
    );
    assert_eq!(s, 200, "{b}");
    assert!(!b.to_string().contains(GIF));
    let v = cp.wait_for(&id, 90, |v| {
        terminal(v) && v["session"]["outcome"] == "a dot and a square"
    });
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let reqs = vision.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        data_urls(&reqs[1]),
        vec![
            ("image/png".into(), bytes(PNG)),
            ("image/gif".into(), bytes(GIF))
        ]
    );
    let (_, conv) = cp.get(&format!("/v1/sessions/{id}/conversation"));
    assert!(!conv.to_string().contains(GIF));

    // A model without `images = true` is told, and sent no bytes.
    let id = cp.queue_model(
        "plain",
        &["Read"],
        json!({"prompt": "describe it (plain-5e1c)", "images": [image(PNG), image(GIF)]}),
    );
    let v = cp.wait_for(&id, 90, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let reqs = plain.requests();
    assert_eq!(reqs.len(), 1);
    let text = plain.user_text(&reqs[0]);
    assert!(text.contains("plain-5e1c"), "{text}");
    assert!(
        text.contains("(2 images were attached; this model does not take images)"),
        "{text}"
    );
    let body = reqs[0].body.to_string();
    assert!(!body.contains("image_url") && !body.contains(PNG) && !body.contains(GIF));
}

#[test]
fn a_bad_image_is_refused_before_anything_is_queued() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let (s, b) = cp.post(
        "/v1/sessions",
        &json!({"workspace": "w", "agent_profile": "p", "agent": {"name": "a", "model": "m"},
                "source": {"prompt": "p", "images": [image(PNG), image("not base64")]}}),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("source.images[1].data: not valid standard base64"),
        "{b}"
    );
    let (s, list) = cp.get("/v1/sessions");
    assert_eq!((s, list), (200, json!([])));
}
