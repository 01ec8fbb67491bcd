//! Masking the recorded input, as OPA's decision logs do: the JSON pointers
//! the config names are erased and listed in the record's `erased` field, so
//! an auditor sees that something was there without seeing it.

use protocol::policy::RecordedInput;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Erases every pointer in `pointers` that exists in `doc`; returns the ones
/// erased, in order.
pub(crate) fn mask<'a>(
    doc: &mut Value,
    pointers: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut erased = Vec::new();
    for p in pointers {
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let key = last.replace("~1", "/").replace("~0", "~");
        let removed = match doc.pointer_mut(parent) {
            Some(Value::Object(m)) => m.remove(&key).is_some(),
            Some(Value::Array(a)) => match key.parse::<usize>() {
                Ok(i) if i < a.len() => {
                    a[i] = Value::Null;
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if removed {
            erased.push(p.clone());
        }
    }
    erased
}

/// Whether `pointer` points into (or at) the decision's own `action`.
fn in_action(pointer: &str) -> bool {
    pointer
        .strip_prefix("/action")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The session part of the input after masking, with the pointers erased
/// from it. It is the same for every decision of a session, so it is masked
/// once and shared by their records.
#[derive(Debug, Clone)]
pub struct MaskedShared {
    /// `session`, `trusted`, `untrusted` after masking.
    pub map: Arc<Map<String, Value>>,
    /// Pointers erased from it, in the configured order.
    pub erased: Vec<String>,
}

/// Masks the session part: every pointer outside `/action`.
pub(crate) fn mask_shared(map: Map<String, Value>, pointers: &[String]) -> MaskedShared {
    let mut doc = Value::Object(map);
    let erased = mask(&mut doc, pointers.iter().filter(|p| !in_action(p)));
    let map = match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    MaskedShared {
        map: Arc::new(map),
        erased,
    }
}

/// The recorded input for one decision: the (already masked) session part
/// and this decision's action, masked by the pointers into `/action`.
/// Returns the document, the masked action and every pointer erased, in
/// the configured order, as [`mask`] would list them for the whole
/// document. A `null` action (a hand-written document without one) is
/// recorded as absent.
pub(crate) fn mask_record(
    shared: &MaskedShared,
    action: Value,
    pointers: &[String],
) -> (RecordedInput, Option<Value>, Vec<String>) {
    let mut doc = Value::Object(Map::from_iter([(
        RecordedInput::ACTION.to_string(),
        action,
    )]));
    let action_erased = mask(&mut doc, pointers.iter().filter(|p| in_action(p)));
    let action = match doc {
        Value::Object(mut m) => m.remove(RecordedInput::ACTION),
        _ => None,
    }
    .filter(|a| !a.is_null());
    // Each part's erased list follows the configured order; merge them.
    let (mut a, mut s) = (
        action_erased.iter().peekable(),
        shared.erased.iter().peekable(),
    );
    let mut erased = Vec::new();
    for p in pointers {
        let part = if in_action(p) { &mut a } else { &mut s };
        if part.peek() == Some(&p) {
            erased.push(p.clone());
            part.next();
        }
    }
    (
        RecordedInput::new(shared.map.clone(), action.clone()),
        action,
        erased,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn erases_and_lists_present_pointers_only() {
        let mut v = json!({"action": {"env": {"TOKEN": "s3cret"}, "kind": "shell.exec"}});
        let erased = mask(&mut v, &["/action/env".into(), "/action/missing".into()]);
        assert_eq!(erased, vec!["/action/env".to_string()]);
        assert!(!v.to_string().contains("s3cret"));
        assert_eq!(v["action"]["kind"], "shell.exec");
    }

    #[test]
    fn escaped_keys_are_understood() {
        let mut v = json!({"a": {"b/c": 1}});
        assert_eq!(
            mask(&mut v, &["/a/b~1c".into()]),
            vec!["/a/b~1c".to_string()]
        );
        assert_eq!(v, json!({"a": {}}));
    }

    #[test]
    fn split_masking_equals_masking_the_whole_document() {
        let doc = json!({
            "action": {"env": {"TOKEN": "s3cret"}, "kind": "shell.exec", "args": [1, 2]},
            "session": {"id": "s1"},
            "trusted": {"worker": {"key": "k", "keep": 1}},
            "untrusted": {"title": "t"},
        });
        let pointers: Vec<String> = [
            "/trusted/worker/key",
            "/action/env",
            "/actionable",
            "/missing/x",
            "/action/env",
            "/action/args/1",
            "/untrusted/title",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut whole = doc.clone();
        let want = mask(&mut whole, &pointers);

        let mut parts = doc.as_object().unwrap().clone();
        let action = parts.remove("action").unwrap();
        let shared = mask_shared(parts, &pointers);
        let (input, masked_action, erased) = mask_record(&shared, action, &pointers);
        assert_eq!(erased, want);
        assert_eq!(input.to_value(), whole);
        assert_eq!(masked_action.as_ref(), whole.get("action"));
        assert!(!serde_json::to_string(&input).unwrap().contains("s3cret"));

        // Erasing the whole action.
        let (input, action, erased) =
            mask_record(&shared, json!({"kind": "x"}), &["/action".to_string()]);
        assert_eq!(erased, vec!["/action".to_string()]);
        assert!(action.is_none() && input.get("action").is_none());
    }
}
