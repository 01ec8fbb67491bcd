//! A compiled, warmed policy set and its evaluation fast path.
//!
//! The policy is parsed, analysed and tested once per load on regorus'
//! interpreter. For decisions the entrypoint is then compiled to a program
//! for regorus' register VM (several times faster than the interpreter) —
//! but only after a differential check: a set of probe inputs must decide
//! identically on both; otherwise, or if the policy uses something the VM
//! cannot compile, decisions stay on the interpreter. Either way each thread
//! keeps its own evaluator keyed by the set's id, so the hot path takes no
//! lock and does no re-analysis. A reload makes a new set with a new id;
//! threads pick it up on their next decision.

use super::decision;
use super::loader::PolicySources;
use super::rego_test;
use protocol::policy::Decision;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many policy sets one thread keeps engines for (old ones are dropped).
const ENGINES_PER_THREAD: usize = 4;

thread_local! {
    static EVALUATORS: RefCell<Vec<(u64, Evaluator)>> = const { RefCell::new(Vec::new()) };
}

/// One thread's evaluator for one policy set.
enum Evaluator {
    Vm(Box<RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

/// How a set evaluates decisions.
#[derive(Debug, Clone)]
enum Backend {
    Vm {
        program: Arc<Program>,
        data: regorus::Value,
    },
    Interpreter,
}

/// A policy set ready to decide.
#[derive(Debug)]
pub struct PolicySet {
    id: u64,
    template: regorus::Engine,
    backend: Backend,
    timer: ExecutionTimerConfig,
    cacheable: bool,
    revision: String,
    entrypoint: String,
    files: Vec<String>,
}

/// Result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The decision (a deny with a reason when evaluation failed).
    pub decision: Decision,
    /// Time spent in the engine (or the cache lookup).
    pub eval_ns: u64,
    /// Answered from the decision cache.
    pub cache_hit: bool,
    /// Evaluation raised an error (the time limit included); never cached.
    pub failed: bool,
}

/// Builtins whose result depends on something besides input and data; a
/// policy that mentions any of them is never answered from the cache.
const NONDETERMINISTIC: &[&str] = &[
    "time.now_ns",
    "rand.",
    "uuid.rfc4122",
    "http.send",
    "net.lookup_ip_addr",
    "opa.runtime",
    "io.jwt.decode_verify",
];

/// Decisions cached per thread before the cache is cleared.
const CACHE_CAPACITY: usize = 4096;

type CacheKey = (u64, u64, String);

thread_local! {
    static DECISIONS: RefCell<HashMap<CacheKey, Decision>> = RefCell::new(HashMap::new());
}

/// Why a policy set could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A module did not parse, or data did not merge.
    #[error("{0}")]
    Invalid(String),
    /// The entrypoint rule is not declared by any module.
    #[error("the entrypoint {0} is not declared by any loaded policy; declare it (e.g. `decision := ...` in package runner) or set policy.entrypoint")]
    NoEntrypoint(String),
    /// The policy's own tests failed.
    #[error("the policy's own tests failed: {0}")]
    TestsFailed(String),
}

impl PolicySet {
    /// Parses `sources`, checks the entrypoint exists, optionally runs the
    /// `test_*` rules, and warms the engine.
    pub fn compile(
        sources: &PolicySources,
        entrypoint: &str,
        eval_timeout: Duration,
        run_tests: bool,
    ) -> Result<PolicySet, CompileError> {
        let mut engine = parse(sources)?;
        let rules = rego_test::declared_rules(&engine, sources)
            .map_err(|e| CompileError::Invalid(e.to_string()))?;
        if !rules.iter().any(|r| r.path() == entrypoint) {
            return Err(CompileError::NoEntrypoint(entrypoint.to_string()));
        }
        if run_tests {
            let mut test_engine = engine.clone();
            let results = rego_test::run(&mut test_engine, &rules);
            let bad: Vec<String> = results
                .iter()
                .filter(|r| r.outcome.is_failure())
                .map(|r| format!("{} {}", r.case.path(), r.outcome.label()))
                .collect();
            if !bad.is_empty() {
                return Err(CompileError::TestsFailed(bad.join(", ")));
            }
        }
        let timer = ExecutionTimerConfig {
            limit: eval_timeout,
            check_interval: NonZeroU32::new(32).unwrap_or(NonZeroU32::MIN),
        };
        engine.set_execution_timer_config(timer);
        // Warm up: the first evaluation prepares the interpreter; clones made
        // after it start prepared.
        engine.set_input(regorus::Value::new_object());
        let _ = engine.eval_rule(entrypoint.to_string());
        let backend = vm_backend(&engine, entrypoint, timer).unwrap_or(Backend::Interpreter);
        Ok(PolicySet {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            template: engine,
            backend,
            timer,
            cacheable: !sources
                .modules
                .iter()
                .any(|m| NONDETERMINISTIC.iter().any(|b| m.text.contains(b))),
            revision: sources.revision(),
            entrypoint: entrypoint.to_string(),
            files: sources.modules.iter().map(|m| m.name.clone()).collect(),
        })
    }

    /// Whether decisions run on the register VM (else the interpreter).
    pub fn uses_vm(&self) -> bool {
        matches!(self.backend, Backend::Vm { .. })
    }

    /// Evaluates `input` on the interpreter, whatever the backend: the
    /// reference the VM is checked against.
    pub fn evaluate_on_interpreter(&self, input: regorus::Value) -> Evaluation {
        let mut engine = self.engine();
        engine.set_input(input);
        let start = Instant::now();
        let result = engine.eval_rule(self.entrypoint.clone());
        self.finish(result, start)
    }

    fn finish(&self, result: anyhow::Result<regorus::Value>, start: Instant) -> Evaluation {
        let eval_ns = start.elapsed().as_nanos() as u64;
        let failed = result.is_err();
        let decision = match result {
            Ok(v) => decision::parse(&self.entrypoint, &v),
            Err(e) => Decision::deny(format!(
                "policy evaluation of {} failed: {e}: denied",
                self.entrypoint
            )),
        };
        Evaluation {
            decision,
            eval_ns,
            cache_hit: false,
            failed,
        }
    }

    /// Whether decisions of this set may be answered from the cache: the
    /// policy mentions no builtin whose result depends on anything but its
    /// input and data.
    pub fn cacheable(&self) -> bool {
        self.cacheable
    }

    /// Evaluates with the per-thread decision cache. `key` is (session
    /// context id, normalised action) — with the set's id, the whole input
    /// — or `None` to bypass the cache; `input` builds the document on a
    /// miss. Only successful evaluations are cached (an error or a timeout
    /// is retried next time).
    pub fn evaluate_cached(
        &self,
        key: Option<(u64, String)>,
        input: impl FnOnce() -> regorus::Value,
    ) -> Evaluation {
        let Some((ctx, action)) = key else {
            return self.evaluate(input());
        };
        let key = (self.id, ctx, action);
        let start = Instant::now();
        if let Some(decision) = DECISIONS.with(|c| c.borrow().get(&key).cloned()) {
            return Evaluation {
                decision,
                eval_ns: start.elapsed().as_nanos() as u64,
                cache_hit: true,
                failed: false,
            };
        }
        let evaluation = self.evaluate(input());
        if !evaluation.failed {
            DECISIONS.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= CACHE_CAPACITY {
                    c.clear();
                }
                c.insert(key, evaluation.decision.clone());
            });
        }
        evaluation
    }

    /// `sha256:` revision of the files this set was built from.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The rule evaluated for a decision.
    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }

    /// Names of the loaded modules.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// A fresh copy of the prepared engine (tests, coverage, explain).
    pub fn engine(&self) -> regorus::Engine {
        self.template.clone()
    }

    /// Evaluates the entrypoint for `input` on this thread's evaluator.
    pub fn evaluate(&self, input: regorus::Value) -> Evaluation {
        self.with_evaluator(|evaluator| {
            let start = Instant::now();
            let result = match evaluator {
                Evaluator::Vm(vm) => {
                    vm.set_input(input);
                    vm.execute().map_err(anyhow::Error::from)
                }
                Evaluator::Interpreter(engine) => {
                    engine.set_input(input);
                    engine.eval_rule(self.entrypoint.clone())
                }
            };
            self.finish(result, start)
        })
    }

    /// The rules of the entrypoint's package that are defined (and not
    /// `false`) for `input`: "the rules that fired", for `--explain`.
    pub fn fired_rules(&self, input: regorus::Value) -> serde_json::Value {
        let package = self
            .entrypoint
            .rsplit_once('.')
            .map(|(p, _)| p.to_string())
            .unwrap_or_else(|| self.entrypoint.clone());
        let mut engine = self.engine();
        engine.set_input(input);
        let mut fired = serde_json::Map::new();
        if let Ok(results) = engine.eval_query(package, false) {
            let value = results
                .result
                .first()
                .and_then(|r| r.expressions.first())
                .map(|e| e.value.clone());
            if let Some(Ok(serde_json::Value::Object(rules))) =
                value.map(|v| serde_json::to_value(&v))
            {
                for (name, v) in rules {
                    let empty = v == serde_json::Value::Bool(false)
                        || v.as_array().is_some_and(|a| a.is_empty());
                    if !empty && !name.starts_with("test_") {
                        fired.insert(name, v);
                    }
                }
            }
        }
        serde_json::Value::Object(fired)
    }

    fn new_evaluator(&self) -> Evaluator {
        match &self.backend {
            Backend::Vm { program, data } => match new_vm(program, data, self.timer) {
                Ok(vm) => Evaluator::Vm(Box::new(vm)),
                Err(_) => Evaluator::Interpreter(Box::new(self.template.clone())),
            },
            Backend::Interpreter => Evaluator::Interpreter(Box::new(self.template.clone())),
        }
    }

    fn with_evaluator<R>(&self, f: impl FnOnce(&mut Evaluator) -> R) -> R {
        EVALUATORS.with(|cell| {
            let mut evaluators = cell.borrow_mut();
            let pos = match evaluators.iter().position(|(id, _)| *id == self.id) {
                Some(p) => p,
                None => {
                    if evaluators.len() >= ENGINES_PER_THREAD {
                        evaluators.remove(0);
                    }
                    evaluators.push((self.id, self.new_evaluator()));
                    evaluators.len() - 1
                }
            };
            f(&mut evaluators[pos].1)
        })
    }
}

fn new_vm(
    program: &Arc<Program>,
    data: &regorus::Value,
    timer: ExecutionTimerConfig,
) -> anyhow::Result<RegoVM> {
    let mut vm = RegoVM::new();
    vm.load_program(program.clone());
    vm.set_data(data.clone())?;
    vm.set_execution_timer_config(Some(timer));
    // The time limit is the bound that matters; the VM's own default
    // instruction cap (25,000) would deny legitimate larger policies.
    vm.set_max_instructions(usize::MAX);
    Ok(vm)
}

/// Parses every module and merges every data document of `sources` into a
/// fresh interpreter (prints gathered, not written to stderr).
pub(crate) fn parse(sources: &PolicySources) -> Result<regorus::Engine, CompileError> {
    let mut engine = regorus::Engine::new();
    engine.set_gather_prints(true);
    for m in &sources.modules {
        engine
            .add_policy(m.name.clone(), m.text.clone())
            .map_err(|e| CompileError::Invalid(format!("{}: {e}", m.name)))?;
    }
    for d in &sources.data {
        let mut doc = regorus::Value::from_json_str(&d.text)
            .map_err(|e| CompileError::Invalid(format!("{}: not valid JSON: {e}", d.name)))?;
        for key in d.data_path.iter().rev() {
            let mut wrapper = regorus::Value::new_object();
            if let Ok(obj) = wrapper.as_object_mut() {
                obj.insert(regorus::Value::from(key.as_str()), doc);
            }
            doc = wrapper;
        }
        engine
            .add_data(doc)
            .map_err(|e| CompileError::Invalid(format!("{}: {e}", d.name)))?;
    }
    Ok(engine)
}

/// Compiles the entrypoint for the VM and checks it against the interpreter
/// on the probe inputs; `None` keeps decisions on the interpreter.
fn vm_backend(
    engine: &regorus::Engine,
    entrypoint: &str,
    timer: ExecutionTimerConfig,
) -> Option<Backend> {
    let mut compiler_engine = engine.clone();
    let compiled = compiler_engine
        .compile_with_entrypoint(&entrypoint.into())
        .ok()?;
    let program = match Compiler::compile_from_policy(&compiled, &[entrypoint]) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "policy cannot run on the register VM; deciding on the interpreter");
            return None;
        }
    };
    let data = engine.get_data();
    let mut vm = new_vm(&program, &data, timer).ok()?;
    let mut reference = engine.clone();
    for probe in super::probes::inputs() {
        let input = regorus::Value::from(probe);
        reference.set_input(input.clone());
        let want = reference.eval_rule(entrypoint.to_string()).ok();
        vm.set_input(input);
        let got = vm.execute().ok();
        if want != got {
            tracing::warn!(
                "the register VM and the interpreter disagree on a probe input; deciding on the interpreter"
            );
            return None;
        }
    }
    Some(Backend::Vm { program, data })
}
