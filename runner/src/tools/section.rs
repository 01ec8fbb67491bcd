//! `[tools]` of the worker config: owned here so the tool layer needs
//! nothing from the config module above it.

use serde::Deserialize;
use std::path::PathBuf;

/// `[tools]`: where guest tools come from and how they run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsSection {
    /// Directory of the built-in guest tools (Read, Write, Edit, Glob, Grep,
    /// List); default `guest-tools/` next to the runner binary or one level
    /// up (where scripts/build-guests.sh puts them).
    #[serde(default)]
    pub builtin_dir: Option<PathBuf>,
    /// Directories of custom tools: each subdirectory with `tool.toml` and
    /// its module is one tool.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Cache of compiled modules; default `<state_dir>/wasm-cache`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Limits of every guest call.
    #[serde(default)]
    pub limits: crate::sandbox::wasm::WasmLimits,
}
