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

use crate::store::webhooks::{is_private_ip, Due};
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
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = &outcome {
                    tracing::warn!("webhook to {} failed: {e}", d.url);
                }
                let _ = tokio::task::spawn_blocking(move || {
                    store.record_attempt(d.id, d.attempts, outcome, &schedule)
                })
                .await;
            });
        }
    }
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
    use super::{cursor_signature, PublicOnly};
    use reqwest::dns::Resolve;

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
