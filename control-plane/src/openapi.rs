//! `GET /openapi.json`, generated from the handlers' annotations.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "runner control plane",
        description = "Sessions, workers, claims and leases. Every 4xx/5xx body is {\"error\": {\"type\", \"message\"}}."
    ),
    paths(
        crate::api::queue_session,
        crate::api::list_sessions,
        crate::api::get_session,
        crate::api::cancel_session,
        crate::api::register_worker,
        crate::api::get_worker,
        crate::api::claimable,
        crate::api::claim,
        crate::api::extend,
        crate::api::heartbeat,
        crate::api::post_activity,
        crate::api::metadata,
        crate::api::complete,
        crate::api::fail,
        crate::api::release,
        crate::api::held_claims,
        crate::api::append_conversation,
        crate::api::conversation,
        crate::api::answer,
        crate::api::follow_up,
        crate::api::add_subscription,
        crate::api::subscriptions,
        crate::api::deliveries,
        crate::api::next_input,
        crate::api::ack_input
    ),
    components(schemas(crate::store::SessionView, crate::store::Transition))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
