//! `runner up`: the whole loop on one machine. The `control-plane` binary
//! on a SQLite file in a local state directory, a worker against it, the
//! example sessions queued; each session's activities and state changes
//! printed live as its event stream delivers them ([`super::follow`]),
//! then a summary.

use super::follow::{self, Update, What};
use super::load_config;
use super::local_control_plane;
use crate::platform::Platform;
use crate::worker::{self, Shutdown, WorkerShared};
use anyhow::Context;
use clap::Args;
use protocol::activity::Activity;
use protocol::ids::SessionId;
use protocol::session::NewSession;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `runner up`.
#[derive(Args)]
pub(super) struct UpArgs {
    /// Worker config (optional; `[worker]` control-plane settings are filled in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// State directory (control-plane database, audit log, workspaces).
    #[arg(long, default_value = ".runner/up")]
    state: PathBuf,
    /// Directory of session files (NewSession JSON) to queue.
    #[arg(long, default_value = "examples/sessions")]
    sessions: PathBuf,
    /// Address of the control plane (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Leave the control plane and worker serving after the sessions end.
    #[arg(long)]
    keep: bool,
    /// Give up waiting for the sessions after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_seconds: u64,
}

const WORKSPACE: &str = "local";
const PROFILE: &str = "example";

pub(super) fn run(a: UpArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&a.state)
        .with_context(|| format!("cannot create the state directory {}", a.state.display()))?;
    let state = std::fs::canonicalize(&a.state)?;
    let _ = std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o711));
    let sessions = read_sessions(&a.sessions)?;

    // The control plane is its own binary, so the worker never links it.
    let cp = local_control_plane::start(&state, &a.listen)?;
    let url = cp.url.clone();
    let issued = cp.issued.clone();
    println!("control plane  {url}   (state in {})", state.display());
    if let Some(link) = &cp.web_link {
        println!("web pages      {url}{link}   (signs you in once, within 10 minutes)");
    }

    let mut config = load_config(a.config.as_deref())?;
    config.state_dir = Some(state.clone());
    config.worker.control_plane = Some(url.clone());
    config.worker.workspace = Some(WORKSPACE.into());
    config.worker.agent_profile = Some(PROFILE.into());
    config.worker.display_name = "runner up".into();
    config.worker.poll_interval_ms = config.worker.poll_interval_ms.min(250);
    let exe = std::env::current_exe().context("cannot locate the runner binary")?;
    let tokens: Arc<dyn crate::auth::TokenSource> = Arc::new(
        crate::auth::TokenManager::new(
            crate::auth::store::StoredTokens {
                control_plane: url.clone(),
                client_id: local_control_plane::RUNNER_CLIENT.into(),
                access_token: issued.access_token,
                refresh_token: issued.refresh_token,
                access_expires_at: chrono::Utc::now().timestamp() + issued.expires_in as i64,
                access_lifetime: issued.expires_in as i64,
            },
            crate::auth::tokens::Persist::Memory,
            None,
            config.auth.refresh_when_left,
        )
        .map_err(anyhow::Error::msg)?,
    );
    let shared = Arc::new(WorkerShared::from_config(
        config,
        &exe,
        Some(tokens.clone()),
    )?);
    if let Some(m) = crate::metrics::start(
        &shared.config.metrics,
        &shared.config.state_dir(),
        shared.metrics.clone(),
    )
    .map_err(anyhow::Error::msg)?
    {
        println!("metrics        http://{}/metrics", m.addr);
    }
    let platform = Platform::new(&url)
        .map_err(anyhow::Error::msg)?
        .with_tokens(tokens);

    let mut ids = Vec::new();
    for (name, mut s) in sessions {
        s.workspace = WORKSPACE.into();
        s.agent_profile = PROFILE.into();
        let queued = platform
            .queue(&s)
            .map_err(|e| anyhow::anyhow!("queueing {name}: {e}"))?;
        println!(
            "queued         {}  {name}: {}",
            short(&queued.id),
            s.source.title
        );
        ids.push((queued.id, name));
    }

    let shutdown = Shutdown::default();
    shutdown
        .on_signals()
        .context("cannot install the signal handlers")?;
    let worker = {
        let (sh, sd) = (shared.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("worker".into())
            .spawn(move || worker::run(sh, sd))?
    };

    // Each session's event stream, followed live: every activity and
    // state change is printed as it is committed, with its event number.
    let (tx, rx) = std::sync::mpsc::channel();
    for (id, _) in &ids {
        follow::spawn(&platform, id.clone(), tx.clone(), None);
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(a.timeout_seconds);
    let mut ended: BTreeSet<SessionId> = BTreeSet::new();
    let mut given_up = 0;
    while ended.len() + given_up < ids.len() && !shutdown.is_draining() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(Update::Event { session, id, what }) => {
                let text = match what {
                    What::Activity(act) => follow::line(&act),
                    What::State { from, to } => format!("state          {from} → {to}"),
                    What::Other(name) => format!("{name:<14} (not shown by this runner)"),
                };
                println!("{} {id:>4}  {text}", short(&session));
            }
            Ok(Update::End { session, .. }) => {
                ended.insert(session);
            }
            Ok(Update::Lost { session, why }) => {
                eprintln!("cannot follow {session} any more: {why}");
                given_up += 1;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The finished sessions, read once each for the summary.
    let mut done: BTreeMap<SessionId, serde_json::Value> = BTreeMap::new();
    for id in &ended {
        match platform.session(id) {
            Ok(view) => {
                done.insert(id.clone(), view);
            }
            Err(e) => eprintln!("cannot read {id}: {e}"),
        }
    }

    println!();
    println!(
        "{:<14} {:<22} {:<9} {:>5} {:>6} {:>5} {:>9}",
        "session", "name", "state", "steps", "allows", "denies", "duration"
    );
    for (id, name) in &ids {
        let Some(view) = done.get(id) else {
            println!("{:<14} {:<22} {:<9}", short(id), name, "unfinished");
            continue;
        };
        let acts: Vec<Activity> = view["activities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_value(e["activity"].clone()).ok())
            .collect();
        let steps = acts
            .iter()
            .filter(|a| matches!(a, Activity::Progress { .. }))
            .count();
        let (mut allows, mut denies) = (0, 0);
        for a in &acts {
            if let Activity::PolicyDecision { record } = a {
                match record.result {
                    protocol::policy::DecisionResult::Allow => allows += 1,
                    _ => denies += 1,
                }
            }
        }
        let t = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(view["session"][k].as_str().unwrap_or("")).ok()
        };
        let dur = match (t("created_at"), t("updated_at")) {
            (Some(a), Some(b)) => format!("{:.2}s", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "?".into(),
        };
        println!(
            "{:<14} {:<22} {:<9} {:>5} {:>6} {:>5} {:>9}",
            short(id),
            name,
            view["session"]["state"].as_str().unwrap_or("?"),
            steps,
            allows,
            denies,
            dur
        );
    }
    println!("\naudit log      {}", shared.config.audit_path().display());

    if a.keep && !shutdown.is_draining() {
        println!("control plane still serving at {url} (GET {url}/v1/sessions); Ctrl-C to stop");
        while !shutdown.is_draining() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    shutdown.abort();
    match worker.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => anyhow::bail!("the worker thread panicked"),
    }
    drop(cp);
    Ok(if done.len() == ids.len() { 0 } else { 1 })
}

fn read_sessions(dir: &std::path::Path) -> anyhow::Result<Vec<(String, NewSession)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot read the sessions directory {}; pass --sessions DIR",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let s: NewSession = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a session (NewSession JSON)", p.display()))?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, s))
        })
        .collect()
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}
