//! The control plane's client: one method per route of the session
//! contract, blocking (the worker runs sessions on their own threads).
//!
//! Errors are typed so the worker can branch on what matters: a claim
//! conflict (another worker has it: move on), a lost claim (stop the
//! session's work at once), an unknown worker (stop: reconfiguration is
//! needed), or anything else (retry with backoff).

use protocol::activity::Activity;
use protocol::ids::{ClaimId, SessionId, WorkerId};
use protocol::platform::{
    Claim, ClaimRequest, ErrorBody, ExtendRequest, Finish, Heartbeat, HeldClaim, Lease,
    MetadataUpdate, Outcome, PostActivity, RegisterWorker, Worker,
};
use protocol::session::{NewSession, Session};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

pub mod sse;

/// Largest answer the worker reads from the control plane (a stored
/// conversation, an image of at most 4 MiB): beyond it the answer is
/// refused rather than held in memory.
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// An open event stream of a session (see [`Platform::session_events`]).
pub type EventStream = sse::SseReader<std::io::BufReader<reqwest::blocking::Response>>;

/// What a control-plane call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlatformError {
    /// 409 `claim_conflict`: another worker holds the session.
    #[error("claim conflict: {0}")]
    ClaimConflict(String),
    /// 409 `claim_invalid`: this claim no longer holds the session.
    #[error("claim lost: {0}")]
    ClaimLost(String),
    /// 404 `unknown_worker`: the saved worker id was rejected.
    #[error("unknown worker: {0}")]
    UnknownWorker(String),
    /// Any other error response.
    #[error("control plane answered {status} {kind}: {message}")]
    Api {
        /// The HTTP status the control plane answered with.
        status: u16,
        /// Error type.
        kind: String,
        /// Message.
        message: String,
    },
    /// The request did not get an answer.
    #[error("cannot reach the control plane: {0}")]
    Transport(String),
    /// The sign-in is refused and cannot be refreshed: `runner login` is
    /// needed.
    #[error("signed out: {0}")]
    AuthLost(String),
}

/// A blocking control-plane client.
#[derive(Clone)]
pub struct Platform {
    base: String,
    http: reqwest::blocking::Client,
    tokens: Option<std::sync::Arc<dyn crate::auth::TokenSource>>,
}

impl Platform {
    /// A client for the control plane at `base` (e.g. `http://127.0.0.1:8700`).
    pub fn new(base: &str) -> Result<Platform, PlatformError> {
        // Never follow a redirect with the bearer token.
        let http = crate::trust::client_builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlatformError::Transport(e.to_string()))?;
        Ok(Platform {
            base: base.trim_end_matches('/').to_string(),
            http,
            tokens: None,
        })
    }

    /// Sends the user access token of `tokens` with every call (and
    /// refreshes it on a 401).
    pub fn with_tokens(mut self, tokens: std::sync::Arc<dyn crate::auth::TokenSource>) -> Platform {
        self.tokens = Some(tokens);
        self
    }

    /// Why the sign-in is lost, once it is.
    pub fn signed_out(&self) -> Option<String> {
        self.tokens.as_ref().and_then(|t| t.lost())
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends (with the bearer token, refreshed once on a 401) and answers
    /// the successful response, or the typed error of any other.
    fn respond(
        &self,
        make: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, PlatformError> {
        let auth = |token: &str| make().bearer_auth(token);
        let (resp, token) = match &self.tokens {
            None => (make().send(), None),
            Some(t) => {
                // Signed out only when the sign-in is lost for good; a
                // refresh that failed for now (control plane down) is a
                // transport problem, retried like any other.
                let token = t.bearer().map_err(|e| match t.lost() {
                    Some(why) => PlatformError::AuthLost(why),
                    None => PlatformError::Transport(e),
                })?;
                (auth(&token).send(), Some(token))
            }
        };
        let mut resp = resp.map_err(|e| PlatformError::Transport(crate::trust::describe(&e)))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            if let (Some(t), Some(token)) = (&self.tokens, token) {
                // Refresh (once, whoever comes first) and try again.
                let fresh = t.after_unauthorized(&token).map_err(|e| match t.lost() {
                    Some(why) => PlatformError::AuthLost(why),
                    None => PlatformError::Transport(e),
                })?;
                resp = auth(&fresh)
                    .send()
                    .map_err(|e| PlatformError::Transport(crate::trust::describe(&e)))?;
            }
        }
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp
            .bytes()
            .map_err(|e| PlatformError::Transport(e.to_string()))?;
        let (kind, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error.kind, b.error.message),
            Err(_) => (
                "unknown".into(),
                String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            ),
        };
        Err(match (status.as_u16(), kind.as_str()) {
            (409, "claim_conflict") => PlatformError::ClaimConflict(message),
            (409, "claim_invalid") => PlatformError::ClaimLost(message),
            (404, "unknown_worker") => PlatformError::UnknownWorker(message),
            (401, _) | (403, "oauth_required") => PlatformError::AuthLost(message),
            (s, _) => PlatformError::Api {
                status: s,
                kind,
                message,
            },
        })
    }

    /// The body of a successful answer as it came, at most
    /// [`MAX_ANSWER_BYTES`] (a control plane answering more is refused,
    /// not buffered).
    fn send_bytes(
        &self,
        make: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<Vec<u8>, PlatformError> {
        use std::io::Read;
        let mut body = Vec::new();
        self.respond(make)?
            .take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| PlatformError::Transport(e.to_string()))?;
        if body.len() as u64 > MAX_ANSWER_BYTES {
            return Err(PlatformError::Transport(format!(
                "the control plane's answer is larger than {} MiB; refused",
                MAX_ANSWER_BYTES >> 20
            )));
        }
        Ok(body)
    }

    fn send<T: DeserializeOwned>(
        &self,
        make: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<T, PlatformError> {
        let bytes = self.send_bytes(make)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PlatformError::Transport(format!("unexpected response body: {e}")))
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, PlatformError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.http.post(&url).json(body))
    }

    fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, PlatformError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.http.put(&url).json(body))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PlatformError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.http.get(&url))
    }

    /// Queues a session.
    pub fn queue(&self, new: &NewSession) -> Result<Session, PlatformError> {
        self.post("/v1/sessions", new)
    }

    /// The session's event stream (`GET /v1/sessions/{id}/events`), from
    /// just after event `after` (`Last-Event-ID`), or from its first event.
    /// The stream stays open while the session runs; each read waits at
    /// most the client's timeout (30 s, twice the control plane's 15 s
    /// keep-alive), so a dead connection ends in an error, not a hang.
    /// A worker passes its `claim` on the session: the stream is then
    /// counted against the claim, not the user's limit of streams, and a
    /// claim that no longer holds is `ClaimLost`.
    pub fn session_events(
        &self,
        session: &SessionId,
        after: Option<&str>,
        claim: Option<&ClaimId>,
    ) -> Result<EventStream, PlatformError> {
        let url = match claim {
            Some(c) => format!("{}/v1/sessions/{session}/events?claimId={c}", self.base),
            None => format!("{}/v1/sessions/{session}/events", self.base),
        };
        let resp = self.respond(|| {
            let r = self
                .http
                .get(&url)
                .header(reqwest::header::ACCEPT, "text/event-stream");
            match after {
                Some(id) => r.header("last-event-id", id),
                None => r,
            }
        })?;
        Ok(sse::SseReader::new(std::io::BufReader::new(resp)))
    }

    /// A session with its activities (as JSON: the view).
    pub fn session(&self, id: &SessionId) -> Result<serde_json::Value, PlatformError> {
        self.get(&format!("/v1/sessions/{id}"))
    }

    /// One page (up to 100) of the caller's team's agents, newest first
    /// (`GET /api/v1/cloud/agents`), from the `next_page` token of the
    /// previous page: `{data: [{id, name, …}], has_more, next_page}`.
    /// `runner run --agent NAME` finds its agent in these.
    pub fn agents_page(&self, page: Option<&str>) -> Result<serde_json::Value, PlatformError> {
        let url = format!("{}/api/v1/cloud/agents", self.base);
        let bytes = self.send_bytes(|| {
            let r = self.http.get(&url).query(&[("limit", "100")]);
            match page {
                Some(p) => r.query(&[("page", p)]),
                None => r,
            }
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PlatformError::Transport(format!("unexpected response body: {e}")))
    }

    /// Finds or creates the worker.
    pub fn register(&self, r: &RegisterWorker) -> Result<Worker, PlatformError> {
        self.post("/v1/workers", r)
    }

    /// A worker by id (checks a saved id).
    pub fn worker(&self, id: &WorkerId) -> Result<Worker, PlatformError> {
        self.get(&format!("/v1/workers/{id}"))
    }

    /// Up to `limit` sessions this worker may claim, oldest first.
    pub fn claimable(
        &self,
        worker: &WorkerId,
        limit: u32,
    ) -> Result<Vec<protocol::platform::ClaimableSession>, PlatformError> {
        self.get(&format!("/v1/workers/{worker}/sessions?limit={limit}"))
    }

    /// Claims a session.
    pub fn claim(
        &self,
        worker: &WorkerId,
        session: &SessionId,
        lease_seconds: u32,
    ) -> Result<Claim, PlatformError> {
        self.post(
            &format!("/v1/workers/{worker}/sessions/{session}/claim"),
            &ClaimRequest {
                lease_seconds: Some(lease_seconds),
            },
        )
    }

    /// Extends a lease.
    pub fn extend(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        lease_seconds: u32,
    ) -> Result<Lease, PlatformError> {
        self.post(
            &format!("/v1/sessions/{session}/extend"),
            &ExtendRequest {
                claim_id: claim.clone(),
                lease_seconds: Some(lease_seconds),
            },
        )
    }

    /// Replaces the list of repositories this worker reports it can work
    /// on; how many the control plane now holds for it.
    pub fn report_repositories(
        &self,
        worker: &WorkerId,
        list: &protocol::repo_list::RepositoryList,
    ) -> Result<u64, PlatformError> {
        #[derive(serde::Deserialize)]
        struct Ack {
            stored: u64,
        }
        self.put::<_, Ack>(&format!("/v1/workers/{worker}/repositories"), list)
            .map(|a| a.stored)
    }

    /// Reports health.
    pub fn heartbeat(&self, worker: &WorkerId, hb: &Heartbeat) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(&format!("/v1/workers/{worker}/heartbeat"), hb)
            .map(|_| ())
    }

    /// Appends an activity.
    pub fn activity(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        activity: &Activity,
    ) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(
            &format!("/v1/sessions/{session}/activities"),
            &PostActivity {
                claim_id: claim.clone(),
                activity: activity.clone(),
            },
        )
        .map(|_| ())
    }

    /// Updates the plan.
    pub fn plan(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        steps: Vec<String>,
    ) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(
            &format!("/v1/sessions/{session}/metadata"),
            &MetadataUpdate {
                claim_id: claim.clone(),
                plan: Some(steps),
                external_url: None,
            },
        )
        .map(|_| ())
    }

    /// Completes, fails or releases (`outcome` is the route's last segment).
    pub fn finish(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        outcome: Outcome,
        message: &str,
    ) -> Result<Session, PlatformError> {
        self.post(
            &format!("/v1/sessions/{session}/{}", outcome.as_str()),
            &Finish {
                claim_id: claim.clone(),
                message: message.into(),
            },
        )
    }

    /// Claims this worker still holds.
    pub fn held_claims(&self, worker: &WorkerId) -> Result<Vec<HeldClaim>, PlatformError> {
        self.get(&format!("/v1/workers/{worker}/claims"))
    }

    /// Sets the external URL people follow the work at (a pull request).
    pub fn external_url(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        url: &str,
    ) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(
            &format!("/v1/sessions/{session}/metadata"),
            &MetadataUpdate {
                claim_id: claim.clone(),
                plan: None,
                external_url: Some(url.into()),
            },
        )
        .map(|_| ())
    }

    /// Appends messages to the session's stored conversation.
    pub fn append_conversation(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        expect_count: u64,
        messages: &[protocol::conversation::Message],
    ) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(
            &format!("/v1/sessions/{session}/conversation"),
            &protocol::conversation::AppendConversation {
                claim_id: claim.clone(),
                expect_count: Some(expect_count),
                messages: messages.to_vec(),
            },
        )
        .map(|_| ())
    }

    /// The bytes of an image attached to the session, read under the claim
    /// (refused once the claim no longer holds the session).
    pub fn attachment(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        image: &str,
    ) -> Result<Vec<u8>, PlatformError> {
        let url = format!("{}/v1/sessions/{session}/attachments/{image}", self.base);
        self.send_bytes(|| self.http.get(&url).query(&[("claimId", claim.as_str())]))
    }

    /// A URL of this control plane: `segments` appended to `/v1/sessions`
    /// as path segments (percent-encoded, so an id can never add a segment
    /// of its own), with `query`.
    fn session_url(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<url::Url, PlatformError> {
        let mut u = url::Url::parse(&self.base).map_err(|e| {
            PlatformError::Transport(format!("the control plane URL is not valid: {e}"))
        })?;
        u.path_segments_mut()
            .map_err(|()| {
                PlatformError::Transport("the control plane URL cannot have a path".into())
            })?
            .pop_if_empty()
            .extend(["v1", "sessions"])
            .extend(segments);
        u.query_pairs_mut().extend_pairs(query);
        Ok(u)
    }

    /// One skill pinned in the session's agent version, whole, read under
    /// the claim (`GET /v1/sessions/{session}/skills/{skill_id}/{version}`):
    /// the worker checks it against the pin's digest before placing it. A
    /// pair the session does not pin is a 404.
    pub fn skill_bundle(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        skill_id: &str,
        version: &str,
    ) -> Result<protocol::toolset::SkillBundle, PlatformError> {
        let url = self.session_url(
            &[session.as_str(), "skills", skill_id, version],
            &[("claimId", claim.as_str())],
        )?;
        self.send(|| self.http.get(url.clone()))
    }

    /// Uploads one artifact of the session under the claim (`PUT
    /// /v1/sessions/{session}/artifacts?claimId=…&path=/data/…`, the body
    /// exactly the bytes the policy decided about). A 413 is a limit of the
    /// control plane's.
    pub fn put_artifact(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        path: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<protocol::toolset::ArtifactInfo, PlatformError> {
        let url = self.session_url(
            &[session.as_str(), "artifacts"],
            &[("claimId", claim.as_str()), ("path", path)],
        )?;
        self.send(|| {
            self.http
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })
    }

    /// The session's stored conversation (to resume it), read under the
    /// worker's claim (the session may be another user's).
    pub fn conversation(
        &self,
        session: &SessionId,
        claim: &ClaimId,
    ) -> Result<Vec<protocol::conversation::ConversationEntry>, PlatformError> {
        self.get(&format!(
            "/v1/sessions/{session}/conversation?claimId={claim}"
        ))
    }

    /// The oldest answer or follow-up a person sent and the worker has not
    /// acknowledged, if any (the same one until acknowledged).
    pub fn next_input(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        after: Option<u64>,
    ) -> Result<Option<protocol::conversation::PendingInput>, PlatformError> {
        self.post::<_, protocol::conversation::TakenInput>(
            &format!("/v1/sessions/{session}/inputs/next"),
            &protocol::conversation::TakeInput {
                claim_id: claim.clone(),
                after,
            },
        )
        .map(|t| t.input)
    }

    /// Acknowledges an input (idempotent).
    pub fn ack_input(
        &self,
        session: &SessionId,
        claim: &ClaimId,
        input: u64,
    ) -> Result<(), PlatformError> {
        self.post::<_, serde_json::Value>(
            &format!("/v1/sessions/{session}/inputs/{input}/ack"),
            &protocol::conversation::TakeInput {
                claim_id: claim.clone(),
                after: None,
            },
        )
        .map(|_| ())
    }

    /// A person answers a session awaiting input (used by `runner up`'s
    /// callers and tests; workers never answer themselves).
    pub fn answer(
        &self,
        session: &SessionId,
        answer: &protocol::conversation::Answer,
    ) -> Result<Session, PlatformError> {
        self.post(&format!("/v1/sessions/{session}/answer"), answer)
    }

    /// A person sends a follow-up to a finished session.
    pub fn follow_up(
        &self,
        session: &SessionId,
        f: &protocol::conversation::FollowUp,
    ) -> Result<Session, PlatformError> {
        self.post(&format!("/v1/sessions/{session}/follow-up"), f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Platform, PlatformError, MAX_ANSWER_BYTES};
    use std::io::{Read, Write};

    #[test]
    fn an_answer_larger_than_the_limit_is_refused_not_buffered() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let len = MAX_ANSWER_BYTES + 10;
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
            );
            let chunk = vec![b' '; 1 << 20];
            let mut sent = 0u64;
            while sent < len {
                let n = chunk.len().min((len - sent) as usize);
                if c.write_all(&chunk[..n]).is_err() {
                    return;
                }
                sent += n as u64;
            }
        });
        let p = Platform::new(&base).unwrap();
        match p.worker(&"wrk_1".to_string().into()) {
            Err(PlatformError::Transport(m)) => assert!(m.contains("larger than 64 MiB"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// Serves one request on loopback, answering `status` with `body`;
    /// hands back the request as received (head and body).
    fn serve_once(status: &str, body: &str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let (status, body) = (status.to_string(), body.to_string());
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                let n = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            got
        });
        (base, h)
    }

    /// The skill is fetched at its route under the claim, ids encoded as
    /// path segments; a 404 (not pinned) is an error naming it.
    #[test]
    fn skill_bundle_asks_for_the_pinned_pair_under_the_claim() {
        let (base, h) = serve_once(
            "200 OK",
            r#"{"skill_id":"skill_1","version":"17","name":"pdf","files":[{"path":"SKILL.md","content_base64":"aGk=","executable":false}]}"#,
        );
        let p = Platform::new(&base).unwrap();
        let b = p
            .skill_bundle(
                &"ses_1".to_string().into(),
                &"clm_1".to_string().into(),
                "skill_1",
                "17",
            )
            .unwrap();
        assert_eq!(
            (b.name.as_str(), b.files[0].bytes().unwrap()),
            ("pdf", b"hi".to_vec())
        );
        let req = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(
            req.starts_with("GET /v1/sessions/ses_1/skills/skill_1/17?claimId=clm_1 "),
            "{req}"
        );
        let (base, h) = serve_once(
            "404 Not Found",
            r#"{"error":{"kind":"not_found","message":"not pinned"}}"#,
        );
        let p = Platform::new(&base).unwrap();
        let e = p
            .skill_bundle(
                &"ses_1".to_string().into(),
                &"clm_1".to_string().into(),
                "../x",
                "1",
            )
            .unwrap_err();
        assert!(matches!(e, PlatformError::Api { status: 404, .. }), "{e:?}");
        let req = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(
            req.starts_with("GET /v1/sessions/ses_1/skills/..%2Fx/1?"),
            "{req}"
        );
    }

    /// An artifact goes up as its bytes with its media type and its path
    /// in the query; a 413 comes back as the API error it is.
    #[test]
    fn put_artifact_sends_exactly_the_bytes() {
        let (base, h) = serve_once(
            "200 OK",
            r#"{"path":"/data/r.md","size_bytes":3,"sha256":"x","media_type":"text/markdown","created_at":"2026-01-01T00:00:00Z"}"#,
        );
        let p = Platform::new(&base).unwrap();
        let info = p
            .put_artifact(
                &"ses_1".to_string().into(),
                &"clm_1".to_string().into(),
                "/data/r.md",
                "text/markdown",
                b"a\0b",
            )
            .unwrap();
        assert_eq!(info.path, "/data/r.md");
        let req = h.join().unwrap();
        let text = String::from_utf8_lossy(&req).to_string();
        assert!(
            text.starts_with("PUT /v1/sessions/ses_1/artifacts?claimId=clm_1&path=%2Fdata%2Fr.md "),
            "{text}"
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: text/markdown"),
            "{text}"
        );
        assert!(req.ends_with(b"\r\n\r\na\0b"), "{text}");
        let (base, h) = serve_once(
            "413 Payload Too Large",
            r#"{"error":{"kind":"too_large","message":"over 25 MiB"}}"#,
        );
        let p = Platform::new(&base).unwrap();
        let e = p
            .put_artifact(
                &"ses_1".to_string().into(),
                &"clm_1".to_string().into(),
                "/data/r.md",
                "text/plain",
                b"x",
            )
            .unwrap_err();
        assert!(matches!(e, PlatformError::Api { status: 413, .. }), "{e:?}");
        h.join().unwrap();
    }
}
