//! Executions: where each accepted command is.

use anchor_domain::{ExecutionId, ExecutionStatus};
use anchor_store::executions::ExecutionFilter;
use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    commands::ExecutionView,
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::Problem,
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(list_executions)).routes(routes!(get_execution))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExecutionQuery {
    /// Only executions in this status.
    #[param(inline)]
    status: Option<ExecutionStatus>,
    /// Only executions of this command, e.g. `ticket.create`.
    command: Option<String>,
}

/// List executions, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/executions", tag = "executions", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ExecutionQuery, PageParams),
    responses((status = 200, body = Page<ExecutionView>)))]
pub(crate) async fn list_executions(
    scope: WorkspaceScope<perm::ExecutionsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ExecutionQuery>,
    paging: Paging,
) -> Result<Json<Page<ExecutionView>>, Problem> {
    let filter = ExecutionFilter { status: query.status, command: query.command };
    let (after, limit) = (paging.after()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.executions(&filter, after, limit).await }))
        .await?;
    Ok(Json(paging.page(rows, |e| e.id, ExecutionView::from)))
}

/// One execution: its status, and its result or error once finished.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/executions/{id}", tag = "executions", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Execution id")),
    responses((status = 200, body = ExecutionView)))]
pub(crate) async fn get_execution(
    scope: WorkspaceScope<perm::ExecutionsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ExecutionId>,
) -> Result<Json<ExecutionView>, Problem> {
    let execution = state.db.read(&scope.workspace, |tx| Box::pin(tx.execution(id))).await?;
    execution.map(|e| Json(e.into())).ok_or_else(|| not_found(&id))
}
