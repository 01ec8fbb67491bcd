//! Failed attempts per name, in memory: after [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`], further attempts are refused until the window ends.
//! Bounds online guessing of passwords (and the Argon2 work a guesser
//! could ask for) and of device user codes (RFC 8628 §5.1).
//!
//! A password check ([`check_password`]) counts its attempt as a failure
//! *before* the slow verification and forgets it on success, in one step
//! under the lock: concurrent guesses cannot all pass a check made before
//! any of them failed (a race that let 40 parallel guesses through where
//! five are allowed). At most [`CONCURRENT_CHECKS`] Argon2 verifications
//! run at once (each takes ~19 MiB), and a name longer than any user name
//! can be is wrong without a verification or an entry here.

use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

static FAILURES: LazyLock<Mutex<HashMap<String, (u32, Instant)>>> = LazyLock::new(Default::default);
/// Failures allowed within the window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long failures count.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password verifications running at once, at most; more wait.
pub(crate) const CONCURRENT_CHECKS: usize = 4;
/// Longest key kept: a user name is at most 64 bytes; keys derived from
/// one (the device codes' `code:` + name) a little longer.
const MAX_KEY: usize = 96;

/// Whether `key` has failed too often lately.
pub(crate) fn locked_out(key: &str) -> bool {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    f.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
    f.get(key).is_some_and(|(n, _)| *n >= MAX_FAILURES)
}

/// Counts a failure of `key`, or forgets its failures after a success.
/// A key longer than any name can be is never kept (it names nobody).
pub(crate) fn record(key: &str, ok: bool) {
    if key.len() > MAX_KEY {
        return;
    }
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    if ok {
        f.remove(key);
    } else {
        f.entry(key.to_string()).or_insert((0, Instant::now())).0 += 1;
    }
}

/// Counts an attempt of `key` as a failure now, unless `key` is locked
/// out already (then `false`: do not try).
fn reserve(key: &str) -> bool {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    f.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
    let e = f.entry(key.to_string()).or_insert((0, Instant::now()));
    if e.0 >= MAX_FAILURES {
        return false;
    }
    e.0 += 1;
    true
}

/// What a guarded password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The password is the user's.
    Right,
    /// It is not (or there is no such user).
    Wrong,
    /// Too many failures lately: not checked.
    LockedOut,
}

/// Slots for verifications ([`CONCURRENT_CHECKS`]).
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A verification slot, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut n = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= CONCURRENT_CHECKS {
            n = FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        FREED.notify_one();
    }
}

/// Checks `user`'s `password` under the lockout (see the module's notes).
/// Call it on a blocking thread: it may wait for a verification slot.
pub(crate) fn check_password(store: &Store, user: &str, password: &str) -> Verdict {
    if user.is_empty() || user.len() > 64 {
        return Verdict::Wrong;
    }
    if !reserve(user) {
        return Verdict::LockedOut;
    }
    let ok = {
        let _slot = Slot::take();
        store.check_password(user, password).unwrap_or(false)
    };
    if ok {
        record(user, true);
        Verdict::Right
    } else {
        Verdict::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_guesses_get_no_more_than_the_allowed_failures() {
        let (_d, store) = crate::store::testing::store();
        store.add_user("racer", "the-right-password", None).unwrap();
        let store = std::sync::Arc::new(store);
        let verdicts: Vec<Verdict> = (0..24)
            .map(|i| {
                let s = store.clone();
                std::thread::spawn(move || check_password(&s, "racer", &format!("guess-{i}")))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let checked = verdicts.iter().filter(|v| **v == Verdict::Wrong).count();
        assert_eq!(checked, MAX_FAILURES as usize, "{verdicts:?}");
        assert_eq!(
            check_password(&store, "racer", "the-right-password"),
            Verdict::LockedOut,
            "locked out, even with the right password, until the window ends"
        );
    }

    #[test]
    fn a_right_password_forgets_the_failures_and_long_names_leave_nothing() {
        let (_d, store) = crate::store::testing::store();
        store
            .add_user("ok-user", "the-right-password", None)
            .unwrap();
        assert_eq!(check_password(&store, "ok-user", "wrong"), Verdict::Wrong);
        assert_eq!(
            check_password(&store, "ok-user", "the-right-password"),
            Verdict::Right
        );
        assert!(!FAILURES.lock().unwrap().contains_key("ok-user"));
        let long = "x".repeat(1 << 20);
        assert_eq!(check_password(&store, &long, "pw"), Verdict::Wrong);
        record(&long, false);
        assert!(!FAILURES.lock().unwrap().contains_key(&long));
    }
}
