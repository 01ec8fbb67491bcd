//! `runner tools list`.

use super::load_config;
use crate::policy::{EngineSettings, PolicyEngine};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

/// Tool subcommands.
#[derive(Subcommand)]
pub(super) enum ToolsCommand {
    /// Every tool with its source, capabilities and input schema, and every
    /// tool that failed to load with why.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Worker config file (TOML): custom tool directories, limits.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Policy directory (repeatable): decides which capabilities guest
        /// tools may have. Default: the config's, else the embedded policy.
        #[arg(long = "policy")]
        policy: Vec<PathBuf>,
    },
}

pub(super) fn run(cmd: ToolsCommand) -> anyhow::Result<u8> {
    let ToolsCommand::List {
        json,
        config,
        policy,
    } = cmd;
    let mut config = load_config(config.as_deref())?;
    if !policy.is_empty() {
        config.policy.dirs = policy;
    }
    let engine = PolicyEngine::load(EngineSettings::from_config(&config.policy, Vec::new()))?;
    let exe = std::env::current_exe().context("cannot locate the runner binary")?;
    let registry =
        crate::wiring::tool_registry(&config, &exe, &engine).map_err(anyhow::Error::msg)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tools": registry.specs(),
                "not_loaded": registry.problems(),
            }))?
        );
    } else {
        for s in registry.specs() {
            println!(
                "{:<10} {:<8} {}{}\n           schema: {}\n           {}",
                s.name,
                serde_json::to_value(s.source)?.as_str().unwrap_or(""),
                s.capabilities.join(", "),
                if s.operator_only {
                    " (operator only)"
                } else {
                    ""
                },
                s.input_schema,
                s.description
            );
        }
        for p in registry.problems() {
            println!("not loaded: {p}");
        }
    }
    Ok(if registry.problems().is_empty() { 0 } else { 1 })
}
