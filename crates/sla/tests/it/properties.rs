//! Property checks over many generated cases, from a small deterministic generator so a
//! failure always reproduces: the arithmetic round-trips, composes and adds up, round-the-clock
//! calendars count real time in awkward zones, and replayed clocks keep their books.

use std::collections::{BTreeMap, BTreeSet};

use anchor_sla::{
    BusinessCalendar, ClockEvent, ClockEventKind, ClockState, ConfigVersions, Holiday, PriorityTargets, ReopenRule,
    SlaPolicy, Week, Window, replay,
};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime, Weekday};

use crate::support::{business, german_holidays, hours, nine_to_five, us_holidays};

/// SplitMix64: tiny, fast, and the same sequence on every machine.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An instant in 2025-2028, on a whole minute half the time (the edges of windows), with
    /// a fraction of a second otherwise.
    fn instant(&mut self) -> OffsetDateTime {
        let base = datetime!(2025-01-01 00:00 UTC);
        let span_minutes = 4 * 365 * 24 * 60;
        let at = base + Duration::minutes(self.below(span_minutes) as i64);
        if self.below(2) == 0 { at } else { at + Duration::milliseconds(self.below(60_000) as i64) }
    }

    /// A business duration up to 400 h: zero, whole hours, or any second.
    fn duration(&mut self) -> Duration {
        match self.below(8) {
            0 => Duration::ZERO,
            1..=3 => hours(1 + self.below(400) as i64),
            _ => Duration::seconds(self.below(400 * 3600) as i64),
        }
    }
}

/// Calendars with every feature: holidays from the fixtures and ranges, split windows,
/// overnight shifts, windows inside the DST hours, round the clock in zones with odd changes.
fn calendars() -> Vec<(&'static str, BusinessCalendar)> {
    let mut berlin_holidays = german_holidays();
    berlin_holidays.push(Holiday::range(date!(2026 - 07 - 13), date!(2026 - 08 - 07)));
    berlin_holidays.push(Holiday::yearly(12, 24));

    let mut nights = Week::default();
    for day in [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ] {
        nights.set(day, vec![Window::hm("00:00", "06:00"), Window::hm("22:00", "24:00")]);
    }
    let dst_hours =
        Week::every_day(&[Window::hm("00:30", "02:30"), Window::hm("02:45", "03:30"), Window::hm("23:00", "24:00")]);
    vec![
        ("berlin office", business("Europe/Berlin", nine_to_five(), berlin_holidays)),
        (
            "new york split",
            business(
                "America/New_York",
                Week::monday_to_friday(&[Window::hm("08:00", "12:00"), Window::hm("13:00", "17:00")]),
                us_holidays(),
            ),
        ),
        ("london nights", business("Europe/London", nights, vec![])),
        ("berlin dst hours", business("Europe/Berlin", dst_hours.clone(), vec![])),
        ("new york dst hours", business("America/New_York", dst_hours, vec![])),
        ("santiago 24x7", business("America/Santiago", Week::around_the_clock(), vec![])),
        ("lord howe 24x7", business("Australia/Lord_Howe", Week::around_the_clock(), vec![])),
    ]
}

#[test]
fn adding_then_measuring_gives_back_the_duration() {
    let mut cases = Cases(1);
    for (name, cal) in calendars() {
        for _ in 0..300 {
            let (start, amount) = (cases.instant(), cases.duration());
            let due = cal.add_business(start, amount).unwrap();
            assert!(due >= start, "{name}: {start} + {amount}");
            assert_eq!(cal.business_between(start, due), amount, "{name}: {start} + {amount} = {due}");
            if amount > Duration::ZERO {
                // Earliest: a moment before, the time was not yet all used.
                let before = due - Duration::nanoseconds(1);
                assert!(cal.business_between(start, before) < amount, "{name}: {start} + {amount}");
                assert!(cal.is_open(before), "{name}: a deadline ends business time");
            }
        }
    }
}

#[test]
fn deadlines_compose_and_grow_with_the_duration() {
    let mut cases = Cases(2);
    for (name, cal) in calendars() {
        for _ in 0..200 {
            let (start, x, y) = (cases.instant(), cases.duration(), cases.duration());
            let step = cal.add_business(cal.add_business(start, x).unwrap(), y).unwrap();
            assert_eq!(step, cal.add_business(start, x + y).unwrap(), "{name}: {start} + {x} + {y}");
            let (short, long) = if x <= y { (x, y) } else { (y, x) };
            assert!(cal.add_business(start, short).unwrap() <= cal.add_business(start, long).unwrap(), "{name}");
        }
    }
}

#[test]
fn business_time_adds_up_over_consecutive_spans() {
    let mut cases = Cases(3);
    for (name, cal) in calendars() {
        for _ in 0..200 {
            // Spans of up to three months each: long enough for holidays and DST changes.
            let a = cases.instant();
            let b = a + Duration::minutes(cases.below(90 * 24 * 60) as i64);
            let c = b + Duration::seconds(cases.below(90 * 24 * 3600) as i64);
            assert_eq!(
                cal.business_between(a, c),
                cal.business_between(a, b) + cal.business_between(b, c),
                "{name}: {a} {b} {c}"
            );
            assert!(cal.business_between(a, c) <= c - a, "{name}: never more than real time");
            let openings: Duration = cal.openings_between(a, c).iter().map(|(s, e)| *e - *s).sum();
            assert_eq!(openings, cal.business_between(a, c), "{name}");
        }
    }
}

#[test]
fn round_the_clock_counts_real_time_in_every_kind_of_zone() {
    let mut cases = Cases(4);
    for zone in [
        "Europe/Berlin",
        "America/New_York",
        "America/Santiago",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "America/St_Johns",
        "UTC",
    ] {
        let always = business(zone, Week::around_the_clock(), vec![]);
        for _ in 0..200 {
            let (a, amount) = (cases.instant(), cases.duration());
            assert_eq!(always.add_business(a, amount).unwrap(), a + amount, "{zone}: {a}");
            let b = cases.instant();
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            assert_eq!(always.business_between(a, b), b - a, "{zone}: {a} {b}");
            assert!(always.is_open(a));
        }
    }
}

#[test]
fn the_next_opening_is_open_and_nothing_comes_before_it() {
    let mut cases = Cases(5);
    for (name, cal) in calendars() {
        for _ in 0..300 {
            let at = cases.instant();
            let next = cal.next_open(at).unwrap();
            assert!(next >= at);
            assert!(cal.is_open(next), "{name}: {at} -> {next}");
            assert_eq!(cal.business_between(at, next), Duration::ZERO, "{name}: {at}");
            assert_eq!(cal.is_open(at), next == at, "{name}: {at}");
        }
    }
}

fn policy(version: u32, reopen: ReopenRule) -> SlaPolicy {
    let targets = |f: u32, n: u32, r: u32| PriorityTargets {
        first_response_minutes: Some(f),
        next_update_minutes: Some(n),
        resolution_minutes: Some(r),
    };
    SlaPolicy {
        version,
        targets: BTreeMap::from([
            ("urgent".to_owned(), targets(15, 60, 240)),
            ("high".to_owned(), targets(60, 240, 480)),
            ("low".to_owned(), targets(480, 960, 2400)),
        ]),
        warning_percent: 75,
        pausing_statuses: BTreeSet::from(["waiting_on_client".to_owned()]),
        on_reopen: reopen,
    }
}

/// A random ticket history without resolves or calendar changes: status changes in and out of
/// the pausing status, priority changes and public replies, minutes to days apart.
fn history(cases: &mut Cases, opened: OffsetDateTime) -> Vec<ClockEvent> {
    let priorities = ["urgent", "high", "low"];
    let statuses = ["open", "in_progress", "waiting_on_client", "waiting_on_client"];
    let mut log = vec![ClockEvent::new(
        opened,
        ClockEventKind::Opened {
            priority: priorities[cases.below(3) as usize].to_owned(),
            status: statuses[cases.below(4) as usize].to_owned(),
            policy: anchor_sla::PolicyRef::new("p", 1),
            calendar: anchor_sla::CalendarRef::new("c", 1),
        },
    )];
    let mut at = opened;
    for _ in 0..cases.below(14) {
        at += Duration::minutes(cases.below(36 * 60) as i64);
        let kind = match cases.below(6) {
            0 | 1 => ClockEventKind::StatusChanged { status: statuses[cases.below(4) as usize].to_owned() },
            2 => ClockEventKind::PriorityChanged { priority: priorities[cases.below(3) as usize].to_owned() },
            3 => ClockEventKind::FirstPublicResponse,
            4 => ClockEventKind::PublicUpdate,
            _ => ClockEventKind::StatusChanged { status: "open".to_owned() },
        };
        log.push(ClockEvent::new(at, kind));
    }
    log
}

#[test]
fn replayed_clocks_keep_their_books() {
    let mut cases = Cases(6);
    for (name, cal) in calendars() {
        let mut config = ConfigVersions::new();
        config.add_policy("p", policy(1, ReopenRule::Resume));
        config.add_calendar("c", cal.clone());
        for _ in 0..60 {
            let opened = cases.instant();
            let log = history(&mut cases, opened);
            let last = log.last().unwrap().at;
            let now = last + Duration::minutes(cases.below(60 * 60) as i64);
            let clocks = replay(&log, &config, now).unwrap();
            let resolution = &clocks.resolution;

            // Every business moment since opening was either counted or paused.
            assert_eq!(resolution.elapsed + resolution.paused, cal.business_between(opened, now), "{name}: {log:?}");
            // A running clock's deadline is exactly its remaining business time away.
            if resolution.state == ClockState::Running {
                let due = resolution.due_at.unwrap();
                if due >= now {
                    assert_eq!(Some(cal.business_between(now, due)), resolution.remaining, "{name}: {log:?}");
                }
            }
            for target in anchor_sla::Target::ALL {
                let clock = clocks.clock(target);
                if let Some(breached) = clock.breached_at {
                    // Not necessarily after today's deadline: a breach under a shorter target
                    // stays when a longer one follows.
                    assert!(breached >= opened && breached <= now, "{name}: {target:?} {log:?}");
                    assert!(
                        clocks.changes.iter().any(|c| c.target == target
                            && c.kind == anchor_sla::ChangeKind::Breached
                            && c.at == breached)
                    );
                    assert_eq!(clock.state, ClockState::Breached);
                }
                if clock.state == ClockState::Paused {
                    assert_eq!(clock.due_at, None, "{name}: no deadline while paused");
                }
                if clock.state == ClockState::Running {
                    assert_eq!(clock.due_at.is_some(), clock.target_duration.is_some(), "{name}");
                }
            }
            assert!(clocks.changes.windows(2).all(|w| w[0].at <= w[1].at), "{name}");

            // Deadlines move only at events: every prefix of the log gives the same deadlines
            // whenever it is replayed before the next event.
            for k in 0..log.len() {
                let prefix = &log[..=k];
                let until = log.get(k + 1).map_or(now, |e| e.at);
                let early = replay(prefix, &config, prefix[k].at).unwrap();
                let late = replay(prefix, &config, until).unwrap();
                for target in anchor_sla::Target::ALL {
                    assert_eq!(early.clock(target).due_at, late.clock(target).due_at, "{name}: {target:?} {prefix:?}");
                    assert_eq!(early.clock(target).warning_at, late.clock(target).warning_at, "{name}");
                }
            }
        }
    }
}
