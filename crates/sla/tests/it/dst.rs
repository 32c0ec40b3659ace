//! Days of 23 and 25 hours, in two zones that change on different dates (Berlin on the last
//! Sundays of March and October, New York on the second Sunday of March and the first of
//! November), and a zone that changes at midnight (Santiago).

use anchor_sla::{BusinessCalendar, Week, Window};
use time::macros::datetime;
use time::{OffsetDateTime, Weekday};

use crate::support::{business, hours, minutes, nine_to_five};

/// A calendar open only on one weekday, within the given windows.
fn only(zone: &str, day: Weekday, windows: &[Window]) -> BusinessCalendar {
    let mut week = Week::default();
    week.set(day, windows.to_vec());
    business(zone, week, vec![])
}

fn whole_sunday(zone: &str) -> BusinessCalendar {
    only(zone, Weekday::Sunday, &[Window::hm("00:00", "24:00")])
}

/// Business time of one weekend, Saturday noon to Monday noon (UTC offsets don't matter:
/// the Sunday windows are well inside).
fn weekend(cal: &BusinessCalendar, saturday_noon: OffsetDateTime) -> time::Duration {
    cal.business_between(saturday_noon, saturday_noon + hours(48))
}

#[test]
fn round_the_clock_days_last_23_and_25_hours_in_berlin() {
    let sunday = whole_sunday("Europe/Berlin");
    assert_eq!(weekend(&sunday, datetime!(2026-03-21 12:00 UTC)), hours(24));
    assert_eq!(weekend(&sunday, datetime!(2026-03-28 12:00 UTC)), hours(23));
    assert_eq!(weekend(&sunday, datetime!(2026-10-24 12:00 UTC)), hours(25));
    assert_eq!(weekend(&sunday, datetime!(2026-10-31 12:00 UTC)), hours(24));
    // 2025 too: 30 March and 26 October.
    assert_eq!(weekend(&sunday, datetime!(2025-03-29 12:00 UTC)), hours(23));
    assert_eq!(weekend(&sunday, datetime!(2025-10-25 12:00 UTC)), hours(25));
}

#[test]
fn round_the_clock_days_last_23_and_25_hours_in_new_york() {
    let sunday = whole_sunday("America/New_York");
    // Berlin's change weekends are ordinary in New York, and the other way round.
    assert_eq!(weekend(&sunday, datetime!(2026-03-28 17:00 UTC)), hours(24));
    assert_eq!(weekend(&sunday, datetime!(2026-03-07 17:00 UTC)), hours(23));
    assert_eq!(weekend(&sunday, datetime!(2026-10-31 17:00 UTC)), hours(25));
    assert_eq!(weekend(&sunday, datetime!(2026-10-24 17:00 UTC)), hours(24));
    let berlin = whole_sunday("Europe/Berlin");
    assert_eq!(weekend(&berlin, datetime!(2026-03-07 12:00 UTC)), hours(24));
}

#[test]
fn office_hours_across_a_spring_forward_weekend() {
    let berlin = business("Europe/Berlin", nine_to_five(), vec![]);
    let due = berlin.add_business(datetime!(2026-03-27 16:00 +1), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-03-30 10:00 +2));
    // A full Friday then a full Monday: Monday's window is 07:00-15:00 UTC, not 08:00-16:00
    // as three days of 86,400 s after Friday's would make it.
    let due = berlin.add_business(datetime!(2026-03-27 09:00 +1), hours(16)).unwrap();
    assert_eq!(due, datetime!(2026-03-30 15:00 UTC));
    assert_eq!(berlin.business_between(datetime!(2026-03-27 09:00 +1), due), hours(16));

    let new_york = business("America/New_York", nine_to_five(), vec![]);
    let due = new_york.add_business(datetime!(2026-03-06 16:00 -5), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-03-09 10:00 -4));
    let due = new_york.add_business(datetime!(2026-03-06 09:00 -5), hours(16)).unwrap();
    assert_eq!(due, datetime!(2026-03-09 21:00 UTC));
}

#[test]
fn office_hours_across_a_fall_back_weekend() {
    let berlin = business("Europe/Berlin", nine_to_five(), vec![]);
    let due = berlin.add_business(datetime!(2026-10-23 16:00 +2), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-10-26 10:00 +1));
    let due = berlin.add_business(datetime!(2026-10-23 09:00 +2), hours(16)).unwrap();
    assert_eq!(due, datetime!(2026-10-26 16:00 UTC));

    let new_york = business("America/New_York", nine_to_five(), vec![]);
    let due = new_york.add_business(datetime!(2026-10-30 16:00 -4), hours(2)).unwrap();
    assert_eq!(due, datetime!(2026-11-02 10:00 -5));
    assert_eq!(new_york.business_between(datetime!(2026-10-30 00:00 -4), datetime!(2026-11-03 00:00 -5)), hours(16));
}

#[test]
fn a_boundary_in_the_spring_gap_is_the_jump() {
    // Berlin jumps from 02:00 CET to 03:00 CEST at 01:00 UTC.
    let early = only("Europe/Berlin", Weekday::Sunday, &[Window::hm("02:00", "04:00")]);
    assert_eq!(weekend(&early, datetime!(2026-03-21 12:00 UTC)), hours(2));
    assert_eq!(weekend(&early, datetime!(2026-03-28 12:00 UTC)), hours(1));
    assert_eq!(early.next_open(datetime!(2026-03-28 12:00 UTC)).unwrap(), datetime!(2026-03-29 01:00 UTC));
    let half_past = only("Europe/Berlin", Weekday::Sunday, &[Window::hm("02:30", "05:00")]);
    assert_eq!(
        half_past.next_open(datetime!(2026-03-28 12:00 UTC)).unwrap(),
        datetime!(2026-03-29 01:00 UTC),
        "02:30 never shows; the window opens when the clock jumps past it"
    );
    assert_eq!(weekend(&half_past, datetime!(2026-03-28 12:00 UTC)), hours(2));

    // A window wholly inside the gap does not open that day.
    let lost = only("America/New_York", Weekday::Sunday, &[Window::hm("02:00", "03:00")]);
    assert_eq!(weekend(&lost, datetime!(2026-03-07 17:00 UTC)), hours(0));
    assert_eq!(lost.next_open(datetime!(2026-03-07 17:00 UTC)).unwrap(), datetime!(2026-03-15 02:00 -4));
}

#[test]
fn a_boundary_in_the_repeated_hour_is_its_first_pass() {
    // Berlin falls back from 03:00 CEST to 02:00 CET at 01:00 UTC.
    let before = only("Europe/Berlin", Weekday::Sunday, &[Window::hm("00:00", "02:30")]);
    let after = only("Europe/Berlin", Weekday::Sunday, &[Window::hm("02:30", "04:00")]);
    let both = only("Europe/Berlin", Weekday::Sunday, &[Window::hm("00:00", "04:00")]);
    let saturday = datetime!(2026-10-24 12:00 UTC);
    assert_eq!(
        before.openings_between(saturday, saturday + hours(48)),
        vec![(datetime!(2026-10-24 22:00 UTC), datetime!(2026-10-25 00:30 UTC))]
    );
    assert_eq!(
        after.openings_between(saturday, saturday + hours(48)),
        vec![(datetime!(2026-10-25 00:30 UTC), datetime!(2026-10-25 03:00 UTC))]
    );
    // The repeated hour counts once: the two halves add up to the whole, which is five real
    // hours for four hours of wall time.
    assert_eq!(weekend(&both, saturday), hours(5));
    assert_eq!(weekend(&before, saturday) + weekend(&after, saturday), hours(5));

    // New York falls back from 02:00 EDT to 01:00 EST at 06:00 UTC.
    let one_to_two = only("America/New_York", Weekday::Sunday, &[Window::hm("01:00", "02:00")]);
    assert_eq!(
        one_to_two.openings_between(datetime!(2026-10-31 12:00 UTC), datetime!(2026-11-02 12:00 UTC)),
        vec![(datetime!(2026-11-01 05:00 UTC), datetime!(2026-11-01 07:00 UTC))]
    );
    // A quarter hour inside the repeated hour opens once, on its first pass.
    let quarter = only("America/New_York", Weekday::Sunday, &[Window::hm("01:30", "01:45")]);
    assert_eq!(
        quarter.openings_between(datetime!(2026-10-31 12:00 UTC), datetime!(2026-11-02 12:00 UTC)),
        vec![(datetime!(2026-11-01 05:30 UTC), datetime!(2026-11-01 05:45 UTC))]
    );
}

#[test]
fn round_the_clock_deadlines_are_real_hours_across_both_changes() {
    for zone in ["Europe/Berlin", "America/New_York"] {
        let always = business(zone, Week::around_the_clock(), vec![]);
        for start in [
            datetime!(2026-03-07 20:00 UTC),
            datetime!(2026-03-28 20:00 UTC),
            datetime!(2026-10-24 20:00 UTC),
            datetime!(2026-10-31 20:00 UTC),
        ] {
            assert_eq!(always.add_business(start, hours(30)).unwrap(), start + hours(30), "{zone} {start}");
            assert_eq!(always.business_between(start, start + hours(30)), hours(30));
        }
    }
    // 00:00 EDT + 4 real hours is 03:00 EST.
    let always = business("America/New_York", Week::around_the_clock(), vec![]);
    assert_eq!(always.add_business(datetime!(2026-11-01 00:00 -4), hours(4)).unwrap(), datetime!(2026-11-01 03:00 -5));
}

#[test]
fn a_zone_that_changes_at_midnight() {
    // Santiago de Chile changes at 24:00 on Saturdays: in September Sunday 00:00 never shows,
    // in April Saturday's last hour is repeated, before Sunday 00:00 shows a second time.
    let saturday = only("America/Santiago", Weekday::Saturday, &[Window::hm("00:00", "24:00")]);
    let sunday = whole_sunday("America/Santiago");
    let around = |cal: &BusinessCalendar, friday_noon: OffsetDateTime| {
        cal.business_between(friday_noon, friday_noon + hours(72))
    };
    // 2026-09-06: clocks go from 24:00 Saturday (-04) straight to 01:00 Sunday (-03).
    assert_eq!(around(&saturday, datetime!(2026-09-04 16:00 UTC)), hours(24));
    assert_eq!(around(&sunday, datetime!(2026-09-04 16:00 UTC)), hours(23));
    assert_eq!(sunday.next_open(datetime!(2026-09-05 12:00 -4)).unwrap(), datetime!(2026-09-06 04:00 UTC));
    // 2026-04-05: 24:00 Saturday (-03) goes back to 23:00 Saturday (-04), so Saturday's last
    // hour shows twice and Sunday 00:00 first shows at 04:00 UTC: Saturday lasts 25 h.
    assert_eq!(around(&saturday, datetime!(2026-04-03 16:00 UTC)), hours(25));
    assert_eq!(around(&sunday, datetime!(2026-04-03 16:00 UTC)), hours(24));
    let both = business(
        "America/Santiago",
        {
            let mut week = Week::default();
            week.set(Weekday::Saturday, vec![Window::hm("00:00", "24:00")]);
            week.set(Weekday::Sunday, vec![Window::hm("00:00", "24:00")]);
            week
        },
        vec![],
    );
    assert_eq!(around(&both, datetime!(2026-04-03 16:00 UTC)), hours(49));
    // A deadline computed from inside the repeated hour still counts real time.
    let from = datetime!(2026-04-05 03:30 UTC); // Saturday 23:30 on the second pass
    assert_eq!(both.add_business(from, minutes(90)).unwrap(), from + minutes(90));
}
