//! The repository a session works on and how its work is delivered.
//!
//! A person names a repository (`repository` + `ref`) or a pull request
//! (`pr_url`), and the branch the work goes to. The runner checks it out
//! before the first tool call and, after a successful run, commits, pushes
//! that branch and (with `auto_create_pr`) opens a pull request — each a
//! decided `external` action. The rules here are the ones both sides apply,
//! so the control plane refuses with a 400 what the runner would refuse
//! later.

use serde::{Deserialize, Serialize};

/// Where a session's code comes from and where its work goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RepoWork {
    /// The repository's https clone URL (`https://github.com/o/r`).
    /// Required unless `pr_url` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Branch, tag or commit id to start from; the remote's default branch
    /// when absent.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// A pull request to work on (`https://github.com/o/r/pull/12`); when
    /// given, `repository` and `ref` are ignored and the work starts from
    /// the pull request's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    /// The branch the work is pushed to. The control plane fills in
    /// `runner/<slug of the title>-<short id>` when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_name: Option<String>,
    /// Open a pull request from the branch once the work is pushed.
    #[serde(default)]
    pub auto_create_pr: bool,
    /// With `pr_url`: push to a new branch (true, the default) or to the
    /// pull request's own head branch (false).
    #[serde(default = "yes")]
    pub auto_branch: bool,
    /// Open the pull request as a draft.
    #[serde(default)]
    pub draft: bool,
    /// Logins asked to review the pull request (a refusal by the forge is a
    /// warning, not a failed session).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
}

fn yes() -> bool {
    true
}

impl RepoWork {
    /// Checks every field; the error names the field and says what a valid
    /// value looks like.
    pub fn validate(&self) -> Result<(), String> {
        if self.repository.is_none() && self.pr_url.is_none() {
            return Err(
                "repo: give repository (an https clone URL) or pr_url (an https pull request URL)"
                    .into(),
            );
        }
        if let Some(pr) = &self.pr_url {
            check_pr_url(pr)?;
        }
        if let Some(r) = &self.repository {
            check_https_url("repo.repository", r)?;
        }
        if let Some(r) = &self.git_ref {
            check_ref_name("repo.ref", r)?;
        }
        if let Some(b) = &self.branch_name {
            check_ref_name("repo.branch_name", b)?;
            if b.starts_with("refs/") {
                return Err(format!(
                    "repo.branch_name {b:?}: give the branch's short name (without refs/)"
                ));
            }
        }
        if !self.auto_branch && self.pr_url.is_none() {
            return Err("repo.auto_branch = false needs pr_url (it pushes to that pull request's head branch)".into());
        }
        if self.reviewers.len() > 15 {
            return Err("repo.reviewers: at most 15 reviewers".into());
        }
        for r in &self.reviewers {
            let ok = !r.is_empty()
                && r.len() <= 39
                && !r.starts_with('-')
                && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(format!(
                    "repo.reviewers: {r:?} is not a login (letters, digits and -, at most 39)"
                ));
            }
        }
        Ok(())
    }
}

/// The default target branch: `runner/<slug of the title>-<short id>`.
pub fn default_branch_name(title: &str, session_id: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "session" } else { slug };
    let short: String = session_id
        .trim_start_matches("ses_")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    format!("runner/{slug}-{short}")
}

/// An https URL with a host and a path, and nothing that could carry a
/// credential or change where it points (user info, query, fragment).
pub fn check_https_url(field: &str, url: &str) -> Result<(), String> {
    let shown = without_userinfo(url);
    let bad = |why: &str| {
        Err(format!(
            "{field} {shown:?}: {why}; give an https clone URL such as https://github.com/owner/repo"
        ))
    };
    if url.len() > 2048 {
        return bad("longer than 2048 characters");
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return bad("only https URLs are accepted");
    };
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return bad("it contains whitespace, a control character or a backslash");
    }
    if rest.contains(['?', '#']) {
        return bad("it has a query or a fragment");
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return bad("it carries user info; credentials belong in the worker config");
    }
    if authority.is_empty() || authority.starts_with(':') {
        return bad("it has no host");
    }
    if path.trim_matches('/').is_empty() {
        return bad("it names no repository path");
    }
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return bad("it has a . or .. path segment");
    }
    Ok(())
}

/// `url` with any user info replaced by `***`, so an error never repeats
/// a credential someone put in a URL.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A pull request URL: `https://<host>/<owner>/<repo>/pull/<number>`.
pub fn check_pr_url(url: &str) -> Result<(), String> {
    check_https_url("repo.pr_url", url)?;
    let path: Vec<&str> = url["https://".len()..]
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    let ok = path.len() == 4
        && path[2] == "pull"
        && !path[3].is_empty()
        && path[3].len() <= 12
        && path[3].chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err(format!(
            "repo.pr_url {:?}: give a pull request URL such as https://github.com/owner/repo/pull/12",
            without_userinfo(url)
        ));
    }
    Ok(())
}

/// Git's reference-name rules (`git check-ref-format`), plus a length cap
/// and no leading `-` (so a name can never be read as an option).
pub fn check_ref_name(field: &str, name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{field} {name:?} is not a valid git ref name: {why}"
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 characters");
    }
    if name.starts_with('-') {
        return bad("it starts with -");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("empty path component");
    }
    if name.ends_with('.') || name.ends_with(".lock") {
        return bad("it ends with . or .lock");
    }
    if name.contains("..") || name.contains("@{") || name == "@" {
        return bad("it contains .., @{ or is @");
    }
    if name
        .chars()
        .any(|c| c.is_control() || " ~^:?*[\\".contains(c) || c == '\u{7f}')
    {
        return bad("it contains a space, a control character or one of ~^:?*[\\");
    }
    if name.split('/').any(|c| c.starts_with('.')) {
        return bad("a component starts with .");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(repo: &str) -> RepoWork {
        RepoWork {
            repository: Some(repo.into()),
            auto_branch: true,
            ..Default::default()
        }
    }

    #[test]
    fn urls_must_be_plain_https() {
        assert!(work("https://github.com/o/r").validate().is_ok());
        assert!(work("https://127.0.0.1:8443/r.git").validate().is_ok());
        for bad in [
            "http://github.com/o/r",
            "ssh://git@github.com/o/r",
            "git@github.com:o/r.git",
            "file:///etc",
            "https://user:tok@github.com/o/r",
            "https://github.com/o/r?x=1",
            "https://github.com/o/r#x",
            "https://github.com",
            "https:///o/r",
            "https://github.com/o/../r",
            "https://github.com/o/r x",
        ] {
            let e = work(bad).validate().unwrap_err();
            assert!(e.contains("repo.repository"), "{bad}: {e}");
            assert!(!e.contains("user:tok"), "{e}");
        }
    }

    #[test]
    fn ref_and_branch_names_follow_git() {
        for ok in ["main", "v1.2", "feature/x", "0123abcd", "runner/fix-1"] {
            check_ref_name("f", ok).unwrap();
        }
        for bad in [
            "", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/",
            "a//b", "a.lock", "a.", "@", "a@{1}", ".hidden", "x/.y", "a\u{7}",
        ] {
            assert!(check_ref_name("f", bad).is_err(), "{bad:?}");
        }
        let mut w = work("https://github.com/o/r");
        w.branch_name = Some("refs/heads/x".into());
        assert!(w.validate().unwrap_err().contains("short name"));
    }

    #[test]
    fn pr_urls_and_options() {
        let w = RepoWork {
            pr_url: Some("https://github.com/o/r/pull/12".into()),
            auto_branch: false,
            ..Default::default()
        };
        w.validate().unwrap();
        for bad in [
            "https://github.com/o/r/pulls/12",
            "https://github.com/o/r/pull/x",
            "https://github.com/o/r",
            "http://github.com/o/r/pull/1",
        ] {
            let w = RepoWork {
                pr_url: Some(bad.into()),
                auto_branch: true,
                ..Default::default()
            };
            assert!(w.validate().unwrap_err().contains("pr_url"), "{bad}");
        }
        let mut w = work("https://github.com/o/r");
        w.auto_branch = false;
        assert!(w.validate().unwrap_err().contains("auto_branch"));
        let mut w = work("https://github.com/o/r");
        w.reviewers = vec!["ok-login".into(), "bad login".into()];
        assert!(w.validate().unwrap_err().contains("bad login"));
        let none = RepoWork::default();
        assert!(none.validate().unwrap_err().contains("repository"));
    }

    #[test]
    fn default_branch_is_a_valid_slug() {
        let b = default_branch_name("Fix the *login* bug — now!", "ses_0123456789abcdef");
        assert_eq!(b, "runner/fix-the-login-bug-now-01234567");
        check_ref_name("b", &b).unwrap();
        assert_eq!(default_branch_name("", "ses_ab"), "runner/session-ab");
        let long = default_branch_name(&"x".repeat(300), "ses_1");
        assert!(long.len() < 60, "{long}");
    }

    #[test]
    fn auto_branch_defaults_to_true_on_the_wire() {
        let w: RepoWork =
            serde_json::from_str(r#"{"repository":"https://github.com/o/r","ref":"v1"}"#).unwrap();
        assert!(w.auto_branch);
        assert_eq!(w.git_ref.as_deref(), Some("v1"));
        let e = serde_json::from_str::<RepoWork>(r#"{"repo":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
