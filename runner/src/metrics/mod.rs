//! The worker's metrics, in the OpenMetrics text format (what the
//! Prometheus project's `prometheus-client` crate writes; Prometheus
//! scrapes it as it does its own text format).
//!
//! One [`Metrics`] per process, owned by whoever builds the worker and
//! handed down with the data (the worker → the policy gate → the tools),
//! never a global: two workers in one test process count apart. Each
//! thing is counted at the one place it happens — a decision in the gate,
//! a tool call in the call path, a sandbox start in the sandbox, a model
//! call in the agent loop, a claim and a session's end in the worker.
//!
//! Labels are closed sets (results, action kinds, outcomes, the tools
//! of the registry): never an id, a path, a URL or a piece of the work,
//! so that neither the number of series nor what they tell can grow with
//! what sessions contain.

mod section;
mod serve;

pub use section::MetricsSection;
pub use serve::{start, Serving};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// A label set: label names are fixed, values come from closed sets.
type Labels<const N: usize> = [(&'static str, String); N];
/// A histogram family whose histograms share one set of buckets.
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Buckets for what takes milliseconds: 0.25 ms to about 8 s.
fn fast_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Buckets for model calls: 10 ms to about 5 minutes.
fn model_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// Buckets for tool calls (a build may run for minutes): 1 ms to about
/// 9 minutes.
fn tool_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The action kinds a decision may carry; anything else is counted as
/// `other`, so a label never holds text from elsewhere.
const KINDS: &[&str] = &[
    "fs.read",
    "fs.write",
    "shell.exec",
    "net.connect",
    "workspace.write",
    "external",
    "tool.call",
];

/// The closed set a label value must come from, else `other`.
fn closed(value: &str, set: &[&str]) -> String {
    if set.contains(&value) {
        value.to_string()
    } else {
        "other".to_string()
    }
}

/// The worker's counters and histograms, and the registry they are
/// written from.
pub struct Metrics {
    registry: Registry,
    decisions: Family<Labels<2>, Counter>,
    decision_seconds: Histograms<1>,
    sandbox_spawn_seconds: Histograms<1>,
    tool_call_seconds: Histograms<2>,
    model_call_seconds: Histograms<1>,
    model_tokens: Family<Labels<1>, Counter>,
    model_errors: Family<Labels<1>, Counter>,
    claims: Family<Labels<1>, Counter>,
    claims_lost: Counter,
    sessions: Family<Labels<1>, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero. Unserved, it costs a
    /// few atomic adds per event (what `runner call` and tests get).
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            decisions: Family::default(),
            decision_seconds: Family::new_with_constructor(fast_buckets),
            sandbox_spawn_seconds: Family::new_with_constructor(fast_buckets),
            tool_call_seconds: Family::new_with_constructor(tool_buckets),
            model_call_seconds: Family::new_with_constructor(model_buckets),
            model_tokens: Family::default(),
            model_errors: Family::default(),
            claims: Family::default(),
            claims_lost: Counter::default(),
            sessions: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "runner_policy_decisions",
            "Policy decisions, by result (allow, deny, ask) and action kind",
            m.decisions.clone(),
        );
        registry.register_with_unit(
            "runner_policy_decision",
            "Time to normalise and decide one action, by action kind",
            Unit::Seconds,
            m.decision_seconds.clone(),
        );
        registry.register_with_unit(
            "runner_sandbox_spawn",
            "Time from starting a sandbox to the command or guest running, by sandbox (process, wasm)",
            Unit::Seconds,
            m.sandbox_spawn_seconds.clone(),
        );
        registry.register_with_unit(
            "runner_tool_call",
            "Time of one tool call (decisions and run), by tool and status (ok, denied, error)",
            Unit::Seconds,
            m.tool_call_seconds.clone(),
        );
        registry.register_with_unit(
            "runner_model_call",
            "Time of one model call, retries included, by outcome (ok, error)",
            Unit::Seconds,
            m.model_call_seconds.clone(),
        );
        registry.register(
            "runner_model_tokens",
            "Tokens the providers counted, by type (prompt, completion)",
            m.model_tokens.clone(),
        );
        registry.register(
            "runner_model_errors",
            "Model calls that failed, by kind (provider, timeout, transport, malformed)",
            m.model_errors.clone(),
        );
        registry.register(
            "runner_claims",
            "Claims tried, by result (claimed, conflict, error)",
            m.claims.clone(),
        );
        registry.register(
            "runner_claims_lost",
            "Claims the control plane stopped honouring while their session ran",
            m.claims_lost.clone(),
        );
        registry.register(
            "runner_sessions",
            "Sessions run to their end, by outcome (complete, failed, released, claim_lost)",
            m.sessions.clone(),
        );
        Metrics { registry, ..m }
    }

    /// One decision: its result (`allow`, `deny`, `ask`), its action's
    /// kind, and how long deciding took (`None` for a refusal made before
    /// any policy ran).
    pub fn decision(&self, result: &str, kind: &str, took: Option<Duration>) {
        let kind = closed(kind, KINDS);
        let result = closed(result, &["allow", "deny", "ask"]);
        self.decisions
            .get_or_create(&[("result", result), ("kind", kind.clone())])
            .inc();
        if let Some(t) = took {
            self.decision_seconds
                .get_or_create(&[("kind", kind)])
                .observe(t.as_secs_f64());
        }
    }

    /// A sandbox started: `process` (the shell sandbox, until its command
    /// is exec'd) or `wasm` (a guest, until it is instantiated).
    pub fn sandbox_spawn(&self, sandbox: &'static str, took: Duration) {
        self.sandbox_spawn_seconds
            .get_or_create(&[("sandbox", sandbox.to_string())])
            .observe(took.as_secs_f64());
    }

    /// One tool call of a registered tool (the registry bounds the names)
    /// and how it ended (`ok`, `denied`, `error`).
    pub fn tool_call(&self, tool: &str, status: &'static str, took: Duration) {
        self.tool_call_seconds
            .get_or_create(&[("tool", tool.to_string()), ("status", status.to_string())])
            .observe(took.as_secs_f64());
    }

    /// One model call: on success the tokens it used, on failure the kind
    /// of failure (`provider`, `timeout`, `transport`, `malformed`).
    pub fn model_call(&self, took: Duration, outcome: Result<(u64, u64), &'static str>) {
        let label = match outcome {
            Ok(_) => "ok",
            Err(_) => "error",
        };
        self.model_call_seconds
            .get_or_create(&[("outcome", label.to_string())])
            .observe(took.as_secs_f64());
        match outcome {
            Ok((prompt, completion)) => {
                self.model_tokens
                    .get_or_create(&[("type", "prompt".to_string())])
                    .inc_by(prompt);
                self.model_tokens
                    .get_or_create(&[("type", "completion".to_string())])
                    .inc_by(completion);
            }
            Err(kind) => {
                self.model_errors
                    .get_or_create(&[("kind", kind.to_string())])
                    .inc();
            }
        }
    }

    /// A claim the worker tried: `claimed`, `conflict` (another worker
    /// has it) or `error`.
    pub fn claim(&self, result: &'static str) {
        self.claims
            .get_or_create(&[("result", result.to_string())])
            .inc();
    }

    /// A claim lost while its session ran.
    pub fn claim_lost(&self) {
        self.claims_lost.inc();
    }

    /// A session the worker ran to its end: `complete`, `failed`,
    /// `released` or `claim_lost`.
    pub fn session_ended(&self, outcome: &'static str) {
        self.sessions
            .get_or_create(&[("outcome", outcome.to_string())])
            .inc();
    }

    /// The whole exposition, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `prefix`.
    fn value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn decisions_are_counted_by_result_and_closed_kind() {
        let m = Metrics::new();
        m.decision("deny", "fs.read", Some(Duration::from_millis(2)));
        m.decision("deny", "fs.read", None);
        m.decision("allow", "/etc/shadow", None);
        let t = m.encode();
        assert_eq!(
            value(
                &t,
                "runner_policy_decisions_total{result=\"deny\",kind=\"fs.read\"}"
            ),
            Some(2.0),
            "{t}"
        );
        // Text that is no known kind never becomes a label.
        assert!(!t.contains("/etc/shadow"), "{t}");
        assert_eq!(
            value(
                &t,
                "runner_policy_decisions_total{result=\"allow\",kind=\"other\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&t, "runner_policy_decision_seconds_count{kind=\"fs.read\"}"),
            Some(1.0)
        );
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    #[test]
    fn two_registries_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.claim("claimed");
        assert_eq!(
            value(&a.encode(), "runner_claims_total{result=\"claimed\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&b.encode(), "runner_claims_total{result=\"claimed\"}"),
            None
        );
    }

    #[test]
    fn model_calls_count_tokens_or_errors() {
        let m = Metrics::new();
        m.model_call(Duration::from_millis(30), Ok((100, 20)));
        m.model_call(Duration::from_millis(30), Ok((100, 20)));
        m.model_call(Duration::from_secs(1), Err("timeout"));
        let t = m.encode();
        assert_eq!(
            value(&t, "runner_model_tokens_total{type=\"prompt\"}"),
            Some(200.0)
        );
        assert_eq!(
            value(&t, "runner_model_tokens_total{type=\"completion\"}"),
            Some(40.0)
        );
        assert_eq!(
            value(&t, "runner_model_errors_total{kind=\"timeout\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&t, "runner_model_call_seconds_count{outcome=\"ok\"}"),
            Some(2.0)
        );
    }
}
