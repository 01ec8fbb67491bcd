//! The repositories a worker can work on, as it reports them
//! (`PUT /v1/workers/{worker}/repositories`) and as the Cloud Agents API
//! answers them (`GET /v0/repositories`): one shape for both, so what a
//! client lists is exactly what a worker said it can check out.
//!
//! Only a worker knows its forges and their tokens (its config's
//! `[[repositories.hosts]]`), so the control plane cannot list anything
//! itself; it keeps each worker's last report and answers their union.

use serde::{Deserialize, Serialize};

/// Most repositories one report may carry (a forge listing is capped at
/// 1000 per host by the runner; a few hosts and static lists fit).
pub const MAX_REPORTED: usize = 5000;
/// Longest owner (user or organisation) name accepted.
pub const MAX_OWNER: usize = 100;
/// Longest repository name accepted.
pub const MAX_NAME: usize = 100;

/// A list of repositories: the body of the worker's report and the answer
/// of `GET /v0/repositories`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RepositoryList {
    /// The repositories (at most [`MAX_REPORTED`] in a report).
    pub repositories: Vec<ListedRepository>,
}

/// One repository: its owner and name, and the URL a session names it by
/// (`source.repository` of a launch, `repo.repository` of a session).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListedRepository {
    /// The user or organisation owning it.
    pub owner: String,
    /// Its name (without `.git`).
    pub name: String,
    /// `https://<host>/<owner>/<name>`.
    pub repository: String,
}

impl ListedRepository {
    /// The entry for `owner/name` on `host` (`host` or `host:port`, as in
    /// the worker's `[[repositories.hosts]]`), checked.
    pub fn new(host: &str, owner: &str, name: &str) -> Result<ListedRepository, String> {
        let r = ListedRepository {
            owner: owner.to_string(),
            name: name.to_string(),
            repository: format!("https://{host}/{owner}/{name}"),
        };
        r.validate("repository")?;
        Ok(r)
    }

    /// Refuses an entry a session could not name: owner and name made of
    /// letters, digits, `-`, `_` and `.` (not `.` or `..`), and a
    /// `repository` that is exactly `https://<host>/<owner>/<name>`.
    /// `field` names the entry in the message.
    pub fn validate(&self, field: &str) -> Result<(), String> {
        check_segment(&format!("{field}.owner"), &self.owner, MAX_OWNER)?;
        check_segment(&format!("{field}.name"), &self.name, MAX_NAME)?;
        let url_field = format!("{field}.repository");
        crate::repository::check_https_url(&url_field, &self.repository)?;
        let rest = &self.repository["https://".len()..];
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let plain = !host.is_empty()
            && host.len() <= 255
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !plain {
            return Err(format!(
                "{url_field} {:?}: the host must be a host name or host:port",
                self.repository
            ));
        }
        if path != format!("/{}/{}", self.owner, self.name) {
            return Err(format!(
                "{url_field} {:?} is not https://<host>/{}/{}: the URL must name the entry's owner and name",
                self.repository, self.owner, self.name
            ));
        }
        Ok(())
    }
}

impl RepositoryList {
    /// Refuses a report that is too long or has an entry that does not
    /// check ([`ListedRepository::validate`]), naming the entry.
    pub fn validate(&self) -> Result<(), String> {
        if self.repositories.len() > MAX_REPORTED {
            return Err(format!(
                "repositories: {} entries; at most {MAX_REPORTED} are accepted",
                self.repositories.len()
            ));
        }
        for (i, r) in self.repositories.iter().enumerate() {
            r.validate(&format!("repositories[{i}]"))?;
        }
        Ok(())
    }
}

/// An owner or repository name as forges allow them in URLs.
pub fn check_segment(field: &str, value: &str, max: usize) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} {value:?}: use 1–{max} letters, digits, '-', '_' or '.' (not . or ..)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_repository_a_session_can_name() {
        let r = ListedRepository::new("127.0.0.1:8443", "acme", "widget").unwrap();
        assert_eq!(r.repository, "https://127.0.0.1:8443/acme/widget");
        crate::repository::check_https_url("x", &r.repository).unwrap();
        for (owner, name, says) in [
            ("", "w", "owner"),
            ("acme", "..", "name"),
            ("ac/me", "w", "owner"),
            ("acme", "w?x", "name"),
            ("acme", &"n".repeat(101), "name"),
        ] {
            let e = ListedRepository::new("github.com", owner, name).unwrap_err();
            assert!(e.contains(says), "{owner}/{name}: {e}");
        }
        assert!(ListedRepository::new("git hub", "a", "b").is_err());
    }

    #[test]
    fn a_report_is_checked_entry_by_entry() {
        let good = ListedRepository::new("github.com", "acme", "widget").unwrap();
        let mut list = RepositoryList {
            repositories: vec![good.clone()],
        };
        list.validate().unwrap();
        for (i, bad) in [
            ("http://github.com/acme/widget", "https"),
            ("https://github.com/acme/other", "owner and name"),
            ("https://u:p@github.com/acme/widget", "user info"),
            ("https://github.com/acme/widget/", "owner and name"),
        ]
        .iter()
        .enumerate()
        {
            let mut e = good.clone();
            e.repository = bad.0.into();
            list.repositories = vec![good.clone(), e];
            let err = list.validate().unwrap_err();
            assert!(
                err.contains("repositories[1].repository") && err.contains(bad.1),
                "{i}: {err}"
            );
        }
        list.repositories = vec![good; MAX_REPORTED + 1];
        assert!(list.validate().unwrap_err().contains("at most 5000"));
        let e = serde_json::from_str::<RepositoryList>(
            r#"{"repositories":[{"owner":"a","name":"b","repository":"https://h/a/b","extra":1}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
    }
}
