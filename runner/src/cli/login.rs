//! `runner login`: sign the worker in to its control plane (OAuth 2.0
//! authorization code with PKCE); the tokens are stored encrypted.

use super::load_config;
use crate::auth::login::{login, Flow};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `runner login`.
#[derive(Args)]
pub(super) struct LoginArgs {
    /// Worker config file: `[worker] control_plane` and `[auth]` (the
    /// token key, the client).
    #[arg(long)]
    config: PathBuf,
    /// Headless host: the control plane shows the code after you allow
    /// access, and you paste it here (instead of a loopback redirect).
    #[arg(long, alias = "no-browser")]
    paste: bool,
    /// How long to wait for the browser's redirect.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
}

pub(super) fn run(a: LoginArgs) -> anyhow::Result<u8> {
    let config = load_config(Some(&a.config))?;
    let flow = if a.paste { Flow::Paste } else { Flow::Loopback };
    let stdout = std::io::stdout();
    let stdin = std::io::stdin();
    let signed_in = crate::wiring::token_file(&config).and_then(|file| {
        login(
            &config.auth,
            config.worker.control_plane.as_deref(),
            file,
            flow,
            Duration::from_secs(a.timeout_seconds),
            &mut stdout.lock(),
            &mut stdin.lock(),
        )
    });
    match signed_in {
        Ok(msg) => {
            eprintln!("{msg}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("runner login: {e}");
            Ok(2)
        }
    }
}
