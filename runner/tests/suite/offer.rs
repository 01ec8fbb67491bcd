//! What the model is offered: the pinned agent version's enabled tools the
//! worker has, minus the ones it disallows.

use protocol::session::AgentVersion;
use runner::agent::offered_tools;
use runner::tools::{Registry, WebFetchSettings};
use std::path::PathBuf;

#[test]
fn a_disallowed_tool_is_not_offered_even_when_enabled() {
    let registry = Registry::builtin(
        runner::wiring::bash_settings(
            &runner::config::Config::default(),
            PathBuf::from("/nonexistent"),
        ),
        WebFetchSettings::default(),
    );
    let mut agent = AgentVersion {
        enabled_tools: vec!["Bash".into(), "WebFetch".into()],
        ..Default::default()
    };
    let names = |a: &AgentVersion| -> Vec<String> {
        offered_tools(&registry, a, &[])
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    assert!(names(&agent).contains(&"Bash".to_string()));
    agent.disallowed_tools = vec!["Bash".into()];
    let offered = names(&agent);
    assert!(!offered.contains(&"Bash".to_string()), "{offered:?}");
    assert!(offered.contains(&"WebFetch".to_string()), "{offered:?}");
}
