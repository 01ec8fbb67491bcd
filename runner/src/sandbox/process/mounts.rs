//! The sandbox's filesystem view: a fresh root that holds only what the
//! confinement names.
//!
//! Hiding the host piece by piece (a tmpfs over /tmp, read-only binds) left
//! everything else visible — `/run` with its 0777 unix sockets (dbus,
//! journald, docker.sock) among it, which Landlock does not govern. So the
//! sandbox's init builds a new root instead, as bubblewrap does:
//!
//! - a tmpfs becomes `/`, read-only once built;
//! - each readable root the decision names is bound in read-only (a root
//!   that is a symlink on the host, like `/lib64`, is the same symlink);
//! - the workspace is bound in read-write at its own path;
//! - a private, size-limited `/tmp`, a minimal `/dev`, a fresh `/proc`;
//! - inside the workspace, protected paths are bound read-only onto
//!   themselves and hidden paths are masked (an empty file or directory
//!   bound over each), every one opened beneath the workspace without
//!   following a symlink.
//!
//! Then `pivot_root` into it and the host's tree is detached: `/run`,
//! `/var`, `/home`, `/root` simply do not exist inside.
//!
//! Runs in the namespace's init (pid 1), which is root in its own user
//! namespace — and nothing outside it.

use super::dns_stub::RESOLV_CONF;
use super::spec::SandboxSpec;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

const NONE: Option<&str> = None;

/// Where the new root is assembled (a tmpfs mounted over the host's /tmp in
/// this mount namespace only; everything needed from under /tmp is opened
/// before).
const NEW_ROOT: &str = "/tmp";

/// An empty, read-only file in the new root, bound over hidden files.
const EMPTY_FILE: &str = ".runner-masked";

/// A mount step that failed, with the step's name.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub(crate) struct MountError {
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

fn rx_step<T>(r: rustix::io::Result<T>, step: &str) -> Result<T, MountError> {
    r.map_err(|e| MountError {
        step: step.to_string(),
        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
    })
}

/// Makes every mount private, so nothing done here propagates to the host.
pub(crate) fn make_private() -> Result<(), MountError> {
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

fn via(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// Binds the object behind `src` onto `target`, then makes it read-only.
fn bind_ro(src: &str, target: &str) -> Result<(), MountError> {
    step(
        mount(
            Some(src),
            target,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        ),
        &format!("bind {target}"),
    )?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | locked_flags(Path::new(target))?;
    step(
        mount(NONE, target, NONE, flags, NONE),
        &format!("remount {target} read-only"),
    )
}

/// Binds `src` onto `target` (a descriptor's magic link of `rel`), then
/// makes the new mount read-only — reached by opening `rel` beneath the
/// workspace again, since the old descriptor still names what is under the
/// mount.
fn bind_ro_beneath(ws: &OwnedFd, rel: &Path, src: &str, target: &str) -> Result<(), MountError> {
    step(
        mount(Some(src), target, NONE, MsFlags::MS_BIND, NONE),
        &format!("bind over {}", rel.display()),
    )?;
    let Some((top, _)) = open_beneath(ws, rel) else {
        return Err(MountError {
            step: format!("reopen {}", rel.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    };
    let at = via(top.as_raw_fd());
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | locked_flags(Path::new(&at))?;
    step(
        mount(NONE, at.as_str(), NONE, flags, NONE),
        &format!("make {} read-only", rel.display()),
    )
}

/// Host directories never bound in, whatever the confinement names: the
/// sandbox has its own /proc, /dev and /tmp, and /run, /var/run and /sys hold
/// the host daemons' sockets and the kernel's controls.
const SKIPPED: [&str; 6] = ["/proc", "/dev", "/tmp", "/run", "/var/run", "/sys"];

/// Whether the mount setup leaves `root` out whatever the confinement
/// says (it is one of [`SKIPPED`] or beneath one).
pub(crate) fn never_bound(root: &Path) -> bool {
    SKIPPED.iter().any(|s| root.starts_with(s))
}

/// The readable roots, with `/` (an allow-everything policy) taken apart
/// into the host's top-level entries, so that the skipped ones stay out.
fn expand_roots(readable: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in readable {
        if r == Path::new("/") {
            if let Ok(rd) = std::fs::read_dir("/") {
                let mut top: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                top.sort();
                out.extend(top);
            }
        } else {
            out.push(r.clone());
        }
    }
    out
}

/// A readable root as the host has it.
enum Root {
    /// A directory or file, bound in through this descriptor.
    Bind(PathBuf, OwnedFd, bool),
    /// A symlink, recreated with this target.
    Link(PathBuf, PathBuf),
}

fn open_path(p: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC | flags,
        Mode::empty(),
    )
}

/// Opens `rel` beneath the workspace descriptor, never following a symlink
/// (a protected or hidden path that is a symlink is left alone: the link
/// itself is what the runner checks afterwards).
fn open_beneath(ws: &OwnedFd, rel: &Path) -> Option<(OwnedFd, bool)> {
    let fd = rustix::fs::openat2(
        ws,
        rel,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::Directory => Some((fd, true)),
        rustix::fs::FileType::RegularFile => Some((fd, false)),
        _ => None,
    }
}

fn inside(root: &str, p: &Path) -> String {
    format!("{root}{}", p.display())
}

fn make_mount_point(target: &str, dir: bool) -> Result<(), MountError> {
    let p = Path::new(target);
    if let Some(parent) = p.parent() {
        io_step(std::fs::create_dir_all(parent), &format!("mkdir {target}"))?;
    }
    if dir {
        io_step(std::fs::create_dir_all(p), &format!("mkdir {target}"))
    } else {
        io_step(std::fs::write(p, b""), &format!("create {target}"))
    }
}

/// Where the helper, still root on the host, puts the workspace for the
/// sandbox's init to find: in the helper's own private mount namespace,
/// the workspace is bound over `/tmp` — or, when session roots are bound
/// too, a small tmpfs is `/tmp` and the workspace is `/tmp/ws`, root `i`
/// `/tmp/root<i>`. The workspace and each root stay separate bind mounts:
/// that is what makes a hard link from the workspace into `/data` fail
/// with `EXDEV`, so a command cannot deliver a hidden file of the
/// workspace under another name (the collector also refuses files with
/// more than one link).
const STAGED: &str = "/tmp";

fn staged_workspace(spec: &SandboxSpec) -> String {
    if spec.binds.is_empty() {
        STAGED.to_string()
    } else {
        format!("{STAGED}/ws")
    }
}

fn staged_root(i: usize) -> String {
    format!("{STAGED}/root{i}")
}

/// Run by the helper before it creates the user namespace, in a mount
/// namespace of its own: binds the workspace (and the session roots)
/// where the sandbox user can reach them. The sandbox user may not be
/// able to pass through the directories above the workspace (a 0700
/// temporary directory), and need not; and a mount can only be bound from
/// the caller's own namespace, so the helper's descriptor could not
/// simply be handed down. Every source is opened (never following a final
/// symlink) before anything covers `/tmp`, where it may live.
pub(crate) fn stage_workspace(spec: &SandboxSpec) -> Result<(), MountError> {
    // SAFETY: unshare with a constant flag in a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(MountError {
            step: "own mount namespace".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    make_private()?;
    let ws = rx_step(
        open_path(&spec.workspace, OFlags::DIRECTORY),
        "open the workspace",
    )?;
    let roots = spec
        .binds
        .iter()
        .map(|b| {
            rx_step(
                open_path(&b.host, OFlags::DIRECTORY),
                &format!("open the session root for {}", b.at.display()),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !roots.is_empty() {
        step(
            mount(
                Some("tmpfs"),
                STAGED,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=0755,size=64k"),
            ),
            "tmpfs for staging",
        )?;
        for (i, fd) in roots.iter().enumerate() {
            let at = staged_root(i);
            io_step(std::fs::create_dir(&at), "mkdir a staged root")?;
            step(
                mount(
                    Some(via(fd.as_raw_fd()).as_str()),
                    at.as_str(),
                    NONE,
                    MsFlags::MS_BIND,
                    NONE,
                ),
                "stage a session root",
            )?;
        }
        io_step(
            std::fs::create_dir(staged_workspace(spec)),
            "mkdir the staged workspace",
        )?;
    }
    step(
        mount(
            Some(via(ws.as_raw_fd()).as_str()),
            staged_workspace(spec).as_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        ),
        "stage the workspace",
    )
}

/// Refuses a session root whose inside path overlaps the workspace's or a
/// readable root's (a workspaces directory under `/data`, say): one bind
/// would cover the other, or be created inside it.
fn check_binds(spec: &SandboxSpec) -> Result<(), MountError> {
    for b in &spec.binds {
        let clash = spec
            .readable
            .iter()
            .chain(std::iter::once(&spec.workspace))
            .find(|p| p.starts_with(&b.at) || b.at.starts_with(p.as_path()));
        let bad = !b.at.is_absolute()
            || b.at == Path::new("/")
            || b.at.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            });
        if bad || clash.is_some() {
            return Err(MountError {
                step: format!(
                    "bind the session root at {}: it overlaps {} (move worker.workspaces_dir or the readable root elsewhere)",
                    b.at.display(),
                    clash.map(|p| p.display().to_string()).unwrap_or_else(|| "/".into())
                ),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
    }
    Ok(())
}

/// Builds the sandbox's root from `spec` and pivots into it (the workspace
/// staged by [`stage_workspace`]). Afterwards the process's working
/// directory is `/`.
pub(crate) fn fresh_root(spec: &SandboxSpec) -> Result<(), MountError> {
    // Everything to bind is opened while the host's tree is still visible.
    check_binds(spec)?;
    let ws = rx_step(
        open_path(Path::new(&staged_workspace(spec)), OFlags::DIRECTORY),
        "open the staged workspace",
    )?;
    let bind_fds = (0..spec.binds.len())
        .map(|i| {
            rx_step(
                open_path(Path::new(&staged_root(i)), OFlags::DIRECTORY),
                "open a staged session root",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut roots = Vec::new();
    for r in expand_roots(&spec.readable) {
        let r = &r;
        if never_bound(r) || r.starts_with(&spec.workspace) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(r) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(t) = std::fs::read_link(r) {
                roots.push(Root::Link(r.clone(), t));
            }
        } else if let Ok(fd) = open_path(r, OFlags::empty()) {
            roots.push(Root::Bind(r.clone(), fd, meta.is_dir()));
        }
    }
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let dev_fds: Vec<Option<OwnedFd>> = nodes
        .iter()
        .map(|n| {
            rustix::fs::open(
                format!("/dev/{n}"),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        })
        .collect();

    let nr = NEW_ROOT;
    step(
        mount(
            Some("tmpfs"),
            nr,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755,size=1m"),
        ),
        "tmpfs for the new root",
    )?;
    // The private /tmp first: a workspace under /tmp is recreated in it.
    io_step(std::fs::create_dir(format!("{nr}/tmp")), "mkdir /tmp")?;
    step(
        mount(
            Some("tmpfs"),
            format!("{nr}/tmp").as_str(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("mode=1777,size={}m", spec.limits.tmp_mb).as_str()),
        ),
        "tmpfs /tmp",
    )?;
    for r in &roots {
        match r {
            Root::Link(p, t) => {
                let at = inside(nr, p);
                if let Some(parent) = Path::new(&at).parent() {
                    io_step(std::fs::create_dir_all(parent), "mkdir for a link")?;
                }
                io_step(std::os::unix::fs::symlink(t, &at), &format!("symlink {at}"))?;
            }
            Root::Bind(p, fd, dir) => {
                let at = inside(nr, p);
                make_mount_point(&at, *dir)?;
                bind_ro(&via(fd.as_raw_fd()), &at)?;
            }
        }
    }
    resolver_at_stub(nr)?;
    let ws_at = inside(nr, &spec.workspace);
    make_mount_point(&ws_at, true)?;
    // Not recursive: the new root's own tmpfs now sits on the staged
    // workspace, and must not come along.
    step(
        mount(
            Some(via(ws.as_raw_fd()).as_str()),
            ws_at.as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        ),
        "bind the workspace",
    )?;
    // No set-id programs and no device files take effect from the workspace.
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | locked_flags(Path::new(&ws_at))?;
    step(
        mount(NONE, ws_at.as_str(), NONE, flags, NONE),
        "remount the workspace nosuid,nodev",
    )?;
    let ws_new = rx_step(
        open_path(Path::new(&ws_at), OFlags::DIRECTORY),
        "open the bound workspace",
    )?;
    for rel in &spec.read_only {
        if let Some((fd, _)) = open_beneath(&ws_new, rel) {
            let target = via(fd.as_raw_fd());
            bind_ro_beneath(&ws_new, rel, &target, &target)?;
        }
    }
    // The session roots at their fixed paths: /skills read-only, /data
    // writable but never executable; neither honours set-id bits or
    // device files.
    for (b, fd) in spec.binds.iter().zip(&bind_fds) {
        let at = inside(nr, &b.at);
        make_mount_point(&at, true)?;
        step(
            mount(
                Some(via(fd.as_raw_fd()).as_str()),
                at.as_str(),
                NONE,
                MsFlags::MS_BIND,
                NONE,
            ),
            &format!("bind {}", b.at.display()),
        )?;
        let mut flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | locked_flags(Path::new(&at))?;
        if b.writable {
            flags |= MsFlags::MS_NOEXEC;
        } else {
            flags |= MsFlags::MS_RDONLY;
        }
        step(
            mount(NONE, at.as_str(), NONE, flags, NONE),
            &format!("remount {}", b.at.display()),
        )?;
    }
    let empty = format!("{nr}/{EMPTY_FILE}");
    io_step(std::fs::write(&empty, b""), "create the mask file")?;
    for rel in &spec.hidden {
        let Some((fd, dir)) = open_beneath(&ws_new, rel) else {
            continue;
        };
        let target = via(fd.as_raw_fd());
        if dir {
            step(
                mount(
                    Some("tmpfs"),
                    target.as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC
                        | MsFlags::MS_RDONLY,
                    Some("mode=0555,size=4k"),
                ),
                "mask a hidden directory",
            )?;
        } else {
            bind_ro_beneath(&ws_new, rel, &empty, &target)?;
        }
    }
    minimal_dev(nr, &nodes, &dev_fds)?;
    io_step(std::fs::create_dir(format!("{nr}/proc")), "mkdir /proc")?;
    step(
        mount(
            Some("proc"),
            format!("{nr}/proc").as_str(),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            NONE,
        ),
        "mount /proc",
    )?;
    drop(ws_new);
    drop(ws);
    drop(roots);
    drop(dev_fds);

    // pivot_root(".", ".") stacks the old root on the new one; detaching it
    // leaves the new root alone.
    step(nix::unistd::chdir(nr), "chdir to the new root")?;
    step(nix::unistd::pivot_root(".", "."), "pivot_root")?;
    step(umount2(".", MntFlags::MNT_DETACH), "detach the host's root")?;
    step(nix::unistd::chdir("/"), "chdir /")?;
    step(
        mount(
            NONE,
            "/",
            NONE,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            NONE,
        ),
        "make the new root read-only",
    )?;
    Ok(())
}

/// A minimal /dev under `base`: a tmpfs with the harmless character
/// devices bound in, a private devpts, a /dev/shm and the usual symlinks.
/// No disks, no /dev/mem, nothing else of the host's.
fn minimal_dev(base: &str, nodes: &[&str], fds: &[Option<OwnedFd>]) -> Result<(), MountError> {
    let dev = format!("{base}/dev");
    io_step(std::fs::create_dir(&dev), "mkdir /dev")?;
    step(
        mount(
            Some("tmpfs"),
            dev.as_str(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=64k"),
        ),
        "tmpfs /dev",
    )?;
    for (n, fd) in nodes.iter().zip(fds) {
        let Some(fd) = fd else { continue };
        let dst = format!("{dev}/{n}");
        io_step(std::fs::write(&dst, b""), "create device placeholder")?;
        step(
            mount(
                Some(via(fd.as_raw_fd()).as_str()),
                dst.as_str(),
                NONE,
                MsFlags::MS_BIND,
                NONE,
            ),
            "bind device",
        )?;
    }
    for d in ["pts", "shm"] {
        io_step(std::fs::create_dir(format!("{dev}/{d}")), "mkdir /dev sub")?;
    }
    step(
        mount(
            Some("devpts"),
            format!("{dev}/pts").as_str(),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ),
        "devpts",
    )?;
    step(
        mount(
            Some("tmpfs"),
            format!("{dev}/shm").as_str(),
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
            std::os::unix::fs::symlink(t, format!("{dev}/{l}")),
            "dev symlink",
        )?;
    }
    Ok(())
}

/// Points the sandbox's resolver at the DNS stub of its pid 1
/// ([`super::dns_stub`]), so a lookup fails at once and the runner learns
/// the name: a read-only file saying [`RESOLV_CONF`] is bound over the
/// `/etc/resolv.conf` the readable roots brought in — or, when that is a
/// symlink (into the host's `/run`, say, which the sandbox has not), over
/// the file it names, made in the new root. Without an `/etc` at all the C
/// library asks 127.0.0.1 anyway.
fn resolver_at_stub(nr: &str) -> Result<(), MountError> {
    let conf = format!("{nr}/etc/resolv.conf");
    let Ok(meta) = std::fs::symlink_metadata(&conf) else {
        return Ok(());
    };
    let target = if meta.file_type().is_symlink() {
        let Ok(link) = std::fs::read_link(&conf) else {
            return Ok(());
        };
        let mut named = PathBuf::from("/");
        for c in Path::new("/etc").join(link).components() {
            match c {
                std::path::Component::Normal(n) => named.push(n),
                std::path::Component::ParentDir => {
                    named.pop();
                }
                _ => {}
            }
        }
        let at = inside(nr, &named);
        // Inside a read-only root the file cannot be made: the host's
        // resolver stays, and lookups fail without a note.
        if std::fs::symlink_metadata(&at).is_err() && make_mount_point(&at, false).is_err() {
            return Ok(());
        }
        at
    } else {
        conf
    };
    let src = format!("{nr}/.runner-resolv.conf");
    io_step(
        std::fs::write(&src, RESOLV_CONF),
        "write the sandbox's resolv.conf",
    )?;
    bind_ro(&src, &target)
}
