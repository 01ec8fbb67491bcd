//! Activities: the one way anything is reported to a session.
//!
//! Step 1 needs only `policy_decision`; the session loop (step 4) adds the
//! other six types of the contract (`progress`, `plan_updated`,
//! `external_url_updated`, `awaiting_input`, `completed`, `failed`).

use crate::policy::DecisionRecord;
use serde::{Deserialize, Serialize};

/// A user-visible activity on a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activity {
    /// One policy decision (allow, deny or ask) with its full record.
    PolicyDecision {
        /// The decision record.
        record: Box<DecisionRecord>,
    },
}
