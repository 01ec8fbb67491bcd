//! What a schedule means, apart from where it is stored: its cron
//! pattern read with errors that name the field ([`cron`]), the time
//! zone it is read in, and the clock its ticks are counted by
//! ([`clock`]: the real one, or a test clock that runs faster).
//!
//! The store keeps schedules and fires them (`store::schedules`); the
//! identities API serves them (`api::agent_api::schedules`).

pub(crate) mod clock;
pub(crate) mod cron;

pub use clock::ScheduleClock;
pub(crate) use cron::Pattern;
