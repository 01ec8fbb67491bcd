//! Session state transitions, in one place. Every state change the store
//! makes asks [`next`] first; anything not listed here is [`Refused`] and
//! changes nothing (the API answers it as `invalid_transition`).

use protocol::session::SessionState::{self, *};

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A worker claims it.
    Claim,
    /// The agent asks a person something.
    AwaitInput,
    /// Work goes on after awaiting input.
    Resume,
    /// The worker completes it.
    Complete,
    /// The worker fails it.
    Fail,
    /// The worker gives it back.
    Release,
    /// A person stops it.
    Cancel,
    /// Its lease expired.
    LeaseExpired,
    /// A stale session goes back to the queue.
    Requeue,
    /// A stale session is out of attempts.
    GiveUp,
    /// A person sends a follow-up to a finished session (complete, error
    /// or stopped): it runs again, resuming its conversation.
    FollowUp,
}

/// A transition the lifecycle does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    from: SessionState,
    event: Event,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.event {
            Event::Claim => "claimed",
            Event::AwaitInput => "set to awaiting_input",
            Event::Resume => "resumed",
            Event::Complete => "completed",
            Event::Fail => "failed",
            Event::Release => "released",
            Event::Cancel => "cancelled",
            Event::LeaseExpired => "expired",
            Event::Requeue => "requeued",
            Event::GiveUp => "given up",
            Event::FollowUp => {
                "sent a follow-up (only complete, error and cancelled sessions take one)"
            }
        };
        write!(
            f,
            "a session that is {} cannot be {what}",
            self.from.as_str()
        )
    }
}

/// The state after `event`, or why it is not allowed from `from`.
pub(crate) fn next(from: SessionState, event: Event) -> Result<SessionState, Refused> {
    let to = match (from, event) {
        (Queued, Event::Claim) => Active,
        (Active, Event::AwaitInput) => AwaitingInput,
        (AwaitingInput, Event::Resume) => Active,
        (Active | AwaitingInput, Event::Complete) => Complete,
        (Active | AwaitingInput, Event::Fail) => Error,
        (Active | AwaitingInput, Event::Release) => Queued,
        (Active | AwaitingInput, Event::LeaseExpired) => Stale,
        (Stale, Event::Requeue) => Queued,
        (Stale, Event::GiveUp) => Error,
        (Complete | Error | Cancelled, Event::FollowUp) => Queued,
        (Queued | Active | AwaitingInput | Stale, Event::Cancel) => Cancelled,
        (from, event) => return Err(Refused { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_leave_only_by_follow_up() {
        assert_eq!(next(Complete, Event::FollowUp).unwrap(), Queued);
        assert_eq!(next(Error, Event::FollowUp).unwrap(), Queued);
        assert_eq!(next(Cancelled, Event::FollowUp).unwrap(), Queued);
        assert!(next(Active, Event::FollowUp).is_err());
        assert!(next(Queued, Event::FollowUp).is_err());
        for s in [Complete, Error, Cancelled] {
            for e in [
                Event::Claim,
                Event::AwaitInput,
                Event::Resume,
                Event::Complete,
                Event::Fail,
                Event::Release,
                Event::Cancel,
                Event::LeaseExpired,
                Event::Requeue,
                Event::GiveUp,
            ] {
                assert!(next(s, e).is_err(), "{s:?} {e:?}");
            }
        }
    }

    #[test]
    fn the_lifecycle() {
        assert_eq!(next(Queued, Event::Claim).unwrap(), Active);
        assert_eq!(next(Active, Event::LeaseExpired).unwrap(), Stale);
        assert_eq!(next(Stale, Event::Requeue).unwrap(), Queued);
        assert_eq!(next(Stale, Event::GiveUp).unwrap(), Error);
        assert!(next(Queued, Event::Complete).is_err());
        assert!(next(Active, Event::Claim).is_err());
    }
}
