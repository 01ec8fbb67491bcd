//! `[policy]` of the worker config: owned here so the policy layer needs
//! nothing from the config module above it.

use serde::Deserialize;
use std::path::PathBuf;

/// `[policy]`: which Rego files decide, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Directories of `.rego` and `data.json` files. Empty means the default
    /// policy compiled into the binary.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// The rule whose value is the decision.
    #[serde(default = "default_entrypoint")]
    pub entrypoint: String,
    /// Longest one evaluation may take before it is cut off (and denied).
    #[serde(default = "default_eval_timeout_ms")]
    pub eval_timeout_ms: u64,
    /// JSON pointers into the input that are erased before a decision is
    /// recorded (as OPA's decision-log masking does).
    #[serde(default = "default_mask")]
    pub mask: Vec<String>,
    /// Run the policies' own `test_*` rules on every load and reload; a
    /// failing test keeps the old policy in force.
    #[serde(default = "yes")]
    pub run_tests_on_load: bool,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            dirs: Vec::new(),
            entrypoint: default_entrypoint(),
            eval_timeout_ms: default_eval_timeout_ms(),
            mask: default_mask(),
            run_tests_on_load: true,
        }
    }
}

impl PolicySection {
    /// Refuses settings the engine cannot honour, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.eval_timeout_ms == 0 {
            return Err("policy.eval_timeout_ms must be at least 1".into());
        }
        if !self.entrypoint.starts_with("data.") {
            return Err(format!(
                "policy.entrypoint `{}` must be a rule path starting with `data.`",
                self.entrypoint
            ));
        }
        for p in &self.mask {
            if !p.starts_with('/') {
                return Err(format!(
                    "policy.mask entry `{p}` must be a JSON pointer starting with `/`"
                ));
            }
        }
        Ok(())
    }
}

fn default_entrypoint() -> String {
    "data.runner.decision".to_string()
}
fn default_eval_timeout_ms() -> u64 {
    50
}
fn default_mask() -> Vec<String> {
    vec!["/action/env".to_string()]
}
fn yes() -> bool {
    true
}
