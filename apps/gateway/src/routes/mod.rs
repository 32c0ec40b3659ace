//! The route table. Each resource module owns its routes; they are merged
//! here, through `OpenApiRouter`, so that the OpenAPI document is generated
//! from the very routes that are served and cannot drift from them.

mod health;

use std::sync::OnceLock;

use axum::{Json, Router, http::StatusCode, response::IntoResponse};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, problem::Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Anchor API",
        description = "Anchor: PSA, RMM and automation for managed service providers. \
                       Every error is an RFC 9457 problem document (`application/problem+json`); \
                       every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem)),
    tags((name = "operations", description = "Liveness, readiness and the API description"))
)]
struct ApiDoc;

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
async fn openapi_document() -> Json<&'static serde_json::Value> {
    Json(openapi_json())
}

pub(crate) fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi_document))
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
