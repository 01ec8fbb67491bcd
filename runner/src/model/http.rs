//! The HTTP call both model clients share: JSON POST with a total timeout,
//! retries with backoff on 408/409/429/5xx, timeouts and connection
//! failures, `Retry-After` (and OpenAI's `retry-after-ms`) honoured up to a
//! configured ceiling, and cancellation that returns within ~25 ms.

use super::ModelError;
use crate::cancel::Cancel;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, Instant};

/// A configured endpoint of one provider.
pub(crate) struct HttpCaller {
    provider: String,
    url: String,
    client: reqwest::blocking::Client,
    timeout_seconds: u64,
    retries: u32,
    max_retry_after: Duration,
}

/// How often a waiting call looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(25);

impl HttpCaller {
    /// `headers` are sent on every call; values marked sensitive (keys) are
    /// never printed by the HTTP stack.
    pub(crate) fn new(
        cfg: &super::ProviderConfig,
        url: String,
        headers: Vec<(&'static str, String, bool)>,
    ) -> Result<HttpCaller, String> {
        let mut map = HeaderMap::new();
        for (name, value, sensitive) in headers {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                format!(
                    "provider {}: the value for header {name} has characters HTTP does not allow",
                    cfg.name
                )
            })?;
            v.set_sensitive(sensitive);
            map.insert(HeaderName::from_static(name), v);
        }
        let client = reqwest::blocking::Client::builder()
            .default_headers(map)
            .timeout(Duration::from_secs(cfg.timeout_seconds))
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_seconds))
            .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("provider {}: cannot build its HTTP client: {e}", cfg.name))?;
        Ok(HttpCaller {
            provider: cfg.name.clone(),
            url,
            client,
            timeout_seconds: cfg.timeout_seconds,
            retries: cfg.retries,
            max_retry_after: Duration::from_secs(cfg.max_retry_after_seconds),
        })
    }

    /// POSTs `body` and returns the JSON answer, retrying what is worth
    /// retrying.
    pub(crate) fn post(
        &self,
        body: &serde_json::Value,
        cancel: &Cancel,
    ) -> Result<serde_json::Value, ModelError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ModelError::Malformed {
            provider: self.provider.clone(),
            message: format!("the request could not be encoded: {e}"),
        })?;
        let mut attempt = 0u32;
        loop {
            let failure = match self.once(bytes.clone(), cancel)? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retryable { error, retry_after } => (error, retry_after),
                Attempt::Final(error) => return Err(error),
            };
            if attempt >= self.retries {
                return Err(failure.0);
            }
            let wait = match failure.1 {
                Some(after) if after > self.max_retry_after => {
                    return Err(match failure.0 {
                        ModelError::Provider { provider, status, message } => ModelError::Provider {
                            provider,
                            status,
                            message: format!(
                                "{message} (it asks to retry after {} s, longer than max_retry_after_seconds)",
                                after.as_secs()
                            ),
                        },
                        other => other,
                    })
                }
                Some(after) => after,
                None => backoff(attempt),
            };
            tracing::warn!(
                provider = %self.provider,
                "model call failed ({}); retry {} of {} in {} ms",
                failure.0,
                attempt + 1,
                self.retries,
                wait.as_millis()
            );
            sleep_unless_cancelled(wait, cancel)?;
            attempt += 1;
        }
    }

    fn once(&self, bytes: Vec<u8>, cancel: &Cancel) -> Result<Attempt, ModelError> {
        let request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = request.send().and_then(|r| {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                r.text().map(|t| (status, headers, t))
            });
            let _ = tx.send(result);
        });
        let result = loop {
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(r) => break r,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.is_cancelled() {
                        return Err(ModelError::Cancelled);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(Attempt::Final(
                        self.transport("the HTTP call ended without an answer".into()),
                    ))
                }
            }
        };
        let (status, headers, text) = match result {
            Ok(x) => x,
            Err(e) if e.is_timeout() => {
                return Ok(Attempt::Retryable {
                    error: ModelError::Timeout {
                        provider: self.provider.clone(),
                        seconds: self.timeout_seconds,
                    },
                    retry_after: None,
                })
            }
            Err(e) => {
                // Connection failures are retried; the message is reqwest's
                // chain without the URL's secrets (there are none in it).
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                return Ok(Attempt::Retryable {
                    error: self.transport(msg),
                    retry_after: None,
                });
            }
        };
        if (200..300).contains(&status) {
            return match serde_json::from_str(&text) {
                Ok(v) => Ok(Attempt::Done(v)),
                Err(e) => Ok(Attempt::Final(ModelError::Malformed {
                    provider: self.provider.clone(),
                    message: format!("the body is not JSON ({e}): {}", clip(&text, 300)),
                })),
            };
        }
        let error = ModelError::Provider {
            provider: self.provider.clone(),
            status,
            message: error_message(&text),
        };
        if matches!(status, 408 | 409 | 429) || status >= 500 {
            Ok(Attempt::Retryable {
                error,
                retry_after: retry_after(&headers),
            })
        } else {
            Ok(Attempt::Final(error))
        }
    }

    fn transport(&self, message: String) -> ModelError {
        ModelError::Transport {
            provider: self.provider.clone(),
            url: self.url.clone(),
            message,
        }
    }
}

enum Attempt {
    Done(serde_json::Value),
    Retryable {
        error: ModelError,
        retry_after: Option<Duration>,
    },
    Final(ModelError),
}

/// 0.5 s, 1 s, 2 s, … up to 8 s, each ±25 %.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(4)).min(8000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 500) as u64; // 0..500 ‰
    Duration::from_millis(base * (750 + jitter) / 1000)
}

fn sleep_unless_cancelled(d: Duration, cancel: &Cancel) -> Result<(), ModelError> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        std::thread::sleep(CANCEL_POLL.min(end.saturating_duration_since(Instant::now())));
    }
    Ok(())
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds. An HTTP-date is
/// not honoured (the backoff applies).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_millis(ms.max(0.0) as u64));
    }
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_millis((s.max(0.0) * 1000.0) as u64))
}

/// The provider's own message: `error.message` in both OpenAI's and
/// Anthropic's error bodies, else the start of the body.
fn error_message(text: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        let msg = e
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| e.as_str())?;
        let kind = e.get("type").and_then(|t| t.as_str());
        Some(match kind {
            Some(k) => format!("{msg} ({k})"),
            None => msg.to_string(),
        })
    });
    from_json.unwrap_or_else(|| {
        if text.trim().is_empty() {
            "(empty body)".into()
        } else {
            clip(text.trim(), 300)
        }
    })
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_providers_error_bodies() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#
            ),
            "Rate limit reached (requests)"
        );
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded (overloaded_error)"
        );
        assert_eq!(error_message("Bad gateway"), "Bad gateway");
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        assert!(
            backoff(0) >= Duration::from_millis(375) && backoff(0) <= Duration::from_millis(625)
        );
        assert!(backoff(10) <= Duration::from_millis(10_000));
    }
}
