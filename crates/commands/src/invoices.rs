//! Invoices and credit notes (psa.md "Invoice", "Money").
//!
//! - `invoice.create`: a draft invoice in the client's currency, with lines.
//! - `invoice.update`: a draft's lines (given whole), purchase order, note.
//! - `invoice.discard`: deletes a draft (it has no number yet: no gap).
//! - `invoice.finalize`: takes the next number of the document's series in
//!   the same unit of work, fixes the parties and totals, checks the
//!   EN 16931 business rules, renders the PDF and records its SHA-256. A
//!   refusal rolls the number back. From then on the document is immutable.
//! - `invoice.send`: marks a finalized document sent.
//! - `credit_note.create`: a draft credit note correcting a finalized
//!   invoice; by default it reverses all of it. Finalizing refuses a credit
//!   note that would credit more than the invoice's gross.
//!
//! Every line is computed by `anchor_domain::money` when written, and the
//! whole document again when finalized.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    Currency, ExecutionId, InvoiceId, InvoiceKind, InvoiceNote, InvoiceState, LineDescription, PurchaseOrder,
    TaxCategory, UnitCode,
    money::{LineInput, totals},
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    invoices::{BillingProfile, Finalized, Invoice, NewLine, TaxRate},
    time_entries::iso_date,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Date, Duration};

use crate::kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection};

pub const INVOICE_NOT_FOUND: RefusalKind = RefusalKind {
    code: "invoice_not_found",
    status: 404,
    when: "the invoice or credit note does not exist in this workspace",
};
pub const PROFILE_MISSING: RefusalKind = RefusalKind {
    code: "billing_profile_missing",
    status: 409,
    when: "the workspace has no billing profile yet (PUT .../billing/profile)",
};
pub const TAX_RATE_UNKNOWN: RefusalKind = RefusalKind {
    code: "tax_rate_unknown",
    status: 422,
    when: "a line names a tax rate the workspace does not have, or one that is archived",
};
pub const NOT_DRAFT: RefusalKind = RefusalKind {
    code: "invoice_finalized",
    status: 409,
    when: "the document is finalized: immutable, corrected only by a credit note",
};
pub const EMPTY: RefusalKind =
    RefusalKind { code: "invoice_empty", status: 422, when: "a document without lines is not finalized" };
pub const NOT_COMPLIANT: RefusalKind = RefusalKind {
    code: "invoice_not_compliant",
    status: 422,
    when: "the document would break an EN 16931 business rule (named in the message)",
};
pub const NOT_CREDITABLE: RefusalKind = RefusalKind {
    code: "invoice_not_creditable",
    status: 409,
    when: "a credit note corrects a finalized invoice (not a draft, not a credit note)",
};
pub const OVER_CREDIT: RefusalKind = RefusalKind {
    code: "credit_exceeds_invoice",
    status: 409,
    when: "the credit notes of an invoice would credit more than its gross amount",
};
pub const RUN_DRAFT: RefusalKind = RefusalKind {
    code: "invoice_from_billing_run",
    status: 409,
    when: "a billing run's draft keeps its lines (they bill time and contract charges): discard it and run again",
};
pub const NOT_SENDABLE: RefusalKind =
    RefusalKind { code: "invoice_not_sendable", status: 409, when: "only a finalized, unsent document is sent" };

/// A line as a command gives it. Amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineArgs {
    /// What is billed, as printed.
    pub description: LineDescription,
    /// A decimal string with up to 4 decimals; negative corrects a draft.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String", regex(pattern = "^-?[0-9]{1,10}(\\.[0-9]{1,4})?$"))]
    pub quantity: Decimal,
    /// UN/ECE Recommendation 20: `HUR` hours, `C62` one (the default), `MON` months.
    #[serde(default = "UnitCode::one")]
    pub unit_code: UnitCode,
    /// The price of one unit excluding tax: a decimal string, up to 4 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String", regex(pattern = "^[0-9]{1,10}(\\.[0-9]{1,4})?$"))]
    pub unit_price: Decimal,
    /// Percent off the line (0 to 100, up to 2 decimals); none by default.
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", regex(pattern = "^[0-9]{1,3}(\\.[0-9]{1,2})?$"))]
    pub discount_percent: Option<Decimal>,
    /// The key of one of the workspace's tax rates (`GET .../billing/tax-rates`).
    #[schemars(regex(pattern = "^[a-z][a-z0-9_]*$"), length(max = 40))]
    pub tax: String,
}

impl LineArgs {
    pub(crate) fn input(&self, category: TaxCategory, rate: Decimal) -> LineInput {
        LineInput {
            quantity: self.quantity,
            unit_price: self.unit_price,
            discount_percent: self.discount_percent.unwrap_or_default(),
            tax_category: category,
            tax_rate: rate,
        }
    }
}

/// The lines' own rules, with where: the tax rate is checked in the workspace.
pub(crate) fn check_lines(lines: &[LineArgs]) -> Result<(), Invalid> {
    if lines.len() > 500 {
        return Err(Invalid::at("/lines", format!("{} lines; at most 500", lines.len())));
    }
    for (i, line) in lines.iter().enumerate() {
        // Any untaxed category at 0 checks the numbers alone.
        // (The message names the line and the member: pointers are static.)
        line.input(TaxCategory::Exempt, Decimal::ZERO)
            .check()
            .map_err(|e| Invalid::at("/lines", format!("line {}: {}: {}", i + 1, e.field, e.message)))?;
    }
    Ok(())
}

/// Create a draft invoice in the client's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"lines": [{"description": "Managed workstation, March", "quantity": "12",
    "unit_code": "C62", "unit_price": "35.00", "tax": "standard"}], "purchase_order": "PO-2026-118"}))]
pub struct InvoiceCreate {
    /// Up to 500; may be empty (a draft is filled in later).
    #[serde(default)]
    pub lines: Vec<LineArgs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<PurchaseOrder>,
    /// Printed on the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<InvoiceNote>,
}

/// Change a draft: its lines (given whole, replacing them), purchase order
/// or note (`null` removes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w", "note": "Thank you."}))]
pub struct InvoiceUpdate {
    pub invoice_id: InvoiceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineArgs>>,
    #[serde(
        default,
        deserialize_with = "anchor_domain::vocabulary::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub purchase_order: Option<Option<PurchaseOrder>>,
    #[serde(
        default,
        deserialize_with = "anchor_domain::vocabulary::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub note: Option<Option<InvoiceNote>>,
}

/// Finalize a draft: number, totals, PDF; immutable from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct InvoiceFinalize {
    pub invoice_id: InvoiceId,
    /// The issue date; today (UTC) when not given.
    #[serde(default, with = "iso_date::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub issued_on: Option<Date>,
}

macro_rules! on_invoice {
    ($($(#[$doc:meta])* $ty:ident;)+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(example = serde_json::json!({"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
        pub struct $ty {
            pub invoice_id: InvoiceId,
        }
    )+};
}

on_invoice!(
    /// Discard a draft: it is deleted.
    InvoiceDiscard;
    /// Mark a finalized document as sent to the client.
    InvoiceSend;
);

/// Create a draft credit note correcting a finalized invoice: its lines
/// as given, or all of the invoice's lines (a full reversal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "note": "Credit for the duplicated licence line."}))]
pub struct CreditNoteCreate {
    /// The finalized invoice it corrects.
    pub invoice_id: InvoiceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineArgs>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<InvoiceNote>,
}

/// `invoice.created`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvoiceCreated {
    /// The draft as `GET .../invoices/{id}` shows it.
    pub invoice: Invoice,
    pub execution_id: ExecutionId,
}

impl Event for InvoiceCreated {
    const TYPE: &'static str = "invoice.created";
    const WHEN: &'static str = "A draft invoice or credit note was created.";
}

/// What happened in an `invoice.updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceChange {
    Edited,
    Finalized,
    Sent,
}

/// `invoice.updated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvoiceUpdated {
    pub invoice_id: InvoiceId,
    /// `edited` (a draft), `finalized` or `sent`.
    pub change: InvoiceChange,
    pub actor: Actor,
    pub execution_id: ExecutionId,
    /// The document after the change.
    pub invoice: Invoice,
}

impl Event for InvoiceUpdated {
    const TYPE: &'static str = "invoice.updated";
    const WHEN: &'static str = "A draft was edited, or a document was finalized or sent.";
}

/// `invoice.discarded`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvoiceDiscarded {
    /// The draft as it was (it is deleted).
    pub invoice: Invoice,
    pub execution_id: ExecutionId,
}

impl Event for InvoiceDiscarded {
    const TYPE: &'static str = "invoice.discarded";
    const WHEN: &'static str = "A draft invoice or credit note was discarded.";
}

const UPDATED: &[EventSpec] = &[EventSpec::of::<InvoiceUpdated>()];

/// What a command did to a document.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvoiceRef {
    pub invoice_id: InvoiceId,
    /// Its state afterwards (`draft`, `finalized`, `sent`; a discarded draft says `draft`).
    pub state: InvoiceState,
    /// Its number, once finalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Its gross amount, as a decimal string.
    #[schemars(with = "String")]
    pub gross: Decimal,
    /// SHA-256 of its PDF, once finalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf_sha256: Option<String>,
}

impl From<&Invoice> for InvoiceRef {
    fn from(i: &Invoice) -> Self {
        Self {
            invoice_id: i.id,
            state: i.state,
            number: i.number.clone(),
            gross: i.gross,
            pdf_sha256: i.pdf_sha256.clone(),
        }
    }
}

pub(crate) async fn profile(tx: &mut WorkspaceTx) -> Result<BillingProfile, Rejection> {
    tx.billing_profile().await?.ok_or_else(|| {
        PROFILE_MISSING
            .because("this workspace has no billing profile: set its currency, parties and numbering first")
            .into()
    })
}

async fn document(tx: &mut WorkspaceTx, id: InvoiceId, lock: bool) -> Result<Invoice, Rejection> {
    let found = if lock { tx.lock_invoice(id).await? } else { tx.invoice(id).await? };
    found.ok_or_else(|| INVOICE_NOT_FOUND.because(format!("no invoice or credit note {id} in this workspace")).into())
}

fn draft(invoice: &Invoice) -> Result<(), Rejection> {
    if invoice.state == InvoiceState::Draft {
        Ok(())
    } else {
        Err(NOT_DRAFT
            .because(format!(
                "{} {} is {}: it is immutable; correct it with a credit note",
                invoice.kind,
                invoice.number.as_deref().unwrap_or_default(),
                invoice.state
            ))
            .into())
    }
}

/// A billing run's draft keeps the lines the run wrote: its time entries and
/// contract charges point to them (discard it and run again instead).
fn lines_are_its_own(invoice: &Invoice, replacing: bool) -> Result<(), Rejection> {
    if replacing && invoice.period_start.is_some() {
        return Err(RUN_DRAFT
            .because(format!(
                "invoice {} was made by a billing run: its lines bill time and charges; discard it and run billing again",
                invoice.id
            ))
            .into());
    }
    Ok(())
}

/// The tax rates `lines` name, in order; a refusal names the first unknown.
pub(crate) async fn rates(tx: &mut WorkspaceTx, lines: &[LineArgs]) -> Result<Vec<TaxRate>, Rejection> {
    let known = tx.tax_rates().await?;
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| match known.iter().find(|r| r.key == line.tax && !r.archived) {
            Some(rate) => Ok(rate.clone()),
            None => Err(TAX_RATE_UNKNOWN
                .because(format!("line {}: no tax rate {:?} in this workspace (or it is archived)", i + 1, line.tax))
                .into()),
        })
        .collect()
}

/// Computes and stores `lines` as the draft's lines.
pub(crate) async fn write_lines(
    tx: &mut WorkspaceTx,
    id: InvoiceId,
    currency: Currency,
    lines: &[LineArgs],
) -> Result<(), Rejection> {
    let rates = rates(tx, lines).await?;
    let inputs: Vec<LineInput> = lines.iter().zip(&rates).map(|(l, r)| l.input(r.category, r.rate)).collect();
    let computed = totals(currency, &inputs);
    let rows: Vec<NewLine<'_>> = lines
        .iter()
        .zip(&rates)
        .enumerate()
        .map(|(i, (line, tax))| NewLine {
            description: &line.description,
            quantity: line.quantity,
            unit_code: &line.unit_code,
            unit_price: line.unit_price,
            discount_percent: line.discount_percent.unwrap_or_default(),
            tax,
            net: computed.lines[i],
            tax_share: computed.line_taxes[i],
        })
        .collect();
    tx.replace_invoice_lines(id, &rows).await?;
    Ok(())
}

pub(crate) async fn created(effect: &mut Effect<'_>, id: InvoiceId) -> Result<InvoiceRef, Rejection> {
    let invoice = document(effect.tx, id, false).await?;
    let answer = InvoiceRef::from(&invoice);
    effect.publish(&InvoiceCreated { invoice, execution_id: effect.execution }).await?;
    Ok(answer)
}

async fn updated(effect: &mut Effect<'_>, id: InvoiceId, change: InvoiceChange) -> Result<InvoiceRef, Rejection> {
    let invoice = document(effect.tx, id, false).await?;
    let answer = InvoiceRef::from(&invoice);
    let event =
        InvoiceUpdated { invoice_id: id, change, actor: effect.actor.clone(), execution_id: effect.execution, invoice };
    effect.publish(&event).await?;
    Ok(answer)
}

impl DomainCommand for InvoiceCreate {
    const NAME: &'static str = "invoice.create";
    const SKILL: &'static str = "invoice_create";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Create a draft invoice";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&PROFILE_MISSING, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<InvoiceCreated>()];
    type Output = InvoiceRef;

    fn validate(&self) -> Result<(), Invalid> {
        check_lines(&self.lines)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        profile(tx).await?;
        rates(tx, &self.lines).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let currency = profile(effect.tx).await?.currency;
        let id = InvoiceId::new();
        let (po, note) = (self.purchase_order.as_ref(), self.note.as_ref());
        effect.tx.insert_invoice(id, InvoiceKind::Invoice, currency, None, po, note, effect.execution).await?;
        write_lines(effect.tx, id, currency, &self.lines).await?;
        created(effect, id).await
    }
}

impl DomainCommand for InvoiceUpdate {
    const NAME: &'static str = "invoice.update";
    const SKILL: &'static str = "invoice_update";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Change a draft invoice or credit note";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&INVOICE_NOT_FOUND, &NOT_DRAFT, &RUN_DRAFT, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = InvoiceRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.lines.as_deref().map_or(Ok(()), check_lines)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = document(tx, self.invoice_id, false).await?;
        draft(&now)?;
        lines_are_its_own(&now, self.lines.is_some())?;
        match &self.lines {
            Some(lines) => rates(tx, lines).await.map(drop),
            None => Ok(()),
        }
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let now = document(effect.tx, self.invoice_id, true).await?;
        draft(&now)?;
        lines_are_its_own(&now, self.lines.is_some())?;
        if let Some(lines) = &self.lines {
            write_lines(effect.tx, now.id, now.currency, lines).await?;
        }
        let po = self.purchase_order.as_ref().map_or(now.purchase_order.as_ref(), Option::as_ref);
        let note = self.note.as_ref().map_or(now.note.as_ref(), Option::as_ref);
        effect.tx.set_invoice_header(now.id, po, note, effect.execution).await?;
        updated(effect, now.id, InvoiceChange::Edited).await
    }
}

impl DomainCommand for InvoiceDiscard {
    const NAME: &'static str = "invoice.discard";
    const SKILL: &'static str = "invoice_discard";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Discard a draft invoice or credit note";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&INVOICE_NOT_FOUND, &NOT_DRAFT];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<InvoiceDiscarded>()];
    type Output = InvoiceRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        draft(&document(tx, self.invoice_id, false).await?)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let invoice = document(effect.tx, self.invoice_id, true).await?;
        draft(&invoice)?;
        effect.tx.delete_draft_invoice(invoice.id).await?;
        let answer = InvoiceRef::from(&invoice);
        effect.publish(&InvoiceDiscarded { invoice, execution_id: effect.execution }).await?;
        Ok(answer)
    }
}

impl DomainCommand for InvoiceFinalize {
    const NAME: &'static str = "invoice.finalize";
    const SKILL: &'static str = "invoice_finalize";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Finalize a draft: its number, totals and PDF";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&INVOICE_NOT_FOUND, &NOT_DRAFT, &EMPTY, &PROFILE_MISSING, &NOT_COMPLIANT, &OVER_CREDIT];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = InvoiceRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let invoice = document(tx, self.invoice_id, false).await?;
        draft(&invoice)?;
        nonempty(&invoice)?;
        profile(tx).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let mut invoice = document(effect.tx, self.invoice_id, true).await?;
        draft(&invoice)?;
        nonempty(&invoice)?;
        let profile = profile(effect.tx).await?;
        // The totals, from the stored lines by the one rule.
        let inputs: Vec<LineInput> = invoice
            .lines
            .iter()
            .map(|l| LineInput {
                quantity: l.quantity,
                unit_price: l.unit_price,
                discount_percent: l.discount_percent,
                tax_category: l.tax_category,
                tax_rate: l.tax_rate,
            })
            .collect();
        let computed = totals(invoice.currency, &inputs);
        if let Some(corrected) = invoice.corrects {
            let original = document(effect.tx, corrected, true).await?;
            let room = original.gross - original.credited;
            if computed.gross > room {
                return Err(OVER_CREDIT
                    .because(format!(
                        "invoice {} has {} left to credit; this credit note is {}",
                        original.number.as_deref().unwrap_or_default(),
                        invoice.currency.format(room),
                        invoice.currency.format(computed.gross)
                    ))
                    .into());
            }
        }
        // The number: taken here, given back if anything below refuses.
        let sequence = effect.tx.take_document_number(invoice.kind).await?;
        let prefix = match invoice.kind {
            InvoiceKind::Invoice => &profile.invoice_prefix,
            InvoiceKind::CreditNote => &profile.credit_note_prefix,
        };
        let number = format!("{prefix}{sequence:06}");
        let today = effect.tx.clock().await?.date();
        let issued_on = self.issued_on.unwrap_or(today);
        let due_on = issued_on + Duration::days(i64::from(profile.payment_terms_days));
        invoice.state = InvoiceState::Finalized;
        invoice.number = Some(number.clone());
        invoice.issued_on = Some(issued_on);
        invoice.due_on = Some(due_on);
        invoice.seller = Some(profile.seller.clone());
        invoice.buyer = Some(profile.buyer.clone());
        invoice.payee_iban.clone_from(&profile.payee_iban);
        invoice.net = computed.net;
        invoice.tax = computed.tax;
        invoice.gross = computed.gross;
        invoice.tax_groups.clone_from(&computed.groups);
        let fixed = anchor_invoicing::fixed(&invoice).expect("every finalized part is set above");
        let broken = anchor_invoicing::rules::check(&invoice, &fixed);
        if !broken.is_empty() {
            let list: Vec<String> = broken.iter().map(|v| format!("{}: {}", v.rule, v.message)).collect();
            return Err(NOT_COMPLIANT.because(format!("EN 16931: {}", list.join("; "))).into());
        }
        let pdf = anchor_invoicing::pdf::render(&invoice).expect("finalized above");
        let sha = hex::encode(Sha256::digest(&pdf));
        let done = Finalized {
            sequence,
            number: &number,
            issued_on,
            due_on,
            profile: &profile,
            net: computed.net,
            tax: computed.tax,
            gross: computed.gross,
            tax_groups: &computed.groups,
            pdf: &pdf,
            pdf_sha256: &sha,
        };
        effect.tx.finalize_invoice(invoice.id, &done, effect.actor, effect.execution).await?;
        updated(effect, invoice.id, InvoiceChange::Finalized).await
    }
}

fn nonempty(invoice: &Invoice) -> Result<(), Rejection> {
    if invoice.lines.is_empty() {
        Err(EMPTY.because(format!("{} {} has no lines", invoice.kind, invoice.id)).into())
    } else {
        Ok(())
    }
}

impl DomainCommand for InvoiceSend {
    const NAME: &'static str = "invoice.send";
    const SKILL: &'static str = "invoice_send";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Mark a finalized document as sent";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&INVOICE_NOT_FOUND, &NOT_SENDABLE];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = InvoiceRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        sendable(&document(tx, self.invoice_id, false).await?)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let invoice = document(effect.tx, self.invoice_id, true).await?;
        sendable(&invoice)?;
        effect.tx.mark_invoice_sent(invoice.id, effect.execution).await?;
        updated(effect, invoice.id, InvoiceChange::Sent).await
    }
}

fn sendable(invoice: &Invoice) -> Result<(), Rejection> {
    if invoice.state == InvoiceState::Finalized {
        Ok(())
    } else {
        Err(NOT_SENDABLE
            .because(format!(
                "{} {} is {}; a finalized, unsent document is sent",
                invoice.kind, invoice.id, invoice.state
            ))
            .into())
    }
}

impl DomainCommand for CreditNoteCreate {
    const NAME: &'static str = "credit_note.create";
    const SKILL: &'static str = "credit_note_create";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Create a draft credit note correcting a finalized invoice";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&INVOICE_NOT_FOUND, &NOT_CREDITABLE, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<InvoiceCreated>()];
    type Output = InvoiceRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.lines.as_deref().map_or(Ok(()), check_lines)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        creditable(&document(tx, self.invoice_id, false).await?)?;
        match &self.lines {
            Some(lines) => rates(tx, lines).await.map(drop),
            None => Ok(()),
        }
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<InvoiceRef, Rejection> {
        let original = document(effect.tx, self.invoice_id, false).await?;
        creditable(&original)?;
        let id = InvoiceId::new();
        let (tx, execution) = (&mut *effect.tx, effect.execution);
        tx.insert_invoice(
            id,
            InvoiceKind::CreditNote,
            original.currency,
            Some(original.id),
            None,
            self.note.as_ref(),
            execution,
        )
        .await?;
        match &self.lines {
            Some(lines) => write_lines(tx, id, original.currency, lines).await?,
            None => {
                // The invoice's own lines, as they were: a full reversal.
                let copied: Vec<TaxRate> = original
                    .lines
                    .iter()
                    .map(|l| TaxRate {
                        key: l.tax_key.clone(),
                        name: l.tax_key.clone(),
                        category: l.tax_category,
                        rate: l.tax_rate,
                        exemption_reason: l.exemption_reason.clone(),
                        archived: false,
                    })
                    .collect();
                let rows: Vec<NewLine<'_>> = original
                    .lines
                    .iter()
                    .zip(&copied)
                    .map(|(l, tax)| NewLine {
                        description: &l.description,
                        quantity: l.quantity,
                        unit_code: &l.unit_code,
                        unit_price: l.unit_price,
                        discount_percent: l.discount_percent,
                        tax,
                        net: l.net,
                        tax_share: l.tax,
                    })
                    .collect();
                tx.replace_invoice_lines(id, &rows).await?;
            }
        }
        created(effect, id).await
    }
}

fn creditable(invoice: &Invoice) -> Result<(), Rejection> {
    match (invoice.kind, invoice.state) {
        (InvoiceKind::Invoice, InvoiceState::Finalized | InvoiceState::Sent) => Ok(()),
        (kind, state) => Err(NOT_CREDITABLE
            .because(format!("{kind} {} is {state}; a credit note corrects a finalized invoice", invoice.id))
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kit::Spec;

    fn parse<C: DomainCommand>(args: serde_json::Value) -> Result<(), String> {
        Spec::of::<C>().parse(args).map(drop).map_err(|e| format!("{}: {}", e.path, e.message))
    }

    #[test]
    fn lines_are_parsed_from_decimal_strings_and_checked() {
        let line = json!({"description": "Support", "quantity": "1.5", "unit_code": "HUR", "unit_price": "95.00",
                          "tax": "standard"});
        assert_eq!(parse::<InvoiceCreate>(json!({"lines": [line]})), Ok(()));
        let with = |k: &str, v: serde_json::Value| {
            let mut l = line.clone();
            l[k] = v;
            parse::<InvoiceCreate>(json!({"lines": [l]}))
        };
        assert!(with("quantity", json!(1.5)).is_err(), "a JSON number is refused: decimals are strings");
        assert!(with("quantity", json!("0")).expect_err("zero").contains("quantity"));
        assert!(with("unit_price", json!("-1")).expect_err("negative").contains("unit_price"));
        assert!(with("discount_percent", json!("101")).expect_err("over 100").contains("discount_percent"));
        assert!(with("unit_code", json!("hours")).is_err());
        assert!(parse::<InvoiceCreate>(json!({"lines": [line], "extra": 1})).is_err());
    }
}
