//! What can go wrong talking to a forge, typed so the caller can branch
//! (a rate limit waits, a rejected reviewer request is only a warning) and
//! worded so whoever reads it knows what to do next. No variant ever holds
//! the token; forge-supplied text is capped and cleaned first.

/// Longest piece of forge-supplied text kept in a message.
const MAX_TEXT: usize = 300;

/// A failed forge call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// A repository, pull-request or API URL the runner cannot use.
    #[error("bad forge URL {0}")]
    BadUrl(String),
    /// 401: the token is wrong, expired or revoked.
    #[error("the forge refused the token (401 Bad credentials): it is wrong, expired or revoked; issue a new token with pull-request write access and update the runner's forge token")]
    Unauthorized,
    /// 403 other than a rate limit: the token lacks a permission.
    #[error("the forge forbade the request (403: {0}); give the token (or app installation) read and write access to pull requests and contents of this repository")]
    Forbidden(String),
    /// 429, or 403 for a primary or secondary rate limit. Nothing was retried.
    #[error("{}", rate_limited(*.retry_after_seconds))]
    RateLimited {
        /// Seconds to wait before trying again, when the forge said.
        retry_after_seconds: Option<u64>,
    },
    /// 404: the repository or pull request does not exist, or the token
    /// cannot see it (forges answer 404 rather than 403 for private repos).
    #[error("the forge answered 404 Not Found: the repository or pull request does not exist or the token cannot see it; check the URL and that the token has access to the repository")]
    NotFound,
    /// 422: the forge refused the request's content; `errors` are readable
    /// explanations (the missing branch named), not raw codes.
    #[error("{}", validation(message, errors))]
    Validation {
        /// The forge's summary (e.g. "Validation Failed").
        message: String,
        /// One explanation per problem, saying what to do.
        errors: Vec<String>,
    },
    /// The forge refused a secondary request (reviewers not collaborators,
    /// the author as reviewer); callers record it as a warning.
    #[error("the forge refused the request: {0}")]
    Rejected(String),
    /// The forge could not be reached, or answered an unexpected status.
    #[error("talking to the forge failed: {0}")]
    Http(String),
    /// The forge's answer was not the JSON it documents.
    #[error("the forge's answer could not be read ({0}); check that the API base URL points at the forge's REST API")]
    Decode(String),
}

fn rate_limited(retry_after: Option<u64>) -> String {
    match retry_after {
        Some(s) => format!("the forge's API rate limit is exhausted; nothing was retried, try again in {s} seconds"),
        None => "the forge's API rate limit is exhausted; nothing was retried, wait at least a minute before trying again".to_string(),
    }
}

fn validation(message: &str, errors: &[String]) -> String {
    if errors.is_empty() {
        format!("the forge refused the request (422: {message})")
    } else {
        format!(
            "the forge refused the request (422 {message}): {}",
            errors.join("; ")
        )
    }
}

/// Forge-supplied (untrusted) text made fit for a message: control
/// characters become spaces and it is cut at [`MAX_TEXT`] characters.
pub(super) fn cap(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    if text.chars().count() > MAX_TEXT {
        out.push('…');
    }
    out.trim().to_string()
}
