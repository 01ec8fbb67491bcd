//! The Cloud Agents API (`/v0`, after `seeds/cloud-agents-api.md`, served
//! so that clients written for Cursor's v0 API work unchanged): called
//! with a user's API key, by HTTP Basic (`curl -u KEY:`, what Cursor's
//! clients send) or Bearer; every error has a top-level `message`
//! ([`V0Error`]). Each agent is one session ([`crate::cloud_agents`]); a
//! caller sees only its user's agents.

pub(crate) mod artifacts;
mod launch;
#[cfg(test)]
mod tests;

use super::Shared;
use crate::auth::KeyCaller;
use crate::cloud_agents::{
    agent_view, Agent, AgentId, AgentList, Conversation, FollowupRequest, Launch, Models,
    PageCursor,
};
use crate::error::{ApiError, V0Error, V0ErrorBody};
use crate::store::{Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// Largest body of a launch or a follow-up: five images of 4 MiB, in
/// base64, and the text.
pub(crate) const MAX_PROMPT_BODY_BYTES: usize = 32 << 20;

type V0Result<T> = Result<Json<T>, V0Error>;

/// A `/v0` JSON body, or a 400/413/415 with the `/v0` error body.
pub(crate) struct V0Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for V0Body<T> {
    type Rejection = V0Error;
    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, V0Error> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|e| {
                e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
            });
        if !json {
            return Err(V0Error(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the body as JSON with Content-Type: application/json",
            )));
        }
        let Some(bytes) = super::read_limited(req.into_body(), MAX_PROMPT_BODY_BYTES).await? else {
            return Err(V0Error(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body is larger than {} MiB; send fewer or smaller images",
                    MAX_PROMPT_BODY_BYTES >> 20
                ),
            )));
        };
        Json::<T>::from_bytes(&bytes)
            .map(|Json(v)| V0Body(v))
            .map_err(|e| {
                V0Error(ApiError::invalid(format!(
                    "invalid JSON body: {}",
                    e.body_text()
                )))
            })
    }
}

/// Runs a store call off the async runtime; its error becomes a `/v0` one.
async fn blocking<T: Send + 'static>(
    store: Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, V0Error> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(V0Error::from)
}

/// The answer of `GET /v0/me`, field for field as the seed has it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    /// The name of the key this call was made with.
    api_key_name: String,
    /// When that key was created (RFC 3339, UTC).
    created_at: String,
    /// Its owner's email; null while the owner has none
    /// (`control-plane admin user-set-email`).
    user_email: Option<String>,
}

/// The API key this call is made with.
#[utoipa::path(get, path = "/v0/me", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), responses((status = 200, description = "The key's name, when it was created, and its owner's email.", body = Me), (status = 401, description = "`unauthorized`: no credentials, a malformed Authorization header, or a key that is unknown or revoked.", body = V0ErrorBody), (status = 403, description = "`key_without_user`: the key belongs to no user; `api_key_required`: a user access token, not a key.", body = V0ErrorBody), (status = 503, description = "`busy`: the database is busy; retry shortly.", body = V0ErrorBody)))]
pub(crate) async fn me(State(s): State<Shared>, key: KeyCaller) -> V0Result<Me> {
    let owner = blocking(s, move |s| s.key_owner(&key.id)).await?;
    // Revoked between the authentication and this read.
    let owner = owner.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key was revoked; create a new one",
        )
    })?;
    Ok(Json(Me {
        api_key_name: owner.name,
        created_at: owner.created_at,
        user_email: owner.email,
    }))
}

/// The models the registered workers serve.
#[utoipa::path(get, path = "/v0/models", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), responses((status = 200, description = "Model ids the registered workers' providers serve (each worker reports them when it starts), the most recently reporting worker's first. Launch without `model` to let the control plane choose.", body = Models), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody)))]
pub(crate) async fn models(State(s): State<Shared>, key: KeyCaller) -> V0Result<Models> {
    let models = blocking(s, move |s| s.served_models(&key.user)).await?;
    Ok(Json(Models { models }))
}

/// Launches an agent on a repository or a pull request.
#[utoipa::path(post, path = "/v0/agents", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), request_body = Launch, responses((status = 200, description = "The agent, CREATING: queued for a worker that serves its model.", body = Agent), (status = 400, description = "`invalid_request`: an unknown field, no prompt text, no source, both repository and prUrl, a bad URL, ref or branch name, more than 5 images, a short webhook secret, a private webhook URL, or a model no worker serves (see GET /v0/models). The message names the field.", body = V0ErrorBody), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`; `quota_exceeded`: the user's agents keep as many bytes of images as allowed (256 MiB); delete some.", body = V0ErrorBody), (status = 413, description = "`payload_too_large`: more than 32 MiB.", body = V0ErrorBody), (status = 415, description = "`invalid_request`: not JSON.", body = V0ErrorBody), (status = 429, description = "`rate_limited`: this user launched or followed up 30 times in the last minute or 600 in the last hour; the refused call is not counted.", body = V0ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds until a launch is admitted.")))))]
pub(crate) async fn launch_agent(
    State(s): State<Shared>,
    key: KeyCaller,
    V0Body(l): V0Body<Launch>,
) -> V0Result<Agent> {
    // Every check of the body first: a bad one is refused naming its
    // field, before any lookup.
    launch::check(&l, s.private_webhooks())?;
    let model = launch::requested_model(&l).map(str::to_string);
    let worker = {
        let (model, user) = (model.clone(), key.user.clone());
        blocking(s.clone(), move |s| {
            s.worker_serving(model.as_deref(), &user)
        })
        .await?
    };
    let worker = worker.ok_or_else(|| {
        ApiError::invalid(match &model {
            Some(m) => format!(
                "model {m:?} is not served by any registered worker; GET /v0/models lists the models, or leave model out to let the control plane choose"
            ),
            None => "no registered worker that may run your agents serves a model yet: start a runner worker with [[providers]] models signed in as you, or ask the operator (control-plane --worker-user)".into(),
        })
    })?;
    let allow_private = s.private_webhooks();
    let new = launch::new_agent(l, &key.user, &key.id, worker, allow_private)?;
    let (rec, session) = blocking(s.clone(), move |s| s.launch_agent(new)).await?;
    Ok(Json(agent_view(&rec, &session, s.public_url())))
}

/// `GET /v0/agents` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// How many agents (1–100, default 20).
    limit: Option<u32>,
    /// The previous page's `nextCursor`.
    cursor: Option<String>,
    /// Only agents launched on, or delivered as, this pull request.
    pr_url: Option<String>,
}

/// The caller's agents, newest first, a page at a time.
#[utoipa::path(get, path = "/v0/agents", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(ListQuery), responses((status = 200, description = "A page of the caller's agents, newest first. `nextCursor` is absent on the last page; pages do not overlap even when agents are launched between them.", body = AgentList), (status = 400, description = "`invalid_request`: an unknown parameter, a limit outside 1–100, or a cursor this control plane did not hand out.", body = V0ErrorBody), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody)))]
pub(crate) async fn list_agents(
    State(s): State<Shared>,
    key: KeyCaller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> V0Result<AgentList> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("invalid query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(format!("limit is {limit}; give 1 to 100")).into());
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(PageCursor::decode(c).ok_or_else(|| {
            ApiError::invalid(
                "cursor is not one this control plane handed out: pass a nextCursor of GET /v0/agents, or none for the first page",
            )
        })?),
    };
    let user = key.user.clone();
    let page = blocking(s.clone(), move |s| {
        s.agents(&user, limit, after.as_ref(), q.pr_url.as_deref())
    })
    .await?;
    Ok(Json(AgentList {
        agents: page
            .agents
            .iter()
            .map(|(rec, session)| agent_view(rec, session, s.public_url()))
            .collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One of the caller's agents: its status and, once done, its summary.
#[utoipa::path(get, path = "/v0/agents/{id}", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), responses((status = 200, description = "The agent. `summary`: what it did (FINISHED) or why it failed (FAILED); `target.prUrl` once it opened a pull request.", body = Agent), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`: no such agent, a deleted one, or another user's.", body = V0ErrorBody)))]
pub(crate) async fn get_agent(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
) -> V0Result<Agent> {
    let (rec, session) = blocking(s.clone(), move |s| s.agent(&key.user, &id)).await?;
    Ok(Json(agent_view(&rec, &session, s.public_url())))
}

/// What the caller asked the agent and what it answered.
#[utoipa::path(get, path = "/v0/agents/{id}/conversation", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), responses((status = 200, description = "The launch prompt and each follow-up as written (`user_message`), and each answer of the model that has text (`assistant_message`), oldest first. Tool calls and their results are not part of it.", body = Conversation), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`: no such agent, a deleted one, or another user's.", body = V0ErrorBody)))]
pub(crate) async fn conversation(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
) -> V0Result<Conversation> {
    let agent = id.clone();
    let messages = blocking(s, move |s| s.agent_conversation(&key.user, &agent)).await?;
    Ok(Json(Conversation { id, messages }))
}

/// Runs a finished or stopped agent again with a new instruction, on the
/// same branch.
#[utoipa::path(post, path = "/v0/agents/{id}/followup", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), request_body = FollowupRequest, responses((status = 200, description = "Accepted: the agent is CREATING again and resumes its conversation with this prompt, on the same branch.", body = AgentId), (status = 400, description = "`invalid_request`: an unknown field or no prompt text.", body = V0ErrorBody), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`.", body = V0ErrorBody), (status = 409, description = "`invalid_transition`: the agent is CREATING or RUNNING; wait for it to finish, or stop it.", body = V0ErrorBody), (status = 413, description = "`payload_too_large`.", body = V0ErrorBody), (status = 429, description = "`rate_limited`: as for a launch (launches and follow-ups count together).", body = V0ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds until a follow-up is admitted.")))))]
pub(crate) async fn followup(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
    V0Body(f): V0Body<FollowupRequest>,
) -> V0Result<AgentId> {
    let text = launch::prompt_text(&f.prompt, "prompt")?;
    let agent = id.clone();
    let images = f.prompt.images;
    blocking(s, move |s| {
        s.agent_follow_up(&key.user, &agent, &text, &images)
    })
    .await?;
    Ok(Json(AgentId { id }))
}

/// Stops a running agent; its branch and what it pushed stay.
#[utoipa::path(post, path = "/v0/agents/{id}/stop", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), responses((status = 200, description = "Stopped: STOPPED now; its worker kills the agent's sandbox within a second. A follow-up runs it again.", body = AgentId), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`.", body = V0ErrorBody), (status = 409, description = "`invalid_transition`: the agent is FINISHED, FAILED or STOPPED already.", body = V0ErrorBody)))]
pub(crate) async fn stop_agent(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
) -> V0Result<AgentId> {
    let agent = id.clone();
    blocking(s, move |s| s.stop_agent(&key.user, &agent)).await?;
    Ok(Json(AgentId { id }))
}

/// Deletes an agent for good.
#[utoipa::path(delete, path = "/v0/agents/{id}", tag = "cloud-agents", security(("api_key_basic" = []), ("api_key" = [])), params(("id" = String, Path, description = "The agent's id (`bc_…`).")), responses((status = 200, description = "Deleted (stopped first if it was running): its status, conversation and history are gone, and every route answers 404 for it.", body = AgentId), (status = 401, description = "`unauthorized`.", body = V0ErrorBody), (status = 403, description = "`key_without_user` or `api_key_required`.", body = V0ErrorBody), (status = 404, description = "`not_found`.", body = V0ErrorBody)))]
pub(crate) async fn delete_agent(
    State(s): State<Shared>,
    key: KeyCaller,
    Path(id): Path<String>,
) -> V0Result<AgentId> {
    let agent = id.clone();
    blocking(s, move |s| s.delete_agent(&key.user, &agent)).await?;
    Ok(Json(AgentId { id }))
}
