//! GitHub's REST API for pull requests and the token's repositories (API
//! version 2022-11-28), over a
//! blocking `reqwest` client the caller builds (timeouts, CA roots, no
//! redirects). github.com and GitHub Enterprise Server differ only in the
//! API base.
//!
//! Every request carries `Authorization: Bearer`, `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28` and a
//! `User-Agent`. Nothing is retried: a rate limit comes back as
//! [`ForgeError::RateLimited`] with the wait GitHub asked for, and a 422
//! "already exists" on create is answered by looking the open PR up.

use super::address::{check_api_base, check_repo};
use super::error::cap;
use super::wire::{WireError, WireErrorItem, WireListedRepo, WirePull};
use super::{Created, Forge, ForgeError, Listed, NewPullRequest, PullRequest, RepoPath};
use crate::secret::Secret;
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, ACCEPT, LINK, LOCATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;

/// The REST API version the wire format here follows.
pub const API_VERSION: &str = "2022-11-28";
/// GitHub's JSON media type.
pub const MEDIA_TYPE: &str = "application/vnd.github+json";
/// Largest answer read from GitHub; a PR object is a few KiB.
const MAX_BODY: u64 = 1 << 20;

/// A GitHub (or GHES) REST client holding one token.
pub struct GitHub {
    api_base: String,
    token: Secret,
    client: Client,
    user_agent: String,
}

/// One answer, read fully (up to [`MAX_BODY`]).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl GitHub {
    /// A client for `api_base` (`https://api.github.com`,
    /// `https://ghes.example/api/v3`, or plain `http` on loopback for a test
    /// forge). Any other `http` base is refused: the token would travel in
    /// clear text.
    pub fn new(api_base: &str, token: Secret, client: Client) -> Result<GitHub, ForgeError> {
        Ok(GitHub {
            api_base: check_api_base(api_base)?,
            token,
            client,
            user_agent: format!("runner/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// The API base in use, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        self.call_url(method, &format!("{}{path}", self.api_base), query, body)
    }

    /// [`GitHub::call`] on a whole URL; callers make sure it is under the
    /// API base (the token goes with it).
    fn call_url(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        let mut req = self
            .client
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(ACCEPT, MEDIA_TYPE)
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(USER_AGENT, &self.user_agent);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().map_err(|e| self.redact(transport(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        resp.take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.redact(ForgeError::Http(format!("reading the answer: {e}"))))?;
        if body.len() as u64 > MAX_BODY {
            return Err(ForgeError::Decode(format!(
                "the answer is larger than {MAX_BODY} bytes"
            )));
        }
        // Before anything is parsed or cut to length, so not even a prefix
        // of an echoed token can reach a message.
        let body = redact_bytes(body, self.token.expose().as_bytes());
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The error for a status this call did not expect.
    fn failure(&self, a: &Answer) -> ForgeError {
        let w = WireError::parse(&a.body);
        let e = match a.status.as_u16() {
            401 => ForgeError::Unauthorized,
            403 if is_rate_limit(a, &w.message) => ForgeError::RateLimited {
                retry_after_seconds: retry_after(&a.headers),
            },
            403 => ForgeError::Forbidden(w.message),
            429 => ForgeError::RateLimited {
                retry_after_seconds: retry_after(&a.headers),
            },
            404 => ForgeError::NotFound,
            422 => ForgeError::Validation {
                errors: w.errors.iter().map(raw_item).collect(),
                message: w.message,
            },
            300..=399 => ForgeError::Http(format!(
                "GitHub answered {} to {}; redirects are not followed: update the API base URL or repository URL (it may have moved or been renamed)",
                a.status,
                a.headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(cap)
                    .unwrap_or_else(|| "nowhere".into())
            )),
            500..=599 => ForgeError::Http(format!(
                "GitHub answered {} ({}); it may be down or overloaded, try again later",
                a.status, w.message
            )),
            _ => ForgeError::Http(format!(
                "GitHub answered an unexpected {} ({})",
                a.status, w.message
            )),
        };
        self.redact(e)
    }

    /// Removes the token from any text that came back, in case a proxy or
    /// a misbehaving server echoes the request.
    fn redact(&self, e: ForgeError) -> ForgeError {
        let t = self.token.expose();
        if t.is_empty() {
            return e;
        }
        let r = |s: String| s.replace(t, "[redacted]");
        match e {
            ForgeError::BadUrl(s) => ForgeError::BadUrl(r(s)),
            ForgeError::Forbidden(s) => ForgeError::Forbidden(r(s)),
            ForgeError::Validation { message, errors } => ForgeError::Validation {
                message: r(message),
                errors: errors.into_iter().map(r).collect(),
            },
            ForgeError::Rejected(s) => ForgeError::Rejected(r(s)),
            ForgeError::Http(s) => ForgeError::Http(r(s)),
            ForgeError::Decode(s) => ForgeError::Decode(r(s)),
            other => other,
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, a: &Answer) -> Result<T, ForgeError> {
        serde_json::from_slice(&a.body)
            .map_err(|e| self.redact(ForgeError::Decode(cap(&e.to_string()))))
    }

    fn pull(&self, a: &Answer) -> Result<PullRequest, ForgeError> {
        self.decode::<WirePull>(a)?
            .into_pull_request()
            .map_err(|e| self.redact(e))
    }

    /// The open PR for `head` (`branch` or `owner:branch`) into `base`,
    /// after GitHub said one already exists.
    fn find_open(
        &self,
        repo: &RepoPath,
        head: &str,
        base: &str,
    ) -> Result<PullRequest, ForgeError> {
        let label = if head.contains(':') {
            head.to_string()
        } else {
            format!("{}:{head}", repo.owner)
        };
        let a = self.call(
            Method::GET,
            &format!("/repos/{}/{}/pulls", repo.owner, repo.name),
            &[("head", &label), ("state", "open"), ("per_page", "100")],
            None,
        )?;
        if !a.status.is_success() {
            return Err(self.failure(&a));
        }
        let mut found = Vec::new();
        for p in self.decode::<Vec<WirePull>>(&a)? {
            found.push(p.into_pull_request().map_err(|e| self.redact(e))?);
        }
        let pos = found.iter().position(|p| p.base_ref == base).unwrap_or(0);
        if found.is_empty() {
            return Err(ForgeError::Validation {
                message: "Validation Failed".into(),
                errors: vec![format!(
                    "GitHub says a pull request already exists for {} but lists none open; it may have just been closed or merged: look at the repository's pull requests, then retry",
                    cap(&label)
                )],
            });
        }
        Ok(found.swap_remove(pos))
    }
}

impl Forge for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    fn list_repositories(&self, max: usize) -> Result<Listed, ForgeError> {
        let first = format!("{}/user/repos?per_page=100", self.api_base);
        let mut next = Some(first);
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Listed::default();
        // Pages of 100: more than the cap needs (plus a few of skipped
        // names) means a forge that keeps saying "next".
        let max_pages = max / 100 + 5;
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            if out.repositories.len() >= max || pages >= max_pages {
                out.truncated = true;
                break;
            }
            pages += 1;
            // A next page must stay under the API base: the token goes
            // with it, and the client is pinned to the API host only.
            if !url.starts_with(&format!("{}/", self.api_base)) || !seen.insert(url.clone()) {
                return Err(self.redact(ForgeError::Decode(format!(
                    "the Link header's next page {} is not a new page under {}",
                    cap(&url),
                    self.api_base
                ))));
            }
            let a = self.call_url(Method::GET, &url, &[], None)?;
            if !a.status.is_success() {
                return Err(self.failure(&a));
            }
            let page = self.decode::<Vec<WireListedRepo>>(&a)?;
            next = next_link(&a.headers);
            let empty = page.is_empty();
            for r in page {
                match r.into_repo_path() {
                    Some(p) if out.repositories.len() < max => out.repositories.push(p),
                    Some(_) => out.truncated = true,
                    None => out.skipped += 1,
                }
            }
            // An empty page ends the listing whatever its Link says, but
            // a link this loop refuses (off the API base, or a page seen
            // before) is still the error it is on any page.
            let refused = next.as_ref().is_some_and(|u| {
                !u.starts_with(&format!("{}/", self.api_base)) || seen.contains(u)
            });
            if empty && !refused {
                break;
            }
        }
        Ok(out)
    }

    fn create_pull_request(
        &self,
        repo: &RepoPath,
        pr: &NewPullRequest,
    ) -> Result<Created, ForgeError> {
        check_repo(repo)?;
        let body = json!({
            "title": pr.title,
            "body": pr.body,
            "head": pr.head,
            "base": pr.base,
            "draft": pr.draft,
        });
        let a = self.call(
            Method::POST,
            &format!("/repos/{}/{}/pulls", repo.owner, repo.name),
            &[],
            Some(&body),
        )?;
        if a.status.is_success() {
            return self.pull(&a).map(Created::Opened);
        }
        if a.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(self.failure(&a));
        }
        let w = WireError::parse(&a.body);
        let exists = w
            .errors
            .iter()
            .any(|e| e.message.starts_with("A pull request already exists"));
        if exists {
            return self
                .find_open(repo, &pr.head, &pr.base)
                .map(Created::AlreadyOpen);
        }
        Err(self.redact(ForgeError::Validation {
            errors: w.errors.iter().map(|e| explain(e, repo, pr)).collect(),
            message: w.message,
        }))
    }

    fn pull_request(&self, repo: &RepoPath, number: u64) -> Result<PullRequest, ForgeError> {
        check_repo(repo)?;
        let a = self.call(
            Method::GET,
            &format!("/repos/{}/{}/pulls/{number}", repo.owner, repo.name),
            &[],
            None,
        )?;
        if a.status.is_success() {
            self.pull(&a)
        } else {
            Err(self.failure(&a))
        }
    }

    fn request_reviewers(
        &self,
        repo: &RepoPath,
        number: u64,
        reviewers: &[String],
    ) -> Result<(), ForgeError> {
        check_repo(repo)?;
        if reviewers.is_empty() {
            return Ok(());
        }
        let a = self.call(
            Method::POST,
            &format!(
                "/repos/{}/{}/pulls/{number}/requested_reviewers",
                repo.owner, repo.name
            ),
            &[],
            Some(&json!({ "reviewers": reviewers })),
        )?;
        if a.status.is_success() {
            return Ok(());
        }
        if a.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(self.failure(&a));
        }
        let w = WireError::parse(&a.body);
        let mut why = vec![w.message];
        why.extend(w.errors.iter().map(raw_item));
        why.retain(|s| !s.is_empty());
        Err(self.redact(ForgeError::Rejected(format!(
            "requesting review from {} on pull request #{number}: {}; request only collaborators of {} other than the PR's author",
            cap(&reviewers.join(", ")),
            why.join("; "),
            repo.full_name()
        ))))
    }
}

/// `body` with every occurrence of `secret` replaced by `[redacted]`.
fn redact_bytes(body: Vec<u8>, secret: &[u8]) -> Vec<u8> {
    if secret.is_empty() || body.len() < secret.len() {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(secret) {
            out.extend_from_slice(b"[redacted]");
            i += secret.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A 422 entry of a create call as an explanation naming the branch.
fn explain(e: &WireErrorItem, repo: &RepoPath, pr: &NewPullRequest) -> String {
    let full = repo.full_name();
    let (head, base) = (cap(&pr.head), cap(&pr.base));
    match (e.field.as_str(), e.code.as_str()) {
        ("head", "invalid") => format!(
            "the head branch `{head}` does not exist in {full}: push it before opening the pull request"
        ),
        ("base", "invalid") => format!(
            "the base branch `{base}` does not exist in {full}: target an existing branch (usually the default branch)"
        ),
        (field, "missing_field") => {
            format!("the field `{field}` is required: give the pull request a {field}")
        }
        _ if e.message.starts_with("No commits between") => format!(
            "there are no commits between `{base}` and `{head}`: the branch has nothing to merge; commit and push the changes first"
        ),
        _ => raw_item(e),
    }
}

/// A 422 entry as GitHub wrote it (already capped).
fn raw_item(e: &WireErrorItem) -> String {
    if !e.message.is_empty() {
        e.message.clone()
    } else {
        [e.resource.as_str(), e.field.as_str(), e.code.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A 403 that is a rate limit (primary: remaining 0; secondary: the
/// message says so, or a Retry-After came) rather than a permission.
fn is_rate_limit(a: &Answer, message: &str) -> bool {
    header(&a.headers, "x-ratelimit-remaining").as_deref() == Some("0")
        || a.headers.contains_key(RETRY_AFTER)
        || message.to_ascii_lowercase().contains("rate limit")
}

/// Seconds to wait: `Retry-After`, else until `x-ratelimit-reset` (UTC
/// epoch seconds) when the primary limit is spent.
fn retry_after(h: &HeaderMap) -> Option<u64> {
    if let Some(s) = header(h, RETRY_AFTER.as_str()).and_then(|v| v.trim().parse().ok()) {
        return Some(s);
    }
    if header(h, "x-ratelimit-remaining").as_deref() != Some("0") {
        return None;
    }
    let reset: u64 = header(h, "x-ratelimit-reset")?.trim().parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(reset.saturating_sub(now))
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), if any.
fn next_link(h: &HeaderMap) -> Option<String> {
    let link = header(h, LINK.as_str())?;
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| url.to_string())
    })
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

/// A transport failure with its causes (the URL holds no secret).
fn transport(e: &reqwest::Error) -> ForgeError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ForgeError::Http(format!(
        "{}; check the network and the forge's API base URL",
        cap(&msg)
    ))
}
