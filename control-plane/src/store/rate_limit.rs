//! Per-user rate limits in SQLite (`rate_hits`): a call is admitted only
//! while the user's earlier admitted calls of the route stay under every
//! window's limit, and then it is written as a hit. A refused call writes
//! nothing, so retrying too early never pushes the wait further out. In the
//! database, not in memory, so several control-plane processes on one file
//! share the count, and a restart does not reset it.

use super::{StoreError, Tx};
use rusqlite::params;

/// At most `max` admitted calls within any `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    /// The window's length in milliseconds.
    pub(crate) window_ms: i64,
    /// Calls admitted within one window.
    pub(crate) max: usize,
}

/// What a rate-limited call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission<T> {
    /// Admitted (and counted): the answer.
    Allowed(T),
    /// Refused (not counted): try again in this many whole seconds (≥ 1).
    Limited {
        /// Seconds until the hit that blocks the call ages out of its window.
        retry_after_seconds: u64,
    },
}

/// Admits a call of `route` by `user` at `now_ms` and records it, or says
/// how long to wait: the longest wait any window asks for, so that a retry
/// after it passes every window.
pub(super) fn admit(
    tx: &Tx<'_>,
    user: &str,
    route: &str,
    limits: &[Limit],
    now_ms: i64,
) -> Result<Option<u64>, StoreError> {
    let longest = limits.iter().map(|l| l.window_ms).max().unwrap_or(0);
    // Hits no window can see any more.
    tx.sql.execute(
        "DELETE FROM rate_hits WHERE user = ?1 AND route = ?2 AND at <= ?3",
        params![user, route, now_ms - longest],
    )?;
    let mut wait_ms = 0i64;
    for l in limits {
        let mut st = tx.sql.prepare_cached(
            "SELECT at FROM rate_hits WHERE user = ?1 AND route = ?2 AND at > ?3 ORDER BY at",
        )?;
        let hits: Vec<i64> = st
            .query_map(params![user, route, now_ms - l.window_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if hits.len() >= l.max {
            // Once this hit leaves the window, fewer than `max` remain.
            let blocking = hits[hits.len() - l.max];
            wait_ms = wait_ms.max(blocking + l.window_ms - now_ms);
        }
    }
    if wait_ms > 0 {
        let seconds = (wait_ms as u64).div_ceil(1000).max(1);
        return Ok(Some(seconds));
    }
    tx.sql.execute(
        "INSERT INTO rate_hits (user, route, at) VALUES (?1, ?2, ?3)",
        params![user, route, now_ms],
    )?;
    Ok(None)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Moving time for rate limits, as the claim tests move lease expiry:
    //! by rewriting what the store wrote.

    use crate::store::Store;

    /// Moves every recorded hit `ms` into the past, as if that much time
    /// had passed since each.
    pub(crate) fn age_hits(store: &Store, ms: i64) {
        store
            .tx(|tx| {
                tx.sql.execute("UPDATE rate_hits SET at = at - ?1", [ms])?;
                Ok(())
            })
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    const LIMITS: [Limit; 2] = [
        Limit {
            window_ms: 60_000,
            max: 1,
        },
        Limit {
            window_ms: 3_600_000,
            max: 30,
        },
    ];

    fn at(s: &crate::store::Store, user: &str, now: i64) -> Option<u64> {
        s.tx(|tx| admit(tx, user, "r", &LIMITS, now)).unwrap()
    }

    #[test]
    fn one_a_minute_with_the_wait_until_the_hit_ages_out() {
        let (_d, s) = store();
        let t0 = 1_000_000_000;
        assert_eq!(at(&s, "alice", t0), None);
        assert_eq!(at(&s, "alice", t0 + 1), Some(60));
        assert_eq!(at(&s, "alice", t0 + 59_001), Some(1));
        // Whole seconds, rounded up, never 0.
        assert_eq!(at(&s, "alice", t0 + 59_999), Some(1));
        assert_eq!(at(&s, "alice", t0 + 30_500), Some(30));
        // Refused calls were not counted: the first hit alone decides.
        assert_eq!(at(&s, "alice", t0 + 60_000), None);
        // Another user, another route: their own counts.
        assert_eq!(at(&s, "bob", t0 + 1), None);
        assert_eq!(
            s.tx(|tx| admit(tx, "alice", "other", &LIMITS, t0 + 2))
                .unwrap(),
            None
        );
    }

    #[test]
    fn thirty_an_hour() {
        let (_d, s) = store();
        let t0 = 5_000_000_000;
        for i in 0..30 {
            assert_eq!(at(&s, "alice", t0 + i * 61_000), None, "call {i}");
        }
        let now = t0 + 30 * 61_000;
        // The oldest hit leaves the hour at t0 + 3600 s.
        assert_eq!(at(&s, "alice", now), Some((3_600_000 - 30 * 61_000) / 1000));
        assert_eq!(at(&s, "alice", t0 + 3_600_000 - 1), Some(1));
        assert_eq!(at(&s, "alice", t0 + 3_600_000), None);
        // Thirty again at once: one second later the minute asks 59 s,
        // the hour 60 s (until the hit at t0 + 61 s leaves it); the longer wins.
        assert_eq!(at(&s, "alice", t0 + 3_601_000), Some(60));
    }

    #[test]
    fn old_hits_are_dropped() {
        let (_d, s) = store();
        assert_eq!(at(&s, "alice", 0), None);
        assert_eq!(at(&s, "alice", 3_600_001), None);
        let n: i64 = s
            .tx(|tx| {
                Ok(tx
                    .sql
                    .query_row("SELECT COUNT(*) FROM rate_hits", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 1);
    }
}
