//! `runner audit verify|list|replay`.

use super::EXIT_CHECK_FAILED;
use crate::policy::audit::{self, read_records};
use crate::policy::replay::replay;
use crate::policy::{EngineSettings, PolicyEngine};
use clap::Subcommand;
use protocol::policy::DecisionResult;
use std::path::PathBuf;
use std::time::Duration;

/// Audit subcommands.
#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check the hash chain; names the first edited, dropped or reordered line.
    Verify {
        /// The audit log (JSONL).
        file: PathBuf,
    },
    /// Print the decisions readably.
    List {
        /// The audit log (JSONL).
        file: PathBuf,
        /// Only this session's decisions.
        #[arg(long)]
        session: Option<String>,
        /// Only decisions with this result.
        #[arg(long, value_parser = ["allow", "deny", "ask"])]
        result: Option<String>,
        /// One JSON record per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-evaluate every recorded input against another policy set and list
    /// the decisions whose result would change.
    Replay {
        /// The audit log (JSONL).
        file: PathBuf,
        /// Candidate policy directory (repeatable).
        #[arg(long = "policy", required = true)]
        policy: Vec<PathBuf>,
        /// The decision rule of the candidate.
        #[arg(long, default_value = "data.runner.decision")]
        entrypoint: String,
    },
}

pub(super) fn run(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Verify { file } => match audit::verify(&file)
            .map_err(|e| anyhow::anyhow!("cannot read audit log {}: {e}", file.display()))?
        {
            Ok(chain) => {
                println!(
                    "ok: {} records, chain intact, head seq {} hash {}",
                    chain.records, chain.records, chain.head
                );
                Ok(0)
            }
            Err(f) => {
                println!("BROKEN: {} line {}: {}", file.display(), f.line, f.reason);
                Ok(EXIT_CHECK_FAILED)
            }
        },
        AuditCommand::List {
            file,
            session,
            result,
            json,
        } => {
            for r in read_records(&file)? {
                let rec = &r.record;
                if session.is_some() && rec.session_id.as_deref() != session.as_deref() {
                    continue;
                }
                if let Some(want) = &result {
                    if rec.result.as_str() != want {
                        continue;
                    }
                }
                if json {
                    println!("{}", serde_json::to_string(rec)?);
                } else {
                    println!("{}", summary_line(r.line, rec));
                }
            }
            Ok(0)
        }
        AuditCommand::Replay {
            file,
            policy,
            entrypoint,
        } => {
            let records = read_records(&file)?;
            let engine = PolicyEngine::load(EngineSettings {
                dirs: policy,
                entrypoint,
                eval_timeout: Duration::from_millis(50),
                mask: Vec::new(),
                run_tests: false,
                workspaces: Vec::new(),
            })?;
            if let Some(e) = engine.load_error() {
                anyhow::bail!("the candidate policy does not load: {e}");
            }
            let flips = replay(&records, &engine);
            for f in &flips {
                println!(
                    "line {:<5} {} {:<15} {:<40} {} -> {}  ({})",
                    f.line,
                    f.decision_id,
                    f.action["kind"].as_str().unwrap_or("?"),
                    action_target(&f.action),
                    f.before.as_str(),
                    f.after.result.as_str(),
                    f.after.reasons.join("; ")
                );
            }
            println!(
                "{} of {} decisions would change under revision {}",
                flips.len(),
                records.len(),
                engine.revision()
            );
            Ok(0)
        }
    }
}

fn action_target(a: &serde_json::Value) -> String {
    for key in ["path", "command", "host", "operation"] {
        if let Some(s) = a[key].as_str() {
            return s.chars().take(40).collect();
        }
    }
    String::new()
}

fn summary_line(line: u64, rec: &protocol::policy::DecisionRecord) -> String {
    let mark = match rec.result {
        DecisionResult::Allow => "allow",
        DecisionResult::Deny => "DENY ",
        DecisionResult::Ask => "ASK  ",
    };
    format!(
        "{line:>5} {} {mark} {:<15} {:<10} {:<40} session={} {}",
        rec.timestamp,
        rec.action["kind"].as_str().unwrap_or("?"),
        rec.action["tool"].as_str().unwrap_or("?"),
        action_target(&rec.action),
        rec.session_id.as_deref().unwrap_or("-"),
        rec.reasons.join("; ")
    )
}
