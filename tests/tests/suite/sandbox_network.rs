//! Network mode `proxy`: the only way out of the sandbox is the runner's
//! proxy, and every connection through it is its own `net.connect`
//! decision, recorded like any other.

use e2e::*;
use std::io::{Read, Write};
use std::net::TcpListener;

/// A tiny HTTP server on 127.0.0.2 (a loopback address the test config
/// exempts from the address guard), answering every request with a marker.
fn test_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let body = "hello-from-test-server";
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

#[test]
fn only_the_proxy_leads_out_and_each_connection_is_decided() {
    let port = test_server();
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let cfg = dir.path().join("worker.toml");
    std::fs::write(
        &cfg,
        "[network]\nallow_hosts = [\"127.0.0.2\", \"localhost\"]\nallow_cidrs = [\"127.0.0.2/32\"]\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let cmd = format!(
        "curl -sS -m 5 http://127.0.0.2:{port}/plain; echo; \
         curl -sS -m 5 -p http://127.0.0.2:{port}/tunnel; echo; \
         curl -sS -m 5 http://127.0.0.3:{port}/; echo; \
         curl -sS -m 5 http://169.254.169.254/latest/meta-data/; echo; \
         curl -sS -m 5 http://localhost:{port}/; echo; \
         curl -sS -m 3 --noproxy '*' http://127.0.0.2:{port}/direct >/dev/null 2>&1 && echo DIRECT; \
         (echo > /dev/tcp/127.0.0.2/{port}) 2>/dev/null && echo DEVTCP; \
         echo end"
    );
    let out = std::process::Command::new(bin("runner"))
        .args([
            "call",
            "--workspace",
            ws.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "Bash",
        ])
        .arg(serde_json::json!({ "command": cmd }).to_string())
        .env("RUNNER_STATE_DIR", &state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decisions"][0]["confine"]["network"], "proxy", "{v}");
    let stdout = v["output"]["stdout"].as_str().unwrap();
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0], "hello-from-test-server",
        "plain HTTP through the proxy: {v}"
    );
    assert_eq!(
        lines[1], "hello-from-test-server",
        "CONNECT tunnel through the proxy: {v}"
    );
    assert!(
        lines[2].starts_with("denied by policy")
            && lines[2].contains("not on the network allowlist"),
        "{v}"
    );
    assert!(
        lines[3].starts_with("denied by policy") && lines[3].contains("169.254.169.254"),
        "{v}"
    );
    assert!(
        lines[4].starts_with("denied by policy") && lines[4].contains("resolves to 127.0.0.1"),
        "{v}"
    );
    assert!(
        !stdout.contains("DIRECT") && !stdout.contains("DEVTCP"),
        "{v}"
    );
    assert_eq!(lines.last(), Some(&"end"));

    // Every connection the proxy saw is a record in the audit log.
    let log = runner(
        &state,
        &[
            "audit",
            "list",
            state.join("audit.jsonl").to_str().unwrap(),
            "--json",
        ],
    );
    let records: Vec<serde_json::Value> = log
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each connection is decided on its host first (`resolved: false`, before
    // any lookup) and, only if that is allowed, on the addresses it
    // resolved to. An IP literal in a blocked range, or a host off the
    // allowlist, is refused in the first phase and never resolved.
    let net: Vec<(&str, bool, &str)> = records
        .iter()
        .filter(|r| r["action"]["kind"] == "net.connect")
        .map(|r| {
            (
                r["action"]["host"].as_str().unwrap(),
                r["action"]["resolved"].as_bool().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        net,
        vec![
            ("127.0.0.2", false, "allow"),
            ("127.0.0.2", true, "allow"),
            ("127.0.0.2", false, "allow"),
            ("127.0.0.2", true, "allow"),
            ("127.0.0.3", false, "deny"),
            ("169.254.169.254", false, "deny"),
            ("localhost", false, "allow"),
            ("localhost", true, "deny"),
        ],
        "{records:?}"
    );
}

#[test]
fn without_granted_hosts_there_is_no_proxy_at_all() {
    let port = test_server();
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let out = std::process::Command::new(bin("runner"))
        .args(["call", "--workspace", ws.to_str().unwrap(), "Bash"])
        .arg(serde_json::json!({ "command": format!("env | grep -ci proxy; curl -sS -m 3 -x http://127.0.0.1:3128 http://127.0.0.2:{port}/ && echo REACHED; echo end") }).to_string())
        .env("RUNNER_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decisions"][0]["confine"]["network"], "none");
    let stdout = v["output"]["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("0\n"),
        "no proxy variables in mode none: {v}"
    );
    assert!(!stdout.contains("REACHED"), "{v}");
}
