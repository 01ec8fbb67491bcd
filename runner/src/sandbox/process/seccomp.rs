//! The seccomp filter: system calls a sandboxed process never needs and
//! that widen the kernel's attack surface or undo the other layers.
//!
//! EPERM for ptrace and process_vm_*, io_uring, bpf, kexec, the key
//! management calls, perf_event_open, userfaultfd, every mount call (old and
//! new API), pivot_root, unshare, setns, `clone` with any namespace flag, and
//! `socket`/`socketpair` outside AF_UNIX/AF_INET/AF_INET6 (no netlink,
//! packet, vsock or raw families). `clone3` gets ENOSYS instead: its flags
//! live in memory BPF cannot read, and libc falls back to `clone` — which is
//! checked — only on ENOSYS. A foreign architecture's syscall ABI (i386 via
//! `int 0x80`) kills the process.

use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

const CLONE_NEWTIME: u64 = 0x80;

fn arch() -> TargetArch {
    if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    }
}

/// System calls denied outright.
pub(crate) const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
];

fn deny_filter() -> Result<BpfProgram, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in DENIED {
        rules.insert(*nr, vec![]);
    }
    let ne = |v: i32| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, v as u64);
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![
            ne(libc::AF_UNIX)?,
            ne(libc::AF_INET)?,
            ne(libc::AF_INET6)?,
        ])?],
    );
    rules.insert(
        libc::SYS_socketpair,
        vec![SeccompRule::new(vec![ne(libc::AF_UNIX)?])?],
    );
    let ns_bits = [
        libc::CLONE_NEWUSER as u64,
        libc::CLONE_NEWNS as u64,
        libc::CLONE_NEWPID as u64,
        libc::CLONE_NEWNET as u64,
        libc::CLONE_NEWIPC as u64,
        libc::CLONE_NEWUTS as u64,
        libc::CLONE_NEWCGROUP as u64,
        CLONE_NEWTIME,
    ];
    let mut clone_rules = Vec::new();
    for bit in ns_bits {
        clone_rules.push(SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(bit),
            bit,
        )?])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch(),
    )?
    .try_into()
    .map_err(seccompiler::Error::Backend)
}

fn clone3_filter() -> Result<BpfProgram, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(libc::SYS_clone3, vec![]);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )?
    .try_into()
    .map_err(seccompiler::Error::Backend)
}

/// Installs both filters on the calling thread (sets no_new_privs first).
pub(crate) fn install() -> Result<(), seccompiler::Error> {
    apply_filter(&deny_filter()?)?;
    apply_filter(&clone3_filter()?)?;
    Ok(())
}
