//! A workspace's billing configuration (profile, tax rates) and its
//! invoices and credit notes. Configuration is written by the API with a
//! change record; documents only by the invoice skills, inside the unit of
//! work that records the command's effect. Amounts are computed by
//! `anchor_domain::money` and stored as computed; the balance and overdue
//! days are derived when read.

use anchor_domain::{
    ContractId, Currency, ExecutionId, InvoiceId, InvoiceKind, InvoiceNote, InvoiceState, LineDescription, Party,
    PaymentId, PaymentKind, PaymentMethod, PaymentReference, PurchaseOrder, TaxCategory, UnitCode, money::TaxGroup,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use time::{Date, OffsetDateTime};

use crate::{StoreError, WorkspaceTx, executions::Actor, time_entries::iso_date};

/// How this client is billed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingProfile {
    /// ISO 4217, e.g. `EUR`: every document of this client is in it.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    /// Days from the issue date to the due date (0 to 365).
    #[schema(minimum = 0, maximum = 365, example = 30)]
    #[schemars(range(min = 0, max = 365))]
    pub payment_terms_days: i32,
    /// Invoice numbers are this prefix and six digits: `INV-000042`.
    #[schema(pattern = "^[A-Z0-9][A-Z0-9/-]{0,15}$", example = "INV-")]
    #[schemars(regex(pattern = "^[A-Z0-9][A-Z0-9/-]{0,15}$"))]
    pub invoice_prefix: String,
    /// The same for credit notes; differs from the invoices' prefix.
    #[schema(pattern = "^[A-Z0-9][A-Z0-9/-]{0,15}$", example = "CN-")]
    #[schemars(regex(pattern = "^[A-Z0-9][A-Z0-9/-]{0,15}$"))]
    pub credit_note_prefix: String,
    /// The MSP's legal entity that bills this client.
    #[schema(value_type = Object)]
    pub seller: Party,
    /// This client, as billed.
    #[schema(value_type = Object)]
    pub buyer: Party,
    /// Where payments go (an IBAN, printed on the documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$")]
    #[schemars(regex(pattern = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$"))]
    pub payee_iban: Option<String>,
}

/// A tax that lines are charged at.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct TaxRate {
    pub key: String,
    pub name: String,
    /// UNTDID 5305: `S` standard, `Z` zero, `E` exempt, `AE` reverse charge, ...
    #[schema(value_type = String, example = "S")]
    pub category: TaxCategory,
    /// Percent, as a decimal string (`"19.00"`).
    #[schema(value_type = String, example = "19.00")]
    #[schemars(with = "String")]
    pub rate: Decimal,
    /// Why no tax is charged, for a category without tax.
    pub exemption_reason: Option<String>,
    /// Kept for the documents that used it; new lines cannot use it.
    pub archived: bool,
}

/// A line as stored: what it says and what the money rules made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = InvoiceLineView)]
pub struct InvoiceLine {
    pub position: i32,
    #[schema(value_type = String)]
    pub description: LineDescription,
    #[schema(value_type = String, example = "1.5")]
    #[schemars(with = "String")]
    pub quantity: Decimal,
    #[schema(value_type = String, example = "HUR")]
    pub unit_code: UnitCode,
    /// Excluding tax.
    #[schema(value_type = String, example = "95.00")]
    #[schemars(with = "String")]
    pub unit_price: Decimal,
    #[schema(value_type = String, example = "0")]
    #[schemars(with = "String")]
    pub discount_percent: Decimal,
    /// The tax rate's key, and what it was when the line was written.
    pub tax_key: String,
    #[schema(value_type = String, example = "S")]
    pub tax_category: TaxCategory,
    #[schema(value_type = String, example = "19.00")]
    #[schemars(with = "String")]
    pub tax_rate: Decimal,
    pub exemption_reason: Option<String>,
    /// `quantity x unit_price x (1 - discount)`, rounded once.
    #[schema(value_type = String, example = "142.50")]
    #[schemars(with = "String")]
    pub net: Decimal,
    /// The line's share of its tax group's tax (largest remainder).
    #[schema(value_type = String, example = "27.08")]
    #[schemars(with = "String")]
    pub tax: Decimal,
}

/// An invoice or a credit note, with its lines and what is still owed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = InvoiceView)]
pub struct Invoice {
    #[schema(value_type = String, example = "inv_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: InvoiceId,
    /// `invoice` or `credit_note`.
    #[schema(value_type = String, example = "invoice")]
    pub kind: InvoiceKind,
    /// `draft`, `finalized` or `sent`.
    #[schema(value_type = String, example = "draft")]
    pub state: InvoiceState,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    /// For a credit note: the invoice it corrects.
    #[schema(value_type = Option<String>)]
    pub corrects: Option<InvoiceId>,
    /// For a credit note: the number of the invoice it corrects.
    pub corrects_number: Option<String>,
    #[schema(value_type = Option<String>)]
    pub purchase_order: Option<PurchaseOrder>,
    #[schema(value_type = Option<String>)]
    pub note: Option<InvoiceNote>,
    /// Set when finalized: the next of its series, e.g. `INV-000042`.
    pub number: Option<String>,
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    #[schemars(with = "Option<String>")]
    pub issued_on: Option<Date>,
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    #[schemars(with = "Option<String>")]
    pub due_on: Option<Date>,
    /// The parties as printed (set when finalized).
    #[sqlx(json(nullable))]
    #[schema(value_type = Option<Object>)]
    pub seller: Option<Party>,
    #[sqlx(json(nullable))]
    #[schema(value_type = Option<Object>)]
    pub buyer: Option<Party>,
    pub payee_iban: Option<String>,
    /// Sum of the lines' net amounts.
    #[schema(value_type = String, example = "142.50")]
    #[schemars(with = "String")]
    pub net: Decimal,
    /// Sum of the tax groups' tax.
    #[schema(value_type = String, example = "27.08")]
    #[schemars(with = "String")]
    pub tax: Decimal,
    /// `net + tax`.
    #[schema(value_type = String, example = "169.58")]
    #[schemars(with = "String")]
    pub gross: Decimal,
    /// By tax category and rate: taxable amount and tax (EN 16931 BG-23).
    #[sqlx(json)]
    #[schema(value_type = Vec<Object>)]
    #[schemars(with = "Vec<Value>")]
    pub tax_groups: Vec<TaxGroup>,
    /// For an invoice: finalized credit notes correcting it, in total.
    #[schema(value_type = String, example = "0.00")]
    #[schemars(with = "String")]
    pub credited: Decimal,
    /// For an invoice: payments allocated to it, in total.
    #[schema(value_type = String, example = "0.00")]
    #[schemars(with = "String")]
    pub paid: Decimal,
    /// For a finalized invoice: what is still owed (`gross - credited -
    /// paid`); below zero when a credit note came after it was paid.
    #[schema(value_type = Option<String>, example = "169.58")]
    #[schemars(with = "Option<String>")]
    pub balance: Option<Decimal>,
    /// Days past the due date while a balance is owed.
    pub days_overdue: Option<i32>,
    /// SHA-256 of the PDF as rendered when finalized.
    pub pdf_sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub finalized_at: Option<OffsetDateTime>,
    #[sqlx(json(nullable))]
    pub finalized_by: Option<Actor>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub sent_at: Option<OffsetDateTime>,
    #[sqlx(json)]
    pub lines: Vec<InvoiceLine>,
    /// Made by a billing run: the contract it charges (none for time
    /// outside contracts) and the period.
    #[schema(value_type = Option<String>)]
    pub contract_id: Option<ContractId>,
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    #[schemars(with = "Option<String>")]
    pub period_start: Option<Date>,
    #[serde(with = "iso_date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    #[schemars(with = "Option<String>")]
    pub period_end: Option<Date>,
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

impl Invoice {
    /// Every amount written with the currency's decimals (`0.00`, not the
    /// `0` a zero numeric decodes to).
    fn in_minor_units(mut self) -> Self {
        let c = self.currency;
        for amount in [&mut self.net, &mut self.tax, &mut self.gross, &mut self.credited, &mut self.paid] {
            *amount = c.round(*amount);
        }
        self.balance = self.balance.map(|b| c.round(b));
        self
    }
}

/// Which documents to list.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub kind: Option<InvoiceKind>,
    pub state: Option<InvoiceState>,
    /// Only finalized invoices with a balance past their due date.
    pub overdue: bool,
    /// Only finalized (or sent) documents.
    pub issued: bool,
}

/// The document's columns with its lines, credits and balance, derived.
const COLUMNS: &str = "i.id, i.kind, i.state, i.currency, i.corrects,
    (SELECT c.number FROM invoices c WHERE c.id = i.corrects) AS corrects_number,
    i.purchase_order, i.note, i.number, i.issued_on, i.due_on, i.seller, i.buyer, i.payee_iban,
    coalesce(i.net, l.net) AS net, coalesce(i.tax, l.tax) AS tax, coalesce(i.gross, l.net + l.tax) AS gross,
    coalesce(i.tax_groups, '[]') AS tax_groups, cr.credited, pd.paid,
    CASE WHEN i.kind = 'invoice' AND i.state <> 'draft' THEN i.gross - cr.credited - pd.paid END AS balance,
    CASE WHEN i.kind = 'invoice' AND i.state <> 'draft' AND i.gross - cr.credited - pd.paid > 0
              AND i.due_on < current_date
         THEN current_date - i.due_on END AS days_overdue,
    i.pdf_sha256, i.finalized_at, i.finalized_by, i.sent_at, l.lines, i.contract_id, i.period_start,
    i.period_end, i.execution_id, i.last_execution_id,
    i.created_at, i.updated_at
    FROM invoices i
    CROSS JOIN LATERAL (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'position', x.position, 'description', x.description, 'quantity', x.quantity::text,
                   'unit_code', x.unit_code, 'unit_price', x.unit_price::text,
                   'discount_percent', x.discount_percent::text, 'tax_key', x.tax_key,
                   'tax_category', x.tax_category, 'tax_rate', x.tax_rate::text,
                   'exemption_reason', x.exemption_reason, 'net', x.net::text, 'tax', x.tax::text)
                   ORDER BY x.position), '[]') AS lines,
               coalesce(sum(x.net), 0)::numeric(18, 2) AS net, coalesce(sum(x.tax), 0)::numeric(18, 2) AS tax
          FROM invoice_lines x WHERE x.invoice_id = i.id) l
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(c.gross), 0)::numeric(18, 2) AS credited
          FROM invoices c WHERE c.corrects = i.id AND c.state <> 'draft') cr
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(a.amount), 0)::numeric(18, 2) AS paid
          FROM payment_allocations a WHERE a.invoice_id = i.id) pd";

/// A line to store, as the money rules computed it.
#[derive(Debug, Clone)]
pub struct NewLine<'a> {
    pub description: &'a LineDescription,
    pub quantity: Decimal,
    pub unit_code: &'a UnitCode,
    pub unit_price: Decimal,
    pub discount_percent: Decimal,
    pub tax: &'a TaxRate,
    pub net: Decimal,
    pub tax_share: Decimal,
}

/// What finalizing fixes on a document.
#[derive(Debug)]
pub struct Finalized<'a> {
    pub sequence: i64,
    pub number: &'a str,
    pub issued_on: Date,
    pub due_on: Date,
    pub profile: &'a BillingProfile,
    pub net: Decimal,
    pub tax: Decimal,
    pub gross: Decimal,
    pub tax_groups: &'a [TaxGroup],
    pub pdf: &'a [u8],
    pub pdf_sha256: &'a str,
}

impl WorkspaceTx {
    pub async fn billing_profile(&mut self) -> Result<Option<BillingProfile>, StoreError> {
        let row: Option<Json<BillingProfile>> =
            sqlx::query_scalar("SELECT to_jsonb(p) - 'only_row' - 'updated_at' FROM billing_profile p")
                .fetch_optional(self.conn())
                .await?;
        Ok(row.map(|Json(profile)| profile))
    }

    /// Saves the profile; whether it was created.
    pub async fn save_billing_profile(&mut self, profile: &BillingProfile) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO billing_profile (currency, payment_terms_days, invoice_prefix, credit_note_prefix, seller, buyer,
                                          payee_iban)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (only_row) DO UPDATE
                SET currency = EXCLUDED.currency, payment_terms_days = EXCLUDED.payment_terms_days,
                    invoice_prefix = EXCLUDED.invoice_prefix, credit_note_prefix = EXCLUDED.credit_note_prefix,
                    seller = EXCLUDED.seller, buyer = EXCLUDED.buyer, payee_iban = EXCLUDED.payee_iban,
                    updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(profile.currency)
        .bind(profile.payment_terms_days)
        .bind(&profile.invoice_prefix)
        .bind(&profile.credit_note_prefix)
        .bind(Json(&profile.seller))
        .bind(Json(&profile.buyer))
        .bind(&profile.payee_iban)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn tax_rates(&mut self) -> Result<Vec<TaxRate>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, name, category, rate, exemption_reason, archived FROM tax_rates ORDER BY archived, key",
        )
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn tax_rate(&mut self, key: &str) -> Result<Option<TaxRate>, StoreError> {
        Ok(sqlx::query_as("SELECT key, name, category, rate, exemption_reason, archived FROM tax_rates WHERE key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Saves a rate under its key; whether it was created.
    pub async fn save_tax_rate(&mut self, rate: &TaxRate) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO tax_rates (key, name, category, rate, exemption_reason, archived) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (key) DO UPDATE
                SET name = EXCLUDED.name, category = EXCLUDED.category, rate = EXCLUDED.rate,
                    exemption_reason = EXCLUDED.exemption_reason, archived = EXCLUDED.archived, updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(&rate.key)
        .bind(&rate.name)
        .bind(rate.category)
        .bind(rate.rate)
        .bind(&rate.exemption_reason)
        .bind(rate.archived)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        let found: Option<Invoice> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} WHERE i.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        Ok(found.map(Invoice::in_minor_units))
    }

    /// The document, locked until this unit of work ends.
    pub async fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        let found: Option<InvoiceId> = sqlx::query_scalar("SELECT id FROM invoices WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        match found {
            Some(id) => self.invoice(id).await,
            None => Ok(None),
        }
    }

    /// Newest first, after the cursor `before`.
    pub async fn invoices(
        &mut self,
        filter: &InvoiceFilter,
        before: Option<InvoiceId>,
        limit: i64,
    ) -> Result<Vec<Invoice>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}
              WHERE ($1::text IS NULL OR i.id < $1) AND ($2::text IS NULL OR i.kind = $2)
                AND ($3::text IS NULL OR i.state = $3)
                AND (NOT $4 OR (i.kind = 'invoice' AND i.state <> 'draft' AND i.due_on < current_date
                                AND i.gross - cr.credited - pd.paid > 0))
                AND (NOT $6 OR i.state <> 'draft')
              ORDER BY i.id DESC LIMIT $5"
        )))
        .bind(before)
        .bind(filter.kind)
        .bind(filter.state)
        .bind(filter.overdue)
        .bind(limit)
        .bind(filter.issued)
        .fetch_all(self.conn())
        .await?
        .into_iter()
        .map(Invoice::in_minor_units)
        .collect())
    }

    /// A new draft.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_invoice(
        &mut self,
        id: InvoiceId,
        kind: InvoiceKind,
        currency: Currency,
        corrects: Option<InvoiceId>,
        purchase_order: Option<&PurchaseOrder>,
        note: Option<&InvoiceNote>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invoices (id, kind, currency, corrects, purchase_order, note, execution_id, last_execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id)
        .bind(kind)
        .bind(currency)
        .bind(corrects)
        .bind(purchase_order)
        .bind(note)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Sets a draft's purchase order and note.
    pub async fn set_invoice_header(
        &mut self,
        id: InvoiceId,
        purchase_order: Option<&PurchaseOrder>,
        note: Option<&InvoiceNote>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE invoices SET purchase_order = $2, note = $3, last_execution_id = $4, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(purchase_order)
        .bind(note)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Replaces a draft's lines (numbered from 1 in the order given).
    pub async fn replace_invoice_lines(&mut self, id: InvoiceId, lines: &[NewLine<'_>]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM invoice_lines WHERE invoice_id = $1").bind(id).execute(self.conn()).await?;
        let positions: Vec<i32> = (1..=lines.len() as i32).collect();
        let descriptions: Vec<&str> = lines.iter().map(|l| l.description.as_str()).collect();
        let quantities: Vec<Decimal> = lines.iter().map(|l| l.quantity).collect();
        let units: Vec<&str> = lines.iter().map(|l| l.unit_code.as_str()).collect();
        let prices: Vec<Decimal> = lines.iter().map(|l| l.unit_price).collect();
        let discounts: Vec<Decimal> = lines.iter().map(|l| l.discount_percent).collect();
        let keys: Vec<&str> = lines.iter().map(|l| l.tax.key.as_str()).collect();
        let categories: Vec<&str> = lines.iter().map(|l| l.tax.category.as_str()).collect();
        let rates: Vec<Decimal> = lines.iter().map(|l| l.tax.rate).collect();
        let reasons: Vec<Option<&str>> = lines.iter().map(|l| l.tax.exemption_reason.as_deref()).collect();
        let nets: Vec<Decimal> = lines.iter().map(|l| l.net).collect();
        let taxes: Vec<Decimal> = lines.iter().map(|l| l.tax_share).collect();
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_code, unit_price,
                                        discount_percent, tax_key, tax_category, tax_rate, exemption_reason, net, tax)
             SELECT $1, * FROM unnest($2::int[], $3::text[], $4::numeric[], $5::text[], $6::numeric[], $7::numeric[],
                                      $8::text[], $9::text[], $10::numeric[], $11::text[], $12::numeric[],
                                      $13::numeric[])",
        )
        .bind(id)
        .bind(positions)
        .bind(descriptions)
        .bind(quantities)
        .bind(units)
        .bind(prices)
        .bind(discounts)
        .bind(keys)
        .bind(categories)
        .bind(rates)
        .bind(reasons)
        .bind(nets)
        .bind(taxes)
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE invoices SET updated_at = now() WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(())
    }

    /// Deletes a draft (which has no number, so leaves no gap).
    /// Its time entries return to approved (to be billed again), and the
    /// contract charges and block hours it made go with it.
    pub async fn delete_draft_invoice(&mut self, id: InvoiceId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE time_entries SET state = 'approved', invoice_id = NULL, invoice_line = NULL, updated_at = now()
              WHERE invoice_id = $1",
        )
        .bind(id)
        .execute(self.conn())
        .await?;
        // A quote converted to this draft may be converted again.
        sqlx::query(
            "UPDATE quotes SET state = 'accepted', invoice_id = NULL, updated_at = now()
              WHERE invoice_id = $1 AND state = 'converted'",
        )
        .bind(id)
        .execute(self.conn())
        .await?;
        sqlx::query("DELETE FROM invoices WHERE id = $1 AND state = 'draft'").bind(id).execute(self.conn()).await?;
        Ok(())
    }

    /// Takes the next number of `kind`'s series. The series' row stays locked
    /// until this unit of work ends: a rollback gives the number back, and
    /// concurrent finalizations are numbered in the order they commit.
    pub async fn take_document_number(&mut self, kind: InvoiceKind) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE document_series SET next_number = next_number + 1 WHERE kind = $1 RETURNING next_number - 1",
        )
        .bind(kind)
        .fetch_one(self.conn())
        .await?)
    }

    /// Finalizes a draft the caller locked and checked: number, dates,
    /// parties, totals and the PDF, all at once.
    pub async fn finalize_invoice(
        &mut self,
        id: InvoiceId,
        done: &Finalized<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE invoices
                SET state = 'finalized', sequence = $2, number = $3, issued_on = $4, due_on = $5, seller = $6,
                    buyer = $7, payee_iban = $8, net = $9, tax = $10, gross = $11, tax_groups = $12,
                    pdf_sha256 = $13, finalized_at = clock_timestamp(), finalized_by = $14, last_execution_id = $15,
                    updated_at = now()
              WHERE id = $1 AND state = 'draft'",
        )
        .bind(id)
        .bind(done.sequence)
        .bind(done.number)
        .bind(done.issued_on)
        .bind(done.due_on)
        .bind(Json(&done.profile.seller))
        .bind(Json(&done.profile.buyer))
        .bind(&done.profile.payee_iban)
        .bind(done.net)
        .bind(done.tax)
        .bind(done.gross)
        .bind(Json(done.tax_groups))
        .bind(done.pdf_sha256)
        .bind(Json(actor))
        .bind(execution)
        .execute(self.conn())
        .await?;
        sqlx::query("INSERT INTO invoice_documents (invoice_id, pdf, sha256) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(done.pdf)
            .bind(done.pdf_sha256)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Marks a finalized document sent.
    pub async fn mark_invoice_sent(&mut self, id: InvoiceId, execution: ExecutionId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE invoices SET state = 'sent', sent_at = now(), last_execution_id = $2, updated_at = now()
              WHERE id = $1 AND state = 'finalized'",
        )
        .bind(id)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The PDF of a finalized document, as rendered, with its SHA-256.
    pub async fn invoice_pdf(&mut self, id: InvoiceId) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT pdf, sha256 FROM invoice_documents WHERE invoice_id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }
}

/// Money received from the client (a payment) or paid back (a refund).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = PaymentView)]
pub struct Payment {
    #[schema(value_type = String, example = "pay_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: PaymentId,
    /// `payment` or `refund`.
    #[schema(value_type = String, example = "payment")]
    pub kind: PaymentKind,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    #[schema(value_type = String, example = "150.00")]
    #[schemars(with = "String")]
    pub amount: Decimal,
    /// The day the money arrived (or left, for a refund).
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    #[schemars(with = "String")]
    pub received_on: Date,
    /// `transfer`, `card`, `direct_debit`, `cash`, `cheque` or `other`.
    #[schema(value_type = String, example = "transfer")]
    pub method: PaymentMethod,
    #[schema(value_type = Option<String>)]
    pub reference: Option<PaymentReference>,
    #[schema(value_type = Option<String>)]
    pub note: Option<InvoiceNote>,
    #[sqlx(json)]
    pub recorded_by: Actor,
    /// The invoices it paid, and how much of each.
    #[sqlx(json)]
    #[schema(value_type = Vec<Object>)]
    pub allocations: Vec<Allocation>,
    /// For a payment: what no invoice has taken yet.
    #[schema(value_type = String, example = "0.00")]
    #[schemars(with = "String")]
    pub unallocated: Decimal,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
}

/// A share of a payment applied to an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Allocation {
    pub invoice_id: InvoiceId,
    pub number: Option<String>,
    #[schemars(with = "String")]
    pub amount: Decimal,
}

/// Where the client stands: what was invoiced, credited, received and
/// refunded, and what follows from them.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct ClientBalance {
    #[schema(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
    /// Finalized invoices' gross, in total.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub invoiced: Decimal,
    /// Finalized credit notes' gross, in total.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub credited: Decimal,
    /// Payments received, in total.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub received: Decimal,
    /// Refunds paid back, in total.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub refunded: Decimal,
    /// Open invoice balances, in total (what the client owes on invoices; an
    /// invoice credited after it was paid owes nothing, and its excess is `credit`).
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub outstanding: Decimal,
    /// What the MSP owes the client (over-payments, credit notes after
    /// payment): `-position` when below zero, else 0. A refund pays it back.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub credit: Decimal,
    /// `invoiced - credited - received + refunded`: above zero the client
    /// owes, below zero the MSP does.
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub position: Decimal,
}

const PAYMENT_COLUMNS: &str = "p.id, p.kind, p.currency, p.amount, p.received_on, p.method, p.reference, p.note,
    p.recorded_by, al.allocations, (p.amount - al.allocated)::numeric(18, 2) AS unallocated, p.execution_id,
    p.created_at
    FROM payments p
    CROSS JOIN LATERAL (
        SELECT coalesce(jsonb_agg(jsonb_build_object('invoice_id', a.invoice_id, 'number', i.number,
                                                     'amount', a.amount::text) ORDER BY a.created_at), '[]')
                   AS allocations,
               coalesce(sum(a.amount), 0) AS allocated
          FROM payment_allocations a JOIN invoices i ON i.id = a.invoice_id WHERE a.payment_id = p.id) al";

/// A payment or refund to record.
#[derive(Debug)]
pub struct NewPayment<'a> {
    pub kind: PaymentKind,
    pub currency: Currency,
    pub amount: Decimal,
    pub received_on: Date,
    pub method: PaymentMethod,
    pub reference: Option<&'a PaymentReference>,
    pub note: Option<&'a InvoiceNote>,
}

impl Payment {
    fn in_minor_units(mut self) -> Self {
        self.amount = self.currency.round(self.amount);
        self.unallocated = self.currency.round(self.unallocated);
        for allocation in &mut self.allocations {
            allocation.amount = self.currency.round(allocation.amount);
        }
        self
    }
}

impl WorkspaceTx {
    /// Payments received and not yet applied to an invoice nor refunded:
    /// what allocations may still use.
    pub async fn unapplied_payments(&mut self) -> Result<Decimal, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce((SELECT sum(amount) FROM payments WHERE kind = 'payment'), 0)
                  - coalesce((SELECT sum(amount) FROM payment_allocations), 0)
                  - coalesce((SELECT sum(amount) FROM payments WHERE kind = 'refund'), 0)",
        )
        .fetch_one(self.conn())
        .await?)
    }

    /// Serialises the workspace's payments, allocations and refunds until
    /// this unit of work ends, so that what is left to allocate or refund is
    /// decided on figures nobody else is changing.
    pub async fn lock_ledger(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':payments'))")
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        let found: Option<Payment> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PAYMENT_COLUMNS} WHERE p.id = $1")))
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        Ok(found.map(Payment::in_minor_units))
    }

    /// Newest first, after the cursor `before`.
    pub async fn payments(&mut self, before: Option<PaymentId>, limit: i64) -> Result<Vec<Payment>, StoreError> {
        let rows: Vec<Payment> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} WHERE ($1::text IS NULL OR p.id < $1) ORDER BY p.id DESC LIMIT $2"
        )))
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        Ok(rows.into_iter().map(Payment::in_minor_units).collect())
    }

    pub async fn insert_payment(
        &mut self,
        id: PaymentId,
        payment: &NewPayment<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payments (id, kind, currency, amount, received_on, method, reference, note, recorded_by,
                                   execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(payment.kind)
        .bind(payment.currency)
        .bind(payment.amount)
        .bind(payment.received_on)
        .bind(payment.method)
        .bind(payment.reference)
        .bind(payment.note)
        .bind(Json(actor))
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn allocate_payment(
        &mut self,
        payment: PaymentId,
        invoice: InvoiceId,
        amount: Decimal,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payment_allocations (payment_id, invoice_id, amount, execution_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(payment)
        .bind(invoice)
        .bind(amount)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Where the client stands, in the billing profile's currency.
    pub async fn client_balance(&mut self) -> Result<ClientBalance, StoreError> {
        let mut balance: ClientBalance = sqlx::query_as(
            "SELECT (SELECT currency FROM billing_profile) AS currency,
                    coalesce((SELECT sum(gross) FROM invoices WHERE kind = 'invoice' AND state <> 'draft'), 0)
                        AS invoiced,
                    coalesce((SELECT sum(gross) FROM invoices WHERE kind = 'credit_note' AND state <> 'draft'), 0)
                        AS credited,
                    coalesce((SELECT sum(amount) FROM payments WHERE kind = 'payment'), 0) AS received,
                    coalesce((SELECT sum(amount) FROM payments WHERE kind = 'refund'), 0) AS refunded,
                    coalesce((SELECT sum(greatest(i.gross
                                         - coalesce((SELECT sum(c.gross) FROM invoices c
                                                      WHERE c.corrects = i.id AND c.state <> 'draft'), 0)
                                         - coalesce((SELECT sum(a.amount) FROM payment_allocations a
                                                      WHERE a.invoice_id = i.id), 0), 0))
                                FROM invoices i WHERE i.kind = 'invoice' AND i.state <> 'draft'), 0) AS outstanding,
                    0::numeric AS credit, 0::numeric AS position",
        )
        .fetch_one(self.conn())
        .await?;
        balance.position = balance.invoiced - balance.credited - balance.received + balance.refunded;
        balance.credit = (-balance.position).max(Decimal::ZERO);
        if let Some(c) = balance.currency {
            for amount in [
                &mut balance.invoiced,
                &mut balance.credited,
                &mut balance.received,
                &mut balance.refunded,
                &mut balance.outstanding,
                &mut balance.credit,
                &mut balance.position,
            ] {
                *amount = c.round(*amount);
            }
        }
        Ok(balance)
    }
}
