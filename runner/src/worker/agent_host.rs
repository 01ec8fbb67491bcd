//! The agent loop's [`Host`] over a claimed session: the conversation,
//! plan, external URL and questions go to the control plane under the
//! claim; a refusal loses the claim (and cancels the work) like any other.

use super::session::ClaimSink;
use super::WorkerShared;
use crate::activity::ActivitySink;
use crate::agent::{prompt, Host, Reply};
use crate::platform::{Platform, PlatformError};
use crate::tools::Cancel;
use protocol::activity::Activity;
use protocol::conversation::{HumanInput, Message};
use protocol::platform::Claim;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A claimed session as the agent loop sees it.
pub(super) struct ClaimHost {
    platform: Platform,
    session: protocol::session::Session,
    claim: String,
    sink: Arc<ClaimSink>,
    cancel: Cancel,
    await_for: Duration,
    poll: Duration,
}

impl ClaimHost {
    pub(super) fn new(
        shared: &WorkerShared,
        claim: &Claim,
        sink: Arc<ClaimSink>,
        cancel: &Cancel,
    ) -> ClaimHost {
        ClaimHost {
            platform: shared.platform.clone(),
            session: claim.session.clone(),
            claim: claim.claim_id.clone(),
            sink,
            cancel: cancel.clone(),
            await_for: Duration::from_secs(shared.config.agent.await_input_seconds),
            poll: Duration::from_millis(shared.config.agent.await_poll_ms.max(10)),
        }
    }

    /// The stored conversation and the user turns to add: the work for a
    /// new session, each follow-up a person sent for a finished one.
    pub(super) fn resume(&self) -> Result<(Vec<Message>, Vec<Message>), String> {
        let id = &self.session.id;
        let history: Vec<Message> = self
            .retry(|p| p.conversation(id))
            .map_err(|e| format!("cannot read the stored conversation: {e}"))?
            .into_iter()
            .map(|e| e.message)
            .collect();
        let mut turns = Vec::new();
        if history.is_empty() {
            turns.push(Message::User {
                content: prompt::work_turn(&self.session.source),
            });
        }
        loop {
            match self.retry(|p| p.take_input(id, &self.claim)) {
                Ok(Some(HumanInput::FollowUp(f))) => turns.push(Message::User {
                    content: prompt::follow_up_turn(&f.by, &f.message),
                }),
                Ok(Some(HumanInput::Answer(a))) => tracing::warn!(
                    "session {id}: an answer from {} arrived after its question's worker stopped; it is dropped",
                    a.by
                ),
                Ok(None) => break,
                Err(e) => return Err(format!("cannot read the session's follow-ups: {e}")),
            }
        }
        Ok((history, turns))
    }

    /// A call with a few retries on transport errors; a refused claim is
    /// lost at once.
    fn retry<T>(
        &self,
        f: impl Fn(&Platform) -> Result<T, PlatformError>,
    ) -> Result<T, PlatformError> {
        let mut attempt = 0;
        loop {
            match f(&self.platform) {
                Err(PlatformError::ClaimLost(m)) => {
                    self.sink.lose(&m);
                    return Err(PlatformError::ClaimLost(m));
                }
                Err(PlatformError::Transport(e)) if attempt < 3 => {
                    tracing::warn!(
                        "control plane call for {} failed: {e}; retrying",
                        self.session.id
                    );
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl ActivitySink for ClaimHost {
    fn emit(&self, activity: &Activity) {
        self.sink.send(activity);
    }
}

impl Host for ClaimHost {
    fn save(&self, messages: &[Message]) {
        if let Err(e) =
            self.retry(|p| p.append_conversation(&self.session.id, &self.claim, messages))
        {
            tracing::warn!(
                "storing the conversation of {} failed: {e}",
                self.session.id
            );
        }
    }

    fn plan(&self, steps: &[String]) {
        if self
            .retry(|p| p.plan(&self.session.id, &self.claim, steps.to_vec()))
            .is_ok()
        {
            self.sink.send(&Activity::PlanUpdated {
                steps: steps.to_vec(),
            });
        }
    }

    fn external_url(&self, url: &str) {
        match self.retry(|p| p.external_url(&self.session.id, &self.claim, url)) {
            Ok(()) => self
                .sink
                .send(&Activity::ExternalUrlUpdated { url: url.into() }),
            Err(e) => tracing::warn!("the external URL of {} was refused: {e}", self.session.id),
        }
    }

    fn ask(&self, question: &str, cancel: &Cancel) -> Reply {
        self.sink.send(&Activity::AwaitingInput {
            question: question.to_string(),
        });
        let deadline = Instant::now() + self.await_for;
        loop {
            if cancel.is_cancelled() || self.cancel.is_cancelled() {
                return Reply::Cancelled;
            }
            match self.retry(|p| p.take_input(&self.session.id, &self.claim)) {
                Ok(Some(HumanInput::Answer(a))) => return Reply::Answered(a),
                Ok(Some(HumanInput::FollowUp(_))) | Ok(None) => {}
                Err(PlatformError::ClaimLost(_)) => return Reply::Cancelled,
                Err(e) => {
                    tracing::warn!("looking for an answer on {} failed: {e}", self.session.id)
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Reply::TimedOut;
            }
            std::thread::sleep(self.poll.min(deadline - now));
        }
    }
}
