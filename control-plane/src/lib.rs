//! The reference control plane: the other side of the session contract,
//! small enough to run beside a worker on one machine (`runner up`) and
//! strict enough to test a worker against (claims, leases, transitions,
//! typed errors).
//!
//! [`store`] keeps the state in SQLite (WAL); [`api`] serves it over HTTP;
//! [`auth`] is the OAuth 2.0 authorization server and says who calls;
//! [`transitions`] is the one place session states change; [`serve`] runs
//! the API with the lease sweeper and the schedules' ticks ([`schedules`]
//! says what a schedule means), [`serve_tls`] the same over HTTPS
//! ([`tls`] decides between the two and loads the certificate).

#![deny(missing_docs)]

mod agent_configs;
mod api;
pub mod auth;
mod cloud_agents;
mod error;
mod metrics;
mod runs;
mod schedules;
mod store;
pub mod tls;
mod transitions;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use metrics::read_token_file as read_metrics_token_file;
pub use schedules::ScheduleClock;
pub use store::{
    ClaimProblem, ConflictKind, Missing, Store, StoreError, DEFAULT_MAX_AGENTS, LINK_TTL_MS,
};

/// Serves the API on `listener`, sweeps expired leases every `sweep` and
/// fires due schedules every [`Store::schedule_tick`] until `shutdown`
/// resolves. The listener's caps and timeouts are [`tls::Limits`]'
/// defaults.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    sweep: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        None,
        tls::Limits::default(),
        store,
        sweep,
        shutdown,
    )
    .await
}

/// [`serve`] over HTTPS: the same API and background work, each connection
/// a TLS one under `tls` ([`tls::load`]).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    store: Arc<Store>,
    sweep: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        Some(tls),
        tls::Limits::default(),
        store,
        sweep,
        shutdown,
    )
    .await
}

/// [`serve`] or [`serve_tls`] (`tls` given) under other listener
/// `limits`: tests shorten the timeouts, an operator may change the caps.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: tls::Limits,
    store: Arc<Store>,
    sweep: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep);
            loop {
                tick.tick().await;
                let s = store.clone();
                match tokio::task::spawn_blocking(move || s.sweep()).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!("{n} expired claim(s) voided"),
                    Ok(Err(e)) => tracing::warn!("sweep failed: {e}"),
                    _ => {}
                }
            }
        })
    };
    let delivery = tokio::spawn(webhooks::deliver(store.clone(), store.retry_schedule()));
    let schedules = tokio::spawn(fire_schedules(store.clone()));
    let r = tls::serve(listener, tls, api::router(store), limits, shutdown).await;
    sweeper.abort();
    delivery.abort();
    schedules.abort();
    r
}

/// Fires due schedules every [`Store::schedule_tick`], on the schedule
/// clock. Several processes on one file may all do so: a tick starts at
/// most one run however many of them reach it.
async fn fire_schedules(store: Arc<Store>) {
    let mut tick = tokio::time::interval(store.schedule_tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.fire_due(s.schedule_now())).await {
            Ok(Ok(f)) if f.ticks > 0 => {
                tracing::info!(
                    "{} schedule tick(s) fired, {} run(s) started",
                    f.ticks,
                    f.started
                )
            }
            Ok(Err(e)) => tracing::warn!("firing schedules failed: {e}"),
            _ => {}
        }
    }
}

/// Binds `addr` (port 0 picks one) and returns the listener with its address.
pub async fn bind(addr: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}
