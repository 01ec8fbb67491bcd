//! The webhook receiver: the control plane's CloudEvents wake the worker,
//! and that is all they do. An accepted `agent.session_queued` makes the
//! worker poll now instead of at its next interval; no event grants,
//! creates or changes work (the claim does, through the API). Polling stays
//! on, so a silent webhook channel delays nothing by more than one poll
//! interval.
//!
//! - [`receiver`]: HTTPS (rustls) — plain HTTP only on loopback and only
//!   when configured; `X-One-Webhook-Key` compared in constant time;
//!   CloudEvents 1.0 structured JSON checked; Standard Webhooks signatures
//!   verified when a signing secret is configured; every event id
//!   remembered (bounded, across restarts) so a retried delivery is
//!   acknowledged and ignored.
//! - [`Wake`]: the coalescing doorbell between the receiver and the poll
//!   loop.

pub(crate) mod receiver;
mod seen;
pub(crate) mod signature;

use crate::secret::SecretRef;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// `[webhook]` in the worker config. Without `listen`, no receiver runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Address to listen on (`0.0.0.0:8443`; port 0 picks one, written to
    /// `<state_dir>/webhook.addr`).
    #[serde(default)]
    pub listen: Option<String>,
    /// The path events are posted to.
    #[serde(default = "default_path")]
    pub path: String,
    /// PEM certificate chain for HTTPS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead (only on a loopback address).
    #[serde(default)]
    pub plain_http: bool,
    /// The shared `X-One-Webhook-Key`, by reference. Required.
    #[serde(default)]
    pub key: Option<SecretRef>,
    /// A Standard Webhooks signing secret (`whsec_…`), by reference: when
    /// set, every delivery must carry a valid `webhook-signature`.
    #[serde(default)]
    pub signing_secret: Option<SecretRef>,
    /// Accepted clock difference for signed deliveries.
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: u64,
    /// Largest body accepted (413 above).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Event ids remembered for de-duplication.
    #[serde(default = "default_remember")]
    pub remember_ids: usize,
}

fn default_path() -> String {
    "/webhooks/one".into()
}
fn default_tolerance() -> u64 {
    300
}
fn default_max_body() -> usize {
    256 * 1024
}
fn default_remember() -> usize {
    10_000
}

impl Default for WebhookSection {
    fn default() -> Self {
        WebhookSection {
            listen: None,
            path: default_path(),
            tls_cert: None,
            tls_key: None,
            plain_http: false,
            key: None,
            signing_secret: None,
            tolerance_seconds: default_tolerance(),
            max_body_bytes: default_max_body(),
            remember_ids: default_remember(),
        }
    }
}

/// The doorbell: many rings before the loop looks become one poll.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    rung: Mutex<bool>,
    cv: Condvar,
    rings: AtomicU64,
}

impl Wake {
    /// Rings (from the receiver).
    pub(crate) fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        *self.rung.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Rings without counting as a webhook wake-up: a session ended, so
    /// there is room to claim more (work left queued while the worker was
    /// full is taken at once, not at the next interval).
    pub(crate) fn nudge(&self) {
        *self.rung.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Wake-ups recorded so far.
    pub(crate) fn rings(&self) -> u64 {
        self.rings.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` or until rung (clearing it), or until `stop`
    /// says so. True when rung.
    pub(crate) fn wait(&self, timeout: Duration, stop: impl Fn() -> bool) -> bool {
        let until = Instant::now() + timeout;
        let mut rung = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *rung {
                *rung = false;
                return true;
            }
            let now = Instant::now();
            if now >= until || stop() {
                return false;
            }
            let slice = (until - now).min(Duration::from_millis(50));
            rung = self
                .cv
                .wait_timeout(rung, slice)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
