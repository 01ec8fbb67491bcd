//! Path normalisation: the one place a tool's path becomes something a
//! policy can compare.
//!
//! A policy must never see `src/../../etc/passwd` and have to work out where
//! it points. Every path is resolved here — relative to the workspace, `.`
//! and `..` folded, symlinks followed exactly as the kernel would follow them
//! — and the policy gets the clean result plus an `in_workspace` flag.
//!
//! Components that do not exist yet (a file about to be created) are joined
//! lexically: a directory that does not exist cannot be a symlink. The
//! sandbox still enforces the confinement at run time, so a path swapped
//! between this check and the use is contained, not trusted.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one path may pass through, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// A path after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalizedPath {
    /// The absolute, resolved path.
    pub abs: PathBuf,
    /// Path relative to the workspace root (`.` for the root itself) when it
    /// is inside; `None` when it is outside.
    pub rel: Option<String>,
}

impl NormalizedPath {
    /// The path as policies compare it: relative when inside the workspace,
    /// absolute otherwise.
    pub(crate) fn policy_path(&self) -> String {
        match &self.rel {
            Some(r) => r.clone(),
            None => self.abs.to_string_lossy().into_owned(),
        }
    }

    /// Whether the resolved path lies inside the workspace.
    pub(crate) fn in_workspace(&self) -> bool {
        self.rel.is_some()
    }
}

/// A path that cannot be normalised; the action is denied with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// The path was empty.
    #[error("the path is empty")]
    Empty,
    /// The path contains a NUL byte.
    #[error("the path contains a NUL byte")]
    Nul,
    /// Too many symlinks (a loop, most likely).
    #[error("the path passes through more than {MAX_SYMLINKS} symlinks (a symlink loop?)")]
    SymlinkLoop,
    /// A component could not be inspected, so where it leads is unknown.
    #[error("cannot inspect {path}: {message}")]
    Inspect {
        /// The component's path.
        path: String,
        message: String,
    },
    /// The resolved path is not valid UTF-8, so policies could not match it.
    #[error("the resolved path is not valid UTF-8")]
    NotUtf8,
}

/// Resolves `requested` against the workspace root `root`, which must be
/// canonical (see [`canonical_root`]).
pub(crate) fn normalize(root: &Path, requested: &str) -> Result<NormalizedPath, PathError> {
    if requested.is_empty() {
        return Err(PathError::Empty);
    }
    if requested.contains('\0') {
        return Err(PathError::Nul);
    }
    let requested = Path::new(requested);
    let mut cur = if requested.is_absolute() {
        PathBuf::from("/")
    } else {
        root.to_path_buf()
    };
    let mut pending: VecDeque<OsString> = components(requested);
    let mut exists = true;
    let mut links = 0usize;

    while let Some(part) = pending.pop_front() {
        match part.to_str() {
            Some("/") => cur = PathBuf::from("/"),
            Some(".") => {}
            Some("..") => {
                cur.pop();
            }
            _ => {
                let next = cur.join(&part);
                if !exists {
                    cur = next;
                    continue;
                }
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(PathError::SymlinkLoop);
                        }
                        let target = std::fs::read_link(&next).map_err(|e| PathError::Inspect {
                            path: next.to_string_lossy().into_owned(),
                            message: e.to_string(),
                        })?;
                        // The link's own directory stays `cur`; an absolute
                        // target restarts from `/` (its components say so).
                        let mut spliced = components(&target);
                        spliced.extend(pending.drain(..));
                        pending = spliced;
                    }
                    Ok(_) => cur = next,
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        exists = false;
                        cur = next;
                    }
                    Err(e) => {
                        return Err(PathError::Inspect {
                            path: next.to_string_lossy().into_owned(),
                            message: e.to_string(),
                        })
                    }
                }
            }
        }
    }

    let abs_str = cur.to_str().ok_or(PathError::NotUtf8)?.to_string();
    let rel = match cur.strip_prefix(root) {
        Ok(r) if r.as_os_str().is_empty() => Some(".".to_string()),
        Ok(r) => Some(r.to_str().ok_or(PathError::NotUtf8)?.to_string()),
        Err(_) => None,
    };
    Ok(NormalizedPath {
        abs: PathBuf::from(abs_str),
        rel,
    })
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .map(|c| match c {
            Component::RootDir | Component::Prefix(_) => OsString::from("/"),
            Component::CurDir => OsString::from("."),
            Component::ParentDir => OsString::from(".."),
            Component::Normal(n) => n.to_os_string(),
        })
        .collect()
}

/// Canonicalises a workspace root, with an error that says what to do.
pub(crate) fn canonical_root(root: &Path) -> Result<PathBuf, String> {
    let canon = std::fs::canonicalize(root).map_err(|e| {
        format!(
            "workspace {} cannot be opened: {e}; create it or pass an existing directory",
            root.display()
        )
    })?;
    if !canon.is_dir() {
        return Err(format!("workspace {} is not a directory", root.display()));
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ws() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap().join("ws");
        std::fs::create_dir_all(root.join("src")).unwrap();
        (d, root)
    }

    #[test]
    fn plain_relative_path_stays_inside() {
        let (_d, root) = ws();
        let n = normalize(&root, "src/./main.rs").unwrap();
        assert_eq!(n.rel.as_deref(), Some("src/main.rs"));
        assert_eq!(n.abs, root.join("src/main.rs"));
    }

    #[test]
    fn dotdot_escape_is_outside() {
        let (_d, root) = ws();
        let n = normalize(&root, "../../etc/passwd").unwrap();
        assert!(!n.in_workspace());
        assert!(n.abs.ends_with("etc/passwd"));
        assert!(!n.abs.to_string_lossy().contains(".."));
    }

    #[test]
    fn dot_and_dotdot_chain_ends_outside() {
        let (_d, root) = ws();
        let n = normalize(&root, "a/./b/../../..").unwrap();
        assert!(!n.in_workspace());
        assert_eq!(n.abs, root.parent().unwrap());
    }

    #[test]
    fn absolute_path_outside_is_outside() {
        let (_d, root) = ws();
        let n = normalize(&root, "/etc/passwd").unwrap();
        assert_eq!(n.policy_path(), "/etc/passwd");
        assert!(!n.in_workspace());
    }

    #[test]
    fn absolute_path_inside_becomes_relative() {
        let (_d, root) = ws();
        let p = root.join("src/lib.rs");
        let n = normalize(&root, p.to_str().unwrap()).unwrap();
        assert_eq!(n.rel.as_deref(), Some("src/lib.rs"));
    }

    #[test]
    fn symlink_pointing_outside_is_resolved_outside() {
        let (d, root) = ws();
        let outside = d.path().join("secret");
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("link")).unwrap();
        let n = normalize(&root, "link/key.pem").unwrap();
        assert!(!n.in_workspace());
        assert_eq!(
            n.abs,
            std::fs::canonicalize(&outside).unwrap().join("key.pem")
        );
    }

    #[test]
    fn dangling_symlink_resolves_to_its_target() {
        let (_d, root) = ws();
        symlink("/etc/not-there-runner-test", root.join("dangling")).unwrap();
        let n = normalize(&root, "dangling").unwrap();
        assert_eq!(n.abs, PathBuf::from("/etc/not-there-runner-test"));
        assert!(!n.in_workspace());
    }

    #[test]
    fn relative_symlink_inside_stays_inside() {
        let (_d, root) = ws();
        symlink("src", root.join("alias")).unwrap();
        let n = normalize(&root, "alias/main.rs").unwrap();
        assert_eq!(n.rel.as_deref(), Some("src/main.rs"));
    }

    #[test]
    fn dotdot_after_symlink_follows_the_kernel() {
        // link -> /etc ; "link/.." is "/" for the kernel, not the workspace.
        let (_d, root) = ws();
        symlink("/etc", root.join("etc_link")).unwrap();
        let n = normalize(&root, "etc_link/../root").unwrap();
        assert_eq!(n.abs, PathBuf::from("/root"));
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let (_d, root) = ws();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        assert_eq!(normalize(&root, "a"), Err(PathError::SymlinkLoop));
    }

    #[test]
    fn workspace_root_itself_is_dot() {
        let (_d, root) = ws();
        assert_eq!(normalize(&root, ".").unwrap().rel.as_deref(), Some("."));
        assert_eq!(
            normalize(&root, "src/..").unwrap().rel.as_deref(),
            Some(".")
        );
    }

    #[test]
    fn empty_and_nul_paths_are_errors() {
        let (_d, root) = ws();
        assert_eq!(normalize(&root, ""), Err(PathError::Empty));
        assert_eq!(normalize(&root, "a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn sibling_with_common_prefix_is_outside() {
        let (d, root) = ws();
        std::fs::create_dir_all(d.path().join("ws-evil")).unwrap();
        let n = normalize(&root, "../ws-evil/x").unwrap();
        assert!(!n.in_workspace());
    }
}
