//! A business calendar as people write it: a time zone, opening windows per weekday in local
//! wall time, holidays, and a version. [`Calendar::validate`] says what is wrong with one, field by
//! field; [`BusinessCalendar`](crate::BusinessCalendar) is what computes with a valid one.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, Weekday};

use crate::validation::{FieldError, ValidationErrors};

/// The time zone database the calendars use: the one built into the binary (jiff's bundled
/// tzdb), so every process of an installation agrees on every zone's rules whatever the host
/// has installed.
pub(crate) fn time_zones() -> &'static jiff::tz::TimeZoneDatabase {
    static BUNDLED: OnceLock<jiff::tz::TimeZoneDatabase> = OnceLock::new();
    BUNDLED.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

/// A business calendar: when the service desk is working, in its own time zone.
///
/// ```json
/// {
///   "version": 3,
///   "time_zone": "Europe/Berlin",
///   "week": {
///     "monday": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
///     "friday": [{"start": "08:00", "end": "14:00"}]
///   },
///   "holidays": [
///     {"kind": "date", "date": "2026-05-25", "name": "Whit Monday"},
///     {"kind": "range", "from": "2026-12-21", "to": "2027-01-03", "name": "Winter closure"},
///     {"kind": "yearly", "month": 12, "day": 24, "name": "Christmas Eve"}
///   ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Counts the edits of this calendar, from 1. An SLA clock records the version it was
    /// planned with, so an edit re-plans open tickets and leaves closed ones as they were.
    pub version: u32,
    /// An IANA time zone name such as `Europe/Berlin`; windows and holidays are in its wall time.
    pub time_zone: String,
    /// The opening windows of each weekday; a day left out is closed.
    pub week: Week,
    /// Days on which the calendar is closed, whatever the weekday's windows say.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// Opening windows per weekday, in local wall time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuesday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wednesday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thursday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub friday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturday: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sunday: Vec<Window>,
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn weekday_field(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

impl Week {
    /// The same windows Monday to Friday, weekends closed.
    pub fn monday_to_friday(windows: &[Window]) -> Self {
        let mut week = Self::default();
        for day in &WEEKDAYS[..5] {
            week.set(*day, windows.to_vec());
        }
        week
    }

    /// The same windows every day of the week.
    pub fn every_day(windows: &[Window]) -> Self {
        let mut week = Self::default();
        for day in WEEKDAYS {
            week.set(day, windows.to_vec());
        }
        week
    }

    /// Round the clock: 00:00-24:00 every day.
    pub fn around_the_clock() -> Self {
        Self::every_day(&[Window::new(WallTime::MIDNIGHT, WallTime::END_OF_DAY)])
    }

    pub fn day(&self, day: Weekday) -> &[Window] {
        match day {
            Weekday::Monday => &self.monday,
            Weekday::Tuesday => &self.tuesday,
            Weekday::Wednesday => &self.wednesday,
            Weekday::Thursday => &self.thursday,
            Weekday::Friday => &self.friday,
            Weekday::Saturday => &self.saturday,
            Weekday::Sunday => &self.sunday,
        }
    }

    pub fn set(&mut self, day: Weekday, windows: Vec<Window>) {
        let slot = match day {
            Weekday::Monday => &mut self.monday,
            Weekday::Tuesday => &mut self.tuesday,
            Weekday::Wednesday => &mut self.wednesday,
            Weekday::Thursday => &mut self.thursday,
            Weekday::Friday => &mut self.friday,
            Weekday::Saturday => &mut self.saturday,
            Weekday::Sunday => &mut self.sunday,
        };
        *slot = windows;
    }
}

/// An opening window within one day, `[start, end)` in local wall time. `end` may be 24:00,
/// the end of the day; an overnight shift is two windows, 22:00-24:00 on one day and
/// 00:00-06:00 on the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: WallTime,
    pub end: WallTime,
}

impl Window {
    pub const fn new(start: WallTime, end: WallTime) -> Self {
        Self { start, end }
    }

    /// A window from two `HH:MM` texts; panics on a malformed one, so it is for constants and
    /// tests (parse input with serde or [`WallTime::from_str`]).
    pub fn hm(start: &str, end: &str) -> Self {
        let parse = |s: &str| s.parse::<WallTime>().unwrap_or_else(|e| panic!("{e}"));
        Self::new(parse(start), parse(end))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A time of day in local wall time to the minute, from 00:00 to 24:00 (24:00 is the end of
/// the day and only makes sense as a window's end). Written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(u16);

impl WallTime {
    pub const MIDNIGHT: Self = Self(0);
    pub const END_OF_DAY: Self = Self(24 * 60);

    /// `None` past 24:00.
    pub const fn from_hm(hour: u8, minute: u8) -> Option<Self> {
        let minutes = hour as u16 * 60 + minute as u16;
        if minute < 60 && minutes <= 24 * 60 { Some(Self(minutes)) } else { None }
    }

    /// Minutes since midnight, 0 to 1440.
    pub const fn minutes(self) -> u16 {
        self.0
    }
}

/// A text that is not `HH:MM` between 00:00 and 24:00.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time of day; write HH:MM from 00:00 to 24:00")]
pub struct WallTimeError(String);

impl FromStr for WallTime {
    type Err = WallTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WallTimeError(s.to_owned());
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (h, m) = (h.parse::<u8>().map_err(|_| bad())?, m.parse::<u8>().map_err(|_| bad())?);
        Self::from_hm(h, m).ok_or_else(bad)
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A day, several days, or a day every year on which the calendar is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Holiday {
    /// One date, e.g. `{"kind": "date", "date": "2026-05-25"}`.
    Date {
        #[serde(with = "iso_date")]
        date: Date,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Every date from `from` to `to`, both included, e.g. a two-week closure.
    Range {
        #[serde(with = "iso_date")]
        from: Date,
        #[serde(with = "iso_date")]
        to: Date,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The same month and day every year. 29 February closes only leap years.
    Yearly {
        month: u8,
        day: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Holiday {
    pub fn date(date: Date) -> Self {
        Self::Date { date, name: None }
    }

    pub fn range(from: Date, to: Date) -> Self {
        Self::Range { from, to, name: None }
    }

    pub fn yearly(month: u8, day: u8) -> Self {
        Self::Yearly { month, day, name: None }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Date { name, .. } | Self::Range { name, .. } | Self::Yearly { name, .. } => name.as_deref(),
        }
    }
}

/// `YYYY-MM-DD`, with a message that says so.
mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::macros::format_description;

    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]");

    pub(super) fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        let text = date.format(FORMAT).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text, FORMAT)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a date; write YYYY-MM-DD")))
    }
}

pub(crate) fn month_from_number(month: u8) -> Option<Month> {
    Month::try_from(month).ok()
}

impl Calendar {
    /// A calendar from its JSON text, checked: every error names its field.
    pub fn from_json(text: &str) -> Result<Self, ValidationErrors> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let calendar: Self = serde_path_to_error::deserialize(de).map_err(ValidationErrors::from_json_error)?;
        calendar.validate()?;
        Ok(calendar)
    }

    /// Every problem with this calendar, each naming its field: an unknown time zone, a window
    /// that ends before it starts or overlaps another, a week with no working time at all (it
    /// is refused: no deadline could ever fall due), a holiday range that ends before it starts,
    /// a yearly date that no year has.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if self.version == 0 {
            errors.push(FieldError::new("version", "must be 1 or more"));
        }
        let zone = self.time_zone.trim();
        if zone.is_empty() {
            errors.push(FieldError::new("time_zone", "is empty; name an IANA time zone such as Europe/Berlin"));
        } else if time_zones().get(zone).is_err() {
            errors.push(FieldError::new(
                "time_zone",
                format!("{zone:?} is not an IANA time zone name such as Europe/Berlin"),
            ));
        }

        let mut any_window = false;
        for day in WEEKDAYS {
            let windows = self.week.day(day);
            any_window |= !windows.is_empty();
            check_day(weekday_field(day), windows, &mut errors);
        }
        if !any_window {
            errors.push(FieldError::new(
                "week",
                "has no opening hours on any day; a calendar needs some working time \
                 (00:00-24:00 every day for round the clock)",
            ));
        }

        for (i, holiday) in self.holidays.iter().enumerate() {
            let field = format!("holidays[{i}]");
            match holiday {
                Holiday::Date { .. } => {}
                Holiday::Range { from, to, .. } => {
                    if to < from {
                        errors.push(FieldError::new(field, format!("the range ends ({to}) before it starts ({from})")));
                    }
                }
                Holiday::Yearly { month, day, .. } => {
                    let valid = month_from_number(*month)
                        // 2024 is a leap year, so 29 February counts as a day of the year.
                        .is_some_and(|m| *day >= 1 && *day <= time::util::days_in_month(m, 2024));
                    if !valid {
                        errors.push(FieldError::new(
                            field,
                            format!(
                                "month {month}, day {day} is not a day of the year \
                                 (months are 1-12, days 1-31 as the month allows)"
                            ),
                        ));
                    }
                }
            }
            if holiday.name().is_some_and(|n| n.chars().count() > 200) {
                errors.push(FieldError::new(format!("holidays[{i}].name"), "is longer than 200 characters"));
            }
        }
        ValidationErrors::into_result(errors)
    }
}

fn check_day(day: &str, windows: &[Window], errors: &mut Vec<FieldError>) {
    let mut ordered: Vec<(usize, &Window)> = Vec::with_capacity(windows.len());
    for (i, w) in windows.iter().enumerate() {
        let field = format!("week.{day}[{i}]");
        if w.end == w.start {
            errors.push(FieldError::new(field, format!("{w} is empty; a window must end after it starts")));
        } else if w.end < w.start {
            errors.push(FieldError::new(
                field,
                format!(
                    "{w} ends before it starts; an overnight window is written as two, \
                     e.g. 22:00-24:00 on one day and 00:00-06:00 on the next"
                ),
            ));
        } else {
            ordered.push((i, w));
        }
    }
    ordered.sort_by_key(|(_, w)| (w.start, w.end));
    for pair in ordered.windows(2) {
        let ((i, earlier), (j, later)) = (pair[0], pair[1]);
        if later.start < earlier.end {
            errors.push(FieldError::new(
                format!("week.{day}[{}]", i.max(j)),
                format!(
                    "{} overlaps {} (week.{day}[{}]); windows of one day must not overlap",
                    windows[i.max(j)],
                    windows[i.min(j)],
                    i.min(j)
                ),
            ));
        }
    }
}
