//! What a store call can answer besides success. The variants are what
//! callers branch on; the API layer (`crate::error`) turns each into an
//! HTTP status and error body, the store never does.

use crate::transitions::Refused;

/// Why a store call changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input is refused (too long, empty, out of range, wrong shape).
    #[error("{0}")]
    Invalid(String),
    /// What the call names does not exist.
    #[error("{message}")]
    NotFound {
        /// What is missing.
        what: Missing,
        /// For a person, with what to do next.
        message: String,
    },
    /// The call clashes with the current state (someone else got there
    /// first, or the state does not allow it).
    #[error("{message}")]
    Conflict {
        /// Which clash.
        kind: ConflictKind,
        /// For a person, with what to do next.
        message: String,
    },
    /// The claim the call carries does not hold the session (any more):
    /// the worker must stop working on it.
    #[error("{message}")]
    ClaimInvalid {
        /// Why the claim does not hold.
        why: ClaimProblem,
        /// For a person, with what to do next.
        message: String,
    },
    /// The caller did this too often lately: try again after the wait.
    #[error("{message}")]
    RateLimited {
        /// For a person, with the wait.
        message: String,
        /// Whole seconds until a retry is admitted (≥ 1).
        retry_after_seconds: u64,
    },
    /// The caller may not do this (it exists, and is someone else's).
    #[error("{message}")]
    Forbidden {
        /// Machine-readable (`worker_not_owned`).
        kind: &'static str,
        /// For a person, with what to do next.
        message: String,
    },
    /// The input is over a size or count limit (413): the message names
    /// the limit.
    #[error("{0}")]
    TooLarge(String),
    /// Another process holds the write lock longer than the busy timeout.
    #[error("the database is busy; retry shortly")]
    Busy,
    /// The database file cannot be opened.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database failed.
    #[error("the database failed: {0}")]
    Storage(rusqlite::Error),
    /// A stored value cannot be read back, or a value cannot be stored.
    #[error("a stored value is unreadable: {0}")]
    Corrupt(String),
}

/// What a [`StoreError::NotFound`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A session (or one this worker may not see).
    Session,
    /// A worker: it must register again.
    Worker,
    /// An input of a session.
    Input,
    /// An image attached to a session (or one of another session's).
    Attachment,
    /// A webhook subscription.
    Subscription,
    /// A Cloud Agents API agent, or one of another user's (the same
    /// answer).
    Agent,
    /// A user (admin commands name them).
    User,
    /// An agent configuration, or one of another team's (the same answer).
    AgentConfig,
    /// A team (admin commands name them).
    Team,
    /// An API key, or one of another user's (the same answer: a caller
    /// cannot tell the two apart).
    ApiKey,
    /// A schedule, or one of another team's (the same answer).
    Schedule,
    /// An artifact a session delivered (or one of another session's).
    Artifact,
    /// A skill or skill version, or one of another team's (the same answer).
    Skill,
}

/// Which clash a [`StoreError::Conflict`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// The session is claimed by someone else, or not claimable.
    Claimed,
    /// The session's state does not allow the change.
    Transition,
    /// The conversation is not as long as the append expected.
    Conversation,
    /// An answer names a question that is not the one asked now.
    StaleQuestion,
    /// A user or client with that name exists.
    Exists,
    /// An update was made against a version that is not the latest.
    Version,
}

/// Why a claim does not hold its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimProblem {
    /// There is no such claim.
    Unknown,
    /// The claim is on another session.
    OtherSession,
    /// The claim ended (completed, failed, released, cancelled, expired by
    /// the sweep).
    Ended,
    /// The claim's lease ran out.
    Expired,
}

impl StoreError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid(message.into())
    }

    pub(crate) fn not_found(what: Missing, message: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(kind: ConflictKind, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn claim(why: ClaimProblem, message: impl Into<String>) -> Self {
        StoreError::ClaimInvalid {
            why,
            message: message.into(),
        }
    }

    /// For `map_err` on (de)serialisation of stored values.
    pub(crate) fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.code == rusqlite::ErrorCode::DatabaseBusy
                || f.code == rusqlite::ErrorCode::DatabaseLocked
            {
                return StoreError::Busy;
            }
        }
        StoreError::Storage(e)
    }
}

impl From<Refused> for StoreError {
    fn from(r: Refused) -> Self {
        StoreError::conflict(ConflictKind::Transition, r.to_string())
    }
}
