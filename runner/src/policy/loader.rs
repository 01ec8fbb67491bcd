//! Loading a policy set: which files, from where, and the trust checks.
//!
//! Trust rule 1 (DESIGN.md): policies and their data load only from the
//! worker's configured paths — or from the default compiled into the binary —
//! never from a workspace, a session or the model. So a policy directory
//! inside (or around) a workspace root is refused, and so is any file an
//! unprivileged user other than the owner could have written.
//!
//! Layout follows OPA: every `*.rego` file below a directory is a module;
//! a `data.json` file is data placed at its directory's path
//! (`dir/limits/data.json` → `data.limits`).

use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One policy or data file, as read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Display name: the file's path (or `embedded:NAME`).
    pub name: String,
    /// For data files: where under `data` the document goes (empty = root).
    pub data_path: Vec<String>,
    /// The file's content, read once, so what is compiled is what was checked.
    pub text: String,
}

/// Every file of one policy set.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    /// The `.rego` files, compiled as modules.
    pub modules: Vec<SourceFile>,
    /// The `data.json` files, merged under `data`.
    pub data: Vec<SourceFile>,
}

/// The default policy compiled into the binary: used when no directory is
/// configured, so a fresh install is deny-by-default, not allow-all.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "decision.rego",
        include_str!("../../../policies/decision.rego"),
    ),
    ("fs.rego", include_str!("../../../policies/fs.rego")),
    ("shell.rego", include_str!("../../../policies/shell.rego")),
    ("net.rego", include_str!("../../../policies/net.rego")),
    (
        "platform.rego",
        include_str!("../../../policies/platform.rego"),
    ),
    ("mcp.rego", include_str!("../../../policies/mcp.rego")),
    ("search.rego", include_str!("../../../policies/search.rego")),
    (
        "decision_test.rego",
        include_str!("../../../policies/decision_test.rego"),
    ),
    (
        "fs_test.rego",
        include_str!("../../../policies/fs_test.rego"),
    ),
    (
        "shell_test.rego",
        include_str!("../../../policies/shell_test.rego"),
    ),
    (
        "net_test.rego",
        include_str!("../../../policies/net_test.rego"),
    ),
    (
        "platform_test.rego",
        include_str!("../../../policies/platform_test.rego"),
    ),
    (
        "mcp_test.rego",
        include_str!("../../../policies/mcp_test.rego"),
    ),
    (
        "search_test.rego",
        include_str!("../../../policies/search_test.rego"),
    ),
    (
        "repository_test.rego",
        include_str!("../../../policies/repository_test.rego"),
    ),
];

/// Names of the embedded policy files (a test checks none is forgotten).
pub fn embedded_names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(n, _)| *n).collect()
}

/// A policy set that must not be loaded, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A policy directory or file lies inside (or contains) a workspace.
    #[error("policy path {path} is inside workspace {workspace} (or contains it): policies load only from the worker's own directories, never from a workspace; move the policies out and point policy.dirs at the new place")]
    InsideWorkspace {
        /// The configured policy path.
        path: PathBuf,
        /// The session workspace root it overlaps.
        workspace: PathBuf,
    },
    /// A policy file or directory is writable by group or others.
    #[error("policy path {path} is writable by group or others (mode {mode:o}); run `chmod go-w {path}` so that only its owner can change policy")]
    Writable {
        /// The file or directory others could change.
        path: PathBuf,
        /// Its mode, to show what to fix.
        mode: u32,
    },
    /// A path could not be read.
    #[error("cannot read policy path {path}: {message}; check that it exists and the runner may read it")]
    Read {
        /// The path that could not be read.
        path: PathBuf,
        /// The operating system's error.
        message: String,
    },
    /// The directories hold no `.rego` file at all.
    #[error("no .rego files found in {dirs}; point policy.dirs (or --policy) at a directory of policies, e.g. the shipped policies/")]
    Empty {
        /// The directories searched, comma separated.
        dirs: String,
    },
}

/// The built-in default policy set.
pub fn embedded() -> PolicySources {
    PolicySources {
        modules: EMBEDDED
            .iter()
            .map(|(name, text)| SourceFile {
                name: format!("embedded:{name}"),
                data_path: Vec::new(),
                text: (*text).to_string(),
            })
            .collect(),
        data: Vec::new(),
    }
}

/// Reads every policy and data file below `dirs`, refusing any directory
/// inside or around one of `workspaces`, and any file others could write.
pub fn read_dirs(dirs: &[PathBuf], workspaces: &[PathBuf]) -> Result<PolicySources, LoadError> {
    let mut sources = PolicySources::default();
    for dir in dirs {
        let canon = std::fs::canonicalize(dir).map_err(|e| LoadError::Read {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        check_outside_workspaces(&canon, workspaces)?;
        walk(&canon, &canon, workspaces, &mut sources)?;
    }
    if sources.modules.is_empty() {
        let dirs = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(LoadError::Empty { dirs });
    }
    Ok(sources)
}

fn check_outside_workspaces(path: &Path, workspaces: &[PathBuf]) -> Result<(), LoadError> {
    for ws in workspaces {
        let ws_canon = std::fs::canonicalize(ws).unwrap_or_else(|_| ws.clone());
        if path.starts_with(&ws_canon) || ws_canon.starts_with(path) {
            return Err(LoadError::InsideWorkspace {
                path: path.to_path_buf(),
                workspace: ws_canon,
            });
        }
    }
    Ok(())
}

fn check_not_writable_by_others(path: &Path) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(LoadError::Writable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn walk(
    root: &Path,
    dir: &Path,
    workspaces: &[PathBuf],
    out: &mut PolicySources,
) -> Result<(), LoadError> {
    check_not_writable_by_others(dir)?;
    let read_err = |e: std::io::Error| LoadError::Read {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for path in entries {
        // A symlinked file or directory is judged by where it leads.
        let real = std::fs::canonicalize(&path).map_err(|e| LoadError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        check_outside_workspaces(&real, workspaces)?;
        if real.is_dir() {
            walk(root, &path, workspaces, out)?;
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_rego = name.ends_with(".rego");
        let is_data = name == "data.json";
        if !is_rego && !is_data {
            continue;
        }
        check_not_writable_by_others(&real)?;
        let text = std::fs::read_to_string(&real).map_err(|e| LoadError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let data_path = if is_data {
            path.parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .map(|rel| {
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let file = SourceFile {
            name: path.display().to_string(),
            data_path,
            text,
        };
        if is_rego {
            out.modules.push(file);
        } else {
            out.data.push(file);
        }
    }
    Ok(())
}

impl PolicySources {
    /// `sha256:` hash over every file's name and contents, in load order:
    /// the policy revision every decision record carries.
    pub fn revision(&self) -> String {
        let mut h = Sha256::new();
        for f in self.modules.iter().chain(self.data.iter()) {
            // Hash the base name, not the absolute path, so the same files
            // installed elsewhere have the same revision.
            let base = f.name.rsplit(['/', ':']).next().unwrap_or(&f.name);
            h.update(base.as_bytes());
            h.update([0]);
            h.update(f.data_path.join("/").as_bytes());
            h.update([0]);
            h.update(f.text.as_bytes());
            h.update([0]);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn policy_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let f = d.path().join("p.rego");
        fs::write(
            &f,
            "package runner\nimport rego.v1\ndecision := {\"result\":\"deny\"}\n",
        )
        .unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        d
    }

    #[test]
    fn policy_dir_inside_workspace_is_refused() {
        let ws = policy_dir();
        let inner = ws.path().join("policies");
        fs::create_dir(&inner).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        let err = read_dirs(std::slice::from_ref(&inner), &[ws.path().to_path_buf()]).unwrap_err();
        assert!(matches!(err, LoadError::InsideWorkspace { .. }));
        assert!(err
            .to_string()
            .contains(&fs::canonicalize(&inner).unwrap().display().to_string()));
    }

    #[test]
    fn workspace_inside_policy_dir_is_refused() {
        let p = policy_dir();
        let ws = p.path().join("ws");
        fs::create_dir(&ws).unwrap();
        let err = read_dirs(&[p.path().to_path_buf()], &[ws]).unwrap_err();
        assert!(matches!(err, LoadError::InsideWorkspace { .. }), "{err}");
    }

    #[test]
    fn symlink_into_workspace_is_refused() {
        let p = policy_dir();
        let ws = tempfile::tempdir().unwrap();
        fs::write(ws.path().join("evil.rego"), "package runner\n").unwrap();
        std::os::unix::fs::symlink(ws.path().join("evil.rego"), p.path().join("evil.rego"))
            .unwrap();
        let err = read_dirs(&[p.path().to_path_buf()], &[ws.path().to_path_buf()]).unwrap_err();
        assert!(matches!(err, LoadError::InsideWorkspace { .. }), "{err}");
    }

    #[test]
    fn group_writable_policy_file_is_refused() {
        let p = policy_dir();
        let f = p.path().join("p.rego");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o664)).unwrap();
        let err = read_dirs(&[p.path().to_path_buf()], &[]).unwrap_err();
        assert!(
            matches!(err, LoadError::Writable { mode: 0o664, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod go-w"));
    }

    #[test]
    fn world_writable_policy_dir_is_refused() {
        let p = policy_dir();
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = read_dirs(&[p.path().to_path_buf()], &[]).unwrap_err();
        assert!(matches!(err, LoadError::Writable { .. }), "{err}");
    }

    #[test]
    fn data_json_lands_at_its_directory_path() {
        let p = policy_dir();
        let sub = p.path().join("limits");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(sub.join("data.json"), "{\"max\": 3}").unwrap();
        fs::set_permissions(sub.join("data.json"), fs::Permissions::from_mode(0o644)).unwrap();
        let s = read_dirs(&[p.path().to_path_buf()], &[]).unwrap();
        assert_eq!(s.data.len(), 1);
        assert_eq!(s.data[0].data_path, vec!["limits".to_string()]);
    }

    #[test]
    fn revision_changes_with_one_byte() {
        let p = policy_dir();
        let r1 = read_dirs(&[p.path().to_path_buf()], &[])
            .unwrap()
            .revision();
        fs::write(
            p.path().join("p.rego"),
            "package runner\nimport rego.v1\ndecision := {\"result\":\"allow\"}\n",
        )
        .unwrap();
        let r2 = read_dirs(&[p.path().to_path_buf()], &[])
            .unwrap()
            .revision();
        assert_ne!(r1, r2);
        assert!(r1.starts_with("sha256:"));
    }

    #[test]
    fn every_shipped_policy_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let mut on_disk: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rego"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = embedded_names().iter().map(|s| s.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
