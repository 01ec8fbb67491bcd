//! HTTP clients for a git host or a forge API, each made only after the
//! runner's connection to that host was decided, and pinned to exactly the
//! addresses the decision saw (a name that re-resolves elsewhere later is
//! never dialled). No proxy from the environment, no redirects.

use super::section::RepositoriesSection;
use crate::policy::connect::{self, Target};
use crate::policy::{PolicyGate, SessionContext};
use std::time::Duration;

/// Decides the runner's connection to `url`'s host (the host, then every
/// address it resolves to) and returns a client that dials only those
/// addresses.
pub(super) fn decided_client(
    gate: &PolicyGate,
    ctx: &SessionContext,
    settings: &RepositoriesSection,
    url: &url::Url,
) -> Result<reqwest::blocking::Client, String> {
    let host = url
        .host_str()
        .ok_or_else(|| format!("{url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    let target = Target {
        tool: "runner",
        host: &host,
        port,
        scheme: url.scheme(),
        method: None,
    };
    let (addrs, _record) = connect::decide(gate, ctx, &target).map_err(|refused| {
        format!(
            "the connection to {host}:{port} was denied: {}",
            refused.0.reasons.join("; ")
        )
    })?;
    if addrs.is_empty() {
        return Err(format!("{host} did not resolve to any address"));
    }
    let mut b = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(settings.timeout_seconds))
        .connect_timeout(Duration::from_secs(settings.timeout_seconds.min(30)))
        .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(&host, &addrs);
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            format!(
                "repositories.ca_file {}: {e}; point it at a PEM file of trusted CA certificates",
                ca.display()
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "repositories.ca_file {}: not PEM certificates ({e})",
                ca.display()
            )
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client for {host}: {e}"))
}
