//! `/schedules`: a team's cron triggers, each starting runs of an agent
//! (the team's default when none is named) — create (201), list (by
//! name), get (with its latest ticks), replace (`PUT`: the whole
//! schedule; a `timezone` left out stays), pause, resume (its next run
//! from now, the paused time not caught up) and delete. The vendor's
//! `ScheduledAgentItem`, plus `timezone` and `next_run_at`. Only a person
//! manages them: an agent's key gets 403; another team's schedule is 404.

use super::{blocking, invalid, Caller, OzBody};
use crate::agent_configs::rfc3339;
use crate::api::Shared;
use crate::error::OzError;
use crate::store::{ScheduleRecord, ScheduleSpec};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// The keys of `agent_config` this control plane acts on.
const AGENT_CONFIG_KEYS: [&str; 1] = ["model_id"];

/// At most this many metadata keys (the vendor's limit).
const METADATA_KEYS: usize = 20;

/// A schedule as the vendor's client reads it (`ScheduledAgentItem`),
/// with our `timezone`, `next_run_at` and (on `GET …/{id}`) `ticks`.
#[derive(serde::Serialize)]
pub(crate) struct ScheduleView {
    id: String,
    name: String,
    cron_schedule: String,
    timezone: String,
    prompt: String,
    enabled: bool,
    agent_uid: Option<String>,
    agent_config: Option<Value>,
    metadata: Option<Value>,
    created_at: String,
    updated_at: String,
    created_by: Value,
    updated_by: Value,
    scope: Value,
    next_run_at: Option<String>,
    history: Value,
    last_spawn_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticks: Option<Vec<Value>>,
}

fn person(name: &str) -> Value {
    json!({"uid": name, "type": "user", "display_name": name})
}

impl ScheduleView {
    fn of(s: ScheduleRecord, with_ticks: bool) -> ScheduleView {
        let next = s.next_run_at.map(rfc3339);
        let ticks = with_ticks.then(|| {
            s.ticks
                .iter()
                .map(|t| {
                    json!({
                        "tick_at": rfc3339(t.tick_at),
                        "run_id": t.session_id,
                        "error": t.error,
                        "missed": t.missed,
                    })
                })
                .collect()
        });
        ScheduleView {
            history: json!({"last_ran": s.last_ran_at.map(rfc3339), "next_run": next}),
            next_run_at: next,
            id: s.id,
            name: s.name,
            cron_schedule: s.cron,
            timezone: s.timezone,
            prompt: s.prompt,
            enabled: s.enabled,
            agent_uid: s.agent_id,
            agent_config: s.model.map(|m| json!({ "model_id": m })),
            metadata: s.metadata,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            created_by: person(&s.created_by),
            updated_by: person(&s.updated_by),
            scope: json!({"type": "Team", "uid": s.team}),
            last_spawn_error: s.last_spawn_error,
            ticks,
        }
    }
}

/// The list's envelope.
#[derive(serde::Serialize)]
pub(crate) struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

fn string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, OzError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

fn required(body: &Map<String, Value>, key: &str, what: &str) -> Result<String, OzError> {
    string(body, key)?.ok_or_else(|| invalid(format!("{key} is required: {what}")))
}

fn metadata(v: Option<&Value>) -> Result<Option<Value>, OzError> {
    let o = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(invalid("metadata must be an object of string values")),
    };
    if o.len() > METADATA_KEYS {
        return Err(invalid(format!(
            "metadata has {} keys; at most {METADATA_KEYS}",
            o.len()
        )));
    }
    for (k, v) in o {
        let key_ok = (1..=64).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !key_ok {
            return Err(invalid(format!(
                "metadata key {k:?} must be 1-64 characters of a-z, A-Z, 0-9, '.', '_' and '-'"
            )));
        }
        match v {
            Value::String(s) if s.len() <= 256 && !s.contains('\0') => {}
            _ => {
                return Err(invalid(format!(
                    "metadata.{k} must be a string of at most 256 bytes without NUL"
                )))
            }
        }
    }
    Ok(Some(Value::Object(o.clone())))
}

fn model(v: Option<&Value>) -> Result<Option<String>, OzError> {
    let o = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(invalid("agent_config must be an object")),
    };
    if let Some(k) = o
        .iter()
        .find(|(k, v)| !v.is_null() && !AGENT_CONFIG_KEYS.contains(&k.as_str()))
        .map(|(k, _)| k)
    {
        return Err(invalid(format!(
            "agent_config.{k} is not supported by this control plane; give only model_id, or leave agent_config out"
        )));
    }
    string(o, "model_id").map(|m| m.filter(|m| !m.is_empty()))
}

/// The schedule a create (`replace`: false) or a `PUT` (`replace`: true,
/// where `enabled` is required) body describes.
fn spec(body: &Map<String, Value>, replace: bool) -> Result<ScheduleSpec, OzError> {
    match body.get("mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "normal" => {}
        Some(m) => {
            return Err(invalid(format!(
                "mode {m} is not supported by this control plane; leave it out (runs are normal)"
            )))
        }
    }
    match body.get("team") {
        None | Some(Value::Null | Value::Bool(true)) => {}
        Some(_) => {
            return Err(invalid(
                "team must be true or left out: every schedule here is its team's",
            ))
        }
    }
    let enabled = match body.get("enabled") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) if !replace => true,
        None | Some(Value::Null) => {
            return Err(invalid(
                "enabled is required: PUT replaces the whole schedule (give name, cron_schedule and enabled)",
            ))
        }
        Some(_) => return Err(invalid("enabled must be true or false")),
    };
    let what = if replace {
        "PUT replaces the whole schedule (give name, cron_schedule and enabled)"
    } else {
        "name the schedule"
    };
    Ok(ScheduleSpec {
        name: required(body, "name", what)?,
        cron: required(
            body,
            "cron_schedule",
            "give 5 fields: minute hour day-of-month month day-of-week",
        )?,
        timezone: string(body, "timezone")?,
        prompt: string(body, "prompt")?.unwrap_or_default(),
        agent_id: string(body, "agent_uid")?.filter(|a| !a.is_empty()),
        model: model(body.get("agent_config"))?,
        metadata: metadata(body.get("metadata"))?,
        enabled,
    })
}

/// `POST /schedules` (201).
pub(crate) async fn create(
    State(s): State<Shared>,
    Caller(m): Caller,
    OzBody(body): OzBody<Map<String, Value>>,
) -> Result<Response, OzError> {
    m.person()?;
    let spec = spec(&body, false)?;
    let r = blocking(s, move |st| st.create_schedule(&m.team, &m.user, spec)).await?;
    Ok((StatusCode::CREATED, Json(ScheduleView::of(r, false))).into_response())
}

/// `GET /schedules`: the team's, by name.
pub(crate) async fn list(
    State(s): State<Shared>,
    Caller(m): Caller,
) -> Result<Json<ScheduleList>, OzError> {
    m.person()?;
    let rows = blocking(s, move |st| st.schedules(&m.team)).await?;
    Ok(Json(ScheduleList {
        schedules: rows
            .into_iter()
            .map(|r| ScheduleView::of(r, false))
            .collect(),
    }))
}

/// `GET /schedules/{id}`, with its latest ticks.
pub(crate) async fn get(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, OzError> {
    m.person()?;
    let r = blocking(s, move |st| st.schedule(&m.team, &id)).await?;
    Ok(Json(ScheduleView::of(r, true)))
}

/// `PUT /schedules/{id}`: a full replacement.
pub(crate) async fn replace(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
    OzBody(body): OzBody<Map<String, Value>>,
) -> Result<Json<ScheduleView>, OzError> {
    m.person()?;
    let spec = spec(&body, true)?;
    let r = blocking(s, move |st| {
        st.replace_schedule(&m.team, &id, &m.user, spec)
    })
    .await?;
    Ok(Json(ScheduleView::of(r, false)))
}

async fn set_enabled(
    s: Shared,
    m: crate::auth::Member,
    id: String,
    enabled: bool,
) -> Result<Json<ScheduleView>, OzError> {
    m.person()?;
    let r = blocking(s, move |st| st.set_schedule_enabled(&m.team, &id, enabled)).await?;
    Ok(Json(ScheduleView::of(r, false)))
}

/// `POST /schedules/{id}/pause` (no body is read).
pub(crate) async fn pause(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, OzError> {
    set_enabled(s, m, id, false).await
}

/// `POST /schedules/{id}/resume` (no body is read).
pub(crate) async fn resume(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, OzError> {
    set_enabled(s, m, id, true).await
}

/// `DELETE /schedules/{id}`: `{"success": true}`.
pub(crate) async fn delete(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OzError> {
    m.person()?;
    blocking(s, move |st| st.delete_schedule(&m.team, &id)).await?;
    Ok(Json(json!({"success": true})))
}

#[cfg(test)]
mod tests;
