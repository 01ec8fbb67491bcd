//! Listing the repositories a token can see, against the fake GitHub:
//! every page followed through GitHub's `Link` header (100 a page), the
//! cap honoured (and said), GitHub's own headers on every page, and a
//! refused token named without the token.

use super::forge::secret;
use runner::forge::{Forge, ForgeError, GitHub};
use std::sync::Arc;
use test_support::fake_github::FakeGitHub;

const TOKEN: &str = "ghp_listingToken0123456789abcdef";

/// A fake holding `n` repositories `acme/repo-000`…, and a client for it.
fn forge(n: usize) -> (FakeGitHub, GitHub) {
    let fake = FakeGitHub::start(TOKEN, Arc::new(|_: &str, _: &str, _: &str| None));
    for i in 0..n {
        fake.add_repo(
            "acme",
            &format!("repo-{i:03}"),
            "https://git.example/x.git",
            "main",
        );
    }
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let gh = GitHub::new(&fake.api_base(), secret(TOKEN), http).unwrap();
    (fake, gh)
}

fn listed_pages(fake: &FakeGitHub) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/user/repos"))
        .map(|r| {
            assert_eq!(r.status, 200, "{r:?}");
            assert!(
                r.token_ok && r.auth_scheme.as_deref() == Some("Bearer"),
                "{r:?}"
            );
            assert_eq!(r.api_version.as_deref(), Some("2022-11-28"));
            r.path
        })
        .collect()
}

#[test]
fn every_page_is_followed_through_the_link_header() {
    let (fake, gh) = forge(250);
    let l = gh.list_repositories(1000).unwrap();
    assert_eq!(l.repositories.len(), 250);
    assert!(!l.truncated && l.skipped == 0, "{l:?}");
    assert_eq!(l.repositories[0].full_name(), "acme/repo-000");
    assert_eq!(l.repositories[249].full_name(), "acme/repo-249");
    let all: std::collections::BTreeSet<String> =
        l.repositories.iter().map(|r| r.full_name()).collect();
    assert_eq!(all.len(), 250, "no page twice");
    assert_eq!(
        listed_pages(&fake),
        [
            "/user/repos?per_page=100",
            "/user/repos?per_page=100&page=2",
            "/user/repos?per_page=100&page=3",
        ]
    );
}

#[test]
fn the_cap_stops_the_listing_and_says_so() {
    let (fake, gh) = forge(250);
    let l = gh.list_repositories(150).unwrap();
    assert_eq!(l.repositories.len(), 150);
    assert!(l.truncated);
    assert_eq!(listed_pages(&fake).len(), 2, "no third page fetched");
    // Exactly one page's worth: the cap falls on a page boundary.
    let (fake, gh) = forge(100);
    let l = gh.list_repositories(100).unwrap();
    assert_eq!((l.repositories.len(), l.truncated), (100, false));
    assert_eq!(listed_pages(&fake).len(), 1);
}

#[test]
fn one_page_and_no_repositories_are_fine() {
    let (_fake, gh) = forge(0);
    let l = gh.list_repositories(1000).unwrap();
    assert!(l.repositories.is_empty() && !l.truncated);
    let (_fake, gh) = forge(3);
    assert_eq!(gh.list_repositories(1000).unwrap().repositories.len(), 3);
}

#[test]
fn a_refused_token_is_an_error_without_the_token() {
    let (fake, gh) = forge(3);
    fake.set_token("ghp_rotated");
    let e = gh.list_repositories(1000).unwrap_err();
    assert_eq!(e, ForgeError::Unauthorized);
    assert!(!e.to_string().contains(TOKEN));
}

/// A one-route server answering every request with `[]` and this `Link`
/// header (`{base}` stands for its own API base); the requests it saw.
fn linking_server(link: &'static str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v3", l.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (b, s) = (base.clone(), seen.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let mut line = String::new();
            let mut r = BufReader::new(c.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            s.lock().unwrap().push(line.trim().to_string());
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let link = link.replace("{base}", &b);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlink: {link}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]"
            );
        }
    });
    (base, seen)
}

#[test]
fn a_next_page_off_the_api_base_or_seen_before_is_refused() {
    for (link, says) in [
        (
            r#"<http://127.0.0.2:9/user/repos?page=2>; rel="next""#,
            "not a new page under",
        ),
        (
            r#"<{base}/user/repos?per_page=100>; rel="next""#,
            "not a new page under",
        ),
        (
            r#"<{base}x/user/repos>; rel="next""#,
            "not a new page under",
        ),
    ] {
        let (base, seen) = linking_server(link);
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let gh = GitHub::new(&base, secret(TOKEN), http).unwrap();
        let e = gh.list_repositories(1000).unwrap_err();
        assert!(matches!(e, ForgeError::Decode(_)), "{link}: {e:?}");
        assert!(e.to_string().contains(says), "{link}: {e}");
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "{link}: only the first page was asked"
        );
    }
    // A Link without a next relation ends the listing.
    let (base, seen) = linking_server(
        r#"<{base}/user/repos?page=1>; rel="first", <{base}/user/repos?page=1>; rel="prev""#,
    );
    let gh = GitHub::new(&base, secret(TOKEN), reqwest::blocking::Client::new()).unwrap();
    assert!(gh.list_repositories(1000).unwrap().repositories.is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// A hostile forge on loopback: every page holds only names no URL can
/// carry (skipped) and links to one more page, forever. Answers how many
/// pages were asked for.
fn endless_forge(empty: bool) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v3", l.local_addr().unwrap());
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, n) = (base.clone(), asked.clone());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let page = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 2;
            let body = if empty {
                "[]".to_string()
            } else {
                r#"[{"name": "bad name!", "owner": {"login": "x y"}}]"#.to_string()
            };
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLink: <{b}/user/repos?per_page=100&page={page}>; rel=\"next\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, asked)
}

#[test]
fn a_forge_that_never_stops_saying_next_is_not_followed_forever() {
    for empty in [false, true] {
        let (base, asked) = endless_forge(empty);
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let gh = GitHub::new(&base, secret(TOKEN), http).unwrap();
        let l = gh.list_repositories(1000).unwrap();
        assert!(l.repositories.is_empty());
        let n = asked.load(std::sync::atomic::Ordering::SeqCst);
        if empty {
            assert_eq!(n, 1, "an empty page ends the listing");
        } else {
            assert!(l.truncated && n <= 15, "{n} pages, {l:?}");
        }
    }
}
