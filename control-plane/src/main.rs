//! `control-plane`: the reference control plane as a service.

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The reference control plane: sessions, workers, claims and leases on a
/// SQLite file, over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// SQLite database file (created when missing; WAL mode).
    #[arg(long, default_value = "control-plane.db")]
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
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONTROL_PLANE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    let store = match control_plane::Store::open(&a.db, a.max_attempts) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("control-plane: {}", e.message);
            std::process::exit(2);
        }
    };
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
    println!("listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = control_plane::serve(
        listener,
        store,
        Duration::from_millis(a.sweep_ms.max(10)),
        shutdown,
    )
    .await
    {
        eprintln!("control-plane: {e}");
        std::process::exit(1);
    }
}
