//! The worker loop: register (or reuse) the worker, poll for claimable
//! sessions with jitter and backoff, claim, run each session on its own
//! thread, keep its lease alive, heartbeat, and end every claimed session
//! in exactly one of complete / fail / release — on success, tool errors,
//! panics and shutdown alike. Beside that, it reports which repositories
//! it can work on ([`repositories`]).
//!
//! Shutdown: the first SIGTERM/SIGINT stops claiming and lets in-flight
//! sessions finish within the grace period (still heartbeating and
//! extending), then cancels and releases them; a second signal releases at
//! once. A claim the control plane refuses (lease lost) cancels the
//! session's work immediately — running sandboxes are killed — and nothing
//! more is sent under it.

mod agent_host;
mod extras;
mod identity;
mod repositories;
mod session;
mod watch;

use session::run_session;
use session::ClaimLoss;

use crate::cancel::Cancel;
use crate::config::Config;
use crate::platform::{Platform, PlatformError};
use crate::policy::audit::AuditLog;
use crate::policy::PolicyEngine;
use crate::tools::Registry;
use protocol::platform::Heartbeat;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the worker could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// The config lacks something the worker needs.
    #[error("{0}")]
    Config(String),
    /// The saved worker id was rejected: a person must reconfigure.
    #[error("the control plane rejected the saved worker id {id} ({message}); reconfiguration is needed: check worker.workspace and worker.agent_profile, then delete {file} to register anew")]
    Rejected {
        id: String,
        /// The control plane's message.
        message: String,
        /// The saved-id file.
        file: PathBuf,
    },
    /// The control plane failed in a way the worker cannot go on from.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// The sign-in was refused for good (revoked, reused, expired): the
    /// worker released its sessions and stopped.
    #[error("{0}; the worker released its sessions and stopped: run `runner login` with this config, then start the worker again")]
    SignedOut(String),
}

/// Shared stop controls: set by signals (or by `runner up`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    draining: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    since: Arc<Mutex<Option<Instant>>>,
}

impl Shutdown {
    /// First request: claim nothing more, finish within the grace period.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
    }
    /// Second request: release everything now.
    pub(crate) fn abort(&self) {
        self.drain();
        self.abort.store(true, Ordering::SeqCst);
    }
    /// Whether draining.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
    fn aborting(&self, grace: Duration) -> bool {
        self.abort.load(Ordering::SeqCst)
            || self
                .since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|t| t.elapsed() >= grace)
    }

    /// Installs SIGTERM/SIGINT handling: first signal drains, second aborts.
    pub(crate) fn on_signals(&self) -> std::io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if me.is_draining() {
                        tracing::warn!("second signal: releasing every session now");
                        me.abort();
                    } else {
                        tracing::warn!(
                            "signal: claiming nothing more; finishing in-flight sessions"
                        );
                        me.drain();
                    }
                }
            })?;
        Ok(())
    }
}

/// Everything a session thread needs, shared.
pub(crate) struct WorkerShared {
    pub platform: Platform,
    /// Policy in force.
    pub engine: Arc<PolicyEngine>,
    pub audit: Arc<AuditLog>,
    /// Tools.
    pub registry: Registry,
    /// Config.
    pub config: Config,
    /// Where session workspaces go.
    pub workspaces: PathBuf,
    /// Model clients by model id (`[[providers]]`).
    pub providers: crate::model::Providers,
    /// Rung by the webhook receiver: poll now.
    pub wake: Arc<crate::webhook::Wake>,
    /// The worker's counts (served on `[metrics] listen` when set).
    pub metrics: Arc<crate::metrics::Metrics>,
}

struct Running {
    claim: protocol::ids::ClaimId,
    loss: ClaimLoss,
    done: Arc<AtomicBool>,
}

/// The running sessions whose claims the control plane no longer lists
/// as held (stopped, deleted, expired): their work must stop.
fn unheld<'a>(
    running: &'a HashMap<String, Running>,
    held: &[protocol::platform::HeldClaim],
) -> Vec<&'a Running> {
    running
        .values()
        .filter(|r| !r.done.load(Ordering::SeqCst))
        .filter(|r| !held.iter().any(|h| h.claim_id == r.claim))
        .collect()
}

/// Runs the worker until shutdown completes.
pub(crate) fn run(shared: Arc<WorkerShared>, shutdown: Shutdown) -> Result<(), WorkerError> {
    let cfg = shared.config.worker.clone();
    // An unreachable control plane at start-up is waited out (with backoff),
    // not fatal: a service outlives its control plane's restarts.
    let mut backoff = Duration::from_millis(200);
    let worker_id = loop {
        match identity::worker_id(&shared.platform, &shared.config, &shared.registry) {
            Ok(id) => break id,
            Err(WorkerError::Platform(PlatformError::AuthLost(m)))
                if shared.platform.signed_out().is_some() =>
            {
                return Err(WorkerError::SignedOut(m))
            }
            Err(WorkerError::Platform(PlatformError::AuthLost(m))) if !shutdown.is_draining() => {
                tracing::warn!(
                    "the control plane refused the sign-in ({m}); retrying in {backoff:?}"
                );
                sleep_jittered(backoff, &shutdown);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(WorkerError::Platform(PlatformError::Transport(e))) if !shutdown.is_draining() => {
                tracing::warn!("cannot reach the control plane ({e}); retrying in {backoff:?}");
                sleep_jittered(backoff, &shutdown);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    };
    if shutdown.is_draining() {
        return Ok(());
    }
    tracing::info!("worker {worker_id} serving {}", shared.platform.base());
    // Claims a previous run of this worker still holds: give them back.
    for held in shared.platform.held_claims(&worker_id)? {
        let _ = shared.platform.finish(
            &held.session_id,
            &held.claim_id,
            protocol::platform::Outcome::Release,
            "the worker restarted; released for a fresh attempt",
        );
        tracing::info!("released {} left over from a previous run", held.session_id);
    }
    let active = Arc::new(AtomicUsize::new(0));
    let stop_heartbeat = Arc::new(AtomicBool::new(false));
    // Which repositories this worker can work on: now, then periodically.
    repositories::spawn(shared.clone(), worker_id.clone(), stop_heartbeat.clone());
    let heartbeat = {
        let (p, id, active, stop, sd) = (
            shared.platform.clone(),
            worker_id.clone(),
            active.clone(),
            stop_heartbeat.clone(),
            shutdown.clone(),
        );
        let every = Duration::from_millis(cfg.heartbeat_interval_ms);
        std::thread::spawn(move || {
            let mut last: Option<Instant> = None;
            while !stop.load(Ordering::SeqCst) {
                if last.is_none_or(|t| t.elapsed() >= every) {
                    let hb = Heartbeat {
                        status: if sd.is_draining() { "draining" } else { "ok" }.into(),
                        active_sessions: active.load(Ordering::SeqCst) as u32,
                    };
                    if let Err(e) = p.heartbeat(&id, &hb) {
                        tracing::warn!("heartbeat failed: {e}");
                    }
                    last = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut backoff = Duration::ZERO;
    let grace = Duration::from_secs(cfg.grace_seconds);
    let mut signed_out: Option<String> = None;
    // The fallback for a stop no event stream delivered (each session's
    // watcher is the fast path).
    let claims_check = Duration::from_secs(cfg.claims_check_seconds);
    let mut claims_checked = Instant::now();
    loop {
        // A sign-in refused for good: claim nothing more and release every
        // session now (the access token still works until it expires).
        if signed_out.is_none() {
            if let Some(why) = shared.platform.signed_out() {
                tracing::error!("{why}: releasing every session and stopping");
                signed_out = Some(why);
                shutdown.abort();
            }
        }
        running.retain(|_, r| !r.done.load(Ordering::SeqCst));
        active.store(running.len(), Ordering::SeqCst);
        if shutdown.is_draining() {
            if shutdown.aborting(grace) {
                for r in running.values() {
                    r.loss.cancel().cancel();
                }
            }
            if running.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if !running.is_empty() && claims_checked.elapsed() >= claims_check {
            claims_checked = Instant::now();
            match shared.platform.held_claims(&worker_id) {
                Ok(held) => {
                    for r in unheld(&running, &held) {
                        r.loss
                            .lose("the control plane no longer lists its claim as held");
                    }
                }
                Err(e) => tracing::debug!("checking the held claims failed: {e}"),
            }
        }
        let free = cfg.concurrency as usize - running.len().min(cfg.concurrency as usize);
        let mut claimed_any = false;
        if free > 0 {
            // A few more than there is room for: some will be taken by
            // other workers first.
            match shared
                .platform
                .claimable(&worker_id, (free as u32 * 2).clamp(4, 100))
            {
                Ok(mut sessions) => {
                    backoff = Duration::ZERO;
                    // Workers that see the same list try it in different
                    // orders, so they rarely race for the same session.
                    shuffle(&mut sessions);
                    for s in sessions {
                        if running.contains_key(s.id.as_str()) {
                            continue;
                        }
                        if running.len() >= cfg.concurrency as usize || shutdown.is_draining() {
                            break;
                        }
                        match shared.platform.claim(&worker_id, &s.id, cfg.lease_seconds) {
                            Ok(claim) => {
                                shared.metrics.claim("claimed");
                                claimed_any = true;
                                let loss =
                                    ClaimLoss::new(claim.session.id.clone(), Cancel::default());
                                let done = Arc::new(AtomicBool::new(false));
                                let id = claim.session.id.to_string();
                                let claim_id = claim.claim_id.clone();
                                // Every line logged for this session's work
                                // carries its ids (JSON logs: as fields).
                                let span = tracing::info_span!(
                                    "session",
                                    session_id = %id,
                                    claim_id = %claim_id
                                );
                                let (sh, l, d, sd) =
                                    (shared.clone(), loss.clone(), done.clone(), shutdown.clone());
                                std::thread::Builder::new()
                                    .name(format!("session-{id}"))
                                    .spawn(move || {
                                        let _in_session = span.enter();
                                        tracing::info!(
                                            attempt = claim.session.attempt,
                                            "session claimed; running it"
                                        );
                                        let end = run_session(&sh, claim, &l, &sd);
                                        sh.metrics.session_ended(end.metric());
                                        if matches!(end, session::SessionEnd::ClaimLost(_)) {
                                            sh.metrics.claim_lost();
                                        }
                                        tracing::info!("session ended: {end:?}");
                                        d.store(true, Ordering::SeqCst);
                                        sh.wake.nudge();
                                    })
                                    .map_err(|e| {
                                        WorkerError::Config(format!(
                                            "cannot start a session thread: {e}"
                                        ))
                                    })?;
                                running.insert(
                                    id,
                                    Running {
                                        claim: claim_id,
                                        loss,
                                        done,
                                    },
                                );
                            }
                            // Another worker has it: leave it alone.
                            Err(PlatformError::ClaimConflict(_)) => {
                                shared.metrics.claim("conflict");
                            }
                            Err(PlatformError::UnknownWorker(m)) => {
                                return Err(WorkerError::Rejected {
                                    id: worker_id.to_string(),
                                    message: m,
                                    file: identity::id_file(&shared.config),
                                })
                            }
                            Err(e) => {
                                shared.metrics.claim("error");
                                tracing::warn!("claim of {} failed: {e}", s.id);
                            }
                        }
                    }
                }
                Err(PlatformError::UnknownWorker(m)) => {
                    return Err(WorkerError::Rejected {
                        id: worker_id.to_string(),
                        message: m,
                        file: identity::id_file(&shared.config),
                    })
                }
                Err(PlatformError::AuthLost(m)) if shared.platform.signed_out().is_none() => {
                    // A 401 the refresh did not cure but that is not final
                    // (e.g. the control plane is restarting): back off.
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
                    tracing::warn!(
                        "the control plane refused the sign-in ({m}); retrying in {backoff:?}"
                    );
                }
                Err(e) => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
                    tracing::warn!("polling failed ({e}); retrying in {backoff:?}");
                }
            }
        }
        if claimed_any {
            continue; // there may be more right away
        }
        // Poll again after the interval (±20 %), or at once when a webhook
        // rings: webhooks only shorten the wait, polling never stops.
        let base = Duration::from_millis(cfg.poll_interval_ms).max(backoff);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 400) as f64 / 1000.0 + 0.8;
        if shared
            .wake
            .wait(base.mul_f64(jitter), || shutdown.is_draining())
        {
            tracing::debug!("woken by a webhook: polling now");
        }
    }
    stop_heartbeat.store(true, Ordering::SeqCst);
    let _ = heartbeat.join();
    match signed_out {
        Some(why) => Err(WorkerError::SignedOut(why)),
        None => Ok(()),
    }
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (uuid::Uuid::new_v4().as_u128() % (i as u128 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Sleeps about `base` (±20%), waking early when a drain starts.
fn sleep_jittered(base: Duration, shutdown: &Shutdown) {
    let jitter = (uuid::Uuid::new_v4().as_u128() % 400) as f64 / 1000.0 + 0.8;
    let until = Instant::now() + base.mul_f64(jitter);
    while Instant::now() < until && !shutdown.is_draining() {
        std::thread::sleep(
            Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
        );
    }
}

impl WorkerShared {
    /// Wires a worker from its config: policy engine, audit log, tools,
    /// control-plane client, workspaces directory.
    /// `tokens`: the sign-in to use; `None` loads the stored one
    /// (`runner login`), refusing a token file or state directory others
    /// can read.
    pub(crate) fn from_config(
        config: Config,
        exe: &std::path::Path,
        tokens: Option<Arc<dyn crate::auth::TokenSource>>,
    ) -> anyhow::Result<WorkerShared> {
        let url = config.worker.control_plane.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "worker.control_plane is not set; give the control plane's URL in the config"
            )
        })?;
        crate::auth::check_transport(&url).map_err(anyhow::Error::msg)?;
        // Before anything is made: every Bash call would fail in a
        // workspace the sandbox user cannot reach.
        crate::wiring::check_workspaces_reachable(&config).map_err(anyhow::Error::msg)?;
        let tokens = match tokens {
            Some(t) => t,
            None => Arc::new(crate::wiring::token_manager(&config).map_err(anyhow::Error::msg)?),
        };
        let platform = Platform::new(&url)
            .map_err(anyhow::Error::msg)?
            .with_tokens(tokens);
        let workspaces = config.workspaces_dir();
        std::fs::create_dir_all(&workspaces).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the workspaces directory {}: {e}",
                workspaces.display()
            )
        })?;
        // The sandbox's unprivileged user must be able to walk down to each
        // session's workspace.
        let _ = std::fs::set_permissions(
            &workspaces,
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        );
        let engine = Arc::new(PolicyEngine::load(
            crate::policy::EngineSettings::from_config(&config.policy, vec![workspaces.clone()]),
        )?);
        let audit = Arc::new(AuditLog::open(&config.audit_path(), config.audit.fsync)?);
        let registry =
            crate::wiring::tool_registry(&config, exe, &engine).map_err(anyhow::Error::msg)?;
        for p in registry.problems() {
            tracing::warn!("tool not loaded: {p}");
        }
        let providers =
            crate::model::Providers::from_config(&config.providers).map_err(anyhow::Error::msg)?;
        // A tool result must fit in one stored message of the conversation.
        if config.agent.max_tool_output_bytes > 128 * 1024 {
            anyhow::bail!(
                "[agent] max_tool_output_bytes is {}; at most 131072 (the control plane stores a message of up to 256 KiB)",
                config.agent.max_tool_output_bytes
            );
        }
        Ok(WorkerShared {
            metrics: Arc::new(crate::metrics::Metrics::new()),
            providers,
            wake: Arc::new(crate::webhook::Wake::default()),
            platform,
            engine,
            audit,
            registry,
            config,
            workspaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::platform::HeldClaim;

    fn running(session: &str, claim: &str, done: bool) -> (String, Running) {
        (
            session.to_string(),
            Running {
                claim: claim.into(),
                loss: ClaimLoss::new(session.into(), Cancel::default()),
                done: Arc::new(AtomicBool::new(done)),
            },
        )
    }

    #[test]
    fn only_running_sessions_whose_claims_are_not_held_are_stopped() {
        let map: HashMap<String, Running> = [
            running("ses_1", "clm_1", false),
            running("ses_2", "clm_2", false),
            running("ses_3", "clm_3", true),
        ]
        .into_iter()
        .collect();
        let held = vec![HeldClaim {
            claim_id: "clm_1".into(),
            session_id: "ses_1".into(),
            lease_expires_at: "2030-01-01T00:00:00Z".into(),
        }];
        let lost: Vec<String> = unheld(&map, &held)
            .iter()
            .map(|r| r.claim.to_string())
            .collect();
        // ses_1 is held; ses_3 already ended by itself.
        assert_eq!(lost, vec!["clm_2".to_string()]);
        assert_eq!(unheld(&map, &[]).len(), 2);
    }
}
