//! Quotes and their sent versions (workspace migration 0031), written only
//! by the quote commands.

use anchor_domain::{ContractId, Currency, ExecutionId, InvoiceId, QuoteId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::{Date, OffsetDateTime};

use crate::{StoreError, WorkspaceTx, time_entries::iso_date};

/// A line of a quote: as given, with its net amount (rounded once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
pub struct QuoteLine {
    pub description: String,
    #[schema(value_type = String, example = "12")]
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[schema(example = "C62")]
    pub unit_code: String,
    #[schema(value_type = String, example = "35.00")]
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
    #[schema(value_type = String, example = "0")]
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub discount_percent: Decimal,
    /// The key of the tax rate.
    pub tax: String,
    #[schema(value_type = String, example = "420.00")]
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub net: Decimal,
}

/// Who decided on a quote: the actor, and the name they gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Decider {
    pub issuer: String,
    pub subject: String,
    /// As they named themselves ("Jane Doe, CFO").
    pub name: String,
}

/// A quote as `GET .../quotes/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Quote {
    #[schema(value_type = String, example = "qte_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: QuoteId,
    #[schema(example = "Q-000001")]
    pub number: String,
    pub title: String,
    /// `draft`, `sent`, `accepted`, `declined` or `converted`.
    pub state: String,
    /// `expired` once a sent quote is past its validity, else the state.
    pub status: String,
    pub version: i32,
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    #[schemars(with = "String")]
    pub valid_until: Date,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    pub note: Option<String>,
    #[sqlx(json)]
    pub lines: Vec<QuoteLine>,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub net: Decimal,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub tax: Decimal,
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub gross: Decimal,
    /// The SHA-256 of the version sent (RFC 8785 canonical JSON), what an acceptance names.
    pub sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schemars(with = "Option<String>")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[schemars(with = "Option<String>")]
    pub decided_at: Option<OffsetDateTime>,
    #[sqlx(json(nullable))]
    pub decided_by: Option<Decider>,
    /// The digest of the version accepted or declined.
    pub decided_digest: Option<String>,
    pub decline_reason: Option<String>,
    /// The draft invoice it was converted to.
    #[schema(value_type = Option<String>)]
    pub invoice_id: Option<InvoiceId>,
    /// The draft contract it was converted to.
    #[schema(value_type = Option<String>)]
    pub contract_id: Option<ContractId>,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[schema(value_type = String)]
    pub last_execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A quote's content, as written.
#[derive(Debug, Clone)]
pub struct QuoteContent<'a> {
    pub title: &'a str,
    pub valid_until: Date,
    pub note: Option<&'a str>,
    pub lines: &'a [QuoteLine],
    pub net: Decimal,
    pub tax: Decimal,
    pub gross: Decimal,
}

const COLUMNS: &str = "q.id, q.number, q.title, q.state,
    CASE WHEN q.state = 'sent' AND q.valid_until < current_date THEN 'expired' ELSE q.state END AS status,
    q.version, q.valid_until, q.currency, q.note, q.lines, q.net, q.tax, q.gross,
    (SELECT v.sha256 FROM quote_versions v WHERE v.quote_id = q.id AND v.version = q.version) AS sha256,
    q.sent_at, q.decided_at, q.decided_by, q.decided_digest, q.decline_reason, q.invoice_id, q.contract_id,
    q.execution_id, q.last_execution_id, q.created_at, q.updated_at
    FROM quotes q";

impl WorkspaceTx {
    pub async fn quote(&mut self, id: QuoteId) -> Result<Option<Quote>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} WHERE q.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The quote, locked until the unit of work ends.
    pub async fn lock_quote(&mut self, id: QuoteId) -> Result<Option<Quote>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} WHERE q.id = $1 FOR UPDATE OF q")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, after the cursor `before`.
    pub async fn quotes(&mut self, before: Option<QuoteId>, limit: i64) -> Result<Vec<Quote>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} WHERE ($1::text IS NULL OR q.id < $1) ORDER BY q.id DESC LIMIT $2"
        )))
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// A new draft, numbered `Q-000001` onwards (quotes need no gapless series).
    pub async fn insert_quote(
        &mut self,
        id: QuoteId,
        currency: Currency,
        content: &QuoteContent<'_>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO quotes (id, number, title, valid_until, currency, note, lines, net, tax, gross,
                                 execution_id, last_execution_id)
             VALUES ($1, 'Q-' || lpad(nextval('quote_numbers')::text, 6, '0'), $2, $3, $4, $5, $6, $7, $8, $9,
                     $10, $10)",
        )
        .bind(id)
        .bind(content.title)
        .bind(content.valid_until)
        .bind(currency)
        .bind(content.note)
        .bind(Json(content.lines))
        .bind(content.net)
        .bind(content.tax)
        .bind(content.gross)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Replaces a quote's content; a sent quote becomes a draft of the next version.
    pub async fn revise_quote(
        &mut self,
        id: QuoteId,
        content: &QuoteContent<'_>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE quotes SET title = $2, valid_until = $3, note = $4, lines = $5, net = $6, tax = $7, gross = $8,
                    version = CASE WHEN state = 'sent' THEN version + 1 ELSE version END,
                    state = 'draft', sent_at = NULL, last_execution_id = $9, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(content.title)
        .bind(content.valid_until)
        .bind(content.note)
        .bind(Json(content.lines))
        .bind(content.net)
        .bind(content.tax)
        .bind(content.gross)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks the quote sent and freezes its version's content and digest.
    pub async fn send_quote(
        &mut self,
        id: QuoteId,
        version: i32,
        content: &serde_json::Value,
        sha256: &str,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO quote_versions (quote_id, version, content, sha256) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(version)
            .bind(content)
            .bind(sha256)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "UPDATE quotes SET state = 'sent', sent_at = now(), last_execution_id = $2, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records the client's decision (`accepted` or `declined`).
    pub async fn decide_quote(
        &mut self,
        id: QuoteId,
        state: &str,
        by: &Decider,
        digest: &str,
        reason: Option<&str>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE quotes SET state = $2, decided_at = now(), decided_by = $3, decided_digest = $4,
                    decline_reason = $5, last_execution_id = $6, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(Json(by))
        .bind(digest)
        .bind(reason)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn convert_quote(
        &mut self,
        id: QuoteId,
        invoice: InvoiceId,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE quotes SET state = 'converted', invoice_id = $2, last_execution_id = $3, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(invoice)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn convert_quote_to_contract(
        &mut self,
        id: QuoteId,
        contract: ContractId,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE quotes SET state = 'converted', contract_id = $2, last_execution_id = $3, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(contract)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
