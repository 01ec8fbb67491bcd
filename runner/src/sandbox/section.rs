//! `[sandbox]` of the worker config: owned here so the sandbox needs
//! nothing from the config module above it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// `[sandbox]`: how shell commands are contained.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Outside uid the sandbox's root maps to when the runner runs as root
    /// (a dedicated, unprivileged uid; it is given the workspace).
    #[serde(default = "nobody")]
    pub uid: u32,
    /// Outside gid, likewise.
    #[serde(default = "nobody")]
    pub gid: u32,
    /// Run shell tools even when the kernel does not enforce Landlock.
    /// Every decision record then says so. Off by default: fail closed.
    #[serde(default)]
    pub degraded: bool,
    /// Resource limits of each command.
    #[serde(default)]
    pub limits: crate::sandbox::process::Limits,
    /// Extra read-only (and executable) roots offered to the policy for
    /// shell commands, such as a toolchain outside the system directories
    /// (`/opt/rustup`). The shipped policy grants them; a policy may leave
    /// them out. Absolute, real (no symlink, `.` or `..`), existing
    /// directories, clear of the runner's state and the workspaces.
    #[serde(default)]
    pub readable_roots: Vec<PathBuf>,
    /// Fixed variables every shell command gets (`RUSTUP_HOME`, `PATH`,
    /// …), over the sandbox's own defaults. Not secret by rule: policies
    /// see them and every decision record holds them.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Who commits made inside the sandbox are by.
    #[serde(default)]
    pub git_identity: GitIdentity,
}

/// `[sandbox.git_identity]`: author and committer of commits made inside
/// the sandbox, so `git commit` works there without a gitconfig (the
/// sandbox reads none of the host's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GitIdentity {
    /// `GIT_AUTHOR_NAME` and `GIT_COMMITTER_NAME`.
    #[serde(default = "default_git_name")]
    pub name: String,
    /// `GIT_AUTHOR_EMAIL` and `GIT_COMMITTER_EMAIL`.
    #[serde(default = "default_git_email")]
    pub email: String,
}

fn default_git_name() -> String {
    "runner agent".into()
}

fn default_git_email() -> String {
    "agent@runner.invalid".into()
}

impl Default for GitIdentity {
    fn default() -> Self {
        GitIdentity {
            name: default_git_name(),
            email: default_git_email(),
        }
    }
}

/// Variables the sandbox sets itself, which `sandbox.env` may not
/// override, each with the reason an operator reads.
const SANDBOX_SET: [(&str, &str); 14] = [
    ("HOME", "the sandbox sets HOME to the session's workspace, one of the two places a command may write; point a tool's own variable (CARGO_HOME, PYENV_ROOT, XDG_CACHE_HOME, …) elsewhere instead"),
    ("TMPDIR", "the sandbox sets TMPDIR to its private /tmp, the other place a command may write"),
    ("HTTP_PROXY", PROXY_REASON),
    ("HTTPS_PROXY", PROXY_REASON),
    ("ALL_PROXY", PROXY_REASON),
    ("NO_PROXY", PROXY_REASON),
    ("GIT_AUTHOR_NAME", GIT_REASON),
    ("GIT_AUTHOR_EMAIL", GIT_REASON),
    ("GIT_COMMITTER_NAME", GIT_REASON),
    ("GIT_COMMITTER_EMAIL", GIT_REASON),
    ("GIT_CONFIG_NOSYSTEM", GIT_CONFIG_REASON),
    ("GIT_CONFIG_SYSTEM", GIT_CONFIG_REASON),
    ("GIT_CONFIG_GLOBAL", GIT_CONFIG_REASON),
    ("GIT_CONFIG_PARAMETERS", GIT_CONFIG_REASON),
];

const PROXY_REASON: &str = "the sandbox sets the proxy variables itself when the policy grants network (its one way out is the runner's proxy); grant hosts with network.allow_hosts instead";
const GIT_REASON: &str = "set the identity with [sandbox.git_identity] name and email instead";
const GIT_CONFIG_REASON: &str =
    "the sandbox keeps the host's git configuration out (GIT_CONFIG_NOSYSTEM=1)";

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection {
            uid: nobody(),
            gid: nobody(),
            degraded: false,
            limits: Default::default(),
            readable_roots: Vec::new(),
            env: BTreeMap::new(),
            git_identity: GitIdentity::default(),
        }
    }
}

fn nobody() -> u32 {
    65534
}

impl SandboxSection {
    /// Refuses settings that would void the confinement, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.uid == 0 || self.gid == 0 {
            return Err(format!(
                "sandbox.uid = {} / sandbox.gid = {}: the sandbox's root must map to an unprivileged uid and gid outside (0 would make it the host's root, able to read /etc/shadow and every file root can); use a dedicated uid such as 65534 (nobody)",
                self.uid, self.gid
            ));
        }
        self.limits.validate("sandbox.limits")?;
        for root in &self.readable_roots {
            validate_root(root)?;
        }
        for (name, value) in &self.env {
            validate_env(name, value)?;
        }
        self.git_identity.validate()?;
        Ok(())
    }

    /// Refuses readable roots that overlap a place of the runner's own
    /// (its state directory, the workspaces), in either direction: the
    /// sandbox would read the audit log, the sign-in or other sessions'
    /// workspaces. `places` pairs each place with the key that sets it.
    pub fn validate_roots_against(&self, places: &[(&str, &Path)]) -> Result<(), String> {
        for root in &self.readable_roots {
            for (key, place) in places {
                let place = std::fs::canonicalize(place).unwrap_or_else(|_| place.to_path_buf());
                if root.starts_with(&place) || place.starts_with(root) {
                    return Err(format!(
                        "sandbox.readable_roots entry {} overlaps {key} ({}): the sandbox would read the runner's own files or other sessions' workspaces; name a directory that holds only the toolchain",
                        root.display(),
                        place.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The variables every shell command gets from this section: the
    /// configured `env`, then the git identity.
    pub fn command_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let g = &self.git_identity;
        for (k, v) in [
            ("GIT_AUTHOR_NAME", &g.name),
            ("GIT_AUTHOR_EMAIL", &g.email),
            ("GIT_COMMITTER_NAME", &g.name),
            ("GIT_COMMITTER_EMAIL", &g.email),
        ] {
            env.push((k.to_string(), v.clone()));
        }
        env
    }

    /// What policies see of this section under
    /// `input.trusted.worker.sandbox`: the roots, the variables (not
    /// secret by rule) and the git identity.
    pub fn trusted_view(&self) -> serde_json::Value {
        serde_json::json!({
            "readable_roots": self.readable_roots,
            "env": self.env,
            "git_identity": self.git_identity,
        })
    }
}

fn validate_root(root: &Path) -> Result<(), String> {
    let shown = root.display();
    let key = "sandbox.readable_roots entry";
    if !root.is_absolute() {
        return Err(format!("{key} `{shown}` must be an absolute path"));
    }
    let clean: PathBuf = root.components().collect();
    if root
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
        || clean.as_os_str() != root.as_os_str()
    {
        return Err(format!(
            "{key} `{shown}` must be a clean path (no `.`, `..`, `//` or trailing `/`); write it as {}",
            clean.display()
        ));
    }
    if root == Path::new("/") {
        return Err(format!(
            "{key} `/` would make the whole host readable to every command; name the toolchain's own directory, such as /opt/rustup"
        ));
    }
    if crate::sandbox::process::mounts::never_bound(root) {
        return Err(format!(
            "{key} `{shown}` is in /proc, /dev, /tmp, /run, /var/run or /sys, which the sandbox never binds in (it has its own /tmp, /proc and /dev; /run and /sys hold the host's sockets and controls); move the toolchain to a directory such as /opt"
        ));
    }
    let meta = std::fs::metadata(root).map_err(|e| {
        format!("{key} `{shown}` cannot be used ({e}); create it or remove the entry")
    })?;
    if !meta.is_dir() {
        return Err(format!("{key} `{shown}` is not a directory"));
    }
    match std::fs::canonicalize(root) {
        Ok(real) if real == root => Ok(()),
        Ok(real) => Err(format!(
            "{key} `{shown}` goes through a symlink; name the real directory, {}",
            real.display()
        )),
        Err(e) => Err(format!("{key} `{shown}` cannot be resolved ({e})")),
    }
}

fn validate_env(name: &str, value: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!(
            "sandbox.env `{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    if let Some((_, why)) = SANDBOX_SET
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return Err(format!("sandbox.env `{name}` cannot be set: {why}"));
    }
    if value.contains('\0') {
        return Err(format!(
            "sandbox.env `{name}` contains a NUL byte, which no environment can hold"
        ));
    }
    Ok(())
}

impl GitIdentity {
    fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("sandbox.git_identity.name", &self.name),
            ("sandbox.git_identity.email", &self.email),
        ] {
            if v.trim().is_empty() || v.chars().any(|c| c.is_control() || c == '<' || c == '>') {
                return Err(format!(
                    "{key} = {v:?} must be non-empty, on one line and without `<` or `>` (git refuses such an identity)"
                ));
            }
        }
        if !self.email.contains('@') {
            return Err(format!(
                "sandbox.git_identity.email = {:?} is not an email address; use one such as agent@runner.invalid",
                self.email
            ));
        }
        Ok(())
    }
}
