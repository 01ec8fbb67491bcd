//! The repositories this worker can work on, host by host: the static
//! `list` of each `[[repositories.hosts]]` entry, and — for a GitHub host
//! with a token — what the forge lists for that token.
//!
//! The forge call is the runner's own, outside any session, and it is
//! authorized the way every other runner connection is: only to a host the
//! operator configured (the API base of a `[[repositories.hosts]]` entry,
//! nothing the forge answers can point it elsewhere), decided as a
//! `net.connect` of the tool `runner` under the worker's policy (host, then
//! the addresses it resolves to) and dialled only at the decided
//! addresses. A refused connection is a failed listing, never a fallback
//! to an undecided client. No agent input reaches any of it.

use super::client::decided_client;
use super::section::{ForgeKind, RepositoriesSection, RepositoryHost};
use crate::forge::{github_api_base, Forge, ForgeError, GitHub};
use crate::policy::{PolicyGate, SessionContext};
use protocol::repo_list::ListedRepository;

/// Most repositories listed from one host's forge.
pub const MAX_PER_HOST: usize = 1000;

/// What one host came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostListing {
    /// The host (`host` or `host:port`, as configured).
    pub host: String,
    /// Its static `list`.
    pub listed: Vec<ListedRepository>,
    /// What its forge listed.
    pub forge: ForgeListing,
}

/// A host's forge listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgeListing {
    /// The host has none to ask: `forge = "none"`, or no token.
    NotAsked,
    /// The forge answered.
    Listed {
        /// Its repositories.
        repositories: Vec<ListedRepository>,
        /// Whether it had more than [`MAX_PER_HOST`].
        truncated: bool,
    },
    /// Listing failed; nothing from this forge is known now.
    Failed(Problem),
}

/// Why a host's forge listing failed: a stable kind (to log each kind of
/// failure once) and a message naming the host and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `token`, `connect`, `api_base`, `unauthorized`, `forbidden`,
    /// `rate_limited`, `not_found`, `http`, `decode`, …
    pub kind: &'static str,
    /// For the operator; never holds the token.
    pub message: String,
}

/// Lists every configured host, in config order. `gate` and `ctx` decide
/// the forge connections (a worker-level context: no session).
pub fn list_hosts(
    gate: &PolicyGate,
    ctx: &SessionContext,
    settings: &RepositoriesSection,
) -> Vec<HostListing> {
    settings
        .hosts
        .iter()
        .map(|h| HostListing {
            host: h.host.clone(),
            listed: h
                .list
                .iter()
                .filter_map(|e| e.split_once('/'))
                .filter_map(|(o, n)| ListedRepository::new(&h.host, o, n).ok())
                .collect(),
            forge: from_forge(gate, ctx, settings, h),
        })
        .collect()
}

fn from_forge(
    gate: &PolicyGate,
    ctx: &SessionContext,
    settings: &RepositoriesSection,
    h: &RepositoryHost,
) -> ForgeListing {
    let (ForgeKind::Github, Some(token)) = (h.forge, &h.token) else {
        return ForgeListing::NotAsked;
    };
    let host = &h.host;
    let fail = |kind, message: String| ForgeListing::Failed(Problem { kind, message });
    let token = match token.resolve(&format!("repositories.hosts {host} token")) {
        Ok(t) => t,
        Err(e) => return fail("token", format!("listing the repositories of {host}: {e}")),
    };
    let base = h.api_base.clone().unwrap_or_else(|| github_api_base(host));
    let api = match url::Url::parse(&base) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                "api_base",
                format!("listing the repositories of {host}: the API base {base:?} is not a URL ({e}); fix repositories.hosts api_base"),
            )
        }
    };
    let client = match decided_client(gate, ctx, settings, &api) {
        Ok(c) => c,
        Err(e) => return fail(
            "connect",
            format!("listing the repositories of {host} at {base}: {e}; the worker's policy must allow the runner's connection to the forge API (its host is in input.trusted.worker.repositories.api_hosts)"),
        ),
    };
    let gh = match GitHub::new(&base, token, client) {
        Ok(g) => g,
        Err(e) => {
            return fail(
                "api_base",
                format!("listing the repositories of {host}: {e}"),
            )
        }
    };
    match gh.list_repositories(MAX_PER_HOST) {
        Ok(l) => {
            if l.skipped > 0 {
                tracing::debug!(
                    "{host}: {} listed repositories have names a URL cannot carry; left out",
                    l.skipped
                );
            }
            ForgeListing::Listed {
                repositories: l
                    .repositories
                    .iter()
                    .filter_map(|r| ListedRepository::new(host, &r.owner, &r.name).ok())
                    .collect(),
                truncated: l.truncated,
            }
        }
        Err(e) => fail(
            kind(&e),
            format!(
                "listing the repositories of {host} at {base} (GET /user/repos) failed: {e}{}",
                hint(&e, host)
            ),
        ),
    }
}

fn kind(e: &ForgeError) -> &'static str {
    match e {
        ForgeError::BadUrl(_) => "api_base",
        ForgeError::Unauthorized => "unauthorized",
        ForgeError::Forbidden(_) => "forbidden",
        ForgeError::RateLimited { .. } => "rate_limited",
        ForgeError::NotFound => "not_found",
        ForgeError::Validation { .. } | ForgeError::Rejected(_) => "refused",
        ForgeError::Http(_) => "http",
        ForgeError::Decode(_) => "decode",
    }
}

/// What listing needs beyond what the error says already.
fn hint(e: &ForgeError, host: &str) -> String {
    let meanwhile = "until a listing succeeds, the worker reports this host's static list and the repositories the forge listed last";
    match e {
        ForgeError::Unauthorized | ForgeError::Forbidden(_) | ForgeError::NotFound => format!(
            " (listing needs the token of repositories.hosts {host} to read the metadata of its repositories; {meanwhile})"
        ),
        _ => format!(" ({meanwhile})"),
    }
}
