//! Rego unit tests with OPA's semantics (`opa test`).
//!
//! Every rule whose name starts with `test_` is a test: `true` passes;
//! `false` or undefined fails; an evaluation error is an error (counted as a
//! failure). Rules named `todo_*` are skipped. Tests mock with Rego's own
//! `with` keyword, so the same files run under OPA's tooling unchanged.

use super::loader::PolicySources;
use std::time::{Duration, Instant};

/// A rule declared by a loaded module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeclaredRule {
    /// Package path, e.g. `data.runner_test`.
    pub package: String,
    /// Rule name within the package.
    pub name: String,
    /// File that declares it.
    pub file: String,
    /// 1-based line of its head.
    pub line: u32,
}

impl DeclaredRule {
    /// Full rule path, e.g. `data.runner.decision`.
    pub(crate) fn path(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }

    fn is_test(&self) -> bool {
        self.name.starts_with("test_")
    }

    fn is_todo(&self) -> bool {
        self.name.starts_with("todo_")
    }
}

/// What one test did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Evaluated to `true`.
    Pass,
    /// Evaluated to `false` or was undefined.
    Fail,
    /// Evaluation failed.
    Error(String),
    /// A `todo_` rule.
    Skipped,
}

impl Outcome {
    /// Failures and errors both fail a run.
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Error(_))
    }

    /// `PASS`, `FAIL`, `ERROR`, `SKIPPED`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error(_) => "ERROR",
            Outcome::Skipped => "SKIPPED",
        }
    }
}

/// One test's result.
#[derive(Debug, Clone)]
pub(crate) struct TestResult {
    pub case: DeclaredRule,
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

/// Counts over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub passed: usize,
    /// Tests that failed or errored.
    pub failed: usize,
    /// `todo_` rules.
    pub skipped: usize,
}

impl Summary {
    /// Counts `results`.
    pub(crate) fn of(results: &[TestResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => s.passed += 1,
                Outcome::Skipped => s.skipped += 1,
                _ => s.failed += 1,
            }
        }
        s
    }

    /// The closing line: `N passed, N failed` (`, N skipped` when any).
    pub(crate) fn line(&self) -> String {
        let mut l = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            l.push_str(&format!(", {} skipped", self.skipped));
        }
        l
    }
}

/// Lists every rule the loaded modules declare, from the engine's AST.
pub(crate) fn declared_rules(
    engine: &regorus::Engine,
    sources: &PolicySources,
) -> anyhow::Result<Vec<DeclaredRule>> {
    let ast: serde_json::Value = serde_json::from_str(&engine.get_ast_as_json()?)?;
    let mut out: Vec<DeclaredRule> = Vec::new();
    for (i, module) in ast.as_array().into_iter().flatten().enumerate() {
        let file = module["source"]["file"]
            .as_str()
            .map(str::to_string)
            .or_else(|| sources.modules.get(i).map(|m| m.name.clone()))
            .unwrap_or_default();
        let package = match ref_path(&module["ast"]["package"]["refr"]) {
            Some(p) => format!("data.{p}"),
            None => continue,
        };
        for rule in module["ast"]["rules"].as_array().into_iter().flatten() {
            let refr = if let Some(spec) = rule.get("Spec") {
                let head = &spec["head"];
                if head.get("Func").is_some() {
                    continue; // functions are never tests or entrypoints
                }
                head.get("Compr")
                    .or_else(|| head.get("Set"))
                    .map(|h| &h["refr"])
            } else {
                rule.get("Default").map(|d| &d["refr"])
            };
            let Some(refr) = refr else { continue };
            let Some(name) = ref_path(refr) else { continue };
            let line = first_line(refr).unwrap_or(0);
            let r = DeclaredRule {
                package: package.clone(),
                name,
                file: file.clone(),
                line,
            };
            if !out
                .iter()
                .any(|o| o.package == r.package && o.name == r.name)
            {
                out.push(r);
            }
        }
    }
    Ok(out)
}

fn ref_path(v: &serde_json::Value) -> Option<String> {
    if let Some(var) = v.get("Var") {
        return var["value"].as_str().map(str::to_string);
    }
    if let Some(dot) = v.get("RefDot") {
        let base = ref_path(&dot["refr"])?;
        let field = dot["field"].get(1)?.as_str()?;
        return Some(format!("{base}.{field}"));
    }
    None
}

fn first_line(v: &serde_json::Value) -> Option<u32> {
    if let Some(var) = v.get("Var") {
        return var["span"]["line"].as_u64().map(|l| l as u32);
    }
    if let Some(dot) = v.get("RefDot") {
        return first_line(&dot["refr"]);
    }
    None
}

/// Runs every test among `rules` on `engine`, in declaration order.
pub(crate) fn run(engine: &mut regorus::Engine, rules: &[DeclaredRule]) -> Vec<TestResult> {
    let mut results = Vec::new();
    for rule in rules.iter().filter(|r| r.is_test() || r.is_todo()) {
        let start = Instant::now();
        let outcome = if rule.is_todo() {
            Outcome::Skipped
        } else {
            engine.set_input(regorus::Value::Undefined);
            match engine.eval_rule(rule.path()) {
                Ok(regorus::Value::Bool(true)) => Outcome::Pass,
                Ok(_) => Outcome::Fail,
                Err(e) => Outcome::Error(e.to_string()),
            }
        };
        results.push(TestResult {
            case: rule.clone(),
            outcome,
            duration: start.elapsed(),
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::loader::SourceFile;

    fn engine(src: &str) -> (regorus::Engine, PolicySources) {
        let sources = PolicySources {
            modules: vec![SourceFile {
                name: "t.rego".into(),
                data_path: vec![],
                text: src.into(),
            }],
            data: vec![],
        };
        let mut e = regorus::Engine::new();
        e.set_gather_prints(true);
        e.add_policy("t.rego".into(), src.into()).unwrap();
        (e, sources)
    }

    #[test]
    fn opa_semantics_pass_fail_error_skip() {
        let (mut e, s) = engine(
            r#"package p_test
import rego.v1
allow if input.user == "admin"
test_pass if allow with input as {"user": "admin"}
test_false if 1 == 2
test_undefined if allow with input as {"user": "bob"}
test_error if { x := 1 / 0; x > 0 }
todo_test_later if true
"#,
        );
        let rules = declared_rules(&e, &s).unwrap();
        let results = run(&mut e, &rules);
        let by = |n: &str| {
            results
                .iter()
                .find(|r| r.case.name == n)
                .unwrap()
                .outcome
                .clone()
        };
        assert_eq!(by("test_pass"), Outcome::Pass);
        assert_eq!(by("test_false"), Outcome::Fail);
        assert_eq!(by("test_undefined"), Outcome::Fail);
        assert!(matches!(
            by("test_error"),
            Outcome::Error(_) | Outcome::Fail
        ));
        assert_eq!(by("todo_test_later"), Outcome::Skipped);
        let sum = Summary::of(&results);
        assert_eq!(
            sum,
            Summary {
                passed: 1,
                failed: 3,
                skipped: 1
            }
        );
        assert_eq!(sum.line(), "1 passed, 3 failed, 1 skipped");
    }

    #[test]
    fn declared_rules_have_packages_and_lines() {
        let (e, s) = engine("package a.b\nimport rego.v1\n\nx := 1\ndefault y := 2\nf(z) := z\n");
        let rules = declared_rules(&e, &s).unwrap();
        let paths: Vec<String> = rules.iter().map(|r| r.path()).collect();
        assert_eq!(paths, vec!["data.a.b.x", "data.a.b.y"]);
        assert_eq!(rules[0].line, 4);
    }
}
