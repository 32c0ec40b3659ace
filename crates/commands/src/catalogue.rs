//! What prices the work (configuration: written directly, each write
//! recorded with its signed credential by the caller): the rules of a work
//! type, a label, a price and a live tax rate, checked here once for the API
//! and the Console's pages alike.

use anchor_domain::{UnitCode, WorkType};
use anchor_store::{
    StoreError, WorkspaceTx,
    contracts::{CatalogueItem, Rate, RateCard, StaffRateRole, WorkTypeDef},
};
use rust_decimal::Decimal;

/// What is wrong with a configuration write, and where (a JSON pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigInvalid {
    /// The problem's code: `invalid_work_type`, ...
    pub code: &'static str,
    pub path: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {}", .0.path, .0.message)]
    Invalid(ConfigInvalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConfigInvalid> for ConfigError {
    fn from(invalid: ConfigInvalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// The code of a refused work type.
pub const INVALID_WORK_TYPE: &str = "invalid_work_type";

/// A person's label: trimmed, 1 to `max` characters, no control characters.
pub fn label(code: &'static str, path: &'static str, text: &str, max: usize) -> Result<String, ConfigInvalid> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        Err(ConfigInvalid { code, path, message: format!("1 to {max} characters, no control characters") })
    } else {
        Ok(text.to_owned())
    }
}

/// Money per unit: at least 0, at most `dp` decimals, below a trillion.
pub fn price(code: &'static str, path: &'static str, value: Decimal, dp: u32) -> Result<Decimal, ConfigInvalid> {
    if value < Decimal::ZERO || value.normalize().scale() > dp || value >= Decimal::from(1_000_000_000_000i64) {
        Err(ConfigInvalid {
            code,
            path,
            message: format!("{value} is not an amount of 0 or more with at most {dp} decimals"),
        })
    } else {
        Ok(value)
    }
}

/// `tax` names a tax rate of the workspace that is not archived.
pub async fn live_tax(tx: &mut WorkspaceTx, code: &'static str, tax: &str) -> Result<(), ConfigError> {
    match tx.tax_rate(tax).await? {
        Some(rate) if !rate.archived => Ok(()),
        _ => Err(ConfigInvalid {
            code,
            path: "/tax",
            message: format!("no tax rate {tax:?} in this workspace (or it is archived)"),
        }
        .into()),
    }
}

/// A work type as given, checked: a name of 1 to 100 characters, an hourly
/// rate of 0 or more with at most two decimals. (Its tax rate is checked in
/// the workspace with [`live_tax`].)
pub fn work_type(
    key: WorkType,
    name: &str,
    billable: bool,
    hourly_rate: Decimal,
    tax: String,
    archived: bool,
) -> Result<WorkTypeDef, ConfigInvalid> {
    Ok(WorkTypeDef {
        key,
        name: label(INVALID_WORK_TYPE, "/name", name, 100)?,
        billable,
        hourly_rate: price(INVALID_WORK_TYPE, "/hourly_rate", hourly_rate, 2)?,
        tax,
        archived,
    })
}

/// The code of a refused rate card.
pub const INVALID_RATE_CARD: &str = "invalid_rate_card";

/// Whether `text` is a key: 1 to `max` of a-z, 0-9 and _, starting with a letter.
pub fn is_key(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text.as_bytes()[0].is_ascii_lowercase()
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Rates as a rate card or a contract gives them: at most 200, each an
/// amount with at most two decimals, a role that is a key, no work type and
/// role given twice.
pub fn rates(code: &'static str, path: &'static str, rates: &[Rate]) -> Result<(), ConfigInvalid> {
    let invalid = |message: String| ConfigInvalid { code, path, message };
    if rates.len() > 200 {
        return Err(invalid("at most 200 rates".to_owned()));
    }
    for (i, rate) in rates.iter().enumerate() {
        price(code, path, rate.hourly_rate, 2)?;
        if let Some(role) = &rate.role
            && !is_key(role, 40)
        {
            return Err(invalid(format!("rate {}: role {role:?} is not a key", i + 1)));
        }
        if rates[..i].iter().any(|r| r.work_type == rate.work_type && r.role == rate.role) {
            let whom = rate.role.as_deref().map_or_else(|| "every role".to_owned(), |r| format!("role {r}"));
            return Err(invalid(format!("rate {}: {} for {whom} is given twice", i + 1, rate.work_type)));
        }
    }
    Ok(())
}

/// A rate card as given, checked: a name of 1 to 100 characters and its rates.
pub fn rate_card(key: String, name: &str, rates: Vec<Rate>) -> Result<RateCard, ConfigInvalid> {
    self::rates(INVALID_RATE_CARD, "/rates", &rates)?;
    Ok(RateCard { key, name: label(INVALID_RATE_CARD, "/name", name, 100)?, rates })
}

/// The code of a refused catalogue item.
pub const INVALID_CATALOGUE_ITEM: &str = "invalid_catalogue_item";

/// A service or product as given, checked: its kind, a name of 1 to 200
/// characters, a price with at most four decimals. (Its tax rate is checked
/// in the workspace with [`live_tax`].)
pub fn catalogue_item(
    key: String,
    kind: String,
    name: &str,
    unit_code: UnitCode,
    unit_price: Decimal,
    tax: String,
    archived: bool,
) -> Result<CatalogueItem, ConfigInvalid> {
    if !matches!(kind.as_str(), "service" | "product") {
        return Err(ConfigInvalid {
            code: INVALID_CATALOGUE_ITEM,
            path: "/kind",
            message: "`service` or `product`".to_owned(),
        });
    }
    Ok(CatalogueItem {
        key,
        kind,
        name: label(INVALID_CATALOGUE_ITEM, "/name", name, 200)?,
        unit_code,
        unit_price: price(INVALID_CATALOGUE_ITEM, "/unit_price", unit_price, 4)?,
        tax,
        archived,
    })
}

/// The code of a refused staff rate role.
pub const INVALID_STAFF_RATE: &str = "invalid_staff_rate";

/// A member of staff's rate role as given, checked: who (issuer and
/// subject) and a role that is a key of 1 to 40 characters.
pub fn staff_rate(issuer: &str, subject: &str, role: String) -> Result<StaffRateRole, ConfigInvalid> {
    let staff = StaffRateRole {
        issuer: label(INVALID_STAFF_RATE, "/issuer", issuer, 500)?,
        subject: label(INVALID_STAFF_RATE, "/subject", subject, 500)?,
        role,
    };
    if !is_key(&staff.role, 40) {
        return Err(ConfigInvalid {
            code: INVALID_STAFF_RATE,
            path: "/role",
            message: "1 to 40 of a-z, 0-9 and _".to_owned(),
        });
    }
    Ok(staff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_prices_name_what_is_wrong() {
        assert_eq!(label("c", "/name", "  Remote support ", 100).as_deref(), Ok("Remote support"));
        assert!(label("c", "/name", " ", 100).is_err());
        assert!(label("c", "/name", "a\u{7}b", 100).is_err());
        assert!(label("c", "/name", &"x".repeat(101), 100).is_err());
        assert_eq!(price("c", "/p", Decimal::new(9500, 2), 2), Ok(Decimal::new(9500, 2)));
        assert_eq!(price("c", "/p", Decimal::new(95001, 3), 2).map_err(|e| e.path), Err("/p"));
        assert!(price("c", "/p", Decimal::new(-1, 0), 2).is_err());
        assert!(price("c", "/p", Decimal::from(1_000_000_000_000i64), 2).is_err());
    }

    #[test]
    fn a_rate_card_names_each_work_type_and_role_once() {
        let rate = |work_type: &str, role: Option<&str>, amount: i64| Rate {
            work_type: WorkType::parse(work_type).expect("work type"),
            role: role.map(str::to_owned),
            hourly_rate: Decimal::new(amount, 2),
        };
        let card = rate_card(
            "std".into(),
            "Standard",
            vec![rate("remote", None, 9500), rate("remote", Some("senior"), 15000)],
        );
        assert_eq!(card.map(|c| c.rates.len()), Ok(2));
        let twice = rate_card("std".into(), "Standard", vec![rate("remote", None, 9500), rate("remote", None, 9000)]);
        assert!(twice.is_err_and(|e| e.message.contains("twice")));
        let bad_role = rate_card("std".into(), "Standard", vec![rate("remote", Some("Senior!"), 9500)]);
        assert!(bad_role.is_err_and(|e| e.message.contains("not a key")));
        assert!(rate_card("std".into(), " ", Vec::new()).is_err());
    }
}
