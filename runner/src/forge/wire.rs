//! GitHub's JSON as it arrives (REST API 2022-11-28), and its checked
//! conversion into the runner's [`PullRequest`] and [`RepoPath`]. Only the fields the runner
//! uses are read; unknown fields are ignored, as GitHub adds them freely.

use super::address::{check_repo, is_web_url};
use super::error::cap;
use super::{ForgeError, PullRequest, RepoPath};
use serde::Deserialize;

/// A pull-request object (create, get, list, request reviewers).
#[derive(Debug, Deserialize)]
pub(super) struct WirePull {
    number: u64,
    html_url: String,
    url: String,
    state: String,
    #[serde(default)]
    draft: bool,
    head: WireHead,
    base: WireBase,
    #[serde(default)]
    maintainer_can_modify: bool,
}

#[derive(Debug, Deserialize)]
struct WireHead {
    #[serde(rename = "ref")]
    ref_name: String,
    sha: String,
    /// `null` when the head repository (a fork) was deleted.
    repo: Option<WireRepo>,
}

#[derive(Debug, Deserialize)]
struct WireBase {
    #[serde(rename = "ref")]
    ref_name: String,
    repo: WireRepo,
}

#[derive(Debug, Deserialize)]
struct WireRepo {
    full_name: String,
    clone_url: String,
}

/// A repository of `GET /user/repos` (only what names it).
#[derive(Debug, Deserialize)]
pub(super) struct WireListedRepo {
    name: String,
    owner: WireOwner,
}

#[derive(Debug, Deserialize)]
struct WireOwner {
    login: String,
}

impl WireListedRepo {
    /// The repository, when its owner and name are ones a URL can carry
    /// (anything else is untrusted text the runner will not pass on).
    pub(super) fn into_repo_path(self) -> Option<RepoPath> {
        let p = RepoPath {
            owner: self.owner.login,
            name: self.name,
        };
        check_repo(&p).ok().map(|()| p)
    }
}

/// GitHub's error body: `{"message", "errors"?, "documentation_url", "status"}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) errors: Vec<WireErrorItem>,
}

/// One entry of `errors`. GitHub sometimes sends a bare string instead of an
/// object; [`WireError::parse`] copes with both.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct WireErrorItem {
    #[serde(default)]
    pub(super) resource: String,
    #[serde(default)]
    pub(super) field: String,
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) message: String,
}

impl WireError {
    /// Reads an error body leniently: a body that is not GitHub's JSON
    /// (a proxy's HTML page) becomes its capped text as the message.
    pub(super) fn parse(body: &[u8]) -> WireError {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return WireError {
                message: cap(&String::from_utf8_lossy(body)),
                errors: Vec::new(),
            };
        };
        let message = v
            .get("message")
            .and_then(|m| m.as_str())
            .map(cap)
            .unwrap_or_default();
        let errors = v
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|items| {
                items
                    .iter()
                    .map(|item| match item {
                        serde_json::Value::String(s) => WireErrorItem {
                            message: cap(s),
                            ..Default::default()
                        },
                        other => {
                            let mut e: WireErrorItem =
                                serde_json::from_value(other.clone()).unwrap_or_default();
                            e.resource = cap(&e.resource);
                            e.field = cap(&e.field);
                            e.code = cap(&e.code);
                            e.message = cap(&e.message);
                            e
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        WireError { message, errors }
    }
}

impl WirePull {
    /// The checked pull request: SHAs must be hex object ids and URLs
    /// http(s), since the runner checks out, pushes to and shows them.
    pub(super) fn into_pull_request(self) -> Result<PullRequest, ForgeError> {
        let head_sha = self.head.sha.to_ascii_lowercase();
        if !matches!(head_sha.len(), 40 | 64) || !head_sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ForgeError::Decode(format!(
                "head.sha {:?} is not a git object id",
                cap(&self.head.sha)
            )));
        }
        let mut urls = vec![
            ("html_url", &self.html_url),
            ("base.repo.clone_url", &self.base.repo.clone_url),
        ];
        if let Some(r) = &self.head.repo {
            urls.push(("head.repo.clone_url", &r.clone_url));
        }
        for (field, url) in urls {
            if !is_web_url(url) {
                return Err(ForgeError::Decode(format!(
                    "{field} {:?} is not an https URL",
                    cap(url)
                )));
            }
        }
        if self.head.ref_name.is_empty() || self.base.ref_name.is_empty() {
            return Err(ForgeError::Decode("head.ref or base.ref is empty".into()));
        }
        let (head_clone_url, head_full_name) = match self.head.repo {
            Some(r) => (Some(r.clone_url), Some(r.full_name)),
            None => (None, None),
        };
        Ok(PullRequest {
            number: self.number,
            html_url: self.html_url,
            api_url: self.url,
            state: self.state,
            draft: self.draft,
            head_ref: self.head.ref_name,
            head_sha,
            head_clone_url,
            head_full_name,
            base_ref: self.base.ref_name,
            base_clone_url: self.base.repo.clone_url,
            maintainer_can_modify: self.maintainer_can_modify,
        })
    }
}
