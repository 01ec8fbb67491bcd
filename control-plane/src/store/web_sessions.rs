//! Sign-ins of the web pages: a random token in an `HttpOnly` cookie,
//! kept here only as its SHA-256 (like every other secret), with the
//! CSRF token its forms must carry and a fixed lifetime. Signing out
//! deletes the row; a user removed from the file signs out everywhere
//! (the join below finds nobody).

use super::{now_ms, Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// A signed-in web session.
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    /// The person signed in.
    pub(crate) user: String,
    /// What every form of this sign-in posts back (checked in constant
    /// time): a page of another site cannot read it, so it cannot forge
    /// a form that carries it.
    pub(crate) csrf: String,
}

/// How long a one-time sign-in link stays good: ten minutes.
pub const LINK_TTL_MS: i64 = 10 * 60 * 1000;

impl Store {
    /// Records a sign-in of `user` (by the hash of its cookie token) for
    /// `ttl_ms`; expired sign-ins of anyone are dropped on the way.
    pub(crate) fn create_web_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            tx.sql
                .execute("DELETE FROM web_sessions WHERE expires_at <= ?1", params![now])?;
            tx.sql.execute(
                "INSERT INTO web_sessions (token_hash, user_name, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash, user, csrf, now, now + ttl_ms],
            )?;
            Ok(())
        })
    }

    /// The live sign-in of a cookie token's hash, if any (expired, signed
    /// out or of a user who no longer exists: none).
    pub(crate) fn web_session(&self, token_hash: &str) -> Result<Option<WebSession>, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            Ok(tx
                .sql
                .query_row(
                    "SELECT w.user_name, w.csrf FROM web_sessions w JOIN users u ON u.name = w.user_name WHERE w.token_hash = ?1 AND w.expires_at > ?2",
                    params![token_hash, now],
                    |r| {
                        Ok(WebSession {
                            user: r.get(0)?,
                            csrf: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Whether `user` exists.
    pub(crate) fn user_exists(&self, user: &str) -> Result<bool, StoreError> {
        self.tx(|tx| super::auth::password_hash(tx, user).map(|h| h.is_some()))
    }

    /// Records a one-time sign-in link of `user` by its code's hash, good
    /// for [`LINK_TTL_MS`].
    pub(crate) fn insert_web_link(&self, code_hash: &str, user: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            tx.sql
                .execute("DELETE FROM web_links WHERE expires_at <= ?1", params![now])?;
            tx.sql.execute(
                "INSERT INTO web_links (token_hash, user_name, expires_at) VALUES (?1, ?2, ?3)",
                params![code_hash, user, now + LINK_TTL_MS],
            )?;
            Ok(())
        })
    }

    /// Redeems a sign-in link's code (by its hash): its user, once.
    pub(crate) fn redeem_web_link(&self, code_hash: &str) -> Result<Option<String>, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let user: Option<String> = tx
                .sql
                .query_row(
                    "DELETE FROM web_links WHERE token_hash = ?1 AND expires_at > ?2 RETURNING user_name",
                    params![code_hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(user)
        })
    }

    /// Ends every web sign-in of `user` (the operator's `admin sign-out`);
    /// how many there were.
    pub(crate) fn end_web_sessions_of(&self, user: &str) -> Result<usize, StoreError> {
        self.tx(|tx| {
            Ok(tx.sql.execute(
                "DELETE FROM web_sessions WHERE user_name = ?1",
                params![user],
            )?)
        })
    }

    /// Signs a cookie token out (nothing when it is unknown).
    pub(crate) fn end_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.sql.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                params![token_hash],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::store;

    #[test]
    fn a_sign_in_lives_until_it_expires_or_is_ended() {
        let (_d, s) = store();
        s.add_user("ann", "pw-of-ann-123", None).unwrap();
        s.create_web_session("h1", "ann", "c1", 60_000).unwrap();
        let w = s.web_session("h1").unwrap().expect("signed in");
        assert_eq!((w.user.as_str(), w.csrf.as_str()), ("ann", "c1"));
        assert!(s.web_session("h2").unwrap().is_none());
        s.end_web_session("h1").unwrap();
        assert!(s.web_session("h1").unwrap().is_none());
        s.create_web_session("h3", "ann", "c3", -1).unwrap();
        assert!(s.web_session("h3").unwrap().is_none(), "expired");
    }

    #[test]
    fn a_sign_in_link_is_good_once() {
        let (_d, s) = store();
        s.add_user("ann", "pw-of-ann-123", None).unwrap();
        s.insert_web_link("h", "ann").unwrap();
        assert_eq!(s.redeem_web_link("h").unwrap().as_deref(), Some("ann"));
        assert_eq!(s.redeem_web_link("h").unwrap(), None, "used");
        assert_eq!(s.redeem_web_link("nope").unwrap(), None);
    }

    #[test]
    fn a_sign_in_of_nobody_is_none() {
        let (_d, s) = store();
        s.create_web_session("h1", "ghost", "c1", 60_000).unwrap();
        assert!(s.web_session("h1").unwrap().is_none());
    }
}
