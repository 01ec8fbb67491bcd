//! The conversation of a model session: appended by its worker under a
//! valid claim (idempotent on retry, refused when the worker's view is
//! stale), read back by anyone who may read the session.

use super::claims::valid_claim;
use super::sessions::load_session;
use super::{now_ms, rfc3339, ConflictKind, Store, StoreError};
use protocol::conversation::{AppendConversation, ConversationEntry};
use rusqlite::params;

/// Longest message of a conversation the store keeps.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most messages one append may carry.
const MAX_APPEND_MESSAGES: usize = 100;

impl Store {
    /// Appends messages to a session's conversation under a valid claim.
    pub(crate) fn append_conversation(
        &self,
        session: &str,
        a: AppendConversation,
    ) -> Result<u64, StoreError> {
        if a.messages.len() > MAX_APPEND_MESSAGES {
            return Err(StoreError::invalid(format!(
                "messages: at most {MAX_APPEND_MESSAGES} per call"
            )));
        }
        let bodies = a
            .messages
            .iter()
            .map(|m| serde_json::to_string(m).map_err(StoreError::corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(i) = bodies.iter().position(|b| b.len() > MAX_MESSAGE_BYTES) {
            return Err(StoreError::invalid(format!(
                "messages[{i}] is longer than {} KiB; cap tool results before sending",
                MAX_MESSAGE_BYTES / 1024
            )));
        }
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, &a.claim_id, now)?;
            let mut seq: i64 = tx.sql.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )?;
            if let Some(expect) = a.expect_count {
                let expect = expect as i64;
                if seq == expect + bodies.len() as i64 {
                    // A retry of an append that landed.
                    let landed: Vec<String> = {
                        let mut st = tx.sql.prepare("SELECT body FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq")?;
                        let v = st.query_map(params![session, expect], |r| r.get(0))?.collect::<Result<_, _>>()?;
                        v
                    };
                    if landed == bodies {
                        return Ok(seq as u64);
                    }
                }
                if seq != expect {
                    return Err(StoreError::conflict(ConflictKind::Conversation,
                        format!("the conversation has {seq} messages, not {expect}; read it again before appending"),
                    ));
                }
            }
            for b in &bodies {
                seq += 1;
                tx.sql.execute(
                    "INSERT INTO messages (session_id, seq, at, body) VALUES (?1, ?2, ?3, ?4)",
                    params![session, seq, now, b],
                )?;
            }
            Ok(seq as u64)
        })
    }

    /// A session's conversation, oldest first.
    pub(crate) fn conversation(&self, session: &str) -> Result<Vec<ConversationEntry>, StoreError> {
        self.tx(|tx| {
            load_session(tx, session)?;
            let mut st = tx
                .sql
                .prepare("SELECT seq, at, body FROM messages WHERE session_id = ?1 ORDER BY seq")?;
            let rows = st
                .query_map(params![session], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(seq, at, body)| {
                    Ok(ConversationEntry {
                        seq: seq as u64,
                        at: rfc3339(at),
                        message: serde_json::from_str(&body).map_err(StoreError::corrupt)?,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{claimed, store};
    use super::*;
    use protocol::conversation::Message;

    fn append(store: &Store, session: &str, claim: &str, expect: u64) -> Result<u64, StoreError> {
        store.append_conversation(
            session,
            AppendConversation {
                claim_id: claim.into(),
                expect_count: Some(expect),
                messages: vec![Message::User {
                    content: format!("after {expect}"),
                    images: vec![],
                }],
            },
        )
    }

    #[test]
    fn a_retried_append_lands_once() {
        let (_d, store) = store();
        let (_, c) = claimed(&store, 60);
        assert_eq!(append(&store, &c.session.id, &c.claim_id, 0).unwrap(), 1);
        assert_eq!(append(&store, &c.session.id, &c.claim_id, 0).unwrap(), 1);
        assert_eq!(store.conversation(&c.session.id).unwrap().len(), 1);
    }

    #[test]
    fn append_from_a_stale_view_is_conflict() {
        let (_d, store) = store();
        let (_, c) = claimed(&store, 60);
        append(&store, &c.session.id, &c.claim_id, 0).unwrap();
        let e = append(&store, &c.session.id, &c.claim_id, 5).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    kind: ConflictKind::Conversation,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(store.conversation(&c.session.id).unwrap().len(), 1);
    }
}
