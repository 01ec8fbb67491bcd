//! Probe inputs: normalised input documents covering every action kind,
//! allowed and denied, used to check that the register VM decides exactly
//! as the interpreter before the VM is trusted with decisions.

use serde_json::{json, Value};

fn with_action(action: Value, worker: Value, grants: Value) -> Value {
    json!({
        "action": action,
        "session": {"id": "probe", "attempt": 1, "workspace_dir": "/probe/ws"},
        "trusted": {
            "agent": {"name": "probe", "enabled_tools": ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "List", "WebFetch", "WebSearch"], "grants": grants,
                      "mcp_servers": [{"name": "docs", "url": "https://mcp.example/mcp"}],
                      "mcp_toolsets": {"docs": {"configs": {"search": {"permission_policy": "always_allow"}}}}},
            "worker": worker,
            "platform": {},
        },
        "untrusted": {"title": "t", "description": "d", "comments": ["c"], "prompt": "p"},
    })
}

fn fs(kind: &str, path: &str, inside: bool) -> Value {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    json!({"kind": kind, "tool": "Edit", "path": path, "path_abs": format!("/probe/ws/{path}"),
           "path_requested": path, "in_workspace": inside, "path_components": comps})
}

fn net(host: &str, addr: &str) -> Value {
    json!({"kind": "net.connect", "tool": "WebFetch", "host": host, "port": 443, "scheme": "https",
           "addresses": [addr], "host_is_ip": false})
}

/// The probe documents.
pub fn inputs() -> Vec<Value> {
    let worker = json!({"protected_paths": ["deploy/**", "Makefile"], "hidden_paths": ["secrets/*"],
                        "websearch": {"provider": "searxng", "host": "search.example"},
                        "network": {"allow_hosts": ["*.github.com", "docs.rs"], "deny_hosts": ["bad.github.com"], "allow_cidrs": ["127.0.0.1/32"]}});
    let grants = json!({"workspace_write": ["comment"], "external": ["pull_request.open"], "network": {"allow_hosts": ["pypi.org"]}});
    let none = json!({});
    let mut actions = vec![
        fs("fs.read", "src/main.rs", true),
        fs("fs.read", "/etc/passwd", false),
        fs("fs.read", ".env.local", true),
        fs("fs.read", "certs/tls.pem", true),
        fs("fs.read", "secrets/db", true),
        fs("fs.write", "src/lib.rs", true),
        fs("fs.write", ".git/hooks/pre-commit", true),
        fs("fs.write", "vendor/x/.git/config", true),
        fs("fs.write", ".bashrc", true),
        fs("fs.write", "deploy/prod.yaml", true),
        fs("fs.write", ".", true),
        json!({"kind": "shell.exec", "tool": "Bash", "command": "make test", "cwd": ".", "cwd_in_workspace": true, "network": "none"}),
        json!({"kind": "shell.exec", "tool": "Bash", "command": "ls", "cwd": "/", "cwd_in_workspace": false, "network": "none"}),
        json!({"kind": "shell.exec", "tool": "Bash", "command": " ", "cwd": ".", "cwd_in_workspace": true, "network": "proxy"}),
        net("api.github.com", "140.82.112.6"),
        net("bad.github.com", "140.82.112.7"),
        net("docs.rs", "169.254.169.254"),
        net("localhost", "127.0.0.1"),
        net("pypi.org", "151.101.0.223"),
        net("example.org", "93.184.216.34"),
        json!({"kind": "workspace.write", "tool": "Bash", "operation": "comment"}),
        json!({"kind": "workspace.write", "tool": "Bash", "operation": "status"}),
        json!({"kind": "external", "tool": "Bash", "operation": "git.push"}),
        json!({"kind": "external", "tool": "Bash", "operation": "pull_request.open"}),
        json!({"kind": "mcp.call", "tool": "mcp__docs__search", "server": "docs", "url": "https://mcp.example/mcp",
               "host": "mcp.example", "tool_name": "search", "arguments": {"q": "x"}}),
        json!({"kind": "mcp.call", "tool": "mcp__docs__write", "server": "docs", "url": "https://mcp.example/mcp",
               "host": "mcp.example", "tool_name": "write", "arguments": {}}),
        json!({"kind": "mcp.call", "tool": "mcp__other__x", "server": "other", "url": "https://other.example/",
               "host": "other.example", "tool_name": "x", "arguments": {}}),
        json!({"kind": "net.connect", "tool": "mcp__docs__search", "host": "mcp.example", "port": 443, "scheme": "https",
               "addresses": ["93.184.216.35"], "host_is_ip": false, "resolved": true}),
        // An MCP tool's connection on another port than its server's URL.
        json!({"kind": "net.connect", "tool": "mcp__docs__search", "host": "mcp.example", "port": 22, "scheme": "https",
               "addresses": ["93.184.216.35"], "host_is_ip": false, "resolved": true}),
        json!({"kind": "net.connect", "tool": "mcp__docs", "host": "mcp.example", "port": 443, "scheme": "https",
               "addresses": ["93.184.216.35"], "host_is_ip": false, "resolved": true}),
        net("example.org", "64:ff9b::7f00:1"),
        net("example.org", "2002:a9fe:a9fe::1"),
        net("example.org", "::7f00:1"),
        net("example.org", "2606:2800:220:1::1"),
        json!({"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": "rust regex"}),
        json!({"kind": "web.search", "tool": "WebSearch", "provider": "brave", "query": "rust"}),
        json!({"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": "  "}),
        json!({"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": "q".repeat(401)}),
        json!({"kind": "web.search", "tool": "WebSearch", "provider": "searxng", "query": 7}),
        json!({"kind": "net.connect", "tool": "WebSearch", "host": "127.0.0.2", "port": 8888, "scheme": "http",
               "addresses": ["127.0.0.2"], "host_is_ip": true, "resolved": false}),
        json!({"kind": "net.connect", "tool": "WebSearch", "host": "search.example", "port": 443, "scheme": "https",
               "addresses": ["93.184.216.36"], "host_is_ip": false, "resolved": true}),
        json!({"kind": "workspace.write", "tool": "runner", "operation": "artifact.deliver", "target": "/data/report.md",
               "artifact": {"path": "/data/report.md", "size_bytes": 12, "sha256": "00", "media_type": "text/markdown"}}),
        json!({"kind": "fs.delete", "tool": "Edit", "path": "x"}),
        json!({"kind": "fs.read", "tool": "NotEnabled", "path": "a", "in_workspace": true, "path_components": ["a"]}),
    ];
    let mut out: Vec<Value> = actions
        .iter()
        .flat_map(|a| {
            [
                with_action(a.clone(), worker.clone(), grants.clone()),
                with_action(a.clone(), none.clone(), none.clone()),
            ]
        })
        .collect();
    out.push(json!({}));
    // A permission policy that is neither always_allow nor always_ask.
    let mut typo = with_action(
        json!({"kind": "mcp.call", "tool": "mcp__docs__search", "server": "docs", "url": "https://mcp.example/mcp",
               "host": "mcp.example", "tool_name": "search", "arguments": {}}),
        worker.clone(),
        grants.clone(),
    );
    typo["trusted"]["agent"]["mcp_toolsets"] =
        json!({"docs": {"configs": {"search": {"permission_policy": "always-allow"}}}});
    out.push(typo);
    // The session roots (/skills read-only, /data writable): the same
    // actions in a session that has both, with DeliverArtifacts enabled.
    let root = |kind: &str, tool: &str, root: &str, path: &str, abs: &str| {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        json!({"kind": kind, "tool": tool, "root": root, "path": path, "path_abs": abs,
               "path_requested": path, "in_workspace": false, "path_components": comps})
    };
    let rooted = [
        root(
            "fs.read",
            "Read",
            "skills",
            "/skills/pdf/SKILL.md",
            "/probe/ws.skills/pdf/SKILL.md",
        ),
        root(
            "fs.write",
            "Write",
            "skills",
            "/skills/pdf/SKILL.md",
            "/probe/ws.skills/pdf/SKILL.md",
        ),
        root(
            "fs.read",
            "Read",
            "artifacts",
            "/data/r.md",
            "/probe/ws.data/r.md",
        ),
        root(
            "fs.write",
            "Edit",
            "artifacts",
            "/data/r.md",
            "/probe/ws.data/r.md",
        ),
        root("fs.write", "Write", "artifacts", "/data/x", "/etc/passwd"),
        root(
            "fs.read",
            "Read",
            "",
            "/probe/etc/passwd",
            "/probe/etc/passwd",
        ),
        json!({"kind": "shell.exec", "tool": "Bash", "command": "ls /skills", "cwd": ".", "cwd_in_workspace": true, "network": "none"}),
        json!({"kind": "workspace.write", "tool": "runner", "operation": "artifact.deliver", "target": "/data/r.md",
               "artifact": {"path": "/data/r.md", "size_bytes": 1, "sha256": "a".repeat(64), "media_type": "text/markdown"}}),
        json!({"kind": "workspace.write", "tool": "Write", "operation": "artifact.deliver", "target": "/data/r.md",
               "artifact": {"path": "/data/r.md", "size_bytes": 1, "sha256": "a".repeat(64), "media_type": "text/markdown"}}),
    ];
    for a in rooted {
        for deliver in [true, false] {
            let mut doc = with_action(a.clone(), worker.clone(), grants.clone());
            doc["session"]["skills_dir"] = json!("/probe/ws.skills");
            doc["session"]["artifacts_dir"] = json!("/probe/ws.data");
            if deliver {
                doc["trusted"]["agent"]["enabled_tools"]
                    .as_array_mut()
                    .expect("a list")
                    .push(json!("DeliverArtifacts"));
            }
            out.push(doc);
        }
    }
    actions.clear();
    out
}
