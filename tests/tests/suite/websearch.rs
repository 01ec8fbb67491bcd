//! WebSearch end to end: the real `control-plane` and `runner worker`, a
//! scripted fake model (`e2e::fake_model`), and a fake SearXNG on loopback
//! (`e2e::fake_search`) speaking SearXNG's real JSON. The search and its
//! connection are decided and recorded; the results reach the model as
//! tool output; a provider the address guard refuses is never contacted.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::fake_search::FakeSearch;
use e2e::terminal;
use e2e::{ControlPlane, WorkerProc};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const KEY: &str = "sk-fake-websearch-0123";

/// The worker's address guard exempts 127.0.0.1 only (where the fakes of
/// an allowed search listen).
const EXEMPT_LOOPBACK: &str = "allow_cidrs = [\"127.0.0.1/32\"]";

fn decisions(v: &Value) -> Vec<Value> {
    v["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activity"]["type"] == "policy_decision")
        .map(|a| a["activity"]["record"].clone())
        .collect()
}

/// A key file (0600) and a `[[providers]]` entry serving `m-search`.
fn provider(dir: &Path, fake: &FakeModel) -> String {
    let key = dir.join("p1.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "\n[agent]\nmax_turns = 4\n\n[[providers]]\nname = \"p1\"\napi = \"openai\"\nbase_url = {:?}\nmodels = [\"m-search\"]\napi_key = {{ file = {:?} }}\n",
        fake.base_url,
        key.display().to_string()
    )
}

/// One session whose model calls WebSearch once, on a worker whose
/// `[websearch]` points at `search_url` and whose `[network]` section is
/// `network`: the session's view and the model's fake.
fn search_session(search_url: &str, network: &str, query: &str) -> (Value, FakeModel) {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let fake = FakeModel::start(
        Wire::OpenAi,
        KEY,
        vec![
            Step::Call(vec![(
                "WebSearch".into(),
                json!({"query": query, "count": 3}),
            )]),
            Step::Text("searched".into()),
        ],
    );
    let cfg = format!(
        "{}\n[network]\n{network}\n\n[websearch]\nprovider = \"searxng\"\nurl = {search_url:?}\n",
        provider(d.path(), &fake)
    );
    let _w = WorkerProc::start(d.path(), "w1", &cp, &cfg);
    let id = cp.queue_model("m-search", &["WebSearch"], json!({"title": "look it up"}));
    let v = cp.wait_for(&id, 90, terminal);
    (v, fake)
}

#[test]
fn a_model_searches_through_searxng_and_gets_the_results_as_untrusted_output() {
    let search = FakeSearch::start("127.0.0.1");
    let (v, model) = search_session(&search.url(), EXEMPT_LOOPBACK, "rust sandbox");
    assert_eq!(v["session"]["state"], "complete", "{v}");

    // The fake got exactly the decided query, in SearXNG's JSON format.
    let qs = search.queries();
    assert_eq!(qs.len(), 1, "{qs:?}");
    assert!(
        qs[0].contains(&("q".into(), "rust sandbox".into())),
        "{qs:?}"
    );
    assert!(qs[0].contains(&("format".into(), "json".into())), "{qs:?}");

    // Decided and recorded: the search, then its connection in both phases.
    let ds = decisions(&v);
    let s = ds
        .iter()
        .find(|d| d["action"]["kind"] == "web.search")
        .unwrap_or_else(|| panic!("no web.search decision: {ds:?}"));
    assert_eq!(s["result"], "allow", "{s}");
    assert_eq!(s["action"]["provider"], "searxng", "{s}");
    assert_eq!(s["action"]["query"], "rust sandbox", "{s}");
    assert_eq!(s["action"]["count"], 3, "{s}");
    let connects: Vec<&Value> = ds
        .iter()
        .filter(|d| d["action"]["kind"] == "net.connect" && d["action"]["tool"] == "WebSearch")
        .collect();
    assert_eq!(connects.len(), 2, "host phase and resolved phase: {ds:?}");
    for c in &connects {
        assert_eq!(c["result"], "allow", "{c}");
        assert_eq!(c["action"]["host"], "127.0.0.1", "{c}");
        assert_eq!(c["action"]["port"], search.addr.port(), "{c}");
    }
    assert!(connects.iter().any(|c| c["action"]["resolved"] == true));

    // The model was offered the tool and got the results, HTML stripped.
    let reqs = model.requests();
    assert!(model.tools_of(&reqs[0]).contains(&"WebSearch".to_string()));
    let (result, _) = &model.last_results(&reqs[1])[0];
    assert!(result.contains("landlock - Rust"), "{result}");
    assert!(result.contains("https://wasmtime.dev/"), "{result}");
    assert!(
        result.contains("Landlock is a security feature & a sandbox"),
        "{result}"
    );
    assert!(!result.contains("<b>"), "{result}");
    // Untrusted results never reach the system prompt.
    for r in &reqs {
        assert!(!model.system_of(r).contains("landlock - Rust"));
    }
}

#[test]
fn a_provider_the_address_guard_refuses_is_denied_recorded_and_never_contacted() {
    // The provider listens on 127.0.0.2; the worker exempts only 127.0.0.1.
    let search = FakeSearch::start("127.0.0.2");
    let (v, model) = search_session(&search.url(), EXEMPT_LOOPBACK, "rust sandbox");
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(
        search.connections(),
        0,
        "the refused provider was contacted"
    );

    let ds = decisions(&v);
    let c = ds
        .iter()
        .find(|d| d["action"]["kind"] == "net.connect" && d["action"]["tool"] == "WebSearch")
        .unwrap_or_else(|| panic!("no connect decision: {ds:?}"));
    assert_eq!(c["result"], "deny", "{c}");
    assert_eq!(c["action"]["host"], "127.0.0.2", "{c}");
    let reasons = c["reasons"].to_string();
    assert!(reasons.contains("loopback"), "{reasons}");

    // The model learns it was denied, and nothing else.
    let reqs = model.requests();
    let (result, _) = &model.last_results(&reqs[1])[0];
    assert!(result.contains("denied"), "{result}");
    assert!(!result.contains("landlock"), "{result}");
}

#[test]
fn a_deny_listed_provider_host_is_denied_and_never_contacted() {
    let search = FakeSearch::start("127.0.0.1");
    let network = format!("{EXEMPT_LOOPBACK}\ndeny_hosts = [\"127.0.0.1\"]");
    let (v, model) = search_session(&search.url(), &network, "rust sandbox");
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(
        search.connections(),
        0,
        "the deny-listed provider was contacted"
    );
    let ds = decisions(&v);
    let c = ds
        .iter()
        .find(|d| d["action"]["kind"] == "net.connect" && d["action"]["tool"] == "WebSearch")
        .unwrap_or_else(|| panic!("no connect decision: {ds:?}"));
    assert_eq!(c["result"], "deny", "{c}");
    assert!(c["reasons"].to_string().contains("deny list"), "{c}");
    let (result, _) = &model.last_results(&model.requests()[1])[0];
    assert!(result.contains("denied"), "{result}");
}

#[test]
fn a_provider_error_is_a_tool_error_saying_what_failed() {
    // A base URL under which the instance has no search endpoint: 404.
    let search = FakeSearch::start("127.0.0.1");
    let url = format!("{}nope/", search.url());
    let (v, model) = search_session(&url, EXEMPT_LOOPBACK, "rust sandbox");
    assert_eq!(v["session"]["state"], "complete", "{v}");
    assert_eq!(
        search.queries().len(),
        0,
        "the request went to /nope/search"
    );
    let (result, _) = &model.last_results(&model.requests()[1])[0];
    assert!(
        result.contains("searxng") && result.contains("HTTP 404"),
        "{result}"
    );
}

#[test]
fn a_worker_without_websearch_does_not_offer_it() {
    let d = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&d.path().join("cp.db"));
    let model = FakeModel::start(Wire::OpenAi, KEY, vec![Step::Text("nothing to do".into())]);
    let _w = WorkerProc::start(d.path(), "w1", &cp, &provider(d.path(), &model));
    let id = cp.queue_model("m-search", &["WebSearch", "Read"], json!({"title": "t"}));
    let v = cp.wait_for(&id, 60, terminal);
    assert_eq!(v["session"]["state"], "complete", "{v}");
    let reqs = model.requests();
    let offered = model.tools_of(&reqs[0]);
    assert!(offered.contains(&"Read".to_string()), "{offered:?}");
    assert!(!offered.contains(&"WebSearch".to_string()), "{offered:?}");
}
