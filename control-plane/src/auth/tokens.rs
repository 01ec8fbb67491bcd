//! What the authorization server hands out and takes back: authorization
//! codes (PKCE-bound, single use), token pairs issued per sign-in (a token
//! "family"), refresh with rotation and reuse detection, revocation.
//! Each grant runs in one store transaction, so a check and the write it
//! allows cannot be separated by another request.

use super::accounts::Client;
use super::error::OAuthError;
use super::{random_secret, secret_hash, AuthSettings, ACCESS_PREFIX, CODE_PREFIX, REFRESH_PREFIX};
use crate::store::auth::{self as db, NewCode, NewToken, TokenKind, TokenState};
use crate::store::{now_ms, Store, StoreError, Tx};
use base64::Engine;
use sha2::Digest;

/// What the token endpoint hands out.
#[derive(Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The refresh token (rotated at every use).
    pub refresh_token: String,
    /// Granted scope.
    pub scope: String,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A PKCE verifier as RFC 7636 §4.1 defines it: 43–128 characters of
/// `A–Z a–z 0–9 - . _ ~`.
fn check_verifier(v: &str) -> Result<(), OAuthError> {
    let ok = (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OAuthError::new(
            "invalid_request",
            "code_verifier must be 43–128 characters of A–Z a–z 0–9 - . _ ~ (RFC 7636 §4.1)",
        ))
    }
}

/// S256 of a PKCE verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl Store {
    /// Stores an authorization code; returns it.
    pub(crate) fn create_code(
        &self,
        client_id: &str,
        user: &str,
        redirect_uri: &str,
        challenge: Option<(&str, &str)>,
        scope: &str,
    ) -> Result<String, StoreError> {
        let code = random_secret(CODE_PREFIX);
        let hash = secret_hash(&code);
        let new = NewCode {
            hash: &hash,
            client_id,
            user,
            redirect_uri,
            challenge,
            scope,
            expires_at: now_ms() + self.auth_settings().code_seconds as i64 * 1000,
        };
        self.tx(|tx| db::insert_code(tx, &new))?;
        Ok(code)
    }

    /// The authorization-code grant: checks the code, the redirect URI
    /// and the PKCE verifier, then issues a new token family. A code used
    /// twice revokes what the first use issued (RFC 6749 §4.1.2).
    pub(crate) fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<IssuedTokens, OAuthError> {
        if let Some(v) = verifier {
            check_verifier(v)?;
        }
        let settings = self.auth_settings();
        let now = now_ms();
        let hash = secret_hash(code);
        self.tx(|tx| {
            let Some(c) = db::code(tx, &hash)? else {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "unknown authorization code",
                )));
            };
            if c.client_id != client.client_id {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "the code was issued to another client",
                )));
            }
            if c.expires_at <= now {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "the authorization code expired; sign in again",
                )));
            }
            // Used twice while still valid: someone else has it; what the
            // first use gave is revoked (RFC 6749 §4.1.2).
            if let Some(f) = &c.family {
                db::revoke_family(tx, f, None)?;
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "the authorization code was already used; the tokens it gave were revoked",
                )));
            }
            if c.redirect_uri != redirect_uri {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "redirect_uri differs from the one the code was issued for",
                )));
            }
            match (
                c.challenge.as_deref(),
                c.challenge_method.as_deref(),
                verifier,
            ) {
                (Some(ch), Some("S256"), Some(v))
                    if subtle::ConstantTimeEq::ct_eq(s256(v).as_bytes(), ch.as_bytes()).into() => {}
                (Some(_), _, None) => {
                    return Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "code_verifier is missing (PKCE)",
                    )))
                }
                (Some(_), _, Some(_)) => {
                    return Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "code_verifier does not match the code_challenge (PKCE)",
                    )))
                }
                (None, _, _) if !client.confidential => {
                    return Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "public clients must use PKCE (S256)",
                    )))
                }
                (None, _, _) => {}
            }
            let family = uuid::Uuid::new_v4().simple().to_string();
            db::mark_code_used(tx, &hash, &family)?;
            Ok(Ok(issue(
                tx,
                &settings,
                &family,
                &client.client_id,
                &c.user,
                &c.scope,
                now,
            )?))
        })?
    }

    /// The refresh-token grant with rotation: the old refresh token is
    /// spent; presenting a spent one again revokes the whole family (the
    /// token was stolen, or the client is confused: either way, sign in
    /// again).
    pub(crate) fn refresh(
        &self,
        client: &Client,
        refresh_token: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let settings = self.auth_settings();
        let now = now_ms();
        let hash = secret_hash(refresh_token);
        self.tx(|tx| {
            let Some(t) = db::token(tx, &hash)?.filter(|t| t.kind == TokenKind::Refresh) else {
                return Ok(Err(OAuthError::new("invalid_grant", "unknown refresh token; sign in again with `runner login`")));
            };
            if t.client_id != client.client_id {
                return Ok(Err(OAuthError::new("invalid_grant", "the refresh token was issued to another client")));
            }
            match t.state {
                TokenState::Rotated => {
                    db::revoke_family(tx, &t.family, None)?;
                    tracing::warn!(user = %t.user, "refresh token reuse: every token of that sign-in was revoked");
                    return Ok(Err(OAuthError::new(
                        "invalid_grant",
                        "refresh token reuse detected: every token of this sign-in was revoked; sign in again with `runner login`",
                    )));
                }
                TokenState::Revoked => return Ok(Err(OAuthError::new("invalid_grant", "the refresh token was revoked; sign in again with `runner login`"))),
                TokenState::Active => {}
            }
            if t.expires_at <= now {
                return Ok(Err(OAuthError::new("invalid_grant", "the refresh token expired; sign in again with `runner login`")));
            }
            db::set_token_state(tx, &hash, TokenState::Rotated)?;
            Ok(Ok(issue(tx, &settings, &t.family, &t.client_id, &t.user, &t.scope, now)?))
        })?
    }

    /// Revokes a token of `client` (RFC 7009). A refresh token revokes
    /// every refresh token of its sign-in; its access tokens end at their
    /// (short) expiry. Unknown tokens are not an error.
    pub(crate) fn revoke(&self, client: &Client, token: &str) -> Result<(), OAuthError> {
        let hash = secret_hash(token);
        self.tx(|tx| {
            match db::token(tx, &hash)? {
                // RFC 7009 §2.1: a token issued to another client is not
                // this client's to revoke.
                Some(t) if t.client_id != client.client_id => {
                    return Ok(Err(OAuthError::new(
                        "unauthorized_client",
                        "this token was issued to another client; only that client revokes it",
                    )))
                }
                // §2.1: revoking a refresh token ends the access tokens of
                // the same grant too.
                Some(t) if t.kind == TokenKind::Refresh => db::revoke_family(tx, &t.family, None)?,
                Some(_) => db::set_token_state(tx, &hash, TokenState::Revoked)?,
                None => {}
            }
            Ok(Ok(()))
        })
        .map_err(OAuthError::from)?
    }

    /// Signs a user out of a client and out of the web pages: every
    /// refresh token of theirs for the client is
    /// revoked (their workers cannot refresh, release their sessions and
    /// stop; access tokens end at their short expiry). Returns how many
    /// sign-ins were ended.
    pub fn revoke_user(&self, user: &str, client_id: &str) -> Result<usize, StoreError> {
        let n = self.tx(|tx| db::revoke_user_refresh(tx, user, client_id))?;
        // And the person's web sign-ins: a sign-out that left a browser
        // signed in would not end a compromised account's access.
        self.end_web_sessions_of(user)?;
        Ok(n)
    }

    /// Issues a token pair for a user directly, without the browser flow:
    /// for `runner up`'s embedded control plane, benchmarks and admin use.
    pub fn issue_tokens(&self, user: &str, client_id: &str) -> Result<IssuedTokens, StoreError> {
        let settings = self.auth_settings();
        let family = uuid::Uuid::new_v4().simple().to_string();
        self.tx(|tx| issue(tx, &settings, &family, client_id, user, "agent", now_ms()))
    }
}

/// A new access + refresh pair in `family`.
pub(super) fn issue(
    tx: &Tx<'_>,
    settings: &AuthSettings,
    family: &str,
    client_id: &str,
    user: &str,
    scope: &str,
    now: i64,
) -> Result<IssuedTokens, StoreError> {
    let access = random_secret(ACCESS_PREFIX);
    let refresh = random_secret(REFRESH_PREFIX);
    for (token, kind, life) in [
        (&access, TokenKind::Access, settings.access_seconds),
        (&refresh, TokenKind::Refresh, settings.refresh_seconds),
    ] {
        db::insert_token(
            tx,
            &NewToken {
                hash: &secret_hash(token),
                kind,
                family,
                client_id,
                user,
                scope,
                expires_at: now + life as i64 * 1000,
                now,
            },
        )?;
    }
    Ok(IssuedTokens {
        access_token: access,
        token_type: "Bearer",
        expires_in: settings.access_seconds,
        refresh_token: refresh,
        scope: scope.to_string(),
    })
}
