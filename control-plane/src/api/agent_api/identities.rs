//! `/identities`: a team's agents as service identities — list (the
//! default among them, each with `available`), create, get, update
//! (omitted fields unchanged, `""`/`[]`/`{}` clear), delete (soft; its
//! keys revoked; the default cannot be). Human callers only: a request
//! made with an agent's key gets 403 on every one of these routes.

use super::{blocking, Caller, OzBody};
use crate::agent_configs::{IdentityPatch, IdentityView};
use crate::api::Shared;
use crate::error::OzError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The list's envelope.
#[derive(serde::Serialize)]
pub(crate) struct IdentityList {
    agents: Vec<IdentityView>,
}

/// `GET /identities`: every agent of the team, the default first.
pub(crate) async fn list(
    State(s): State<Shared>,
    Caller(m): Caller,
) -> Result<Json<IdentityList>, OzError> {
    m.person()?;
    let rows = blocking(s, move |st| st.list_identities(&m.team)).await?;
    Ok(Json(IdentityList {
        agents: rows.into_iter().map(IdentityView::from).collect(),
    }))
}

/// `POST /identities` (201).
pub(crate) async fn create(
    State(s): State<Shared>,
    Caller(m): Caller,
    OzBody(patch): OzBody<IdentityPatch>,
) -> Result<Response, OzError> {
    m.person()?;
    let r = blocking(s, move |st| st.create_identity(&m.team, &m.user, patch)).await?;
    Ok((StatusCode::CREATED, Json(IdentityView::from(r))).into_response())
}

/// `GET /identities/{uid}`.
pub(crate) async fn get(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(uid): Path<String>,
) -> Result<Json<IdentityView>, OzError> {
    m.person()?;
    let r = blocking(s, move |st| st.identity(&m.team, &uid)).await?;
    Ok(Json(r.into()))
}

/// `PUT /identities/{uid}`: the next version.
pub(crate) async fn update(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(uid): Path<String>,
    OzBody(patch): OzBody<IdentityPatch>,
) -> Result<Json<IdentityView>, OzError> {
    m.person()?;
    let r = blocking(s, move |st| {
        st.update_identity(&m.team, &uid, &m.user, patch)
    })
    .await?;
    Ok(Json(r.into()))
}

/// `DELETE /identities/{uid}` (204).
pub(crate) async fn delete(
    State(s): State<Shared>,
    Caller(m): Caller,
    Path(uid): Path<String>,
) -> Result<StatusCode, OzError> {
    m.person()?;
    blocking(s, move |st| st.delete_identity(&m.team, &uid)).await?;
    Ok(StatusCode::NO_CONTENT)
}
