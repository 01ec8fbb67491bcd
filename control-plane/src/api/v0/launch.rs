//! From a `POST /v0/agents` body to a session: every check a launch must
//! pass, each refusal naming the field as the client sent it, and the one
//! mapping from the seed's `source`/`target` to the session's repository
//! work.

use crate::cloud_agents::{agent_name, source_repository, Launch, LaunchFlags, Prompt};
use crate::error::ApiError;
use crate::store::{AgentWebhook, NewAgent, ServingWorker};
use protocol::repository::RepoWork;
use protocol::session::{AgentVersion, NewSession, NewSource};

/// Longest prompt text.
const MAX_PROMPT_BYTES: usize = 64 * 1024;
/// Most images one prompt may carry (the seed's limit).
pub(super) const MAX_IMAGES: usize = 5;
/// Shortest webhook secret (what clones of this API require).
const MIN_SECRET_CHARS: usize = 32;
/// The tools a cloud agent gets, among those its worker has.
const AGENT_TOOLS: &[&str] = &["Read", "Write", "Edit", "Glob", "Grep", "Bash"];

/// The trusted instructions of every cloud agent (the worker adds its own
/// custom instructions and the sandbox's notes).
const SYSTEM_PROMPT: &str = "You are a cloud agent. The repository named in the task is checked out in your workspace, on the branch your work will be delivered on. Make the change the task asks for, run the project's tests when it has them, and finish with a short summary of what you changed and why: it is shown to the person who launched you.";

/// A checked prompt text (not empty, not too long).
pub(super) fn prompt_text(p: &Prompt, field: &str) -> Result<String, ApiError> {
    if p.text.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "{field}.text is empty; say what the agent should do"
        )));
    }
    if p.text.len() > MAX_PROMPT_BYTES {
        return Err(ApiError::invalid(format!(
            "{field}.text is longer than {} KiB",
            MAX_PROMPT_BYTES / 1024
        )));
    }
    if p.images.len() > MAX_IMAGES {
        return Err(ApiError::invalid(format!(
            "{field}.images: at most {MAX_IMAGES} images (got {})",
            p.images.len()
        )));
    }
    Ok(p.text.clone())
}

/// The model a launch asks for: `None` for the automatic choice (no
/// model, an empty one, or `auto`).
pub(super) fn requested_model(l: &Launch) -> Option<&str> {
    l.model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("auto"))
}

/// Every check [`new_agent`] makes of a launch that needs no worker (a
/// dry run on a stand-in): the API answers these before looking for one.
pub(super) fn check(l: &Launch, allow_private: bool) -> Result<(), ApiError> {
    let stand_in = ServingWorker {
        registration: protocol::platform::RegisterWorker {
            workspace: "check".into(),
            agent_profile: "check".into(),
            runtime: "check".into(),
            execution_mode: "cloud".into(),
            display_name: "check".into(),
            capabilities: Vec::new(),
            concurrency: 1,
            policy_entries: Vec::new(),
            custom_instructions: None,
            models: Vec::new(),
        },
        model: "check".into(),
    };
    new_agent(l.clone(), "check", "check", stand_in, allow_private).map(|_| ())
}

/// Checks a launch and maps it onto `worker`'s session. `allow_private`:
/// whether the webhook may target a private address.
pub(super) fn new_agent(
    l: Launch,
    user: &str,
    api_key_id: &str,
    worker: ServingWorker,
    allow_private: bool,
) -> Result<NewAgent, ApiError> {
    let text = prompt_text(&l.prompt, "prompt")?;
    let source = l.source.ok_or_else(|| {
        ApiError::invalid(
            "source is required: give source.repository (an https URL, with an optional source.ref) or source.prUrl",
        )
    })?;
    let target = l.target.unwrap_or_default();
    let (repository, git_ref, pr_url) = match (source.repository, source.pr_url) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give source.repository or source.prUrl, not both (with prUrl the agent works on that pull request's repository)",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "source needs repository (an https URL) or prUrl (a pull request URL)",
            ))
        }
        (Some(r), None) => (r.trim_end_matches('/').to_string(), source.git_ref, None),
        // The seed: with prUrl, ref is ignored.
        (None, Some(pr)) => {
            let repo = source_repository(&pr).ok_or_else(|| {
                ApiError::invalid(format!(
                    "source.prUrl {pr:?} is not a pull request URL (https://host/owner/name/pull/<number>)"
                ))
            })?;
            (repo, None, Some(pr))
        }
    };
    let repo = RepoWork {
        repository: pr_url.is_none().then(|| repository.clone()),
        git_ref: git_ref.clone(),
        pr_url: pr_url.clone(),
        branch_name: target.branch_name.clone(),
        auto_create_pr: target.auto_create_pr.unwrap_or(false),
        auto_branch: target.auto_branch.unwrap_or(true),
        draft: false,
        reviewers: Vec::new(),
    };
    repo.validate()
        .map_err(|e| ApiError::invalid(v0_field_names(&e)))?;
    let webhook = match l.webhook {
        None => None,
        Some(w) => {
            let url = crate::store::webhooks::check_target(&w.url, allow_private)
                .map_err(|e| ApiError::invalid(format!("webhook.{}", e)))?;
            if let Some(s) = &w.secret {
                let n = s.chars().count();
                if !(MIN_SECRET_CHARS..=256).contains(&n) {
                    return Err(ApiError::invalid(format!(
                        "webhook.secret is {n} characters; use {MIN_SECRET_CHARS} to 256 (e.g. `openssl rand -hex 32`)"
                    )));
                }
            }
            Some(AgentWebhook {
                url,
                secret: w.secret,
            })
        }
    };
    let name = agent_name(&text);
    let reg = worker.registration;
    let session = NewSession {
        workspace: reg.workspace,
        agent_profile: reg.agent_profile,
        agent: AgentVersion {
            name: "cloud-agent".into(),
            version: 1,
            model: worker.model,
            system_prompt: SYSTEM_PROMPT.into(),
            enabled_tools: AGENT_TOOLS
                .iter()
                .filter(|t| reg.capabilities.iter().any(|c| c == *t))
                .map(|t| t.to_string())
                .collect(),
            ..Default::default()
        }
        .into(),
        source: NewSource {
            title: name.clone(),
            prompt: text,
            images: l.prompt.images,
            ..Default::default()
        },
        script: None,
        repo: Some(repo),
        trigger: None,
    };
    Ok(NewAgent {
        user: user.into(),
        api_key_id: api_key_id.into(),
        name,
        repository,
        git_ref,
        pr_url,
        flags: LaunchFlags {
            auto_create_pr: target.auto_create_pr.unwrap_or(false),
            open_as_app: target.open_as_cursor_github_app.unwrap_or(false),
            skip_reviewer_request: target.skip_reviewer_request.unwrap_or(false),
        },
        session,
        webhook,
    })
}

/// A repository-work error with the field names a `/v0` client sent.
fn v0_field_names(e: &str) -> String {
    [
        ("repo.repository", "source.repository"),
        ("repo.ref", "source.ref"),
        ("repo.branch_name", "target.branchName"),
        (
            "repo.auto_branch = false needs pr_url",
            "target.autoBranch = false needs source.prUrl",
        ),
        ("repo.pr_url", "source.prUrl"),
        ("pr_url", "source.prUrl"),
    ]
    .iter()
    .fold(e.to_string(), |acc, (ours, theirs)| {
        acc.replace(ours, theirs)
    })
}
