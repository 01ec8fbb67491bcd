//! `[repositories]` of the worker config: which git hosts this worker may
//! check out from and deliver to, with the credentials for each — named
//! like the model keys (env, file or systemd credential), used inside the
//! runner process only.

use crate::secret::SecretRef;
use serde::Deserialize;
use std::path::PathBuf;

/// `[repositories]`: repository checkout and delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoriesSection {
    /// The hosts sessions may name, each with its token and forge.
    #[serde(default)]
    pub hosts: Vec<RepositoryHost>,
    /// Who commits the delivered work (the author is the agent).
    #[serde(default = "runner_identity")]
    pub committer: IdentitySection,
    /// The author's e-mail address; the name is the agent's.
    #[serde(default = "agent_email")]
    pub author_email: String,
    /// History fetched at checkout (`0`: all of it). A shallow clone is
    /// faster and pushes fine to the same repository.
    #[serde(default = "one")]
    pub clone_depth: u32,
    /// Extra trust roots (PEM) for git hosts and forge APIs, for an
    /// internal forge with its own certificate authority.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Time one git or forge HTTP request may take.
    #[serde(default = "timeout")]
    pub timeout_seconds: u64,
    /// How often the worker reports the repositories it can work on to the
    /// control plane (static lists and forge listings), after the report
    /// at start.
    #[serde(default = "report_interval")]
    pub report_interval_seconds: u64,
}

/// One `[[repositories.hosts]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryHost {
    /// `host` or `host:port`, exactly as in the session's URLs.
    pub host: String,
    /// The token (`{ env = "GITHUB_TOKEN" }`, `{ file = "…" }`,
    /// `{ credential = "…" }`); none for a public repository that is only
    /// read.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// The forge's API for pull requests: `github` (GitHub and GitHub
    /// Enterprise Server) or `none` (push only).
    #[serde(default = "github")]
    pub forge: ForgeKind,
    /// The forge's API base URL; default `https://api.github.com` for
    /// github.com and `https://<host>/api/v3` otherwise.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Repositories on this host to report as workable (`"owner/name"`),
    /// beside what the forge lists for the token: the only list a `forge =
    /// "none"` host has. Reporting one grants nothing: checking it out is
    /// still a decided action of each session.
    #[serde(default)]
    pub list: Vec<String>,
}

/// Which API opens pull requests on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// GitHub's REST API (v3, version 2022-11-28).
    Github,
    /// No pull requests: delivery pushes the branch only.
    None,
}

/// A git identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

fn runner_identity() -> IdentitySection {
    IdentitySection {
        name: "runner".into(),
        email: "runner@runner.invalid".into(),
    }
}
fn agent_email() -> String {
    "agent@runner.invalid".into()
}
fn one() -> u32 {
    1
}
fn timeout() -> u64 {
    300
}
fn report_interval() -> u64 {
    600
}
fn github() -> ForgeKind {
    ForgeKind::Github
}

impl Default for RepositoriesSection {
    fn default() -> Self {
        RepositoriesSection {
            hosts: Vec::new(),
            committer: runner_identity(),
            author_email: agent_email(),
            clone_depth: one(),
            ca_file: None,
            timeout_seconds: timeout(),
            report_interval_seconds: report_interval(),
        }
    }
}

impl RepositoriesSection {
    /// Refuses settings that could not work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let key = format!("repositories.hosts[{i}].host");
            let plain = !h.host.is_empty()
                && h.host.len() <= 255
                && h.host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
            if !plain || h.host.starts_with(':') {
                return Err(format!(
                    "{key} = {:?}: give a host name or host:port as it appears in the repository URLs (github.com, git.example.com:8443)",
                    h.host
                ));
            }
            if !seen.insert(h.host.to_ascii_lowercase()) {
                return Err(format!("{key} = {:?} is listed twice", h.host));
            }
            for (j, entry) in h.list.iter().enumerate() {
                let ok = entry.split_once('/').is_some_and(|(owner, name)| {
                    protocol::repo_list::ListedRepository::new(&h.host, owner, name).is_ok()
                });
                if !ok {
                    return Err(format!(
                        "repositories.hosts[{i}].list[{j}] = {entry:?}: give owner/name, each part letters, digits, '-', '_' or '.' (acme/widget)"
                    ));
                }
            }
            if let Some(base) = &h.api_base {
                let loopback = ["http://127.", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| base.starts_with(p));
                if !(base.starts_with("https://") || loopback) {
                    return Err(format!(
                        "repositories.hosts[{i}].api_base = {base:?}: the forge API must be https (plain http only on loopback)"
                    ));
                }
            }
        }
        for (key, v) in [
            ("repositories.committer.name", &self.committer.name),
            ("repositories.committer.email", &self.committer.email),
            ("repositories.author_email", &self.author_email),
        ] {
            if v.trim().is_empty() || v.len() > 200 || v.contains(['<', '>', '\n', '\0']) {
                return Err(format!(
                    "{key} = {v:?}: give a non-empty value without <, > or newlines"
                ));
            }
        }
        if !(5..=3600).contains(&self.timeout_seconds) {
            return Err("repositories.timeout_seconds must be between 5 and 3600".into());
        }
        if !(1..=86_400).contains(&self.report_interval_seconds) {
            return Err("repositories.report_interval_seconds must be between 1 and 86400".into());
        }
        Ok(())
    }

    /// The entry for `host_port` (`host` or `host:port`, case-insensitive).
    pub fn host(&self, host_port: &str) -> Option<&RepositoryHost> {
        self.hosts
            .iter()
            .find(|h| h.host.eq_ignore_ascii_case(host_port))
    }

    /// What policies see (`input.trusted.worker.repositories`): the host
    /// names, never where the tokens are.
    pub fn trusted_view(&self) -> serde_json::Value {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| host_name(&h.host).to_ascii_lowercase())
            .collect();
        let api_hosts: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.forge != ForgeKind::None)
            .filter_map(|h| {
                let base = h
                    .api_base
                    .clone()
                    .unwrap_or_else(|| crate::forge::github_api_base(&h.host));
                url::Url::parse(&base)
                    .ok()?
                    .host_str()
                    .map(|s| s.trim_matches(['[', ']']).to_ascii_lowercase())
            })
            .collect();
        serde_json::json!({ "hosts": hosts, "api_hosts": api_hosts })
    }
}

/// The host of `host[:port]` (an IPv6 literal keeps its brackets off).
pub fn host_name(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RepositoriesSection, String> {
        let r: RepositoriesSection = toml::from_str(s).map_err(|e| e.to_string())?;
        r.validate()?;
        Ok(r)
    }

    #[test]
    fn hosts_parse_and_only_names_reach_the_policy() {
        let r = parse(
            "[[hosts]]\nhost = \"GitHub.com\"\ntoken = { env = \"GITHUB_TOKEN\" }\n[[hosts]]\nhost = \"127.0.0.1:8443\"\nforge = \"none\"\n",
        )
        .unwrap();
        assert_eq!(r.host("github.com").unwrap().forge, ForgeKind::Github);
        assert_eq!(r.host("127.0.0.1:8443").unwrap().forge, ForgeKind::None);
        assert!(r.host("127.0.0.1").is_none());
        let view = r.trusted_view();
        assert_eq!(
            view,
            serde_json::json!({"hosts": ["github.com", "127.0.0.1"], "api_hosts": ["api.github.com"]})
        );
        assert!(!view.to_string().contains("GITHUB_TOKEN"));
        assert_eq!(r.clone_depth, 1);
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (toml, key) in [
            (
                "[[hosts]]\nhost = \"https://github.com\"\n",
                "hosts[0].host",
            ),
            (
                "[[hosts]]\nhost = \"a\"\n[[hosts]]\nhost = \"A\"\n",
                "listed twice",
            ),
            (
                "[[hosts]]\nhost = \"a\"\napi_base = \"http://a/api\"\n",
                "api_base",
            ),
            (
                "committer = { name = \"x\", email = \"<y>\" }\n",
                "committer.email",
            ),
            ("timeout_seconds = 1\n", "timeout_seconds"),
            ("report_interval_seconds = 0\n", "report_interval_seconds"),
            ("[[hosts]]\nhost = \"a\"\nforge = \"gitlab\"\n", "forge"),
            ("[[hosts]]\nhost = \"a\"\ntokn = {}\n", "tokn"),
            (
                "[[hosts]]\nhost = \"a\"\nlist = [\"acme/widget\", \"acme\"]\n",
                "hosts[0].list[1]",
            ),
            (
                "[[hosts]]\nhost = \"a\"\nlist = [\"acme/widget/extra\"]\n",
                "hosts[0].list[0]",
            ),
            ("[[hosts]]\nhost = \"a\"\nlist = [\"../x\"]\n", "list[0]"),
            ("[[hosts]]\nhost = \"a\"\nlist = [\"a/.\"]\n", "list[0]"),
            ("[[hosts]]\nhost = \"a\"\nlist = [\"/x\"]\n", "list[0]"),
        ] {
            let e = parse(toml).unwrap_err();
            assert!(e.contains(key), "{toml}: {e}");
        }
        parse("[[hosts]]\nhost = \"a\"\napi_base = \"http://127.0.0.1:9/\"\n").unwrap();
        let r = parse(
            "[[hosts]]\nhost = \"127.0.0.1:8443\"\nforge = \"none\"\nlist = [\"acme/widget\", \"ops/infra.git-tools\"]\n",
        )
        .unwrap();
        assert_eq!(r.hosts[0].list, ["acme/widget", "ops/infra.git-tools"]);
    }

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("github.com"), "github.com");
        assert_eq!(host_name("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8443"), "::1");
    }
}
