//! The route table. Each resource module exports its own `routes()`, merged
//! here through [`ApiRoutes`], so that the OpenAPI document is generated
//! from the very routes that are served and cannot drift from them. A
//! command is one line in its module's `routes()` ([`ApiRoutes::command`]):
//! its handler, answers and documented operation come from its type.
//!
//! The document is finished in one place ([`finish_document`]): every
//! operation documents the answers every route of its kind can give (401
//! and 403 when it needs a token, the idempotency problems and the required
//! `Idempotency-Key` header when it changes something, 404 when its path
//! names an object, 422 when it takes a query), so that no handler repeats
//! them and none forgets them.

mod agents;
mod alerts;
mod assets;
mod audit;
mod callbacks;
mod contracts;
pub(crate) mod evidence;
mod executions;
mod health;
mod invoices;
mod knowledge;
mod maintenance;
mod portal;
mod queues;
mod quotes;
mod runbooks;
pub(crate) mod service_policies;
mod sites;
mod teams;
mod ticket_views;
mod tickets;
mod time_entries;
mod webhooks;
mod wellknown;
pub(crate) mod workspaces;

use std::collections::HashSet;
use std::sync::OnceLock;

use anchor_commands::DomainCommand;
use axum::{Json, Router, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};

use crate::{
    AppState,
    auth::Public,
    commands::{Accepted, ExecutionView, Target},
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
    components(schemas(ProblemDocument, Accepted, ExecutionView, crate::schemas::EventType, crate::schemas::WorkspaceRole, crate::schemas::RuleDocument, crate::schemas::CalendarDocument, crate::schemas::SlaPolicyDocument, crate::schemas::AssetTypeDocument)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Liveness, readiness, the API description and the dev issuer's keys"),
        (name = "workspaces", description = "Workspaces (one per client company) and their members"),
        (name = "platform", description = "Installation administration"),
        (name = "teams", description = "Teams of the MSP's staff, each granted a role in some workspaces or in all of them (platform administration)"),
        (name = "tickets", description = "Service desk tickets: commands (202 + execution) and reads"),
        (name = "time entries", description = "Time worked on tickets: logged, submitted, approved or rejected by commands (202 + execution), and reads"),
        (name = "billing", description = "The billing profile and tax rates (configuration), invoices and credit notes (commands: 202 + execution), their PDFs and EN 16931 (CII) exports"),
        (name = "sites", description = "The client's sites (offices, branches): commands (202 + execution) and reads"),
        (name = "contacts", description = "The client's people: commands (202 + execution) and reads"),
        (name = "executions", description = "Where each accepted command is: queued, running, succeeded, failed, cancelled, timeout"),
        (name = "callbacks", description = "Signed inbound callbacks (AgentField execution webhooks)"),
        (name = "webhooks", description = "Outbound webhooks (Standard Webhooks v1): endpoints, secrets, tests, the delivery log"),
        (name = "assets", description = "The CMDB: asset types (configuration), assets and their relationships (commands, 202 + execution), the impact of a failure"),
        (name = "alerts", description = "Alert rules over telemetry, alerts, and maintenance windows that hold them"),
        (name = "runbooks", description = "Runbooks (configuration: versioned, written directly, each save recorded and signed) and their runs (commands, 202 + execution)"),
        (name = "service policies", description = "Business calendars and SLA policies (configuration: versioned, written directly, each change recorded and signed)"),
        (name = "agents", description = "The edge plane: enrollment tokens, agents, enrollment, telemetry ingest"),
        (name = "evidence", description = "Signed audit credentials (W3C VC 2.0, eddsa-jcs-2022), their chain, the issuer keys"),
        (name = "knowledge", description = "The knowledge base: articles with revisions, audiences and states (commands: 202 + execution), full-text search, links to the tickets they answered"),
        (name = "portal", description = "Who may use the client portal: invitations (made, listed, withdrawn) and the contacts with access"),
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

/// Routes with their documentation, as each resource module builds them.
pub(crate) struct ApiRoutes {
    router: OpenApiRouter<AppState>,
    /// Operations made from command types: (path, method, operation).
    commands: Vec<(&'static str, &'static str, Value)>,
}

impl ApiRoutes {
    pub(crate) fn new() -> Self {
        Self { router: OpenApiRouter::new(), commands: Vec::new() }
    }

    /// Handlers documented with `#[utoipa::path]`.
    pub(crate) fn routes(mut self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.router = self.router.routes(routes);
        self
    }

    /// Command `C`, submitted with `POST path`.
    pub(crate) fn command<C: DomainCommand>(self, path: &'static str) -> Self {
        self.add::<C>("post", path, None)
    }

    /// Command `C` on the object named by the `{id}` of `path`, which becomes
    /// the command's `field`; `what` names the object in answers.
    pub(crate) fn command_on<C: DomainCommand>(
        self,
        path: &'static str,
        field: &'static str,
        what: &'static str,
    ) -> Self {
        self.add::<C>("post", path, Some(Target { field, what }))
    }

    /// [`Self::command_on`] with `PATCH path`: a change to the object.
    pub(crate) fn change_on<C: DomainCommand>(
        self,
        path: &'static str,
        field: &'static str,
        what: &'static str,
    ) -> Self {
        self.add::<C>("patch", path, Some(Target { field, what }))
    }

    fn add<C: DomainCommand>(mut self, method: &'static str, path: &'static str, target: Option<Target>) -> Self {
        let (method_router, operation) = crate::commands::route::<C>(method, path, target);
        self.router = self.router.route(path, method_router);
        self.commands.push((path, method, operation));
        self
    }

    pub(crate) fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.commands.extend(other.commands);
        self
    }
}

/// Operations, as (method in lower case, path template).
pub(crate) type Operations = HashSet<(String, String)>;

/// What the middleware needs to know of the routes.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// Every documented operation.
    pub(crate) documented: Operations,
    /// The command routes, whose idempotency keys the command desk keeps.
    pub(crate) commands: Operations,
}

impl Routing {
    /// A documented path asked with a method it does not offer: the router
    /// answers 405, before anything else looks at the request.
    pub(crate) fn not_offered(&self, (method, path): &(String, String)) -> bool {
        !self.documented.contains(&(method.clone(), path.clone())) && self.documented.iter().any(|(_, p)| p == path)
    }
}

/// The OpenAPI 3.1 document of every route the gateway serves.
pub fn openapi() -> Value {
    router().1
}

/// The document as served, built once.
fn openapi_json() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(openapi)
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_document(_: Public) -> Json<&'static Value> {
    Json(openapi_json())
}

/// The routes, their document, and the paths of command routes (whose
/// idempotency keys the command desk keeps).
pub(crate) fn router() -> (Router<AppState>, Value, Routing) {
    let all = ApiRoutes::new()
        .merge(health::routes())
        .routes(routes!(openapi_document))
        .merge(wellknown::routes())
        .merge(workspaces::routes())
        .merge(audit::routes())
        .merge(tickets::routes())
        .merge(ticket_views::routes())
        .merge(sites::routes())
        .merge(time_entries::routes())
        .merge(executions::routes())
        .merge(callbacks::routes())
        .merge(evidence::routes())
        .merge(webhooks::routes())
        .merge(agents::routes())
        .merge(alerts::routes())
        .merge(service_policies::routes())
        .merge(queues::routes())
        .merge(assets::routes())
        .merge(teams::routes())
        .merge(runbooks::routes())
        .merge(invoices::routes())
        .merge(contracts::routes())
        .merge(quotes::routes())
        .merge(knowledge::routes())
        .merge(portal::routes())
        .merge(maintenance::routes());
    let commands = all.commands.iter().map(|(path, method, _)| (method.to_string(), path.to_string())).collect();
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(all.router).split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut document = serde_json::to_value(api).expect("the OpenAPI document serialises");
    for (path, method, operation) in all.commands {
        document["paths"][path][method] = operation;
    }
    finish_document(&mut document);
    let documented = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| item.as_object().into_iter().flatten().map(move |(m, _)| (m.clone(), path.clone())))
        .collect();
    (router, document, Routing { documented, commands })
}

/// A problem response, for the document.
pub(crate) fn problem_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// Mutating routes that carry ids of their own instead of an `Idempotency-Key`.
pub(crate) const WITHOUT_IDEMPOTENCY_KEY: &[&str] =
    &["/api/v1/telemetry/", "/api/v1/callbacks/", "/api/v1/agents/enroll"];

/// Documents, on every operation, the answers every route of its kind gives.
fn finish_document(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            let mutating = matches!(method.as_str(), "post" | "put" | "patch" | "delete");
            let keyed = mutating
                && path.starts_with("/api/v1/")
                && !WITHOUT_IDEMPOTENCY_KEY.iter().any(|p| path.starts_with(p));
            let secured = operation.get("security").is_some();
            let names_object = path.matches('{').count() > usize::from(path.contains("{ws}"));
            let has_query = operation["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            let has_body = operation.get("requestBody").is_some();
            let pages = operation["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "cursor"));
            if keyed {
                let parameters = operation["parameters"].as_array_mut();
                let key = json!({"name": "Idempotency-Key", "in": "header", "required": true,
                                 "description": "Makes retries safe: the same key and request get the first answer again (kept 24 hours)",
                                 "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}});
                match parameters {
                    Some(parameters) => {
                        parameters.retain(|p| p["name"] != "Idempotency-Key");
                        parameters.push(key);
                    }
                    None => operation["parameters"] = json!([key]),
                }
            }
            let mut add = |status: &str, description: &str| {
                let responses = &mut operation["responses"];
                if responses.get(status).is_none() {
                    responses[status] = problem_response(description);
                }
            };
            if secured {
                add("401", "`unauthenticated` or `invalid_token`: no valid access token");
                add("403", "`workspace_forbidden` (not a member, or no such workspace) or `permission_denied`");
            }
            if keyed {
                add("400", "`idempotency_key_missing`, `idempotency_key_invalid` or `malformed_json`");
                add("409", "`idempotency_key_in_flight`: the first request with this key is still running");
                add("422", "`validation_failed` or `idempotency_key_reused`");
            } else if mutating && has_body {
                add("400", "`malformed_json`");
                add("422", "`validation_failed`");
            }
            if has_body {
                add("413", "`payload_too_large`");
                add("415", "`unsupported_media_type`: the body must be JSON");
            }
            if names_object && secured {
                add("404", "`not_found`: no such object in this workspace");
            }
            if has_query {
                add("422", "`invalid_query` or `invalid_cursor`");
            }
            if pages {
                add("404", "`cursor_not_found`: the cursor names no place in this list");
            }
        }
    }
}

/// Adds the fallbacks for unknown routes and methods.
pub(crate) fn finish(router: Router<AppState>) -> Router<AppState> {
    router.fallback(|| async { Problem::not_found("no resource at this path") }).method_not_allowed_fallback(|| async {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this path does not support this method")
            .into_response()
    })
}
