//! The route table. Each resource module owns its routes; they are merged
//! here, through `OpenApiRouter`, so that the OpenAPI document is generated
//! from the very routes that are served and cannot drift from them.

mod agents;
mod alerts;
mod audit;
mod callbacks;
mod evidence;
mod executions;
mod health;
mod tickets;
mod webhooks;
mod wellknown;
mod workspaces;

use std::sync::OnceLock;

use axum::{Json, Router, http::StatusCode, response::IntoResponse};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    auth::Public,
    problem::{Problem, ProblemDocument},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Anchor API",
        description = "Anchor: PSA, RMM and automation for managed service providers. \
                       Every error is an RFC 9457 problem document (`application/problem+json`); \
                       every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ProblemDocument)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Liveness, readiness, the API description and the dev issuer's keys"),
        (name = "workspaces", description = "Workspaces (one per client company) and their members"),
        (name = "platform", description = "Installation administration"),
        (name = "tickets", description = "Service desk tickets: commands (202 + execution) and reads"),
        (name = "executions", description = "Where each accepted command is: queued, running, succeeded, failed, cancelled, timeout"),
        (name = "callbacks", description = "Signed inbound callbacks (AgentField execution webhooks)"),
        (name = "webhooks", description = "Outbound webhooks (Standard Webhooks v1): endpoints, secrets, tests, the delivery log"),
        (name = "alerts", description = "Alert rules over telemetry, and alerts"),
        (name = "agents", description = "The edge plane: enrollment tokens, agents, enrollment, telemetry ingest"),
        (name = "evidence", description = "Signed audit credentials (W3C VC 2.0, eddsa-jcs-2022), their chain, the issuer keys"),
    )
)]
struct ApiDoc;

/// Access tokens: RFC 9068 JWTs from a trusted issuer.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The OpenAPI 3.1 document of every route the gateway serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().1
}

/// The document as served, built once.
fn openapi_json() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(openapi()).expect("the OpenAPI document serialises"))
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_document(_: Public) -> Json<&'static serde_json::Value> {
    Json(openapi_json())
}

pub(crate) fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi_document))
        .routes(routes!(wellknown::jwks))
        .routes(routes!(workspaces::create_workspace, workspaces::list_workspaces))
        .routes(routes!(workspaces::get_workspace))
        .routes(routes!(workspaces::list_members))
        .routes(routes!(workspaces::get_member, workspaces::put_member, workspaces::delete_member))
        .routes(routes!(audit::list_access_events))
        .routes(routes!(tickets::create_ticket, tickets::list_tickets))
        .routes(routes!(tickets::get_ticket))
        .routes(routes!(tickets::transition_ticket))
        .routes(routes!(tickets::comment_ticket))
        .routes(routes!(executions::list_executions))
        .routes(routes!(executions::get_execution))
        .routes(routes!(callbacks::agentfield))
        .routes(routes!(evidence::list_evidence))
        .routes(routes!(evidence::get_evidence))
        .routes(routes!(evidence::execution_evidence))
        .routes(routes!(evidence::verify_chain))
        .routes(routes!(evidence::issuer_keys))
        .routes(routes!(evidence::list_changes))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook, webhooks::update_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::create_source, webhooks::list_sources))
        .routes(routes!(webhooks::delete_source))
        .routes(routes!(webhooks::rotate_source_secret))
        .routes(routes!(callbacks::inbound))
        .routes(routes!(agents::create_token, agents::list_tokens))
        .routes(routes!(agents::rotate_token))
        .routes(routes!(agents::revoke_token))
        .routes(routes!(agents::list_agents))
        .routes(routes!(agents::revoke_agent))
        .routes(routes!(agents::enroll))
        .routes(routes!(agents::ingest_batch))
        .routes(routes!(alerts::list_rules, alerts::create_rule))
        .routes(routes!(alerts::update_rule, alerts::delete_rule))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::get_agent))
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, api)
}

/// Adds the fallbacks for unknown routes and methods.
pub(crate) fn finish(router: Router<AppState>) -> Router<AppState> {
    router.fallback(|| async { Problem::not_found("no resource at this path") }).method_not_allowed_fallback(|| async {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this path does not support this method")
            .into_response()
    })
}
