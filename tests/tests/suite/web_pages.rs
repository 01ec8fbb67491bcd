//! The web pages in a real headless Chromium (Debian's, installed by
//! scripts/setup.sh) driven by Playwright (tests/python/web_pages.py): a
//! person signs in, reads a session's timeline with a denial and its
//! reason, approves the session's ask from the page and watches it finish,
//! and a title that is an XSS payload shows as text. Set
//! `UPDATE_SCREENSHOTS=1` to write the screenshots into docs/screenshots/.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::{ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const KEY: &str = "sk-fake-0123456789";
const XSS: &str = "<script>alert('xss')</script><img src=x onerror=alert(1)>";

fn provider(dir: &Path, name: &str, fake: &FakeModel, model: &str) -> String {
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "\n[[providers]]\nname = {name:?}\napi = \"openai\"\nbase_url = {:?}\nmodels = [{model:?}]\napi_key = {{ file = {:?} }}\n",
        fake.base_url,
        key.display().to_string()
    )
}

fn call(tool: &str, args: Value) -> Step {
    Step::Call(vec![(tool.to_string(), args)])
}

#[test]
fn a_person_signs_in_sees_a_denial_and_approves_an_ask_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pydeps = root.join("target/pydeps");
    assert!(
        pydeps.join("playwright").is_dir(),
        "Playwright is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
        pydeps.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run scripts/setup.sh (it installs Debian's chromium), or set CHROMIUM"
    );
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    // The session that asks: a fetch the policy denies, a write it asks
    // about (a CI workflow), then, once approved, a pause (so the page is
    // seen moving on) and the end.
    let asks = FakeModel::start(
        Wire::OpenAi,
        KEY,
        vec![
            call(
                "WebFetch",
                json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            ),
            call(
                "Write",
                json!({"path": ".github/workflows/ci.yml", "content": "on: push\n"}),
            ),
            call("Bash", json!({"command": "sleep 2"})),
            Step::Text("CI workflow added".into()),
        ],
    );
    let quiet = FakeModel::start(Wire::OpenAi, KEY, vec![Step::Text("nothing to do".into())]);
    let mut cfg =
        String::from("concurrency = 2\n\n[agent]\nawait_input_seconds = 300\nawait_poll_ms = 50\n");
    cfg.push_str(&provider(d.path(), "asks", &asks, "m-asks"));
    cfg.push_str(&provider(d.path(), "quiet", &quiet, "m-quiet"));
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);
    let tools = ["Read", "Write", "Bash", "WebFetch"];
    let xss = cp.queue_model("m-quiet", &tools, json!({"title": XSS}));
    let ask = cp.queue_model("m-asks", &tools, json!({"title": "add CI"}));
    cp.wait_for(&xss, 60, e2e::terminal);

    let shots = match std::env::var("UPDATE_SCREENSHOTS") {
        Ok(v) if v == "1" => root.join("docs/screenshots"),
        _ => d.path().join("shots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("python3")
        .arg(root.join("tests/python/web_pages.py"))
        .env("PYTHONPATH", &pydeps)
        .env("BASE_URL", &cp.url)
        .env("USER_NAME", e2e::USER)
        .env("PASSWORD", e2e::PASSWORD)
        .env("ASK_SESSION", &ask)
        .env("XSS_SESSION", &xss)
        .env("XSS_TITLE", XSS)
        .env("DENIAL_REASON", "169.254.169.254")
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots)
        .env("FINISH_TIMEOUT", "90")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && last.ends_with(" passed, 0 failed"),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    // What the page did is what the control plane recorded.
    let v = cp.session(&ask);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    // The ask is recorded twice: asked, then approved by the person.
    let asks: Vec<&Value> = v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["activity"]["record"])
        .filter(|r| r["result"] == "ask")
        .collect();
    assert!(
        asks.iter().any(|r| r["approved_by"] == e2e::USER),
        "no approval by {}: {asks:?}",
        e2e::USER
    );
    for f in ["sessions-list.png", "session-page.png"] {
        let png = std::fs::read(shots.join(f)).unwrap();
        assert!(
            png.len() > 10_000 && png.starts_with(b"\x89PNG"),
            "{f}: {} bytes",
            png.len()
        );
    }
}
