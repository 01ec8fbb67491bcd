//! The identities view of an agent (after `seeds/cloud-agent-identities.txt`,
//! served as Warp's Oz API serves it): the same [`AgentConfig`] seen as a
//! service identity of a team — `prompt` is the system prompt,
//! `base_model` the model's id, `skills` the skill specs, `mcp_servers` a
//! map by name — with whether the team's plan lets it run (`available`)
//! and whether it is the team's default.

use super::config::{check_mcp_servers, check_model, check_references, AgentConfig, ModelRef};
use super::view::{rfc3339, AgentRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Longest name, description and prompt (as in the configuration view).
const NAME_MAX: usize = 64;
const DESCRIPTION_MAX: usize = 2048;
const PROMPT_MAX: usize = 64 * 1024;
/// Most secrets and skills.
const LIST_MAX: usize = 20;

/// A secret the agent may use, by name.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct SecretRef {
    /// Its name.
    pub(crate) name: String,
}

/// A create or update body of the identities view: the fields sent. On an
/// update a field left out or `null` stays as it was, and `""`, `[]` or
/// `{}` clears it (a name cannot be cleared). Fields this view does not
/// use (`agent_type`, `harness`, `memory`, `worker_host`, …) are accepted
/// and ignored, as the vendor's client sends them.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct IdentityPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    base_model: Option<String>,
    #[serde(default)]
    secrets: Option<Vec<SecretRef>>,
    #[serde(default)]
    skills: Option<Vec<String>>,
    #[serde(default)]
    mcp_servers: Option<Map<String, Value>>,
    #[serde(default)]
    environment_id: Option<String>,
}

/// Characters that change how the text around them shows without showing
/// themselves (bidirectional controls, zero-width characters): a name with
/// them can pass for another.
fn is_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name is required: give the agent a name".into());
    }
    if name.chars().count() > NAME_MAX || name.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(format!(
            "name must be at most {NAME_MAX} characters, without control, bidirectional or zero-width characters"
        ));
    }
    Ok(())
}

impl IdentityPatch {
    /// The configuration a create makes (`name` required; no model: the
    /// worker that runs it chooses).
    pub(crate) fn create(self, served: &[String]) -> Result<AgentConfig, String> {
        let name = self.name.clone().unwrap_or_default();
        check_name(&name)?;
        let mut c = AgentConfig::new(name, ModelRef::Id(String::new()));
        self.apply(&mut c, served)?;
        Ok(c)
    }

    /// `config` with this patch merged in.
    pub(crate) fn update(
        self,
        config: &AgentConfig,
        served: &[String],
    ) -> Result<AgentConfig, String> {
        let mut c = config.clone();
        if let Some(n) = &self.name {
            check_name(n)?;
        }
        self.apply(&mut c, served)?;
        Ok(c)
    }

    fn apply(self, c: &mut AgentConfig, served: &[String]) -> Result<(), String> {
        if let Some(n) = self.name {
            c.name = n;
        }
        if let Some(d) = self.description {
            if d.chars().count() > DESCRIPTION_MAX {
                return Err(format!(
                    "description is longer than {DESCRIPTION_MAX} characters"
                ));
            }
            c.description = d;
        }
        if let Some(p) = self.prompt {
            if p.len() > PROMPT_MAX {
                return Err(format!("prompt is longer than {} KiB", PROMPT_MAX >> 10));
            }
            c.system = p;
        }
        if let Some(m) = self.base_model {
            if !m.is_empty() {
                check_model(&ModelRef::Id(m.clone()), served).map_err(|e| {
                    e.replace("model ", "base_model ").replace(
                        "GET /api/v1/cloud/models",
                        "GET /api/v1/cloud/models (the models workers serve)",
                    )
                })?;
            }
            c.model = ModelRef::Id(m);
        }
        if let Some(s) = self.secrets {
            if s.len() > LIST_MAX {
                return Err(format!(
                    "secrets has {} entries; at most {LIST_MAX}",
                    s.len()
                ));
            }
            for (i, x) in s.iter().enumerate() {
                if x.name.is_empty()
                    || x.name.len() > 128
                    || x.name
                        .chars()
                        .any(|ch| ch.is_control() || ch.is_whitespace())
                {
                    return Err(format!(
                        "secrets[{i}].name must be 1–128 characters without spaces"
                    ));
                }
            }
            c.secrets = s.into_iter().map(|x| x.name).collect();
        }
        if let Some(s) = self.skills {
            if s.len() > LIST_MAX {
                return Err(format!(
                    "skills has {} entries; at most {LIST_MAX}",
                    s.len()
                ));
            }
            if let Some(i) = s.iter().position(|x| x.is_empty() || x.len() > 512) {
                return Err(format!("skills[{i}] must be a skill spec of 1–512 characters (owner/repo:path/SKILL.md)"));
            }
            c.skill_specs = s;
        }
        if let Some(m) = self.mcp_servers {
            let mut list = Vec::new();
            for (name, v) in m {
                let url = v.get("url").and_then(Value::as_str);
                let Some(url) = url else {
                    return Err(format!(
                        "mcp_servers.{name}: give {{\"url\": \"https://…\"}}; servers started by command are not supported here"
                    ));
                };
                if v.get("headers").is_some() || v.get("env").is_some() {
                    return Err(format!("mcp_servers.{name}: credentials do not belong in an agent's configuration (the model could read them); give them to the worker as a secret reference"));
                }
                list.push(json!({"type": "url", "name": name, "url": url}));
            }
            check_mcp_servers(&list)?;
            c.mcp_servers = list;
        }
        if let Some(e) = self.environment_id {
            c.environment_id = (!e.is_empty()).then_some(e);
        }
        check_references(c)
    }
}

/// The JSON of an identity (the vendor's `AgentResponse`, with `is_default`
/// and `version` besides).
#[derive(Debug, Serialize)]
pub(crate) struct IdentityView {
    uid: String,
    name: String,
    description: String,
    prompt: String,
    base_model: Option<String>,
    skills: Vec<String>,
    secrets: Vec<SecretRef>,
    mcp_servers: Map<String, Value>,
    environment_id: Option<String>,
    available: bool,
    is_default: bool,
    version: u32,
    default_runner_uid: Option<String>,
    memory: Value,
    created_at: String,
    updated_at: String,
}

impl From<AgentRecord> for IdentityView {
    fn from(r: AgentRecord) -> Self {
        let c = r.config;
        IdentityView {
            uid: r.id,
            name: c.name,
            description: c.description,
            prompt: c.system,
            base_model: c.model.id().filter(|m| !m.is_empty()).map(str::to_string),
            skills: c.skill_specs,
            secrets: c
                .secrets
                .into_iter()
                .map(|name| SecretRef { name })
                .collect(),
            mcp_servers: c
                .mcp_servers
                .iter()
                .filter_map(|s| {
                    let name = s.get("name")?.as_str()?.to_string();
                    Some((name, json!({"url": s.get("url")?})))
                })
                .collect(),
            environment_id: c.environment_id,
            available: r.available,
            is_default: r.is_default,
            version: r.version,
            default_runner_uid: None,
            memory: json!({"attached_stores": [], "auto_memory": {"enabled": false}}),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}
