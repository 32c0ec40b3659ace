//! Tickets: commands (open, move, comment) answered 202 with an execution,
//! and reads served from the workspace's schema.

use anchor_commands::{
    Command,
    command::{TicketComment, TicketCreate, TicketTransition},
};
use anchor_domain::{CommentVisibility, Priority, TicketId, TicketStatus, TicketText, TicketTitle};
use anchor_store::{
    Workspace,
    tickets::{Comment, HistoryEntry, Ticket, TicketFilter},
};
use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    commands::{self, Accepted, ExecutionView, rfc3339},
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams},
    problem::{Problem, ProblemDocument},
};

/// A ticket to open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Printer on floor 2 offline", "description": "Since this morning.", "priority": "p3"}))]
pub(crate) struct NewTicketBody {
    /// One line, 1-200 characters.
    #[schema(value_type = String)]
    title: TicketTitle,
    /// Up to 20,000 characters.
    #[schema(value_type = Option<String>)]
    description: Option<TicketText>,
    /// `p1` (critical) to `p4` (low).
    #[schema(value_type = String, example = "p3")]
    priority: Priority,
}

/// A move along the lifecycle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"to": "triaged"}))]
pub(crate) struct TransitionBody {
    /// `new`, `triaged`, `in_progress`, `waiting_on_client`, `resolved` or `closed`.
    #[schema(value_type = String)]
    to: TicketStatus,
}

/// A comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Replaced the toner; printing again.", "visibility": "public"}))]
pub(crate) struct CommentBody {
    #[schema(value_type = String)]
    body: TicketText,
    /// `internal` (staff only) or `public` (the client sees it too).
    #[schema(value_type = String, example = "internal")]
    visibility: CommentVisibility,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketView {
    #[schema(example = "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    title: String,
    description: String,
    #[schema(example = "p3")]
    priority: String,
    #[schema(example = "new")]
    status: String,
    created_by: PersonView,
    /// The execution that opened it.
    execution_id: String,
    /// The machine it is about, when known (tickets opened for alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ast_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    asset_id: Option<String>,
    /// The alert it was opened for (automation).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alr_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    alert_id: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PersonView {
    issuer: String,
    subject: String,
}

/// A ticket with its comments and history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketDetail {
    #[serde(flatten)]
    ticket: TicketView,
    comments: Vec<CommentView>,
    history: Vec<HistoryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommentView {
    id: String,
    body: String,
    visibility: String,
    author: PersonView,
    execution_id: String,
    created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryView {
    /// `created`, `status_changed` or `commented`.
    change: String,
    from_status: Option<String>,
    to_status: Option<String>,
    actor: PersonView,
    execution_id: String,
    at: String,
}

fn person(actor: anchor_store::executions::Actor) -> PersonView {
    PersonView { issuer: actor.issuer, subject: actor.subject }
}

impl From<Ticket> for TicketView {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            title: t.title,
            description: t.description,
            priority: t.priority.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            created_by: person(t.created_by),
            execution_id: t.execution_id,
            asset_id: t.asset_id,
            alert_id: t.alert_id,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id,
            body: c.body,
            visibility: c.visibility.as_str().to_owned(),
            author: person(c.author),
            execution_id: c.execution_id,
            created_at: rfc3339(c.created_at),
        }
    }
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        Self {
            change: h.change,
            from_status: h.from_status.map(|s| s.as_str().to_owned()),
            to_status: h.to_status.map(|s| s.as_str().to_owned()),
            actor: person(h.actor),
            execution_id: h.execution_id,
            at: rfc3339(h.at),
        }
    }
}

fn ticket_id(raw: &str) -> Result<TicketId, Problem> {
    raw.parse().map_err(|_| Problem::not_found(format!("no ticket {raw:?} in this workspace")))
}

/// The ticket's current status, or 404.
async fn current_status(state: &AppState, workspace: &Workspace, id: TicketId) -> Result<TicketStatus, Problem> {
    let mut tx = state.db.begin_workspace(workspace).await?;
    let ticket = tx.ticket(id).await?;
    tx.rollback().await?;
    ticket.map(|t| t.status).ok_or_else(|| Problem::not_found(format!("no ticket {id} in this workspace")))
}

/// Open a ticket (a command: answered 202 with its execution).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"),
           ("Idempotency-Key" = String, Header, description = "Makes retries safe"),
           ("Prefer" = Option<String>, Header, description = "`wait=N` (N <= 30): answer with the finished execution if it finishes in time")),
    request_body = NewTicketBody,
    responses(
        (status = 202, body = Accepted, headers(("Location" = String, description = "The execution's URL"))),
        (status = 200, description = "Finished within `Prefer: wait`", body = ExecutionView),
        (status = 422, description = "Invalid title, description or priority", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_ticket(
    scope: WorkspaceScope<perm::TicketsWrite>,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewTicketBody>,
) -> Result<Response, Problem> {
    let command = Command::TicketCreate(TicketCreate {
        title: body.title,
        description: body.description,
        priority: body.priority,
        asset_id: None,
        alert_id: None,
    });
    commands::submit(&state.commands, &state.db, &scope.workspace, &scope.caller, scope.role, &headers, command).await
}

/// Move a ticket along its lifecycle (a command). A move the lifecycle does
/// not allow from the ticket's current status is refused at once (409).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/tickets/{id}/transitions", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Ticket id"),
           ("Idempotency-Key" = String, Header, description = "Makes retries safe"),
           ("Prefer" = Option<String>, Header, description = "`wait=N` (N <= 30)")),
    request_body = TransitionBody,
    responses(
        (status = 202, body = Accepted, headers(("Location" = String, description = "The execution's URL"))),
        (status = 200, description = "Finished within `Prefer: wait`", body = ExecutionView),
        (status = 404, description = "No such ticket", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`transition_not_allowed`: the lifecycle forbids this move now", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn transition_ticket(
    scope: WorkspaceScope<perm::TicketsWrite>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Response, Problem> {
    let id = ticket_id(&id)?;
    let status = current_status(&state, &scope.workspace, id).await?;
    if let Err(e) = status.transition(body.to) {
        return Err(Problem::new(StatusCode::CONFLICT, "transition_not_allowed", e.to_string()));
    }
    let command = Command::TicketTransition(TicketTransition { ticket_id: id, to: body.to });
    commands::submit(&state.commands, &state.db, &scope.workspace, &scope.caller, scope.role, &headers, command).await
}

/// Comment on a ticket (a command).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/tickets/{id}/comments", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Ticket id"),
           ("Idempotency-Key" = String, Header, description = "Makes retries safe"),
           ("Prefer" = Option<String>, Header, description = "`wait=N` (N <= 30)")),
    request_body = CommentBody,
    responses(
        (status = 202, body = Accepted, headers(("Location" = String, description = "The execution's URL"))),
        (status = 200, description = "Finished within `Prefer: wait`", body = ExecutionView),
        (status = 404, description = "No such ticket", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn comment_ticket(
    scope: WorkspaceScope<perm::TicketsWrite>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Response, Problem> {
    let id = ticket_id(&id)?;
    current_status(&state, &scope.workspace, id).await?;
    let command = Command::TicketComment(TicketComment { ticket_id: id, body: body.body, visibility: body.visibility });
    commands::submit(&state.commands, &state.db, &scope.workspace, &scope.caller, scope.role, &headers, command).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TicketQuery {
    /// Only tickets in this status.
    status: Option<String>,
    /// Only tickets of this priority.
    priority: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List tickets, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), TicketQuery),
    responses((status = 200, body = Page<TicketView>)))]
pub(crate) async fn list_tickets(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TicketQuery>,
) -> Result<Json<Page<TicketView>>, Problem> {
    let page = PageParams { limit: query.limit, cursor: query.cursor.clone() };
    let limit = page.limit()?;
    let cursor = page.cursor()?;
    let filter = TicketFilter {
        status: query
            .status
            .as_deref()
            .map(|s| {
                TicketStatus::parse(s)
                    .ok_or_else(|| Problem::unprocessable("invalid_query", "/status", format!("unknown status {s:?}")))
            })
            .transpose()?,
        priority: query
            .priority
            .as_deref()
            .map(|p| {
                Priority::parse(p).ok_or_else(|| {
                    Problem::unprocessable("invalid_query", "/priority", format!("unknown priority {p:?}"))
                })
            })
            .transpose()?,
    };
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rows = tx.tickets(&filter, cursor.as_deref(), limit + 1).await?;
    tx.rollback().await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.clone(), TicketView::from)))
}

/// A ticket with its comments and history.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Ticket id")),
    responses(
        (status = 200, body = TicketDetail),
        (status = 404, description = "No such ticket", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_ticket(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<TicketDetail>, Problem> {
    let id = ticket_id(&id)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let Some(ticket) = tx.ticket(id).await? else {
        return Err(Problem::not_found(format!("no ticket {id} in this workspace")));
    };
    let comments = tx.ticket_comments(id).await?;
    let history = tx.ticket_history(id).await?;
    tx.rollback().await?;
    Ok(Json(TicketDetail {
        ticket: ticket.into(),
        comments: comments.into_iter().map(Into::into).collect(),
        history: history.into_iter().map(Into::into).collect(),
    }))
}
