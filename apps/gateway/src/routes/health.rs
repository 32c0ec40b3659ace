//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is alive. Depends on nothing.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Check {
    /// The dependency checked, e.g. `postgres`.
    name: &'static str,
    /// `ok` or `fail`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Every dependency this process needs answers. 503 names the failing one.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "A dependency is failing; `checks` names it", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, Problem> {
    use anchor_store::StoreError;
    let postgres = match tokio::time::timeout(CHECK_TIMEOUT, state.db.check_ready()).await {
        Ok(Ok(())) => Check { name: "postgres", status: "ok", detail: None },
        Ok(Err(e @ StoreError::PlatformBehind { .. })) => {
            Check { name: "postgres", status: "fail", detail: Some(e.to_string()) }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: postgres failing");
            Check { name: "postgres", status: "fail", detail: Some("unreachable or refusing queries".to_owned()) }
        }
        Err(_) => Check {
            name: "postgres",
            status: "fail",
            detail: Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        },
    };
    let checks = vec![postgres];
    let failing: Vec<&str> = checks.iter().filter(|c| c.status != "ok").map(|c| c.name).collect();
    if failing.is_empty() {
        return Ok(Json(Readiness { status: "ready", checks }));
    }
    Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("failing: {}", failing.join(", ")))
        .with_checks(json!(checks)))
}
