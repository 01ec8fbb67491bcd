//! From a session to an agent: the status table, the name, the view every
//! answer shows, and the `statusChange` webhook body.

use super::wire::{Agent, AgentSource, AgentTarget, Status};
use protocol::session::{Session, SessionState};
use serde::{Deserialize, Serialize};

/// What an agent keeps beside its session (the `cloud_agents` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentRecord {
    /// `bc_…`.
    pub(crate) id: String,
    /// The session that does the work.
    pub(crate) session_id: String,
    /// Its owner: only this user sees it.
    pub(crate) user: String,
    /// Derived from the prompt at launch.
    pub(crate) name: String,
    /// The source as launched, normalised ([`AgentSource`] fields).
    pub(crate) repository: String,
    /// The ref as launched (none with `prUrl`).
    pub(crate) git_ref: Option<String>,
    /// The pull request it was launched on.
    pub(crate) pr_url: Option<String>,
    /// The target flags as launched.
    pub(crate) flags: LaunchFlags,
    /// RFC 3339.
    pub(crate) created_at: String,
}

/// The target flags a launch sets, echoed in every view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LaunchFlags {
    /// `autoCreatePr`.
    pub(crate) auto_create_pr: bool,
    /// `openAsCursorGithubApp` (echoed only).
    pub(crate) open_as_app: bool,
    /// `skipReviewerRequest` (echoed only).
    pub(crate) skip_reviewer_request: bool,
}

/// The seed's status of a session state — the one place it is decided.
/// A stale session (its worker vanished) is about to be queued again, so
/// it shows as CREATING, as a follow-up does until a worker takes it.
pub(crate) fn status(state: SessionState) -> Status {
    match state {
        SessionState::Queued | SessionState::Stale => Status::Creating,
        SessionState::Active | SessionState::AwaitingInput => Status::Running,
        SessionState::Complete => Status::Finished,
        SessionState::Error => Status::Failed,
        SessionState::Cancelled => Status::Stopped,
    }
}

/// The agent's name: the prompt's first non-empty line, cut at a word
/// boundary to at most 60 characters (an ellipsis marks a cut); "Cloud
/// agent" for a prompt with no words.
pub(crate) fn agent_name(prompt: &str) -> String {
    const MAX: usize = 60;
    let Some(line) = prompt.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return "Cloud agent".into();
    };
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    if line.chars().count() <= MAX {
        return line;
    }
    let head: String = line.chars().take(MAX - 1).collect();
    let cut = match head.rfind(char::is_whitespace) {
        Some(i) if i >= MAX / 2 => head[..i].trim_end().to_string(),
        _ => head,
    };
    format!("{cut}…")
}

/// The repository of a pull request URL (`…/owner/name/pull/7` →
/// `…/owner/name`); `None` when it has no `/pull/<n>` tail.
pub(crate) fn source_repository(pr_url: &str) -> Option<String> {
    let (repo, n) = pr_url.trim_end_matches('/').rsplit_once("/pull/")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && repo.matches('/').count() >= 4)
        .then(|| repo.to_string())
}

/// The agent as every answer shows it. `base` is the control plane's
/// public URL (no trailing slash): `target.url` is the agent's page there.
pub(crate) fn agent_view(rec: &AgentRecord, session: &Session, base: &str) -> Agent {
    let status = status(session.state);
    let repo = session.repo.as_ref();
    Agent {
        id: rec.id.clone(),
        name: rec.name.clone(),
        status,
        source: AgentSource {
            repository: rec.repository.clone(),
            git_ref: rec.git_ref.clone(),
            pr_url: rec.pr_url.clone(),
        },
        target: AgentTarget {
            branch_name: repo.and_then(|r| r.branch_name.clone()),
            url: format!("{base}/agents/{}", rec.id),
            pr_url: session.external_url.clone(),
            auto_create_pr: rec.flags.auto_create_pr,
            open_as_cursor_github_app: rec.flags.open_as_app,
            skip_reviewer_request: rec.flags.skip_reviewer_request,
        },
        summary: matches!(status, Status::Finished | Status::Failed)
            .then(|| session.outcome.clone())
            .flatten(),
        created_at: rec.created_at.clone(),
    }
}

/// The body of a `statusChange` webhook, as Cursor sends it:
/// `{event, timestamp, id, status, source, target{url, branchName,
/// prUrl}, summary}`.
pub(crate) fn status_change_body(agent: &Agent, timestamp: &str) -> serde_json::Value {
    let mut source = serde_json::json!({"repository": agent.source.repository});
    if let Some(r) = &agent.source.git_ref {
        source["ref"] = r.clone().into();
    }
    if let Some(p) = &agent.source.pr_url {
        source["prUrl"] = p.clone().into();
    }
    let mut target = serde_json::json!({"url": agent.target.url});
    if let Some(b) = &agent.target.branch_name {
        target["branchName"] = b.clone().into();
    }
    if let Some(p) = &agent.target.pr_url {
        target["prUrl"] = p.clone().into();
    }
    let mut body = serde_json::json!({
        "event": "statusChange",
        "timestamp": timestamp,
        "id": agent.id,
        "status": agent.status.as_str(),
        "source": source,
        "target": target,
    });
    if let Some(s) = &agent.summary {
        body["summary"] = s.clone().into();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_state_has_the_seeds_status() {
        use SessionState::*;
        let table = [
            (Queued, "CREATING"),
            (Stale, "CREATING"),
            (Active, "RUNNING"),
            (AwaitingInput, "RUNNING"),
            (Complete, "FINISHED"),
            (Error, "FAILED"),
            (Cancelled, "STOPPED"),
        ];
        for (state, want) in table {
            assert_eq!(status(state).as_str(), want, "{state:?}");
            assert_eq!(
                serde_json::to_value(status(state)).unwrap(),
                serde_json::json!(want)
            );
        }
    }

    #[test]
    fn names_come_from_the_first_line_cut_at_a_word() {
        assert_eq!(agent_name("\n\n  Fix the bug\nin add()"), "Fix the bug");
        assert_eq!(agent_name("   \n\t"), "Cloud agent");
        let long =
            "Add a README with installation instructions and usage examples for every module";
        let n = agent_name(long);
        assert!(n.chars().count() <= 60, "{n}");
        assert!(
            n.ends_with('…') && long.starts_with(n.trim_end_matches('…')),
            "{n}"
        );
        assert!(!n.trim_end_matches('…').ends_with(' '), "{n}");
        let one_word = "x".repeat(100);
        assert_eq!(agent_name(&one_word).chars().count(), 60);
        assert_eq!(agent_name("a\u{7}b"), "ab");
    }

    #[test]
    fn a_pull_requests_repository_is_its_url_without_the_pull_tail() {
        assert_eq!(
            source_repository("https://github.com/acme/widget/pull/12").as_deref(),
            Some("https://github.com/acme/widget")
        );
        assert_eq!(
            source_repository("https://h:8443/acme/widget/pull/3/").as_deref(),
            Some("https://h:8443/acme/widget")
        );
        assert_eq!(source_repository("https://github.com/acme/widget"), None);
        assert_eq!(
            source_repository("https://github.com/acme/widget/pull/x"),
            None
        );
        assert_eq!(source_repository("https://github.com/pull/3"), None);
    }
}
