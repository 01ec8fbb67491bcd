//! The skills registry under the agent-configuration mount
//! (`/api/v1/cloud/skills…`), as Qoder's client (`qca-sdk`) calls it:
//! multipart uploads (one `files` part per file, its filename the path in
//! the skill; `display_title` and `metadata` as text parts, `"null"` for
//! absent), pages like the agents', and soft deletes. Only people upload
//! or delete (an agent's key: 403); another team's skill is a 404 like a
//! missing one. Every error is in this API's envelope.

use super::{blocking, get_param, invalid, limit, query_pairs, Caller, QResult};
use crate::agent_configs::Page;
use crate::error::{ApiError, QoderError};
use crate::store::skills::{
    check_metadata, Cursor, SkillQuery, SkillVersionView, SkillView, UploadFile,
};
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use protocol::toolset::SKILL_MAX_BYTES;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest upload: the files' limit and room for the parts' headers and
/// the text parts.
const MAX_UPLOAD_BYTES: usize = SKILL_MAX_BYTES as usize + (1 << 20);

/// The registry's routes, to merge into the mount's router.
pub(super) fn routes() -> Router<Arc<Store>> {
    Router::new()
        .route("/skills", get(list_skills).post(create_skill))
        .route("/skills/{id}", get(get_skill).delete(delete_skill))
        .route(
            "/skills/{id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/skills/{id}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/skills/{id}/versions/{version}/content",
            get(version_content),
        )
        .route_layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}

/// What a multipart upload carried.
struct Upload {
    files: Vec<UploadFile>,
    display_title: Option<String>,
    metadata: Value,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> QoderError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return QoderError(ApiError::new(
            status,
            "payload_too_large",
            format!("the upload is larger than {MAX_UPLOAD_BYTES} bytes; a skill's files take at most {SKILL_MAX_BYTES}"),
        ));
    }
    invalid(format!(
        "the multipart body is unreadable: {}",
        e.body_text()
    ))
}

/// Reads the parts: `files` (repeated), `display_title`, `metadata`;
/// any other part is refused, naming it.
async fn read_upload(mut m: Multipart) -> Result<Upload, QoderError> {
    let mut up = Upload {
        files: Vec::new(),
        display_title: None,
        metadata: Value::Null,
    };
    while let Some(field) = m.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "files" => {
                let path = field
                    .file_name()
                    .ok_or_else(|| invalid("files: each part needs a filename, the path in the skill (pdf/SKILL.md)"))?
                    .to_string();
                let data = field.bytes().await.map_err(multipart_error)?;
                up.files.push(UploadFile {
                    path,
                    data: data.to_vec(),
                });
            }
            "display_title" => {
                let t = field.text().await.map_err(multipart_error)?;
                up.display_title = (t != "null").then_some(t);
            }
            "metadata" => {
                let t = field.text().await.map_err(multipart_error)?;
                up.metadata = serde_json::from_str(&t)
                    .map_err(|e| invalid(format!("metadata is not JSON: {e}")))?;
            }
            other => {
                return Err(invalid(format!(
                    "unknown part {other:?}; an upload has files, display_title and metadata"
                )))
            }
        }
    }
    Ok(up)
}

/// A skills or versions page in the mount's shape.
fn page<T>(items: Vec<T>, more: bool, id: impl Fn(&T) -> String) -> Page<T> {
    let first = items.first().map(&id);
    let last = items.last().map(&id);
    Page {
        next_page: if more { last.clone() } else { None },
        first_id: first,
        last_id: last,
        data: items,
        has_more: more,
    }
}

/// `page`, `after_id` or `before_id` (at most one).
fn cursor(pairs: &[(String, String)]) -> Result<Cursor, QoderError> {
    let given: Vec<&str> = ["page", "after_id", "before_id"]
        .into_iter()
        .filter(|k| get_param(pairs, k).is_some())
        .collect();
    if given.len() > 1 {
        return Err(invalid(format!(
            "give at most one of page, after_id and before_id (got {})",
            given.join(", ")
        )));
    }
    Ok(
        match (
            get_param(pairs, "page").or_else(|| get_param(pairs, "after_id")),
            get_param(pairs, "before_id"),
        ) {
            (Some(a), _) => Cursor::After(a.to_string()),
            (_, Some(b)) => Cursor::Before(b.to_string()),
            _ => Cursor::Start,
        },
    )
}

/// `POST skills`: a new skill with its first version (201).
async fn create_skill(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, QoderError> {
    m.person()?;
    let mp = mp.map_err(|e| {
        invalid(format!(
            "send the skill as multipart/form-data: {}",
            e.body_text()
        ))
    })?;
    let up = read_upload(mp).await?;
    let metadata = check_metadata(up.metadata)?;
    let v = blocking(s, move |st| {
        st.create_skill(&m.team, &m.user, up.display_title, metadata, up.files)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET skills`: the team's skills, oldest first.
async fn list_skills(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    RawQuery(q): RawQuery,
) -> QResult<Page<SkillView>> {
    let pairs = query_pairs(
        q,
        &[
            "limit",
            "page",
            "after_id",
            "before_id",
            "source",
            "name",
            "display_title",
        ],
    )?;
    let query = SkillQuery {
        limit: limit(&pairs)? as usize,
        cursor: cursor(&pairs)?,
        name: get_param(&pairs, "name").map(str::to_string),
        display_title: get_param(&pairs, "display_title").map(str::to_string),
        source: get_param(&pairs, "source").map(str::to_string),
    };
    let (items, more) = blocking(s, move |st| st.list_skills(&m.team, &query)).await?;
    Ok(Json(page(items, more, |v| v.id.clone())))
}

/// `GET skills/{id}`.
async fn get_skill(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> QResult<SkillView> {
    Ok(Json(blocking(s, move |st| st.skill(&m.team, &id)).await?))
}

/// `DELETE skills/{id}`: hidden from lists and new pins.
async fn delete_skill(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path(id): Path<String>,
) -> QResult<Value> {
    m.person()?;
    let i = id.clone();
    blocking(s, move |st| st.delete_skill(&m.team, &i)).await?;
    Ok(Json(json!({"id": id, "type": "skill_deleted"})))
}

/// `POST skills/{id}/versions`: a new version (201).
async fn create_version(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path(id): Path<String>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, QoderError> {
    m.person()?;
    let mp = mp.map_err(|e| {
        invalid(format!(
            "send the version as multipart/form-data: {}",
            e.body_text()
        ))
    })?;
    let up = read_upload(mp).await?;
    let v = blocking(s, move |st| st.create_skill_version(&m.team, &id, up.files)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET skills/{id}/versions`: newest first.
async fn list_versions(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> QResult<Page<SkillVersionView>> {
    let pairs = query_pairs(q, &["limit", "page"])?;
    let n = limit(&pairs)? as usize;
    let c = cursor(&pairs)?;
    let (items, more) = blocking(s, move |st| st.list_skill_versions(&m.team, &id, n, &c)).await?;
    Ok(Json(page(items, more, |v| v.version.clone())))
}

/// `GET skills/{id}/versions/{version}` (`latest` allowed).
async fn get_version(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path((id, version)): Path<(String, String)>,
) -> QResult<SkillVersionView> {
    Ok(Json(
        blocking(s, move |st| st.skill_version(&m.team, &id, &version)).await?,
    ))
}

/// `DELETE skills/{id}/versions/{version}`: hidden from lists and new
/// pins; sessions that pinned it still run it.
async fn delete_version(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path((id, version)): Path<(String, String)>,
) -> QResult<Value> {
    m.person()?;
    let vid = blocking(s, move |st| st.delete_skill_version(&m.team, &id, &version)).await?;
    Ok(Json(json!({"id": vid, "type": "skill_version_deleted"})))
}

/// `GET skills/{id}/versions/{version}/content`: the version's files as
/// one zip, under the skill's directory (`pdf/SKILL.md`, …).
async fn version_content(
    State(s): State<Arc<Store>>,
    Caller(m): Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, QoderError> {
    use axum::http::header;
    let (v, files) = blocking(s, move |st| st.skill_files(&m.team, &id, &version)).await?;
    let mut entries = Vec::with_capacity(files.len());
    for f in files {
        let data = f.bytes().map_err(ApiError::internal)?;
        entries.push((format!("{}/{}", v.directory, f.path), f.executable, data));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-{}.zip\"", v.directory, v.version),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        zip_stored(&entries),
    )
        .into_response())
}

/// A zip archive of `entries` (path, executable, bytes), each stored
/// (not compressed): what a skill's files need, and nothing to inflate on
/// the way out. UTF-8 names; Unix modes 0644/0755.
fn zip_stored(entries: &[(String, bool, Vec<u8>)]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    let u16le = |v: &mut Vec<u8>, n: u16| v.extend_from_slice(&n.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, n: u32| v.extend_from_slice(&n.to_le_bytes());
    for (name, exec, data) in entries {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let (size, name_len) = (data.len() as u32, name.len() as u16);
        // Local file header.
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, 0x0800);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, crc);
        u32le(&mut out, size);
        u32le(&mut out, size);
        u16le(&mut out, name_len);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        let mode: u32 = if *exec { 0o100755 } else { 0o100644 };
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, (3 << 8) | 20);
        u16le(&mut central, 20);
        u16le(&mut central, 0x0800);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0x21);
        u32le(&mut central, crc);
        u32le(&mut central, size);
        u32le(&mut central, size);
        u16le(&mut central, name_len);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, mode << 16);
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}
