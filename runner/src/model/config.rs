//! `[[providers]]` in the worker config: which model ids are served by
//! which API, where, with which key and limits.

use super::ModelClient;
use crate::secret::{Secret, SecretRef};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`).
    Openai,
    /// Anthropic Messages (`POST {base_url}/v1/messages`).
    Anthropic,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name used in messages and logs.
    pub name: String,
    /// Which wire protocol the provider speaks.
    pub api: ApiKind,
    /// Base URL: `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`
    /// (Ollama), `https://api.anthropic.com`.
    pub base_url: String,
    /// Model ids this provider serves; a session's pinned `model` picks the
    /// provider that lists it.
    pub models: Vec<String>,
    /// The API key, by reference (`{ env = "…" }`, `{ file = "…" }`,
    /// `{ credential = "…" }`); none for a local server without auth.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// Total time one HTTP call may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Time to establish the connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Retries after a 408/409/429/5xx, a timeout or a connection failure.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Longest `Retry-After` the runner waits for; a longer one fails the
    /// call at once with the provider's message.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_seconds: u64,
    /// `max_tokens` of each call.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The field that carries it (OpenAI-compatible only): `max_tokens`
    /// (vLLM, Ollama, llama.cpp, most OpenAI models) or
    /// `max_completion_tokens` (OpenAI's reasoning models).
    #[serde(default = "default_max_tokens_field")]
    pub max_tokens_field: String,
    /// The provider's models take images (vision): the images people
    /// attach to the work and follow-ups go to them in the user turns.
    /// Off by default: a model that does not take them is told in the text
    /// how many were attached, rather than failing the session.
    #[serde(default)]
    pub images: bool,
}

fn default_max_tokens_field() -> String {
    "max_tokens".into()
}

fn default_timeout() -> u64 {
    120
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_retries() -> u32 {
    3
}
fn default_max_retry_after() -> u64 {
    60
}
fn default_max_tokens() -> u32 {
    4096
}

impl ProviderConfig {
    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.base_url).map_err(|e| {
            format!(
                "provider {}: base_url {:?} is not a URL ({e})",
                self.name, self.base_url
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("provider {}: base_url must be http(s)", self.name));
        }
        if self.models.is_empty() {
            return Err(format!(
                "provider {}: models is empty; list the model ids it serves",
                self.name
            ));
        }
        if self.timeout_seconds == 0 || self.connect_timeout_seconds == 0 {
            return Err(format!(
                "provider {}: timeouts must be at least 1 s",
                self.name
            ));
        }
        if !matches!(
            self.max_tokens_field.as_str(),
            "max_tokens" | "max_completion_tokens"
        ) {
            return Err(format!(
                "provider {}: max_tokens_field is max_tokens or max_completion_tokens",
                self.name
            ));
        }
        if self.max_tokens == 0 {
            return Err(format!(
                "provider {}: max_tokens must be at least 1",
                self.name
            ));
        }
        Ok(())
    }

    fn key(&self) -> Result<Option<Secret>, String> {
        self.api_key
            .as_ref()
            .map(|r| r.resolve(&format!("provider {} api_key", self.name)))
            .transpose()
    }
}

/// The configured providers, keys resolved, by model id.
#[derive(Clone, Default)]
pub struct Providers {
    by_model: BTreeMap<String, Arc<dyn ModelClient>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_model.keys()).finish()
    }
}

impl Providers {
    /// Builds a client per (provider, model). Fails on the first provider
    /// whose config or key is wrong, naming it: a worker must not start and
    /// then fail every session.
    pub fn from_config(configs: &[ProviderConfig]) -> Result<Providers, String> {
        let mut by_model: BTreeMap<String, Arc<dyn ModelClient>> = BTreeMap::new();
        for c in configs {
            c.validate()?;
            let key = c.key()?;
            for m in &c.models {
                if m == "script" {
                    return Err(format!(
                        "provider {}: \"script\" is reserved for scripted sessions",
                        c.name
                    ));
                }
                let client: Arc<dyn ModelClient> = match c.api {
                    ApiKind::Openai => Arc::new(super::openai::OpenAi::new(c, m, key.clone())?),
                    ApiKind::Anthropic => {
                        Arc::new(super::anthropic::Anthropic::new(c, m, key.clone())?)
                    }
                };
                if by_model.insert(m.clone(), client).is_some() {
                    return Err(format!(
                        "model {m} is listed by more than one provider; list it once"
                    ));
                }
            }
        }
        Ok(Providers { by_model })
    }

    /// The client for a pinned model id.
    pub fn get(&self, model: &str) -> Result<Arc<dyn ModelClient>, String> {
        self.by_model.get(model).cloned().ok_or_else(|| {
            if self.by_model.is_empty() {
                format!("model {model:?} is not served by this runner: no [[providers]] are configured; add one that lists it")
            } else {
                format!(
                    "model {model:?} is not served by this runner (it serves {}); add it to a [[providers]] entry's models",
                    self.by_model.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        })
    }

    /// Adds a client for a model (tests, benchmarks, embedders).
    pub fn insert(&mut self, model: &str, client: Arc<dyn ModelClient>) {
        self.by_model.insert(model.to_string(), client);
    }
}
