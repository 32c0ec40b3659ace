//! Business-time arithmetic over a valid calendar, in the calendar's own zone.
//!
//! The walk goes day by day in local dates; each day's windows become UTC intervals by
//! converting their two boundaries (never by adding seconds to midnight), holiday ranges are
//! jumped over whole, and weekdays without windows cost no zone lookup. A 1,000-hour target
//! over a calendar with month-long closures is a few hundred day steps.

use std::collections::BTreeSet;

use jiff::tz::{AmbiguousOffset, TimeZone};
use time::{Date, Duration, Month, OffsetDateTime};

use crate::calendar::{Calendar, Holiday, time_zones};
use crate::validation::ValidationErrors;

/// Nanoseconds since the Unix epoch, or a length in nanoseconds: the walk's own arithmetic,
/// exact and far from overflow for any date a calendar can name.
pub(crate) type Nanos = i128;

/// How many days in a row without any opening the walk accepts before it concludes that the
/// calendar has no working time left (a validated calendar has windows, but holidays could
/// still close every one of them).
const MAX_CLOSED_DAYS: i64 = 4 * 366;

/// Why a business-time computation has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Holidays close every window for years on end after this instant.
    #[error("the calendar has no working time in the four years after {after}")]
    NoWorkingTime { after: OffsetDateTime },
    /// Business time only runs forward.
    #[error("a business duration to add must not be negative")]
    NegativeDuration,
    /// Past the years the time zone database and the date types cover (about 9999).
    #[error("the computation runs past the years a calendar can name")]
    OutOfRange,
}

/// A valid [`Calendar`] ready to compute with: its zone resolved from the bundled tzdb, its
/// windows sorted and merged, its holidays indexed.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    version: u32,
    time_zone: String,
    zone: TimeZone,
    /// Monday first; `[start, end)` in minutes of the local day, sorted, disjoint, adjacent
    /// windows merged.
    week: [Vec<(u16, u16)>; 7],
    dates: BTreeSet<Date>,
    /// Sorted, disjoint and not adjacent: a date is in at most one.
    ranges: Vec<(Date, Date)>,
    yearly: BTreeSet<(Month, u8)>,
}

impl BusinessCalendar {
    /// Validates the calendar (see [`Calendar::validate`]) and prepares it.
    pub fn new(calendar: &Calendar) -> Result<Self, ValidationErrors> {
        calendar.validate()?;
        let time_zone = calendar.time_zone.trim().to_owned();
        let zone = time_zones().get(&time_zone).map_err(|_| {
            // validate() has just accepted the name; this only guards the invariant.
            ValidationErrors(vec![crate::validation::FieldError::new("time_zone", "is not an IANA time zone name")])
        })?;

        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for (slot, day) in week.iter_mut().zip([
            &calendar.week.monday,
            &calendar.week.tuesday,
            &calendar.week.wednesday,
            &calendar.week.thursday,
            &calendar.week.friday,
            &calendar.week.saturday,
            &calendar.week.sunday,
        ]) {
            let mut windows: Vec<(u16, u16)> = day.iter().map(|w| (w.start.minutes(), w.end.minutes())).collect();
            windows.sort_unstable();
            for (start, end) in windows {
                match slot.last_mut() {
                    Some(last) if start <= last.1 => last.1 = last.1.max(end),
                    _ => slot.push((start, end)),
                }
            }
        }

        let mut dates = BTreeSet::new();
        let mut ranges = Vec::new();
        let mut yearly = BTreeSet::new();
        for holiday in &calendar.holidays {
            match holiday {
                Holiday::Date { date, .. } => {
                    dates.insert(*date);
                }
                Holiday::Range { from, to, .. } => ranges.push((*from, *to)),
                Holiday::Yearly { month, day, .. } => {
                    if let Some(month) = crate::calendar::month_from_number(*month) {
                        yearly.insert((month, *day));
                    }
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(Date, Date)> = Vec::with_capacity(ranges.len());
        for (from, to) in ranges {
            match merged.last_mut() {
                Some(last) if last.1.next_day().is_none_or(|after| from <= after) => {
                    last.1 = last.1.max(to);
                }
                _ => merged.push((from, to)),
            }
        }

        Ok(Self { version: calendar.version, time_zone, zone, week, dates, ranges: merged, yearly })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The IANA name of the calendar's zone.
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }

    /// The deadline `duration` of business time after `start`: the earliest instant by which
    /// that much business time has elapsed since `start`. Counting starts at the first opening
    /// at or after `start`; a duration that ends exactly at a window's end lands on that end
    /// (17:00), not on the next opening. Adding zero gives `start` itself, open or not.
    pub fn add_business(&self, start: OffsetDateTime, duration: Duration) -> Result<OffsetDateTime, ClockError> {
        let amount = duration.whole_nanoseconds();
        if amount < 0 {
            return Err(ClockError::NegativeDuration);
        }
        from_nanos(self.add(to_nanos(start), amount)?)
    }

    /// The business time between two instants: how much of `[a, b)` falls in opening windows.
    /// Negative when `b` is before `a`, so that `business_between(a, b) == -business_between(b, a)`.
    pub fn business_between(&self, a: OffsetDateTime, b: OffsetDateTime) -> Duration {
        let (a, b) = (to_nanos(a), to_nanos(b));
        if b < a { -nanos_to_duration(self.between(b, a)) } else { nanos_to_duration(self.between(a, b)) }
    }

    /// The first instant at or after `at` at which the calendar is open (`at` itself when open).
    pub fn next_open(&self, at: OffsetDateTime) -> Result<OffsetDateTime, ClockError> {
        let mut walk = Walk::new(self, to_nanos(at), None)?;
        let (start, _) = walk.next()?.ok_or(ClockError::OutOfRange)?;
        from_nanos(start)
    }

    /// Whether `at` falls in an opening window (windows include their start, exclude their end).
    pub fn is_open(&self, at: OffsetDateTime) -> bool {
        let at = to_nanos(at);
        Walk::new(self, at, Some(at + 1)).and_then(|mut walk| walk.next()).is_ok_and(|first| first.is_some())
    }

    /// The opening intervals that overlap `[a, b)`, clipped to it, in UTC, in order. Intervals of
    /// consecutive windows that touch (12:00-24:00 then 00:00-06:00) are returned separately.
    pub fn openings_between(&self, a: OffsetDateTime, b: OffsetDateTime) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let (a, b) = (to_nanos(a), to_nanos(b));
        let mut out = Vec::new();
        if b <= a {
            return out;
        }
        let Ok(mut walk) = Walk::new(self, a, Some(b)) else {
            return out;
        };
        while let Ok(Some((start, end))) = walk.next() {
            if let (Ok(s), Ok(e)) = (from_nanos(start), from_nanos(end.min(b))) {
                out.push((s, e));
            }
        }
        out
    }

    pub(crate) fn add(&self, start: Nanos, amount: Nanos) -> Result<Nanos, ClockError> {
        debug_assert!(amount >= 0);
        if amount == 0 {
            return Ok(start);
        }
        let mut left = amount;
        let mut walk = Walk::new(self, start, None)?;
        loop {
            let (s, e) = walk.next()?.ok_or(ClockError::OutOfRange)?;
            let length = e - s;
            if left <= length {
                return Ok(s + left);
            }
            left -= length;
        }
    }

    /// Business nanoseconds in `[a, b)`, `a <= b`.
    pub(crate) fn between(&self, a: Nanos, b: Nanos) -> Nanos {
        if b <= a {
            return 0;
        }
        let Ok(mut walk) = Walk::new(self, a, Some(b)) else {
            return 0;
        };
        let mut total = 0;
        // An error here can only be the end of the representable years: nothing is open there.
        while let Ok(Some((s, e))) = walk.next() {
            total += e.min(b) - s;
        }
        total
    }

    /// The last date of the closure that `date` starts or falls in, if it is a holiday.
    fn closed_through(&self, date: Date) -> Option<Date> {
        let after = self.ranges.partition_point(|(from, _)| *from <= date);
        if after > 0 {
            let (_, to) = self.ranges[after - 1];
            if date <= to {
                return Some(to);
            }
        }
        let holiday = self.dates.contains(&date) || self.yearly.contains(&(date.month(), date.day()));
        holiday.then_some(date)
    }

    /// The day's windows as UTC intervals, empty ones (a window inside a spring-forward gap)
    /// left out.
    fn day_intervals(&self, date: Date, out: &mut Vec<(Nanos, Nanos)>) -> Result<(), ClockError> {
        let windows = &self.week[usize::from(date.weekday().number_days_from_monday())];
        for &(start, end) in windows {
            let s = self.boundary(date, start)?;
            let e = self.boundary(date, end)?;
            if e > s {
                out.push((s, e));
            }
        }
        Ok(())
    }

    /// The instant a window boundary stands for: the first instant at which the zone's wall
    /// clock shows `minute` of `date` or later (24:00 is the next day's 00:00).
    ///
    /// Usually there is exactly one instant showing that wall time. On a spring-forward day a
    /// wall time inside the gap never shows, and the first instant past it is the jump itself.
    /// On a fall-back day a wall time inside the repeated hour shows twice, and the first
    /// showing is the earlier one. The mapping never goes backwards, so the windows of a day
    /// and of consecutive days stay in order and never overlap.
    fn boundary(&self, date: Date, minute: u16) -> Result<Nanos, ClockError> {
        let (date, minute) =
            if minute >= 24 * 60 { (date.next_day().ok_or(ClockError::OutOfRange)?, 0) } else { (date, minute) };
        let civil = to_civil(date)?.to_datetime(
            jiff::civil::Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                .map_err(|_| ClockError::OutOfRange)?,
        );
        let out_of_range = |_| ClockError::OutOfRange;
        let instant = match self.zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).map_err(out_of_range)?,
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).map_err(out_of_range)?,
            AmbiguousOffset::Gap { before, after } => {
                // Read with the offset after the jump, the wall time lands before the jump, so
                // the next transition from there is the jump itself.
                let early = after.to_timestamp(civil).map_err(out_of_range)?;
                match self.zone.following(early).next() {
                    Some(jump) => jump.timestamp(),
                    None => before.to_timestamp(civil).map_err(out_of_range)?,
                }
            }
        };
        Ok(instant.as_nanosecond())
    }

    /// The local date at an instant.
    fn local_date(&self, at: Nanos) -> Result<Date, ClockError> {
        let ts = jiff::Timestamp::from_nanosecond(at).map_err(|_| ClockError::OutOfRange)?;
        let d = self.zone.to_datetime(ts).date();
        let month = Month::try_from(d.month() as u8).map_err(|_| ClockError::OutOfRange)?;
        Date::from_calendar_date(i32::from(d.year()), month, d.day() as u8).map_err(|_| ClockError::OutOfRange)
    }
}

fn to_civil(date: Date) -> Result<jiff::civil::Date, ClockError> {
    let year = i16::try_from(date.year()).map_err(|_| ClockError::OutOfRange)?;
    jiff::civil::Date::new(year, u8::from(date.month()) as i8, date.day() as i8).map_err(|_| ClockError::OutOfRange)
}

pub(crate) fn to_nanos(at: OffsetDateTime) -> Nanos {
    at.unix_timestamp_nanos()
}

pub(crate) fn from_nanos(at: Nanos) -> Result<OffsetDateTime, ClockError> {
    OffsetDateTime::from_unix_timestamp_nanos(at).map_err(|_| ClockError::OutOfRange)
}

pub(crate) fn nanos_to_duration(n: Nanos) -> Duration {
    // Any length between two representable instants fits: about 6e20 ns against i64 seconds.
    Duration::nanoseconds_i128(n)
}

/// Opening intervals in UTC, in order, from an instant on.
struct Walk<'c> {
    calendar: &'c BusinessCalendar,
    from: Nanos,
    /// Stop before intervals that start at or after this instant, and after this local date.
    until: Option<(Nanos, Date)>,
    next_date: Option<Date>,
    queue: Vec<(Nanos, Nanos)>,
    position: usize,
    closed_days: i64,
}

impl<'c> Walk<'c> {
    fn new(calendar: &'c BusinessCalendar, from: Nanos, until: Option<Nanos>) -> Result<Self, ClockError> {
        // The day before `from`'s local date too: on a fall-back night that crosses midnight an
        // instant can show the previous date after the new one has begun.
        let first = calendar.local_date(from)?;
        let first = first.previous_day().unwrap_or(first);
        let until = match until {
            Some(at) => {
                let last = calendar.local_date(at)?;
                Some((at, last.next_day().unwrap_or(last)))
            }
            None => None,
        };
        Ok(Self { calendar, from, until, next_date: Some(first), queue: Vec::new(), position: 0, closed_days: 0 })
    }

    /// The next opening interval, clipped to start no earlier than `from`; `None` past `until`.
    fn next(&mut self) -> Result<Option<(Nanos, Nanos)>, ClockError> {
        loop {
            while let Some(&(s, e)) = self.queue.get(self.position) {
                self.position += 1;
                if e <= self.from {
                    continue;
                }
                let s = s.max(self.from);
                if self.until.is_some_and(|(at, _)| s >= at) {
                    return Ok(None);
                }
                self.closed_days = 0;
                return Ok(Some((s, e)));
            }

            let Some(date) = self.next_date else {
                return self.end_of_dates();
            };
            if let Some((_, last)) = self.until {
                if date > last {
                    return Ok(None);
                }
            } else if self.closed_days > MAX_CLOSED_DAYS {
                return Err(ClockError::NoWorkingTime { after: from_nanos(self.from)? });
            }

            if let Some(last_closed) = self.calendar.closed_through(date) {
                self.closed_days += last_closed.to_julian_day() as i64 - date.to_julian_day() as i64 + 1;
                self.next_date = last_closed.next_day();
                continue;
            }
            self.next_date = date.next_day();
            self.queue.clear();
            self.position = 0;
            match self.calendar.day_intervals(date, &mut self.queue) {
                Ok(()) => {}
                Err(_) if self.until.is_some() => return Ok(None),
                Err(e) => return Err(e),
            }
            if self.queue.is_empty() {
                self.closed_days += 1;
            }
        }
    }

    fn end_of_dates(&self) -> Result<Option<(Nanos, Nanos)>, ClockError> {
        if self.until.is_some() { Ok(None) } else { Err(ClockError::OutOfRange) }
    }
}
