//! The HTTP(S) side of the receiver.

use super::seen::Seen;
use super::signature::SigningKey;
use super::{Wake, WebhookSection};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The event type that makes the worker poll now.
pub(crate) const SESSION_QUEUED: &str = "agent.session_queued";

struct Receiver {
    key: String,
    signing: Option<SigningKey>,
    tolerance: u64,
    seen: Mutex<Seen>,
    wake: Arc<Wake>,
    received: AtomicU64,
    duplicates: AtomicU64,
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// A running receiver.
#[derive(Debug)]
pub(crate) struct Running {
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
}

/// Checks the section and starts the receiver on its own runtime thread.
/// Writes the bound address to `<state_dir>/webhook.addr`.
pub(crate) fn start(
    section: &WebhookSection,
    state_dir: &Path,
    wake: Arc<Wake>,
) -> Result<Option<Running>, String> {
    let Some(listen) = section.listen.clone() else {
        return Ok(None);
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("[webhook] listen {listen:?} is not an address like 0.0.0.0:8443"))?;
    let key = section
        .key
        .as_ref()
        .ok_or("[webhook] key is not set: the shared X-One-Webhook-Key is required")?
        .resolve("[webhook] key")?
        .expose()
        .to_string();
    let signing = section
        .signing_secret
        .as_ref()
        .map(|s| {
            s.resolve("[webhook] signing_secret").and_then(|v| {
                SigningKey::parse(v.expose()).map_err(|e| format!("[webhook] signing_secret: {e}"))
            })
        })
        .transpose()?;
    let tls = if section.plain_http {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "[webhook] plain_http is allowed only on a loopback address, not {addr}; configure tls_cert and tls_key"
            ));
        }
        None
    } else {
        let (Some(cert), Some(keyf)) = (&section.tls_cert, &section.tls_key) else {
            return Err("[webhook] needs tls_cert and tls_key (PEM), or plain_http = true on a loopback address".into());
        };
        Some(tls_config(cert, keyf)?)
    };
    if !section.path.starts_with('/') {
        return Err("[webhook] path must start with /".into());
    }
    let receiver = Arc::new(Receiver {
        key,
        signing,
        tolerance: section.tolerance_seconds,
        seen: Mutex::new(Seen::load(
            state_dir.join("webhook-seen.json"),
            section.remember_ids,
        )),
        wake,
        received: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
    });
    let app = Router::new()
        .route(
            &section.path,
            get(status).head(status).options(handshake).post(post),
        )
        .layer(DefaultBodyLimit::max(section.max_body_bytes))
        .with_state(receiver);
    let std_listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("[webhook] cannot listen on {addr}: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let bound = std_listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Written whole or not at all (temp file, then rename): whoever waits
    // for the file never reads it half-written.
    let url = format!("{scheme}://{bound}{}", section.path);
    let written = tempfile::NamedTempFile::new_in(state_dir).and_then(|mut f| {
        std::io::Write::write_all(&mut f, url.as_bytes())?;
        f.persist(state_dir.join("webhook.addr"))
            .map_err(|e| e.error)
    });
    if let Err(e) = written {
        tracing::warn!(
            "cannot write {}: {e}",
            state_dir.join("webhook.addr").display()
        );
    }
    std::thread::Builder::new()
        .name("webhooks".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("the webhook receiver cannot start: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                match tls {
                    None => {
                        let _ = axum::serve(listener, app).await;
                    }
                    Some(cfg) => serve_tls(listener, app, cfg).await,
                }
            });
        })
        .map_err(|e| e.to_string())?;
    tracing::info!("webhook receiver on {scheme}://{bound}{}", section.path);
    Ok(Some(Running {
        addr: bound,
        scheme,
    }))
}

fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("[webhook] cannot read tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("[webhook] tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "[webhook] tls_cert {} holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[webhook] cannot read tls_key {}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("[webhook] the certificate and key do not work together: {e}"))?;
    Ok(Arc::new(cfg))
}

/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 256;

async fn serve_tls(listener: tokio::net::TcpListener, app: Router, cfg: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors, say: do not spin.
                tracing::warn!("webhook accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let accept =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let Ok(Ok(tls)) = accept.await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            // Slow clients cannot hold a connection: headers within 10 s.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// GET/HEAD: the verification handshake (2xx), with counters.
async fn status(State(r): State<Arc<Receiver>>) -> Response {
    Json(json!({
        "ok": true,
        "received": r.received.load(Ordering::SeqCst),
        "duplicates": r.duplicates.load(Ordering::SeqCst),
        "wakeups": r.wake.rings(),
    }))
    .into_response()
}

/// OPTIONS: the CloudEvents webhook validation handshake.
async fn handshake(headers: HeaderMap) -> Response {
    let mut r = StatusCode::OK.into_response();
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    r.headers_mut().insert("webhook-allowed-origin", origin);
    // The rate it takes: whatever the sender asks (events are deduplicated
    // and only wake the poll loop), or no limit.
    let rate = headers
        .get("webhook-request-rate")
        .filter(|v| v.to_str().is_ok_and(|s| s.parse::<u64>().is_ok()))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    r.headers_mut().insert("webhook-allowed-rate", rate);
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS, POST"),
    );
    r
}

async fn post(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    // 1. Who sends it: the shared key, compared in constant time.
    let given = h("x-one-webhook-key").unwrap_or("");
    let key_ok: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), r.key.as_bytes()).into();
    if !key_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-One-Webhook-Key is missing or wrong",
        );
    }
    // 2. What it is: a CloudEvent in structured mode (the whole event as
    // `application/cloudevents+json`) or in binary mode (its attributes
    // as `ce-*` headers, its data the body) — the HTTP binding says a
    // receiver should take both.
    let ct = h("content-type").unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let binary = headers.contains_key("ce-specversion");
    if media != "application/cloudevents+json" && !binary {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!(
                "send a CloudEvent: application/cloudevents+json (structured mode), or its attributes as ce-* headers (binary mode); got content type {ct:?} and no ce-specversion"
            ),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the event is larger than max_body_bytes",
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
    };
    // 3. Signed, when a signing secret is configured.
    if let Some(k) = &r.signing {
        if let Err(e) = k.verify(
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            &body,
            chrono::Utc::now().timestamp(),
            r.tolerance,
        ) {
            return error(StatusCode::UNAUTHORIZED, "bad_signature", &e);
        }
    }
    // 4. A CloudEvent with the attributes this receiver needs (`time` is
    // optional in CloudEvents 1.0).
    let v = if binary {
        match binary_event(&headers, &media, &body) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e),
        }
    } else {
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is not JSON",
            );
        };
        v
    };
    let attr = |n: &str| v.get(n).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    let missing: Vec<&str> = ["specversion", "id", "type", "source"]
        .into_iter()
        .filter(|n| attr(n).is_none())
        .collect();
    if !missing.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the CloudEvent lacks {}", missing.join(", ")),
        );
    }
    if attr("specversion") != Some("1.0") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "specversion must be 1.0",
        );
    }
    let event: cloudevents::Event = match serde_json::from_value(v) {
        Ok(e) => e,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("not a CloudEvent: {e}"),
            )
        }
    };
    use cloudevents::AttributesReader;
    r.received.fetch_add(1, Ordering::SeqCst);
    // 5. Once per id (per source): retries are expected.
    let id = format!("{}\u{0}{}", event.source(), event.id());
    let rr = r.clone();
    let first = tokio::task::spawn_blocking(move || {
        let mut seen = rr.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.first_time(&id)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match first {
        Ok(false) => {
            r.duplicates.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response();
        }
        Ok(true) => {}
        Err(e) => {
            tracing::warn!("the webhook id store could not be written: {e}");
        }
    }
    // 6. Wake the poll loop (coalesced); answer as soon as that is noted.
    if event.ty() == SESSION_QUEUED {
        r.wake.ring();
    }
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
}

/// The event of a binary-mode request as its structured JSON: every
/// `ce-*` header an attribute (percent-decoded, as the HTTP binding
/// encodes them), the content type its `datacontenttype`, the body its
/// data (JSON when the content type says so, else text, else base64).
fn binary_event(headers: &HeaderMap, media: &str, body: &[u8]) -> Result<Value, String> {
    let mut m = serde_json::Map::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let raw = value
            .to_str()
            .map_err(|_| format!("header ce-{attr} is not text"))?;
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| format!("header ce-{attr} is not percent-encoded UTF-8"))?;
        m.insert(attr.to_string(), Value::String(decoded.into_owned()));
    }
    if !media.is_empty() {
        m.insert("datacontenttype".into(), Value::String(media.to_string()));
    }
    if !body.is_empty() {
        let json = media == "application/json" || media.ends_with("+json");
        if json {
            let data: Value = serde_json::from_slice(body)
                .map_err(|_| "the body is not the JSON its content type says".to_string())?;
            m.insert("data".into(), data);
        } else if let Ok(text) = std::str::from_utf8(body) {
            m.insert("data".into(), Value::String(text.to_string()));
        } else {
            use base64::Engine;
            m.insert(
                "data_base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            );
        }
    }
    Ok(Value::Object(m))
}
