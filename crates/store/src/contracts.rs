//! Contracts and what prices the work under them: the catalogue (work
//! types, services and products), rate cards and staff rate roles
//! (configuration, written by the API with a change record), contracts and
//! their block-hours ledger (written only by the contract and billing
//! skills), and what a billing run reads and writes.

use anchor_domain::{
    BillingCycle, ContractId, ContractKind, ContractName, ContractState, ExecutionId, InvoiceId, InvoiceNote,
    PurchaseOrder, SchemaKey, SlaPolicyId, TicketId, TimeEntryId, UnitCode, UnitSource, WorkType,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::{Date, OffsetDateTime};

use crate::{StoreError, WorkspaceTx, executions::Actor, time_entries::iso_date};

/// A kind of work time is logged as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkTypeDef {
    /// The code time entries carry, e.g. `remote_support`.
    #[schema(value_type = String, example = "remote_support")]
    #[schemars(with = "String")]
    pub key: WorkType,
    #[schema(example = "Remote support")]
    pub name: String,
    /// Whether its time is billable unless said otherwise.
    pub billable: bool,
    /// The default hourly rate, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "95.00")]
    #[schemars(with = "String")]
    pub hourly_rate: Decimal,
    /// The tax rate its time is charged at outside a contract.
    #[schema(example = "standard")]
    pub tax: String,
    #[serde(default)]
    pub archived: bool,
}

/// A service or product sold at a price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    #[schema(example = "backup_seat")]
    pub key: String,
    /// `service` or `product`.
    #[schema(example = "service")]
    pub kind: String,
    #[schema(example = "Cloud backup, per seat")]
    pub name: String,
    /// UN/ECE Recommendation 20, e.g. `C62` (one), `MON` (month).
    #[schema(value_type = String, example = "C62")]
    #[schemars(with = "String")]
    pub unit_code: UnitCode,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "12.50")]
    #[schemars(with = "String")]
    pub unit_price: Decimal,
    #[schema(example = "standard")]
    pub tax: String,
    #[serde(default)]
    pub archived: bool,
}

/// An hourly rate for a work type, for one staff rate role or for all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    #[schema(value_type = String, example = "remote_support")]
    #[schemars(with = "String")]
    pub work_type: WorkType,
    /// A staff rate role (`engineer`); none: every role not named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "senior_engineer")]
    pub role: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "120.00")]
    #[schemars(with = "String")]
    pub hourly_rate: Decimal,
}

/// The rate `rates` give `work_type` for `role`: the role's own, else the
/// one for every role.
pub fn rate_for(rates: &[Rate], work_type: &WorkType, role: Option<&str>) -> Option<Decimal> {
    let of = |r: Option<&str>| rates.iter().find(|x| &x.work_type == work_type && x.role.as_deref() == r);
    role.and_then(|r| of(Some(r))).or_else(|| of(None)).map(|x| x.hourly_rate)
}

/// Hourly rates by work type and staff rate role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateCard {
    #[schema(example = "standard_2027")]
    pub key: String,
    #[schema(example = "Standard rates 2027")]
    pub name: String,
    #[sqlx(json)]
    pub rates: Vec<Rate>,
}

/// The rate role a member of staff's hours are priced by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRateRole {
    #[schema(example = "https://id.example.com")]
    pub issuer: String,
    #[schema(example = "ada")]
    pub subject: String,
    #[schema(example = "senior_engineer")]
    pub role: String,
}

/// A contract as read, with its derived status and block-hours balance.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = ContractView)]
pub struct Contract {
    #[schema(value_type = String, example = "ctr_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: ContractId,
    #[schema(value_type = String, example = "Managed services 2027")]
    pub name: ContractName,
    /// `time_and_materials`, `fixed_fee`, `per_unit` or `block_hours`.
    #[schema(value_type = String, example = "fixed_fee")]
    pub kind: ContractKind,
    /// As stored: `draft`, `active`, `suspended` or `cancelled`.
    #[schema(value_type = String, example = "active")]
    pub state: ContractState,
    /// As people read it: the state, or `expired` for an active contract
    /// past its end date.
    #[schema(example = "active")]
    pub status: String,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date, example = "2026-11-01")]
    #[schemars(with = "String")]
    pub starts_on: Date,
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    #[schemars(with = "Option<String>")]
    pub ends_on: Option<Date>,
    /// `monthly`, `quarterly` or `yearly`.
    #[schema(value_type = String, example = "monthly")]
    pub billing_cycle: BillingCycle,
    pub rate_card: Option<String>,
    #[sqlx(json)]
    pub rate_overrides: Vec<Rate>,
    #[schema(value_type = Option<String>)]
    pub sla_policy_id: Option<SlaPolicyId>,
    #[schema(value_type = Option<String>)]
    pub purchase_order: Option<PurchaseOrder>,
    pub tax: String,
    /// Per cycle: the fee, the unit price or the block's price.
    #[schema(value_type = Option<String>, example = "1200.00")]
    #[schemars(with = "Option<String>")]
    pub amount: Option<Decimal>,
    #[schema(value_type = Option<String>, example = "assets")]
    pub unit_source: Option<UnitSource>,
    #[schema(value_type = Option<String>, example = "workstation")]
    pub unit_asset_type: Option<SchemaKey>,
    #[schema(value_type = Option<String>, example = "20.00")]
    #[schemars(with = "Option<String>")]
    pub block_hours: Option<Decimal>,
    #[schema(value_type = Option<String>, example = "110.00")]
    #[schemars(with = "Option<String>")]
    pub overage_rate: Option<Decimal>,
    pub rollover: bool,
    /// Block hours: what is left to draw, in hours.
    #[schema(value_type = Option<String>, example = "12.50")]
    #[schemars(with = "Option<String>")]
    pub hours_left: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub note: Option<InvoiceNote>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub cancelled_at: Option<OffsetDateTime>,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[schema(value_type = String)]
    pub last_execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

const CONTRACT_COLUMNS: &str = "c.id, c.name, c.kind, c.state,
    CASE WHEN c.state = 'active' AND c.ends_on < current_date THEN 'expired' ELSE c.state END AS status,
    c.starts_on, c.ends_on, c.billing_cycle, c.rate_card, c.rate_overrides, c.sla_policy_id, c.purchase_order,
    c.tax, c.amount, c.unit_source, c.unit_asset_type, c.block_hours, c.overage_rate, c.rollover,
    CASE WHEN c.kind = 'block_hours'
         THEN (SELECT coalesce(sum(h.hours), 0)::numeric(12, 2) FROM contract_hours h WHERE h.contract_id = c.id)
    END AS hours_left,
    c.note, c.activated_at, c.cancelled_at, c.execution_id, c.last_execution_id, c.created_at, c.updated_at
    FROM contracts c";

/// A contract's terms, as its commands set them.
#[derive(Debug, Clone)]
pub struct ContractTerms<'a> {
    pub name: &'a ContractName,
    pub kind: ContractKind,
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

/// Approved billable time not invoiced yet, with what the run needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnbilledTime {
    pub id: TimeEntryId,
    pub ticket_id: TicketId,
    pub ticket_title: String,
    pub work_type: WorkType,
    pub work_type_name: Option<String>,
    pub work_type_tax: Option<String>,
    pub minutes: i32,
    pub worked_on: Date,
    pub rate: Option<Decimal>,
    pub contract_id: Option<ContractId>,
}

/// One billing run, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct BillingRun {
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    #[schemars(with = "String")]
    pub period_start: Date,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    #[schemars(with = "String")]
    pub period_end: Date,
    /// Draft invoices it made.
    pub invoices: i32,
    /// Time entries it invoiced.
    pub time_entries: i32,
    /// Recurring charges it made.
    pub charges: i32,
    #[sqlx(json)]
    pub actor: Actor,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
}

impl Contract {
    /// Whether work on `day` falls under it: active, and between its start
    /// and end.
    pub fn covers(&self, day: Date) -> bool {
        self.state == ContractState::Active && self.starts_on <= day && self.ends_on.is_none_or(|end| day <= end)
    }
}

impl WorkspaceTx {
    pub async fn work_types(&mut self) -> Result<Vec<WorkTypeDef>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, name, billable, hourly_rate, tax, archived FROM work_types ORDER BY archived, key",
        )
        .fetch_all(self.conn())
        .await?)
    }

    /// Saves a work type under its key; whether it was created.
    pub async fn save_work_type(&mut self, w: &WorkTypeDef) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO work_types (key, name, billable, hourly_rate, tax, archived) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (key) DO UPDATE
                SET name = EXCLUDED.name, billable = EXCLUDED.billable, hourly_rate = EXCLUDED.hourly_rate,
                    tax = EXCLUDED.tax, archived = EXCLUDED.archived, updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(&w.key)
        .bind(&w.name)
        .bind(w.billable)
        .bind(w.hourly_rate)
        .bind(&w.tax)
        .bind(w.archived)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn catalogue_items(&mut self) -> Result<Vec<CatalogueItem>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, kind, name, unit_code, unit_price, tax, archived FROM catalogue_items ORDER BY archived, key",
        )
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn save_catalogue_item(&mut self, item: &CatalogueItem) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO catalogue_items (key, kind, name, unit_code, unit_price, tax, archived)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key) DO UPDATE
                SET kind = EXCLUDED.kind, name = EXCLUDED.name, unit_code = EXCLUDED.unit_code,
                    unit_price = EXCLUDED.unit_price, tax = EXCLUDED.tax, archived = EXCLUDED.archived,
                    updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(&item.key)
        .bind(&item.kind)
        .bind(&item.name)
        .bind(&item.unit_code)
        .bind(item.unit_price)
        .bind(&item.tax)
        .bind(item.archived)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn rate_cards(&mut self) -> Result<Vec<RateCard>, StoreError> {
        Ok(sqlx::query_as("SELECT key, name, rates FROM rate_cards ORDER BY key").fetch_all(self.conn()).await?)
    }

    pub async fn rate_card(&mut self, key: &str) -> Result<Option<RateCard>, StoreError> {
        Ok(sqlx::query_as("SELECT key, name, rates FROM rate_cards WHERE key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn save_rate_card(&mut self, card: &RateCard) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO rate_cards (key, name, rates) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, rates = EXCLUDED.rates, updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(&card.key)
        .bind(&card.name)
        .bind(Json(&card.rates))
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn staff_rate_roles(&mut self) -> Result<Vec<StaffRateRole>, StoreError> {
        Ok(sqlx::query_as("SELECT issuer, subject, role FROM staff_rate_roles ORDER BY subject, issuer")
            .fetch_all(self.conn())
            .await?)
    }

    pub async fn save_staff_rate_role(&mut self, role: &StaffRateRole) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO staff_rate_roles (issuer, subject, role) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, subject) DO UPDATE SET role = EXCLUDED.role, updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(&role.issuer)
        .bind(&role.subject)
        .bind(&role.role)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn contract(&mut self, id: ContractId) -> Result<Option<Contract>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CONTRACT_COLUMNS} WHERE c.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The contract, locked until this unit of work ends.
    pub async fn lock_contract(&mut self, id: ContractId) -> Result<Option<Contract>, StoreError> {
        let found: Option<ContractId> = sqlx::query_scalar("SELECT id FROM contracts WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        match found {
            Some(id) => self.contract(id).await,
            None => Ok(None),
        }
    }

    /// Every contract, active first, then by start.
    pub async fn contracts(&mut self) -> Result<Vec<Contract>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTRACT_COLUMNS}
              ORDER BY CASE c.state WHEN 'active' THEN 0 WHEN 'draft' THEN 1 WHEN 'suspended' THEN 2 ELSE 3 END,
                       c.starts_on DESC, c.id"
        )))
        .fetch_all(self.conn())
        .await?)
    }

    /// The contract in force on `day`: the active contract covering it, the
    /// most recently started if several do.
    pub async fn contract_in_force(&mut self, day: Date) -> Result<Option<ContractId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM contracts
              WHERE state = 'active' AND starts_on <= $1 AND (ends_on IS NULL OR ends_on >= $1)
              ORDER BY starts_on DESC, id DESC LIMIT 1",
        )
        .bind(day)
        .fetch_optional(self.conn())
        .await?)
    }

    pub async fn insert_contract(
        &mut self,
        id: ContractId,
        terms: &ContractTerms<'_>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contracts (id, name, kind, starts_on, ends_on, billing_cycle, rate_card, rate_overrides,
                                    sla_policy_id, purchase_order, tax, amount, unit_source, unit_asset_type,
                                    block_hours, overage_rate, rollover, note, execution_id, last_execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
        )
        .bind(id)
        .bind(terms.name)
        .bind(terms.kind)
        .bind(terms.starts_on)
        .bind(terms.ends_on)
        .bind(terms.billing_cycle)
        .bind(terms.rate_card)
        .bind(Json(terms.rate_overrides))
        .bind(terms.sla_policy_id)
        .bind(terms.purchase_order)
        .bind(terms.tax)
        .bind(terms.amount)
        .bind(terms.unit_source)
        .bind(terms.unit_asset_type)
        .bind(terms.block_hours)
        .bind(terms.overage_rate)
        .bind(terms.rollover)
        .bind(terms.note)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Rewrites a contract's terms (the caller locked and checked it).
    pub async fn update_contract(
        &mut self,
        id: ContractId,
        terms: &ContractTerms<'_>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contracts SET name = $2, starts_on = $3, ends_on = $4, billing_cycle = $5, rate_card = $6,
                    rate_overrides = $7, sla_policy_id = $8, purchase_order = $9, tax = $10, amount = $11,
                    unit_source = $12, unit_asset_type = $13, block_hours = $14, overage_rate = $15, rollover = $16,
                    note = $17, last_execution_id = $18, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(terms.name)
        .bind(terms.starts_on)
        .bind(terms.ends_on)
        .bind(terms.billing_cycle)
        .bind(terms.rate_card)
        .bind(Json(terms.rate_overrides))
        .bind(terms.sla_policy_id)
        .bind(terms.purchase_order)
        .bind(terms.tax)
        .bind(terms.amount)
        .bind(terms.unit_source)
        .bind(terms.unit_asset_type)
        .bind(terms.block_hours)
        .bind(terms.overage_rate)
        .bind(terms.rollover)
        .bind(terms.note)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves a contract (the caller locked and checked it) to `to`.
    pub async fn set_contract_state(
        &mut self,
        id: ContractId,
        to: ContractState,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contracts SET state = $2,
                    activated_at = CASE WHEN $2 = 'active' THEN coalesce(activated_at, now()) ELSE activated_at END,
                    cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() END,
                    last_execution_id = $3, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(to)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The rate role of a member of staff, if one is set.
    pub async fn staff_rate_role(&mut self, staff: &Actor) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT role FROM staff_rate_roles WHERE issuer = $1 AND subject = $2")
            .bind(&staff.issuer)
            .bind(&staff.subject)
            .fetch_optional(self.conn())
            .await?)
    }

    /// A ticket's contract, if it has one.
    pub async fn ticket_contract(&mut self, ticket: TicketId) -> Result<Option<ContractId>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<ContractId>>("SELECT contract_id FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_optional(self.conn())
            .await?
            .flatten())
    }

    /// Sets a ticket's contract.
    pub async fn set_ticket_contract(
        &mut self,
        ticket: TicketId,
        contract: Option<ContractId>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET contract_id = $2 WHERE id = $1")
            .bind(ticket)
            .bind(contract)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Fixes an approved entry's contract and the hourly rate in force.
    pub async fn price_time_entry(
        &mut self,
        id: TimeEntryId,
        contract: Option<ContractId>,
        rate: Option<Decimal>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE time_entries SET contract_id = $2, rate = $3 WHERE id = $1 AND state = 'approved'")
            .bind(id)
            .bind(contract)
            .bind(rate)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Approved billable time worked up to `until` and not invoiced, oldest
    /// first, locked until this unit of work ends (when `lock`).
    pub async fn unbilled_time(&mut self, until: Date, lock: bool) -> Result<Vec<UnbilledTime>, StoreError> {
        let lock = if lock { "FOR UPDATE OF e" } else { "" };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, e.ticket_id, t.title AS ticket_title, e.work_type, w.name AS work_type_name,
                    w.tax AS work_type_tax, e.minutes, e.worked_on, e.rate, e.contract_id
               FROM time_entries e
               JOIN tickets t ON t.id = e.ticket_id
               LEFT JOIN work_types w ON w.key = e.work_type
              WHERE e.state = 'approved' AND e.billable AND e.worked_on <= $1
              ORDER BY e.worked_on, e.id {lock}"
        )))
        .bind(until)
        .fetch_all(self.conn())
        .await?)
    }

    /// Marks an entry invoiced on `invoice`'s line `line`.
    pub async fn invoice_time_entry(
        &mut self,
        id: TimeEntryId,
        invoice: InvoiceId,
        line: i32,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE time_entries SET state = 'invoiced', invoice_id = $2, invoice_line = $3, last_execution_id = $4,
                    updated_at = now()
              WHERE id = $1 AND state = 'approved'",
        )
        .bind(id)
        .bind(invoice)
        .bind(line)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Whether a contract's cycle starting on `cycle_start` was charged.
    pub async fn contract_charged(&mut self, id: ContractId, cycle_start: Date) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM contract_charges WHERE contract_id = $1 AND cycle_start = $2)",
        )
        .bind(id)
        .bind(cycle_start)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn record_contract_charge(
        &mut self,
        id: ContractId,
        cycle_start: Date,
        invoice: InvoiceId,
        position: i32,
        quantity: Decimal,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contract_charges (contract_id, cycle_start, invoice_id, position, quantity)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(cycle_start)
        .bind(invoice)
        .bind(position)
        .bind(quantity)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Units a per-unit contract counts now.
    pub async fn count_units(&mut self, source: UnitSource, asset_type: Option<&SchemaKey>) -> Result<i64, StoreError> {
        Ok(match source {
            UnitSource::Assets => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM assets
                      WHERE status IN ('active', 'in_repair') AND ($1::text IS NULL OR type_key = $1)",
                )
                .bind(asset_type)
                .fetch_one(self.conn())
                .await?
            }
            UnitSource::Contacts => {
                sqlx::query_scalar("SELECT count(*) FROM contacts WHERE archived_at IS NULL")
                    .fetch_one(self.conn())
                    .await?
            }
        })
    }

    /// A block-hours contract's balance, in hours.
    pub async fn hours_left(&mut self, id: ContractId) -> Result<Decimal, StoreError> {
        Ok(sqlx::query_scalar("SELECT coalesce(sum(hours), 0) FROM contract_hours WHERE contract_id = $1")
            .bind(id)
            .fetch_one(self.conn())
            .await?)
    }

    /// A row of the block-hours ledger: `purchased` (positive), `drawn` or
    /// `expired` (negative).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_hours(
        &mut self,
        id: ContractId,
        entry: &str,
        hours: Decimal,
        cycle_start: Date,
        time_entry: Option<TimeEntryId>,
        invoice: Option<InvoiceId>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contract_hours (contract_id, entry, hours, cycle_start, time_entry_id, invoice_id, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(entry)
        .bind(hours)
        .bind(cycle_start)
        .bind(time_entry)
        .bind(invoice)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks a draft as made by a billing run for `contract` over a period.
    pub async fn set_invoice_origin(
        &mut self,
        id: InvoiceId,
        contract: Option<ContractId>,
        period: (Date, Date),
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE invoices SET contract_id = $2, period_start = $3, period_end = $4 WHERE id = $1")
            .bind(id)
            .bind(contract)
            .bind(period.0)
            .bind(period.1)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Serialises billing runs of this workspace until this unit of work ends.
    pub async fn lock_billing(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':billing_run'))")
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn record_billing_run(&mut self, run: &BillingRun) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO billing_runs (execution_id, period_start, period_end, invoices, time_entries, charges, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run.execution_id)
        .bind(run.period_start)
        .bind(run.period_end)
        .bind(run.invoices)
        .bind(run.time_entries)
        .bind(run.charges)
        .bind(Json(&run.actor))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The latest billing runs, newest first.
    pub async fn billing_runs(&mut self, limit: i64) -> Result<Vec<BillingRun>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT execution_id, period_start, period_end, invoices, time_entries, charges, actor, at
               FROM billing_runs ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }
}
