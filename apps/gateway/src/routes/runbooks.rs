//! Runbooks: configuration (written directly by those who manage the
//! workspace's settings; each save is a new version, recorded with its
//! signed credential) and their runs (commands: start, record a step).
//!
//! A command step is run by submitting its command like any other (its own
//! execution and evidence), then recording the step with that execution:
//! `POST .../runbook-runs/{id}/steps` `{"step": 2, "execution_id": ...}`.

use anchor_commands::{
    registry,
    runbooks::{RunbookRecordStep, RunbookStart},
};
use anchor_domain::{QueueId, RuleId, RunbookId, RunbookRunId, SchemaKey, runbook::check_steps};
use anchor_store::{
    WorkspaceTx,
    runbooks::{Runbook, RunbookInput, RunbookRun},
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
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
    ApiRoutes::new()
        .routes(routes!(list_runbooks, create_runbook))
        .routes(routes!(get_runbook, put_runbook))
        .routes(routes!(get_run))
        .command::<RunbookStart>("/api/v1/workspaces/{ws}/runbook-runs")
        .command_on::<RunbookRecordStep>("/api/v1/workspaces/{ws}/runbook-runs/{id}/steps", "run_id", "runbook run")
}

/// Every runbook at its current version, by name.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/runbooks", tag = "runbooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<Runbook>)))]
pub(crate) async fn list_runbooks(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<Runbook>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.runbooks())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// A runbook at its current version.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/runbooks/{id}", tag = "runbooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Runbook id")),
    responses((status = 200, body = Runbook)))]
pub(crate) async fn get_runbook(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<RunbookId>,
) -> Result<Json<Runbook>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.runbook(id))).await?;
    found.map(Json).ok_or_else(|| Problem::not_found("no such runbook in this workspace"))
}

/// Add a runbook (version 1).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/runbooks", tag = "runbooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = RunbookInput,
    responses((status = 201, description = "Added", body = Runbook),
              (status = 409, description = "Another runbook has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid steps or attachments; `errors` names every one", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_runbook(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RunbookInput>,
) -> Result<Response, Problem> {
    save(&state, &scope, RunbookId::new(), true, body).await
}

/// Save a new version of a runbook; runs under way keep the version they started on.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/runbooks/{id}", tag = "runbooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Runbook id")),
    request_body = RunbookInput,
    responses((status = 200, description = "Saved as a new version", body = Runbook),
              (status = 409, description = "Another runbook has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid steps or attachments; `errors` names every one", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_runbook(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<RunbookId>,
    ApiJson(body): ApiJson<RunbookInput>,
) -> Result<Response, Problem> {
    save(&state, &scope, id, false, body).await
}

/// A run: the steps of its version, those done (by whom, when, with the
/// execution that ran each command step and how it stands).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/runbook-runs/{id}", tag = "runbooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunbookRun)))]
pub(crate) async fn get_run(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<RunbookRunId>,
) -> Result<Json<RunbookRun>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.runbook_run(id))).await?;
    found.map(Json).ok_or_else(|| Problem::not_found("no such runbook run in this workspace"))
}

async fn save(
    state: &AppState,
    scope: &WorkspaceScope<perm::SettingsManage>,
    id: RunbookId,
    create: bool,
    body: RunbookInput,
) -> Result<Response, Problem> {
    let mut errors: Vec<FieldError> = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError { path: "/name".into(), message: "a name is 1 to 200 characters".into() });
    }
    if body.description.chars().count() > 4000 {
        errors.push(FieldError { path: "/description".into(), message: "at most 4,000 characters".into() });
    }
    // Runbook commands are not steps of runbooks.
    let known = |c: &str| registry::find(c).is_some() && !c.starts_with("runbook.");
    if let Err(problems) = check_steps(&body.steps, known) {
        errors.extend(problems.into_iter().map(|e| FieldError { path: e.path, message: e.message }));
    }
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    errors.extend(attachments(&mut tx, &body).await?);
    if let Some(first) = errors.first().cloned() {
        return Err(Problem::unprocessable("invalid_runbook", &first.path, first.message).with_errors(errors));
    }
    let by = anchor_store::executions::Actor {
        issuer: scope.caller.identity.issuer.clone(),
        subject: scope.caller.identity.subject.clone(),
    };
    let body = RunbookInput { name: name.to_owned(), ..body };
    let saved = tx.save_runbook(id, create, &body, &by).await.map_err(|e| {
        if e.sqlstate().as_deref() == Some("23505") {
            Problem::new(StatusCode::CONFLICT, "name_taken", "another runbook has this name")
        } else {
            e.into()
        }
    })?;
    let Some(saved) = saved else { return Err(Problem::not_found("no such runbook in this workspace")) };
    let action = if create { "runbook.created" } else { "runbook.updated" };
    changes::record(&mut tx, scope, action, id, json!({"name": saved.name, "version": saved.version})).await?;
    tx.commit().await?;
    let status = if create { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(saved)).into_response())
}

/// What a runbook is attached to must exist here.
async fn attachments(tx: &mut WorkspaceTx, body: &RunbookInput) -> Result<Vec<FieldError>, Problem> {
    let mut errors = Vec::new();
    if let Some(key) = &body.asset_type {
        let found = match SchemaKey::parse(key) {
            Ok(key) => tx.asset_type(&key).await?.is_some(),
            Err(_) => false,
        };
        if !found {
            errors.push(FieldError { path: "/asset_type".into(), message: format!("no asset type {key:?} here") });
        }
    }
    if let Some(rule) = &body.rule_id {
        let found = match rule.parse::<RuleId>() {
            Ok(id) => tx.rules().await?.iter().any(|r| r.id == id),
            Err(_) => false,
        };
        if !found {
            errors.push(FieldError { path: "/rule_id".into(), message: format!("no alert rule {rule} here") });
        }
    }
    if let Some(queue) = &body.queue_id {
        let found = match queue.parse::<QueueId>() {
            Ok(id) => tx.queue(id).await?.is_some(),
            Err(_) => false,
        };
        if !found {
            errors.push(FieldError { path: "/queue_id".into(), message: format!("no queue {queue} here") });
        }
    }
    Ok(errors)
}
