//! The opaque `cursor` of `GET /v0/agents`: the position after the last
//! agent of a page, `(created_at, id)` in the list's order (newest first).
//! A keyset, not an offset, so launches between two pages neither repeat
//! an agent nor skip one.

use base64::Engine;

/// A position in the list: agents strictly older than this come next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageCursor {
    /// Milliseconds since the epoch of the last agent shown.
    pub(crate) created_ms: i64,
    /// Its id (the tie-breaker within one millisecond).
    pub(crate) id: String,
}

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl PageCursor {
    /// The `nextCursor` string.
    pub(crate) fn encode(&self) -> String {
        ENGINE.encode(format!("{}:{}", self.created_ms, self.id))
    }

    /// Reads a `cursor`; `None` for anything this control plane did not
    /// hand out in that shape.
    pub(crate) fn decode(s: &str) -> Option<PageCursor> {
        let raw = String::from_utf8(ENGINE.decode(s).ok()?).ok()?;
        let (ms, id) = raw.split_once(':')?;
        let ok_id = id.len() == 35
            && id.starts_with("bc_")
            && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
        ok_id.then_some(PageCursor {
            created_ms: ms.parse().ok()?,
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_garbage_does_not() {
        let c = PageCursor {
            created_ms: 1_700_000_000_123,
            id: format!("bc_{}", "a1".repeat(16)),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "!!",
            "bc_x",
            &ENGINE.encode("12:ses_00"),
            &ENGINE.encode("x:bc_0"),
        ] {
            assert_eq!(PageCursor::decode(bad), None, "{bad}");
        }
    }
}
