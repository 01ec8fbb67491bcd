//! Checkout before the first tool call: decide, connect, fetch, check out.

use super::client::decided_client;
use super::section::{ForgeKind, RepositoriesSection};
use super::SessionRepo;
use crate::cancel::Cancel;
use crate::forge::{self, Forge, GitHub, RepoPath};
use crate::policy::{PolicyGate, SessionContext};
use crate::repo::{self, CheckoutRequest, Remote, Want};
use protocol::policy::{Action, ActionDetail, DecisionResult, GitOperation};
use protocol::repository::{check_ref_name, RepoWork};
use std::path::Path;

/// What a checkout needs from the session and the worker.
pub struct Prepare<'a> {
    /// `[repositories]`.
    pub settings: &'a RepositoriesSection,
    /// The session's repository and target.
    pub work: &'a RepoWork,
    /// The runner-private git directory of this session (outside every
    /// workspace; created here).
    pub git_dir: &'a Path,
    /// The session's workspace (empty on a first run).
    pub workspace: &'a Path,
    /// Continue on the target branch when the remote has it (a follow-up
    /// run on a worker that does not hold the earlier checkout).
    pub continuing: bool,
    /// The session's gate and context: every step is decided.
    pub gate: &'a PolicyGate,
    /// The session context.
    pub ctx: &'a SessionContext,
    /// Stops a transfer.
    pub cancel: &'a Cancel,
    /// Progress lines for the session's activity.
    pub progress: &'a dyn Fn(&str),
}

/// Where the session's code comes from, once a `pr_url` is looked up.
struct Source {
    clone_url: String,
    want: Want,
    branch: String,
    base_branch: Option<String>,
    asked: String,
    existing_pr: Option<String>,
}

/// Checks the session's repository out into its workspace (or resumes the
/// checkout an earlier run of the session left), each step decided.
pub fn prepare(p: &Prepare<'_>) -> Result<SessionRepo, String> {
    repo::init();
    let work = p.work;
    let wants_forge = work.auto_create_pr || work.pr_url.is_some();
    let (host_port, repo_path, pr_number) = match &work.pr_url {
        Some(pr) => {
            let (h, r, n) = forge::parse_pr_url(pr).map_err(|e| e.to_string())?;
            (h, Some(r), Some(n))
        }
        None => {
            let url = work
                .repository
                .as_deref()
                .ok_or("the session names neither a repository nor a pull request")?;
            if wants_forge {
                // A pull request needs the repository's place on the forge.
                let (h, r) = forge::parse_repo_url(url).map_err(|e| e.to_string())?;
                (h, Some(r), None)
            } else {
                // Push only: any path on the host will do (GitLab groups,
                // a plain git server).
                (host_port_of(url)?, None, None)
            }
        }
    };
    let host_name = super::section::host_name(&host_port).to_ascii_lowercase();
    let entry = p.settings.host(&host_port);
    let forge_kind = entry.map(|e| e.forge).unwrap_or(ForgeKind::None);
    if wants_forge && forge_kind == ForgeKind::None {
        return Err(match entry {
            None => format!(
                "{host_port} is not a repository host of this worker: add [[repositories.hosts]] host = \"{host_port}\" (with its token) to worker.toml"
            ),
            Some(_) => format!(
                "{host_port} has forge = \"none\": this worker cannot look up or open pull requests there; set forge = \"github\" or drop auto_create_pr / pr_url"
            ),
        });
    }
    let token = match entry.and_then(|e| e.token.as_ref()) {
        Some(r) => Some(r.resolve(&format!("repositories.hosts {host_port} token"))?),
        None => None,
    };
    // The forge (pull-request lookups and creation), on its own decided
    // connection.
    let forge: Option<(Box<dyn Forge>, RepoPath)> = match (entry, wants_forge, &token) {
        (Some(e), true, Some(token)) if e.forge == ForgeKind::Github => {
            let base = e
                .api_base
                .clone()
                .unwrap_or_else(|| forge::github_api_base(&host_port));
            let api = url::Url::parse(&base)
                .map_err(|err| format!("repositories.hosts {host_port} api_base {base:?}: {err}"))?;
            let client = decided_client(p.gate, p.ctx, p.settings, &api)?;
            let gh = GitHub::new(&base, token.clone(), client).map_err(|e| e.to_string())?;
            let path = repo_path.clone().ok_or("the repository has no owner/name path")?;
            Some((Box::new(gh), path))
        }
        (_, true, None) => {
            return Err(format!(
                "repositories.hosts {host_port} has no token: pull requests need one (token = {{ env = \"GITHUB_TOKEN\" }})"
            ))
        }
        _ => None,
    };
    let default_name = || {
        work.branch_name
            .clone()
            .unwrap_or_else(|| "runner/session".to_string())
    };
    let source = match pr_number {
        Some(n) => {
            let (f, path) = forge
                .as_ref()
                .ok_or("no forge to look the pull request up")?;
            let pr = f.pull_request(path, n).map_err(|e| e.to_string())?;
            // Branch names from the forge are checked like the session's
            // own: they become refspecs and policy input.
            check_ref_name("the pull request's head branch", &pr.head_ref)?;
            check_ref_name("the pull request's base branch", &pr.base_ref)?;
            if work.auto_branch {
                Source {
                    clone_url: pr.base_clone_url.clone(),
                    want: Want::PullHead(n),
                    branch: default_name(),
                    base_branch: Some(pr.head_ref.clone()),
                    asked: format!("refs/pull/{n}/head"),
                    existing_pr: None,
                }
            } else {
                let clone = pr.head_clone_url.clone().ok_or_else(|| {
                    format!("pull request {n}'s head repository is gone (deleted fork); start from a new branch (auto_branch = true)")
                })?;
                // The work goes onto the pull request's own head branch
                // (maybe a fork's): that pull request is the delivery.
                Source {
                    clone_url: clone,
                    want: Want::Branch(pr.head_ref.clone()),
                    branch: pr.head_ref.clone(),
                    base_branch: Some(pr.base_ref.clone()),
                    asked: pr.head_ref.clone(),
                    existing_pr: Some(pr.html_url.clone()),
                }
            }
        }
        None => Source {
            clone_url: work.repository.clone().unwrap_or_default(),
            want: match &work.git_ref {
                Some(r) => Want::Ref(r.clone()),
                None => Want::DefaultBranch,
            },
            branch: default_name(),
            base_branch: None,
            asked: work.git_ref.clone().unwrap_or_default(),
            existing_pr: None,
        },
    };
    let clone = url::Url::parse(&source.clone_url)
        .map_err(|e| format!("repository URL {:?}: {e}", source.clone_url))?;
    let clone_host_port = match clone.port() {
        Some(port) => format!("{}:{port}", clone.host_str().unwrap_or_default()),
        None => clone.host_str().unwrap_or_default().to_string(),
    };
    if !clone_host_port.eq_ignore_ascii_case(&host_port) {
        return Err(format!(
            "the pull request's repository is on {clone_host_port}, not {host_port}; this worker only works on the host the session named"
        ));
    }
    // What is fetched, decided before it is.
    let decide_fetch = |git_ref: String, default_branch: Option<String>| {
        decide_operation(
            p.gate,
            p.ctx,
            "git.fetch",
            GitOperation {
                remote: source.clone_url.clone(),
                host: host_name.clone(),
                git_ref: Some(git_ref),
                default_branch,
                session_branch: Some(source.branch.clone()),
                ..Default::default()
            },
        )
    };
    // Decided before anything is sent: the fetch, then the connection.
    decide_fetch(source.asked.clone(), None)?;
    // The policy sees host names; the credentials are per host and port.
    if entry.is_none() {
        return Err(format!(
            "{host_port} is not a repository host of this worker: add [[repositories.hosts]] host = \"{host_port}\" (with its token) to worker.toml"
        ));
    }
    let client = decided_client(p.gate, p.ctx, p.settings, &clone)?;
    let remote = Remote::new(&source.clone_url, token, client).map_err(|e| e.to_string())?;
    let refs = repo::list_refs(&remote).map_err(|e| e.to_string())?;
    let default_branch = refs.default_branch.clone();
    let resumed = repo::is_checked_out(p.git_dir);
    if !resumed && std::fs::symlink_metadata(p.git_dir).is_ok() {
        (p.progress)("an earlier attempt's checkout did not finish; starting it again");
        repo::discard_incomplete(p.git_dir, p.workspace).map_err(|e| e.to_string())?;
    }
    if !resumed {
        let remote_has_branch = refs
            .refs
            .contains_key(&format!("refs/heads/{}", source.branch));
        let want = if p.continuing && remote_has_branch && !matches!(source.want, Want::Branch(_)) {
            // A follow-up on a worker without the earlier checkout: what is
            // fetched now is the session's pushed branch, decided as such.
            decide_fetch(
                format!("refs/heads/{}", source.branch),
                default_branch.clone(),
            )?;
            Want::Branch(source.branch.clone())
        } else {
            source.want.clone()
        };
        if std::fs::read_dir(p.workspace)
            .map_err(|e| format!("cannot read the workspace {}: {e}", p.workspace.display()))?
            .next()
            .is_some()
        {
            return Err(format!(
                "the workspace {} is not empty but holds no checkout of this session; remove it so the repository can be checked out",
                p.workspace.display()
            ));
        }
        (p.progress)(&format!(
            "checking out {} ({})",
            source.clone_url,
            describe(&want)
        ));
        let depth = (p.settings.clone_depth > 0).then_some(p.settings.clone_depth);
        let out = repo::checkout(&CheckoutRequest {
            remote: &remote,
            want: want.clone(),
            target_branch: &source.branch,
            git_dir: p.git_dir,
            workspace: p.workspace,
            depth,
            cancel: p.cancel,
            progress: p.progress,
        })
        .map_err(|e| e.to_string())?;
        (p.progress)(&format!(
            "checked out {} at {} on branch {}{}",
            out.base_ref,
            short(&out.base_commit),
            source.branch,
            if out.shallow { " (shallow)" } else { "" }
        ));
    } else {
        (p.progress)(&format!(
            "continuing on branch {} from the earlier run's checkout",
            source.branch
        ));
    }
    let base_branch = source.base_branch.or_else(|| match &work.git_ref {
        Some(r) if refs.refs.contains_key(&format!("refs/heads/{r}")) => Some(r.clone()),
        _ => default_branch.clone(),
    });
    Ok(SessionRepo {
        remote,
        host_name,
        git_dir: p.git_dir.to_path_buf(),
        workspace: p.workspace.to_path_buf(),
        branch: source.branch,
        base_branch,
        default_branch,
        forge,
        auto_create_pr: work.auto_create_pr,
        draft: work.draft,
        reviewers: work.reviewers.clone(),
        existing_pr: source.existing_pr,
        resumed,
    })
}

/// `host[:port]` of an https URL (the key of its `[[repositories.hosts]]`
/// entry).
fn host_port_of(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url).map_err(|e| format!("repository URL {url:?}: {e}"))?;
    let host = u
        .host_str()
        .ok_or_else(|| format!("repository URL {url:?} has no host"))?;
    Ok(match u.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// Decides one of the runner's repository operations; a refusal is the
/// error, with the policy's reasons.
pub(super) fn decide_operation(
    gate: &PolicyGate,
    ctx: &SessionContext,
    operation: &str,
    git: GitOperation,
) -> Result<(), String> {
    let action = Action {
        tool: "runner".into(),
        detail: ActionDetail::External {
            operation: operation.into(),
            target: Some(git.remote.clone()),
            git: Some(git),
        },
    };
    let record = gate.check(&action, ctx);
    match record.result {
        DecisionResult::Allow => Ok(()),
        other => Err(format!(
            "{operation} was {}: {}",
            match other {
                DecisionResult::Ask =>
                    "not allowed (the policy asked, and nobody can answer a repository step)",
                _ => "denied",
            },
            record.reasons.join("; ")
        )),
    }
}

fn describe(want: &Want) -> String {
    match want {
        Want::DefaultBranch => "the default branch".into(),
        Want::Ref(r) => r.clone(),
        Want::PullHead(n) => format!("pull request {n}'s head"),
        Want::Branch(b) => format!("branch {b}"),
    }
}

/// The first 12 characters of a commit id.
pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
