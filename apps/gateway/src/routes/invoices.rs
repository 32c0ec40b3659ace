//! Billing: the workspace's billing profile and tax rates (configuration,
//! written directly by those who may bill, each write recorded with its
//! signed credential), invoices and credit notes (commands answered 202
//! with an execution), their lists with balance and days overdue, the PDF
//! rendered when each was finalized, and their EN 16931 export (CII XML).

use anchor_commands::{
    invoices::{CreditNoteCreate, InvoiceCreate, InvoiceDiscard, InvoiceFinalize, InvoiceSend, InvoiceUpdate},
    payments::{PaymentAllocate, PaymentRecord, PaymentRefund},
};
use anchor_domain::{InvoiceId, InvoiceKind, InvoiceState, PaymentId, TaxCategory};
use anchor_store::invoices::{BillingProfile, ClientBalance, Invoice, InvoiceFilter, Payment, TaxRate};
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    const DOCUMENT: &str = "invoice";
    ApiRoutes::new()
        .routes(routes!(get_billing_profile, put_billing_profile))
        .routes(routes!(list_tax_rates))
        .routes(routes!(put_tax_rate))
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(get_invoice_pdf))
        .routes(routes!(get_invoice_cii))
        .command::<InvoiceCreate>("/api/v1/workspaces/{ws}/invoices")
        .change_on::<InvoiceUpdate>("/api/v1/workspaces/{ws}/invoices/{id}", "invoice_id", DOCUMENT)
        .command_on::<InvoiceDiscard>("/api/v1/workspaces/{ws}/invoices/{id}/discard", "invoice_id", DOCUMENT)
        .command_on::<InvoiceFinalize>("/api/v1/workspaces/{ws}/invoices/{id}/finalize", "invoice_id", DOCUMENT)
        .command_on::<InvoiceSend>("/api/v1/workspaces/{ws}/invoices/{id}/send", "invoice_id", DOCUMENT)
        .command_on::<CreditNoteCreate>("/api/v1/workspaces/{ws}/invoices/{id}/credit-notes", "invoice_id", DOCUMENT)
        .routes(routes!(get_client_balance))
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .command::<PaymentRecord>("/api/v1/workspaces/{ws}/payments")
        .command_on::<PaymentAllocate>("/api/v1/workspaces/{ws}/payments/{id}/allocate", "payment_id", "payment")
        .command::<PaymentRefund>("/api/v1/workspaces/{ws}/refunds")
}

/// Where the client stands: invoiced, credited, received, refunded, what
/// is outstanding on invoices and what the MSP owes back.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/balance", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = ClientBalance)))]
pub(crate) async fn get_client_balance(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<ClientBalance>, Problem> {
    Ok(Json(state.db.read(&scope.workspace, |tx| Box::pin(tx.client_balance())).await?))
}

/// Payments and refunds, newest first, each with what it paid.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/payments", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PageParams),
    responses((status = 200, body = Page<Payment>)))]
pub(crate) async fn list_payments(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<Payment>>, Problem> {
    let (after, limit) = (paging.after::<PaymentId>()?, paging.fetch());
    let rows = state.db.read(&scope.workspace, |tx| Box::pin(async move { tx.payments(after, limit).await })).await?;
    Ok(Json(paging.page(rows, |p| p.id, |p| p)))
}

/// A payment or refund.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/payments/{id}", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Payment id")),
    responses((status = 200, body = Payment)))]
pub(crate) async fn get_payment(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<PaymentId>,
) -> Result<Json<Payment>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.payment(id))).await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}

/// How this client is billed.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/profile", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = crate::schemas::BillingProfileDocument),
              (status = 404, description = "Not set yet", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_billing_profile(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<BillingProfile>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.billing_profile())).await?;
    found.map(Json).ok_or_else(|| Problem::not_found("this workspace has no billing profile yet"))
}

/// Set how this client is billed: currency, payment terms, numbering, the
/// parties printed on its documents. Finalized documents keep what they
/// were finalized with; drafts keep their currency.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/profile", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::BillingProfileDocument,
    responses((status = 200, description = "Replaced", body = crate::schemas::BillingProfileDocument),
              (status = 201, description = "Set", body = crate::schemas::BillingProfileDocument),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_billing_profile(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BillingProfile>,
) -> Result<Response, Problem> {
    check_profile(&body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let created = tx.save_billing_profile(&body).await?;
    changes::record(&mut tx, &scope, "billing_profile.saved", "billing_profile", json!(body)).await?;
    tx.commit().await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(body)).into_response())
}

fn check_profile(profile: &BillingProfile) -> Result<(), Problem> {
    let prefix = |p: &str| {
        (1..=16).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'/')
            && p.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !(0..=365).contains(&profile.payment_terms_days) {
        return Err(Problem::unprocessable("invalid_billing_profile", "/payment_terms_days", "0 to 365 days"));
    }
    for (value, path) in
        [(&profile.invoice_prefix, "/invoice_prefix"), (&profile.credit_note_prefix, "/credit_note_prefix")]
    {
        if !prefix(value) {
            let message = "1 to 16 capital letters, digits, '-' or '/', starting with a letter or digit";
            return Err(Problem::unprocessable("invalid_billing_profile", path, message));
        }
    }
    if profile.invoice_prefix == profile.credit_note_prefix {
        let message = "credit notes are numbered apart from invoices: give them another prefix";
        return Err(Problem::unprocessable("invalid_billing_profile", "/credit_note_prefix", message));
    }
    if profile.payee_iban.as_deref().is_some_and(|iban| !iban_valid(iban)) {
        let message = "not an IBAN (capital letters and digits, no spaces, a valid check digit)";
        return Err(Problem::unprocessable("invalid_billing_profile", "/payee_iban", message));
    }
    Ok(())
}

/// ISO 13616: the shape, and the check digits (mod 97 = 1).
fn iban_valid(iban: &str) -> bool {
    let shaped = (15..=34).contains(&iban.len())
        && iban.bytes().take(2).all(|b| b.is_ascii_uppercase())
        && iban.bytes().skip(2).take(2).all(|b| b.is_ascii_digit())
        && iban.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !shaped {
        return false;
    }
    let rearranged = iban.bytes().skip(4).chain(iban.bytes().take(4));
    let remainder = rearranged.fold(0u32, |acc, b| {
        let value = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        if value >= 10 { (acc * 100 + value) % 97 } else { (acc * 10 + value) % 97 }
    });
    remainder == 1
}

/// The tax rates lines can use (archived last).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/tax-rates", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<TaxRate>)))]
pub(crate) async fn list_tax_rates(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<TaxRate>>, Problem> {
    let rates = state.db.read(&scope.workspace, |tx| Box::pin(tx.tax_rates())).await?;
    Ok(Json(Page { items: rates, next_cursor: None }))
}

/// A tax rate as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaxRateBody {
    /// 1 to 100 characters, e.g. "VAT 19%".
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// UNTDID 5305: `S` standard, `Z` zero, `E` exempt, `AE` reverse charge,
    /// `K` intra-community, `G` export, `O` outside the scope of tax.
    #[schema(value_type = String, example = "S")]
    category: TaxCategory,
    /// Percent as a decimal string (`"19"`, `"5.5"`); `"0"` for a category without tax.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "19")]
    rate: Decimal,
    /// Why no tax is charged: printed and exported for E, AE, K, G and O.
    #[schema(max_length = 200)]
    #[serde(default)]
    exemption_reason: Option<String>,
    /// Archived rates stay on the documents that used them; new lines cannot use them.
    #[serde(default)]
    archived: bool,
}

/// Add a tax rate, or change one (documents keep the rate they were
/// written with).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/tax-rates/{key}", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"),
           ("key" = String, Path, description = "The rate's key (`^[a-z][a-z0-9_]{0,39}$`), e.g. `standard`")),
    request_body = TaxRateBody,
    responses((status = 200, description = "Replaced", body = TaxRate),
              (status = 201, description = "Added", body = TaxRate),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_tax_rate(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    Path((_, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<TaxRateBody>,
) -> Result<Response, Problem> {
    let invalid = |path: &str, message: String| Problem::unprocessable("invalid_tax_rate", path, message);
    let key_ok = (1..=40).contains(&key.len())
        && key.as_bytes()[0].is_ascii_lowercase()
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !key_ok {
        return Err(Problem::not_found("a tax rate key is 1 to 40 of a-z, 0-9 and _, starting with a letter"));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("/name", "1 to 100 characters, no control characters".into()));
    }
    body.category.check_rate(body.rate).map_err(|m| invalid("/rate", m))?;
    let reason = body.exemption_reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 200 || r.chars().any(char::is_control)) {
        return Err(invalid("/exemption_reason", "at most 200 characters, no control characters".into()));
    }
    if body.category.needs_exemption_reason() && reason.is_none() {
        let message = format!("category {} charges no tax: say why (printed on the documents)", body.category);
        return Err(invalid("/exemption_reason", message));
    }
    if !body.category.needs_exemption_reason() && reason.is_some() {
        let message = format!("category {} has no exemption reason", body.category);
        return Err(invalid("/exemption_reason", message));
    }
    let rate = TaxRate {
        key: key.clone(),
        name: name.to_owned(),
        category: body.category,
        rate: body.rate.normalize(),
        exemption_reason: reason.map(str::to_owned),
        archived: body.archived,
    };
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let created = tx.save_tax_rate(&rate).await?;
    let saved = tx.tax_rate(&key).await?.unwrap_or(rate);
    let action = if created { "tax_rate.created" } else { "tax_rate.updated" };
    changes::record(&mut tx, &scope, action, &key, json!(saved)).await?;
    tx.commit().await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(saved)).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InvoiceQuery {
    /// Only invoices or only credit notes.
    #[param(inline)]
    kind: Option<InvoiceKind>,
    /// Only documents in this state.
    #[param(inline)]
    state: Option<InvoiceState>,
    /// Only invoices with a balance past their due date.
    overdue: Option<bool>,
}

/// Invoices and credit notes, newest first, each with its lines, balance
/// and days overdue.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/invoices", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), InvoiceQuery, PageParams),
    responses((status = 200, body = Page<Invoice>)))]
pub(crate) async fn list_invoices(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<InvoiceQuery>,
    paging: Paging,
) -> Result<Json<Page<Invoice>>, Problem> {
    let filter = InvoiceFilter {
        kind: query.kind,
        state: query.state,
        overdue: query.overdue.unwrap_or(false),
        ..InvoiceFilter::default()
    };
    let (after, limit) = (paging.after::<InvoiceId>()?, paging.fetch());
    let rows =
        state.db.read(&scope.workspace, |tx| Box::pin(async move { tx.invoices(&filter, after, limit).await })).await?;
    Ok(Json(paging.page(rows, |i| i.id, |i| i)))
}

/// An invoice or credit note.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/invoices/{id}", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = Invoice)))]
pub(crate) async fn get_invoice(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<InvoiceId>,
) -> Result<Json<Invoice>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.invoice(id))).await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}

/// The PDF of a finalized document, byte for byte as rendered when it was
/// finalized (its SHA-256 is the invoice's `pdf_sha256` and the `ETag`).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/invoices/{id}/pdf", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
              (status = 409, description = "A draft has no PDF yet", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_invoice_pdf(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<InvoiceId>,
) -> Result<Response, Problem> {
    let (invoice, pdf) = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { Ok((tx.invoice(id).await?, tx.invoice_pdf(id).await?)) }))
        .await?;
    let invoice = invoice.ok_or_else(|| not_found(&id))?;
    let Some((bytes, sha)) = pdf else {
        return Err(Problem::new(StatusCode::CONFLICT, "invoice_draft", "a draft has no PDF: finalize it first"));
    };
    let name = invoice.number.unwrap_or_else(|| id.to_string());
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}.pdf\"")),
            (header::ETAG, format!("\"{sha}\"")),
            (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// The EN 16931 export of a finalized document: UN/CEFACT Cross Industry
/// Invoice XML at the EN 16931 profile (as Factur-X and ZUGFeRD use it).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/invoices/{id}/cii", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, description = "CII XML", content_type = "application/xml", body = String),
              (status = 409, description = "A draft is not exported", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_invoice_cii(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<InvoiceId>,
) -> Result<Response, Problem> {
    let invoice = state.db.read(&scope.workspace, |tx| Box::pin(tx.invoice(id))).await?;
    let invoice = invoice.ok_or_else(|| not_found(&id))?;
    let xml = anchor_invoicing::cii::export(&invoice)
        .map_err(|e| Problem::new(StatusCode::CONFLICT, "invoice_draft", format!("{e}; finalize it first")))?;
    let name = invoice.number.unwrap_or_else(|| id.to_string());
    Ok((
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.xml\"")),
        ],
        xml,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::iban_valid;

    #[test]
    fn ibans_are_checked_by_their_check_digits() {
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("DE89370400440532013001"), "wrong check digits");
        assert!(!iban_valid("DE89 3704 0044 0532 0130 00"), "no spaces");
        assert!(!iban_valid("de89370400440532013000"));
    }
}
