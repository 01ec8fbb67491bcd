//! The composition root: the one place a [`Config`] is turned into the
//! parts (tool registry, Bash settings, sign-in, the degraded-mode note).
//! Sections are owned by the modules they configure; only this module and
//! the ones above it (worker, CLI) see the whole config, so no part reaches
//! up into it.

use crate::auth::store::{TokenFile, TokenKey};
use crate::auth::tokens::{Persist, TokenManager};
use crate::config::Config;
use crate::tools::{self, BashSettings};
use std::path::PathBuf;

/// Settings of the Bash tool; `helper` is the `runner-sandbox` binary.
pub fn bash_settings(config: &Config, helper: PathBuf) -> BashSettings {
    BashSettings {
        helper,
        uid: config.sandbox.uid,
        gid: config.sandbox.gid,
        limits: config.sandbox.limits.clone(),
        degraded: config.sandbox.degraded,
        env: config.sandbox.command_env(),
        data_mb: config.artifacts.max_total_mb,
    }
}

/// Refuses a workspaces directory the sandbox user cannot walk into:
/// every Bash call in it would fail. Checked at the worker's start (and by
/// `runner doctor`), so the operator reads the fix once instead of in every
/// session. A directory not made yet is judged by the nearest one above it
/// that exists (the worker makes the rest 0711).
pub fn check_workspaces_reachable(
    config: &Config,
) -> Result<(), crate::sandbox::reach::Unreachable> {
    let dir = config.workspaces_dir();
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(&dir);
    let ids = crate::sandbox::process::sandbox_ids(config.sandbox.uid, config.sandbox.gid);
    crate::sandbox::process::check_workspace_reachable(
        existing,
        ids,
        "worker.workspaces_dir",
        crate::sandbox::reach::Need::Pass,
    )
    .map_err(|mut e| {
        if existing != dir {
            e.what = format!("worker.workspaces_dir (not made yet: {}) is below", dir.display());
        }
        e.fix = format!("{}; or set worker.workspaces_dir to a directory the sandbox user can reach, such as /var/lib/runner/workspaces", e.fix);
        e
    })
}

/// The note every decision record carries when shell tools may run
/// without Landlock (degraded mode on a kernel that lacks it). Probes the
/// kernel, which is why it is here and not in the config.
pub fn degraded_note(config: &Config) -> Option<String> {
    (config.sandbox.degraded && crate::sandbox::process::landlock::kernel_abi() < 1).then(|| {
        "degraded: this kernel does not enforce Landlock and sandbox.degraded is set; shell commands run without filesystem confinement".to_string()
    })
}

/// The full tool set of a worker: the host tools, the built-in guests and
/// the configured custom guests, each guest checked against the
/// capabilities the policy in force grants. Guests that fail to load are
/// listed in [`tools::Registry::problems`]; the others still work.
pub fn tool_registry(
    config: &Config,
    exe: &std::path::Path,
    engine: &crate::policy::PolicyEngine,
) -> Result<tools::Registry, String> {
    let helper = crate::sandbox::process::helper_beside(exe);
    let mut r = tools::Registry::builtin(bash_settings(config, helper), config.webfetch.clone());
    // WebSearch exists only where `[websearch]` names a provider; a
    // provider that cannot be set up (a missing key) is a problem, not a
    // silent absence.
    match tools::websearch::WebSearch::from_section(&config.websearch) {
        Ok(Some(t)) => {
            if let Err(e) = r.add(std::sync::Arc::new(t)) {
                r.note_problem(e);
            }
        }
        Ok(None) => {}
        Err(e) => r.note_problem(format!("WebSearch is not available: {e}")),
    }
    let sandbox = crate::sandbox::wasm::WasmSandbox::new(
        config.tools.limits.clone(),
        Some(config.wasm_cache_dir()),
    )
    .map_err(|e| e.to_string())?;
    let grants = match engine.tool_grants() {
        Ok(g) => g,
        Err(e) => {
            r.note_problem(format!(
                "no guest tool was loaded: the policy's tool_grants could not be evaluated ({e})"
            ));
            return Ok(r);
        }
    };
    let candidates = match &config.tools.builtin_dir {
        Some(d) => vec![d.clone()],
        None => tools::default_builtin_dir(exe),
    };
    match candidates.iter().find(|d| d.join("Read/tool.toml").is_file()) {
        Some(d) => r.add_guest_dir(d, tools::ToolSource::Builtin, &sandbox, &grants),
        None => r.note_problem(format!(
            "the built-in guest tools (Read, Write, Edit, Glob, Grep, List) were not found in {}; run scripts/build-guests.sh or set tools.builtin_dir",
            candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
    for d in &config.tools.dirs {
        r.add_guest_dir(d, tools::ToolSource::Custom, &sandbox, &grants);
    }
    Ok(r)
}

/// The token file of a config (default `<state_dir>/tokens.enc`).
pub fn token_file(config: &Config) -> Result<TokenFile, String> {
    let key = TokenKey::from_config(&config.auth)?;
    let path = config
        .auth
        .token_file
        .clone()
        .unwrap_or_else(|| config.state_dir().join("tokens.enc"));
    Ok(TokenFile::new(path, key))
}

/// The worker's stored sign-in, checked: the file and its directory
/// private, the key right, the control plane the configured one.
pub fn token_manager(config: &Config) -> Result<TokenManager, String> {
    let file = token_file(config)?;
    let tokens = file.load()?;
    let cp = config.worker.control_plane.clone().unwrap_or_default();
    if tokens.control_plane.trim_end_matches('/') != cp.trim_end_matches('/') {
        return Err(format!(
            "the stored sign-in is for {}, but worker.control_plane is {cp}; run `runner login` again",
            tokens.control_plane
        ));
    }
    let secret = config.auth.client_secret()?;
    TokenManager::new(
        tokens,
        Persist::File(file),
        secret,
        config.auth.refresh_when_left,
    )
}
