//! `--log-format`: how the binary's log lines (stderr) are written.
//! `RUNNER_LOG` still says which lines (an `EnvFilter`; default `warn`).
//!
//! The few messages the CLI itself writes for the operator of a service
//! (where the receivers listen, why the worker stopped) go through
//! [`notice`]: a plain `runner: …` line in text, a JSON line like every
//! other in JSON — so a JSON log never has a line a JSON reader chokes on.

use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (tracing's JSON layer): the event's
    /// fields, and the spans it happened in with theirs — a session's
    /// lines carry `session_id` and `claim_id`.
    Json,
}

/// The format chosen at start-up (set once, by [`init`]).
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The target of [`notice`] events: always written, whatever the filter.
const NOTICE: &str = "runner::notice";

/// Installs the subscriber (once per process; a second call is a no-op).
pub(super) fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_env("RUNNER_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colours only for a person at a terminal: journald and files keep
    // the escape codes as text.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.with_env_filter(filter).try_init(),
        LogFormat::Json => builder
            .with_env_filter(match format!("{NOTICE}=info").parse() {
                Ok(d) => filter.add_directive(d),
                Err(_) => filter,
            })
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
            // A panic (a session's is caught and fails the session) is
            // a JSON line too, not the default hook's text.
            .map(|()| {
                std::panic::set_hook(Box::new(
                    |info| tracing::error!(target: NOTICE, "a thread panicked: {info}"),
                ))
            }),
    };
}

/// The chosen format as the flag names it, for a child that takes the
/// same flag (the control plane `runner up` starts).
pub(super) fn format_name() -> &'static str {
    match FORMAT.get() {
        Some(LogFormat::Json) => "json",
        _ => "text",
    }
}

/// A message for the operator on stderr, in the chosen format.
pub(super) fn notice(message: &str) {
    match FORMAT.get() {
        Some(LogFormat::Json) => tracing::info!(target: NOTICE, "{message}"),
        _ => eprintln!("runner: {message}"),
    }
}
