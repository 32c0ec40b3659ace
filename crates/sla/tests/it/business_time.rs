//! Business-time arithmetic away from DST: windows, holidays, closures, edges of windows.

use std::time::Instant;

use anchor_sla::{ClockError, Holiday, Week, Window};
use time::macros::{date, datetime};

use crate::support::{
    berlin_office, business, english_holidays, german_holidays, hours, minutes, nine_to_five, us_holidays,
};

#[test]
fn friday_afternoon_ticket_skips_the_weekend_and_whit_monday() {
    // The acceptance example of issue 14: 30 minutes on Friday, nothing on the weekend or on
    // Whit Monday (2026-05-25), 7h30 on Tuesday.
    let office = berlin_office();
    let opened = datetime!(2026-05-22 16:30 +2);
    let due = office.add_business(opened, hours(8)).unwrap();
    assert_eq!(due, datetime!(2026-05-26 16:30 +2));
    assert_eq!(office.business_between(opened, due), hours(8));
    assert!(!office.is_open(datetime!(2026-05-25 10:00 +2)), "Whit Monday is closed");
}

#[test]
fn a_deadline_that_uses_up_a_window_lands_on_its_end() {
    let office = berlin_office();
    let due = office.add_business(datetime!(2026-06-01 09:00 +2), hours(8)).unwrap();
    assert_eq!(due, datetime!(2026-06-01 17:00 +2), "not the next opening");
}

#[test]
fn start_outside_hours_counts_from_the_next_opening() {
    let office = berlin_office();
    // Saturday evening: the clock starts Monday 09:00.
    let due = office.add_business(datetime!(2026-06-06 19:00 +2), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-06-08 11:00 +2));
    // Before opening on a weekday.
    let due = office.add_business(datetime!(2026-06-02 06:15 +2), minutes(30)).unwrap();
    assert_eq!(due, datetime!(2026-06-02 09:30 +2));
    assert_eq!(office.next_open(datetime!(2026-06-06 19:00 +2)).unwrap(), datetime!(2026-06-08 09:00 +2));
}

#[test]
fn start_on_a_holiday_counts_from_the_next_working_day() {
    let office = berlin_office();
    // German Unity Day 2025 is a Friday.
    let due = office.add_business(datetime!(2025-10-03 10:00 +2), hours(1)).unwrap();
    assert_eq!(due, datetime!(2025-10-06 10:00 +2));
    assert_eq!(office.business_between(datetime!(2025-10-02 17:00 +2), datetime!(2025-10-06 09:00 +2)), hours(0));
}

#[test]
fn start_at_the_last_second_of_a_window() {
    let office = berlin_office();
    let start = datetime!(2026-06-02 16:59:59 +2);
    assert!(office.is_open(start));
    assert!(!office.is_open(datetime!(2026-06-02 17:00 +2)), "a window excludes its end");
    let due = office.add_business(start, hours(1)).unwrap();
    assert_eq!(due, datetime!(2026-06-03 09:59:59 +2));
    let due = office.add_business(start, time::Duration::SECOND).unwrap();
    assert_eq!(due, datetime!(2026-06-02 17:00 +2));
}

#[test]
fn adding_zero_is_the_start_itself() {
    let office = berlin_office();
    let night = datetime!(2026-06-02 23:00 +2);
    assert_eq!(office.add_business(night, hours(0)).unwrap(), night);
    assert_eq!(office.add_business(night, -hours(1)), Err(ClockError::NegativeDuration));
}

#[test]
fn several_windows_per_day_skip_the_lunch_break() {
    let split = business(
        "Europe/Berlin",
        Week::monday_to_friday(&[Window::hm("08:00", "12:00"), Window::hm("13:00", "17:00")]),
        vec![],
    );
    let due = split.add_business(datetime!(2026-06-02 11:30 +2), hours(1)).unwrap();
    assert_eq!(due, datetime!(2026-06-02 13:30 +2));
    assert_eq!(split.business_between(datetime!(2026-06-02 00:00 +2), datetime!(2026-06-03 00:00 +2)), hours(8));
    assert!(!split.is_open(datetime!(2026-06-02 12:30 +2)));
    assert_eq!(split.next_open(datetime!(2026-06-02 12:00 +2)).unwrap(), datetime!(2026-06-02 13:00 +2));
    // A deadline exactly at the end of the morning lands at 12:00, not 13:00.
    assert_eq!(split.add_business(datetime!(2026-06-02 08:00 +2), hours(4)).unwrap(), datetime!(2026-06-02 12:00 +2));
}

#[test]
fn windows_ending_at_24_00_make_overnight_shifts() {
    // A night desk: 22:00-24:00 Monday to Friday and 00:00-06:00 Tuesday to Saturday.
    let mut week = Week::default();
    for day in [
        time::Weekday::Monday,
        time::Weekday::Tuesday,
        time::Weekday::Wednesday,
        time::Weekday::Thursday,
        time::Weekday::Friday,
    ] {
        week.set(day, vec![Window::hm("22:00", "24:00")]);
    }
    for day in [
        time::Weekday::Tuesday,
        time::Weekday::Wednesday,
        time::Weekday::Thursday,
        time::Weekday::Friday,
        time::Weekday::Saturday,
    ] {
        let mut windows = week.day(day).to_vec();
        windows.insert(0, Window::hm("00:00", "06:00"));
        week.set(day, windows);
    }
    let nights = business("Europe/London", week, vec![]);
    // Monday 23:00 + 2h runs through midnight.
    let due = nights.add_business(datetime!(2026-06-01 23:00 +1), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-06-02 01:00 +1));
    assert!(nights.is_open(datetime!(2026-06-01 23:59:59 +1)));
    assert!(nights.is_open(datetime!(2026-06-02 00:00 +1)));
    // Saturday 05:00 + 2h: one hour Saturday morning, then Monday 22:00.
    let due = nights.add_business(datetime!(2026-06-06 05:00 +1), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-06-08 23:00 +1));
    // A full working night is 8 hours.
    assert_eq!(nights.business_between(datetime!(2026-06-02 12:00 +1), datetime!(2026-06-03 12:00 +1)), hours(8));
}

#[test]
fn around_the_clock_business_time_is_real_time() {
    let always = business("Europe/Berlin", Week::around_the_clock(), german_holidays());
    // Christmas is still a holiday on a 24x7 calendar with holidays.
    let due = always.add_business(datetime!(2026-12-24 22:00 +1), hours(4)).unwrap();
    assert_eq!(due, datetime!(2026-12-27 02:00 +1), "25th and 26th are closed");

    let always = business("Europe/Berlin", Week::around_the_clock(), vec![]);
    let start = datetime!(2026-06-03 10:17:23 +2);
    assert_eq!(always.add_business(start, hours(50)).unwrap(), start + hours(50));
    assert_eq!(always.business_between(start, start + hours(50)), hours(50));
}

#[test]
fn a_two_week_closure_is_skipped() {
    let closed = Holiday::Range {
        from: date!(2026 - 12 - 21),
        to: date!(2027 - 01 - 03),
        name: Some("Winter closure".to_owned()),
    };
    let office = business("Europe/Berlin", nine_to_five(), vec![closed]);
    let due = office.add_business(datetime!(2026-12-18 16:00 +1), hours(2)).unwrap();
    assert_eq!(due, datetime!(2027-01-04 10:00 +1));
    assert_eq!(office.business_between(datetime!(2026-12-18 00:00 +1), datetime!(2027-01-05 00:00 +1)), hours(16));
    assert_eq!(office.next_open(datetime!(2026-12-22 11:00 +1)).unwrap(), datetime!(2027-01-04 09:00 +1));
}

#[test]
fn overlapping_and_touching_ranges_close_their_union() {
    let office = business(
        "Europe/Berlin",
        nine_to_five(),
        vec![
            Holiday::range(date!(2026 - 08 - 03), date!(2026 - 08 - 14)),
            Holiday::range(date!(2026 - 08 - 10), date!(2026 - 08 - 21)),
            Holiday::range(date!(2026 - 08 - 22), date!(2026 - 08 - 28)),
        ],
    );
    assert_eq!(office.next_open(datetime!(2026-08-03 08:00 +2)).unwrap(), datetime!(2026-08-31 09:00 +2));
}

#[test]
fn a_thousand_hour_target_over_long_closures_is_quick() {
    // Eight business hours a day, a seven-week closure each summer and a fortnight each winter:
    // the deadline is eight months away, hundreds of thousands of minutes, but a walk by day
    // and closure takes a few hundred steps.
    let mut holidays = german_holidays();
    for year in 2026..2029 {
        holidays.push(Holiday::range(
            time::Date::from_calendar_date(year, time::Month::July, 1).unwrap(),
            time::Date::from_calendar_date(year, time::Month::August, 19).unwrap(),
        ));
        holidays.push(Holiday::range(
            time::Date::from_calendar_date(year, time::Month::December, 20).unwrap(),
            time::Date::from_calendar_date(year + 1, time::Month::January, 3).unwrap(),
        ));
    }
    let office = business("Europe/Berlin", nine_to_five(), holidays);
    let start = datetime!(2026-05-22 16:30 +2);
    let began = Instant::now();
    let mut due = start;
    for _ in 0..50 {
        due = office.add_business(start, hours(1000)).unwrap();
        assert_eq!(office.business_between(start, due), hours(1000));
    }
    let spent = began.elapsed();
    assert!(due > datetime!(2027-01-04 00:00 +1), "{due}");
    assert!(spent.as_secs_f64() < 5.0, "50 round trips of a 1,000-hour target took {spent:?}");
}

#[test]
fn yearly_holidays_recur_and_29_february_only_in_leap_years() {
    let office =
        business("Europe/Berlin", Week::around_the_clock(), vec![Holiday::yearly(12, 24), Holiday::yearly(2, 29)]);
    for year in [2026, 2031, 2040] {
        let eve = time::Date::from_calendar_date(year, time::Month::December, 24).unwrap();
        assert!(!office.is_open(eve.with_hms(12, 0, 0).unwrap().assume_offset(time::macros::offset!(+1))));
    }
    assert!(!office.is_open(datetime!(2028-02-29 12:00 +1)), "2028 is a leap year");
    assert!(office.is_open(datetime!(2027-03-01 00:30 +1)));
    assert!(office.is_open(datetime!(2027-02-28 23:30 +1)));
}

#[test]
fn holidays_that_close_every_window_for_years_end_in_an_error() {
    let office =
        business("Europe/Berlin", nine_to_five(), vec![Holiday::range(date!(2026 - 01 - 01), date!(2035 - 12 - 31))]);
    let start = datetime!(2026-06-01 09:00 +2);
    assert!(matches!(office.add_business(start, hours(1)), Err(ClockError::NoWorkingTime { .. })));
    assert!(matches!(office.next_open(start), Err(ClockError::NoWorkingTime { .. })));
    // Counting what elapsed needs no opening and does not fail.
    assert_eq!(office.business_between(start, datetime!(2031-06-01 09:00 +2)), hours(0));
    // And after the closure the calendar works again.
    assert_eq!(office.next_open(datetime!(2035-12-30 09:00 +1)).unwrap(), datetime!(2036-01-01 09:00 +1));
}

#[test]
fn business_between_runs_backwards_with_a_minus_sign() {
    let office = berlin_office();
    let (a, b) = (datetime!(2026-06-01 10:00 +2), datetime!(2026-06-03 11:00 +2));
    assert_eq!(office.business_between(a, b), hours(17));
    assert_eq!(office.business_between(b, a), -hours(17));
    assert_eq!(office.business_between(a, a), hours(0));
}

#[test]
fn openings_are_listed_in_utc() {
    let split = business(
        "Europe/Berlin",
        Week::monday_to_friday(&[Window::hm("08:00", "12:00"), Window::hm("13:00", "17:00")]),
        vec![],
    );
    let openings = split.openings_between(datetime!(2026-06-05 10:00 +2), datetime!(2026-06-08 09:00 +2));
    assert_eq!(
        openings,
        vec![
            (datetime!(2026-06-05 08:00 UTC), datetime!(2026-06-05 10:00 UTC)),
            (datetime!(2026-06-05 11:00 UTC), datetime!(2026-06-05 15:00 UTC)),
            (datetime!(2026-06-08 06:00 UTC), datetime!(2026-06-08 07:00 UTC)),
        ]
    );
}

#[test]
fn us_federal_holidays_from_the_fixture() {
    let office = business("America/New_York", nine_to_five(), us_holidays());
    // Independence Day 2026 is a Saturday, observed on Friday the 3rd.
    let due = office.add_business(datetime!(2026-07-02 16:00 -4), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-07-06 10:00 -4));
    // Thanksgiving.
    assert!(!office.is_open(datetime!(2026-11-26 10:00 -5)));
}

#[test]
fn english_bank_holidays_from_the_fixture() {
    let office = business("Europe/London", nine_to_five(), english_holidays());
    // Christmas Friday, weekend, Boxing Day observed on Monday the 28th.
    let due = office.add_business(datetime!(2026-12-24 16:00 +0), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-12-29 10:00 +0));
}

#[test]
fn the_fixtures_cover_2025_to_2028() {
    for (name, holidays) in [("de", german_holidays()), ("us", us_holidays()), ("gb", english_holidays())] {
        let years: std::collections::BTreeSet<i32> = holidays
            .iter()
            .map(|h| match h {
                Holiday::Date { date, .. } => date.year(),
                other => panic!("{name}: fixtures list single dates, got {other:?}"),
            })
            .collect();
        assert_eq!(years.into_iter().collect::<Vec<_>>(), vec![2025, 2026, 2027, 2028], "{name}");
    }
    assert!(german_holidays().iter().any(|h| matches!(
        h,
        Holiday::Date { date, .. } if *date == date!(2026 - 05 - 25)
    )));
}
