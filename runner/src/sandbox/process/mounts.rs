//! The sandbox's mount namespace: a private /tmp, a minimal /dev, a fresh
//! /proc for the new pid namespace, and protected paths bound read-only.
//!
//! Runs in the namespace's init (pid 1), which is root in its own user
//! namespace — and nothing outside it.

use nix::mount::{mount, MsFlags};
use std::os::fd::RawFd;
use std::path::Path;

const NONE: Option<&str> = None;

/// A mount step that failed, with the step's name.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct MountError {
    step: String,
    source: std::io::Error,
}

fn step<T>(r: nix::Result<T>, step: &str) -> Result<T, MountError> {
    r.map_err(|e| MountError {
        step: step.to_string(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })
}

fn io_step<T>(r: std::io::Result<T>, step: &str) -> Result<T, MountError> {
    r.map_err(|source| MountError {
        step: step.to_string(),
        source,
    })
}

/// Makes every mount private, so nothing done here propagates to the host.
pub fn make_private() -> Result<(), MountError> {
    step(
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE),
        "make / private",
    )
}

/// Flags that are locked in a less privileged mount namespace and must be
/// repeated on a read-only remount (else EPERM).
fn locked_flags(p: &Path) -> Result<MsFlags, MountError> {
    use nix::sys::statvfs::FsFlags as F;
    let f = step(nix::sys::statvfs::statvfs(p), "statvfs")?.flags();
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    Ok(m)
}

/// Binds `p` onto itself read-only. The path is opened without following
/// symlinks and bound through its descriptor, so a protected directory
/// swapped for a symlink cannot redirect the mount.
pub fn bind_read_only(p: &Path) -> Result<(), MountError> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| MountError {
        step: "protected path".into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: plain open(2) of a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(MountError {
            step: format!("open protected path {}", p.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    let via = format!("/proc/self/fd/{fd}");
    let r = (|| {
        step(
            mount(
                Some(via.as_str()),
                p,
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                NONE,
            ),
            "bind protected path",
        )?;
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | locked_flags(p)?;
        step(
            mount(NONE, p, NONE, flags, NONE),
            "remount protected path read-only",
        )
    })();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    r
}

/// A private, size-limited /tmp. A workspace that lives under /tmp is moved
/// aside and back so the tmpfs does not hide it.
pub fn private_tmp(workspace: &Path, size_mb: u64) -> Result<(), MountError> {
    let under_tmp = workspace.starts_with("/tmp");
    if under_tmp {
        step(
            mount(
                Some(workspace),
                "/mnt",
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                NONE,
            ),
            "park workspace",
        )?;
    }
    step(
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("mode=1777,size={size_mb}m").as_str()),
        ),
        "tmpfs /tmp",
    )?;
    if under_tmp {
        io_step(
            std::fs::create_dir_all(workspace),
            "recreate workspace path",
        )?;
        step(
            mount(Some("/mnt"), workspace, NONE, MsFlags::MS_MOVE, NONE),
            "move workspace back",
        )?;
    }
    Ok(())
}

/// A minimal /dev: a tmpfs with the harmless character devices bound in,
/// a private devpts, a /dev/shm and the usual symlinks. No disks, no
/// /dev/mem, nothing of the host's.
pub fn minimal_dev() -> Result<(), MountError> {
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let fds: Vec<RawFd> = nodes
        .iter()
        .map(|n| {
            let c = std::ffi::CString::new(format!("/dev/{n}")).unwrap_or_default();
            // SAFETY: plain open(2) with O_PATH.
            unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
        })
        .collect();
    step(
        mount(
            Some("tmpfs"),
            "/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=64k"),
        ),
        "tmpfs /dev",
    )?;
    for (n, fd) in nodes.iter().zip(&fds) {
        if *fd < 0 {
            continue;
        }
        let dst = format!("/dev/{n}");
        io_step(std::fs::write(&dst, b""), "create device placeholder")?;
        step(
            mount(
                Some(format!("/proc/self/fd/{fd}").as_str()),
                dst.as_str(),
                NONE,
                MsFlags::MS_BIND,
                NONE,
            ),
            "bind device",
        )?;
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(*fd) };
    }
    for d in ["pts", "shm"] {
        io_step(std::fs::create_dir(format!("/dev/{d}")), "mkdir /dev sub")?;
    }
    step(
        mount(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        "devpts",
    )?;
    step(
        mount(
            Some("tmpfs"),
            "/dev/shm",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777,size=64m"),
        ),
        "/dev/shm",
    )?;
    for (l, t) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        io_step(
            std::os::unix::fs::symlink(t, format!("/dev/{l}")),
            "dev symlink",
        )?;
    }
    Ok(())
}

/// A fresh /proc showing only the sandbox's own pid namespace.
pub fn fresh_proc() -> Result<(), MountError> {
    step(
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            NONE,
        ),
        "mount /proc",
    )
}
