//! Forge addresses: a repository's clone or web URL and a pull request's
//! web URL parsed into host + owner/name (+ number), and the REST API base
//! for a host. Plain `http` is accepted only on a loopback host, so a typo
//! in a config cannot send a token in clear text across a network.

use super::ForgeError;
use url::{Host, Url};

/// A repository on a forge, parsed from its clone URL or web URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPath {
    /// The user or organisation owning it.
    pub owner: String,
    /// The repository name (without `.git`).
    pub name: String,
}

impl RepoPath {
    /// `owner/name`, the form forges print and match on.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// Parses `https://host[:port]/owner/name[.git][/]` into `host[:port]` and
/// the repository; `http` only for a loopback host. Credentials, a query or
/// a fragment in the URL are refused (the token never rides in a URL).
pub fn parse_repo_url(url: &str) -> Result<(String, RepoPath), ForgeError> {
    let (host, segments) = split(url, "a repository URL like https://github.com/owner/repo")?;
    match segments.as_slice() {
        [owner, name] => {
            let name = name.strip_suffix(".git").unwrap_or(name);
            Ok((host, repo_path(url, owner, name)?))
        }
        _ => Err(bad(
            url,
            "expected exactly https://host/owner/repo (optionally ending in .git)",
        )),
    }
}

/// Parses a pull request's web URL `https://host[:port]/owner/name/pull/<n>`
/// into `host[:port]`, the repository and the PR number.
pub fn parse_pr_url(url: &str) -> Result<(String, RepoPath, u64), ForgeError> {
    let (host, segments) = split(
        url,
        "a pull request URL like https://github.com/owner/repo/pull/1",
    )?;
    match segments.as_slice() {
        [owner, name, pull, number] if *pull == "pull" => {
            let number = number
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0 && !number.starts_with(['+', '0']))
                .ok_or_else(|| bad(url, "the part after /pull/ must be the PR number"))?;
            Ok((host, repo_path(url, owner, name)?, number))
        }
        _ => Err(bad(url, "expected https://host/owner/repo/pull/<number>")),
    }
}

/// The API base for a host: `https://api.github.com` for github.com, else
/// `https://<host>/api/v3` (GitHub Enterprise Server). A default only: the
/// config can override it per host (a proxy, a loopback test forge).
pub fn github_api_base(host: &str) -> String {
    let host = host.trim_end_matches('/').to_ascii_lowercase();
    if host == "github.com" || host == "www.github.com" {
        "https://api.github.com".to_string()
    } else {
        format!("https://{host}/api/v3")
    }
}

/// Checks an API base URL and returns it without a trailing slash:
/// `https`, or `http` on a loopback host; no credentials, query or fragment.
pub(super) fn check_api_base(api_base: &str) -> Result<String, ForgeError> {
    let u = parse_web(api_base, "an API base like https://api.github.com")?;
    // The parser folds dot segments away; a base written with them is a
    // mistake worth naming rather than silently resolving.
    let raw = api_base.to_ascii_lowercase().replace("%2e", ".");
    let path = raw.split_once("://").map_or("", |(_, rest)| rest);
    if path.split('/').skip(1).any(|s| s == "." || s == "..") {
        return Err(bad(api_base, "the path must not contain . or .. segments"));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// Whether a URL that came back from the forge (a PR's web page) is one the
/// runner may show and store: http(s), and plain http only on loopback.
pub(super) fn is_web_url(url: &str) -> bool {
    parse_web(url, "").is_ok()
}

fn split(url: &str, what: &str) -> Result<(String, Vec<String>), ForgeError> {
    let u = parse_web(url, what)?;
    let host = match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
        None => u.host_str().unwrap_or_default().to_string(),
    };
    let path = u.path().trim_end_matches('/');
    let segments = path
        .split('/')
        .skip(1)
        .map(str::to_string)
        .collect::<Vec<_>>();
    if segments.iter().any(String::is_empty) {
        return Err(bad(url, "the path has an empty segment (//)"));
    }
    Ok((host.to_ascii_lowercase(), segments))
}

fn parse_web(raw: &str, what: &str) -> Result<Url, ForgeError> {
    let u =
        Url::parse(raw.trim()).map_err(|e| bad(raw, &format!("not a URL ({e}); give {what}")))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(bad(
            raw,
            &format!("scheme {}: is not supported; use the https URL", u.scheme()),
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        // Never echo the URL: the part before @ may be a token.
        return Err(ForgeError::BadUrl(
            "a forge URL must not carry credentials (user:token@host); remove them, the runner sends its token itself".into(),
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(raw, "remove the query (?…) or fragment (#…)"));
    }
    let loopback = match u.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad(raw, "the URL has no host")),
    };
    if u.scheme() == "http" && !loopback {
        return Err(bad(
            raw,
            "plain http is allowed only on a loopback host (127.0.0.0/8, ::1, localhost); use https",
        ));
    }
    Ok(u)
}

/// Checks a [`RepoPath`] built by hand before it goes into an API path.
pub(super) fn check_repo(repo: &RepoPath) -> Result<(), ForgeError> {
    repo_path(&repo.full_name(), &repo.owner, &repo.name).map(|_| ())
}

fn repo_path(url: &str, owner: &str, name: &str) -> Result<RepoPath, ForgeError> {
    for (part, value, max) in [("owner", owner, 39 + 16), ("repository name", name, 100)] {
        let ok = !value.is_empty()
            && value.len() <= max
            && value != "."
            && value != ".."
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(bad(
                url,
                &format!("the {part} may use only letters, digits, '-', '_' and '.'"),
            ));
        }
    }
    Ok(RepoPath {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

fn bad(url: &str, why: &str) -> ForgeError {
    ForgeError::BadUrl(format!(
        "{}: {why}",
        super::error::cap(&without_userinfo(url))
    ))
}

/// The URL with anything between `://` and an `@` in its authority hidden,
/// for messages about URLs that did not even parse.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}…@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}
