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
