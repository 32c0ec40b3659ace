//! Tickets: commands (open, move, comment) answered 202 with an execution,
//! and reads served from the workspace's schema.

use anchor_commands::{
    assignment::{TicketAssign, TicketMerge, TicketRelate, TicketSetQueue, TicketTag, TicketUnassign},
    tickets::{TicketComment, TicketCreate, TicketSetPriority, TicketTransition},
};
use anchor_domain::{Awaiting, ContactId, Priority, QueueId, SiteId, SlaState, Tag, TicketId, TicketStatus};
use anchor_store::{
    executions::Actor,
    tickets::{AssigneeFilter, Comment, HistoryEntry, Ticket, TicketFilter},
};
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
        .command_on::<TicketSetPriority>("/api/v1/workspaces/{ws}/tickets/{id}/priority", "ticket_id", "ticket")
        .command_on::<TicketAssign>("/api/v1/workspaces/{ws}/tickets/{id}/assign", "ticket_id", "ticket")
        .command_on::<TicketUnassign>("/api/v1/workspaces/{ws}/tickets/{id}/unassign", "ticket_id", "ticket")
        .command_on::<TicketSetQueue>("/api/v1/workspaces/{ws}/tickets/{id}/queue", "ticket_id", "ticket")
        .command_on::<TicketTag>("/api/v1/workspaces/{ws}/tickets/{id}/tags", "ticket_id", "ticket")
        .command_on::<TicketMerge>("/api/v1/workspaces/{ws}/tickets/{id}/merge", "ticket_id", "ticket")
        .command_on::<TicketRelate>("/api/v1/workspaces/{ws}/tickets/{id}/related", "ticket_id", "ticket")
}

/// A ticket with its comments, history and SLA clocks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketDetail {
    #[serde(flatten)]
    ticket: Ticket,
    comments: Vec<Comment>,
    history: Vec<HistoryEntry>,
    /// Tickets related to this one.
    #[schema(value_type = Vec<String>)]
    related: Vec<TicketId>,
    /// Tickets merged into this one (each stays readable and points here).
    #[schema(value_type = Vec<String>)]
    merged: Vec<TicketId>,
    /// The SLA clocks as of now, replayed from the ticket's clock log: for
    /// `first_response`, `next_update` and `resolution` each its `state`,
    /// `due_at`, `warning_at`, `elapsed` and `paused` business seconds; and
    /// `changes`, what happened to the clocks in order. Absent when the
    /// ticket has no clocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    sla: Option<anchor_sla::SlaClocks>,
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
    /// Only tickets in this SLA state: `none`, `running`, `warning`, `breached`, `paused` or `met`.
    #[param(inline)]
    sla_state: Option<SlaState>,
    /// Only tickets in this queue.
    #[param(inline)]
    queue_id: Option<QueueId>,
    /// Only tickets assigned to `me`, to nobody (`none`), or to the staff member with this subject
    /// (at the caller's own issuer).
    #[param(min_length = 1, max_length = 255)]
    assignee: Option<String>,
    /// Only tickets with this tag.
    #[param(inline)]
    tag: Option<Tag>,
    /// Only tickets where `us` or the `client` owes the next answer.
    #[param(inline)]
    awaiting: Option<Awaiting>,
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
    if let Some(who) = &query.assignee
        && (who.is_empty() || who.chars().count() > 255)
    {
        return Err(Problem::unprocessable(
            "invalid_query",
            "/assignee",
            "assignee is `me`, `none` or a subject of 1-255 characters",
        ));
    }
    let filter = TicketFilter {
        status: query.status,
        priority: query.priority,
        contact_id: query.contact_id,
        site_id: query.site_id,
        sla_state: query.sla_state,
        queue_id: query.queue_id,
        assignee: query.assignee.as_deref().map(|who| match who {
            "none" => AssigneeFilter::Unassigned,
            "me" => AssigneeFilter::Is(Actor {
                issuer: scope.caller.identity.issuer.clone(),
                subject: scope.caller.identity.subject.clone(),
            }),
            subject => {
                AssigneeFilter::Is(Actor { issuer: scope.caller.identity.issuer.clone(), subject: subject.to_owned() })
            }
        }),
        tag: query.tag,
        open_only: false,
        awaiting: query.awaiting,
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
    let related = tx.related_tickets(id).await?;
    let merged = tx.merged_tickets(id).await?;
    let now = tx.clock().await?;
    let sla = match anchor_commands::sla::clocks(&mut tx, id, now).await {
        Ok(clocks) => clocks,
        Err(anchor_commands::sla::SlaError::Store(e)) => return Err(e.into()),
        Err(anchor_commands::sla::SlaError::Broken(why)) => {
            tracing::error!(ticket = %id, why, "a ticket's SLA clocks cannot be replayed");
            None
        }
    };
    tx.rollback().await?;
    Ok(Json(TicketDetail { ticket, comments, history, related, merged, sla }))
}
