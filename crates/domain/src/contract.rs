//! Contracts: what a client has agreed to pay for, and how (psa.md
//! "Contract").
//!
//! ```text
//! draft -> active <-> suspended
//! draft | active | suspended -> cancelled
//! active past its end date reads as expired
//! ```
//! A contract brings its rate card, rate overrides, SLA policy and purchase
//! order to the time and tickets under it; the billing run charges it once
//! per cycle.

use time::{Date, Month};

crate::names!(
    /// How a contract charges.
    pub enum ContractKind {
        /// Approved time at the rates in force, nothing recurring.
        TimeAndMaterials = "time_and_materials",
        /// A fee each cycle.
        FixedFee = "fixed_fee",
        /// A price per unit counted at billing time (assets of a type, or contacts).
        PerUnit = "per_unit",
        /// Hours bought each cycle, drawn down by time; overage at its own rate.
        BlockHours = "block_hours",
    }
);

crate::names!(
    /// Where a contract is in its lifecycle, as stored (`expired` is derived).
    pub enum ContractState {
        Draft = "draft",
        Active = "active",
        Suspended = "suspended",
        Cancelled = "cancelled",
    }
);

crate::names!(
    /// How often a contract's recurring charge falls.
    pub enum BillingCycle {
        Monthly = "monthly",
        Quarterly = "quarterly",
        Yearly = "yearly",
    }
);

crate::names!(
    /// What a per-unit contract counts.
    pub enum UnitSource {
        /// Assets in service (of one type, when the contract names one).
        Assets = "assets",
        /// Contacts not archived.
        Contacts = "contacts",
    }
);

crate::text_type!(
    /// A contract's name, as the client knows it.
    ContractName,
    "a contract name",
    200,
    false
);

impl ContractState {
    /// Whether a command may move a contract from `self` to `to`.
    pub fn can_become(self, to: Self) -> bool {
        use ContractState::*;
        matches!(
            (self, to),
            (Draft, Active) | (Active, Suspended) | (Suspended, Active) | (Draft | Active | Suspended, Cancelled)
        )
    }
}

impl BillingCycle {
    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::Yearly => 12,
        }
    }

    /// The start of the `n`th cycle of a contract starting on `start`: the
    /// same day of the month, or the month's last day when it has fewer.
    pub fn cycle_start(self, start: Date, n: u32) -> Date {
        let months = start.month() as u32 - 1 + n * self.months();
        let year = start.year() + i32::try_from(months / 12).expect("a few thousand years at most");
        let month = Month::try_from(u8::try_from(months % 12 + 1).expect("1..=12")).expect("1..=12");
        let day = start.day().min(month.length(year));
        Date::from_calendar_date(year, month, day).expect("a day the month has")
    }

    /// The cycles of a contract starting on `start` (and ending on `end`,
    /// if it does) that begin within `from..=to`, with the last day of each.
    pub fn cycles_starting(self, start: Date, end: Option<Date>, from: Date, to: Date) -> Vec<(Date, Date)> {
        let mut cycles = Vec::new();
        for n in 0..10_000 {
            let begins = self.cycle_start(start, n);
            if begins > to || end.is_some_and(|e| begins > e) {
                break;
            }
            if begins >= from {
                let next = self.cycle_start(start, n + 1);
                let last = next.previous_day().expect("after the start");
                cycles.push((begins, end.map_or(last, |e| last.min(e))));
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn cycles_keep_the_day_of_the_month_and_clamp_short_months() {
        let c = BillingCycle::Monthly;
        assert_eq!(c.cycle_start(date!(2026 - 01 - 31), 1), date!(2026 - 02 - 28));
        assert_eq!(c.cycle_start(date!(2026 - 01 - 31), 2), date!(2026 - 03 - 31));
        assert_eq!(c.cycle_start(date!(2027 - 11 - 15), 2), date!(2028 - 01 - 15));
        assert_eq!(BillingCycle::Quarterly.cycle_start(date!(2026 - 11 - 01), 1), date!(2027 - 02 - 01));
        assert_eq!(BillingCycle::Yearly.cycle_start(date!(2028 - 02 - 29), 1), date!(2029 - 02 - 28));
    }

    #[test]
    fn cycles_in_a_period() {
        let c = BillingCycle::Monthly;
        let in_november = c.cycles_starting(date!(2026 - 09 - 01), None, date!(2026 - 11 - 01), date!(2026 - 11 - 30));
        assert_eq!(in_november, vec![(date!(2026 - 11 - 01), date!(2026 - 11 - 30))]);
        let quarterly = BillingCycle::Quarterly.cycles_starting(
            date!(2026 - 09 - 01),
            None,
            date!(2026 - 11 - 01),
            date!(2026 - 11 - 30),
        );
        assert!(quarterly.is_empty(), "the quarter began in September");
        let ending = c.cycles_starting(
            date!(2026 - 09 - 15),
            Some(date!(2026 - 11 - 20)),
            date!(2026 - 11 - 01),
            date!(2026 - 12 - 31),
        );
        assert_eq!(
            ending,
            vec![(date!(2026 - 11 - 15), date!(2026 - 11 - 20))],
            "the last cycle ends with the contract"
        );
    }

    #[test]
    fn lifecycle() {
        use ContractState::*;
        assert!(Draft.can_become(Active) && Active.can_become(Suspended) && Suspended.can_become(Active));
        assert!(!Cancelled.can_become(Active) && !Active.can_become(Draft) && !Draft.can_become(Suspended));
    }
}
