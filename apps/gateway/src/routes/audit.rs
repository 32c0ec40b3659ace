//! The access audit log, for platform admins.

use anchor_store::access::{AccessFilter, AccessRecord};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{PlatformScope, perm},
    commands::rfc3339,
    pagination::{ApiQuery, Page, PageParams, Paging},
    problem::Problem,
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(list_access_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only events of this workspace slug.
    workspace: Option<String>,
    /// Only events of this subject (`sub`).
    subject: Option<String>,
    /// Only this action: authenticate, authorize, membership.set, membership.remove, workspace.create, platform_role.grant.
    action: Option<String>,
}

/// One access decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessEventView {
    id: i64,
    occurred_at: String,
    issuer: Option<String>,
    subject: Option<String>,
    workspace: Option<String>,
    #[schema(example = "authorize")]
    action: String,
    /// success, failure or denied.
    #[schema(example = "denied")]
    outcome: String,
    request_id: Option<String>,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
    /// How many times it happened: refusals of unauthenticated requests
    /// repeated within a minute (same reason, source, subject) are one event
    /// with a count, `occurred_at` being the first; any other event is 1.
    #[schema(example = 1, minimum = 1)]
    count: i64,
}

fn view(r: AccessRecord) -> AccessEventView {
    AccessEventView {
        id: r.id,
        occurred_at: rfc3339(r.occurred_at),
        issuer: r.issuer,
        subject: r.subject,
        workspace: r.workspace,
        action: r.action,
        outcome: r.outcome.to_string(),
        request_id: r.request_id,
        detail: r.detail,
        count: r.count,
    }
}

/// Access audit events, newest first: sign-ins and failures, denials, membership changes.
///
/// Refusals of unauthenticated requests are counted per reason, source and minute (`count`).
#[utoipa::path(get, path = "/api/v1/audit/access", tag = "platform", security(("bearer" = [])),
    params(AuditParams, PageParams),
    responses((status = 200, body = inline(Page<AccessEventView>))))]
pub(crate) async fn list_access_events(
    _scope: PlatformScope<perm::AuditRead>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
    paging: Paging,
) -> Result<Json<Page<AccessEventView>>, Problem> {
    let before_id = paging.after::<i64>()?;
    let filter =
        AccessFilter { workspace: params.workspace, subject: params.subject, action: params.action, before_id };
    let rows = state.db.access_events(&filter, paging.fetch()).await?;
    Ok(Json(paging.page(rows, |r| r.id, view)))
}
