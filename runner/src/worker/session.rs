//! One claimed session, run to exactly one terminal outcome.

use super::{Shutdown, WorkerShared};
use crate::activity::ActivitySink;
use crate::cancel::Cancel;
use crate::platform::{Platform, PlatformError};
use crate::policy::{PolicyGate, SessionContext, Trusted};
use crate::tools;
use protocol::activity::Activity;
use protocol::ids::{ClaimId, SessionId};
use protocol::platform::{Claim, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a session ended, from the worker's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// Completed.
    Complete,
    /// Failed (a step failed or was denied, or the worker hit an error).
    Failed(String),
    /// Released (shutdown).
    Released,
    /// The claim was lost; nothing more was sent under it.
    ClaimLost(String),
}

impl SessionEnd {
    /// The outcome label of the `runner_sessions_total` metric.
    pub(crate) fn metric(&self) -> &'static str {
        match self {
            SessionEnd::Complete => "complete",
            SessionEnd::Failed(_) => "failed",
            SessionEnd::Released => "released",
            SessionEnd::ClaimLost(_) => "claim_lost",
        }
    }
}

/// A claim's loss, shared by everything that can learn of it — a refused
/// call under the claim, the lease keeper, the session's event watcher,
/// the worker loop's check of its held claims — so that whichever learns
/// first stops the work (the session's [`Cancel`] kills its sandboxes) and
/// nothing more is sent under the claim.
#[derive(Clone)]
pub(super) struct ClaimLoss {
    session: SessionId,
    lost: Arc<AtomicBool>,
    why: Arc<std::sync::Mutex<Option<String>>>,
    cancel: Cancel,
}

impl ClaimLoss {
    /// The loss of `session`'s claim, which cancels `cancel`.
    pub(super) fn new(session: SessionId, cancel: Cancel) -> ClaimLoss {
        ClaimLoss {
            session,
            lost: Arc::new(AtomicBool::new(false)),
            why: Arc::new(std::sync::Mutex::new(None)),
            cancel,
        }
    }

    /// The claim is lost: stop the work. Logged once, whoever calls first.
    pub(super) fn lose(&self, why: &str) {
        let first = {
            let mut w = self.why.lock().unwrap_or_else(|e| e.into_inner());
            w.is_none().then(|| *w = Some(why.to_string())).is_some()
        };
        self.lost.store(true, Ordering::SeqCst);
        self.cancel.cancel();
        if first {
            tracing::warn!("claim on {} lost ({why}); stopping its work", self.session);
        }
    }

    /// Whether the claim is lost.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The work's cancellation flag (also set on shutdown, which is no
    /// loss).
    pub(super) fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// The end of a session whose claim is lost, saying why.
    fn end(&self) -> SessionEnd {
        SessionEnd::ClaimLost(
            self.why
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "the control plane refused the claim".into()),
        )
    }
}

/// Posts activities under the claim; a refusal means the claim is lost.
pub(super) struct ClaimSink {
    platform: Platform,
    session: SessionId,
    claim: ClaimId,
    loss: ClaimLoss,
}

impl ClaimSink {
    pub(super) fn send(&self, a: &Activity) {
        if self.loss.is_lost() {
            return;
        }
        for attempt in 0..3 {
            match self.platform.activity(&self.session, &self.claim, a) {
                Ok(()) => return,
                Err(PlatformError::ClaimLost(m)) => {
                    self.lose(&m);
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "activity for {} failed (attempt {}): {e}",
                        self.session,
                        attempt + 1
                    );
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
            }
        }
    }

    /// Reports the session's external URL (a pull request) under the
    /// claim, retrying a failed transport, then its activity.
    pub(super) fn external_url(&self, url: &str) {
        for attempt in 0..=3 {
            match self.platform.external_url(&self.session, &self.claim, url) {
                Ok(()) => {
                    self.send(&Activity::ExternalUrlUpdated { url: url.into() });
                    return;
                }
                Err(PlatformError::ClaimLost(m)) => return self.lose(&m),
                Err(PlatformError::Transport(e)) if attempt < 3 => {
                    tracing::warn!(
                        "control plane call for {} failed: {e}; retrying",
                        self.session
                    );
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                Err(e) => {
                    return tracing::warn!("the external URL of {} was refused: {e}", self.session)
                }
            }
        }
    }

    pub(super) fn lose(&self, why: &str) {
        self.loss.lose(why);
    }
}

impl ActivitySink for ClaimSink {
    fn emit(&self, activity: &Activity) {
        self.send(activity);
    }
}

/// Runs a claimed session to its end. Never panics outward: a panic in the
/// work fails the session (if the claim still holds). While it runs, a
/// watcher follows the session's event stream, so a person's stop reaches
/// the work within moments ([`super::watch`]).
pub(super) fn run_session(
    shared: &WorkerShared,
    claim: Claim,
    loss: &ClaimLoss,
    shutdown: &Shutdown,
) -> SessionEnd {
    let session = claim.session.id.clone();
    let cancel = loss.cancel();
    let sink = Arc::new(ClaimSink {
        platform: shared.platform.clone(),
        session: session.clone(),
        claim: claim.claim_id.clone(),
        loss: loss.clone(),
    });
    let watcher = super::watch::Watcher::start(&shared.platform, &claim, loss.clone());
    let stop_lease = Arc::new(AtomicBool::new(false));
    let keeper = lease_keeper(shared, &claim, sink.clone(), stop_lease.clone());
    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work(shared, &claim, sink.clone(), cancel)
    }));
    // From here the session ends by the worker's own report: what the
    // stream says next (its own `complete`, …) is no news.
    watcher.finish();
    stop_lease.store(true, Ordering::SeqCst);
    let _ = keeper.join();
    if loss.is_lost() {
        return loss.end();
    }
    let (outcome, message, end) = match worked {
        _ if cancel.is_cancelled() && shutdown.is_draining() => (
            Outcome::Release,
            "the worker is shutting down; released for another worker".to_string(),
            SessionEnd::Released,
        ),
        Ok(Ok(summary)) => {
            sink.send(&Activity::Completed {
                summary: summary.clone(),
            });
            (Outcome::Complete, summary, SessionEnd::Complete)
        }
        Ok(Err(error)) => {
            sink.send(&Activity::Failed {
                error: error.clone(),
            });
            (Outcome::Fail, error.clone(), SessionEnd::Failed(error))
        }
        Err(_) => {
            let error = "the worker hit an internal error running this session".to_string();
            sink.send(&Activity::Failed {
                error: error.clone(),
            });
            (Outcome::Fail, error.clone(), SessionEnd::Failed(error))
        }
    };
    if loss.is_lost() {
        return loss.end();
    }
    for attempt in 0..5 {
        match shared
            .platform
            .finish(&session, &claim.claim_id, outcome, &message)
        {
            Ok(_) => return end,
            // Stopped or deleted meanwhile: nothing more goes under it.
            Err(PlatformError::ClaimLost(m)) => {
                loss.lose(&m);
                return loss.end();
            }
            Err(e) => {
                tracing::warn!(
                    "{} of {session} failed (attempt {}): {e}",
                    outcome.as_str(),
                    attempt + 1
                );
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
    }
    SessionEnd::Failed(format!(
        "could not {} the session; its lease will expire",
        outcome.as_str()
    ))
}

/// Extends the lease every third of it until stopped; a refusal loses the
/// claim (and cancels the work).
fn lease_keeper(
    shared: &WorkerShared,
    claim: &Claim,
    sink: Arc<ClaimSink>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let platform = shared.platform.clone();
    let lease = shared.config.worker.lease_seconds;
    let every = Duration::from_millis(u64::from(lease) * 1000 / 3);
    let (session, claim_id) = (claim.session.id.clone(), claim.claim_id.clone());
    let span = tracing::Span::current();
    std::thread::spawn(move || {
        let _in_session = span.enter();
        let mut last = std::time::Instant::now();
        // A lost claim is not extended again (the refusal is known).
        while !stop.load(Ordering::SeqCst) && !sink.loss.is_lost() {
            if last.elapsed() >= every {
                match platform.extend(&session, &claim_id, lease) {
                    Ok(_) => {}
                    Err(PlatformError::ClaimLost(m)) => {
                        sink.lose(&m);
                        return;
                    }
                    Err(e) => tracing::warn!("extending the lease of {session} failed: {e}"),
                }
                last = std::time::Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// The session's workspace directory, `<workspaces>/<session id>`, created
/// if missing. The id comes from the control plane: it must be one plain
/// path component, and what is there must be a real directory (never a
/// symlink), so a session can never be given a directory elsewhere.
fn session_workspace(workspaces: &std::path::Path, id: &str) -> Result<std::path::PathBuf, String> {
    let plain = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        return Err(format!(
            "session id {id:?} cannot name a workspace directory (letters, digits, `_` and `-` only)"
        ));
    }
    let workspace = workspaces.join(id);
    match std::fs::create_dir(&workspace) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "cannot create the workspace {}: {e}",
                workspace.display()
            ))
        }
    }
    let meta = std::fs::symlink_metadata(&workspace)
        .map_err(|e| format!("cannot inspect the workspace {}: {e}", workspace.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "the workspace {} is not a directory (a symlink or a file is there); remove it",
            workspace.display()
        ));
    }
    Ok(workspace)
}

/// The session's work. Ok(summary) or Err(why it failed).
fn work(
    shared: &WorkerShared,
    claim: &Claim,
    sink: Arc<ClaimSink>,
    cancel: &Cancel,
) -> Result<String, String> {
    let s = &claim.session;
    // A model session whose model this runner does not serve fails before
    // anything is created.
    let model = if s.agent.model == "script" {
        None
    } else {
        Some(shared.providers.get(&s.agent.model)?)
    };
    let workspace = session_workspace(&shared.workspaces, &s.id)?;
    let workspace = crate::policy::paths::canonical_root(&workspace)?;
    let trusted = Trusted {
        agent: serde_json::to_value(&s.agent).unwrap_or_default(),
        worker: shared.config.trusted_view(),
        platform: serde_json::json!({}),
    };
    let mut extras = super::extras::prepare(shared, claim, &sink, &workspace)?;
    let ctx = SessionContext::new(workspace, trusted, s.source.clone())
        .with_session(
            Some(s.id.to_string()),
            Some(claim.claim_id.to_string()),
            s.attempt,
        )
        .with_roots(extras.roots.clone());
    let gate = PolicyGate::builder(shared.engine.clone(), sink.clone())
        .degraded(crate::wiring::degraded_note(&shared.config))
        .metrics(shared.metrics.clone())
        .audit(shared.audit.clone());
    let registry =
        super::extras::session_tools(shared, claim, &sink, &gate, &ctx, &mut extras, cancel);
    let host = model
        .as_ref()
        .map(|_| super::agent_host::ClaimHost::new(shared, claim, sink.clone(), cancel));
    let resumed = match &host {
        Some(h) => Some(h.resume()?),
        None => None,
    };
    // The repository is checked out before the first tool call; a
    // follow-up continues on the session's branch.
    let repo = match &s.repo {
        Some(work) => Some(checkout(
            shared,
            claim,
            &sink,
            &gate,
            &ctx,
            work,
            &ctx.workspace,
            &resumed,
            cancel,
        )?),
        None => None,
    };
    let summary = match (model, host, resumed) {
        (Some(model), Some(host), Some((history, new_turns))) => {
            let agent = crate::agent::Agent {
                registry: &registry,
                gate: &gate,
                ctx: &ctx,
                agent: &s.agent,
                model: model.as_ref(),
                settings: &shared.config.agent,
                worker_instructions: shared.config.worker.custom_instructions.as_deref(),
                session_instructions: &extras.instructions,
                host: &host,
                cancel,
            };
            agent
                .run(history, new_turns)
                .result
                .map_err(|e| e.to_string())?
        }
        _ => scripted(shared, claim, &sink, &gate, &ctx, &registry, cancel)?,
    };
    let summary = match super::extras::finish(shared, claim, &sink, &gate, &ctx, &extras)? {
        Some(more) => format!("{summary}\n\n{more}"),
        None => summary,
    };
    let Some(repo) = repo else {
        return Ok(summary);
    };
    if cancel.is_cancelled() {
        return Err("cancelled".into());
    }
    let progress = |m: &str| {
        sink.send(&Activity::Progress {
            message: m.to_string(),
            step: None,
        })
    };
    let delivered = repo
        .deliver(&crate::repository::Deliver {
            settings: &shared.config.repositories,
            agent_name: &s.agent.name,
            summary: &summary,
            title: &s.source.title,
            gate: &gate,
            ctx: &ctx,
            cancel,
            progress: &progress,
        })
        .map_err(|e| format!("{summary}; but delivery failed: {e}"))?;
    if let Some(url) = &delivered.pr_url {
        sink.external_url(url);
    }
    Ok(format!("{summary}\n\n{}", delivered.describe()))
}

/// Checks the session's repository out into its workspace (or resumes an
/// earlier run's checkout), with progress activities.
#[allow(clippy::too_many_arguments)]
fn checkout(
    shared: &WorkerShared,
    claim: &Claim,
    sink: &Arc<ClaimSink>,
    gate: &PolicyGate,
    ctx: &SessionContext,
    work: &protocol::repository::RepoWork,
    workspace: &std::path::Path,
    resumed: &Option<(
        Vec<protocol::conversation::Message>,
        Vec<protocol::conversation::Message>,
    )>,
    cancel: &Cancel,
) -> Result<crate::repository::SessionRepo, String> {
    let git_root = shared.config.state_dir().join("repos");
    private_dir(&git_root)?;
    let git_dir = git_root.join(claim.session.id.as_str());
    let progress = |m: &str| {
        sink.send(&Activity::Progress {
            message: m.to_string(),
            step: None,
        })
    };
    crate::repository::prepare(&crate::repository::Prepare {
        settings: &shared.config.repositories,
        work,
        git_dir: &git_dir,
        workspace,
        continuing: resumed
            .as_ref()
            .is_some_and(|(history, _)| !history.is_empty()),
        gate,
        ctx,
        cancel,
        progress: &progress,
    })
    .map_err(|e| format!("checking out the repository failed: {e}"))
}

/// Creates the runner-private directory of session clones (mode 0700,
/// never a symlink): the sandbox's uid can never read it.
fn private_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a directory of mode 0700 owned by the runner (it holds session clones); fix it with chmod 700",
            dir.display()
        ));
    }
    Ok(())
}

/// A scripted session (`model = "script"`): its steps, in order.
#[allow(clippy::too_many_arguments)]
fn scripted(
    shared: &WorkerShared,
    claim: &Claim,
    sink: &Arc<ClaimSink>,
    gate: &PolicyGate,
    ctx: &SessionContext,
    registry: &crate::tools::Registry,
    cancel: &Cancel,
) -> Result<String, String> {
    let s = &claim.session;
    let steps = s.script.clone().unwrap_or_default();
    let plan: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let what = ["path", "command", "url", "pattern"]
                .iter()
                .find_map(|k| st.input.get(*k).and_then(|v| v.as_str()))
                .unwrap_or("");
            let what: String = what.chars().take(60).collect();
            format!("{}. {} {what}", i + 1, st.tool)
        })
        .collect();
    if let Err(PlatformError::ClaimLost(m)) =
        shared.platform.plan(&s.id, &claim.claim_id, plan.clone())
    {
        sink.lose(&m);
        return Err("claim lost".into());
    }
    sink.send(&Activity::PlanUpdated { steps: plan });
    let mut failed = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let n = i as u32 + 1;
        // Trust rule 3: nothing in the work enables a tool the pinned agent
        // version does not (the policy denies it too; this never even asks).
        let (status, summary) = if !s.agent.enabled_tools.iter().any(|t| t == &step.tool) {
            (
                "denied",
                format!("{} is not enabled by the pinned agent version", step.tool),
            )
        } else {
            let out = tools::call_cancellable(
                registry,
                gate,
                ctx,
                &step.tool,
                &step.input,
                false,
                cancel,
            );
            (out.status.as_str(), brief(&out.output))
        };
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        if status != "ok" {
            failed.push(format!("step {n} ({}) {status}", step.tool));
        }
        sink.send(&Activity::Progress {
            message: format!("step {n}/{} {} {status}: {summary}", steps.len(), step.tool),
            step: Some(n),
        });
    }
    if failed.is_empty() {
        Ok(format!("all {} steps succeeded", steps.len()))
    } else {
        Err(format!(
            "{} of {} steps did not succeed: {}",
            failed.len(),
            steps.len(),
            failed.join(", ")
        ))
    }
}

/// A one-line summary of a JSON value (at most 160 characters).
fn brief(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(159).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod workspace_tests {
    use super::session_workspace;

    #[test]
    fn a_session_id_names_one_directory_and_never_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let ws = session_workspace(d.path(), "ses_abc123").unwrap();
        assert!(ws.is_dir());
        assert_eq!(session_workspace(d.path(), "ses_abc123").unwrap(), ws);
        for bad in ["", "..", "a/b", "../x", "ses 1", "/etc"] {
            assert!(session_workspace(d.path(), bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink("/etc", d.path().join("ses_link")).unwrap();
        let e = session_workspace(d.path(), "ses_link").unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }
}
