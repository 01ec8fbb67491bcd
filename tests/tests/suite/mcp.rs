//! MCP servers end to end: two real MCP servers (the official Python SDK,
//! `tests/python/mcp_server.py`) on loopback, the real control plane and
//! worker, and the fake model provider. The agent version names both
//! servers; the worker's address guard allows only 127.0.0.1, so the far
//! server (127.0.0.2) is refused at session start and its tools are never
//! offered. The near server's `lookup` is `always_allow`, its `write_note`
//! asks (the MCP default): one call approved, one refused. A third server
//! that nobody answers on is left out the same way. The bearer
//! token lives only in the worker config and reaches only the MCP server.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::terminal;
use e2e::{ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "sk-fake-mcp-0123456789";
const TOKEN: &str = "mcp-token-7f3a9c1e5b";

/// An MCP server process, killed when dropped.
struct McpServer {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl McpServer {
    fn start(dir: &Path, name: &str, host: &str, token: &str) -> McpServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pydeps = root.join("target/pydeps");
        assert!(
            pydeps.join("mcp").is_dir(),
            "the MCP Python SDK is not installed in {}: run scripts/setup.sh (it installs tests/python/requirements.txt there)",
            pydeps.display()
        );
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{name}.jsonl"));
        let child = Command::new("python3")
            .arg(root.join("tests/python/mcp_server.py"))
            .args([host, &port.to_string(), token, log.to_str().unwrap()])
            .env("PYTHONPATH", &pydeps)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the MCP server {name} never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        McpServer {
            child,
            log,
            url: format!("http://{host}:{port}/mcp"),
        }
    }

    /// Every line it recorded.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn decisions(v: &Value) -> Vec<Value> {
    v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activity"]["type"] == "policy_decision")
        .map(|a| a["activity"]["record"].clone())
        .collect()
}

fn question_id(v: &Value) -> String {
    v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["activity"]["type"] == "awaiting_input")
        .and_then(|a| a["activity"]["question_id"].as_str())
        .expect("a question id")
        .to_string()
}

fn questions(v: &Value) -> usize {
    v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activity"]["type"] == "awaiting_input")
        .count()
}

fn call(tool: &str, args: Value) -> Step {
    Step::Call(vec![(tool.to_string(), args)])
}

#[test]
fn mcp_tools_are_offered_decided_and_called_with_the_token_kept_from_the_model() {
    let d = tempfile::tempdir().unwrap();
    let a = McpServer::start(d.path(), "a", "127.0.0.1", TOKEN);
    let far = McpServer::start(d.path(), "far", "127.0.0.2", "far-token");
    // A server the policy allows but nobody answers on.
    let gone = format!(
        "http://127.0.0.1:{}/mcp",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let fake = FakeModel::start(
        Wire::Anthropic,
        KEY,
        vec![
            call("mcp__a__lookup", json!({"key": "k1"})),
            call("mcp__a__write_note", json!({"text": "approved-note"})),
            call("mcp__a__write_note", json!({"text": "refused-note"})),
            Step::Text("done with MCP".into()),
        ],
    );
    let key = d.path().join("model.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = d.path().join("mcp.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let origin = a.url.trim_end_matches("/mcp");
    let cfg = format!(
        "\n[agent]\nawait_input_seconds = 60\nawait_poll_ms = 50\n\
         [network]\nallow_cidrs = [\"127.0.0.1/32\"]\n\
         [[mcp.servers]]\nurl = \"{origin}/\"\nsecret = {{ file = {:?} }}\n\
         [[providers]]\nname = \"f\"\napi = \"anthropic\"\nbase_url = {:?}\nmodels = [\"m-mcp\"]\napi_key = {{ file = {:?} }}\n",
        token.display().to_string(),
        fake.base_url,
        key.display().to_string(),
    );
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);
    let (s, b) = cp.post(
        "/v1/sessions",
        &json!({
            "workspace": "w", "agent_profile": "p",
            "agent": {
                "name": "mcp-user", "model": "m-mcp", "enabled_tools": ["Read"],
                "mcp_servers": [{"name": "a", "url": a.url}, {"name": "far", "url": far.url}, {"name": "gone", "url": gone}],
                "mcp_toolsets": {
                    "a": {"configs": {"lookup": {"permission_policy": "always_allow"}}},
                    "far": {"permission_policy": "always_allow"},
                    "gone": {},
                },
            },
            "source": {"title": "use the catalogue"},
        }),
    );
    assert_eq!(s, 200, "{b}");
    let id = b["id"].as_str().unwrap().to_string();

    // write_note asks: nothing reaches the server before a person says so.
    let v = cp.wait_for(&id, 60, |v| v["session"]["state"] == "awaiting_input");
    assert!(
        !a.records().iter().any(|r| r.get("effect").is_some()),
        "write_note ran before approval: {:?}",
        a.records()
    );
    // The person approving sees the server, the tool and its arguments.
    let asked = v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["activity"]["type"] == "awaiting_input")
        .and_then(|a| a["activity"]["question"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        asked.contains("MCP server a")
            && asked.contains("tool write_note")
            && asked.contains(r#"{"text":"approved-note"}"#),
        "{asked}"
    );
    let (s, b) = cp.post(
        &format!("/v1/sessions/{id}/answer"),
        &json!({"approve": true, "question_id": question_id(&v)}),
    );
    assert_eq!(s, 200, "{b}");
    let v = cp.wait_for(&id, 60, |v| {
        v["session"]["state"] == "awaiting_input" && questions(v) == 2
    });
    let (s, b) = cp.post(
        &format!("/v1/sessions/{id}/answer"),
        &json!({"approve": false, "message": "not that one", "question_id": question_id(&v)}),
    );
    assert_eq!(s, 200, "{b}");
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(v["session"]["outcome"], "done with MCP", "{v}");

    // Offered: a's two valid tools; never the far server's, never a tool
    // whose name a model API would refuse.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4, "one request per model turn");
    let tools = fake.tools_of(&reqs[0]);
    assert!(
        tools.contains(&"mcp__a__lookup".to_string())
            && tools.contains(&"mcp__a__write_note".to_string()),
        "{tools:?}"
    );
    assert!(
        !tools.iter().any(|t| t.starts_with("mcp__far")),
        "{tools:?}"
    );
    assert!(!tools.iter().any(|t| t.contains("bad")), "{tools:?}");
    assert!(fake.system_of(&reqs[0]).contains("external MCP servers"));
    // The allowed call's result reached the model; the approved one too;
    // the refused one came back as the refusal.
    let r1 = fake.last_results(&reqs[1]);
    assert!(r1[0].0.contains("value-of-k1"), "{r1:?}");
    let r2 = fake.last_results(&reqs[2]);
    assert!(r2[0].0.contains("noted: approved-note"), "{r2:?}");
    let r3 = fake.last_results(&reqs[3]);
    assert!(
        r3[0].0.contains("refused") && r3[0].0.contains("not that one"),
        "{r3:?}"
    );

    // Every call and every connection is a recorded decision.
    let ds = decisions(&v);
    let of = |kind: &str, tool: &str| -> Vec<&Value> {
        ds.iter()
            .filter(|d| d["action"]["kind"] == kind && d["action"]["tool"] == tool)
            .collect()
    };
    let listing = of("net.connect", "mcp__a");
    assert_eq!(listing.len(), 2, "host then addresses: {ds:#?}");
    assert!(
        listing.iter().all(|d| d["result"] == "allow"),
        "{listing:#?}"
    );
    assert_eq!(listing[1]["action"]["addresses"], json!(["127.0.0.1"]));
    let far_d = of("net.connect", "mcp__far");
    assert!(
        far_d
            .iter()
            .any(|d| d["result"] == "deny" && d["action"]["addresses"] == json!(["127.0.0.2"])),
        "{far_d:#?}"
    );
    let far_deny = far_d.iter().find(|d| d["result"] == "deny").unwrap();
    assert!(
        far_deny["reasons"][0]
            .as_str()
            .unwrap()
            .contains("127.0.0.2 resolves to 127.0.0.2, a loopback"),
        "{far_deny}"
    );
    let progress: Vec<&str> = v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activity"]["type"] == "progress")
        .filter_map(|a| a["activity"]["message"].as_str())
        .collect();
    assert!(
        progress
            .iter()
            .any(|m| m.contains("MCP server far") && m.contains("not allowed by policy")),
        "{progress:?}"
    );
    // Unreachable: left out, said so, the session went on.
    assert!(
        progress.iter().any(
            |m| m.contains("MCP server gone: not connected") && m.contains("connecting failed")
        ),
        "{progress:?}"
    );
    assert!(
        !tools.iter().any(|t| t.starts_with("mcp__gone")),
        "{tools:?}"
    );
    assert!(
        progress.iter().any(|m| m.contains("bad.name")),
        "the dropped tool is named: {progress:?}"
    );
    let lookup = of("mcp.call", "mcp__a__lookup");
    assert_eq!(lookup.len(), 1, "{ds:#?}");
    assert_eq!(lookup[0]["result"], "allow");
    assert_eq!(lookup[0]["action"]["server"], "a");
    assert_eq!(lookup[0]["action"]["url"], a.url.as_str());
    assert_eq!(lookup[0]["action"]["arguments"], json!({"key": "k1"}));
    assert_eq!(of("net.connect", "mcp__a__lookup").len(), 2);
    let notes = of("mcp.call", "mcp__a__write_note");
    // Asked, asked again with the approval; asked and refused.
    assert_eq!(notes.len(), 3, "{ds:#?}");
    assert!(notes.iter().all(|d| d["result"] == "ask"), "{notes:#?}");
    let approved: Vec<&&Value> = notes
        .iter()
        .filter(|d| d["approved_by"].is_string())
        .collect();
    assert_eq!(approved.len(), 1, "{notes:#?}");
    assert_eq!(
        approved[0]["action"]["arguments"],
        json!({"text": "approved-note"})
    );
    // Only the approved call resolved the server's name and connected.
    let resolved: Vec<&Value> = of("net.connect", "mcp__a__write_note")
        .into_iter()
        .filter(|d| d["action"]["resolved"] == true)
        .collect();
    assert_eq!(resolved.len(), 1, "{resolved:#?}");

    // The server got exactly the allowed calls, each with the token.
    let rec = a.records();
    let calls: Vec<(&str, &Value)> = rec
        .iter()
        .filter(|r| r["rpc"] == "tools/call")
        .map(|r| (r["tool"].as_str().unwrap(), &r["arguments"]))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("lookup", &json!({"key": "k1"})),
            ("write_note", &json!({"text": "approved-note"}))
        ],
        "{rec:#?}"
    );
    assert!(
        !rec.iter().any(|r| r.get("unauthorized").is_some()),
        "{rec:#?}"
    );
    assert!(rec.iter().any(|r| r["rpc"] == "tools/list"));
    // The far server was never contacted.
    assert!(far.records().is_empty(), "{:?}", far.records());

    // The token is in no request to the model and in no activity.
    for r in &reqs {
        assert!(
            !r.body.to_string().contains(TOKEN),
            "token sent to the model"
        );
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains(TOKEN)),
            "token in a header to the model"
        );
    }
    assert!(!v.to_string().contains(TOKEN), "token in the session view");
    // Nor in anything the worker or the control plane stored (audit log,
    // conversation, workspace, database).
    let mut stack = vec![d.path().join("w1")];
    let mut files = 0;
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            files += 1;
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token stored in {}",
                p.display()
            );
        }
    }
    assert!(files > 0);
    for name in ["cp.db", "cp.db-wal"] {
        if let Ok(bytes) = std::fs::read(d.path().join(name)) {
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token stored in {name}"
            );
        }
    }
}
