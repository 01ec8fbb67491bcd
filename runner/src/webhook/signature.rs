//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`),
//! verified in constant time with ring, within a replay window.

use base64::Engine;

/// A signing secret: `whsec_` + base64 of the key bytes (or raw base64).
#[derive(Clone)]
pub(crate) struct SigningKey(ring::hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`.
    pub(crate) fn parse(secret: &str) -> Result<SigningKey, String> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .unwrap_or(secret.trim());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "a signing secret is whsec_ followed by base64".to_string())?;
        if bytes.len() < 16 {
            return Err("a signing secret has at least 16 bytes".into());
        }
        Ok(SigningKey(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &bytes,
        )))
    }

    /// The `v1,<base64>` signature of a delivery (the control plane signs;
    /// the runner only checks, so only its tests sign).
    #[cfg(test)]
    pub(crate) fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.0, &content(id, timestamp, body));
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }

    /// Checks a delivery's headers: the timestamp within `tolerance`
    /// seconds of `now`, and one `v1` signature valid.
    pub(crate) fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
        tolerance: u64,
    ) -> Result<(), String> {
        let (Some(id), Some(ts), Some(sigs)) = (id, timestamp, signatures) else {
            return Err("webhook-id, webhook-timestamp and webhook-signature are required".into());
        };
        let ts: i64 = ts
            .trim()
            .parse()
            .map_err(|_| "webhook-timestamp is not a number".to_string())?;
        let skew = now
            .checked_sub(ts)
            .map(i64::unsigned_abs)
            .unwrap_or(u64::MAX);
        if skew > tolerance {
            return Err(format!(
                "webhook-timestamp is {skew} s from now (allowed: {tolerance} s); a replay or a clock problem"
            ));
        }
        let msg = content(id, ts, body);
        let b64 = base64::engine::general_purpose::STANDARD;
        let ok = sigs.split_whitespace().any(|s| {
            s.strip_prefix("v1,")
                .and_then(|sig| b64.decode(sig).ok())
                .is_some_and(|tag| ring::hmac::verify(&self.0, &msg, &tag).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err("no valid v1 signature".into())
        }
    }
}

fn content(id: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{id}.{ts}.").into_bytes();
    m.extend_from_slice(body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_vector() {
        // The example from the Standard Webhooks specification.
        let k = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = k.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let v = |sigs: &str, now: i64| {
            k.verify(
                Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
                Some("1614265330"),
                Some(sigs),
                body,
                now,
                300,
            )
        };
        assert!(v(&format!("v1,bm90IGl0 {sig}"), 1614265330).is_ok());
        assert!(v("v1,bm90IGl0", 1614265330).is_err());
        assert!(v(&sig, 1614265330 + 301).unwrap_err().contains("replay"));
        assert!(k.verify(None, None, None, body, 0, 300).is_err());
    }
}
