//! The Ops page (NOC/SOC): the five queues with live counts, the runtime
//! health, the wall-board, the actions on failures (replay or discard a dead
//! letter, retry or dismiss a failed workflow), and the guided alert
//! workflow. `/w/{ws}/ops` is one client; `/ops` every client the person may
//! see, each row naming its workspace. Both read the read model
//! (`platform.ops_items`, kept by the worker from the outbox), so a page
//! costs the same whatever the number of workspaces, and count only what the
//! person's roles let them see, queue by queue.

use std::sync::Arc;

use anchor_auth::permissions::{Permission, granting};
use anchor_commands::authorize::Grant;
use anchor_domain::{AlertId, ExecutionId, Role};
use anchor_store::{
    Database, Workspace,
    access::SubjectRef,
    changes::NewChange,
    executions::Actor,
    ops::{DeadLetter, Health, OpsRow, OpsView, Queue, QueueCounts, Reach, Within},
    sessions::WebSession,
};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{Mutex, broadcast};

use crate::{
    WebState,
    admin::fields,
    cmdb::{field, given},
    commands::submit_as,
    console::{grant, not_signed_in, unavailable, urlencoding},
    ops_pages, pages,
    session::{MaybeSignedIn, SignedIn, same, same_origin},
};

/// Rows of a queue on the page.
pub(crate) const QUEUE_ROWS: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OpsQuery {
    /// The queue shown (`critical`, `unassigned`, `sla`, `workflows`, `events`).
    #[serde(default)]
    queue: Option<String>,
    /// `1`: the wall-board.
    #[serde(default)]
    wall: Option<String>,
    /// `live`: under htmx, the parts that change.
    #[serde(default)]
    part: Option<String>,
    /// What the action that brought the person here did.
    #[serde(default)]
    notice: Option<String>,
}

/// Everything the Ops page shows.
pub(crate) struct OpsPage {
    pub queue: Queue,
    pub counts: QueueCounts,
    pub rows: Vec<OpsRow>,
    pub dead: Vec<DeadLetter>,
    pub health: Health,
    pub view: OpsView,
    pub now: OffsetDateTime,
    pub wall: bool,
    pub notice: Option<&'static str>,
    /// `/ops` or `/w/{ws}/ops`.
    pub base: String,
    /// One client's page (rows need not name the workspace).
    pub one: bool,
    /// A fresh key for each form on the page.
    pub keys: Vec<String>,
    pub csrf: String,
}

/// What each permission lets a person see, from their roles where they hold any.
fn view_of(reach: &Reach) -> OpsView {
    let within = |permission: Permission| reach.within(|roles| granting(roles, permission).is_some());
    OpsView {
        alerts: within(Permission::AlertsRead),
        tickets: within(Permission::TicketsRead),
        executions: within(Permission::ExecutionsRead),
        events: within(Permission::OpsManage),
    }
}

/// One workspace's view for the person `grant` is about.
fn view_in(grant: &Grant) -> OpsView {
    let id = grant.workspace.id();
    let within = |permission: Permission| Within::Only(if grant.allows(permission) { vec![id] } else { Vec::new() });
    OpsView {
        alerts: within(Permission::AlertsRead),
        tickets: within(Permission::TicketsRead),
        executions: within(Permission::ExecutionsRead),
        events: within(Permission::OpsManage),
    }
}

fn notice_text(notice: Option<&str>) -> Option<&'static str> {
    match notice? {
        "replayed" => Some("The event was sent back to the outbox; it is delivered again in a moment."),
        "discarded" => Some("The event was discarded."),
        "retried" => Some("The command was submitted again as a new execution."),
        "dismissed" => Some("The failed workflow was dismissed."),
        "gone" => Some("That item was dealt with already (by someone else, or a moment ago)."),
        _ => None,
    }
}

async fn load(
    state: &WebState,
    session: &WebSession,
    view: OpsView,
    query: &OpsQuery,
    base: String,
    one: bool,
) -> Result<OpsPage, Response> {
    let queue = query.queue.as_deref().and_then(Queue::from_key).unwrap_or(Queue::Critical);
    let wall = query.wall.as_deref() == Some("1");
    let db = &state.db;
    let read = async {
        let counts = db.ops_counts(&view).await?;
        let rows = db.ops_queue(&view, if wall { Queue::Critical } else { queue }, QUEUE_ROWS).await?;
        let dead = if queue == Queue::FailedEvents && !wall {
            db.dead_letters(&view.events, QUEUE_ROWS).await?
        } else {
            Vec::new()
        };
        let health = db.ops_health(&view.alerts).await?;
        Ok::<_, anchor_store::StoreError>((counts, rows, dead, health))
    };
    let (counts, rows, dead, health) = read.await.map_err(unavailable)?;
    let keys = (0..rows.len() + dead.len()).map(|_| crate::session::random_token()).collect();
    Ok(OpsPage {
        queue,
        counts,
        rows,
        dead,
        health,
        view,
        now: OffsetDateTime::now_utc(),
        wall,
        notice: notice_text(query.notice.as_deref()),
        base,
        one,
        keys,
        csrf: session.csrf_token.clone(),
    })
}

fn answer(shell: &pages::Shell<'_>, page: &OpsPage, live: bool) -> Response {
    if live {
        return pages::fragment(ops_pages::live_parts(page));
    }
    pages::page(StatusCode::OK, ops_pages::ops(shell, page))
}

/// `GET /ops`: every client the person may see.
pub(crate) async fn all_clients(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    Query(query): Query<OpsQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let reach = match state.db.ops_reach(who(&session)).await {
        Ok(reach) => reach,
        Err(e) => return unavailable(e),
    };
    let page = match load(&state, &session, view_of(&reach), &query, "/ops".to_owned(), false).await {
        Ok(page) => page,
        Err(page) => return page,
    };
    let role = reach_text(&reach);
    let shell = pages::Shell {
        who: &session.subject,
        role: &role,
        csrf: &session.csrf_token,
        workspace: None,
        may_admin: false,
        area: pages::Area::Ops,
    };
    answer(&shell, &page, query.part.as_deref() == Some("live"))
}

/// How a person's reach reads in the page's header.
fn reach_text(reach: &Reach) -> String {
    if let Some(role) = reach.everywhere.first() {
        return format!("{} in every client", role.as_str());
    }
    let staff = reach.workspaces.iter().filter(|(_, roles)| roles.iter().any(|r| r.is_staff())).count();
    match staff {
        1 => "staff of 1 client".to_owned(),
        n => format!("staff of {n} clients"),
    }
}

fn who(session: &WebSession) -> SubjectRef<'_> {
    SubjectRef { issuer: &session.issuer, subject: &session.subject }
}

/// `GET /w/{ws}/ops`: one client.
pub(crate) async fn one_client(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OpsQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, "GET /w/{ws}/ops").await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let base = format!("/w/{}/ops", grant.workspace.slug().as_str());
    let page = match load(&state, &session, view_in(&grant), &query, base, true).await {
        Ok(page) => page,
        Err(page) => return page,
    };
    let shell = pages::Shell {
        who: &session.subject,
        role: grant.role.as_str(),
        csrf: &session.csrf_token,
        workspace: Some(&grant.workspace),
        may_admin: grant.allows(Permission::SettingsManage),
        area: pages::Area::Ops,
    };
    answer(&shell, &page, query.part.as_deref() == Some("live"))
}

/// Changes of the read model and the dead letters, as PostgreSQL notifies
/// them (`anchor_ops`, the workspace's id), fanned out to every live page of
/// this process: one listening connection per process.
#[derive(Debug, Default)]
pub(crate) struct OpsChanges {
    sender: Mutex<Option<broadcast::Sender<i64>>>,
}

impl OpsChanges {
    async fn subscribe(self: &Arc<Self>, db: &Database) -> Result<broadcast::Receiver<i64>, anchor_store::StoreError> {
        let mut slot = self.sender.lock().await;
        if let Some(sender) = slot.as_ref() {
            return Ok(sender.subscribe());
        }
        let mut listener = db.listen("anchor_ops").await?;
        let (sender, receiver) = broadcast::channel(1024);
        *slot = Some(sender.clone());
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(note)) => {
                        if let Ok(id) = note.payload().parse::<i64>() {
                            // Nobody listening is fine.
                            let _ = sender.send(id);
                        }
                    }
                    // The connection was lost: notifications in between are
                    // gone, so everyone following is told to read again.
                    Ok(None) => {
                        let _ = sender.send(-1);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the Ops change listener stopped");
                        break;
                    }
                }
                if sender.receiver_count() == 0 {
                    break;
                }
            }
            // The next page to follow starts a new listener.
            if let Some(me) = me.upgrade() {
                *me.sender.lock().await = None;
            }
        });
        Ok(receiver)
    }
}

/// How long a live stream stays open before the browser reconnects (and is
/// authorized again).
const LIVE_FOR: std::time::Duration = std::time::Duration::from_secs(300);
/// Health figures change without notifications (outbox depth, agents going
/// silent): a live page reads again at least this often.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    ws: Option<String>,
}

/// `GET /ops/live` (every client) and `GET /ops/live?ws={slug}` (one):
/// Server-Sent Events, a `changed` event when something the person may see
/// changed (at most one a second), and every 30 s for the health figures.
pub(crate) async fn live(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let Some(SignedIn { session, .. }) = signed_in else { return StatusCode::UNAUTHORIZED.into_response() };
    let view = match &query.ws {
        Some(ws) => match grant(&state, &session, &headers, ws, Permission::TicketsRead, "GET /ops/live").await {
            Ok(grant) => view_in(&grant),
            Err(page) => return page,
        },
        None => match state.db.ops_reach(who(&session)).await {
            Ok(reach) => view_of(&reach),
            Err(e) => return unavailable(e),
        },
    };
    let changes = match state.ops_changes.subscribe(&state.db).await {
        Ok(receiver) => receiver,
        Err(e) => return unavailable(e),
    };
    struct Follow {
        changes: broadcast::Receiver<i64>,
        view: OpsView,
        until: tokio::time::Instant,
        shutdown: tokio_util::sync::CancellationToken,
    }
    let concerns = |view: &OpsView, id: i64| {
        id < 0 || [&view.alerts, &view.tickets, &view.executions, &view.events].iter().any(|w| w.contains(id))
    };
    let follow =
        Follow { changes, view, until: tokio::time::Instant::now() + LIVE_FOR, shutdown: state.shutdown.clone() };
    let stream = futures_util::stream::unfold(follow, move |mut f| async move {
        let tick = tokio::time::sleep(HEALTH_EVERY);
        tokio::pin!(tick);
        loop {
            let heard = tokio::select! {
                heard = f.changes.recv() => heard,
                () = &mut tick => Ok(-1),
                () = tokio::time::sleep_until(f.until) => return None,
                () = f.shutdown.cancelled() => return None,
            };
            match heard {
                Ok(id) if !concerns(&f.view, id) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
                // Heard (or lagged: something changed): wait a moment for
                // the rest of a burst, then say so once.
                _ => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            while f.changes.try_recv().is_ok() {}
            let event = Event::default().event("changed").data("The queues changed.");
            return Some((Ok::<_, std::convert::Infallible>(event), f));
        }
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// Where an action may send the person back to: an Ops page of this
/// Anchor, never elsewhere.
fn back_to(fields: &[(String, String)], slug: &str) -> String {
    let back = field(fields, "back").unwrap_or_default();
    let ours = back == "/ops"
        || back.starts_with("/ops?")
        || back == format!("/w/{slug}/ops")
        || back.starts_with(&format!("/w/{slug}/ops?"));
    if ours && !back.contains("notice=") { back.to_owned() } else { format!("/w/{slug}/ops") }
}

fn with_notice(back: &str, notice: &str) -> String {
    let joiner = if back.contains('?') { '&' } else { '?' };
    format!("{back}{joiner}notice={notice}")
}

/// `POST /w/{ws}/ops/act`: replay or discard a dead letter, retry or
/// dismiss a failed workflow (`ops.manage`). Each leaves a change record
/// with its signed credential; a retry is a new command through the desk.
pub(crate) async fn act(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/ops/act";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::OpsManage, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let slug = grant.workspace.slug().as_str().to_owned();
    let back = back_to(&fields, &slug);
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let id = field(&fields, "id").unwrap_or_default();
    let action = field(&fields, "action").unwrap_or_default();
    let outcome = match action {
        "replay" | "discard" => {
            let Ok(event) = id.parse::<i64>() else { return gone(&back) };
            dead_letter(&state.db, &grant, &actor, event, action == "replay").await
        }
        "retry" => {
            let Ok(execution) = id.parse::<ExecutionId>() else { return gone(&back) };
            let failed = match state.db.read(&grant.workspace, |tx| Box::pin(tx.execution(execution))).await {
                Ok(Some(e)) if matches!(e.status.as_str(), "failed" | "timeout") => e,
                Ok(_) => return gone(&back),
                Err(e) => return unavailable(e),
            };
            let key = field(&fields, "idempotency_key");
            let receipt = match submit_as(
                &state,
                &workspace,
                &session,
                &headers,
                &failed.command,
                failed.input.clone(),
                key,
                route,
            )
            .await
            {
                Ok(receipt) => receipt,
                Err(page) => return page,
            };
            handled(&state.db, &grant, &actor, execution, "retried", Some(receipt.execution.id)).await
        }
        "dismiss" => {
            let Ok(execution) = id.parse::<ExecutionId>() else { return gone(&back) };
            handled(&state.db, &grant, &actor, execution, "dismissed", None).await
        }
        _ => {
            return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", "Ops offers no such action.");
        }
    };
    match outcome {
        Ok(true) => {
            let notice = match action {
                "replay" => "replayed",
                "discard" => "discarded",
                "retry" => "retried",
                _ => "dismissed",
            };
            Redirect::to(&with_notice(&back, notice)).into_response()
        }
        Ok(false) => gone(&back),
        Err(e) => unavailable(e),
    }
}

fn gone(back: &str) -> Response {
    Redirect::to(&with_notice(back, "gone")).into_response()
}

async fn dead_letter(
    db: &Database,
    grant: &Grant,
    actor: &Actor,
    event: i64,
    replay: bool,
) -> Result<bool, anchor_store::StoreError> {
    let who = format!("{} {}", actor.issuer, actor.subject);
    if !db.handle_dead_letter(&grant.workspace, event, replay, &who).await? {
        return Ok(false);
    }
    record(
        db,
        &grant.workspace,
        grant.role,
        actor,
        if replay { "outbox_event.replayed" } else { "outbox_event.discarded" },
        &event.to_string(),
    )
    .await?;
    Ok(true)
}

async fn handled(
    db: &Database,
    grant: &Grant,
    actor: &Actor,
    execution: ExecutionId,
    how: &str,
    retried_as: Option<ExecutionId>,
) -> Result<bool, anchor_store::StoreError> {
    let mut tx = db.begin_workspace(&grant.workspace).await?;
    if !tx.handle_failed_execution(execution, how, retried_as, actor).await? {
        return Ok(false);
    }
    let target = execution.to_string();
    let change = NewChange {
        action: if how == "retried" { "execution.retried" } else { "execution.dismissed" },
        target: &target,
        actor,
        actor_role: Some(grant.role),
        details: json!({"retried_as": retried_as}),
    };
    anchor_evidence::issue::record_change(&mut tx, &change).await?;
    tx.commit().await?;
    Ok(true)
}

async fn record(
    db: &Database,
    workspace: &Workspace,
    role: Role,
    actor: &Actor,
    action: &'static str,
    target: &str,
) -> Result<(), anchor_store::StoreError> {
    let mut tx = db.begin_workspace(workspace).await?;
    let change = NewChange { action, target, actor, actor_role: Some(role), details: json!({}) };
    anchor_evidence::issue::record_change(&mut tx, &change).await?;
    tx.commit().await
}

/// The guided workflow's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Acknowledge,
    Ticket,
    Context,
    Runbook,
    Escalate,
}

impl Step {
    pub(crate) const ALL: [Step; 5] = [Step::Acknowledge, Step::Ticket, Step::Context, Step::Runbook, Step::Escalate];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Step::Acknowledge => "acknowledge",
            Step::Ticket => "ticket",
            Step::Context => "context",
            Step::Runbook => "runbook",
            Step::Escalate => "escalate",
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Step::Acknowledge => "Acknowledge",
            Step::Ticket => "Ticket",
            Step::Context => "Asset context",
            Step::Runbook => "Runbook",
            Step::Escalate => "Escalate or resolve",
        }
    }

    fn from_key(key: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.key() == key)
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GuideQuery {
    #[serde(default)]
    step: Option<String>,
    /// The ticket chosen or opened at the ticket step (when the alert has
    /// none of its own).
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// Everything the guided workflow shows.
pub(crate) struct Guide {
    pub step: Step,
    pub alert: anchor_store::alerts::Alert,
    pub rule: Option<anchor_store::alerts::Rule>,
    pub asset: Option<anchor_store::cmdb::AssetRow>,
    pub ticket: Option<anchor_store::tickets::Ticket>,
    pub others: Vec<anchor_store::alerts::Alert>,
    pub impact: Option<anchor_store::cmdb::Impact>,
    pub staff: Vec<anchor_store::queues::WorkspaceMember>,
    pub queues: Vec<anchor_store::queues::Queue>,
    /// Runbooks for the alert's rule, its asset's type or its ticket's queue.
    pub runbooks: Vec<anchor_store::runbooks::Runbook>,
    /// Runs about the alert or its ticket, newest first.
    pub runs: Vec<anchor_store::runbooks::RunbookRun>,
    pub outcome: Option<(anchor_store::executions::Execution, &'static str)>,
    pub key: String,
    pub may_manage_alerts: bool,
    pub may_write_tickets: bool,
}

/// `GET /w/{ws}/ops/alerts/{id}`: the guided workflow, one step per screen.
pub(crate) async fn guide(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<GuideQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/ops/alerts/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AlertsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let missing =
        || pages::declined(StatusCode::NOT_FOUND, "No such alert", "There is no such alert in this workspace.");
    let Ok(alert_id) = id.parse::<AlertId>() else { return missing() };
    let step = query.step.as_deref().and_then(Step::from_key).unwrap_or(Step::Acknowledge);
    let chosen = query.ticket.as_deref().and_then(|t| t.parse::<anchor_domain::TicketId>().ok());
    let outcome = query.outcome.as_deref().and_then(|o| o.parse::<ExecutionId>().ok());
    let may_assets = grant.allows(Permission::AssetsRead);
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(alert) = tx.alert(alert_id).await? else { return Ok(None) };
                let rule = tx.rules().await?.into_iter().find(|r| r.id == alert.rule_id);
                let asset = match (alert.asset_id, may_assets) {
                    (Some(asset), true) => {
                        let filter = anchor_store::cmdb::AssetFilter {
                            ids: vec![asset],
                            statuses: anchor_domain::AssetStatus::ALL.to_vec(),
                            ..Default::default()
                        };
                        tx.asset_rows(&filter, None, 1).await?.into_iter().next()
                    }
                    _ => None,
                };
                let ticket = match alert.ticket_id.or(chosen) {
                    Some(ticket) => tx.ticket(ticket).await?,
                    None => None,
                };
                let others: Vec<_> =
                    tx.open_alerts_of_agent(alert.agent_id).await?.into_iter().filter(|a| a.id != alert.id).collect();
                let impact = match (alert.asset_id, may_assets) {
                    (Some(asset), true) => tx.impact(asset).await?,
                    _ => None,
                };
                let staff = tx.workspace_members().await?;
                let queues = tx.queues().await?;
                let rule_id = alert.rule_id.to_string();
                let asset_type = asset.as_ref().map(|a| a.asset.type_key.as_str().to_owned());
                let queue = ticket.as_ref().and_then(|t| t.queue_id).map(|q| q.to_string());
                let runbooks = tx.runbooks_for(asset_type.as_deref(), Some(&rule_id), queue.as_deref()).await?;
                let runs = tx.runbook_runs_about(ticket.as_ref().map(|t| t.id), Some(alert.id)).await?;
                let outcome = match outcome {
                    Some(id) => tx.execution(id).await?,
                    None => None,
                };
                Ok(Some((alert, rule, asset, ticket, others, impact, staff, queues, outcome, runbooks, runs)))
            })
        })
        .await;
    let (alert, rule, asset, ticket, others, impact, staff, queues, outcome, runbooks, runs) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return missing(),
        Err(e) => return unavailable(e),
    };
    let outcome = outcome.map(|e| {
        let summary = anchor_commands::registry::find(&e.command).map_or("Command", |s| s.summary);
        (e, summary)
    });
    let guide = Guide {
        step,
        alert,
        rule,
        asset,
        ticket,
        others,
        impact,
        staff: staff.into_iter().filter(|m| Role::parse(&m.role).is_ok_and(Role::is_staff)).collect(),
        queues,
        runbooks,
        runs,
        outcome,
        key: crate::session::random_token(),
        may_manage_alerts: grant.allows(Permission::AlertsManage),
        may_write_tickets: grant.allows(Permission::TicketsWrite),
    };
    let frame = crate::console::frame(&session, &grant);
    pages::page(StatusCode::OK, ops_pages::guide(&frame, &guide))
}

/// `POST /w/{ws}/ops/alerts/{id}`: a step's form. Every change is a
/// command through the desk; the answer is the next screen.
pub(crate) async fn guide_act(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/ops/alerts/{id}";
    let Ok(alert) = id.parse::<AlertId>() else {
        return pages::declined(StatusCode::NOT_FOUND, "No such alert", "There is no such alert in this workspace.");
    };
    let key = field(&fields, "idempotency_key").unwrap_or_default().to_owned();
    let ticket = given(&fields, "ticket_id").map(str::to_owned);
    let guide_url = |step: Step, ticket: Option<&str>, outcome: Option<ExecutionId>| {
        let mut url = format!("/w/{}/ops/alerts/{alert}?step={}", urlencoding(&workspace), step.key());
        if let Some(ticket) = ticket {
            url.push_str(&format!("&ticket={}", urlencoding(ticket)));
        }
        if let Some(outcome) = outcome {
            url.push_str(&format!("&outcome={outcome}"));
        }
        url
    };
    let submit = |name: &'static str, args: serde_json::Value, suffix: &'static str| {
        let key = format!("{key}{suffix}");
        let state = &state;
        let session = &session;
        let headers = &headers;
        let workspace = &workspace;
        async move { submit_as(state, workspace, session, headers, name, args, Some(&key), route).await }
    };
    match field(&fields, "action").unwrap_or_default() {
        "acknowledge" => match submit("alert.acknowledge", json!({"alert_id": alert}), "").await {
            Ok(receipt) => {
                Redirect::to(&guide_url(Step::Ticket, ticket.as_deref(), Some(receipt.execution.id))).into_response()
            }
            Err(page) => page,
        },
        "open_ticket" => {
            let mut args = json!({
                "title": given(&fields, "title").unwrap_or("Alert"),
                "priority": given(&fields, "priority").unwrap_or("p2"),
            });
            if let Some(asset) = given(&fields, "asset_id") {
                args["asset_id"] = json!(asset);
            }
            if let Some(description) = given(&fields, "description") {
                args["description"] = json!(description);
            }
            match submit("ticket.create", args, "").await {
                Ok(receipt) => {
                    let opened =
                        receipt.execution.result.as_ref().and_then(|r| r["ticket_id"].as_str()).map(str::to_owned);
                    Redirect::to(&guide_url(Step::Context, opened.as_deref(), Some(receipt.execution.id)))
                        .into_response()
                }
                Err(page) => page,
            }
        }
        "start_runbook" => {
            let mut args = json!({"runbook_id": given(&fields, "runbook_id").unwrap_or_default(), "alert_id": alert});
            if let Some(ticket) = &ticket {
                args["ticket_id"] = json!(ticket);
            }
            if let Some(asset) = given(&fields, "asset_id") {
                args["asset_id"] = json!(asset);
            }
            match submit("runbook.start", args, "").await {
                Ok(receipt) => Redirect::to(&guide_url(Step::Runbook, ticket.as_deref(), Some(receipt.execution.id)))
                    .into_response(),
                Err(page) => page,
            }
        }
        "step_done" => {
            let step: u32 = given(&fields, "step").and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut args = json!({"run_id": given(&fields, "run_id").unwrap_or_default(), "step": step});
            if let Some(note) = given(&fields, "note") {
                args["note"] = json!(note);
            }
            match submit("runbook.record_step", args, "").await {
                Ok(receipt) => Redirect::to(&guide_url(Step::Runbook, ticket.as_deref(), Some(receipt.execution.id)))
                    .into_response(),
                Err(page) => page,
            }
        }
        "run_step" => {
            let run = given(&fields, "run_id").and_then(|r| r.parse::<anchor_domain::RunbookRunId>().ok());
            let step: u32 = given(&fields, "step").and_then(|s| s.parse().ok()).unwrap_or(0);
            let missing =
                || pages::declined(StatusCode::NOT_FOUND, "No such step", "This run has no such command step.");
            let Some(run) = run else { return missing() };
            let grant = match grant(&state, &session, &headers, &workspace, Permission::TicketsRead, route).await {
                Ok(grant) => grant,
                Err(page) => return page,
            };
            let found = match state.db.read(&grant.workspace, |tx| Box::pin(tx.runbook_run(run))).await {
                Ok(found) => found,
                Err(e) => return unavailable(e),
            };
            let Some(found) = found else { return missing() };
            let Some(anchor_domain::runbook::RunbookStep::Command { command, args, .. }) =
                (step as usize).checked_sub(1).and_then(|i| found.steps.0.get(i)).cloned()
            else {
                return missing();
            };
            let values = [
                ("ticket_id", found.ticket_id.map(|t| t.to_string())),
                ("asset_id", found.asset_id.map(|a| a.to_string())),
                ("alert_id", found.alert_id.map(|a| a.to_string())),
            ];
            let args = anchor_domain::runbook::fill(&args, &values);
            let Some(name) = anchor_commands::registry::find(&command).map(|spec| spec.name) else { return missing() };
            let ran = match submit(name, args, "-run").await {
                Ok(receipt) => receipt.execution.id,
                Err(page) => return page,
            };
            let record = json!({"run_id": run, "step": step, "execution_id": ran});
            match submit("runbook.record_step", record, "-record").await {
                Ok(_) => Redirect::to(&guide_url(Step::Runbook, ticket.as_deref(), Some(ran))).into_response(),
                Err(page) => page,
            }
        }
        "note" => {
            let Some(ticket) = ticket else { return no_ticket() };
            let Some(note) = given(&fields, "note") else {
                return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Nothing to note", "Write the note first.");
            };
            let args = json!({"ticket_id": ticket, "body": note, "visibility": "internal"});
            match submit("ticket.comment", args, "").await {
                Ok(receipt) => {
                    Redirect::to(&guide_url(Step::Runbook, Some(&ticket), Some(receipt.execution.id))).into_response()
                }
                Err(page) => page,
            }
        }
        "escalate" => {
            let Some(ticket) = ticket else { return no_ticket() };
            let queue = given(&fields, "queue_id");
            if let Some(queue) = queue
                && let Err(page) =
                    submit("ticket.set_queue", json!({"ticket_id": ticket, "queue_id": queue}), "-queue").await
            {
                return page;
            }
            if let Some((issuer, subject)) = given(&fields, "assignee").and_then(|a| a.split_once(' ')) {
                let args = json!({"ticket_id": ticket, "assignee": {"issuer": issuer, "subject": subject}});
                if let Err(page) = submit("ticket.assign", args, "-assign").await {
                    return page;
                }
            }
            let priority = given(&fields, "priority").filter(|p| given(&fields, "current_priority") != Some(*p));
            if let Some(priority) = priority
                && let Err(page) =
                    submit("ticket.set_priority", json!({"ticket_id": ticket, "priority": priority}), "-priority").await
            {
                return page;
            }
            let note = given(&fields, "note").map_or_else(
                || "Escalated from the Ops centre.".to_owned(),
                |n| format!("Escalated from the Ops centre: {n}"),
            );
            let args = json!({"ticket_id": ticket, "body": note, "visibility": "internal"});
            match submit("ticket.comment", args, "-note").await {
                Ok(receipt) => ticket_page(&workspace, &ticket, Some(receipt.execution.id)),
                Err(page) => page,
            }
        }
        "resolve" => {
            let Some(ticket) = ticket else { return no_ticket() };
            if let Some(note) = given(&fields, "note") {
                let args = json!({"ticket_id": ticket, "body": note, "visibility": "internal"});
                if let Err(page) = submit("ticket.comment", args, "-note").await {
                    return page;
                }
            }
            match submit("ticket.transition", json!({"ticket_id": ticket, "to": "resolved"}), "-resolve").await {
                Ok(receipt) => ticket_page(&workspace, &ticket, Some(receipt.execution.id)),
                Err(page) => page,
            }
        }
        _ => pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", "This step offers no such action."),
    }
}

fn no_ticket() -> Response {
    pages::declined(
        StatusCode::UNPROCESSABLE_ENTITY,
        "No ticket yet",
        "This step works on the alert's ticket: open one at the ticket step first.",
    )
}

fn ticket_page(workspace: &str, ticket: &str, outcome: Option<ExecutionId>) -> Response {
    let mut url = format!("/w/{}/console/service/tickets/{}", urlencoding(workspace), urlencoding(ticket));
    if let Some(outcome) = outcome {
        url.push_str(&format!("?outcome={outcome}"));
    }
    Redirect::to(&url).into_response()
}
