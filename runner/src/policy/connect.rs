//! Deciding an outgoing connection: the host first, then where it resolves.
//!
//! Resolving a name is itself a message out — a resolver forwards the name
//! to whoever serves its zone, so `secret-data.attacker.example` leaks even
//! when the connection is refused. So a connection is decided twice: once
//! on the host alone (`resolved: false`, before any lookup), and only if
//! that is allowed is the name resolved and decided again with every
//! address it resolved to (`resolved: true`). Both decisions are recorded;
//! the connection goes only to the addresses of the second.

use super::gate::PolicyGate;
use super::input::SessionContext;
use protocol::policy::{Action, ActionDetail, DecisionRecord, DecisionResult};
use std::net::{SocketAddr, ToSocketAddrs};

/// What a connection is to: as the tool or the proxied client asked.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    /// The tool asking (`WebFetch`, `Bash`).
    pub tool: &'a str,
    /// Host name or IP literal.
    pub host: &'a str,
    pub port: u16,
    /// `http`, `https`, …
    pub scheme: &'a str,
    /// HTTP method when known.
    pub method: Option<&'a str>,
}

/// The host-phase action (no addresses yet, nothing resolved).
pub(crate) fn host_action(t: &Target<'_>) -> Action {
    action(t, Vec::new(), false)
}

fn action(t: &Target<'_>, addresses: Vec<String>, resolved: bool) -> Action {
    Action {
        tool: t.tool.to_string(),
        detail: ActionDetail::NetConnect {
            host: t.host.to_string(),
            port: t.port,
            scheme: t.scheme.to_string(),
            method: t.method.map(str::to_string),
            addresses,
            resolved,
        },
    }
}

/// A connection the policy refused, with the record that refused it.
#[derive(Debug)]
pub(crate) struct Refused(pub Box<DecisionRecord>);

/// Resolves `t.host` (with the host's resolver) and returns the
/// resolved-phase action: call it only once the host phase was allowed.
pub(crate) fn resolved_action(t: &Target<'_>) -> Action {
    action(
        t,
        resolve(t).iter().map(|a| a.ip().to_string()).collect(),
        true,
    )
}

fn resolve(t: &Target<'_>) -> Vec<SocketAddr> {
    let host = t.host.trim_start_matches('[').trim_end_matches(']');
    (host, t.port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// Resolves `t.host` and decides the resolved action: the second phase, for
/// a caller whose host-phase decision was already allowed. Returns the
/// addresses to dial (exactly those decided).
pub(crate) fn resolve_and_decide(
    gate: &PolicyGate,
    ctx: &SessionContext,
    t: &Target<'_>,
) -> Result<(Vec<SocketAddr>, DecisionRecord), Refused> {
    let addrs = resolve(t);
    let record = gate.check(
        &action(t, addrs.iter().map(|a| a.ip().to_string()).collect(), true),
        ctx,
    );
    if record.result != DecisionResult::Allow {
        return Err(Refused(Box::new(record)));
    }
    Ok((addrs, record))
}

/// Both phases: the host, and — only if it is allowed — its addresses.
pub(crate) fn decide(
    gate: &PolicyGate,
    ctx: &SessionContext,
    t: &Target<'_>,
) -> Result<(Vec<SocketAddr>, DecisionRecord), Refused> {
    let first = gate.check(&host_action(t), ctx);
    if first.result != DecisionResult::Allow {
        return Err(Refused(Box::new(first)));
    }
    resolve_and_decide(gate, ctx, t)
}
