//! Skills and artifacts end to end: a person uploads a skill to the team's
//! registry (multipart, as Qoder's client sends it), an agent of the team
//! names it and enables DeliverArtifacts, and a session queued from the
//! agent pins the skill. The real worker fetches the pinned version under
//! its claim, checks its digest and places it read-only at `/skills`; the
//! model (the fake provider) reads SKILL.md and follows it; Write and Bash
//! cannot change it. What the model leaves in `/data` is collected within
//! the worker's (lowered) limits, each file decided, and is then listed
//! and downloadable from the control plane.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::terminal;
use e2e::{ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

const KEY: &str = "sk-fake-toolset-0123456789";
const BODY_MARK: &str = "HOUSE-STYLE-7";

fn call(tool: &str, args: Value) -> Step {
    Step::Call(vec![(tool.to_string(), args)])
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

/// A multipart body of `files` parts (path, bytes) plus `display_title`.
fn multipart(files: &[(&str, &[u8])], title: &str) -> (String, Vec<u8>) {
    let boundary = "toolset-e2e-boundary-93b1";
    let mut body = Vec::new();
    for (path, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"display_title\"\r\n\r\n{title}\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn send(req: ureq::Request, body: Option<(&str, &[u8])>) -> (u16, Vec<u8>, Vec<(String, String)>) {
    let r = match body {
        Some((ct, b)) => req.set("Content-Type", ct).send_bytes(b),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_string();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).unwrap();
    (status, bytes, headers)
}

#[test]
fn a_pinned_skill_is_read_and_followed_never_changed_and_data_is_delivered_within_limits() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let fake = FakeModel::start(
        Wire::Anthropic,
        KEY,
        vec![
            call("Read", json!({"path": "/skills/release-notes/SKILL.md"})),
            call(
                "Write",
                json!({"path": "/skills/release-notes/SKILL.md", "content": "pwned"}),
            ),
            call(
                "Bash",
                json!({"command": "echo pwned > /skills/release-notes/SKILL.md; rm -f /skills/release-notes/SKILL.md; chmod 777 /skills/release-notes; mv /skills/release-notes /skills/x; head -c 40 /skills/release-notes/SKILL.md; echo; /skills/release-notes/scripts/stamp.sh"}),
            ),
            call(
                "Bash",
                json!({"command": "mkdir -p /data/img && head -c 1500000 /dev/zero > /data/img/big.bin && for i in 1 2 3; do echo $i > /data/n$i.txt; done && ln -s /etc/passwd /data/pw && echo made"}),
            ),
            call(
                "Write",
                json!({"path": "/data/a-notes.md", "content": format!("{BODY_MARK}\n- fixed the parser\n")}),
            ),
            Step::Text("notes written".into()),
        ],
    );
    let key = d.path().join("model.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = format!(
        "\n[artifacts]\nmax_files = 3\nmax_file_mb = 1\nmax_total_mb = 2\n\
         [[providers]]\nname = \"f\"\napi = \"anthropic\"\nbase_url = {:?}\nmodels = [\"m-skills\"]\napi_key = {{ file = {:?} }}\n",
        fake.base_url,
        key.display().to_string(),
    );
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);

    // The skill, uploaded by a person of the team.
    let skill_md = format!(
        "---\nname: release-notes\ndescription: Writes release notes in the house style.\n---\n\n# Release notes\n\nWrite the notes to /data/a-notes.md; its first line is {BODY_MARK}.\n"
    );
    let stamp = b"#!/bin/sh\necho stamped-by-skill\n";
    let (ct, body) = multipart(
        &[
            ("release-notes/SKILL.md", skill_md.as_bytes()),
            ("release-notes/scripts/stamp.sh", stamp),
        ],
        "Release notes",
    );
    let token = cp.token();
    let (s, b, _) = send(
        ureq::post(&format!("{}/api/v1/cloud/skills", cp.url))
            .set("Authorization", &format!("Bearer {token}")),
        Some((&ct, &body)),
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
    let skill: Value = serde_json::from_slice(&b).unwrap();
    let skill_id = skill["id"].as_str().unwrap().to_string();

    // An agent of the team that names it (once the worker has registered
    // the model it serves), and a session queued from it.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cp
        .get("/api/v1/cloud/models")
        .1
        .to_string()
        .contains("m-skills")
    {
        assert!(
            std::time::Instant::now() < until,
            "the worker never registered its model"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (s, agent) = cp.post(
        "/api/v1/cloud/agents",
        &json!({"name": "notes", "model": "m-skills", "system": "You write release notes.",
                "tools": [{"type": "agent_toolset_20260401", "enabled_tools": ["Read", "Write", "Bash", "DeliverArtifacts"]}],
                "skills": [{"type": "custom", "skill_id": skill_id}]}),
    );
    assert_eq!(s, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let (s, b) = cp.post(
        "/v1/sessions",
        &json!({"workspace": "w", "agent_profile": "p", "agent": agent_id,
                "source": {"title": "release notes for 1.2"}}),
    );
    assert_eq!(s, 200, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let pinned = &b["agent"]["pinned_skills"];
    assert_eq!(pinned.as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(pinned[0]["name"], "release-notes");
    assert_eq!(pinned[0]["sha256"].as_str().unwrap().len(), 64);

    let v = cp.wait_for(&id, 90, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let outcome = v["session"]["outcome"].as_str().unwrap();
    assert!(outcome.starts_with("notes written"), "{outcome}");
    assert!(outcome.contains("Delivered 3 artifacts"), "{outcome}");
    for left_out in ["/data/img/big.bin", "/data/n3.txt", "/data/pw"] {
        assert!(
            outcome.contains(left_out),
            "{left_out} named as left out: {outcome}"
        );
    }

    // The system prompt lists the skill (name, description, where); its
    // body is read on demand, and it reached the model through Read.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 6, "one request per model turn");
    let system = fake.system_of(&reqs[0]);
    assert!(
        system.contains("release-notes")
            && system.contains("Writes release notes in the house style.")
            && system.contains("/skills/release-notes/SKILL.md"),
        "{system}"
    );
    assert!(!system.contains(BODY_MARK), "the body is not in the prompt");
    assert!(
        system.contains("/data"),
        "the artifacts directory is described"
    );
    let read = fake.last_results(&reqs[1]);
    assert!(read[0].0.contains(BODY_MARK) && !read[0].1, "{read:?}");
    // Write cannot change it: denied by the policy.
    let write = fake.last_results(&reqs[2]);
    assert!(write[0].0.contains("read-only"), "{write:?}");
    // Nor can Bash: the mount is read-only; the skill still reads as
    // uploaded, and its script runs from there.
    let bash = &fake.last_results(&reqs[3])[0].0;
    assert!(bash.contains("Read-only file system"), "{bash}");
    assert!(
        bash.contains("---\\nname: release-notes") || bash.contains("---\nname: release-notes"),
        "{bash}"
    );
    assert!(bash.contains("stamped-by-skill"), "{bash}");
    assert!(!bash.contains("pwned"), "{bash}");

    // Each delivered file is a decision of its own, with its digest.
    let ds = decisions(&v);
    let delivered: Vec<&Value> = ds
        .iter()
        .filter(|d| {
            d["action"]["kind"] == "workspace.write"
                && d["action"]["operation"] == "artifact.deliver"
        })
        .collect();
    assert_eq!(delivered.len(), 3, "{delivered:#?}");
    assert!(delivered
        .iter()
        .all(|d| d["result"] == "allow" && d["action"]["tool"] == "runner"));
    let denied_write = ds
        .iter()
        .find(|d| {
            d["action"]["kind"] == "fs.write"
                && d["action"]["path"] == "/skills/release-notes/SKILL.md"
        })
        .expect("the Write to /skills was decided");
    assert_eq!(denied_write["result"], "deny", "{denied_write}");

    // Listed and downloadable, with the bytes the model wrote.
    let (s, list) = cp.get(&format!("/v1/sessions/{id}/artifacts"));
    assert_eq!(s, 200, "{list}");
    let paths: Vec<&str> = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/data/a-notes.md", "/data/n1.txt", "/data/n2.txt"],
        "{list}"
    );
    let (s, bytes, headers) = send(
        ureq::get(&format!("{}/v1/sessions/{id}/artifacts/content", cp.url))
            .query("path", "/data/a-notes.md")
            .set("Authorization", &format!("Bearer {token}")),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        bytes,
        format!("{BODY_MARK}\n- fixed the parser\n").as_bytes()
    );
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(
        header("content-disposition").starts_with("attachment"),
        "{headers:?}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    let digest = list["artifacts"][0]["sha256"].as_str().unwrap();
    assert_eq!(
        delivered[0]["action"]["artifact"]["sha256"].as_str(),
        Some(digest)
    );
}
