//! The agent-configuration model: names, merges, and tools read as the
//! policy reads them.

use super::config::{check_name, ModelRef};
use super::tools::{canonical_tool, BUILTIN_TOOLS};
use super::*;
use serde_json::json;

fn config(tools: serde_json::Value) -> AgentConfig {
    let patch: AgentPatch =
        serde_json::from_value(json!({"name": "a", "model": "m", "tools": tools})).unwrap();
    patch.create(&["m".to_string()]).unwrap()
}

#[test]
fn names_are_lowercase_kebab_of_at_most_64() {
    for ok in ["a", "code-reviewer", "x1-2y", &"a".repeat(64)] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "A",
        "a_b",
        "-a",
        "a-",
        "a--b",
        "a b",
        &"a".repeat(65),
        "é",
    ] {
        assert!(check_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn ids_are_agent_and_32_lowercase_hex() {
    let id = new_agent_id();
    assert!(is_agent_id(&id), "{id}");
    assert_ne!(id, new_agent_id());
    for bad in [
        "agent_",
        "agent_ABCDEF00000000000000000000000000",
        "bc_00000000000000000000000000000000",
        "agent_0000000000000000000000000000000g",
    ] {
        assert!(!is_agent_id(bad), "{bad}");
    }
}

#[test]
fn no_toolset_enables_nothing() {
    let v = agent_version(&config(json!([])), 3);
    assert!(v.enabled_tools.is_empty());
    assert_eq!((v.version, v.model.as_str()), (3, "m"));
}

#[test]
fn a_toolset_without_a_list_enables_every_builtin_tool_unless_default_disabled() {
    let v = agent_version(&config(json!([{"type": "agent_toolset_20260401"}])), 1);
    assert_eq!(v.enabled_tools, BUILTIN_TOOLS.map(String::from).to_vec());
    let v = agent_version(
        &config(
            json!([{"type": "agent_toolset_20260401", "default_config": {"enabled": false},
                         "configs": [{"name": "read", "enabled": true}]}]),
        ),
        1,
    );
    assert_eq!(v.enabled_tools, ["Read"]);
}

#[test]
fn disallowed_beats_enabled_and_configs_turn_tools_off() {
    let v = agent_version(
        &config(json!([{"type": "agent_toolset_20260401",
                         "enabled_tools": ["Bash", "Read", "WebFetch", "Grep"],
                         "disallowed_tools": ["web_fetch"],
                         "configs": [{"name": "grep", "enabled": false}]}])),
        1,
    );
    assert_eq!(v.enabled_tools, ["Bash", "Read"]);
    assert_eq!(v.disallowed_tools, ["WebFetch"]);
}

#[test]
fn permission_policies_come_from_configs_then_the_default() {
    let v = agent_version(
        &config(
            json!([{"type": "agent_toolset_20260401", "enabled_tools": ["Bash", "Read", "Write"],
                         "default_config": {"permission_policy": {"type": "always_allow"}},
                         "configs": [{"name": "bash", "type": "bash", "permission_policy": {"type": "always_ask"}}]}]),
        ),
        1,
    );
    assert_eq!(
        v.tool_policies.get("Bash").map(String::as_str),
        Some("always_ask")
    );
    assert_eq!(
        v.tool_policies.get("Read").map(String::as_str),
        Some("always_allow")
    );
    let v = agent_version(
        &config(json!([{"type": "agent_toolset_20260401", "enabled_tools": ["Bash"]}])),
        1,
    );
    assert!(
        v.tool_policies.is_empty(),
        "no policy given: no entry (always allow)"
    );
}

#[test]
fn both_spellings_name_the_same_tool() {
    assert_eq!(canonical_tool("web_fetch"), Some("WebFetch"));
    assert_eq!(canonical_tool("WebFetch"), Some("WebFetch"));
    assert_eq!(canonical_tool("webfetch"), None);
}

#[test]
fn web_search_in_either_spelling_reaches_enabled_tools_as_websearch() {
    for spelling in ["web_search", "WebSearch"] {
        let v = agent_version(
            &config(
                json!([{"type": "agent_toolset_20260401", "enabled_tools": ["read", spelling]}]),
            ),
            1,
        );
        assert_eq!(v.enabled_tools, ["Read", "WebSearch"], "{spelling}");
    }
    let v = agent_version(
        &config(
            json!([{"type": "agent_toolset_20260401", "default_config": {"enabled": false},
                         "configs": [{"name": "web_search", "enabled": true,
                                      "permission_policy": {"type": "always_ask"}}]}]),
        ),
        1,
    );
    assert_eq!(v.enabled_tools, ["WebSearch"]);
    assert_eq!(
        v.tool_policies.get("WebSearch").map(String::as_str),
        Some("always_ask")
    );
}

#[test]
fn an_update_replaces_what_it_sends_and_keeps_the_rest() {
    let mut c = config(json!([]));
    c.metadata.insert("k".into(), json!("v"));
    let patch: AgentPatch = serde_json::from_value(
        json!({"version": 1, "system": "new", "name": null, "metadata": {"x": "y"}}),
    )
    .unwrap();
    let n = patch.update(&c, &["m".to_string()]).unwrap();
    assert_eq!((n.name.as_str(), n.system.as_str()), ("a", "new"));
    assert_eq!(
        n.metadata,
        json!({"x": "y"}).as_object().unwrap().clone(),
        "metadata is replaced whole"
    );
    let model: ModelRef = serde_json::from_value(json!({"id": "m", "speed": "fast"})).unwrap();
    assert_eq!(model.id(), Some("m"));
}
