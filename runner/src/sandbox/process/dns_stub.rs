//! The sandbox's resolver: a DNS stub that refuses every name and
//! remembers which names were asked for.
//!
//! Inside the sandbox's network namespace there is nothing to resolve
//! against: a lookup would fail with a bare "Temporary failure in name
//! resolution" (or hang on a nameserver it cannot reach), and nothing would
//! tell the agent that the sandbox, not the internet, said no. So the
//! sandbox's `/etc/resolv.conf` names `127.0.0.1` ([`RESOLV_CONF`]), where
//! the sandbox's pid 1 — outside Landlock and seccomp, but inside the
//! namespace, with no route anywhere — answers every query at once with
//! REFUSED and reports each new name on the status descriptor. The runner
//! turns those names into a `sandbox_notes` entry.
//!
//! Only UDP is served: Landlock forbids the command any TCP connection but
//! to the proxy port, and a REFUSED answer is never truncated, so no
//! resolver falls back to TCP.
//!
//! What a query carries is untrusted. The parser reads only the header and
//! the question, with bounds checks at every step; names are capped
//! ([`MAX_NAMES`], a name's wire length is at most 255 bytes) and reduced
//! to letters, digits, `-` and `_` before they leave the stub.

use std::collections::BTreeSet;
use std::net::UdpSocket;

/// What the sandbox's `/etc/resolv.conf` says: the stub on loopback, one
/// quick attempt.
pub(crate) const RESOLV_CONF: &str = "# Written by the runner: the network is off or goes through the runner's proxy.\n# This resolver refuses every name, and the runner reports the names in sandbox_notes.\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n";

/// Most distinct names reported per command; more only set the overflow
/// mark.
pub(crate) const MAX_NAMES: usize = 16;

/// Longest name kept, characters (a DNS name's wire form is at most 255
/// bytes, so 253 characters written out).
pub(crate) const MAX_NAME_LEN: usize = 253;

/// Prefix of a status line that reports a name.
pub(crate) const STATUS_NAME: &str = "dns ";

/// Status line (whole) saying more names were asked for than reported.
pub(crate) const STATUS_MORE: &str = "dns-more";

const HEADER: usize = 12;
const RCODE_FORMERR: u8 = 1;
const RCODE_REFUSED: u8 = 5;

/// A query's question, as far as the stub needs it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    /// The query's id, echoed in the answer.
    pub id: u16,
    /// Opcode and RD bits of the query's flags, echoed.
    pub flags: u16,
    /// The question section (name, type, class), echoed verbatim.
    pub question: &'a [u8],
    /// The name, written out and sanitised; empty for the root.
    pub name: String,
}

/// Why a packet is not a query the stub answers with REFUSED.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Too short for a header, or itself a response: dropped.
    Drop,
    /// A header, but no single well-formed question: FORMERR with this id.
    FormErr(u16, u16),
}

/// Parses the header and the single question of a DNS query.
pub(crate) fn parse(packet: &[u8]) -> Result<Query<'_>, Malformed> {
    if packet.len() < HEADER {
        return Err(Malformed::Drop);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 != 0 {
        // A response: never answered (no loops with another stub).
        return Err(Malformed::Drop);
    }
    // Opcode (bits 11–14) and RD (bit 8) are echoed.
    let echo = flags & 0x7900;
    let formerr = Malformed::FormErr(id, echo);
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    if qdcount != 1 {
        return Err(formerr);
    }
    let mut at = HEADER;
    let mut name = String::new();
    loop {
        let Some(&len) = packet.get(at) else {
            return Err(formerr);
        };
        at += 1;
        if len == 0 {
            break;
        }
        // No compression pointers (or reserved label types) in a question
        // the stub accepts; labels are at most 63 bytes.
        if len > 63 {
            return Err(formerr);
        }
        let end = at + len as usize;
        let Some(label) = packet.get(at..end) else {
            return Err(formerr);
        };
        // 255 bytes on the wire at most, with the final zero.
        if end - HEADER > 254 {
            return Err(formerr);
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|&b| sanitise(b)));
        at = end;
    }
    // Type and class.
    let end = at + 4;
    if packet.len() < end {
        return Err(formerr);
    }
    name.truncate(MAX_NAME_LEN);
    Ok(Query {
        id,
        flags: echo,
        question: &packet[HEADER..end],
        name,
    })
}

/// A name's byte as the report shows it: ASCII letters (lower case),
/// digits, `-` and `_`; anything else is `?`.
fn sanitise(b: u8) -> char {
    match b {
        b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => b as char,
        b'A'..=b'Z' => (b + 32) as char,
        _ => '?',
    }
}

/// Whether `name` is one the stub could have reported (the runner checks
/// what it reads back, and keeps nothing else).
pub(crate) fn is_reported_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'?' | b'.'))
}

/// The answer to `q`: same id and question, REFUSED, nothing else.
pub(crate) fn refused(q: &Query<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + q.question.len());
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, the query's opcode and RD, RA (so resolvers do not retry
    // elsewhere for want of recursion), REFUSED.
    let flags = 0x8000 | q.flags | 0x0080 | RCODE_REFUSED as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(q.question);
    out
}

/// The answer to a query whose question could not be read.
pub(crate) fn format_error(id: u16, flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8000 | flags | RCODE_FORMERR as u16).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// The names asked for so far, capped.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    names: BTreeSet<String>,
    overflowed: bool,
}

/// What recording a name changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new name, to report.
    New,
    /// The first name past the cap: report the overflow once.
    Overflow,
    /// Nothing new.
    Known,
}

impl Recorder {
    /// Records `name`.
    pub(crate) fn record(&mut self, name: &str) -> Recorded {
        if name.is_empty() || self.names.contains(name) {
            return Recorded::Known;
        }
        if self.names.len() >= MAX_NAMES {
            if self.overflowed {
                return Recorded::Known;
            }
            self.overflowed = true;
            return Recorded::Overflow;
        }
        self.names.insert(name.to_string());
        Recorded::New
    }
}

/// Answers every query on `sock` with REFUSED (FORMERR when the question
/// cannot be read; nothing for what is not a query) and calls `report`
/// with each status line to send: `dns NAME` for a new name,
/// `dns-more` once past the cap. Returns when the socket fails.
pub(crate) fn serve(sock: &UdpSocket, report: &mut dyn FnMut(&str)) {
    let mut rec = Recorder::default();
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let answer = match parse(&buf[..n]) {
            Ok(q) => {
                match rec.record(&q.name) {
                    Recorded::New => report(&format!("{STATUS_NAME}{}", q.name)),
                    Recorded::Overflow => report(STATUS_MORE),
                    Recorded::Known => {}
                }
                refused(&q)
            }
            Err(Malformed::FormErr(id, flags)) => format_error(id, flags),
            Err(Malformed::Drop) => continue,
        };
        let _ = sock.send_to(&answer, from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (type A, class IN), id 0x1234, RD set.
    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn a_query_is_refused_with_its_question_echoed() {
        let q = query("PyPI.org");
        let parsed = parse(&q).unwrap();
        assert_eq!(parsed.name, "pypi.org");
        let a = refused(&parsed);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "QR set");
        assert_eq!(a[2] & 0x01, 0x01, "RD echoed");
        assert_eq!(a[3] & 0x0f, RCODE_REFUSED);
        assert_eq!(&a[4..6], &[0, 1]);
        assert_eq!(&a[12..], &q[12..]);
    }

    #[test]
    fn malformed_packets_are_dropped_or_formerr_never_a_panic() {
        assert_eq!(parse(&[1, 2, 3]), Err(Malformed::Drop));
        let mut resp = query("a.b");
        resp[2] |= 0x80;
        assert_eq!(parse(&resp), Err(Malformed::Drop));
        let mut two = query("a.b");
        two[5] = 2;
        assert!(matches!(parse(&two), Err(Malformed::FormErr(0x1234, _))));
        // A label running past the end, a pointer, no type/class.
        let mut q = query("a.b");
        q.truncate(14);
        q[12] = 60;
        assert!(matches!(parse(&q), Err(Malformed::FormErr(..))));
        let mut q = query("a.b");
        q[12] = 0xc0;
        assert!(matches!(parse(&q), Err(Malformed::FormErr(..))));
        let mut q = query("a.b");
        q.truncate(q.len() - 2);
        assert!(matches!(parse(&q), Err(Malformed::FormErr(..))));
        // A name longer than 255 bytes on the wire.
        let long = vec!["x".repeat(63); 5].join(".");
        assert!(matches!(parse(&query(&long)), Err(Malformed::FormErr(..))));
        // Every prefix of a good query, and every byte value in a label.
        let good = query("example.com");
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        let mut odd = query("abc");
        for b in 0..=255u8 {
            odd[13] = b;
            if let Ok(q) = parse(&odd) {
                assert!(is_reported_name(&q.name), "{:?}", q.name);
            }
        }
        let mut e = format_error(7, 0x0100);
        assert_eq!(e[3] & 0x0f, RCODE_FORMERR);
        e.truncate(2);
        assert_eq!(e, vec![0, 7]);
    }

    #[test]
    fn names_are_sanitised_and_capped() {
        let q = query("a\nb.evil`$(x).com");
        let name = parse(&q).unwrap().name;
        assert_eq!(name, "a?b.evil???x?.com");
        assert!(is_reported_name(&name));
        let mut rec = Recorder::default();
        for i in 0..MAX_NAMES {
            assert_eq!(rec.record(&format!("h{i}.test")), Recorded::New);
        }
        assert_eq!(rec.record("h0.test"), Recorded::Known);
        assert_eq!(rec.record("one-more.test"), Recorded::Overflow);
        assert_eq!(rec.record("and-another.test"), Recorded::Known);
        assert_eq!(rec.record(""), Recorded::Known);
        let longest = format!("{}.{}", vec!["y".repeat(63); 3].join("."), "y".repeat(61));
        assert_eq!(parse(&query(&longest)).unwrap().name, longest);
        assert_eq!(longest.len(), MAX_NAME_LEN);
        let over = format!("{longest}y");
        assert!(parse(&query(&over)).is_err());
    }

    #[test]
    fn the_stub_answers_over_a_real_socket_and_survives_garbage() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || serve(&sock, &mut |line| tx.send(line.to_string()).unwrap()));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        for junk in [&[][..], &[0xff; 3][..], &[0; 12][..], &[0xab; 1400][..]] {
            client.send_to(junk, addr).unwrap();
        }
        client.send_to(&query("pypi.org"), addr).unwrap();
        let mut buf = [0u8; 1500];
        // The all-zero header (qdcount 0) gets FORMERR; then REFUSED.
        loop {
            let n = client.recv(&mut buf).unwrap();
            if buf[3] & 0x0f == RCODE_REFUSED {
                assert_eq!(&buf[12..n], &query("pypi.org")[12..]);
                break;
            }
        }
        assert_eq!(rx.recv().unwrap(), "dns pypi.org");
    }
}
