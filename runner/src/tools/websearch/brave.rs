//! Brave's Web Search API (https://api-dashboard.search.brave.com/docs):
//! `GET {base}res/v1/web/search?q=…&count=N` with the subscription token
//! in `X-Subscription-Token`; results in `web.results[]`, descriptions
//! carrying `<strong>` markup (stripped by the tool).

use super::{
    status_error, Endpoint, HeaderValue, HttpCall, SearchHit, SearchProvider, SearchQuery,
};
use crate::secret::Secret;
use serde::Deserialize;

/// Brave's hosted API, with the worker's key.
pub struct Brave {
    endpoint: Endpoint,
    key: Secret,
}

impl Brave {
    /// The API at `endpoint` (normally [`super::BRAVE_DEFAULT_URL`]) with `key`.
    pub fn new(endpoint: Endpoint, key: Secret) -> Brave {
        Brave { endpoint, key }
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl SearchProvider for Brave {
    fn name(&self) -> &'static str {
        "brave"
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, q: &SearchQuery) -> HttpCall {
        let mut url = self
            .endpoint
            .url
            .join("res/v1/web/search")
            .unwrap_or_else(|_| self.endpoint.url.clone());
        url.query_pairs_mut()
            .append_pair("q", &q.query)
            .append_pair("count", &q.count.clamp(1, super::MAX_COUNT).to_string());
        HttpCall {
            method: "GET",
            url,
            headers: vec![
                ("Accept", HeaderValue::Plain("application/json".into())),
                (
                    "X-Subscription-Token",
                    HeaderValue::Secret(self.key.clone()),
                ),
            ],
        }
    }

    fn parse(&self, status: u16, body: &[u8]) -> Result<Vec<SearchHit>, String> {
        match status {
            401 | 403 => {
                return Err(format!(
                    "answered HTTP {status}: the subscription token was refused; check websearch.api_key"
                ))
            }
            429 => return Err("answered HTTP 429: the plan's rate limit was reached".into()),
            s if !(200..300).contains(&s) => return Err(status_error(status, body)),
            _ => {}
        }
        let a: Answer = serde_json::from_slice(body)
            .map_err(|e| format!("the answer is not Brave's JSON ({e})"))?;
        Ok(a.web
            .map(|w| w.results)
            .unwrap_or_default()
            .into_iter()
            .map(|h| SearchHit {
                title: h.title.unwrap_or_default(),
                url: h.url.unwrap_or_default(),
                snippet: h.description.unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer in the shape of Brave's `WebSearchApiResponse`.
    const ANSWER: &str = r#"{
      "type": "search",
      "query": {"original": "rust sandbox", "show_strict_warning": false, "is_navigational": false,
                "spellcheck_off": true, "country": "us", "more_results_available": true},
      "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": false}], "top": [], "side": []},
      "web": {
        "type": "search",
        "results": [
          {"title": "landlock - Rust", "url": "https://docs.rs/landlock/", "is_source_local": false,
           "is_source_both": false, "description": "A <strong>Rust</strong> sandbox &amp; more",
           "page_age": "2024-05-01T00:00:00", "profile": {"name": "Docs.rs", "url": "https://docs.rs/",
           "long_name": "docs.rs", "img": "https://imgs.search.brave.com/x"}, "language": "en",
           "family_friendly": true, "type": "search_result", "subtype": "generic",
           "meta_url": {"scheme": "https", "netloc": "docs.rs", "hostname": "docs.rs",
           "favicon": "https://imgs.search.brave.com/y", "path": "› landlock"}},
          {"title": "Wasmtime", "url": "https://wasmtime.dev/", "description": "A runtime",
           "type": "search_result"}
        ],
        "family_friendly": true
      }
    }"#;

    fn provider() -> Brave {
        Brave::new(
            Endpoint::parse(super::super::BRAVE_DEFAULT_URL).unwrap(),
            Secret::new("BSA-key-under-test"),
        )
    }

    #[test]
    fn parses_the_real_json_shape() {
        let hits = provider().parse(200, ANSWER.as_bytes()).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].title, "landlock - Rust");
        assert_eq!(hits[0].url, "https://docs.rs/landlock/");
        assert_eq!(
            hits[0].snippet,
            "A <strong>Rust</strong> sandbox &amp; more"
        );
        // No web section (e.g. only news matched): no results, no error.
        assert!(provider()
            .parse(200, br#"{"type":"search","query":{"original":"x"}}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_request_carries_count_and_the_token_header() {
        let c = provider().request(&SearchQuery {
            query: "rust sandbox".into(),
            count: 7,
        });
        assert_eq!(
            c.url.as_str(),
            "https://api.search.brave.com/res/v1/web/search?q=rust+sandbox&count=7"
        );
        let token = c
            .headers
            .iter()
            .find(|(n, _)| *n == "X-Subscription-Token")
            .unwrap();
        assert_eq!(token.1.expose(), "BSA-key-under-test");
        assert!(!format!("{c:?}").contains("BSA-key"));
    }

    #[test]
    fn errors_say_what_failed_without_the_key() {
        let e = provider()
            .parse(
                401,
                br#"{"type":"ErrorResponse","error":{"code":"SUBSCRIPTION_TOKEN_INVALID"}}"#,
            )
            .unwrap_err();
        assert!(
            e.contains("websearch.api_key") && !e.contains("BSA-key"),
            "{e}"
        );
        assert!(provider()
            .parse(429, b"")
            .unwrap_err()
            .contains("rate limit"));
    }
}
