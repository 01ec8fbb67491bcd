//! The policy engine: the one place an action is decided.
//!
//! Holds the policy set in force behind an atomic pointer. A load whose
//! *content* is bad (syntax error, missing entrypoint, failing Rego tests)
//! leaves an engine that denies everything with a reason naming the error:
//! fail closed. A load whose *origin* is bad (policies inside a workspace,
//! writable by others) is refused outright. A reload builds the new set
//! completely — parse, entrypoint, tests — before it swaps; on any failure
//! the old set stays in force and the error is returned.

use super::input::{self, SessionContext};
use super::loader::{self, LoadError, PolicySources};
use super::mask::{mask_record, mask_shared, MaskedShared};
use super::set::{CompileError, Evaluation, PolicySet};
use arc_swap::ArcSwap;
use protocol::normalized::NormalizedAction;
use protocol::policy::{Action, Decision, DecisionRecord, RecordedInput};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the engine finds and evaluates its policies.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Policy directories; empty means the embedded default policy.
    pub dirs: Vec<PathBuf>,
    /// The rule whose value is the decision (`policy.entrypoint`).
    pub entrypoint: String,
    /// Evaluation time limit.
    pub eval_timeout: Duration,
    /// JSON pointers erased from recorded inputs.
    pub mask: Vec<String>,
    /// Run the policies' `test_*` rules on load.
    pub run_tests: bool,
    /// Workspace roots policies must never be loaded from.
    pub workspaces: Vec<PathBuf>,
}

impl EngineSettings {
    /// Settings from the `[policy]` config section.
    pub fn from_config(section: &super::PolicySection, workspaces: Vec<PathBuf>) -> Self {
        EngineSettings {
            dirs: section.dirs.clone(),
            entrypoint: section.entrypoint.clone(),
            eval_timeout: Duration::from_millis(section.eval_timeout_ms),
            mask: section.mask.clone(),
            run_tests: section.run_tests_on_load,
            workspaces,
        }
    }
}

/// What is in force.
#[derive(Debug)]
enum InForce {
    Ready(Box<PolicySet>),
    Broken { revision: String, error: String },
}

/// A reload that did not take effect; the previous policy is still in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The files may not be loaded (origin) or could not be read.
    #[error("policy reload refused, previous policy kept: {0}")]
    Load(#[from] LoadError),
    /// The files were read but are not a working policy set.
    #[error("policy reload failed, previous policy kept: {0}")]
    Compile(#[from] CompileError),
}

/// Decides actions against the policy set in force.
#[derive(Debug)]
pub struct PolicyEngine {
    settings: EngineSettings,
    current: ArcSwap<InForce>,
}

impl PolicyEngine {
    /// Loads the configured policies. `Err` only for a refused origin or
    /// unreadable files; a policy that loads but does not work yields an
    /// engine that denies everything (see [`PolicyEngine::load_error`]).
    pub fn load(settings: EngineSettings) -> Result<PolicyEngine, LoadError> {
        let sources = Self::read(&settings)?;
        let in_force = Self::compile(&settings, &sources);
        if let InForce::Broken { error, .. } = &in_force {
            tracing::error!(%error, "policy set failed to load; every action will be denied until it is fixed and reloaded");
        }
        Ok(PolicyEngine {
            settings,
            current: ArcSwap::from_pointee(in_force),
        })
    }

    fn read(settings: &EngineSettings) -> Result<PolicySources, LoadError> {
        if settings.dirs.is_empty() {
            Ok(loader::embedded())
        } else {
            loader::read_dirs(&settings.dirs, &settings.workspaces)
        }
    }

    /// The embedded default's tests ran when this binary was tested (CI
    /// runs `runner policy test policies/`); configured policies are tested
    /// on every load and reload, as `policy.run_tests_on_load` says.
    fn tests_on_load(settings: &EngineSettings) -> bool {
        settings.run_tests && !settings.dirs.is_empty()
    }

    fn compile(settings: &EngineSettings, sources: &PolicySources) -> InForce {
        match PolicySet::compile(
            sources,
            &settings.entrypoint,
            settings.eval_timeout,
            Self::tests_on_load(settings),
        ) {
            Ok(set) => InForce::Ready(Box::new(set)),
            Err(e) => InForce::Broken {
                revision: sources.revision(),
                error: e.to_string(),
            },
        }
    }

    /// Re-reads the policy directories and swaps the new set in atomically;
    /// on any failure the set in force stays. Returns the new revision.
    pub fn reload(&self) -> Result<String, ReloadError> {
        let sources = Self::read(&self.settings)?;
        let set = PolicySet::compile(
            &sources,
            &self.settings.entrypoint,
            self.settings.eval_timeout,
            Self::tests_on_load(&self.settings),
        )?;
        let revision = set.revision().to_string();
        self.current.store(Arc::new(InForce::Ready(Box::new(set))));
        tracing::info!(%revision, "policy reloaded");
        Ok(revision)
    }

    /// The error that keeps the engine denying everything, if any.
    pub fn load_error(&self) -> Option<String> {
        match &**self.current.load() {
            InForce::Ready(_) => None,
            InForce::Broken { error, .. } => Some(error.clone()),
        }
    }

    /// Revision of the policy in force.
    pub fn revision(&self) -> String {
        match &**self.current.load() {
            InForce::Ready(s) => s.revision().to_string(),
            InForce::Broken { revision, .. } => revision.clone(),
        }
    }

    /// The settings this engine was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Runs `f` on the policy set in force, if it works.
    pub fn with_set<R>(&self, f: impl FnOnce(&PolicySet) -> R) -> Option<R> {
        match &**self.current.load() {
            InForce::Ready(s) => Some(f(s)),
            InForce::Broken { .. } => None,
        }
    }

    /// The capabilities the policy grants guest tools: the value of the
    /// rule `tool_grants` in the entrypoint's package, an object from tool
    /// name (or `"*"` for any custom tool) to a list of action kinds. A
    /// guest whose manifest asks for more is refused at load. Undefined
    /// grants nothing; an error or a malformed value is an error (the
    /// caller refuses every guest: fail closed).
    pub fn tool_grants(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
        let rule = match self.settings.entrypoint.rsplit_once('.') {
            Some((package, _)) => format!("{package}.tool_grants"),
            None => return Err("the entrypoint has no package".into()),
        };
        let value = self
            .with_set(|set| {
                let mut engine = set.engine();
                engine.set_input(regorus::Value::new_object());
                engine.eval_query(rule.clone(), false).map(|r| {
                    r.result
                        .first()
                        .and_then(|q| q.expressions.first())
                        .map(|e| e.value.clone())
                        .unwrap_or(regorus::Value::Undefined)
                })
            })
            .ok_or_else(|| "no working policy is loaded".to_string())?
            .map_err(|e| format!("evaluating {rule}: {e}"))?;
        if value == regorus::Value::Undefined {
            return Ok(Default::default());
        }
        let json = value
            .to_json_str()
            .map_err(|e| format!("{rule} is not JSON: {e}"))?;
        serde_json::from_str(&json).map_err(|e| {
            format!("{rule} must be an object from tool name to a list of action kinds: {e}")
        })
    }

    /// Evaluates a complete input document (as recorded, or as written by
    /// hand for `runner policy eval`). Returns the decision, the time taken
    /// and the revision that decided.
    pub fn evaluate_input(&self, input: &serde_json::Value) -> (Evaluation, String) {
        let current = self.current.load();
        match &**current {
            InForce::Ready(set) => (
                set.evaluate(regorus::Value::from(input.clone())),
                set.revision().to_string(),
            ),
            InForce::Broken { revision, error } => (
                Evaluation {
                    decision: Decision::deny(format!(
                        "no working policy is loaded ({error}): denied; fix the policy and reload"
                    )),
                    eval_ns: 0,
                    cache_hit: false,
                    failed: false,
                },
                revision.clone(),
            ),
        }
    }

    /// Decides one action in a session and builds its record (not yet
    /// reported; [`super::PolicyGate`] reports it), with the normalised
    /// action it decided on (`None` when the action could not be
    /// normalised, which is a denial).
    pub(crate) fn decide(
        &self,
        action: &Action,
        ctx: &SessionContext,
    ) -> (DecisionRecord, Option<NormalizedAction>) {
        let current = self.current.load();
        let denied = |reason: String| Evaluation {
            decision: Decision::deny(reason),
            eval_ns: 0,
            cache_hit: false,
            failed: false,
        };
        let typed = input::normalize_action(action, ctx);
        let (action_json, evaluation, revision) = match &typed {
            Err(reason) => (
                serde_json::to_value(action).unwrap_or_default(),
                denied(format!("{reason}: denied")),
                self.revision(),
            ),
            Ok(typed) => match (serde_json::to_value(typed), &**current) {
                (Err(e), _) => (
                    serde_json::to_value(action).unwrap_or_default(),
                    denied(format!(
                        "the action could not be represented as JSON ({e}): denied"
                    )),
                    self.revision(),
                ),
                (Ok(normalized), current) => match current {
                    InForce::Ready(set) => {
                        let key = set
                            .cacheable()
                            .then(|| (ctx.cache_id(), normalized.to_string()));
                        let evaluation =
                            set.evaluate_cached(key, || input::rego_input(ctx, &normalized));
                        (normalized, evaluation, set.revision().to_string())
                    }
                    InForce::Broken { revision, error } => (
                        normalized,
                        denied(format!(
                        "no working policy is loaded ({error}): denied; fix the policy and reload"
                    )),
                        revision.clone(),
                    ),
                },
            },
        };
        let record = self.record(
            ctx.session_id.clone(),
            ctx.claim_id.clone(),
            action_json,
            evaluation,
            revision,
            &ctx.masked_shared(&self.settings.mask),
        );
        (record, typed.ok())
    }

    /// Masks the session part of a whole input document (one written by
    /// hand for `runner policy eval`) for [`PolicyEngine::record`].
    pub fn mask_document(&self, input: &serde_json::Value) -> MaskedShared {
        let mut map = input.as_object().cloned().unwrap_or_default();
        map.remove(RecordedInput::ACTION);
        mask_shared(map, &self.settings.mask)
    }

    /// Builds a record from an evaluation: the recorded input is the
    /// session part `shared` (already masked) and `action`, masked here.
    pub fn record(
        &self,
        session_id: Option<String>,
        claim_id: Option<String>,
        action: serde_json::Value,
        evaluation: Evaluation,
        revision: String,
        shared: &MaskedShared,
    ) -> DecisionRecord {
        let (input, masked_action, erased) = mask_record(shared, action, &self.settings.mask);
        // The record's own copy of the action is masked the same way.
        let action = masked_action.unwrap_or_default();
        let Decision {
            result,
            reasons,
            confine,
        } = evaluation.decision;
        DecisionRecord {
            decision_id: uuid::Uuid::new_v4().to_string(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            session_id: session_id.map(Into::into),
            claim_id: claim_id.map(Into::into),
            action,
            result,
            reasons,
            confine,
            policy_revision: revision,
            eval_ns: evaluation.eval_ns,
            cache_hit: evaluation.cache_hit,
            input,
            erased,
            degraded: None,
            approved_by: None,
        }
    }
}
