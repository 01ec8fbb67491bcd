//! Failed attempts per name, in memory: after [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`], further attempts are refused until the window ends.
//! Bounds online guessing of passwords (and the Argon2 work a guesser
//! could ask for) and of device user codes (RFC 8628 §5.1).
//!
//! An attempt is counted as a failure *before* it is checked and forgotten
//! on success, in one step under the lock ([`reserve`]): concurrent
//! guesses cannot all pass a check made before any of them failed (a race
//! that let 40 parallel guesses through where five are allowed). A name
//! longer than any user name can be is wrong without a verification or an
//! entry here. Expired entries are dropped at most once a
//! [`PURGE_EVERY`], and at most [`MAX_ENTRIES`] names are kept: when the
//! map is full a new name is answered [`Verdict::Busy`] (fail closed, and
//! the memory stays bounded whatever names a flood makes up).
//!
//! Argon2 verifications (~19 MiB each) run on [`VERIFY_THREADS`]
//! long-lived threads fed by a queue of [`VERIFY_QUEUE`]: memory is then
//! bounded by those threads (one-off blocking threads each kept their
//! 19 MiB arena: 10 GB under a flood of wrong passwords), and a full queue
//! is [`Verdict::Busy`] at once — no thread waits for a free verifier
//! beyond the queue, so a flood cannot occupy the blocking pool every
//! database call needs (which stalled `GET /v1/sessions` for 10 s).

use crate::store::Store;
use std::collections::HashMap;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed within the window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long failures count.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Threads that run password verifications (made once, kept).
pub(crate) const VERIFY_THREADS: usize = 4;
/// Verifications waiting for a thread, at most; beyond, [`Verdict::Busy`].
pub(crate) const VERIFY_QUEUE: usize = 32;
/// Names with recent failures kept, at most (~200 bytes each).
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// How often expired entries are dropped.
pub(crate) const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Seconds a [`Verdict::Busy`] answer asks the client to wait
/// (`Retry-After`).
pub(crate) const BUSY_RETRY_SECONDS: u64 = 5;
/// Longest key kept: a user name is at most 64 bytes; keys derived from
/// one (the device codes' `code:` + name) a little longer.
const MAX_KEY: usize = 96;

/// The failures by name, and when expired ones were last dropped.
struct Failures {
    by_key: HashMap<String, (u32, Instant)>,
    purged: Instant,
}

static FAILURES: LazyLock<Mutex<Failures>> = LazyLock::new(|| {
    Mutex::new(Failures {
        by_key: HashMap::new(),
        purged: Instant::now(),
    })
});

fn failures() -> std::sync::MutexGuard<'static, Failures> {
    FAILURES.lock().unwrap_or_else(|e| e.into_inner())
}

impl Failures {
    /// Drops expired entries, at most once a [`PURGE_EVERY`] (or when the
    /// map is full).
    fn purge(&mut self, full: bool) {
        if full || self.purged.elapsed() >= PURGE_EVERY {
            self.by_key
                .retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            self.purged = Instant::now();
        }
    }
}

/// What [`reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// Counted as a failure: try, and [`forget`] it on success.
    Yes,
    /// Too many failures lately: do not try.
    LockedOut,
    /// The map is full of other names: do not try (see the module).
    Full,
}

/// Counts an attempt of `key` as a failure now, unless `key` is locked
/// out already or there is no room for it. A key longer than any name can
/// be is never kept (it names nobody): always [`Reserved::Yes`].
pub(crate) fn reserve(key: &str) -> Reserved {
    failures().reserve(key, MAX_ENTRIES)
}

impl Failures {
    /// [`reserve`] with room for `max_entries` names.
    fn reserve(&mut self, key: &str, max_entries: usize) -> Reserved {
        if key.len() > MAX_KEY {
            return Reserved::Yes;
        }
        self.purge(false);
        if !self.by_key.contains_key(key) && self.by_key.len() >= max_entries {
            self.purge(true);
            if self.by_key.len() >= max_entries {
                return Reserved::Full;
            }
        }
        let e = self
            .by_key
            .entry(key.to_string())
            .or_insert((0, Instant::now()));
        if e.1.elapsed() >= FAILURE_WINDOW {
            *e = (0, Instant::now());
        }
        if e.0 >= MAX_FAILURES {
            return Reserved::LockedOut;
        }
        e.0 += 1;
        Reserved::Yes
    }
}

/// Forgets `key`'s failures: the attempt succeeded.
pub(crate) fn forget(key: &str) {
    failures().by_key.remove(key);
}

/// Takes back one [`reserve`]d failure of `key`: the attempt was not
/// made (the verifiers were busy, the store failed), so it is nobody's
/// fault and must not lock anyone out.
pub(crate) fn release(key: &str) {
    let mut f = failures();
    if let Some(e) = f.by_key.get_mut(key) {
        e.0 = e.0.saturating_sub(1);
        if e.0 == 0 {
            f.by_key.remove(key);
        }
    }
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
    /// Too many checks waiting (or too many names with failures): not
    /// checked, and not counted; answer 503 with `Retry-After:`
    /// [`BUSY_RETRY_SECONDS`].
    Busy,
}

/// A verification for a thread of the [`Verifier`]s.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of long-lived threads running password verifications,
/// fed by a bounded queue.
pub(crate) struct Verifier {
    queue: SyncSender<Job>,
}

impl Verifier {
    /// Starts `threads` threads that take jobs from a queue of `queue`.
    pub(crate) fn new(threads: usize, queue: usize) -> Verifier {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a password-check thread: {e}");
            }
        }
        Verifier { queue: tx }
    }

    /// Queues `job`; `None` when the queue is full (or no thread runs).
    fn submit(&self, job: Job) -> Option<()> {
        match self.queue.try_send(job) {
            Ok(()) => Some(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }

    /// Verifies `password` against `hash` on one of the threads; `None`
    /// when the queue is full. Waits (at most the queue's length of
    /// verifications) for the answer.
    fn verify(&self, hash: String, password: &str) -> Option<bool> {
        let (tx, rx) = mpsc::sync_channel(1);
        let password = password.to_string();
        self.submit(Box::new(move || {
            let _ = tx.send(super::accounts::verify_password(&hash, &password));
        }))?;
        rx.recv().ok()
    }
}

/// The control plane's verifiers.
static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| Verifier::new(VERIFY_THREADS, VERIFY_QUEUE));

/// Checks `user`'s `password` under the lockout (see the module's notes).
/// Call it on a blocking thread: it reads the store and waits for its
/// verification (never for a place in the queue).
pub(crate) fn check_password(store: &Store, user: &str, password: &str) -> Verdict {
    check_password_with(&VERIFIER, store, user, password)
}

/// [`check_password`] on the given verifiers (tests make small ones).
pub(crate) fn check_password_with(
    verifier: &Verifier,
    store: &Store,
    user: &str,
    password: &str,
) -> Verdict {
    if user.is_empty() || user.len() > 64 {
        return Verdict::Wrong;
    }
    match reserve(user) {
        Reserved::Yes => {}
        Reserved::LockedOut => return Verdict::LockedOut,
        Reserved::Full => return Verdict::Busy,
    }
    let Ok((hash, known)) = store.password_hash_to_check(user) else {
        release(user);
        return Verdict::Busy;
    };
    match verifier.verify(hash, password) {
        None => {
            release(user);
            Verdict::Busy
        }
        Some(true) if known => {
            forget(user);
            Verdict::Right
        }
        Some(_) => Verdict::Wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(key: &str) -> bool {
        failures().by_key.contains_key(key)
    }

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
        assert!(!kept("ok-user"));
        let long = "x".repeat(1 << 20);
        assert_eq!(check_password(&store, &long, "pw"), Verdict::Wrong);
        assert_eq!(reserve(&long), Reserved::Yes);
        assert!(!kept(&long));
    }

    #[test]
    fn a_full_queue_is_busy_at_once_and_counts_no_failure() {
        let (_d, store) = crate::store::testing::store();
        store
            .add_user("queued", "the-right-password", None)
            .unwrap();
        let v = Verifier::new(1, 1);
        let (started_tx, started) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let wait = std::sync::Arc::new(Mutex::new(wait));
        // One job holds the only thread, another fills the queue.
        for i in 0..2 {
            let (w, s, d) = (wait.clone(), started_tx.clone(), done_tx.clone());
            v.submit(Box::new(move || {
                s.send(()).unwrap();
                let _ = w.lock().unwrap().recv();
                d.send(()).unwrap();
            }))
            .unwrap();
            if i == 0 {
                started.recv().unwrap();
            }
        }
        let t0 = Instant::now();
        assert_eq!(
            check_password_with(&v, &store, "queued", "the-right-password"),
            Verdict::Busy
        );
        assert!(t0.elapsed() < Duration::from_secs(2), "did not wait");
        assert!(!kept("queued"), "a busy answer counts no failure");
        go.send(()).unwrap();
        go.send(()).unwrap();
        done.recv().unwrap();
        done.recv().unwrap();
        assert_eq!(
            check_password_with(&v, &store, "queued", "the-right-password"),
            Verdict::Right
        );
    }

    #[test]
    fn the_map_is_capped_and_expired_entries_purged() {
        let mut f = Failures {
            by_key: HashMap::new(),
            purged: Instant::now(),
        };
        for k in ["a", "b", "c"] {
            assert_eq!(f.reserve(k, 3), Reserved::Yes);
        }
        assert_eq!(f.reserve("d", 3), Reserved::Full, "no room for a new name");
        assert_eq!(f.reserve("a", 3), Reserved::Yes, "known names still count");
        // Expired entries make room, and go at the periodic purge.
        let old = Instant::now() - FAILURE_WINDOW - Duration::from_secs(1);
        f.by_key.get_mut("b").unwrap().1 = old;
        assert_eq!(f.reserve("d", 3), Reserved::Yes);
        assert!(!f.by_key.contains_key("b"));
        f.by_key.get_mut("c").unwrap().1 = old;
        f.reserve("a", 3);
        assert!(f.by_key.contains_key("c"), "not purged on every call");
        f.purged = Instant::now() - PURGE_EVERY;
        f.reserve("a", 3);
        assert!(!f.by_key.contains_key("c"));
    }
}
