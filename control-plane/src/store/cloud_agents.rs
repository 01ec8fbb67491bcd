//! The Cloud Agents API's agents: a `cloud_agents` row beside each
//! launched session (owner, name, the launch's source and target), its
//! optional webhook as a subscription of its own, and the reads and
//! changes of `/v0` — each scoped to the caller's user, so another user's
//! agent is "not found", exactly like one that does not exist.

use super::rate_limit::Limit;
use super::sessions::{cancel_in, load_session, queue_with, validate_new, QueueExtras};
use super::{now_ms, rfc3339, ConflictKind, Missing, Store, StoreError, Tx};
use crate::cloud_agents::{self, AgentRecord, ConversationMessage, LaunchFlags, PageCursor};
use protocol::conversation::{HumanInput, Message};
use protocol::image::ImageInput;
use protocol::platform::RegisterWorker;
use protocol::session::{AgentPin, AgentPinKind, AgentRef, NewSession, Session, SessionState};
use rusqlite::{params, OptionalExtension};

/// The webhook format of an agent's own subscription.
pub(crate) const CURSOR_FORMAT: &str = "cursor_v0";

/// Launches and follow-ups one user may make by default: 30 a minute,
/// 600 an hour (each may carry 20 MiB of images, and starts a run).
pub(crate) const PROMPT_LIMITS: [usize; 2] = [30, 600];

/// Admits one more launch or follow-up of `user` (counted), and `adding`
/// more bytes of images on top of what the user's sessions keep (at most
/// `quota`).
fn admit_prompt(
    tx: &Tx<'_>,
    user: &str,
    adding: i64,
    (quota, [per_minute, per_hour]): (i64, [usize; 2]),
    now: i64,
) -> Result<(), StoreError> {
    let kept: i64 = tx.sql.query_row(
        "SELECT COALESCE(SUM(length(a.data)), 0) FROM attachments a JOIN sessions s ON s.id = a.session_id WHERE s.owner = ?1",
        params![user],
        |r| r.get(0),
    )?;
    if kept + adding > quota {
        return Err(StoreError::Forbidden {
            kind: "quota_exceeded",
            message: format!(
                "your agents keep {} MiB of images and these add {} MiB, over the {} MiB a user may keep; delete agents you no longer need (DELETE /v0/agents/{{id}}) or send smaller images",
                kept >> 20,
                adding.max(1 << 20) >> 20,
                quota >> 20
            ),
        });
    }
    let limits = [
        Limit {
            window_ms: 60_000,
            max: per_minute,
        },
        Limit {
            window_ms: 3_600_000,
            max: per_hour,
        },
    ];
    if let Some(seconds) = super::rate_limit::admit(tx, user, "v0.prompt", &limits, now)? {
        return Err(StoreError::RateLimited {
            message: format!("you launch and follow up agents at most {per_minute} times a minute and {per_hour} times an hour; try again in {seconds} seconds (Retry-After)"),
            retry_after_seconds: seconds,
        });
    }
    Ok(())
}

/// A launch, checked and mapped by the API layer.
#[derive(Debug, Clone)]
pub(crate) struct NewAgent {
    /// The caller's user (the owner).
    pub(crate) user: String,
    /// The key it was launched with.
    pub(crate) api_key_id: String,
    /// See [`cloud_agents::agent_name`].
    pub(crate) name: String,
    /// The source as the views show it.
    pub(crate) repository: String,
    /// The ref as launched.
    pub(crate) git_ref: Option<String>,
    /// The pull request launched on.
    pub(crate) pr_url: Option<String>,
    /// The target flags as launched.
    pub(crate) flags: LaunchFlags,
    /// The session that does the work.
    pub(crate) session: NewSession,
    /// Where `statusChange` goes, if anywhere.
    pub(crate) webhook: Option<AgentWebhook>,
}

/// An agent's webhook (the URL is checked by the caller).
#[derive(Debug, Clone)]
pub(crate) struct AgentWebhook {
    /// Where to POST.
    pub(crate) url: String,
    /// The HMAC key of `X-Webhook-Signature`, if any.
    pub(crate) secret: Option<String>,
}

/// A worker that can run a launch, and the model it will use.
#[derive(Debug, Clone)]
pub(crate) struct ServingWorker {
    /// Its registration (workspace, profile, tools).
    pub(crate) registration: RegisterWorker,
    /// The model chosen.
    pub(crate) model: String,
}

/// One page of a user's agents.
pub(crate) struct AgentPage {
    /// Newest first.
    pub(crate) agents: Vec<(AgentRecord, Session)>,
    /// Where the next page starts; `None` on the last page.
    pub(crate) next: Option<PageCursor>,
}

impl Store {
    /// Every model id the registered workers that may run `user`'s
    /// sessions serve, from the worker that reported most recently, each
    /// once.
    pub(crate) fn served_models(&self, user: &str) -> Result<Vec<String>, StoreError> {
        self.tx(|tx| {
            Ok(super::agent_configs::served_models_in(tx, Some(user))?
                .into_iter()
                .map(|(m, _)| m)
                .collect())
        })
    }

    /// The most recently reporting worker that serves `model` (any model,
    /// its first, when `None`) and may run `user`'s sessions (see
    /// [`super::access`]); `None` when no worker does.
    pub(crate) fn worker_serving(
        &self,
        model: Option<&str>,
        user: &str,
    ) -> Result<Option<ServingWorker>, StoreError> {
        self.tx(|tx| {
            Ok(workers_by_recency(tx)?.into_iter().find_map(|(w, owner)| {
                if !self.may_serve(owner.as_deref(), Some(user)) {
                    return None;
                }
                let m = match model {
                    Some(m) => w.models.iter().find(|x| *x == m)?.clone(),
                    None => w.models.first()?.clone(),
                };
                Some(ServingWorker {
                    registration: w,
                    model: m,
                })
            }))
        })
    }

    /// Queues an agent's session and records the agent (and its webhook)
    /// in the same transaction.
    pub(crate) fn launch_agent(&self, a: NewAgent) -> Result<(AgentRecord, Session), StoreError> {
        validate_new(&a.session)?;
        let images = super::attachments::prepare("prompt.images", &a.session.source.images)?;
        let now = now_ms();
        let flags = serde_json::to_string(&a.flags).map_err(StoreError::corrupt)?;
        let adding = super::attachments::total_bytes(&images);
        self.tx(|tx| {
            admit_prompt(tx, &a.user, adding, (self.image_quota, self.prompt_limits), now)?;
            // The team's default agent does the work: its prompt and
            // tools (narrowed to what the chosen worker has), on the
            // launch's model.
            let mut new = a.session;
            let mut extras = QueueExtras::default();
            if let (Some(team), Some(inline)) = (
                super::teams::team_of_user(tx, &a.user)?,
                new.agent.inline().cloned(),
            ) {
                let id = super::agent_configs::default_agent(tx, &team)?;
                let r = super::agent_configs::runnable(tx, &team, &id, None)?;
                new.agent = AgentRef::Pinned(AgentPin {
                    kind: AgentPinKind::Agent,
                    id,
                    version: Some(r.version),
                });
                extras.model = Some(inline.model);
                extras.tools_within = Some(inline.enabled_tools);
            }
            let session = queue_with(tx, new, &images, Some(&a.user), extras)?;
            // `ses_X` does the work of `bc_X`.
            let id = format!("bc_{}", session.id.as_str().trim_start_matches("ses_"));
            tx.sql.execute(
                "INSERT INTO cloud_agents (id, session_id, user_name, api_key_id, name, repository, git_ref, pr_url, flags, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![id, session.id.as_str(), a.user, a.api_key_id, a.name, a.repository, a.git_ref, a.pr_url, flags, now],
            )?;
            if let Some(w) = a.webhook {
                tx.sql.execute(
                    "INSERT INTO subscriptions (id, url, key, signing_secret, event_types, created_at, format, session_id) VALUES (?1, ?2, '', ?3, '[\"statusChange\"]', ?4, ?5, ?6)",
                    params![format!("sub_{}", uuid::Uuid::new_v4().simple()), w.url, w.secret, now, CURSOR_FORMAT, session.id.as_str()],
                )?;
            }
            let rec = load_record(tx, &a.user, &id)?;
            Ok((rec, session))
        })
    }

    /// One of `user`'s agents with its session.
    pub(crate) fn agent(&self, user: &str, id: &str) -> Result<(AgentRecord, Session), StoreError> {
        self.tx(|tx| {
            let rec = load_record(tx, user, id)?;
            let s = load_session(tx, &rec.session_id)?;
            Ok((rec, s))
        })
    }

    /// A page of `user`'s agents, newest first, strictly after `after`;
    /// only those launched on, or delivered as, `pr_url` when given.
    pub(crate) fn agents(
        &self,
        user: &str,
        limit: u32,
        after: Option<&PageCursor>,
        pr_url: Option<&str>,
    ) -> Result<AgentPage, StoreError> {
        let (after_ms, after_id) = match after {
            Some(c) => (c.created_ms, c.id.clone()),
            None => (i64::MAX, String::new()),
        };
        self.tx(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.sql.prepare(
                    "SELECT a.id FROM cloud_agents a JOIN sessions s ON s.id = a.session_id
                     WHERE a.user_name = ?1
                       AND (a.created_at < ?2 OR (a.created_at = ?2 AND (?3 = '' OR a.id < ?3)))
                       AND (?4 IS NULL OR a.pr_url = ?4 OR s.external_url = ?4)
                     ORDER BY a.created_at DESC, a.id DESC LIMIT ?5",
                )?;
                let v = st
                    .query_map(
                        params![user, after_ms, after_id, pr_url, limit as i64 + 1],
                        |r| r.get(0),
                    )?
                    .collect::<Result<_, _>>()?;
                v
            };
            let mut agents = Vec::with_capacity(ids.len());
            for id in ids.iter().take(limit as usize) {
                let rec = load_record(tx, user, id)?;
                let s = load_session(tx, &rec.session_id)?;
                agents.push((rec, s));
            }
            let next = (ids.len() > limit as usize)
                .then(|| agents.last())
                .flatten()
                .map(|(rec, _): &(AgentRecord, Session)| PageCursor {
                    created_ms: created_ms(&rec.created_at),
                    id: rec.id.clone(),
                });
            Ok(AgentPage { agents, next })
        })
    }

    /// What the person asked and the model answered, oldest first: the
    /// launch prompt and each follow-up as written (not as the model was
    /// shown them, delimited), and each assistant message with text.
    pub(crate) fn agent_conversation(
        &self,
        user: &str,
        id: &str,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        self.tx(|tx| {
            let rec = load_record(tx, user, id)?;
            let s = load_session(tx, &rec.session_id)?;
            // (time, order within a millisecond, message)
            let mut all: Vec<(i64, i64, ConversationMessage)> = vec![(
                created_ms(&rec.created_at),
                0,
                ConversationMessage {
                    id: "msg_u0".into(),
                    kind: "user_message",
                    text: s.source.prompt.clone(),
                },
            )];
            let mut st = tx
                .sql
                .prepare("SELECT id, at, body FROM inputs WHERE session_id = ?1 ORDER BY id")?;
            let inputs: Vec<(i64, i64, String)> = st
                .query_map(params![rec.session_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            for (n, at, body) in inputs {
                if let Ok(HumanInput::FollowUp(f)) = serde_json::from_str(&body) {
                    all.push((
                        at,
                        1,
                        ConversationMessage {
                            id: format!("msg_i{n}"),
                            kind: "user_message",
                            text: f.message,
                        },
                    ));
                }
            }
            let mut st = tx
                .sql
                .prepare("SELECT seq, at, body FROM messages WHERE session_id = ?1 ORDER BY seq")?;
            let messages: Vec<(i64, i64, String)> = st
                .query_map(params![rec.session_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            for (seq, at, body) in messages {
                if let Ok(Message::Assistant { content, .. }) = serde_json::from_str(&body) {
                    if !content.trim().is_empty() {
                        all.push((
                            at,
                            2,
                            ConversationMessage {
                                id: format!("msg_a{seq}"),
                                kind: "assistant_message",
                                text: content,
                            },
                        ));
                    }
                }
            }
            all.sort_by_key(|(at, order, _)| (*at, *order));
            Ok(all.into_iter().map(|(_, _, m)| m).collect())
        })
    }

    /// Runs a finished or stopped agent again, on the same branch, with
    /// `text` as the next instruction.
    pub(crate) fn agent_follow_up(
        &self,
        user: &str,
        id: &str,
        text: &str,
        images: &[ImageInput],
    ) -> Result<(), StoreError> {
        let images = super::attachments::prepare("prompt.images", images)?;
        let now = now_ms();
        self.tx(|tx| {
            let rec = load_record(tx, user, id)?;
            let s = load_session(tx, &rec.session_id)?;
            let status = cloud_agents::status(s.state);
            if !status.is_terminal() {
                return Err(StoreError::conflict(
                    ConflictKind::Transition,
                    format!("agent {id} is {}; wait for it to finish, or stop it, then send the follow-up", status.as_str()),
                ));
            }
            admit_prompt(
                tx,
                user,
                super::attachments::total_bytes(&images),
                (self.image_quota, self.prompt_limits),
                now,
            )?;
            super::inputs::follow_up_in(tx, &s, user, text.to_string(), &images, now)?;
            Ok(())
        })
    }

    /// Stops a running (or not yet started) agent: its session is
    /// cancelled and its claim void, so its worker stops it. The branch,
    /// and everything pushed, stays.
    pub(crate) fn stop_agent(&self, user: &str, id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let rec = load_record(tx, user, id)?;
            let s = load_session(tx, &rec.session_id)?;
            let status = cloud_agents::status(s.state);
            if status.is_terminal() {
                return Err(StoreError::conflict(
                    ConflictKind::Transition,
                    format!("agent {id} is {}: only a running agent can be stopped (a follow-up runs it again)", status.as_str()),
                ));
            }
            cancel_in(tx, &s, now, "stopped by its owner")
        })
    }

    /// Deletes an agent for good: it is stopped first if it runs (its
    /// worker's claim is void), then its session, history, conversation,
    /// webhook and pending deliveries are removed.
    pub(crate) fn delete_agent(&self, user: &str, id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            let rec = load_record(tx, user, id)?;
            let s = load_session(tx, &rec.session_id)?;
            // Removed right after: no webhook for this stop.
            tx.sql.execute(
                "DELETE FROM deliveries WHERE subscription_id IN (SELECT id FROM subscriptions WHERE session_id = ?1)",
                params![rec.session_id],
            )?;
            tx.sql.execute("DELETE FROM subscriptions WHERE session_id = ?1", params![rec.session_id])?;
            if !s.state.is_terminal() {
                cancel_in(tx, &s, now, "deleted by its owner")?;
            }
            purge_session(tx, &rec.session_id)?;
            tx.sql.execute("DELETE FROM cloud_agents WHERE id = ?1", params![rec.id])?;
            Ok(())
        })
    }
}

/// Removes every row of a session (a deleted agent's). Its event streams
/// are woken, find it gone, and end.
fn purge_session(tx: &Tx<'_>, id: &str) -> Result<(), StoreError> {
    super::attachments::delete_attachments(tx, id)?;
    super::artifacts::delete_artifacts(tx, id)?;
    for table in ["activities", "transitions", "messages", "inputs", "claims"] {
        tx.sql.execute(
            &format!("DELETE FROM {table} WHERE session_id = ?1"),
            params![id],
        )?;
    }
    tx.sql
        .execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
    tx.session_changed(id);
    Ok(())
}

/// Writes the `statusChange` delivery of an agent whose session just
/// reached `to`, when `to` is a terminal status and the agent has a
/// webhook (called by every state change, inside its transaction, after
/// the session row was updated).
pub(super) fn on_state_change(
    tx: &Tx<'_>,
    session: &str,
    to: SessionState,
) -> Result<(), StoreError> {
    if !cloud_agents::status(to).is_terminal() {
        return Ok(());
    }
    let sub: Option<String> = tx
        .sql
        .query_row(
            "SELECT id FROM subscriptions WHERE session_id = ?1 AND format = ?2",
            params![session, CURSOR_FORMAT],
            |r| r.get(0),
        )
        .optional()?;
    let Some(sub) = sub else { return Ok(()) };
    let (id, user): (String, String) = tx.sql.query_row(
        "SELECT id, user_name FROM cloud_agents WHERE session_id = ?1",
        params![session],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let rec = load_record(tx, &user, &id)?;
    let s = load_session(tx, session)?;
    let view = cloud_agents::agent_view(&rec, &s, tx.public_url);
    let now = now_ms();
    let body = cloud_agents::status_change_body(&view, &rfc3339(now)).to_string();
    let event_id = format!("whd_{}", uuid::Uuid::new_v4().simple());
    tx.sql.execute(
        "INSERT INTO deliveries (subscription_id, event_id, event_type, body, next_at, state, created_at, updated_at) VALUES (?1, ?2, 'statusChange', ?3, ?4, 'pending', ?4, ?4)",
        params![sub, event_id, body, now],
    )?;
    tx.outbox_written();
    Ok(())
}

/// Registered workers with their owners, the most recently reporting
/// first.
pub(super) fn workers_by_recency(
    tx: &Tx<'_>,
) -> Result<Vec<(RegisterWorker, Option<String>)>, StoreError> {
    let mut st = tx.sql.prepare(
        "SELECT registration, user_name FROM workers ORDER BY COALESCE(last_heartbeat_at, created_at) DESC, created_at DESC",
    )?;
    let rows: Vec<(String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(r, owner)| {
            Ok((
                serde_json::from_str(&r).map_err(StoreError::corrupt)?,
                owner,
            ))
        })
        .collect()
}

fn load_record(tx: &Tx<'_>, user: &str, id: &str) -> Result<AgentRecord, StoreError> {
    let row = tx
        .sql
        .query_row(
            "SELECT id, session_id, user_name, name, repository, git_ref, pr_url, flags, created_at FROM cloud_agents WHERE id = ?1 AND user_name = ?2",
            params![id, user],
            |r| {
                Ok((
                    r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?, r.get::<_, Option<String>>(5)?, r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(7)?, r.get::<_, i64>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((id, session_id, user, name, repository, git_ref, pr_url, flags, created)) = row
    else {
        return Err(StoreError::not_found(
            Missing::Agent,
            format!("no agent {id}: it does not exist, was deleted, or belongs to another user; GET /v0/agents lists yours"),
        ));
    };
    Ok(AgentRecord {
        id,
        session_id,
        user,
        name,
        repository,
        git_ref,
        pr_url,
        flags: serde_json::from_str(&flags).map_err(StoreError::corrupt)?,
        created_at: rfc3339(created),
    })
}

/// The milliseconds of a stored time shown as RFC 3339 (exact: shown with
/// milliseconds).
fn created_ms(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}
