//! Invoices and credit notes: their vocabulary and lifecycle (psa.md
//! "Invoice"). The money itself is [`crate::money`].
//!
//! ```text
//! draft -> finalized -> sent
//! ```
//! A draft's lines change freely and a draft may be discarded; finalizing
//! assigns the next number of its series, fixes the totals and renders the
//! PDF; from then on the document is immutable and is corrected only by a
//! credit note that references it. Paid and overdue are derived from
//! payments, credit notes and the due date, never stored.

use serde::{Deserialize, Serialize};

use crate::{client::Address, vocabulary::TextError};

crate::names!(
    /// An invoice, or a credit note correcting one.
    pub enum InvoiceKind {
        Invoice = "invoice",
        CreditNote = "credit_note",
    }
);

crate::names!(
    /// Where a document is in its lifecycle.
    pub enum InvoiceState {
        Draft = "draft",
        Finalized = "finalized",
        Sent = "sent",
    }
);

crate::names!(
    /// Money received from the client, or paid back to it.
    pub enum PaymentKind {
        Payment = "payment",
        Refund = "refund",
    }
);

crate::names!(
    /// How money moved.
    pub enum PaymentMethod {
        Transfer = "transfer",
        Card = "card",
        DirectDebit = "direct_debit",
        Cash = "cash",
        Cheque = "cheque",
        Other = "other",
    }
);

crate::text_type!(
    /// The payer's or bank's reference for a payment.
    PaymentReference,
    "a payment reference",
    140,
    false
);

impl InvoiceKind {
    /// UNTDID 1001: 380 commercial invoice, 381 credit note.
    pub fn type_code(self) -> &'static str {
        match self {
            Self::Invoice => "380",
            Self::CreditNote => "381",
        }
    }

    /// How people call it, capitalised: the PDF's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Invoice => "Invoice",
            Self::CreditNote => "Credit note",
        }
    }
}

crate::text_type!(
    /// What a line bills, as printed.
    LineDescription,
    "a line description",
    500,
    false
);

crate::text_type!(
    /// A purchase order number the client asked to be quoted (BT-13).
    PurchaseOrder,
    "a purchase order number",
    100,
    false
);

crate::text_type!(
    /// A note printed on the document.
    InvoiceNote,
    "a note",
    2000,
    true
);

crate::text_type!(
    /// A party's name or an address line.
    PartyLine,
    "a name or address line",
    200,
    false
);

/// A code for the unit of a quantity (UN/ECE Recommendation 20): `HUR`
/// hours, `C62` one (pieces), `MON` months, `DAY` days.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UnitCode(String);

impl UnitCode {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        if (2..=3).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(TextError {
                what: "a unit code",
                reason: format!("{raw:?} is not a UN/ECE Recommendation 20 code such as HUR, C62 or MON"),
            })
        }
    }

    pub fn one() -> Self {
        Self("C62".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A word for the common codes, for the PDF; others print as the code.
    pub fn word(&self) -> &str {
        match self.0.as_str() {
            "HUR" => "h",
            "C62" | "H87" => "pcs",
            "MON" => "months",
            "DAY" => "days",
            "ANN" => "years",
            "MIN" => "min",
            other => other,
        }
    }
}

impl<'de> Deserialize<'de> for UnitCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

crate::inline_schema!(UnitCode, {"type": "string", "pattern": "^[A-Z0-9]{2,3}$", "examples": ["HUR"]});

impl crate::vocabulary::Text for UnitCode {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.0)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::stored_as_text!(UnitCode);

/// Who bills, or who is billed: printed on the document and exported
/// (EN 16931 BG-4 seller, BG-7 buyer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The legal name.
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub name: PartyLine,
    pub address: Address,
    /// VAT identifier, with its country prefix (`DE123456789`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", regex(pattern = "^[A-Z]{2}[0-9A-Za-z+*.]{2,13}$"))]
    pub vat_id: Option<VatId>,
}

/// A VAT identifier: a country prefix and 2 to 13 characters (EN 16931
/// BT-31/BT-48).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VatId(String);

impl VatId {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let text: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let ok = text.len() >= 4
            && text.len() <= 15
            && text.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
            && text.bytes().skip(2).all(|b| b.is_ascii_alphanumeric() || b"+*.".contains(&b));
        if ok {
            Ok(Self(text))
        } else {
            Err(TextError {
                what: "a VAT identifier",
                reason: format!("{raw:?} is not a country prefix and 2-13 characters"),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for VatId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_parse_and_refuse() {
        let party: Party = serde_json::from_value(serde_json::json!({
            "name": "Acme GmbH", "address": {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin",
            "country": "DE"}, "vat_id": "DE 123 456 789"}))
        .expect("party");
        assert_eq!(party.vat_id.as_ref().map(VatId::as_str), Some("DE123456789"));
        for bad in ["", "D1234", "de123456789", "DE12345678901234"] {
            assert!(VatId::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Party>(serde_json::json!({"name": "x"})).is_err());
    }

    #[test]
    fn unit_codes_are_rec20_shaped() {
        assert_eq!(UnitCode::parse("HUR").expect("hours").word(), "h");
        for bad in ["h", "HOURS", "hu", ""] {
            assert!(UnitCode::parse(bad).is_err(), "{bad}");
        }
    }
}
