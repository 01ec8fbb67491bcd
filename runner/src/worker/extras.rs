//! What one session has beyond the worker's shared tools, all from its
//! pinned agent version: its session roots (the skills it may read at
//! `/skills`, the artifacts directory `/data` it may write), the tools of
//! its MCP servers, the trusted prompt sections describing them, and the
//! work done after the agent's last turn (delivering `/data`).
//!
//! Made in two steps because the roots must exist before the session's
//! policy context (paths under them are normalised against them), while
//! connecting to an MCP server is itself a decided action, so needs the
//! gate and the context.

use super::session::ClaimSink;
use super::WorkerShared;
use crate::policy::{PolicyGate, SessionContext, SessionRoot};
use crate::tools::Registry;
use protocol::platform::Claim;
use std::sync::Arc;

/// A session's extras, alive for the session's run on this worker.
pub(super) struct SessionExtras {
    /// The session roots, for the policy context and the sandboxes.
    pub(super) roots: Vec<SessionRoot>,
    /// Trusted system-prompt sections (a `## Heading` and its text each).
    pub(super) instructions: Vec<String>,
}

/// Makes the session's roots (before its policy context exists).
pub(super) fn prepare(
    _shared: &WorkerShared,
    _claim: &Claim,
    _sink: &Arc<ClaimSink>,
    _workspace: &std::path::Path,
) -> Result<SessionExtras, String> {
    Ok(SessionExtras {
        roots: Vec::new(),
        instructions: Vec::new(),
    })
}

/// The tools the session's model may be offered: the worker's, plus its
/// MCP servers' (each connection decided through `gate`).
pub(super) fn session_tools(
    shared: &WorkerShared,
    _claim: &Claim,
    _gate: &PolicyGate,
    _ctx: &SessionContext,
    _extras: &mut SessionExtras,
) -> Registry {
    shared.registry.clone()
}

/// After the agent's last turn, before the session's end is reported:
/// anything to add to its summary (what was delivered), or why it failed.
pub(super) fn finish(
    _shared: &WorkerShared,
    _claim: &Claim,
    _sink: &Arc<ClaimSink>,
    _gate: &PolicyGate,
    _ctx: &SessionContext,
    _extras: &SessionExtras,
) -> Result<Option<String>, String> {
    Ok(None)
}
