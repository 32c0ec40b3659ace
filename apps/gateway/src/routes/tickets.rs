//! Tickets: commands (open, move, comment) answered 202 with an execution,
//! and reads served from the workspace's schema.

use anchor_commands::{
    assignment::{TicketAssign, TicketMerge, TicketRelate, TicketSetQueue, TicketTag, TicketUnassign},
    tickets::{TicketComment, TicketCreate, TicketSetPriority, TicketTransition},
};
use anchor_domain::{Awaiting, ContactId, Priority, QueueId, SiteId, SlaState, Tag, TicketId, TicketStatus};
use anchor_store::{
    Workspace,
    executions::Actor,
    ticket_search::SearchText,
    tickets::{AssigneeFilter, Comment, HistoryEntry, Ticket, TicketFilter, TicketKey, TicketSort},
};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
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
    /// Only tickets in this status; `open` is every status but resolved and closed.
    #[param(inline)]
    status: Option<StatusFilter>,
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
    /// Full-text search over the title, description and comments (internal notes included), in
    /// web-search syntax: `printer -toner "out of paper" or scanner`. English stemming.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    q: Option<String>,
    /// Only tickets created at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<String>,
    /// Only tickets created before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    created_before: Option<String>,
    /// Only tickets last changed at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    updated_after: Option<String>,
    /// Only tickets last changed before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    updated_before: Option<String>,
    /// The order: `newest` (default), `updated` (last changed first), `sla_due` (soonest SLA
    /// deadline first, tickets without one last) or `priority` (p1 first, newest first within
    /// each). The cursor of one order names no place in another.
    #[param(value_type = Option<TicketSortName>, inline)]
    sort: Option<String>,
}

/// A ticket status to filter on, or `open` (every status but resolved and closed).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusFilter {
    Open,
    New,
    Triaged,
    InProgress,
    WaitingOnClient,
    Resolved,
    Closed,
}

impl StatusFilter {
    /// The one status, or None for `open`.
    fn status(self) -> Option<TicketStatus> {
        match self {
            Self::Open => None,
            Self::New => Some(TicketStatus::New),
            Self::Triaged => Some(TicketStatus::Triaged),
            Self::InProgress => Some(TicketStatus::InProgress),
            Self::WaitingOnClient => Some(TicketStatus::WaitingOnClient),
            Self::Resolved => Some(TicketStatus::Resolved),
            Self::Closed => Some(TicketStatus::Closed),
        }
    }
}

/// The orders of the ticket list.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the `sort` parameter, parsed from text to name it when wrong.
#[schema(rename_all = "snake_case")]
enum TicketSortName {
    Newest,
    Updated,
    SlaDue,
    Priority,
}

/// The parameters a ticket list and a saved view take.
pub(crate) const TICKET_QUERY_PARAMETERS: &[&str] = &[
    "status",
    "priority",
    "contact_id",
    "site_id",
    "sla_state",
    "queue_id",
    "assignee",
    "tag",
    "awaiting",
    "q",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "sort",
];

/// A ticket list's query, checked: the filter (without the search's
/// match, which the search port gives), the search text and the order.
#[derive(Debug, Clone)]
pub(crate) struct TicketListing {
    pub(crate) filter: TicketFilter,
    pub(crate) search: Option<SearchText>,
    pub(crate) sort: TicketSort,
}

/// An RFC 3339 time: `t` and `z` may be lowercase, and a leap second
/// (`:60`) is the second before it, as PostgreSQL has none.
fn moment(value: Option<&str>, name: &str) -> Result<Option<OffsetDateTime>, Problem> {
    let parse = |v: &str| {
        let mut text = v.to_ascii_uppercase();
        if text.get(17..19) == Some("60") {
            text.replace_range(17..19, "59");
        }
        OffsetDateTime::parse(&text, &Rfc3339).ok()
    };
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                Problem::unprocessable("invalid_query", &format!("/{name}"), format!("{name} is an RFC 3339 time"))
            })
        })
        .transpose()
}

impl TicketQuery {
    /// Parses a query string as the list takes it (a saved view's).
    pub(crate) fn from_query_string(query: &str) -> Result<Self, Problem> {
        if let Some((key, _)) =
            url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| !TICKET_QUERY_PARAMETERS.contains(&k.as_ref()))
        {
            return Err(Problem::unprocessable(
                "invalid_query",
                "/query",
                format!("{key:?} is not a parameter of the ticket list"),
            ));
        }
        let uri: axum::http::Uri = format!("/?{query}")
            .parse()
            .map_err(|_| Problem::unprocessable("invalid_query", "/query", "not a query string"))?;
        axum::extract::Query::<Self>::try_from_uri(&uri)
            .map(|axum::extract::Query(q)| q)
            .map_err(|e| Problem::unprocessable("invalid_query", "/query", e.body_text()))
    }

    /// Checks the query for `caller` (`assignee=me` is them): every bad
    /// parameter answered 422 naming it.
    pub(crate) fn listing(&self, caller: &Actor) -> Result<TicketListing, Problem> {
        if let Some(who) = &self.assignee
            && (who.is_empty() || who.chars().count() > 255)
        {
            return Err(Problem::unprocessable(
                "invalid_query",
                "/assignee",
                "assignee is `me`, `none` or a subject of 1-255 characters",
            ));
        }
        let search = self
            .q
            .as_deref()
            .map(|q| SearchText::parse(q).map_err(|why| Problem::unprocessable("invalid_query", "/q", why)))
            .transpose()?;
        let sort = match self.sort.as_deref() {
            None => TicketSort::default(),
            Some(name) => TicketSort::parse(name).ok_or_else(|| {
                Problem::unprocessable(
                    "invalid_query",
                    "/sort",
                    format!("sort is one of {}", TicketSort::NAMES.join(", ")),
                )
            })?,
        };
        let filter = TicketFilter {
            status: self.status.and_then(StatusFilter::status),
            priority: self.priority,
            contact_id: self.contact_id,
            site_id: self.site_id,
            sla_state: self.sla_state,
            queue_id: self.queue_id,
            assignee: self.assignee.as_deref().map(|who| match who {
                "none" => AssigneeFilter::Unassigned,
                "me" => AssigneeFilter::Is(caller.clone()),
                subject => AssigneeFilter::Is(Actor { issuer: caller.issuer.clone(), subject: subject.to_owned() }),
            }),
            tag: self.tag.clone(),
            search: None,
            created_after: moment(self.created_after.as_deref(), "created_after")?,
            created_before: moment(self.created_before.as_deref(), "created_before")?,
            updated_after: moment(self.updated_after.as_deref(), "updated_after")?,
            updated_before: moment(self.updated_before.as_deref(), "updated_before")?,
            open_only: matches!(self.status, Some(StatusFilter::Open)),
            awaiting: self.awaiting,
        };
        Ok(TicketListing { filter, search, sort })
    }
}

impl TicketListing {
    /// The filter with the search port's match, if there is a search.
    pub(crate) async fn filter(self, state: &AppState, workspace: &Workspace) -> Result<TicketFilter, Problem> {
        let mut filter = self.filter;
        if let Some(text) = &self.search {
            filter.search = Some(state.ticket_search.search(workspace, text).await?);
        }
        Ok(filter)
    }
}

pub(crate) fn caller_actor<P>(scope: &WorkspaceScope<P>) -> Actor {
    Actor { issuer: scope.caller.identity.issuer.clone(), subject: scope.caller.identity.subject.clone() }
}

/// List tickets: filtered, searched and sorted on the server, paged by keyset.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), TicketQuery, PageParams),
    responses((status = 200, body = Page<Ticket>),
              (status = 422, description = "A parameter is wrong; `errors` names it", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn list_tickets(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TicketQuery>,
    paging: Paging,
) -> Result<Json<Page<Ticket>>, Problem> {
    let listing = query.listing(&caller_actor(&scope))?;
    let sort = listing.sort;
    let after: Option<TicketKey> = paging.after()?;
    if after.is_some_and(|key| key.sort() != sort) {
        return Err(paging.not_found());
    }
    let filter = listing.filter(&state, &scope.workspace).await?;
    let limit = paging.fetch();
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.tickets(&filter, sort, after, limit).await }))
        .await?;
    Ok(Json(paging.page(rows, |t| sort.key(t), |t| t)))
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
