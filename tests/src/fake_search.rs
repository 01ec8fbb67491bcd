//! A fake SearXNG instance on loopback: answers `GET /search?q=…&format=json`
//! with a body in SearXNG's real JSON shape (the fields of searx's webapp,
//! including `unresponsive_engines` and a result with `publishedDate:
//! null`), 403 when `format=json` is missing (as an instance whose
//! `search.formats` lacks json does), 404 elsewhere. It records every
//! query and counts every connection, so a test can tell that a denied
//! search never reached it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The query parameters of each `/search` request, in order.
type Queries = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A running fake; its thread ends with the test process.
pub struct FakeSearch {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    queries: Queries,
}

impl FakeSearch {
    /// Starts one on `ip` (e.g. `127.0.0.1`, or `127.0.0.2` for a host the
    /// address guard refuses).
    pub fn start(ip: &str) -> FakeSearch {
        let l = TcpListener::bind(format!("{ip}:0")).unwrap();
        let addr = l.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let queries: Queries = Arc::new(Mutex::new(Vec::new()));
        let (c, q) = (connections.clone(), queries.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let q = q.clone();
                std::thread::spawn(move || serve(s, &q));
            }
        });
        FakeSearch {
            addr,
            connections,
            queries,
        }
    }

    /// The base URL to configure as `[websearch] url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// TCP connections accepted so far (any request or none).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The query parameters of every `/search` request so far.
    pub fn queries(&self) -> Vec<Vec<(String, String)>> {
        self.queries.lock().unwrap().clone()
    }
}

fn serve(s: std::net::TcpStream, queries: &Mutex<Vec<Vec<(String, String)>>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let u = url::Url::parse(&format!("http://fake{target}")).unwrap();
    let params: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    let (status, body) = if u.path() != "/search" {
        (404, "Not Found".to_string())
    } else {
        queries.lock().unwrap().push(params.clone());
        if !params.iter().any(|(k, v)| k == "format" && v == "json") {
            (403, "Forbidden".to_string())
        } else {
            let q = params
                .iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (200, answer(&q).to_string())
        }
    };
    let mut s = s;
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        if status == 200 { "application/json" } else { "text/plain" },
        body.len()
    );
}

/// SearXNG's answer for `q`: two results (HTML in one's content, as
/// engines return it), answers, suggestions and an unresponsive engine.
fn answer(q: &str) -> serde_json::Value {
    serde_json::json!({
        "query": q,
        "number_of_results": 0,
        "results": [
            {"url": "https://docs.rs/landlock/latest/landlock/", "title": "landlock - Rust",
             "content": "Landlock is a <b>security</b> feature &amp; a sandbox",
             "engine": "duckduckgo", "parsed_url": ["https", "docs.rs", "/landlock/latest/landlock/", "", "", ""],
             "template": "default.html", "engines": ["duckduckgo", "bing"], "positions": [1, 2],
             "score": 3.5, "category": "general", "publishedDate": null},
            {"url": "https://wasmtime.dev/", "title": "Wasmtime",
             "content": "A fast and secure runtime for WebAssembly",
             "engine": "bing", "parsed_url": ["https", "wasmtime.dev", "/", "", "", ""],
             "template": "default.html", "engines": ["bing"], "positions": [2], "score": 0.5,
             "category": "general", "thumbnail": "", "img_src": ""}
        ],
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": ["rust sandboxing"],
        "unresponsive_engines": [["brave", "timeout"]]
    })
}
