//! `runner doctor`: can this host run the sandboxes? One line per check,
//! and for every failure the fix. Exits non-zero when the shell sandbox
//! cannot run.

use crate::sandbox::process::{landlock, sandbox_ids, ProcessSandbox, SandboxSpec};
use crate::sandbox::reach::{self, Need, Unreachable};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `runner doctor`.
#[derive(Args)]
pub(super) struct DoctorArgs {
    /// Worker config (for the sandbox uid, degraded mode, readable roots and
    /// workspaces directory).
    #[arg(long)]
    config: Option<PathBuf>,
}

struct Report {
    failed: bool,
}

impl Report {
    fn pass(&mut self, name: &str, detail: &str) {
        println!("PASS  {name:<22} {detail}");
    }
    fn info(&mut self, name: &str, detail: &str) {
        println!("INFO  {name:<22} {detail}");
    }
    fn fail(&mut self, name: &str, detail: &str, fix: &str) {
        self.failed = true;
        println!("FAIL  {name:<22} {detail}\n      fix: {fix}");
    }
    fn unreachable(&mut self, name: &str, e: &Unreachable) {
        let detail = format!("{} {}: {}", e.what, e.path.display(), e.reason);
        self.fail(name, &detail, &e.fix);
    }
}

/// Whether the sandbox user can reach every configured readable root and
/// the workspaces directory (or, before the worker made it, the nearest
/// directory above it that exists).
fn check_reach(r: &mut Report, config: &crate::config::Config, (uid, gid): (u32, u32)) {
    for root in &config.sandbox.readable_roots {
        match reach::check(root, uid, gid, "sandbox.readable_roots entry", Need::Itself) {
            Ok(()) => r.pass(
                "readable root",
                &format!(
                    "{} is readable by the sandbox user (uid {uid})",
                    root.display()
                ),
            ),
            Err(e) => r.unreachable("readable root", &e),
        }
    }
    match crate::wiring::check_workspaces_reachable(config) {
        Ok(()) => r.pass(
            "workspaces dir",
            &format!(
                "{} is reachable by the sandbox user (uid {uid})",
                config.workspaces_dir().display()
            ),
        ),
        Err(e) => r.unreachable("workspaces dir", &e),
    }
}

/// Whether every repository host's token can be read (never printed) and
/// the extra CA file holds certificates: a session should not be the first
/// to find out.
fn check_repositories(r: &mut Report, config: &crate::config::Config) {
    let repos = &config.repositories;
    for h in &repos.hosts {
        match &h.token {
            None => r.info(
                "repository host",
                &format!(
                    "{}: no token (public repositories only, no pull requests)",
                    h.host
                ),
            ),
            Some(t) => match t.resolve(&format!("repositories.hosts {} token", h.host)) {
                Ok(_) => r.pass(
                    "repository host",
                    &format!("{}: its token can be read", h.host),
                ),
                Err(e) => r.fail(
                    "repository host",
                    &e,
                    "point token at a readable env var, a 0600 file or a systemd credential",
                ),
            },
        }
    }
    if let Some(ca) = &repos.ca_file {
        let certs = std::fs::read(ca)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()));
        match certs {
            Ok(c) if !c.is_empty() => r.pass(
                "repository CA",
                &format!("{} holds {} certificate(s)", ca.display(), c.len()),
            ),
            Ok(_) | Err(_) => r.fail(
                "repository CA",
                &format!(
                    "repositories.ca_file {} holds no readable PEM certificate",
                    ca.display()
                ),
                "point repositories.ca_file at a PEM file of CA certificates",
            ),
        }
    }
}

/// Whether the control plane answers over a transport the worker trusts.
/// An untrusted certificate or a clear-text URL off loopback is a
/// configuration error; an unreachable control plane is only reported (it
/// may be down for now, and the worker retries).
fn check_control_plane(r: &mut Report, config: &crate::config::Config) {
    let Some(url) = config.worker.control_plane.as_deref() else {
        return;
    };
    if let Err(e) = crate::auth::check_transport(url) {
        r.fail(
            "control plane",
            &e,
            "give worker.control_plane an https:// URL (plain http only to a loopback address)",
        );
        return;
    }
    let client = match crate::trust::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "control plane",
                &format!("cannot build the HTTP client: {e}"),
                "check worker.ca_file",
            );
            return;
        }
    };
    let probe = format!(
        "{}/.well-known/oauth-authorization-server",
        url.trim_end_matches('/')
    );
    match client.get(&probe).send() {
        Ok(resp) => r.pass(
            "control plane",
            &format!("{url} answers over a trusted transport ({})", resp.status()),
        ),
        Err(e) if crate::trust::untrusted(&e) => r.fail(
            "control plane",
            &crate::trust::describe(&e),
            "set [worker] ca_file to the PEM file of the CA that signed the control plane's certificate",
        ),
        Err(e) => r.info(
            "control plane",
            &format!(
                "{url} is not reachable now ({}); the worker keeps retrying",
                crate::trust::describe(&e)
            ),
        ),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub(super) fn run(a: DoctorArgs) -> anyhow::Result<u8> {
    let config = super::load_config(a.config.as_deref())?;
    let mut r = Report { failed: false };

    let abi = landlock::kernel_abi();
    if abi >= 1 {
        r.pass(
            "landlock",
            &format!("kernel ABI {abi}; the sandbox enforces up to ABI 6"),
        );
    } else if config.sandbox.degraded {
        r.info("landlock", "not available; sandbox.degraded is set, so shell commands run WITHOUT filesystem confinement and every decision record says so");
    } else {
        r.fail(
            "landlock",
            "not available: shell tools will refuse to run",
            "build the kernel with CONFIG_SECURITY_LANDLOCK=y and boot with landlock in lsm= (e.g. lsm=landlock,lockdown,yama,apparmor,bpf); in a container, use a host kernel ≥ 5.13 that has it; or accept degraded mode with sandbox.degraded = true",
        );
    }

    match read("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok()) {
        Some(0) => r.fail(
            "user namespaces",
            "disabled (user.max_user_namespaces = 0)",
            "sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d)",
        ),
        Some(n) => r.pass("user namespaces", &format!("enabled (max {n})")),
        None => r.fail(
            "user namespaces",
            "the kernel has no user namespaces",
            "build the kernel with CONFIG_USER_NS=y",
        ),
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            r.fail(
                "unprivileged userns",
                "kernel.unprivileged_userns_clone = 0",
                "sysctl -w kernel.unprivileged_userns_clone=1, or run the runner as root",
            );
        }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
            r.fail("apparmor userns", "AppArmor restricts unprivileged user namespaces", "add an AppArmor profile for the runner binary with `userns,` (see apparmor.d), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0");
        }
    }

    let status = read("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp_filters:")) {
        r.pass("seccomp", "filters supported");
    } else if status.lines().any(|l| l.starts_with("Seccomp:")) {
        r.pass("seccomp", "supported");
    } else {
        r.fail(
            "seccomp",
            "not supported by this kernel",
            "build the kernel with CONFIG_SECCOMP_FILTER=y",
        );
    }

    match crate::sandbox::process::cgroup::status() {
        Ok(dir) => r.pass(
            "cgroups",
            &format!(
                "v2 delegated at {}: each command's tree is capped at {} MiB and {} processes",
                dir.display(),
                config.sandbox.limits.tree_memory_mb,
                config.sandbox.limits.tree_pids
            ),
        ),
        Err(why) => r.info(
            "cgroups",
            &format!("not used ({why}); without them memory and processes are capped per process (rlimits), not per command tree — a command may use up to memory_mb × processes"),
        ),
    }
    let (uid, gid) = sandbox_ids(config.sandbox.uid, config.sandbox.gid);
    check_reach(&mut r, &config, (uid, gid));
    check_repositories(&mut r, &config);
    check_control_plane(&mut r, &config);
    // The real thing: build the whole sandbox and run a command in it.
    let base = PathBuf::from("/var/tmp");
    let dir = tempfile::Builder::new()
        .prefix("runner-doctor.")
        .tempdir_in(if base.is_dir() {
            &base
        } else {
            std::path::Path::new("/tmp")
        })?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    }
    let ws = std::fs::canonicalize(dir.path())?.join("ws");
    std::fs::create_dir_all(&ws)?;
    let spec = SandboxSpec::system_default(
            "echo sandbox-ok > probe && cat probe && grep -c . /proc/self/status >/dev/null; \
             awk '{print \"outside-uid\", $2}' /proc/self/uid_map; \
             for f in /etc/shadow /etc/gshadow /root; do ls \"$f\" >/dev/null 2>&1 && cat \"$f\" >/dev/null 2>&1 && echo \"readable $f\"; done; \
             for d in /run /var/run /home; do test -e \"$d\" && echo \"visible $d\"; done; true",
            ws.clone(),
            uid,
            gid,
            config.sandbox.limits.clone(),
        )
        .allow_degraded(config.sandbox.degraded);
    match ProcessSandbox::new(super::sandbox_helper()?).run(&spec, Duration::from_secs(20)) {
        Ok(out) if out.exit_code == 0 && out.stdout.lines().next() == Some("sandbox-ok") => {
            r.pass("shell sandbox", &format!("a command ran fully confined in {} ms", out.duration_ms));
            // What the confinement is, seen from inside: not only that it ran.
            let inside_uid = out
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("outside-uid "))
                .and_then(|u| u.trim().parse::<u32>().ok());
            match inside_uid {
                Some(0) => r.fail("sandbox uid", "the sandbox's root is the host's root (uid 0 outside)", "set sandbox.uid and sandbox.gid to a dedicated unprivileged id such as 65534"),
                Some(u) => r.pass("sandbox uid", &format!("the sandbox's root is uid {u} outside")),
                None => r.fail("sandbox uid", "the probe could not read its uid map", "run `runner doctor` again; if it persists, report the output"),
            }
            let exposed: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| l.starts_with("readable ") || l.starts_with("visible "))
                .collect();
            if exposed.is_empty() {
                r.pass("host secrets", "/etc/shadow, /root, /run and /home are out of the sandbox's reach");
            } else {
                r.fail("host secrets", &format!("inside the sandbox: {}", exposed.join(", ")), "do not run the sandbox as the host's root; check sandbox.uid and the policy's readable_roots");
            }
        }
        Ok(out) => r.fail(
            "shell sandbox",
            &format!("the probe command failed (exit {}): {}", out.exit_code, out.stderr.trim()),
            "run `runner doctor` as the service user and read the message above; check that bash is at /bin/bash",
        ),
        Err(e) => r.fail("shell sandbox", &e.to_string(), "fix the failing check above; the message names the step that failed"),
    }

    if r.failed {
        println!("the shell sandbox cannot run on this host as configured");
        Ok(super::EXIT_CHECK_FAILED)
    } else {
        println!("this host can run the shell sandbox");
        Ok(0)
    }
}
