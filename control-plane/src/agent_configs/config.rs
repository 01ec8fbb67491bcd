//! What an agent's configuration holds, how a change merges into it, and
//! what is valid. Fields are kept as the client sent them (a model as a
//! string or an object, tools with the spelling given) so that every view
//! echoes them back unchanged; [`super::tools`] reads them for the policy.

use super::tools::check_tools;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest name (the seed's limit).
const NAME_MAX: usize = 64;
/// Longest description, in characters.
const DESCRIPTION_MAX: usize = 2048;
/// Longest system prompt, in characters.
const SYSTEM_MAX: usize = 100_000;
/// Most entries of `tools`, `skills` (the contract's limit) and `mcp_servers`.
const LIST_MAX: usize = 20;
/// Most metadata keys, and the longest key and value.
const METADATA_KEYS: usize = 16;
const METADATA_KEY_MAX: usize = 64;
const METADATA_VALUE_MAX: usize = 512;

/// A model: its id, or an object with an `id` and options (`effort`,
/// `speed`, `context_window`) that are kept and echoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ModelRef {
    /// The model's id.
    Id(String),
    /// `{id, …}`.
    Config(Map<String, Value>),
}

impl ModelRef {
    /// The model's id (`None` for an object without a string `id`).
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            ModelRef::Id(s) => Some(s),
            ModelRef::Config(m) => m.get("id").and_then(Value::as_str),
        }
    }
}

/// One version of an agent's configuration: the seed's fields, with its
/// defaults (`""`, `[]`, `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgentConfig {
    /// Lowercase letters, digits and hyphens, at most 64.
    pub(crate) name: String,
    /// Free-form.
    #[serde(default)]
    pub(crate) description: String,
    /// The model, as sent.
    pub(crate) model: ModelRef,
    /// The system prompt: trusted instructions.
    #[serde(default)]
    pub(crate) system: String,
    /// Tool entries, as sent (see [`super::tools`]).
    #[serde(default)]
    pub(crate) tools: Vec<Value>,
    /// Skill references, kept as sent.
    #[serde(default)]
    pub(crate) skills: Vec<Value>,
    /// MCP servers (`{type: "url", name, url}`).
    #[serde(default)]
    pub(crate) mcp_servers: Vec<Value>,
    /// Tags: string values.
    #[serde(default)]
    pub(crate) metadata: Map<String, Value>,
    /// Kept and echoed; it has no effect here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) multiagent: Option<Value>,
    /// The names of secrets the agent may use (the identities view's
    /// `secrets`; the values live with the operator, never here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) secrets: Vec<String>,
    /// Skill specs (`owner/repo:path/SKILL.md`, the identities view's
    /// `skills`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skill_specs: Vec<String>,
    /// The environment its runs use (identities view), kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) environment_id: Option<String>,
}

impl AgentConfig {
    /// A configuration with the seed's defaults: no tools, no prompt.
    /// `model` `""` lets the worker that runs it choose.
    pub(crate) fn new(name: String, model: ModelRef) -> Self {
        AgentConfig {
            name,
            description: String::new(),
            model,
            system: String::new(),
            tools: Vec::new(),
            skills: Vec::new(),
            mcp_servers: Vec::new(),
            metadata: Map::new(),
            multiagent: None,
            secrets: Vec::new(),
            skill_specs: Vec::new(),
            environment_id: None,
        }
    }
}

/// A create or update body: the fields sent. A field left out — or sent
/// as `null`, as the vendor's client does for an argument given as `None`
/// — keeps its value on an update; `version` is the version the change is
/// made against (an update needs it). Fields this model does not know are
/// ignored, as the vendor's clients send more than we use.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AgentPatch {
    /// New name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// New description.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// New model.
    #[serde(default)]
    pub(crate) model: Option<ModelRef>,
    /// New system prompt.
    #[serde(default)]
    pub(crate) system: Option<String>,
    /// New tools (replaces the list).
    #[serde(default)]
    pub(crate) tools: Option<Vec<Value>>,
    /// New skills (replaces the list).
    #[serde(default)]
    pub(crate) skills: Option<Vec<Value>>,
    /// New MCP servers (replaces the list).
    #[serde(default)]
    pub(crate) mcp_servers: Option<Vec<Value>>,
    /// New metadata (replaces the object whole).
    #[serde(default)]
    pub(crate) metadata: Option<Map<String, Value>>,
    /// New multi-agent settings.
    #[serde(default)]
    pub(crate) multiagent: Option<Value>,
    /// The version this update is made against.
    #[serde(default)]
    pub(crate) version: Option<i64>,
}

/// Checks an agent name: 1–64 lowercase letters, digits and single
/// hyphens between them (`code-reviewer`).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} is not valid: give 1–{NAME_MAX} lowercase letters, digits and hyphens, e.g. backend-code-review"
        ))
    }
}

impl AgentPatch {
    /// The configuration a create makes: `name` and `model` are required,
    /// every other field takes the seed's default. `served`: the models
    /// registered workers serve.
    pub(crate) fn create(self, served: &[String]) -> Result<AgentConfig, String> {
        self.check(served)?;
        let Some(name) = self.name.clone() else {
            return Err("Field 'name' is required.".into());
        };
        let Some(model) = self.model.clone() else {
            return Err("Field 'model' is required.".into());
        };
        let mut config = AgentConfig::new(name, model);
        self.apply_to(&mut config);
        check_references(&config)?;
        Ok(config)
    }

    /// `config` with this patch merged in (sent fields replace, the rest
    /// stay), checked.
    pub(crate) fn update(
        self,
        config: &AgentConfig,
        served: &[String],
    ) -> Result<AgentConfig, String> {
        self.check(served)?;
        let mut next = config.clone();
        self.apply_to(&mut next);
        check_references(&next)?;
        Ok(next)
    }

    fn apply_to(self, c: &mut AgentConfig) {
        if let Some(v) = self.name {
            c.name = v;
        }
        if let Some(v) = self.description {
            c.description = v;
        }
        if let Some(v) = self.model {
            c.model = v;
        }
        if let Some(v) = self.system {
            c.system = v;
        }
        if let Some(v) = self.tools {
            c.tools = v;
        }
        if let Some(v) = self.skills {
            c.skills = v;
        }
        if let Some(v) = self.mcp_servers {
            c.mcp_servers = v;
        }
        if let Some(v) = self.metadata {
            c.metadata = v;
        }
        if self.multiagent.is_some() {
            c.multiagent = self.multiagent;
        }
    }

    /// Checks every field sent, each on its own.
    pub(crate) fn check(&self, served: &[String]) -> Result<(), String> {
        if let Some(n) = &self.name {
            check_name(n)?;
        }
        if let Some(d) = &self.description {
            if d.chars().count() > DESCRIPTION_MAX {
                return Err(format!(
                    "description is longer than {DESCRIPTION_MAX} characters"
                ));
            }
        }
        if let Some(s) = &self.system {
            if s.chars().count() > SYSTEM_MAX {
                return Err(format!("system is longer than {SYSTEM_MAX} characters"));
            }
        }
        if let Some(m) = &self.model {
            check_model(m, served)?;
        }
        if let Some(t) = &self.tools {
            if t.len() > LIST_MAX {
                return Err(format!("tools has {} entries; at most {LIST_MAX}", t.len()));
            }
        }
        if let Some(s) = &self.skills {
            check_skills(s)?;
        }
        if let Some(m) = &self.mcp_servers {
            check_mcp_servers(m)?;
        }
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
        }
        Ok(())
    }
}

/// Checks a model: a string id (or an object with one) that a registered
/// worker serves.
pub(crate) fn check_model(m: &ModelRef, served: &[String]) -> Result<(), String> {
    let Some(id) = m.id().filter(|s| !s.is_empty()) else {
        return Err("model must be a model id, or an object with a string `id`; see GET /api/v1/cloud/models".into());
    };
    if served.iter().any(|s| s == id) {
        return Ok(());
    }
    if served.is_empty() {
        return Err(format!(
            "model {id:?} is not served: no registered worker serves any model yet; start a worker (`runner up`) and see GET /api/v1/cloud/models"
        ));
    }
    Err(format!(
        "model {id:?} is not served by any registered worker; pick one of GET /api/v1/cloud/models ({})",
        served.join(", ")
    ))
}

fn check_skills(skills: &[Value]) -> Result<(), String> {
    if skills.len() > LIST_MAX {
        return Err(format!(
            "skills has {} entries; at most {LIST_MAX}",
            skills.len()
        ));
    }
    for (i, s) in skills.iter().enumerate() {
        let kind = s.get("type").and_then(Value::as_str);
        let id = s.get("skill_id").and_then(Value::as_str);
        if kind == Some("qoder") {
            return Err(format!(
                "skills[{i}]: no built-in skills on this control plane; upload it as a custom skill (POST /api/v1/cloud/skills) and name it with type \"custom\""
            ));
        }
        if !matches!(kind, Some("custom" | "qoder")) || id.is_none_or(str::is_empty) {
            return Err(format!(
                "skills[{i}] must be {{\"type\": \"custom\" or \"qoder\", \"skill_id\": \"…\", \"version\"?}}"
            ));
        }
    }
    Ok(())
}

/// Checks MCP servers: `{type: "url", name, url}`, names unique, no
/// credentials.
pub(crate) fn check_mcp_servers(servers: &[Value]) -> Result<(), String> {
    if servers.len() > LIST_MAX {
        return Err(format!(
            "mcp_servers has {} entries; at most {LIST_MAX}",
            servers.len()
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let kind = s.get("type").and_then(Value::as_str);
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        let url = s.get("url").and_then(Value::as_str).unwrap_or("");
        if kind != Some("url") {
            return Err(format!("mcp_servers[{i}].type must be \"url\""));
        }
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "mcp_servers[{i}].name must be 1–64 letters, digits, '-' or '_'"
            ));
        }
        // `mcp__<server>__<tool>` must split one way only.
        if name.contains("__") {
            return Err(format!(
                "mcp_servers[{i}].name {name:?} must not contain \"__\" (tools are named mcp__<server>__<tool>)"
            ));
        }
        if names.contains(&name) {
            return Err(format!("mcp_servers[{i}].name {name:?} is given twice"));
        }
        names.push(name);
        match url::Url::parse(url) {
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                return Err(format!("mcp_servers[{i}].url carries credentials (user:password@); they do not belong in an agent's configuration (the model could read them): give them to the worker as a secret reference"))
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(format!(
                    "mcp_servers[{i}].url is not an http(s) URL"
                ))
            }
        }
        if s.get("headers").is_some() || s.get("authorization_token").is_some() {
            return Err(format!("mcp_servers[{i}]: credentials do not belong in an agent's configuration (the model could read them); give them to the worker as a secret reference"));
        }
    }
    Ok(())
}

fn check_metadata(m: &Map<String, Value>) -> Result<(), String> {
    if m.len() > METADATA_KEYS {
        return Err(format!(
            "metadata has {} keys; at most {METADATA_KEYS}",
            m.len()
        ));
    }
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > METADATA_KEY_MAX {
            return Err(format!(
                "metadata key {k:?} must be 1–{METADATA_KEY_MAX} characters"
            ));
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= METADATA_VALUE_MAX => {}
            Some(_) => {
                return Err(format!(
                    "metadata[{k:?}] is longer than {METADATA_VALUE_MAX} characters"
                ))
            }
            None => return Err(format!("metadata[{k:?}] must be a string")),
        }
    }
    Ok(())
}

/// What can only be checked on the merged whole: tool entries against the
/// MCP servers they name.
pub(crate) fn check_references(c: &AgentConfig) -> Result<(), String> {
    let servers: Vec<&str> = c
        .mcp_servers
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    check_tools(&c.tools, &servers)
}
