//! The billing run for every client at once: `GET /billing` previews a
//! period in each workspace the person may bill, `POST /billing/run`
//! submits one `billing.run` per workspace through the same desk as the
//! API (each its own authorization decision, audit record and execution,
//! all under one idempotency key), and `GET /billing/runs/{key}` shows how
//! far the run has got, client by client, updating itself until every
//! execution has finished.
//!
//! The key is what ties the run together: each workspace's execution is
//! found again by the person's own key there, so the progress page needs no
//! record of its own and survives a restart; sending the form again (or
//! "Submit the rest" after an interruption) submits nothing twice.

use anchor_auth::permissions::{Permission, granting};
use anchor_commands::{
    authorize::{Asking, Grant, authorize},
    billing::{Plan, check_period, plan},
    kit::Rejection,
};
use anchor_domain::{Currency, ExecutionStatus};
use anchor_store::{
    StoreError, Workspace, access::SubjectRef, executions::Execution, ops::Within, sessions::WebSession,
};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use time::Date;

use crate::{
    WebState,
    admin::fields,
    cmdb::{field, given},
    commands::submit_waiting,
    console::{not_signed_in, unavailable, urlencoding},
    financials::{day, last_month},
    pages::{self, Area, Shell},
    session::{MaybeSignedIn, SignedIn, same, same_origin},
    signin::audit_context,
};

/// At most this many clients in one run (the preview reads each).
const MAX_CLIENTS: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    period_start: Option<String>,
    #[serde(default)]
    period_end: Option<String>,
}

/// The period asked for, or last month; an unreadable one says why.
fn period(query: &PeriodQuery, today: Date) -> (Date, Date, Option<String>) {
    let (default_start, default_end) = last_month(today);
    let (from, to) = (day(query.period_start.as_deref()), day(query.period_end.as_deref()));
    let unreadable = (query.period_start.is_some() && from.is_none()) || (query.period_end.is_some() && to.is_none());
    let (from, to) = (from.unwrap_or(default_start), to.unwrap_or(default_end));
    let problem = if unreadable {
        Some("Give both days of the period as dates (YYYY-MM-DD).".to_owned())
    } else {
        check_period(from, to).err().map(|e| pages::sentence(&e.message))
    };
    (from, to, problem)
}

/// The workspaces where the person holds a role granting `permission`,
/// by name, each with the authorization decision for it: at most
/// [`MAX_CLIENTS`], and whether there were more.
async fn clients(
    state: &WebState,
    session: &WebSession,
    headers: &HeaderMap,
    permission: Permission,
    route: &'static str,
) -> Result<(Vec<Grant>, bool), StoreError> {
    let who = SubjectRef { issuer: &session.issuer, subject: &session.subject };
    let reach = state.db.ops_reach(who).await?;
    let mut workspaces: Vec<Workspace> = match reach.within(|roles| granting(roles, permission).is_some()) {
        Within::All => state.db.workspaces().await?,
        Within::Only(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(state.db.workspace_by_id(id).await?);
            }
            found
        }
    };
    workspaces.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.slug().as_str().cmp(b.slug().as_str())));
    let more = workspaces.len() > MAX_CLIENTS;
    let audit = audit_context(headers, &session.issuer, &session.subject);
    let mut grants = Vec::new();
    for workspace in workspaces.iter().take(MAX_CLIENTS) {
        let asking = Asking { who, audit: &audit, route };
        if let Ok(grant) = authorize(&state.db, asking, workspace.slug().as_str(), permission).await? {
            grants.push(grant);
        }
    }
    Ok((grants, more))
}

/// What one client's preview says.
pub(crate) struct Preview {
    pub workspace: Workspace,
    pub may_write: bool,
    /// The plan, or why it cannot be made (no billing profile, ...).
    pub plan: Result<Plan, String>,
}

/// Plans the period in `grant`'s workspace without writing anything.
async fn preview(state: &WebState, grant: &Grant, from: Date, to: Date) -> Result<Result<Plan, String>, StoreError> {
    state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                match plan(tx, from, to, false).await {
                    Ok(plan) => Ok(Ok(plan)),
                    Err(Rejection::Refused(r)) => Ok(Err(pages::sentence(&r.to_string()))),
                    Err(Rejection::Store(e)) => Err(e),
                }
            })
        })
        .await
}

fn shell<'a>(session: &'a WebSession, role: &'a str) -> Shell<'a> {
    Shell {
        who: &session.subject,
        role,
        csrf: &session.csrf_token,
        workspace: None,
        may_admin: false,
        area: Area::Console,
    }
}

/// `GET /billing`: the period's preview in every client the person may bill.
pub(crate) async fn overview(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let today = time::OffsetDateTime::now_utc().date();
    let (from, to, problem) = period(&query, today);
    let (grants, more) = match clients(&state, &session, &headers, Permission::BillingRead, "GET /billing").await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let mut previews = Vec::with_capacity(grants.len());
    if problem.is_none() {
        for grant in &grants {
            let plan = match preview(&state, grant, from, to).await {
                Ok(plan) => plan,
                Err(e) => return unavailable(e),
            };
            let may_write = grant.allows(Permission::BillingWrite);
            previews.push(Preview { workspace: grant.workspace.clone(), may_write, plan });
        }
    }
    let page = OverviewPage { from, to, problem, previews, key: crate::session::random_token(), more };
    let role = role_text(grants.len());
    pages::page(StatusCode::OK, overview_view(&shell(&session, &role), &page))
}

fn role_text(clients: usize) -> String {
    match clients {
        1 => "billing 1 client".to_owned(),
        n => format!("billing {n} clients"),
    }
}

/// `POST /billing/run`: one `billing.run` per client the person may bill,
/// under one key; then the progress page.
pub(crate) async fn run(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let key = field(&fields, "key").unwrap_or_default();
    if !(16..=100).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return pages::form_expired();
    }
    let query = PeriodQuery {
        period_start: given(&fields, "period_start").map(str::to_owned),
        period_end: given(&fields, "period_end").map(str::to_owned),
    };
    let (from, to, problem) = period(&query, time::OffsetDateTime::now_utc().date());
    if let Some(problem) = problem {
        return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "The period is not valid", &problem);
    }
    let route = "POST /billing/run";
    let grants = match clients(&state, &session, &headers, Permission::BillingWrite, route).await {
        Ok((grants, _)) => grants,
        Err(e) => return unavailable(e),
    };
    let args = json!({"period_start": from.to_string(), "period_end": to.to_string()});
    let idempotency = run_key(key);
    for grant in &grants {
        let slug = grant.workspace.slug().as_str();
        // A refusal (no billing profile, a period spanning two blocks) is
        // shown on the progress page, which asks the plan again; the run
        // goes on with the next client.
        let submitted = submit_waiting(
            &state,
            slug,
            &session,
            &headers,
            "billing.run",
            args.clone(),
            Some(&idempotency),
            route,
            None,
        )
        .await;
        if submitted.is_err() {
            tracing::info!(workspace = slug, "a client's billing run was not accepted");
        }
    }
    Redirect::to(&progress_url(key, from, to)).into_response()
}

fn run_key(key: &str) -> String {
    format!("billing-run-{key}")
}

fn progress_url(key: &str, from: Date, to: Date) -> String {
    format!("/billing/runs/{}?period_start={from}&period_end={to}", urlencoding(key))
}

/// Where one client's part of a run is.
pub(crate) enum Part {
    /// Accepted, not finished.
    Running,
    /// Finished: the drafts made and their total.
    Done { drafts: usize, gross: Option<Decimal> },
    /// Finished without billing: why.
    Failed(String),
    /// Not accepted: why (the plan's refusal).
    Refused(String),
    /// Not submitted in this run (it was interrupted, or the client could not be billed then).
    NotSubmitted,
}

impl Part {
    fn finished(&self) -> bool {
        !matches!(self, Self::Running | Self::NotSubmitted)
    }
}

pub(crate) struct Progress {
    pub workspace: Workspace,
    pub currency: Option<Currency>,
    pub part: Part,
    pub execution: Option<Execution>,
}

fn part_of(execution: &Execution) -> Part {
    if !execution.status.is_finished() {
        return Part::Running;
    }
    if execution.status == ExecutionStatus::Succeeded {
        let result = execution.result.as_ref();
        let drafts = result.and_then(|r| r["invoices"].as_array()).map_or(0, Vec::len);
        let gross = result.and_then(|r| r["gross"].as_str()).and_then(|g| g.parse().ok());
        return Part::Done { drafts, gross };
    }
    let why = execution
        .error
        .as_ref()
        .and_then(|e| e["message"].as_str().or(e["detail"].as_str()))
        .map_or_else(|| format!("the execution ended {}", execution.status.as_str()), str::to_owned);
    Part::Failed(pages::sentence(&why))
}

/// `GET /billing/runs/{key}`: how far the run is, client by client.
pub(crate) async fn progress(
    State(state): State<WebState>,
    Path(key): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /billing/runs/{key}";
    let grants = match clients(&state, &session, &headers, Permission::BillingWrite, route).await {
        Ok((grants, _)) => grants,
        Err(e) => return unavailable(e),
    };
    let idempotency = run_key(&key);
    let mut found = Vec::with_capacity(grants.len());
    for grant in &grants {
        let actor = grant.actor.clone();
        let wanted = idempotency.clone();
        let read = state
            .db
            .read(&grant.workspace, |tx| {
                Box::pin(async move {
                    let execution = tx.execution_for_key(&actor, &wanted).await?;
                    let currency = tx.billing_profile().await?.map(|p| p.currency);
                    Ok((execution, currency))
                })
            })
            .await;
        match read {
            Ok((execution, currency)) => found.push((grant, execution, currency)),
            Err(e) => return unavailable(e),
        }
    }
    // The period is the run's own, as its commands carry it; the address's
    // only when nothing of the run is found.
    let asked = found.iter().find_map(|(_, e, _)| {
        let input = &e.as_ref()?.input;
        let day = |name: &str| input[name].as_str().map(str::to_owned);
        Some(PeriodQuery { period_start: day("period_start"), period_end: day("period_end") })
    });
    let (from, to, problem) = period(asked.as_ref().unwrap_or(&query), time::OffsetDateTime::now_utc().date());
    if let Some(problem) = problem {
        return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "The period is not valid", &problem);
    }
    let mut rows = Vec::with_capacity(found.len());
    for (grant, execution, currency) in found {
        let part = match &execution {
            Some(execution) => part_of(execution),
            None => match preview(&state, grant, from, to).await {
                Ok(Err(why)) => Part::Refused(why),
                Ok(Ok(_)) => Part::NotSubmitted,
                Err(e) => return unavailable(e),
            },
        };
        rows.push(Progress { workspace: grant.workspace.clone(), currency, part, execution });
    }
    let page = ProgressPage { key, from, to, rows };
    let role = role_text(grants.len());
    pages::page(StatusCode::OK, progress_view(&shell(&session, &role), &page))
}

pub(crate) struct OverviewPage {
    pub from: Date,
    pub to: Date,
    pub problem: Option<String>,
    pub previews: Vec<Preview>,
    pub key: String,
    /// More clients than one page previews.
    pub more: bool,
}

fn money(currency: Currency, amount: Decimal) -> String {
    crate::financials_pages::money(currency, amount)
}

fn overview_view(shell: &Shell<'_>, page: &OverviewPage) -> Markup {
    let billable: Vec<&Preview> =
        page.previews.iter().filter(|p| p.may_write && p.plan.as_ref().is_ok_and(|plan| !plan.is_empty())).collect();
    let drafts: usize = billable.iter().filter_map(|p| p.plan.as_ref().ok()).map(|plan| plan.invoices.len()).sum();
    let writable = page.previews.iter().filter(|p| p.may_write).count();
    pages::shell_layout(
        shell,
        None,
        "Billing run, every client",
        html! { div.fin {
            div.heading { h1 { "Billing run, every client" } }
            p.muted { "One period, billed in each client you may bill: each becomes its own billing run there, with its own drafts to review before they are finalized." }
            div.card.form-card {
                form.filters method="get" action="/billing" {
                    label for="period_start" { "From" }
                    input #period_start type="date" name="period_start" value=(page.from) required;
                    label for="period_end" { "To (inclusive)" }
                    input #period_end type="date" name="period_end" value=(page.to) required;
                    button.secondary type="submit" { "Preview" }
                }
            }
            @if page.more {
                div.card { p role="alert" { "You may bill more than " (MAX_CLIENTS) " clients: the first " (MAX_CLIENTS) " by name are shown and run here." } }
            }
            @if let Some(problem) = &page.problem {
                div.card { p role="alert" { (problem) } }
            } @else if page.previews.is_empty() {
                div.card { p { "You may bill no client. Billing needs billing.read to preview and billing.write to run; ask an MSP admin for the finance role." } }
            } @else {
                div.card {
                    h2 { "Preview: " (page.from) " to " (page.to) }
                    @if billable.is_empty() {
                        p.muted { "Nothing to bill in this period in any client you may bill." }
                    } @else {
                        p { (drafts) " draft invoice(s) in " (billable.len()) " client(s)." }
                        form method="post" action="/billing/run" {
                            input type="hidden" name="csrf_token" value=(shell.csrf);
                            input type="hidden" name="key" value=(page.key);
                            input type="hidden" name="period_start" value=(page.from);
                            input type="hidden" name="period_end" value=(page.to);
                            button type="submit" { "Run billing" }
                        }
                        p.small.muted { "Billing runs in each of the " (writable) " client(s) you may bill: one with nothing to bill gets no draft, one that cannot be billed shows why." }
                    }
                }
                div.card.flush {
                    table.tickets {
                        caption { "Clients" }
                        thead { tr {
                            th scope="col" { "Client" } th.num scope="col" { "Drafts" } th.num scope="col" { "Lines" }
                            th.num scope="col" { "Total" } th scope="col" { "Notes" }
                        } }
                        tbody {
                            @for p in &page.previews {
                                @let slug = p.workspace.slug().as_str();
                                tr {
                                    td { a href={"/w/" (slug) "/console/financials/run?period_start=" (page.from) "&period_end=" (page.to)} { (p.workspace.name()) } }
                                    @match &p.plan {
                                        Ok(plan) => {
                                            td.num data-label="Drafts" { (plan.invoices.len()) }
                                            td.num data-label="Lines" { (plan.invoices.iter().map(|i| i.lines.len()).sum::<usize>()) }
                                            td.num data-label="Total" { (money(plan.currency, plan.gross)) }
                                            td data-label="Notes" {
                                                @if !p.may_write { span.muted { "You may preview only (billing.write is needed to run)." } " " }
                                                @if plan.is_empty() { span.muted { "Nothing to bill." } " " }
                                                @if !plan.unbillable.is_empty() { span class="health warn" { (plan.unbillable.len()) " approved time entries nothing prices" } }
                                            }
                                        }
                                        Err(why) => {
                                            td.num data-label="Drafts" { "—" } td.num data-label="Lines" { "—" } td.num data-label="Total" { "—" }
                                            td data-label="Notes" { span class="health bad" { "Cannot bill" } " " (why) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } },
    )
}

pub(crate) struct ProgressPage {
    pub key: String,
    pub from: Date,
    pub to: Date,
    pub rows: Vec<Progress>,
}

fn progress_view(shell: &Shell<'_>, page: &ProgressPage) -> Markup {
    let total = page.rows.len();
    let finished = page.rows.iter().filter(|r| r.part.finished()).count();
    let running = page.rows.iter().any(|r| matches!(r.part, Part::Running));
    let unsent = page.rows.iter().any(|r| matches!(r.part, Part::NotSubmitted));
    let drafts: usize = page.rows.iter().map(|r| if let Part::Done { drafts, .. } = r.part { drafts } else { 0 }).sum();
    let here = progress_url(&page.key, page.from, page.to);
    pages::shell_layout(
        shell,
        None,
        "Billing run progress",
        html! { div.fin {
            p.crumbs { a href={"/billing?period_start=" (page.from) "&period_end=" (page.to)} { "Billing run, every client" } " / progress" }
            div.heading { h1 { "Billing run: " (page.from) " to " (page.to) } }
            div.card {
                // The status stays in the page (a live region that is replaced is not read out);
                // the poll brings its new text out of band.
                p #run-status role="status" { (status_text(drafts, running, unsent)) }
                @if running {
                    div #run-progress hx-get=(here) hx-trigger="every 2s" hx-select="#run-progress"
                        hx-select-oob="#run-status:innerHTML" hx-swap="outerHTML" {
                        (progress_body(page, total, finished))
                    }
                } @else {
                    div #run-progress { (progress_body(page, total, finished)) }
                }
            }
        } },
    )
}

fn status_text(drafts: usize, running: bool, unsent: bool) -> String {
    if running {
        "Running: this page updates itself every two seconds.".to_owned()
    } else if unsent {
        "Some clients were not billed in this run: bill each from its own billing run page.".to_owned()
    } else {
        format!("Finished: {drafts} draft invoice(s) made. Review and finalize them in each client's Financials.")
    }
}

fn progress_body(page: &ProgressPage, total: usize, finished: usize) -> Markup {
    html! {
        label for="run-bar" { (finished) " of " (total) " client(s) finished" }
        progress #run-bar max=(total.max(1)) value=(finished) { (finished) " of " (total) }
        table.tickets {
            caption { "Clients" }
            thead { tr { th scope="col" { "Client" } th scope="col" { "State" } th.num scope="col" { "Drafts" } th.num scope="col" { "Total" } } }
            tbody {
                @for r in &page.rows {
                    @let slug = r.workspace.slug().as_str();
                    tr {
                        td { (r.workspace.name()) }
                        td data-label="State" {
                            @match &r.part {
                                Part::Running => { span class="health warn" { "Running" } }
                                Part::Done { drafts, .. } => {
                                    span class="health ok" { "Done" } " "
                                    @if *drafts > 0 { a href={"/w/" (slug) "/console/financials?show=draft"} { "Review the drafts" } }
                                    @else { span.muted { "nothing to bill" } }
                                }
                                Part::Failed(why) => {
                                    span class="health bad" { "Failed" } " " (why) " "
                                    @if let Some(e) = &r.execution { a href={"/w/" (slug) "/executions/" (e.id)} { "Details" } }
                                }
                                Part::Refused(why) => { span class="health bad" { "Not run" } " " (why) }
                                Part::NotSubmitted => {
                                    span class="health none" { "Not billed in this run" } " "
                                    a href={"/w/" (slug) "/console/financials/run?period_start=" (page.from) "&period_end=" (page.to)} { "Bill it on its own" }
                                }
                            }
                        }
                        td.num data-label="Drafts" { @if let Part::Done { drafts, .. } = r.part { (drafts) } @else { "—" } }
                        td.num data-label="Total" {
                            @match (&r.part, r.currency) {
                                (Part::Done { gross: Some(g), .. }, Some(c)) => { (money(c, *g)) }
                                _ => { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}
