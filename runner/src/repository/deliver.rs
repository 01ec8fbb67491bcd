//! Delivery after a successful run: commit the workspace, push the
//! session's branch, open the pull request — each decided first.

use super::prepare::{decide_operation, short};
use super::section::RepositoriesSection;
use super::SessionRepo;
use crate::cancel::Cancel;
use crate::forge::{Created, NewPullRequest};
use crate::policy::{PolicyGate, SessionContext};
use crate::repo::{self, Identity, PushMode};
use protocol::policy::GitOperation;

/// What delivery needs besides the checkout.
pub struct Deliver<'a> {
    /// `[repositories]` (identities).
    pub settings: &'a RepositoriesSection,
    /// The pinned agent's name: the commit's author.
    pub agent_name: &'a str,
    /// The run's final summary: the commit message and the pull request's
    /// body.
    pub summary: &'a str,
    /// The session's title: the pull request's title.
    pub title: &'a str,
    /// The session's gate and context.
    pub gate: &'a PolicyGate,
    /// The session context.
    pub ctx: &'a SessionContext,
    /// Stops a push.
    pub cancel: &'a Cancel,
    /// Progress lines.
    pub progress: &'a dyn Fn(&str),
}

/// What was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The branch.
    pub branch: String,
    /// The commit at its tip, when the work changed anything.
    pub commit: Option<String>,
    /// Whether this run pushed (false: nothing new to push).
    pub pushed: bool,
    /// The pull request's web URL, when one was opened (or already open).
    pub pr_url: Option<String>,
    /// Things that did not stop the delivery (a reviewer the forge refused).
    pub warnings: Vec<String>,
}

impl Delivered {
    /// One line for the terminal activity: branch, commit, pull request.
    pub fn describe(&self) -> String {
        let mut s = match (&self.commit, self.pushed) {
            (None, _) => format!("no changes to deliver; branch {} unchanged", self.branch),
            (Some(c), true) => format!("pushed branch {} at {}", self.branch, short(c)),
            (Some(c), false) => format!("branch {} already at {}", self.branch, short(c)),
        };
        if let Some(u) = &self.pr_url {
            s.push_str(&format!("; pull request {u}"));
        }
        for w in &self.warnings {
            s.push_str(&format!("; warning: {w}"));
        }
        s
    }
}

/// Why delivery failed; the work stays committed on the branch locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The policy refused a step.
    #[error("{0}")]
    Denied(String),
    /// A step failed.
    #[error("{0}")]
    Failed(String),
}

impl SessionRepo {
    /// Commits the workspace, pushes the branch and opens the pull request.
    pub fn deliver(&self, d: &Deliver<'_>) -> Result<Delivered, DeliveryError> {
        let fail = |e: String| DeliveryError::Failed(e);
        let author = Identity {
            name: d.agent_name.to_string(),
            email: d.settings.author_email.clone(),
        };
        let committer = Identity {
            name: d.settings.committer.name.clone(),
            email: d.settings.committer.email.clone(),
        };
        let message = commit_message(d.summary);
        let committed = repo::commit_all(
            &self.git_dir,
            &self.workspace,
            &author,
            &committer,
            &message,
        )
        .map_err(|e| fail(format!("committing the work failed: {e}")))?;
        let head = repo::head(&self.git_dir).map_err(|e| fail(e.to_string()))?;
        let kept = |why: String| {
            format!(
                "{why}; the work is kept locally on branch {} at {}",
                self.branch,
                short(&head)
            )
        };
        let (mode, remote_tip) = repo::push_mode(&self.git_dir, &self.remote, &self.branch)
            .map_err(|e| fail(kept(format!("cannot compare with the remote: {e}"))))?;
        let changed = committed.is_some() || remote_tip.as_deref() != Some(head.as_str());
        let mut out = Delivered {
            branch: self.branch.clone(),
            commit: if changed || self.resumed {
                Some(head.clone())
            } else {
                None
            },
            pushed: false,
            pr_url: None,
            warnings: Vec::new(),
        };
        if committed.is_none() && remote_tip.is_none() && !self.resumed {
            // Nothing was changed and nothing was pushed before: there is
            // no work to deliver (and no pull request without commits).
            out.commit = None;
            return Ok(out);
        }
        if remote_tip.as_deref() != Some(head.as_str()) {
            let mode_name = match mode {
                PushMode::New => "new",
                PushMode::Update => "update",
                PushMode::Force => "force",
            };
            decide_operation(
                d.gate,
                d.ctx,
                "git.push",
                GitOperation {
                    remote: self.remote.url().to_string(),
                    host: self.host_name.clone(),
                    branch: Some(self.branch.clone()),
                    mode: Some(mode_name.into()),
                    default_branch: self.default_branch.clone(),
                    session_branch: Some(self.branch.clone()),
                    ..Default::default()
                },
            )
            .map_err(|e| DeliveryError::Denied(kept(e)))?;
            (d.progress)(&format!("pushing branch {} ({mode_name})", self.branch));
            repo::push(&self.git_dir, &self.remote, &self.branch, mode, d.cancel)
                .map_err(|e| fail(kept(format!("pushing {} failed: {e}", self.branch))))?;
            out.pushed = true;
        }
        if let Some(url) = &self.existing_pr {
            // Pushing the pull request's head branch updated it.
            out.pr_url = Some(url.clone());
            return Ok(out);
        }
        if self.auto_create_pr {
            let (forge, path) = self.forge.as_ref().ok_or_else(|| {
                fail(kept(
                    "no forge is configured to open the pull request".into(),
                ))
            })?;
            let base = self.base_branch.clone().ok_or_else(|| {
                fail(kept(
                    "the remote names no default branch for the pull request to merge into".into(),
                ))
            })?;
            decide_operation(
                d.gate,
                d.ctx,
                "pr.create",
                GitOperation {
                    remote: self.remote.url().to_string(),
                    host: self.host_name.clone(),
                    branch: Some(self.branch.clone()),
                    session_branch: Some(self.branch.clone()),
                    base: Some(base.clone()),
                    draft: Some(self.draft),
                    ..Default::default()
                },
            )
            .map_err(|e| DeliveryError::Denied(kept(e)))?;
            let title = if d.title.trim().is_empty() {
                first_line(d.summary)
            } else {
                d.title.trim().chars().take(200).collect()
            };
            let pr = NewPullRequest {
                title,
                body: format!(
                    "{}\n\n---\nOpened by runner for agent {}.",
                    d.summary, d.agent_name
                ),
                head: self.branch.clone(),
                base,
                draft: self.draft,
            };
            let created = forge
                .create_pull_request(path, &pr)
                .map_err(|e| fail(kept(format!("opening the pull request failed: {e}"))))?;
            let (pull, new) = match created {
                Created::Opened(p) => (p, true),
                Created::AlreadyOpen(p) => (p, false),
            };
            (d.progress)(&format!(
                "{} pull request #{} {}",
                if new { "opened" } else { "updated the open" },
                pull.number,
                pull.html_url
            ));
            if new && !self.reviewers.is_empty() {
                if let Err(e) = forge.request_reviewers(path, pull.number, &self.reviewers) {
                    out.warnings.push(format!(
                        "reviewers {} were not requested: {e}",
                        self.reviewers.join(", ")
                    ));
                }
            }
            out.pr_url = Some(pull.html_url);
        }
        Ok(out)
    }
}

/// The commit message: the summary's first line as the subject (at most
/// 72 characters), the whole summary as the body when it says more.
fn commit_message(summary: &str) -> String {
    let subject = first_line(summary);
    let rest = summary.trim();
    if rest == subject || rest.is_empty() {
        format!("{subject}\n")
    } else {
        format!("{subject}\n\n{rest}\n")
    }
}

fn first_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    let line = if line.is_empty() {
        "Work by the agent"
    } else {
        line
    };
    if line.chars().count() > 72 {
        format!("{}…", line.chars().take(71).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_messages_have_a_short_subject() {
        assert_eq!(commit_message("Fix the bug"), "Fix the bug\n");
        let long = format!("{}\nmore", "x".repeat(100));
        let m = commit_message(&long);
        let subject = m.lines().next().unwrap();
        assert_eq!(subject.chars().count(), 72);
        assert!(m.ends_with("more\n"));
        assert_eq!(commit_message("  "), "Work by the agent\n");
    }

    #[test]
    fn a_delivery_names_branch_commit_and_pull_request() {
        let d = Delivered {
            branch: "runner/x".into(),
            commit: Some("0123456789abcdef0123".into()),
            pushed: true,
            pr_url: Some("https://github.com/o/r/pull/3".into()),
            warnings: vec!["reviewers bob were not requested".into()],
        };
        let s = d.describe();
        assert!(s.contains("pushed branch runner/x at 0123456789ab"), "{s}");
        assert!(
            s.contains("pull request https://github.com/o/r/pull/3"),
            "{s}"
        );
        assert!(s.contains("warning: reviewers bob"), "{s}");
    }
}
