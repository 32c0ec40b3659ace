//! The documents of a finalized invoice or credit note:
//!
//! - [`pdf::render`]: the PDF people read, rendered once when the document
//!   is finalized (deterministic: the same document gives the same bytes,
//!   so its SHA-256 identifies it);
//! - [`cii::export`]: the EN 16931 export in UN/CEFACT Cross Industry
//!   Invoice syntax (the Factur-X / ZUGFeRD "EN 16931" profile), which
//!   machines read;
//! - [`rules::check`]: the EN 16931 business rules that the CII schema does
//!   not check (the totals, the tax groups, the parties a category needs).
//!
//! Both documents are made from the stored [`Invoice`] with its fixed
//! totals: nothing here computes money (that is `anchor_domain::money`).

pub mod cii;
pub mod pdf;
pub mod rules;

use anchor_domain::Party;
use anchor_store::invoices::Invoice;
use time::Date;

/// What a finalized document has that a draft lacks.
#[derive(Debug, Clone, Copy)]
pub struct Fixed<'a> {
    pub number: &'a str,
    pub issued_on: Date,
    pub due_on: Date,
    pub seller: &'a Party,
    pub buyer: &'a Party,
}

/// Why a document cannot be rendered or exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invoice {0} is a draft: only a finalized document has a number, dates and parties")]
pub struct NotFinalized(pub String);

/// The finalized parts of `invoice`.
pub fn fixed(invoice: &Invoice) -> Result<Fixed<'_>, NotFinalized> {
    match (&invoice.number, invoice.issued_on, invoice.due_on, &invoice.seller, &invoice.buyer) {
        (Some(number), Some(issued_on), Some(due_on), Some(seller), Some(buyer)) => {
            Ok(Fixed { number, issued_on, due_on, seller, buyer })
        }
        _ => Err(NotFinalized(invoice.id.to_string())),
    }
}

/// `2026-03-02` as `02 Mar 2026`: unambiguous in every locale.
pub fn day(date: Date) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{:02} {} {}", date.day(), MONTHS[usize::from(u8::from(date.month())) - 1], date.year())
}

#[cfg(test)]
mod tests {
    use anchor_domain::{
        Currency, ExecutionId, InvoiceId, InvoiceKind, InvoiceState, LineDescription, Party, TaxCategory, UnitCode,
        money::{LineInput, totals},
    };
    use anchor_store::{
        executions::Actor,
        invoices::{Invoice, InvoiceLine},
    };
    use rust_decimal::Decimal;
    use time::{OffsetDateTime, macros::date};

    /// A finalized invoice of `n` lines, built as the finalizing command does.
    pub(crate) fn finalized(n: usize) -> Invoice {
        let eur = Currency::parse("EUR").expect("EUR");
        let party = |name: &str| -> Party {
            serde_json::from_value(serde_json::json!({"name": name, "vat_id": "DE123456789",
                "address": {"line1": "Hafenstraße 12", "postal_code": "20457", "city": "Hamburg", "country": "DE"}}))
            .expect("party")
        };
        let inputs: Vec<LineInput> = (0..n)
            .map(|i| LineInput {
                quantity: Decimal::from(i as i64 + 1),
                unit_price: Decimal::new(1999, 2),
                discount_percent: Decimal::ZERO,
                tax_category: TaxCategory::Standard,
                tax_rate: Decimal::from(19),
            })
            .collect();
        let t = totals(eur, &inputs);
        let lines = inputs
            .iter()
            .enumerate()
            .map(|(i, l)| InvoiceLine {
                position: i as i32 + 1,
                description: LineDescription::parse(&format!("Service {i}, Zürich office")).expect("text"),
                quantity: l.quantity,
                unit_code: UnitCode::one(),
                unit_price: l.unit_price,
                discount_percent: l.discount_percent,
                tax_key: "standard".into(),
                tax_category: l.tax_category,
                tax_rate: l.tax_rate,
                exemption_reason: None,
                net: t.lines[i],
                tax: t.line_taxes[i],
            })
            .collect();
        let at = OffsetDateTime::UNIX_EPOCH;
        Invoice {
            id: InvoiceId::new(),
            kind: InvoiceKind::Invoice,
            state: InvoiceState::Finalized,
            currency: eur,
            corrects: None,
            corrects_number: None,
            contract_id: None,
            period_start: None,
            period_end: None,
            purchase_order: None,
            note: None,
            number: Some("INV-000007".into()),
            issued_on: Some(date!(2026 - 03 - 02)),
            due_on: Some(date!(2026 - 04 - 01)),
            seller: Some(party("Harbour IT")),
            buyer: Some(party("Acme")),
            payee_iban: None,
            net: t.net,
            tax: t.tax,
            gross: t.gross,
            tax_groups: t.groups,
            credited: Decimal::ZERO,
            paid: Decimal::ZERO,
            balance: Some(t.gross),
            days_overdue: None,
            pdf_sha256: None,
            finalized_at: Some(at),
            finalized_by: Some(Actor { issuer: "dev".into(), subject: "fay".into() }),
            sent_at: None,
            lines,
            execution_id: ExecutionId::new(),
            last_execution_id: ExecutionId::new(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_same_document_renders_to_the_same_bytes() {
        let invoice = finalized(7);
        let first = crate::pdf::render(&invoice).expect("pdf");
        let mut other_ids = invoice.clone();
        other_ids.execution_id = ExecutionId::new();
        assert_eq!(first, crate::pdf::render(&other_ids).expect("pdf"), "nothing but the document is printed");
        assert!(first.starts_with(b"%PDF-"));
        let mut changed = invoice.clone();
        changed.number = Some("INV-000008".into());
        assert_ne!(first, crate::pdf::render(&changed).expect("pdf"));
    }

    #[test]
    fn a_finalized_document_keeps_the_rules_and_a_broken_one_is_named() {
        let invoice = finalized(5);
        let fixed = crate::fixed(&invoice).expect("finalized");
        assert_eq!(crate::rules::check(&invoice, &fixed), vec![]);
        let mut wrong = invoice.clone();
        wrong.tax += Decimal::new(1, 2);
        wrong.gross += Decimal::new(1, 2);
        let rules: Vec<&str> = crate::rules::check(&wrong, &fixed).iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["BR-CO-14"], "a cent of tax that no group has");
        let mut group_off = invoice.clone();
        group_off.tax_groups[0].tax += Decimal::new(1, 2);
        let rules: Vec<&str> = crate::rules::check(&group_off, &fixed).iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["BR-CO-14", "BR-CO-17"], "a group's tax is its base times its rate, once");
        let mut no_vat = invoice.clone();
        no_vat.seller.as_mut().expect("seller").vat_id = None;
        let fixed = crate::fixed(&no_vat).expect("finalized");
        let rules: Vec<&str> = crate::rules::check(&no_vat, &fixed).iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["BR-S-02"]);
        let draft = Invoice { number: None, ..invoice };
        assert!(
            crate::pdf::render(&draft).is_err() && crate::cii::export(&draft).is_err(),
            "a draft is neither rendered nor exported"
        );
    }
}
