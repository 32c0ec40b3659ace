//! Time entries: commands (log on a ticket, change, submit, approve,
//! reject, discard) answered 202 with an execution, and lists newest first
//! with filters, for one ticket or the whole workspace.

use anchor_commands::time_entries::{
    TimeEntryApprove, TimeEntryDiscard, TimeEntryLog, TimeEntryReject, TimeEntrySubmit, TimeEntryUpdate,
};
use anchor_domain::{TicketId, TimeEntryId, TimeEntryState};
use anchor_store::time_entries::{TimeEntry, TimeEntryFilter, iso_date};
use axum::{Json, extract::State};
use serde::Deserialize;
use time::Date;
use utoipa::IntoParams;
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
    const ENTRY: &str = "time entry";
    ApiRoutes::new()
        .routes(routes!(list_time_entries))
        .routes(routes!(get_time_entry))
        .routes(routes!(list_ticket_time_entries))
        .command_on::<TimeEntryLog>("/api/v1/workspaces/{ws}/tickets/{id}/time-entries", "ticket_id", "ticket")
        .change_on::<TimeEntryUpdate>("/api/v1/workspaces/{ws}/time-entries/{id}", "time_entry_id", ENTRY)
        .command_on::<TimeEntrySubmit>("/api/v1/workspaces/{ws}/time-entries/{id}/submit", "time_entry_id", ENTRY)
        .command_on::<TimeEntryApprove>("/api/v1/workspaces/{ws}/time-entries/{id}/approve", "time_entry_id", ENTRY)
        .command_on::<TimeEntryReject>("/api/v1/workspaces/{ws}/time-entries/{id}/reject", "time_entry_id", ENTRY)
        .command_on::<TimeEntryDiscard>("/api/v1/workspaces/{ws}/time-entries/{id}/discard", "time_entry_id", ENTRY)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimeEntryQuery {
    /// Only entries in this state.
    #[param(inline)]
    state: Option<TimeEntryState>,
    /// Only the work of this person: `me`, or a subject (the `sub` of their tokens).
    #[param(min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$", example = "me")]
    staff: Option<String>,
    /// With `staff` (a subject): their issuer. Any issuer when not given.
    #[param(min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")]
    staff_issuer: Option<String>,
    /// Only billable (`true`) or non-billable (`false`) entries.
    billable: Option<bool>,
    /// Only work done on this day or later (`2026-03-01`).
    #[serde(default, with = "iso_date::option")]
    #[param(value_type = Option<String>, format = Date)]
    from: Option<Date>,
    /// Only work done on this day or earlier.
    #[serde(default, with = "iso_date::option")]
    #[param(value_type = Option<String>, format = Date)]
    to: Option<Date>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TicketIdQuery {
    /// Only entries on this ticket.
    #[param(inline)]
    ticket_id: Option<TicketId>,
}

impl TimeEntryQuery {
    /// The filter, with `me` as the caller.
    fn filter<P>(self, scope: &WorkspaceScope<P>, ticket_id: Option<TicketId>) -> Result<TimeEntryFilter, Problem> {
        for (value, path) in [(self.staff.as_ref(), "/staff"), (self.staff_issuer.as_ref(), "/staff_issuer")] {
            if value.is_some_and(|v| v.is_empty() || v.chars().count() > 255 || v.chars().any(char::is_control)) {
                let message = "1 to 255 characters, no control characters";
                return Err(Problem::unprocessable("invalid_query", path, message));
            }
        }
        let staff = match self.staff {
            None => None,
            Some(me) if me == "me" => {
                let identity = &scope.caller.identity;
                Some((Some(identity.issuer.clone()), identity.subject.clone()))
            }
            Some(subject) => Some((self.staff_issuer, subject)),
        };
        Ok(TimeEntryFilter {
            state: self.state,
            ticket_id,
            staff,
            billable: self.billable,
            from: self.from,
            to: self.to,
        })
    }
}

/// List time entries, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/time-entries", tag = "time entries", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), TicketIdQuery, TimeEntryQuery, PageParams),
    responses((status = 200, body = Page<TimeEntry>)))]
pub(crate) async fn list_time_entries(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ApiQuery(ticket): ApiQuery<TicketIdQuery>,
    ApiQuery(query): ApiQuery<TimeEntryQuery>,
    paging: Paging,
) -> Result<Json<Page<TimeEntry>>, Problem> {
    let filter = query.filter(&scope, ticket.ticket_id)?;
    let (after, limit) = (paging.after::<TimeEntryId>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.time_entries(&filter, after, limit).await }))
        .await?;
    Ok(Json(paging.page(rows, |t| t.id, |t| t)))
}

/// The time logged on a ticket, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/tickets/{id}/time-entries", tag = "time entries",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Ticket id"),
           TimeEntryQuery, PageParams),
    responses((status = 200, body = Page<TimeEntry>)))]
pub(crate) async fn list_ticket_time_entries(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(ticket): ObjectId<TicketId>,
    ApiQuery(query): ApiQuery<TimeEntryQuery>,
    paging: Paging,
) -> Result<Json<Page<TimeEntry>>, Problem> {
    let filter = query.filter(&scope, Some(ticket))?;
    let (after, limit) = (paging.after::<TimeEntryId>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| {
            Box::pin(async move {
                match tx.ticket(ticket).await? {
                    Some(_) => tx.time_entries(&filter, after, limit).await.map(Some),
                    None => Ok(None),
                }
            })
        })
        .await?;
    let rows = rows.ok_or_else(|| not_found(&ticket))?;
    Ok(Json(paging.page(rows, |t| t.id, |t| t)))
}

/// A time entry.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/time-entries/{id}", tag = "time entries",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Time entry id")),
    responses((status = 200, body = TimeEntry)))]
pub(crate) async fn get_time_entry(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TimeEntryId>,
) -> Result<Json<TimeEntry>, Problem> {
    let entry = state.db.read(&scope.workspace, |tx| Box::pin(tx.time_entry(id))).await?;
    entry.map(Json).ok_or_else(|| not_found(&id))
}
