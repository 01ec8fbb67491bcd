//! The cancellation flag: the lowest module, because the model client, the
//! sandboxes, the tools and the agent loop all stop on it and none of them
//! may depend on another to get it.

use std::sync::Arc;

/// A cancellation flag shared by a session and the tools it runs: set when
/// the session's claim is lost or the worker shuts down, it kills running
/// sandboxes and stops further calls.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// A flag that is never set (the CLI, tests).
    pub fn never() -> Cancel {
        Cancel::default()
    }
    /// Sets the flag.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// Whether it is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
