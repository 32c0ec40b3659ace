//! The Console's Financials tab: invoices and credit notes (a list with
//! status, totals, balance and days overdue; a document's page with its
//! lines, tax groups, the actions valid now, its PDF and the payment form),
//! time awaiting approval (approved in bulk), the billing run (a preview,
//! then the run), contracts with their lifecycle, and payments with the
//! client's balance. Every change is a command submitted through the same
//! desk as the API ([`crate::commands::submit_as`]).

use anchor_auth::permissions::Permission;
use anchor_commands::{authorize::Grant, billing::Plan};
use anchor_domain::{ContractId, ExecutionId, InvoiceId, InvoiceKind, InvoiceState, TicketId, TimeEntryState};
use anchor_store::{
    contracts::Contract,
    executions::Execution,
    invoices::{ClientBalance, Invoice, InvoiceFilter, Payment},
    time_entries::{TimeEntry, TimeEntryFilter},
};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use time::Date;

use crate::{
    WebState,
    admin::fields,
    cmdb::{field, given},
    commands::submit_as,
    console::{BulkJob, frame, grant, not_signed_in, submit_each, unavailable, urlencoding},
    financials_pages as view, pages,
    session::{MaybeSignedIn, SignedIn, same, same_origin},
};

/// Rows per page of the lists.
pub(crate) const PAGE_ROWS: i64 = 50;
/// Time entries shown for approval at once.
const APPROVAL_ROWS: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// `draft`, `finalized` (finalized or sent), `overdue`, `credit_notes` or `all` (default).
    #[serde(default)]
    show: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// The command that brought the person here, and whether they may see it:
/// their own, or any with `executions.read`.
#[derive(Debug, Clone)]
struct Seen {
    all: bool,
    issuer: String,
    subject: String,
    id: Option<ExecutionId>,
}

impl Seen {
    fn of(grant: &Grant, session: &anchor_store::sessions::WebSession, id: Option<&str>) -> Self {
        Self {
            all: grant.allows(Permission::ExecutionsRead),
            issuer: session.issuer.clone(),
            subject: session.subject.clone(),
            id: id.and_then(|o| o.parse().ok()),
        }
    }

    async fn read(
        self,
        tx: &mut anchor_store::WorkspaceTx,
    ) -> Result<Option<(Execution, &'static str)>, anchor_store::StoreError> {
        let Some(id) = self.id else { return Ok(None) };
        let found = tx
            .execution(id)
            .await?
            .filter(|e| self.all || (e.actor.issuer == self.issuer && e.actor.subject == self.subject));
        Ok(found.map(|e| {
            let summary = anchor_commands::registry::find(&e.command).map_or("Command", |s| s.summary);
            (e, summary)
        }))
    }
}

/// The invoice list's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    All,
    Drafts,
    Finalized,
    Overdue,
    CreditNotes,
}

impl Show {
    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("draft") => Self::Drafts,
            Some("finalized") => Self::Finalized,
            Some("overdue") => Self::Overdue,
            Some("credit_notes") => Self::CreditNotes,
            _ => Self::All,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Drafts => "draft",
            Self::Finalized => "finalized",
            Self::Overdue => "overdue",
            Self::CreditNotes => "credit_notes",
        }
    }

    fn filter(self) -> InvoiceFilter {
        match self {
            Self::All => InvoiceFilter::default(),
            Self::Drafts => InvoiceFilter { state: Some(InvoiceState::Draft), ..InvoiceFilter::default() },
            Self::Finalized => {
                InvoiceFilter { kind: Some(InvoiceKind::Invoice), issued: true, ..InvoiceFilter::default() }
            }
            Self::Overdue => InvoiceFilter { overdue: true, ..InvoiceFilter::default() },
            Self::CreditNotes => InvoiceFilter { kind: Some(InvoiceKind::CreditNote), ..InvoiceFilter::default() },
        }
    }
}

/// One page of invoices, with the client's balance.
pub(crate) struct InvoiceListPage {
    pub show: Show,
    pub invoices: Vec<Invoice>,
    pub next: Option<InvoiceId>,
    pub balance: ClientBalance,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    /// The key of the "New draft invoice" form.
    pub key: String,
}

/// `GET /w/{ws}/console/financials`: invoices and credit notes.
pub(crate) async fn invoices(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let show = Show::parse(query.show.as_deref());
    let before = query.before.as_deref().and_then(|b| b.parse::<InvoiceId>().ok());
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let mut invoices = tx.invoices(&show.filter(), before, PAGE_ROWS + 1).await?;
                let next = (invoices.len() as i64 > PAGE_ROWS).then(|| {
                    invoices.truncate(PAGE_ROWS as usize);
                    invoices.last().map(|i| i.id)
                });
                let balance = tx.client_balance().await?;
                let outcome = seen.clone().read(tx).await?;
                Ok((invoices, next.flatten(), balance, outcome))
            })
        })
        .await;
    match read {
        Ok((invoices, next, balance, outcome)) => {
            let may_write = grant.allows(Permission::BillingWrite);
            let key = crate::session::random_token();
            let page = InvoiceListPage { show, invoices, next, balance, outcome, may_write, key };
            pages::page(StatusCode::OK, view::invoices(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OutcomeQuery {
    #[serde(default)]
    outcome: Option<String>,
}

/// A document's page.
pub(crate) struct InvoicePage {
    pub invoice: Invoice,
    /// The credit notes that correct it.
    pub credit_notes: Vec<Invoice>,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    pub today: Date,
    /// A fresh key for each form on the page.
    pub keys: Vec<String>,
    /// The tax rates a draft's line may be at.
    pub taxes: Vec<String>,
    /// Payments with something not yet applied: what may pay this invoice.
    pub unapplied: Vec<Payment>,
}

/// Blank rows the draft editor offers after the lines a draft has.
pub(crate) const BLANK_ROWS: usize = 3;
/// Rows one form may carry (a draft has at most 500 lines).
const MAX_ROWS: usize = 500 + BLANK_ROWS;

/// `GET /w/{ws}/console/financials/invoices/{id}`.
pub(crate) async fn invoice(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/invoices/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<InvoiceId>() else { return no_such_invoice() };
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(invoice) = tx.invoice(id).await? else { return Ok(None) };
                let filter = InvoiceFilter { kind: Some(InvoiceKind::CreditNote), ..InvoiceFilter::default() };
                let mut credit_notes = tx.invoices(&filter, None, 200).await?;
                credit_notes.retain(|c| c.corrects == Some(id));
                let outcome = seen.clone().read(tx).await?;
                let today = tx.clock().await?.date();
                let taxes = tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                let mut unapplied = tx.payments(None, 200).await?;
                unapplied.retain(|p| p.kind == anchor_domain::PaymentKind::Payment && p.unallocated > Decimal::ZERO);
                Ok(Some((invoice, credit_notes, outcome, today, taxes, unapplied)))
            })
        })
        .await;
    match read {
        Ok(Some((invoice, credit_notes, outcome, today, taxes, unapplied))) => {
            let keys = (0..7).map(|_| crate::session::random_token()).collect();
            let may_write = grant.allows(Permission::BillingWrite);
            let page = InvoicePage { invoice, credit_notes, outcome, may_write, today, keys, taxes, unapplied };
            pages::page(StatusCode::OK, view::invoice(&frame(&session, &grant), &page))
        }
        Ok(None) => no_such_invoice(),
        Err(e) => unavailable(e),
    }
}

fn no_such_invoice() -> Response {
    pages::declined(StatusCode::NOT_FOUND, "No such invoice", "This workspace has no such invoice or credit note.")
}

/// A document's PDF as a download named by its number, its digest as the ETag.
pub(crate) fn pdf_response(bytes: Vec<u8>, sha256: &str, number: Option<String>, id: InvoiceId) -> Response {
    let name = number.unwrap_or_else(|| id.to_string());
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
    let disposition = format!("attachment; filename=\"{name}.pdf\"");
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// `GET /w/{ws}/console/financials/invoices/{id}/pdf`: the PDF as rendered
/// when it was finalized.
pub(crate) async fn pdf(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/invoices/{id}/pdf";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<InvoiceId>() else { return no_such_invoice() };
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(invoice) = tx.invoice(id).await? else { return Ok(None) };
                Ok(Some((tx.invoice_pdf(id).await?, invoice.number)))
            })
        })
        .await;
    match read {
        Ok(Some((Some((bytes, sha256)), number))) => pdf_response(bytes, &sha256, number, id),
        Ok(None) => no_such_invoice(),
        Ok(Some((None, _))) => pages::declined(
            StatusCode::CONFLICT,
            "No PDF yet",
            "A document has its PDF once it is finalized; a draft has none.",
        ),
        Err(e) => unavailable(e),
    }
}

/// Time awaiting approval.
pub(crate) struct TimePage {
    pub entries: Vec<TimeEntry>,
    /// Each entry's ticket title.
    pub tickets: Vec<(TicketId, String)>,
    pub key: String,
    pub may_approve: bool,
}

/// `GET /w/{ws}/console/financials/time`: submitted time, oldest first.
pub(crate) async fn time(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/time";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let filter = TimeEntryFilter { state: Some(TimeEntryState::Submitted), ..TimeEntryFilter::default() };
                let mut entries = tx.time_entries(&filter, None, APPROVAL_ROWS).await?;
                entries.reverse();
                let mut tickets: Vec<(TicketId, String)> = Vec::new();
                for e in &entries {
                    if !tickets.iter().any(|(id, _)| *id == e.ticket_id)
                        && let Some(t) = tx.ticket(e.ticket_id).await?
                    {
                        tickets.push((t.id, t.title.as_str().to_owned()));
                    }
                }
                Ok((entries, tickets))
            })
        })
        .await;
    match read {
        Ok((entries, tickets)) => {
            let key = crate::session::random_token();
            let may_approve = grant.allows(Permission::TimeApprove);
            let page = TimePage { entries, tickets, key, may_approve };
            pages::page(StatusCode::OK, view::time(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

/// At most this many entries approved at once.
const BULK_MAX: usize = 100;

/// `POST /w/{ws}/console/financials/time/approve`: one `time_entry.approve`
/// per selected entry, each through the normal command path.
pub(crate) async fn approve(
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
    let selected: Vec<anchor_domain::TimeEntryId> =
        fields.iter().filter(|(k, _)| k == "time_entry").filter_map(|(_, v)| v.parse().ok()).collect();
    if selected.is_empty() {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing selected",
            "Tick the time entries to approve first, then choose Approve selected.",
        );
    }
    if selected.len() > BULK_MAX {
        let message = format!("Approve at most {BULK_MAX} entries at once.");
        return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Too many selected", &message);
    }
    let route = "POST /w/{ws}/console/financials/time/approve";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::TimeApprove, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let base = format!("/w/{}/console/financials", grant.workspace.slug().as_str());
    let jobs = selected
        .iter()
        .map(|id| BulkJob {
            id: id.to_string(),
            href: format!("{base}/time"),
            title: Some(format!("Time entry {id}")),
            command: "time_entry.approve",
            args: json!({"time_entry_id": id}),
        })
        .collect();
    let key = field(&fields, "idempotency_key").unwrap_or_default();
    match submit_each(&state, &grant, key, jobs).await {
        Ok(items) => {
            let summary = format!("Approve {} time entries", items.len());
            let back = format!("{base}/time");
            pages::page(
                StatusCode::OK,
                crate::pages::bulk_result(&frame(&session, &grant), summary, "Time entries", &items, &back),
            )
        }
        Err(page) => page,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    #[serde(default)]
    period_start: Option<String>,
    #[serde(default)]
    period_end: Option<String>,
}

/// The billing run's page: the period, and what a run would make.
pub(crate) struct RunPage {
    pub period_start: Date,
    pub period_end: Date,
    /// The plan, or why there is none (no billing profile, a bad period).
    pub plan: Result<Plan, String>,
    pub runs: Vec<anchor_store::contracts::BillingRun>,
    pub key: String,
    pub may_write: bool,
}

pub(crate) fn day(text: Option<&str>) -> Option<Date> {
    text.and_then(|t| Date::parse(t.trim(), &time::format_description::well_known::Iso8601::DATE).ok())
}

/// The month before `today`'s.
pub(crate) fn last_month(today: Date) -> (Date, Date) {
    let first = today.replace_day(1).expect("the first");
    let end = first.previous_day().expect("a day before");
    (end.replace_day(1).expect("the first"), end)
}

/// The first day of the month after `today`'s.
fn next_month(today: Date) -> Date {
    let first = today.replace_day(1).expect("the first");
    (first + time::Duration::days(31)).replace_day(1).expect("the first")
}

/// `GET /w/{ws}/console/financials/run`: the preview (last month unless
/// another period is asked for) and the button that runs it.
pub(crate) async fn run(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<RunQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/run";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let (from, to) = (day(query.period_start.as_deref()), day(query.period_end.as_deref()));
    let (bad_start, bad_end) =
        (query.period_start.is_some() && from.is_none(), query.period_end.is_some() && to.is_none());
    let asked = query.period_start.is_some() || query.period_end.is_some();
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let today = tx.clock().await?.date();
                let (default_from, default_to) = last_month(today);
                let (from, to) = (from.unwrap_or(default_from), to.unwrap_or(default_to));
                let unreadable = asked && (bad_start || bad_end);
                let plan = if unreadable {
                    Err("Give both days of the period as dates (YYYY-MM-DD).".to_owned())
                } else if let Err(e) = anchor_commands::billing::check_period(from, to) {
                    Err(pages::sentence(&e.message))
                } else {
                    match anchor_commands::billing::plan(tx, from, to, false).await {
                        Ok(plan) => Ok(plan),
                        Err(anchor_commands::kit::Rejection::Refused(r)) => Err(pages::sentence(&r.to_string())),
                        Err(anchor_commands::kit::Rejection::Store(e)) => return Err(e),
                    }
                };
                let runs = tx.billing_runs(10).await?;
                Ok((from, to, plan, runs))
            })
        })
        .await;
    match read {
        Ok((period_start, period_end, plan, runs)) => {
            let key = crate::session::random_token();
            let may_write = grant.allows(Permission::BillingWrite);
            let page = RunPage { period_start, period_end, plan, runs, key, may_write };
            pages::page(StatusCode::OK, view::run(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

/// The contracts' page.
pub(crate) struct ContractsPage {
    pub contracts: Vec<Contract>,
    pub taxes: Vec<String>,
    pub rate_cards: Vec<String>,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    pub today: Date,
    pub keys: Vec<String>,
}

/// `GET /w/{ws}/console/financials/contracts`.
pub(crate) async fn contracts(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/contracts";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let contracts = tx.contracts().await?;
                let taxes =
                    tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect::<Vec<_>>();
                let rate_cards = tx.rate_cards().await?.into_iter().map(|c| c.key).collect::<Vec<_>>();
                let outcome = seen.clone().read(tx).await?;
                let today = tx.clock().await?.date();
                Ok((contracts, taxes, rate_cards, outcome, today))
            })
        })
        .await;
    match read {
        Ok((contracts, taxes, rate_cards, outcome, today)) => {
            let keys = (0..contracts.len() * 2 + 1).map(|_| crate::session::random_token()).collect();
            let may_write = grant.allows(Permission::BillingWrite);
            let page = ContractsPage { contracts, taxes, rate_cards, outcome, may_write, today, keys };
            pages::page(StatusCode::OK, view::contracts(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

/// Payments and the client's balance.
pub(crate) struct PaymentsPage {
    pub payments: Vec<Payment>,
    pub balance: ClientBalance,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    pub today: Date,
    /// Keys of the payment-on-account and refund forms.
    pub keys: [String; 2],
}

/// `GET /w/{ws}/console/financials/payments`.
pub(crate) async fn payments(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/payments";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let payments = tx.payments(None, PAGE_ROWS).await?;
                let balance = tx.client_balance().await?;
                let outcome = seen.clone().read(tx).await?;
                let today = tx.clock().await?.date();
                let keys = [crate::session::random_token(), crate::session::random_token()];
                Ok(PaymentsPage { payments, balance, outcome, may_write: false, today, keys })
            })
        })
        .await;
    match read {
        Ok(page) => {
            let page = PaymentsPage { may_write: grant.allows(Permission::BillingWrite), ..page };
            pages::page(StatusCode::OK, view::payments(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

/// The commands the Financials forms submit.
const OFFERED: &[&str] = &[
    "invoice.finalize",
    "invoice.send",
    "invoice.discard",
    "invoice.create",
    "invoice.update",
    "credit_note.create",
    "payment.record",
    "payment.refund",
    "payment.allocate",
    "billing.run",
    "contract.create",
    "contract.activate",
    "contract.suspend",
    "contract.resume",
    "contract.cancel",
    "quote.create",
    "quote.send",
    "quote.accept",
    "quote.decline",
    "quote.convert",
    "quote.convert_to_contract",
];

/// The lines of a form's rows `description_N`, `quantity_N`, `unit_code_N`,
/// `unit_price_N`, `discount_N`, `tax_N` (N from 1 to `rows`); a row without
/// a description is left out (emptying a row removes its line).
fn line_rows(fields: &[(String, String)], rows: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    for n in 1..=rows {
        let Some(description) = given(fields, &format!("description_{n}")) else { continue };
        let value = |name: &str| given(fields, &format!("{name}_{n}")).map(str::to_owned);
        let mut line = json!({"description": description, "quantity": value("quantity").unwrap_or_default(),
                              "unit_price": value("unit_price").unwrap_or_default(), "tax": value("tax").unwrap_or_default()});
        if let Some(code) = value("unit_code") {
            line["unit_code"] = Value::String(code);
        }
        if let Some(discount) = value("discount").filter(|d| d.parse::<Decimal>().map_or(true, |d| !d.is_zero())) {
            line["discount_percent"] = Value::String(discount);
        }
        lines.push(line);
    }
    lines
}

/// A command's arguments from its form (the command names what is wrong).
fn arguments(command: &str, fields: &[(String, String)], balance: Option<Decimal>) -> Result<Value, String> {
    let text = |name: &str| given(fields, name).map(|v| Value::String(v.to_owned()));
    let mut args = serde_json::Map::new();
    let mut put = |name: &str| {
        if let Some(v) = text(name) {
            args.insert(name.to_owned(), v);
        }
    };
    match command {
        "invoice.finalize" | "invoice.send" | "invoice.discard" | "credit_note.create" => put("invoice_id"),
        // A new draft is empty: its page's editor fills it in.
        "invoice.create" => {}
        "invoice.update" => {
            put("invoice_id");
            // The lines' form and the purchase order and note's form are apart:
            // each changes only what it shows.
            if given(fields, "header").is_some() {
                // Empty: removed (`null`), as the form shows no value for none.
                for name in ["purchase_order", "note"] {
                    args.insert(name.to_owned(), text(name).unwrap_or(Value::Null));
                }
            }
            if given(fields, "rows").is_some() {
                args.insert("lines".to_owned(), Value::Array(line_rows(fields, MAX_ROWS)));
            }
        }
        "billing.run" => {
            put("period_start");
            put("period_end");
        }
        "contract.activate" | "contract.suspend" | "contract.resume" | "contract.cancel" => put("contract_id"),
        "contract.create" => {
            for name in [
                "kind",
                "name",
                "starts_on",
                "ends_on",
                "billing_cycle",
                "rate_card",
                "purchase_order",
                "tax",
                "amount",
                "unit_source",
                "block_hours",
                "overage_rate",
            ] {
                put(name);
            }
            if given(fields, "rollover").is_some() {
                args.insert("rollover".to_owned(), Value::Bool(true));
            }
        }
        "quote.send" | "quote.convert" => put("quote_id"),
        "quote.convert_to_contract" => {
            for name in ["quote_id", "starts_on", "ends_on", "billing_cycle", "purchase_order"] {
                put(name);
            }
        }
        "quote.accept" | "quote.decline" => {
            for name in ["quote_id", "sha256", "name", "reason"] {
                put(name);
            }
        }
        "quote.create" => {
            put("title");
            put("valid_until");
            put("note");
            args.insert("lines".to_owned(), Value::Array(line_rows(fields, QUOTE_ROWS)));
        }
        "payment.allocate" => {
            put("payment_id");
            if let (Some(invoice), Some(amount)) = (given(fields, "invoice_id"), given(fields, "amount")) {
                args.insert("allocations".to_owned(), json!([{"invoice_id": invoice, "amount": amount}]));
            }
        }
        "payment.refund" => {
            for name in ["amount", "paid_on", "method", "reference"] {
                put(name);
            }
        }
        "payment.record" => {
            for name in ["amount", "received_on", "method", "reference"] {
                put(name);
            }
            // Applied to the invoice up to its balance; the rest is the client's credit.
            if let (Some(invoice), Some(amount)) = (given(fields, "invoice_id"), given(fields, "amount")) {
                let applied = match (amount.parse::<Decimal>(), balance) {
                    (Ok(amount), Some(balance)) if amount > balance => balance,
                    _ => amount.parse::<Decimal>().unwrap_or_default(),
                };
                if applied > Decimal::ZERO {
                    let allocation = json!({"invoice_id": invoice, "amount": applied.to_string()});
                    args.insert("allocations".to_owned(), json!([allocation]));
                }
            }
        }
        _ => return Err(format!("The Financials pages do not offer {command:?}.")),
    }
    Ok(Value::Object(args))
}

/// `POST /w/{ws}/console/financials/act`: one command from a Financials
/// form; back to the page it is about, showing its outcome.
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
    let command = field(&fields, "command").unwrap_or_default().to_owned();
    if !OFFERED.contains(&command.as_str()) {
        let message = format!("The Financials pages do not offer {:?}.", command.chars().take(64).collect::<String>());
        return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", &message);
    }
    let route = "POST /w/{ws}/console/financials/act";
    // A payment is applied to its invoice up to the open balance.
    let balance = match given(&fields, "invoice_id").and_then(|i| i.parse::<InvoiceId>().ok()) {
        Some(id) if command == "payment.record" => {
            let read_grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
                Ok(grant) => grant,
                Err(page) => return page,
            };
            match state.db.read(&read_grant.workspace, |tx| Box::pin(async move { tx.invoice(id).await })).await {
                Ok(invoice) => invoice.and_then(|i| i.balance),
                Err(e) => return unavailable(e),
            }
        }
        _ => None,
    };
    let args = match arguments(&command, &fields, balance) {
        Ok(args) => args,
        Err(message) => return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", &message),
    };
    let key = field(&fields, "idempotency_key");
    let receipt = match submit_as(&state, &workspace, &session, &headers, &command, args, key, route).await {
        Ok(receipt) => receipt,
        Err(page) => return page,
    };
    let base = format!("/w/{}/console/financials", urlencoding(receipt.workspace.slug().as_str()));
    let execution = &receipt.execution;
    let result_invoice = execution.result.as_ref().and_then(|r| r["invoice_id"].as_str()).map(str::to_owned);
    let target = match command.as_str() {
        "billing.run" => format!("{base}?show=draft&outcome={}", execution.id),
        "invoice.discard" => format!("{base}?outcome={}", execution.id),
        c if c.starts_with("contract.") => format!("{base}/contracts?outcome={}", execution.id),
        "quote.convert" => match result_invoice {
            Some(invoice) => format!("{base}/invoices/{}?outcome={}", urlencoding(&invoice), execution.id),
            None => format!("{base}/quotes?outcome={}", execution.id),
        },
        "quote.convert_to_contract" => format!("{base}/contracts?outcome={}", execution.id),
        c if c.starts_with("quote.") => {
            let quote = execution.result.as_ref().and_then(|r| r["quote_id"].as_str()).map(str::to_owned);
            match quote.or_else(|| given(&fields, "quote_id").map(str::to_owned)) {
                Some(quote) => format!("{base}/quotes/{}?outcome={}", urlencoding(&quote), execution.id),
                None => format!("{base}/quotes?outcome={}", execution.id),
            }
        }
        c => match result_invoice.or_else(|| given(&fields, "invoice_id").map(str::to_owned)) {
            Some(invoice) => format!("{base}/invoices/{}?outcome={}", urlencoding(&invoice), execution.id),
            // Still running (no id yet): the list that will show it.
            None if c.starts_with("invoice.") => format!("{base}?outcome={}", execution.id),
            None => format!("{base}/payments?outcome={}", execution.id),
        },
    };
    Redirect::to(&target).into_response()
}

/// Line rows on the new quote form.
pub(crate) const QUOTE_ROWS: usize = 5;

/// The quotes' page.
pub(crate) struct QuotesPage {
    pub quotes: Vec<anchor_store::quotes::Quote>,
    pub taxes: Vec<String>,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    /// A month from today: the new quote's default validity.
    pub valid_until: Date,
    pub key: String,
}

/// `GET /w/{ws}/console/financials/quotes`: quotes, newest first, and the
/// form for a new one.
pub(crate) async fn quotes(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/quotes";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let quotes = tx.quotes(None, PAGE_ROWS).await?;
                let taxes = tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                let outcome = seen.clone().read(tx).await?;
                let today = tx.clock().await?.date();
                Ok((quotes, taxes, outcome, today))
            })
        })
        .await;
    match read {
        Ok((quotes, taxes, outcome, today)) => {
            let may_write = grant.allows(Permission::BillingWrite);
            let valid_until = today + time::Duration::days(30);
            let key = crate::session::random_token();
            let page = QuotesPage { quotes, taxes, outcome, may_write, valid_until, key };
            pages::page(StatusCode::OK, view::quotes(&frame(&session, &grant), &page))
        }
        Err(e) => unavailable(e),
    }
}

/// A quote's page.
pub(crate) struct QuotePage {
    pub quote: anchor_store::quotes::Quote,
    pub outcome: Option<(Execution, &'static str)>,
    pub may_write: bool,
    pub keys: Vec<String>,
    /// The first day of next month: a contract made from the quote starts then by default.
    pub contract_start: Date,
}

/// `GET /w/{ws}/console/financials/quotes/{id}`.
pub(crate) async fn quote(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/quotes/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let missing = || pages::declined(StatusCode::NOT_FOUND, "No such quote", "This workspace has no such quote.");
    let Ok(id) = id.parse::<anchor_domain::QuoteId>() else { return missing() };
    let seen = Seen::of(&grant, &session, query.outcome.as_deref());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(quote) = tx.quote(id).await? else { return Ok(None) };
                let today = tx.clock().await?.date();
                Ok(Some((quote, seen.clone().read(tx).await?, today)))
            })
        })
        .await;
    match read {
        Ok(Some((quote, outcome, today))) => {
            let keys = (0..4).map(|_| crate::session::random_token()).collect();
            let may_write = grant.allows(Permission::BillingWrite);
            let contract_start = next_month(today);
            let page = QuotePage { quote, outcome, may_write, keys, contract_start };
            pages::page(StatusCode::OK, view::quote(&frame(&session, &grant), &page))
        }
        Ok(None) => missing(),
        Err(e) => unavailable(e),
    }
}

/// A contract's lifecycle buttons valid now: (command, label).
pub(crate) fn contract_actions(contract: &Contract) -> Vec<(&'static str, &'static str)> {
    use anchor_domain::ContractState as S;
    match contract.state {
        S::Draft => vec![("contract.activate", "Activate"), ("contract.cancel", "Cancel")],
        S::Active => vec![("contract.suspend", "Suspend"), ("contract.cancel", "Cancel")],
        S::Suspended => vec![("contract.resume", "Resume"), ("contract.cancel", "Cancel")],
        S::Cancelled => Vec::new(),
    }
}

/// The id of a contract as a link target.
pub(crate) fn contract_anchor(id: ContractId) -> String {
    format!("contract-{id}")
}

/// The reports' page: unbilled time, revenue by contract over a period
/// (this year to date unless another is asked for), ageing of receivables.
pub(crate) struct ReportsPage {
    pub currency: Option<anchor_domain::Currency>,
    pub period_start: Date,
    pub period_end: Date,
    /// Why the period asked for is not read, if it is not.
    pub problem: Option<String>,
    pub unbilled: Vec<anchor_store::reports::UnbilledTimeRow>,
    pub revenue: Vec<anchor_store::reports::RevenueRow>,
    pub ageing: Vec<anchor_store::reports::AgeingRow>,
    /// The client's open balance, as the invoices' list shows it.
    pub balance: ClientBalance,
}

/// `GET /w/{ws}/console/financials/reports`.
pub(crate) async fn reports(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<RunQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/reports";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let (from, to) = (day(query.period_start.as_deref()), day(query.period_end.as_deref()));
    let unreadable = (query.period_start.is_some() && from.is_none()) || (query.period_end.is_some() && to.is_none());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let today = tx.clock().await?.date();
                let year_start = today.replace_ordinal(1).expect("the first day of the year");
                let (from, to) = (from.unwrap_or(year_start), to.unwrap_or(today));
                let problem = if unreadable {
                    Some("Give both days of the period as dates (YYYY-MM-DD).".to_owned())
                } else if to < from {
                    Some("The period ends on or after the day it starts.".to_owned())
                } else {
                    None
                };
                let revenue = if problem.is_none() { tx.revenue_report(from, to).await? } else { Vec::new() };
                let currency = tx.billing_profile().await?.map(|p| p.currency);
                let unbilled = tx.unbilled_time_report().await?;
                let ageing = tx.ageing_report().await?;
                let balance = tx.client_balance().await?;
                Ok(ReportsPage {
                    currency,
                    period_start: from,
                    period_end: to,
                    problem,
                    unbilled,
                    revenue,
                    ageing,
                    balance,
                })
            })
        })
        .await;
    match read {
        Ok(page) => pages::page(StatusCode::OK, view::reports(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn the_default_period_is_last_month() {
        assert_eq!(last_month(date!(2026 - 12 - 07)), (date!(2026 - 11 - 01), date!(2026 - 11 - 30)));
        assert_eq!(last_month(date!(2027 - 01 - 01)), (date!(2026 - 12 - 01), date!(2026 - 12 - 31)));
        assert_eq!(last_month(date!(2028 - 03 - 31)), (date!(2028 - 02 - 01), date!(2028 - 02 - 29)));
    }

    #[test]
    fn a_payment_is_applied_up_to_the_balance() {
        let form = |amount: &str| {
            vec![
                ("invoice_id".to_owned(), "inv_01jd6m2h9x8k7v5t3r1p0n9q8w".to_owned()),
                ("amount".to_owned(), amount.to_owned()),
                ("received_on".to_owned(), "2026-12-01".to_owned()),
                ("method".to_owned(), "transfer".to_owned()),
            ]
        };
        let args = arguments("payment.record", &form("150.00"), Some(Decimal::new(10000, 2))).expect("args");
        assert_eq!(args["allocations"][0]["amount"], "100.00");
        assert_eq!(args["amount"], "150.00");
        let args = arguments("payment.record", &form("40"), Some(Decimal::new(10000, 2))).expect("args");
        assert_eq!(args["allocations"][0]["amount"], "40");
        assert!(arguments("ticket.create", &form("1"), None).is_err());
    }
}
