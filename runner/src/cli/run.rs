//! `runner run`: start a session of one of the team's agents from the
//! command line (`trigger: CLI`), and with `--follow` watch it to its end.
//!
//! Auth is a person's: an API key from the environment, else the config's
//! stored `runner login`. The session id goes to stdout (one line, for
//! scripts); everything else to stderr. The exit code says how it went:
//! 0 queued (or, followed, `complete`), 1 `error` or a server failure,
//! 2 usage, auth or a refusal (4xx), 3 `cancelled`, 4 the stream was lost.

use super::follow::{self, Update, What};
use super::load_config;
use crate::auth::api_key::ApiKey;
use crate::auth::TokenSource;
use crate::platform::{Platform, PlatformError};
use clap::Args;
use protocol::ids::SessionId;
use protocol::session::{AgentRef, NewSession, NewSource, Trigger};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Followed, the session ended `error`; or the control plane failed (5xx,
/// unreachable).
pub(super) const EXIT_ERROR: u8 = 1;
/// Usage, configuration or auth error, or the control plane refused the
/// request (4xx).
pub(super) const EXIT_USAGE: u8 = super::EXIT_USAGE;
/// Followed, the session was cancelled.
pub(super) const EXIT_CANCELLED: u8 = 3;
/// Followed, the event stream was lost (the control plane out of reach
/// for longer than the follower waits, or it refused the stream).
pub(super) const EXIT_LOST: u8 = 4;

/// The environment variable the API key is read from by default.
pub(super) const DEFAULT_KEY_ENV: &str = "RUNNER_API_KEY";

/// How long `--follow` waits for a control plane that gives no stream.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Longest title taken from the prompt's first line, in characters.
const TITLE_CHARS: usize = 80;

/// Pages of agents read at most while looking a name up (100 each).
const MAX_PAGES: usize = 100;

/// Arguments of `runner run`.
#[derive(Args)]
pub(super) struct RunArgs {
    /// The agent: its id (`agent_…`) or its name in your team.
    #[arg(long)]
    agent: String,
    /// A repository to work on (its https clone URL).
    #[arg(long)]
    repo: Option<String>,
    /// Branch, tag or commit of `--repo` to start from (its default branch
    /// when absent).
    #[arg(long = "ref", requires = "repo")]
    git_ref: Option<String>,
    /// Print the session's activities and state changes until it ends; the
    /// exit code is then how it ended.
    #[arg(long)]
    follow: bool,
    /// Runner config: `[worker]` gives the control plane, workspace and
    /// agent profile, `[auth]` the stored `runner login`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The control plane's URL (instead of `worker.control_plane`).
    #[arg(long)]
    control_plane: Option<String>,
    /// PEM file of the CA that signs the control plane's certificate
    /// (instead of `worker.ca_file`), trusted besides the web PKI roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// The environment variable holding an API key.
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// The workspace of the session (instead of `worker.workspace`).
    #[arg(long)]
    workspace: Option<String>,
    /// The agent profile of the session (instead of `worker.agent_profile`).
    #[arg(long)]
    profile: Option<String>,
    /// The work.
    prompt: String,
}

/// A failure with its exit code and message.
#[derive(Debug, PartialEq, Eq)]
struct Fail {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Fail {
    Fail {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

/// A control-plane error as a failure: refusals (4xx, a refused
/// sign-in) are the caller's to fix (2); anything else is 1.
fn from_platform(what: &str, e: PlatformError) -> Fail {
    let (code, message) = match &e {
        PlatformError::Api {
            status, message, ..
        } if (400..500).contains(status) => (EXIT_USAGE, format!("{what}: {message}")),
        PlatformError::Api {
            status, message, ..
        } => (
            EXIT_ERROR,
            format!("{what}: the control plane answered {status}: {message}"),
        ),
        PlatformError::AuthLost(m) => (EXIT_USAGE, format!("{what}: refused: {m}")),
        PlatformError::ClaimConflict(m)
        | PlatformError::ClaimLost(m)
        | PlatformError::UnknownWorker(m) => (EXIT_USAGE, format!("{what}: {m}")),
        PlatformError::Transport(m) => (EXIT_ERROR, format!("{what}: {m}")),
    };
    Fail { code, message }
}

pub(super) fn run(a: RunArgs) -> anyhow::Result<u8> {
    match start(a) {
        Ok(code) => Ok(code),
        Err(f) => {
            eprintln!("runner run: {}", f.message);
            Ok(f.code)
        }
    }
}

fn start(a: RunArgs) -> Result<u8, Fail> {
    let mut config = load_config(a.config.as_deref()).map_err(|e| usage(format!("{e:#}")))?;
    let url = a
        .control_plane
        .clone()
        .or_else(|| config.worker.control_plane.clone())
        .ok_or_else(|| usage("no control plane: give --control-plane URL, or --config FILE with [worker] control_plane"))?;
    crate::auth::check_transport(&url).map_err(usage)?;
    if let Some(ca) = &a.ca_file {
        crate::trust::trust_ca_file(ca)
            .map_err(|e| usage(e.replace("worker.ca_file", "--ca-file")))?;
    }
    config.worker.control_plane = Some(url.clone());
    let workspace = a
        .workspace
        .clone()
        .or_else(|| config.worker.workspace.clone())
        .ok_or_else(|| {
            usage("no workspace: give --workspace W, or --config FILE with [worker] workspace")
        })?;
    let profile = a
        .profile
        .clone()
        .or_else(|| config.worker.agent_profile.clone())
        .ok_or_else(|| {
            usage(
                "no agent profile: give --profile P, or --config FILE with [worker] agent_profile",
            )
        })?;
    let source = source(&a.prompt)?;
    let repo = repo(a.repo.as_deref(), a.git_ref.as_deref())?;

    let key_env = a.api_key_env.as_deref().unwrap_or(DEFAULT_KEY_ENV);
    let key = std::env::var(key_env).ok().filter(|k| !k.trim().is_empty());
    let tokens = credential(
        key_env,
        key,
        a.api_key_env.is_some(),
        a.config.is_some(),
        || crate::wiring::token_manager(&config),
    )?;
    let platform = Platform::new(&url)
        .map_err(|e| from_platform("cannot make the client", e))?
        .with_tokens(tokens);

    let agent = if is_agent_id(&a.agent) {
        a.agent.clone()
    } else {
        find_agent(&a.agent, |page| platform.agents_page(page))?
    };
    let new = NewSession {
        workspace,
        agent_profile: profile,
        agent: AgentRef::Latest(agent),
        source,
        script: None,
        repo,
        trigger: Some(Trigger::Cli),
    };
    let queued = platform
        .queue(&new)
        .map_err(|e| from_platform("queueing the session", e))?;
    println!("{}", queued.id);
    if !a.follow {
        return Ok(0);
    }
    Ok(follow_to_end(&platform, queued.id))
}

/// The bearer: the API key when one is in the environment, else the
/// stored sign-in. An explicitly named variable that is empty is an error,
/// not a silent fall back to the sign-in.
fn credential<T: TokenSource + 'static>(
    key_env: &str,
    key: Option<String>,
    env_named: bool,
    config_given: bool,
    sign_in: impl FnOnce() -> Result<T, String>,
) -> Result<Arc<dyn TokenSource>, Fail> {
    if let Some(k) = key {
        return Ok(Arc::new(ApiKey::new(k.trim().to_string(), key_env)));
    }
    if env_named {
        return Err(usage(format!(
            "--api-key-env {key_env}: the variable is not set (or empty)"
        )));
    }
    let why = if config_given {
        match sign_in() {
            Ok(t) => return Ok(Arc::new(t)),
            Err(e) => e,
        }
    } else {
        "no --config, so no stored sign-in".to_string()
    };
    Err(usage(format!(
        "no credential: put an API key in {key_env} (or name another variable with --api-key-env), or sign in with `runner login --config FILE` and pass the same --config ({why})"
    )))
}

/// The session's work: the prompt, titled by its first line.
fn source(prompt: &str) -> Result<NewSource, Fail> {
    if prompt.trim().is_empty() {
        return Err(usage("the prompt is empty: say what the agent should do"));
    }
    Ok(NewSource {
        title: title(prompt),
        prompt: prompt.to_string(),
        ..NewSource::default()
    })
}

/// The first non-blank line of the prompt, at most [`TITLE_CHARS`]
/// characters (cut at a character, never inside one).
fn title(prompt: &str) -> String {
    let first = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    first.chars().take(TITLE_CHARS).collect()
}

/// `--repo`/`--ref` as the session's repository, with the API's defaults
/// for everything else (a branch of its own, no pull request).
fn repo(
    url: Option<&str>,
    git_ref: Option<&str>,
) -> Result<Option<protocol::repository::RepoWork>, Fail> {
    let Some(url) = url else {
        return Ok(None);
    };
    let mut v = serde_json::json!({ "repository": url });
    if let Some(r) = git_ref {
        v["ref"] = r.into();
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| usage(format!("--repo: {e}")))
}

/// Whether `s` is an agent id (`agent_` and 32 lowercase hex digits)
/// rather than a name.
fn is_agent_id(s: &str) -> bool {
    s.strip_prefix("agent_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The id of the one agent named `name` in the caller's team, reading the
/// pages `fetch` gives (`None`: the first; then each `next_page`).
fn find_agent(
    name: &str,
    mut fetch: impl FnMut(Option<&str>) -> Result<serde_json::Value, PlatformError>,
) -> Result<String, Fail> {
    let mut all: Vec<(String, String)> = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let body = fetch(page.as_deref()).map_err(|e| from_platform("listing your agents", e))?;
        for a in body["data"].as_array().into_iter().flatten() {
            if let (Some(id), Some(n)) = (a["id"].as_str(), a["name"].as_str()) {
                all.push((id.to_string(), n.to_string()));
            }
        }
        match (body["has_more"].as_bool(), body["next_page"].as_str()) {
            (Some(true), Some(next)) if Some(next) != page.as_deref() => {
                page = Some(next.to_string())
            }
            _ => break,
        }
    }
    pick(name, &all)
}

/// The one id of `name` among (id, name) pairs, or the error listing what
/// there is.
fn pick(name: &str, agents: &[(String, String)]) -> Result<String, Fail> {
    let hits: Vec<&str> = agents
        .iter()
        .filter(|(_, n)| n == name)
        .map(|(id, _)| id.as_str())
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.to_string()),
        [] if agents.is_empty() => Err(usage(format!(
            "no agent named {name} in your team; list: (none; create one with POST /api/v1/cloud/agents)"
        ))),
        [] => {
            let mut names: Vec<&str> = agents.iter().map(|(_, n)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            Err(usage(format!(
                "no agent named {name} in your team; list: {}",
                names.join(", ")
            )))
        }
        many => Err(usage(format!(
            "{} agents are named {name} in your team; give one's id with --agent: {}",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// Prints the session's events until it ends; the exit code of how.
fn follow_to_end(platform: &Platform, session: SessionId) -> u8 {
    let (tx, rx) = std::sync::mpsc::channel();
    follow::spawn(platform, session.clone(), tx, Some(GIVE_UP_AFTER));
    let mut last_state: Option<String> = None;
    loop {
        match rx.recv() {
            Ok(Update::Event { id, what, .. }) => {
                let text = match what {
                    What::Activity(act) => follow::line(&act),
                    What::State { from, to } => {
                        let t = format!("state          {from} → {to}");
                        last_state = Some(to);
                        t
                    }
                    What::Other(name) => format!("{name:<14} (not shown by this runner)"),
                };
                eprintln!("{id:>4}  {text}");
            }
            Ok(Update::End { .. }) => break,
            Ok(Update::Lost { why, .. }) => {
                eprintln!("runner run: lost the event stream of {session}: {why}");
                return EXIT_LOST;
            }
            Err(_) => {
                eprintln!("runner run: the follower of {session} stopped");
                return EXIT_LOST;
            }
        }
    }
    // The state as stored (the stream's last state change, should the
    // read fail).
    let (state, outcome) = match platform.session(&session) {
        Ok(v) => (
            v["session"]["state"].as_str().map(str::to_string),
            v["session"]["outcome"].as_str().map(str::to_string),
        ),
        Err(e) => {
            eprintln!("runner run: cannot read {session}: {e}");
            (last_state, None)
        }
    };
    let state = state.unwrap_or_else(|| "?".into());
    match &outcome {
        Some(o) => eprintln!("{session} {state}: {o}"),
        None => eprintln!("{session} {state}"),
    }
    exit_code(&state)
}

/// The exit code of a terminal state.
fn exit_code(state: &str) -> u8 {
    match state {
        "complete" => 0,
        "cancelled" => EXIT_CANCELLED,
        _ => EXIT_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn a_name_is_one_agent_or_an_error_that_lists_them() {
        let agents = pairs(&[
            ("agent_1", "coder"),
            ("agent_2", "reviewer"),
            ("agent_3", "twin"),
            ("agent_4", "twin"),
        ]);
        assert_eq!(pick("coder", &agents), Ok("agent_1".to_string()));
        let none = pick("nope", &agents).unwrap_err();
        assert_eq!(none.code, EXIT_USAGE);
        assert_eq!(
            none.message,
            "no agent named nope in your team; list: coder, reviewer, twin"
        );
        let two = pick("twin", &agents).unwrap_err();
        assert_eq!(two.code, EXIT_USAGE);
        assert!(
            two.message.contains("2 agents are named twin"),
            "{}",
            two.message
        );
        assert!(two.message.contains("agent_3, agent_4"), "{}", two.message);
        assert!(pick("x", &[]).unwrap_err().message.contains("(none;"));
    }

    #[test]
    fn the_lookup_reads_every_page_and_stops_at_the_last() {
        let mut asked: Vec<Option<String>> = Vec::new();
        let id = find_agent("late", |p| {
            asked.push(p.map(str::to_string));
            Ok(match p {
                None => json!({"data": [{"id": "agent_a", "name": "early"}], "has_more": true, "next_page": "P2"}),
                Some("P2") => json!({"data": [{"id": "agent_b", "name": "late"}], "has_more": false, "next_page": null}),
                Some(other) => panic!("asked for {other}"),
            })
        })
        .unwrap();
        assert_eq!(id, "agent_b");
        assert_eq!(asked, [None, Some("P2".to_string())]);
        // A server repeating its token does not loop.
        let mut n = 0;
        let e = find_agent("x", |_| {
            n += 1;
            Ok(json!({"data": [], "has_more": true, "next_page": "same"}))
        })
        .unwrap_err();
        assert_eq!(n, 2);
        assert!(e.message.contains("no agent named x"));
        // A refusal is the server's message, exit 2.
        let e = find_agent("x", |_| {
            Err(PlatformError::Api {
                status: 403,
                kind: "permission_error".into(),
                message: "not yours".into(),
            })
        })
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (EXIT_USAGE, "listing your agents: not yours")
        );
    }

    #[test]
    fn ids_are_used_as_they_are_and_names_looked_up() {
        assert!(is_agent_id("agent_0123456789abcdef0123456789abcdef"));
        assert!(!is_agent_id("agent_0123456789ABCDEF0123456789abcdef"));
        assert!(!is_agent_id("agent_short"));
        assert!(!is_agent_id("coder"));
    }

    #[test]
    fn the_title_is_the_prompts_first_line_cut_at_80_characters() {
        assert_eq!(title("\n  Fix the bug \nin add()"), "Fix the bug");
        let long = "é".repeat(100);
        assert_eq!(title(&long).chars().count(), 80);
        assert_eq!(source("  \n").unwrap_err().code, EXIT_USAGE);
        let s = source("Fix it\nnow").unwrap();
        assert_eq!(
            (s.title.as_str(), s.prompt.as_str()),
            ("Fix it", "Fix it\nnow")
        );
    }

    #[test]
    fn the_repository_keeps_the_apis_defaults() {
        assert_eq!(repo(None, None), Ok(None));
        let r = repo(Some("https://example.com/o/r"), Some("dev"))
            .unwrap()
            .unwrap();
        assert_eq!(r.repository.as_deref(), Some("https://example.com/o/r"));
        assert_eq!(r.git_ref.as_deref(), Some("dev"));
        assert!(r.auto_branch, "a branch of its own, as the API does");
    }

    #[test]
    fn the_key_comes_first_then_the_sign_in_else_both_ways_are_told() {
        let never =
            || -> Result<ApiKey, String> { panic!("the sign-in is not read when a key is given") };
        let t = credential("RUNNER_API_KEY", Some(" rk_1\n".into()), false, true, never).unwrap();
        assert_eq!(t.bearer().unwrap(), "rk_1");
        let signed_in = || Ok(ApiKey::new("from-login".into(), "x"));
        let t = credential("RUNNER_API_KEY", None, false, true, signed_in).unwrap();
        assert_eq!(t.bearer().unwrap(), "from-login");
        let e = credential(
            "RUNNER_API_KEY",
            None,
            false,
            true,
            || -> Result<ApiKey, String> { Err("no token file".into()) },
        )
        .err()
        .unwrap();
        assert_eq!(e.code, EXIT_USAGE);
        for want in ["RUNNER_API_KEY", "runner login", "no token file"] {
            assert!(e.message.contains(want), "{}", e.message);
        }
        let e = credential("MY_KEY", None, true, true, signed_in)
            .err()
            .unwrap();
        assert!(e.message.contains("--api-key-env MY_KEY"), "{}", e.message);
    }

    #[test]
    fn terminal_states_map_to_exit_codes() {
        assert_eq!(exit_code("complete"), 0);
        assert_eq!(exit_code("error"), EXIT_ERROR);
        assert_eq!(exit_code("cancelled"), EXIT_CANCELLED);
        assert_eq!(
            from_platform(
                "q",
                PlatformError::Api {
                    status: 422,
                    kind: "k".into(),
                    message: "m".into()
                }
            )
            .code,
            EXIT_USAGE
        );
        assert_eq!(
            from_platform(
                "q",
                PlatformError::Api {
                    status: 503,
                    kind: "k".into(),
                    message: "m".into()
                }
            )
            .code,
            EXIT_ERROR
        );
        assert_eq!(
            from_platform("q", PlatformError::Transport("down".into())).code,
            EXIT_ERROR
        );
    }
}
