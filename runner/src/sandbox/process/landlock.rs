//! Landlock: the filesystem (and TCP) view of the sandboxed process.
//!
//! Read + execute beneath the confinement's readable roots, read-write
//! beneath its writable roots (the workspace and the private /tmp), nothing
//! else — and no TCP bind or connect at all but to the proxy port in mode
//! `proxy`, so even a socket that reaches an interface finds nothing it may
//! open. Applied at the best ABI the
//! kernel offers (best effort up to [`TARGET_ABI`]); a kernel that enforces
//! nothing is an error the caller refuses to run under, unless the operator
//! chose degraded mode.

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::PathBuf;

/// The newest ABI this code was tested with (ABI 6 adds signal and abstract
/// Unix socket scoping).
pub(crate) const TARGET_ABI: ABI = ABI::V6;

/// How much of the ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enforcement {
    /// Every right we handle is enforced.
    Full,
    /// The kernel is older than [`TARGET_ABI`]: some rights are not enforced.
    Partial,
    /// Landlock is not enforced at all.
    None,
}

/// The kernel's Landlock ABI version, or a negative errno when Landlock is
/// absent or disabled.
pub(crate) fn kernel_abi() -> i64 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only queries the version.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    }
}

/// Everything beneath a writable root except creating FIFOs and device
/// nodes: no named pipe or device special file is ever made in a workspace.
fn writable_access(abi: ABI) -> landlock::BitFlags<AccessFs> {
    AccessFs::from_all(abi) & !(AccessFs::MakeFifo | AccessFs::MakeChar | AccessFs::MakeBlock)
}

/// Restricts the calling thread (and everything it execs) to `readable`
/// and `writable`, and forbids TCP bind and connect — except connecting to
/// `proxy_port` when given.
pub(crate) fn restrict_self(
    readable: &[PathBuf],
    writable: &[PathBuf],
    proxy_port: Option<u16>,
) -> Result<Enforcement, landlock::RulesetError> {
    let abi = TARGET_ABI;
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(readable, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, writable_access(abi)))?;
    if let Some(port) = proxy_port {
        created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
    }
    let status = created.restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        RulesetStatus::NotEnforced => Enforcement::None,
    })
}
