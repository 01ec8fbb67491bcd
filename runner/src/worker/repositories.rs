//! Telling the control plane which repositories this worker can work on:
//! at start and every `repositories.report_interval_seconds` (10 minutes by
//! default), the static lists and the forges'
//! listings of `[repositories]` (`repository::listing`), replacing the
//! worker's last report (`PUT /v1/workers/{id}/repositories`).
//!
//! Best effort, on its own thread: a failure is logged — a warning once per
//! kind of failure, until that kind goes away — and never stops the worker.
//! A forge that fails to list keeps its last good listing in the report, so
//! one bad minute does not empty the list people pick repositories from.

use super::{identity, WorkerShared};
use crate::activity::NullSink;
use crate::platform::PlatformError;
use crate::policy::{PolicyGate, SessionContext, Trusted};
use crate::repository::listing::{list_hosts, ForgeListing, MAX_PER_HOST};
use protocol::ids::WorkerId;
use protocol::repo_list::{ListedRepository, RepositoryList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reports now and every `repositories.report_interval_seconds` (forges'
/// lists change) until `stop` is set. The
/// thread is not joined: a forge call may take up to the repositories
/// timeout, and stopping the worker never waits for it.
pub(super) fn spawn(shared: Arc<WorkerShared>, worker: WorkerId, stop: Arc<AtomicBool>) {
    let started = std::thread::Builder::new()
        .name("repositories".into())
        .spawn(move || {
            let mut r = Reporter::default();
            let every = Duration::from_secs(shared.config.repositories.report_interval_seconds);
            while !stop.load(Ordering::SeqCst) {
                r.report(&shared, &worker);
                let next = Instant::now() + every;
                while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
    if let Err(e) = started {
        tracing::warn!("cannot start the repository reporter ({e}); repositories are not reported");
    }
}

/// What one report round remembers for the next.
#[derive(Default)]
struct Reporter {
    /// Each forge's last good listing, by host.
    last_good: BTreeMap<String, Vec<ListedRepository>>,
    /// Failure kinds warned about and not yet gone.
    warned: BTreeSet<String>,
}

impl Reporter {
    fn report(&mut self, shared: &WorkerShared, worker: &WorkerId) {
        let mut seen = BTreeSet::new();
        let list = self.list(shared, &mut seen);
        let n = list.repositories.len();
        match self.put(shared, worker, &list) {
            Ok(stored) => {
                tracing::info!("reported {n} repositories to the control plane ({stored} stored)")
            }
            Err((kind, message)) => self.warn(&mut seen, kind, message),
        }
        // Kinds that did not happen this round are gone: a return warns again.
        let gone: Vec<String> = self.warned.difference(&seen).cloned().collect();
        for k in gone {
            tracing::info!("repositories: {k} works again");
            self.warned.remove(&k);
        }
    }

    fn warn(&mut self, seen: &mut BTreeSet<String>, kind: String, message: String) {
        if self.warned.insert(kind.clone()) {
            tracing::warn!("{message}");
        } else {
            tracing::debug!("{message}");
        }
        seen.insert(kind);
    }

    /// Every host's repositories, once each by URL, sorted.
    fn list(&mut self, shared: &WorkerShared, seen: &mut BTreeSet<String>) -> RepositoryList {
        let settings = &shared.config.repositories;
        let hosts = match worker_context(shared) {
            Ok(ctx) => {
                let gate = PolicyGate::builder(shared.engine.clone(), Arc::new(NullSink))
                    .degraded(crate::wiring::degraded_note(&shared.config))
                    .audit(shared.audit.clone());
                list_hosts(&gate, &ctx, settings)
            }
            Err(e) => {
                self.warn(
                    seen,
                    "context".into(),
                    format!("repositories: no forge is listed: {e}"),
                );
                Vec::new()
            }
        };
        let mut all = BTreeSet::new();
        for h in hosts {
            all.extend(h.listed);
            match h.forge {
                ForgeListing::NotAsked => {}
                ForgeListing::Listed {
                    repositories,
                    truncated,
                } => {
                    if truncated {
                        self.warn(
                            seen,
                            format!("{}: truncated", h.host),
                            format!("the token of repositories.hosts {} sees more than {MAX_PER_HOST} repositories; only the first {MAX_PER_HOST} are reported (add the others to its `list`)", h.host),
                        );
                    }
                    self.last_good.insert(h.host.clone(), repositories);
                }
                ForgeListing::Failed(p) => {
                    self.warn(seen, format!("{}: {}", h.host, p.kind), p.message);
                }
            }
            if let Some(good) = self.last_good.get(&h.host) {
                all.extend(good.iter().cloned());
            }
        }
        // A repository on two listings is one entry (by URL).
        let mut by_url = BTreeMap::new();
        for r in all {
            by_url.entry(r.repository.clone()).or_insert(r);
        }
        RepositoryList {
            repositories: by_url.into_values().collect(),
        }
    }

    /// The report; on `worker_not_owned` (a worker registered before
    /// workers had owners) it registers again — which finds the same
    /// worker and records who signed it in — and reports once more.
    fn put(
        &self,
        shared: &WorkerShared,
        worker: &WorkerId,
        list: &RepositoryList,
    ) -> Result<u64, (String, String)> {
        let p = &shared.platform;
        let failed = |e: &PlatformError| {
            let kind = match e {
                PlatformError::Api { status, kind, .. } => format!("report: {status} {kind}"),
                PlatformError::Transport(_) => "report: transport".into(),
                other => format!(
                    "report: {}",
                    other.to_string().split(':').next().unwrap_or("")
                ),
            };
            (kind, format!("reporting this worker's repositories failed: {e}; it is tried again in {} seconds", shared.config.repositories.report_interval_seconds))
        };
        match p.report_repositories(worker, list) {
            Err(PlatformError::Api {
                status: 403, kind, ..
            }) if kind == "worker_not_owned" => {
                let reg = identity::registration(&shared.config, &shared.registry)
                    .map_err(|e| ("report: register".to_string(), e.to_string()))?;
                let again = p.register(&reg).map_err(|e| failed(&e))?;
                if again.worker_id != *worker {
                    return Err((
                        "report: register".into(),
                        format!("registering again to report repositories found worker {} instead of {worker} (the runtime changed); delete {} and restart the worker to register anew", again.worker_id, identity::id_file(&shared.config).display()),
                    ));
                }
                p.report_repositories(worker, list).map_err(|e| failed(&e))
            }
            r => r.map_err(|e| failed(&e)),
        }
    }
}

/// The context the runner's own connections are decided in outside a
/// session: the worker's trusted view, no agent, no session, no work.
fn worker_context(shared: &WorkerShared) -> Result<SessionContext, String> {
    let root = crate::policy::paths::canonical_root(&shared.workspaces)?;
    let trusted = Trusted {
        agent: serde_json::json!({}),
        worker: shared.config.trusted_view(),
        platform: serde_json::json!({}),
    };
    Ok(SessionContext::new(root, trusted, Default::default()))
}
