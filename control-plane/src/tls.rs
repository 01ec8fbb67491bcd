//! How the control plane is reached: HTTPS with the operator's certificate
//! and key (rustls on ring, the same TLS stack as the runner), or plain
//! HTTP — only on a loopback address, or when the operator says that
//! something else encrypts the traffic (`--insecure-http`). Bearer tokens,
//! API keys and passwords cross this listener, so the default refuses to
//! send them in clear over a network.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

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

/// Handshakes in progress at once; more connections wait in the accept
/// queue.
const MAX_HANDSHAKES: usize = 64;

/// A client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that hands axum finished TLS connections. Handshakes run in
/// their own tasks, so a slow or silent client delays nobody else's.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` with `cfg`.
    pub fn new(tcp: TcpListener, cfg: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio::spawn(accept_loop(tcp, tokio_rustls::TlsAcceptor::from(cfg), tx));
        Ok(TlsListener {
            ready,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: tokio::sync::mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, say: do not spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // See `no_delay` in lib.rs: event streams need small writes sent at once.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY could not be set: {e}");
        }
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept loop ended (only when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
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

    /// A silent client (TCP connected, no ClientHello) does not hold up
    /// the next client's handshake: handshakes run off the accept path.
    #[tokio::test]
    async fn a_silent_client_does_not_delay_the_next_handshake() {
        use axum::serve::Listener;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let cfg = load(&cert, &key).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut l = TlsListener::new(tcp, cfg).unwrap();
        let addr = l.local_addr().unwrap();

        let _silent = TcpStream::connect(addr).await.unwrap();
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
        let talk = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(b"ping").await.unwrap();
            let mut back = [0u8; 4];
            tls.read_exact(&mut back).await.unwrap();
            back
        });
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), l.accept())
            .await
            .expect("the second client was accepted while the first stayed silent");
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        conn.write_all(b"pong").await.unwrap();
        assert_eq!(&talk.await.unwrap(), b"pong");
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
