//! Dropping what the sandboxed process could use to regain power: every
//! capability (bounding, ambient, effective, permitted, inheritable) and
//! resource headroom (rlimits).

use super::spec::Limits;
use nix::sys::resource::{setrlimit, Resource};

/// Drops every capability of the calling thread. The bounding set goes
/// first, while CAP_SETPCAP is still held.
pub(crate) fn drop_all_capabilities() -> std::io::Result<()> {
    let last: i32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63);
    // SAFETY: prctl/capset with constant arguments and local buffers.
    unsafe {
        for c in 0..=last {
            if libc::prctl(libc::PR_CAPBSET_DROP, c, 0, 0, 0) != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Applies the rlimits (soft = hard, so the process cannot raise them —
/// but for CPU time, whose hard limit is one second above: at the soft
/// limit the kernel sends SIGXCPU, which says what happened, where a hard
/// limit equal to it would send a bare SIGKILL).
pub(crate) fn apply_limits(l: &Limits) -> nix::Result<()> {
    let mb = 1024 * 1024;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(
        Resource::RLIMIT_CPU,
        l.cpu_seconds,
        l.cpu_seconds.saturating_add(1),
    )?;
    setrlimit(Resource::RLIMIT_AS, l.memory_mb * mb, l.memory_mb * mb)?;
    setrlimit(
        Resource::RLIMIT_FSIZE,
        l.file_size_mb * mb,
        l.file_size_mb * mb,
    )?;
    setrlimit(Resource::RLIMIT_NOFILE, l.open_files, l.open_files)?;
    setrlimit(Resource::RLIMIT_NPROC, l.processes, l.processes)?;
    Ok(())
}
