//! API keys: created for a user (by an admin, or by the user through
//! `POST /v1/api-keys`), shown once, stored only as a SHA-256 hash, listed
//! without secrets, revoked by id. A key keeps its owner, its creation time
//! (what `/v0/me` answers as `createdAt`) and when it was revoked.

use super::{random_secret, secret_hash, API_KEY_PREFIX};
use crate::store::auth::{self as db, ApiKeyRow};
use crate::store::{now_ms, rfc3339, Missing, Store, StoreError};

/// A key just created: the only answer that ever holds the key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedApiKey {
    /// `key_…`: names the key to revoke it (not a secret).
    pub id: String,
    /// The name it was given.
    pub name: String,
    /// The key (`cpk_…`). Shown in this answer only: the control plane
    /// keeps its hash, and cannot show it again.
    pub key: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The agent it is bound to; absent for a person's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl std::fmt::Debug for IssuedApiKey {
    /// Without the key: a `Debug` print must not leak it into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A key as its owner sees it in a list: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    /// `key_…`.
    pub id: String,
    /// The name it was given.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339); absent while it works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The agent it is bound to: what it starts runs as that agent (it
    /// can never manage agents, users or keys). Absent: your own key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyInfo {
    fn from(r: ApiKeyRow) -> Self {
        ApiKeyInfo {
            id: r.id,
            name: r.name,
            created_at: rfc3339(r.created_at),
            revoked_at: r.revoked_at.map(rfc3339),
            agent_id: r.agent,
        }
    }
}

/// What `/v0/me` tells about the key it was called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyOwner {
    /// The key's name.
    pub(crate) name: String,
    /// When the key was created (RFC 3339).
    pub(crate) created_at: String,
    /// Its owner's email; `None` when the owner has none set.
    pub(crate) email: Option<String>,
}

/// A key name: 1–100 characters, no control characters (it is shown in
/// lists and answers, and may be typed by anyone holding a user token).
fn check_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "an API key's name is 1–100 characters, not only spaces, without control characters",
        ));
    }
    Ok(())
}

impl Store {
    /// Creates an API key named `name` for `user` (`None`: a key that
    /// belongs to nobody, which works on `/v1` only); returns it — the
    /// only time the key is available.
    pub fn add_api_key(&self, name: &str, user: Option<&str>) -> Result<IssuedApiKey, StoreError> {
        self.add_key(name, user, None)
    }

    /// Creates an API key named `name`, made by `user`, bound to `user`'s
    /// team's agent `agent` (which must be live and available): a run
    /// started with it runs as that agent.
    pub fn add_agent_api_key(
        &self,
        name: &str,
        user: &str,
        agent: &str,
    ) -> Result<IssuedApiKey, StoreError> {
        self.add_key(name, Some(user), Some(agent))
    }

    fn add_key(
        &self,
        name: &str,
        user: Option<&str>,
        agent: Option<&str>,
    ) -> Result<IssuedApiKey, StoreError> {
        check_name(name)?;
        let key = random_secret(API_KEY_PREFIX);
        let row = ApiKeyRow {
            id: format!("key_{}", uuid::Uuid::new_v4().simple()),
            name: name.to_string(),
            user: user.map(str::to_string),
            created_at: now_ms(),
            revoked_at: None,
            agent: agent.map(str::to_string),
        };
        self.tx(|tx| {
            if let Some(u) = user {
                if db::user_email(tx, u)?.is_none() {
                    return Err(StoreError::not_found(
                        Missing::User,
                        format!("no user {u:?}: an API key belongs to an existing user; add one with `control-plane admin user-add {u} --email …`"),
                    ));
                }
            }
            if let (Some(u), Some(a)) = (user, agent) {
                crate::store::check_agent_for_key(tx, u, a)?;
            }
            db::insert_api_key(tx, &secret_hash(&key), &row)
        })?;
        Ok(IssuedApiKey {
            id: row.id,
            name: row.name,
            key,
            created_at: rfc3339(row.created_at),
            agent_id: row.agent,
        })
    }

    /// A user's keys, newest first, revoked ones included (with when).
    pub fn api_keys(&self, user: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows = self.tx(|tx| db::api_keys_of(tx, user))?;
        Ok(rows.into_iter().map(ApiKeyInfo::from).collect())
    }

    /// Revokes `user`'s key `id` (again: no change). Another user's key,
    /// an ownerless key and an unknown id are the same not-found, so ids
    /// cannot be probed.
    pub fn revoke_api_key(&self, user: &str, id: &str) -> Result<ApiKeyInfo, StoreError> {
        self.tx(|tx| {
            match db::api_key(tx, id)? {
                Some(k) if k.user.as_deref() == Some(user) => {}
                _ => {
                    return Err(StoreError::not_found(
                        Missing::ApiKey,
                        format!("you have no API key {id:?}; GET /v1/api-keys lists yours"),
                    ))
                }
            }
            db::revoke_api_key(tx, id, now_ms())?;
            let k = db::api_key(tx, id)?
                .ok_or_else(|| StoreError::corrupt(format!("API key {id} vanished")))?;
            Ok(ApiKeyInfo::from(k))
        })
    }

    /// The key `id` with its owner's email, while it is unrevoked.
    pub(crate) fn key_owner(&self, id: &str) -> Result<Option<KeyOwner>, StoreError> {
        self.tx(|tx| {
            let Some(k) = db::api_key(tx, id)?.filter(|k| k.revoked_at.is_none()) else {
                return Ok(None);
            };
            let email = match &k.user {
                Some(u) => db::user_email(tx, u)?.flatten(),
                None => None,
            };
            Ok(Some(KeyOwner {
                name: k.name,
                created_at: rfc3339(k.created_at),
                email,
            }))
        })
    }
}
