//! Calendars and instants the tests share, and the committed holiday fixtures.

use anchor_sla::{BusinessCalendar, Calendar, Holiday, Week, Window};
use time::Duration;

/// Generated once with PyPI's `holidays` (see data/README.md).
const DE_NATIONAL: &str = include_str!("../../data/de-national-2025-2028.json");
const US_FEDERAL: &str = include_str!("../../data/us-federal-2025-2028.json");
const GB_ENGLAND: &str = include_str!("../../data/gb-england-2025-2028.json");

pub(crate) fn german_holidays() -> Vec<Holiday> {
    serde_json::from_str(DE_NATIONAL).expect("the German fixture parses as holidays")
}

pub(crate) fn us_holidays() -> Vec<Holiday> {
    serde_json::from_str(US_FEDERAL).expect("the US fixture parses as holidays")
}

pub(crate) fn english_holidays() -> Vec<Holiday> {
    serde_json::from_str(GB_ENGLAND).expect("the English fixture parses as holidays")
}

pub(crate) fn calendar(zone: &str, week: Week, holidays: Vec<Holiday>) -> Calendar {
    Calendar { version: 1, time_zone: zone.to_owned(), week, holidays }
}

pub(crate) fn business(zone: &str, week: Week, holidays: Vec<Holiday>) -> BusinessCalendar {
    BusinessCalendar::new(&calendar(zone, week, holidays)).expect("a valid calendar")
}

pub(crate) fn nine_to_five() -> Week {
    Week::monday_to_friday(&[Window::hm("09:00", "17:00")])
}

/// 09:00-17:00 Monday to Friday in Berlin, closed on Germany's national holidays.
pub(crate) fn berlin_office() -> BusinessCalendar {
    business("Europe/Berlin", nine_to_five(), german_holidays())
}

pub(crate) fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

pub(crate) fn minutes(m: i64) -> Duration {
    Duration::minutes(m)
}
