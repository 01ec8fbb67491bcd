//! Toolchains and environment by config, through the real `runner call
//! Bash` and `runner doctor`: `sandbox.readable_roots` makes a toolchain
//! outside the system roots usable inside the sandbox, `sandbox.env` sets
//! its variables, `[sandbox.git_identity]` lets `git commit` work, and a
//! root or workspace the sandbox user cannot reach is refused with the fix.
//!
//! The toolchain is rustup's own: the one running this test, hard-linked
//! (no copy) into a directory every user can pass — rustup keeps it under
//! `/root`, which is 0700, so the sandbox user could not reach it there.

use e2e::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory outside /tmp (the sandbox never binds roots from there)
/// that every user can pass.
fn open_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let p = std::fs::canonicalize(d.path()).unwrap();
    chmod(&p, 0o755);
    (d, p)
}

/// The runner's state directory, passable by the sandbox user (0711), as
/// the workspaces directory inside it needs.
fn state_dir(base: &Path) -> PathBuf {
    let s = base.join("state");
    std::fs::create_dir_all(&s).unwrap();
    chmod(&s, 0o711);
    s
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let cfg = dir.join("worker.toml");
    std::fs::write(
        &cfg,
        format!("{body}\n[sandbox.limits]\nmemory_mb = 8192\ndefault_timeout_ms = 60000\n"),
    )
    .unwrap();
    cfg
}

/// `runner call Bash` in `ws` under `cfg`: the whole JSON answer.
fn bash(state: &Path, ws: &Path, cfg: &Path, command: &str) -> serde_json::Value {
    let input = serde_json::json!({ "command": command, "timeout_ms": 60000 }).to_string();
    runner(
        state,
        &[
            "call",
            "--workspace",
            ws.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "Bash",
            &input,
        ],
    )
    .json()
}

fn ok_stdout(v: &serde_json::Value) -> String {
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["output"]["exit_code"], 0, "{v}");
    v["output"]["stdout"].as_str().unwrap().to_string()
}

/// rustup's home and the toolchain running this test, hard-linked into
/// `<base>/rustup` (`toolchains/<name>`, `settings.toml`) with the rustup
/// proxies in `<base>/cargo/bin`. Nothing is copied.
fn rustup_farm(base: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc on PATH");
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let name = sysroot.file_name().unwrap().to_str().unwrap().to_string();
    let rustup_bin = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")))
        .map(|d| d.join("rustup"))
        .find(|p| p.is_file())
        .expect("this test needs a rustup-managed toolchain (rustup on PATH or in ~/.cargo/bin)");
    let home = base.join("rustup");
    let tc = home.join("toolchains").join(&name);
    std::fs::create_dir_all(&tc).unwrap();
    for d in ["bin", "lib", "libexec", "etc"] {
        if sysroot.join(d).exists() {
            let st = Command::new("cp")
                .arg("-al")
                .arg(sysroot.join(d))
                .arg(&tc)
                .status()
                .unwrap();
            assert!(
                st.success(),
                "hard-linking {} failed (same filesystem as /var/tmp?)",
                d
            );
        }
    }
    for d in ["update-hashes", "tmp", "downloads"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    std::fs::write(
        home.join("settings.toml"),
        format!("version = \"12\"\ndefault_toolchain = \"{name}\"\nprofile = \"minimal\"\n"),
    )
    .unwrap();
    let bin = base.join("cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::hard_link(&rustup_bin, bin.join("rustup")).unwrap();
    for t in ["cargo", "rustc"] {
        std::os::unix::fs::symlink("rustup", bin.join(t)).unwrap();
    }
    let st = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(base.join("rustup"))
        .arg(base.join("cargo"))
        .status()
        .unwrap();
    assert!(st.success());
    (home, base.join("cargo"))
}

#[test]
fn rustups_cargo_builds_a_crate_inside_the_sandbox_through_a_readable_root_and_env() {
    let (_d, base) = open_dir();
    let (rustup_home, cargo_home) = rustup_farm(&base);
    let ws = base.join("ws");
    std::fs::create_dir(&ws).unwrap();
    let state = state_dir(&base);
    let env = format!(
        "[sandbox.env]\nRUSTUP_HOME = \"{}\"\nPATH = \"{}/bin:/usr/local/bin:/usr/bin:/bin\"\n",
        rustup_home.display(),
        cargo_home.display()
    );
    // Named by its path: the host may have a system cargo in /usr/bin too.
    let proxy = cargo_home.join("bin/cargo");
    let command = format!(
        "echo \"home=$RUSTUP_HOME\"; {} --version && command -v cargo && cargo new -q hello && cd hello && cargo build -q --offline && ./target/debug/hello",
        proxy.display()
    );

    // Without the roots the variables arrive, but the toolchain is not
    // there inside.
    let without = write_config(&base, &env);
    let v = bash(&state, &ws, &without, &command);
    assert_eq!(v["status"], "ok", "{v}");
    assert_ne!(v["output"]["exit_code"], 0, "{v}");
    let out = v["output"]["stdout"].as_str().unwrap();
    assert!(
        out.starts_with(&format!("home={}\n", rustup_home.display())),
        "{v}"
    );
    assert!(!out.contains("cargo 1."), "{v}");

    // With them, rustup's cargo runs and builds (CARGO_HOME left unset: the
    // registry cache goes to $HOME/.cargo, in the writable workspace).
    let with = write_config(
        &base,
        &format!(
            "[sandbox]\nreadable_roots = [\"{}\", \"{}\"]\n{env}",
            rustup_home.display(),
            cargo_home.display()
        ),
    );
    std::fs::remove_dir_all(&ws).unwrap();
    std::fs::create_dir(&ws).unwrap();
    let v = bash(&state, &ws, &with, &command);
    let out = ok_stdout(&v);
    assert!(out.contains("\ncargo 1."), "{v}");
    assert!(out.contains(&format!("\n{}\n", proxy.display())), "{v}");
    assert!(out.ends_with("Hello, world!\n"), "{v}");
    // The policy saw the roots, and granted them.
    let d = &v["decisions"][0];
    let seen = &d["input"]["trusted"]["worker"]["sandbox"];
    assert_eq!(
        seen["readable_roots"],
        serde_json::json!([rustup_home, cargo_home]),
        "{d}"
    );
    assert_eq!(seen["env"]["RUSTUP_HOME"], rustup_home.to_str().unwrap());
    let granted = d["confine"]["readable_roots"].as_array().unwrap();
    assert!(granted.contains(&serde_json::json!(rustup_home)), "{d}");
    // Read-only all the same.
    let v = bash(
        &state,
        &ws,
        &with,
        &format!(
            "touch {}/x 2>/dev/null || echo refused",
            rustup_home.display()
        ),
    );
    assert_eq!(ok_stdout(&v), "refused\n");
    assert!(!rustup_home.join("x").exists());
}

#[test]
fn a_policy_that_leaves_the_roots_out_narrows_the_sandbox() {
    let (_d, base) = open_dir();
    let root = base.join("tool");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("hello"), "#!/bin/sh\necho tool-ran\n").unwrap();
    chmod(&root.join("hello"), 0o755);
    let ws = base.join("ws");
    std::fs::create_dir(&ws).unwrap();
    let cfg = write_config(
        &base,
        &format!("[sandbox]\nreadable_roots = [\"{}\"]\n", root.display()),
    );
    let state = state_dir(&base);
    let run = format!("{}/hello", root.display());
    assert_eq!(ok_stdout(&bash(&state, &ws, &cfg, &run)), "tool-ran\n");
    // The shipped policy, with the operator's roots taken out of the
    // shell confinement.
    let shipped = shipped_policies();
    let mut files: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(&shipped).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            if name == "shell.rego" {
                let before = text.clone();
                text = text.replace(
                    "array.concat(array.concat(system_roots, operator_roots), [workspace_dir])",
                    "array.concat(system_roots, [workspace_dir])",
                );
                assert_ne!(
                    text, before,
                    "shell.rego no longer grants operator_roots this way"
                );
            }
            files.push((name, text));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let dir = policy_dir(&base, "narrow", &refs);
    let narrowed = write_config(
        &base,
        &format!(
            "[policy]\ndirs = [\"{}\"]\nrun_tests_on_load = false\n[sandbox]\nreadable_roots = [\"{}\"]\n",
            dir.display(),
            root.display()
        ),
    );
    let v = bash(&state, &ws, &narrowed, &format!("{run} || echo missing"));
    assert_eq!(ok_stdout(&v), "missing\n", "{v}");
}

#[test]
fn git_commit_inside_the_sandbox_is_by_the_configured_identity() {
    let (_d, base) = open_dir();
    let ws = base.join("ws");
    std::fs::create_dir(&ws).unwrap();
    let state = state_dir(&base);
    let command = "git init -q . && echo hi > f && git add f && git commit -qm first && git log --format='%an <%ae>|%cn <%ce>' && echo \"nosystem=$GIT_CONFIG_NOSYSTEM\"";
    let cfg = write_config(
        &base,
        "[sandbox.git_identity]\nname = \"CI Bot\"\nemail = \"ci-bot@example.com\"\n",
    );
    assert_eq!(
        ok_stdout(&bash(&state, &ws, &cfg, command)),
        "CI Bot <ci-bot@example.com>|CI Bot <ci-bot@example.com>\nnosystem=1\n"
    );
    let ws2 = base.join("ws2");
    std::fs::create_dir(&ws2).unwrap();
    let defaults = write_config(&base, "");
    assert!(ok_stdout(&bash(&state, &ws2, &defaults, command))
        .starts_with("runner agent <agent@runner.invalid>|runner agent <agent@runner.invalid>\n"));
}

#[test]
fn an_unreachable_readable_root_is_refused_with_the_fix_by_doctor_and_by_bash() {
    let (_d, base) = open_dir();
    let closed = base.join("home");
    let root = closed.join(".rustup");
    std::fs::create_dir_all(&root).unwrap();
    chmod(&closed, 0o700);
    let ws = base.join("ws");
    std::fs::create_dir(&ws).unwrap();
    let state = state_dir(&base);
    let cfg = write_config(
        &base,
        &format!("[sandbox]\nreadable_roots = [\"{}\"]\n", root.display()),
    );
    let r = runner(&state, &["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let fail = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAIL  readable root"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(fail.contains(&root.display().to_string()), "{}", r.stdout);
    assert!(
        fail.contains(&format!("chmod o+x {}", closed.display())),
        "{}",
        r.stdout
    );
    assert!(
        fail.contains("/opt/rustup") && fail.contains("RUSTUP_HOME"),
        "{}",
        r.stdout
    );
    let v = bash(&state, &ws, &cfg, "true");
    assert_eq!(v["status"], "error", "{v}");
    let e = v["output"]["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("chmod o+x {}", closed.display())),
        "{e}"
    );

    chmod(&closed, 0o711);
    let r = runner(&state, &["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("PASS  readable root")),
        "{}",
        r.stdout
    );
    assert_eq!(ok_stdout(&bash(&state, &ws, &cfg, "echo ok")), "ok\n");
}

#[test]
fn an_unreachable_workspace_gets_the_advice_from_bash_doctor_and_the_worker() {
    let (_d, base) = open_dir();
    let closed = base.join("private");
    let ws = closed.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    chmod(&closed, 0o700);
    let state = state_dir(&base);
    let cfg = write_config(
        &base,
        &format!(
            "[worker]\ncontrol_plane = \"http://127.0.0.1:9\"\nworkspaces_dir = \"{}/workspaces\"\n",
            closed.display()
        ),
    );
    let advice = format!("chmod o+x {}", closed.display());
    let v = bash(&state, &ws, &cfg, "true");
    assert_eq!(v["status"], "error", "{v}");
    let e = v["output"]["error"].as_str().unwrap();
    assert!(e.contains(&advice) && e.contains("the workspace"), "{e}");
    assert!(!e.contains("Permission denied"), "{e}");

    let r = runner(&state, &["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("FAIL  workspaces dir"), "{}", r.stdout);
    assert!(r.stdout.contains(&advice), "{}", r.stdout);

    // The worker refuses to start, before it needs a sign-in or makes
    // anything.
    let r = runner(&state, &["worker", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("worker.workspaces_dir"), "{}", r.stderr);
    assert!(r.stderr.contains(&advice), "{}", r.stderr);
    assert!(!closed.join("workspaces").exists());
}
