//! Webhook subscriptions and the outbox: events are written in the same
//! transaction as the change they report, so a committed change is always
//! delivered (at least once: receivers de-duplicate by event id) and a
//! rolled-back one never is. Sending them is `crate::webhooks`'s job.

use super::{now_ms, Missing, Store, StoreError, Tx};
use base64::Engine;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A session became claimable (queued, requeued, released, followed up).
pub const SESSION_QUEUED: &str = "agent.session_queued";
/// A session changed state.
pub const SESSION_STATE_CHANGED: &str = "agent.session_state_changed";

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where to POST (http or https).
    pub url: String,
    /// Sent as `X-One-Webhook-Key`.
    pub key: String,
    /// Event types, or `["*"]`.
    #[serde(default = "all")]
    pub event_types: Vec<String>,
    /// Sign each delivery (Standard Webhooks; default on); the secret is
    /// returned once, in the answer.
    #[serde(default = "yes")]
    pub sign: bool,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

fn yes() -> bool {
    true
}

/// A subscription as listed (no secrets).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Event types.
    pub event_types: Vec<String>,
    /// Whether deliveries are signed.
    pub signed: bool,
    /// The signing secret, only in the answer to its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// One delivery and its attempts.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Delivery id.
    pub id: i64,
    /// The CloudEvent id (the receiver's idempotency key).
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// Each attempt: when, HTTP status or error.
    pub log: serde_json::Value,
}

/// Writes an event for every subscription that wants it (inside the
/// transaction of the change it reports).
pub(crate) fn enqueue(
    tx: &Tx<'_>,
    event_type: &str,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    // A session's events go to its team's subscriptions only (a session
    // of no team — queued with a key of nobody's — to subscriptions of no
    // team).
    let team: Option<String> = match data.get("session_id").and_then(|v| v.as_str()) {
        Some(id) => tx
            .sql
            .query_row(
                "SELECT team FROM sessions WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten(),
        None => None,
    };
    let subs: Vec<(String, String)> = {
        let mut st = tx.sql.prepare(
            "SELECT id, event_types FROM subscriptions WHERE session_id IS NULL AND (team IS ?1 OR team = '*')",
        )?;
        let v = st
            .query_map(params![team], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        v
    };
    let now = now_ms();
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = serde_json::json!({
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": "/runner/control-plane",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": data,
    })
    .to_string();
    for (id, types) in subs {
        let types: Vec<String> = serde_json::from_str(&types).unwrap_or_default();
        if !types.iter().any(|t| t == "*" || t == event_type) {
            continue;
        }
        tx.sql.execute(
            "INSERT INTO deliveries (subscription_id, event_id, event_type, body, next_at, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?5, ?5)",
            params![id, event_id, event_type, body, now],
        )?;
        tx.outbox_written();
    }
    Ok(())
}

/// The team of a subscription that gets every team's events: one made by
/// a user whose workers run every user's sessions (the operator's, whose
/// worker wakes on `agent.session_queued`).
pub const ALL_TEAMS: &str = "*";

/// A delivery that is due, with what sending it needs.
pub(crate) struct Due {
    pub(crate) id: i64,
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) secret: Option<String>,
    pub(crate) event_id: String,
    pub(crate) body: String,
    pub(crate) attempts: u32,
    /// `cloudevents` (a `/v1/webhooks` subscription) or `cursor_v0` (an
    /// agent's `statusChange`): how it is sent and signed.
    pub(crate) format: String,
    /// Its event type (`X-Webhook-Event` of a `cursor_v0` delivery).
    pub(crate) event_type: String,
}

/// Whether the control plane must not POST to `ip` unless private webhooks
/// are allowed: loopback, private, link-local, unspecified, multicast,
/// broadcast, unique-local, and IPv4 addresses mapped into IPv6.
pub(crate) fn is_private_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                // 0.0.0.0/8 ("this network"), 100.64.0.0/10 (carrier-grade
                // NAT, some clouds' metadata), 192.0.0.0/24 (protocol
                // assignments), 198.18.0.0/15 (benchmarking), 240.0.0.0/4.
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            // An IPv4 address carried inside (mapped, compatible, NAT64's
            // 64:ff9b::/96 and 64:ff9b:1::/48, 6to4's 2002::/16) is judged
            // as that address.
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            let compatible = s[..6] == [0, 0, 0, 0, 0, 0] || a.to_ipv4_mapped().is_some();
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1);
            let inner = if compatible || nat64 {
                Some(embedded(s[6], s[7]))
            } else if s[0] == 0x2002 {
                Some(embedded(s[1], s[2]))
            } else {
                None
            };
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || inner.is_some_and(|v4| is_private_ip(v4.into()))
        }
    }
}

/// Refuses a webhook URL the control plane must not POST to: not http(s),
/// longer than 2048 characters, holding a control character, or — unless
/// `allow_private` — a loopback, private, link-local or otherwise local
/// address (a webhook is a request the control plane makes on the
/// caller's behalf). Answers the URL to store: the parsed one
/// (`Url::as_str`), so what is kept, shown and sent is what was checked —
/// the parser drops tabs and newlines the raw text may still hold.
pub(crate) fn check_target(url: &str, allow_private: bool) -> Result<String, StoreError> {
    // Refused rather than cleaned: a URL with a line break or an escape
    // in it is a mistake or an attempt to forge log lines.
    if let Some(c) = url.chars().find(|c| c.is_control()) {
        return Err(StoreError::invalid(format!(
            "url holds the control character {:?}; send the URL without control characters (percent-encode them in the path or query)",
            c
        )));
    }
    let u = url::Url::parse(url)
        .map_err(|_| StoreError::invalid(format!("url {url:?} is not a URL")))?;
    if !matches!(u.scheme(), "http" | "https") || url.len() > 2048 || u.as_str().len() > 2048 {
        return Err(StoreError::invalid(
            "url must be http(s), at most 2048 characters",
        ));
    }
    if !allow_private {
        let private = match u.host() {
            Some(url::Host::Ipv4(a)) => is_private_ip(a.into()),
            Some(url::Host::Ipv6(a)) => is_private_ip(a.into()),
            Some(url::Host::Domain(d)) => {
                // `localhost.` is `localhost`: the root's dot changes nothing.
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            None => true,
        };
        if private {
            return Err(StoreError::invalid(format!(
                "url {} points at a loopback or private address; start the control plane with --allow-private-webhooks to allow that",
                origin(&u)
            )));
        }
    }
    Ok(u.as_str().to_string())
}

/// What of a webhook URL may be logged or repeated: `scheme://host[:port]`.
/// The path and query of a webhook often are its secret (a token in the
/// path, `?key=`), and the user name and password of `https://u:p@host/`
/// are one; none of them is written anywhere but the database.
pub(crate) fn origin(u: &url::Url) -> String {
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    }
}

/// [`origin`] of a stored webhook URL (one [`check_target`] answered);
/// a URL that no longer parses is shown as `<a webhook URL>`, never raw.
pub(crate) fn url_origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| origin(&u))
        .unwrap_or_else(|_| "<a webhook URL>".into())
}

impl Store {
    /// Adds a subscription of `team` (`None`: of no team — made with a key
    /// of nobody's); it gets the events of that team's sessions only.
    pub fn add_subscription(
        &self,
        n: NewSubscription,
        team: Option<&str>,
    ) -> Result<Subscription, StoreError> {
        let url = check_target(&n.url, self.private_webhooks())?;
        if n.key.is_empty() || n.key.len() > 256 {
            return Err(StoreError::invalid(
                "key is 1–256 characters (sent as X-One-Webhook-Key)",
            ));
        }
        if n.event_types.is_empty()
            || n.event_types
                .iter()
                .any(|t| !matches!(t.as_str(), "*" | SESSION_QUEUED | SESSION_STATE_CHANGED))
        {
            return Err(StoreError::invalid(format!(
                "event_types are among {SESSION_QUEUED}, {SESSION_STATE_CHANGED} or *"
            )));
        }
        let id = format!("sub_{}", uuid::Uuid::new_v4().simple());
        let secret = n.sign.then(|| {
            let mut b = [0u8; 32];
            let _ = getrandom::fill(&mut b);
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )
        });
        let types = serde_json::to_string(&n.event_types).map_err(StoreError::corrupt)?;
        self.tx(|tx| {
            tx.sql.execute(
                "INSERT INTO subscriptions (id, url, key, signing_secret, event_types, created_at, team) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, url, n.key, secret, types, now_ms(), team],
            )?;
            Ok(())
        })?;
        Ok(Subscription {
            id,
            url,
            event_types: n.event_types,
            signed: secret.is_some(),
            signing_secret: secret,
        })
    }

    /// Every subscription of `team` (no secrets).
    pub(crate) fn subscriptions(
        &self,
        team: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.tx(|tx| {
            let mut st = tx.sql.prepare(
                "SELECT id, url, event_types, signing_secret IS NOT NULL FROM subscriptions WHERE session_id IS NULL AND team IS ?1 ORDER BY created_at",
            )?;
            let v = st
                .query_map(params![team], |r| {
                    Ok(Subscription {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        event_types: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                        signed: r.get(3)?,
                        signing_secret: None,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// A subscription's deliveries, newest first (at most 500); another
    /// team's subscription is not found.
    pub(crate) fn deliveries(
        &self,
        sub: &str,
        team: Option<&str>,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.tx(|tx| {
            let exists: Option<i64> = tx
                .sql.query_row("SELECT 1 FROM subscriptions WHERE id = ?1 AND session_id IS NULL AND team IS ?2", params![sub, team], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::not_found(Missing::Subscription, format!("no subscription {sub}")));
            }
            let mut st = tx.sql.prepare(
                "SELECT id, event_id, event_type, state, attempts, log FROM deliveries WHERE subscription_id = ?1 ORDER BY id DESC LIMIT 500",
            )?;
            let v = st
                .query_map(params![sub], |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        state: r.get(3)?,
                        attempts: r.get(4)?,
                        log: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }

    /// Deliveries due now, marked `sending` (a `sending` one left by a
    /// crashed process is due again after a minute).
    pub(crate) fn take_due(&self, limit: u32) -> Result<Vec<Due>, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let mut st = tx.sql.prepare(
                "SELECT d.id, s.url, s.key, s.signing_secret, d.event_id, d.body, d.attempts, s.format, d.event_type FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
                 WHERE (d.state = 'pending' AND d.next_at <= ?1) OR (d.state = 'sending' AND d.updated_at <= ?1 - 60000)
                 ORDER BY d.next_at LIMIT ?2",
            )?;
            let due: Vec<Due> = st
                .query_map(params![now, limit], |r| {
                    Ok(Due {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        key: r.get(2)?,
                        secret: r.get(3)?,
                        event_id: r.get(4)?,
                        body: r.get(5)?,
                        attempts: r.get(6)?,
                        format: r.get(7)?,
                        event_type: r.get(8)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            for d in &due {
                tx.sql.execute(
                    "UPDATE deliveries SET state = 'sending', updated_at = ?2 WHERE id = ?1",
                    params![d.id, now],
                )?;
            }
            Ok(due)
        })
    }

    pub(crate) fn record_attempt(
        &self,
        id: i64,
        attempts: u32,
        outcome: Result<u16, String>,
        schedule: &[u64],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let attempts = attempts + 1;
        let counted = |state: &str| self.metrics().webhook_delivery(state);
        let (state, next) = match &outcome {
            Ok(s) if (200..300).contains(s) => ("delivered", None),
            _ => match schedule.get(attempts as usize - 1) {
                Some(delay) => ("pending", Some(now + *delay as i64 * 1000)),
                None => ("failed", None),
            },
        };
        let entry = match &outcome {
            Ok(s) => serde_json::json!({"at": chrono::Utc::now().to_rfc3339(), "status": s}),
            Err(e) => serde_json::json!({"at": chrono::Utc::now().to_rfc3339(), "error": e}),
        };
        self.tx(|tx| {
            let log: String = tx.sql.query_row("SELECT log FROM deliveries WHERE id = ?1", params![id], |r| r.get(0))?;
            let mut log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap_or_default();
            log.push(entry.clone());
            tx.sql.execute(
                "UPDATE deliveries SET attempts = ?2, state = ?3, next_at = ?4, log = ?5, updated_at = ?6 WHERE id = ?1",
                params![id, attempts, state, next, serde_json::to_string(&log).unwrap_or_default(), now],
            )?;
            Ok(())
        })
        .inspect(|()| counted(state))
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::NewSubscription;

    /// Each recorded attempt is counted by what it came to: delivered,
    /// to be retried, or failed for good.
    #[test]
    fn attempts_are_counted_by_outcome() {
        let (_d, store) = crate::store::testing::store();
        store
            .add_subscription(
                NewSubscription {
                    url: "https://hooks.example/in".into(),
                    key: "k".into(),
                    event_types: vec!["*".into()],
                    sign: false,
                },
                None,
            )
            .unwrap();
        crate::store::testing::queue(&store);
        let d = store.take_due(10).unwrap().pop().expect("the queued event");
        // Schedule: one retry, then give up.
        store
            .record_attempt(d.id, d.attempts, Err("refused".into()), &[0])
            .unwrap();
        store
            .record_attempt(d.id, d.attempts + 1, Err("refused".into()), &[0])
            .unwrap();
        store.record_attempt(d.id, 0, Ok(204), &[0]).unwrap();
        let text = store.metrics().encode(&[]);
        for outcome in ["delivered", "retry", "failed"] {
            let line = format!("control_plane_webhook_deliveries_total{{outcome=\"{outcome}\"}} 1");
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::{check_target, is_private_ip};

    #[test]
    fn addresses_that_reach_the_host_or_its_network_are_private() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.1.2.3",
            "100.100.100.200",
            "192.0.0.8",
            "198.18.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::",
        ] {
            assert!(is_private_ip(a.parse().unwrap()), "{a}");
        }
        for a in [
            "93.184.216.34",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::",
        ] {
            assert!(!is_private_ip(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn localhost_with_the_roots_dot_is_refused() {
        for u in [
            "http://localhost.:8080/x",
            "http://a.LOCALHOST./x",
            "http://[64:ff9b::a9fe:a9fe]/x",
        ] {
            assert!(check_target(u, false).is_err(), "{u}");
        }
        assert!(check_target("https://hooks.example.com./x", false).is_ok());
    }

    /// A URL with a control character is refused naming the field: the
    /// URL parser would drop a tab or a line break, but the text stored
    /// and logged used to be the raw one (a forged log line after a
    /// newline; a carriage return passed as is).
    #[test]
    fn control_characters_in_a_webhook_url_are_refused() {
        for u in [
            "https://hooks.example/x\n2026-01-01T00:00:00Z  INFO forged",
            "https://hooks.example/x\rforged",
            "https://hooks.example/\tx",
            "https://hooks.example/x\u{1b}[31m",
            "https://hooks.example/x\u{85}",
        ] {
            let e = check_target(u, true).expect_err(u).to_string();
            assert!(
                e.starts_with("url holds the control character"),
                "{u:?}: {e}"
            );
        }
    }

    /// What is stored is the parsed URL, the one that was checked.
    #[test]
    fn the_stored_url_is_the_parsed_one() {
        let (_d, store) = crate::store::testing::store();
        let sub = store
            .add_subscription(
                super::NewSubscription {
                    url: "HTTPS://Hooks.Example:443/a b?q=1".into(),
                    key: "k".into(),
                    event_types: vec!["*".into()],
                    sign: false,
                },
                None,
            )
            .unwrap();
        assert_eq!(sub.url, "https://hooks.example/a%20b?q=1");
        assert_eq!(store.subscriptions(None).unwrap()[0].url, sub.url);
    }

    /// A refused private target is named by scheme, host and port only.
    #[test]
    fn a_refused_private_url_is_not_repeated_whole() {
        let e = check_target("http://u:pw@127.0.0.1:8080/secret?token=t", false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("url http://127.0.0.1:8080 points at"), "{e}");
        assert!(!e.contains("secret") && !e.contains("pw"), "{e}");
    }
}
