//! Contracts (psa.md "Contract").
//!
//! - `contract.create`: a draft contract with its terms.
//! - `contract.update`: its terms (given whole), while not cancelled; its
//!   kind never changes.
//! - `contract.activate`, `contract.suspend`, `contract.resume`,
//!   `contract.cancel`: its lifecycle. An active contract past its end
//!   date reads as expired; the billing run charges only active contracts.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    BillingCycle, ContractId, ContractKind, ContractName, ContractState, ExecutionId, InvoiceNote, PurchaseOrder,
    SchemaKey, SlaPolicyId, UnitSource,
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    contracts::{Contract, ContractTerms, Rate},
    executions::Actor,
    time_entries::iso_date,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection};

pub const CONTRACT_NOT_FOUND: RefusalKind =
    RefusalKind { code: "contract_not_found", status: 404, when: "the contract does not exist in this workspace" };
pub const TERMS_UNKNOWN: RefusalKind = RefusalKind {
    code: "contract_terms_unknown",
    status: 422,
    when: "the terms name a tax rate, rate card, SLA policy or asset type the workspace does not have",
};
pub const CONTRACT_TRANSITION: RefusalKind = RefusalKind {
    code: "contract_transition_not_allowed",
    status: 409,
    when: "the contract's state does not allow the change (a cancelled contract is never changed)",
};

/// A decimal string of money or hours: at least 0, at most two decimals.
fn amount(value: Option<Decimal>, path: &'static str, positive: bool) -> Result<(), Invalid> {
    match value {
        Some(v) if v < Decimal::ZERO || (positive && v.is_zero()) || v.normalize().scale() > 2 => Err(Invalid::at(
            path,
            format!(
                "{v} is not an amount {} with at most two decimals",
                if positive { "above 0" } else { "of 0 or more" }
            ),
        )),
        Some(v) if v > Decimal::from(1_000_000_000i64) => Err(Invalid::at(path, format!("{v} is too large"))),
        _ => Ok(()),
    }
}

/// Declares a command whose arguments are a contract's terms (and
/// `$extra` before them): serde's `flatten` would lose the closed schema.
macro_rules! with_terms {
    ($(#[$doc:meta])* $ty:ident { $($extra:tt)* }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$doc])*
        pub struct $ty {
            $($extra)*
    pub name: ContractName,
            #[serde(with = "iso_date")]
            #[schemars(with = "String", extend("format" = "date"))]
            pub starts_on: Date,
            /// None: it runs until cancelled.
            #[serde(default, with = "iso_date::option", skip_serializing_if = "Option::is_none")]
            #[schemars(with = "Option<String>", extend("format" = "date"))]
            pub ends_on: Option<Date>,
            /// `monthly` (the default), `quarterly` or `yearly`.
            #[serde(default = "monthly")]
            pub billing_cycle: BillingCycle,
            /// The key of a rate card: its rates price the time under the contract.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(regex(pattern = "^[a-z][a-z0-9_]*$"), length(max = 60))]
            pub rate_card: Option<String>,
            /// Rates of this contract alone, before its rate card's.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub rate_overrides: Vec<Rate>,
            /// The SLA policy its tickets are held to.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sla_policy_id: Option<SlaPolicyId>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub purchase_order: Option<PurchaseOrder>,
            /// The key of the tax rate its charges are made at.
            #[schemars(regex(pattern = "^[a-z][a-z0-9_]*$"), length(max = 40))]
            pub tax: String,
            /// Per cycle, a decimal string: the fee (`fixed_fee`), the price of one
            /// unit (`per_unit`) or the block's price (`block_hours`).
            #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
            #[schemars(with = "Option<String>", regex(pattern = "^[0-9]{1,10}(\\.[0-9]{1,2})?$"))]
            pub amount: Option<Decimal>,
            /// `per_unit`: what is counted at billing time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub unit_source: Option<UnitSource>,
            /// `per_unit` over assets: only assets of this type.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub unit_asset_type: Option<SchemaKey>,
            /// `block_hours`: hours bought each cycle, a decimal string.
            #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
            #[schemars(with = "Option<String>", regex(pattern = "^[0-9]{1,6}(\\.[0-9]{1,2})?$"))]
            pub block_hours: Option<Decimal>,
            /// `block_hours`: the hourly rate of time beyond the block.
            #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
            #[schemars(with = "Option<String>", regex(pattern = "^[0-9]{1,10}(\\.[0-9]{1,2})?$"))]
            pub overage_rate: Option<Decimal>,
            /// `block_hours`: unused hours carry over to the next cycle.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            pub rollover: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub note: Option<InvoiceNote>,
        }

        impl $ty {
            pub fn terms(&self) -> Terms<'_> {
                Terms {
                    name: &self.name,
                    starts_on: self.starts_on,
                    ends_on: self.ends_on,
                    billing_cycle: self.billing_cycle,
                    rate_card: self.rate_card.as_deref(),
                    rate_overrides: &self.rate_overrides,
                    sla_policy_id: self.sla_policy_id,
                    purchase_order: self.purchase_order.as_ref(),
                    tax: &self.tax,
                    amount: self.amount,
                    unit_source: self.unit_source,
                    unit_asset_type: self.unit_asset_type.as_ref(),
                    block_hours: self.block_hours,
                    overage_rate: self.overage_rate,
                    rollover: self.rollover,
                    note: self.note.as_ref(),
                }
            }
        }
    };
}

/// A contract's terms, as the commands give them.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    pub name: &'a ContractName,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub billing_cycle: BillingCycle,
    pub rate_card: Option<&'a str>,
    pub rate_overrides: &'a [Rate],
    pub sla_policy_id: Option<SlaPolicyId>,
    pub purchase_order: Option<&'a PurchaseOrder>,
    pub tax: &'a str,
    pub amount: Option<Decimal>,
    pub unit_source: Option<UnitSource>,
    pub unit_asset_type: Option<&'a SchemaKey>,
    pub block_hours: Option<Decimal>,
    pub overage_rate: Option<Decimal>,
    pub rollover: bool,
    pub note: Option<&'a InvoiceNote>,
}

fn monthly() -> BillingCycle {
    BillingCycle::Monthly
}

impl<'a> Terms<'a> {
    fn check(self, kind: ContractKind) -> Result<(), Invalid> {
        if self.ends_on.is_some_and(|e| e < self.starts_on) {
            return Err(Invalid::at("/ends_on", "a contract ends on or after the day it starts"));
        }
        amount(self.amount, "/amount", false)?;
        amount(self.block_hours, "/block_hours", true)?;
        amount(self.overage_rate, "/overage_rate", false)?;
        if self.rate_overrides.len() > 200 {
            return Err(Invalid::at("/rate_overrides", "at most 200 rates"));
        }
        for rate in self.rate_overrides {
            amount(Some(rate.hourly_rate), "/rate_overrides", false)?;
        }
        let needs = |present: bool, wanted: bool, path: &'static str, what: &str| {
            if present == wanted {
                Ok(())
            } else if wanted {
                Err(Invalid::at(path, format!("a {kind} contract needs {what}")))
            } else {
                Err(Invalid::at(path, format!("a {kind} contract has no {what}")))
            }
        };
        use ContractKind::*;
        needs(self.amount.is_some(), kind != TimeAndMaterials, "/amount", "an amount per cycle")?;
        needs(self.unit_source.is_some(), kind == PerUnit, "/unit_source", "a unit source (assets or contacts)")?;
        needs(self.block_hours.is_some(), kind == BlockHours, "/block_hours", "hours per block")?;
        needs(self.overage_rate.is_some(), kind == BlockHours, "/overage_rate", "an overage rate")?;
        if self.rollover && kind != BlockHours {
            return Err(Invalid::at("/rollover", "only block hours roll over"));
        }
        if self.unit_asset_type.is_some() && self.unit_source != Some(UnitSource::Assets) {
            return Err(Invalid::at("/unit_asset_type", "an asset type narrows a contract counting assets"));
        }
        Ok(())
    }

    fn stored(self, kind: ContractKind) -> ContractTerms<'a> {
        ContractTerms {
            name: self.name,
            kind,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            billing_cycle: self.billing_cycle,
            rate_card: self.rate_card,
            rate_overrides: self.rate_overrides,
            sla_policy_id: self.sla_policy_id,
            purchase_order: self.purchase_order,
            tax: self.tax,
            amount: self.amount,
            unit_source: self.unit_source,
            unit_asset_type: self.unit_asset_type,
            block_hours: self.block_hours,
            overage_rate: self.overage_rate,
            rollover: self.rollover,
            note: self.note,
        }
    }

    /// What the terms name exists in the workspace.
    async fn check_names(self, tx: &mut WorkspaceTx) -> Result<(), Rejection> {
        let unknown = |what: String| -> Rejection { TERMS_UNKNOWN.because(what).into() };
        match tx.tax_rate(self.tax).await? {
            Some(rate) if !rate.archived => {}
            _ => return Err(unknown(format!("no tax rate {:?} in this workspace (or it is archived)", self.tax))),
        }
        if let Some(card) = self.rate_card
            && tx.rate_card(card).await?.is_none()
        {
            return Err(unknown(format!("no rate card {card:?} in this workspace")));
        }
        if let Some(policy) = self.sla_policy_id
            && tx.sla_policy(policy).await?.is_none()
        {
            return Err(unknown(format!("no SLA policy {policy} in this workspace")));
        }
        if let Some(key) = self.unit_asset_type
            && tx.asset_type(key).await?.is_none()
        {
            return Err(unknown(format!("no asset type {key} in this workspace")));
        }
        Ok(())
    }
}

with_terms!(
    /// Create a draft contract.
    #[schemars(example = serde_json::json!({"kind": "fixed_fee", "name": "Managed services",
        "starts_on": "2026-11-01", "billing_cycle": "monthly", "tax": "standard", "amount": "1200.00",
        "purchase_order": "PO-2026-118"}))]
    ContractCreate {
        /// `time_and_materials`, `fixed_fee`, `per_unit` or `block_hours`.
        pub kind: ContractKind,
    }
);

with_terms!(
    /// Change a contract's terms (given whole); not a cancelled one. Its
    /// kind never changes.
    #[schemars(example = serde_json::json!({"contract_id": "ctr_01jd6m2h9x8k7v5t3r1p0n9q8w",
        "name": "Managed services", "starts_on": "2026-11-01", "billing_cycle": "monthly", "tax": "standard",
        "amount": "1350.00"}))]
    ContractUpdate {
        pub contract_id: ContractId,
    }
);

macro_rules! on_contract {
    ($($(#[$doc:meta])* $ty:ident;)+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(example = serde_json::json!({"contract_id": "ctr_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
        pub struct $ty {
            pub contract_id: ContractId,
        }
    )+};
}

on_contract!(
    /// Put a draft contract in force.
    ContractActivate;
    /// Suspend an active contract: nothing recurring is charged meanwhile.
    ContractSuspend;
    /// Put a suspended contract back in force.
    ContractResume;
    /// Cancel a contract: it is never charged or changed again.
    ContractCancel;
);

/// What happened in a `contract.updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractChange {
    Created,
    Edited,
    Activated,
    Suspended,
    Resumed,
    Cancelled,
}

/// `contract.updated`: a contract was created or changed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContractUpdated {
    pub change: ContractChange,
    /// The contract after the change, as `GET .../contracts/{id}` shows it.
    pub contract: Contract,
    pub actor: Actor,
    pub execution_id: ExecutionId,
}

impl Event for ContractUpdated {
    const TYPE: &'static str = "contract.updated";
    const WHEN: &'static str = "A contract was created, its terms changed, or it moved in its lifecycle.";
}

const EVENTS: &[EventSpec] = &[EventSpec::of::<ContractUpdated>()];

/// What a contract command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContractRef {
    pub contract_id: ContractId,
    pub state: ContractState,
}

async fn contract(tx: &mut WorkspaceTx, id: ContractId, lock: bool) -> Result<Contract, Rejection> {
    let found = if lock { tx.lock_contract(id).await? } else { tx.contract(id).await? };
    found.ok_or_else(|| CONTRACT_NOT_FOUND.because(format!("no contract {id} in this workspace")).into())
}

/// Checks `terms` for a contract of `kind`: their own rules, and what they
/// name exists in the workspace.
pub(crate) async fn check(tx: &mut WorkspaceTx, kind: ContractKind, terms: Terms<'_>) -> Result<(), Rejection> {
    terms.check(kind).map_err(|e| TERMS_UNKNOWN.because(format!("{}: {}", e.path, e.message)))?;
    terms.check_names(tx).await
}

/// Checks and stores a draft contract of `kind` on `terms`, and publishes
/// its creation.
pub(crate) async fn insert(
    effect: &mut Effect<'_>,
    kind: ContractKind,
    terms: Terms<'_>,
) -> Result<ContractId, Rejection> {
    check(effect.tx, kind, terms).await?;
    let id = ContractId::new();
    effect.tx.insert_contract(id, &terms.stored(kind), effect.execution).await?;
    changed(effect, id, ContractChange::Created).await?;
    Ok(id)
}

async fn changed(effect: &mut Effect<'_>, id: ContractId, change: ContractChange) -> Result<ContractRef, Rejection> {
    let contract = contract(effect.tx, id, false).await?;
    let answer = ContractRef { contract_id: id, state: contract.state };
    let event = ContractUpdated { change, contract, actor: effect.actor.clone(), execution_id: effect.execution };
    effect.publish(&event).await?;
    Ok(answer)
}

impl DomainCommand for ContractCreate {
    const NAME: &'static str = "contract.create";
    const SKILL: &'static str = "contract_create";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Create a draft contract";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&TERMS_UNKNOWN];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = ContractRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.terms().check(self.kind)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        self.terms().check_names(tx).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ContractRef, Rejection> {
        let id = insert(effect, self.kind, self.terms()).await?;
        Ok(ContractRef { contract_id: id, state: ContractState::Draft })
    }
}

impl DomainCommand for ContractUpdate {
    const NAME: &'static str = "contract.update";
    const SKILL: &'static str = "contract_update";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Change a contract's terms";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&CONTRACT_NOT_FOUND, &TERMS_UNKNOWN, &CONTRACT_TRANSITION];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = ContractRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = contract(tx, self.contract_id, false).await?;
        editable(&now)?;
        keeps_its_cycles(&now, &self.terms())?;
        self.terms().check(now.kind).map_err(|e| TERMS_UNKNOWN.because(format!("{}: {}", e.path, e.message)))?;
        self.terms().check_names(tx).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<ContractRef, Rejection> {
        let now = contract(effect.tx, self.contract_id, true).await?;
        editable(&now)?;
        keeps_its_cycles(&now, &self.terms())?;
        self.terms().check(now.kind).map_err(|e| TERMS_UNKNOWN.because(format!("{}: {}", e.path, e.message)))?;
        self.terms().check_names(effect.tx).await?;
        effect.tx.update_contract(now.id, &self.terms().stored(now.kind), effect.execution).await?;
        changed(effect, now.id, ContractChange::Edited).await
    }
}

/// Once in force, a contract keeps its start and billing cycle: the cycles
/// already charged are keyed by their first day.
fn keeps_its_cycles(contract: &Contract, terms: &Terms<'_>) -> Result<(), Rejection> {
    if contract.state != ContractState::Draft
        && (terms.starts_on != contract.starts_on || terms.billing_cycle != contract.billing_cycle)
    {
        return Err(CONTRACT_TRANSITION
            .because(format!(
                "contract {} has been in force: its start and billing cycle stay as they are (cancel it and make another)",
                contract.id
            ))
            .into());
    }
    Ok(())
}

fn editable(contract: &Contract) -> Result<(), Rejection> {
    if contract.state == ContractState::Cancelled {
        Err(CONTRACT_TRANSITION.because(format!("contract {} is cancelled: it is never changed", contract.id)).into())
    } else {
        Ok(())
    }
}

/// Moves a contract to `to` if its state allows.
async fn transition(
    effect: &mut Effect<'_>,
    id: ContractId,
    from: &[ContractState],
    to: ContractState,
    change: ContractChange,
) -> Result<ContractRef, Rejection> {
    let now = contract(effect.tx, id, true).await?;
    allowed(&now, from, to)?;
    effect.tx.set_contract_state(id, to, effect.execution).await?;
    changed(effect, id, change).await
}

/// Whether `contract` may become `to` by a command that moves it from one
/// of `from` (activation starts a draft, resumption ends a suspension).
fn allowed(contract: &Contract, from: &[ContractState], to: ContractState) -> Result<(), Rejection> {
    if from.contains(&contract.state) && contract.state.can_become(to) {
        Ok(())
    } else {
        Err(CONTRACT_TRANSITION
            .because(format!("contract {} is {}; it cannot become {to}", contract.id, contract.state))
            .into())
    }
}

macro_rules! lifecycle {
    ($($ty:ident, $name:literal, $skill:literal, $summary:literal, [$($from:ident),+] -> $to:ident, $change:ident;)+) => {$(
        impl DomainCommand for $ty {
            const NAME: &'static str = $name;
            const SKILL: &'static str = $skill;
            const PERMISSION: Permission = Permission::BillingWrite;
            const SUMMARY: &'static str = $summary;
            const TAGS: &'static [&'static str] = &["billing"];
            const REFUSALS: &'static [&'static RefusalKind] = &[&CONTRACT_NOT_FOUND, &CONTRACT_TRANSITION];
            const EVENTS: &'static [EventSpec] = EVENTS;
            type Output = ContractRef;

            async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
                allowed(&contract(tx, self.contract_id, false).await?, &[$(ContractState::$from),+], ContractState::$to)
            }

            async fn apply(&self, effect: &mut Effect<'_>) -> Result<ContractRef, Rejection> {
                let from = [$(ContractState::$from),+];
                transition(effect, self.contract_id, &from, ContractState::$to, ContractChange::$change).await
            }
        }
    )+};
}

lifecycle!(
    ContractActivate, "contract.activate", "contract_activate", "Put a draft contract in force", [Draft] -> Active, Activated;
    ContractSuspend, "contract.suspend", "contract_suspend", "Suspend an active contract", [Active] -> Suspended, Suspended;
    ContractResume, "contract.resume", "contract_resume", "Put a suspended contract back in force", [Suspended] -> Active, Resumed;
    ContractCancel, "contract.cancel", "contract_cancel", "Cancel a contract", [Draft, Active, Suspended] -> Cancelled, Cancelled;
);

/// The hourly rate in force for work of `work_type` by `role` under
/// `contract` (its overrides, then its rate card), else the work type's
/// default; none when nothing prices it.
pub async fn rate_in_force(
    tx: &mut WorkspaceTx,
    contract: Option<&Contract>,
    work_type: &anchor_domain::WorkType,
    role: Option<&str>,
) -> Result<Option<Decimal>, anchor_store::StoreError> {
    use anchor_store::contracts::rate_for;
    if let Some(contract) = contract {
        if let Some(rate) = rate_for(&contract.rate_overrides, work_type, role) {
            return Ok(Some(rate));
        }
        if let Some(card) = &contract.rate_card
            && let Some(card) = tx.rate_card(card).await?
            && let Some(rate) = rate_for(&card.rates, work_type, role)
        {
            return Ok(Some(rate));
        }
    }
    Ok(tx.work_types().await?.into_iter().find(|w| &w.key == work_type && !w.archived).map(|w| w.hourly_rate))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kit::Spec;

    fn parse(args: serde_json::Value) -> Result<(), String> {
        Spec::of::<ContractCreate>().parse(args).map(drop).map_err(|e| format!("{}: {}", e.path, e.message))
    }

    #[test]
    fn each_kind_needs_its_own_terms() {
        let base = json!({"name": "MS", "starts_on": "2026-11-01", "tax": "standard"});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            for (k, x) in extra.as_object().expect("object") {
                v[k] = x.clone();
            }
            parse(v)
        };
        assert_eq!(with(json!({"kind": "time_and_materials"})), Ok(()));
        assert!(with(json!({"kind": "time_and_materials", "amount": "10"})).expect_err("no fee").contains("/amount"));
        assert!(with(json!({"kind": "fixed_fee"})).expect_err("a fee").contains("/amount"));
        assert_eq!(with(json!({"kind": "fixed_fee", "amount": "1200.00"})), Ok(()));
        assert!(with(json!({"kind": "per_unit", "amount": "35"})).expect_err("a source").contains("/unit_source"));
        assert_eq!(with(json!({"kind": "per_unit", "amount": "35", "unit_source": "contacts"})), Ok(()));
        assert!(
            with(json!({"kind": "per_unit", "amount": "35", "unit_source": "contacts", "unit_asset_type": "server"}))
                .is_err()
        );
        let block = json!({"kind": "block_hours", "amount": "1800", "block_hours": "20", "overage_rate": "110"});
        assert_eq!(with(block.clone()), Ok(()));
        assert!(with(json!({"kind": "block_hours", "amount": "1800", "block_hours": "20"})).is_err());
        assert!(with(json!({"kind": "fixed_fee", "amount": "1", "ends_on": "2026-10-01"})).is_err());
        assert!(with(json!({"kind": "fixed_fee", "amount": "1", "rollover": true})).is_err());
    }
}
