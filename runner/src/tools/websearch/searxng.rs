//! SearXNG's search API (https://docs.searxng.org/dev/search_api):
//! `GET {base}search?q=…&format=json`. The JSON format must be enabled in
//! the instance's `settings.yml` (`search.formats`), else it answers 403.
//! There is no count parameter: results (about 20 a page) are cut here.

use super::{
    status_error, Endpoint, HeaderValue, HttpCall, SearchHit, SearchProvider, SearchQuery,
};
use serde::Deserialize;

/// A SearXNG instance.
pub struct Searxng {
    endpoint: Endpoint,
}

impl Searxng {
    /// The instance at `endpoint` (its base URL).
    pub fn new(endpoint: Endpoint) -> Searxng {
        Searxng { endpoint }
    }
}

/// The parts of SearXNG's answer used here; the rest (answers, infoboxes,
/// suggestions, unresponsive_engines, …) is ignored.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

impl SearchProvider for Searxng {
    fn name(&self) -> &'static str {
        "searxng"
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, q: &SearchQuery) -> HttpCall {
        let mut url = self
            .endpoint
            .url
            .join("search")
            .unwrap_or_else(|_| self.endpoint.url.clone());
        url.query_pairs_mut()
            .append_pair("q", &q.query)
            .append_pair("format", "json")
            .append_pair("pageno", "1");
        HttpCall {
            method: "GET",
            url,
            headers: vec![("Accept", HeaderValue::Plain("application/json".into()))],
        }
    }

    fn parse(&self, status: u16, body: &[u8]) -> Result<Vec<SearchHit>, String> {
        if status == 403 {
            return Err(
                "answered HTTP 403: its JSON output is off; add `json` to search.formats in the instance's settings.yml"
                    .into(),
            );
        }
        if !(200..300).contains(&status) {
            return Err(status_error(status, body));
        }
        let page: Page = serde_json::from_slice(body)
            .map_err(|e| format!("the answer is not SearXNG's JSON ({e})"))?;
        Ok(page
            .results
            .into_iter()
            .map(|h| SearchHit {
                title: h.title.unwrap_or_default(),
                url: h.url.unwrap_or_default(),
                snippet: h.content.unwrap_or_default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer in the shape SearXNG's webapp returns (fields from
    /// searx/webapp.py and a live instance's `format=json`).
    pub(crate) const ANSWER: &str = r#"{
      "query": "rust sandbox",
      "number_of_results": 0,
      "results": [
        {"url": "https://docs.rs/landlock/latest/landlock/", "title": "landlock - Rust",
         "content": "Landlock is a <b>security</b> feature &amp; more", "engine": "duckduckgo",
         "parsed_url": ["https", "docs.rs", "/landlock/latest/landlock/", "", "", ""],
         "template": "default.html", "engines": ["duckduckgo", "bing"], "positions": [1, 2],
         "score": 3.5, "category": "general", "publishedDate": null},
        {"url": "https://wasmtime.dev/", "title": "Wasmtime", "content": "A fast and secure runtime",
         "engine": "bing", "parsed_url": ["https", "wasmtime.dev", "/", "", "", ""],
         "template": "default.html", "engines": ["bing"], "positions": [2], "score": 0.5,
         "category": "general", "thumbnail": "", "img_src": ""}
      ],
      "answers": [], "corrections": [], "infoboxes": [], "suggestions": ["rust sandboxing"],
      "unresponsive_engines": [["brave", "timeout"]]
    }"#;

    fn provider() -> Searxng {
        Searxng::new(Endpoint::parse("http://127.0.0.1:8888/searx").unwrap())
    }

    #[test]
    fn parses_the_real_json_shape() {
        let hits = provider().parse(200, ANSWER.as_bytes()).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].title, "landlock - Rust");
        assert_eq!(hits[0].url, "https://docs.rs/landlock/latest/landlock/");
        assert_eq!(
            hits[0].snippet,
            "Landlock is a <b>security</b> feature &amp; more"
        );
        assert_eq!(hits[1].url, "https://wasmtime.dev/");
    }

    #[test]
    fn the_request_is_search_with_format_json_under_the_base_path() {
        let c = provider().request(&SearchQuery {
            query: "rust & sandbox".into(),
            count: 3,
        });
        assert_eq!(c.method, "GET");
        assert_eq!(
            c.url.as_str(),
            "http://127.0.0.1:8888/searx/search?q=rust+%26+sandbox&format=json&pageno=1"
        );
    }

    #[test]
    fn a_403_names_the_setting_and_other_errors_the_status() {
        let e = provider().parse(403, b"Forbidden").unwrap_err();
        assert!(e.contains("search.formats"), "{e}");
        let e = provider().parse(502, b"<h1>Bad gateway</h1>").unwrap_err();
        assert_eq!(e, "answered HTTP 502: Bad gateway");
        let e = provider().parse(200, b"<html>not json</html>").unwrap_err();
        assert!(e.contains("not SearXNG's JSON"), "{e}");
    }
}
