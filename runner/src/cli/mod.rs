//! The command line. Each subcommand lives in its own file and only wires
//! library calls together; nothing here decides anything.
//!
//! Exit codes: 0 ok, 1 a check failed (tests, verify), 2 usage or config
//! error (message on stderr), 3 an action was denied, 4 a tool failed.
//! `runner run` has its own (see [`run`]): 0 complete, 1 error, 2 usage,
//! auth or refused, 3 cancelled, 4 the event stream was lost.

mod audit;
mod call;
mod doctor;
mod follow;
mod local_control_plane;
mod logging;
mod login;
mod policy;
mod run;
mod tools;
mod up;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a check (policy tests, audit verify) fails.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code when an action was denied.
pub const EXIT_DENIED: u8 = 3;
/// Exit code when a tool failed.
pub const EXIT_TOOL_ERROR: u8 = 4;

#[derive(Parser)]
#[command(
    name = "runner",
    version,
    about = "A hardened worker for cloud AI agents: every action decided by Rego, run in a sandbox."
)]
struct Cli {
    /// How log lines on stderr are written: `text`, or `json` (one object
    /// a line, with the session's ids on a session's lines). `RUNNER_LOG`
    /// says which lines (default `warn`).
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Test, evaluate and inspect Rego policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run one tool call under policy, without a control plane.
    Call(call::CallArgs),
    /// Verify, list and replay the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// List the tools this runner offers.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Check that this host can run the sandboxes; prints the fix for each failure.
    Doctor(doctor::DoctorArgs),
    /// Sign the worker in to its control plane (OAuth); tokens stored encrypted.
    Login(login::LoginArgs),
    /// Run as a worker: claim sessions from the control plane and run them.
    Worker(worker::WorkerArgs),
    /// The whole loop on this machine: a control plane, a worker, the example sessions.
    Up(up::UpArgs),
    /// Start a session of one of your team's agents; `--follow` watches it to its end.
    Run(run::RunArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Policy(c) => policy::run(c),
        Command::Call(a) => call::run(a),
        Command::Audit(c) => audit::run(c),
        Command::Tools(c) => tools::run(c),
        Command::Doctor(a) => doctor::run(a),
        Command::Login(a) => login::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Up(a) => up::run(a),
        Command::Run(a) => run::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::notice(&format!("error: {e:#}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The process sandbox's helper: `runner-sandbox` beside this binary.
fn sandbox_helper() -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the runner binary: {e}"))?;
    Ok(crate::sandbox::process::helper_beside(&me))
}

/// Loads the config file when one is given, else the defaults.
/// The CA of `[worker] ca_file` is trusted for the control plane from
/// here on.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<crate::config::Config> {
    let config = match path {
        Some(p) => crate::config::Config::load(p)?,
        None => crate::config::Config::default(),
    };
    if let Some(ca) = &config.worker.ca_file {
        crate::trust::trust_ca_file(ca).map_err(anyhow::Error::msg)?;
    }
    Ok(config)
}

/// Reads a JSON file with an error naming it.
fn read_json(path: &std::path::Path, what: &str) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{what} {} is not valid JSON: {e}", path.display()))
}
