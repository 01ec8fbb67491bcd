//! The control-plane API: worker registration, claims and leases,
//! heartbeats, activities, metadata, terminal outcomes, and the error body.
//! Every route is under [`API_PREFIX`]; see `control-plane` for the server
//! and `GET /openapi.json` for the generated description.

use crate::activity::Activity;
use crate::ids::{ClaimId, SessionId, WorkerId};
use crate::session::Session;
use serde::{Deserialize, Serialize};

/// The version prefix of every route.
pub const API_PREFIX: &str = "/v1";

/// Default lease when a claim does not ask for one.
pub const DEFAULT_LEASE_SECONDS: u32 = 900;
/// Longest lease a claim may ask for.
pub const MAX_LEASE_SECONDS: u32 = 3600;
/// Shortest lease a claim may ask for.
pub const MIN_LEASE_SECONDS: u32 = 1;

/// `POST /v1/workers`: find or create the worker for a workspace, agent
/// profile and runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterWorker {
    /// Workspace.
    pub workspace: String,
    /// Agent profile it runs sessions for.
    pub agent_profile: String,
    /// Runtime (e.g. `runner/0.1 linux-x86_64`).
    pub runtime: String,
    /// Always `cloud` for this runner.
    #[serde(default = "cloud")]
    pub execution_mode: String,
    /// Label people see.
    pub display_name: String,
    /// Tools it can run.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Sessions it runs at once.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Policy entries it enforces (names of its policy files).
    #[serde(default)]
    pub policy_entries: Vec<String>,
    /// Worker-level custom instructions (trusted).
    #[serde(default)]
    pub custom_instructions: Option<String>,
    /// Model ids its providers serve: what the Cloud Agents API's
    /// `GET /v0/models` lists and a launch's `model` is matched against.
    /// Sent at every start, so the list follows the worker's config.
    #[serde(default)]
    pub models: Vec<String>,
}

fn cloud() -> String {
    "cloud".into()
}
fn one() -> u32 {
    1
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Worker {
    /// Worker id, saved by the worker and reused.
    pub worker_id: WorkerId,
    /// What it registered with.
    #[serde(flatten)]
    pub registration: RegisterWorker,
    /// RFC 3339 of the last heartbeat, if any.
    #[serde(default)]
    pub last_heartbeat_at: Option<String>,
}

/// `POST /v1/workers/{worker}/sessions/{session}/claim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Lease length (default 900, at most 3600).
    #[serde(default, rename = "leaseSeconds", alias = "lease_seconds")]
    pub lease_seconds: Option<u32>,
}

/// A granted claim: the lock on a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claim {
    /// Carried by every later call about the session.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// The worker holding it.
    pub worker_id: WorkerId,
    /// RFC 3339; past it, the claim is void.
    pub lease_expires_at: String,
    /// The session, as claimed.
    pub session: Session,
}

/// `POST /v1/sessions/{session}/extend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// New lease from now.
    #[serde(default, rename = "leaseSeconds", alias = "lease_seconds")]
    pub lease_seconds: Option<u32>,
}

/// The lease after an extend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// RFC 3339.
    pub lease_expires_at: String,
}

/// `POST /v1/workers/{worker}/heartbeat`: health only; creates no work and
/// extends no claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// `ok`, `draining` or `degraded`.
    pub status: String,
    /// Sessions running now.
    pub active_sessions: u32,
}

/// `POST /v1/sessions/{session}/activities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostActivity {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// The activity.
    pub activity: Activity,
}

/// `POST /v1/sessions/{session}/metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MetadataUpdate {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// New plan steps.
    #[serde(default)]
    pub plan: Option<Vec<String>>,
    /// New external URL.
    #[serde(default)]
    pub external_url: Option<String>,
}

/// How a claimed session ends: the last segment of its finishing route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `complete`: the work is done; the message is its summary.
    Complete,
    /// `fail`: the work cannot be done; the message says why.
    Fail,
    /// `release`: this worker gives the session back, unfinished, for
    /// another worker to claim.
    Release,
}

impl Outcome {
    /// The route segment (`complete`, `fail`, `release`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Fail => "fail",
            Outcome::Release => "release",
        }
    }
}

/// `POST /v1/sessions/{session}/complete` | `fail` | `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// Summary (complete), error (fail) or reason (release).
    #[serde(default)]
    pub message: String,
}

/// A claimable session as the list shows it: enough to pick one; the claim
/// returns the whole session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimableSession {
    /// Session id.
    pub id: SessionId,
    /// 1 for a first run; more after expired leases.
    pub attempt: u32,
    /// RFC 3339.
    pub created_at: String,
}

/// A claim a worker still holds (`GET /v1/workers/{worker}/claims`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldClaim {
    /// The claim.
    #[serde(rename = "claimId")]
    pub claim_id: ClaimId,
    /// Its session.
    pub session_id: SessionId,
    /// RFC 3339.
    pub lease_expires_at: String,
}

/// Every 4xx/5xx body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Machine-readable type: `invalid_request`, `not_found`,
    /// `unknown_worker`, `claim_conflict`, `claim_invalid`,
    /// `invalid_transition`, `payload_too_large`, `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For a person, saying what to do.
    pub message: String,
}
