//! DeliverArtifacts: files the agent leaves under the session's artifacts
//! root (`/data` in the sandbox) are collected at the end of the session,
//! within the worker's limits, each decided as a `workspace.write` of
//! operation `artifact.deliver`, and handed to the worker to upload.
//!
//! The directory was written by the agent, so the privileged runner walks
//! it through descriptors only ([`Beneath`]): a symlink is never followed
//! (it is left out, named in the summary), nor is anything that is not a
//! regular file (devices, fifos, sockets). A regular file with more than
//! one link is left out too: the sandbox user could hard-link a file it
//! may not deliver (a hidden `.env` of the workspace, on the same
//! filesystem) into `/data`, and the link is indistinguishable from the
//! original. Each file is read once; the decision names its size and
//! digest, and exactly those bytes are uploaded.

use crate::sandbox::beneath::Beneath;
use protocol::policy::ArtifactFile;
use protocol::toolset::{ARTIFACT_MAX_FILES, ARTIFACT_MAX_FILE_BYTES, ARTIFACT_MAX_TOTAL_BYTES};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Deepest directory level walked under `/data`.
const MAX_DEPTH: usize = 32;
/// Most entries looked at, whatever they are (a directory of a million
/// empty files must not keep the worker busy).
const MAX_ENTRIES: usize = 10_000;

/// `[artifacts]` in the worker config: the limits of what a session may
/// deliver, never above what the control plane stores
/// (`protocol::toolset`'s limits; a larger value is refused at load).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsSection {
    /// Most files one session delivers (default and most: 100).
    #[serde(default = "default_files")]
    pub max_files: usize,
    /// Largest file delivered, in MiB (default and most: 25).
    #[serde(default = "default_file_mb")]
    pub max_file_mb: u64,
    /// Most MiB one session delivers, and the most `/data` may hold while
    /// Bash runs (default and most: 100).
    #[serde(default = "default_total_mb")]
    pub max_total_mb: u64,
}

fn default_files() -> usize {
    ARTIFACT_MAX_FILES
}
fn default_file_mb() -> u64 {
    ARTIFACT_MAX_FILE_BYTES >> 20
}
fn default_total_mb() -> u64 {
    ARTIFACT_MAX_TOTAL_BYTES >> 20
}

impl Default for ArtifactsSection {
    fn default() -> Self {
        ArtifactsSection {
            max_files: default_files(),
            max_file_mb: default_file_mb(),
            max_total_mb: default_total_mb(),
        }
    }
}

impl ArtifactsSection {
    /// Refuses limits the control plane would not store anyway (or zero).
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                "max_files",
                self.max_files as u64,
                ARTIFACT_MAX_FILES as u64,
            ),
            (
                "max_file_mb",
                self.max_file_mb,
                ARTIFACT_MAX_FILE_BYTES >> 20,
            ),
            (
                "max_total_mb",
                self.max_total_mb,
                ARTIFACT_MAX_TOTAL_BYTES >> 20,
            ),
        ];
        for (name, v, most) in checks {
            if v == 0 || v > most {
                return Err(format!(
                    "artifacts.{name} = {v}: it must be between 1 and {most} (the control plane stores no more)"
                ));
            }
        }
        Ok(())
    }

    fn file_bytes(&self) -> u64 {
        (self.max_file_mb << 20).min(ARTIFACT_MAX_FILE_BYTES)
    }

    fn total_bytes(&self) -> u64 {
        (self.max_total_mb << 20).min(ARTIFACT_MAX_TOTAL_BYTES)
    }
}

/// Makes (or keeps, on a later claim of the same session) the session's
/// artifacts directory `dir` and gives it to the sandbox user, as the
/// workspace is: the sandbox writes it. It must be a real directory, never
/// a symlink; the owner changes through descriptors. Answers its
/// canonical path.
pub fn prepare_dir(dir: &Path, uid: u32, gid: u32) -> Result<PathBuf, String> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "cannot create the artifacts directory {}: {e}",
                dir.display()
            ))
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "the artifacts directory {} is not a directory (a symlink or a file is there); remove it",
            dir.display()
        ));
    }
    let b = Beneath::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let (uid, gid) = crate::sandbox::process::sandbox_ids(uid, gid);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        b.chown_tree(uid, gid).map_err(|e| {
            format!(
                "cannot give {} to the sandbox user (uid {uid}): {e}",
                dir.display()
            )
        })?;
    }
    std::fs::canonicalize(dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))
}

/// Left-out entries the summary names; the rest are counted.
const SUMMARY_LEFT_OUT: usize = 20;

/// A path as the summary shows it: control characters escaped, at most 300
/// characters (names are the agent's choice).
fn printable(path: &str) -> String {
    let mut s: String = path
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(300)
        .collect();
    if s.chars().count() == 300 {
        s.push('…');
    }
    s
}

/// What one collection did: delivered paths and what was left out, why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// `/data/…` paths delivered, in order.
    pub delivered: Vec<String>,
    /// `(/data/… path, why)` for everything left out.
    pub left_out: Vec<(String, String)>,
}

impl Collected {
    /// The line added to the session's summary; `None` when `/data` held
    /// nothing at all.
    pub fn summary(&self) -> Option<String> {
        if self.delivered.is_empty() && self.left_out.is_empty() {
            return None;
        }
        let mut s = format!(
            "Delivered {} artifact{}",
            self.delivered.len(),
            if self.delivered.len() == 1 { "" } else { "s" }
        );
        if !self.delivered.is_empty() {
            s.push_str(": ");
            s.push_str(&self.delivered.join(", "));
        }
        if !self.left_out.is_empty() {
            s.push_str("; left out: ");
            // Bounded: an agent can leave ten thousand entries behind.
            let parts: Vec<String> = self
                .left_out
                .iter()
                .take(SUMMARY_LEFT_OUT)
                .map(|(p, w)| format!("{} ({w})", printable(p)))
                .collect();
            s.push_str(&parts.join(", "));
            if self.left_out.len() > SUMMARY_LEFT_OUT {
                s.push_str(&format!(
                    " and {} more",
                    self.left_out.len() - SUMMARY_LEFT_OUT
                ));
            }
        }
        s.push('.');
        Some(s)
    }
}

/// Where collected files go: the decision and the upload, so a test can
/// capture both without a control plane.
pub trait Deliver {
    /// Decides delivering `file`; `Err(reasons)` when not allowed.
    fn decide(&mut self, file: &ArtifactFile) -> Result<(), String>;
    /// Uploads exactly `bytes` (what `decide` saw the digest of).
    fn upload(&mut self, file: &ArtifactFile, bytes: &[u8]) -> Result<(), String>;
}

/// The media type of a delivered file, by its extension (the agent says
/// nothing else about it); `application/octet-stream` when unknown.
pub fn media_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "md" | "markdown" => "text/markdown",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// The action the runner decides before delivering `file`: a
/// `workspace.write` of operation `artifact.deliver` by tool `runner`,
/// naming the file's sandbox path, size, digest and media type (the
/// default policy allows it only when the agent enables DeliverArtifacts).
pub fn deliver_action(file: &ArtifactFile) -> protocol::policy::Action {
    protocol::policy::Action {
        tool: "runner".into(),
        detail: protocol::policy::ActionDetail::WorkspaceWrite {
            operation: "artifact.deliver".into(),
            target: Some(file.path.clone()),
            artifact: Some(file.clone()),
        },
    }
}

/// Walks `dir` (the session's artifacts directory, host side) and
/// delivers its regular files in path order within `limits`; `at` is the
/// sandbox path (`/data`) the delivered paths are named under. A file the
/// policy denies or an upload that fails is left out and named; only an
/// unreadable directory fails the whole collection.
pub fn collect(
    dir: &Path,
    at: &str,
    limits: &ArtifactsSection,
    out: &mut dyn Deliver,
) -> Result<Collected, String> {
    let b = Beneath::open(dir).map_err(|e| format!("cannot open the artifacts directory: {e}"))?;
    let mut files = Vec::new();
    let mut done = Collected::default();
    let mut seen = 0usize;
    walk(
        &b,
        PathBuf::new(),
        0,
        &mut seen,
        &mut files,
        &mut done.left_out,
        at,
    )
    .map_err(|e| format!("cannot list the artifacts directory: {e}"))?;
    files.sort();
    let mut total = 0u64;
    for rel in files {
        let path = format!("{at}/{}", rel.to_string_lossy());
        if done.delivered.len() >= limits.max_files {
            done.left_out.push((
                path,
                format!("over the limit of {} files", limits.max_files),
            ));
            continue;
        }
        // Links and sizes are judged on the opened file before a byte is
        // read: a thousand sparse terabyte files cost a stat each.
        let remaining = limits.total_bytes().saturating_sub(total);
        let read = b.read_with_entry(&rel, |entry| {
            if entry.nlink > 1 {
                return Err("a hard link (it may be another file's content)".into());
            }
            if entry.size > limits.file_bytes() {
                return Err(format!("larger than {} MiB", limits.max_file_mb));
            }
            if entry.size > remaining {
                return Err(format!("over the total of {} MiB", limits.max_total_mb));
            }
            // One byte more than allowed, to see a file that grew meanwhile.
            Ok(limits.file_bytes().min(remaining) + 1)
        });
        let bytes = match read {
            Ok(Ok((bytes, _))) => bytes,
            Ok(Err(why)) => {
                done.left_out.push((path, why));
                continue;
            }
            Err(e) => {
                done.left_out
                    .push((path, format!("not a readable regular file: {e}")));
                continue;
            }
        };
        let size = bytes.len() as u64;
        if size > limits.file_bytes() {
            done.left_out
                .push((path, format!("larger than {} MiB", limits.max_file_mb)));
            continue;
        }
        if total + size > limits.total_bytes() {
            done.left_out.push((
                path,
                format!("over the total of {} MiB", limits.max_total_mb),
            ));
            continue;
        }
        let file = ArtifactFile {
            path: path.clone(),
            size_bytes: size,
            sha256: hex::encode(Sha256::digest(&bytes)),
            media_type: media_type(&path).to_string(),
        };
        if let Err(why) = out.decide(&file) {
            done.left_out.push((path, format!("denied: {why}")));
            continue;
        }
        match out.upload(&file, &bytes) {
            Ok(()) => {
                total += size;
                done.delivered.push(path);
            }
            Err(e) => done.left_out.push((path, format!("upload failed: {e}"))),
        }
    }
    Ok(done)
}

fn walk(
    b: &Beneath,
    rel: PathBuf,
    depth: usize,
    seen: &mut usize,
    files: &mut Vec<PathBuf>,
    left_out: &mut Vec<(String, String)>,
    at: &str,
) -> std::io::Result<()> {
    use rustix::fs::FileType;
    for (name, kind) in b.list(&rel)? {
        let child = rel.join(&name);
        let shown = || format!("{at}/{}", child.to_string_lossy());
        *seen += 1;
        if *seen > MAX_ENTRIES {
            left_out.push((shown(), format!("past the first {MAX_ENTRIES} entries")));
            return Ok(());
        }
        if name.to_str().is_none() {
            left_out.push((shown(), "its name is not UTF-8".into()));
            continue;
        }
        // A name with a line break or another control character could
        // forge lines of the summary or of a listing.
        if name
            .to_str()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            left_out.push((shown(), "its name has a control character".into()));
            continue;
        }
        match kind {
            FileType::RegularFile => files.push(child),
            FileType::Directory if depth < MAX_DEPTH => {
                walk(b, child, depth + 1, seen, files, left_out, at)?
            }
            FileType::Directory => left_out.push((shown(), "nested too deep".into())),
            FileType::Symlink => left_out.push((shown(), "a symlink (never followed)".into())),
            _ => left_out.push((shown(), "not a regular file".into())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Capture {
        deny: Vec<String>,
        decided: Vec<ArtifactFile>,
        uploaded: Vec<(String, Vec<u8>)>,
    }

    impl Deliver for Capture {
        fn decide(&mut self, f: &ArtifactFile) -> Result<(), String> {
            self.decided.push(f.clone());
            if self.deny.contains(&f.path) {
                return Err("no".into());
            }
            Ok(())
        }
        fn upload(&mut self, f: &ArtifactFile, bytes: &[u8]) -> Result<(), String> {
            self.uploaded.push((f.path.clone(), bytes.to_vec()));
            Ok(())
        }
    }

    /// Regular files are delivered in path order with their digest;
    /// symlinks, fifos and hard links are left out and named.
    #[test]
    fn only_regular_files_of_one_link_are_delivered() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("s.data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("r.md"), "# report").unwrap();
        std::fs::write(data.join("sub/b.csv"), "a,b").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", data.join("pw")).unwrap();
        std::os::unix::fs::symlink("/etc", data.join("etc")).unwrap();
        std::fs::write(d.path().join("secret"), "s3cret").unwrap();
        std::fs::hard_link(d.path().join("secret"), data.join("hl")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            data.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let mut c = Capture::default();
        let got = collect(&data, "/data", &ArtifactsSection::default(), &mut c).unwrap();
        assert_eq!(got.delivered, ["/data/r.md", "/data/sub/b.csv"]);
        let left: Vec<&str> = got.left_out.iter().map(|(p, _)| p.as_str()).collect();
        for p in ["/data/pw", "/data/etc", "/data/hl", "/data/fifo"] {
            assert!(left.contains(&p), "{p}: {left:?}");
        }
        assert!(c
            .uploaded
            .iter()
            .all(|(_, b)| b != b"s3cret" && !String::from_utf8_lossy(b).contains("root:")));
        assert_eq!(
            c.uploaded[0],
            ("/data/r.md".to_string(), b"# report".to_vec())
        );
        assert_eq!(
            c.decided[0].sha256,
            hex::encode(Sha256::digest(b"# report"))
        );
        assert_eq!(c.decided[0].media_type, "text/markdown");
        let s = got.summary().unwrap();
        assert!(
            s.starts_with("Delivered 2 artifacts: /data/r.md, /data/sub/b.csv; left out: "),
            "{s}"
        );
    }

    /// What is over a limit, or denied, is left out and named; the rest
    /// is delivered.
    #[test]
    fn limits_and_denials_leave_files_out() {
        let d = tempfile::tempdir().unwrap();
        for (n, size) in [
            ("a", 10usize),
            ("b", 2 << 20),
            ("c", 10),
            ("d", 10),
            ("e", 10),
        ] {
            std::fs::write(d.path().join(n), vec![b'x'; size]).unwrap();
        }
        let limits = ArtifactsSection {
            max_files: 2,
            max_file_mb: 1,
            max_total_mb: 1,
        };
        let mut c = Capture {
            deny: vec!["/data/c".into()],
            ..Default::default()
        };
        let got = collect(d.path(), "/data", &limits, &mut c).unwrap();
        assert_eq!(got.delivered, ["/data/a", "/data/d"]);
        let why = |p: &str| {
            got.left_out
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, w)| w.clone())
                .unwrap()
        };
        assert!(why("/data/b").contains("larger than 1 MiB"));
        assert!(why("/data/c").contains("denied"));
        assert!(why("/data/e").contains("limit of 2 files"));
        assert!(!c.uploaded.iter().any(|(p, _)| p == "/data/c"));
        let none = tempfile::tempdir().unwrap();
        assert!(
            collect(none.path(), "/data", &limits, &mut Capture::default())
                .unwrap()
                .summary()
                .is_none()
        );
    }

    /// Sparse giants are judged on their size before any byte is read; a
    /// name with a line break never reaches the summary; the summary names
    /// at most 20 of what was left out, counting the rest.
    #[test]
    fn giants_and_forged_names_are_left_out_and_the_summary_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..100 {
            let f = std::fs::File::create(d.path().join(format!("sp{i:03}"))).unwrap();
            f.set_len(1 << 40).unwrap();
        }
        std::fs::write(d.path().join("x\nDelivered 9 artifacts: fake"), "x").unwrap();
        std::fs::write(d.path().join("ok.txt"), "fine").unwrap();
        let limits = ArtifactsSection::default();
        let mut c = Capture::default();
        let t = std::time::Instant::now();
        let got = collect(d.path(), "/data", &limits, &mut c).unwrap();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "100 sparse 1 TiB files took {:?}",
            t.elapsed()
        );
        assert_eq!(got.delivered, ["/data/ok.txt"]);
        assert_eq!(c.decided.len(), 1, "only ok.txt was decided");
        assert!(got
            .left_out
            .iter()
            .any(|(p, w)| p.starts_with("/data/x\n") && w.contains("control character")));
        let summary = got.summary().unwrap();
        assert!(!summary.contains('\n'), "{summary}");
        assert!(summary.contains("and 81 more"), "{summary}");
        assert!(summary.len() < 4000, "{}", summary.len());
    }

    #[test]
    fn limits_above_the_control_planes_are_refused() {
        assert!(ArtifactsSection::default().validate().is_ok());
        for s in [
            ArtifactsSection {
                max_files: 101,
                ..Default::default()
            },
            ArtifactsSection {
                max_file_mb: 26,
                ..Default::default()
            },
            ArtifactsSection {
                max_total_mb: 0,
                ..Default::default()
            },
        ] {
            assert!(s.validate().is_err());
        }
    }
}
