//! Activities: the one way anything user-visible is reported to a session.
//! Not one per heartbeat.

use crate::ids::ClaimId;
use crate::policy::DecisionRecord;
use serde::{Deserialize, Serialize};

/// A user-visible activity on a session (the seven types of the contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Activity {
    /// A step's progress.
    Progress {
        /// What happened, for a person.
        message: String,
        /// Step number from 1, when the work has steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<u32>,
    },
    /// The plan (its steps) changed.
    PlanUpdated {
        /// The steps.
        steps: Vec<String>,
    },
    /// A URL outside the platform now tracks the work (a pull request).
    ExternalUrlUpdated {
        /// The URL.
        url: String,
    },
    /// The agent waits for a person.
    AwaitingInput {
        /// The question.
        question: String,
        /// Identifies this question; an answer must name it, so an answer
        /// meant for an earlier question is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        question_id: Option<String>,
    },
    /// The session completed.
    Completed {
        /// What was done.
        summary: String,
    },
    /// The session failed.
    Failed {
        /// Why.
        error: String,
    },
    /// One policy decision (allow, deny or ask) with its full record.
    PolicyDecision {
        /// The decision record.
        record: Box<DecisionRecord>,
    },
}

impl Activity {
    /// The wire name of the type.
    pub fn kind(&self) -> &'static str {
        match self {
            Activity::Progress { .. } => "progress",
            Activity::PlanUpdated { .. } => "plan_updated",
            Activity::ExternalUrlUpdated { .. } => "external_url_updated",
            Activity::AwaitingInput { .. } => "awaiting_input",
            Activity::Completed { .. } => "completed",
            Activity::Failed { .. } => "failed",
            Activity::PolicyDecision { .. } => "policy_decision",
        }
    }
}

/// An activity as stored on the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityEntry {
    /// Order on the session, from 1.
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    /// The claim it was sent under.
    pub claim_id: ClaimId,
    /// The activity.
    pub activity: Activity,
}
