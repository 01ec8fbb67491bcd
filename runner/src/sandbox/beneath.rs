//! Host-side operations on workspace content, through descriptors only.
//!
//! The runner is privileged (often root) and a workspace is written by the
//! agent: any path string into it may meet a symlink the agent planted
//! (`.git -> /etc`). So the privileged process never hands such a string to
//! `remove_*`, `chown` or `open`. It opens the workspace root once and
//! reaches everything else relative to that descriptor with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`:
//! a symlink anywhere on the way, `..` or an absolute path is an error, not
//! a redirection. Entries are removed with `unlinkat` on their parent's
//! descriptor, which never follows a link, and owners change through a
//! descriptor of the very object that was inspected.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

/// How every lookup beneath the root resolves.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// A directory the runner works beneath (a workspace root).
#[derive(Debug)]
pub(crate) struct Beneath {
    root: OwnedFd,
}

/// What is at a path, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Directory, file, symlink, …
    pub kind: FileType,
    /// Device of the inode.
    pub dev: u64,
    pub ino: u64,
    /// Hard links to it.
    pub nlink: u64,
    pub size: u64,
    pub mode: u32,
}

impl Entry {
    fn of(st: &rustix::fs::Stat) -> Entry {
        Entry {
            kind: FileType::from_raw_mode(st.st_mode),
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            size: st.st_size as u64,
            mode: st.st_mode & 0o7777,
        }
    }
}

fn err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// Splits a relative path into its parent and last component, refusing
/// anything that is not plain names (`..`, `.`, absolute).
fn split(rel: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    for c in rel.components() {
        if !matches!(c, Component::Normal(_)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a plain relative path beneath the workspace",
                    rel.display()
                ),
            ));
        }
    }
    let name = rel.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the workspace root itself cannot be named here",
        )
    })?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

impl Beneath {
    /// Opens `root` (a directory the runner chose, not one a workspace
    /// names); its last component must not be a symlink.
    pub(crate) fn open(root: &Path) -> io::Result<Beneath> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        Ok(Beneath { root: fd })
    }

    /// The root's descriptor.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens the directory at `rel` (empty for the root) beneath the root.
    pub(crate) fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        open_dir_at(self.root.as_fd(), rel)
    }

    /// What is at `rel`, without following a final symlink; `None` when
    /// nothing is there (or a component on the way is not a directory).
    pub(crate) fn lstat(&self, rel: &Path) -> io::Result<Option<Entry>> {
        let (parent, name) = split(rel)?;
        let dir = match self.open_dir(parent) {
            Ok(d) => d,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry::of(&st))),
            Err(e) if gone(&err(e)) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Reads the regular file at `rel` whole (at most `max` bytes).
    pub(crate) fn read(&self, rel: &Path, max: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let fd = rustix::fs::openat2(
            self.root.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(err)?;
        let st = rustix::fs::fstat(&fd).map_err(err)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", rel.display()),
            ));
        }
        let mut out = Vec::new();
        std::fs::File::from(fd).take(max).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Reads the regular file at `rel` (at most `max` bytes) with what
    /// `fstat` says of the very file opened — its link count among it, for
    /// a caller that must refuse a hard link.
    /// `check` sees the opened file's entry before a byte is read: it
    /// returns how many bytes to read at most, or why the file is skipped
    /// (then nothing is read, so a huge sparse file costs nothing).
    pub(crate) fn read_with_entry(
        &self,
        rel: &Path,
        check: impl FnOnce(&Entry) -> Result<u64, String>,
    ) -> io::Result<Result<(Vec<u8>, Entry), String>> {
        use std::io::Read;
        let fd = rustix::fs::openat2(
            self.root.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(err)?;
        let st = rustix::fs::fstat(&fd).map_err(err)?;
        let entry = Entry::of(&st);
        if entry.kind != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", rel.display()),
            ));
        }
        let max = match check(&entry) {
            Ok(max) => max,
            Err(why) => return Ok(Err(why)),
        };
        let mut out = Vec::new();
        std::fs::File::from(fd).take(max).read_to_end(&mut out)?;
        Ok(Ok((out, entry)))
    }

    /// Writes `bytes` as the regular file at `rel` with `mode`, replacing
    /// whatever is there (a directory, a symlink, a file with other links)
    /// and creating missing parent directories.
    pub(crate) fn write(&self, rel: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        use std::io::Write;
        let (parent, name) = split(rel)?;
        self.create_dirs(parent)?;
        let dir = self.open_dir(parent)?;
        remove_at(dir.as_fd(), name)?;
        let fd = rustix::fs::openat2(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
            RESOLVE,
        )
        .map_err(err)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).map_err(err)?;
        std::fs::File::from(fd).write_all(bytes)
    }

    /// Creates the directory `rel` and its missing parents beneath the root;
    /// an existing symlink or file on the way is an error.
    pub(crate) fn create_dirs(&self, rel: &Path) -> io::Result<()> {
        let mut dir = rustix::io::dup(&self.root).map_err(err)?;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain relative path", rel.display()),
                ));
            };
            match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(err(e)),
            }
            dir = open_dir_at(dir.as_fd(), Path::new(name))?;
        }
        Ok(())
    }

    /// Removes whatever is at `rel` (a whole tree for a directory); true
    /// when something was there. Symlinks are removed, never followed.
    pub(crate) fn remove(&self, rel: &Path) -> io::Result<bool> {
        let (parent, name) = split(rel)?;
        let dir = match self.open_dir(parent) {
            Ok(d) => d,
            Err(e) if gone(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        remove_at(dir.as_fd(), name)
    }

    /// Gives the whole tree to `uid`/`gid`, the root included, without
    /// following any symlink. A regular file with more than one link may be
    /// a hard link to something outside: it keeps its owner.
    pub(crate) fn chown_tree(&self, uid: u32, gid: u32) -> io::Result<()> {
        let (uid, gid) = (
            rustix::fs::Uid::from_raw(uid),
            rustix::fs::Gid::from_raw(gid),
        );
        rustix::fs::fchown(&self.root, Some(uid), Some(gid)).map_err(err)?;
        chown_entries(self.root.as_fd(), uid, gid, 0)
    }

    /// Bytes the tree occupies on disk (allocated blocks; a file with
    /// several links counted once), for the workspace size limit. The same
    /// walk clears set-user-id and set-group-id bits of regular files.
    pub(crate) fn usage(&self) -> io::Result<u64> {
        let mut seen = std::collections::HashSet::new();
        let st = rustix::fs::fstat(&self.root).map_err(err)?;
        let mut total = st.st_blocks as u64 * 512;
        usage_at(self.root.as_fd(), &mut seen, &mut total, 0)?;
        Ok(total)
    }

    /// Every entry name of the directory at `rel`, sorted, with its type.
    pub(crate) fn list(&self, rel: &Path) -> io::Result<Vec<(std::ffi::OsString, FileType)>> {
        let dir = self.open_dir(rel)?;
        list_fd(dir.as_fd())
    }
}

fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

fn open_dir_at(at: std::os::fd::BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        at,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )
    .map_err(err)
}

fn list_fd(dir: std::os::fd::BorrowedFd<'_>) -> io::Result<Vec<(std::ffi::OsString, FileType)>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir).map_err(err)? {
        let e = e.map_err(err)?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let mut kind = e.file_type();
        if kind == FileType::Unknown {
            kind = rustix::fs::statat(dir, e.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode))
                .map_err(err)?;
        }
        out.push((std::ffi::OsStr::from_bytes(name).to_os_string(), kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Deepest directory nesting the runner walks (a deeper tree is an error,
/// not a stack overflow).
const MAX_DEPTH: usize = 512;

fn too_deep() -> io::Error {
    io::Error::other(format!(
        "the workspace is nested more than {MAX_DEPTH} directories deep"
    ))
}

/// Removes `name` in `dir`: a directory with everything in it, anything
/// else with one `unlinkat`. True when something was there.
fn remove_at(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<bool> {
    remove_at_depth(dir, name, 0)
}

fn remove_at_depth(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    depth: usize,
) -> io::Result<bool> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(true),
        Err(rustix::io::Errno::NOENT) => return Ok(false),
        // A directory (EISDIR on Linux; EPERM elsewhere): empty it first.
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(err(e)),
    }
    let child = open_dir_at(dir, Path::new(name))?;
    for (entry, _) in list_fd(child.as_fd())? {
        remove_at_depth(child.as_fd(), &entry, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(err(e)),
    }
}

fn usage_at(
    dir: std::os::fd::BorrowedFd<'_>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
    total: &mut u64,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    for (name, kind) in list_fd(dir)? {
        let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(err(e)),
        };
        if st.st_nlink > 1 && kind != FileType::Directory && !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        *total += st.st_blocks as u64 * 512;
        // (A file with several links may be a hard link to a host program:
        // it is left alone — the sandbox cannot make such links itself.)
        if kind == FileType::RegularFile && st.st_mode & 0o6000 != 0 && st.st_nlink == 1 {
            strip_set_id(dir, &name, st.st_mode)?;
        }
        if kind == FileType::Directory {
            let child = open_dir_at(dir, Path::new(&name))?;
            usage_at(child.as_fd(), seen, total, depth + 1)?;
        }
    }
    Ok(())
}

/// A set-user-id or set-group-id file made in a workspace would let anyone
/// on the host who can reach it become the sandbox user (who owns every
/// workspace): the bits are cleared, through a descriptor of that file.
fn strip_set_id(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: u32,
) -> io::Result<()> {
    let fd = rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )
    .map_err(err)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o1777)).map_err(err)
}

fn chown_entries(
    dir: std::os::fd::BorrowedFd<'_>,
    uid: rustix::fs::Uid,
    gid: rustix::fs::Gid,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    for (name, _) in list_fd(dir)? {
        // The object itself, opened without following anything, is what is
        // inspected and what changes owner.
        let fd = match rustix::fs::openat2(
            dir,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(err(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(err)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::RegularFile && st.st_nlink > 1 {
            continue;
        }
        rustix::fs::chownat(
            &fd,
            "",
            Some(uid),
            Some(gid),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(err)?;
        if kind == FileType::Directory {
            let child = open_dir_at(dir, Path::new(&name))?;
            chown_entries(child.as_fd(), uid, gid, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(ws.join("a/b")).unwrap();
        std::fs::create_dir_all(outside.join("hooks")).unwrap();
        std::fs::write(outside.join("hooks/keep"), "keep").unwrap();
        std::fs::write(outside.join("config"), "keep").unwrap();
        (d, ws, outside)
    }

    #[test]
    fn removal_through_a_planted_symlink_touches_nothing_outside() {
        let (_d, ws, outside) = tree();
        symlink(&outside, ws.join(".git")).unwrap();
        let b = Beneath::open(&ws).unwrap();
        // `.git/hooks` runs through the symlink: not found beneath the
        // workspace, nothing removed.
        assert!(!b.remove(Path::new(".git/hooks")).unwrap_or(false));
        assert!(matches!(
            b.lstat(Path::new(".git/config")),
            Ok(None) | Err(_)
        ));
        assert!(b.write(Path::new(".git/config"), b"x", 0o644).is_err());
        assert!(outside.join("hooks/keep").exists());
        assert!(outside.join("config").exists());
        // The symlink itself is removed, not its target.
        assert!(b.remove(Path::new(".git")).unwrap());
        assert!(std::fs::symlink_metadata(ws.join(".git")).is_err());
        assert!(outside.join("hooks/keep").exists());
    }

    #[test]
    fn a_tree_is_removed_whole_and_symlinks_inside_are_not_followed() {
        let (_d, ws, outside) = tree();
        std::fs::write(ws.join("a/b/f"), "x").unwrap();
        symlink(&outside, ws.join("a/b/out")).unwrap();
        let b = Beneath::open(&ws).unwrap();
        assert!(b.remove(Path::new("a")).unwrap());
        assert!(!ws.join("a").exists());
        assert!(outside.join("hooks/keep").exists());
        assert!(!b.remove(Path::new("a")).unwrap());
    }

    #[test]
    fn dotdot_and_absolute_paths_are_refused() {
        let (_d, ws, _outside) = tree();
        let b = Beneath::open(&ws).unwrap();
        assert!(b.remove(Path::new("../outside")).is_err());
        assert!(b.remove(Path::new("/etc/passwd")).is_err());
        assert!(b.lstat(Path::new("a/../../outside")).is_err());
    }

    #[test]
    fn write_replaces_a_symlink_instead_of_writing_through_it() {
        let (_d, ws, outside) = tree();
        symlink(outside.join("config"), ws.join("cfg")).unwrap();
        let b = Beneath::open(&ws).unwrap();
        b.write(Path::new("cfg"), b"new", 0o644).unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.join("config")).unwrap(),
            "keep"
        );
        assert_eq!(std::fs::read_to_string(ws.join("cfg")).unwrap(), "new");
        assert!(b.read(Path::new("cfg"), 100).unwrap() == b"new");
    }

    #[test]
    fn usage_counts_blocks_and_clears_set_id_bits() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, ws, _outside) = tree();
        std::fs::write(ws.join("a/big"), vec![1u8; 100_000]).unwrap();
        std::fs::write(ws.join("a/b/suid"), "x").unwrap();
        std::fs::set_permissions(ws.join("a/b/suid"), std::fs::Permissions::from_mode(0o6755))
            .unwrap();
        let b = Beneath::open(&ws).unwrap();
        assert!(b.usage().unwrap() >= 100_000);
        let mode = std::fs::metadata(ws.join("a/b/suid"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn the_root_itself_must_not_be_a_symlink() {
        let (d, ws, _outside) = tree();
        symlink(&ws, d.path().join("alias")).unwrap();
        assert!(Beneath::open(&d.path().join("alias")).is_err());
    }
}
