//! Failed attempts per name, in memory: after [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`], further attempts are refused until the window ends.
//! Bounds online guessing of passwords (and the Argon2 work a guesser
//! could ask for) and of device user codes (RFC 8628 §5.1).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

static FAILURES: LazyLock<Mutex<HashMap<String, (u32, Instant)>>> = LazyLock::new(Default::default);
/// Failures allowed within the window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long failures count.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Whether `key` has failed too often lately.
pub(crate) fn locked_out(key: &str) -> bool {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    f.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
    f.get(key).is_some_and(|(n, _)| *n >= MAX_FAILURES)
}

/// Counts a failure of `key`, or forgets its failures after a success.
pub(crate) fn record(key: &str, ok: bool) {
    let mut f = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    if ok {
        f.remove(key);
    } else {
        f.entry(key.to_string()).or_insert((0, Instant::now())).0 += 1;
    }
}
