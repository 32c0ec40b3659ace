//! Saved ticket views: a named query string of the ticket list, personal or
//! shared, each listed with how many tickets it matches now (for its
//! reader: `assignee=me` is whoever reads it). Configuration, written
//! directly with a change record. Anyone who reads tickets saves views of
//! their own and may share them; only the owner changes a personal view; a
//! shared view is changed by its owner or by whoever manages the
//! workspace's settings. Another member's personal view does not exist for
//! the caller (404).

use anchor_auth::permissions::Permission;
use anchor_domain::ViewId;
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    ticket_views::{SavedView, TicketViewInput},
};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::{Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{FieldError, Problem, ProblemDocument},
    routes::{
        ApiRoutes,
        tickets::{TicketQuery, caller_actor},
    },
};

/// Counts are exact up to this many tickets, then "10000+".
const COUNT_CAP: i64 = 10_000;

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(list_views, create_view)).routes(routes!(get_view, update_view, delete_view))
}

/// A view as sent; `crate::schemas::TicketViewDocument` documents it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewBody {
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    shared: bool,
}

/// A saved view with how many tickets it matches for the caller now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CountedView {
    #[serde(flatten)]
    view: SavedView,
    /// Matching tickets, exact up to 10,000 (then 10,000).
    count: i64,
    /// The count to show: `"42"`, or `"10000+"` when more than 10,000 match.
    count_label: String,
}

/// Checks a body: the name, and the query as the ticket list would take it.
fn checked(body: &ViewBody, caller: &Actor) -> Result<(String, String), Problem> {
    let mut errors = Vec::new();
    let name = body.name.trim().to_owned();
    // `\S` in the document: white space as ECMAScript sees it.
    let space = |c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}';
    if name.chars().all(space) || name.chars().count() > 120 || name.chars().any(char::is_control) {
        errors.push(FieldError { path: "/name".into(), message: "1-120 characters on one line".into() });
    }
    let query = body.query.trim().trim_start_matches('?').to_owned();
    if query.len() > 2000 {
        errors.push(FieldError { path: "/query".into(), message: "at most 2,000 bytes".into() });
    } else if let Err(problem) = TicketQuery::from_query_string(&query).and_then(|q| q.listing(caller)) {
        let detail = problem.document().detail.clone();
        errors.push(FieldError { path: "/query".into(), message: detail });
    }
    if let Some(first) = errors.first().cloned() {
        return Err(Problem::unprocessable("invalid_ticket_view", &first.path, first.message).with_errors(errors));
    }
    Ok((name, query))
}

/// How many tickets `view` matches for the caller, up to [`COUNT_CAP`] + 1.
async fn counted(
    state: &AppState,
    scope: &WorkspaceScope<perm::TicketsRead>,
    tx: &mut WorkspaceTx,
    view: SavedView,
) -> Result<CountedView, Problem> {
    let mut counted = counted_each(state, scope, tx, vec![view]).await?;
    Ok(counted.pop().expect("one view, one count"))
}

/// Each view with its count: one bounded count statement for all of them, so a
/// page of views costs the same round trips however many it holds.
async fn counted_each(
    state: &AppState,
    scope: &WorkspaceScope<perm::TicketsRead>,
    tx: &mut WorkspaceTx,
    views: Vec<SavedView>,
) -> Result<Vec<CountedView>, Problem> {
    let caller = caller_actor(scope);
    let mut filters = Vec::with_capacity(views.len());
    for view in &views {
        let listing = TicketQuery::from_query_string(&view.query).and_then(|q| q.listing(&caller))?;
        filters.push(listing.filter(state, &scope.workspace).await?);
    }
    let counts = tx.count_tickets_each(&filters, COUNT_CAP + 1).await?;
    Ok(views
        .into_iter()
        .zip(counts)
        .map(|(view, count)| {
            let (count, count_label) =
                if count > COUNT_CAP { (COUNT_CAP, format!("{COUNT_CAP}+")) } else { (count, count.to_string()) };
            CountedView { view, count, count_label }
        })
        .collect())
}

fn visible_to(view: &SavedView, caller: &Actor) -> bool {
    view.shared || &view.owner == caller
}

/// Whether the caller may change or delete `view` (which they can see).
fn may_change(view: &SavedView, caller: &Actor, scope: &WorkspaceScope<perm::TicketsRead>) -> Result<(), Problem> {
    if &view.owner == caller || (view.shared && scope.allows(Permission::SettingsManage)) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not_view_owner",
            "only its owner, or whoever manages the workspace's settings, changes a shared view",
        ))
    }
}

/// The caller's own views and the shared ones, oldest first, each with its count.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/ticket-views", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PageParams),
    responses((status = 200, body = Page<CountedView>)))]
pub(crate) async fn list_views(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<CountedView>>, Problem> {
    let caller = caller_actor(&scope);
    let after: Option<ViewId> = paging.after()?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let views = tx.ticket_views(&caller, after, paging.fetch()).await?;
    let more = views.len() as i64 > paging.limit;
    let items = counted_each(&state, &scope, &mut tx, views.into_iter().take(paging.limit as usize).collect()).await?;
    tx.discard();
    let page = paging.page(items, |v| v.view.id, |v| v);
    Ok(Json(Page { next_cursor: if more { page.next_cursor } else { None }, items: page.items }))
}

/// Save a view (personal unless `shared`).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/ticket-views", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::TicketViewDocument,
    responses((status = 201, body = CountedView),
              (status = 422, description = "Invalid view; `errors` names every bad field", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_view(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ViewBody>,
) -> Result<Response, Problem> {
    let caller = caller_actor(&scope);
    let (name, query) = checked(&body, &caller)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let input = TicketViewInput { name: &name, query: &query, shared: body.shared };
    let view = tx.insert_ticket_view(&input, &caller).await?;
    changes::record(&mut tx, &scope, "ticket_view.created", &view.id, json!(view)).await?;
    let view = counted(&state, &scope, &mut tx, view).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A view with its count.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/ticket-views/{id}", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "View id")),
    responses((status = 200, body = CountedView),
              (status = 404, description = "No such view (or another member's personal one)", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_view(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ViewId>,
) -> Result<Json<CountedView>, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let view = tx.ticket_view(id).await?.filter(|v| visible_to(v, &caller_actor(&scope)));
    let Some(view) = view else { return Err(not_found(&id)) };
    let view = counted(&state, &scope, &mut tx, view).await?;
    tx.discard();
    Ok(Json(view))
}

/// Replace a view's name, query and sharing.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/ticket-views/{id}", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "View id")),
    request_body = crate::schemas::TicketViewDocument,
    responses((status = 200, body = CountedView),
              (status = 403, description = "Not the owner (nor, for a shared view, a settings manager)", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, description = "No such view", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid view", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_view(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ViewId>,
    ApiJson(body): ApiJson<ViewBody>,
) -> Result<Json<CountedView>, Problem> {
    let caller = caller_actor(&scope);
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let Some(view) = tx.ticket_view(id).await?.filter(|v| visible_to(v, &caller)) else { return Err(not_found(&id)) };
    may_change(&view, &caller, &scope)?;
    let (name, query) = checked(&body, &caller)?;
    let input = TicketViewInput { name: &name, query: &query, shared: body.shared };
    let Some(view) = tx.update_ticket_view(id, &input).await? else { return Err(not_found(&id)) };
    changes::record(&mut tx, &scope, "ticket_view.updated", &view.id, json!(view)).await?;
    let view = counted(&state, &scope, &mut tx, view).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Delete a view.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/ticket-views/{id}", tag = "tickets", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "View id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Not the owner (nor, for a shared view, a settings manager)", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, description = "No such view", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_view(
    scope: WorkspaceScope<perm::TicketsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ViewId>,
) -> Result<StatusCode, Problem> {
    let caller = caller_actor(&scope);
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let Some(view) = tx.ticket_view(id).await?.filter(|v| visible_to(v, &caller)) else { return Err(not_found(&id)) };
    may_change(&view, &caller, &scope)?;
    tx.delete_ticket_view(id).await?;
    changes::record(&mut tx, &scope, "ticket_view.deleted", id, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
