//! `control-plane`: the reference control plane as a service, and its
//! admin commands (users, OAuth clients, API keys).

use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The reference control plane: sessions, workers, claims and leases on a
/// SQLite file, over HTTP, with its own OAuth 2.0 authorization server.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// SQLite database file (created when missing; WAL mode).
    #[arg(long, default_value = "control-plane.db", global = true)]
    db: PathBuf,
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: String,
    /// A session whose lease expires this many times goes to `error`.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// How often expired leases are swept, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    sweep_ms: u64,
    /// How often due schedules are looked for, in milliseconds (a tick
    /// starts at most one run however many processes share the database).
    #[arg(long, default_value_t = 1000)]
    schedule_tick_ms: u64,
    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(long, default_value_t = 900)]
    access_token_seconds: u64,
    /// Lifetime of OAuth refresh tokens, in seconds (rotated at every use).
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    refresh_token_seconds: u64,
    /// Seconds a device sign-in's code (RFC 8628) waits for approval.
    #[arg(long, default_value_t = 600)]
    device_code_seconds: u64,
    /// Seconds a device polls the token endpoint at, at least (a faster
    /// poll is told `slow_down`).
    #[arg(long, default_value_t = 5)]
    device_interval_seconds: u64,
    /// Seconds before each retry of a failed webhook delivery, comma
    /// separated (after the last, the delivery is marked failed).
    #[arg(long, default_value = "0,60,300")]
    webhook_retry_schedule: String,
    /// Allow webhook subscriptions to loopback and private addresses.
    #[arg(long)]
    allow_private_webhooks: bool,
    /// The URL people and clients reach this control plane at (behind a
    /// proxy, say): the base of each agent's page (`target.url` of the
    /// Cloud Agents API and its webhooks). Default: `http://` and the
    /// address it listens on.
    #[arg(long)]
    public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (server certificate
    /// first); needs `--tls-key`. Under systemd: `%d/tls.crt` with
    /// `LoadCredential=tls.crt:…`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address: only when something
    /// else (a TLS-terminating proxy on the same host, a VPN) encrypts the
    /// traffic. Without TLS and without this flag, a non-loopback
    /// `--listen` is refused.
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_http: bool,
    /// Open connections from one address (an IPv6 /64) at most; beyond it
    /// new ones are closed. Default: a quarter of the connection cap (all
    /// but 128 of the descriptor limit), 512 at most. Behind a proxy on
    /// the same host every client is the proxy's address: raise it there.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_address: Option<u32>,
    /// How many live agents a team may have (its plan's limit; the default
    /// agent counts). Agents over it are listed unavailable and cannot be
    /// changed, get keys or start runs.
    #[arg(long, default_value_t = control_plane::DEFAULT_MAX_AGENTS)]
    max_agents: usize,
    /// A user whose workers run every user's sessions (the operator's
    /// service account; repeat for several). Without it a session runs
    /// only on workers its own user registered.
    #[arg(long = "worker-user", value_name = "USER")]
    worker_users: Vec<String>,
    /// How log lines on stderr are written: `text`, or `json` (one object
    /// a line, tracing's JSON layer). `CONTROL_PLANE_LOG` says which lines
    /// (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// A file holding the bearer token a scrape of `GET /metrics` must
    /// send (`Authorization: Bearer …`; one line of at least 16 bytes;
    /// refused unless only its owner may read it: 0600 or 0400). Without it
    /// `/metrics` is open: it carries counts only, never an id or a name.
    #[arg(long, value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the log subscriber (`CONTROL_PLANE_LOG` filters, default
/// `info`).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTROL_PLANE_LOG")
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: journald and files
        // keep the escape codes as text.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Users, OAuth clients and API keys.
    Admin {
        #[command(subcommand)]
        what: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Add a user; the password is read from the first line of stdin.
    UserAdd {
        /// User name.
        name: String,
        /// The user's email address (`userEmail` of the Cloud Agents API's
        /// `/v0/me`; null until set).
        #[arg(long)]
        email: Option<String>,
        /// The team the user belongs to (add it first with `team-add`);
        /// the user sees that team's agents, and no other's.
        #[arg(long, default_value = "default")]
        team: String,
    },
    /// A one-time link that signs USER in to the web pages (`/ui/`), good
    /// for 10 minutes; prints `{"path": "/ui/login/link?code=…"}`.
    WebLink {
        /// User name.
        user: String,
        /// Add the user (with a random password nobody is told) if missing.
        #[arg(long)]
        create: bool,
    },
    /// Add a team: users of one team see nothing of another's agents.
    /// Every database has the team `default`.
    TeamAdd {
        /// Team name: lowercase letters, digits, '-' and '_'.
        name: String,
    },
    /// Move a user into another team.
    UserSetTeam {
        /// User name.
        name: String,
        /// Team name.
        team: String,
    },
    /// Set or change a user's email address (users added without one, or
    /// before emails existed, have none).
    UserSetEmail {
        /// User name.
        name: String,
        /// The email address.
        email: String,
    },
    /// Register an OAuth client; a confidential one's secret is printed once.
    ClientAdd {
        /// Client id.
        id: String,
        /// Name shown on the consent page.
        #[arg(long)]
        name: String,
        /// Confidential (authenticates with a secret) instead of public.
        #[arg(long)]
        confidential: bool,
        /// Allowed redirect URI (repeat); loopback http URIs match any port.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
    },
    /// Create an API key (printed once) for a user. API keys queue and
    /// read sessions and call the Cloud Agents API (`/v0`); they are
    /// refused on agent-execution endpoints. Without `--user` the key
    /// belongs to nobody: it works on `/v1`, and `/v0` refuses it.
    ApiKeyAdd {
        /// A name for the key (`apiKeyName` of `/v0/me`).
        name: String,
        /// The user the key belongs to.
        #[arg(long)]
        user: Option<String>,
        /// Bind the key to this agent of the user's team (`agent_…`; needs
        /// `--user`): runs started with it run as the agent, and it can
        /// manage nothing.
        #[arg(long, requires = "user")]
        agent: Option<String>,
    },
    /// Sign a user out of a client: revoke every refresh token of theirs.
    /// Their workers release their sessions and stop within one access
    /// token lifetime.
    SignOut {
        /// User name.
        user: String,
        /// Client id.
        #[arg(long, default_value = "runner")]
        client: String,
    },
    /// Issue an access and refresh token pair for a user of a client without
    /// a browser sign-in, printed once as JSON (`access_token`,
    /// `refresh_token`, `expires_in`). `runner up` signs its worker in this
    /// way; anyone who can run this can already read the database.
    IssueTokens {
        /// User name.
        user: String,
        /// Client id.
        #[arg(long, default_value = "runner")]
        client: String,
    },
}

fn admin(store: &control_plane::Store, what: Admin) -> Result<String, String> {
    match what {
        Admin::TeamAdd { name } => {
            store.add_team(&name).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"team": name}).to_string())
        }
        Admin::UserSetTeam { name, team } => {
            store
                .set_user_team(&name, &team)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"user": name, "team": team}).to_string())
        }
        Admin::UserAdd { name, email, team } => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            store
                .add_user_in_team(
                    &name,
                    line.trim_end_matches(['\n', '\r']),
                    email.as_deref(),
                    &team,
                )
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"user": name, "email": email, "team": team}).to_string())
        }
        Admin::WebLink { user, create } => {
            let code = store
                .web_sign_in_link(&user, create)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                "path": format!("/ui/login/link?code={code}"),
                "expires_in": control_plane::LINK_TTL_MS / 1000,
            })
            .to_string())
        }
        Admin::UserSetEmail { name, email } => {
            store
                .set_user_email(&name, &email)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"user": name, "email": email}).to_string())
        }
        Admin::ClientAdd {
            id,
            name,
            confidential,
            redirect_uris,
        } => {
            let secret = store
                .add_client(&id, &name, confidential, &redirect_uris)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"client_id": id, "client_secret": secret}).to_string())
        }
        Admin::SignOut { user, client } => {
            let n = store
                .revoke_user(&user, &client)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"user": user, "client": client, "revoked": n}).to_string())
        }
        Admin::IssueTokens { user, client } => {
            let t = store
                .issue_tokens(&user, &client)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({
                "access_token": t.access_token,
                "refresh_token": t.refresh_token,
                "expires_in": t.expires_in,
            })
            .to_string())
        }
        Admin::ApiKeyAdd { name, user, agent } => {
            let k = match (&user, &agent) {
                (Some(u), Some(a)) => store.add_agent_api_key(&name, u, a),
                _ => store.add_api_key(&name, user.as_deref()),
            }
            .map_err(|e| e.to_string())?;
            if user.is_none() {
                eprintln!("control-plane admin: note: this key belongs to no user; it works on /v1, and the Cloud Agents API (/v0) refuses it; give --user USER for a key that works there");
            }
            Ok(serde_json::json!({
                "id": k.id,
                "name": k.name,
                "user": user,
                "agent_id": agent,
                "created_at": k.created_at,
                "api_key": k.key,
            })
            .to_string())
        }
    }
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    init_logs(a.log_format);
    let schedule: Vec<u64> = match a
        .webhook_retry_schedule
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().parse::<u64>())
        .collect()
    {
        Ok(v) => v,
        Err(_) => {
            eprintln!("control-plane: --webhook-retry-schedule is seconds separated by commas, e.g. 0,60,300");
            std::process::exit(2);
        }
    };
    // Tests only: a faster clock for schedules (the same in every process).
    let clock = match std::env::var("CONTROL_PLANE_TEST_CLOCK") {
        Ok(spec) => match control_plane::ScheduleClock::parse(&spec) {
            Ok(c) => {
                tracing::warn!("schedules run on a test clock ({spec}): CONTROL_PLANE_TEST_CLOCK is for tests only");
                c
            }
            Err(e) => {
                eprintln!("control-plane: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => control_plane::ScheduleClock::real(),
    };
    let metrics_token = match &a.metrics_token_file {
        None => None,
        Some(p) => match control_plane::read_metrics_token_file(p) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("control-plane: {e}");
                std::process::exit(2);
            }
        },
    };
    let store = match control_plane::Store::open(&a.db, a.max_attempts) {
        Ok(s) => s
            .with_metrics_token(metrics_token)
            .with_schedule_clock(clock)
            .with_schedule_tick(Duration::from_millis(a.schedule_tick_ms))
            .with_retry_schedule(schedule)
            .with_private_webhooks(a.allow_private_webhooks)
            .with_worker_users(a.worker_users.clone())
            .with_max_agents(a.max_agents)
            .with_auth_settings(control_plane::auth::AuthSettings {
                access_seconds: a.access_token_seconds.max(1),
                refresh_seconds: a.refresh_token_seconds.max(1),
                device_seconds: a.device_code_seconds.max(1),
                device_interval_seconds: a.device_interval_seconds.max(1),
                ..Default::default()
            }),
        Err(e) => {
            eprintln!("control-plane: {e}");
            std::process::exit(2);
        }
    };
    if let Some(Command::Admin { what }) = a.command {
        match admin(&store, what) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("control-plane admin: {e}");
                std::process::exit(2);
            }
        }
        return;
    }
    let (listener, addr) = match control_plane::bind(&a.listen).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "control-plane: cannot listen on {}: {e}; pick another --listen address",
                a.listen
            );
            std::process::exit(2);
        }
    };
    let transport = match control_plane::tls::choose(
        a.tls_cert.as_deref(),
        a.tls_key.as_deref(),
        a.insecure_http,
        addr,
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("control-plane: {e}");
            std::process::exit(2);
        }
    };
    if a.insecure_http && !addr.ip().is_loopback() {
        tracing::warn!("serving plain HTTP on {addr} (--insecure-http): tokens and API keys cross the network in clear unless something else encrypts it");
    }
    let scheme = transport.scheme();
    let public_url = a.public_url.unwrap_or_else(|| format!("{scheme}://{addr}"));
    match url::Url::parse(&public_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
        _ => {
            eprintln!("control-plane: --public-url {public_url:?} is not an http(s) URL without a query; give the URL clients reach this control plane at, e.g. https://agents.example.com");
            std::process::exit(2);
        }
    }
    let store = Arc::new(store.with_public_url(&public_url));
    println!("listening on {scheme}://{addr}");
    tracing::info!(%addr, public_url = %store.public_url(), "serving");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let sweep = Duration::from_millis(a.sweep_ms.max(10));
    let mut limits = control_plane::tls::Limits::default();
    if let Some(n) = a.max_connections_per_address {
        limits.max_connections_per_ip = n as usize;
    }
    let tls = match transport {
        control_plane::tls::Transport::Plain => None,
        control_plane::tls::Transport::Tls(cfg) => Some(cfg),
    };
    let served = control_plane::serve_with(listener, tls, limits, store, sweep, shutdown).await;
    if let Err(e) = served {
        eprintln!("control-plane: {e}");
        std::process::exit(1);
    }
}
