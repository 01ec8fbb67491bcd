//! The parts of the OpenAPI 3.1 document that no single route declares:
//! its title, the security schemes (who may call what), the error body
//! every 4xx carries, and the error answers shared by whole groups of
//! routes. The paths themselves come from the routes in [`crate::api`],
//! declared once (`utoipa_axum::routes!`), so the document cannot list a
//! route the router does not serve or miss one it does.

use protocol::platform::{ErrorBody, ErrorDetail};
use std::collections::BTreeMap;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{
    AuthorizationCode, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, OpenApi};

/// The security scheme of OAuth user access tokens (`runner login`).
pub(crate) const USER_TOKEN: &str = "user_token";
/// The security scheme of API keys sent as bearer tokens.
pub(crate) const API_KEY: &str = "api_key";
/// The security scheme of API keys sent by HTTP Basic (the key as user
/// name, an empty password): how Cursor's clients call the `/v0` API.
pub(crate) const API_KEY_BASIC: &str = "api_key_basic";
/// The security scheme of confidential OAuth clients at the token and
/// revocation endpoints (HTTP Basic; public clients send only their id).
pub(crate) const CLIENT: &str = "client";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "runner control plane",
        description = "Sessions, workers, claims and leases, and the OAuth 2.0 authorization server that signs workers in. Every 4xx/5xx answer of the /v1 API has the body {\"error\": {\"type\", \"message\"}} (ErrorBody); the token and revocation endpoints answer errors as RFC 6749 §5.2 says (OAuthErrorBody)."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "sessions", description = "Work sent to an agent profile, as people and automation see it."),
        (name = "workers", description = "Worker registration, health, and the sessions a worker may claim."),
        (name = "claims", description = "Claims, leases and everything a worker does under its claim."),
        (name = "webhooks", description = "Subscriptions to session events, and their delivery logs."),
        (name = "api-keys", description = "A signed-in user's own API keys: create (shown once), list, revoke."),
        (name = "cloud-agents", description = "The Cloud Agents API (/v0), called with a user's API key by HTTP Basic or Bearer; errors carry a top-level `message`."),
        (name = "oauth", description = "The authorization server: consent, tokens, revocation."),
        (name = "meta", description = "Liveness and this document.")
    )
)]
pub(crate) struct ApiDoc;

/// The document as served from `origin` (`http://host:port`): every route
/// of the API, and the security schemes the extractors in [`crate::auth`]
/// accept. The OAuth flow's URLs must be absolute, hence the origin.
pub(crate) fn document(origin: &str) -> utoipa::openapi::OpenApi {
    let mut doc = crate::api::routes().into_openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(origin)]);
    let c = doc.components.get_or_insert_with(Default::default);
    let user = OAuth2::with_description(
        [Flow::AuthorizationCode(AuthorizationCode::with_refresh_url(
            format!("{origin}/oauth/authorize"),
            format!("{origin}/oauth/token"),
            Scopes::from_iter([(
                "agent",
                "run agents: register workers, claim and finish sessions",
            )]),
            format!("{origin}/oauth/token"),
        ))],
        "A user access token (authorization code with PKCE S256; refresh tokens rotate at every use). The only credential agent execution accepts.",
    );
    c.add_security_scheme(USER_TOKEN, SecurityScheme::OAuth2(user));
    let mut key = Http::new(HttpAuthScheme::Bearer);
    key.bearer_format = Some("cpk_…".into());
    key.description = Some("An API key (`POST /v1/api-keys`, or `control-plane admin api-key-add NAME --user USER`), sent as `Authorization: Bearer cpk_…`. It queues and reads sessions, answers them and manages webhooks, and calls the Cloud Agents API (`/v0`, a user's key only); agent execution refuses it with 403.".into());
    c.add_security_scheme(API_KEY, SecurityScheme::Http(key));
    let mut basic = Http::new(HttpAuthScheme::Basic);
    basic.description = Some("An API key by HTTP Basic: the key as the user name, an empty password (`curl -u cpk_…:`), as Cursor's clients send it. Accepted wherever `api_key` is; a non-empty password is refused.".into());
    c.add_security_scheme(API_KEY_BASIC, SecurityScheme::Http(basic));
    let mut client = Http::new(HttpAuthScheme::Basic);
    client.description = Some("A confidential client's id and secret. Public clients (such as `runner`) send `client_id` in the form instead.".into());
    c.add_security_scheme(CLIENT, SecurityScheme::Http(client));
    let mut metrics = Http::new(HttpAuthScheme::Bearer);
    metrics.description = Some("The metrics token of a control plane started with `--metrics-token-file FILE`, sent as `Authorization: Bearer …` by the scrape; without that flag `GET /metrics` is open.".into());
    c.add_security_scheme("metrics_token", SecurityScheme::Http(metrics));
    open_flattened_registration(c);
    doc
}

/// `Worker` flattens `RegisterWorker` (an `allOf`), and `RegisterWorker`
/// as a request body refuses unknown fields (`additionalProperties:
/// false`); inside `Worker` that would refuse `worker_id`, so there the
/// registration is described without it.
fn open_flattened_registration(c: &mut utoipa::openapi::Components) {
    let Some(RefOr::T(Schema::Object(mut open))) = c.schemas.get("RegisterWorker").cloned() else {
        return;
    };
    open.additional_properties = None;
    if let Some(RefOr::T(Schema::AllOf(all))) = c.schemas.get_mut("Worker") {
        for item in &mut all.items {
            if matches!(item, RefOr::Ref(r) if r.ref_location.ends_with("/RegisterWorker")) {
                *item = RefOr::T(Schema::Object(open.clone()));
            }
        }
    }
}

/// An error answer with the [`ErrorBody`] schema.
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .into()
}

fn answers(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

/// What any authenticated route can answer before it runs.
pub(crate) struct CallerErrors;

impl IntoResponses for CallerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            (
                "401",
                "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.",
            ),
            ("503", "`busy`: the database is busy; retry shortly."),
        ])
    }
}

/// What an agent-execution route can answer before it runs.
pub(crate) struct AgentErrors;

impl IntoResponses for AgentErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            (
                "401",
                "`unauthorized`: no credentials, or a token that is unknown, expired or revoked.",
            ),
            (
                "403",
                "`oauth_required`: an API key; agent execution needs a user access token.",
            ),
            ("503", "`busy`: the database is busy; retry shortly."),
        ])
    }
}

/// What a route with a JSON body answers when the body is not acceptable.
pub(crate) struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            ("400", "`invalid_request`: the body is not valid JSON for this route (unknown fields are refused), or a value is out of range."),
            ("413", "`payload_too_large`: the body is larger than 1 MiB."),
            ("415", "`invalid_request`: the body is not sent as application/json."),
        ])
    }
}

/// [`BodyErrors`] of a route that takes images (a larger body).
pub(crate) struct ImageBodyErrors;

impl IntoResponses for ImageBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            ("400", "`invalid_request`: the body is not valid JSON for this route (unknown fields are refused), a value is out of range, or an image is refused (more than 5; not standard base64; more than 4 MiB decoded; not PNG, JPEG, GIF or WebP by its bytes; a side outside 1–8192 px) — the message names the field, e.g. `source.images[2].data`."),
            ("413", "`payload_too_large`: the body is larger than 32 MiB."),
            ("415", "`invalid_request`: the body is not sent as application/json."),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::document;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The official OpenAPI 3.1 schema (source and licence:
    /// `tests/data/README.md`).
    const OAS_3_1: &str = include_str!("../../tests/data/oas-3.1-schema-2022-10-07.json");

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn doc() -> Value {
        serde_json::to_value(document("http://127.0.0.1:8700")).unwrap()
    }

    /// `(path, method, operation)` for every operation of the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut v = vec![];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    v.push((path.clone(), m.to_string(), op.clone()));
                }
            }
        }
        v
    }

    /// The `{name}` segments of a path template.
    fn template_params(path: &str) -> BTreeSet<String> {
        path.split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_document_is_valid_openapi_3_1() {
        let schema: Value = serde_json::from_str(OAS_3_1).unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let doc = doc();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // The schema itself must be able to refuse: a document without
        // `info` is not OpenAPI.
        let mut broken = doc.clone();
        broken.as_object_mut().unwrap().remove("info");
        assert!(!validator.is_valid(&broken));
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let doc = doc();
        for (path, method, op) in operations(&doc) {
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(declared, template_params(&path), "{method} {path}");
        }
    }

    /// Whether a schema says something (a reference, a type with content,
    /// a combination), not just "any object".
    fn describes(schema: &Value) -> bool {
        let Some(o) = schema.as_object() else {
            return false;
        };
        if o.is_empty() {
            return false;
        }
        let bare_object = o.get("type") == Some(&Value::from("object"))
            && !o.contains_key("properties")
            && !o.contains_key("additionalProperties");
        !bare_object
    }

    #[test]
    fn every_body_has_a_schema_and_every_operation_its_4xx() {
        let doc = doc();
        for (path, method, op) in operations(&doc) {
            if let Some(body) = op.get("requestBody") {
                let content = body["content"].as_object().unwrap();
                assert!(!content.is_empty(), "{method} {path}");
                for (media, c) in content {
                    assert!(describes(&c["schema"]), "{method} {path} {media}: {c}");
                }
            }
            let responses = op["responses"].as_object().unwrap();
            // Only an operation that takes nothing from the caller (no
            // parameters, body or credentials: /healthz, /openapi.json)
            // has no 4xx answer.
            let takes_input = ["parameters", "requestBody", "security"]
                .iter()
                .any(|k| op.get(*k).is_some());
            assert!(
                !takes_input || responses.keys().any(|s| s.starts_with('4')),
                "{method} {path} lists no 4xx answer"
            );
            for (status, r) in responses {
                for (media, c) in r["content"].as_object().into_iter().flatten() {
                    // The document's own schema is the vendored OAS one.
                    if path != "/openapi.json" {
                        assert!(describes(&c["schema"]), "{method} {path} {status} {media}");
                    }
                }
                if status.starts_with('4') && path.starts_with("/v1/") {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn security_names_declared_schemes_and_agent_routes_refuse_api_keys() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for (path, method, op) in operations(&doc) {
            let reqs = op["security"].as_array().cloned().unwrap_or_default();
            for req in &reqs {
                for name in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
            let answers_403 = op["responses"].get("403").is_some();
            let takes_key = reqs.iter().any(|r| r.get(super::API_KEY).is_some());
            if path.starts_with("/v1/") {
                assert!(!reqs.is_empty(), "{method} {path} needs credentials");
                assert_eq!(answers_403, !takes_key, "{method} {path}");
            }
        }
    }

    /// Real answers of the store validate against the schemas the
    /// document gives them.
    #[test]
    fn answers_match_their_schemas() {
        use crate::store::testing::{claimed, store};
        let doc = doc();
        let check = |name: &str, instance: Value| {
            let schema = serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/components/schemas/{name}"),
                "components": doc["components"],
            });
            let v = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = v.iter_errors(&instance).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:#?}\n{instance}");
        };
        let (_d, store) = store();
        let (w, c) = claimed(&store, 60);
        check("Worker", serde_json::to_value(&w).unwrap());
        check("Claim", serde_json::to_value(&c).unwrap());
        let view = store.get(&c.session.id).unwrap();
        check("SessionView", serde_json::to_value(&view).unwrap());
        let mut wrong = serde_json::to_value(&w).unwrap();
        wrong["concurrency"] = "many".into();
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/components/schemas/Worker",
            "components": doc["components"],
        });
        assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&wrong));
    }

    /// Every string literal in `dir` (recursively, `.rs` files) that holds
    /// a control-plane path, cut at the query.
    fn called_paths(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                called_paths(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for literal in text.split('"').skip(1).step_by(2) {
                    for start in ["/v1/", "/oauth/", "/openapi.json", "/healthz"] {
                        if let Some(i) = literal.find(start) {
                            let path = &literal[i..];
                            let path = path.split('?').next().unwrap();
                            out.insert(path.to_string());
                        }
                    }
                }
            }
        }
    }

    /// Whether a called path (with `{…}` placeholders) can be an instance
    /// of a documented template.
    fn matches(called: &str, template: &str) -> bool {
        let (c, t): (Vec<_>, Vec<_>) = (called.split('/').collect(), template.split('/').collect());
        c.len() == t.len()
            && c.iter()
                .zip(&t)
                .all(|(c, t)| c == t || c.starts_with('{') || t.starts_with('{'))
    }

    /// An instance of a path template.
    fn instance(path: &str) -> String {
        path.split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The router serves every documented operation, and every path the
    /// worker and the end-to-end suites call is documented — or not served
    /// at all (the suites call a missing route on purpose, the worker
    /// calls model providers).
    #[tokio::test]
    async fn the_document_and_the_router_agree() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("cp.db"), 3).unwrap();
        let (listener, addr) = crate::bind("127.0.0.1:0").await.unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, crate::api::router(std::sync::Arc::new(store))).await
        });
        let http = reqwest::Client::new();
        let served = |method: &str, path: &str| {
            let req = http.request(
                method.to_uppercase().parse().unwrap(),
                format!("http://{addr}{}", instance(path)),
            );
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                status != 405 && !body.contains("no such route")
            }
        };
        let doc = doc();
        for (path, method, _) in operations(&doc) {
            assert!(
                served(&method, &path).await,
                "{method} {path} is documented, not served"
            );
        }
        assert!(!served("get", "/v1/nowhere").await, "the fallback is seen");

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut called = BTreeSet::new();
        for d in ["tests", "runner/src"] {
            called_paths(&root.join(d), &mut called);
        }
        assert!(
            called.len() > 20,
            "the scan finds the suites' calls: {called:?}"
        );
        let templates: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        for c in &called {
            if !templates.iter().any(|t| matches(c, t)) {
                for m in ["get", "post"] {
                    assert!(!served(m, c).await, "{m} {c} is served but not documented");
                }
            }
        }
        server.abort();
    }
}
