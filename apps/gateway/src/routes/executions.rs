//! Executions: where each accepted command is.

use anchor_domain::{ExecutionId, ExecutionStatus};
use anchor_store::executions::ExecutionFilter;
use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    commands::ExecutionView,
    pagination::{ApiQuery, Page, PageParams},
    problem::{Problem, ProblemDocument},
};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExecutionQuery {
    /// Only executions in this status.
    status: Option<String>,
    /// Only executions of this command, e.g. `ticket.create`.
    command: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List executions, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/executions", tag = "executions", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ExecutionQuery),
    responses((status = 200, body = Page<ExecutionView>)))]
pub(crate) async fn list_executions(
    scope: WorkspaceScope<perm::ExecutionsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ExecutionQuery>,
) -> Result<Json<Page<ExecutionView>>, Problem> {
    let page = PageParams { limit: query.limit, cursor: query.cursor.clone() };
    let limit = page.limit()?;
    let cursor = page.cursor()?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            ExecutionStatus::parse(s)
                .ok_or_else(|| Problem::unprocessable("invalid_query", "/status", format!("unknown status {s:?}")))
        })
        .transpose()?;
    let filter = ExecutionFilter { status, command: query.command };
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rows = tx.executions(&filter, cursor.as_deref(), limit + 1).await?;
    tx.rollback().await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.to_string(), ExecutionView::from)))
}

/// One execution: its status, and its result or error once finished.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/executions/{id}", tag = "executions", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, body = ExecutionView),
        (status = 404, description = "No such execution", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_execution(
    scope: WorkspaceScope<perm::ExecutionsRead>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ExecutionView>, Problem> {
    let not_found = || Problem::not_found(format!("no execution {id:?} in this workspace"));
    let parsed: ExecutionId = id.parse().map_err(|_| not_found())?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let execution = tx.execution(parsed).await?;
    tx.rollback().await?;
    execution.map(|e| Json(e.into())).ok_or_else(not_found)
}
