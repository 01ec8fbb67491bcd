//! The agent loop's [`Host`] over a claimed session: the conversation,
//! plan, external URL and questions go to the control plane under the
//! claim; a refusal loses the claim (and cancels the work) like any other.
//! The images people attached are fetched under the claim too, once per
//! run, when a model that takes images needs them.

use super::session::ClaimSink;
use super::WorkerShared;
use crate::activity::ActivitySink;
use crate::agent::{prompt, Host, Reply};
use crate::cancel::Cancel;
use crate::platform::{Platform, PlatformError};
use protocol::activity::Activity;
use protocol::conversation::{HumanInput, Message};
use protocol::image::{sniff_media_type, ImageRef, MAX_IMAGE_BYTES};
use protocol::platform::Claim;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A claimed session as the agent loop sees it.
pub(super) struct ClaimHost {
    platform: Platform,
    session: protocol::session::Session,
    claim: protocol::ids::ClaimId,
    sink: Arc<ClaimSink>,
    cancel: Cancel,
    await_for: Duration,
    poll: Duration,
    /// Messages stored so far.
    stored: std::sync::Mutex<u64>,
    /// Follow-ups to acknowledge once their turns are stored.
    acks: std::sync::Mutex<Vec<u64>>,
    /// Images fetched so far (base64), by id: every model call names them
    /// all again.
    images: std::sync::Mutex<HashMap<String, Arc<str>>>,
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
            stored: std::sync::Mutex::new(0),
            acks: std::sync::Mutex::new(Vec::new()),
            images: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The stored conversation and the user turns to add: the work for a
    /// new session, each follow-up a person sent for a finished one.
    pub(super) fn resume(&self) -> Result<(Vec<Message>, Vec<Message>), String> {
        let id = &self.session.id;
        let history: Vec<Message> = self
            .retry(|p| p.conversation(id, &self.claim))
            .map_err(|e| format!("cannot read the stored conversation: {e}"))?
            .into_iter()
            .map(|e| e.message)
            .collect();
        *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = history.len() as u64;
        let mut turns = Vec::new();
        if history.is_empty() {
            turns.push(Message::User {
                content: prompt::work_turn(&self.session.source),
                images: self.session.source.images.clone(),
            });
        }
        // Each follow-up is acknowledged only once its turn is stored (the
        // first save of the run): a worker that dies in between leaves it
        // to the next one.
        let mut after = None;
        loop {
            match self.retry(|p| p.next_input(id, &self.claim, after)) {
                Ok(Some(p)) => {
                    after = Some(p.id);
                    match &p.input {
                        HumanInput::FollowUp(f) => {
                            turns.push(Message::User {
                                content: prompt::follow_up_turn(&f.by, &f.message),
                                images: f.images.clone(),
                            });
                            self.acks
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(p.id);
                        }
                        HumanInput::Answer(a) => {
                            tracing::warn!(
                                "session {id}: an answer from {} arrived after its question's worker stopped; it is dropped",
                                a.by
                            );
                            let _ = self.retry(|pl| pl.ack_input(id, &self.claim, p.id));
                        }
                    }
                }
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
    fn save(&self, messages: &[Message]) -> Result<(), String> {
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        // The expected count makes a retried append idempotent: if the
        // first attempt landed but its answer was lost, the store sees the
        // count already advanced by exactly these messages and says so.
        let expect = *stored;
        self.retry(|p| p.append_conversation(&self.session.id, &self.claim, expect, messages))
            .map_err(|e| format!("the conversation could not be stored ({e}); the session stops so that a follow-up can resume it"))?;
        *stored = expect + messages.len() as u64;
        for input in std::mem::take(&mut *self.acks.lock().unwrap_or_else(|e| e.into_inner())) {
            let _ = self.retry(|p| p.ack_input(&self.session.id, &self.claim, input));
        }
        Ok(())
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
        self.sink.external_url(url);
    }

    fn image(&self, image: &ImageRef) -> Result<Arc<str>, String> {
        use base64::Engine;
        let cached = self.images.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = cached.get(&image.id) {
            return Ok(d.clone());
        }
        drop(cached);
        let bytes = self
            .retry(|p| p.attachment(&self.session.id, &self.claim, &image.id))
            .map_err(|e| e.to_string())?;
        // What is sent to the model is what the reference says it is.
        if bytes.len() > MAX_IMAGE_BYTES || sniff_media_type(&bytes) != Some(&image.media_type) {
            return Err(format!(
                "the control plane served {} bytes that are not the {} the reference names",
                bytes.len(),
                image.media_type
            ));
        }
        let data: Arc<str> = base64::engine::general_purpose::STANDARD
            .encode(&bytes)
            .into();
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(image.id.clone(), data.clone());
        Ok(data)
    }

    fn ask(&self, question: &str, cancel: &Cancel) -> Reply {
        // A fresh id per question: only an answer naming it counts, so an
        // answer meant for an earlier question (another worker's, before a
        // lease expired) never approves this one.
        let qid = format!("q_{}", uuid::Uuid::new_v4().simple());
        self.sink.send(&Activity::AwaitingInput {
            question: question.to_string(),
            question_id: Some(qid.clone()),
        });
        let deadline = Instant::now() + self.await_for;
        let id = &self.session.id;
        loop {
            if cancel.is_cancelled() || self.cancel.is_cancelled() {
                return Reply::Cancelled;
            }
            match self.retry(|p| p.next_input(id, &self.claim, None)) {
                Ok(Some(p)) => {
                    let _ = self.retry(|pl| pl.ack_input(id, &self.claim, p.id));
                    match p.input {
                        HumanInput::Answer(a) if a.question_id.as_deref() == Some(qid.as_str()) => {
                            return Reply::Answered(a)
                        }
                        other => tracing::warn!(
                            "session {id}: an input for another question was dropped: {other:?}"
                        ),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(PlatformError::ClaimLost(_)) => return Reply::Cancelled,
                Err(e) => tracing::warn!("looking for an answer on {id} failed: {e}"),
            }
            let now = Instant::now();
            if now >= deadline {
                return Reply::TimedOut;
            }
            std::thread::sleep(self.poll.min(deadline - now));
        }
    }
}
