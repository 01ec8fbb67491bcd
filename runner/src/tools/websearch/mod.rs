//! `WebSearch`: a query to the worker's search provider (SearXNG's JSON
//! API, or a hosted one), decided as a `web.search` action and its
//! connection as a `net.connect`; results come back as untrusted
//! title/url/snippet.

use serde::Deserialize;

/// `[websearch]` in the worker config: which provider, where.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSearchSection {}

impl WebSearchSection {
    /// What policies see under `trusted.worker.websearch`: the provider's
    /// name and host, never its key.
    pub fn trusted_view(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}
