//! What the worker fetches and sends for the agent's wider toolset: the
//! files of a pinned skill (`GET /v1/sessions/{id}/skills/{skill_id}/{version}`
//! under the claim) and the artifacts it delivers from `/data`
//! (`PUT /v1/sessions/{id}/artifacts?claimId=…&path=…`, the body the
//! file's bytes). Limits live here so both sides refuse the same things.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most files in one skill version.
pub const SKILL_MAX_FILES: usize = 200;
/// Most bytes of one skill version's files together.
pub const SKILL_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Longest path of a file in a skill, in bytes.
pub const SKILL_MAX_PATH: usize = 255;

/// Most artifacts one session may deliver (the Cloud Agents API lists at most 100).
pub const ARTIFACT_MAX_FILES: usize = 100;
/// Largest artifact, in bytes.
pub const ARTIFACT_MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
/// Most bytes of artifacts per session.
pub const ARTIFACT_MAX_TOTAL_BYTES: u64 = 100 * 1024 * 1024;

/// One version of a skill, whole: what the worker places under
/// `/skills/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillBundle {
    /// The registry's id.
    pub skill_id: String,
    /// The version.
    pub version: String,
    /// The front matter's `name`.
    pub name: String,
    /// Its files, `SKILL.md` among them, sorted by path.
    pub files: Vec<SkillFile>,
}

/// One file of a skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillFile {
    /// Relative path inside the skill (`SKILL.md`, `scripts/run.py`):
    /// `/`-separated, no `.`/`..`/empty components.
    pub path: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
    /// Whether it is placed executable (0555 rather than 0444).
    #[serde(default)]
    pub executable: bool,
}

impl SkillFile {
    /// The decoded bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.content_base64)
            .map_err(|e| format!("file {:?} is not valid base64: {e}", self.path))
    }
}

/// Whether `path` is a plain relative path a skill may hold: the worker
/// and the registry both refuse anything else, so a bundle can never name
/// a place outside its own directory.
pub fn skill_path_ok(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= SKILL_MAX_PATH
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl SkillBundle {
    /// The bundle's digest: SHA-256 over each file in path order (its
    /// path, a NUL, `x` or `-` for executable, its length as 8 big-endian
    /// bytes, its bytes), lower-case hex. The registry pins it, the worker
    /// checks it, so what runs is exactly what was uploaded.
    pub fn digest(&self) -> Result<String, String> {
        let mut files: Vec<&SkillFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut h = Sha256::new();
        for f in files {
            let bytes = f.bytes()?;
            h.update(f.path.as_bytes());
            h.update([0u8, if f.executable { b'x' } else { b'-' }]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(&bytes);
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// An artifact as the control plane stores and lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    /// The path inside the sandbox (`/data/report.md`).
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Media type.
    pub media_type: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_paths_stay_inside() {
        for ok in ["SKILL.md", "scripts/run.py", "a/b/c.txt"] {
            assert!(skill_path_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
        ] {
            assert!(!skill_path_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_digest_covers_paths_modes_and_bytes_in_any_order() {
        let f = |p: &str, c: &str, x: bool| SkillFile {
            path: p.into(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(c),
            executable: x,
        };
        let b = |files| SkillBundle {
            skill_id: "s".into(),
            version: "1".into(),
            name: "n".into(),
            files,
        };
        let one = b(vec![f("SKILL.md", "hi", false), f("x.sh", "echo", true)]);
        let same = b(vec![f("x.sh", "echo", true), f("SKILL.md", "hi", false)]);
        assert_eq!(one.digest(), same.digest());
        for other in [
            b(vec![f("SKILL.md", "hi", false), f("x.sh", "echo", false)]),
            b(vec![f("SKILL.md", "hj", false), f("x.sh", "echo", true)]),
            b(vec![f("SKILL.mdx", "hi", false), f("x.sh", "echo", true)]),
        ] {
            assert_ne!(one.digest(), other.digest());
        }
    }
}
