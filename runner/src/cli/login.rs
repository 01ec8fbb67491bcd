//! `runner login`: sign the worker in to its control plane (OAuth 2.0:
//! the authorization code with PKCE through a loopback redirect where a
//! browser runs on this host, the device authorization grant elsewhere);
//! the tokens are stored encrypted.

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
    /// Sign in with the device authorization grant (RFC 8628): open the
    /// printed page on any device and enter the code. The default on a
    /// host without a local browser (no desktop session, or over SSH).
    #[arg(long, alias = "no-browser", conflicts_with = "browser")]
    device: bool,
    /// Sign in through a browser on this host and a loopback redirect.
    /// The default in a desktop session.
    #[arg(long)]
    browser: bool,
    /// Gone: the paste-the-code redirect was not a standard. Use --device.
    #[arg(long, hide = true)]
    paste: bool,
    /// How long to wait for the browser's redirect or the device's
    /// approval.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
}

pub(super) fn run(a: LoginArgs) -> anyhow::Result<u8> {
    if a.paste {
        eprintln!("runner login: --paste is no longer supported (its urn:ietf:wg:oauth:2.0:oob redirect was never a standard); on a host without a browser use `runner login --device`: open the page it prints on any device and enter the code");
        return Ok(2);
    }
    let config = load_config(Some(&a.config))?;
    let flow = match (a.device, a.browser) {
        (true, _) => Flow::Device,
        (_, true) => Flow::Loopback,
        _ => Flow::for_host(|k| std::env::var(k).ok()),
    };
    let stdout = std::io::stdout();
    let signed_in = crate::wiring::token_file(&config).and_then(|file| {
        login(
            &config.auth,
            config.worker.control_plane.as_deref(),
            file,
            flow,
            Duration::from_secs(a.timeout_seconds),
            &mut stdout.lock(),
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
