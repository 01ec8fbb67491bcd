//! `/runs`: start a run of an agent (the caller's key's agent, the one
//! named, or the team's default), read one, list them with the vendor's
//! filters (`state` repeated, `source`, `schedule_id`, times, sort),
//! cancel one (a run that has ended is a 400), follow one up (one still
//! going is a 409).

use super::{blocking, invalid, one, query_pairs, Caller, OzBody};
use crate::api::Shared;
use crate::error::OzError;
use crate::runs::{run_item, RunItem, RunState};
use crate::store::{RunQuery, RunRequest, RunSort, Starter};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use protocol::session::Trigger;
use serde_json::{Map, Value};

/// Fields of a run's body this control plane does not implement: given,
/// they are refused rather than ignored (`team: true` is accepted: every
/// run here is its team's).
const UNSUPPORTED: [&str; 8] = [
    "mode",
    "skill",
    "conversation_id",
    "attachments",
    "interactive",
    "on_behalf_of",
    "parent_run_id",
    "team",
];

fn text(body: &Map<String, Value>, key: &str) -> Result<Option<String>, OzError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

/// The answer to a start: the vendor's `AgentRunResponse`.
#[derive(serde::Serialize)]
pub(crate) struct Started {
    run_id: String,
    task_id: String,
    state: RunState,
}

/// `POST /runs`.
pub(crate) async fn start(
    State(s): State<Shared>,
    Caller(m): Caller,
    OzBody(body): OzBody<Map<String, Value>>,
) -> Result<Json<Started>, OzError> {
    for k in UNSUPPORTED {
        match (k, body.get(k)) {
            (_, None | Some(Value::Null)) | ("team", Some(Value::Bool(true))) => {}
            _ => {
                return Err(invalid(format!(
                    "{k} is not supported by this control plane; leave it out"
                )))
            }
        }
    }
    let config = match body.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => return Err(invalid("config must be an object")),
    };
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(o))
            if o.len() <= 16
                && o.iter().all(|(k, v)| {
                    (1..=64).contains(&k.chars().count())
                        && v.as_str().is_some_and(|s| s.chars().count() <= 512)
                }) =>
        {
            Some(v.clone())
        }
        Some(_) => {
            return Err(invalid(
                "metadata must be an object of at most 16 keys of 1–64 characters, each a string of at most 512",
            ))
        }
    };
    let req = RunRequest {
        prompt: text(&body, "prompt")?.unwrap_or_default(),
        agent: text(&body, "agent_identity_uid")?,
        model: text(&config, "model_id")?,
        title: text(&body, "title")?,
        metadata,
    };
    let r = blocking(s, move |st| {
        st.start_run(
            &Starter {
                team: &m.team,
                user: &m.user,
                key_agent: m.agent.as_deref(),
            },
            req,
        )
    })
    .await?;
    let id = r.session.id.to_string();
    Ok(Json(Started {
        run_id: id.clone(),
        task_id: id,
        state: r.state(),
    }))
}

/// `GET /runs/{id}`.
pub(crate) async fn get(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<RunItem>, OzError> {
    let url = s.public_url().to_string();
    let r = blocking(s, move |st| st.run(&m.team, &id)).await?;
    Ok(Json(run_item(r, &url, crate::agent_configs::rfc3339)))
}

/// A page of runs: `{runs, page_info: {has_next_page, next_cursor}}`.
#[derive(serde::Serialize)]
pub(crate) struct RunPage {
    runs: Vec<RunItem>,
    page_info: Value,
}

fn time(pairs: &[(String, String)], key: &str) -> Result<Option<i64>, OzError> {
    one(pairs, key)?
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| invalid(format!("{key} must be an RFC 3339 time, not {v:?}")))
        })
        .transpose()
}

/// `GET /runs`.
pub(crate) async fn list(
    State(s): State<Shared>,
    Caller(m): Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<RunPage>, OzError> {
    let pairs = query_pairs(
        q,
        &[
            "limit",
            "cursor",
            "state",
            "source",
            "schedule_id",
            "created_after",
            "created_before",
            "updated_after",
            "sort_by",
            "sort_order",
        ],
    )?;
    let limit = match one(&pairs, "limit")? {
        None => 20,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "limit must be an integer from 1 to 100, not {v:?}"
                )))
            }
        },
    };
    let states = pairs
        .iter()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| {
            RunState::parse(v).ok_or_else(|| {
                invalid(format!(
                    "state {v:?} is not a run state; give QUEUED, PENDING, CLAIMED, INPROGRESS, SUCCEEDED, FAILED, BLOCKED, ERROR or CANCELLED"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let source = one(&pairs, "source")?
        .map(|v| {
            Trigger::parse(v).ok_or_else(|| {
                invalid(format!(
                    "source {v:?} is not one of API, SCHEDULED_AGENT, CLI, WEB_APP"
                ))
            })
        })
        .transpose()?;
    let sort = match one(&pairs, "sort_by")? {
        None | Some("updated_at") => RunSort::Updated,
        Some("created_at") => RunSort::Created,
        Some(v) => {
            return Err(invalid(format!(
                "sort_by must be created_at or updated_at, not {v:?}"
            )))
        }
    };
    let ascending = match one(&pairs, "sort_order")? {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(v) => {
            return Err(invalid(format!(
                "sort_order must be asc or desc, not {v:?}"
            )))
        }
    };
    let query = RunQuery {
        limit,
        cursor: one(&pairs, "cursor")?
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        states,
        source,
        schedule_id: one(&pairs, "schedule_id")?.map(str::to_string),
        created_after: time(&pairs, "created_after")?,
        created_before: time(&pairs, "created_before")?,
        updated_after: time(&pairs, "updated_after")?,
        sort,
        ascending,
    };
    let url = s.public_url().to_string();
    let (runs, next) = blocking(s, move |st| st.list_runs(&m.team, &query)).await?;
    Ok(Json(RunPage {
        runs: runs
            .into_iter()
            .map(|r| run_item(r, &url, crate::agent_configs::rfc3339))
            .collect(),
        page_info: serde_json::json!({"has_next_page": next.is_some(), "next_cursor": next}),
    }))
}

/// `POST /runs/{id}/cancel`: the run's id, as a JSON string (the vendor's
/// client returns the body's text). No body is read.
pub(crate) async fn cancel(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<String>, OzError> {
    let r = blocking(s, move |st| {
        st.cancel_run(
            &Starter {
                team: &m.team,
                user: &m.user,
                key_agent: m.agent.as_deref(),
            },
            &id,
        )
    })
    .await?;
    Ok(Json(r.session.id.to_string()))
}

/// `POST /runs/{id}/followups {message}`: the run goes again.
pub(crate) async fn followup(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    OzBody(body): OzBody<Map<String, Value>>,
) -> Result<Json<RunItem>, OzError> {
    if let Some(mode) = body.get("mode").filter(|v| !v.is_null()) {
        return Err(invalid(format!(
            "mode {mode} is not supported by this control plane; leave it out"
        )));
    }
    let message = text(&body, "message")?.unwrap_or_default();
    let url = s.public_url().to_string();
    let by = m.actor().replace(':', "-");
    let r = blocking(s, move |st| {
        st.follow_up_run(
            &Starter {
                team: &m.team,
                user: &m.user,
                key_agent: m.agent.as_deref(),
            },
            &id,
            &by,
            message,
        )
    })
    .await?;
    Ok(Json(run_item(r, &url, crate::agent_configs::rfc3339)))
}
