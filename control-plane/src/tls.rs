//! How the control plane is reached: HTTPS with the operator's certificate
//! and key (rustls on ring, the same TLS stack as the runner), or plain
//! HTTP — only on a loopback address, or when the operator says that
//! something else encrypts the traffic (`--insecure-http`). Bearer tokens,
//! API keys and passwords cross this listener, so the default refuses to
//! send them in clear over a network.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// What the listener speaks.
pub enum Transport {
    /// Plain HTTP (loopback, or `--insecure-http`).
    Plain,
    /// HTTPS with this server configuration.
    Tls(Arc<rustls::ServerConfig>),
}

impl Transport {
    /// The URL scheme clients use.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            Transport::Tls(_) => "https",
        }
    }
}

/// Decides the transport from the flags and the bound address: TLS when a
/// certificate and key are given (both or neither), else plain HTTP if the
/// address is loopback or `insecure_http` is set. The error says what to
/// do instead.
pub fn choose(
    cert: Option<&Path>,
    key: Option<&Path>,
    insecure_http: bool,
    addr: SocketAddr,
) -> Result<Transport, String> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Transport::Tls(load(c, k)?)),
        (Some(_), None) | (None, Some(_)) => Err(
            "--tls-cert and --tls-key go together: give both (PEM files), or neither for plain HTTP on a loopback address".into(),
        ),
        (None, None) if addr.ip().is_loopback() || insecure_http => Ok(Transport::Plain),
        (None, None) => Err(format!(
            "refusing to serve plain HTTP on {addr}: sign-ins, tokens and API keys would cross the network in clear; \
             give --tls-cert FILE --tls-key FILE (PEM), or listen on a loopback address (e.g. 127.0.0.1:8700) behind a TLS-terminating proxy, \
             or pass --insecure-http if something else encrypts the traffic"
        )),
    }
}

/// Reads a PEM certificate chain and private key into a server
/// configuration (TLS 1.2 and 1.3, ring's safe defaults).
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {} is not PEM certificates: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {} holds no certificate; give the PEM certificate chain, server certificate first",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "cannot read --tls-key {}: {e}; give the PEM private key of the certificate",
            key.display()
        )
    })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("the --tls-cert and --tls-key do not work together: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Caps and timeouts of the listener. A client can hold a descriptor
/// and a task only within these bounds, so idle or slow sockets cannot
/// exhaust descriptors, stall other clients' handshakes, or stop the
/// accept loop: beyond a cap a new connection is closed at once (and a
/// rate-limited warning says so), while accepting goes on.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at once, handshakes included. Keep it well below
    /// the process's descriptor limit (`LimitNOFILE=65536` in the unit).
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64 counts as one): a
    /// single source cannot take the whole of `max_connections`.
    pub max_connections_per_ip: usize,
    /// TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// TLS handshakes in progress from one address (/64): silent sockets
    /// from one source are dropped instead of queueing ahead of others.
    pub max_handshakes_per_ip: usize,
    /// A TLS client must send its first byte (the ClientHello) within this.
    pub first_byte_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A request's headers must arrive within this, counted from when the
    /// connection is ready for a request (so an idle keep-alive connection
    /// closes after it too). Bodies and responses have no such limit: an
    /// event stream is silent from the client for hours.
    pub header_timeout: Duration,
}

impl Default for Limits {
    /// Caps that fit the process's descriptor limit: the connections take
    /// at most all but [`RESERVED_DESCRIPTORS`] of it (16384 at most),
    /// one address at most a quarter of that (512 at most), so a low
    /// `ulimit -n` degrades into refused connections, not into `EMFILE`
    /// for everyone.
    fn default() -> Limits {
        let room = descriptor_limit()
            .saturating_sub(RESERVED_DESCRIPTORS)
            .max(16);
        let max_connections = room.min(16_384);
        Limits {
            max_connections,
            max_connections_per_ip: (max_connections / 4).clamp(4, 512),
            max_handshakes: 1024.min(max_connections),
            max_handshakes_per_ip: 32,
            first_byte_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Descriptors kept out of the connection cap: the database and its
/// WAL, outgoing webhook connections, logs.
pub const RESERVED_DESCRIPTORS: usize = 128;

/// The soft `RLIMIT_NOFILE` (1024 when it cannot be read).
fn descriptor_limit() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        usize::try_from(r.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    }
}

/// The key a per-address cap counts under: the address, an IPv4-mapped
/// IPv6 address as its IPv4 one, and an IPv6 address by its /64 (one
/// host usually has a whole /64 to pick addresses from).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Counts holders in total and per source address, under two caps.
struct Gate {
    max: usize,
    max_per_ip: usize,
    inner: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a [`Gate`] refused.
#[derive(Debug, PartialEq)]
enum Full {
    Total,
    PerIp,
}

/// A place in a [`Gate`], given back on drop.
struct Ticket {
    gate: Arc<Gate>,
    key: IpAddr,
}

impl Gate {
    fn new(max: usize, max_per_ip: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max,
            max_per_ip,
            inner: Mutex::new((0, HashMap::new())),
        })
    }

    fn enter(self: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, Full> {
        let key = source_key(ip);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 >= self.max {
            return Err(Full::Total);
        }
        let n = g.1.entry(key).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Full::PerIp);
        }
        *n += 1;
        g.0 += 1;
        Ok(Ticket {
            gate: self.clone(),
            key,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut g = self.gate.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if let Some(n) = g.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.key);
            }
        }
    }
}

/// A warning logged at most once per interval, with how many were held
/// back: an attacker (or a full descriptor table) must not flood the log.
struct RareWarn {
    what: &'static str,
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl RareWarn {
    const EVERY: Duration = Duration::from_secs(10);

    fn new(what: &'static str) -> RareWarn {
        RareWarn {
            what,
            last: Mutex::new(None),
            held: AtomicU64::new(0),
        }
    }

    fn warn(&self, detail: &dyn std::fmt::Display) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let held = self.held.swap(0, Ordering::Relaxed);
        if held > 0 {
            tracing::warn!(
                "{}: {detail} ({held} more like it in the last interval)",
                self.what
            );
        } else {
            tracing::warn!("{}: {detail}", self.what);
        }
    }
}

/// Whether an accept error means the process or system is out of
/// something (descriptors, memory) and the loop should back off, rather
/// than one connection failing (reset before it was accepted).
fn resource_exhausted(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Sets what every accepted connection needs: `TCP_NODELAY`, without
/// which an event stream's second small write waits for the client's
/// delayed ACK of the first (~40 ms on Linux, Nagle's algorithm), and
/// every `state` event after the first arrives that late.
fn prepare(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY could not be set: {e}");
    }
}

/// Serves `app` over HTTP/1.1 on `tcp` (over TLS with `tls`) until
/// `shutdown` resolves, then stops accepting and waits for the open
/// connections to finish their requests. The loop always accepts: each
/// connection runs in its own task (its TLS handshake too), under
/// `limits`; over a cap a connection is closed at once; an accept error
/// for want of descriptors or memory backs off (up to a second) instead
/// of spinning.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let conns = Gate::new(limits.max_connections, limits.max_connections_per_ip);
    let handshakes = Gate::new(limits.max_handshakes, limits.max_handshakes_per_ip);
    let refused = Arc::new(RareWarn::new("connection refused"));
    let accept_failed = RareWarn::new("accept failed");
    let limits = Arc::new(limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => { backoff = Duration::ZERO; x }
                Err(e) => {
                    if resource_exhausted(&e) {
                        accept_failed.warn(&format_args!(
                            "{e}; raise the descriptor limit (LimitNOFILE) or lower the connection caps"
                        ));
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tokio::time::sleep(backoff).await;
                    } else {
                        tracing::debug!("accept failed: {e}");
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let ticket = match conns.enter(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                refused.warn(&format_args!(
                    "{} open connections{}; closing the new one from {}",
                    match why {
                        Full::Total => limits.max_connections,
                        Full::PerIp => limits.max_connections_per_ip,
                    },
                    if why == Full::PerIp {
                        " from one address"
                    } else {
                        ""
                    },
                    peer.ip()
                ));
                continue;
            }
        };
        prepare(&stream);
        let (app, limits, watcher) = (app.clone(), limits.clone(), graceful.watcher());
        let (acceptor, handshakes, refused) =
            (acceptor.clone(), handshakes.clone(), refused.clone());
        tokio::spawn(async move {
            let _ticket = ticket;
            let Some(acceptor) = acceptor else {
                return connection(stream, app, &limits, watcher).await;
            };
            let place = match handshakes.enter(peer.ip()) {
                Ok(p) => p,
                Err(why) => {
                    refused.warn(&format_args!(
                        "{} TLS handshakes in progress{}; closing the new one from {}",
                        match why {
                            Full::Total => limits.max_handshakes,
                            Full::PerIp => limits.max_handshakes_per_ip,
                        },
                        if why == Full::PerIp {
                            " from one address"
                        } else {
                            ""
                        },
                        peer.ip()
                    ));
                    return;
                }
            };
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.first_byte_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return tracing::debug!("{peer} sent no TLS ClientHello in time"),
            }
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream))
                .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => return tracing::debug!("TLS handshake with {peer} timed out"),
            };
            drop(place);
            connection(tls, app, &limits, watcher).await
        });
    }
    drop(tcp);
    graceful.shutdown().await;
    Ok(())
}

/// One HTTP/1.1 connection: hyper with a timer, so a client that sends
/// half a request (or keeps a connection idle) is closed after
/// [`Limits::header_timeout`]; watched, so shutdown lets it finish its
/// request and then closes it.
async fn connection<I>(
    io: I,
    app: axum::Router,
    limits: &Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = b.serve_connection(
        hyper_util::rt::TokioIo::new(io),
        hyper_util::service::TowerToHyperService::new(app),
    );
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_or_when_asked() {
        let lan: SocketAddr = "192.0.2.7:8700".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8700".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:8700".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8700".parse().unwrap();
        for a in [lan, any] {
            let e = choose(None, None, false, a).err().expect("refused");
            assert!(
                e.contains("--tls-cert") && e.contains("--insecure-http"),
                "{e}"
            );
            assert!(matches!(choose(None, None, true, a), Ok(Transport::Plain)));
        }
        for a in [lo, lo6] {
            assert!(matches!(choose(None, None, false, a), Ok(Transport::Plain)));
        }
        let half = choose(Some(Path::new("/c.pem")), None, false, lo)
            .err()
            .unwrap();
        assert!(half.contains("go together"), "{half}");
    }

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A self-signed certificate for `localhost` and its server config.
    fn self_signed() -> (Arc<rustls::ServerConfig>, rcgen::CertifiedKey) {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        (load(&cert, &key).unwrap(), ck)
    }

    /// `/` answers "ok"; `/slow` streams "first", then after 1.5 s "second".
    fn app() -> axum::Router {
        use axum::routing::get;
        axum::Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    let s = futures_util::stream::unfold(0u8, |i| async move {
                        match i {
                            0 => Some((Ok::<_, std::io::Error>("first\n"), 1)),
                            1 => {
                                tokio::time::sleep(Duration::from_millis(1500)).await;
                                Some((Ok("second\n"), 2))
                            }
                            _ => None,
                        }
                    });
                    axum::body::Body::from_stream(s)
                }),
            )
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, limits: Limits) -> SocketAddr {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(serve(tcp, tls, app(), limits, std::future::pending()));
        addr
    }

    /// A TCP connection to `addr` from the loopback address `from`.
    async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        s.connect(addr).await.unwrap()
    }

    /// Sends a whole GET and returns the response (the connection closes).
    async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        io: &mut S,
        path: &str,
    ) -> String {
        io.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = io.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the server closes `io` within `within` (EOF or reset).
    async fn closed_within(io: &mut TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(within, io.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// A client that sends half a request (no blank line) is closed after
    /// the header timeout, not held open for ever.
    #[tokio::test]
    async fn half_a_request_is_closed_after_the_header_timeout() {
        let limits = Limits {
            header_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let addr = start(None, limits).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let t0 = Instant::now();
        assert!(
            closed_within(&mut c, Duration::from_secs(5)).await,
            "still open"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "closed too early"
        );
        let mut ok = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut ok, "/").await.ends_with("ok"));
    }

    /// A response that streams with long silences from the client outlives
    /// the header timeout: it only bounds reading a request's headers.
    #[tokio::test]
    async fn a_stream_outlives_the_header_timeout() {
        let limits = Limits {
            header_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let addr = start(None, limits).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        let r = get(&mut c, "/slow").await;
        assert!(r.contains("first") && r.contains("second"), "{r}");
    }

    /// Silent TCP sockets from one address (no ClientHello) neither delay
    /// another client's handshake nor stop the accept loop.
    #[tokio::test]
    async fn silent_sockets_from_one_address_do_not_delay_another_client() {
        let (cfg, ck) = self_signed();
        let limits = Limits {
            max_handshakes_per_ip: 4,
            ..Limits::default()
        };
        let addr = start(Some(cfg), limits).await;
        let mut silent = Vec::new();
        for _ in 0..200 {
            silent.push(connect_from("127.0.0.1", addr).await);
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let t0 = Instant::now();
        let tcp = connect_from("127.0.0.2", addr).await;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .unwrap();
        let took = t0.elapsed();
        assert!(get(&mut tls, "/").await.ends_with("ok"));
        assert!(took < Duration::from_secs(1), "handshake took {took:?}");
        // Those over the per-address cap were closed at once.
        let mut closed = 0;
        for s in silent.iter_mut().rev().take(10) {
            if closed_within(s, Duration::from_millis(500)).await {
                closed += 1;
            }
        }
        assert_eq!(closed, 10, "silent sockets over the cap were kept");
    }

    /// One address cannot hold more connections than its cap; another
    /// address still gets in, and a freed place is given again.
    #[tokio::test]
    async fn connections_per_address_are_capped() {
        let limits = Limits {
            max_connections_per_ip: 3,
            ..Limits::default()
        };
        let addr = start(None, limits).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from("127.0.0.1", addr).await);
        }
        let mut over = connect_from("127.0.0.1", addr).await;
        assert!(
            closed_within(&mut over, Duration::from_secs(2)).await,
            "the 4th was kept"
        );
        let mut other = connect_from("127.0.0.2", addr).await;
        assert!(get(&mut other, "/").await.ends_with("ok"));
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = connect_from("127.0.0.1", addr).await;
        assert!(get(&mut again, "/").await.ends_with("ok"));
    }

    /// Out of descriptors or memory backs off; a connection reset
    /// before it was accepted does not.
    #[test]
    fn only_exhaustion_backs_off_and_defaults_fit_the_descriptor_limit() {
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(resource_exhausted(&std::io::Error::from_raw_os_error(e)));
        }
        assert!(!resource_exhausted(&std::io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        let l = Limits::default();
        assert!(l.max_connections + RESERVED_DESCRIPTORS <= descriptor_limit().max(144));
        assert!(l.max_connections_per_ip <= l.max_connections);
    }

    #[test]
    fn a_v6_host_counts_by_its_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_key(m), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (conn, _) = l.accept().await.unwrap();
        prepare(&conn);
        assert!(conn.nodelay().unwrap(), "TCP_NODELAY is off");
    }

    #[test]
    fn unreadable_or_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = load(&cert, &key).err().unwrap();
        assert!(e.contains("--tls-cert") && e.contains("cert.pem"), "{e}");
        std::fs::write(&cert, "not pem").unwrap();
        let e = load(&cert, &key).err().unwrap();
        assert!(e.contains("holds no certificate"), "{e}");
    }
}
