//! The forge client against a fake GitHub on loopback that speaks GitHub's
//! wire format: opening a PR (and finding the one already open), GitHub's
//! 422 variants turned into errors that name the branch, a revoked token,
//! rate limits, reviewers, a PR whose fork was deleted, and the URL rules
//! (https, or http only on loopback; no credentials in a URL).

use runner::forge::{
    github_api_base, parse_pr_url, parse_repo_url, Created, Forge, ForgeError, GitHub,
    NewPullRequest, RepoPath, Secret, SecretRef,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use test_support::fake_github::{FakeGitHub, FakePull, RateLimit, BOT_LOGIN};

const TOKEN: &str = "ghp_fakeTokenValue1234567890";
const MAIN_SHA: &str = "1111111111111111111111111111111111111111";
const FEATURE_SHA: &str = "2222222222222222222222222222222222222222";

type Branches = Arc<Mutex<BTreeMap<(String, String, String), String>>>;

/// A fake GitHub with `acme/widgets` (branches `main` and `feature`) and the
/// branch map behind it, so a test can add or move branches.
fn forge() -> (FakeGitHub, Branches) {
    let branches: Branches = Arc::new(Mutex::new(BTreeMap::new()));
    for (b, sha) in [("main", MAIN_SHA), ("feature", FEATURE_SHA)] {
        branches
            .lock()
            .unwrap()
            .insert(("acme".into(), "widgets".into(), b.into()), sha.into());
    }
    let map = branches.clone();
    let fake = FakeGitHub::start(
        TOKEN,
        Arc::new(move |o: &str, r: &str, b: &str| {
            map.lock()
                .unwrap()
                .get(&(o.to_string(), r.to_string(), b.to_string()))
                .cloned()
        }),
    );
    fake.add_repo(
        "acme",
        "widgets",
        "https://git.example/acme/widgets.git",
        "main",
    );
    (fake, branches)
}

/// A token as the runner holds one: resolved from a private file.
pub(super) fn secret(value: &str) -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("token");
    std::fs::write(&p, format!("{value}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    SecretRef {
        file: Some(p),
        ..Default::default()
    }
    .resolve("github token")
    .unwrap()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn client(fake: &FakeGitHub) -> GitHub {
    GitHub::new(&fake.api_base(), secret(TOKEN), http()).unwrap()
}

fn widgets() -> RepoPath {
    RepoPath {
        owner: "acme".into(),
        name: "widgets".into(),
    }
}

fn new_pr(head: &str, base: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Fix the widget".into(),
        body: "Made by the runner.".into(),
        head: head.into(),
        base: base.into(),
        draft: true,
    }
}

fn validation_errors(e: ForgeError) -> Vec<String> {
    match e {
        ForgeError::Validation { errors, .. } => errors,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn opening_a_pull_request_sends_githubs_headers_and_reads_the_answer() {
    let (fake, _) = forge();
    let gh = client(&fake);
    assert_eq!(gh.name(), "github");
    let created = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap();
    let Created::Opened(pr) = created else {
        panic!("expected a new PR, got {created:?}")
    };
    assert_eq!(pr.number, 1);
    assert_eq!(pr.state, "open");
    assert!(pr.draft);
    assert_eq!(pr.head_ref, "feature");
    assert_eq!(pr.head_sha, FEATURE_SHA);
    assert_eq!(pr.base_ref, "main");
    assert_eq!(pr.head_full_name.as_deref(), Some("acme/widgets"));
    assert_eq!(pr.base_clone_url, "https://git.example/acme/widgets.git");
    assert_eq!(
        pr.api_url,
        format!("{}/repos/acme/widgets/pulls/1", fake.api_base())
    );
    assert_eq!(
        pr.html_url,
        format!("{}/acme/widgets/pull/1", fake.web_base())
    );
    // The PR URL is self-consistent: it parses back to the fake's host.
    let (host, repo, n) = parse_pr_url(&pr.html_url).unwrap();
    assert_eq!(host, fake.web_base().trim_start_matches("http://"));
    assert_eq!((repo, n), (widgets(), 1));

    let held = fake.pulls();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].title, "Fix the widget");
    assert_eq!(held[0].body, "Made by the runner.");
    assert!(held[0].draft);

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.status),
        ("POST", "/repos/acme/widgets/pulls", 201)
    );
    assert_eq!(r.accept.as_deref(), Some("application/vnd.github+json"));
    assert_eq!(r.api_version.as_deref(), Some("2022-11-28"));
    assert_eq!(r.auth_scheme.as_deref(), Some("Bearer"));
    assert!(r.token_ok);
    assert!(
        r.user_agent
            .as_deref()
            .is_some_and(|u| u.starts_with("runner/")),
        "{r:?}"
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
}

#[test]
fn a_second_pr_for_the_same_head_is_the_one_already_open_and_the_post_is_not_retried() {
    let (fake, _) = forge();
    let gh = client(&fake);
    let first = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap();
    let again = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap();
    let Created::AlreadyOpen(pr) = &again else {
        panic!("expected the open PR, got {again:?}")
    };
    assert_eq!(pr, first.pull_request());
    assert_eq!(fake.pulls().len(), 1);
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("POST".into(), "/repos/acme/widgets/pulls".into(), 201),
            ("POST".into(), "/repos/acme/widgets/pulls".into(), 422),
            (
                "GET".into(),
                "/repos/acme/widgets/pulls?head=acme%3Afeature&state=open&per_page=100".into(),
                200
            ),
        ]
    );
}

#[test]
fn a_missing_head_or_base_branch_is_named_in_the_error() {
    let (fake, _) = forge();
    let gh = client(&fake);
    let e = gh
        .create_pull_request(&widgets(), &new_pr("no-such-branch", "main"))
        .unwrap_err();
    let text = e.to_string();
    let errors = validation_errors(e);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("`no-such-branch`"), "{text}");
    assert!(errors[0].contains("push it"), "{text}");

    let e = gh
        .create_pull_request(&widgets(), &new_pr("feature", "trunk"))
        .unwrap_err();
    let errors = validation_errors(e);
    assert!(
        errors[0].contains("base branch `trunk` does not exist in acme/widgets"),
        "{errors:?}"
    );
    assert!(fake.pulls().is_empty());
}

#[test]
fn a_branch_with_nothing_to_merge_says_so() {
    let (fake, branches) = forge();
    branches.lock().unwrap().insert(
        ("acme".into(), "widgets".into(), "same".into()),
        MAIN_SHA.into(),
    );
    let e = client(&fake)
        .create_pull_request(&widgets(), &new_pr("same", "main"))
        .unwrap_err();
    let errors = validation_errors(e);
    assert!(
        errors[0].contains("no commits between `main` and `same`"),
        "{errors:?}"
    );
}

#[test]
fn a_pr_without_a_title_is_refused_with_the_field_named() {
    let (fake, _) = forge();
    let mut pr = new_pr("feature", "main");
    pr.title.clear();
    let errors = validation_errors(
        client(&fake)
            .create_pull_request(&widgets(), &pr)
            .unwrap_err(),
    );
    assert!(errors[0].contains("`title` is required"), "{errors:?}");
}

#[test]
fn a_revoked_token_is_unauthorized_and_no_error_shows_it() {
    let (fake, _) = forge();
    let gh = client(&fake);
    gh.pull_request(&widgets(), 9).unwrap_err();
    fake.set_token("ghp_rotated");
    let e = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap_err();
    assert_eq!(e, ForgeError::Unauthorized);
    let (shown, debug) = (e.to_string(), format!("{e:?}"));
    assert!(shown.contains("new token"), "{shown}");
    assert!(!shown.contains(TOKEN) && !debug.contains(TOKEN));
    let last = fake.requests().pop().unwrap();
    assert_eq!((last.status, last.token_ok), (401, false));
    assert!(fake.pulls().is_empty());
}

#[test]
fn an_unknown_repository_or_pull_request_is_not_found() {
    let (fake, _) = forge();
    let gh = client(&fake);
    let other = RepoPath {
        owner: "acme".into(),
        name: "secret-plans".into(),
    };
    let e = gh
        .create_pull_request(&other, &new_pr("feature", "main"))
        .unwrap_err();
    assert_eq!(e, ForgeError::NotFound);
    assert!(e.to_string().contains("token has access"), "{e}");
    assert_eq!(
        gh.pull_request(&widgets(), 42).unwrap_err(),
        ForgeError::NotFound
    );
}

#[test]
fn reviewers_are_requested_and_a_refusal_is_rejected_not_fatal() {
    let (fake, _) = forge();
    fake.add_collaborator("acme", "widgets", "alice");
    let gh = client(&fake);
    let n = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap()
        .pull_request()
        .number;
    gh.request_reviewers(&widgets(), n, &["alice".into()])
        .unwrap();
    assert_eq!(fake.pulls()[0].requested_reviewers, vec!["alice"]);
    let before = fake.requests().len();
    gh.request_reviewers(&widgets(), n, &[]).unwrap();
    assert_eq!(fake.requests().len(), before, "no reviewers, no request");

    let e = gh
        .request_reviewers(&widgets(), n, &["mallory".into()])
        .unwrap_err();
    let ForgeError::Rejected(why) = &e else {
        panic!("expected Rejected, got {e:?}")
    };
    assert!(
        why.contains("mallory") && why.contains("collaborators"),
        "{why}"
    );
    let e = gh
        .request_reviewers(&widgets(), n, &[BOT_LOGIN.into()])
        .unwrap_err();
    assert!(
        matches!(&e, ForgeError::Rejected(w) if w.contains("author")),
        "{e:?}"
    );
    assert_eq!(fake.pulls()[0].requested_reviewers, vec!["alice"]);
    assert_eq!(
        gh.request_reviewers(&widgets(), 99, &["alice".into()])
            .unwrap_err(),
        ForgeError::NotFound
    );
}

#[test]
fn a_pull_request_is_read_with_its_head_even_when_the_fork_is_gone() {
    let (fake, _) = forge();
    let mut gone = FakePull::open("acme", "widgets", "patch-1", FEATURE_SHA, "main");
    gone.head_owner = "someone".into();
    let n_gone = fake.add_pull(gone);
    let mut fork = FakePull::open("acme", "widgets", "topic", MAIN_SHA, "main");
    fork.head_owner = "contrib".into();
    fork.head_repo = Some((
        "contrib/widgets".into(),
        "https://git.example/contrib/widgets.git".into(),
    ));
    fork.maintainer_can_modify = true;
    let n_fork = fake.add_pull(fork);
    let gh = client(&fake);

    let pr = gh.pull_request(&widgets(), n_gone).unwrap();
    assert_eq!(pr.head_ref, "patch-1");
    assert_eq!(pr.head_sha, FEATURE_SHA);
    assert_eq!((pr.head_clone_url, pr.head_full_name), (None, None));
    assert_eq!(pr.base_clone_url, "https://git.example/acme/widgets.git");

    let pr = gh.pull_request(&widgets(), n_fork).unwrap();
    assert_eq!(pr.number, n_fork);
    assert_eq!(pr.head_full_name.as_deref(), Some("contrib/widgets"));
    assert_eq!(
        pr.head_clone_url.as_deref(),
        Some("https://git.example/contrib/widgets.git")
    );
    assert!(pr.maintainer_can_modify);
    assert_eq!(pr.base_ref, "main");
}

#[test]
fn rate_limits_come_back_with_the_wait_and_nothing_is_retried() {
    let (fake, _) = forge();
    let gh = client(&fake);
    fake.rate_limit_next(RateLimit::Primary {
        reset_in_seconds: 120,
    });
    let e = gh
        .create_pull_request(&widgets(), &new_pr("feature", "main"))
        .unwrap_err();
    let ForgeError::RateLimited {
        retry_after_seconds: Some(s),
    } = e
    else {
        panic!("expected a rate limit with a wait, got {e:?}")
    };
    assert!((110..=120).contains(&s), "{s}");
    assert!(e.to_string().contains("nothing was retried"), "{e}");

    fake.rate_limit_next(RateLimit::Secondary {
        status: 429,
        retry_after: 30,
    });
    assert_eq!(
        gh.pull_request(&widgets(), 1).unwrap_err(),
        ForgeError::RateLimited {
            retry_after_seconds: Some(30)
        }
    );
    fake.rate_limit_next(RateLimit::Secondary {
        status: 403,
        retry_after: 7,
    });
    assert_eq!(
        gh.pull_request(&widgets(), 1).unwrap_err(),
        ForgeError::RateLimited {
            retry_after_seconds: Some(7)
        }
    );
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
    assert!(fake.pulls().is_empty());
}

#[test]
fn the_fake_refuses_what_github_refuses() {
    let (fake, _) = forge();
    let url = format!("{}/repos/acme/widgets/pulls/1", fake.api_base());
    let get = |headers: &[(&str, &str)]| {
        let mut r = http().get(&url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let auth = format!("Bearer {TOKEN}");
    let full = [
        ("authorization", auth.as_str()),
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
        ("user-agent", "test"),
    ];
    let (status, body) = get(&full[..3]);
    assert_eq!(status, 403);
    assert!(body.contains("User-Agent"), "{body}");
    let (status, body) = get(&[full[1], full[2], full[3], ("authorization", "Bearer wrong")]);
    assert_eq!(status, 401);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "Bad credentials");
    assert_eq!(v["status"], "401");
    assert_eq!(get(&[full[0], full[2], full[3]]).0, 415);
    assert_eq!(get(&[full[0], full[1], full[3]]).0, 400);
    let (status, body) = get(&full);
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"],
        "Not Found"
    );
    assert!(fake.requests().iter().all(|r| r.status != 200));
}

/// A one-shot HTTP server that answers with `status` and echoes the
/// request (headers included) in a long message, padded so the token
/// straddles the point where forge text is cut: a misbehaving proxy.
fn echo_server(status: &'static str, extra: &'static str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).replace(['\r', '\n'], " ");
            let at = req.find(TOKEN).unwrap_or(0);
            let pad = "a".repeat(295usize.saturating_sub(at));
            let body = serde_json::json!({ "message": format!("{pad}{req}{}", "z".repeat(2000)) })
                .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn an_echoed_token_is_redacted_and_redirects_are_not_followed() {
    let base = echo_server("500 Internal Server Error", "");
    let gh = GitHub::new(&base, secret(TOKEN), http()).unwrap();
    let e = gh.pull_request(&widgets(), 1).unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, ForgeError::Http(_)), "{e:?}");
    assert!(
        shown.contains("Bearer [reda"),
        "redacted before it is cut: {shown}"
    );
    assert!(!shown.contains(&TOKEN[..5]), "not even a prefix: {shown}");
    assert!(!shown.contains("zzzz"), "forge text is capped: {shown}");

    let base = echo_server("403 Forbidden", "");
    let gh = GitHub::new(&base, secret(TOKEN), http()).unwrap();
    let e = gh.pull_request(&widgets(), 1).unwrap_err();
    assert!(
        matches!(&e, ForgeError::Forbidden(m) if !m.contains(TOKEN)),
        "{e:?}"
    );
    assert!(e.to_string().contains("access to pull requests"), "{e}");

    let base = echo_server(
        "301 Moved Permanently",
        "location: https://elsewhere.example/\r\n",
    );
    let gh = GitHub::new(&base, secret(TOKEN), http()).unwrap();
    let e = gh.pull_request(&widgets(), 1).unwrap_err();
    assert!(e.to_string().contains("redirects are not followed"), "{e}");
}

#[test]
fn repository_urls_parse_with_or_without_git_and_a_trailing_slash() {
    let want = RepoPath {
        owner: "acme".into(),
        name: "widgets".into(),
    };
    for url in [
        "https://github.com/acme/widgets",
        "https://github.com/acme/widgets.git",
        "https://github.com/acme/widgets/",
        "https://GitHub.com/acme/widgets.git/",
    ] {
        assert_eq!(
            parse_repo_url(url).unwrap(),
            ("github.com".to_string(), want.clone()),
            "{url}"
        );
    }
    assert_eq!(
        parse_repo_url("https://ghes.corp.example:8443/team/tool.rs").unwrap(),
        (
            "ghes.corp.example:8443".to_string(),
            RepoPath {
                owner: "team".into(),
                name: "tool.rs".into()
            }
        )
    );
    assert_eq!(
        parse_repo_url("http://127.0.0.1:9418/acme/widgets.git")
            .unwrap()
            .0,
        "127.0.0.1:9418"
    );
    assert_eq!(want.full_name(), "acme/widgets");
}

#[test]
fn bad_repository_urls_are_refused_with_a_reason_and_no_credentials_echoed() {
    for (url, why) in [
        ("github.com/acme/widgets", "not a URL"),
        ("ssh://git@github.com/acme/widgets.git", "use the https URL"),
        ("http://github.com/acme/widgets", "loopback"),
        ("https://github.com/acme", "exactly"),
        ("https://github.com/acme/widgets/tree/main", "exactly"),
        ("https://github.com/acme//widgets", "empty segment"),
        ("https://github.com/acme/..", "exactly"),
        ("https://github.com/acme/.git", "may use only"),
        ("https://github.com/acme/...git", "may use only"),
        ("https://github.com/ac me/widgets", "may use only"),
        ("https://github.com/acme/widgets?x=1", "query"),
    ] {
        let e = parse_repo_url(url).unwrap_err();
        assert!(matches!(e, ForgeError::BadUrl(_)), "{url}: {e:?}");
        assert!(e.to_string().contains(why), "{url}: {e}");
    }
    let e = parse_repo_url(&format!(
        "https://x-access-token:{TOKEN}@github.com/acme/widgets"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("credentials"), "{e}");
    assert!(!e.to_string().contains(TOKEN), "{e}");
    let e = parse_repo_url(&format!("https://u:{TOKEN}@git hub.com/acme/widgets")).unwrap_err();
    assert!(!e.to_string().contains(TOKEN), "{e}");
}

#[test]
fn pull_request_urls_parse_and_odd_ones_are_refused() {
    assert_eq!(
        parse_pr_url("https://github.com/acme/widgets/pull/17").unwrap(),
        (
            "github.com".to_string(),
            RepoPath {
                owner: "acme".into(),
                name: "widgets".into()
            },
            17
        )
    );
    assert_eq!(
        parse_pr_url("https://ghes.example/acme/widgets/pull/3/")
            .unwrap()
            .2,
        3
    );
    for url in [
        "https://github.com/acme/widgets/pull/0",
        "https://github.com/acme/widgets/pull/017",
        "https://github.com/acme/widgets/pull/x",
        "https://github.com/acme/widgets/pulls/1",
        "https://github.com/acme/widgets/issues/1",
        "https://github.com/acme/widgets/pull/1/files",
        "https://github.com/acme/widgets",
        "http://github.com/acme/widgets/pull/1",
    ] {
        assert!(
            matches!(parse_pr_url(url), Err(ForgeError::BadUrl(_))),
            "{url}"
        );
    }
}

#[test]
fn the_api_base_is_https_or_loopback_http_and_defaults_per_host() {
    assert_eq!(github_api_base("github.com"), "https://api.github.com");
    assert_eq!(github_api_base("GitHub.com"), "https://api.github.com");
    assert_eq!(
        github_api_base("ghes.corp.example"),
        "https://ghes.corp.example/api/v3"
    );
    for ok in [
        "https://api.github.com",
        "https://ghes.corp.example/api/v3/",
        "http://127.0.0.1:8080",
        "http://127.8.9.10/api/v3",
        "http://[::1]:9000",
        "http://localhost:3000",
    ] {
        let gh = GitHub::new(ok, secret(TOKEN), http()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(!gh.api_base().ends_with('/'), "{ok}");
    }
    for (bad, why) in [
        ("http://api.github.com", "loopback"),
        ("http://10.0.0.1:8080", "loopback"),
        ("http://127.0.0.1.example.com", "loopback"),
        ("ftp://127.0.0.1/", "https"),
        ("https://user:pw@api.github.com", "credentials"),
        ("https://api.github.com/../x", "."),
        ("api.github.com", "not a URL"),
    ] {
        let e = GitHub::new(bad, secret(TOKEN), http())
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(matches!(e, ForgeError::BadUrl(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
}
