//! Tickets: commands (open, move, comment) answered 202 with an execution,
//! and reads served from the workspace's schema.

use anchor_commands::tickets::{TicketComment, TicketCreate, TicketTransition};
use anchor_domain::{ContactId, Priority, SiteId, TicketId, TicketStatus};
use anchor_store::tickets::{Comment, HistoryEntry, Ticket, TicketFilter};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::Problem,
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_tickets))
        .routes(routes!(get_ticket))
        .command::<TicketCreate>("/api/v1/workspaces/{ws}/tickets")
        .command_on::<TicketTransition>("/api/v1/workspaces/{ws}/tickets/{id}/transitions", "ticket_id", "ticket")
        .command_on::<TicketComment>("/api/v1/workspaces/{ws}/tickets/{id}/comments", "ticket_id", "ticket")
}

/// A ticket with its comments and history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketDetail {
    #[serde(flatten)]
    ticket: Ticket,
    comments: Vec<Comment>,
    history: Vec<HistoryEntry>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TicketQuery {
    /// Only tickets in this status.
    #[param(inline)]
    status: Option<TicketStatus>,
    /// Only tickets of this priority.
    #[param(inline)]
    priority: Option<Priority>,
    /// Only tickets for this contact.
    #[param(inline)]
    contact_id: Option<ContactId>,
    /// Only tickets at this site.
    #[param(inline)]
    site_id: Option<SiteId>,
}

/// List tickets, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), TicketQuery, PageParams),
    responses((status = 200, body = Page<Ticket>)))]
pub(crate) async fn list_tickets(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TicketQuery>,
    paging: Paging,
) -> Result<Json<Page<Ticket>>, Problem> {
    let filter = TicketFilter {
        status: query.status,
        priority: query.priority,
        contact_id: query.contact_id,
        site_id: query.site_id,
    };
    let (after, limit) = (paging.after()?, paging.fetch());
    let rows =
        state.db.read(&scope.workspace, |tx| Box::pin(async move { tx.tickets(&filter, after, limit).await })).await?;
    Ok(Json(paging.page(rows, |t| t.id, |t| t)))
}

/// A ticket with its comments and history.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketDetail)))]
pub(crate) async fn get_ticket(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TicketId>,
) -> Result<Json<TicketDetail>, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let Some(ticket) = tx.ticket(id).await? else { return Err(not_found(&id)) };
    let comments = tx.ticket_comments(id).await?;
    let history = tx.ticket_history(id).await?;
    tx.rollback().await?;
    Ok(Json(TicketDetail { ticket, comments, history }))
}
