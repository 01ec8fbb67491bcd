//! The file tools, custom tools and WebFetch through the real `runner`
//! binary: `runner call` and `runner tools list`, with a real HTTP server
//! on loopback for WebFetch.

use e2e::{runner, workspace, Run};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn call(state: &Path, ws: &Path, config: Option<&Path>, tool: &str, input: &str) -> Run {
    let mut args = vec!["call", "--workspace", ws.to_str().unwrap()];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    args.extend([tool, input]);
    runner(state, &args)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A config whose module cache is shared by these tests (compiled once).
fn config(dir: &Path, extra: &str) -> PathBuf {
    let cache = repo().join("target/e2e-wasm-cache");
    let p = dir.join("worker.toml");
    std::fs::write(
        &p,
        format!(
            "[tools]\ncache_dir = {:?}\n{extra}",
            cache.display().to_string()
        ),
    )
    .unwrap();
    p
}

#[test]
fn read_write_grep_from_the_cli() {
    let (d, ws) = workspace();
    let cfg = config(d.path(), "");
    let r = call(d.path(), &ws, Some(&cfg), "Read", r#"{"path":"README.md"}"#);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["output"]["content"], "# demo\n");
    assert_eq!(j["decisions"][0]["action"]["kind"], "fs.read");
    let r = call(
        d.path(),
        &ws,
        Some(&cfg),
        "Write",
        r#"{"path":"notes/a.txt","content":"needle\n"}"#,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = call(d.path(), &ws, Some(&cfg), "Grep", r#"{"pattern":"need"}"#);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["output"]["matches"][0]["path"], "notes/a.txt");
    // Denied: exit 3, nothing written.
    let r = call(
        d.path(),
        &ws,
        Some(&cfg),
        "Write",
        r#"{"path":"../x","content":"x"}"#,
    );
    assert_eq!(r.code, 3, "{}", r.stdout);
    // Schema: exit 4, no decision.
    let r = call(
        d.path(),
        &ws,
        Some(&cfg),
        "Read",
        r#"{"path":"README.md","bogus":1}"#,
    );
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert_eq!(r.json()["decisions"], serde_json::json!([]));
}

#[test]
fn custom_tools_are_listed_and_callable() {
    let (d, ws) = workspace();
    let custom = repo().join("target/custom-tools");
    let cfg = config(
        d.path(),
        &format!("dirs = [{:?}]\n", custom.display().to_string()),
    );
    let r = runner(
        d.path(),
        &["tools", "list", "--json", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let by_name = |n: &str| {
        j["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} not listed: {j}"))
    };
    assert_eq!(by_name("WordCount")["source"], "custom");
    assert_eq!(
        by_name("WordCount")["capabilities"],
        serde_json::json!(["fs.read"])
    );
    assert_eq!(by_name("Grep")["source"], "builtin");
    assert_eq!(
        by_name("Read")["input_schema"]["required"],
        serde_json::json!(["path"])
    );
    for n in ["Bash", "Edit", "Glob", "List", "WebFetch", "Write"] {
        by_name(n);
    }
    let r = call(d.path(), &ws, Some(&cfg), "WordCount", r#"{"path":"."}"#);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["output"]["files"], 2);

    // A custom tool asking for fs.write (not granted by the default policy)
    // is refused at load with a message naming what to do.
    let bad = d.path().join("bad-tools/Writer");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(custom.join("WordCount/tool.wasm"), bad.join("tool.wasm")).unwrap();
    let manifest = std::fs::read_to_string(custom.join("WordCount/tool.toml"))
        .unwrap()
        .replace("name = \"WordCount\"", "name = \"Writer\"")
        .replace(
            "capabilities = [\"fs.read\"]",
            "capabilities = [\"fs.read\", \"fs.write\"]",
        );
    std::fs::write(bad.join("tool.toml"), manifest).unwrap();
    for p in [
        d.path().join("bad-tools"),
        bad.clone(),
        bad.join("tool.toml"),
        bad.join("tool.wasm"),
    ] {
        let m = std::fs::metadata(&p).unwrap().permissions().mode();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & !0o022)).unwrap();
    }
    let cfg = config(
        d.path(),
        &format!(
            "dirs = [{:?}]\n",
            d.path().join("bad-tools").display().to_string()
        ),
    );
    let r = runner(
        d.path(),
        &["tools", "list", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("Writer asks for fs.write but the policy grants it only [fs.read]"),
        "{}",
        r.stdout
    );
}

/// A tiny HTTP/1.1 server on `addr`: `/ok` is an HTML page, `/to-denied`
/// redirects to `denied_url`, `/to-ok` redirects to `/ok`.
fn serve(addr: &str, denied_url: String) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind(format!("{addr}:0")).unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let resp = match path.as_str() {
                "/ok" => {
                    let body = "<html><head><title>Hi</title><script>x()</script></head><body><p>hello &amp; welcome</p></body></html>";
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                }
                "/to-ok" => "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                "/to-denied" => format!("HTTP/1.1 302 Found\r\nLocation: {denied_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            };
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    (port, hits)
}

#[test]
fn webfetch_follows_policy_hop_by_hop() {
    let (d, ws) = workspace();
    // The "internet" is 127.0.0.2 (exempt from the address guard, as an
    // on-premise range would be); localhost (127.0.0.1) is not.
    let (lport, local_hits) = serve("127.0.0.1", String::new());
    let (port, _) = serve("127.0.0.2", format!("http://localhost:{lport}/ok"));
    let cfg = config(
        d.path(),
        "[network]\nallow_hosts = [\"127.0.0.2\", \"localhost\"]\nallow_cidrs = [\"127.0.0.2/32\"]\n",
    );
    let fetch = |url: String| {
        call(
            d.path(),
            &ws,
            Some(&cfg),
            "WebFetch",
            &serde_json::json!({"url": url}).to_string(),
        )
    };

    let r = fetch(format!("http://127.0.0.2:{port}/ok"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.json()["output"];
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], "Hi\n\nhello & welcome");

    let r = fetch(format!("http://127.0.0.2:{port}/to-ok"));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["output"]["redirects"].as_array().unwrap().len(), 1);

    // Redirect to a name resolving to 127.0.0.1: stopped at the redirect.
    let r = fetch(format!("http://127.0.0.2:{port}/to-denied"));
    assert_eq!(r.code, 4, "{}", r.stdout);
    let e = r.json()["output"]["error"].as_str().unwrap().to_string();
    assert!(e.contains("was not allowed by policy"), "{e}");
    assert!(e.contains("127.0.0.1"), "{e}");

    // Directly: the name resolves to loopback and is refused. The host
    // (allowlisted) is decided first, unresolved; the addresses second.
    let r = fetch(format!("http://localhost:{lport}/ok"));
    assert_eq!(r.code, 3, "{}", r.stdout);
    let decisions = r.json()["decisions"].as_array().unwrap().clone();
    assert_eq!(decisions.len(), 2, "{}", r.stdout);
    assert_eq!(decisions[0]["action"]["resolved"], false);
    assert_eq!(decisions[0]["action"]["addresses"], serde_json::json!([]));
    assert!(decisions[1]["reasons"].to_string().contains("127.0.0.1"));

    // A host the policy refuses is never resolved: one decision, on the
    // name alone, and no addresses looked up for it.
    let r = fetch(format!("http://not-allowed.invalid:{lport}/ok"));
    assert_eq!(r.code, 3, "{}", r.stdout);
    let decisions = r.json()["decisions"].as_array().unwrap().clone();
    assert_eq!(decisions.len(), 1, "{}", r.stdout);
    assert_eq!(decisions[0]["action"]["resolved"], false);
    assert_eq!(decisions[0]["action"]["addresses"], serde_json::json!([]));
    assert_eq!(
        local_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "loopback server was reached"
    );

    // Both redirect decisions are in the audit log.
    let log = std::fs::read_to_string(d.path().join("audit.jsonl")).unwrap();
    assert!(
        log.lines()
            .filter(|l| l.contains("\"net.connect\""))
            .count()
            >= 5
    );
}
