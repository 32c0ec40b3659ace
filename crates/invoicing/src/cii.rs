//! The EN 16931 export of a finalized document in UN/CEFACT Cross Industry
//! Invoice syntax (D16B, as Factur-X and ZUGFeRD use it), at the EN 16931
//! profile (`urn:cen.eu:en16931:2017`). Elements follow the schema's order;
//! amounts are the stored ones, printed with the currency's decimals.

use std::fmt::Write;

use anchor_domain::Party;
use anchor_store::invoices::Invoice;
use rust_decimal::Decimal;
use time::Date;

use crate::{NotFinalized, fixed};

/// The guideline (BT-24) of the EN 16931 profile.
pub const GUIDELINE: &str = "urn:cen.eu:en16931:2017";

/// The CII XML of a finalized `invoice` (or credit note).
pub fn export(invoice: &Invoice) -> Result<String, NotFinalized> {
    let fixed = fixed(invoice)?;
    let currency = invoice.currency;
    let amount = |d: Decimal| currency.round(d).to_string();
    let mut x = String::with_capacity(4096 + invoice.lines.len() * 1200);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
"#);
    let _ = writeln!(
        x,
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{GUIDELINE}</ram:ID>\
         </ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>"
    );
    let _ = write!(
        x,
        "<rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{}</ram:TypeCode>{}",
        esc(fixed.number),
        invoice.kind.type_code(),
        date_element("ram:IssueDateTime", fixed.issued_on)
    );
    if let Some(note) = &invoice.note {
        let _ = write!(x, "<ram:IncludedNote><ram:Content>{}</ram:Content></ram:IncludedNote>", esc(note.as_str()));
    }
    x.push_str("</rsm:ExchangedDocument>\n<rsm:SupplyChainTradeTransaction>\n");

    for line in &invoice.lines {
        let net_price = line.unit_price * (Decimal::ONE_HUNDRED - line.discount_percent) / Decimal::ONE_HUNDRED;
        let _ = write!(
            x,
            "<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID>\
             </ram:AssociatedDocumentLineDocument><ram:SpecifiedTradeProduct><ram:Name>{}</ram:Name>\
             </ram:SpecifiedTradeProduct><ram:SpecifiedLineTradeAgreement>",
            line.position,
            esc(line.description.as_str())
        );
        if !line.discount_percent.is_zero() {
            // The discount is a price discount (BT-147): gross price minus it
            // is the net price the line total is computed from.
            let _ = write!(
                x,
                "<ram:GrossPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount>\
                 <ram:AppliedTradeAllowanceCharge><ram:ChargeIndicator><udt:Indicator>false</udt:Indicator>\
                 </ram:ChargeIndicator><ram:ActualAmount>{}</ram:ActualAmount></ram:AppliedTradeAllowanceCharge>\
                 </ram:GrossPriceProductTradePrice>",
                plain(line.unit_price),
                plain(line.unit_price - net_price)
            );
        }
        let _ = writeln!(
            x,
            "<ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount></ram:NetPriceProductTradePrice>\
             </ram:SpecifiedLineTradeAgreement><ram:SpecifiedLineTradeDelivery>\
             <ram:BilledQuantity unitCode=\"{}\">{}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>\
             <ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode>\
             <ram:CategoryCode>{}</ram:CategoryCode><ram:RateApplicablePercent>{}</ram:RateApplicablePercent>\
             </ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation>\
             <ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>\
             </ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>",
            plain(net_price),
            esc(line.unit_code.as_str()),
            plain(line.quantity),
            line.tax_category,
            plain(line.tax_rate),
            amount(line.net)
        );
    }

    x.push_str("<ram:ApplicableHeaderTradeAgreement>");
    if let Some(po) = &invoice.purchase_order {
        let _ = write!(x, "<ram:BuyerReference>{}</ram:BuyerReference>", esc(po.as_str()));
    }
    trade_party(&mut x, "ram:SellerTradeParty", fixed.seller);
    trade_party(&mut x, "ram:BuyerTradeParty", fixed.buyer);
    if let Some(po) = &invoice.purchase_order {
        let _ = write!(
            x,
            "<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\
             </ram:BuyerOrderReferencedDocument>",
            esc(po.as_str())
        );
    }
    x.push_str("</ram:ApplicableHeaderTradeAgreement>\n<ram:ApplicableHeaderTradeDelivery/>\n");

    let _ = write!(
        x,
        "<ram:ApplicableHeaderTradeSettlement><ram:PaymentReference>{}</ram:PaymentReference>\
         <ram:InvoiceCurrencyCode>{}</ram:InvoiceCurrencyCode>",
        esc(fixed.number),
        currency.code()
    );
    if let Some(iban) = &invoice.payee_iban {
        // 58: SEPA credit transfer.
        let _ = write!(
            x,
            "<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>58</ram:TypeCode>\
             <ram:PayeePartyCreditorFinancialAccount><ram:IBANID>{}</ram:IBANID>\
             </ram:PayeePartyCreditorFinancialAccount></ram:SpecifiedTradeSettlementPaymentMeans>",
            esc(iban)
        );
    } else {
        // 1: instrument not defined.
        x.push_str("<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>1</ram:TypeCode></ram:SpecifiedTradeSettlementPaymentMeans>");
    }
    for group in &invoice.tax_groups {
        let reason = invoice
            .lines
            .iter()
            .find(|l| l.tax_category == group.category && l.tax_rate.normalize() == group.rate.normalize())
            .and_then(|l| l.exemption_reason.as_deref())
            .filter(|_| group.category.needs_exemption_reason());
        let _ = write!(
            x,
            "<ram:ApplicableTradeTax><ram:CalculatedAmount>{}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>",
            amount(group.tax)
        );
        if let Some(reason) = reason {
            let _ = write!(x, "<ram:ExemptionReason>{}</ram:ExemptionReason>", esc(reason));
        }
        let _ = write!(
            x,
            "<ram:BasisAmount>{}</ram:BasisAmount><ram:CategoryCode>{}</ram:CategoryCode>\
             <ram:RateApplicablePercent>{}</ram:RateApplicablePercent></ram:ApplicableTradeTax>",
            amount(group.taxable),
            group.category,
            plain(group.rate)
        );
    }
    let _ = write!(
        x,
        "<ram:SpecifiedTradePaymentTerms>{}</ram:SpecifiedTradePaymentTerms>",
        date_element("ram:DueDateDateTime", fixed.due_on)
    );
    let _ = write!(
        x,
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{net}</ram:LineTotalAmount>\
         <ram:TaxBasisTotalAmount>{net}</ram:TaxBasisTotalAmount>\
         <ram:TaxTotalAmount currencyID=\"{code}\">{tax}</ram:TaxTotalAmount>\
         <ram:GrandTotalAmount>{gross}</ram:GrandTotalAmount><ram:DuePayableAmount>{gross}</ram:DuePayableAmount>\
         </ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        net = amount(invoice.net),
        tax = amount(invoice.tax),
        gross = amount(invoice.gross),
        code = currency.code()
    );
    if let Some(corrected) = &invoice.corrects_number {
        let _ = write!(
            x,
            "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\
             </ram:InvoiceReferencedDocument>",
            esc(corrected)
        );
    }
    x.push_str(
        "</ram:ApplicableHeaderTradeSettlement>\n</rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n",
    );
    Ok(x)
}

fn trade_party(x: &mut String, element: &str, party: &Party) {
    let address = &party.address;
    let _ = write!(x, "<{element}><ram:Name>{}</ram:Name><ram:PostalTradeAddress>", esc(party.name.as_str()));
    if let Some(postcode) = &address.postal_code {
        let _ = write!(x, "<ram:PostcodeCode>{}</ram:PostcodeCode>", esc(postcode.as_str()));
    }
    let _ = write!(x, "<ram:LineOne>{}</ram:LineOne>", esc(address.line1.as_str()));
    if let Some(line2) = &address.line2 {
        let _ = write!(x, "<ram:LineTwo>{}</ram:LineTwo>", esc(line2.as_str()));
    }
    let _ = write!(
        x,
        "<ram:CityName>{}</ram:CityName><ram:CountryID>{}</ram:CountryID>",
        esc(address.city.as_str()),
        address.country.as_str()
    );
    if let Some(region) = &address.region {
        let _ = write!(x, "<ram:CountrySubDivisionName>{}</ram:CountrySubDivisionName>", esc(region.as_str()));
    }
    x.push_str("</ram:PostalTradeAddress>");
    if let Some(vat) = &party.vat_id {
        let _ = write!(
            x,
            "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>",
            esc(vat.as_str())
        );
    }
    let _ = write!(x, "</{element}>");
}

fn date_element(element: &str, date: Date) -> String {
    format!(
        "<{element}><udt:DateTimeString format=\"102\">{:04}{:02}{:02}</udt:DateTimeString></{element}>",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A decimal without trailing zeros.
fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Text as XML character data or attribute value.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("A&B <c> \"d\" 'e'"), "A&amp;B &lt;c&gt; &quot;d&quot; &apos;e&apos;");
        assert_eq!(esc("bell\u{7}"), "bell\u{fffd}");
    }
}
