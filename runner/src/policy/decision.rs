//! Reading the policy's answer. Anything that is not exactly a decision —
//! undefined, an error, a string, an unknown key, an unknown result — is a
//! deny whose reason says what was wrong (fail closed).

use protocol::policy::{Decision, DecisionResult};

/// Parses the value of the decision rule.
pub(crate) fn parse(entrypoint: &str, value: &regorus::Value) -> Decision {
    if *value == regorus::Value::Undefined {
        return Decision::deny(format!(
            "policy entrypoint {entrypoint} is undefined for this input (no rule matched and no default): denied"
        ));
    }
    let json = match serde_json::to_value(value) {
        Ok(j) => j,
        Err(e) => {
            return Decision::deny(format!(
                "policy entrypoint {entrypoint} returned a value that is not JSON ({e}): denied"
            ))
        }
    };
    if !json.is_object() {
        return Decision::deny(format!(
            "policy entrypoint {entrypoint} returned {} instead of an object {{\"result\": \"allow\"|\"deny\"|\"ask\", \"reasons\": [...]}}: denied",
            kind_of(&json)
        ));
    }
    let mut d: Decision = match serde_json::from_value(json) {
        Ok(d) => d,
        Err(e) => {
            return Decision::deny(format!(
                "policy entrypoint {entrypoint} returned a malformed decision ({e}): denied"
            ))
        }
    };
    // An ask keeps its confinement: it applies if a person approves.
    if d.result == DecisionResult::Deny {
        d.confine = None;
    }
    if d.reasons.is_empty() {
        d.reasons.push(format!(
            "{} by policy (the policy gave no reason)",
            match d.result {
                DecisionResult::Allow => "allowed",
                DecisionResult::Deny => "denied",
                DecisionResult::Ask => "approval asked",
            }
        ));
    }
    d
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> regorus::Value {
        regorus::Value::from_json_str(s).unwrap()
    }

    #[test]
    fn string_decision_is_deny() {
        let d = parse("data.runner.decision", &v("\"allow\""));
        assert_eq!(d.result, DecisionResult::Deny);
        assert!(d.reasons[0].contains("a string"), "{:?}", d.reasons);
    }

    #[test]
    fn unknown_result_is_deny() {
        let d = parse("data.x", &v(r#"{"result": "yes"}"#));
        assert_eq!(d.result, DecisionResult::Deny);
        assert!(d.reasons[0].contains("malformed"));
    }

    #[test]
    fn unknown_key_is_deny() {
        let d = parse("data.x", &v(r#"{"result": "allow", "confinement": {}}"#));
        assert_eq!(d.result, DecisionResult::Deny);
    }

    #[test]
    fn unknown_confine_key_is_deny() {
        let d = parse(
            "data.x",
            &v(r#"{"result": "allow", "confine": {"network": "none", "writeable": []}}"#),
        );
        assert_eq!(d.result, DecisionResult::Deny);
    }

    #[test]
    fn undefined_is_deny() {
        let d = parse("data.x", &regorus::Value::Undefined);
        assert_eq!(d.result, DecisionResult::Deny);
        assert!(d.reasons[0].contains("undefined"));
    }

    #[test]
    fn good_allow_keeps_confinement() {
        let d = parse(
            "data.x",
            &v(
                r#"{"result": "allow", "reasons": ["ok"], "confine": {"writable_roots": ["/w"], "network": "none"}}"#,
            ),
        );
        assert_eq!(d.result, DecisionResult::Allow);
        assert_eq!(d.confine.unwrap().writable_roots, vec!["/w".to_string()]);
    }

    #[test]
    fn deny_drops_confinement_and_gets_a_reason() {
        let d = parse("data.x", &v(r#"{"result": "deny", "confine": {}}"#));
        assert!(d.confine.is_none());
        assert_eq!(d.reasons.len(), 1);
    }
}
