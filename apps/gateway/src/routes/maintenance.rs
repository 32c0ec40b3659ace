//! Maintenance windows (configuration, written directly by those who handle
//! alerts, each write recorded with its signed credential): while one covers
//! an asset or its site, alerts that open there are held until it ends.

use anchor_domain::{AssetId, MaintenanceWindowId, SiteId};
use anchor_store::maintenance::MaintenanceWindow;
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::Page,
    path::ObjectId,
    problem::{FieldError, Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(list_windows, create_window)).routes(routes!(delete_window))
}

/// The longest a window lasts.
const MAX_DAYS: i64 = 31;

/// A window as it is asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowBody {
    /// The asset it covers (or `site_id`, not both).
    #[serde(default)]
    asset_id: Option<String>,
    /// The site it covers: every asset there.
    #[serde(default)]
    site_id: Option<String>,
    /// When it starts (RFC 3339; default now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    starts_at: Option<OffsetDateTime>,
    /// When it ends (RFC 3339), after it starts and at most 31 days later.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    ends_at: OffsetDateTime,
    /// Why, for colleagues (at most 500 characters).
    #[serde(default)]
    reason: String,
}

/// Windows not over yet, soonest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/maintenance-windows", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<MaintenanceWindow>)))]
pub(crate) async fn list_windows(
    scope: WorkspaceScope<perm::AlertsRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<MaintenanceWindow>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.maintenance_windows())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Schedule a maintenance window over an asset or a site.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/maintenance-windows", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = WindowBody,
    responses((status = 201, description = "Scheduled", body = MaintenanceWindow),
              (status = 422, description = "Invalid window; `errors` names every problem", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_window(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WindowBody>,
) -> Result<(StatusCode, Json<MaintenanceWindow>), Problem> {
    let mut errors = Vec::new();
    let mut error = |path: &str, message: &str| errors.push(FieldError { path: path.into(), message: message.into() });
    let starts_at = body.starts_at.unwrap_or_else(OffsetDateTime::now_utc);
    if body.ends_at <= starts_at {
        error("/ends_at", "a window ends after it starts");
    } else if body.ends_at - starts_at > time::Duration::days(MAX_DAYS) {
        error("/ends_at", "a window lasts at most 31 days");
    }
    if body.reason.chars().count() > 500 {
        error("/reason", "at most 500 characters");
    }
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let target = match (&body.asset_id, &body.site_id) {
        (Some(asset), None) => match asset.parse::<AssetId>() {
            Ok(id) if tx.asset(id).await?.is_some() => (Some(id), None),
            _ => {
                error("/asset_id", "no such asset here");
                (None, None)
            }
        },
        (None, Some(site)) => match site.parse::<SiteId>() {
            Ok(id) if tx.site(id).await?.is_some() => (None, Some(id)),
            _ => {
                error("/site_id", "no such site here");
                (None, None)
            }
        },
        _ => {
            error("/asset_id", "a window covers an asset or a site (give one of asset_id and site_id)");
            (None, None)
        }
    };
    if let Some(first) = errors.first().cloned() {
        return Err(
            Problem::unprocessable("invalid_maintenance_window", &first.path, first.message).with_errors(errors)
        );
    }
    let by = anchor_store::executions::Actor {
        issuer: scope.caller.identity.issuer.clone(),
        subject: scope.caller.identity.subject.clone(),
    };
    let window = tx.insert_maintenance_window(target, starts_at, body.ends_at, body.reason.trim(), &by).await?;
    changes::record(&mut tx, &scope, "maintenance_window.created", window.id, json!(window)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(window)))
}

/// Cancel a window. Alerts it held stay held until it would have ended.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/maintenance-windows/{id}", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Window id")),
    responses((status = 204, description = "Cancelled")))]
pub(crate) async fn delete_window(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<MaintenanceWindowId>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    if !tx.delete_maintenance_window(id).await? {
        return Err(Problem::not_found("no such maintenance window in this workspace"));
    }
    changes::record(&mut tx, &scope, "maintenance_window.deleted", id, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
