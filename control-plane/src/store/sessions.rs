//! Sessions and their recorded state changes: queueing, reading, listing,
//! cancelling, and the one function every state change goes through
//! ([`set_state`]: checked against the lifecycle, recorded, announced to
//! webhook subscribers in the same transaction).

use super::attachments;
use super::limits::{check_len, check_name};
use super::{now_ms, rfc3339, webhooks, ConflictKind, Missing, Store, StoreError, Tx};
use crate::transitions::{next, Event};
use protocol::activity::{Activity, ActivityEntry};
use protocol::session::{
    AgentPin, AgentRef, AgentVersion, NewSession, Session, SessionState, Trigger,
};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A session with its activity history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct SessionView {
    /// The session.
    pub session: Session,
    /// Its activities, in order.
    pub activities: Vec<ActivityEntry>,
    /// Its state changes, in order.
    pub transitions: Vec<Transition>,
}

/// One recorded state change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Transition {
    /// Previous state.
    pub from: String,
    /// New state.
    pub to: String,
    /// RFC 3339.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// The stored body of a session (what does not change).
#[derive(Serialize, Deserialize)]
struct Body {
    agent: protocol::session::AgentVersion,
    source: protocol::session::SourceWork,
    script: Option<Vec<protocol::session::ScriptStep>>,
    /// Absent in sessions stored before repositories existed.
    #[serde(default)]
    repo: Option<protocol::repository::RepoWork>,
}

impl Store {
    /// Queues a session that belongs to nobody (everyone's).
    #[cfg(test)]
    pub(crate) fn queue(&self, new: NewSession) -> Result<Session, StoreError> {
        self.queue_as(new, None)
    }

    /// Queues a session owned by `owner` (the caller's user; `None` for a
    /// key that belongs to nobody): see [`super::access`].
    pub(crate) fn queue_as(
        &self,
        new: NewSession,
        owner: Option<&str>,
    ) -> Result<Session, StoreError> {
        validate_new(&new)?;
        let images = attachments::prepare("source.images", &new.source.images)?;
        self.tx(|tx| queue_in(tx, new, &images, owner))
    }

    /// A session with its activities and transitions.
    pub(crate) fn get(&self, id: &str) -> Result<SessionView, StoreError> {
        self.tx(|tx| view_in(tx, id, None)).map(|(v, _)| v)
    }

    /// A session with its last `last` activities (and every transition),
    /// and how many activities it has in all: what a page shows of a
    /// session that may have tens of thousands.
    pub(crate) fn get_recent(&self, id: &str, last: u32) -> Result<(SessionView, u64), StoreError> {
        self.tx(|tx| view_in(tx, id, Some(last)))
    }

    /// Sessions `viewer` may see (its own and everyone's: see
    /// [`super::access`]), newest first, optionally in one state.
    pub(crate) fn list(
        &self,
        state: Option<SessionState>,
        limit: u32,
        viewer: Option<&str>,
    ) -> Result<Vec<Session>, StoreError> {
        self.tx(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.sql.prepare(
                    "SELECT id FROM sessions WHERE (?1 IS NULL OR state = ?1) AND (owner IS NULL OR (owner = ?2 AND (team IS NULL OR team IS ?4))) ORDER BY created_at DESC, id LIMIT ?3",
                )?;
                // The viewer's own sessions while they are still of the
                // sessions' team (a user who moved leaves them behind).
                let team = match viewer {
                    Some(v) => super::teams::team_of_user(tx, v)?,
                    None => None,
                };
                let v = st
                    .query_map(params![state.map(|s| s.as_str()), viewer, limit, team], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                v
            };
            ids.iter().map(|id| load_session(tx, id)).collect()
        })
    }

    /// A person stops a session; its claim (if any) is void from now on.
    pub(crate) fn cancel(&self, id: &str) -> Result<Session, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let s = load_session(tx, id)?;
            cancel_in(tx, &s, now, "cancelled by a person")?;
            load_session(tx, id)
        })
    }

    /// Claims per session and activities counts (for tests and audits):
    /// `(session id, state, claims, terminal transitions)`.
    pub fn audit_counts(&self) -> Result<Vec<(String, String, u32, u32)>, StoreError> {
        self.tx(|tx| {
            let mut st = tx.sql.prepare(
                "SELECT s.id, s.state,
                    (SELECT COUNT(*) FROM claims c WHERE c.session_id = s.id),
                    (SELECT COUNT(*) FROM transitions t WHERE t.session_id = s.id AND t.to_state IN ('complete','error','cancelled'))
                 FROM sessions s ORDER BY s.created_at",
            )?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok(v)
        })
    }
}

/// Cancels session `s` inside `tx` and voids its active claim: its
/// worker's next call under the claim is refused.
pub(super) fn cancel_in(
    tx: &Tx<'_>,
    s: &Session,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let to = next(s.state, Event::Cancel)?;
    set_state(tx, s.id.as_str(), s.state, to, now, reason)?;
    tx.sql.execute(
        "UPDATE claims SET state = 'cancelled', ended_at = ?2 WHERE session_id = ?1 AND state = 'active'",
        params![s.id.as_str(), now],
    )?;
    Ok(())
}

/// Queues a checked session inside `tx` with its prepared images (a
/// launch of the Cloud Agents API queues its session together with the
/// agent's row).
pub(super) fn queue_in(
    tx: &Tx<'_>,
    new: NewSession,
    images: &[attachments::NewAttachment],
    owner: Option<&str>,
) -> Result<Session, StoreError> {
    queue_with(tx, new, images, owner, QueueExtras::default())
}

/// What a run started by the control plane's own views (runs, schedules)
/// records beyond a [`NewSession`].
#[derive(Debug, Default)]
pub(super) struct QueueExtras {
    /// The model to run instead of the agent's (a run's `config.model_id`).
    pub(super) model: Option<String>,
    /// Whom it runs as, instead of what the agent and owner say.
    pub(super) run_as: Option<String>,
    /// The schedule that started it.
    pub(super) schedule_id: Option<String>,
    /// The run's metadata (JSON object).
    pub(super) metadata: Option<serde_json::Value>,
    /// What started it, instead of the request's trigger.
    pub(super) trigger: Option<Trigger>,
    /// Tools it may use at most (in this order): the agent's tools are
    /// narrowed to these (a Cloud Agents launch: what the worker has).
    pub(super) tools_within: Option<Vec<String>>,
}

/// [`queue_in`] with what a run of the control plane's own records.
pub(super) fn queue_with(
    tx: &Tx<'_>,
    new: NewSession,
    images: &[attachments::NewAttachment],
    owner: Option<&str>,
    extras: QueueExtras,
) -> Result<Session, StoreError> {
    // A reference is resolved here, in the queue's own transaction: the
    // version copied is the one that was latest (or pinned) at this moment.
    let (mut agent, pin) = match new.agent {
        AgentRef::Inline(mut v) => {
            // Pins sent inline are the caller's word: only their ids and
            // versions count, looked up in the caller's team's registry.
            if !v.pinned_skills.is_empty() {
                let team = match owner {
                    Some(u) => super::teams::team_of_user(tx, u)?,
                    None => None,
                };
                v.pinned_skills = super::skills::repin(tx, team.as_deref(), &v.pinned_skills)?;
            }
            (v, None)
        }
        AgentRef::Latest(id) => super::agent_configs::resolve(tx, owner, &id, None)?,
        AgentRef::Pinned(AgentPin { id, version, .. }) => {
            super::agent_configs::resolve(tx, owner, &id, version)?
        }
    };
    if let Some(m) = extras.model {
        agent.model = m;
    }
    if let Some(within) = extras.tools_within {
        agent.enabled_tools = within
            .into_iter()
            .filter(|t| agent.enabled_tools.contains(t))
            .collect();
    }
    if agent.model.is_empty() {
        // An agent without a model runs on what the workers serve.
        agent.model = super::agent_configs::served_models_in(tx, owner)?
            .into_iter()
            .next()
            .map(|(m, _)| m)
            .ok_or_else(|| {
                StoreError::invalid(
                    "the agent names no model and no registered worker serves one; start a worker (`runner up`), or give the agent a model",
                )
            })?;
    }
    let trigger = extras.trigger.or(new.trigger).unwrap_or_default();
    // A person's call runs as the person, whichever agent it names (an
    // agent's key, and a schedule, say otherwise through `extras`).
    let run_as = extras.run_as.or_else(|| owner.map(|u| format!("user:{u}")));
    // The team it belongs to: its agent's, else its owner's.
    let team = match (&pin, owner) {
        (Some((agent, _)), _) => super::agent_configs::team_of_agent_in(tx, agent)?,
        (None, Some(user)) => super::teams::team_of_user(tx, user)?,
        (None, None) => None,
    };
    let metadata = extras
        .metadata
        .map(|m| serde_json::to_string(&m))
        .transpose()
        .map_err(StoreError::corrupt)?;
    let (mut source, _) = new.source.split();
    source.images = attachments::references(images);
    let id = format!("ses_{}", uuid::Uuid::new_v4().simple());
    // The target branch is fixed when the work is queued, so every view
    // of the session (and every attempt) names the same branch.
    let repo = new.repo.map(|mut r| {
        if r.branch_name.is_none() && r.auto_branch {
            r.branch_name = Some(protocol::repository::default_branch_name(
                &source.title,
                &id,
            ));
        }
        r
    });
    let body = serde_json::to_string(&Body {
        agent,
        source,
        script: new.script,
        repo,
    })
    .map_err(StoreError::corrupt)?;
    let now = now_ms();
    tx.sql.execute(
        "INSERT INTO sessions (id, workspace, agent_profile, body, state, attempt, created_at, updated_at, owner, agent_id, agent_version, trigger, run_as, team, schedule_id, run_metadata) VALUES (?1, ?2, ?3, ?4, 'queued', 1, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![id, new.workspace, new.agent_profile, body, now, owner, pin.as_ref().map(|p| &p.0), pin.as_ref().map(|p| p.1), trigger.as_str(), run_as, team, extras.schedule_id, metadata],
    )?;
    attachments::insert(tx, &id, images, now)?;
    record(tx, &id, "new", SessionState::Queued, now, "queued")?;
    webhooks::enqueue(
        tx,
        webhooks::SESSION_QUEUED,
        serde_json::json!({"session_id": id, "workspace": new.workspace, "agent_profile": new.agent_profile}),
    )?;
    load_session(tx, &id)
}

/// Records a state change: a row of `transitions`, numbered as the
/// session's next event (every transition, the first `new → queued` and
/// the claim's included, is written here).
pub(super) fn record(
    tx: &Tx<'_>,
    id: &str,
    from: &str,
    to: SessionState,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let event = super::events::next_event(tx, id)?;
    tx.sql.execute(
        "INSERT INTO transitions (session_id, from_state, to_state, at, reason, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, from, to.as_str(), now, reason, event],
    )?;
    Ok(())
}

pub(super) fn set_state(
    tx: &Tx<'_>,
    id: &str,
    from: SessionState,
    to: SessionState,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let changed = tx.sql.execute(
        "UPDATE sessions SET state = ?3, updated_at = ?4 WHERE id = ?1 AND state = ?2",
        params![id, from.as_str(), to.as_str(), now],
    )?;
    if changed != 1 {
        return Err(StoreError::conflict(
            ConflictKind::Transition,
            format!("session {id} changed state concurrently; retry"),
        ));
    }
    webhooks::enqueue(
        tx,
        webhooks::SESSION_STATE_CHANGED,
        serde_json::json!({"session_id": id, "from": from.as_str(), "to": to.as_str(), "reason": reason}),
    )?;
    if to == SessionState::Queued {
        webhooks::enqueue(
            tx,
            webhooks::SESSION_QUEUED,
            serde_json::json!({"session_id": id}),
        )?;
    }
    record(tx, id, from.as_str(), to, now, reason)?;
    super::cloud_agents::on_state_change(tx, id, to)
}

/// A session's view: its activities (the last `last` of them when
/// given), its transitions, and its number of activities.
fn view_in(tx: &Tx<'_>, id: &str, last: Option<u32>) -> Result<(SessionView, u64), StoreError> {
    let session = load_session(tx, id)?;
    let total: i64 = tx.sql.query_row(
        "SELECT COUNT(*) FROM activities WHERE session_id = ?1",
        params![id],
        |r| r.get(0),
    )?;
    let limit = last.map_or(-1, i64::from);
    let mut st = tx.sql.prepare(
        "SELECT seq, at, claim_id, body FROM (SELECT seq, at, claim_id, body FROM activities WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
    )?;
    let activities = st
        .query_map(params![id, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .map(|row| {
            let (seq, at, claim_id, body) = row?;
            let activity: Activity = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
            Ok(ActivityEntry {
                seq: seq as u64,
                at: rfc3339(at),
                claim_id: claim_id.into(),
                activity,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut st = tx.sql.prepare(
        "SELECT from_state, to_state, at, reason FROM transitions WHERE session_id = ?1 ORDER BY id",
    )?;
    let transitions = st
        .query_map(params![id], |r| {
            Ok(Transition {
                from: r.get(0)?,
                to: r.get(1)?,
                at: rfc3339(r.get(2)?),
                reason: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        SessionView {
            session,
            activities,
            transitions,
        },
        total as u64,
    ))
}

pub(super) fn load_session(tx: &Tx<'_>, id: &str) -> Result<Session, StoreError> {
    let row = tx
        .sql.query_row(
            "SELECT id, workspace, agent_profile, body, state, attempt, plan, external_url, outcome, created_at, updated_at, agent_id, trigger, run_as FROM sessions WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?, r.get::<_, u32>(5)?, r.get::<_, String>(6)?, r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?, r.get::<_, i64>(9)?, r.get::<_, i64>(10)?, r.get::<_, Option<String>>(11)?,
                    r.get::<_, String>(12)?, r.get::<_, Option<String>>(13)?,
                ))
            },
        )
        .optional()?;
    let Some((
        id,
        workspace,
        agent_profile,
        body,
        state,
        attempt,
        plan,
        external_url,
        outcome,
        created,
        updated,
        agent_id,
        trigger,
        run_as,
    )) = row
    else {
        return Err(StoreError::not_found(
            Missing::Session,
            format!("no session {id}"),
        ));
    };
    let body: Body = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
    Ok(Session {
        id: id.into(),
        workspace,
        agent_profile,
        agent: body.agent,
        agent_id,
        trigger: Trigger::parse(&trigger).unwrap_or_default(),
        run_as,
        source: body.source,
        script: body.script,
        repo: body.repo,
        state: SessionState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(format!("bad state {state}")))?,
        attempt,
        plan: serde_json::from_str(&plan).unwrap_or_default(),
        external_url,
        outcome,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

pub(super) fn validate_new(n: &NewSession) -> Result<(), StoreError> {
    check_name("workspace", &n.workspace)?;
    if let Some(t @ (Trigger::ScheduledAgent | Trigger::WebApp)) = n.trigger {
        return Err(StoreError::invalid(format!(
            "trigger {} is set by the control plane itself; give API or CLI, or leave it out",
            t.as_str()
        )));
    }
    check_name("agent_profile", &n.agent_profile)?;
    let model = match &n.agent {
        AgentRef::Inline(agent) => {
            check_agent(agent)?;
            agent.model.as_str()
        }
        AgentRef::Latest(id) | AgentRef::Pinned(AgentPin { id, .. }) => {
            if !crate::agent_configs::is_agent_id(id) {
                return Err(StoreError::invalid(format!(
                    "agent {id:?} is not an agent id (agent_ and 32 hex digits); list your agents with GET /api/v1/cloud/agents"
                )));
            }
            if matches!(
                &n.agent,
                AgentRef::Pinned(AgentPin {
                    version: Some(0),
                    ..
                })
            ) {
                return Err(StoreError::invalid("agent.version starts at 1"));
            }
            // A reference runs a configured model, never a script.
            ""
        }
    };
    check_len("source.title", &n.source.title, 1000)?;
    check_len("source.description", &n.source.description, 64 * 1024)?;
    check_len("source.prompt", &n.source.prompt, 64 * 1024)?;
    if n.source.comments.len() > 500 || n.source.comments.iter().any(|c| c.len() > 16 * 1024) {
        return Err(StoreError::invalid(
            "source.comments: at most 500 comments of 16 KiB",
        ));
    }
    if let Some(repo) = &n.repo {
        repo.validate().map_err(StoreError::invalid)?;
    }
    match (&n.script, model) {
        (Some(s), "script") if s.len() <= 200 => Ok(()),
        (Some(_), "script") => Err(StoreError::invalid("script: at most 200 steps")),
        (Some(_), _) => Err(StoreError::invalid(
            "script is only allowed when agent.model is \"script\"",
        )),
        (None, "script") => Err(StoreError::invalid(
            "agent.model \"script\" needs a script (a list of {tool, input})",
        )),
        (None, _) => Ok(()),
    }
}

/// Checks a version given whole.
fn check_agent(agent: &AgentVersion) -> Result<(), StoreError> {
    check_name("agent.name", &agent.name)?;
    check_name("agent.model", &agent.model)?;
    check_len("agent.system_prompt", &agent.system_prompt, 64 * 1024)?;
    if agent.enabled_tools.len() > 64 || agent.disallowed_tools.len() > 64 {
        return Err(StoreError::invalid(
            "agent.enabled_tools and agent.disallowed_tools: at most 64 tools each",
        ));
    }
    if agent.tool_policies.len() > 64 {
        return Err(StoreError::invalid("agent.tool_policies: at most 64 tools"));
    }
    for (tool, policy) in &agent.tool_policies {
        check_name("agent.tool_policies key", tool)?;
        if !matches!(policy.as_str(), "always_allow" | "always_ask") {
            return Err(StoreError::invalid(format!(
                "agent.tool_policies.{tool} is {policy:?}: give \"always_allow\" or \"always_ask\""
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{queue, store};
    use super::*;

    #[test]
    fn an_invalid_session_is_refused_and_not_stored() {
        let (_d, store) = store();
        let mut new = NewSession {
            workspace: " ".into(),
            agent_profile: "p".into(),
            agent: Default::default(),
            source: Default::default(),
            script: None,
            repo: None,
            trigger: None,
        };
        new.agent.inline_mut().name = "a".into();
        new.agent.inline_mut().model = "m".into();
        let e = store.queue(new).unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
        assert_eq!(store.list(None, 10, None).unwrap(), vec![]);
    }

    #[test]
    fn a_permission_policy_is_always_allow_or_always_ask() {
        let (_d, store) = store();
        let mut new = super::super::testing::new_session();
        new.agent
            .inline_mut()
            .tool_policies
            .insert("Bash".into(), "sometimes".into());
        let e = store.queue(new.clone()).unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid(m) if m.contains("agent.tool_policies.Bash") && m.contains("always_ask")),
            "{e:?}"
        );
        new.agent
            .inline_mut()
            .tool_policies
            .insert("Bash".into(), "always_ask".into());
        new.agent.inline_mut().disallowed_tools = vec!["WebFetch".into()];
        let s = store.queue(new).unwrap();
        assert_eq!(s.agent.tool_policies["Bash"], "always_ask");
        assert_eq!(s.agent.disallowed_tools, ["WebFetch"]);
    }

    #[test]
    fn a_cancelled_session_cannot_be_cancelled_again() {
        let (_d, store) = store();
        let s = queue(&store);
        assert_eq!(store.cancel(&s.id).unwrap().state, SessionState::Cancelled);
        let e = store.cancel(&s.id).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    kind: ConflictKind::Transition,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
