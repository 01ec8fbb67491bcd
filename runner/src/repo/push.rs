//! Push at the end of a session, and the question the policy asks first:
//! would this push create the branch, fast-forward it, or overwrite commits?

use super::remote::{advertised, Remote};
use super::{commit::check_branch, private, transport, RepoError};
use crate::cancel::Cancel;
use std::cell::RefCell;
use std::path::Path;

/// How a push changes the remote branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    /// The branch does not exist on the remote.
    New,
    /// The remote branch is an ancestor of ours (or equal): a fast-forward.
    Update,
    /// The remote branch has commits we do not have: they would be lost.
    Force,
}

/// Decides the mode from the remote's refs and the local history, so the
/// policy can rule on it before anything is sent. Returns the remote commit
/// when the branch exists.
pub fn push_mode(
    git_dir: &Path,
    remote: &Remote,
    branch: &str,
) -> Result<(PushMode, Option<String>), RepoError> {
    check_branch(branch)?;
    let repo = private::open(git_dir)?;
    let local = local_branch(&repo, branch)?;
    let adv = advertised(remote, &Cancel::never())?;
    let Some(theirs) = adv.get(&format!("refs/heads/{branch}")) else {
        return Ok((PushMode::New, None));
    };
    let known = repo.find_commit(theirs).is_ok();
    let ff = theirs == local || (known && repo.graph_descendant_of(local, theirs).unwrap_or(false));
    let mode = if ff {
        PushMode::Update
    } else {
        PushMode::Force
    };
    Ok((mode, Some(theirs.to_string())))
}

fn local_branch(repo: &git2::Repository, branch: &str) -> Result<git2::Oid, RepoError> {
    repo.find_reference(&format!("refs/heads/{branch}"))
        .and_then(|r| r.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| RepoError::MissingRef(format!("local branch {branch:?} to push")))
}

/// Pushes `refs/heads/<branch>` to the same name on the remote; forced only
/// for [`PushMode::Force`]. A ref the server refuses (a hook, branch
/// protection) is an error, although libgit2 itself reports success.
pub fn push(
    git_dir: &Path,
    remote: &Remote,
    branch: &str,
    mode: PushMode,
    cancel: &Cancel,
) -> Result<(), RepoError> {
    check_branch(branch)?;
    let repo = private::open(git_dir)?;
    local_branch(&repo, branch)?;
    let session = transport::enter(remote, cancel);
    let mut git_remote = repo
        .remote_anonymous(remote.url())
        .map_err(|e| RepoError::git("preparing the remote", e))?;
    if git_remote.url_bytes() != remote.url().as_bytes() || git_remote.pushurl_bytes().is_some() {
        return Err(RepoError::BadUrl(
            "the private repository rewrote the remote URL".into(),
        ));
    }
    let refused: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let mut cb = git2::RemoteCallbacks::new();
    cb.push_update_reference(|name, status| {
        if let Some(why) = status {
            refused
                .borrow_mut()
                .push(format!("{name}: {}", cap(&session.redact(why), 200)));
        }
        Ok(())
    });
    cb.push_negotiation(|_| {
        if session.cancelled() {
            Err(git2::Error::from_str("cancelled"))
        } else {
            Ok(())
        }
    });
    cb.sideband_progress(|_| !session.cancelled());
    let mut po = git2::PushOptions::new();
    po.remote_callbacks(cb)
        .follow_redirects(git2::RemoteRedirect::None);
    let plus = if mode == PushMode::Force { "+" } else { "" };
    let spec = format!("{plus}refs/heads/{branch}:refs/heads/{branch}");
    let r = git_remote.push(&[spec.as_str()], Some(&mut po));
    drop(po);
    session.check(r)?;
    let refused = refused.into_inner();
    if !refused.is_empty() {
        return Err(RepoError::Rejected(refused.join("; ")));
    }
    Ok(())
}

/// At most `n` characters of server-sent text, control characters dropped.
fn cap(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}
