//! `GET /metrics` on its own small runtime thread: what a Prometheus
//! scrape reads. Nothing else is served there.

use super::{Metrics, MetricsSection, CONTENT_TYPE};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A running metrics endpoint.
#[derive(Debug)]
pub struct Serving {
    /// The address it listens on (the port picked, for port 0).
    pub addr: SocketAddr,
}

/// Serves `metrics` as `[metrics]` says, writing the address to
/// `<state_dir>/metrics.addr`; `None` when the section has no `listen`.
pub fn start(
    section: &MetricsSection,
    state_dir: &Path,
    metrics: Arc<Metrics>,
) -> Result<Option<Serving>, String> {
    let Some(addr) = section.address()? else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!("[metrics] cannot listen on {addr}: {e}; pick another listen address")
    })?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let written = tempfile::NamedTempFile::new_in(state_dir).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bound.to_string().as_bytes())?;
        f.persist(state_dir.join("metrics.addr"))
            .map_err(|e| e.error)
    });
    if let Err(e) = written {
        tracing::warn!(
            "cannot write {}: {e}",
            state_dir.join("metrics.addr").display()
        );
    }
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": {"type": "not_found", "message": "only GET /metrics is served here"}})),
            )
        })
        .with_state(metrics);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("the metrics endpoint cannot start: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app).await;
            });
        })
        .map_err(|e| e.to_string())?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(Some(Serving { addr: bound }))
}

async fn scrape(axum::extract::State(m): axum::extract::State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], m.encode())
}
