//! `runner worker`: the worker as a service.

use super::load_config;
use crate::worker::{self, Shutdown, WorkerShared};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `runner worker`.
#[derive(Args)]
pub(super) struct WorkerArgs {
    /// Worker config file (TOML); `[worker]` names the control plane,
    /// workspace and agent profile.
    #[arg(long)]
    config: PathBuf,
}

pub(super) fn run(a: WorkerArgs) -> anyhow::Result<u8> {
    let config = load_config(Some(&a.config))?;
    let exe = std::env::current_exe().context("cannot locate the runner binary")?;
    let shared = Arc::new(WorkerShared::from_config(config, &exe, None)?);
    // Loading the policy (parse, compile, differential check) leaves freed
    // heap behind; give it back so the idle service stays small.
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    if let Some(r) = crate::webhook::receiver::start(
        &shared.config.webhook,
        &shared.config.state_dir(),
        shared.wake.clone(),
    )
    .map_err(anyhow::Error::msg)?
    {
        super::logging::notice(&format!("webhook receiver on {}://{}", r.scheme, r.addr));
    }
    if let Some(m) = crate::metrics::start(
        &shared.config.metrics,
        &shared.config.state_dir(),
        shared.metrics.clone(),
    )
    .map_err(anyhow::Error::msg)?
    {
        super::logging::notice(&format!("metrics on http://{}/metrics", m.addr));
    }
    let shutdown = Shutdown::default();
    shutdown
        .on_signals()
        .context("cannot install the signal handlers")?;
    match worker::run(shared, shutdown) {
        Ok(()) => Ok(0),
        Err(e @ worker::WorkerError::SignedOut(_)) => {
            super::logging::notice(&e.to_string());
            Ok(3)
        }
        Err(e) => Err(e.into()),
    }
}
