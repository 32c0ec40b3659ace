//! The Console's Service delivery tab: the ticket list (server-side filters
//! and keyset pages), a ticket's page (SLA clocks, timeline, composer,
//! lifecycle buttons valid now, assignment and priority), and the form to
//! open a ticket. Every change is a command submitted through the same desk
//! as the API ([`crate::commands::submit_as`]); the page it returns to shows
//! the command's outcome. Every control is a plain link or form.

use anchor_auth::permissions::Permission;
use anchor_commands::authorize::{Asking, Denial, Grant, authorize};
use anchor_domain::{ExecutionId, Priority, QueueId, SlaState, TicketId, TicketStatus, ViewId};
use anchor_store::{
    access::SubjectRef,
    executions::{Actor, Execution},
    queues::Queue,
    sessions::WebSession,
    ticket_views::SavedView,
    tickets::{AssigneeFilter, Comment, HistoryEntry, Ticket, TicketFilter},
};
use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::{
    WebState,
    commands::submit_as,
    pages::{self, ConsoleFrame},
    session::{MaybeSignedIn, SignedIn, random_token, same, same_origin},
    signin::audit_context,
};

/// Rows per page of the ticket list.
const PAGE_ROWS: i64 = 50;

pub(crate) fn not_signed_in() -> Response {
    Redirect::to("/").into_response()
}

/// The person's grant of `permission` in the workspace, or the page that says why not.
pub(crate) async fn grant(
    state: &WebState,
    session: &WebSession,
    headers: &HeaderMap,
    workspace: &str,
    permission: Permission,
    route: &'static str,
) -> Result<Grant, Response> {
    let audit = audit_context(headers, &session.issuer, &session.subject);
    let asking =
        Asking { who: SubjectRef { issuer: &session.issuer, subject: &session.subject }, audit: &audit, route };
    match authorize(&state.db, asking, workspace, permission).await {
        Ok(Ok(grant)) => Ok(grant),
        Ok(Err(Denial::NotAMember)) => Err(pages::declined(
            StatusCode::NOT_FOUND,
            "No such workspace",
            "You are not a member of this workspace, or it does not exist.",
        )),
        Ok(Err(Denial::Role { role, permission })) => Err(pages::declined(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("This needs {}; your role here is {role}. Ask an MSP admin of this workspace.", permission.name()),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

pub(crate) fn unavailable(e: anchor_store::StoreError) -> Response {
    tracing::error!(error = %e, "a Console page could not be read");
    pages::declined(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "Anchor could not load this page. Try again shortly.",
    )
}

/// `GET /w/{ws}/console`: the first tab.
pub(crate) async fn console(Path(workspace): Path<String>) -> Redirect {
    Redirect::to(&format!("/w/{}/console/service", urlencoding(&workspace)))
}

pub(crate) fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The list's filters, as the query string carries them: the ticket API's
/// parameters (`GET /api/v1/workspaces/{ws}/tickets`), so a saved view's
/// query means the same in the Console and in the API.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// A status, or `open` (every status but resolved and closed).
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    /// `me`, `none` or empty.
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    queue_id: Option<String>,
    #[serde(default)]
    sla_state: Option<String>,
    /// `us` or `client`: who owes the next reply.
    #[serde(default)]
    awaiting: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// Words to search for (titles, descriptions, replies, notes).
    #[serde(default)]
    q: Option<String>,
    /// `newest` (default), `updated`, `sla_due` or `priority`.
    #[serde(default)]
    sort: Option<String>,
    /// The last ticket of the previous page.
    #[serde(default)]
    after: Option<String>,
    /// The view just saved (its id), to say so.
    #[serde(default)]
    saved: Option<String>,
    /// Why the view was not saved.
    #[serde(default)]
    view_problem: Option<String>,
}

impl ListQuery {
    /// A query string as the list takes it (a saved view's); what it cannot
    /// read is left out, as the list's own parameters would be.
    fn parse(query: &str) -> Self {
        format!("/?{query}")
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|uri| Query::<Self>::try_from_uri(&uri).ok())
            .map(|Query(q)| q)
            .unwrap_or_default()
    }
}

/// What the list shows, read back for the form.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListFilters {
    pub status: Option<TicketStatus>,
    /// `open`: every status but resolved and closed.
    pub open_only: bool,
    pub priority: Option<Priority>,
    pub assignee: Option<String>,
    pub queue: Option<QueueId>,
    pub sla: Option<SlaState>,
    pub awaiting: Option<anchor_domain::Awaiting>,
    pub tag: Option<anchor_domain::Tag>,
    pub search: Option<anchor_store::ticket_search::SearchText>,
    pub sort: anchor_store::tickets::TicketSort,
}

impl ListFilters {
    /// The query string of these filters (for links that keep them, and saved views).
    pub(crate) fn query(&self) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if self.open_only {
            pairs.append_pair("status", "open");
        } else if let Some(status) = self.status {
            pairs.append_pair("status", status.as_str());
        }
        if let Some(priority) = self.priority {
            pairs.append_pair("priority", priority.as_str());
        }
        if let Some(assignee) = &self.assignee {
            pairs.append_pair("assignee", assignee);
        }
        if let Some(queue) = self.queue {
            pairs.append_pair("queue_id", &queue.to_string());
        }
        if let Some(sla) = self.sla {
            pairs.append_pair("sla_state", sla.as_str());
        }
        if let Some(awaiting) = self.awaiting {
            pairs.append_pair("awaiting", awaiting.as_str());
        }
        if let Some(tag) = &self.tag {
            pairs.append_pair("tag", tag.as_str());
        }
        if let Some(search) = &self.search {
            pairs.append_pair("q", search.as_str());
        }
        if self.sort != anchor_store::tickets::TicketSort::Newest {
            pairs.append_pair("sort", sort_name(self.sort));
        }
        pairs.finish()
    }

    /// The store's filter for `me`.
    fn filter(&self, me: &Actor) -> TicketFilter {
        TicketFilter {
            status: self.status.filter(|_| !self.open_only),
            priority: self.priority,
            queue_id: self.queue,
            sla_state: self.sla,
            assignee: match self.assignee.as_deref() {
                Some("me") => Some(AssigneeFilter::Is(me.clone())),
                Some("none") => Some(AssigneeFilter::Unassigned),
                _ => None,
            },
            tag: self.tag.clone(),
            open_only: self.open_only,
            awaiting: self.awaiting,
            search: self.search.clone().map(anchor_store::ticket_search::SearchMatch::InStore),
            ..TicketFilter::default()
        }
    }
}

fn filters_of(query: &ListQuery) -> ListFilters {
    let pick = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let status = pick(&query.status);
    ListFilters {
        open_only: status.as_deref() == Some("open"),
        status: status.as_deref().and_then(TicketStatus::parse),
        priority: pick(&query.priority).as_deref().and_then(Priority::parse),
        assignee: pick(&query.assignee).filter(|a| a == "me" || a == "none"),
        queue: pick(&query.queue_id).and_then(|q| q.parse().ok()),
        sla: pick(&query.sla_state).as_deref().and_then(SlaState::parse),
        awaiting: pick(&query.awaiting).as_deref().and_then(anchor_domain::Awaiting::parse),
        tag: pick(&query.tag).and_then(|t| anchor_domain::Tag::parse(&t).ok()),
        search: pick(&query.q).and_then(|q| anchor_store::ticket_search::SearchText::parse(&q).ok()),
        sort: pick(&query.sort).as_deref().and_then(anchor_store::tickets::TicketSort::parse).unwrap_or_default(),
    }
}

pub(crate) fn sort_name(sort: anchor_store::tickets::TicketSort) -> &'static str {
    use anchor_store::tickets::TicketSort as S;
    match sort {
        S::Newest => "newest",
        S::Updated => "updated",
        S::SlaDue => "sla_due",
        S::Priority => "priority",
    }
}

/// One page of the list, with what the filters need.
pub(crate) struct ListPage {
    /// The bulk form's key (each ticket's command gets one derived from it).
    pub bulk_key: String,
    pub tickets: Vec<Ticket>,
    pub queues: Vec<Queue>,
    pub next: Option<anchor_store::tickets::TicketKey>,
    pub now: OffsetDateTime,
    /// The saved views the person sees, each with how many tickets it matches
    /// for them now (exact up to [`VIEW_COUNT_CAP`]).
    pub views: Vec<(SavedView, i64)>,
    /// The view just saved, or why saving failed.
    pub view_notice: Option<Result<String, String>>,
}

/// Saved views shown beside the list (oldest first).
const VIEWS_SHOWN: i64 = 30;
/// View counts are exact up to this many tickets.
pub(crate) const VIEW_COUNT_CAP: i64 = 10_000;

/// `GET /w/{ws}/console/service`.
pub(crate) async fn service(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let grant =
        match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, "GET /w/{ws}/console/service")
            .await
        {
            Ok(grant) => grant,
            Err(page) => return page,
        };
    let filters = filters_of(&query);
    let me = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let filter = filters.filter(&me);
    let sort = filters.sort;
    let after = query
        .after
        .as_deref()
        .and_then(|a| a.parse::<anchor_store::tickets::TicketKey>().ok())
        .filter(|key| key.sort() == sort);
    let view_problem = query.view_problem.clone();
    let saved = query.saved.as_deref().and_then(|v| v.parse::<ViewId>().ok());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let mut tickets = tx.tickets(&filter, sort, after, PAGE_ROWS + 1).await?;
                let next = (tickets.len() as i64 > PAGE_ROWS).then(|| {
                    tickets.truncate(PAGE_ROWS as usize);
                    tickets.last().map(|t| sort.key(t))
                });
                let queues = tx.queues().await?;
                let now = tx.clock().await?;
                let saved_views = tx.ticket_views(&me, None, VIEWS_SHOWN).await?;
                let matching: Vec<_> =
                    saved_views.iter().map(|view| filters_of(&ListQuery::parse(&view.query)).filter(&me)).collect();
                let counts = tx.count_tickets_each(&matching, VIEW_COUNT_CAP + 1).await?;
                let views: Vec<_> = saved_views.into_iter().zip(counts).collect();
                let view_notice = match (saved, view_problem) {
                    (_, Some(problem)) => Some(Err(problem)),
                    (Some(id), None) => views.iter().find(|(v, _)| v.id == id).map(|(v, _)| Ok(v.name.clone())),
                    _ => None,
                };
                Ok(ListPage {
                    bulk_key: random_token(),
                    tickets,
                    queues,
                    next: next.flatten(),
                    now,
                    views,
                    view_notice,
                })
            })
        })
        .await;
    match read {
        Ok(list) => {
            let frame = frame(&session, &grant);
            if is_fragment(&headers) {
                pages::fragment(pages::ticket_list_fragment(&frame, &filters, &list))
            } else {
                pages::page(StatusCode::OK, pages::ticket_list(&frame, &filters, &list))
            }
        }
        Err(e) => unavailable(e),
    }
}

/// Whether htmx asks for the fragment only (not when it restores history,
/// which needs the whole page).
pub(crate) fn is_fragment(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true") && headers.get("hx-history-restore-request").is_none()
}

/// The form that saves the list's filters as a view.
#[derive(Debug, Deserialize)]
pub(crate) struct SaveViewForm {
    csrf_token: String,
    name: String,
    #[serde(default)]
    query: String,
    /// `yes` when every member of staff should see it.
    #[serde(default)]
    shared: Option<String>,
}

/// `POST /w/{ws}/console/service/views`: saves the list's filters as a view
/// (configuration: written directly, with a change record and its evidence).
pub(crate) async fn save_view(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<SaveViewForm>, FormRejection>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/service/views";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    // The query as the list reads it, written back in its own words: what is
    // saved is exactly what the list showed.
    let query = filters_of(&ListQuery::parse(form.query.trim().trim_start_matches('?'))).query();
    let base = format!("/w/{}/console/service", urlencoding(grant.workspace.slug().as_str()));
    let back = |extra: &str| {
        let sep = if query.is_empty() { "" } else { "&" };
        Redirect::to(&format!("{base}?{query}{sep}{extra}")).into_response()
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        return back("view_problem=A+view%27s+name+is+1-120+characters+on+one+line.");
    }
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let shared = form.shared.as_deref() == Some("yes");
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        let input = anchor_store::ticket_views::TicketViewInput { name, query: &query, shared };
        let view = tx.insert_ticket_view(&input, &actor).await?;
        let target = view.id.to_string();
        let change = anchor_store::changes::NewChange {
            action: "ticket_view.created",
            target: &target,
            actor: &actor,
            actor_role: Some(grant.role),
            details: json!(view),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, anchor_store::StoreError>(view.id)
    }
    .await;
    match saved {
        Ok(id) => back(&format!("saved={id}")),
        Err(e) => unavailable(e),
    }
}

/// The form that removes a saved view.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteViewForm {
    csrf_token: String,
    view_id: String,
}

/// `POST /w/{ws}/console/service/views/delete`: its owner removes a view; a
/// shared one may also be removed by whoever manages the workspace's settings.
pub(crate) async fn delete_view(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<DeleteViewForm>, FormRejection>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/service/views/delete";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let missing = || pages::declined(StatusCode::NOT_FOUND, "No such view", "There is no such saved view here.");
    let Ok(id) = form.view_id.parse::<ViewId>() else { return missing() };
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let removed = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        let Some(view) = tx.ticket_view(id).await?.filter(|v| v.shared || v.owner == actor) else {
            return Ok(Err(missing()));
        };
        if view.owner != actor && !grant.allows(Permission::SettingsManage) {
            return Ok(Err(pages::declined(
                StatusCode::FORBIDDEN,
                "Not yours to remove",
                "Only its owner, or whoever manages the workspace's settings, removes a shared view.",
            )));
        }
        tx.delete_ticket_view(id).await?;
        let target = id.to_string();
        let change = anchor_store::changes::NewChange {
            action: "ticket_view.deleted",
            target: &target,
            actor: &actor,
            actor_role: Some(grant.role),
            details: json!({"name": view.name}),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, anchor_store::StoreError>(Ok(()))
    }
    .await;
    match removed {
        Ok(Ok(())) => Redirect::to(&format!("/w/{}/console/service", urlencoding(grant.workspace.slug().as_str())))
            .into_response(),
        Ok(Err(page)) => page,
        Err(e) => unavailable(e),
    }
}

pub(crate) fn frame<'a>(session: &'a WebSession, grant: &'a Grant) -> ConsoleFrame<'a> {
    ConsoleFrame {
        who: &session.subject,
        issuer: &session.issuer,
        csrf: &session.csrf_token,
        workspace: &grant.workspace,
        may_write: grant.allows(Permission::TicketsWrite),
        role: grant.role.as_str(),
        may_admin: grant.allows(Permission::SettingsManage),
        may_read_assets: grant.allows(Permission::AssetsRead),
        may_read_alerts: grant.allows(Permission::AlertsRead),
        may_manage_alerts: grant.allows(Permission::AlertsManage),
        may_revoke_agents: grant.allows(Permission::EnrollmentManage),
        may_read_billing: grant.allows(Permission::BillingRead),
    }
}

/// Everything a ticket's page shows.
pub(crate) struct TicketPage {
    pub ticket: Ticket,
    pub comments: Vec<Comment>,
    pub history: Vec<HistoryEntry>,
    pub sla: Option<anchor_sla::SlaClocks>,
    pub queue: Option<Queue>,
    pub time_entries: Vec<anchor_store::time_entries::TimeEntry>,
    /// Today (UTC), for the time form's default day.
    pub today: time::Date,
    pub outcome: Option<(Execution, &'static str)>,
    pub now: OffsetDateTime,
    /// A fresh key for each form on the page.
    pub keys: Vec<String>,
    /// The client's ratings of the ticket's resolutions (from the Portal).
    pub ratings: Vec<anchor_store::tickets::Rating>,
    /// E-mail to the ticket's contact about it, newest first.
    pub notifications: Vec<anchor_store::notifications::Notification>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TicketQuery {
    /// The execution of the command that brought the person here.
    #[serde(default)]
    outcome: Option<String>,
    /// `live`: under htmx, only what a colleague's command may change.
    #[serde(default)]
    part: Option<String>,
}

/// `GET /w/{ws}/console/service/tickets/{id}`.
pub(crate) async fn ticket(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/tickets/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let missing =
        || pages::declined(StatusCode::NOT_FOUND, "No such ticket", "There is no such ticket in this workspace.");
    let Ok(id) = id.parse::<TicketId>() else { return missing() };
    let outcome = query.outcome.as_deref().and_then(|o| o.parse::<ExecutionId>().ok());
    let live = query.part.as_deref() == Some("live");
    let may_see_executions = grant.allows(Permission::ExecutionsRead);
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(ticket) = tx.ticket(id).await? else { return Ok(None) };
                let comments = tx.ticket_comments(id).await?;
                let history = tx.ticket_history(id).await?;
                let now = tx.clock().await?;
                let sla = anchor_commands::sla::clocks(tx, id, now).await.unwrap_or_else(|e| {
                    tracing::error!(ticket = %id, error = %e, "a ticket's SLA clocks cannot be replayed");
                    None
                });
                let queue = match ticket.queue_id {
                    Some(queue) => tx.queue(queue).await?,
                    None => None,
                };
                let outcome = match outcome.filter(|_| may_see_executions) {
                    Some(execution) => tx.execution(execution).await?.map(|e| {
                        let summary = anchor_commands::registry::find(&e.command).map_or("Command", |s| s.summary);
                        (e, summary)
                    }),
                    None => None,
                };
                let filter = anchor_store::time_entries::TimeEntryFilter { ticket_id: Some(id), ..Default::default() };
                let time_entries = tx.time_entries(&filter, None, 200).await?;
                let keys = (0..(10 + time_entries.len())).map(|_| random_token()).collect();
                let today = now.date();
                let ratings = tx.ratings(id).await?;
                let notifications = tx.notifications_about(&id.to_string(), 10).await?;
                Ok(Some(TicketPage {
                    ticket,
                    comments,
                    history,
                    sla,
                    queue,
                    time_entries,
                    today,
                    outcome,
                    now,
                    keys,
                    ratings,
                    notifications,
                }))
            })
        })
        .await;
    match read {
        Ok(Some(page)) if live && is_fragment(&headers) => {
            pages::fragment(pages::ticket_live(&frame(&session, &grant), &page))
        }
        Ok(Some(page)) => pages::page(StatusCode::OK, pages::ticket_page(&frame(&session, &grant), &page)),
        Ok(None) => missing(),
        Err(e) => unavailable(e),
    }
}

/// `GET /w/{ws}/console/service/new`.
pub(crate) async fn new_ticket(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/new";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    match state.db.read(&grant.workspace, |tx| Box::pin(tx.queues())).await {
        Ok(queues) => {
            pages::page(StatusCode::OK, pages::new_ticket(&frame(&session, &grant), &queues, &random_token()))
        }
        Err(e) => unavailable(e),
    }
}

/// A form from the Service delivery pages: the command and its fields.
#[derive(Debug, Deserialize)]
pub(crate) struct ActForm {
    csrf_token: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    command: String,
    #[serde(default)]
    ticket_id: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    queue_id: Option<String>,
    #[serde(default)]
    work_type: Option<String>,
    #[serde(default)]
    minutes: Option<String>,
    #[serde(default)]
    worked_on: Option<String>,
    /// A checkbox: present when ticked.
    #[serde(default)]
    billable: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    time_entry_id: Option<String>,
}

/// The command's arguments from the form's fields (empty fields left out,
/// so the command's own parsing names what is missing).
fn arguments(form: &ActForm) -> Result<Value, String> {
    let mut args = Map::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            args.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    };
    match form.command.as_str() {
        "ticket.create" => {
            put("title", &form.title);
            put("description", &form.description);
            put("priority", &form.priority);
            put("queue_id", &form.queue_id);
        }
        "ticket.transition" => {
            put("ticket_id", &form.ticket_id);
            put("to", &form.to);
        }
        "ticket.comment" => {
            put("ticket_id", &form.ticket_id);
            put("body", &form.body);
            put("visibility", &form.visibility);
        }
        "ticket.set_priority" => {
            put("ticket_id", &form.ticket_id);
            put("priority", &form.priority);
        }
        "ticket.assign" => {
            put("ticket_id", &form.ticket_id);
            args.insert("assignee".into(), json!("me"));
        }
        "ticket.unassign" => put("ticket_id", &form.ticket_id),
        "time_entry.log" => {
            put("ticket_id", &form.ticket_id);
            put("work_type", &form.work_type);
            put("worked_on", &form.worked_on);
            put("note", &form.note);
            if let Some(minutes) = form.minutes.as_deref().filter(|m| !m.trim().is_empty()) {
                let minutes: i64 =
                    minutes.trim().parse().map_err(|_| "Minutes: a whole number, 1 to 1440.".to_owned())?;
                args.insert("minutes".into(), json!(minutes));
            }
            args.insert("billable".into(), json!(form.billable.is_some()));
        }
        "time_entry.submit" => put("time_entry_id", &form.time_entry_id),
        other => return Err(format!("The command {other:?} is not offered on this page.")),
    }
    Ok(Value::Object(args))
}

/// `POST /w/{ws}/console/service/act`: a command from a Service delivery
/// form; back to the ticket, which shows what the command did.
pub(crate) async fn act(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<ActForm>, FormRejection>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let args = match arguments(&form) {
        Ok(args) => args,
        Err(message) => return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", &message),
    };
    let key = form.idempotency_key.as_deref();
    let route = "POST /w/{ws}/console/service/act";
    let receipt = match submit_as(&state, &workspace, &session, &headers, &form.command, args, key, route).await {
        Ok(receipt) => receipt,
        Err(page) => return page,
    };
    let slug = receipt.workspace.slug().as_str().to_owned();
    let execution = &receipt.execution;
    let ticket = form
        .ticket_id
        .clone()
        .or_else(|| execution.result.as_ref().and_then(|r| r["ticket_id"].as_str()).map(str::to_owned));
    match ticket {
        Some(ticket) => Redirect::to(&format!(
            "/w/{slug}/console/service/tickets/{}?outcome={}",
            urlencoding(&ticket),
            execution.id
        ))
        .into_response(),
        None => Redirect::to(&format!("/w/{slug}/executions/{}", execution.id)).into_response(),
    }
}

/// The form that creates a workspace (platform admins, from the workspace list).
#[derive(Debug, Deserialize)]
pub(crate) struct NewWorkspaceForm {
    csrf_token: String,
    name: String,
    slug: String,
    /// The username of its first MSP admin (at the signed-in person's issuer).
    admin: String,
}

/// `POST /workspaces`: a platform admin creates a workspace, names its first
/// admin (possibly themselves) and lands in its Console when that is them.
pub(crate) async fn create_workspace(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<NewWorkspaceForm>, FormRejection>,
) -> Response {
    use anchor_domain::{WorkspaceName, WorkspaceSlug};
    use anchor_store::access::{AccessEvent, Outcome};
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let who = SubjectRef { issuer: &session.issuer, subject: &session.subject };
    match state.db.platform_roles(who).await {
        Ok(roles) if roles.contains(&anchor_domain::Role::PlatformAdmin) => {}
        Ok(_) => {
            return pages::declined(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Creating workspaces needs workspaces.create; only platform admins have it.",
            );
        }
        Err(e) => return unavailable(e),
    }
    let invalid =
        |message: String| pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "The workspace was not created", &message);
    let name = match WorkspaceName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => return invalid(format!("Name: {e}.")),
    };
    let slug = match WorkspaceSlug::parse(form.slug.trim()) {
        Ok(slug) => slug,
        Err(e) => return invalid(format!("Short name: {e}.")),
    };
    let admin = form.admin.trim();
    if admin.is_empty() || admin.chars().count() > 255 || admin.chars().any(char::is_control) {
        return invalid("First admin: a username of 1-255 characters.".to_owned());
    }
    let audit = audit_context(&headers, &session.issuer, &session.subject);
    let workspace = match state.db.create_workspace(&slug, &name).await {
        Ok(workspace) => workspace,
        Err(anchor_store::StoreError::WorkspaceExists(_)) => {
            return pages::declined(
                StatusCode::CONFLICT,
                "The workspace was not created",
                &format!("A workspace with the short name {:?} exists already; choose another.", slug.as_str()),
            );
        }
        Err(e) => return unavailable(e),
    };
    let recorded = async {
        state
            .db
            .record_access(&AccessEvent {
                context: &audit,
                workspace: Some(slug.as_str()),
                action: "workspace.create",
                outcome: Outcome::Success,
                detail: json!({"name": name.as_str()}),
            })
            .await?;
        let first = SubjectRef { issuer: &session.issuer, subject: admin };
        state.db.set_member(&workspace, first, anchor_domain::Role::MspAdmin, &audit).await
    }
    .await;
    if let Err(e) = recorded {
        return unavailable(e);
    }
    if admin == session.subject {
        Redirect::to(&format!("/w/{}/console", slug.as_str())).into_response()
    } else {
        Redirect::to("/").into_response()
    }
}

/// At most this many tickets in one bulk action.
const BULK_MAX: usize = 100;

/// How one item (a ticket, an asset) of a bulk action went.
pub(crate) struct BulkItem {
    /// Its page.
    pub href: String,
    /// What it is called (`None`: no such item here).
    pub title: Option<String>,
    /// `updated`, `skipped` (already so), `failed` or `pending` (still running).
    pub outcome: &'static str,
    pub message: String,
}

/// One command of a bulk action, for one item.
pub(crate) struct BulkJob {
    /// The item's id: each command's key is derived from the form's and it.
    pub id: String,
    pub href: String,
    pub title: Option<String>,
    pub command: &'static str,
    pub args: Value,
}

/// Submits each job through the normal command path (each authorized for
/// its own command's permission) and says how each went: updated, skipped
/// (already so), failed (and why) or still running.
pub(crate) async fn submit_each(
    state: &WebState,
    grant: &Grant,
    key: &str,
    jobs: Vec<BulkJob>,
) -> Result<Vec<BulkItem>, Response> {
    use anchor_commands::{SubmitError, registry};
    let Some(desk) = state.desk.clone() else {
        return Err(pages::declined(StatusCode::SERVICE_UNAVAILABLE, "Commands are unavailable", "Try again shortly."));
    };
    let mut items = Vec::new();
    for job in jobs {
        let mut item = BulkItem { href: job.href, title: job.title, outcome: "failed", message: String::new() };
        let spec = registry::find(job.command).expect("a registered command");
        let command = match spec.parse(job.args) {
            Ok(command) => command,
            Err(e) => {
                item.message = e.message;
                items.push(item);
                continue;
            }
        };
        // One key per item, from the form's: sending the form twice acts once.
        let item_key = format!("{}-{}", key.chars().take(64).collect::<String>(), job.id);
        let key = (!key.is_empty()).then_some(item_key.as_str());
        match desk.submit(grant, command, key, Some(std::time::Duration::from_secs(3))).await {
            Ok(receipt) => {
                let e = &receipt.execution;
                (item.outcome, item.message) = match e.status {
                    anchor_domain::ExecutionStatus::Succeeded if changed(e.result.as_ref()) => {
                        ("updated", String::new())
                    }
                    anchor_domain::ExecutionStatus::Succeeded => ("skipped", "already so".to_owned()),
                    s if !s.is_finished() => ("pending", "accepted; still running".to_owned()),
                    _ => (
                        "failed",
                        e.error
                            .as_ref()
                            .and_then(|err| err["message"].as_str())
                            .map_or_else(|| "the command failed".to_owned(), pages::sentence),
                    ),
                };
            }
            Err(SubmitError::Refused(refusal)) => item.message = pages::sentence(&refusal.message),
            Err(SubmitError::Denied(_)) => item.message = "not allowed".to_owned(),
            Err(e) => {
                tracing::error!(error = %e, "a bulk action's command could not be submitted");
                item.message = "could not be submitted; try again".to_owned();
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// The command and its arguments for one ticket of a bulk action.
fn bulk_command(action: &str, ticket: TicketId) -> Option<(&'static str, Value)> {
    let id = ticket.to_string();
    match action.split_once(':') {
        None if action == "assign_me" => Some(("ticket.assign", json!({"ticket_id": id, "assignee": "me"}))),
        None if action == "unassign" => Some(("ticket.unassign", json!({"ticket_id": id}))),
        Some(("priority", p)) if Priority::parse(p).is_some() => {
            Some(("ticket.set_priority", json!({"ticket_id": id, "priority": p})))
        }
        Some(("status", s)) if TicketStatus::parse(s).is_some() => {
            Some(("ticket.transition", json!({"ticket_id": id, "to": s})))
        }
        _ => None,
    }
}

/// Whether a succeeded command changed anything (its result says so).
fn changed(result: Option<&Value>) -> bool {
    match result {
        Some(r) if r.get("changed").is_some() => r["changed"] == true,
        Some(r) if r.get("from").is_some() => r["from"] != r["to"],
        _ => true,
    }
}

/// `POST /w/{ws}/console/service/bulk`: one command per selected ticket,
/// each through the normal command path; the answer lists each ticket's
/// outcome (updated, skipped, failed).
pub(crate) async fn bulk(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let (mut csrf, mut key, mut action, mut tickets) = (String::new(), String::new(), String::new(), Vec::new());
    for (name, value) in url::form_urlencoded::parse(body.as_bytes()) {
        match name.as_ref() {
            "csrf_token" => csrf = value.into_owned(),
            "idempotency_key" => key = value.into_owned(),
            "action" => action = value.into_owned(),
            "ticket" => tickets.push(value.into_owned()),
            _ => {}
        }
    }
    if !same(&session.csrf_token, &csrf) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let back = format!("/w/{}/console/service", urlencoding(&workspace));
    if tickets.is_empty() {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing selected",
            "Select tickets in the list first, then choose what to do with them.",
        );
    }
    if tickets.len() > BULK_MAX {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Too many tickets",
            &format!("At most {BULK_MAX} tickets at a time."),
        );
    }
    let route = "POST /w/{ws}/console/service/bulk";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let slug = urlencoding(grant.workspace.slug().as_str());
    let mut jobs = Vec::new();
    for raw in &tickets {
        let Ok(ticket) = raw.parse::<TicketId>() else { continue };
        let Some((command, args)) = bulk_command(&action, ticket) else {
            return pages::declined(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unknown action",
                "Choose an action from the list.",
            );
        };
        let title = match state.db.read(&grant.workspace, |tx| Box::pin(tx.ticket(ticket))).await {
            Ok(found) => found.map(|t| t.title.as_str().to_owned()),
            Err(e) => return unavailable(e),
        };
        let href = format!("/w/{slug}/console/service/tickets/{ticket}");
        jobs.push(BulkJob { id: ticket.to_string(), href, title, command, args });
    }
    let items = match submit_each(&state, &grant, &key, jobs).await {
        Ok(items) => items,
        Err(page) => return page,
    };
    let summary = bulk_summary(&action);
    pages::page(StatusCode::OK, pages::bulk_result(&frame(&session, &grant), summary, "Tickets", &items, &back))
}

fn bulk_summary(action: &str) -> String {
    match action.split_once(':') {
        None if action == "assign_me" => "Assign to me".to_owned(),
        None if action == "unassign" => "Unassign".to_owned(),
        Some(("priority", p)) => format!("Set priority {}", p.to_uppercase()),
        Some(("status", s)) => format!("Move to {}", s.replace('_', " ")),
        _ => action.to_owned(),
    }
}

/// How long a live stream stays open before the browser reconnects (and is
/// authorized again): a session that ended meanwhile gets no new stream.
const LIVE_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether a finished execution touched `ticket`.
fn concerns(execution: &Execution, ticket: &str) -> bool {
    let input = &execution.input;
    ["ticket_id", "into", "related_id"].iter().any(|k| input[*k].as_str() == Some(ticket))
        || execution.result.as_ref().is_some_and(|r| r["ticket_id"].as_str() == Some(ticket))
}

/// `GET /w/{ws}/console/service/tickets/{id}/live`: Server-Sent Events; a
/// `changed` event (with who did what) whenever a command on this ticket
/// finishes, from whichever gateway it went through (PostgreSQL notifies
/// every process).
pub(crate) async fn live(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let Some(SignedIn { session, .. }) = signed_in else { return StatusCode::UNAUTHORIZED.into_response() };
    let route = "GET /w/{ws}/console/service/tickets/{id}/live";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let Ok(ticket) = id.parse::<TicketId>() else { return StatusCode::NOT_FOUND.into_response() };
    // Only a ticket of this workspace is followed.
    match state.db.read(&grant.workspace, |tx| Box::pin(tx.ticket(ticket))).await {
        Ok(Some(_)) => {}
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return unavailable(e),
    }
    let Some(desk) = state.desk.clone() else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    let finished = match desk.finished_executions().await {
        Ok(receiver) => receiver,
        Err(e) => return unavailable(e),
    };
    struct Follow {
        finished: tokio::sync::broadcast::Receiver<String>,
        db: anchor_store::Database,
        workspace: anchor_store::Workspace,
        prefix: String,
        ticket: String,
        until: tokio::time::Instant,
        shutdown: tokio_util::sync::CancellationToken,
    }
    let follow = Follow {
        finished,
        db: state.db.clone(),
        prefix: format!("{} ", grant.workspace.schema_name()),
        workspace: grant.workspace.clone(),
        ticket: ticket.to_string(),
        until: tokio::time::Instant::now() + LIVE_FOR,
        shutdown: state.shutdown.clone(),
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            let message = tokio::select! {
                message = f.finished.recv() => message,
                () = tokio::time::sleep_until(f.until) => return None,
                () = f.shutdown.cancelled() => return None,
            };
            let name = match message {
                Ok(name) => name,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let event = Event::default().event("changed").data("This ticket may have changed.");
                    return Some((Ok::<_, std::convert::Infallible>(event), f));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            let Some(execution) = name.strip_prefix(&f.prefix).and_then(|e| e.parse::<ExecutionId>().ok()) else {
                continue;
            };
            let Ok(Some(execution)) = f.db.read(&f.workspace, |tx| Box::pin(tx.execution(execution))).await else {
                continue;
            };
            if !concerns(&execution, &f.ticket) {
                continue;
            }
            let what = anchor_commands::registry::find(&execution.command).map_or("changed it", |s| s.summary);
            let text = format!("{}: {}", execution.actor.subject, what);
            return Some((Ok(Event::default().event("changed").data(text)), f));
        }
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// `GET /w/{ws}/console/service/queues`: the queues, their people and open tickets.
pub(crate) async fn queues(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/queues";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let queues = tx.queues().await?;
                let policies = tx.sla_policies().await?;
                Ok((queues, policies))
            })
        })
        .await;
    match read {
        Ok((queues, policies)) => {
            let policy_names: Vec<(String, String)> =
                policies.into_iter().map(|p| (p.id.to_string(), p.name)).collect();
            pages::page(StatusCode::OK, pages::queues(&frame(&session, &grant), &queues, &policy_names))
        }
        Err(e) => unavailable(e),
    }
}
