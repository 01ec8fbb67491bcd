//! The authorization server's tables: users, OAuth clients, authorization
//! codes, tokens and API keys. Plain reads and writes over a [`Tx`]; the
//! rules (PKCE, rotation, reuse detection, password hashing) are
//! `crate::auth`'s, which runs them inside one transaction. Secrets arrive
//! here already hashed.

use super::{now_ms, ConflictKind, StoreError, Tx};
use rusqlite::{params, OptionalExtension};

/// The public client `runner login` uses, created with the database.
pub const RUNNER_CLIENT: &str = "runner";

/// Lifetimes of what the authorization server issues.
#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    /// Access tokens, in seconds.
    pub access_seconds: u64,
    /// Refresh tokens, in seconds.
    pub refresh_seconds: u64,
    /// Authorization codes, in seconds.
    pub code_seconds: u64,
    /// Device codes (RFC 8628): how long a person has to approve one.
    pub device_seconds: u64,
    /// The least seconds between two polls of one device code; a faster
    /// poll is answered `slow_down` and the interval grows by 5 s.
    pub device_interval_seconds: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            access_seconds: 900,
            refresh_seconds: 30 * 24 * 3600,
            code_seconds: 60,
            device_seconds: 600,
            device_interval_seconds: 5,
        }
    }
}

/// Creates the [`RUNNER_CLIENT`] (public; the loopback redirect, and the
/// device grant, which needs none) when it does not exist, so `runner
/// login` works against any fresh database.
pub(super) fn seed_runner_client(tx: &Tx<'_>) -> Result<(), StoreError> {
    let uris =
        serde_json::to_string(&["http://127.0.0.1/callback"]).map_err(StoreError::corrupt)?;
    tx.sql.execute(
        "INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, created_at) VALUES (?1, ?2, NULL, ?3, ?4) ON CONFLICT (client_id) DO NOTHING",
        params![RUNNER_CLIENT, "runner (worker sign-in)", uris, now_ms()],
    )?;
    Ok(())
}

/// Adds a user; a user of that name is a [`ConflictKind::Exists`].
pub(crate) fn insert_user(
    tx: &Tx<'_>,
    name: &str,
    password_hash: &str,
    email: Option<&str>,
) -> Result<(), StoreError> {
    let n = tx.sql.execute(
        "INSERT INTO users (name, password_hash, created_at, email, team) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
        params![name, password_hash, now_ms(), email, super::teams::DEFAULT_TEAM],
    )?;
    if n == 0 {
        return Err(StoreError::conflict(
            ConflictKind::Exists,
            format!("user {name} exists"),
        ));
    }
    Ok(())
}

/// Sets a user's email; whether the user exists.
pub(crate) fn set_user_email(tx: &Tx<'_>, name: &str, email: &str) -> Result<bool, StoreError> {
    Ok(tx.sql.execute(
        "UPDATE users SET email = ?2 WHERE name = ?1",
        params![name, email],
    )? == 1)
}

/// A user's email: `None` for no such user, `Some(None)` for a user
/// without one.
pub(crate) fn user_email(tx: &Tx<'_>, name: &str) -> Result<Option<Option<String>>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT email FROM users WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?)
}

/// The stored password hash of a user.
pub(crate) fn password_hash(tx: &Tx<'_>, name: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT password_hash FROM users WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?)
}

/// A stored OAuth client.
pub(crate) struct ClientRow {
    pub(crate) name: String,
    /// None for a public client.
    pub(crate) secret_hash: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
}

/// Adds a client; one with that id is a [`ConflictKind::Exists`].
pub(crate) fn insert_client(
    tx: &Tx<'_>,
    client_id: &str,
    client: &ClientRow,
) -> Result<(), StoreError> {
    let uris = serde_json::to_string(&client.redirect_uris).map_err(StoreError::corrupt)?;
    let n = tx.sql.execute(
        "INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (client_id) DO NOTHING",
        params![client_id, client.name, client.secret_hash, uris, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::conflict(
            ConflictKind::Exists,
            format!("client {client_id} exists"),
        ));
    }
    Ok(())
}

/// A client by id.
pub(crate) fn client(tx: &Tx<'_>, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    let row: Option<(String, Option<String>, String)> = tx
        .sql
        .query_row(
            "SELECT name, secret_hash, redirect_uris FROM oauth_clients WHERE client_id = ?1",
            params![client_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.map(|(name, secret_hash, uris)| ClientRow {
        name,
        secret_hash,
        redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
    }))
}

/// A stored API key (never the key itself: only its hash is kept, and
/// not even that is read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiKeyRow {
    /// `key_…`: how its owner names it to revoke it.
    pub(crate) id: String,
    pub(crate) name: String,
    /// The owner; `None` for a key that belongs to nobody.
    pub(crate) user: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) revoked_at: Option<i64>,
    /// The agent it is bound to (`agent_…`): a run started with it runs as
    /// that agent; `None` for a person's key.
    pub(crate) agent: Option<String>,
}

const KEY_COLUMNS: &str = "id, name, user_name, created_at, revoked_at, agent_id";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        user: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
        agent: r.get(5)?,
    })
}

/// Adds an API key by its hash.
pub(crate) fn insert_api_key(tx: &Tx<'_>, hash: &str, key: &ApiKeyRow) -> Result<(), StoreError> {
    tx.sql.execute(
        "INSERT INTO api_keys (hash, id, name, user_name, created_at, agent_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![hash, key.id, key.name, key.user, key.created_at, key.agent],
    )?;
    Ok(())
}

/// The unrevoked API key with this hash.
pub(crate) fn api_key_by_hash(tx: &Tx<'_>, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked = 0"),
            params![hash],
            key_row,
        )
        .optional()?)
}

/// An API key by id, revoked or not.
pub(crate) fn api_key(tx: &Tx<'_>, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
            params![id],
            key_row,
        )
        .optional()?)
}

/// Every API key of a user, revoked ones included, newest first.
pub(crate) fn api_keys_of(tx: &Tx<'_>, user: &str) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut st = tx.sql.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_name = ?1 ORDER BY created_at DESC, rowid DESC"
    ))?;
    let rows = st
        .query_map(params![user], key_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Revokes an API key at `now` (a revoked one keeps its first time).
pub(crate) fn revoke_api_key(tx: &Tx<'_>, id: &str, now: i64) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE api_keys SET revoked = 1, revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// A new authorization code.
pub(crate) struct NewCode<'a> {
    pub(crate) hash: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) user: &'a str,
    pub(crate) redirect_uri: &'a str,
    /// PKCE challenge and its method.
    pub(crate) challenge: Option<(&'a str, &'a str)>,
    pub(crate) scope: &'a str,
    pub(crate) expires_at: i64,
}

/// Stores a code, forgetting codes that expired over an hour ago (they are
/// worth nothing, and a reused one is caught within its life).
pub(crate) fn insert_code(tx: &Tx<'_>, c: &NewCode<'_>) -> Result<(), StoreError> {
    tx.sql.execute(
        "DELETE FROM auth_codes WHERE expires_at < ?1",
        params![now_ms() - 3_600_000],
    )?;
    tx.sql.execute(
        "INSERT INTO auth_codes (code_hash, client_id, user_name, redirect_uri, challenge, challenge_method, scope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![c.hash, c.client_id, c.user, c.redirect_uri, c.challenge.map(|c| c.0), c.challenge.map(|c| c.1), c.scope, c.expires_at],
    )?;
    Ok(())
}

/// A stored authorization code.
pub(crate) struct CodeRow {
    pub(crate) client_id: String,
    pub(crate) user: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<String>,
    pub(crate) challenge_method: Option<String>,
    pub(crate) scope: String,
    pub(crate) expires_at: i64,
    /// The token family its use issued; `Some` once used.
    pub(crate) family: Option<String>,
}

/// A code by its hash.
pub(crate) fn code(tx: &Tx<'_>, hash: &str) -> Result<Option<CodeRow>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT client_id, user_name, redirect_uri, challenge, challenge_method, scope, expires_at, family FROM auth_codes WHERE code_hash = ?1",
            params![hash],
            |r| {
                Ok(CodeRow {
                    client_id: r.get(0)?,
                    user: r.get(1)?,
                    redirect_uri: r.get(2)?,
                    challenge: r.get(3)?,
                    challenge_method: r.get(4)?,
                    scope: r.get(5)?,
                    expires_at: r.get(6)?,
                    family: r.get(7)?,
                })
            },
        )
        .optional()?)
}

/// Marks a code used: it issued `family`.
pub(crate) fn mark_code_used(tx: &Tx<'_>, hash: &str, family: &str) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE auth_codes SET family = ?2 WHERE code_hash = ?1",
        params![hash, family],
    )?;
    Ok(())
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Where a token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenState {
    Active,
    /// A refresh token that was spent on a new pair.
    Rotated,
    Revoked,
}

impl TokenState {
    fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Rotated => "rotated",
            TokenState::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "active" => TokenState::Active,
            "rotated" => TokenState::Rotated,
            "revoked" => TokenState::Revoked,
            other => return Err(StoreError::corrupt(format!("token state {other:?}"))),
        })
    }
}

/// A token to store (by hash), active from `now`.
pub(crate) struct NewToken<'a> {
    pub(crate) hash: &'a str,
    pub(crate) kind: TokenKind,
    pub(crate) family: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) user: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) expires_at: i64,
    pub(crate) now: i64,
}

/// Stores a token.
pub(crate) fn insert_token(tx: &Tx<'_>, t: &NewToken<'_>) -> Result<(), StoreError> {
    tx.sql.execute(
        "INSERT INTO tokens (hash, kind, family, client_id, user_name, scope, expires_at, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![t.hash, t.kind.as_str(), t.family, t.client_id, t.user, t.scope, t.expires_at, TokenState::Active.as_str(), t.now],
    )?;
    Ok(())
}

/// A stored token.
pub(crate) struct TokenRow {
    pub(crate) kind: TokenKind,
    pub(crate) family: String,
    pub(crate) client_id: String,
    pub(crate) user: String,
    pub(crate) scope: String,
    pub(crate) expires_at: i64,
    pub(crate) state: TokenState,
}

/// A token by its hash.
pub(crate) fn token(tx: &Tx<'_>, hash: &str) -> Result<Option<TokenRow>, StoreError> {
    let row: Option<(String, String, String, String, String, i64, String)> = tx
        .sql
        .query_row(
            "SELECT kind, family, client_id, user_name, scope, expires_at, state FROM tokens WHERE hash = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    let Some((kind, family, client_id, user, scope, expires_at, state)) = row else {
        return Ok(None);
    };
    Ok(Some(TokenRow {
        kind: if kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        },
        family,
        client_id,
        user,
        scope,
        expires_at,
        state: TokenState::parse(&state)?,
    }))
}

/// The user and client of an active, unexpired access token.
pub(crate) fn access_token_owner(
    tx: &Tx<'_>,
    hash: &str,
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT user_name, client_id FROM tokens WHERE hash = ?1 AND kind = 'access' AND state = 'active' AND expires_at > ?2",
            params![hash, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Sets the state of one token.
pub(crate) fn set_token_state(
    tx: &Tx<'_>,
    hash: &str,
    state: TokenState,
) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE tokens SET state = ?2 WHERE hash = ?1",
        params![hash, state.as_str()],
    )?;
    Ok(())
}

/// Revokes the tokens of a sign-in: all of them, or only its refresh
/// tokens (its access tokens then end at their short expiry).
pub(crate) fn revoke_family(
    tx: &Tx<'_>,
    family: &str,
    only: Option<TokenKind>,
) -> Result<(), StoreError> {
    match only {
        None => tx.sql.execute(
            "UPDATE tokens SET state = 'revoked' WHERE family = ?1",
            params![family],
        )?,
        Some(kind) => tx.sql.execute(
            "UPDATE tokens SET state = 'revoked' WHERE family = ?1 AND kind = ?2",
            params![family, kind.as_str()],
        )?,
    };
    Ok(())
}

/// Revokes every active refresh token of a user at a client; returns how
/// many there were.
pub(crate) fn revoke_user_refresh(
    tx: &Tx<'_>,
    user: &str,
    client_id: &str,
) -> Result<usize, StoreError> {
    Ok(tx.sql.execute(
        "UPDATE tokens SET state = 'revoked' WHERE user_name = ?1 AND client_id = ?2 AND kind = 'refresh' AND state = 'active'",
        params![user, client_id],
    )?)
}
