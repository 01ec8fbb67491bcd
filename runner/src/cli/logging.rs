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
    let filter = filter_from(std::env::var("RUNNER_LOG").ok().as_deref());
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

/// Crates whose debug lines are the wire itself: ureq's "writing prelude"
/// prints every request header (an MCP server's `X-Api-Key`, Brave's
/// `X-Subscription-Token`) in clear, and the others can do likewise.
const WIRE_TARGETS: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tower_http",
    "axum",
];

/// The filter `RUNNER_LOG` (default `warn`) asks for, with the wire-level
/// targets held to `info` whatever it says: the user's directives naming
/// one of them are dropped and `<crate>=info` added after the rest, so
/// `RUNNER_LOG=debug` (or `ureq::unit=trace`) never logs a secret header.
fn filter_from(env: Option<&str>) -> EnvFilter {
    let wire = |d: &str| {
        let target = d.trim().split(['=', '[']).next().unwrap_or("");
        WIRE_TARGETS
            .iter()
            .any(|w| target == *w || target.starts_with(&format!("{w}::")))
    };
    let kept: Vec<&str> = env
        .unwrap_or("warn")
        .split(',')
        .filter(|d| !d.trim().is_empty() && !wire(d))
        .collect();
    let mut filter = EnvFilter::try_new(kept.join(",")).unwrap_or_else(|_| EnvFilter::new("warn"));
    for w in WIRE_TARGETS {
        if let Ok(d) = format!("{w}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Writes every line into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(env: &str) -> String {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_env_filter(filter_from(Some(env)))
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(target: "ureq::unit", "writing prelude: X-Api-Key: sekrit-123");
            tracing::trace!(target: "hyper::proto", "headers: X-Subscription-Token: sekrit-456");
            tracing::info!(target: "ureq::pool", "pool-info-line");
            tracing::debug!(target: "runner::tools", "runner-debug-line");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        out
    }

    #[test]
    fn debug_logging_never_writes_the_wire_of_an_http_client() {
        for env in [
            "debug",
            "trace",
            "debug,ureq=trace",
            "ureq::unit=debug,debug",
            "ureq[x]=trace,hyper=trace,debug",
        ] {
            let out = logged(env);
            assert!(!out.contains("sekrit"), "{env}: {out}");
            assert!(out.contains("runner-debug-line"), "{env}: {out}");
            assert!(out.contains("pool-info-line"), "{env}: {out}");
        }
        assert!(!logged("warn").contains("runner-debug-line"));
    }
}
