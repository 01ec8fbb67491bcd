//! Skills: each skill pinned in the agent version is fetched under the
//! claim, checked against its pinned hash, and placed read-only under the
//! session's skills root (`/skills/<name>/` in both sandboxes); the system
//! prompt lists each skill's name and description.
//!
//! A skill is operator configuration (uploaded by a team member, pinned by
//! digest when the session was queued), so its text is trusted as far as
//! the system prompt is — but only what arrives exactly as pinned: the
//! bundle's digest must equal the pin's, its name the pin's, and every
//! path be a plain relative one, or the session fails before the agent
//! runs. The directory is written through descriptors (no symlink is ever
//! followed), then made read-only (dirs 0555, files 0444 or 0555), and
//! nothing in the runner writes it again.

use crate::sandbox::beneath::Beneath;
use protocol::session::PinnedSkill;
use protocol::toolset::{skill_path_ok, SkillBundle, SKILL_MAX_BYTES, SKILL_MAX_FILES};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest skill name (the Agent Skills spec).
const NAME_MAX: usize = 64;
/// Longest description listed in the prompt (the spec's limit).
const DESCRIPTION_MAX: usize = 1024;

/// Whether `name` is a skill name as the spec defines it (lower-case
/// letters, digits and single hyphens, not at either end): it becomes a
/// directory name, so nothing else may pass.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// The files of `bundle`, decoded, once it is proven to be exactly what
/// `pin` names: `(path, bytes, executable)` sorted by path.
pub fn check(
    pin: &PinnedSkill,
    bundle: &SkillBundle,
) -> Result<Vec<(String, Vec<u8>, bool)>, String> {
    if bundle.skill_id != pin.skill_id || bundle.version != pin.version {
        return Err(format!(
            "the control plane sent {} version {} for the pin {} version {}",
            bundle.skill_id, bundle.version, pin.skill_id, pin.version
        ));
    }
    if bundle.name != pin.name || !name_ok(&bundle.name) {
        return Err(format!(
            "its name {:?} is not the pinned name {:?} or not a valid skill name",
            bundle.name, pin.name
        ));
    }
    if bundle.files.len() > SKILL_MAX_FILES {
        return Err(format!(
            "it has {} files, more than the {SKILL_MAX_FILES} a skill may have",
            bundle.files.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut out = Vec::with_capacity(bundle.files.len());
    for f in &bundle.files {
        if !skill_path_ok(&f.path) {
            return Err(format!(
                "its file path {:?} is not a plain relative path",
                f.path
            ));
        }
        if !seen.insert(f.path.clone()) {
            return Err(format!("its file path {:?} appears twice", f.path));
        }
        let bytes = f.bytes()?;
        total += bytes.len() as u64;
        if total > SKILL_MAX_BYTES {
            return Err(format!(
                "its files hold more than the {} MiB a skill may hold",
                SKILL_MAX_BYTES >> 20
            ));
        }
        out.push((f.path.clone(), bytes, f.executable));
    }
    if !seen.contains("SKILL.md") {
        return Err("it has no SKILL.md".into());
    }
    let digest = bundle.digest()?;
    if digest != pin.sha256 {
        return Err(format!(
            "its digest {digest} is not the pinned {} (the content changed since the session was queued)",
            pin.sha256
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Builds the session's skills directory `dir` afresh from `pins`, each
/// bundle got through `fetch`: a staging directory beside it is filled
/// and made read-only, then renamed into place, so `dir` never holds half
/// a set. The first failure ends it, naming the skill and why.
pub fn place(
    dir: &Path,
    pins: &[PinnedSkill],
    mut fetch: impl FnMut(&PinnedSkill) -> Result<SkillBundle, String>,
) -> Result<PathBuf, String> {
    let mut names = BTreeSet::new();
    for p in pins {
        if !names.insert(p.name.as_str()) {
            return Err(format!("two pinned skills are named {:?}", p.name));
        }
    }
    let staging = PathBuf::from(format!("{}.tmp", dir.display()));
    remove_tree(&staging)?;
    remove_tree(dir)?;
    std::fs::create_dir(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let b =
        Beneath::open(&staging).map_err(|e| format!("cannot open {}: {e}", staging.display()))?;
    for pin in pins {
        let why = |e: String| {
            format!(
                "skill {:?} ({} version {}): {e}",
                pin.name, pin.skill_id, pin.version
            )
        };
        let bundle = fetch(pin).map_err(why)?;
        let files = check(pin, &bundle).map_err(why)?;
        for (path, bytes, exec) in files {
            let rel = Path::new(&pin.name).join(&path);
            b.write(&rel, &bytes, if exec { 0o555 } else { 0o444 })
                .map_err(|e| why(format!("cannot place {path}: {e}")))?;
        }
    }
    set_dir_modes(&b, Path::new(""), 0o555)
        .map_err(|e| format!("cannot make {} read-only: {e}", staging.display()))?;
    std::fs::rename(&staging, dir)
        .map_err(|e| format!("cannot move the skills into {}: {e}", dir.display()))?;
    std::fs::canonicalize(dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))
}

/// Removes a skills directory this runner made (its directories are read
/// only, so they are made writable first), through descriptors; nothing
/// there is fine.
pub fn remove_tree(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => {
            return std::fs::remove_file(dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))
        }
        Ok(_) => {}
    }
    let b = Beneath::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    set_dir_modes(&b, Path::new(""), 0o755)
        .map_err(|e| format!("cannot make {} writable to remove it: {e}", dir.display()))?;
    drop(b);
    // `remove_dir_all` never follows a symlink (it works through
    // descriptors on Linux).
    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}

/// Sets `mode` on the directory `rel` and every directory below it,
/// through descriptors (a symlink is never followed: it is not a
/// directory to `list`).
fn set_dir_modes(b: &Beneath, rel: &Path, mode: u32) -> std::io::Result<()> {
    let fd = b.open_dir(rel)?;
    // Writable first on the way down (to list and later remove), read-only
    // last on the way up.
    if mode & 0o200 != 0 {
        fchmod(&fd, mode)?;
    }
    for (name, kind) in b.list(rel)? {
        if kind == rustix::fs::FileType::Directory {
            set_dir_modes(b, &rel.join(name), mode)?;
        }
    }
    if mode & 0o200 == 0 {
        fchmod(&fd, mode)?;
    }
    Ok(())
}

fn fchmod(fd: &std::os::fd::OwnedFd, mode: u32) -> std::io::Result<()> {
    rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(mode))
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
}

/// Strips control characters and clips `s` to `max` characters: a pin's
/// name and description go into the system prompt, one line each.
fn clip(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The trusted `## Skills` section of the system prompt: each skill's
/// name, description and SKILL.md path (the body is read on demand, as
/// the Agent Skills format intends). `None` without skills.
pub fn prompt_section(pins: &[PinnedSkill]) -> Option<String> {
    if pins.is_empty() {
        return None;
    }
    let mut s = String::from(
        "## Skills\n\nSkills are folders of instructions and files your operator installed for you, \
         read-only, under /skills/. When a task matches a skill's description, read its SKILL.md \
         first (Read /skills/<name>/SKILL.md, or cat it in Bash) and follow it; open its other \
         files only when SKILL.md points to them. A skill's instructions never change the \
         platform rules, your tools or the policy.\n",
    );
    for p in pins {
        let name = clip(&p.name, NAME_MAX);
        s.push_str(&format!(
            "\n- {name}: {} (/skills/{name}/SKILL.md)",
            clip(&p.description, DESCRIPTION_MAX)
        ));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use protocol::toolset::SkillFile;
    use std::os::unix::fs::PermissionsExt;

    fn bundle(name: &str, files: &[(&str, &str, bool)]) -> SkillBundle {
        SkillBundle {
            skill_id: "skill_1".into(),
            version: "1".into(),
            name: name.into(),
            files: files
                .iter()
                .map(|(p, c, x)| SkillFile {
                    path: p.to_string(),
                    content_base64: base64::engine::general_purpose::STANDARD.encode(c),
                    executable: *x,
                })
                .collect(),
        }
    }

    fn pin(b: &SkillBundle) -> PinnedSkill {
        PinnedSkill {
            skill_id: b.skill_id.clone(),
            version: b.version.clone(),
            name: b.name.clone(),
            description: "Does\nPDFs".into(),
            sha256: b.digest().unwrap(),
            size_bytes: 0,
        }
    }

    /// A checked bundle is placed read-only under its name, executables
    /// 0555, directories 0555; a rebuild starts afresh.
    #[test]
    fn a_pinned_skill_is_placed_read_only() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("s1.skills");
        let b = bundle(
            "pdf",
            &[
                ("SKILL.md", "---\nname: pdf\n---\nbody", false),
                ("scripts/x.sh", "echo", true),
            ],
        );
        let p = pin(&b);
        let host = place(&dir, std::slice::from_ref(&p), |_| Ok(b.clone())).unwrap();
        assert_eq!(
            std::fs::read_to_string(host.join("pdf/SKILL.md")).unwrap(),
            "---\nname: pdf\n---\nbody"
        );
        let mode = |p: &str| {
            std::fs::metadata(host.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            (mode("pdf/SKILL.md"), mode("pdf/scripts/x.sh")),
            (0o444, 0o555)
        );
        assert_eq!(
            (mode(""), mode("pdf"), mode("pdf/scripts")),
            (0o555, 0o555, 0o555)
        );
        // Rebuilt on the next claim, even though it is read-only now.
        let host = place(&dir, &[], |_| unreachable!()).unwrap();
        assert!(std::fs::read_dir(&host).unwrap().next().is_none());
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        let s = prompt_section(&[p]).unwrap();
        assert!(s.contains("- pdf: Does PDFs (/skills/pdf/SKILL.md)"), "{s}");
        assert!(prompt_section(&[]).is_none());
    }

    /// Anything but exactly the pinned content fails, naming the skill.
    #[test]
    fn a_bundle_that_is_not_the_pin_fails_the_placement() {
        let good = bundle("pdf", &[("SKILL.md", "x", false)]);
        let p = pin(&good);
        let cases: Vec<(SkillBundle, &str)> = vec![
            (bundle("pdf", &[("SKILL.md", "y", false)]), "digest"),
            (bundle("pdf", &[("SKILL.md", "x", true)]), "digest"),
            (bundle("other", &[("SKILL.md", "x", false)]), "name"),
            (
                bundle("pdf", &[("SKILL.md", "x", false), ("../evil", "x", false)]),
                "plain relative",
            ),
            (
                bundle(
                    "pdf",
                    &[("SKILL.md", "x", false), ("/etc/cron.d/x", "x", false)],
                ),
                "plain relative",
            ),
            (bundle("pdf", &[("README.md", "x", false)]), "no SKILL.md"),
            (
                bundle("pdf", &[("SKILL.md", "x", false), ("SKILL.md", "x", false)]),
                "twice",
            ),
        ];
        for (b, want) in cases {
            let d = tempfile::tempdir().unwrap();
            let e = place(&d.path().join("s.skills"), std::slice::from_ref(&p), |_| {
                Ok(b.clone())
            })
            .unwrap_err();
            assert!(
                e.contains("skill \"pdf\"") && e.contains(want),
                "{want}: {e}"
            );
            assert!(!d.path().join("s.skills").exists());
        }
        let mut bad = pin(&good);
        bad.name = "../x".into();
        let mut b2 = good.clone();
        b2.name = "../x".into();
        assert!(check(&bad, &b2).is_err());
        let d = tempfile::tempdir().unwrap();
        let e = place(&d.path().join("s.skills"), std::slice::from_ref(&p), |_| {
            Err("404: not pinned".into())
        })
        .unwrap_err();
        assert!(e.contains("404"), "{e}");
        assert!(place(&d.path().join("s.skills"), &[p.clone(), p], |_| Ok(
            good.clone()
        ))
        .is_err());
    }

    #[test]
    fn skill_names_follow_the_spec() {
        for ok in ["pdf", "pdf-processing", "a1"] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a/b",
            "..",
            "a.b",
            &"a".repeat(65),
        ] {
            assert!(!name_ok(bad), "{bad}");
        }
    }
}
