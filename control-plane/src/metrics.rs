//! The control plane's metrics, in the OpenMetrics text format (what the
//! Prometheus project's `prometheus-client` crate writes; Prometheus
//! scrapes it as it does its own text format), served at `GET /metrics`.
//!
//! One [`Metrics`] per [`crate::Store`], so two control planes in one test
//! process count apart. Counters are bumped where the thing happens: a
//! claim and a lease expiry in the store, a webhook delivery where its
//! outcome is recorded, a request in the router's outermost layer. The
//! sessions-by-state gauge is read from the database at scrape time.
//!
//! Labels are closed sets — states, results, outcomes, route templates
//! (`/v1/sessions/{session}`, never the path itself), status classes —
//! never an id, a name, a URL or anything a caller sends.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A label set: label names are fixed, values come from closed sets.
type Labels<const N: usize> = [(&'static str, String); N];

/// The content type of [`Metrics::encode`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The control plane's counters and gauges, and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    sessions: Family<Labels<1>, Gauge>,
    claims: Family<Labels<1>, Counter>,
    lease_expiries: Counter,
    webhook_deliveries: Family<Labels<1>, Counter>,
    http_requests: Family<Labels<3>, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            sessions: Family::default(),
            claims: Family::default(),
            lease_expiries: Counter::default(),
            webhook_deliveries: Family::default(),
            http_requests: Family::default(),
        };
        registry.register(
            "control_plane_sessions",
            "Sessions by state, read from the database at scrape time",
            m.sessions.clone(),
        );
        registry.register(
            "control_plane_claims",
            "Claims asked for, by result (granted, conflict: another worker holds the session)",
            m.claims.clone(),
        );
        registry.register(
            "control_plane_lease_expiries",
            "Claims voided by the sweeper because their lease ran out",
            m.lease_expiries.clone(),
        );
        registry.register(
            "control_plane_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retry, failed: no retry left)",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "control_plane_http_requests",
            "HTTP requests, by method, route template and status class (2xx, 4xx, ...)",
            m.http_requests.clone(),
        );
        for result in ["granted", "conflict"] {
            let _ = m.claims.get_or_create(&[("result", result.into())]);
        }
        Metrics { registry, ..m }
    }

    /// A claim asked for: `granted` or `conflict`.
    pub(crate) fn claim(&self, result: &'static str) {
        self.claims
            .get_or_create(&[("result", result.to_string())])
            .inc();
    }

    /// `n` claims voided by the sweeper.
    pub(crate) fn leases_expired(&self, n: usize) {
        self.lease_expiries.inc_by(n as u64);
    }

    /// A webhook delivery attempt recorded as `state` (`delivered`,
    /// `pending`: to be retried, `failed`).
    pub(crate) fn webhook_delivery(&self, state: &str) {
        let outcome = match state {
            "delivered" => "delivered",
            "pending" => "retry",
            _ => "failed",
        };
        self.webhook_deliveries
            .get_or_create(&[("outcome", outcome.to_string())])
            .inc();
    }

    /// A request answered: its method (the standard ones, else `other`),
    /// route template (`unmatched` when no route matched) and status.
    pub(crate) fn http_request(&self, method: &str, route: Option<&str>, status: u16) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        let class = match status {
            100..=599 => format!("{}xx", status / 100),
            _ => "other".into(),
        };
        self.http_requests
            .get_or_create(&[
                ("method", method.to_string()),
                ("route", route.unwrap_or("unmatched").to_string()),
                ("status", class),
            ])
            .inc();
    }

    /// The whole exposition, ending in `# EOF`, with the sessions gauge
    /// set from `counts` (state, sessions); every state is written, those
    /// with no session as 0.
    pub(crate) fn encode(&self, counts: &[(String, i64)]) -> String {
        use protocol::session::SessionState as S;
        for state in [
            S::Queued,
            S::Active,
            S::AwaitingInput,
            S::Complete,
            S::Error,
            S::Stale,
            S::Cancelled,
        ] {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.sessions
                .get_or_create(&[("state", state.as_str().to_string())])
                .set(n);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The shortest metrics token [`read_token_file`] takes, in bytes: a
/// shorter one can be guessed by whoever reaches `/metrics`.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Reads `--metrics-token-file`: the bearer token a scrape of `/metrics`
/// must send, on the file's one line. Refused, with what to do: a file
/// group or others may read or write (the token is a credential, and the
/// runner refuses its secret files on the same rule; systemd's
/// `LoadCredential` copies are 0400), an empty one, a token shorter than
/// [`MIN_TOKEN_BYTES`], and one of several lines or with control
/// characters (no header could carry it).
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let make = format!("write one with `openssl rand -hex 32 > {shown} && chmod 600 {shown}`");
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read --metrics-token-file {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "--metrics-token-file {shown} is accessible by group or others (mode {mode:o}); run chmod 600 {shown}"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --metrics-token-file {shown}: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("--metrics-token-file {shown} is empty; {make}"));
    }
    if token.chars().any(char::is_control) {
        return Err(format!(
            "--metrics-token-file {shown} holds more than one line or a control character; the token is its one line: {make}"
        ));
    }
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "the token in --metrics-token-file {shown} is {} bytes; use at least {MIN_TOKEN_BYTES}: {make}",
            token.len()
        ));
    }
    Ok(token.to_string())
}

/// Whether a scrape's bearer `given` is the metrics token `want`, in time
/// that depends on neither: the SHA-256 of each is compared (32 bytes,
/// constant time), so not even the token's length shows.
pub(crate) fn token_matches(given: &str, want: &str) -> bool {
    use sha2::Digest;
    let (g, w) = (
        sha2::Sha256::digest(given.as_bytes()),
        sha2::Sha256::digest(want.as_bytes()),
    );
    subtle::ConstantTimeEq::ct_eq(g.as_slice(), w.as_slice()).into()
}

#[cfg(test)]
mod token_tests {
    use super::{read_token_file, token_matches};
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &std::path::Path, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join("metrics.token");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_token_file_others_may_read_is_refused() {
        let d = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            let p = file(d.path(), "0123456789abcdef0123\n", mode);
            let e = read_token_file(&p).unwrap_err();
            assert!(e.contains("chmod 600"), "{mode:o}: {e}");
        }
        for mode in [0o600, 0o400] {
            let p = file(d.path(), "0123456789abcdef0123\n", mode);
            assert_eq!(read_token_file(&p).unwrap(), "0123456789abcdef0123");
        }
    }

    #[test]
    fn an_empty_short_or_multi_line_token_is_refused() {
        let d = tempfile::tempdir().unwrap();
        for (text, says) in [
            ("", "is empty"),
            ("  \n", "is empty"),
            ("0123456789abcde\n", "is 15 bytes; use at least 16"),
            ("0123456789abcdef\nsecond line\n", "more than one line"),
        ] {
            let p = file(d.path(), text, 0o600);
            let e = read_token_file(&p).unwrap_err();
            assert!(
                e.contains(says) && e.contains("openssl rand"),
                "{text:?}: {e}"
            );
        }
        let p = file(d.path(), "0123456789abcdef", 0o600);
        assert_eq!(read_token_file(&p).unwrap(), "0123456789abcdef");
        let e = read_token_file(&d.path().join("missing")).unwrap_err();
        assert!(e.starts_with("cannot read --metrics-token-file"), "{e}");
    }

    #[test]
    fn tokens_of_any_length_compare_by_their_hashes() {
        let want = "0123456789abcdef0123";
        assert!(token_matches(want, want));
        for given in ["", "0", "0123456789abcdef012", "0123456789abcdef01234", "x"] {
            assert!(!token_matches(given, want), "{given:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn every_state_is_written_and_labels_stay_closed() {
        let m = Metrics::new();
        m.http_request("GET", Some("/v1/sessions/{session}"), 404);
        m.http_request("BREW", None, 200);
        m.webhook_delivery("pending");
        let t = m.encode(&[("queued".into(), 3)]);
        assert_eq!(
            value(&t, "control_plane_sessions{state=\"queued\"}"),
            Some(3.0)
        );
        assert_eq!(
            value(&t, "control_plane_sessions{state=\"cancelled\"}"),
            Some(0.0)
        );
        assert_eq!(
            value(&t, "control_plane_http_requests_total{method=\"GET\",route=\"/v1/sessions/{session}\",status=\"4xx\"}"),
            Some(1.0),
            "{t}"
        );
        assert!(
            t.contains("method=\"other\",route=\"unmatched\",status=\"2xx\""),
            "{t}"
        );
        assert_eq!(
            value(
                &t,
                "control_plane_webhook_deliveries_total{outcome=\"retry\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&t, "control_plane_claims_total{result=\"conflict\"}"),
            Some(0.0)
        );
        assert!(t.ends_with("# EOF\n"));
    }
}
