//! Webhook delivery: CloudEvents 1.0 structured JSON for
//! `agent.session_queued` and `agent.session_state_changed`, sent to each
//! subscription (URL, shared key, event types, an optional Standard
//! Webhooks signing secret), retried on a schedule (by default immediately,
//! after ~1 min, after ~5 min), each attempt logged per subscription.
//! A Cloud Agents API agent launched with a `webhook` gets its own
//! subscription, sent in Cursor's format instead ([`cursor_request`]): one
//! `statusChange` when it reaches FINISHED, FAILED or STOPPED.
//!
//! The store keeps subscriptions and writes events to its outbox in the
//! same transaction as the change they report (`crate::store::webhooks`);
//! this module only sends what the outbox holds and records the outcome.

pub use crate::store::webhooks::{
    Delivery, NewSubscription, Subscription, ALL_TEAMS, SESSION_QUEUED, SESSION_STATE_CHANGED,
};

use crate::store::webhooks::{is_private_ip, url_origin, Due};
use crate::store::{Store, CURSOR_FORMAT};
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

/// Delivers due events until the task is dropped: woken when an event is
/// written, and every 250 ms for retries.
pub(crate) async fn deliver(store: Arc<Store>, schedule: Vec<u64>) {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve the target itself,
        // past the address checks below.
        .no_proxy()
        .user_agent(concat!("runner-control-plane/", env!("CARGO_PKG_VERSION")));
    if !store.private_webhooks() {
        // A name that resolves to a private address is refused when the
        // call is made, not only when the target was given: DNS can
        // change in between.
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    let http = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhook delivery is off: {e}");
            return;
        }
    };
    let schedule = Arc::new(schedule);
    loop {
        tokio::select! {
            _ = store.outbox().notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let s = store.clone();
        let due = match tokio::task::spawn_blocking(move || s.take_due(100)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::warn!("webhook outbox: {e}");
                continue;
            }
            Err(_) => continue,
        };
        for d in due {
            let (http, store, schedule) = (http.clone(), store.clone(), schedule.clone());
            tokio::spawn(async move {
                let req = if d.format == CURSOR_FORMAT {
                    cursor_request(&http, &d)
                } else {
                    cloudevents_request(&http, &d)
                };
                let outcome = match req.body(d.body.clone()).send().await {
                    Ok(r) => Ok(r.status().as_u16()),
                    Err(e) => Err(failure_text(e)),
                };
                if let Err(e) = &outcome {
                    tracing::warn!("{}", failure_line(&d.url, e));
                }
                let _ = tokio::task::spawn_blocking(move || {
                    store.record_attempt(d.id, d.attempts, outcome, &schedule)
                })
                .await;
            });
        }
    }
}

/// Why a delivery failed, for the log and the delivery's attempt log:
/// reqwest's error and its causes (which say what went wrong: refused,
/// timed out, a certificate), without the URL — reqwest's text repeats
/// it whole, and a webhook's path and query are often its secret.
fn failure_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        // hyper repeats its inner error's text in its own now and then.
        if !text.ends_with(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// The warning a failed delivery logs: where it went as
/// `scheme://host[:port]` only (never the path, query or user info of the
/// URL) and why.
fn failure_line(url: &str, why: &str) -> String {
    format!("webhook to {} failed: {why}", url_origin(url))
}

/// A resolver that keeps only public addresses: the webhook sender's, so
/// that a target name cannot lead it to the host's own services.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !is_private_ip(a.ip()))
                .collect();
            if public.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves only to loopback or private addresses ({}); start the control plane with --allow-private-webhooks to send there",
                    found.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
                )
                .into();
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A `/v1/webhooks` delivery: a CloudEvent, signed as Standard Webhooks
/// says (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
fn cloudevents_request(http: &reqwest::Client, d: &Due) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let mut req = http
        .post(&d.url)
        .header("content-type", "application/cloudevents+json")
        .header("x-one-webhook-key", &d.key)
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", ts.to_string());
    if let Some(secret) = &d.secret {
        req = req.header(
            "webhook-signature",
            sign(secret, &d.event_id, ts, d.body.as_bytes()),
        );
    }
    req
}

/// A Cloud Agents API `statusChange`, as Cursor sends it: JSON, its event
/// in `X-Webhook-Event`, the delivery's id in `X-Webhook-ID` (the same on
/// every retry: the receiver's idempotency key) and, with a secret,
/// `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
fn cursor_request(http: &reqwest::Client, d: &Due) -> reqwest::RequestBuilder {
    let mut req = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "Cursor-Agent-Webhook/1.0 (runner-control-plane)",
        )
        .header("x-webhook-event", &d.event_type)
        .header("x-webhook-id", &d.event_id);
    if let Some(secret) = &d.secret {
        req = req.header(
            "x-webhook-signature",
            cursor_signature(secret, d.body.as_bytes()),
        );
    }
    req
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body`, keyed with the
/// secret's UTF-8 bytes.
fn cursor_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// The Standard Webhooks signature of a delivery.
fn sign(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key_bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap_or_default();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &msg).as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::{cursor_signature, failure_line, failure_text, PublicOnly};
    use reqwest::dns::Resolve;

    /// A failed delivery's log line names the target by scheme, host and
    /// port only: the path and query (often the webhook's secret) and a
    /// user:password are never written, neither by the line itself nor by
    /// reqwest's error, which repeats the whole URL.
    #[tokio::test]
    async fn a_failed_deliverys_log_line_has_no_path_query_or_password() {
        // Nothing listens on port 9 (discard) here: the connection is
        // refused at once.
        let url = "http://user:hunter2@127.0.0.1:9/hooks/s3cr3t-path?token=s3cr3t-query";
        let e = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .expect_err("nothing listens on port 9");
        assert!(e.to_string().contains("s3cr3t"), "reqwest's own text: {e}");
        let why = failure_text(e);
        let line = failure_line(url, &why);
        assert!(
            line.starts_with("webhook to http://127.0.0.1:9 failed: "),
            "{line}"
        );
        for secret in ["s3cr3t", "hunter2", "user", "/hooks"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        assert!(why.contains("onnect"), "the cause is kept: {why}");
        // A URL that is not one (a row older than the check) is not
        // repeated either.
        let line = failure_line("not a url\nFORGED line", "x");
        assert!(!line.contains("FORGED"), "{line}");
    }

    #[tokio::test]
    async fn names_of_private_addresses_do_not_resolve_for_the_sender() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let e = match PublicOnly.resolve(name).await {
            Ok(a) => panic!("resolved to {:?}", a.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("--allow-private-webhooks") && e.contains("127.0.0.1"),
            "{e}"
        );
    }

    #[test]
    fn the_cursor_signature_is_hex_hmac_sha256_of_the_raw_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            cursor_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
