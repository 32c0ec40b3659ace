//! Queues: a team's inbox, the SLA policy of its tickets, the staff who work
//! it. Configuration (psa.md), like calendars and SLA policies: written
//! directly by those who manage the workspace's settings, each write
//! recorded as a change with its signed credential; read by every member of
//! staff. Tickets move between queues by command (`ticket.set_queue`).

use anchor_domain::{QueueId, SlaPolicyId};
use anchor_store::{
    executions::Actor,
    queues::{Queue, QueueInput},
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::Page,
    path::{ObjectId, not_found},
    problem::{FieldError, Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(list_queues, create_queue)).routes(routes!(get_queue, update_queue, delete_queue))
}

/// A queue as sent; `crate::schemas::QueueDocument` documents it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sla_policy_id: Option<SlaPolicyId>,
    #[serde(default)]
    members: Vec<Actor>,
}

const MAX_MEMBERS: usize = 200;

/// Checks a body against the workspace: every bad field named.
async fn checked(tx: &mut anchor_store::WorkspaceTx, body: &QueueBody) -> Result<(String, Vec<Actor>), Problem> {
    let mut errors = Vec::new();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        errors.push(FieldError { path: "/name".into(), message: "1-120 characters on one line".into() });
    }
    if body.description.chars().count() > 2000 {
        errors.push(FieldError { path: "/description".into(), message: "at most 2,000 characters".into() });
    }
    if let Some(policy) = body.sla_policy_id
        && tx.sla_policy(policy).await?.is_none()
    {
        errors.push(FieldError { path: "/sla_policy_id".into(), message: format!("no SLA policy {policy} here") });
    }
    if body.members.len() > MAX_MEMBERS {
        errors.push(FieldError { path: "/members".into(), message: format!("at most {MAX_MEMBERS} members") });
    }
    let mut members: Vec<Actor> = Vec::new();
    for (i, member) in body.members.iter().enumerate().take(MAX_MEMBERS) {
        let role = tx.member_role(member).await?.and_then(|r| anchor_domain::Role::parse(&r).ok());
        let staff = role
            .is_some_and(|r| anchor_auth::permissions::grants(r, anchor_auth::permissions::Permission::TicketsWrite));
        if !staff {
            errors.push(FieldError {
                path: format!("/members/{i}"),
                message: format!("{} is not staff of this workspace who may work tickets", member.subject),
            });
        } else if !members.contains(member) {
            members.push(member.clone());
        }
    }
    if let Some(first) = errors.first().cloned() {
        return Err(Problem::unprocessable("invalid_queue", &first.path, first.message).with_errors(errors));
    }
    Ok((name, members))
}

fn name_taken(e: anchor_store::StoreError) -> Problem {
    if e.sqlstate().as_deref() == Some("23505") {
        Problem::new(StatusCode::CONFLICT, "name_taken", "another queue has this name")
    } else {
        e.into()
    }
}

/// The workspace's queues, by name, each with its members and open tickets.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/queues", tag = "queues", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<Queue>)))]
pub(crate) async fn list_queues(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<Queue>>, Problem> {
    let queues = state.db.read(&scope.workspace, |tx| Box::pin(tx.queues())).await?;
    Ok(Json(Page { items: queues, next_cursor: None }))
}

/// Add a queue.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/queues", tag = "queues", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::QueueDocument,
    responses((status = 201, body = Queue),
              (status = 409, description = "Another queue has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid queue; `errors` names every bad field", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_queue(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Response, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let (name, members) = checked(&mut tx, &body).await?;
    let input = QueueInput {
        name: &name,
        description: &body.description,
        sla_policy_id: body.sla_policy_id,
        members: &members,
    };
    let queue = tx.insert_queue(&input).await.map_err(name_taken)?;
    changes::record(&mut tx, &scope, "queue.created", &queue.id, json!(queue)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(queue)).into_response())
}

/// A queue.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/queues/{id}", tag = "queues", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Queue id")),
    responses((status = 200, body = Queue),
              (status = 404, description = "No such queue", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_queue(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<QueueId>,
) -> Result<Json<Queue>, Problem> {
    let queue = state.db.read(&scope.workspace, |tx| Box::pin(tx.queue(id))).await?;
    queue.map(Json).ok_or_else(|| not_found(&id))
}

/// Replace a queue's name, description, SLA policy and members. Tickets
/// already in it keep their clocks' policy; new tickets take the new one.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/queues/{id}", tag = "queues", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Queue id")),
    request_body = crate::schemas::QueueDocument,
    responses((status = 200, body = Queue),
              (status = 404, description = "No such queue", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "Another queue has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid queue", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_queue(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<QueueId>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Json<Queue>, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let (name, members) = checked(&mut tx, &body).await?;
    let input = QueueInput {
        name: &name,
        description: &body.description,
        sla_policy_id: body.sla_policy_id,
        members: &members,
    };
    let Some(queue) = tx.update_queue(id, &input).await.map_err(name_taken)? else { return Err(not_found(&id)) };
    changes::record(&mut tx, &scope, "queue.updated", &queue.id, json!(queue)).await?;
    tx.commit().await?;
    Ok(Json(queue))
}

/// Delete a queue no ticket was ever in.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/queues/{id}", tag = "queues", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Queue id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such queue", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "Tickets are or were in it", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_queue(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<QueueId>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    match tx.delete_queue(id).await? {
        None => return Err(not_found(&id)),
        Some(false) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "queue_in_use",
                "tickets are or were in this queue; rename it or take its members off instead",
            ));
        }
        Some(true) => {}
    }
    changes::record(&mut tx, &scope, "queue.deleted", id, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
