//! Interrupts a guest's thread that is blocked in a host call past its
//! deadline.
//!
//! Guest code is stopped by the epoch deadline, but wasmtime checks the
//! epoch only in wasm code: a guest inside a blocking system call (opening
//! a FIFO waits for the other end) would hold the caller's thread for as
//! long as the kernel lets it. Each call
//! registers its thread and deadline here; the epoch ticker, once a call is
//! past its deadline, sends that thread a signal whose handler does
//! nothing and is installed without `SA_RESTART`. The blocked system call
//! returns `EINTR`, WASI hands the guest the error, and the first wasm
//! instruction after it traps on the passed epoch deadline: the call ends
//! as the timeout it is. Nothing is paid per host call, only per guest
//! call (one registration). A wait the kernel does not let a signal
//! interrupt (a hung network file system) still holds the thread.
//!
//! Sleeping is handled apart (`guard`): a sleep is restarted after a
//! signal, so a sleep that would end past the deadline is refused at once.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long after its deadline a call still blocked is interrupted, and
/// again every tick after that until it returns.
const GRACE: Duration = Duration::from_millis(10);

/// The guest calls in progress: (registration id, thread, deadline).
#[derive(Default)]
pub(crate) struct Watchdog {
    calls: Mutex<Vec<(u64, libc::pthread_t, Instant)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A registered call; dropping it ends the watch.
pub(crate) struct Watched<'a> {
    dog: &'a Watchdog,
    id: u64,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        let mut calls = self.dog.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.retain(|(id, _, _)| *id != self.id);
    }
}

impl Watchdog {
    /// Installs the signal handler (once per process) and makes a watchdog.
    pub(crate) fn new() -> std::io::Result<Arc<Self>> {
        install_handler()?;
        Ok(Arc::new(Watchdog::default()))
    }

    /// Watches the current thread until the returned value is dropped.
    pub(crate) fn watch(&self, deadline: Instant) -> Watched<'_> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, me, deadline));
        Watched { dog: self, id }
    }

    /// Interrupts every watched thread past its deadline and grace. Called
    /// by the epoch ticker; the lock is held while signalling, so the
    /// thread signalled is one still registered (a signal sent just before
    /// its call returns can land after it: at worst one `EINTR` in the
    /// caller, which std's I/O retries).
    pub(crate) fn interrupt_overdue(&self) {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (_, thread, deadline) in calls.iter() {
            if now > *deadline + GRACE {
                // SAFETY: the thread is alive: it unregisters (under this
                // lock) before its call returns.
                unsafe { libc::pthread_kill(*thread, signal()) };
            }
        }
    }
}

/// The signal used: a real-time one no other part of the runner uses.
fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

extern "C" fn on_signal(_: libc::c_int) {}

fn install_handler() -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction with a handler that does nothing
        // (async-signal-safe), an empty mask and no SA_RESTART, so a
        // blocked system call returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(signal(), &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
        }
        Ok(())
    });
    r.map_err(std::io::Error::from_raw_os_error)
}
