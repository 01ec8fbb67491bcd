//! `sandbox_notes`: what the sandbox did to a command, said in words.
//!
//! When the sandbox is why a command failed, the command only shows the
//! symptom — "Permission denied", a resolution failure, `EBUSY`, a
//! truncated stream, a process killed by SIGXCPU — and nothing says that
//! the sandbox did it, or what would change it. These notes do: each is
//! one sentence from the runner naming what happened and the setting an
//! operator (or the call itself) can change.
//!
//! The notes are the runner's facts, not the command's words. What they
//! take from the command's run — host names it looked up, paths its
//! errors name, hosts the proxy refused — is sanitised ([`shown`]) and
//! capped; a path is named only when it lies in a protected or hidden
//! place or outside the writable roots, so ordinary errors of the command
//! produce no note at all.

use super::proxy::Denied;
use super::spec::SandboxSpec;
use super::{KilledBy, SandboxOutput};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Most paths (or hosts) one note names.
const MAX_NAMED: usize = 5;

/// Longest path, host or reason shown, characters.
const MAX_SHOWN: usize = 200;

/// Most stderr lines looked at.
const MAX_LINES: usize = 20_000;

/// Errors a refused write shows.
const REFUSALS: [&str; 4] = [
    "Permission denied",
    "Read-only file system",
    "Device or resource busy",
    "Operation not permitted",
];

/// Words of error messages that say the refused operation was a write.
const WRITE_WORDS: [&str; 7] = [
    "cannot create",
    "cannot touch",
    "cannot remove",
    "cannot move",
    "cannot make",
    "cannot overwrite",
    "for writing",
];

/// How the operator opens the network, said once for every network note.
const GRANT_HOSTS: &str = "an operator can allow hosts with `network.allow_hosts` in worker.toml (or `grants.network.allow_hosts` in the agent version); connections then go through the runner's proxy, each decided by the policy";

/// Names the command looked up, as the DNS stub reported them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Lookups {
    /// Distinct names, in the order asked.
    pub names: Vec<String>,
    /// More names were asked for than reported.
    pub more: bool,
}

impl Lookups {
    /// The lookups in the helper's status text (`dns NAME` lines), keeping
    /// only names the stub could have written.
    pub(crate) fn from_status(text: &str) -> Self {
        let mut l = Lookups::default();
        for line in text.lines() {
            if line == super::dns_stub::STATUS_MORE {
                l.more = true;
            } else if let Some(name) = line.strip_prefix(super::dns_stub::STATUS_NAME) {
                if super::dns_stub::is_reported_name(name)
                    && !l.names.iter().any(|n| n == name)
                    && l.names.len() < super::dns_stub::MAX_NAMES
                {
                    l.names.push(name.to_string());
                }
            }
        }
        l
    }
}

/// What the notes are drawn from besides the output itself.
pub(crate) struct Run<'a> {
    /// The spec as it ran (its `read_only` are every read-only bind: the
    /// confinement's protected paths and git's control files).
    pub spec: &'a SandboxSpec,
    /// The confinement's own protected paths (workspace-relative).
    pub protected: &'a [PathBuf],
    /// The confinement's hidden-path globs.
    pub hidden: Option<&'a globset::GlobSet>,
    /// The wall-clock limit the command had.
    pub timeout: Duration,
    /// Names the command looked up.
    pub lookups: &'a Lookups,
}

/// The notes for one finished command (empty when the sandbox played no
/// visible part).
pub(crate) fn for_run(run: &Run<'_>, out: &SandboxOutput) -> Vec<String> {
    let mut notes = Vec::new();
    let limits = &run.spec.limits;
    let proxy = run.spec.proxy_socket.is_some();
    let lines: Vec<&str> = out.stderr.lines().take(MAX_LINES).collect();
    let any = |phrases: &[&str]| lines.iter().any(|l| phrases.iter().any(|p| l.contains(p)));

    // Network.
    if !run.lookups.names.is_empty() {
        let names = list(&run.lookups.names, run.lookups.more);
        notes.push(if proxy {
            format!("the command looked up {names} itself, and the sandbox's resolver refused: in this sandbox connections leave only through the runner's proxy at http://127.0.0.1:{} (HTTP_PROXY and HTTPS_PROXY are set), which resolves names itself; use a client that honours those variables", super::proxy::PROXY_PORT)
        } else {
            format!("network is off for this command (the policy granted no hosts): it tried to resolve {names}, and the sandbox's resolver refused every name; {GRANT_HOSTS}")
        });
    }
    if any(&[
        "Network is unreachable",
        "/dev/tcp/",
        "/dev/udp/",
        "connect: Permission denied",
        "Failed to connect to",
    ]) {
        notes.push(if proxy {
            format!("direct connections fail in this sandbox: only the runner's proxy at http://127.0.0.1:{} leads out (HTTP_PROXY and HTTPS_PROXY are set)", super::proxy::PROXY_PORT)
        } else {
            format!("network is off for this command (the policy granted no hosts): direct connections fail, the sandbox has no route out and allows no TCP; {GRANT_HOSTS}")
        });
    }

    // Paths. Inside the workspace a refusal on a protected or hidden path
    // is the sandbox's whatever the tool wrote; outside it a path is named
    // only when the error says a write was refused ("Permission denied"
    // alone is also what reading /etc/shadow gets).
    let refused = paths_in(&lines, &REFUSALS, &run.spec.cwd);
    let write_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            l.contains("Read-only file system")
                || (REFUSALS.iter().any(|p| l.contains(p))
                    && WRITE_WORDS.iter().any(|w| l.contains(w)))
        })
        .collect();
    let written = paths_in(&write_lines, &REFUSALS, &run.spec.cwd);
    let (mut protected, mut git, mut hidden, mut outside) = (vec![], vec![], vec![], vec![]);
    for p in &refused {
        match classify(run, p) {
            Place::Protected(rel) => push_unique(&mut protected, rel),
            Place::GitControl(rel) => push_unique(&mut git, rel),
            Place::Hidden(rel) => push_unique(&mut hidden, rel),
            Place::Outside if written.contains(p) => {
                push_unique(&mut outside, p.display().to_string())
            }
            Place::Outside => {}
            Place::Writable => {}
        }
    }
    if !protected.is_empty() {
        notes.push(format!("{} {} protected: the sandbox keeps {} read-only, so the write was refused; protected paths are the confinement's `read_only_paths` — the built-in list (git hooks and config, shell start-up files) plus `files.protected_paths` in worker.toml, where an operator changes them", list(&protected, false), is_are(&protected), it_them(&protected)));
    }
    if !git.is_empty() {
        notes.push(format!("{} {} git control state (hooks, config, info/ of a repository in the workspace): the sandbox keeps it read-only and puts it back after every command, so nothing a command leaves there runs on the host; git add and git commit still work", list(&git, false), is_are(&git)));
    }
    if !hidden.is_empty() {
        notes.push(format!("{} {} hidden: the sandbox masks secrets (`.env`, keys, `.ssh`, … and `files.hidden_paths` in worker.toml) with an empty read-only stand-in, so a command can neither read nor write {}", list(&hidden, false), is_are(&hidden), it_them(&hidden)));
    }
    if !outside.is_empty() {
        let roots = writable_roots(run.spec);
        notes.push(format!("{} {} outside the places a command may write: the sandbox allows writes only beneath {roots} (the private /tmp holds at most `sandbox.limits.tmp_mb` = {} MiB and is discarded after the command); the rest of the filesystem is read-only or absent — write inside the workspace instead", list(&outside, false), is_are(&outside), limits.tmp_mb));
    }

    // Limits.
    match out.killed_by {
        Some(KilledBy::Timeout) => notes.push(format!("the command was stopped at its wall-clock limit of {} ms: give the call a larger `timeout_ms` (at most {} ms, `sandbox.limits.max_timeout_ms`; without one it is `sandbox.limits.default_timeout_ms` = {} ms), or run less at once", run.timeout.as_millis(), limits.max_timeout_ms, limits.default_timeout_ms)),
        Some(KilledBy::Cancelled) => notes.push("the runner stopped the command: the session was cancelled, lost its claim, or the runner is shutting down".into()),
        _ => {}
    }
    if out.truncated {
        notes.push(format!("output was cut at `sandbox.limits.output_bytes` = {} bytes per stream and the rest dropped: send long output to a file and read the part you need", limits.output_bytes));
    }
    if out.exit_code == 128 + libc::SIGXCPU || any(&["CPU time limit exceeded"]) {
        notes.push(format!("a process used up its CPU time (`sandbox.limits.cpu_seconds` = {} s per process) and was killed with SIGXCPU; an operator can raise `sandbox.limits.cpu_seconds` in worker.toml", limits.cpu_seconds));
    }
    if out.exit_code == 128 + libc::SIGXFSZ || any(&["File size limit exceeded", "File too large"])
    {
        notes.push(format!("a process wrote a file past `sandbox.limits.file_size_mb` = {} MiB (SIGXFSZ / EFBIG); an operator can raise `sandbox.limits.file_size_mb` in worker.toml", limits.file_size_mb));
    }
    if out.out_of_memory {
        notes.push(format!("the command's process tree reached `sandbox.limits.tree_memory_mb` = {} MiB and the kernel killed part of it; an operator can raise `sandbox.limits.tree_memory_mb` in worker.toml", limits.tree_memory_mb));
    }
    if any(&[
        "Cannot allocate memory",
        "MemoryError",
        "memory exhausted",
        "out of memory",
    ]) {
        notes.push(format!("a process may have hit its address-space limit, `sandbox.limits.memory_mb` = {} MiB per process (allocations then fail with ENOMEM); an operator can raise `sandbox.limits.memory_mb` in worker.toml", limits.memory_mb));
    }
    if lines
        .iter()
        .any(|l| l.contains("Resource temporarily unavailable") && l.contains("fork"))
    {
        notes.push(format!("a process could not start another: the sandbox allows `sandbox.limits.processes` = {} processes (and `sandbox.limits.tree_pids` = {} per command where cgroups are delegated); an operator can raise them in worker.toml", limits.processes, limits.tree_pids));
    }
    if any(&["Too many open files"]) {
        notes.push(format!("a process reached `sandbox.limits.open_files` = {} open files; an operator can raise it in worker.toml", limits.open_files));
    }
    if tmp_full(run, &lines) {
        notes.push(format!("the private /tmp is full: it holds at most `sandbox.limits.tmp_mb` = {} MiB; put large files in the workspace, or an operator can raise `sandbox.limits.tmp_mb` in worker.toml", limits.tmp_mb));
    }

    // What the runner put back.
    if !out.removed_protected.is_empty() {
        notes.push(format!("the command created protected entries ({}): the sandbox removed them after it ended, so nothing it planted runs on the host", list(&out.removed_protected, false)));
    }
    if !out.restored_protected.is_empty() {
        notes.push(format!("the command changed or removed protected entries ({}): the sandbox put them back as they were", list(&out.restored_protected, false)));
    }
    notes
}

/// The note for connections the proxy refused during the command.
pub(crate) fn proxy_denied(denied: &[Denied]) -> Option<String> {
    if denied.is_empty() {
        return None;
    }
    let mut each: Vec<String> = Vec::new();
    for d in denied {
        let why = d
            .reasons
            .iter()
            .take(3)
            .map(|r| shown(r))
            .collect::<Vec<_>>()
            .join("; ");
        let one = format!("`{}:{}` ({why})", shown(&d.host), d.port);
        if !each.contains(&one) {
            each.push(one);
        }
    }
    let more = each.len() > MAX_NAMED;
    each.truncate(MAX_NAMED);
    Some(format!(
        "the network proxy refused {}{}; {GRANT_HOSTS}; addresses in loopback, private, link-local and metadata ranges stay refused unless listed in `network.allow_cidrs`",
        each.join(", "),
        if more { " and more" } else { "" }
    ))
}

/// Where a path a refused write names lies.
enum Place {
    /// Beneath one of the confinement's protected paths (this one).
    Protected(String),
    /// Beneath git's control files the guard binds read-only.
    GitControl(String),
    /// A hidden path (masked).
    Hidden(String),
    /// Outside every writable root.
    Outside,
    /// Beneath a writable root, and not protected: not the sandbox's doing.
    Writable,
}

fn classify(run: &Run<'_>, p: &Path) -> Place {
    let spec = run.spec;
    if let Ok(rel) = p.strip_prefix(&spec.workspace) {
        let shown_rel = shown(&rel.display().to_string());
        let under = |roots: &[PathBuf]| roots.iter().any(|r| rel.starts_with(r));
        if !rel.as_os_str().is_empty() {
            if under(run.protected) {
                return Place::Protected(shown_rel);
            }
            if under(&spec.read_only) {
                return Place::GitControl(shown_rel);
            }
            let hidden_glob = run.hidden.is_some_and(|g| {
                rel.ancestors()
                    .any(|a| !a.as_os_str().is_empty() && g.is_match(a))
            });
            if under(&spec.hidden) || hidden_glob {
                return Place::Hidden(shown_rel);
            }
        }
    }
    let in_writable_bind = spec
        .binds
        .iter()
        .any(|b| b.writable && p.starts_with(&b.at));
    if spec.writable.iter().any(|w| p.starts_with(w)) || in_writable_bind {
        Place::Writable
    } else {
        Place::Outside
    }
}

/// The writable roots as a note shows them: the workspace roots and /tmp
/// (not the device nodes).
fn writable_roots(spec: &SandboxSpec) -> String {
    let roots: Vec<String> = spec
        .writable
        .iter()
        .filter(|w| !w.starts_with("/dev"))
        .map(|w| format!("`{}`", shown(&w.display().to_string())))
        .chain(
            spec.binds
                .iter()
                .filter(|b| b.writable)
                .map(|b| format!("`{}`", b.at.display())),
        )
        .collect();
    roots.join(", ")
}

/// "No space left on device" about /tmp, or about no path the workspace
/// holds (a full workspace disk is the host's, not the sandbox's doing).
fn tmp_full(run: &Run<'_>, lines: &[&str]) -> bool {
    let phrase = ["No space left on device"];
    let full: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(phrase[0]))
        .collect();
    if full.is_empty() {
        return false;
    }
    let paths = paths_in(&full, &phrase, &run.spec.cwd);
    paths.is_empty()
        || paths
            .iter()
            .any(|p| p.starts_with("/tmp") && !p.starts_with(&run.spec.workspace))
}

/// The paths the lines with one of `phrases` name: every quoted part
/// (`'…'`, `‘…’`, `"…"`), and else the part before the phrase the way bash
/// and many tools write it (`tool: PATH: Phrase`); made absolute against
/// `cwd` and cleaned lexically.
fn paths_in(lines: &[&str], phrases: &[&str], cwd: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in lines {
        let Some(phrase) = phrases.iter().find(|p| line.contains(*p)) else {
            continue;
        };
        let mut found = quoted(line);
        if found.is_empty() {
            let before = &line[..line.find(phrase).unwrap_or(0)];
            let before = before.trim_end().trim_end_matches(':');
            let seg = before.rsplit(": ").next().unwrap_or("").trim();
            let token = seg.rsplit(' ').next().unwrap_or("");
            if !token.is_empty() {
                found.push(token.to_string());
            }
        }
        for f in found {
            if f.is_empty() || f.len() > 4096 || f.chars().any(char::is_control) {
                continue;
            }
            // Network pseudo-paths of bash, and how coreutils name the
            // standard streams, are no files.
            if f.starts_with("/dev/tcp/")
                || f.starts_with("/dev/udp/")
                || ["standard input", "standard output", "standard error"].contains(&f.as_str())
            {
                continue;
            }
            let p = clean(&cwd.join(&f));
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [('\'', '\''), ('‘', '’'), ('"', '"')] {
        let mut rest = line;
        while let Some(i) = rest.find(open) {
            let after = &rest[i + open.len_utf8()..];
            let Some(j) = after.find(close) else { break };
            out.push(after[..j].to_string());
            rest = &after[j + close.len_utf8()..];
        }
    }
    out
}

/// `p` without `.` and `..` (lexically: the sandbox's paths are what the
/// command wrote, not something to resolve on the host).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Text taken from the run as a note shows it: control characters and
/// backticks replaced, at most [`MAX_SHOWN`] characters.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() || c == '`' { '?' } else { c })
        .collect();
    if s.chars().count() > MAX_SHOWN {
        out.push('…');
    }
    out
}

/// At most [`MAX_NAMED`] items, each in backticks; "and more" past that.
fn list(items: &[String], more: bool) -> String {
    let shown_items: Vec<String> = items
        .iter()
        .take(MAX_NAMED)
        .map(|i| format!("`{}`", shown(i)))
        .collect();
    let more = more || items.len() > MAX_NAMED;
    format!(
        "{}{}",
        shown_items.join(", "),
        if more { " and more" } else { "" }
    )
}

fn is_are(items: &[String]) -> &'static str {
    if items.len() == 1 {
        "is"
    } else {
        "are"
    }
}

fn it_them(items: &[String]) -> &'static str {
    if items.len() == 1 {
        "it"
    } else {
        "them"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::process::Limits;

    fn spec() -> SandboxSpec {
        let ws = PathBuf::from("/srv/ws");
        let mut s = SandboxSpec::system_default("true", ws.clone(), 1000, 1000, Limits::default());
        s.read_only = vec![PathBuf::from(".bashrc"), PathBuf::from(".git/config")];
        s.hidden = vec![PathBuf::from(".env")];
        s
    }

    fn output(stderr: &str, exit_code: i32) -> SandboxOutput {
        SandboxOutput {
            exit_code,
            stdout: String::new(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 1,
            spawn: None,
            killed_by: None,
            out_of_memory: false,
            removed_protected: vec![],
            restored_protected: vec![],
            sandbox_notes: vec![],
        }
    }

    fn notes(stderr: &str, exit_code: i32, lookups: &Lookups) -> Vec<String> {
        let spec = spec();
        let protected = [PathBuf::from(".bashrc")];
        let run = Run {
            spec: &spec,
            protected: &protected,
            hidden: None,
            timeout: Duration::from_secs(1),
            lookups,
        };
        for_run(&run, &output(stderr, exit_code))
    }

    #[test]
    fn ordinary_failures_get_no_note() {
        let none = Lookups::default();
        assert!(notes("", 0, &none).is_empty());
        assert!(notes(
            "ls: cannot access 'x': No such file or directory\n",
            2,
            &none
        )
        .is_empty());
        // Permission denied inside the workspace, on a path nothing protects.
        assert!(notes("bash: line 1: ./build.sh: Permission denied\n", 126, &none).is_empty());
        assert!(notes(
            "touch: cannot touch '/tmp/x': Permission denied\n",
            1,
            &none
        )
        .is_empty());
        // A read refused outside the workspace is no write.
        assert!(notes("cat: /etc/shadow: Permission denied\n", 1, &none).is_empty());
    }

    /// A writable session root (`/data`) is a place a command may write:
    /// a refusal there (a fifo, a device) is not "outside", and the list of
    /// writable places names it.
    #[test]
    fn a_writable_bind_is_no_outside_place() {
        let mut spec = spec();
        spec.binds.push(crate::sandbox::process::Bind {
            host: PathBuf::from("/srv/ws.data"),
            at: PathBuf::from("/data"),
            writable: true,
            limit_mb: 0,
        });
        let lookups = Lookups::default();
        let run = Run {
            spec: &spec,
            protected: &[],
            hidden: None,
            timeout: Duration::from_secs(1),
            lookups: &lookups,
        };
        let fifo = for_run(
            &run,
            &output(
                "mkfifo: cannot create fifo '/data/ff': Operation not permitted\n",
                1,
            ),
        );
        assert!(fifo.iter().all(|n| !n.contains("outside")), "{fifo:?}");
        let etc = for_run(
            &run,
            &output(
                "mkdir: cannot create directory '/etc/x': Permission denied\n",
                1,
            ),
        );
        assert!(etc[0].contains("`/data`"), "{etc:?}");
    }

    #[test]
    fn refused_writes_name_the_path_and_the_setting() {
        let none = Lookups::default();
        let n = notes(
            "bash: line 1: .bashrc: Read-only file system\nbash: line 1: .git/config: Read-only file system\nbash: .env: Read-only file system\nmv: cannot move '/srv/ws/.git/config' to 'x': Device or resource busy\nbash: line 1: ../escape: Read-only file system\nmkdir: cannot create directory '/etc/x': Permission denied\ncat: /etc/shadow: Permission denied\n",
            1,
            &none,
        );
        let all = n.join("\n");
        assert!(
            n[0].starts_with("`.bashrc` is protected") && n[0].contains("files.protected_paths"),
            "{all}"
        );
        assert!(
            n[1].starts_with("`.git/config` is git control state"),
            "{all}"
        );
        assert!(
            n[2].starts_with("`.env` is hidden") && n[2].contains("files.hidden_paths"),
            "{all}"
        );
        assert!(
            n[3].starts_with("`/srv/escape`, `/etc/x` are outside")
                && n[3].contains("`/srv/ws`, `/tmp`"),
            "{all}"
        );
        assert_eq!(n.len(), 4, "{all}");
    }

    #[test]
    fn network_notes_name_the_hosts_and_the_key() {
        let l = Lookups::from_status(
            "dns pypi.org\nerror? no\ndns bad name\ndns pypi.org\ndns example.com\ndns-more\n",
        );
        assert_eq!(l.names, vec!["pypi.org", "example.com"]);
        assert!(l.more);
        let n = notes("getent failed\n", 2, &l);
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].contains("`pypi.org`, `example.com` and more")
                && n[0].contains("network.allow_hosts"),
            "{n:?}"
        );
        let n = notes(
            "bash: connect: Network is unreachable\n",
            1,
            &Lookups::default(),
        );
        assert!(n[0].contains("direct connections fail"), "{n:?}");
    }

    #[test]
    fn limits_name_their_keys() {
        let none = Lookups::default();
        let n = notes(
            "bash: line 1:  7 CPU time limit exceeded (core dumped) ./spin\n",
            152,
            &none,
        );
        assert!(n[0].contains("sandbox.limits.cpu_seconds"), "{n:?}");
        let n = notes(
            "bash: fork: retry: Resource temporarily unavailable\n",
            254,
            &none,
        );
        assert!(n[0].contains("sandbox.limits.processes"), "{n:?}");
        let n = notes(
            "cp: error writing '/tmp/big': No space left on device\n",
            1,
            &none,
        );
        assert!(n[0].contains("sandbox.limits.tmp_mb"), "{n:?}");
        let n = notes(
            "head: error writing 'standard output': No space left on device\n",
            1,
            &none,
        );
        assert!(n[0].contains("sandbox.limits.tmp_mb"), "{n:?}");
        let n = notes(
            "cp: error writing '/srv/ws/big': No space left on device\n",
            1,
            &none,
        );
        assert!(n.is_empty(), "{n:?}");
        let n = notes("", 128 + libc::SIGXFSZ, &none);
        assert!(n[0].contains("sandbox.limits.file_size_mb"), "{n:?}");
    }

    #[test]
    fn proxy_denials_are_one_capped_note() {
        assert_eq!(proxy_denied(&[]), None);
        let d = |h: &str| Denied {
            host: h.into(),
            port: 443,
            reasons: vec![format!("{h} is not on the network allowlist\n`x`")],
        };
        let many: Vec<Denied> = (0..8).map(|i| d(&format!("h{i}.test"))).collect();
        let n = proxy_denied(&many).unwrap();
        assert!(n.starts_with("the network proxy refused `h0.test:443` (h0.test is not on the network allowlist??x?)"), "{n}");
        assert!(
            n.contains(" and more;") && !n.contains("h5.test") && n.contains("network.allow_hosts"),
            "{n}"
        );
    }
}
