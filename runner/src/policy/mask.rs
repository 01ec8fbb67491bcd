//! Masking the recorded input, as OPA's decision logs do: the JSON pointers
//! the config names are erased and listed in the record's `erased` field, so
//! an auditor sees that something was there without seeing it.

use serde_json::Value;

/// Erases every pointer in `pointers` that exists in `doc`; returns the ones
/// erased, in order.
pub fn mask(doc: &mut Value, pointers: &[String]) -> Vec<String> {
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
}
