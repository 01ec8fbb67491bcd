//! A repository URL the runner accepts (https, a host, no userinfo, query or
//! fragment), what to send with it, and the remote's advertised refs.

use super::transport;
use super::RepoError;
use crate::cancel::Cancel;
use crate::secret::Secret;
use std::collections::BTreeMap;

/// scheme, host, port: where a token may be sent.
pub(super) type Origin = (String, String, u16);

/// A validated remote: the URL libgit2 gets (and the only one the transport
/// will talk to), the token to send, and the HTTP client to send it with.
#[derive(Clone)]
pub struct Remote {
    pub(super) url: String,
    pub(super) host: String,
    /// The origin the token may go to.
    pub(super) origin: Origin,
    pub(super) token: Option<Secret>,
    pub(super) client: reqwest::blocking::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Remote {
    /// Checks `url` and binds the token and client to it. The client is the
    /// caller's (timeouts, extra CA roots, proxies); it should refuse
    /// redirects, and the transport treats any 3xx as an error anyway. The
    /// token is sent as `Authorization: Basic x-access-token:<token>`, only
    /// to this URL's scheme, host and port.
    pub fn new(
        url: &str,
        token: Option<Secret>,
        client: reqwest::blocking::Client,
    ) -> Result<Remote, RepoError> {
        let (url, origin, host) = validate(url)?;
        Ok(Remote {
            url,
            host,
            origin,
            token,
            client,
        })
    }

    /// The normalised URL (no trailing slash), as libgit2 and the records
    /// see it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// host[:port], the way errors and policies name the server.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// The URL rules. The error text never repeats the input: a URL with a
/// password in it must not end up in a record.
fn validate(raw: &str) -> Result<(String, Origin, String), RepoError> {
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RepoError::BadUrl(
            "it contains whitespace or control characters".into(),
        ));
    }
    let parsed = url::Url::parse(raw).map_err(|e| {
        RepoError::BadUrl(format!(
            "it is not an absolute URL ({e}); scp-like host:path and local paths are not accepted"
        ))
    })?;
    if parsed.scheme() != "https" {
        return Err(RepoError::BadUrl(format!(
            "scheme {:?} is not https",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(RepoError::BadUrl(
            "it carries a user name or password; credentials come from the runner's configuration, never the URL".into(),
        ));
    }
    if parsed.query().is_some() {
        return Err(RepoError::BadUrl("it has a query (?…)".into()));
    }
    if parsed.fragment().is_some() {
        return Err(RepoError::BadUrl("it has a fragment (#…)".into()));
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => return Err(RepoError::BadUrl("it has no host".into())),
    };
    let path = parsed.path().trim_end_matches('/');
    if path.is_empty() {
        return Err(RepoError::BadUrl(
            "it names no repository path (https://host/owner/repo)".into(),
        ));
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let shown = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let url = format!("https://{shown}{path}");
    Ok((url, ("https".to_string(), host, port), shown))
}

/// What the remote advertises, for decisions before acting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteRefs {
    /// The branch HEAD points to (`main`, not `refs/heads/main`), when the
    /// server says.
    pub default_branch: Option<String>,
    /// `refs/heads/*` and `refs/tags/*` → commit id (annotated tags peeled).
    pub refs: BTreeMap<String, String>,
}

/// Everything the server advertised: HEAD's target and every ref with the
/// id it points to (`^{}` entries folded into their tag).
pub(super) struct Advertised {
    pub(super) default_branch: Option<String>,
    pub(super) refs: BTreeMap<String, git2::Oid>,
}

impl Advertised {
    pub(super) fn get(&self, name: &str) -> Option<git2::Oid> {
        self.refs.get(name).copied()
    }
}

/// Lists the remote's refs (one GET of the upload-pack advertisement).
pub fn list_refs(remote: &Remote) -> Result<RemoteRefs, RepoError> {
    let adv = advertised(remote, &Cancel::never())?;
    Ok(RemoteRefs {
        default_branch: adv
            .default_branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .map(str::to_string),
        refs: adv
            .refs
            .iter()
            .filter(|(n, _)| n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
            .map(|(n, id)| (n.clone(), id.to_string()))
            .collect(),
    })
}

pub(super) fn advertised(remote: &Remote, cancel: &Cancel) -> Result<Advertised, RepoError> {
    super::init();
    let session = transport::enter(remote, cancel);
    let mut git_remote = git2::Remote::create_detached(remote.url.as_str())
        .map_err(|e| RepoError::git("preparing the remote", e))?;
    let conn = git_remote.connect_auth(git2::Direction::Fetch, None, None);
    let conn = session.check(conn)?;
    let heads = session.check(conn.list())?;
    let mut refs = BTreeMap::new();
    let mut peeled = BTreeMap::new();
    for h in heads {
        let name = h.name();
        if let Some(tag) = name.strip_suffix("^{}") {
            peeled.insert(tag.to_string(), h.oid());
        } else if name != "HEAD" {
            refs.insert(name.to_string(), h.oid());
        }
    }
    refs.extend(peeled);
    let default_branch = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_string))
        .filter(|b| b.starts_with("refs/heads/"));
    Ok(Advertised {
        default_branch,
        refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(url: &str) -> String {
        match validate(url) {
            Err(e @ RepoError::BadUrl(_)) => e.to_string(),
            other => panic!("{url}: expected BadUrl, got {other:?}"),
        }
    }

    #[test]
    fn only_plain_https_urls_with_a_host_and_path_are_accepted() {
        let (url, origin, host) = validate("https://github.com/o/r.git/").unwrap();
        assert_eq!(url, "https://github.com/o/r.git");
        assert_eq!(origin, ("https".into(), "github.com".into(), 443));
        assert_eq!(host, "github.com");
        let (url, origin, host) = validate("https://127.0.0.1:8443/r.git").unwrap();
        assert_eq!(url, "https://127.0.0.1:8443/r.git");
        assert_eq!(origin.2, 8443);
        assert_eq!(host, "127.0.0.1:8443");
        for u in [
            "http://github.com/o/r.git",
            "ssh://git@github.com/o/r.git",
            "git@github.com:o/r.git",
            "github.com:o/r.git",
            "file:///srv/r.git",
            "/srv/r.git",
            "git://github.com/o/r.git",
            "https://github.com/o/r.git?x=1",
            "https://github.com/o/r.git#main",
            "https://github.com",
            "https://github.com/",
            "https://github.com/o/r .git",
        ] {
            bad(u);
        }
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_repeating_them() {
        for u in [
            "https://x-access-token:ghp_SECRETSECRET@github.com/o/r.git",
            "https://ghp_SECRETSECRET@github.com/o/r.git",
        ] {
            let msg = bad(u);
            assert!(msg.contains("user name or password"), "{msg}");
            assert!(!msg.contains("SECRETSECRET"), "{msg}");
        }
    }
}
