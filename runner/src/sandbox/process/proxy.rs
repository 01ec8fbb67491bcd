//! The network proxy of mode `proxy`: the only way out of a sandbox whose
//! network namespace has no route anywhere.
//!
//! The sandbox's pid 1 listens on 127.0.0.1:[`PROXY_PORT`] inside the
//! namespace and forwards every connection to this proxy's Unix socket.
//! Each request — an HTTP `CONNECT host:port` or a plain-HTTP request in
//! absolute form — is its own `net.connect` decision: the proxy resolves the
//! name itself (the system resolver, never the sandbox's), hands every
//! address to the policy (which refuses loopback, private, link-local and
//! metadata addresses whatever the name), records the decision, and only
//! then connects — to an address the policy saw. A denial is a 403 whose
//! `text/plain` body names the refused host:port and the decision's reasons
//! (with a `Proxy-Status` header saying the same, RFC 9209), so `curl -v`
//! and pip show why; the proxy also keeps the denials ([`NetProxy::denied`])
//! for the Bash result's `sandbox_notes`. Programs that ignore the proxy variables cannot
//! connect at all: the namespace has no route and Landlock allows TCP only
//! to the proxy port.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The port the proxy is reached on inside the sandbox.
pub const PROXY_PORT: u16 = 3128;

/// Largest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// Most denials a proxy keeps (the note names a few of them anyway).
const MAX_DENIED: usize = 32;

/// A connection the proxy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The host the client asked for, as it sent it.
    pub host: String,
    /// The port it asked for.
    pub port: u16,
    /// The decision's reasons.
    pub reasons: Vec<String>,
}

/// A proxy listening on a Unix socket in a private directory.
pub struct NetProxy {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    listener: UnixListener,
    stop: AtomicBool,
    denied: Mutex<Vec<Denied>>,
}

impl NetProxy {
    /// Binds the socket in a new directory under `parent` (mode 0711; the
    /// socket 0666 so the sandbox's unprivileged uid can connect).
    pub fn bind(parent: &Path) -> std::io::Result<NetProxy> {
        let dir = tempfile::Builder::new()
            .prefix("runner-proxy.")
            .tempdir_in(parent)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let socket = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        Ok(NetProxy {
            _dir: dir,
            socket,
            listener,
            stop: AtomicBool::new(false),
            denied: Mutex::new(Vec::new()),
        })
    }

    /// The socket the sandbox connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The connections refused so far (distinct, at most a few dozen), for
    /// the notes of the command that asked for them.
    pub fn denied(&self) -> Vec<Denied> {
        self.denied.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Makes [`NetProxy::serve`] return (after the connections it is
    /// serving end): sets the flag and wakes the blocking accept.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.socket);
    }

    /// Serves connections until [`NetProxy::stop`]; each is decided by
    /// `decider` before anything is resolved or connected.
    pub fn serve(&self, decider: &dyn ConnectDecider) {
        std::thread::scope(|scope| loop {
            let accepted = self.listener.accept();
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok((conn, _)) => {
                    let denied = &self.denied;
                    scope.spawn(move || {
                        let _ = handle(conn, decider, denied);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        });
    }
}

/// A connection a sandboxed client asked the proxy for.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// Host name or IP literal, as the client sent it.
    pub host: &'a str,
    /// Port (80 for absolute-form HTTP without one).
    pub port: u16,
    /// `http` (absolute-form request) or `https` (CONNECT).
    pub scheme: &'a str,
    /// The request's method (`CONNECT` for tunnels).
    pub method: &'a str,
}

/// Decides the proxy's connections. Defined here, beside the proxy, so the
/// sandbox does not reach up into the policy layer: the tool that starts
/// the proxy supplies the policy-backed implementation. An implementation
/// must record every decision it makes (trust rule 4) and decide the host
/// before anything is resolved; `tools::PolicyConnect` does both through
/// the session's policy gate.
pub trait ConnectDecider: Sync {
    /// The addresses the connection may go to (nothing may be resolved
    /// before the host itself is allowed), or the reasons it may not.
    fn decide(&self, req: &ConnectRequest<'_>) -> Result<Vec<std::net::SocketAddr>, Vec<String>>;
}

struct Request {
    method: String,
    host: String,
    port: u16,
    scheme: &'static str,
    /// For plain HTTP: the head rewritten to origin form, plus any body bytes
    /// already read.
    forward: Option<Vec<u8>>,
}

fn read_head(conn: &mut UnixStream) -> std::io::Result<(Vec<u8>, usize)> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, end + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

fn parse(buf: &[u8], head_len: usize) -> Result<Request, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("malformed request".into()),
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("");
    if method == "CONNECT" {
        let (host, port) = split_host_port(target, 443)?;
        return Ok(Request {
            method,
            host,
            port,
            scheme: "https",
            forward: None,
        });
    }
    let rest = target
        .strip_prefix("http://")
        .ok_or("only CONNECT and absolute http:// requests go through this proxy")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_host_port(authority, 80)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if name.starts_with("proxy-") || name == "connection" {
            continue;
        }
        head.push_str(h.name);
        head.push_str(": ");
        head.push_str(&String::from_utf8_lossy(h.value));
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut forward = head.into_bytes();
    forward.extend_from_slice(&buf[head_len..]);
    Ok(Request {
        method,
        host,
        port,
        scheme: "http",
        forward: Some(forward),
    })
}

fn split_host_port(authority: &str, default: u16) -> Result<(String, u16), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("bad IPv6 authority")?;
        let port = p
            .strip_prefix(':')
            .map(|p| p.parse())
            .unwrap_or(Ok(default));
        return Ok((h.to_string(), port.map_err(|_| "bad port")?));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().map_err(|_| "bad port")?)),
        None => Ok((authority.to_string(), default)),
    }
}

fn respond(conn: &mut UnixStream, status: &str, body: &str) {
    respond_with(conn, status, "", body);
}

fn respond_with(conn: &mut UnixStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The 403 of a denied connection: the body names the host:port and the
/// reasons; `Proxy-Status` (RFC 9209) carries the same as a header, which
/// clients show even for a refused CONNECT, whose body they drop.
fn deny(conn: &mut UnixStream, host: &str, port: u16, reasons: &[String]) {
    let why = reasons.join("; ");
    let body = format!("denied by policy: {host}:{port}: {why}\n");
    // A structured-field string: printable ASCII, `\` and `"` escaped.
    let details: String = format!("{host}:{port}: {why}")
        .chars()
        .take(1024)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .flat_map(|c| match c {
            '\\' | '"' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let header =
        format!("Proxy-Status: runner; error=http_request_denied; details=\"{details}\"\r\n");
    respond_with(conn, "403 Forbidden", &header, &body);
}

fn handle(
    mut conn: UnixStream,
    decider: &dyn ConnectDecider,
    denied: &Mutex<Vec<Denied>>,
) -> std::io::Result<()> {
    let (buf, head_len) = read_head(&mut conn)?;
    let req = match parse(&buf, head_len) {
        Ok(r) => r,
        Err(e) => {
            respond(&mut conn, "400 Bad Request", &format!("{e}\n"));
            return Ok(());
        }
    };
    // The host is decided before it is resolved; then every address it
    // resolved to.
    let target = ConnectRequest {
        host: &req.host,
        port: req.port,
        scheme: req.scheme,
        method: &req.method,
    };
    let addrs = match decider.decide(&target) {
        Ok(addrs) => addrs,
        Err(reasons) => {
            deny(&mut conn, &req.host, req.port, &reasons);
            if let Ok(mut d) = denied.lock() {
                let this = Denied {
                    host: req.host.clone(),
                    port: req.port,
                    reasons,
                };
                if d.len() < MAX_DENIED && !d.contains(&this) {
                    d.push(this);
                }
            }
            return Ok(());
        }
    };
    let Some(upstream) = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(10)).ok())
    else {
        respond(
            &mut conn,
            "502 Bad Gateway",
            "could not connect to any address of the host\n",
        );
        return Ok(());
    };
    let mut upstream = upstream;
    match &req.forward {
        None => {
            conn.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
            let rest = &buf[head_len..];
            if !rest.is_empty() {
                upstream.write_all(rest)?;
            }
        }
        Some(bytes) => upstream.write_all(bytes)?,
    }
    conn.set_read_timeout(None)?;
    let (mut c2, mut u2) = (conn.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut conn);
    let _ = conn.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Request {
        parse(s.as_bytes(), s.len()).unwrap()
    }

    #[test]
    fn connect_is_parsed() {
        let r = p("CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n");
        assert_eq!(
            (r.method.as_str(), r.host.as_str(), r.port, r.scheme),
            ("CONNECT", "example.com", 8443, "https")
        );
    }

    #[test]
    fn absolute_get_is_rewritten_to_origin_form_without_proxy_headers() {
        let r = p("GET http://h.test:8080/a?b=1 HTTP/1.1\r\nHost: h.test\r\nProxy-Authorization: x\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            (r.host.as_str(), r.port, r.scheme),
            ("h.test", 8080, "http")
        );
        let f = String::from_utf8(r.forward.unwrap()).unwrap();
        assert!(f.starts_with("GET /a?b=1 HTTP/1.1\r\n"), "{f}");
        assert!(!f.to_ascii_lowercase().contains("proxy-authorization"));
        assert!(f.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn ipv6_authority_and_garbage() {
        let r = p("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
        assert_eq!(r.host, "::1");
        assert!(parse(b"GET /relative HTTP/1.1\r\n\r\n", 26).is_err());
        assert!(parse(b"\x00\x01garbage\r\n\r\n", 13).is_err());
    }
}
