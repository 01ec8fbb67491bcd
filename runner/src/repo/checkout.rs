//! Checkout before the first tool call: resolve what the session asked for
//! against the remote's advertisement, fetch just that (shallow when asked),
//! put the session's branch on it and write the files into the workspace.

use super::remote::{advertised, Advertised, Remote};
use super::{private, transport, RepoError};
use crate::cancel::Cancel;
use std::path::Path;

/// What to check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The branch the remote's HEAD points to.
    DefaultBranch,
    /// A branch or tag name (bare names try a branch, then a tag), a full
    /// ref name (`refs/...`), or a full or short commit id.
    Ref(String),
    /// A pull request's head, `refs/pull/<n>/head` (GitHub serves it from
    /// the base repository).
    PullHead(u64),
    /// Exactly `refs/heads/<b>`, to resume a target branch pushed before.
    Branch(String),
}

/// Everything [`checkout`] needs.
pub struct CheckoutRequest<'a> {
    /// The repository.
    pub remote: &'a Remote,
    /// What to check out.
    pub want: Want,
    /// The local branch the session works on (and later pushes).
    pub target_branch: &'a str,
    /// The runner-private git dir: outside the workspace, absent or empty;
    /// created with mode 0700.
    pub git_dir: &'a Path,
    /// The workspace: an existing, empty directory.
    pub workspace: &'a Path,
    /// Fetch only this many commits of history (`None`: all of it).
    pub depth: Option<u32>,
    /// Stops the fetch.
    pub cancel: &'a Cancel,
    /// Progress lines a person can read (no secrets in them).
    pub progress: &'a dyn Fn(&str),
}

/// What was checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOut {
    /// The full ref that was fetched (`refs/heads/main`, `refs/tags/v1`,
    /// `refs/pull/7/head`), or the commit id when a commit was asked for.
    pub base_ref: String,
    /// The commit the session branch starts at.
    pub base_commit: String,
    /// Whether history was cut (`depth`).
    pub shallow: bool,
}

/// Where the fetched base lands in the private repository.
const BASE: &str = "refs/runner/base";

/// What to fetch, once the advertisement is known.
enum Plan {
    /// A ref the remote advertises.
    Ref(String),
    /// A commit id: `full` ones are asked for directly first.
    Commit { id: String, full: bool },
}

/// Clones the remote's wanted commit into the private git dir, creates the
/// local branch `target_branch` on it with HEAD there, writes the files into
/// the workspace and gives the workspace a copy of the repository as `.git`.
pub fn checkout(req: &CheckoutRequest) -> Result<CheckedOut, RepoError> {
    super::init();
    super::commit::check_branch(req.target_branch)?;
    check_empty_workspace(req.workspace)?;
    if req.workspace.starts_with(req.git_dir) || req.git_dir.starts_with(req.workspace) {
        return Err(RepoError::Git(
            "the private git dir and the workspace must not contain each other".into(),
        ));
    }
    (req.progress)(&format!("listing the refs of {}", req.remote.url()));
    let adv = advertised(req.remote, req.cancel)?;
    let plan = resolve(&req.want, &adv)?;
    let repo = private::create(req.git_dir)?;
    repo.set_workdir(req.workspace, false)
        .map_err(|e| RepoError::git("setting the work tree", e))?;
    let (base_ref, commit) = match plan {
        Plan::Ref(name) => {
            (req.progress)(&format!("fetching {name}"));
            fetch(&repo, req, &[format!("+{name}:{BASE}")], req.depth)?;
            let c = peel(&repo, BASE)?;
            (name, c)
        }
        Plan::Commit { id, full } => {
            let direct = if full {
                (req.progress)(&format!("fetching commit {id}"));
                match fetch(&repo, req, &[format!("+{id}:{BASE}")], req.depth) {
                    Ok(()) => Some(peel(&repo, BASE)?),
                    Err(RepoError::Git(_)) | Err(RepoError::Network(_)) => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            let c = match direct {
                Some(c) => c,
                None => {
                    (req.progress)(&format!(
                        "fetching all branches to find commit {id} (the server does not serve single commits)"
                    ));
                    fetch(
                        &repo,
                        req,
                        &["+refs/heads/*:refs/runner/heads/*".into()],
                        None,
                    )?;
                    let c = find_commit(&repo, &id)?;
                    drop_refs(&repo, "refs/runner/heads/*")?;
                    c
                }
            };
            (c.to_string(), c)
        }
    };
    let commit = repo
        .find_commit(commit)
        .map_err(|e| RepoError::git("reading the fetched commit", e))?;
    (req.progress)(&format!(
        "checking out {} as {}",
        commit.id(),
        req.target_branch
    ));
    repo.branch(req.target_branch, &commit, true)
        .map_err(|e| RepoError::git("creating the session branch", e))?;
    repo.set_head(&format!("refs/heads/{}", req.target_branch))
        .map_err(|e| RepoError::git("pointing HEAD at the session branch", e))?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.force().recreate_missing(true);
    repo.checkout_head(Some(&mut co))
        .map_err(|e| RepoError::git("writing the files into the workspace", e))?;
    drop_refs(&repo, "refs/runner/*")?;
    let shallow = repo.is_shallow();
    let base_commit = commit.id().to_string();
    drop(commit);
    drop(repo);
    private::copy_to_workspace(req.git_dir, req.workspace)?;
    private::mark_complete(req.git_dir)?;
    Ok(CheckedOut {
        base_ref,
        base_commit,
        shallow,
    })
}

fn check_empty_workspace(ws: &Path) -> Result<(), RepoError> {
    let meta = std::fs::symlink_metadata(ws)
        .map_err(|e| RepoError::git(&format!("the workspace {}", ws.display()), e))?;
    if !meta.is_dir() {
        return Err(RepoError::Git(format!(
            "the workspace {} is not a directory",
            ws.display()
        )));
    }
    let mut entries = std::fs::read_dir(ws)
        .map_err(|e| RepoError::git(&format!("reading the workspace {}", ws.display()), e))?;
    if entries.next().is_some() {
        return Err(RepoError::Git(format!(
            "the workspace {} is not empty; a repository is checked out into an empty workspace only",
            ws.display()
        )));
    }
    Ok(())
}

/// Resolves the wanted thing against what the remote advertises.
fn resolve(want: &Want, adv: &Advertised) -> Result<Plan, RepoError> {
    let exact = |name: String| -> Result<Plan, RepoError> {
        match adv.get(&name) {
            Some(_) => Ok(Plan::Ref(name)),
            None => Err(RepoError::MissingRef(name)),
        }
    };
    match want {
        Want::DefaultBranch => match &adv.default_branch {
            Some(b) => exact(b.clone()),
            None => Err(RepoError::MissingRef(
                "default branch (the server does not say where HEAD points; name a branch)".into(),
            )),
        },
        Want::Branch(b) => {
            super::commit::check_branch(b)?;
            exact(format!("refs/heads/{b}"))
        }
        Want::PullHead(n) => exact(format!("refs/pull/{n}/head")),
        Want::Ref(r) => {
            if r.starts_with("refs/") {
                if !git2::Reference::is_valid_name(r) {
                    return Err(RepoError::MissingRef(format!("ref {r:?}")));
                }
                return exact(r.clone());
            }
            for full in [format!("refs/heads/{r}"), format!("refs/tags/{r}")] {
                if adv.get(&full).is_some() {
                    return Ok(Plan::Ref(full));
                }
            }
            if (4..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Plan::Commit {
                    id: r.to_ascii_lowercase(),
                    full: r.len() == 40,
                });
            }
            Err(RepoError::MissingRef(format!(
                "branch, tag or commit {r:?}"
            )))
        }
    }
}

fn fetch(
    repo: &git2::Repository,
    req: &CheckoutRequest,
    specs: &[String],
    depth: Option<u32>,
) -> Result<(), RepoError> {
    let session = transport::enter(req.remote, req.cancel);
    let mut remote = repo
        .remote_anonymous(req.remote.url())
        .map_err(|e| RepoError::git("preparing the remote", e))?;
    if remote.url_bytes() != req.remote.url().as_bytes() || remote.pushurl_bytes().is_some() {
        return Err(RepoError::BadUrl(
            "the private repository rewrote the remote URL".into(),
        ));
    }
    let mut cb = git2::RemoteCallbacks::new();
    let mut last = 0usize;
    cb.transfer_progress(|p| {
        if session.cancelled() {
            return false;
        }
        let (got, total) = (p.received_objects(), p.total_objects());
        if total > 0 && (got == total || got >= last + total.div_ceil(10)) && got != last {
            last = got;
            (req.progress)(&format!("received {got}/{total} objects"));
        }
        true
    });
    cb.sideband_progress(|_| !session.cancelled());
    let mut fo = git2::FetchOptions::new();
    fo.remote_callbacks(cb)
        .download_tags(git2::AutotagOption::None)
        .follow_redirects(git2::RemoteRedirect::None)
        .update_fetchhead(false);
    if let Some(d) = depth.filter(|d| *d > 0) {
        fo.depth(i32::try_from(d).unwrap_or(i32::MAX));
    }
    let r = remote.fetch(specs, Some(&mut fo), None);
    session.check(r)
}

fn peel(repo: &git2::Repository, name: &str) -> Result<git2::Oid, RepoError> {
    repo.find_reference(name)
        .and_then(|r| r.peel_to_commit())
        .map(|c| c.id())
        .map_err(|e| RepoError::git("reading the fetched ref", e))
}

/// A commit by full or short id among what was fetched.
fn find_commit(repo: &git2::Repository, id: &str) -> Result<git2::Oid, RepoError> {
    match repo.revparse_single(id).and_then(|o| o.peel_to_commit()) {
        Ok(c) => Ok(c.id()),
        Err(e) if e.code() == git2::ErrorCode::Ambiguous => Err(RepoError::MissingRef(format!(
            "unambiguous commit {id:?} (several commits start with it; give more digits)"
        ))),
        Err(_) => Err(RepoError::MissingRef(format!("commit {id} on any branch"))),
    }
}

fn drop_refs(repo: &git2::Repository, glob: &str) -> Result<(), RepoError> {
    let refs = repo
        .references_glob(glob)
        .map_err(|e| RepoError::git("listing the runner's refs", e))?;
    for r in refs {
        let mut r = r.map_err(|e| RepoError::git("listing the runner's refs", e))?;
        r.delete()
            .map_err(|e| RepoError::git("deleting a runner ref", e))?;
    }
    Ok(())
}
