//! DeliverArtifacts: files the agent leaves under the session's artifacts
//! root (`/data` in the sandbox) are collected at the end of the session,
//! within the worker's limits, each decided as a `workspace.write` of
//! operation `artifact.deliver`, and handed to the worker to upload.

use serde::Deserialize;

/// `[artifacts]` in the worker config: the limits of what a session may deliver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsSection {}
