//! The device authorization grant's table (RFC 8628): one row per
//! device code, found by the hash of the device code (the client polling)
//! or of the user code (the person on the verification page). Plain reads
//! and writes; the grant's rules are `crate::auth`'s.

use super::{now_ms, StoreError, Tx};
use rusqlite::{params, OptionalExtension};

/// Where a device code is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceState {
    /// Waiting for a person to allow or deny it.
    Pending,
    /// Allowed; the next poll gets the tokens.
    Approved,
    /// Denied on the verification page.
    Denied,
    /// Its tokens were handed out (a device code works once).
    Redeemed,
}

impl DeviceState {
    fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Approved => "approved",
            DeviceState::Denied => "denied",
            DeviceState::Redeemed => "redeemed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DeviceState::Pending,
            "approved" => DeviceState::Approved,
            "denied" => DeviceState::Denied,
            "redeemed" => DeviceState::Redeemed,
            other => return Err(StoreError::corrupt(format!("device code state {other:?}"))),
        })
    }
}

/// A new device code (by hashes).
pub(crate) struct NewDevice<'a> {
    pub(crate) device_hash: &'a str,
    pub(crate) user_code_hash: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) interval_s: u64,
    pub(crate) expires_at: i64,
}

/// Stores a device code, forgetting those that expired over an hour ago;
/// `false` when a live code already has this user code (the caller draws
/// another).
pub(crate) fn insert(tx: &Tx<'_>, d: &NewDevice<'_>) -> Result<bool, StoreError> {
    let now = now_ms();
    tx.sql.execute(
        "DELETE FROM device_codes WHERE expires_at < ?1",
        params![now - 3_600_000],
    )?;
    let n = tx.sql.execute(
        "INSERT INTO device_codes (device_hash, user_code_hash, client_id, scope, state, interval_s, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        params![d.device_hash, d.user_code_hash, d.client_id, d.scope, d.interval_s as i64, d.expires_at, now],
    )?;
    Ok(n == 1)
}

/// A stored device code.
pub(crate) struct DeviceRow {
    pub(crate) device_hash: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) state: DeviceState,
    /// Who approved or denied it.
    pub(crate) user: Option<String>,
    /// The token family it issued, once redeemed.
    pub(crate) family: Option<String>,
    pub(crate) interval_s: u64,
    pub(crate) last_poll_at: Option<i64>,
    pub(crate) expires_at: i64,
}

const COLUMNS: &str =
    "device_hash, client_id, scope, state, user_name, family, interval_s, last_poll_at, expires_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(DeviceRow, String)> {
    Ok((
        DeviceRow {
            device_hash: r.get(0)?,
            client_id: r.get(1)?,
            scope: r.get(2)?,
            state: DeviceState::Pending,
            user: r.get(4)?,
            family: r.get(5)?,
            interval_s: r.get::<_, i64>(6)?.max(0) as u64,
            last_poll_at: r.get(7)?,
            expires_at: r.get(8)?,
        },
        r.get(3)?,
    ))
}

fn one(tx: &Tx<'_>, column: &str, hash: &str) -> Result<Option<DeviceRow>, StoreError> {
    let found = tx
        .sql
        .query_row(
            &format!("SELECT {COLUMNS} FROM device_codes WHERE {column} = ?1"),
            params![hash],
            row,
        )
        .optional()?;
    found
        .map(|(mut d, state)| {
            d.state = DeviceState::parse(&state)?;
            Ok(d)
        })
        .transpose()
}

/// A device code by the hash of the device code.
pub(crate) fn by_device(tx: &Tx<'_>, hash: &str) -> Result<Option<DeviceRow>, StoreError> {
    one(tx, "device_hash", hash)
}

/// A device code by the hash of its user code.
pub(crate) fn by_user_code(tx: &Tx<'_>, hash: &str) -> Result<Option<DeviceRow>, StoreError> {
    one(tx, "user_code_hash", hash)
}

/// Records a person's decision on a pending code.
pub(crate) fn decide(
    tx: &Tx<'_>,
    device_hash: &str,
    state: DeviceState,
    user: &str,
) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE device_codes SET state = ?2, user_name = ?3 WHERE device_hash = ?1 AND state = 'pending'",
        params![device_hash, state.as_str(), user],
    )?;
    Ok(())
}

/// Records a poll at `now`, and the interval the client must keep from
/// now on.
pub(crate) fn polled(
    tx: &Tx<'_>,
    device_hash: &str,
    now: i64,
    interval_s: u64,
) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE device_codes SET last_poll_at = ?2, interval_s = ?3 WHERE device_hash = ?1",
        params![device_hash, now, interval_s as i64],
    )?;
    Ok(())
}

/// Marks a code redeemed: it issued `family`.
pub(crate) fn redeemed(tx: &Tx<'_>, device_hash: &str, family: &str) -> Result<(), StoreError> {
    tx.sql.execute(
        "UPDATE device_codes SET state = 'redeemed', family = ?2 WHERE device_hash = ?1",
        params![device_hash, family],
    )?;
    Ok(())
}
