//! Why an agent run ended without a summary. Typed, because the worker and
//! the tests branch on it (a cancelled run is not a failed one); the
//! messages are what the session's `failed` activity says.

/// How a run ended when it did not finish the work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The session was cancelled or its claim lost; nothing more runs.
    #[error("cancelled")]
    Cancelled,
    /// The model kept calling tools past `[agent] max_turns`.
    #[error("the model did not finish within {0} turns ([agent] max_turns); send a follow-up to let it continue")]
    MaxTurns(u32),
    /// The model call failed, or the model stopped without finishing.
    #[error("{0}")]
    Model(String),
    /// A question or an approval went unanswered for `await_input_seconds`.
    #[error("{0}")]
    NobodyAnswered(String),
    /// The conversation could not be stored, so no follow-up could resume it.
    #[error("{0}")]
    Storage(String),
}
