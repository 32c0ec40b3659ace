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
                Ok(Some((invoice, credit_notes, outcome, today, taxes)))
            })
        })
        .await;
    match read {
        Ok(Some((invoice, credit_notes, outcome, today, taxes))) => {
            let keys = (0..7).map(|_| crate::session::random_token()).collect();
            let may_write = grant.allows(Permission::BillingWrite);
            let page = InvoicePage { invoice, credit_notes, outcome, may_write, today, keys, taxes };
            pages::page(StatusCode::OK, view::invoice(&frame(&session, &grant), &page))
        }
        Ok(None) => no_such_invoice(),
        Err(e) => unavailable(e),
    }
}

fn no_such_invoice() -> Response {
    pages::declined(StatusCode::NOT_FOUND, "No such invoice", "This workspace has no such invoice or credit note.")
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
        Ok(Some((Some((bytes, sha256)), number))) => {
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

fn day(text: Option<&str>) -> Option<Date> {
    text.and_then(|t| Date::parse(t.trim(), &time::format_description::well_known::Iso8601::DATE).ok())
}

/// The month before `today`'s.
fn last_month(today: Date) -> (Date, Date) {
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

/// The rates' page: work types (added and changed here), rate cards and
/// staff rate roles.
pub(crate) struct RatesPage {
    pub currency: Option<anchor_domain::Currency>,
    pub work_types: Vec<anchor_store::contracts::WorkTypeDef>,
    pub rate_cards: Vec<anchor_store::contracts::RateCard>,
    pub staff: Vec<anchor_store::contracts::StaffRateRole>,
    /// The workspace's members, whom a rate role may be given.
    pub members: Vec<anchor_store::queues::WorkspaceMember>,
    /// What was wrong with the staff rate role sent.
    pub staff_problem: Option<String>,
    pub taxes: Vec<String>,
    pub may_write: bool,
    /// The form's values: the work type being changed, or what was sent.
    pub form: WorkTypeForm,
    /// What was wrong with the work type sent.
    pub problem: Option<String>,
    /// The rate card form's values.
    pub card: RateCardForm,
    /// What was wrong with the rate card sent.
    pub card_problem: Option<String>,
    /// What was just saved: (`work type` or `rate card`, its key).
    pub saved: Option<(&'static str, String)>,
}

/// The rate card form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateCardForm {
    pub key: String,
    pub name: String,
    /// (work type, role, hourly rate), as text.
    pub rows: Vec<(String, String, String)>,
    pub existing: bool,
}

/// The work type form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkTypeForm {
    pub key: String,
    pub name: String,
    pub hourly_rate: String,
    pub tax: String,
    pub billable: bool,
    pub archived: bool,
    /// Changing an existing work type (its key is fixed).
    pub existing: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RatesQuery {
    /// The work type to change in the form.
    #[serde(default)]
    edit: Option<String>,
    /// The rate card to change in its form.
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    saved_card: Option<String>,
    #[serde(default)]
    saved_staff: Option<String>,
}

/// What the rates page is asked to show in its forms.
#[derive(Default)]
struct RatesAsk {
    form: Option<WorkTypeForm>,
    edit: Option<String>,
    problem: Option<String>,
    card: Option<RateCardForm>,
    edit_card: Option<String>,
    card_problem: Option<String>,
    staff_problem: Option<String>,
    saved: Option<(&'static str, String)>,
}

async fn rates_page(state: &WebState, grant: &Grant, ask: RatesAsk) -> Result<RatesPage, anchor_store::StoreError> {
    let RatesAsk { form, edit, problem, card, edit_card, card_problem, staff_problem, saved } = ask;
    let (currency, work_types, rate_cards, staff, members, taxes) = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let currency = tx.billing_profile().await?.map(|p| p.currency);
                let work_types = tx.work_types().await?;
                let rate_cards = tx.rate_cards().await?;
                let staff = tx.staff_rate_roles().await?;
                let members = tx.workspace_members().await?;
                let taxes: Vec<String> =
                    tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                Ok((currency, work_types, rate_cards, staff, members, taxes))
            })
        })
        .await?;
    let form = form.unwrap_or_else(|| {
        match edit.as_deref().and_then(|key| work_types.iter().find(|w| w.key.as_str() == key)) {
            Some(w) => WorkTypeForm {
                key: w.key.as_str().to_owned(),
                name: w.name.clone(),
                hourly_rate: w.hourly_rate.to_string(),
                tax: w.tax.clone(),
                billable: w.billable,
                archived: w.archived,
                existing: true,
            },
            None => WorkTypeForm { billable: true, ..WorkTypeForm::default() },
        }
    });
    // Only what exists is said to be saved (the address could name anything).
    let saved = saved.filter(|(what, key)| match *what {
        "Work type" => work_types.iter().any(|w| w.key.as_str() == key),
        "Staff rate role of" => staff.iter().any(|m| &m.subject == key),
        _ => rate_cards.iter().any(|c| &c.key == key),
    });
    let card =
        card.unwrap_or_else(|| match edit_card.as_deref().and_then(|key| rate_cards.iter().find(|c| c.key == key)) {
            Some(c) => RateCardForm {
                key: c.key.clone(),
                name: c.name.clone(),
                rows: c
                    .rates
                    .iter()
                    .map(|r| {
                        (r.work_type.as_str().to_owned(), r.role.clone().unwrap_or_default(), r.hourly_rate.to_string())
                    })
                    .collect(),
                existing: true,
            },
            None => RateCardForm::default(),
        });
    Ok(RatesPage {
        currency,
        work_types,
        rate_cards,
        staff,
        taxes,
        may_write: grant.allows(Permission::BillingWrite),
        form,
        problem,
        card,
        card_problem,
        members,
        staff_problem,
        saved,
    })
}

/// `GET /w/{ws}/console/financials/rates`.
pub(crate) async fn rates(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<RatesQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/rates";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let saved = match (query.saved, query.saved_card, query.saved_staff) {
        (Some(key), _, _) => Some(("Work type", key)),
        (None, Some(key), _) => Some(("Rate card", key)),
        (None, None, Some(subject)) => Some(("Staff rate role of", subject)),
        _ => None,
    };
    let ask = RatesAsk { edit: query.edit, edit_card: query.card, saved, ..RatesAsk::default() };
    match rates_page(&state, &grant, ask).await {
        Ok(page) => pages::page(StatusCode::OK, view::rates(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/rates/work-types`: add a work type or
/// change one. Configuration: written directly, with the same checks as
/// `PUT .../billing/work-types/{key}`, recorded with its signed credential.
pub(crate) async fn save_work_type(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    use anchor_commands::catalogue::{self, ConfigError};

    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/financials/rates/work-types";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let text = |name: &str| field(&fields, name).unwrap_or_default().trim().to_owned();
    let form = WorkTypeForm {
        key: text("key"),
        name: text("name"),
        hourly_rate: text("hourly_rate"),
        tax: text("tax"),
        billable: given(&fields, "billable").is_some(),
        archived: given(&fields, "archived").is_some(),
        existing: given(&fields, "existing").is_some(),
    };
    let again = |problem: String| {
        let (state, grant, session, form) = (state.clone(), grant.clone(), session.clone(), form.clone());
        async move {
            let ask = RatesAsk { form: Some(form), problem: Some(problem), ..RatesAsk::default() };
            match rates_page(&state, &grant, ask).await {
                Ok(page) => pages::page(StatusCode::UNPROCESSABLE_ENTITY, view::rates(&frame(&session, &grant), &page)),
                Err(e) => unavailable(e),
            }
        }
    };
    let Ok(key) = anchor_domain::WorkType::parse(&form.key) else {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter (time entries carry it).".to_owned())
            .await;
    };
    let Ok(rate) = form.hourly_rate.parse::<Decimal>() else {
        return again("Hourly rate: a number such as 95.00.".to_owned()).await;
    };
    let actor = anchor_store::executions::Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let def = catalogue::work_type(key, &form.name, form.billable, rate, form.tax.clone(), form.archived)?;
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        catalogue::live_tax(&mut tx, catalogue::INVALID_WORK_TYPE, &def.tax).await?;
        // "Add" never replaces: a key in use is changed from its own form.
        if !form.existing && tx.work_types().await?.iter().any(|w| w.key == def.key) {
            return Err(ConfigError::Invalid(catalogue::ConfigInvalid {
                code: catalogue::INVALID_WORK_TYPE,
                path: "/key",
                message: format!("{} is taken: change that work type instead (its Change link)", def.key),
            }));
        }
        let created = tx.save_work_type(&def).await?;
        let action = if created { "work_type.created" } else { "work_type.updated" };
        let target = def.key.as_str().to_owned();
        let change = anchor_store::changes::NewChange {
            action,
            target: &target,
            actor: &actor,
            actor_role: Some(grant.role),
            details: serde_json::to_value(&def).unwrap_or_default(),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(target)
    }
    .await;
    match saved {
        Ok(key) => {
            let base = format!("/w/{}/console/financials", urlencoding(grant.workspace.slug().as_str()));
            Redirect::to(&format!("{base}/rates?saved={}", urlencoding(&key))).into_response()
        }
        Err(ConfigError::Invalid(e)) => {
            let what = match e.path {
                "/name" => "Name",
                "/hourly_rate" => "Hourly rate",
                "/tax" => "Tax",
                "/key" => "Key",
                _ => "The work type",
            };
            again(format!("{what}: {}.", e.message)).await
        }
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}

/// Rows the rate card form offers after the rates a card has.
pub(crate) const BLANK_RATE_ROWS: usize = 3;

/// `POST /w/{ws}/console/financials/rates/rate-cards`: add a rate card or
/// change one, with the same checks as `PUT .../billing/rate-cards/{key}`,
/// recorded with its signed credential. A row without a rate is left out.
pub(crate) async fn save_rate_card(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    use anchor_commands::catalogue;
    use anchor_store::contracts::Rate;

    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/financials/rates/rate-cards";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let text = |name: &str| field(&fields, name).unwrap_or_default().trim().to_owned();
    let count = text("rows").parse::<usize>().unwrap_or(0).min(200 + BLANK_RATE_ROWS);
    let rows: Vec<(String, String, String)> = (1..=count)
        .map(|n| (text(&format!("work_type_{n}")), text(&format!("role_{n}")), text(&format!("rate_{n}"))))
        .filter(|(_, _, rate)| !rate.is_empty())
        .collect();
    let form =
        RateCardForm { key: text("key"), name: text("name"), rows, existing: given(&fields, "existing").is_some() };
    let again = |problem: String| {
        let (state, grant, session, form) = (state.clone(), grant.clone(), session.clone(), form.clone());
        async move {
            let ask = RatesAsk { card: Some(form), card_problem: Some(problem), ..RatesAsk::default() };
            match rates_page(&state, &grant, ask).await {
                Ok(page) => pages::page(StatusCode::UNPROCESSABLE_ENTITY, view::rates(&frame(&session, &grant), &page)),
                Err(e) => unavailable(e),
            }
        }
    };
    if !catalogue::is_key(&form.key, 60) {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter (contracts name it).".to_owned()).await;
    }
    let mut rates = Vec::with_capacity(form.rows.len());
    for (n, (work_type, role, rate)) in form.rows.iter().enumerate() {
        let Ok(work_type) = anchor_domain::WorkType::parse(work_type) else {
            return again(format!("Rate {}: choose its work type.", n + 1)).await;
        };
        let Ok(hourly_rate) = rate.parse::<Decimal>() else {
            return again(format!("Rate {}: the hourly rate is a number such as 95.00.", n + 1)).await;
        };
        rates.push(Rate { work_type, role: (!role.is_empty()).then(|| role.clone()), hourly_rate });
    }
    let card = match catalogue::rate_card(form.key.clone(), &form.name, rates) {
        Ok(card) => card,
        Err(e) => {
            let what = if e.path == "/name" { "Name" } else { "Rates" };
            return again(format!("{what}: {}.", e.message)).await;
        }
    };
    let actor = anchor_store::executions::Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        if !form.existing && tx.rate_card(&card.key).await?.is_some() {
            return Ok(false);
        }
        let created = tx.save_rate_card(&card).await?;
        let action = if created { "rate_card.created" } else { "rate_card.updated" };
        let change = anchor_store::changes::NewChange {
            action,
            target: &card.key,
            actor: &actor,
            actor_role: Some(grant.role),
            details: serde_json::to_value(&card).unwrap_or_default(),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, anchor_store::StoreError>(true)
    }
    .await;
    match saved {
        Ok(true) => {
            let base = format!("/w/{}/console/financials", urlencoding(grant.workspace.slug().as_str()));
            Redirect::to(&format!("{base}/rates?saved_card={}", urlencoding(&card.key))).into_response()
        }
        Ok(false) => {
            again(format!("Key: {} is taken: change that rate card instead (its Change link).", card.key)).await
        }
        Err(e) => unavailable(e),
    }
}

/// A member as a form's option names them: issuer and subject, each
/// URL-encoded, joined by a space (which neither then holds).
pub(crate) fn member_value(issuer: &str, subject: &str) -> String {
    format!("{} {}", urlencoding(issuer), urlencoding(subject))
}

/// `POST /w/{ws}/console/financials/rates/staff`: give a member of staff a
/// rate role, with the same checks as `PUT .../billing/staff-rates`,
/// recorded with its signed credential.
pub(crate) async fn save_staff_rate(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    use anchor_commands::catalogue;

    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/financials/rates/staff";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let again = |problem: String| {
        let (state, grant, session) = (state.clone(), grant.clone(), session.clone());
        async move {
            let ask = RatesAsk { staff_problem: Some(problem), ..RatesAsk::default() };
            match rates_page(&state, &grant, ask).await {
                Ok(page) => pages::page(StatusCode::UNPROCESSABLE_ENTITY, view::rates(&frame(&session, &grant), &page)),
                Err(e) => unavailable(e),
            }
        }
    };
    let decode =
        |text: &str| url::form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned());
    let member = field(&fields, "member").unwrap_or_default();
    let Some((issuer, subject)) = member.split_once(' ').and_then(|(i, s)| Some((decode(i)?, decode(s)?))) else {
        return again("Choose the member of staff.".to_owned()).await;
    };
    let role = field(&fields, "role").unwrap_or_default().trim().to_owned();
    let staff = match catalogue::staff_rate(&issuer, &subject, role) {
        Ok(staff) => staff,
        Err(e) if e.path == "/role" => return again(format!("Rate role: {}.", e.message)).await,
        Err(e) => return again(format!("Member: {}.", e.message)).await,
    };
    let actor = anchor_store::executions::Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        // Only a member of this workspace is given a rate role here.
        if !tx.workspace_members().await?.iter().any(|m| m.issuer == staff.issuer && m.subject == staff.subject) {
            return Ok(false);
        }
        tx.save_staff_rate_role(&staff).await?;
        let target = format!("{}#{}", staff.issuer, staff.subject);
        let change = anchor_store::changes::NewChange {
            action: "staff_rate.saved",
            target: &target,
            actor: &actor,
            actor_role: Some(grant.role),
            details: serde_json::to_value(&staff).unwrap_or_default(),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, anchor_store::StoreError>(true)
    }
    .await;
    match saved {
        Ok(true) => {
            let base = format!("/w/{}/console/financials", urlencoding(grant.workspace.slug().as_str()));
            Redirect::to(&format!("{base}/rates?saved_staff={}", urlencoding(&staff.subject))).into_response()
        }
        Ok(false) => again("That person is not a member of this workspace.".to_owned()).await,
        Err(e) => unavailable(e),
    }
}

/// The catalogue's page: services and products with their prices, and the
/// form that adds or changes one.
pub(crate) struct CataloguePage {
    pub currency: Option<anchor_domain::Currency>,
    pub items: Vec<anchor_store::contracts::CatalogueItem>,
    pub taxes: Vec<String>,
    pub may_write: bool,
    pub form: CatalogueForm,
    pub problem: Option<String>,
    pub saved: Option<String>,
}

/// The catalogue form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct CatalogueForm {
    pub key: String,
    pub kind: String,
    pub name: String,
    pub unit_code: String,
    pub unit_price: String,
    pub tax: String,
    pub archived: bool,
    pub existing: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CatalogueQuery {
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

async fn catalogue_page(
    state: &WebState,
    grant: &Grant,
    form: Option<CatalogueForm>,
    edit: Option<String>,
    problem: Option<String>,
    saved: Option<String>,
) -> Result<CataloguePage, anchor_store::StoreError> {
    let (currency, items, taxes) = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let currency = tx.billing_profile().await?.map(|p| p.currency);
                let items = tx.catalogue_items().await?;
                let taxes: Vec<String> =
                    tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                Ok((currency, items, taxes))
            })
        })
        .await?;
    let form = form.unwrap_or_else(|| match edit.as_deref().and_then(|key| items.iter().find(|i| i.key == key)) {
        Some(i) => CatalogueForm {
            key: i.key.clone(),
            kind: i.kind.clone(),
            name: i.name.clone(),
            unit_code: i.unit_code.as_str().to_owned(),
            unit_price: i.unit_price.to_string(),
            tax: i.tax.clone(),
            archived: i.archived,
            existing: true,
        },
        None => CatalogueForm { kind: "service".to_owned(), unit_code: "MON".to_owned(), ..CatalogueForm::default() },
    });
    let saved = saved.filter(|key| items.iter().any(|i| &i.key == key));
    let may_write = grant.allows(Permission::BillingWrite);
    Ok(CataloguePage { currency, items, taxes, may_write, form, problem, saved })
}

/// `GET /w/{ws}/console/financials/catalogue`.
pub(crate) async fn catalogue(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<CatalogueQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/catalogue";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    match catalogue_page(&state, &grant, None, query.edit, None, query.saved).await {
        Ok(page) => pages::page(StatusCode::OK, view::catalogue(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/catalogue`: add a service or product,
/// or change one, with the same checks as `PUT .../billing/catalogue/{key}`,
/// recorded with its signed credential.
pub(crate) async fn save_catalogue_item(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    use anchor_commands::catalogue::{self, ConfigError};

    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/console/financials/catalogue";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let text = |name: &str| field(&fields, name).unwrap_or_default().trim().to_owned();
    let form = CatalogueForm {
        key: text("key"),
        kind: text("kind"),
        name: text("name"),
        unit_code: text("unit_code"),
        unit_price: text("unit_price"),
        tax: text("tax"),
        archived: given(&fields, "archived").is_some(),
        existing: given(&fields, "existing").is_some(),
    };
    let again = |problem: String| {
        let (state, grant, session, form) = (state.clone(), grant.clone(), session.clone(), form.clone());
        async move {
            match catalogue_page(&state, &grant, Some(form), None, Some(problem), None).await {
                Ok(page) => {
                    pages::page(StatusCode::UNPROCESSABLE_ENTITY, view::catalogue(&frame(&session, &grant), &page))
                }
                Err(e) => unavailable(e),
            }
        }
    };
    if !catalogue::is_key(&form.key, 60) {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter.".to_owned()).await;
    }
    let Ok(unit_code) = anchor_domain::UnitCode::parse(&form.unit_code) else {
        return again("Unit: choose one.".to_owned()).await;
    };
    let Ok(price) = form.unit_price.parse::<Decimal>() else {
        return again("Price: a number such as 12.50.".to_owned()).await;
    };
    let actor = anchor_store::executions::Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let item = catalogue::catalogue_item(
            form.key.clone(),
            form.kind.clone(),
            &form.name,
            unit_code,
            price,
            form.tax.clone(),
            form.archived,
        )?;
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        catalogue::live_tax(&mut tx, catalogue::INVALID_CATALOGUE_ITEM, &item.tax).await?;
        if !form.existing && tx.catalogue_items().await?.iter().any(|i| i.key == item.key) {
            return Err(ConfigError::Invalid(catalogue::ConfigInvalid {
                code: catalogue::INVALID_CATALOGUE_ITEM,
                path: "/key",
                message: format!("{} is taken: change that item instead (its Change link)", item.key),
            }));
        }
        let created = tx.save_catalogue_item(&item).await?;
        let action = if created { "catalogue_item.created" } else { "catalogue_item.updated" };
        let change = anchor_store::changes::NewChange {
            action,
            target: &item.key,
            actor: &actor,
            actor_role: Some(grant.role),
            details: serde_json::to_value(&item).unwrap_or_default(),
        };
        anchor_evidence::issue::record_change(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(item.key)
    }
    .await;
    match saved {
        Ok(key) => {
            let base = format!("/w/{}/console/financials", urlencoding(grant.workspace.slug().as_str()));
            Redirect::to(&format!("{base}/catalogue?saved={}", urlencoding(&key))).into_response()
        }
        Err(ConfigError::Invalid(e)) => {
            let what = match e.path {
                "/name" => "Name",
                "/unit_price" => "Price",
                "/tax" => "Tax",
                "/key" => "Key",
                _ => "Kind",
            };
            again(format!("{what}: {}.", e.message)).await
        }
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}
