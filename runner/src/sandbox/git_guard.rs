//! Git's state in a workspace, taken as a whole and kept as it was.
//!
//! A repository's hooks, its config (`core.fsmonitor`, `core.hooksPath`,
//! filters, aliases), `info/`, a `commondir` or a `.git` *file* that
//! redirects git elsewhere: each of these runs code on the host the next
//! time anybody runs `git` there. A command may legitimately commit (that
//! writes objects, refs and the index) but it may not change what git
//! *runs*. Protecting a few fixed paths is not enough — `mv .git .g && cp
//! -r .g .git` leaves a fresh, writable copy in place — so this module
//! looks at what the protected set *is*:
//!
//! - [`scan`] walks the workspace through descriptors (never following a
//!   symlink) and finds every repository in it: every `.git` directory and
//!   `.git` file at any depth, the git directory a `gitdir:` file or a
//!   `commondir` names when it lies inside the workspace, and the
//!   repositories under `modules/` and `worktrees/`. Of each it records the
//!   control files: `config`, `config.worktree`, `commondir`, `gitdir`,
//!   everything under `hooks/` and `info/`, and the `.git` file itself.
//! - Before a command the runner scans ([`Snapshot`]); after it, it scans
//!   again and [`Snapshot::restore`] puts every control file back as it was:
//!   changed ones rewritten, removed ones recreated, new ones (a hook, a
//!   nested repository's config, a planted `.git` file) removed. If that
//!   cannot be done the call fails and says so.
//!
//! A `gitdir:` or `commondir` pointing outside the workspace is never
//! followed; a new one is removed like any other new control file.

use super::beneath::{Beneath, Entry};
use rustix::fs::FileType;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Largest control file kept (a hook script or a config); a bigger one is
/// refused rather than silently not protected.
const MAX_FILE: u64 = 4 << 20;

/// Most entries a scan visits before it gives up (and the call fails).
const MAX_ENTRIES: usize = 2_000_000;

/// Deepest directory a scan descends to.
const MAX_DEPTH: usize = 256;

/// One protected entry as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A regular file: its bytes and permission bits.
    File { bytes: Vec<u8>, mode: u32 },
    /// A directory (its protected entries are items of their own).
    Dir,
    /// A symlink (never followed), or a special file: kept only as a fact,
    /// so that a new one is removed and a changed one noticed.
    Other(u32),
}

/// The protected set of a workspace at one moment: workspace-relative path
/// → what was there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    items: BTreeMap<PathBuf, Item>,
    hidden: Vec<PathBuf>,
}

/// What [`Snapshot::restore`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    /// Control files that were new and were removed.
    pub removed: Vec<String>,
    /// Control files that were changed or removed and were put back.
    pub restored: Vec<String>,
}

impl Snapshot {
    /// The protected entries that no other protected entry contains: what
    /// the sandbox binds read-only.
    pub(crate) fn roots(&self) -> impl Iterator<Item = &Path> {
        self.items
            .keys()
            .filter(|p| !self.covers_strictly(p))
            .map(PathBuf::as_path)
    }

    /// The entries the hidden-path globs matched (a walk stops at a match),
    /// when the scan was given globs.
    pub(crate) fn hidden(&self) -> &[PathBuf] {
        &self.hidden
    }

    /// Whether `rel` is a protected entry or lies beneath one.
    #[cfg(test)]
    pub(crate) fn covers(&self, rel: &Path) -> bool {
        rel.ancestors()
            .any(|a| !a.as_os_str().is_empty() && self.items.contains_key(a))
    }

    /// Makes the workspace's protected set equal to `self` again, given
    /// what it is `now`. New entries go first (deepest first), then
    /// directories are recreated and files rewritten (shallowest first).
    pub(crate) fn restore(&self, b: &Beneath, now: &Snapshot) -> io::Result<Restored> {
        let mut out = Restored::default();
        for (p, _) in now.items.iter().rev() {
            if !self.items.contains_key(p) && !self.covers_strictly(p) && b.remove(p)? {
                out.removed.push(p.to_string_lossy().into_owned());
            }
        }
        // A new entry beneath an old directory (a new hook).
        for (p, _) in now.items.iter().rev() {
            if !self.items.contains_key(p) && self.covers_strictly(p) && b.remove(p)? {
                out.removed.push(p.to_string_lossy().into_owned());
            }
        }
        for (p, was) in &self.items {
            if now.items.get(p) == Some(was) {
                continue;
            }
            match was {
                Item::Dir => {
                    if !matches!(
                        b.lstat(p)?,
                        Some(Entry {
                            kind: FileType::Directory,
                            ..
                        })
                    ) {
                        b.remove(p)?;
                        b.create_dirs(p)?;
                    }
                }
                Item::File { bytes, mode } => b.write(p, bytes, *mode)?,
                // A symlink or special file that changed cannot be made
                // again faithfully; removing it leaves git nothing to run.
                Item::Other(_) => {
                    b.remove(p)?;
                }
            }
            out.restored.push(p.to_string_lossy().into_owned());
        }
        out.removed.sort();
        out.restored.sort();
        Ok(out)
    }

    fn covers_strictly(&self, rel: &Path) -> bool {
        rel.ancestors()
            .skip(1)
            .any(|a| !a.as_os_str().is_empty() && self.items.contains_key(a))
    }
}

/// A scan that could not be completed: the protected set is unknown, so the
/// call fails.
#[derive(Debug, thiserror::Error)]
#[error("cannot check the workspace's git state: {0}")]
pub(crate) struct ScanError(String);

/// Finds every repository in the workspace and records its control files,
/// and the `extra` protected paths (workspace-relative) that exist.
pub(crate) fn scan(b: &Beneath, extra: &[PathBuf]) -> Result<Snapshot, ScanError> {
    scan_hiding(b, extra, None)
}

/// [`scan`], also listing the entries that `hidden` (globs over the
/// workspace-relative path) matches — in the same walk.
pub(crate) fn scan_hiding(
    b: &Beneath,
    extra: &[PathBuf],
    hidden: Option<&globset::GlobSet>,
) -> Result<Snapshot, ScanError> {
    let (snap, errors) = survey(b, extra, hidden);
    match errors.into_iter().next() {
        Some(e) => Err(ScanError(e)),
        None => Ok(snap),
    }
}

/// [`scan_hiding`] at its best effort: everything that could be seen, and
/// what could not (a subtree nested too deep, an unreadable directory, too
/// many entries). After a command, what was seen is still put back even
/// when part of the workspace could not be looked at — a command must not
/// be able to keep a planted `.git` in place by making the scan fail.
pub(crate) fn survey(
    b: &Beneath,
    extra: &[PathBuf],
    hidden: Option<&globset::GlobSet>,
) -> (Snapshot, Vec<String>) {
    let mut s = Scanner {
        b,
        snap: Snapshot::default(),
        entries: 0,
        git_dirs: Vec::new(),
        hidden,
        errors: Vec::new(),
    };
    if let Err(e) = s.walk(Path::new(""), 0) {
        s.errors.push(e.0);
    }
    for p in extra {
        let plain =
            !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            s.errors.push(format!(
                "protected path {} is not a plain path relative to the workspace",
                p.display()
            ));
            continue;
        }
        // A protected path reached through a symlink is recorded as the
        // symlink's absence: lstat beneath refuses the way there.
        if let Ok(Some(_)) = b.lstat(p) {
            if let Err(e) = s.record_tree(p, 0) {
                s.errors.push(e.0);
            }
        }
    }
    // Git directories named by gitdir files and commondir files, and those
    // under modules/ and worktrees/, are protected as repositories too.
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(dir) = s.git_dirs.pop() {
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir.clone());
        if let Err(e) = s.git_dir(&dir) {
            s.errors.push(e.0);
        }
    }
    (s.snap, s.errors)
}

struct Scanner<'a> {
    b: &'a Beneath,
    snap: Snapshot,
    entries: usize,
    git_dirs: Vec<PathBuf>,
    hidden: Option<&'a globset::GlobSet>,
    errors: Vec<String>,
}

fn io_err(p: &Path, e: io::Error) -> ScanError {
    ScanError(format!("{}: {e}", p.display()))
}

impl Scanner<'_> {
    fn count(&mut self) -> Result<(), ScanError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ScanError(format!(
                "the workspace has more than {MAX_ENTRIES} entries"
            )));
        }
        Ok(())
    }

    /// Walks the work tree (not into `.git` directories) for `.git` entries.
    fn walk(&mut self, dir: &Path, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            // Not seen, and said so; the rest of the walk goes on.
            self.errors.push(format!(
                "{} is nested more than {MAX_DEPTH} directories deep",
                dir.display()
            ));
            return Ok(());
        }
        let entries = match self.b.list(dir) {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(io_err(dir, e).0);
                return Ok(());
            }
        };
        // Git takes a directory with HEAD, objects and refs (or HEAD and a
        // commondir) for a (bare) repository, whatever its name — the
        // workspace root included — and reads its config. Its own test
        // accepts objects and refs as symlinks or even executable files, so
        // any directory with a HEAD entry counts here.
        if entries.iter().any(|(e, _)| e == "HEAD") {
            self.git_dirs.push(dir.to_path_buf());
        }
        for (name, kind) in entries {
            self.count()?;
            let p = dir.join(&name);
            if let Some(h) = self.hidden {
                if h.is_match(&p) {
                    self.snap.hidden.push(p);
                    continue;
                }
            }
            if name == ".git" {
                match kind {
                    FileType::Directory => {
                        self.git_dirs.push(p.clone());
                        // Secrets inside git's state are hidden too.
                        if self.hidden.is_some() {
                            self.hidden_below(&p, depth + 1)?;
                        }
                    }
                    FileType::RegularFile => {
                        self.record(&p)?;
                        if let Some(target) = self.pointer(&p, "gitdir:")? {
                            self.git_dirs.push(target);
                        }
                    }
                    _ => self.record(&p)?,
                }
                continue;
            }
            if kind == FileType::Directory {
                self.walk(&p, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Lists the hidden matches below `dir` (a `.git` directory, which the
    /// work-tree walk does not enter).
    fn hidden_below(&mut self, dir: &Path, depth: usize) -> Result<(), ScanError> {
        let Some(h) = self.hidden else {
            return Ok(());
        };
        if depth > MAX_DEPTH {
            return Err(ScanError(format!("{} is nested too deep", dir.display())));
        }
        let entries = self.b.list(dir).map_err(|e| io_err(dir, e))?;
        for (name, kind) in entries {
            self.count()?;
            let p = dir.join(&name);
            if h.is_match(&p) {
                self.snap.hidden.push(p);
            } else if kind == FileType::Directory {
                self.hidden_below(&p, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Records the control files of the git directory `dir`.
    fn git_dir(&mut self, dir: &Path) -> Result<(), ScanError> {
        let Ok(entries) = self.b.list(dir) else {
            return Ok(());
        };
        for (name, kind) in entries {
            self.count()?;
            let p = dir.join(&name);
            let name = name.to_string_lossy();
            match name.as_ref() {
                "config" | "config.worktree" | "gitdir" => self.record(&p)?,
                "commondir" => {
                    self.record(&p)?;
                    if kind == FileType::RegularFile {
                        if let Some(target) = self.pointer(&p, "")? {
                            self.git_dirs.push(target);
                        }
                    }
                }
                "hooks" | "info" => self.record_tree(&p, 0)?,
                "modules" | "worktrees" if kind == FileType::Directory => {
                    self.nested(&p, 0)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Under `modules/` (which nests: `modules/a/modules/b`) and
    /// `worktrees/`, every directory holding a `HEAD` or a `config` is a
    /// git directory.
    fn nested(&mut self, dir: &Path, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError(format!("{} is nested too deep", dir.display())));
        }
        let entries = self.b.list(dir).map_err(|e| io_err(dir, e))?;
        for (name, kind) in entries {
            self.count()?;
            if kind != FileType::Directory {
                continue;
            }
            let p = dir.join(&name);
            let inner = self.b.list(&p).map_err(|e| io_err(&p, e))?;
            let is_git = inner
                .iter()
                .any(|(n, _)| n == "HEAD" || n == "config" || n == "commondir");
            if is_git {
                self.git_dirs.push(p);
            } else {
                self.nested(&p, depth + 1)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, p: &Path) -> Result<(), ScanError> {
        let Some(e) = self.b.lstat(p).map_err(|e| io_err(p, e))? else {
            return Ok(());
        };
        let item = match e.kind {
            FileType::Directory => Item::Dir,
            FileType::RegularFile => {
                if e.size > MAX_FILE {
                    return Err(ScanError(format!(
                        "{} is larger than {} MiB; a git control file that large is refused",
                        p.display(),
                        MAX_FILE >> 20
                    )));
                }
                Item::File {
                    bytes: self.b.read(p, MAX_FILE).map_err(|e| io_err(p, e))?,
                    mode: e.mode,
                }
            }
            _ => Item::Other(e.mode),
        };
        self.snap.items.insert(p.to_path_buf(), item);
        Ok(())
    }

    fn record_tree(&mut self, p: &Path, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError(format!("{} is nested too deep", p.display())));
        }
        self.record(p)?;
        if let Some(Item::Dir) = self.snap.items.get(p) {
            let entries = self.b.list(p).map_err(|e| io_err(p, e))?;
            for (name, _) in entries {
                self.count()?;
                self.record_tree(&p.join(name), depth + 1)?;
            }
        }
        Ok(())
    }

    /// The workspace-relative directory a `gitdir:` file or a `commondir`
    /// names, when it lies inside the workspace (folded lexically: the scan
    /// itself never follows a symlink, so a link on the way is simply not
    /// found).
    fn pointer(&mut self, file: &Path, prefix: &str) -> Result<Option<PathBuf>, ScanError> {
        let bytes = self.b.read(file, 4096).map_err(|e| io_err(file, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let Some(target) = text.lines().next().and_then(|l| l.strip_prefix(prefix)) else {
            return Ok(None);
        };
        let target = Path::new(target.trim());
        if target.is_absolute() {
            return Ok(None);
        }
        let mut out = PathBuf::new();
        for c in file
            .parent()
            .unwrap_or(Path::new(""))
            .join(target)
            .components()
        {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return Ok(None);
                    }
                }
                _ => return Ok(None),
            }
        }
        Ok((!out.as_os_str().is_empty()).then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        fs::create_dir_all(ws.join(".git/objects")).unwrap();
        fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(ws.join(".git/config"), "[core]\n").unwrap();
        fs::write(ws.join(".git/hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
        fs::write(ws.join("README"), "hi").unwrap();
        (d, ws)
    }

    #[test]
    fn a_copied_git_dir_is_put_back_as_it_was() {
        let (_d, ws) = repo();
        let b = Beneath::open(&ws).unwrap();
        let before = scan(&b, &[]).unwrap();
        assert!(before.covers(Path::new(".git/config")));
        // mv .git .g && cp -r .g .git, then a hook and an fsmonitor.
        fs::rename(ws.join(".git"), ws.join(".g")).unwrap();
        fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(
            ws.join(".git/config"),
            "[core]\nfsmonitor = touch /tmp/pwned\n",
        )
        .unwrap();
        fs::write(ws.join(".git/hooks/pre-commit"), "#!/bin/sh\nevil\n").unwrap();
        let now = scan(&b, &[]).unwrap();
        let r = before.restore(&b, &now).unwrap();
        assert_eq!(
            fs::read_to_string(ws.join(".git/config")).unwrap(),
            "[core]\n"
        );
        assert!(!ws.join(".git/hooks/pre-commit").exists());
        assert!(ws.join(".git/hooks/pre-commit.sample").exists());
        assert!(
            r.removed.contains(&".git/hooks/pre-commit".to_string()),
            "{r:?}"
        );
        assert_eq!(scan(&b, &[]).unwrap(), before);
    }

    #[test]
    fn a_planted_gitdir_file_and_a_nested_repository_are_removed() {
        let (_d, ws) = repo();
        fs::create_dir_all(ws.join("sub")).unwrap();
        let b = Beneath::open(&ws).unwrap();
        let before = scan(&b, &[]).unwrap();
        fs::write(ws.join("sub/.git"), "gitdir: ../evil\n").unwrap();
        fs::create_dir_all(ws.join("evil/hooks")).unwrap();
        fs::write(ws.join("evil/config"), "[core]\nfsmonitor = x\n").unwrap();
        fs::create_dir_all(ws.join("nested/.git/hooks")).unwrap();
        fs::write(ws.join("nested/.git/hooks/post-checkout"), "evil").unwrap();
        let now = scan(&b, &[]).unwrap();
        assert!(now.covers(Path::new("evil/config")), "{now:?}");
        let r = before.restore(&b, &now).unwrap();
        assert!(!ws.join("sub/.git").exists());
        assert!(!ws.join("evil/config").exists());
        assert!(!ws.join("nested/.git/hooks").exists());
        assert!(!r.removed.is_empty());
        assert_eq!(scan(&b, &[]).unwrap(), before);
    }

    #[test]
    fn a_git_symlink_is_never_followed_and_is_removed_when_new() {
        let (d, ws) = repo();
        let outside = d.path().join("outside");
        fs::create_dir_all(outside.join("hooks")).unwrap();
        fs::write(outside.join("config"), "keep").unwrap();
        let b = Beneath::open(&ws).unwrap();
        let before = scan(&b, &[]).unwrap();
        fs::rename(ws.join(".git"), ws.join(".g")).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join(".git")).unwrap();
        let now = scan(&b, &[]).unwrap();
        before.restore(&b, &now).unwrap();
        assert_eq!(fs::read_to_string(outside.join("config")).unwrap(), "keep");
        assert!(outside.join("hooks").exists());
        assert!(fs::symlink_metadata(ws.join(".git")).unwrap().is_dir());
        assert_eq!(
            fs::read_to_string(ws.join(".git/config")).unwrap(),
            "[core]\n"
        );
    }

    #[test]
    fn commondir_and_modules_are_repositories_too() {
        let (_d, ws) = repo();
        fs::create_dir_all(ws.join(".git/modules/lib/hooks")).unwrap();
        fs::write(ws.join(".git/modules/lib/HEAD"), "x").unwrap();
        fs::write(ws.join(".git/modules/lib/config"), "[core]\n").unwrap();
        fs::create_dir_all(ws.join("common/info")).unwrap();
        fs::write(ws.join("common/config"), "[core]\n").unwrap();
        fs::write(ws.join(".git/commondir"), "../common\n").unwrap();
        let b = Beneath::open(&ws).unwrap();
        let s = scan(&b, &[]).unwrap();
        for p in [
            ".git/modules/lib/config",
            ".git/modules/lib/hooks",
            "common/config",
            "common/info",
            ".git/commondir",
        ] {
            assert!(s.covers(Path::new(p)), "{p} not protected: {s:?}");
        }
        assert!(!s.covers(Path::new("README")));
        assert!(!s.covers(Path::new(".git/objects")));
    }
}
