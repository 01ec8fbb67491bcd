//! The HTTP API (axum). Handlers parse, call the [`Store`] on a blocking
//! thread, and map errors to the JSON error body. Bodies are limited in size
//! and unknown fields are refused (the protocol types deny them).

mod agent_api;
mod agent_configs;
mod artifacts;
mod attachments;
mod events;
mod json_errors;
mod keys;
mod metrics;
mod openapi;
mod repositories;
#[cfg(test)]
mod standards_tests;
#[cfg(test)]
mod test_server;
mod v0;
mod web;

use self::openapi::{AgentErrors, BodyErrors, CallerErrors, ImageBodyErrors};
use crate::auth::{AgentCaller, Caller, Principal};
use crate::error::ApiError;
use crate::store::{Outcome, SessionView, Store, StoreError};
use crate::webhooks::{Delivery, NewSubscription, Subscription};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use protocol::activity::ActivityEntry;
use protocol::conversation::{
    Answer, AppendConversation, ConversationEntry, FollowUp, TakeInput, TakenInput,
};
use protocol::platform::{
    Claim, ClaimRequest, ExtendRequest, Finish, Heartbeat, HeldClaim, Lease, MetadataUpdate,
    PostActivity, RegisterWorker, Worker,
};
use protocol::platform::{ClaimableSession, ErrorBody};
use protocol::session::{NewSession, Session, SessionState};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body (of every route but those below).
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest body of the routes that take images — queueing a session, a
/// follow-up: five images of 4 MiB in base64 (about 27 MiB) and the text
/// around them.
pub(crate) const MAX_IMAGE_BODY_BYTES: usize = 32 << 20;

type Shared = Arc<Store>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The JSON body of at most `LIMIT` bytes, or a 400/413/415 with the
/// error body. The limit is the extractor's own (the router's
/// `DefaultBodyLimit` only bounds the routes that read bytes themselves),
/// so a route that takes images says so in its signature.
pub(crate) struct Body<T, const LIMIT: usize = MAX_BODY_BYTES>(pub(crate) T);

/// The media type of a `Content-Type` (its essence: no parameters,
/// lower case), if the headers have one.
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether the request says its body is JSON (`application/json` or an
/// `application/…+json` type), as axum's `Json` asks.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    media_type(headers).is_some_and(|essence| {
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned, const LIMIT: usize>
    axum::extract::FromRequest<S> for Body<T, LIMIT>
{
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {LIMIT} bytes"),
            )
        };
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = match read_limited(req.into_body(), LIMIT).await? {
            Some(b) => b,
            None => return Err(too_large()),
        };
        Json::<T>::from_bytes(&bytes)
            .map(|Json(v)| Body(v))
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {}", e.body_text())))
    }
}

/// How much of a body over its limit is still read (and dropped) before
/// the 413 is sent, and for how long: an answer sent while the client is
/// still writing is often lost to it (a broken pipe instead of the 413).
const DRAIN_BYTES: usize = 16 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);
/// A client that sends nothing more for this long has stopped writing.
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// The body if it has at most `limit` bytes; `None` when it has more (read
/// on, and dropped, while the client keeps writing — at most
/// [`DRAIN_BYTES`] more within [`DRAIN_TIME`] — so it gets to read the
/// answer).
pub(crate) async fn read_limited(
    body: axum::body::Body,
    limit: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::invalid("the body could not be read to its end; send it again")
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > limit {
                break;
            }
            buf.extend_from_slice(&data);
        }
    }
    if seen <= limit {
        return Ok(Some(buf));
    }
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut drained = 0usize;
    while drained < DRAIN_BYTES && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(DRAIN_PAUSE, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                drained += frame.into_data().map(|d| d.len()).unwrap_or(0);
            }
            _ => break,
        }
    }
    Ok(None)
}

/// A JSON body of at most [`MAX_BODY_BYTES`] read as `T`; an empty body
/// (or only whitespace) reads as `{}` whatever its Content-Type — the
/// vendors' clients send empty POSTs, some with `Content-Type:
/// application/json`. A body with content must say it is JSON (415).
pub(crate) async fn json_or_empty<T: serde::de::DeserializeOwned>(
    req: axum::extract::Request,
) -> Result<T, ApiError> {
    let json = is_json(req.headers());
    let Some(bytes) = read_limited(req.into_body(), MAX_BODY_BYTES).await? else {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    };
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send the body as JSON with Content-Type: application/json",
        ));
    } else {
        &bytes
    };
    Json::<T>::from_bytes(bytes)
        .map(|Json(v)| v)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {}", e.body_text())))
}

/// Runs a store call off the async runtime; its error becomes the API's.
async fn blocking<T: Send + 'static>(
    store: Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .map_err(ApiError::from)
}

/// Every route, declared once: the router serves exactly these, and the
/// OpenAPI document ([`openapi`]) is generated from the same list.
pub(crate) fn routes() -> OpenApiRouter<Shared> {
    use crate::auth::oauth;
    OpenApiRouter::with_openapi(self::openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(queue_session, list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(events::session_events))
        .routes(routes!(cancel_session))
        .routes(routes!(extend))
        .routes(routes!(post_activity))
        .routes(routes!(metadata))
        .routes(routes!(complete))
        .routes(routes!(fail))
        .routes(routes!(release))
        .routes(routes!(append_conversation, conversation))
        .routes(routes!(answer))
        .routes(routes!(follow_up))
        .routes(routes!(attachments::attachment))
        .routes(routes!(artifacts::put_artifact, artifacts::list_artifacts))
        .routes(routes!(artifacts::artifact_content))
        .routes(routes!(artifacts::skill_bundle))
        .routes(routes!(next_input))
        .routes(routes!(ack_input))
        .routes(routes!(oauth::authorize_page, oauth::authorize_submit))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::metadata))
        .routes(routes!(crate::auth::device_flow::device_authorization))
        .routes(routes!(
            crate::auth::device_flow::verification_page,
            crate::auth::device_flow::verification_submit
        ))
        .routes(routes!(add_subscription, subscriptions))
        .routes(routes!(deliveries))
        .routes(routes!(register_worker))
        .routes(routes!(get_worker))
        .routes(routes!(claimable))
        .routes(routes!(claim))
        .routes(routes!(heartbeat))
        .routes(routes!(held_claims))
        .routes(routes!(keys::create_api_key, keys::list_api_keys))
        .routes(routes!(keys::revoke_api_key))
        .routes(routes!(v0::me))
        .routes(routes!(v0::models))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(v0::launch_agent, v0::list_agents))
                .routes(routes!(v0::get_agent, v0::delete_agent))
                .routes(routes!(v0::conversation))
                .routes(routes!(v0::followup))
                .routes(routes!(v0::stop_agent))
                .routes(routes!(v0::artifacts::list_artifacts))
                .routes(routes!(v0::artifacts::download_link)),
        )
        .routes(routes!(v0::artifacts::redeem))
        .routes(routes!(repositories::report_repositories))
        .routes(routes!(repositories::list_repositories))
}

/// The router of [`routes`], with the JSON 404 for anything else and the
/// body size limit.
pub(crate) fn router(store: Arc<Store>) -> Router {
    router_with(store, events::StreamSettings::default())
}

/// [`router`] with event streams that behave as `streams` says (tests
/// shorten the keep-alive and the fallback poll, and lower the limits).
pub(crate) fn router_with(store: Arc<Store>, streams: events::StreamSettings) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .nest(agent_configs::MOUNT, agent_configs::router())
        .nest(agent_api::MOUNT, agent_api::router())
        .nest(web::MOUNT, web::router())
        .fallback(|uri: axum::http::Uri| async move {
            json_errors::Mount::of(uri.path()).answer(ApiError::not_found(
                "not_found",
                "no such route; see GET /openapi.json",
            ))
        })
        .method_not_allowed_fallback(|uri: axum::http::Uri| async move {
            json_errors::Mount::of(uri.path()).answer(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method; see GET /openapi.json",
            ))
        })
        .layer(axum::middleware::from_fn(json_errors::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(Arc::new(events::Streams::new(streams))))
        .layer(axum::middleware::from_fn(bearer_challenge))
        .layer(axum::middleware::from_fn_with_state(
            store.clone(),
            metrics::count_requests,
        ))
        .with_state(store)
}

/// RFC 6750 §3: a 401 tells the client how to authenticate —
/// `WWW-Authenticate: Bearer`, with `error="invalid_token"` when the
/// request carried a credential that was refused. Answers that say it
/// their own way (the OAuth token endpoint's `Basic` challenge) keep
/// theirs.
async fn bearer_challenge(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let had_credentials = req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION);
    let mut r = next.run(req).await;
    if r.status() == StatusCode::UNAUTHORIZED
        && !r
            .headers()
            .contains_key(axum::http::header::WWW_AUTHENTICATE)
    {
        let v = if had_credentials {
            r#"Bearer realm="control-plane", error="invalid_token""#
        } else {
            r#"Bearer realm="control-plane""#
        };
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(v),
        );
    }
    r
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "The control plane is up.", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// This document (OpenAPI 3.1), generated from the routes themselves.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object)))]
async fn openapi_json(headers: axum::http::HeaderMap) -> Json<utoipa::openapi::OpenApi> {
    // The OAuth URLs in it are absolute: they name the host the caller
    // reached (a plain authority only), or localhost.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.contains('@') && h.parse::<axum::http::uri::Authority>().is_ok())
        .unwrap_or("localhost");
    Json(self::openapi::document(&format!("http://{host}")))
}

/// The answer to a heartbeat.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct HeartbeatAck {
    /// Always true.
    ok: bool,
}

/// The answer to an input's acknowledgement.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct InputAck {
    /// The input id.
    acknowledged: u64,
}

/// Queue work for an agent profile.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), request_body = NewSession, responses((status = 200, description = "The queued session; `source.images` names the images sent, stored as its attachments.", body = Session), ImageBodyErrors, CallerErrors))]
pub(crate) async fn queue_session(
    State(s): State<Shared>,
    Caller(who): Caller,
    Body(new): Body<NewSession, MAX_IMAGE_BODY_BYTES>,
) -> ApiResult<Session> {
    let owner = caller_user(&who);
    blocking(s, move |st| st.queue_as(new, owner.as_deref())).await
}

/// Query of `GET /v1/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

/// List sessions, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("state" = Option<SessionState>, Query, description = "Only sessions in this state."), ("limit" = Option<u32>, Query, description = "At most this many (1–1000, default 100).")), responses((status = 200, description = "Sessions, newest first.", body = Vec<Session>), (status = 400, description = "`invalid_request`: an unknown state or a malformed query.", body = ErrorBody), CallerErrors))]
pub(crate) async fn list_sessions(
    State(s): State<Shared>,
    Caller(who): Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<Session>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let state = match q.state.as_deref() {
        Some(x) => Some(
            SessionState::parse(x)
                .ok_or_else(|| ApiError::invalid(format!("unknown state {x:?}")))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let viewer = caller_user(&who);
    blocking(s, move |st| st.list(state, limit, viewer.as_deref())).await
}

/// A session with its activity history.
#[utoipa::path(get, path = "/v1/sessions/{session}", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`).")), responses((status = 200, description = "The session with its activities and state changes.", body = SessionView), (status = 404, description = "`not_found`: no such session.", body = ErrorBody), CallerErrors))]
pub(crate) async fn get_session(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<SessionView> {
    let user = caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.get(&id)
    })
    .await
}

/// Stop a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/cancel", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`).")), responses((status = 200, description = "The cancelled session; its claim is void.", body = Session), (status = 404, description = "`not_found`: no such session.", body = ErrorBody), (status = 409, description = "`invalid_transition`: the session's state does not allow this.", body = ErrorBody), CallerErrors))]
pub(crate) async fn cancel_session(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Session> {
    let user = caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.cancel(&id)
    })
    .await
}

/// Find or create a worker.
#[utoipa::path(post, path = "/v1/workers", tag = "workers", security(("user_token" = ["agent"])), request_body = RegisterWorker, responses((status = 200, description = "The worker (found again for the same workspace, agent profile and runtime).", body = Worker), BodyErrors, AgentErrors))]
pub(crate) async fn register_worker(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Body(r): Body<RegisterWorker>,
) -> ApiResult<Worker> {
    blocking(s, move |st| st.register_worker_as(r, Some(&user))).await
}

/// A worker.
#[utoipa::path(get, path = "/v1/workers/{worker}", tag = "workers", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`).")), responses((status = 200, description = "The worker.", body = Worker), (status = 404, description = "`unknown_worker`: no such worker; register again.", body = ErrorBody), AgentErrors))]
pub(crate) async fn get_worker(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path(id): Path<String>,
) -> ApiResult<Worker> {
    blocking(s, move |st| {
        st.check_worker_caller(&id, &user)?;
        st.worker(&id)
    })
    .await
}

/// Query of `GET /v1/workers/{worker}/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimableQuery {
    limit: Option<u32>,
}

/// Sessions this worker may claim, oldest first (`limit` 1–100, default 50).
#[utoipa::path(get, path = "/v1/workers/{worker}/sessions", tag = "workers", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`)."), ("limit" = Option<u32>, Query, description = "At most this many (1–100, default 50).")), responses((status = 200, description = "Queued sessions this worker may claim, oldest first.", body = Vec<ClaimableSession>), (status = 400, description = "`invalid_request`: a malformed query.", body = ErrorBody), (status = 404, description = "`unknown_worker`: no such worker; register again.", body = ErrorBody), AgentErrors))]
pub(crate) async fn claimable(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path(id): Path<String>,
    q: Result<Query<ClaimableQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<ClaimableSession>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    blocking(s, move |st| {
        st.check_worker_caller(&id, &user)?;
        st.claimable(&id, limit)
    })
    .await
}

/// Claim a session (409 when another worker has it).
#[utoipa::path(post, path = "/v1/workers/{worker}/sessions/{session}/claim", tag = "claims", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`)."), ("session" = String, Path, description = "The session id (`ses_…`).")), request_body(content = Option<ClaimRequest>, description = "Optional: no body means the default lease (900 s)."), responses((status = 200, description = "The claim: carry its claimId in every later call.", body = Claim), (status = 400, description = "`invalid_request`: the body is not valid JSON, or leaseSeconds is out of range (1–3600).", body = ErrorBody), (status = 404, description = "`unknown_worker` or `not_found`: no such worker, or a session this worker may not claim.", body = ErrorBody), (status = 409, description = "`claim_conflict`: another worker has it, or it is not queued; leave it alone.", body = ErrorBody), AgentErrors))]
pub(crate) async fn claim(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path((w, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Claim> {
    // The body is optional: no body means the default lease.
    let req: ClaimRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        ClaimRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?
    };
    let lease = req.lease_seconds;
    blocking(s, move |st| {
        st.check_worker_caller(&w, &user)?;
        st.claim(&w, &id, lease)
    })
    .await
}

/// Extend a lease.
#[utoipa::path(post, path = "/v1/sessions/{session}/extend", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = ExtendRequest, responses((status = 200, description = "The new lease, from now.", body = Lease), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn extend(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(r): Body<ExtendRequest>,
) -> ApiResult<Lease> {
    blocking(s, move |st| st.extend(&id, r)).await
}

/// Worker health (no work, no lease).
#[utoipa::path(post, path = "/v1/workers/{worker}/heartbeat", tag = "workers", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`).")), request_body = Heartbeat, responses((status = 200, description = "Recorded (health only: no work, no lease).", body = HeartbeatAck), (status = 404, description = "`unknown_worker`: no such worker; register again.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn heartbeat(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path(id): Path<String>,
    Body(h): Body<Heartbeat>,
) -> ApiResult<HeartbeatAck> {
    blocking(s, move |st| {
        st.check_worker_caller(&id, &user)?;
        st.heartbeat(&id, h).map(|()| HeartbeatAck { ok: true })
    })
    .await
}

/// Append an activity.
#[utoipa::path(post, path = "/v1/sessions/{session}/activities", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = PostActivity, responses((status = 200, description = "The recorded activity.", body = ActivityEntry), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn post_activity(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(a): Body<PostActivity>,
) -> ApiResult<ActivityEntry> {
    blocking(s, move |st| st.post_activity(&id, a)).await
}

/// Update plan / external URL.
#[utoipa::path(post, path = "/v1/sessions/{session}/metadata", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = MetadataUpdate, responses((status = 200, description = "The session with its new plan or external URL.", body = Session), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn metadata(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(m): Body<MetadataUpdate>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.metadata(&id, m)).await
}

/// Complete a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/complete", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = Finish, responses((status = 200, description = "The completed session.", body = Session), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn complete(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Complete, f)).await
}

/// Fail a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/fail", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = Finish, responses((status = 200, description = "The failed session.", body = Session), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn fail(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Fail, f)).await
}

/// Release a session back to the queue.
#[utoipa::path(post, path = "/v1/sessions/{session}/release", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = Finish, responses((status = 200, description = "The session, queued again.", body = Session), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn release(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Release, f)).await
}

/// Claims a worker still holds.
#[utoipa::path(get, path = "/v1/workers/{worker}/claims", tag = "workers", security(("user_token" = ["agent"])), params(("worker" = String, Path, description = "The worker id (`wrk_…`).")), responses((status = 200, description = "Active claims the worker holds.", body = Vec<HeldClaim>), (status = 404, description = "`unknown_worker`: no such worker; register again.", body = ErrorBody), AgentErrors))]
pub(crate) async fn held_claims(
    State(s): State<Shared>,
    AgentCaller(user): AgentCaller,
    Path(id): Path<String>,
) -> ApiResult<Vec<HeldClaim>> {
    blocking(s, move |st| {
        st.check_worker_caller(&id, &user)?;
        st.held_claims(&id)
    })
    .await
}

/// Append messages to the conversation (worker, under its claim).
#[utoipa::path(post, path = "/v1/sessions/{session}/conversation", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = AppendConversation, responses((status = 200, description = "How many messages the conversation now has.", body = u64), (status = 409, description = "`claim_invalid`: the claim does not hold the session; `conversation_conflict`: the conversation is not as long as expect_count says; read it again.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn append_conversation(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(a): Body<AppendConversation>,
) -> ApiResult<u64> {
    blocking(s, move |st| st.append_conversation(&id, a)).await
}

/// The conversation of a model session, oldest first.
#[utoipa::path(get, path = "/v1/sessions/{session}/conversation", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("claimId" = Option<String>, Query, description = "A worker's claim on the session: its worker reads it whoever owns it.")), responses((status = 200, description = "The conversation, oldest first.", body = Vec<ConversationEntry>), (status = 404, description = "`not_found`: no such session, or another user's.", body = ErrorBody), (status = 409, description = "`claim_invalid`: `claimId` does not hold the session.", body = ErrorBody), CallerErrors))]
pub(crate) async fn conversation(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    q: Result<Query<ClaimQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<ConversationEntry>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let user = caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), q.claim_id.as_deref())?;
        st.conversation(&id)
    })
    .await
}

/// `?claimId=`: a worker reading a session under its claim.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimQuery {
    #[serde(rename = "claimId")]
    claim_id: Option<String>,
}

/// Answer a session that is awaiting input (approve, refuse, or reply).
#[utoipa::path(post, path = "/v1/sessions/{session}/answer", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = Answer, responses((status = 200, description = "The session, active again.", body = Session), (status = 404, description = "`not_found`: no such session.", body = ErrorBody), (status = 409, description = "`invalid_transition`: the session is not awaiting input; `stale_question`: question_id is not the question asked now.", body = ErrorBody), BodyErrors, CallerErrors))]
pub(crate) async fn answer(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(mut a): Body<Answer>,
) -> ApiResult<Session> {
    a.by = who_name(&who);
    let user = caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.answer(&id, a)
    })
    .await
}

/// Send a follow-up to a finished session; it is queued again.
#[utoipa::path(post, path = "/v1/sessions/{session}/follow-up", tag = "sessions", security(("user_token" = ["agent"]), ("api_key" = [])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = FollowUp, responses((status = 200, description = "The session, queued again (its images stored as attachments).", body = Session), (status = 404, description = "`not_found`: no such session.", body = ErrorBody), (status = 409, description = "`invalid_transition`: the session's state does not allow this.", body = ErrorBody), ImageBodyErrors, CallerErrors))]
pub(crate) async fn follow_up(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(mut f): Body<FollowUp, MAX_IMAGE_BODY_BYTES>,
) -> ApiResult<Session> {
    f.by = who_name(&who);
    let user = caller_user(&who);
    blocking(s, move |st| {
        st.check_session_access(&id, user.as_deref(), None)?;
        st.follow_up(&id, f)
    })
    .await
}

/// The oldest answer or follow-up not yet acknowledged (worker, under its
/// claim).
#[utoipa::path(post, path = "/v1/sessions/{session}/inputs/next", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`).")), request_body = TakeInput, responses((status = 200, description = "The oldest unacknowledged input, if any.", body = TakenInput), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn next_input(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(t): Body<TakeInput>,
) -> ApiResult<TakenInput> {
    blocking(s, move |st| st.next_input(&id, t)).await
}

/// Acknowledge an input: the worker is done with it (idempotent).
#[utoipa::path(post, path = "/v1/sessions/{session}/inputs/{input}/ack", tag = "claims", security(("user_token" = ["agent"])), params(("session" = String, Path, description = "The session id (`ses_…`)."), ("input" = u64, Path, description = "The input id (from inputs/next).")), request_body = TakeInput, responses((status = 200, description = "Acknowledged (again, if it was).", body = InputAck), (status = 404, description = "`not_found`: the session has no such input.", body = ErrorBody), (status = 409, description = "`claim_invalid`: the claim does not hold the session (unknown, ended, another session's, or its lease expired); stop working on it.", body = ErrorBody), BodyErrors, AgentErrors))]
pub(crate) async fn ack_input(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path((id, input)): Path<(String, u64)>,
    Body(t): Body<TakeInput>,
) -> ApiResult<InputAck> {
    blocking(s, move |st| {
        st.ack_input(&id, input, t).map(|()| InputAck {
            acknowledged: input,
        })
    })
    .await
}

/// The name a person's answer or follow-up is recorded under: the
/// authenticated caller, never a name the body claims.
/// The user a caller acts for: whose sessions it sees (`None`: a key that
/// belongs to nobody, which sees only everyone's).
fn caller_user(p: &Principal) -> Option<String> {
    match p {
        Principal::User { user, .. } => Some(user.clone()),
        Principal::ApiKey { user, .. } => user.clone(),
    }
}

fn who_name(p: &Principal) -> String {
    match p {
        Principal::User { user, .. } => user.clone(),
        Principal::ApiKey { name, .. } => format!("api-key:{name}"),
    }
}

/// Subscribe a URL to session events (CloudEvents; retried; optionally
/// signed — the secret is in this answer only).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("user_token" = ["agent"]), ("api_key" = [])), request_body = NewSubscription, responses((status = 200, description = "The subscription; signing_secret is shown in this answer only.", body = Subscription), BodyErrors, CallerErrors))]
pub(crate) async fn add_subscription(
    State(s): State<Shared>,
    Caller(who): Caller,
    Body(n): Body<NewSubscription>,
) -> ApiResult<Subscription> {
    let user = caller_user(&who);
    blocking(s, move |st| {
        let team = caller_team(st, user.as_deref())?;
        st.add_subscription(n, team.as_deref())
    })
    .await
}

/// The team whose webhooks a caller's user sees and makes: the user's
/// (`None`: a key of nobody's), or every team's for a user whose workers
/// run every user's sessions.
fn caller_team(st: &Store, user: Option<&str>) -> Result<Option<String>, StoreError> {
    match user {
        Some(u) if st.serves_everyone(Some(u)) => Ok(Some(crate::webhooks::ALL_TEAMS.into())),
        Some(u) => st.team_of(u),
        None => Ok(None),
    }
}

/// The webhook subscriptions.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("user_token" = ["agent"]), ("api_key" = [])), responses((status = 200, description = "Every subscription (no secrets).", body = Vec<Subscription>), CallerErrors))]
pub(crate) async fn subscriptions(
    State(s): State<Shared>,
    Caller(who): Caller,
) -> ApiResult<Vec<Subscription>> {
    let user = caller_user(&who);
    blocking(s, move |st| {
        let team = caller_team(st, user.as_deref())?;
        st.subscriptions(team.as_deref())
    })
    .await
}

/// A subscription's delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("user_token" = ["agent"]), ("api_key" = [])), params(("id" = String, Path, description = "The subscription id (`sub_…`).")), responses((status = 200, description = "Deliveries, newest first (at most 500).", body = Vec<Delivery>), (status = 404, description = "`not_found`: no such subscription.", body = ErrorBody), CallerErrors))]
pub(crate) async fn deliveries(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Vec<Delivery>> {
    let user = caller_user(&who);
    blocking(s, move |st| {
        let team = caller_team(st, user.as_deref())?;
        st.deliveries(&id, team.as_deref())
    })
    .await
}
