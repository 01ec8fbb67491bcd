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

/// Codes of one client waiting for a person (pending, unexpired), at most.
/// The endpoint is unauthenticated for a public client: without a cap a
/// flood fills the database (32k codes, 11 MB, in 40 s); beyond it the
/// client gets `slow_down` until codes are decided or expire.
pub(crate) const MAX_PENDING_PER_CLIENT: i64 = 1000;
/// The wait a refused client is told: codes expire on their own.
const FULL_RETRY_SECONDS: u64 = 60;

/// Stores a device code, forgetting those that expired over an hour ago
/// (by the `expires_at` index); `false` when a live code already has this
/// user code (the caller draws another); [`StoreError::RateLimited`] when
/// the client has [`MAX_PENDING_PER_CLIENT`] codes waiting.
pub(crate) fn insert(tx: &Tx<'_>, d: &NewDevice<'_>) -> Result<bool, StoreError> {
    let now = now_ms();
    tx.sql.execute(
        "DELETE FROM device_codes WHERE expires_at < ?1",
        params![now - 3_600_000],
    )?;
    let pending: i64 = tx.sql.query_row(
        "SELECT COUNT(*) FROM device_codes WHERE client_id = ?1 AND state = 'pending' AND expires_at > ?2",
        params![d.client_id, now],
        |r| r.get(0),
    )?;
    if pending >= MAX_PENDING_PER_CLIENT {
        return Err(StoreError::RateLimited {
            message: format!(
                "{pending} sign-ins of this client already wait for a person; finish or abandon one (codes expire on their own), then try again"
            ),
            retry_after_seconds: FULL_RETRY_SECONDS,
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_no_more_than_the_pending_codes_allowed() {
        let (_d, store) = crate::store::testing::store();
        let hashes: Vec<String> = (0..=MAX_PENDING_PER_CLIENT)
            .map(|i| format!("h{i}"))
            .collect();
        let new = |i: usize, client: &'static str| NewDevice {
            device_hash: &hashes[i],
            user_code_hash: &hashes[i],
            client_id: client,
            scope: "agent",
            interval_s: 5,
            expires_at: now_ms() + 600_000,
        };
        store
            .tx(|tx| {
                for i in 0..MAX_PENDING_PER_CLIENT as usize {
                    assert!(insert(tx, &new(i, "flooder"))?);
                }
                Ok(())
            })
            .unwrap();
        let last = MAX_PENDING_PER_CLIENT as usize;
        let full = store.tx(|tx| insert(tx, &new(last, "flooder")));
        assert!(
            matches!(full, Err(StoreError::RateLimited { retry_after_seconds, .. }) if retry_after_seconds > 0),
            "{:?}",
            full.err()
        );
        // A decided code no longer counts; another client is not affected.
        store
            .tx(|tx| decide(tx, "h0", DeviceState::Denied, "someone"))
            .unwrap();
        assert!(store.tx(|tx| insert(tx, &new(last, "flooder"))).unwrap());
        let plan: String = store
            .tx(|tx| {
                Ok(tx.sql.query_row(
                    "EXPLAIN QUERY PLAN DELETE FROM device_codes WHERE expires_at < 0",
                    [],
                    |r| r.get::<_, String>(3),
                )?)
            })
            .unwrap();
        assert!(plan.contains("INDEX"), "the purge uses an index: {plan}");
    }
}
