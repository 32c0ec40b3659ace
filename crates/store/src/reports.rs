//! Financial reports, each summed in the database from the documents and
//! time it summarises, with the same expressions the documents' own views
//! use: unbilled time, revenue by contract, and the ageing of receivables
//! (whose total is the client's `outstanding`).

use anchor_domain::{ContractId, WorkType};
use rust_decimal::Decimal;
use serde::Serialize;
use time::Date;

use crate::{StoreError, WorkspaceTx};

/// Approved billable time not invoiced yet, by contract and work type.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct UnbilledTimeRow {
    /// None: time outside any contract.
    #[schema(value_type = Option<String>)]
    pub contract_id: Option<ContractId>,
    pub contract_name: Option<String>,
    #[schema(value_type = String, example = "remote_support")]
    pub work_type: WorkType,
    pub entries: i64,
    /// Hours worked, a decimal string.
    #[schema(value_type = String, example = "7.5")]
    #[schemars(with = "String")]
    pub hours: Decimal,
    /// Entries without a rate (nothing priced them when approved).
    pub unpriced: i64,
    /// Hours at the rates fixed when they were approved, each
    /// entry rounded to the cent as its invoice line is (before contract
    /// terms: a block or a fixed fee may cover some of it).
    #[schema(value_type = String, example = "712.50")]
    #[schemars(with = "String")]
    pub value: Decimal,
}

/// Revenue by contract over a period: finalized invoices and credit notes
/// by their issue date (a credit note counts against the contract of the
/// invoice it corrects), net of tax.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct RevenueRow {
    /// None: invoices outside any contract.
    #[schema(value_type = Option<String>)]
    pub contract_id: Option<ContractId>,
    pub contract_name: Option<String>,
    pub invoices: i64,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub invoiced: Decimal,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub credited: Decimal,
    /// `invoiced - credited`.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub net: Decimal,
}

/// Open invoice balances by how long they are past due.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct AgeingRow {
    /// `not_due`, `1_30`, `31_60`, `61_90` or `over_90` (days past due).
    pub bucket: String,
    pub invoices: i64,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub balance: Decimal,
}

/// The ageing buckets, in order.
pub const AGEING_BUCKETS: [&str; 5] = ["not_due", "1_30", "31_60", "61_90", "over_90"];

impl WorkspaceTx {
    pub async fn unbilled_time_report(&mut self) -> Result<Vec<UnbilledTimeRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT t.contract_id, c.name AS contract_name, t.work_type, count(*) AS entries,
                    (sum(t.minutes) / 60.0)::numeric(14, 2) AS hours,
                    count(*) FILTER (WHERE t.rate IS NULL) AS unpriced,
                    coalesce(sum(round(round(t.minutes / 60.0, 4) * t.rate, 2)), 0)::numeric(18, 2) AS value
               FROM time_entries t LEFT JOIN contracts c ON c.id = t.contract_id
              WHERE t.state = 'approved' AND t.billable
              GROUP BY t.contract_id, c.name, t.work_type
              ORDER BY c.name NULLS FIRST, t.work_type",
        )
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn revenue_report(&mut self, from: Date, to: Date) -> Result<Vec<RevenueRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT x.contract_id, c.name AS contract_name,
                    count(*) FILTER (WHERE x.kind = 'invoice') AS invoices,
                    coalesce(sum(x.net) FILTER (WHERE x.kind = 'invoice'), 0)::numeric(18, 2) AS invoiced,
                    coalesce(sum(x.net) FILTER (WHERE x.kind = 'credit_note'), 0)::numeric(18, 2) AS credited,
                    (coalesce(sum(x.net) FILTER (WHERE x.kind = 'invoice'), 0)
                     - coalesce(sum(x.net) FILTER (WHERE x.kind = 'credit_note'), 0))::numeric(18, 2) AS net
               FROM (SELECT i.kind, i.net, coalesce(i.contract_id, o.contract_id) AS contract_id
                       FROM invoices i LEFT JOIN invoices o ON o.id = i.corrects
                      WHERE i.state <> 'draft' AND i.issued_on BETWEEN $1 AND $2) x
               LEFT JOIN contracts c ON c.id = x.contract_id
              GROUP BY x.contract_id, c.name
              ORDER BY c.name NULLS FIRST",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.conn())
        .await?)
    }

    /// Every bucket, empty ones with 0, in [`AGEING_BUCKETS`] order.
    pub async fn ageing_report(&mut self) -> Result<Vec<AgeingRow>, StoreError> {
        let rows: Vec<AgeingRow> = sqlx::query_as(
            "SELECT bucket, count(*) AS invoices, sum(balance)::numeric(18, 2) AS balance
               FROM (SELECT i.gross
                            - coalesce((SELECT sum(c.gross) FROM invoices c
                                         WHERE c.corrects = i.id AND c.state <> 'draft'), 0)
                            - coalesce((SELECT sum(a.amount) FROM payment_allocations a
                                         WHERE a.invoice_id = i.id), 0) AS balance,
                            CASE WHEN current_date <= i.due_on THEN 'not_due'
                                 WHEN current_date - i.due_on <= 30 THEN '1_30'
                                 WHEN current_date - i.due_on <= 60 THEN '31_60'
                                 WHEN current_date - i.due_on <= 90 THEN '61_90'
                                 ELSE 'over_90' END AS bucket
                       FROM invoices i WHERE i.kind = 'invoice' AND i.state <> 'draft') x
              WHERE balance > 0
              GROUP BY bucket",
        )
        .fetch_all(self.conn())
        .await?;
        Ok(AGEING_BUCKETS
            .iter()
            .map(|b| {
                rows.iter().find(|r| r.bucket == *b).cloned().unwrap_or(AgeingRow {
                    bucket: (*b).to_owned(),
                    invoices: 0,
                    balance: Decimal::new(0, 2),
                })
            })
            .collect())
    }
}
