//! The hardened service: the systemd units in examples/ stay within their
//! exposure targets as `systemd-analyze security` rates them (control
//! plane ≤ 3.0, runner ≤ 5.0; BENCHMARKS.md has the figures), and the
//! Debian package (scripts/package-deb.sh) holds what an installation
//! needs, in the places the runner looks, and runs once unpacked.

use e2e::bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The exposure `systemd-analyze security --offline=yes` gives `unit`, and
/// whether it passes `--threshold` at `target` (the tool's scale is ten
/// times the printed level).
fn exposure(unit: &Path, target: f64) -> (f64, bool, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--threshold={}", (target * 10.0).round() as u32))
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let level = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    (level, out.status.success(), text)
}

#[test]
fn the_units_stay_within_their_exposure_targets() {
    if !has("systemd-analyze") {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd); the units' exposure is not checked");
        return;
    }
    for (unit, target) in [("control-plane.service", 3.0), ("runner.service", 5.0)] {
        let path = repo().join("examples").join(unit);
        let (level, ok, text) = exposure(&path, target);
        eprintln!("{unit}: exposure {level} (target ≤ {target})");
        assert!(
            ok && level <= target,
            "{unit}: exposure {level} is above {target}:\n{text}"
        );
    }
    // The check itself can fail: a unit with none of the hardening is far
    // above either target.
    let d = tempfile::tempdir().unwrap();
    let bare = d.path().join("bare.service");
    std::fs::write(&bare, "[Service]\nExecStart=/bin/true\n").unwrap();
    let (level, ok, _) = exposure(&bare, 5.0);
    assert!(!ok && level > 5.0, "an unhardened unit rated {level}");
}

#[test]
fn the_runner_unit_checks_the_host_before_it_starts() {
    let unit = std::fs::read_to_string(repo().join("examples/runner.service")).unwrap();
    let pre = unit
        .lines()
        .find(|l| l.starts_with("ExecStartPre="))
        .expect("an ExecStartPre line");
    assert!(pre.contains("runner doctor"), "{pre}");
    for line in [
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "runner.service lacks {line}"
        );
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn the_debian_package_installs_what_the_service_needs_and_runs_unpacked() {
    if !has("dpkg-deb") {
        eprintln!("SKIPPED: dpkg-deb is not installed; the Debian package is not checked");
        return;
    }
    let runner = bin("runner");
    let bins = runner.parent().unwrap();
    let guests = [bins.join("guest-tools"), bins.join("../guest-tools")]
        .into_iter()
        .find(|g| g.join("Read/tool.wasm").exists())
        .expect("the guest tools: run scripts/build-guests.sh");
    let d = tempfile::tempdir().unwrap();
    let deb = run(Command::new(repo().join("scripts/package-deb.sh"))
        .args(["--profile", "dev", "--out"])
        .arg(d.path())
        .arg("--bins")
        .arg(bins)
        .arg("--guest-tools")
        .arg(&guests));
    let deb = PathBuf::from(deb.lines().last().unwrap().trim());
    assert!(deb.exists(), "{}", deb.display());

    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for field in ["Package: runner", "Architecture: ", "Depends: ", "postinst"] {
        assert!(info.contains(field), "no {field:?} in:\n{info}");
    }
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/lib/runner/runner",
        "./usr/lib/runner/runner-sandbox",
        "./usr/lib/runner/guest-tools/Read/tool.wasm",
        "./usr/lib/runner/guest-tools/Write/tool.toml",
        "./usr/bin/control-plane",
        "./usr/bin/runner -> ../lib/runner/runner",
        "./usr/lib/systemd/system/runner.service",
        "./usr/lib/systemd/system/control-plane.service",
        "./usr/lib/sysusers.d/runner.conf",
        "./usr/share/runner/policies/decision.rego",
        "./usr/share/doc/runner/examples/worker.toml",
    ] {
        assert!(list.contains(path), "{path} is not in the package:\n{list}");
    }
    assert!(
        list.lines().all(|l| l.contains("root/root")),
        "every file is root's"
    );
    assert!(!list.contains("_test.rego"), "policy tests are not shipped");

    // Unpacked, the runner finds its helper and guest tools beside its
    // real path, through the /usr/bin symlink.
    let root = d.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let installed = root.join("usr/bin/runner");
    let version = run(Command::new(&installed).arg("--version"));
    assert!(version.starts_with("runner "), "{version}");
    let tools = run(Command::new(&installed).args(["tools", "list"]));
    for t in ["Read", "Write", "Edit", "Grep", "Bash"] {
        assert!(tools.contains(t), "{t} not offered:\n{tools}");
    }
    let doctor = Command::new(&installed).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("shell sandbox"),
        "doctor did not run the sandbox probe: {text}"
    );
    let users = std::fs::read_to_string(root.join("usr/lib/sysusers.d/runner.conf")).unwrap();
    assert!(
        users.lines().any(|l| l.starts_with("u control-plane ")),
        "{users}"
    );
    if has("systemd-analyze") {
        // Every directive known, every command present in the unpacked tree.
        let units = root.join("usr/lib/systemd/system");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(units.join("control-plane.service"))
            .arg(units.join("runner.service"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        // (Offline, the unpacked tree has no sysinit.target to order the
        // units after; that complaint is the only one allowed.)
        for bad in [
            "Unknown key",
            "Unknown section",
            "Failed to parse",
            "not executable",
        ] {
            assert!(!text.contains(bad), "{bad}: {text}");
        }
    }
}
