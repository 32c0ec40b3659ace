//! Payments and refunds (psa.md "Invoice": paid is derived from payments).
//!
//! - `payment.record`: money received, in the client's currency, applied
//!   to finalized invoices as given (partly or wholly); what is not applied
//!   stays with the client as credit.
//! - `payment.allocate`: applies what a payment has left to invoices.
//! - `payment.refund`: pays back what the MSP owes the client (an
//!   over-payment, or a credit note after payment).
//!
//! Payments are never rewritten (the database refuses it): a mistake is
//! corrected by a refund. The ledger is locked while a command decides, so
//! two payments can never both take the same open balance.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    ExecutionId, InvoiceId, InvoiceKind, InvoiceNote, InvoiceState, PaymentId, PaymentKind, PaymentMethod,
    PaymentReference,
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    invoices::{NewPayment, Payment},
    time_entries::iso_date,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::{
    invoices::{INVOICE_NOT_FOUND, PROFILE_MISSING},
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
};

pub const PAYMENT_NOT_FOUND: RefusalKind =
    RefusalKind { code: "payment_not_found", status: 404, when: "the payment does not exist in this workspace" };
pub const NOT_PAYABLE: RefusalKind = RefusalKind {
    code: "invoice_not_payable",
    status: 409,
    when: "payments are applied to finalized invoices (not drafts, not credit notes)",
};
pub const OVER_ALLOCATION: RefusalKind = RefusalKind {
    code: "allocation_exceeds_balance",
    status: 409,
    when: "an allocation is more than the invoice's open balance, or than the money left to apply",
};
pub const OVER_REFUND: RefusalKind =
    RefusalKind { code: "refund_exceeds_credit", status: 409, when: "a refund is more than the MSP owes the client" };

/// An amount as a decimal string, above zero, at most two decimals.
fn positive(amount: Decimal, path: &'static str) -> Result<(), Invalid> {
    if amount <= Decimal::ZERO || amount.normalize().scale() > 2 || amount > Decimal::from(1_000_000_000_000i64) {
        Err(Invalid::at(path, format!("{amount} is not an amount above 0 with at most two decimals")))
    } else {
        Ok(())
    }
}

/// A share of a payment for one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationArgs {
    pub invoice_id: InvoiceId,
    /// A decimal string above 0.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String", regex(pattern = "^[0-9]{1,13}(\\.[0-9]{1,2})?$"))]
    pub amount: Decimal,
}

fn check_allocations(allocations: &[AllocationArgs], total: Option<Decimal>) -> Result<(), Invalid> {
    if allocations.len() > 100 {
        return Err(Invalid::at("/allocations", "at most 100 invoices per payment command"));
    }
    for (i, a) in allocations.iter().enumerate() {
        positive(a.amount, "/allocations")
            .map_err(|e| Invalid::at("/allocations", format!("{}: {}", i + 1, e.message)))?;
        if allocations[..i].iter().any(|b| b.invoice_id == a.invoice_id) {
            return Err(Invalid::at("/allocations", format!("invoice {} is named twice", a.invoice_id)));
        }
    }
    let sum: Decimal = allocations.iter().map(|a| a.amount).sum();
    if total.is_some_and(|t| sum > t) {
        return Err(Invalid::at("/allocations", format!("the allocations add up to {sum}, more than the payment")));
    }
    Ok(())
}

/// Record money received from the client, applied to invoices as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"amount": "150.00", "received_on": "2026-03-20", "method": "transfer",
    "reference": "ACME-REMIT-0042", "allocations": [{"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w", "amount": "150.00"}]}))]
pub struct PaymentRecord {
    /// In the client's currency: a decimal string above 0.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String", regex(pattern = "^[0-9]{1,13}(\\.[0-9]{1,2})?$"))]
    pub amount: Decimal,
    /// The day the money arrived.
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub received_on: Date,
    pub method: PaymentMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PaymentReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<InvoiceNote>,
    /// The invoices it pays; what is left is the client's credit.
    #[serde(default)]
    pub allocations: Vec<AllocationArgs>,
}

/// Apply what a payment has left to invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"payment_id": "pay_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "allocations": [{"invoice_id": "inv_01jd6m2h9x8k7v5t3r1p0n9q8w", "amount": "50.00"}]}))]
pub struct PaymentAllocate {
    pub payment_id: PaymentId,
    pub allocations: Vec<AllocationArgs>,
}

/// Pay back what the MSP owes the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"amount": "25.00", "paid_on": "2026-03-22", "method": "transfer"}))]
pub struct PaymentRefund {
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String", regex(pattern = "^[0-9]{1,13}(\\.[0-9]{1,2})?$"))]
    pub amount: Decimal,
    /// The day the money left.
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub paid_on: Date,
    pub method: PaymentMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PaymentReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<InvoiceNote>,
}

/// `payment.recorded` (a payment, an allocation or a refund).
#[derive(Debug, Serialize, JsonSchema)]
pub struct PaymentRecorded {
    /// `recorded`, `allocated` or `refunded`.
    pub change: PaymentChange,
    /// The payment or refund as `GET .../payments/{id}` shows it.
    pub payment: Payment,
    pub actor: Actor,
    pub execution_id: ExecutionId,
}

/// What a `payment.recorded` says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentChange {
    Recorded,
    Allocated,
    Refunded,
}

impl Event for PaymentRecorded {
    const TYPE: &'static str = "payment.recorded";
    const WHEN: &'static str = "A payment was recorded or allocated, or a refund paid.";
}

const EVENTS: &[EventSpec] = &[EventSpec::of::<PaymentRecorded>()];

/// What a payment command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PaymentRef {
    pub payment_id: PaymentId,
    /// What it has left to apply, as a decimal string.
    #[schemars(with = "String")]
    pub unallocated: Decimal,
}

async fn currency(tx: &mut WorkspaceTx) -> Result<anchor_domain::Currency, Rejection> {
    let profile = tx.billing_profile().await?;
    profile
        .map(|p| p.currency)
        .ok_or_else(|| PROFILE_MISSING.because("this workspace has no billing profile: set its currency first").into())
}

/// Applies `allocations` of `payment` to their invoices, each within its open
/// balance and all within `left` (the ledger is locked by the caller).
async fn apply_allocations(
    tx: &mut WorkspaceTx,
    payment: PaymentId,
    allocations: &[AllocationArgs],
    left: Decimal,
    execution: ExecutionId,
) -> Result<(), Rejection> {
    let sum: Decimal = allocations.iter().map(|a| a.amount).sum();
    if sum > left {
        return Err(OVER_ALLOCATION
            .because(format!("the allocations add up to {sum}; {left} is left to apply"))
            .into());
    }
    for allocation in allocations {
        let invoice = tx.lock_invoice(allocation.invoice_id).await?.ok_or_else(|| {
            Rejection::from(
                INVOICE_NOT_FOUND.because(format!("no invoice {} in this workspace", allocation.invoice_id)),
            )
        })?;
        if invoice.kind != InvoiceKind::Invoice || invoice.state == InvoiceState::Draft {
            return Err(NOT_PAYABLE
                .because(format!(
                    "{} {} is {}; payments apply to finalized invoices",
                    invoice.kind, invoice.id, invoice.state
                ))
                .into());
        }
        let open = invoice.balance.unwrap_or_default();
        if allocation.amount > open {
            return Err(OVER_ALLOCATION
                .because(format!(
                    "invoice {} has {} open; {} was given",
                    invoice.number.as_deref().unwrap_or_default(),
                    invoice.currency.format(open),
                    invoice.currency.format(allocation.amount)
                ))
                .into());
        }
        tx.allocate_payment(payment, invoice.id, allocation.amount, execution).await?;
    }
    Ok(())
}

async fn recorded(effect: &mut Effect<'_>, id: PaymentId, change: PaymentChange) -> Result<PaymentRef, Rejection> {
    let payment = effect
        .tx
        .payment(id)
        .await?
        .ok_or_else(|| Rejection::from(PAYMENT_NOT_FOUND.because(format!("no payment {id} in this workspace"))))?;
    let answer = PaymentRef { payment_id: id, unallocated: payment.unallocated };
    let event = PaymentRecorded { change, payment, actor: effect.actor.clone(), execution_id: effect.execution };
    effect.publish(&event).await?;
    Ok(answer)
}

impl DomainCommand for PaymentRecord {
    const NAME: &'static str = "payment.record";
    const SKILL: &'static str = "payment_record";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Record a payment received, applied to invoices";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&PROFILE_MISSING, &INVOICE_NOT_FOUND, &NOT_PAYABLE, &OVER_ALLOCATION];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = PaymentRef;

    fn validate(&self) -> Result<(), Invalid> {
        positive(self.amount, "/amount")?;
        check_allocations(&self.allocations, Some(self.amount))
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        currency(tx).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<PaymentRef, Rejection> {
        let currency = currency(effect.tx).await?;
        effect.tx.lock_ledger().await?;
        let id = PaymentId::new();
        let payment = NewPayment {
            kind: PaymentKind::Payment,
            currency,
            amount: currency.round(self.amount),
            received_on: self.received_on,
            method: self.method,
            reference: self.reference.as_ref(),
            note: self.note.as_ref(),
        };
        effect.tx.insert_payment(id, &payment, effect.actor, effect.execution).await?;
        apply_allocations(effect.tx, id, &self.allocations, self.amount, effect.execution).await?;
        recorded(effect, id, PaymentChange::Recorded).await
    }
}

impl DomainCommand for PaymentAllocate {
    const NAME: &'static str = "payment.allocate";
    const SKILL: &'static str = "payment_allocate";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Apply what a payment has left to invoices";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&PAYMENT_NOT_FOUND, &INVOICE_NOT_FOUND, &NOT_PAYABLE, &OVER_ALLOCATION];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = PaymentRef;

    fn validate(&self) -> Result<(), Invalid> {
        if self.allocations.is_empty() {
            return Err(Invalid::at("/allocations", "name at least one invoice"));
        }
        check_allocations(&self.allocations, None)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        match tx.payment(self.payment_id).await? {
            Some(p) if p.kind == PaymentKind::Payment => Ok(()),
            _ => Err(PAYMENT_NOT_FOUND.because(format!("no payment {} in this workspace", self.payment_id)).into()),
        }
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<PaymentRef, Rejection> {
        effect.tx.lock_ledger().await?;
        self.check(effect.tx, effect.actor).await?;
        let payment = effect.tx.payment(self.payment_id).await?.expect("checked above, under the ledger lock");
        // What this payment has left, and what was not refunded since.
        let left = payment.unallocated.min(effect.tx.unapplied_payments().await?.max(Decimal::ZERO));
        apply_allocations(effect.tx, payment.id, &self.allocations, left, effect.execution).await?;
        recorded(effect, payment.id, PaymentChange::Allocated).await
    }
}

impl DomainCommand for PaymentRefund {
    const NAME: &'static str = "payment.refund";
    const SKILL: &'static str = "payment_refund";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Pay back what the MSP owes the client";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&PROFILE_MISSING, &OVER_REFUND];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = PaymentRef;

    fn validate(&self) -> Result<(), Invalid> {
        positive(self.amount, "/amount")
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        currency(tx).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<PaymentRef, Rejection> {
        let currency = currency(effect.tx).await?;
        effect.tx.lock_ledger().await?;
        let owed = effect.tx.client_balance().await?.credit;
        if self.amount > owed {
            return Err(OVER_REFUND
                .because(format!(
                    "the client is owed {}; a refund of {} is more",
                    currency.format(owed),
                    currency.format(self.amount)
                ))
                .into());
        }
        let id = PaymentId::new();
        let refund = NewPayment {
            kind: PaymentKind::Refund,
            currency,
            amount: currency.round(self.amount),
            received_on: self.paid_on,
            method: self.method,
            reference: self.reference.as_ref(),
            note: self.note.as_ref(),
        };
        effect.tx.insert_payment(id, &refund, effect.actor, effect.execution).await?;
        recorded(effect, id, PaymentChange::Refunded).await
    }
}
