//! Money, and every rule that turns prices into an invoice's totals
//! (psa.md "Money: rules that keep invoices right"). Nothing else in Anchor
//! rounds or adds amounts of money: the store keeps what these functions
//! computed, the PDF and the EN 16931 export print it.
//!
//! - Amounts are [`Decimal`]s with a [`Currency`]; never floats.
//! - A line's net amount is `quantity x unit price x (1 - discount %)`,
//!   rounded once to the currency's minor unit (half away from zero, the
//!   commercial rule).
//! - Tax follows EN 16931 BR-CO-17: lines are grouped by tax category and
//!   rate, each group's taxable amount is the sum of its (rounded) lines,
//!   and its tax is computed once from that sum and rounded. Summing a
//!   tax rounded per line is the one-cent mismatch other tools ship.
//! - Document totals are sums of their parts (BR-CO-10, -13, -14, -15):
//!   nothing is computed twice in two ways.
//! - A tax shown per line is the group's tax shared out by largest
//!   remainder, so the lines always add up to the group.

use std::{borrow::Cow, cmp::Ordering, fmt};

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};

use crate::vocabulary::{Text, TextError};

/// An ISO 4217 currency whose minor unit has 0 or 2 digits (EN 16931 allows
/// at most two decimals in amounts, so the few currencies with three are
/// refused rather than rounded differently from their own rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let error = |reason: String| TextError { what: "a currency", reason };
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(error(format!("{raw:?} is not an ISO 4217 code (three capital letters, e.g. EUR)")));
        }
        let currency =
            iso_currency::Currency::from_code(raw).ok_or_else(|| error(format!("{raw:?} is not an ISO 4217 code")))?;
        match currency.exponent() {
            Some(0 | 2) => Ok(Self(currency)),
            Some(digits) => Err(error(format!(
                "{raw} has {digits} decimal digits; invoices (EN 16931) carry amounts with at most two"
            ))),
            None => Err(error(format!("{raw} is not a currency money is invoiced in"))),
        }
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in an amount: 0 or 2.
    pub fn decimals(&self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(2))
    }

    /// `amount` rounded to the minor unit (half away from zero), written
    /// with exactly that many decimals (`10` becomes `10.00`).
    pub fn round(&self, amount: Decimal) -> Decimal {
        let mut rounded = amount.round_dp_with_strategy(self.decimals(), RoundingStrategy::MidpointAwayFromZero);
        rounded.rescale(self.decimals());
        // Zero has no sign: an amount never reads `-0.00`.
        if rounded.is_zero() {
            rounded.set_sign_positive(true);
        }
        rounded
    }

    /// The smallest amount: `0.01`, or `1` for a currency without decimals.
    pub fn minor_unit(&self) -> Decimal {
        Decimal::new(1, self.decimals())
    }

    /// `amount` as people read it: `1,234.50 EUR`.
    pub fn format(&self, amount: Decimal) -> String {
        format!("{} {}", group_thousands(&self.round(amount).to_string()), self.code())
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Text for Currency {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.code())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::stored_as_text!(Currency);
crate::inline_schema!(Currency, {"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["EUR"],
    "description": "ISO 4217 currency code (0 or 2 decimal digits)"});

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::vocabulary::openapi_string(None, Some("^[A-Z]{3}$"))
    }
}

impl utoipa::ToSchema for Currency {}

/// `1234567.50` as `1,234,567.50`.
fn group_thousands(plain: &str) -> String {
    let (sign, digits) = plain.strip_prefix('-').map_or(("", plain), |rest| ("-", rest));
    let (whole, fraction) = digits.split_once('.').map_or((digits, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::with_capacity(plain.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

crate::names!(
    /// The VAT category of a line (UNTDID 5305, the codes EN 16931 allows).
    pub enum TaxCategory {
        /// Standard rate.
        Standard = "S",
        /// Zero rated goods.
        Zero = "Z",
        /// Exempt from tax.
        Exempt = "E",
        /// VAT reverse charge.
        ReverseCharge = "AE",
        /// Intra-community supply (EEA).
        IntraCommunity = "K",
        /// Export outside the EU.
        Export = "G",
        /// Services outside the scope of tax.
        OutsideScope = "O",
        /// Canary Islands general indirect tax.
        CanaryIslands = "L",
        /// Tax for production, services and importation in Ceuta and Melilla.
        CeutaMelilla = "M",
    }
);

impl TaxCategory {
    /// Whether lines of this category carry a rate above zero. Every other
    /// category's rate is 0 (EN 16931 BR-Z-5, BR-E-5, BR-AE-5, BR-IC-5,
    /// BR-G-5, BR-O-5).
    pub fn is_taxed(self) -> bool {
        matches!(self, Self::Standard | Self::CanaryIslands | Self::CeutaMelilla)
    }

    /// Whether an invoice with a line of this category must say why no tax
    /// is charged (an exemption reason, BR-E-10, BR-AE-10, ...).
    pub fn needs_exemption_reason(self) -> bool {
        matches!(self, Self::Exempt | Self::ReverseCharge | Self::IntraCommunity | Self::Export | Self::OutsideScope)
    }

    /// Checks a rate for this category: a percentage from 0 to 100 with at
    /// most two decimals, above zero exactly when the category is taxed.
    pub fn check_rate(self, rate: Decimal) -> Result<(), String> {
        if rate < Decimal::ZERO || rate > Decimal::ONE_HUNDRED || rate.normalize().scale() > 2 {
            return Err(format!("{rate} is not a percentage from 0 to 100 with at most two decimals"));
        }
        match (self.is_taxed(), rate.is_zero()) {
            (true, true) => Err(format!("category {self} is taxed: its rate is above 0")),
            (false, false) => Err(format!("category {self} carries no tax: its rate is 0")),
            _ => Ok(()),
        }
    }
}

/// What a line says, before anything is computed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    /// May be negative (a correction on a draft); up to 4 decimals.
    pub quantity: Decimal,
    /// The price of one unit, excluding tax; up to 4 decimals, not negative.
    pub unit_price: Decimal,
    /// A discount off the line, in percent (0 to 100, up to 2 decimals).
    pub discount_percent: Decimal,
    pub tax_category: TaxCategory,
    /// Percent, as the category allows ([`TaxCategory::check_rate`]).
    pub tax_rate: Decimal,
}

/// Why a line's numbers are refused, and which member is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LineError {
    pub field: &'static str,
    pub message: String,
}

/// The largest quantity or unit price a line takes: keeps every product and
/// sum far inside `numeric(18, 4)` and `Decimal`.
pub const LINE_LIMIT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

impl LineInput {
    pub fn check(&self) -> Result<(), LineError> {
        let error = |field, message: String| Err(LineError { field, message });
        if self.quantity.abs() > LINE_LIMIT || self.quantity.normalize().scale() > 4 {
            return error(
                "quantity",
                format!("{} is not a number of at most 1,000,000,000 with 4 decimals", self.quantity),
            );
        }
        if self.quantity.is_zero() {
            return error("quantity", "must not be 0".into());
        }
        if self.unit_price.is_sign_negative() && !self.unit_price.is_zero()
            || self.unit_price > LINE_LIMIT
            || self.unit_price.normalize().scale() > 4
        {
            return error(
                "unit_price",
                format!("{} is not an amount from 0 to 1,000,000,000 with at most 4 decimals", self.unit_price),
            );
        }
        if self.discount_percent < Decimal::ZERO
            || self.discount_percent > Decimal::ONE_HUNDRED
            || self.discount_percent.normalize().scale() > 2
        {
            return error(
                "discount_percent",
                format!("{} is not a percentage from 0 to 100 with at most two decimals", self.discount_percent),
            );
        }
        self.tax_category.check_rate(self.tax_rate).map_err(|message| LineError { field: "tax_rate", message })
    }

    /// The unit price after the discount, unrounded (EN 16931 BT-146).
    pub fn net_price(&self) -> Decimal {
        self.unit_price * (Decimal::ONE_HUNDRED - self.discount_percent) / Decimal::ONE_HUNDRED
    }

    /// The line's net amount in `currency` (BT-131): rounded once.
    pub fn net_amount(&self, currency: Currency) -> Decimal {
        currency.round(self.quantity * self.net_price())
    }

    /// The line's discount as an amount: what it takes off the undiscounted
    /// line, so that `gross - discount = net` exactly.
    pub fn discount_amount(&self, currency: Currency) -> Decimal {
        currency.round(self.quantity * self.unit_price) - self.net_amount(currency)
    }
}

/// The tax of one category and rate (EN 16931 BG-23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxGroup {
    pub category: TaxCategory,
    pub rate: Decimal,
    /// The sum of the group's line net amounts (BT-116).
    pub taxable: Decimal,
    /// `round(taxable x rate / 100)` (BT-117, BR-CO-17).
    pub tax: Decimal,
}

/// What a document adds up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Each line's net amount, in the order given.
    pub lines: Vec<Decimal>,
    /// Each line's share of its group's tax (largest remainder), in order.
    pub line_taxes: Vec<Decimal>,
    /// By category, then rate (ascending): the order the documents show.
    pub groups: Vec<TaxGroup>,
    /// Sum of line net amounts (BT-106), equal to the tax-exclusive total
    /// (BT-109) as documents carry no allowances or charges of their own.
    pub net: Decimal,
    /// Sum of the groups' tax (BT-110).
    pub tax: Decimal,
    /// `net + tax` (BT-112).
    pub gross: Decimal,
}

/// The totals of `lines` in `currency`, by the rules above.
pub fn totals(currency: Currency, lines: &[LineInput]) -> Totals {
    let net_amounts: Vec<Decimal> = lines.iter().map(|line| line.net_amount(currency)).collect();
    let mut groups: Vec<TaxGroup> = Vec::new();
    for (line, net) in lines.iter().zip(&net_amounts) {
        let rate = line.tax_rate.normalize();
        match groups.iter_mut().find(|g| g.category == line.tax_category && g.rate == rate) {
            Some(group) => group.taxable += net,
            None => groups.push(TaxGroup { category: line.tax_category, rate, taxable: *net, tax: Decimal::ZERO }),
        }
    }
    for group in &mut groups {
        group.taxable = currency.round(group.taxable);
        group.tax = currency.round(group.taxable * group.rate / Decimal::ONE_HUNDRED);
    }
    groups.sort_by(|a, b| a.category.as_str().cmp(b.category.as_str()).then(a.rate.cmp(&b.rate)));
    let mut line_taxes = vec![Decimal::ZERO; lines.len()];
    for group in &groups {
        let members: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].tax_category == group.category && lines[i].tax_rate.normalize() == group.rate)
            .collect();
        let bases: Vec<Decimal> = members.iter().map(|&i| net_amounts[i]).collect();
        for (i, share) in members.into_iter().zip(allocate(currency, group.tax, &bases)) {
            line_taxes[i] = share;
        }
    }
    let net = currency.round(net_amounts.iter().sum());
    let tax = currency.round(groups.iter().map(|g| g.tax).sum());
    Totals { lines: net_amounts, line_taxes, groups, net, tax, gross: net + tax }
}

/// Worked minutes as the hours an invoice line bills: four decimals, half
/// away from zero (20 minutes are 0.3333 h), the quantity its net is then
/// computed from. The unbilled-time report rounds the same way in SQL.
pub fn hours_of(minutes: i32) -> Decimal {
    (Decimal::from(minutes) / Decimal::from(60)).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
}

/// `total` shared out in proportion to `weights` (largest remainder, in
/// minor units): the shares add up to `total` exactly, each differs from
/// its exact proportion by less than one minor unit, and ties go to the
/// earlier weight. Weights that sum to zero share nothing but a zero total;
/// then the whole goes to the first.
pub fn allocate(currency: Currency, total: Decimal, weights: &[Decimal]) -> Vec<Decimal> {
    if weights.is_empty() {
        return Vec::new();
    }
    let unit = currency.minor_unit();
    let sum: Decimal = weights.iter().sum();
    if sum.is_zero() {
        let mut shares = vec![currency.round(Decimal::ZERO); weights.len()];
        shares[0] = currency.round(total);
        return shares;
    }
    // Exact shares, floored to a minor unit toward zero, with what was cut.
    let mut shares = Vec::with_capacity(weights.len());
    let mut cut = Vec::with_capacity(weights.len());
    for (i, weight) in weights.iter().enumerate() {
        let exact = total * weight / sum;
        let floored = (exact / unit).trunc() * unit;
        shares.push(floored);
        cut.push((i, exact - floored));
    }
    let allotted: Decimal = shares.iter().sum();
    let mut left = ((total - allotted) / unit).round().to_i64().expect("less than one unit per weight");
    let step = if left < 0 { -unit } else { unit };
    // The largest cuts (in the direction still owed) get a unit each first.
    cut.sort_by(|a, b| {
        let by = if left < 0 { a.1.cmp(&b.1) } else { b.1.cmp(&a.1) };
        if by == Ordering::Equal { a.0.cmp(&b.0) } else { by }
    });
    let mut next = cut.iter().cycle();
    while left != 0 {
        let (i, _) = next.next().expect("weights is not empty");
        shares[*i] += step;
        left -= left.signum();
    }
    shares.into_iter().map(|s| currency.round(s)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn minutes_become_hours_to_four_decimals() {
        let hours = |m| hours_of(m).normalize().to_string();
        assert_eq!([hours(20), hours(90), hours(1), hours(45)], ["0.3333", "1.5", "0.0167", "0.75"]);
    }

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR")
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn line(quantity: &str, price: &str, category: TaxCategory, rate: &str) -> LineInput {
        LineInput {
            quantity: d(quantity),
            unit_price: d(price),
            discount_percent: Decimal::ZERO,
            tax_category: category,
            tax_rate: d(rate),
        }
    }

    #[test]
    fn currencies_are_iso_codes_with_no_or_two_decimals() {
        assert_eq!(eur().decimals(), 2);
        assert_eq!(Currency::parse("JPY").expect("JPY").decimals(), 0);
        for bad in ["eur", "EURO", "", "ZZZ", "BHD", "XAU"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
        assert!(Currency::parse("BHD").expect_err("3 decimals").reason.contains("at most two"));
        assert_eq!(serde_json::to_value(eur()).expect("json"), serde_json::json!("EUR"));
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_minor_unit() {
        assert_eq!(eur().round(d("2.345")), d("2.35"));
        assert_eq!(eur().round(d("-2.345")), d("-2.35"));
        assert_eq!(eur().round(d("2.3449999")), d("2.34"));
        assert_eq!(eur().round(d("10")).to_string(), "10.00");
        assert_eq!(eur().round(d("-0.004")).to_string(), "0.00", "no negative zero");
        assert_eq!(eur().round(-d("0.00")).to_string(), "0.00");
        assert_eq!(Currency::parse("JPY").expect("JPY").round(d("100.5")).to_string(), "101");
        assert_eq!(eur().format(d("1234567.5")), "1,234,567.50 EUR");
        assert_eq!(eur().format(d("-999.999")), "-1,000.00 EUR");
        assert_eq!(eur().format(d("0.5")), "0.50 EUR");
    }

    #[test]
    fn tax_is_computed_once_per_group_not_summed_per_line() {
        // Three lines of 0.10 at 19%: per line 0.019 rounds to 0.02 each
        // (0.06 in all); BR-CO-17 taxes the group's 0.30 once: 0.057 -> 0.06.
        // Ten lines make the difference visible: 10 x 0.02 = 0.20 against
        // round(1.00 x 19%) = 0.19.
        let lines = vec![line("1", "0.10", TaxCategory::Standard, "19"); 10];
        let t = totals(eur(), &lines);
        assert_eq!(t.net, d("1.00"));
        assert_eq!(t.groups.len(), 1);
        assert_eq!(t.tax, d("0.19"));
        assert_eq!(t.gross, d("1.19"));
        assert_eq!(t.line_taxes.iter().sum::<Decimal>(), d("0.19"), "per-line taxes add up to the group's");
        assert_eq!(t.line_taxes.iter().filter(|x| **x == d("0.02")).count(), 9);
    }

    #[test]
    fn lines_group_by_category_and_rate() {
        let lines = vec![
            line("2", "100", TaxCategory::Standard, "20"),
            line("1", "50", TaxCategory::Standard, "5.5"),
            line("3", "9.99", TaxCategory::Standard, "20.00"),
            line("1", "10", TaxCategory::Exempt, "0"),
        ];
        let t = totals(eur(), &lines);
        let summary: Vec<(&str, String, String, String)> = t
            .groups
            .iter()
            .map(|g| (g.category.as_str(), g.rate.to_string(), g.taxable.to_string(), g.tax.to_string()))
            .collect();
        assert_eq!(
            summary,
            [
                ("E", "0".into(), "10.00".into(), "0.00".into()),
                ("S", "5.5".into(), "50.00".into(), "2.75".into()),
                ("S", "20".into(), "229.97".into(), "45.99".into()),
            ]
        );
        assert_eq!((t.net, t.tax, t.gross), (d("289.97"), d("48.74"), d("338.71")));
    }

    #[test]
    fn a_discount_comes_off_before_the_line_is_rounded() {
        let mut l = line("3", "33.333", TaxCategory::Standard, "20");
        l.discount_percent = d("12.5");
        // 3 x 33.333 x 0.875 = 87.499125 -> 87.50; undiscounted 99.999 -> 100.00.
        assert_eq!(l.net_amount(eur()), d("87.50"));
        assert_eq!(l.discount_amount(eur()), d("12.50"));
    }

    #[test]
    fn lines_out_of_bounds_are_refused_with_the_field() {
        let ok = line("1", "10", TaxCategory::Standard, "20");
        assert_eq!(ok.check(), Ok(()));
        let field = |f: &dyn Fn(&mut LineInput)| {
            let mut l = ok.clone();
            f(&mut l);
            l.check().map_err(|e| e.field)
        };
        assert_eq!(field(&|l| l.quantity = Decimal::ZERO), Err("quantity"));
        assert_eq!(field(&|l| l.quantity = d("0.00001")), Err("quantity"));
        assert_eq!(field(&|l| l.quantity = d("1000000001")), Err("quantity"));
        assert_eq!(field(&|l| l.unit_price = d("-1")), Err("unit_price"));
        assert_eq!(field(&|l| l.unit_price = d("1.00001")), Err("unit_price"));
        assert_eq!(field(&|l| l.discount_percent = d("100.01")), Err("discount_percent"));
        assert_eq!(field(&|l| l.tax_rate = Decimal::ZERO), Err("tax_rate"), "standard rate above 0");
        assert_eq!(field(&|l| l.tax_category = TaxCategory::Exempt), Err("tax_rate"), "exempt at 0");
        assert_eq!(field(&|l| l.tax_rate = d("19.555")), Err("tax_rate"));
        assert_eq!(field(&|l| l.quantity = d("-2")), Ok(()), "a negative quantity corrects a draft");
    }

    #[test]
    fn allocation_shares_exactly_and_breaks_ties_in_order() {
        assert_eq!(allocate(eur(), d("0.10"), &[d("1"), d("1"), d("1")]), [d("0.04"), d("0.03"), d("0.03")]);
        assert_eq!(allocate(eur(), d("-0.10"), &[d("1"), d("1"), d("1")]), [d("-0.04"), d("-0.03"), d("-0.03")]);
        assert_eq!(allocate(eur(), d("0.00"), &[d("5"), d("-5")]), [d("0.00"), d("0.00")]);
        assert_eq!(allocate(eur(), d("1.00"), &[]), Vec::<Decimal>::new());
        let jpy = Currency::parse("JPY").expect("JPY");
        assert_eq!(allocate(jpy, d("100"), &[d("1"), d("2")]), [d("33"), d("67")]);
    }

    fn category() -> impl Strategy<Value = (TaxCategory, Decimal)> {
        prop_oneof![
            prop::sample::select(vec!["5.5", "7", "10", "19", "20", "21", "25", "8.1", "0.01", "100"])
                .prop_map(|r| (TaxCategory::Standard, d(r))),
            Just((TaxCategory::Zero, Decimal::ZERO)),
            Just((TaxCategory::Exempt, Decimal::ZERO)),
            Just((TaxCategory::ReverseCharge, Decimal::ZERO)),
        ]
    }

    fn line_input() -> impl Strategy<Value = LineInput> {
        (-5_000_000i64..=50_000_000, 0i64..=100_000_000, 0u32..=10_000, category()).prop_filter_map(
            "a quantity of zero is refused",
            |(quantity, price, discount, (tax_category, tax_rate))| {
                let line = LineInput {
                    quantity: Decimal::new(quantity, 4),
                    unit_price: Decimal::new(price, 4),
                    discount_percent: Decimal::new(i64::from(discount), 2),
                    tax_category,
                    tax_rate,
                };
                line.check().is_ok().then_some(line)
            },
        )
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec!["EUR", "USD", "GBP", "CHF", "JPY", "SEK"])
            .prop_map(|c| Currency::parse(c).expect("currency"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn totals_are_the_sums_of_their_parts(currency in currency(), lines in prop::collection::vec(line_input(), 1..40)) {
            let t = totals(currency, &lines);
            let dp = currency.decimals();
            // Every amount is rounded to the minor unit.
            for amount in t.lines.iter().chain(&t.line_taxes).chain([&t.net, &t.tax, &t.gross]) {
                prop_assert_eq!(amount.scale(), dp, "{} has the currency's decimals", amount);
            }
            // BR-CO-10: the net total is the sum of the lines.
            prop_assert_eq!(t.net, t.lines.iter().sum::<Decimal>());
            // BR-CO-14: the tax total is the sum of the groups' tax.
            prop_assert_eq!(t.tax, t.groups.iter().map(|g| g.tax).sum::<Decimal>());
            // BR-CO-15: gross = net + tax.
            prop_assert_eq!(t.gross, t.net + t.tax);
            // The groups' taxable amounts partition the lines.
            prop_assert_eq!(t.net, t.groups.iter().map(|g| g.taxable).sum::<Decimal>());
            for group in &t.groups {
                // BR-CO-17: the group's tax is its rounded base times its rate, rounded.
                prop_assert_eq!(group.tax, currency.round(group.taxable * group.rate / Decimal::ONE_HUNDRED));
                let members: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].tax_category == group.category && lines[i].tax_rate.normalize() == group.rate)
                    .collect();
                prop_assert!(!members.is_empty());
                prop_assert_eq!(group.taxable, members.iter().map(|&i| t.lines[i]).sum::<Decimal>());
                // Per-line taxes share the group's exactly, each within a minor unit of its proportion.
                prop_assert_eq!(group.tax, members.iter().map(|&i| t.line_taxes[i]).sum::<Decimal>());
                if !group.taxable.is_zero() {
                    for &i in &members {
                        let exact = group.tax * t.lines[i] / group.taxable;
                        prop_assert!((t.line_taxes[i] - exact).abs() < currency.minor_unit(),
                            "line {} share {} against {}", i, t.line_taxes[i], exact);
                    }
                }
            }
            // The line's rounded net is within half a unit of its exact value.
            for (line, net) in lines.iter().zip(&t.lines) {
                let exact = line.quantity * line.net_price();
                prop_assert!((exact - net).abs() * Decimal::TWO <= currency.minor_unit());
            }
        }

        #[test]
        fn reversing_every_line_reverses_every_total(currency in currency(), lines in prop::collection::vec(line_input(), 1..25)) {
            // Rounding is symmetric (half away from zero), so a document of
            // the same lines negated (a full reversal) cancels the original
            // to exactly zero in every total and every group; a rounding
            // toward +infinity would leave a cent behind.
            let invoice = totals(currency, &lines);
            let negated: Vec<LineInput> = lines.iter().map(|l| LineInput { quantity: -l.quantity, ..l.clone() }).collect();
            let reversal = totals(currency, &negated);
            let zero = currency.round(Decimal::ZERO);
            prop_assert_eq!(invoice.net + reversal.net, zero);
            prop_assert_eq!(invoice.tax + reversal.tax, zero);
            prop_assert_eq!(invoice.gross + reversal.gross, zero);
            for (a, b) in invoice.line_taxes.iter().zip(&reversal.line_taxes) {
                prop_assert_eq!(*a + *b, zero);
            }
        }

        #[test]
        fn allocation_adds_up(currency in currency(), total in -1_000_000i64..1_000_000, weights in prop::collection::vec(0i64..1_000_000, 1..30)) {
            let total = currency.round(Decimal::new(total, 2));
            let weights: Vec<Decimal> = weights.into_iter().map(|w| Decimal::new(w, 2)).collect();
            let shares = allocate(currency, total, &weights);
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert_eq!(shares.iter().sum::<Decimal>(), total);
            let sum: Decimal = weights.iter().sum();
            if !sum.is_zero() {
                for (share, weight) in shares.iter().zip(&weights) {
                    prop_assert!((*share - total * weight / sum).abs() < currency.minor_unit());
                }
            }
        }

        #[test]
        fn rounding_agrees_with_a_float_free_reference(cents in -10_000_000i64..10_000_000, extra in 0u32..1000) {
            // x.yz|w: the digit after the minor unit decides, half away from zero.
            let value = Decimal::new(cents * 1000 + i64::from(extra) * cents.signum().max(1), 5);
            let rounded = eur().round(value);
            let diff = (value - rounded).abs();
            prop_assert!(diff <= d("0.005"));
            if diff == d("0.005") {
                prop_assert!(rounded.abs() > value.abs(), "half away from zero: {} -> {}", value, rounded);
            }
        }
    }
}
