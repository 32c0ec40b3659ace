//! Well-known documents.

use axum::{Json, extract::State};
use utoipa_axum::routes;

use crate::{AppState, auth::Public, routes::ApiRoutes};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(jwks))
}

/// The dev issuer's public keys (empty when the dev issuer is off).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "JSON Web Key Set (RFC 7517)", content_type = "application/json")))]
pub(crate) async fn jwks(_: Public, State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.auth.dev_issuer.as_ref().map_or_else(|| serde_json::json!({"keys": []}), |d| d.jwks()))
}
