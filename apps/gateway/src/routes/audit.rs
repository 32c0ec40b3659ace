//! The access audit log, for platform admins.

use anchor_store::access::{AccessFilter, AccessRecord};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::{PlatformScope, perm},
    pagination::{ApiQuery, Page, PageParams},
    problem::Problem,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only events of this workspace slug.
    workspace: Option<String>,
    /// Only events of this subject (`sub`).
    subject: Option<String>,
    /// Only this action: authenticate, authorize, membership.set, membership.remove, workspace.create, platform_role.grant.
    action: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
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
}

fn view(r: AccessRecord) -> AccessEventView {
    AccessEventView {
        id: r.id,
        occurred_at: r.occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        issuer: r.issuer,
        subject: r.subject,
        workspace: r.workspace,
        action: r.action,
        outcome: r.outcome,
        request_id: r.request_id,
        detail: r.detail,
    }
}

/// Access audit events, newest first: sign-ins and failures, denials, membership changes.
#[utoipa::path(get, path = "/api/v1/audit/access", tag = "platform", security(("bearer" = [])),
    params(AuditParams),
    responses((status = 200, body = inline(Page<AccessEventView>))))]
pub(crate) async fn list_access_events(
    _scope: PlatformScope<perm::AuditRead>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Page<AccessEventView>>, Problem> {
    let page = PageParams { limit: params.limit, cursor: params.cursor.clone() };
    let limit = page.limit()?;
    let before_id = page
        .cursor()?
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Problem::unprocessable("invalid_cursor", "/cursor", "the cursor is not one this API issued")
            })
        })
        .transpose()?;
    let filter =
        AccessFilter { workspace: params.workspace, subject: params.subject, action: params.action, before_id };
    let rows = state.db.access_events(&filter, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id.to_string(), view)))
}
