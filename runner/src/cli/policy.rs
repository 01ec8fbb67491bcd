//! `runner policy test` and `runner policy eval`.

use super::{read_json, EXIT_CHECK_FAILED};
use crate::policy::loader::{self, PolicySources};
use crate::policy::rego_test::{self, Outcome, Summary};
use crate::policy::set::PolicySet;
use crate::policy::{EngineSettings, PolicyEngine};
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

/// Policy subcommands.
#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Run every `test_*` rule (OPA semantics); ends with `N passed, N failed`.
    Test {
        /// Policy directories; without any, the default policy built in.
        dirs: Vec<PathBuf>,
        /// Print per-file line coverage.
        #[arg(long)]
        coverage: bool,
        /// Print only failures and the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Evaluate the decision for one input document and print it with its record.
    Eval {
        /// Policy directory (repeatable); without any, the default policy.
        #[arg(long = "policy")]
        policy: Vec<PathBuf>,
        /// Input document (JSON): {"action", "session", "trusted", "untrusted"}.
        #[arg(long)]
        input: PathBuf,
        /// The decision rule.
        #[arg(long, default_value = "data.runner.decision")]
        entrypoint: String,
        /// Add the reasons and the rules that fired.
        #[arg(long)]
        explain: bool,
    },
}

pub(super) fn run(cmd: PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        PolicyCommand::Test {
            dirs,
            coverage,
            quiet,
        } => test(dirs, coverage, quiet),
        PolicyCommand::Eval {
            policy,
            input,
            entrypoint,
            explain,
        } => eval(policy, input, entrypoint, explain),
    }
}

fn sources(dirs: &[PathBuf]) -> anyhow::Result<PolicySources> {
    Ok(if dirs.is_empty() {
        loader::embedded()
    } else {
        loader::read_dirs(dirs, &[])?
    })
}

fn test(dirs: Vec<PathBuf>, coverage: bool, quiet: bool) -> anyhow::Result<u8> {
    let sources = sources(&dirs)?;
    let mut engine = crate::policy::set::parse(&sources)?;
    if coverage {
        engine.set_enable_coverage(true);
    }
    let rules = rego_test::declared_rules(&engine, &sources)?;
    let results = rego_test::run(&mut engine, &rules);
    let mut last_file = String::new();
    for r in &results {
        if quiet && !r.outcome.is_failure() {
            continue;
        }
        if r.case.file != last_file {
            println!("{}:", r.case.file);
            last_file = r.case.file.clone();
        }
        let detail = match &r.outcome {
            Outcome::Error(e) => format!(" — {e}"),
            _ => String::new(),
        };
        println!(
            "  {:<7} {} (line {}, {:?}){detail}",
            r.outcome.label(),
            r.case.path(),
            r.case.line,
            r.duration
        );
    }
    if coverage {
        let report = engine.get_coverage_report()?;
        println!("coverage:");
        for f in &report.files {
            let total = f.covered.len() + f.not_covered.len();
            let pct = if total == 0 {
                100.0
            } else {
                100.0 * f.covered.len() as f64 / total as f64
            };
            println!(
                "  {:<40} {:>4}/{:<4} lines {pct:5.1}%  not covered: {:?}",
                f.path,
                f.covered.len(),
                total,
                f.not_covered
            );
        }
    }
    let summary = Summary::of(&results);
    if results.iter().all(|r| r.outcome == Outcome::Skipped) && summary.skipped == 0 {
        println!("no test_* rules found");
    }
    println!("{}", summary.line());
    Ok(if summary.failed > 0 {
        EXIT_CHECK_FAILED
    } else {
        0
    })
}

fn eval(
    policy: Vec<PathBuf>,
    input: PathBuf,
    entrypoint: String,
    explain: bool,
) -> anyhow::Result<u8> {
    let input = read_json(&input, "input file")?;
    if !input.is_object() {
        anyhow::bail!(
            "the input document must be a JSON object with action, session, trusted and untrusted"
        );
    }
    let settings = EngineSettings {
        dirs: policy,
        entrypoint,
        eval_timeout: Duration::from_millis(50),
        mask: crate::policy::PolicySection::default().mask,
        run_tests: false,
        workspaces: Vec::new(),
    };
    let engine = PolicyEngine::load(settings)?;
    if let Some(e) = engine.load_error() {
        eprintln!("runner: warning: the policy does not work, so every decision is deny: {e}");
    }
    let (evaluation, revision) = engine.evaluate_input(&input);
    let decision = evaluation.decision.clone();
    let record = engine.record(
        input["session"]["id"].as_str().map(str::to_string),
        None,
        input.get("action").cloned().unwrap_or_default(),
        evaluation,
        revision,
        &engine.mask_document(&input),
    );
    let mut out = serde_json::json!({"decision": decision, "record": record});
    if explain {
        let fired = engine
            .with_set(|set: &PolicySet| set.fired_rules(regorus::Value::from(input.clone())))
            .unwrap_or_default();
        out["explain"] = serde_json::json!({"reasons": decision.reasons, "rules_fired": fired});
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
