//! Threads that run guest calls. A guest runs off the caller's thread so a
//! guest blocked inside a host call cannot hold the caller past its
//! wall-clock limit; keeping the threads (instead of one per call) saves the
//! thread start and keeps the per-call cost to a channel hand-off. A thread
//! that stays blocked is simply lost to the pool; a new one starts when no
//! thread is idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A growing pool of guest threads.
pub struct ThreadPool {
    tx: Mutex<Sender<Job>>,
    rx: Arc<Mutex<Receiver<Job>>>,
    idle: Arc<AtomicUsize>,
}

impl Default for ThreadPool {
    fn default() -> Self {
        let (tx, rx) = channel();
        ThreadPool {
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl ThreadPool {
    /// Runs `job` on an idle pool thread, starting one when none is idle.
    pub fn execute(&self, job: Job) -> std::io::Result<()> {
        // Claim an idle thread, or start a new one for this job.
        let claimed = self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !claimed {
            let (rx, idle) = (self.rx.clone(), self.idle.clone());
            std::thread::Builder::new()
                .name("wasm-guest".into())
                .spawn(move || loop {
                    let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    job();
                    idle.fetch_add(1, Ordering::SeqCst);
                })?;
        }
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| std::io::Error::other("the guest thread pool is gone"))
    }
}
