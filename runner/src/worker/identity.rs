//! The worker's identity: one per workspace + agent profile + runtime,
//! saved in the state directory, and registered again at every start so
//! the control plane's copy of the registration (tools, models) follows the
//! config. A saved id the control plane rejects stops the worker
//! (reconfiguration is needed); it is never silently replaced.

use super::WorkerError;
use crate::config::Config;
use crate::platform::{Platform, PlatformError};
use crate::tools::Registry;
use protocol::ids::WorkerId;
use protocol::platform::RegisterWorker;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize)]
struct Saved {
    control_plane: String,
    workspace: String,
    agent_profile: String,
    worker_id: String,
}

/// Where the worker id is saved.
pub(super) fn id_file(config: &Config) -> PathBuf {
    config.state_dir().join("worker.json")
}

/// The worker id: the saved one (checked) or a new registration (saved).
pub(super) fn worker_id(
    platform: &Platform,
    config: &Config,
    registry: &Registry,
) -> Result<WorkerId, WorkerError> {
    let w = &config.worker;
    let workspace = w.workspace.clone().ok_or_else(|| {
        WorkerError::Config(
            "worker.workspace is not set; name the workspace whose sessions this worker runs"
                .into(),
        )
    })?;
    let agent_profile = w.agent_profile.clone().ok_or_else(|| WorkerError::Config("worker.agent_profile is not set; name the agent profile whose sessions this worker runs".into()))?;
    let file = id_file(config);
    let saved: Option<Saved> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(s) = saved.filter(|s| {
        s.control_plane == platform.base()
            && s.workspace == workspace
            && s.agent_profile == agent_profile
    }) {
        let id = WorkerId::from(s.worker_id);
        match platform.worker(&id) {
            Ok(_) => {}
            Err(PlatformError::UnknownWorker(message)) => {
                return Err(WorkerError::Rejected {
                    id: id.to_string(),
                    message,
                    file,
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Registered again at every start (the control plane finds the same
    // worker by workspace + profile + runtime), so what it knows of this
    // worker — tools, models, concurrency — follows the config.
    let reg = registration(config, registry)?;
    let worker = platform.register(&reg)?;
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let saved = Saved {
        control_plane: platform.base().to_string(),
        workspace,
        agent_profile,
        worker_id: worker.worker_id.to_string(),
    };
    std::fs::write(&file, serde_json::to_vec_pretty(&saved).unwrap_or_default()).map_err(|e| {
        WorkerError::Config(format!(
            "cannot save the worker id to {}: {e}",
            file.display()
        ))
    })?;
    Ok(worker.worker_id)
}

/// What this worker registers with (also to register again mid-run, which
/// finds the same worker and records who signed it in).
pub(super) fn registration(
    config: &Config,
    registry: &Registry,
) -> Result<RegisterWorker, WorkerError> {
    let w = &config.worker;
    let missing = |key: &str| {
        WorkerError::Config(format!(
            "worker.{key} is not set; name it in the worker's config"
        ))
    };
    Ok(RegisterWorker {
        workspace: w.workspace.clone().ok_or_else(|| missing("workspace"))?,
        agent_profile: w
            .agent_profile
            .clone()
            .ok_or_else(|| missing("agent_profile"))?,
        runtime: runtime(config),
        execution_mode: "cloud".into(),
        display_name: w.display_name.clone(),
        capabilities: registry.names(),
        concurrency: w.concurrency,
        policy_entries: config
            .policy
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
        custom_instructions: w.custom_instructions.clone(),
        models: served_models(config),
    })
}

/// Every model id the configured providers serve, in config order, once.
fn served_models(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in config.providers.iter().flat_map(|p| p.models.iter()) {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// The runtime this worker registers with: the runner's version and
/// platform, the host, and its state directory (one worker identity per
/// state directory, so two runners on one host never share claims).
fn runtime(config: &Config) -> String {
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let state = sha2::Sha256::digest(config.state_dir().to_string_lossy().as_bytes());
    format!(
        "runner/{} {}-{} host={} state={}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        host.trim(),
        &hex::encode(state)[..12]
    )
}
