//! `runner doctor` reports what the host can do and fails when the shell
//! sandbox cannot run.

use e2e::*;

#[test]
fn doctor_passes_on_a_host_that_runs_the_sandbox() {
    let d = tempfile::tempdir().unwrap();
    let r = runner(d.path(), &["doctor"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    for check in [
        "landlock",
        "user namespaces",
        "seccomp",
        "shell sandbox",
        "sandbox uid",
        "host secrets",
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with("PASS") && l.contains(check)),
            "{check}: {}",
            r.stdout
        );
    }
}

#[test]
fn doctor_fails_with_a_fix_when_the_sandbox_cannot_run_its_probe() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("worker.toml");
    // One process for the sandbox user: the probe's `cat` cannot fork.
    std::fs::write(&cfg, "[sandbox.limits]\nprocesses = 1\n").unwrap();
    let r = runner(d.path(), &["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("FAIL  shell sandbox"), "{}", r.stdout);
    assert!(r.stdout.contains("fix:"), "{}", r.stdout);
}

#[test]
fn doctor_checks_every_repository_token_without_printing_it() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let token = d.path().join("gh.token");
    std::fs::write(&token, "ghp_doctorSecret42\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = d.path().join("worker.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[repositories.hosts]]\nhost = \"github.com\"\ntoken = {{ file = {:?} }}\n[[repositories.hosts]]\nhost = \"git.example\"\ntoken = {{ env = \"RUNNER_DOCTOR_SURELY_UNSET\" }}\n",
            token.display().to_string()
        ),
    )
    .unwrap();
    let r = runner(d.path(), &["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("PASS  repository host        github.com: its token can be read"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("RUNNER_DOCTOR_SURELY_UNSET is not set"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("ghp_doctorSecret42") && !r.stderr.contains("ghp_doctorSecret42"));
}
