//! Reporting. Everything user-visible leaves the runner as a
//! [`protocol::activity::Activity`] through an [`ActivitySink`]: the session
//! on the control plane or, for `runner call`, memory.

use protocol::activity::Activity;
use std::sync::Mutex;

/// Where activities go. Implementations must not block for long: the policy
/// gate emits from the hot path. A sink that keeps the activity clones it;
/// one that does not (a counter, a null sink) pays nothing.
pub trait ActivitySink: Send + Sync {
    /// Report one activity.
    fn emit(&self, activity: &Activity);
}

/// Collects activities in memory (for `runner call` and tests).
#[derive(Debug, Default)]
pub struct MemorySink {
    items: Mutex<Vec<Activity>>,
}

impl MemorySink {
    /// Takes everything collected so far.
    pub fn take(&self) -> Vec<Activity> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ActivitySink for MemorySink {
    fn emit(&self, activity: &Activity) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(activity.clone());
    }
}

/// Drops every activity (benchmarks, and callers that only want records).
#[derive(Debug, Default)]
pub struct NullSink;

impl ActivitySink for NullSink {
    fn emit(&self, _activity: &Activity) {}
}
