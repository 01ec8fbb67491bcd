//! The HTTP API (axum). Handlers parse, call the [`Store`] on a blocking
//! thread, and map errors to the JSON error body. Bodies are limited in size
//! and unknown fields are refused (the protocol types deny them).

use crate::auth::{AgentCaller, Caller, Principal};
use crate::error::ApiError;
use crate::store::{Outcome, SessionView, Store, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::activity::ActivityEntry;
use protocol::conversation::{
    Answer, AppendConversation, ConversationEntry, FollowUp, TakeInput, TakenInput,
};
use protocol::platform::{
    Claim, ClaimRequest, ExtendRequest, Finish, Heartbeat, HeldClaim, Lease, MetadataUpdate,
    PostActivity, RegisterWorker, Worker,
};
use protocol::session::{NewSession, Session, SessionState};
use serde::Deserialize;
use std::sync::Arc;

/// Largest request body.
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

type Shared = Arc<Store>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The JSON body, or a 400/413/415 with the error body.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(match &e {
                JsonRejection::BytesRejection(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                    )
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "invalid_request",
                    "send the body as JSON with Content-Type: application/json",
                ),
                _ if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                ),
                _ => ApiError::invalid(format!("invalid JSON body: {}", e.body_text())),
            }),
        }
    }
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

/// The router with every route under `/v1`, plus `/openapi.json` and
/// `/healthz`.
pub(crate) fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/v1/sessions", post(queue_session).get(list_sessions))
        .route("/v1/sessions/{session}", get(get_session))
        .route("/v1/sessions/{session}/cancel", post(cancel_session))
        .route("/v1/sessions/{session}/extend", post(extend))
        .route("/v1/sessions/{session}/activities", post(post_activity))
        .route("/v1/sessions/{session}/metadata", post(metadata))
        .route("/v1/sessions/{session}/complete", post(complete))
        .route("/v1/sessions/{session}/fail", post(fail))
        .route("/v1/sessions/{session}/release", post(release))
        .route(
            "/v1/sessions/{session}/conversation",
            post(append_conversation).get(conversation),
        )
        .route("/v1/sessions/{session}/answer", post(answer))
        .route("/v1/sessions/{session}/follow-up", post(follow_up))
        .route("/v1/sessions/{session}/inputs/next", post(next_input))
        .route("/v1/sessions/{session}/inputs/{input}/ack", post(ack_input))
        .route(
            "/oauth/authorize",
            get(crate::auth::oauth::authorize_page).post(crate::auth::oauth::authorize_submit),
        )
        .route("/oauth/token", post(crate::auth::oauth::token))
        .route("/oauth/revoke", post(crate::auth::oauth::revoke))
        .route("/v1/webhooks", post(add_subscription).get(subscriptions))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
        .route("/v1/workers", post(register_worker))
        .route("/v1/workers/{worker}", get(get_worker))
        .route("/v1/workers/{worker}/sessions", get(claimable))
        .route("/v1/workers/{worker}/sessions/{session}/claim", post(claim))
        .route("/v1/workers/{worker}/heartbeat", post(heartbeat))
        .route("/v1/workers/{worker}/claims", get(held_claims))
        .fallback(|| async {
            ApiError::not_found("not_found", "no such route; see GET /openapi.json")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(store)
}

/// Queue work for an agent profile.
#[utoipa::path(post, path = "/v1/sessions", request_body = Object, responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(crate) async fn queue_session(
    State(s): State<Shared>,
    _caller: Caller,
    Body(new): Body<NewSession>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.queue(new)).await
}

/// Query of `GET /v1/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

/// List sessions, newest first.
#[utoipa::path(get, path = "/v1/sessions", params(("state" = Option<String>, Query), ("limit" = Option<u32>, Query)), responses((status = 200, body = Vec<Object>)))]
pub(crate) async fn list_sessions(
    State(s): State<Shared>,
    _caller: Caller,
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
    blocking(s, move |st| st.list(state, limit)).await
}

/// A session with its activity history.
#[utoipa::path(get, path = "/v1/sessions/{session}", responses((status = 200, body = SessionView), (status = 404, body = Object)))]
pub(crate) async fn get_session(
    State(s): State<Shared>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<SessionView> {
    blocking(s, move |st| st.get(&id)).await
}

/// Stop a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/cancel", responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn cancel_session(
    State(s): State<Shared>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.cancel(&id)).await
}

/// Find or create a worker.
#[utoipa::path(post, path = "/v1/workers", request_body = Object, responses((status = 200, body = Object)))]
pub(crate) async fn register_worker(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Body(r): Body<RegisterWorker>,
) -> ApiResult<Worker> {
    blocking(s, move |st| st.register_worker(r)).await
}

/// A worker.
#[utoipa::path(get, path = "/v1/workers/{worker}", responses((status = 200, body = Object), (status = 404, body = Object)))]
pub(crate) async fn get_worker(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
) -> ApiResult<Worker> {
    blocking(s, move |st| st.worker(&id)).await
}

/// Query of `GET /v1/workers/{worker}/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimableQuery {
    limit: Option<u32>,
}

/// Sessions this worker may claim, oldest first (`limit` 1–100, default 50).
#[utoipa::path(get, path = "/v1/workers/{worker}/sessions", params(("limit" = Option<u32>, Query)), responses((status = 200, body = Vec<Object>)))]
pub(crate) async fn claimable(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    q: Result<Query<ClaimableQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<protocol::platform::ClaimableSession>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    blocking(s, move |st| st.claimable(&id, limit)).await
}

/// Claim a session (409 when another worker has it).
#[utoipa::path(post, path = "/v1/workers/{worker}/sessions/{session}/claim", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn claim(
    State(s): State<Shared>,
    _caller: AgentCaller,
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
    blocking(s, move |st| st.claim(&w, &id, lease)).await
}

/// Extend a lease.
#[utoipa::path(post, path = "/v1/sessions/{session}/extend", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn extend(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(r): Body<ExtendRequest>,
) -> ApiResult<Lease> {
    blocking(s, move |st| st.extend(&id, r)).await
}

/// Worker health (no work, no lease).
#[utoipa::path(post, path = "/v1/workers/{worker}/heartbeat", request_body = Object, responses((status = 200, body = Object)))]
pub(crate) async fn heartbeat(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(h): Body<Heartbeat>,
) -> ApiResult<serde_json::Value> {
    blocking(s, move |st| {
        st.heartbeat(&id, h)
            .map(|_| serde_json::json!({"ok": true}))
    })
    .await
}

/// Append an activity.
#[utoipa::path(post, path = "/v1/sessions/{session}/activities", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn post_activity(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(a): Body<PostActivity>,
) -> ApiResult<ActivityEntry> {
    blocking(s, move |st| st.post_activity(&id, a)).await
}

/// Update plan / external URL.
#[utoipa::path(post, path = "/v1/sessions/{session}/metadata", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn metadata(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(m): Body<MetadataUpdate>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.metadata(&id, m)).await
}

/// Complete a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/complete", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn complete(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Complete, f)).await
}

/// Fail a session.
#[utoipa::path(post, path = "/v1/sessions/{session}/fail", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn fail(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Fail, f)).await
}

/// Release a session back to the queue.
#[utoipa::path(post, path = "/v1/sessions/{session}/release", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn release(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(f): Body<Finish>,
) -> ApiResult<Session> {
    blocking(s, move |st| st.finish(&id, Outcome::Release, f)).await
}

/// Claims a worker still holds.
#[utoipa::path(get, path = "/v1/workers/{worker}/claims", responses((status = 200, body = Vec<Object>)))]
pub(crate) async fn held_claims(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
) -> ApiResult<Vec<HeldClaim>> {
    blocking(s, move |st| st.held_claims(&id)).await
}

/// Append messages to the conversation (worker, under its claim).
#[utoipa::path(post, path = "/v1/sessions/{session}/conversation", request_body = Object, responses((status = 200, body = u64), (status = 409, body = Object)))]
pub(crate) async fn append_conversation(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(a): Body<AppendConversation>,
) -> ApiResult<u64> {
    blocking(s, move |st| st.append_conversation(&id, a)).await
}

/// The conversation of a model session, oldest first.
#[utoipa::path(get, path = "/v1/sessions/{session}/conversation", responses((status = 200, body = Vec<Object>), (status = 404, body = Object)))]
pub(crate) async fn conversation(
    State(s): State<Shared>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Vec<ConversationEntry>> {
    blocking(s, move |st| st.conversation(&id)).await
}

/// Answer a session that is awaiting input (approve, refuse, or reply).
#[utoipa::path(post, path = "/v1/sessions/{session}/answer", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn answer(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(mut a): Body<Answer>,
) -> ApiResult<Session> {
    a.by = who_name(&who);
    blocking(s, move |st| st.answer(&id, a)).await
}

/// Send a follow-up to a finished session; it is queued again.
#[utoipa::path(post, path = "/v1/sessions/{session}/follow-up", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn follow_up(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(mut f): Body<FollowUp>,
) -> ApiResult<Session> {
    f.by = who_name(&who);
    blocking(s, move |st| st.follow_up(&id, f)).await
}

/// The oldest answer or follow-up not yet acknowledged (worker, under its
/// claim).
#[utoipa::path(post, path = "/v1/sessions/{session}/inputs/next", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn next_input(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path(id): Path<String>,
    Body(t): Body<TakeInput>,
) -> ApiResult<TakenInput> {
    blocking(s, move |st| st.next_input(&id, t)).await
}

/// Acknowledge an input: the worker is done with it (idempotent).
#[utoipa::path(post, path = "/v1/sessions/{session}/inputs/{input}/ack", request_body = Object, responses((status = 200, body = Object), (status = 409, body = Object)))]
pub(crate) async fn ack_input(
    State(s): State<Shared>,
    _caller: AgentCaller,
    Path((id, input)): Path<(String, u64)>,
    Body(t): Body<TakeInput>,
) -> ApiResult<serde_json::Value> {
    blocking(s, move |st| {
        st.ack_input(&id, input, t)
            .map(|()| serde_json::json!({"acknowledged": input}))
    })
    .await
}

/// The name a person's answer or follow-up is recorded under: the
/// authenticated caller, never a name the body claims.
fn who_name(p: &Principal) -> String {
    match p {
        Principal::User { user, .. } => user.clone(),
        Principal::ApiKey { name } => format!("api-key:{name}"),
    }
}

/// Subscribe a URL to session events (CloudEvents; retried; optionally
/// signed — the secret is in this answer only).
#[utoipa::path(post, path = "/v1/webhooks", request_body = Object, responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(crate) async fn add_subscription(
    State(s): State<Shared>,
    _caller: Caller,
    Body(n): Body<crate::webhooks::NewSubscription>,
) -> ApiResult<crate::webhooks::Subscription> {
    blocking(s, move |st| st.add_subscription(n)).await
}

/// The webhook subscriptions.
#[utoipa::path(get, path = "/v1/webhooks", responses((status = 200, body = Vec<Object>)))]
pub(crate) async fn subscriptions(
    State(s): State<Shared>,
    _caller: Caller,
) -> ApiResult<Vec<crate::webhooks::Subscription>> {
    blocking(s, move |st| st.subscriptions()).await
}

/// A subscription's delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", responses((status = 200, body = Vec<Object>), (status = 404, body = Object)))]
pub(crate) async fn deliveries(
    State(s): State<Shared>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Vec<crate::webhooks::Delivery>> {
    blocking(s, move |st| st.deliveries(&id)).await
}
