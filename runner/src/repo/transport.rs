//! The runner's git transport: libgit2's smart protocol over the runner's
//! reqwest client (rustls), registered for `https`.
//!
//! libgit2 transports are process-global, but what to send (token, client,
//! URL) belongs to one operation, so an operation [`enter`]s a session on its
//! thread and the factory picks it up there; libgit2 runs the transport
//! synchronously on the calling thread. With no session, or for a URL that
//! is not the session's (a `url.*.insteadOf` rewrite, say), the transport
//! refuses. The typed failure (401, 404, cancelled) is kept in the session,
//! because libgit2 only passes strings through.

use super::remote::Remote;
use super::RepoError;
use crate::cancel::Cancel;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

thread_local! {
    static CURRENT: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// One network operation's context: the remote, the cancel flag, and the
/// first typed failure the transport saw.
pub(super) struct Session {
    remote: Remote,
    cancel: Cancel,
    failure: Mutex<Option<RepoError>>,
}

/// Makes `remote` the current thread's session until dropped.
pub(super) struct Entered {
    session: Arc<Session>,
    previous: Option<Arc<Session>>,
}

/// Starts a session for `remote` on this thread.
pub(super) fn enter(remote: &Remote, cancel: &Cancel) -> Entered {
    let session = Arc::new(Session {
        remote: remote.clone(),
        cancel: cancel.clone(),
        failure: Mutex::new(None),
    });
    let previous = CURRENT.with(|c| c.replace(Some(session.clone())));
    Entered { session, previous }
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = self.previous.take());
    }
}

impl Entered {
    /// Maps a libgit2 result: the transport's own typed failure first, then
    /// cancellation, then libgit2's error.
    pub(super) fn check<T>(&self, r: Result<T, git2::Error>) -> Result<T, RepoError> {
        r.map_err(|e| {
            let e = self
                .take_failure()
                .unwrap_or_else(|| from_git(&e, &self.session.cancel));
            self.scrub(e)
        })
    }

    /// Server-sent text (a hook's rejection, an `ERR` line libgit2 passes
    /// on) with the token removed, raw and as the Basic credential: a
    /// proxy or server that echoes the request must not put it in a record.
    pub(super) fn redact(&self, text: &str) -> String {
        let Some(token) = &self.session.remote.token else {
            return text.to_string();
        };
        let t = token.expose();
        if t.is_empty() {
            return text.to_string();
        }
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{t}"));
        text.replace(basic.as_str(), "[redacted]")
            .replace(t, "[redacted]")
    }

    fn scrub(&self, e: RepoError) -> RepoError {
        match e {
            RepoError::Rejected(s) => RepoError::Rejected(self.redact(&s)),
            RepoError::Network(s) => RepoError::Network(self.redact(&s)),
            RepoError::Git(s) => RepoError::Git(self.redact(&s)),
            RepoError::TooLarge(s) => RepoError::TooLarge(self.redact(&s)),
            RepoError::MissingRef(s) => RepoError::MissingRef(self.redact(&s)),
            other => other,
        }
    }

    /// The transport's typed failure, if it had one.
    pub(super) fn take_failure(&self) -> Option<RepoError> {
        self.session
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The cancel flag, for progress callbacks.
    pub(super) fn cancelled(&self) -> bool {
        self.session.cancel.is_cancelled()
    }
}

/// A libgit2 error in the runner's terms.
pub(super) fn from_git(e: &git2::Error, cancel: &Cancel) -> RepoError {
    if cancel.is_cancelled() || e.code() == git2::ErrorCode::User {
        return RepoError::Cancelled;
    }
    match e.code() {
        git2::ErrorCode::NotFastForward => RepoError::NotFastForward,
        _ if e.class() == git2::ErrorClass::Net => RepoError::Network(e.message().to_string()),
        _ => RepoError::Git(e.message().to_string()),
    }
}

impl Session {
    fn fail(&self, e: RepoError) -> io::Error {
        let msg = e.to_string();
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        io::Error::other(msg)
    }
}

/// Registers the transports; called once from [`super::init`].
///
/// # Safety
/// Must not run concurrently with other libgit2 use (libgit2's rule for
/// `git_transport_register`).
pub(super) unsafe fn register() {
    let https = git2::transport::register("https", |remote| {
        let session = CURRENT
            .with(|c| c.borrow().clone())
            .ok_or_else(|| git2::Error::from_str("git over https outside a runner operation"))?;
        if remote.url_bytes() != session.remote.url.as_bytes() {
            return Err(git2::Error::from_str(
                "refusing a git URL other than the session's repository",
            ));
        }
        Transport::smart(remote, true, Subtransport { session })
    });
    if let Err(e) = https {
        panic!("cannot register the https git transport: {e}");
    }
    // Plain http would fall to libgit2's own client: refuse it outright.
    let http = git2::transport::register("http", |_| {
        Err(git2::Error::from_str(
            "plain http git is refused; use https",
        ))
    });
    if let Err(e) = http {
        panic!("cannot register the http git transport: {e}");
    }
}

struct Subtransport {
    session: Arc<Session>,
}

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        url: &str,
        service: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        if url != self.session.remote.url {
            self.session.fail(RepoError::BadUrl(
                "libgit2 asked for a URL other than the session's repository (a url.*.insteadOf rewrite?)".into(),
            ));
            return Err(git2::Error::from_str(
                "refusing a git URL other than the session's repository",
            ));
        }
        Ok(Box::new(Stream {
            session: self.session.clone(),
            service,
            body: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request/response: writes are buffered (libgit2 writes a push's
/// commands and pack in many pieces before it reads) and sent on the first
/// read; the response streams.
struct Stream {
    session: Arc<Session>,
    service: Service,
    body: Vec<u8>,
    response: Option<reqwest::blocking::Response>,
}

impl Stream {
    fn send(&mut self) -> Result<reqwest::blocking::Response, RepoError> {
        let remote = &self.session.remote;
        let (suffix, svc, post) = match self.service {
            Service::UploadPackLs => ("/info/refs?service=git-upload-pack", "upload-pack", false),
            Service::UploadPack => ("/git-upload-pack", "upload-pack", true),
            Service::ReceivePackLs => {
                ("/info/refs?service=git-receive-pack", "receive-pack", false)
            }
            Service::ReceivePack => ("/git-receive-pack", "receive-pack", true),
        };
        let target = format!("{}{suffix}", remote.url);
        let parsed = url::Url::parse(&target)
            .map_err(|e| RepoError::Network(format!("bad request URL: {e}")))?;
        let mut req = if post {
            remote
                .client
                .post(parsed.clone())
                .header("Content-Type", format!("application/x-git-{svc}-request"))
                .header("Accept", format!("application/x-git-{svc}-result"))
                .body(std::mem::take(&mut self.body))
        } else {
            remote.client.get(parsed.clone())
        };
        req = req.header("User-Agent", "git/2.0 (runner)");
        if let Some(token) = &remote.token {
            if same_origin(&parsed, &remote.origin) {
                use base64::Engine;
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("x-access-token:{}", token.expose()));
                let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {basic}"))
                    .map_err(|_| {
                        RepoError::Git("the token is not valid in an HTTP header".into())
                    })?;
                value.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        let resp = req.send().map_err(|e| {
            RepoError::Network(format!(
                "{} {}: {}",
                if post { "POST" } else { "GET" },
                remote.host,
                chain(&e)
            ))
        })?;
        let status = resp.status();
        match status.as_u16() {
            200 => {}
            401 | 403 => {
                return Err(RepoError::Unauthorized {
                    host: remote.host.clone(),
                })
            }
            404 => {
                return Err(RepoError::NotFound {
                    url: remote.url.clone(),
                })
            }
            300..=399 => {
                return Err(RepoError::Network(format!(
                    "{} answered with a redirect ({status}); redirects are refused, use the repository's final URL",
                    remote.host
                )))
            }
            _ => {
                return Err(RepoError::Network(format!(
                    "{} answered {status}",
                    remote.host
                )))
            }
        }
        let want = if post {
            format!("application/x-git-{svc}-result")
        } else {
            format!("application/x-git-{svc}-advertisement")
        };
        let got = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got != want {
            return Err(RepoError::Network(format!(
                "{} is not a smart git server (Content-Type {got:?}, expected {want})",
                remote.host
            )));
        }
        Ok(resp)
    }
}

fn same_origin(u: &url::Url, origin: &super::remote::Origin) -> bool {
    u.scheme() == origin.0
        && u.host_str() == Some(origin.1.as_str())
        && u.port_or_known_default() == Some(origin.2)
}

/// An error and its sources on one line (reqwest's own text is "error
/// sending request"; the cause is in the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Largest request body sent (a push's pack is buffered whole before it
/// goes out): about GitHub's own push limit, and far above what one
/// session's commits may add ([`super::MAX_COMMIT_BYTES`] each).
pub(super) const MAX_BODY_BYTES: usize = 2 << 30;

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.session.cancel.is_cancelled() {
            return Err(self.session.fail(RepoError::Cancelled));
        }
        if self.body.len().saturating_add(data.len()) > MAX_BODY_BYTES {
            return Err(self.session.fail(RepoError::TooLarge(format!(
                "the push is larger than {} MiB; push fewer or smaller commits",
                MAX_BODY_BYTES >> 20
            ))));
        }
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.session.cancel.is_cancelled() {
            return Err(self.session.fail(RepoError::Cancelled));
        }
        if self.response.is_none() {
            match self.send() {
                Ok(r) => self.response = Some(r),
                Err(e) => return Err(self.session.fail(e)),
            }
        }
        let Some(resp) = self.response.as_mut() else {
            return Err(io::Error::other("no response"));
        };
        resp.read(buf).map_err(|e| {
            self.session.fail(RepoError::Network(format!(
                "reading from {}: {e}",
                self.session.remote.host
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_server_loses_the_token_raw_and_as_basic_credentials() {
        use base64::Engine;
        let token = "tok_ECHOED_42";
        let remote = Remote::new(
            "https://git.example/o/r.git",
            Some(crate::secret::Secret::new(token)),
            reqwest::blocking::Client::new(),
        )
        .unwrap();
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        let entered = enter(&remote, &Cancel::never());
        let said = format!("refs/heads/x: denied for {token} (Authorization: Basic {basic})");
        let shown = entered.redact(&said);
        assert!(!shown.contains(token) && !shown.contains(&basic), "{shown}");
        assert_eq!(shown.matches("[redacted]").count(), 2, "{shown}");
        let e = entered
            .check::<()>(Err(git2::Error::from_str(&said)))
            .unwrap_err();
        assert!(!e.to_string().contains(token), "{e}");
    }
}
