//! The billing run (psa.md "Money"): for a period, approved billable time
//! not invoiced yet and the recurring charges of active contracts become
//! draft invoices, one per contract (and one for time outside contracts).
//!
//! - Recurring charges: each cycle of a fixed-fee, per-unit or block-hours
//!   contract that begins in the period, once (a cycle charged is recorded;
//!   a discarded draft gives it back). Per-unit contracts count their units
//!   (assets in service, of a type, or contacts) when the run is made.
//! - Block hours: each cycle buys the block (unused hours expire first,
//!   unless they roll over); time under the contract draws the ledger down,
//!   and what is beyond the block is billed at the overage rate.
//! - Time: each entry at the rate fixed when it was approved, on a line of
//!   its own; once invoiced it is locked and points to that line. Time under
//!   a fixed-fee or per-unit contract is covered by its fee: it is shown at
//!   no charge. An entry
//!   nothing prices (no rate, no tax) is not billed, and said so in the plan.
//!
//! [`plan`] decides; the preview shows its plan and `billing.run` writes
//! it under the workspace's billing lock, so a second run for the same
//! period finds nothing left and makes nothing.

use std::collections::{HashMap, HashSet};

use anchor_auth::permissions::Permission;
use anchor_domain::{
    ContractId, ContractKind, ContractState, Currency, InvoiceId, InvoiceKind, InvoiceNote, LineDescription,
    PurchaseOrder, TicketId, TimeEntryId, UnitCode, UnitSource,
    money::{LineInput, totals},
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    contracts::{BillingRun, Contract},
    executions::Actor,
    invoices::{NewLine, TaxRate},
    time_entries::iso_date,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::{
    invoices::{InvoiceCreated, PROFILE_MISSING},
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
};

pub const PERIOD_SPANS_BLOCKS: RefusalKind = RefusalKind {
    code: "billing_period_spans_blocks",
    status: 409,
    when: "more than one cycle of a block-hours contract begins in the period (time is drawn from its own cycle's block)",
};

/// Lines per document: a run with more makes more than one.
const MAX_LINES: usize = 500;

/// What a planned line bills.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Time(TimeEntryId),
    /// A contract's cycle charge (per unit: with the units counted).
    Charge {
        contract: ContractId,
        cycle_start: Date,
        quantity: Decimal,
    },
}

/// A line the run would write.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedLine {
    pub description: String,
    #[schemars(with = "String")]
    pub quantity: Decimal,
    pub unit_code: String,
    #[schemars(with = "String")]
    pub unit_price: Decimal,
    /// The tax rate's key.
    pub tax: String,
    /// Net, rounded once.
    #[schemars(with = "String")]
    pub net: Decimal,
    /// The time entry it bills, if it bills time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_entry_id: Option<TimeEntryId>,
    #[serde(skip)]
    source: Option<Source>,
}

/// A draft invoice the run would make.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedInvoice {
    /// None: time outside any contract.
    pub contract_id: Option<ContractId>,
    /// The contract's name, or "Time and materials".
    pub title: String,
    pub purchase_order: Option<PurchaseOrder>,
    pub lines: Vec<PlannedLine>,
    #[schemars(with = "String")]
    pub net: Decimal,
    #[schemars(with = "String")]
    pub tax: Decimal,
    #[schemars(with = "String")]
    pub gross: Decimal,
}

/// A move in a block-hours ledger.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HoursMove {
    pub contract_id: ContractId,
    /// `purchased`, `drawn` or `expired`.
    pub entry: &'static str,
    /// Positive when bought, negative when drawn or expired.
    #[schemars(with = "String")]
    pub hours: Decimal,
    #[serde(with = "iso_date")]
    #[schemars(with = "String")]
    pub cycle_start: Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_entry_id: Option<TimeEntryId>,
    /// Which planned invoice it goes with.
    #[serde(skip)]
    invoice: usize,
}

/// Time the run leaves unbilled, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Unbillable {
    pub time_entry_id: TimeEntryId,
    pub ticket_id: TicketId,
    pub reason: String,
}

/// What a billing run for a period would make.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Plan {
    #[serde(with = "iso_date")]
    #[schemars(with = "String")]
    pub period_start: Date,
    #[serde(with = "iso_date")]
    #[schemars(with = "String")]
    pub period_end: Date,
    pub currency: Currency,
    pub invoices: Vec<PlannedInvoice>,
    pub hours: Vec<HoursMove>,
    pub unbillable: Vec<Unbillable>,
    /// Sum of the invoices' gross amounts.
    #[schemars(with = "String")]
    pub gross: Decimal,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.invoices.is_empty()
    }
}

fn period_text(from: Date, to: Date) -> String {
    if from == to { from.to_string() } else { format!("{from} to {to}") }
}

fn hours_text(hours: Decimal) -> String {
    format!("{} h", hours.normalize())
}

/// Decides what a run for `from..=to` makes, from the workspace as it is.
/// With `lock`, the time it bills stays locked until the unit of work ends.
pub async fn plan(tx: &mut WorkspaceTx, from: Date, to: Date, lock: bool) -> Result<Plan, Rejection> {
    let profile = tx.billing_profile().await?.ok_or_else(|| {
        Rejection::from(PROFILE_MISSING.because("this workspace has no billing profile: set its currency first"))
    })?;
    let currency = profile.currency;
    let contracts = tx.contracts().await?;
    let mut invoices: Vec<PlannedInvoice> = Vec::new();
    let mut index: HashMap<Option<ContractId>, usize> = HashMap::new();
    let mut hours: Vec<HoursMove> = Vec::new();
    let mut unbillable = Vec::new();
    let mut balance: HashMap<ContractId, Decimal> = HashMap::new();
    let mut document = |contract: Option<&Contract>, invoices: &mut Vec<PlannedInvoice>| -> usize {
        *index.entry(contract.map(|c| c.id)).or_insert_with(|| {
            invoices.push(PlannedInvoice {
                contract_id: contract.map(|c| c.id),
                title: contract.map_or_else(|| "Time and materials".to_owned(), |c| c.name.as_str().to_owned()),
                purchase_order: contract.and_then(|c| c.purchase_order.clone()),
                lines: Vec::new(),
                net: Decimal::ZERO,
                tax: Decimal::ZERO,
                gross: Decimal::ZERO,
            });
            invoices.len() - 1
        })
    };
    let line = |description: String, quantity: Decimal, unit: &str, price: Decimal, tax: &str, source: Source| {
        // As people write them: 1.5 hours, a price in the currency's decimals.
        let mut unit_price = price.normalize();
        if unit_price.scale() < currency.decimals() {
            unit_price.rescale(currency.decimals());
        }
        PlannedLine {
            description,
            quantity: quantity.normalize(),
            unit_code: unit.to_owned(),
            unit_price,
            tax: tax.to_owned(),
            net: Decimal::ZERO,
            time_entry_id: match &source {
                Source::Time(id) => Some(*id),
                Source::Charge { .. } => None,
            },
            source: Some(source),
        }
    };

    // Recurring charges, first: a block bought this period is drawn below.
    for c in contracts.iter().filter(|c| c.state == ContractState::Active && c.kind != ContractKind::TimeAndMaterials) {
        let cycles = c.billing_cycle.cycles_starting(c.starts_on, c.ends_on, from, to);
        // Time is drawn from the block of its own cycle: one block per run.
        if c.kind == ContractKind::BlockHours && cycles.len() > 1 {
            return Err(PERIOD_SPANS_BLOCKS
                .because(format!(
                    "{} buys a block of hours each cycle and {} of its cycles begin in this period: bill one cycle at a time",
                    c.name.as_str(),
                    cycles.len()
                ))
                .into());
        }
        for (begins, ends) in cycles {
            if tx.contract_charged(c.id, begins).await? {
                continue;
            }
            let amount = c.amount.unwrap_or_default();
            let when = period_text(begins, ends);
            let (description, quantity) = match c.kind {
                ContractKind::FixedFee => (format!("{}, {when}", c.name.as_str()), Decimal::ONE),
                ContractKind::PerUnit => {
                    let source = c.unit_source.unwrap_or(UnitSource::Contacts);
                    let count = tx.count_units(source, c.unit_asset_type.as_ref()).await?;
                    if count == 0 {
                        continue;
                    }
                    let what = match (source, &c.unit_asset_type) {
                        (UnitSource::Contacts, _) => "contacts".to_owned(),
                        (UnitSource::Assets, Some(t)) => format!("{t} assets in service"),
                        (UnitSource::Assets, None) => "assets in service".to_owned(),
                    };
                    (format!("{}, {when}: {count} {what}", c.name.as_str()), Decimal::from(count))
                }
                ContractKind::BlockHours => {
                    let block = c.block_hours.unwrap_or_default();
                    let left = match balance.get(&c.id) {
                        Some(b) => *b,
                        None => tx.hours_left(c.id).await?,
                    };
                    let i = document(Some(c), &mut invoices);
                    let mut now = left;
                    if !c.rollover && left > Decimal::ZERO {
                        hours.push(HoursMove {
                            contract_id: c.id,
                            entry: "expired",
                            hours: (-left).normalize(),
                            cycle_start: begins,
                            time_entry_id: None,
                            invoice: i,
                        });
                        now = Decimal::ZERO;
                    }
                    hours.push(HoursMove {
                        contract_id: c.id,
                        entry: "purchased",
                        hours: block.normalize(),
                        cycle_start: begins,
                        time_entry_id: None,
                        invoice: i,
                    });
                    balance.insert(c.id, now + block);
                    (format!("{}, {when}: block of {}", c.name.as_str(), hours_text(block)), Decimal::ONE)
                }
                ContractKind::TimeAndMaterials => unreachable!("filtered above"),
            };
            let i = document(Some(c), &mut invoices);
            let source = Source::Charge { contract: c.id, cycle_start: begins, quantity };
            invoices[i].lines.push(line(description, quantity, "C62", amount, &c.tax, source));
        }
    }

    // Approved time, oldest first.
    for e in tx.unbilled_time(to, lock).await? {
        let contract = e.contract_id.and_then(|id| contracts.iter().find(|c| c.id == id));
        let work = e.work_type_name.clone().unwrap_or_else(|| e.work_type.as_str().to_owned());
        let title: String = e.ticket_title.chars().take(300).collect();
        let description = format!("{}, {work}: {title}", e.worked_on);
        let worked = anchor_domain::money::hours_of(e.minutes);
        let skip = |reason: String| Unbillable { time_entry_id: e.id, ticket_id: e.ticket_id, reason };
        match contract {
            Some(c) if c.kind == ContractKind::BlockHours => {
                let left = match balance.get(&c.id) {
                    Some(b) => *b,
                    None => tx.hours_left(c.id).await?,
                };
                let drawn = worked.min(left.max(Decimal::ZERO));
                let over = worked - drawn;
                let i = document(Some(c), &mut invoices);
                if drawn > Decimal::ZERO {
                    let cycle_start = hours
                        .iter()
                        .rev()
                        .find(|h| h.contract_id == c.id && h.entry == "purchased")
                        .map_or(e.worked_on, |h| h.cycle_start);
                    hours.push(HoursMove {
                        contract_id: c.id,
                        entry: "drawn",
                        hours: (-drawn).normalize(),
                        cycle_start,
                        time_entry_id: Some(e.id),
                        invoice: i,
                    });
                    let text = format!("{description} (from the block)");
                    invoices[i].lines.push(line(text, drawn, "HUR", Decimal::ZERO, &c.tax, Source::Time(e.id)));
                }
                if over > Decimal::ZERO {
                    let rate = c.overage_rate.unwrap_or_default();
                    let text = format!("{description} (beyond the block)");
                    invoices[i].lines.push(line(text, over, "HUR", rate, &c.tax, Source::Time(e.id)));
                }
                balance.insert(c.id, left - drawn);
            }
            Some(c) if matches!(c.kind, ContractKind::FixedFee | ContractKind::PerUnit) => {
                // Covered by the contract's fee: shown, at no charge.
                let i = document(Some(c), &mut invoices);
                let text = format!("{description} (included in the contract)");
                invoices[i].lines.push(line(text, worked, "HUR", Decimal::ZERO, &c.tax, Source::Time(e.id)));
            }
            Some(c) => match e.rate {
                Some(rate) => {
                    let i = document(Some(c), &mut invoices);
                    invoices[i].lines.push(line(description, worked, "HUR", rate, &c.tax, Source::Time(e.id)));
                }
                None => unbillable.push(skip(format!("no rate for {work} was in force when it was approved"))),
            },
            None => match (e.rate, &e.work_type_tax) {
                (Some(rate), Some(tax)) => {
                    let i = document(None, &mut invoices);
                    invoices[i].lines.push(line(description, worked, "HUR", rate, tax, Source::Time(e.id)));
                }
                (None, _) => unbillable.push(skip(format!("no rate for {work} was in force when it was approved"))),
                (_, None) => unbillable.push(skip(format!(
                    "the work type {} is not in the catalogue, so no tax is known for it",
                    e.work_type.as_str()
                ))),
            },
        }
    }

    // Totals by the one rule, per document.
    let rates = tx.tax_rates().await?;
    let mut gross = Decimal::ZERO;
    for invoice in &mut invoices {
        let inputs: Vec<LineInput> = invoice
            .lines
            .iter()
            .map(|l| {
                let rate = rates.iter().find(|r| r.key == l.tax);
                LineInput {
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount_percent: Decimal::ZERO,
                    tax_category: rate.map_or(anchor_domain::TaxCategory::Standard, |r| r.category),
                    tax_rate: rate.map_or(Decimal::ZERO, |r| r.rate),
                }
            })
            .collect();
        let computed = totals(currency, &inputs);
        for (l, net) in invoice.lines.iter_mut().zip(&computed.lines) {
            l.net = *net;
        }
        (invoice.net, invoice.tax, invoice.gross) = (computed.net, computed.tax, computed.gross);
        gross += computed.gross;
    }
    Ok(Plan { period_start: from, period_end: to, currency, invoices, hours, unbillable, gross })
}

/// Run billing for a period: approved time and recurring charges become
/// draft invoices. A second run for the same period makes nothing new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"period_start": "2026-11-01", "period_end": "2026-11-30"}))]
pub struct BillingRunCommand {
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub period_start: Date,
    /// The last day of the period (inclusive); time worked up to it is billed.
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub period_end: Date,
}

/// Checks a period: in order, at most a year and a day long.
pub fn check_period(from: Date, to: Date) -> Result<(), Invalid> {
    if to < from {
        Err(Invalid::at("/period_end", "the period ends on or after the day it starts"))
    } else if (to - from).whole_days() > 366 {
        Err(Invalid::at("/period_end", "a billing period is at most a year long"))
    } else {
        Ok(())
    }
}

/// `billing_run.completed`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BillingRunCompleted {
    /// The run as `GET .../billing/runs` lists it.
    pub run: BillingRun,
    /// The drafts it made.
    pub invoices: Vec<InvoiceId>,
}

impl Event for BillingRunCompleted {
    const TYPE: &'static str = "billing_run.completed";
    const WHEN: &'static str =
        "A billing run made draft invoices (a run that finds nothing to bill publishes nothing).";
}

/// What a billing run made.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BillingRunResult {
    /// The draft invoices made, in the plan's order; none when nothing was left to bill.
    pub invoices: Vec<InvoiceId>,
    pub time_entries: usize,
    pub charges: usize,
    /// Approved time not billed because nothing prices it.
    pub unbillable: usize,
    #[schemars(with = "String")]
    pub gross: Decimal,
}

impl DomainCommand for BillingRunCommand {
    const NAME: &'static str = "billing.run";
    const SKILL: &'static str = "billing_run";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Bill a period: approved time and recurring charges become draft invoices";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&PROFILE_MISSING, &PERIOD_SPANS_BLOCKS];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<BillingRunCompleted>(), EventSpec::of::<InvoiceCreated>()];
    type Output = BillingRunResult;

    fn validate(&self) -> Result<(), Invalid> {
        check_period(self.period_start, self.period_end)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        // The plan's own refusals (no profile, a period spanning blocks), at once.
        plan(tx, self.period_start, self.period_end, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<BillingRunResult, Rejection> {
        effect.tx.lock_billing().await?;
        let plan = plan(effect.tx, self.period_start, self.period_end, true).await?;
        let mut made: Vec<(usize, InvoiceId)> = Vec::new();
        let (mut time_entries, mut charges) = (0, 0);
        let mut invoiced = HashSet::new();
        if !plan.is_empty() {
            let rates = effect.tx.tax_rates().await?;
            let note =
                InvoiceNote::parse(&format!("Billing period {}.", period_text(self.period_start, self.period_end)))
                    .ok();
            for (p, planned) in plan.invoices.iter().enumerate() {
                for chunk in planned.lines.chunks(MAX_LINES) {
                    let id = InvoiceId::new();
                    write_draft(effect, id, &plan, planned, chunk, &rates, note.as_ref()).await?;
                    for (n, l) in chunk.iter().enumerate() {
                        let position = i32::try_from(n + 1).expect("at most 500");
                        match &l.source {
                            // An entry split across the block and its overage points to its first line.
                            Some(Source::Time(entry)) if invoiced.insert(*entry) => {
                                effect.tx.invoice_time_entry(*entry, id, position, effect.execution).await?;
                                time_entries += 1;
                            }
                            Some(Source::Time(_)) | None => {}
                            Some(Source::Charge { contract, cycle_start, quantity }) => {
                                effect
                                    .tx
                                    .record_contract_charge(*contract, *cycle_start, id, position, *quantity)
                                    .await?;
                                charges += 1;
                            }
                        }
                    }
                    made.push((p, id));
                }
            }
            for h in &plan.hours {
                let invoice = made.iter().find(|(p, _)| *p == h.invoice).map(|(_, id)| *id);
                effect
                    .tx
                    .record_hours(
                        h.contract_id,
                        h.entry,
                        h.hours,
                        h.cycle_start,
                        h.time_entry_id,
                        invoice,
                        effect.execution,
                    )
                    .await?;
            }
            let run = BillingRun {
                execution_id: effect.execution,
                period_start: self.period_start,
                period_end: self.period_end,
                invoices: i32::try_from(made.len()).unwrap_or(i32::MAX),
                time_entries,
                charges,
                actor: effect.actor.clone(),
                at: effect.tx.clock().await?,
            };
            effect.tx.record_billing_run(&run).await?;
            for (_, id) in &made {
                crate::invoices::created(effect, *id).await?;
            }
            let invoices = made.iter().map(|(_, id)| *id).collect();
            effect.publish(&BillingRunCompleted { run, invoices }).await?;
        }
        Ok(BillingRunResult {
            invoices: made.into_iter().map(|(_, id)| id).collect(),
            time_entries: usize::try_from(time_entries).unwrap_or_default(),
            charges: usize::try_from(charges).unwrap_or_default(),
            unbillable: plan.unbillable.len(),
            gross: plan.gross,
        })
    }
}

async fn write_draft(
    effect: &mut Effect<'_>,
    id: InvoiceId,
    plan: &Plan,
    planned: &PlannedInvoice,
    lines: &[PlannedLine],
    rates: &[TaxRate],
    note: Option<&InvoiceNote>,
) -> Result<(), Rejection> {
    let (tx, execution) = (&mut *effect.tx, effect.execution);
    tx.insert_invoice(id, InvoiceKind::Invoice, plan.currency, None, planned.purchase_order.as_ref(), note, execution)
        .await?;
    let parsed: Vec<(LineDescription, UnitCode, TaxRate)> = lines
        .iter()
        .map(|l| {
            let description = LineDescription::parse(&l.description)
                .unwrap_or_else(|_| LineDescription::parse("Billed work").expect("a description"));
            let unit = UnitCode::parse(&l.unit_code).unwrap_or_else(|_| UnitCode::one());
            let rate = rates.iter().find(|r| r.key == l.tax).cloned().ok_or_else(|| {
                Rejection::from(crate::invoices::TAX_RATE_UNKNOWN.because(format!("no tax rate {:?}", l.tax)))
            })?;
            Ok((description, unit, rate))
        })
        .collect::<Result<_, Rejection>>()?;
    let inputs: Vec<LineInput> = lines
        .iter()
        .zip(&parsed)
        .map(|(l, (_, _, r))| LineInput {
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount_percent: Decimal::ZERO,
            tax_category: r.category,
            tax_rate: r.rate,
        })
        .collect();
    let computed = totals(plan.currency, &inputs);
    let rows: Vec<NewLine<'_>> = lines
        .iter()
        .zip(&parsed)
        .enumerate()
        .map(|(i, (l, (description, unit, rate)))| NewLine {
            description,
            quantity: l.quantity,
            unit_code: unit,
            unit_price: l.unit_price,
            discount_percent: Decimal::ZERO,
            tax: rate,
            net: computed.lines[i],
            tax_share: computed.line_taxes[i],
        })
        .collect();
    tx.replace_invoice_lines(id, &rows).await?;
    tx.set_invoice_origin(id, planned.contract_id, (plan.period_start, plan.period_end)).await?;
    Ok(())
}
