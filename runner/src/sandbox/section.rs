//! `[sandbox]` of the worker config: owned here so the sandbox needs
//! nothing from the config module above it.

use serde::Deserialize;

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
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection {
            uid: nobody(),
            gid: nobody(),
            degraded: false,
            limits: Default::default(),
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
        Ok(())
    }
}
