//! A fake GitHub on loopback that speaks the real REST wire format (API
//! version 2022-11-28) for the pull-request calls the runner makes and its repository listing, so
//! the forge client and the end-to-end flows are tested against GitHub's
//! own status codes, headers and error bodies rather than a mock of our
//! client.
//!
//! Served under `/api/v3` (the GitHub Enterprise Server layout), so the
//! client's handling of an API base with a path is exercised too:
//!
//! - `POST /repos/{o}/{r}/pulls` — 201 + `Location` + the PR object; 422
//!   `missing_field` for title/head/base, `invalid` for a branch that does
//!   not exist, `custom` "A pull request already exists for o:b." and "No
//!   commits between base and head";
//! - `GET /repos/{o}/{r}/pulls/{n}`, `GET /repos/{o}/{r}/pulls?head=&state=`;
//! - `POST /repos/{o}/{r}/pulls/{n}/requested_reviewers` — 201, or 422 for
//!   a non-collaborator or the author;
//! - `GET /user/repos?per_page=&page=` — every repository it holds, paged
//!   with GitHub's `Link` header.
//!
//! It is stricter than GitHub in one way: GitHub defaults a missing
//! `Accept` or `X-GitHub-Api-Version`; the fake refuses them (415, 400) so
//! a client that forgets one is caught. A missing `User-Agent` gets
//! GitHub's 403 text page; a wrong token GitHub's 401 "Bad credentials".
//! Branch heads come from a closure the test supplies (a map, or a real
//! bare repository behind a git server).

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// Resolves `(owner, repo, branch)` to the branch's head commit, or `None`
/// when the branch does not exist.
pub type BranchLookup = Arc<dyn Fn(&str, &str, &str) -> Option<String> + Send + Sync>;

/// The login every created pull request is authored by (the token's user).
pub const BOT_LOGIN: &str = "runner-bot";

const DOCS: &str = "https://docs.github.com/rest/pulls/pulls";
const API_PREFIX: &str = "/api/v3";

/// A pull request the fake holds (created through the API or added by a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    /// Owner of the base repository.
    pub owner: String,
    /// Name of the base repository.
    pub repo: String,
    /// Its number; 0 in [`FakeGitHub::add_pull`] means "assign the next".
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body (description).
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    /// Draft flag.
    pub draft: bool,
    /// Head branch.
    pub head_ref: String,
    /// Head commit.
    pub head_sha: String,
    /// Owner of the head repository (the label's `owner:` part).
    pub head_owner: String,
    /// `(full_name, clone_url)` of the head repository; `None` is a deleted fork.
    pub head_repo: Option<(String, String)>,
    /// Base branch.
    pub base_ref: String,
    /// Base commit when it was opened.
    pub base_sha: String,
    /// Author login.
    pub author: String,
    /// Whether maintainers may push to the head.
    pub maintainer_can_modify: bool,
    /// Logins asked to review.
    pub requested_reviewers: Vec<String>,
    /// ISO 8601 creation time.
    pub created_at: String,
}

impl FakePull {
    /// An open, same-repository pull request with the usual defaults.
    pub fn open(owner: &str, repo: &str, head_ref: &str, head_sha: &str, base_ref: &str) -> Self {
        FakePull {
            owner: owner.into(),
            repo: repo.into(),
            number: 0,
            title: format!("Changes from {head_ref}"),
            body: String::new(),
            state: "open".into(),
            draft: false,
            head_ref: head_ref.into(),
            head_sha: head_sha.into(),
            head_owner: owner.into(),
            head_repo: None,
            base_ref: base_ref.into(),
            base_sha: "0".repeat(40),
            author: "octocat".into(),
            maintainer_can_modify: false,
            requested_reviewers: Vec::new(),
            created_at: "2024-01-01T00:00:00Z".into(),
        }
    }
}

/// One request as the fake saw it: never the token, only whether it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query, without the `/api/v3` prefix.
    pub path: String,
    /// Status the fake answered.
    pub status: u16,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
    /// The `X-GitHub-Api-Version` header, if any.
    pub api_version: Option<String>,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The scheme word of `Authorization` (`Bearer`, `token`), if any.
    pub auth_scheme: Option<String>,
    /// Whether the credential matched the current token.
    pub token_ok: bool,
}

/// A rate limit the fake answers the next request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Primary limit spent: 403, `x-ratelimit-remaining: 0`, and
    /// `x-ratelimit-reset` this many seconds from now.
    Primary {
        /// Seconds until the window resets.
        reset_in_seconds: u64,
    },
    /// Secondary limit: this status (403 or 429) with `Retry-After`.
    Secondary {
        /// 403 or 429.
        status: u16,
        /// The `Retry-After` value in seconds.
        retry_after: u64,
    },
}

#[derive(Debug, Clone)]
struct FakeRepo {
    owner: String,
    name: String,
    clone_url: String,
    default_branch: String,
    collaborators: BTreeSet<String>,
}

struct Inner {
    token: String,
    repos: BTreeMap<(String, String), FakeRepo>,
    pulls: Vec<FakePull>,
    next_number: BTreeMap<(String, String), u64>,
    requests: Vec<Recorded>,
    rate_limit: Option<RateLimit>,
    base: String,
    /// The web base of `html_url`s, when it is not `base` (a test that
    /// serves the repositories on the forge's web host).
    web: Option<String>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    lookup: BranchLookup,
}

/// The running fake. Dropping it stops the server.
pub struct FakeGitHub {
    shared: Shared,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGitHub {
    /// Starts on `127.0.0.1:0`, accepting `token` (as `Bearer` or `token`).
    pub fn start(token: &str, branch_lookup: BranchLookup) -> FakeGitHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake GitHub");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                token: token.to_string(),
                repos: BTreeMap::new(),
                pulls: Vec::new(),
                next_number: BTreeMap::new(),
                requests: Vec::new(),
                rate_limit: None,
                base: format!("http://{addr}"),
                web: None,
            })),
            lookup: branch_lookup,
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-github".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, app).await;
                    });
                    let _ = stopped.await;
                });
                // Dropping the runtime ends the server and every open connection.
            })
            .expect("spawn fake GitHub");
        FakeGitHub {
            shared,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The REST API base to configure the client with (`http://127.0.0.1:<port>/api/v3`).
    pub fn api_base(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// The web base of `html_url`s (`http://127.0.0.1:<port>`), so a PR URL
    /// the fake returns parses back to this host.
    pub fn web_base(&self) -> String {
        let web = self.lock().web.clone();
        web.unwrap_or_else(|| format!("http://{}", self.addr))
    }

    /// Serves `html_url`s under `web` instead (GitHub's web host is the git
    /// host: a test whose repositories live on a git server points the
    /// pull-request URLs there, so they parse back to that host).
    pub fn set_web_base(&self, web: &str) {
        self.lock().web = Some(web.trim_end_matches('/').to_string());
    }

    /// Every pull request the fake holds, in creation order.
    pub fn pulls(&self) -> Vec<FakePull> {
        self.lock().pulls.clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Replaces the accepted token (the old one is revoked).
    pub fn set_token(&self, token: &str) {
        self.lock().token = token.to_string();
    }

    /// Makes a repository visible; others answer 404.
    pub fn add_repo(&self, owner: &str, name: &str, clone_url: &str, default_branch: &str) {
        self.lock().repos.insert(
            key(owner, name),
            FakeRepo {
                owner: owner.into(),
                name: name.into(),
                clone_url: clone_url.into(),
                default_branch: default_branch.into(),
                collaborators: BTreeSet::from([BOT_LOGIN.to_string()]),
            },
        );
    }

    /// Lets `login` be requested as a reviewer on the repository.
    pub fn add_collaborator(&self, owner: &str, name: &str, login: &str) {
        if let Some(r) = self.lock().repos.get_mut(&key(owner, name)) {
            r.collaborators.insert(login.to_string());
        }
    }

    /// Adds an existing pull request (number 0: the next free one) and
    /// returns its number.
    pub fn add_pull(&self, mut pull: FakePull) -> u64 {
        let mut g = self.lock();
        let k = key(&pull.owner, &pull.repo);
        let next = g.next_number.entry(k).or_insert(1);
        if pull.number == 0 {
            pull.number = *next;
        }
        *next = (*next).max(pull.number + 1);
        let n = pull.number;
        g.pulls.push(pull);
        n
    }

    /// Answers the next request with this rate limit (once).
    pub fn rate_limit_next(&self, limit: RateLimit) {
        self.lock().rate_limit = Some(limit);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn key(owner: &str, name: &str) -> (String, String) {
    (owner.to_ascii_lowercase(), name.to_ascii_lowercase())
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = uri
        .path()
        .strip_prefix(API_PREFIX)
        .unwrap_or("")
        .to_string();
    let shown = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let auth = h("authorization");
    let (scheme, credential) = match auth.as_deref().and_then(|a| a.split_once(' ')) {
        Some((s, c)) => (Some(s.to_string()), Some(c.to_string())),
        None => (auth.clone(), None),
    };
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    let token_ok = matches!(scheme.as_deref(), Some("Bearer" | "bearer" | "token"))
        && credential.as_deref() == Some(inner.token.as_str());
    let reply = if h("user-agent").is_none() {
        // GitHub's own answer: a text page, not JSON.
        (
            StatusCode::FORBIDDEN,
            [("content-type", "text/plain; charset=utf-8")],
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
        )
            .into_response()
    } else if let Some(limit) = inner.rate_limit.take() {
        rate_limited(limit)
    } else if !token_ok {
        if auth.is_none() {
            error(
                StatusCode::UNAUTHORIZED,
                "Requires authentication",
                "https://docs.github.com/rest",
            )
        } else {
            error(
                StatusCode::UNAUTHORIZED,
                "Bad credentials",
                "https://docs.github.com/rest",
            )
        }
    } else if !h("accept").is_some_and(|a| {
        a.split(',').any(|m| {
            let m = m.trim();
            m.starts_with("application/vnd.github") || m.starts_with("application/json")
        })
    }) {
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!(
                "Unsupported 'Accept' header: {:?}. Must accept 'application/json'.",
                h("accept").unwrap_or_default()
            ),
            "https://docs.github.com/v3/media",
        )
    } else if h("x-github-api-version").as_deref() != Some("2022-11-28") {
        error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Unsupported API version: {:?}; send X-GitHub-Api-Version: 2022-11-28",
                h("x-github-api-version").unwrap_or_default()
            ),
            "https://docs.github.com/rest/about-the-rest-api/api-versions",
        )
    } else {
        let query = Query::<BTreeMap<String, String>>::try_from_uri(&uri)
            .map(|q| q.0)
            .unwrap_or_default();
        route(&mut inner, &shared.lookup, &method, &path, &query, &body)
    };
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: shown,
        status: reply.status().as_u16(),
        accept: h("accept"),
        api_version: h("x-github-api-version"),
        user_agent: h("user-agent"),
        content_type: h("content-type"),
        auth_scheme: scheme,
        token_ok,
    });
    reply
}

fn route(
    inner: &mut Inner,
    lookup: &BranchLookup,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Response {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs == ["user", "repos"] && method == Method::GET {
        return user_repos(inner, query);
    }
    let (owner, repo, rest) = match segs.as_slice() {
        ["repos", o, r, "pulls", rest @ ..] => (*o, *r, rest),
        _ => return not_found("https://docs.github.com/rest"),
    };
    let Some(r) = inner.repos.get(&key(owner, repo)).cloned() else {
        return not_found(&format!("{DOCS}#get-a-pull-request"));
    };
    match (method, rest) {
        (&Method::POST, []) => create(inner, lookup, &r, body),
        (&Method::GET, []) => list(inner, &r, query),
        (&Method::GET, [n]) => match find(inner, &r, n) {
            Some(i) => json_reply(StatusCode::OK, pull_json(inner, &inner.pulls[i])),
            None => not_found(&format!("{DOCS}#get-a-pull-request")),
        },
        (&Method::POST, [n, "requested_reviewers"]) => match find(inner, &r, n) {
            Some(i) => request_reviewers(inner, &r, i, body),
            None => not_found(&format!("{DOCS}#request-reviewers-for-a-pull-request")),
        },
        _ => not_found("https://docs.github.com/rest"),
    }
}

/// `GET /user/repos`: every repository the fake holds (the token's user
/// sees them all), by full name, `per_page` (default 30, at most 100) at
/// a time, with GitHub's `Link` header (`next`, `last`, `first`, `prev`).
fn user_repos(inner: &Inner, query: &BTreeMap<String, String>) -> Response {
    let doc =
        "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user";
    let number = |k: &str, default: usize| match query.get(k) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok(),
    };
    let (Some(per_page), Some(page)) = (number("per_page", 30), number("page", 1)) else {
        return error(StatusCode::BAD_REQUEST, "Invalid per_page or page", doc);
    };
    let per_page = per_page.clamp(1, 100);
    let page = page.max(1);
    let web = inner.web.clone().unwrap_or_else(|| inner.base.clone());
    let api = format!("{}{API_PREFIX}", inner.base);
    let all: Vec<&FakeRepo> = inner.repos.values().collect();
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|r| {
            let full = format!("{}/{}", r.owner, r.name);
            repo_json(
                &web,
                &api,
                &full,
                &r.clone_url,
                &r.default_branch,
                "2024-01-01T00:00:00Z",
            )
        })
        .collect();
    let last = all.len().div_ceil(per_page).max(1);
    let link = |p: usize, rel: &str| {
        format!("<{api}/user/repos?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    let mut resp = json_reply(StatusCode::OK, Value::Array(items));
    if !links.is_empty() {
        if let Ok(v) = links.join(", ").parse() {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

fn find(inner: &Inner, r: &FakeRepo, n: &str) -> Option<usize> {
    let n: u64 = n.parse().ok()?;
    inner
        .pulls
        .iter()
        .position(|p| key(&p.owner, &p.repo) == key(&r.owner, &r.name) && p.number == n)
}

fn create(inner: &mut Inner, lookup: &BranchLookup, r: &FakeRepo, body: &[u8]) -> Response {
    let doc = format!("{DOCS}#create-a-pull-request");
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", &doc);
    };
    let text = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let (title, head, base) = (text("title"), text("head"), text("base"));
    let missing: Vec<Value> = [("title", &title), ("head", &head), ("base", &base)]
        .iter()
        .filter(|(_, val)| val.is_empty())
        .map(|(f, _)| json!({"resource": "PullRequest", "code": "missing_field", "field": f}))
        .collect();
    if !missing.is_empty() {
        return validation(missing, &doc);
    }
    let (head_owner, head_branch) = match head.split_once(':') {
        Some((o, b)) => (o.to_string(), b.to_string()),
        None => (r.owner.clone(), head.clone()),
    };
    let head_sha = lookup(&head_owner, &r.name, &head_branch);
    let base_sha = lookup(&r.owner, &r.name, &base);
    let mut invalid = Vec::new();
    if base_sha.is_none() {
        invalid.push(json!({"resource": "PullRequest", "field": "base", "code": "invalid"}));
    }
    if head_sha.is_none() {
        invalid.push(json!({"resource": "PullRequest", "field": "head", "code": "invalid"}));
    }
    let (Some(head_sha), Some(base_sha)) = (head_sha, base_sha) else {
        return validation(invalid, &doc);
    };
    let duplicate = inner.pulls.iter().any(|p| {
        key(&p.owner, &p.repo) == key(&r.owner, &r.name)
            && p.state == "open"
            && p.head_owner.eq_ignore_ascii_case(&head_owner)
            && p.head_ref == head_branch
            && p.base_ref == base
    });
    if duplicate {
        let message = format!("A pull request already exists for {head_owner}:{head_branch}.");
        return validation(
            vec![json!({"resource": "PullRequest", "code": "custom", "message": message})],
            &doc,
        );
    }
    if head_sha == base_sha {
        let message = format!("No commits between {base} and {head}");
        return validation(
            vec![json!({"resource": "PullRequest", "code": "custom", "message": message})],
            &doc,
        );
    }
    let k = key(&r.owner, &r.name);
    let next = inner.next_number.entry(k).or_insert(1);
    let number = *next;
    *next += 1;
    let head_repo = if head_owner.eq_ignore_ascii_case(&r.owner) {
        (format!("{}/{}", r.owner, r.name), r.clone_url.clone())
    } else {
        let fork = format!("{head_owner}/{}", r.name);
        (fork.clone(), format!("{}/{fork}.git", inner.base))
    };
    let pull = FakePull {
        owner: r.owner.clone(),
        repo: r.name.clone(),
        number,
        title,
        body: text("body"),
        state: "open".into(),
        draft: v.get("draft").and_then(Value::as_bool).unwrap_or(false),
        head_ref: head_branch,
        head_sha,
        head_owner,
        head_repo: Some(head_repo),
        base_ref: base,
        base_sha,
        author: BOT_LOGIN.into(),
        maintainer_can_modify: v
            .get("maintainer_can_modify")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        requested_reviewers: Vec::new(),
        created_at: now_iso(),
    };
    let body = pull_json(inner, &pull);
    let location = body["url"].as_str().unwrap_or_default().to_string();
    inner.pulls.push(pull);
    let mut resp = json_reply(StatusCode::CREATED, body);
    if let Ok(v) = location.parse() {
        resp.headers_mut().insert("location", v);
    }
    resp
}

fn list(inner: &Inner, r: &FakeRepo, query: &BTreeMap<String, String>) -> Response {
    let state = query.get("state").map(String::as_str).unwrap_or("open");
    if !matches!(state, "open" | "closed" | "all") {
        return validation(
            vec![json!({"resource": "Issue", "field": "state", "code": "invalid"})],
            &format!("{DOCS}#list-pull-requests"),
        );
    }
    let head = query.get("head").map(|h| match h.split_once(':') {
        Some((o, b)) => (o.to_ascii_lowercase(), b.to_string()),
        None => (h.to_ascii_lowercase(), String::new()),
    });
    let items: Vec<Value> = inner
        .pulls
        .iter()
        .filter(|p| key(&p.owner, &p.repo) == key(&r.owner, &r.name))
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| match &head {
            None => true,
            Some((o, b)) => {
                p.head_owner.to_ascii_lowercase() == *o && (b.is_empty() || p.head_ref == *b)
            }
        })
        .filter(|p| query.get("base").is_none_or(|b| p.base_ref == *b))
        .map(|p| pull_json(inner, p))
        .collect();
    json_reply(StatusCode::OK, Value::Array(items))
}

fn request_reviewers(inner: &mut Inner, r: &FakeRepo, i: usize, body: &[u8]) -> Response {
    let doc =
        "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request";
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", doc);
    };
    let logins: Vec<String> = v
        .get("reviewers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if logins
        .iter()
        .any(|l| l.eq_ignore_ascii_case(&inner.pulls[i].author))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Review cannot be requested from pull request author.",
            doc,
        );
    }
    if logins.iter().any(|l| !r.collaborators.contains(l)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {}/{} repository.", r.owner, r.name),
            doc,
        );
    }
    for l in logins {
        if !inner.pulls[i].requested_reviewers.contains(&l) {
            inner.pulls[i].requested_reviewers.push(l);
        }
    }
    json_reply(StatusCode::CREATED, pull_json(inner, &inner.pulls[i]))
}

/// The PR object exactly as GitHub shapes it: every field its published
/// schema (`pull-request`, REST 2022-11-28) requires is present, with the
/// fake's own URLs, so a strict client or schema validator accepts it.
fn pull_json(inner: &Inner, p: &FakePull) -> Value {
    let web = inner.web.clone().unwrap_or_else(|| inner.base.clone());
    let api = format!("{}{API_PREFIX}", inner.base);
    let repo_api = format!("{api}/repos/{}/{}", p.owner, p.repo);
    let pull_api = format!("{repo_api}/pulls/{}", p.number);
    let issue_api = format!("{repo_api}/issues/{}", p.number);
    let html = format!("{web}/{}/{}/pull/{}", p.owner, p.repo, p.number);
    let base_repo = inner.repos.get(&key(&p.owner, &p.repo));
    let base_clone = base_repo.map(|r| r.clone_url.clone()).unwrap_or_default();
    let default_branch = base_repo.map_or("main", |r| r.default_branch.as_str());
    let user = |login: &str| user_json(&web, &api, login);
    let links = json!({
        "self": {"href": pull_api},
        "html": {"href": html},
        "issue": {"href": issue_api},
        "comments": {"href": format!("{issue_api}/comments")},
        "review_comments": {"href": format!("{pull_api}/comments")},
        "review_comment": {"href": format!("{repo_api}/pulls/comments{{/number}}")},
        "commits": {"href": format!("{pull_api}/commits")},
        "statuses": {"href": format!("{repo_api}/statuses/{}", p.head_sha)},
    });
    let head = json!({
        "label": format!("{}:{}", p.head_owner, p.head_ref),
        "ref": p.head_ref,
        "sha": p.head_sha,
        "user": user(&p.head_owner),
        "repo": p.head_repo.as_ref().map(|(full, clone)| {
            repo_json(&web, &api, full, clone, default_branch, &p.created_at)
        }),
    });
    let mut v = json!({
        "url": pull_api,
        "id": p.number,
        "node_id": format!("PR_fake{}", p.number),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue_api,
        "commits_url": format!("{pull_api}/commits"),
        "review_comments_url": format!("{pull_api}/comments"),
        "review_comment_url": format!("{repo_api}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue_api}/comments"),
        "statuses_url": format!("{repo_api}/statuses/{}", p.head_sha),
        "number": p.number,
        "state": p.state,
        "locked": false,
        "title": p.title,
        "user": user(&p.author),
        "body": p.body,
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": p.created_at,
        "updated_at": p.created_at,
        "closed_at": null,
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": p.requested_reviewers.iter().map(|l| user(l)).collect::<Vec<_>>(),
        "requested_teams": [],
    });
    let rest = json!({
        "_links": links,
        "head": head,
        "base": {
            "label": format!("{}:{}", p.owner, p.base_ref),
            "ref": p.base_ref,
            "sha": p.base_sha,
            "user": user(&p.owner),
            "repo": repo_json(&web, &api, &format!("{}/{}", p.owner, p.repo), &base_clone, default_branch, &p.created_at),
        },
        "author_association": if p.author == BOT_LOGIN { "CONTRIBUTOR" } else { "NONE" },
        "auto_merge": null,
        "draft": p.draft,
        "merged": false,
        "mergeable": null,
        "rebaseable": null,
        "mergeable_state": "unknown",
        "merged_by": null,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": p.maintainer_can_modify,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    });
    if let (Some(o), Value::Object(r)) = (v.as_object_mut(), rest) {
        o.extend(r);
    }
    v
}

/// A `simple-user` object.
fn user_json(web: &str, api: &str, login: &str) -> Value {
    let u = format!("{api}/users/{login}");
    json!({
        "login": login,
        "id": 1,
        "node_id": format!("U_fake_{login}"),
        "avatar_url": format!("{web}/avatars/{login}"),
        "gravatar_id": "",
        "url": u,
        "html_url": format!("{web}/{login}"),
        "followers_url": format!("{u}/followers"),
        "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"),
        "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"),
        "type": "User",
        "site_admin": false,
    })
}

/// A `repository` object (a PR's head or base repository).
fn repo_json(
    web: &str,
    api: &str,
    full_name: &str,
    clone_url: &str,
    default_branch: &str,
    at: &str,
) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, ""));
    let r = format!("{api}/repos/{full_name}");
    let mut v = json!({
        "id": 1,
        "node_id": format!("R_fake_{full_name}"),
        "name": name,
        "full_name": full_name,
        "owner": user_json(web, api, owner),
        "private": true,
        "html_url": format!("{web}/{full_name}"),
        "description": null,
        "fork": false,
        "url": r,
        "git_url": format!("git://{}/{full_name}.git", web.trim_start_matches("http://")),
        "ssh_url": format!("git@{}:{full_name}.git", web.trim_start_matches("http://")),
        "clone_url": clone_url,
        "svn_url": format!("{web}/{full_name}"),
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "license": null,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "has_pages": false,
        "disabled": false,
        "archived": false,
        "visibility": "private",
        "pushed_at": at,
        "created_at": at,
        "updated_at": at,
    });
    for (field, tail) in [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ] {
        v[field] = json!(format!("{r}{tail}"));
    }
    v
}

fn rate_limited(limit: RateLimit) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match limit {
        RateLimit::Primary { reset_in_seconds } => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            );
            let h = r.headers_mut();
            h.insert("x-ratelimit-limit", 5000.into());
            h.insert("x-ratelimit-remaining", 0.into());
            h.insert("x-ratelimit-used", 5000.into());
            h.insert("x-ratelimit-reset", (now + reset_in_seconds).into());
            h.insert("x-ratelimit-resource", "core".parse().expect("header"));
            r
        }
        RateLimit::Secondary {
            status,
            retry_after,
        } => {
            let mut r = error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            );
            r.headers_mut().insert("retry-after", retry_after.into());
            r
        }
    }
}

fn validation(errors: Vec<Value>, doc: &str) -> Response {
    json_reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": "Validation Failed", "errors": errors, "documentation_url": doc, "status": "422"}),
    )
}

fn not_found(doc: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", doc)
}

fn error(status: StatusCode, message: &str, doc: &str) -> Response {
    json_reply(
        status,
        json!({"message": message, "documentation_url": doc, "status": status.as_u16().to_string()}),
    )
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json; charset=utf-8"),
            ("x-github-api-version-selected", "2022-11-28"),
            ("x-github-media-type", "github.v3; format=json"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
