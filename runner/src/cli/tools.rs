//! `runner tools list`.

use crate::tools::Registry;
use clap::Subcommand;

/// Tool subcommands.
#[derive(Subcommand)]
pub enum ToolsCommand {
    /// Every tool with its source, capabilities and input schema.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ToolsCommand) -> anyhow::Result<u8> {
    let config = crate::config::Config::default();
    let registry = Registry::builtin(config.bash_settings(super::sandbox_helper()?));
    match cmd {
        ToolsCommand::List { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&registry.specs())?);
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
            }
            Ok(0)
        }
    }
}
