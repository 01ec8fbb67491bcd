//! `fd_readdir` without a `stat` per entry.
//!
//! wasmtime-wasi answers every `fd_readdir` by listing the directory,
//! `stat`ing each entry for its type and `stat`ing it again for its inode
//! hash: two system calls per file on top of the listing, a sixth of a
//! `Grep` over many small files. The kernel's listing already has both (the
//! entry's type and inode), as ripgrep and every native walker rely on.
//!
//! So the runner keeps its own handle on the workspace (opened on the
//! first directory the guest opens, and used only if it is the directory
//! wasmtime preopened: same device and inode) and on each directory the
//! guest opens with
//! `O_DIRECTORY` (what `opendir` and Rust's `read_dir` do): opened read-only
//! right after wasmtime opened it, from the parent's handle and the same
//! path, with the same resolution rules (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS`, as wasmtime opens it). `fd_readdir` on those fds
//! is answered from the host's listing in wasmtime's layout, with `d_ino`
//! the same hash of (device, inode) wasmtime gives. What differs: an entry
//! is typed from the listing, so one deleted meanwhile is still listed
//! (wasmtime drops it), a socket is `unknown` (wasmtime traps), and a call
//! continuing from a cookie reads the listing taken at cookie 0. A
//! directory with a name that is not UTF-8, or any fd not known here (a
//! directory opened without `O_DIRECTORY`), goes to wasmtime as before.
//! Closing or renumbering an fd forgets it.

use super::guard::{memory, split, MODULE};
use super::Ctx;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self, WasiSnapshotPreview1};
use wasmtime_wasi::p1::{types, WasiP1Ctx};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

/// `fd_readdir` calls answered from the host's own listing, process-wide
/// (read by `WasmSandbox::listings_answered`).
pub(crate) static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The fd of the one preopen (`/workspace`): after stdin, stdout, stderr.
pub(crate) const PREOPEN_FD: i32 = 3;
const OFLAGS_DIRECTORY: i32 = 2;
/// WASI `errno::fault`.
const ERRNO_FAULT: i32 = 21;
const LOOKUP_SYMLINK_FOLLOW: i32 = 1;
/// `dirent`: d_next u64, d_ino u64, d_namlen u32, d_type u8, 3 bytes pad.
const DIRENT_SIZE: usize = 24;
/// WASI `filetype` codes.
const FT_UNKNOWN: u8 = 0;
const FT_BLOCK: u8 = 1;
const FT_CHAR: u8 = 2;
const FT_DIR: u8 = 3;
const FT_FILE: u8 = 4;
const FT_LINK: u8 = 7;

/// The workspace root as the host sees it, and the host's own copy of each
/// directory the guest opened.
pub(crate) struct Dirs {
    root_path: std::path::PathBuf,
    /// Opened on the first directory the guest opens, and kept only if it
    /// is the directory wasmtime preopened; `Some(None)`: it is not.
    root: Option<Option<OwnedFd>>,
    /// The guest has not closed or renumbered its preopen.
    preopen_live: bool,
    open: Vec<(i32, OwnedFd)>,
    /// The last listing read from its start, for the calls that continue
    /// it from a cookie (a big directory takes many buffers).
    last: Option<(i32, Vec<Entry>)>,
}

/// Directories tracked at once; past this, further ones are left to
/// wasmtime (a guest that never closes its directories must not make the
/// host hold twice its file descriptors).
const MAX_TRACKED: usize = 256;

impl Dirs {
    /// `workspace`: the path wasmtime preopened.
    pub(crate) fn new(workspace: &std::path::Path) -> Self {
        Dirs {
            root_path: workspace.to_path_buf(),
            root: None,
            preopen_live: true,
            open: Vec::new(),
            last: None,
        }
    }

    fn host_fd(&mut self, wasi_fd: i32) -> Option<i32> {
        if wasi_fd == PREOPEN_FD && self.preopen_live {
            return self.root.as_ref()?.as_ref().map(AsRawFd::as_raw_fd);
        }
        self.open
            .iter()
            .find(|(f, _)| *f == wasi_fd)
            .map(|(_, d)| d.as_raw_fd())
    }

    /// Opens the workspace (as a directory: a FIFO put in its place fails
    /// at once) and keeps it if it is the one wasmtime preopened: same
    /// (device, inode) hash as wasmtime's own `fd_filestat_get` of the
    /// preopen. Done once, on the first directory the guest opens.
    fn open_root(&mut self, wasi: &mut WasiP1Ctx, memory: &mut GuestMemory<'_>) {
        if self.root.is_some() || !self.preopen_live {
            return;
        }
        let ours = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.root_path)
            .ok()
            .map(OwnedFd::from);
        let theirs = in_tokio(WasiSnapshotPreview1::fd_filestat_get(
            wasi,
            memory,
            types::Fd::from(PREOPEN_FD),
        ))
        .ok()
        .map(|st| st.ino);
        self.root = Some(ours.filter(|fd| {
            // SAFETY: a zeroed stat buffer for fstat to fill in.
            let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::fstat64(fd.as_raw_fd(), &mut st) } == 0;
            ok && theirs == Some(ino_hash(st.st_dev, st.st_ino))
        }));
    }

    fn forget(&mut self, wasi_fd: i32) {
        if wasi_fd == PREOPEN_FD {
            self.preopen_live = false;
        }
        self.open.retain(|(f, _)| *f != wasi_fd);
        if self.last.as_ref().is_some_and(|(f, _)| *f == wasi_fd) {
            self.last = None;
        }
    }

    /// The listing of `wasi_fd`: read afresh from its start (cookie 0), or
    /// the one read last when continuing it.
    fn listing(&mut self, wasi_fd: i32, cookie: u64) -> Option<&[Entry]> {
        let cached = self.last.as_ref().is_some_and(|(f, _)| *f == wasi_fd);
        if cookie == 0 || !cached {
            let entries = list(self.host_fd(wasi_fd)?)?;
            self.last = Some((wasi_fd, entries));
        }
        self.last.as_ref().map(|(_, e)| e.as_slice())
    }
}

/// Replaces `path_open`, `fd_readdir`, `fd_close` and `fd_renumber`.
pub(crate) fn install(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, Ctx>,
         dirfd: i32,
         lookup: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         base: i64,
         inheriting: i64,
         fdflags: i32,
         opened: i32|
         -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            // The path as wasmtime reads it (before `opened` is written,
            // which the guest may have pointed into it).
            let name = (oflags & OFLAGS_DIRECTORY != 0)
                .then(|| slice(memory.data(&caller), path, path_len))
                .flatten()
                .and_then(|b| CString::new(b).ok());
            let (ctx, mut bytes) = split(&mut caller, memory);
            let errno = in_tokio(wasi_snapshot_preview1::path_open(
                &mut ctx.wasi,
                &mut bytes,
                dirfd,
                lookup,
                path,
                path_len,
                oflags,
                base,
                inheriting,
                fdflags,
                opened,
            ))?;
            if errno == 0 {
                let (bytes, ctx) = memory.data_and_store_mut(&mut caller);
                let fd = read_u32(bytes, opened);
                if let (Some(fd), Some(name)) = (fd, name) {
                    let follow = lookup & LOOKUP_SYMLINK_FOLLOW != 0;
                    if dirfd == PREOPEN_FD {
                        ctx.dirs
                            .open_root(&mut ctx.wasi, &mut GuestMemory::Unshared(bytes));
                    }
                    let dirs = &mut ctx.dirs;
                    dirs.forget(fd as i32);
                    if dirs.open.len() < MAX_TRACKED {
                        if let Some(copy) = dirs
                            .host_fd(dirfd)
                            .and_then(|at| open_beneath(at, &name, follow))
                        {
                            dirs.open.push((fd as i32, copy));
                        }
                    }
                }
            }
            Ok(errno)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut caller: Caller<'_, Ctx>,
         fd: i32,
         buf: i32,
         buf_len: i32,
         cookie: i64,
         used_ptr: i32|
         -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            let cap = buf_len as u32 as usize;
            let out = caller
                .data_mut()
                .dirs
                .listing(fd, cookie as u64)
                .map(|entries| encode(entries, cookie as u64, cap));
            let Some(out) = out else {
                let (ctx, mut bytes) = split(&mut caller, memory);
                return in_tokio(wasi_snapshot_preview1::fd_readdir(
                    &mut ctx.wasi,
                    &mut bytes,
                    fd,
                    buf,
                    buf_len,
                    cookie,
                    used_ptr,
                ));
            };
            let data = memory.data_mut(&mut caller);
            let start = buf as u32 as usize;
            let at = used_ptr as u32 as usize;
            let fits =
                |from: usize, len: usize| from.checked_add(len).is_some_and(|e| e <= data.len());
            if !fits(start, out.len()) || !fits(at, 4) {
                return Ok(ERRNO_FAULT);
            }
            data[start..start + out.len()].copy_from_slice(&out);
            ANSWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            data[at..at + 4].copy_from_slice(&(out.len() as u32).to_le_bytes());
            Ok(0)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, Ctx>, fd: i32| -> wasmtime::Result<i32> {
            caller.data_mut().dirs.forget(fd);
            let memory = memory(&mut caller)?;
            let (ctx, mut bytes) = split(&mut caller, memory);
            in_tokio(wasi_snapshot_preview1::fd_close(
                &mut ctx.wasi,
                &mut bytes,
                fd,
            ))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, Ctx>, from: i32, to: i32| -> wasmtime::Result<i32> {
            caller.data_mut().dirs.forget(from);
            caller.data_mut().dirs.forget(to);
            let memory = memory(&mut caller)?;
            let (ctx, mut bytes) = split(&mut caller, memory);
            in_tokio(wasi_snapshot_preview1::fd_renumber(
                &mut ctx.wasi,
                &mut bytes,
                from,
                to,
            ))
        },
    )?;
    Ok(())
}

fn slice(data: &[u8], ptr: i32, len: i32) -> Option<Vec<u8>> {
    let start = ptr as u32 as usize;
    data.get(start..start.checked_add(len as u32 as usize)?)
        .map(<[u8]>::to_vec)
}

fn read_u32(data: &[u8], ptr: i32) -> Option<u32> {
    let at = ptr as u32 as usize;
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Opens `name` under the directory `at` read-only as a directory, the way
/// wasmtime resolves guest paths: never above `at`, no magic links.
fn open_beneath(at: i32, name: &CStr, follow: bool) -> Option<OwnedFd> {
    let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    // SAFETY: `open_how` is plain data; all-zero is its "nothing set".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid dirfd, a NUL-terminated path and an `open_how` of the
    // size passed; the returned fd (if any) is owned from here on.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            at,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One listing entry: name, WASI file type, inode.
struct Entry {
    name: Vec<u8>,
    kind: u8,
    ino: u64,
}

/// The directory's entries in the kernel's order after "." and ".." (as
/// wasmtime puts them), from a fresh handle of its own; `None` when it
/// cannot be read whole or a name is not UTF-8 (wasmtime answers then).
fn list(dir: i32) -> Option<Vec<Entry>> {
    // SAFETY: `openat(dir, ".")` gives an independent handle (its own
    // offset) that `fdopendir` takes over and `closedir` closes; readdir's
    // entries are valid until the next readdir on the same stream.
    unsafe {
        let fd = libc::openat(
            dir,
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return None;
        }
        let stream = libc::fdopendir(fd);
        if stream.is_null() {
            libc::close(fd);
            return None;
        }
        let mut st: libc::stat64 = std::mem::zeroed();
        if libc::fstat64(fd, &mut st) != 0 {
            libc::closedir(stream);
            return None;
        }
        let dev = st.st_dev;
        let mut out = Vec::new();
        let complete = loop {
            *libc::__errno_location() = 0;
            let e = libc::readdir64(stream);
            if e.is_null() {
                break *libc::__errno_location() == 0; // end, or a read error
            }
            let name = CStr::from_ptr((*e).d_name.as_ptr()).to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if std::str::from_utf8(name).is_err() {
                break false; // wasmtime's answer (EILSEQ) is the one to give
            }
            let kind = match (*e).d_type {
                libc::DT_REG => FT_FILE,
                libc::DT_DIR => FT_DIR,
                libc::DT_LNK => FT_LINK,
                libc::DT_BLK => FT_BLOCK,
                libc::DT_CHR => FT_CHAR,
                libc::DT_UNKNOWN => kind_at(fd, (*e).d_name.as_ptr()),
                _ => FT_UNKNOWN, // FIFOs and sockets: p1 has no code for them
            };
            out.push(Entry {
                name: name.to_vec(),
                kind,
                ino: ino_hash(dev, (*e).d_ino),
            });
        };
        libc::closedir(stream);
        if !complete {
            return None;
        }
        let head = [b".".as_slice(), b"..".as_slice()].map(|n| Entry {
            name: n.to_vec(),
            kind: FT_DIR,
            ino: ino_hash(dev, st.st_ino),
        });
        Some(head.into_iter().chain(out).collect())
    }
}

/// The inode a WASI guest sees: wasmtime-wasi's hash of (device, inode)
/// (`MetadataHashValue::lower`), so `d_ino` matches what `fd_filestat_get`
/// and `path_filestat_get` report for the same file.
fn ino_hash(dev: u64, ino: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (dev, ino).hash(&mut h);
    h.finish()
}

/// The type of an entry the file system did not type in its listing.
unsafe fn kind_at(dir: i32, name: *const libc::c_char) -> u8 {
    let mut st: libc::stat64 = std::mem::zeroed();
    if libc::fstatat64(dir, name, &mut st, libc::AT_SYMLINK_NOFOLLOW) != 0 {
        return FT_UNKNOWN;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FT_FILE,
        libc::S_IFDIR => FT_DIR,
        libc::S_IFLNK => FT_LINK,
        libc::S_IFBLK => FT_BLOCK,
        libc::S_IFCHR => FT_CHAR,
        _ => FT_UNKNOWN,
    }
}

/// The entries from `cookie` on, in wasmtime's layout: each entry's
/// 24-byte header then its name, cut off where `cap` runs out (the guest
/// sees a full buffer and reads on from the last whole entry).
fn encode(entries: &[Entry], cookie: u64, cap: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(cap.min(64 * 1024));
    for (i, e) in entries.iter().enumerate().skip(cookie as usize) {
        let mut head = [0u8; DIRENT_SIZE];
        head[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        head[8..16].copy_from_slice(&e.ino.to_le_bytes());
        head[16..20].copy_from_slice(&(e.name.len() as u32).to_le_bytes());
        head[20] = e.kind;
        for part in [&head[..], &e.name[..]] {
            let room = cap - out.len();
            if part.len() >= room {
                out.extend_from_slice(&part[..room]);
                return out;
            }
            out.extend_from_slice(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: u8, ino: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind,
            ino,
        }
    }

    #[test]
    fn entries_are_laid_out_as_wasmtime_does_and_cut_at_the_buffer() {
        let e = [
            entry(".", FT_DIR, 7),
            entry("..", FT_DIR, 7),
            entry("a.rs", FT_FILE, 9),
        ];
        let all = encode(&e, 0, 4096);
        assert_eq!(all.len(), 3 * DIRENT_SIZE + 1 + 2 + 4);
        // third entry: d_next 3, ino 9, namlen 4, type regular, then name
        let third = &all[2 * DIRENT_SIZE + 3..];
        assert_eq!(u64::from_le_bytes(third[0..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(third[8..16].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(third[16..20].try_into().unwrap()), 4);
        assert_eq!(third[20], FT_FILE);
        assert_eq!(&third[24..], b"a.rs");
        // From a cookie: only what follows it.
        assert_eq!(encode(&e, 2, 4096), all[2 * DIRENT_SIZE + 3..].to_vec());
        assert!(encode(&e, 3, 4096).is_empty());
        // A buffer too small: filled exactly, cut mid-entry.
        assert_eq!(encode(&e, 0, 30), all[..30].to_vec());
        assert_eq!(encode(&e, 0, DIRENT_SIZE), all[..DIRENT_SIZE].to_vec());
    }
}
