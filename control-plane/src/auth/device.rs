//! The device authorization grant (RFC 8628): how a host without a
//! browser signs in. The client asks for a device code and a short user
//! code; a person enters the user code on the verification page (any
//! device), signs in and allows or denies; meanwhile the client polls the
//! token endpoint, no faster than the interval, and gets the tokens once.
//! Each step runs in one store transaction.

use super::accounts::Client;
use super::error::OAuthError;
use super::tokens::issue;
use super::{random_secret, secret_hash, DEVICE_CODE_PREFIX};
use crate::store::device::{self as db, DeviceState, NewDevice};
use crate::store::{now_ms, Store, StoreError};

/// The user code's alphabet: RFC 8628 §6.1's twenty consonants — no
/// vowels (no words), none that look alike, the same in either case.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code (20^8: about 34 bits, against at most
/// [`super::lockout::MAX_FAILURES`] guesses per person per window).
const USER_CODE_LEN: usize = 8;
/// How much a `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_SECONDS: u64 = 5;
/// Polls this much early still count as on time (clocks and the network
/// jitter; a client that sleeps the interval is never told to slow down).
const POLL_SLACK_MS: i64 = 250;

/// What the device authorization endpoint hands out.
pub(crate) struct IssuedDevice {
    /// The secret the client polls with.
    pub(crate) device_code: String,
    /// What the person types, `XXXX-XXXX`.
    pub(crate) user_code: String,
    /// Seconds both live.
    pub(crate) expires_in: u64,
    /// Seconds between polls.
    pub(crate) interval: u64,
}

/// A fresh user code of [`ALPHABET`], without the dash.
fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the OS random source works");
        // 240 is the largest multiple of 20 under 256: no letter is likelier.
        for x in b.into_iter().filter(|x| *x < 240) {
            if code.len() < USER_CODE_LEN {
                code.push(ALPHABET[(x % 20) as usize] as char);
            }
        }
    }
    code
}

/// A user code as shown: `XXXX-XXXX`.
pub(crate) fn display(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// A user code as typed, normalised (RFC 8628 §6.1): case folded, dashes
/// and spaces dropped; `None` unless eight letters of the alphabet remain.
pub(crate) fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What a person decided on the verification page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Sign the device in as me.
    Allow,
    /// Refuse it.
    Deny,
}

/// Why a user code was not accepted on the verification page.
#[derive(Debug)]
pub(crate) enum CodeRefused {
    /// No live, undecided code of that value.
    Unknown,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for CodeRefused {
    fn from(e: StoreError) -> Self {
        CodeRefused::Store(e)
    }
}

impl Store {
    /// Starts a device grant for `client` (RFC 8628 §3.1–3.2).
    pub(crate) fn create_device_code(
        &self,
        client: &Client,
        scope: &str,
    ) -> Result<IssuedDevice, StoreError> {
        let settings = self.auth_settings();
        let device_code = random_secret(DEVICE_CODE_PREFIX);
        let device_hash = secret_hash(&device_code);
        let expires_at = now_ms() + settings.device_seconds as i64 * 1000;
        // A user code equal to a live one is drawn again.
        for _ in 0..8 {
            let user_code = new_user_code();
            let new = NewDevice {
                device_hash: &device_hash,
                user_code_hash: &secret_hash(&user_code),
                client_id: &client.client_id,
                scope,
                interval_s: settings.device_interval_seconds,
                expires_at,
            };
            if self.tx(|tx| db::insert(tx, &new))? {
                return Ok(IssuedDevice {
                    device_code,
                    user_code: display(&user_code),
                    expires_in: settings.device_seconds,
                    interval: settings.device_interval_seconds,
                });
            }
        }
        Err(StoreError::Busy)
    }

    /// Records `user`'s decision on a live, undecided user code
    /// (normalised); the name of the client it was for, for the page to
    /// show.
    pub(crate) fn decide_device_code(
        &self,
        user_code: &str,
        user: &str,
        decision: Decision,
    ) -> Result<String, CodeRefused> {
        let hash = secret_hash(user_code);
        let now = now_ms();
        self.tx(|tx| {
            let Some(d) = db::by_user_code(tx, &hash)?
                .filter(|d| d.state == DeviceState::Pending && d.expires_at > now)
            else {
                return Ok(Err(CodeRefused::Unknown));
            };
            let state = match decision {
                Decision::Allow => DeviceState::Approved,
                Decision::Deny => DeviceState::Denied,
            };
            db::decide(tx, &d.device_hash, state, user)?;
            let name = crate::store::auth::client(tx, &d.client_id)?
                .map(|c| c.name)
                .unwrap_or(d.client_id);
            Ok(Ok(name))
        })?
    }

    /// The device-code grant at the token endpoint (RFC 8628 §3.4–3.5):
    /// `authorization_pending` until a person decides, `slow_down` for a
    /// poll sooner than the interval (which then grows by 5 s),
    /// `access_denied`, `expired_token`; the tokens once — a second
    /// redemption revokes what the first gave, as for a reused
    /// authorization code.
    pub(crate) fn poll_device_code(
        &self,
        client: &Client,
        device_code: &str,
    ) -> Result<super::IssuedTokens, OAuthError> {
        let settings = self.auth_settings();
        let hash = secret_hash(device_code);
        let now = now_ms();
        self.tx(|tx| {
            let Some(d) = db::by_device(tx, &hash)? else {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "unknown device code; start again with POST /oauth/device_authorization (`runner login --device`)",
                )));
            };
            if d.client_id != client.client_id {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "the device code was issued to another client",
                )));
            }
            match d.state {
                DeviceState::Redeemed => {
                    if let Some(f) = &d.family {
                        crate::store::auth::revoke_family(tx, f, None)?;
                    }
                    Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "the device code was already redeemed; the tokens it gave were revoked; sign in again",
                    )))
                }
                _ if d.expires_at <= now => Ok(Err(OAuthError::new(
                    "expired_token",
                    "the device code expired before anyone approved it; start again (`runner login --device`)",
                ))),
                DeviceState::Denied => Ok(Err(OAuthError::new(
                    "access_denied",
                    "the person on the verification page denied access",
                ))),
                DeviceState::Pending => {
                    let too_soon = d
                        .last_poll_at
                        .is_some_and(|t| now - t < d.interval_s as i64 * 1000 - POLL_SLACK_MS);
                    if too_soon {
                        let interval = d.interval_s + SLOW_DOWN_SECONDS;
                        db::polled(tx, &hash, now, interval)?;
                        return Ok(Err(OAuthError::new(
                            "slow_down",
                            format!("polled sooner than the interval; wait {interval} s between polls from now on"),
                        )));
                    }
                    db::polled(tx, &hash, now, d.interval_s)?;
                    Ok(Err(OAuthError::new(
                        "authorization_pending",
                        "nobody has approved the code yet; keep polling at the interval",
                    )))
                }
                DeviceState::Approved => {
                    let family = uuid::Uuid::new_v4().simple().to_string();
                    let user = d.user.clone().unwrap_or_default();
                    db::redeemed(tx, &hash, &family)?;
                    Ok(Ok(issue(
                        tx,
                        &settings,
                        &family,
                        &client.client_id,
                        &user,
                        &d.scope,
                        now,
                    )?))
                }
            }
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_and_typing_is_forgiving() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
            seen.insert(c);
        }
        assert!(seen.len() > 190, "codes repeat: {}", seen.len());
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
        for typed in ["BCDF-GHJK", "bcdf-ghjk", "bcdf ghjk", "BCDFGHJK"] {
            assert_eq!(normalise(typed).as_deref(), Some("BCDFGHJK"), "{typed}");
        }
        // Vowels, digits, wrong lengths: not a code.
        for typed in ["BCDF-GHJA", "BCDF-GHJ1", "BCDF-GHJ", "BCDF-GHJKL", ""] {
            assert_eq!(normalise(typed), None, "{typed}");
        }
    }
}
