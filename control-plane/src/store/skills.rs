//! The skills registry: a team's skills (Agent Skills directories: a
//! `SKILL.md` with YAML front matter, plus any files), each with
//! immutable versions whose files are blobs here. A session pins the
//! versions its agent names when it is queued ([`pin`]), with the
//! bundle's digest, and its worker fetches exactly those under its claim
//! ([`Store::skill_bundle`]). Deleting hides a skill or version from
//! lists and new pins; its rows stay, so a queued session still runs
//! what it pinned.

use super::claims::valid_claim;
use super::{now_ms, rfc3339, Missing, Store, StoreError, Tx};
use base64::Engine as _;
use protocol::session::PinnedSkill;
use protocol::toolset::{skill_path_ok, SkillBundle, SkillFile, SKILL_MAX_BYTES, SKILL_MAX_FILES};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Largest file of a skill.
pub(crate) const SKILL_MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// Most components of a path in an upload (its top directory included).
const MAX_COMPONENTS: usize = 8;
/// The front matter must end within this many bytes of `SKILL.md`.
const FRONT_MATTER_MAX: usize = 8 * 1024;
/// Most bytes of all the skills one session pins.
const PIN_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// One uploaded file: its path as the client named it (the multipart
/// part's filename) and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct UploadFile {
    /// `pdf/SKILL.md`, `pdf/scripts/run.py`, or `SKILL.md`.
    pub(crate) path: String,
    /// The bytes.
    pub(crate) data: Vec<u8>,
}

/// An upload checked against every rule, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct CheckedSkill {
    /// `name` of the front matter.
    pub(crate) name: String,
    /// `description` of the front matter.
    pub(crate) description: String,
    front_matter: String,
    /// Paths relative to the skill's directory, sorted.
    files: Vec<SkillFile>,
    sha256: String,
    size_bytes: u64,
}

/// A skill as the registry API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SkillView {
    /// Always `skill`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// `skill_…`.
    pub(crate) id: String,
    /// The title given on upload, if any.
    pub(crate) display_title: Option<String>,
    /// Its newest live version.
    pub(crate) latest_version: Option<String>,
    /// Always `custom`: this control plane hosts no built-in skills.
    pub(crate) source: &'static str,
    /// The metadata given on upload.
    pub(crate) metadata: serde_json::Map<String, Value>,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) updated_at: String,
}

/// A version of a skill as the registry API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SkillVersionView {
    /// Always `skill_version`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// `skillver_…`, derived from the skill and version.
    pub(crate) id: String,
    /// The skill.
    pub(crate) skill_id: String,
    /// Epoch microseconds as a string, like the vendor's.
    pub(crate) version: String,
    /// `name` of its front matter.
    pub(crate) name: String,
    /// `description` of its front matter.
    pub(crate) description: String,
    /// Its directory (the name): where it is placed, `/skills/<directory>`.
    pub(crate) directory: String,
    /// RFC 3339.
    pub(crate) created_at: String,
}

/// Where a list of skills or versions starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// From the first.
    #[default]
    Start,
    /// After this id (`page` and `after_id`).
    After(String),
    /// Before this id.
    Before(String),
}

/// Which skills a list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SkillQuery {
    /// 1–100.
    pub(crate) limit: usize,
    /// Where the page starts.
    pub(crate) cursor: Cursor,
    /// Only skills whose latest version has this name.
    pub(crate) name: Option<String>,
    /// Only skills with this display title.
    pub(crate) display_title: Option<String>,
    /// `custom` (all of them) or another source (none).
    pub(crate) source: Option<String>,
}

/// The id a version is shown with.
pub(crate) fn version_id(skill: &str, version: &str) -> String {
    let h = Sha256::digest(format!("{skill}\0{version}").as_bytes());
    format!("skillver_{}", &hex::encode(h)[..24])
}

fn bad(m: impl Into<String>) -> StoreError {
    StoreError::invalid(m)
}

/// Whether `n` is a skill name the spec allows: 1–64 lowercase letters,
/// digits and hyphens, not starting or ending with one, no `--`.
pub(crate) fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.contains("--")
}

/// Whether the YAML text uses an alias (`*a`): the loader expands them,
/// so they are looked for in the parser's events (a bounded document
/// either way, but a front matter has no need of them).
fn has_alias(yaml: &str) -> bool {
    use yaml_rust2::parser::{Event, Parser};
    let mut p = Parser::new_from_str(yaml);
    loop {
        match p.next_token() {
            Ok((Event::Alias(_), _)) => return true,
            Ok((Event::StreamEnd, _)) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// The front matter of `SKILL.md`: its text, `name` and `description`.
fn front_matter(text: &[u8]) -> Result<(String, String, String), StoreError> {
    use yaml_rust2::Yaml;
    let head = &text[..text.len().min(FRONT_MATTER_MAX)];
    let head = String::from_utf8_lossy(head);
    let body = head
        .strip_prefix("---\n")
        .or_else(|| head.strip_prefix("---\r\n"))
        .ok_or_else(|| bad("SKILL.md must start with YAML front matter: a line \"---\", the name and description, and a line \"---\""))?;
    let end = body
        .find("\n---")
        .ok_or_else(|| bad(format!("SKILL.md's front matter must end with a line \"---\" within its first {FRONT_MATTER_MAX} bytes")))?;
    let yaml = &body[..end + 1];
    let docs = yaml_rust2::YamlLoader::load_from_str(yaml)
        .map_err(|e| bad(format!("SKILL.md's front matter is not valid YAML: {e}")))?;
    let [doc] = docs.as_slice() else {
        return Err(bad("SKILL.md's front matter must be one YAML mapping"));
    };
    if has_alias(yaml) {
        return Err(bad(
            "SKILL.md's front matter uses YAML aliases; write the values out",
        ));
    }
    let Yaml::Hash(map) = doc else {
        return Err(bad(
            "SKILL.md's front matter must be a YAML mapping (name: …, description: …)",
        ));
    };
    let field = |k: &str| match map.get(&Yaml::String(k.into())) {
        Some(Yaml::String(s)) => Ok(Some(s.clone())),
        None => Ok(None),
        Some(_) => Err(bad(format!(
            "SKILL.md's front matter field {k} must be a string"
        ))),
    };
    let name = field("name")?.ok_or_else(|| bad("SKILL.md's front matter has no name"))?;
    if !name_ok(&name) {
        return Err(bad(format!(
            "SKILL.md's name {name:?} must be 1–64 lowercase letters, digits and hyphens, not starting or ending with a hyphen, without \"--\""
        )));
    }
    let description =
        field("description")?.ok_or_else(|| bad("SKILL.md's front matter has no description"))?;
    let n = description.chars().count();
    if !(1..=1024).contains(&n) || description.trim().is_empty() {
        return Err(bad(format!(
            "SKILL.md's description has {n} characters; it must have 1–1024"
        )));
    }
    Ok((yaml.to_string(), name, description))
}

/// Checks an upload: count, sizes, paths (one common top directory or
/// none, `SKILL.md` at its root), the front matter, no duplicates. The
/// errors name the file.
pub(crate) fn check_upload(files: Vec<UploadFile>) -> Result<CheckedSkill, StoreError> {
    if files.is_empty() {
        return Err(bad("files: give the skill's files, SKILL.md among them"));
    }
    if files.len() > SKILL_MAX_FILES {
        return Err(bad(format!(
            "files: {} files; a skill has at most {SKILL_MAX_FILES}",
            files.len()
        )));
    }
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    if total > SKILL_MAX_BYTES {
        return Err(bad(format!(
            "files: {total} bytes together; a skill has at most {SKILL_MAX_BYTES}"
        )));
    }
    for f in &files {
        if !skill_path_ok(&f.path) || f.path.split('/').count() > MAX_COMPONENTS {
            return Err(bad(format!(
                "files: path {:?} is refused: a relative path of at most 255 bytes and {MAX_COMPONENTS} components, without empty, . or .. components, a leading /, backslashes or control characters",
                f.path
            )));
        }
        if f.data.len() > SKILL_MAX_FILE_BYTES {
            return Err(bad(format!(
                "files: {:?} has {} bytes; a file has at most {SKILL_MAX_FILE_BYTES}",
                f.path,
                f.data.len()
            )));
        }
    }
    // One common top directory: every path has one and it is the same.
    let first = files[0].path.split('/').next().unwrap_or("").to_string();
    let top = files
        .iter()
        .all(|f| f.path.split_once('/').is_some_and(|(d, _)| d == first))
        .then_some(first);
    let mut out: Vec<SkillFile> = Vec::with_capacity(files.len());
    for f in files {
        let rel = match &top {
            Some(d) => f.path[d.len() + 1..].to_string(),
            None => f.path.clone(),
        };
        out.push(SkillFile {
            executable: f.data.starts_with(b"#!"),
            path: rel,
            content_base64: base64::engine::general_purpose::STANDARD.encode(&f.data),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = out.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(bad(format!("files: {:?} is given twice", w[0].path)));
    }
    let skill_md = out
        .iter()
        .find(|f| f.path == "SKILL.md")
        .ok_or_else(|| bad("files: no SKILL.md at the skill's root (pdf/SKILL.md, or SKILL.md)"))?;
    let (fm, name, description) = front_matter(&skill_md.bytes().map_err(bad)?)?;
    if let Some(d) = &top {
        if *d != name {
            return Err(bad(format!(
                "files: the directory {d:?} must be the skill's name {name:?} (SKILL.md's front matter)"
            )));
        }
    }
    let bundle = SkillBundle {
        skill_id: String::new(),
        version: String::new(),
        name: name.clone(),
        files: out,
    };
    let sha256 = bundle.digest().map_err(StoreError::corrupt)?;
    Ok(CheckedSkill {
        name,
        description,
        front_matter: fm,
        files: bundle.files,
        sha256,
        size_bytes: total,
    })
}

/// Checks the `metadata` of an upload: a JSON object of strings.
pub(crate) fn check_metadata(v: Value) -> Result<serde_json::Map<String, Value>, StoreError> {
    match v {
        Value::Null => Ok(serde_json::Map::new()),
        Value::Object(m) if m.values().all(Value::is_string) && m.len() <= 64 => Ok(m),
        _ => Err(bad(
            "metadata must be a JSON object of at most 64 string values",
        )),
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::not_found(
        Missing::Skill,
        format!("no skill {id:?}; list yours with GET /api/v1/cloud/skills"),
    )
}

fn no_version(id: &str, version: &str) -> StoreError {
    StoreError::not_found(
        Missing::Skill,
        format!("skill {id:?} has no version {version:?}; list them with GET /api/v1/cloud/skills/{id}/versions"),
    )
}

/// The newest live version of `skill`.
fn latest(tx: &Tx<'_>, skill: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT version FROM skill_versions WHERE skill_id = ?1 AND deleted_at IS NULL ORDER BY created_at DESC, CAST(version AS INTEGER) DESC LIMIT 1",
            params![skill],
            |r| r.get(0),
        )
        .optional()?)
}

fn skill_view(tx: &Tx<'_>, team: &str, id: &str) -> Result<SkillView, StoreError> {
    let row: Option<(Option<String>, String, i64, i64)> = tx
        .sql
        .query_row(
            "SELECT display_title, metadata, created_at, updated_at FROM skills WHERE id = ?1 AND team = ?2 AND deleted_at IS NULL",
            params![id, team],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (display_title, metadata, created, updated) = row.ok_or_else(|| not_found(id))?;
    Ok(SkillView {
        kind: "skill",
        id: id.to_string(),
        display_title,
        latest_version: latest(tx, id)?,
        source: "custom",
        metadata: serde_json::from_str(&metadata).map_err(StoreError::corrupt)?,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

/// Version `version` of `skill` (`latest`: the newest live one), live.
fn version_view(tx: &Tx<'_>, skill: &str, version: &str) -> Result<SkillVersionView, StoreError> {
    let v = if version == "latest" {
        latest(tx, skill)?.ok_or_else(|| no_version(skill, version))?
    } else {
        version.to_string()
    };
    tx.sql
        .query_row(
            "SELECT name, description, created_at FROM skill_versions WHERE skill_id = ?1 AND version = ?2 AND deleted_at IS NULL",
            params![skill, v],
            |r| {
                Ok(SkillVersionView {
                    kind: "skill_version",
                    id: version_id(skill, &v),
                    skill_id: skill.to_string(),
                    version: v.clone(),
                    name: r.get(0)?,
                    description: r.get(1)?,
                    directory: r.get(0)?,
                    created_at: rfc3339(r.get(2)?),
                })
            },
        )
        .optional()?
        .ok_or_else(|| no_version(skill, version))
}

/// Writes `c` as a new version of `skill`: epoch microseconds, later than
/// any before it.
fn insert_version(
    tx: &Tx<'_>,
    skill: &str,
    c: &CheckedSkill,
    now: i64,
) -> Result<String, StoreError> {
    let micros = chrono::Utc::now().timestamp_micros();
    let prev: Option<i64> = tx.sql.query_row(
        "SELECT MAX(CAST(version AS INTEGER)) FROM skill_versions WHERE skill_id = ?1",
        params![skill],
        |r| r.get(0),
    )?;
    let version = micros.max(prev.unwrap_or(0) + 1).to_string();
    tx.sql.execute(
        "INSERT INTO skill_versions (skill_id, version, name, description, front_matter, sha256, size_bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![skill, version, c.name, c.description, c.front_matter, c.sha256, c.size_bytes as i64, now],
    )?;
    for f in &c.files {
        tx.sql.execute(
            "INSERT INTO skill_files (skill_id, version, path, executable, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![skill, version, f.path, f.executable, f.bytes().map_err(StoreError::corrupt)?],
        )?;
    }
    tx.sql.execute(
        "UPDATE skills SET updated_at = ?2 WHERE id = ?1",
        params![skill, now],
    )?;
    Ok(version)
}

/// Pins the skills an agent names (`[{type: "custom", skill_id,
/// version?}]`) against `team`'s registry: each to one live version
/// (absent or `latest`: the newest now) with its digest. Unknown skills
/// or versions, another team's, and `qoder` ones are refused, naming the
/// entry.
pub(crate) fn pin(
    tx: &Tx<'_>,
    team: Option<&str>,
    refs: &[Value],
) -> Result<Vec<PinnedSkill>, StoreError> {
    let mut out: Vec<PinnedSkill> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let kind = r.get("type").and_then(Value::as_str);
        let id = r.get("skill_id").and_then(Value::as_str).unwrap_or("");
        let version = r.get("version").and_then(Value::as_str);
        match kind {
            Some("custom") => {}
            Some("qoder") => {
                return Err(bad(format!(
                    "skills[{i}]: no built-in skills on this control plane; upload {id:?} as a custom skill (POST /api/v1/cloud/skills) and name it with type \"custom\""
                )))
            }
            _ => return Err(bad(format!("skills[{i}].type must be \"custom\""))),
        }
        out.push(pin_one(tx, team, id, version).map_err(|e| match e {
            StoreError::NotFound { message, .. } => bad(format!("skills[{i}]: {message}")),
            e => e,
        })?);
    }
    check_pins(&out)?;
    Ok(out)
}

fn check_pins(pins: &[PinnedSkill]) -> Result<(), StoreError> {
    let total: u64 = pins.iter().map(|p| p.size_bytes).sum();
    if total > PIN_MAX_BYTES {
        return Err(bad(format!(
            "skills: the pinned skills take {total} bytes; a session pins at most {PIN_MAX_BYTES}"
        )));
    }
    for (i, p) in pins.iter().enumerate() {
        if pins[..i].iter().any(|q| q.name == p.name) {
            return Err(bad(format!(
                "skills: two skills are named {:?}; each is placed at /skills/<name>, so names must differ",
                p.name
            )));
        }
    }
    Ok(())
}

/// Pins one skill of `team` at `version` (absent or `latest`: the newest
/// live one).
fn pin_one(
    tx: &Tx<'_>,
    team: Option<&str>,
    id: &str,
    version: Option<&str>,
) -> Result<PinnedSkill, StoreError> {
    let team = team.ok_or_else(|| {
        bad("skills need a caller of a team (a user's token or key); this key belongs to no user")
    })?;
    let live: bool = tx
        .sql
        .query_row(
            "SELECT 1 FROM skills WHERE id = ?1 AND team = ?2 AND deleted_at IS NULL",
            params![id, team],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if !live {
        return Err(not_found(id));
    }
    let v = version_view(tx, id, version.unwrap_or("latest"))?;
    let (sha256, size): (String, i64) = tx.sql.query_row(
        "SELECT sha256, size_bytes FROM skill_versions WHERE skill_id = ?1 AND version = ?2",
        params![id, v.version],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(PinnedSkill {
        skill_id: id.to_string(),
        version: v.version,
        name: v.name,
        description: v.description,
        sha256,
        size_bytes: size as u64,
    })
}

/// Re-resolves pins a caller sent inline against `team`: only the id and
/// version are taken from the caller; name, description, digest and size
/// are the registry's.
pub(crate) fn repin(
    tx: &Tx<'_>,
    team: Option<&str>,
    pins: &[PinnedSkill],
) -> Result<Vec<PinnedSkill>, StoreError> {
    let mut out = Vec::with_capacity(pins.len());
    for (i, p) in pins.iter().enumerate() {
        out.push(
            pin_one(tx, team, &p.skill_id, Some(&p.version)).map_err(|e| match e {
                StoreError::NotFound { message, .. } => {
                    bad(format!("agent.pinned_skills[{i}]: {message}"))
                }
                e => e,
            })?,
        );
    }
    check_pins(&out)?;
    Ok(out)
}

impl Store {
    /// A new skill of `team` with `files` as its first version.
    pub(crate) fn create_skill(
        &self,
        team: &str,
        user: &str,
        display_title: Option<String>,
        metadata: serde_json::Map<String, Value>,
        files: Vec<UploadFile>,
    ) -> Result<SkillView, StoreError> {
        let c = check_upload(files)?;
        if display_title
            .as_ref()
            .is_some_and(|t| t.chars().count() > 256)
        {
            return Err(bad("display_title has more than 256 characters"));
        }
        let id = format!("skill_{}", uuid::Uuid::new_v4().simple());
        let meta = serde_json::to_string(&metadata).map_err(StoreError::corrupt)?;
        let now = now_ms();
        self.tx(|tx| {
            tx.sql.execute(
                "INSERT INTO skills (id, team, display_title, metadata, created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![id, team, display_title, meta, user, now],
            )?;
            insert_version(tx, &id, &c, now)?;
            skill_view(tx, team, &id)
        })
    }

    /// A new version of `team`'s skill `id`; its name must stay the
    /// skill's (its directory under `/skills` does not move).
    pub(crate) fn create_skill_version(
        &self,
        team: &str,
        id: &str,
        files: Vec<UploadFile>,
    ) -> Result<SkillVersionView, StoreError> {
        let c = check_upload(files)?;
        let now = now_ms();
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            let name: Option<String> = tx
                .sql
                .query_row(
                    "SELECT name FROM skill_versions WHERE skill_id = ?1 ORDER BY created_at DESC LIMIT 1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = name {
                if n != c.name {
                    return Err(bad(format!(
                        "files: SKILL.md names the skill {:?}, but skill {id} is named {n:?}; a new version keeps the name",
                        c.name
                    )));
                }
            }
            let v = insert_version(tx, id, &c, now)?;
            version_view(tx, id, &v)
        })
    }

    /// `team`'s skill `id`.
    pub(crate) fn skill(&self, team: &str, id: &str) -> Result<SkillView, StoreError> {
        self.tx(|tx| skill_view(tx, team, id))
    }

    /// `team`'s live skills, oldest first, as `q` says; and whether more
    /// follow.
    pub(crate) fn list_skills(
        &self,
        team: &str,
        q: &SkillQuery,
    ) -> Result<(Vec<SkillView>, bool), StoreError> {
        self.tx(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.sql.prepare(
                    "SELECT id FROM skills WHERE team = ?1 AND deleted_at IS NULL ORDER BY created_at, rowid",
                )?;
                let rows = st
                    .query_map(params![team], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                rows
            };
            if q.source.as_deref().is_some_and(|s| s != "custom") {
                return Ok((Vec::new(), false));
            }
            let mut all = Vec::new();
            for id in ids {
                let v = skill_view(tx, team, &id)?;
                if let Some(t) = &q.display_title {
                    if v.display_title.as_ref() != Some(t) {
                        continue;
                    }
                }
                if let Some(n) = &q.name {
                    let named = match &v.latest_version {
                        Some(l) => version_view(tx, &id, l)?.name == *n,
                        None => false,
                    };
                    if !named {
                        continue;
                    }
                }
                all.push(v);
            }
            Ok(cut(all, &q.cursor, q.limit, |v| &v.id))
        })
    }

    /// Deletes (hides) `team`'s skill `id` and its versions.
    pub(crate) fn delete_skill(&self, team: &str, id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            tx.sql.execute("UPDATE skills SET deleted_at = ?2 WHERE id = ?1", params![id, now])?;
            tx.sql.execute(
                "UPDATE skill_versions SET deleted_at = ?2 WHERE skill_id = ?1 AND deleted_at IS NULL",
                params![id, now],
            )?;
            Ok(())
        })
    }

    /// Version `version` (`latest` allowed) of `team`'s skill `id`.
    pub(crate) fn skill_version(
        &self,
        team: &str,
        id: &str,
        version: &str,
    ) -> Result<SkillVersionView, StoreError> {
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            version_view(tx, id, version)
        })
    }

    /// The live versions of `team`'s skill `id`, newest first.
    pub(crate) fn list_skill_versions(
        &self,
        team: &str,
        id: &str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(Vec<SkillVersionView>, bool), StoreError> {
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            let versions: Vec<String> = {
                let mut st = tx.sql.prepare(
                    "SELECT version FROM skill_versions WHERE skill_id = ?1 AND deleted_at IS NULL ORDER BY created_at DESC, CAST(version AS INTEGER) DESC",
                )?;
                let rows = st
                    .query_map(params![id], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                rows
            };
            let all = versions
                .iter()
                .map(|v| version_view(tx, id, v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(cut(all, cursor, limit, |v| &v.version))
        })
    }

    /// Deletes (hides) a version of `team`'s skill `id`; returns its id.
    pub(crate) fn delete_skill_version(
        &self,
        team: &str,
        id: &str,
        version: &str,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            let v = version_view(tx, id, version)?;
            tx.sql.execute(
                "UPDATE skill_versions SET deleted_at = ?3 WHERE skill_id = ?1 AND version = ?2",
                params![id, v.version, now],
            )?;
            Ok(v.id)
        })
    }

    /// Version `version` (`latest` allowed) of `team`'s skill `id` with
    /// its files, sorted by path.
    pub(crate) fn skill_files(
        &self,
        team: &str,
        id: &str,
        version: &str,
    ) -> Result<(SkillVersionView, Vec<SkillFile>), StoreError> {
        self.tx(|tx| {
            skill_view(tx, team, id)?;
            let v = version_view(tx, id, version)?;
            let files = files_of(tx, id, &v.version)?;
            Ok((v, files))
        })
    }

    /// The bundle of a skill pinned in `session`'s agent version, for the
    /// worker holding `claim`. A skill the session does not pin is not
    /// found, whoever's it is; deleted ones still are (pins are content).
    pub(crate) fn skill_bundle(
        &self,
        session: &str,
        claim: &str,
        skill: &str,
        version: &str,
    ) -> Result<SkillBundle, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let s = valid_claim(tx, session, claim, now)?;
            let pin = s
                .agent
                .pinned_skills
                .iter()
                .find(|p| p.skill_id == skill && p.version == version)
                .ok_or_else(|| {
                    StoreError::not_found(
                        Missing::Skill,
                        format!("session {session} pins no skill {skill:?} at version {version:?}; its agent's pinned_skills name what it may fetch"),
                    )
                })?;
            Ok(SkillBundle {
                skill_id: skill.to_string(),
                version: version.to_string(),
                name: pin.name.clone(),
                files: files_of(tx, skill, version)?,
            })
        })
    }
}

fn files_of(tx: &Tx<'_>, skill: &str, version: &str) -> Result<Vec<SkillFile>, StoreError> {
    let mut st = tx.sql.prepare(
        "SELECT path, executable, data FROM skill_files WHERE skill_id = ?1 AND version = ?2 ORDER BY path",
    )?;
    let rows = st
        .query_map(params![skill, version], |r| {
            Ok(SkillFile {
                path: r.get(0)?,
                executable: r.get(1)?,
                content_base64: base64::engine::general_purpose::STANDARD
                    .encode(r.get::<_, Vec<u8>>(2)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The page of `all` that `cursor` and `limit` pick, and whether more
/// follow it.
fn cut<T>(
    all: Vec<T>,
    cursor: &Cursor,
    limit: usize,
    key: impl Fn(&T) -> &String,
) -> (Vec<T>, bool) {
    let limit = limit.max(1);
    let (start, end) = match cursor {
        Cursor::Start => (0, all.len()),
        Cursor::After(id) => (
            all.iter()
                .position(|x| key(x) == id)
                .map_or(all.len(), |i| i + 1),
            all.len(),
        ),
        Cursor::Before(id) => {
            let end = all.iter().position(|x| key(x) == id).unwrap_or(0);
            (end.saturating_sub(limit), end)
        }
    };
    let more = end - start > limit && !matches!(cursor, Cursor::Before(_));
    let page: Vec<T> = all
        .into_iter()
        .skip(start)
        .take((end - start).min(limit))
        .collect();
    (page, more)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::UploadFile;

    /// A minimal valid skill `name` under its directory.
    pub(crate) fn upload(name: &str, body: &str) -> Vec<UploadFile> {
        vec![
            UploadFile {
                path: format!("{name}/SKILL.md"),
                data: format!("---\nname: {name}\ndescription: Does {name} things.\n---\n{body}\n")
                    .into_bytes(),
            },
            UploadFile {
                path: format!("{name}/scripts/run.sh"),
                data: b"#!/bin/sh\necho hi\n".to_vec(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::testing::upload;
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Vec<UploadFile> {
        pairs
            .iter()
            .map(|(p, d)| UploadFile {
                path: p.to_string(),
                data: d.as_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn an_upload_is_checked_and_its_digest_is_the_bundles() {
        let c = check_upload(upload("pdf", "Use it.")).unwrap();
        assert_eq!(c.name, "pdf");
        assert_eq!(c.description, "Does pdf things.");
        assert_eq!(
            c.files
                .iter()
                .map(|f| (f.path.as_str(), f.executable))
                .collect::<Vec<_>>(),
            [("SKILL.md", false), ("scripts/run.sh", true)]
        );
        let b = SkillBundle {
            skill_id: "x".into(),
            version: "1".into(),
            name: "pdf".into(),
            files: c.files.clone(),
        };
        assert_eq!(b.digest().unwrap(), c.sha256);
        // Without a top directory, SKILL.md at the root.
        let flat = check_upload(files(&[(
            "SKILL.md",
            "---\nname: flat\ndescription: d\n---\n",
        )]))
        .unwrap();
        assert_eq!(flat.name, "flat");
    }

    #[test]
    fn bad_uploads_are_refused_naming_the_problem() {
        let fm = |n: &str, d: &str| format!("---\nname: {n}\ndescription: {d}\n---\nbody");
        let long = "x".repeat(1025);
        let cases: Vec<(Vec<UploadFile>, &str)> = vec![
            (vec![], "give the skill's files"),
            (files(&[("pdf/README.md", "x")]), "no SKILL.md"),
            (
                files(&[("pdf/SKILL.md", "no front matter")]),
                "must start with YAML",
            ),
            (files(&[("pdf/SKILL.md", "---\nname: pdf\n")]), "must end"),
            (files(&[("pdf/SKILL.md", &fm("Pdf", "d"))]), "lowercase"),
            (files(&[("pdf/SKILL.md", &fm("a--b", "d"))]), "lowercase"),
            (files(&[("pdf/SKILL.md", &fm("pdf", &long))]), "1–1024"),
            (
                files(&[("doc/SKILL.md", &fm("pdf", "d"))]),
                "must be the skill's name",
            ),
            (files(&[("pdf/SKILL.md", "---\n- a\n---\n")]), "mapping"),
            (
                files(&[("pdf/SKILL.md", "---\nname: &a pdf\ndescription: *a\n---\n")]),
                "aliases",
            ),
            (
                files(&[("pdf/SKILL.md", &fm("pdf", "d")), ("pdf/../x", "y")]),
                "is refused",
            ),
            (
                files(&[("pdf/SKILL.md", &fm("pdf", "d")), ("/etc/x", "y")]),
                "is refused",
            ),
            (
                files(&[("pdf/SKILL.md", &fm("pdf", "d")), ("pdf/SKILL.md", "y")]),
                "given twice",
            ),
        ];
        for (f, want) in cases {
            let e = check_upload(f).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        let mut many = upload("pdf", "x");
        for i in 0..SKILL_MAX_FILES {
            many.push(UploadFile {
                path: format!("pdf/f{i}"),
                data: vec![],
            });
        }
        assert!(check_upload(many)
            .unwrap_err()
            .to_string()
            .contains("at most 200"));
        let mut big = upload("pdf", "x");
        big.push(UploadFile {
            path: "pdf/big".into(),
            data: vec![0; SKILL_MAX_FILE_BYTES + 1],
        });
        assert!(check_upload(big)
            .unwrap_err()
            .to_string()
            .contains("a file has at most"));
    }

    #[test]
    fn versions_pin_and_the_worker_fetches_only_what_is_pinned() {
        let (_d, store) = super::super::testing::store();
        let s = store
            .create_skill(
                "t1",
                "alice",
                Some("PDF".into()),
                Default::default(),
                upload("pdf", "v1"),
            )
            .unwrap();
        let v1 = s.latest_version.clone().unwrap();
        let v2 = store
            .create_skill_version("t1", &s.id, upload("pdf", "v2"))
            .unwrap();
        assert!(v2.version > v1);
        assert_eq!(
            store.skill("t1", &s.id).unwrap().latest_version,
            Some(v2.version.clone())
        );
        // A new version keeps the name.
        let e = store
            .create_skill_version("t1", &s.id, upload("doc", "x"))
            .unwrap_err();
        assert!(e.to_string().contains("keeps the name"), "{e}");
        // Another team sees nothing.
        assert!(store.skill("t2", &s.id).is_err());
        let pins = store
            .tx(|tx| {
                pin(
                    tx,
                    Some("t1"),
                    &[serde_json::json!({"type": "custom", "skill_id": s.id})],
                )
            })
            .unwrap();
        assert_eq!(pins[0].version, v2.version);
        assert_eq!(pins[0].name, "pdf");
        let pinned_v1 = store
            .tx(|tx| {
                pin(
                    tx,
                    Some("t1"),
                    &[serde_json::json!({"type": "custom", "skill_id": s.id, "version": v1})],
                )
            })
            .unwrap();
        assert_ne!(pinned_v1[0].sha256, pins[0].sha256);
        for (refs, want) in [
            (
                serde_json::json!([{"type": "custom", "skill_id": "skill_nope"}]),
                "skills[0]: no skill",
            ),
            (
                serde_json::json!([{"type": "custom", "skill_id": s.id, "version": "1"}]),
                "no version",
            ),
            (
                serde_json::json!([{"type": "qoder", "skill_id": "pdf"}]),
                "no built-in skills",
            ),
            (
                serde_json::json!([{"type": "custom", "skill_id": s.id}, {"type": "custom", "skill_id": s.id}]),
                "two skills are named",
            ),
        ] {
            let e = store
                .tx(|tx| pin(tx, Some("t1"), refs.as_array().unwrap()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = store
            .tx(|tx| {
                pin(
                    tx,
                    Some("t2"),
                    &[serde_json::json!({"type": "custom", "skill_id": s.id})],
                )
            })
            .unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
        // Re-pinning takes nothing from the caller but id and version.
        let mut forged = pins[0].clone();
        forged.sha256 = "0".repeat(64);
        forged.name = "evil".into();
        let re = store.tx(|tx| repin(tx, Some("t1"), &[forged])).unwrap();
        assert_eq!(re, pins);
        // Deleting hides it from new pins.
        store
            .delete_skill_version("t1", &s.id, &v2.version)
            .unwrap();
        assert_eq!(
            store.skill("t1", &s.id).unwrap().latest_version,
            Some(v1.clone())
        );
        store.delete_skill("t1", &s.id).unwrap();
        assert!(store.skill("t1", &s.id).is_err());
        assert!(store.tx(|tx| repin(tx, Some("t1"), &pins)).is_err());
    }

    #[test]
    fn lists_page_through() {
        let (_d, store) = super::super::testing::store();
        let ids: Vec<String> = (0..5)
            .map(|i| {
                store
                    .create_skill(
                        "t",
                        "u",
                        None,
                        Default::default(),
                        upload(&format!("s{i}"), "x"),
                    )
                    .unwrap()
                    .id
            })
            .collect();
        let q = |cursor| SkillQuery {
            limit: 2,
            cursor,
            ..Default::default()
        };
        let (p1, more) = store.list_skills("t", &q(Cursor::Start)).unwrap();
        assert!(more);
        assert_eq!(
            p1.iter().map(|s| &s.id).collect::<Vec<_>>(),
            [&ids[0], &ids[1]]
        );
        let (p3, more) = store
            .list_skills("t", &q(Cursor::After(ids[3].clone())))
            .unwrap();
        assert!(!more);
        assert_eq!(p3.len(), 1);
        let (named, _) = store
            .list_skills(
                "t",
                &SkillQuery {
                    limit: 10,
                    name: Some("s2".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(named.len(), 1);
        assert!(store
            .list_skills("u", &q(Cursor::Start))
            .unwrap()
            .0
            .is_empty());
    }
}
