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
    let v = e2e::call_bash(
        &state,
        &ws,
        &cfg,
        &serde_json::json!({ "command": cmd }),
        &[],
    );
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

/// `runner call Bash` in a fresh workspace holding `files`, with `config`
/// as the worker config; the call's output.
fn bash_in(config: &str, files: &[(&str, &str)], command: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    for (name, body) in files {
        std::fs::write(ws.join(name), body).unwrap();
    }
    let cfg = dir.path().join("worker.toml");
    std::fs::write(&cfg, config).unwrap();
    let v = e2e::call_bash(
        &dir.path().join("state"),
        &ws,
        &cfg,
        &serde_json::json!({ "command": command }),
        &[],
    );
    assert_eq!(v["status"], "ok", "{v}");
    v["output"].clone()
}

fn notes(out: &serde_json::Value) -> Vec<String> {
    out["sandbox_notes"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A raw DNS client inside the sandbox: `python3 dnsq.py NAME` asks the
/// resolver resolv.conf names and prints the answer's rcode.
const DNS_CLIENT: &str = r#"import socket, sys
def query(name, qid):
    b = bytearray(qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    for label in name.split("."):
        b += bytes([len(label)]) + label.encode()
    return bytes(b + b"\x00\x00\x01\x00\x01")
server = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(query(sys.argv[1], 0x4242), (server, 53))
d, _ = s.recvfrom(2048)
print("id=%x rcode=%d" % (int.from_bytes(d[:2], "big"), d[3] & 15))
"#;

/// Network off: every lookup fails at once (the sandbox's resolver answers
/// REFUSED, no timeout), and the result's notes name the hosts and the
/// setting that would open the network.
#[test]
fn with_the_network_off_lookups_are_refused_at_once_and_named() {
    let started = std::time::Instant::now();
    let out = bash_in(
        "",
        &[("dnsq.py", DNS_CLIENT)],
        "getent hosts pypi.org; echo getent=$?; \
         python3 -c 'import socket\ntry:\n    socket.getaddrinfo(\"example.com\", 443); print(\"RESOLVED\")\nexcept socket.gaierror as e: print(\"gaierror\", e.errno)'; \
         curl -sS -m 10 https://example.net/ 2>&1; python3 dnsq.py raw-query.test",
    );
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.contains("getent=2\n"), "{out}");
    assert!(stdout.contains("gaierror -3\n"), "{out}");
    assert!(
        stdout.contains("Could not resolve host: example.net"),
        "{out}"
    );
    assert!(stdout.contains("id=4242 rcode=5\n"), "REFUSED: {out}");
    assert!(out["duration_ms"].as_u64().unwrap() < 5000, "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let n = notes(&out);
    assert_eq!(n.len(), 1, "{out}");
    for want in [
        "network is off",
        "`pypi.org`",
        "`example.com`",
        "`example.net`",
        "`raw-query.test`",
        "`network.allow_hosts` in worker.toml",
    ] {
        assert!(n[0].contains(want), "{want}: {out}");
    }
}

/// Many names, long names and malformed packets: the names reported are
/// capped, and the resolver still answers afterwards.
#[test]
fn a_query_flood_is_capped_and_the_resolver_keeps_answering() {
    let flood = r#"import os, random, socket
from dnsq_lib import query
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = ("127.0.0.1", 53)
for i in range(300):
    s.sendto(query("flood-%d.test" % i, i), to)
s.sendto(query(".".join(["a" * 63] * 3 + ["b" * 61]), 1), to)
s.sendto(query(".".join(["c" * 63] * 5), 2), to)
for n in range(300):
    s.sendto(os.urandom(random.randint(0, 600)), to)
for bad in [b"", b"\x00" * 11, query("x", 3)[:14], query("x", 4)[:12] + b"\xc0\x0c\x00\x01\x00\x01", b"\x00\x05\x01\x00\x00\x02" + b"\x00" * 6]:
    s.sendto(bad, to)
s.settimeout(0.3)
try:
    while True:
        s.recvfrom(2048)
except socket.timeout:
    pass
s.settimeout(2)
for attempt in range(3):
    s.sendto(query("after-flood.test", 0x7777), to)
    try:
        while True:
            d, _ = s.recvfrom(2048)
            if d[:2] == b"\x77\x77":
                print("after-flood rcode=%d" % (d[3] & 15))
                raise SystemExit
    except socket.timeout:
        pass
print("no answer")
"#;
    let lib = DNS_CLIENT.split("server =").next().unwrap();
    let out = bash_in(
        "",
        &[("dnsq_lib.py", lib), ("flood.py", flood)],
        "python3 flood.py; getent hosts still-refused.test; echo getent=$?",
    );
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.contains("after-flood rcode=5\n"), "{out}");
    assert!(stdout.contains("getent=2\n"), "{out}");
    let n = notes(&out);
    assert_eq!(n.len(), 1, "{out}");
    assert!(
        n[0].contains("`flood-0.test`") && n[0].contains(" and more"),
        "{out}"
    );
    assert!(
        !n[0].contains("flood-20.test") && n[0].len() < 1500,
        "{out}"
    );
}

/// Network via the proxy: a refused CONNECT's 403 says which host:port and
/// why (body and `Proxy-Status`), and the Bash result has a note for it; a
/// lookup the command makes itself is refused and noted too.
#[test]
fn a_refused_connect_says_why_and_the_result_notes_it() {
    let out = bash_in(
        "[network]\nallow_hosts = [\"127.0.0.2\"]\nallow_cidrs = [\"127.0.0.2/32\"]\n",
        &[],
        "exec 3<>/dev/tcp/127.0.0.1/3128; \
         printf 'CONNECT denied.example:443 HTTP/1.1\\r\\nHost: denied.example:443\\r\\n\\r\\n' >&3; \
         cat <&3; exec 3<&-; \
         curl -sv -m 5 https://refused.example/ 2>&1 | grep -i '^< proxy-status'; \
         getent hosts pypi.org; echo end",
    );
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
    assert!(
        stdout.contains(
            "denied by policy: denied.example:443: denied.example is not on the network allowlist\n"
        ),
        "{out}"
    );
    assert!(
        stdout.contains("< Proxy-Status: runner; error=http_request_denied; details=\"refused.example:443: refused.example is not on the network allowlist\""),
        "{out}"
    );
    let n = notes(&out);
    let proxy = n
        .iter()
        .find(|n| n.starts_with("the network proxy refused"))
        .unwrap_or_else(|| panic!("{out}"));
    for want in [
        "`denied.example:443` (denied.example is not on the network allowlist)",
        "`refused.example:443`",
        "`network.allow_hosts`",
    ] {
        assert!(proxy.contains(want), "{want}: {out}");
    }
    assert!(
        n.iter()
            .any(|n| n.contains("looked up `pypi.org` itself") && n.contains("127.0.0.1:3128")),
        "{out}"
    );
}
