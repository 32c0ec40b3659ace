//! SLA clocks replayed from event logs: every rule of psa.md's SLA section.

use std::collections::{BTreeMap, BTreeSet};

use anchor_sla::{
    BusinessCalendar, CalendarRef, ChangeKind, ClockEvent, ClockEventKind, ClockState, ConfigVersions, PolicyRef,
    PriorityTargets, ReopenRule, ReplayError, SlaClocks, SlaPolicy, Target, Week, Window, replay,
};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{berlin_office, business, german_holidays, hours, minutes};

fn targets(first_response: u32, next_update: u32, resolution: u32) -> PriorityTargets {
    PriorityTargets {
        first_response_minutes: Some(first_response),
        next_update_minutes: Some(next_update),
        resolution_minutes: Some(resolution),
    }
}

/// high: 1 h / 4 h / 8 h; low: 4 h / 8 h / 16 h; zero: a zero first response.
fn standard_policy() -> SlaPolicy {
    SlaPolicy {
        version: 1,
        targets: BTreeMap::from([
            ("high".to_owned(), targets(60, 240, 480)),
            ("low".to_owned(), targets(240, 480, 960)),
            ("zero".to_owned(), PriorityTargets { first_response_minutes: Some(0), ..PriorityTargets::default() }),
        ]),
        warning_percent: 80,
        pausing_statuses: BTreeSet::from(["waiting_on_client".to_owned()]),
        on_reopen: ReopenRule::Resume,
    }
}

struct Desk {
    config: ConfigVersions,
    policy: PolicyRef,
    calendar: CalendarRef,
}

impl Desk {
    /// The standard policy over Berlin office hours with German holidays.
    fn new() -> Self {
        let mut config = ConfigVersions::new();
        let policy = config.add_policy("standard", standard_policy());
        let calendar = config.add_calendar("office", berlin_office());
        Self { config, policy, calendar }
    }

    fn open(&self, at: OffsetDateTime, priority: &str) -> Vec<ClockEvent> {
        self.open_in(at, priority, "new")
    }

    fn open_in(&self, at: OffsetDateTime, priority: &str, status: &str) -> Vec<ClockEvent> {
        vec![ClockEvent::new(
            at,
            ClockEventKind::Opened {
                priority: priority.to_owned(),
                status: status.to_owned(),
                policy: self.policy.clone(),
                calendar: self.calendar.clone(),
            },
        )]
    }

    fn replay(&self, log: &[ClockEvent], now: OffsetDateTime) -> SlaClocks {
        replay(log, &self.config, now).expect("the log replays")
    }
}

fn status(at: OffsetDateTime, status: &str) -> ClockEvent {
    ClockEvent::new(at, ClockEventKind::StatusChanged { status: status.to_owned() })
}

fn event(at: OffsetDateTime, kind: ClockEventKind) -> ClockEvent {
    ClockEvent::new(at, kind)
}

fn priority(at: OffsetDateTime, priority: &str) -> ClockEvent {
    event(at, ClockEventKind::PriorityChanged { priority: priority.to_owned() })
}

fn changes_of(clocks: &SlaClocks, target: Target) -> Vec<(OffsetDateTime, ChangeKind)> {
    clocks.changes.iter().filter(|c| c.target == target).map(|c| (c.at, c.kind)).collect()
}

// Monday 2026-06-01 is an ordinary working day in Berlin (UTC+2).

#[test]
fn friday_afternoon_ticket_is_due_on_tuesday_after_whit_monday() {
    let desk = Desk::new();
    let log = desk.open(datetime!(2026-05-22 16:30 +2), "high");
    let clocks = desk.replay(&log, datetime!(2026-05-22 16:45 +2));
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-05-26 16:30 +2)));
    assert_eq!(clocks.first_response.due_at, Some(datetime!(2026-05-26 09:30 +2)));
    assert_eq!(clocks.resolution.state, ClockState::Running);
    assert_eq!(clocks.resolution.elapsed, minutes(15));
    assert_eq!(clocks.next_update.state, ClockState::Pending);
    // 80 % of 8 h is 6 h 24 min: 30 min on Friday, 5 h 54 min on Tuesday.
    assert_eq!(clocks.resolution.warning_at, Some(datetime!(2026-05-26 14:54 +2)));
}

#[test]
fn a_pause_from_17_00_to_08_00_moves_nothing() {
    let desk = Desk::new();
    let opened = desk.open(datetime!(2026-06-01 09:00 +2), "low");
    let mut paused = opened.clone();
    paused.push(status(datetime!(2026-06-01 17:00 +2), "waiting_on_client"));
    paused.push(status(datetime!(2026-06-02 08:00 +2), "open"));
    let now = datetime!(2026-06-02 12:00 +2);
    let with_pause = desk.replay(&paused, now);
    let without = desk.replay(&opened, now);
    assert_eq!(with_pause.resolution.due_at, Some(datetime!(2026-06-02 17:00 +2)));
    assert_eq!(with_pause.resolution.due_at, without.resolution.due_at);
    assert_eq!(with_pause.resolution.paused, hours(0));
    assert_eq!(with_pause.resolution.elapsed, without.resolution.elapsed);
    assert_eq!(
        changes_of(&with_pause, Target::Resolution),
        vec![
            (datetime!(2026-06-01 09:00 +2), ChangeKind::Started),
            (datetime!(2026-06-01 17:00 +2), ChangeKind::Paused),
            (datetime!(2026-06-02 08:00 +2), ChangeKind::Resumed),
        ]
    );
}

#[test]
fn a_pause_extends_the_deadline_by_the_business_time_it_overlapped() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "low");
    // 16:00 Monday to 10:00 Tuesday: one business hour each side of the night.
    log.push(status(datetime!(2026-06-01 16:00 +2), "waiting_on_client"));
    let during = desk.replay(&log, datetime!(2026-06-02 09:30 +2));
    assert_eq!(during.resolution.state, ClockState::Paused);
    assert_eq!(during.resolution.due_at, None, "no deadline while the clock stands");
    assert_eq!(during.resolution.paused, minutes(90));
    assert_eq!(during.resolution.remaining, Some(hours(9)));
    log.push(status(datetime!(2026-06-02 10:00 +2), "open"));
    let clocks = desk.replay(&log, datetime!(2026-06-02 12:00 +2));
    assert_eq!(clocks.resolution.state, ClockState::Running);
    // 16 h from Monday 09:00 was Tuesday 17:00; two business hours later is Wednesday 11:00.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-03 11:00 +2)));
    assert_eq!(clocks.resolution.paused, hours(2));
    assert_eq!(clocks.resolution.elapsed, hours(9));
}

#[test]
fn a_priority_change_mid_ticket_keeps_elapsed_and_paused_time() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "low");
    log.push(status(datetime!(2026-06-01 10:00 +2), "waiting_on_client"));
    log.push(status(datetime!(2026-06-01 11:00 +2), "open"));
    log.push(priority(datetime!(2026-06-01 13:00 +2), "high"));
    let clocks = desk.replay(&log, datetime!(2026-06-01 14:00 +2));
    let resolution = &clocks.resolution;
    assert_eq!(resolution.paused, hours(1), "the pause before the change is kept");
    assert_eq!(resolution.elapsed, hours(4));
    assert_eq!(resolution.target_duration, Some(hours(8)));
    // 3 h used at 13:00, 5 h left: 4 h on Monday, 1 h on Tuesday.
    assert_eq!(resolution.due_at, Some(datetime!(2026-06-02 10:00 +2)));
    assert_eq!(resolution.remaining, Some(hours(4)));

    // The first response had used 3 h of the 1 h it now has: breached at the change.
    let first = &clocks.first_response;
    assert_eq!(first.state, ClockState::Breached);
    assert_eq!(first.breached_at, Some(datetime!(2026-06-01 13:00 +2)));
    assert_eq!(first.due_at, Some(datetime!(2026-06-01 10:00 +2)), "1 h of running time");

    // A second pause and a change back to low: both pauses add up, elapsed carries over.
    log.push(status(datetime!(2026-06-01 14:00 +2), "waiting_on_client"));
    log.push(status(datetime!(2026-06-01 15:30 +2), "open"));
    log.push(priority(datetime!(2026-06-01 16:00 +2), "low"));
    let clocks = desk.replay(&log, datetime!(2026-06-01 16:30 +2));
    assert_eq!(clocks.resolution.paused, minutes(150));
    assert_eq!(clocks.resolution.elapsed, hours(5));
    // 16 h target, 4 h 30 min used at 16:00: 1 h Monday, 8 h Tuesday, 2 h 30 min Wednesday.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-03 11:30 +2)));
    assert_eq!(clocks.first_response.state, ClockState::Breached, "a longer target does not undo a breach");
    assert!(changes_of(&clocks, Target::Resolution).contains(&(datetime!(2026-06-01 13:00 +2), ChangeKind::Replanned)));
}

#[test]
fn warning_and_breach_instants() {
    let desk = Desk::new();
    let log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    let at = |now| desk.replay(&log, now).first_response;

    let early = at(datetime!(2026-06-01 09:47 +2));
    assert_eq!(early.warning_at, Some(datetime!(2026-06-01 09:48 +2)));
    assert_eq!(early.due_at, Some(datetime!(2026-06-01 10:00 +2)));
    assert_eq!(early.warned_at, None);

    let warned = at(datetime!(2026-06-01 09:49 +2));
    assert_eq!(warned.state, ClockState::Running);
    assert_eq!(warned.warned_at, Some(datetime!(2026-06-01 09:48 +2)));

    let on_the_dot = at(datetime!(2026-06-01 10:00 +2));
    assert_eq!(on_the_dot.state, ClockState::Running, "due at 10:00 is still in time at 10:00");

    let late = at(datetime!(2026-06-01 10:00:01 +2));
    assert_eq!(late.state, ClockState::Breached);
    assert_eq!(late.breached_at, Some(datetime!(2026-06-01 10:00 +2)));
    assert_eq!(late.remaining, Some(-time::Duration::SECOND));

    // Replayed much later, with events in between, the warning and breach are each noted once
    // at their own instants.
    let mut later = log.clone();
    later.push(status(datetime!(2026-06-01 11:00 +2), "in_progress"));
    later.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::FirstPublicResponse));
    let clocks = desk.replay(&later, datetime!(2026-06-03 12:00 +2));
    assert_eq!(
        changes_of(&clocks, Target::FirstResponse),
        vec![
            (datetime!(2026-06-01 09:00 +2), ChangeKind::Started),
            (datetime!(2026-06-01 09:48 +2), ChangeKind::Warned),
            (datetime!(2026-06-01 10:00 +2), ChangeKind::Breached),
            (datetime!(2026-06-01 12:00 +2), ChangeKind::CompletedLate),
        ]
    );
    assert_eq!(clocks.first_response.completed_at, Some(datetime!(2026-06-01 12:00 +2)));
    assert_eq!(clocks.first_response.elapsed, hours(3));

    let mut met = log.clone();
    met.push(event(datetime!(2026-06-01 09:59 +2), ClockEventKind::FirstPublicResponse));
    let clocks = desk.replay(&met, datetime!(2026-06-01 12:00 +2));
    assert_eq!(clocks.first_response.state, ClockState::Met);
    assert_eq!(clocks.first_response.warned_at, Some(datetime!(2026-06-01 09:48 +2)));
    assert_eq!(clocks.first_response.breached_at, None);
}

#[test]
fn next_update_cycles_follow_the_public_replies() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(event(datetime!(2026-06-01 09:30 +2), ClockEventKind::FirstPublicResponse));
    let clocks = desk.replay(&log, datetime!(2026-06-01 10:00 +2));
    assert_eq!(clocks.first_response.state, ClockState::Met);
    assert_eq!(clocks.next_update.cycle, 1);
    assert_eq!(clocks.next_update.due_at, Some(datetime!(2026-06-01 13:30 +2)));

    log.push(event(datetime!(2026-06-01 13:00 +2), ClockEventKind::PublicUpdate));
    let clocks = desk.replay(&log, datetime!(2026-06-01 14:00 +2));
    assert_eq!(clocks.next_update.cycle, 2);
    assert_eq!(clocks.next_update.due_at, Some(datetime!(2026-06-01 17:00 +2)));

    // Nobody writes until Tuesday 10:00: cycle 2 breached at Monday 17:00.
    let clocks = desk.replay(&log, datetime!(2026-06-02 09:30 +2));
    assert_eq!(clocks.next_update.state, ClockState::Breached);
    assert_eq!(clocks.next_update.breached_at, Some(datetime!(2026-06-01 17:00 +2)));
    log.push(event(datetime!(2026-06-02 10:00 +2), ClockEventKind::PublicUpdate));
    let clocks = desk.replay(&log, datetime!(2026-06-02 10:30 +2));
    assert_eq!(clocks.next_update.cycle, 3);
    assert_eq!(clocks.next_update.state, ClockState::Running);
    assert_eq!(clocks.next_update.breached_cycles, 1);
    assert_eq!(clocks.next_update.due_at, Some(datetime!(2026-06-02 14:00 +2)));

    log.push(event(datetime!(2026-06-02 11:00 +2), ClockEventKind::Resolved));
    let clocks = desk.replay(&log, datetime!(2026-06-09 11:00 +2));
    assert!(clocks.resolved);
    assert_eq!(clocks.next_update.state, ClockState::Met, "cycle 3 ended in time");
    assert_eq!(clocks.next_update.completed_at, Some(datetime!(2026-06-02 11:00 +2)));
    // 8 h from Monday 09:00 was Monday 17:00: resolved Tuesday 11:00 is late.
    assert_eq!(clocks.resolution.state, ClockState::Breached);
    assert_eq!(clocks.resolution.breached_at, Some(datetime!(2026-06-01 17:00 +2)));
    assert_eq!(clocks.resolution.completed_at, Some(datetime!(2026-06-02 11:00 +2)));
}

#[test]
fn a_ticket_created_in_a_pausing_status_starts_paused() {
    let desk = Desk::new();
    let mut log = desk.open_in(datetime!(2026-06-01 09:00 +2), "high", "waiting_on_client");
    let clocks = desk.replay(&log, datetime!(2026-06-01 10:00 +2));
    for clock in [&clocks.first_response, &clocks.resolution] {
        assert_eq!(clock.state, ClockState::Paused);
        assert_eq!(clock.due_at, None);
        assert_eq!(clock.paused, hours(1));
        assert_eq!(clock.elapsed, hours(0));
    }
    log.push(status(datetime!(2026-06-01 11:00 +2), "open"));
    let clocks = desk.replay(&log, datetime!(2026-06-01 11:30 +2));
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-02 11:00 +2)));
    assert_eq!(clocks.first_response.due_at, Some(datetime!(2026-06-01 12:00 +2)));
    assert_eq!(clocks.resolution.paused, hours(2));
}

#[test]
fn reopen_resumes_the_resolution_clock_without_the_time_spent_resolved() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::Resolved));
    let closed = desk.replay(&log, datetime!(2026-06-01 15:00 +2));
    assert_eq!(closed.resolution.state, ClockState::Met);
    assert_eq!(closed.resolution.completed_at, Some(datetime!(2026-06-01 12:00 +2)));
    assert_eq!(closed.resolution.elapsed, hours(3));
    // No reply came: resolving stopped the first-response clock too, late (due 10:00).
    assert_eq!(closed.first_response.state, ClockState::Breached);

    log.push(event(datetime!(2026-06-02 09:00 +2), ClockEventKind::Reopened));
    let clocks = desk.replay(&log, datetime!(2026-06-02 10:00 +2));
    assert!(!clocks.resolved);
    assert_eq!(clocks.resolution.state, ClockState::Running);
    assert_eq!(clocks.resolution.cycle, 1);
    assert_eq!(clocks.resolution.completed_at, None);
    assert_eq!(clocks.resolution.elapsed, hours(4), "3 h before, 1 h since the reopen");
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-02 14:00 +2)));
    // The client is owed an answer from the reopen on.
    assert_eq!(clocks.next_update.state, ClockState::Running);
    assert_eq!(clocks.next_update.due_at, Some(datetime!(2026-06-02 13:00 +2)));
    // The first response is history.
    assert_eq!(clocks.first_response.state, ClockState::Breached);
    assert!(changes_of(&clocks, Target::Resolution).contains(&(datetime!(2026-06-02 09:00 +2), ChangeKind::Reopened)));
}

#[test]
fn reopen_restarts_the_resolution_clock_when_the_policy_says_so() {
    let mut policy = standard_policy();
    policy.on_reopen = ReopenRule::Restart;
    let mut config = ConfigVersions::new();
    let policy = config.add_policy("restart", policy);
    let calendar = config.add_calendar("office", berlin_office());
    let mut log = vec![event(
        datetime!(2026-06-01 09:00 +2),
        ClockEventKind::Opened { priority: "high".to_owned(), status: "new".to_owned(), policy, calendar },
    )];
    log.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::Resolved));
    log.push(event(datetime!(2026-06-02 09:00 +2), ClockEventKind::Reopened));
    let clocks = replay(&log, &config, datetime!(2026-06-02 10:00 +2)).unwrap();
    assert_eq!(clocks.resolution.cycle, 2);
    assert_eq!(clocks.resolution.elapsed, hours(1));
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-02 17:00 +2)));
}

#[test]
fn a_breached_resolution_stays_breached_after_a_reopen() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(event(datetime!(2026-06-02 12:00 +2), ClockEventKind::Resolved));
    log.push(event(datetime!(2026-06-03 09:00 +2), ClockEventKind::Reopened));
    let clocks = desk.replay(&log, datetime!(2026-06-03 10:00 +2));
    assert_eq!(clocks.resolution.state, ClockState::Breached);
    assert_eq!(clocks.resolution.breached_at, Some(datetime!(2026-06-01 17:00 +2)));
    assert_eq!(clocks.resolution.breached_cycles, 1);
}

#[test]
fn a_calendar_edit_replans_open_tickets_and_leaves_closed_ones() {
    let mut desk = Desk::new();
    // Version 2 of the office calendar: mornings only.
    let short_calendar = anchor_sla::Calendar {
        version: 2,
        time_zone: "Europe/Berlin".to_owned(),
        week: Week::monday_to_friday(&[Window::hm("09:00", "13:00")]),
        holidays: german_holidays(),
    };
    short_calendar.validate().unwrap();
    let v2 = desk.config.add_calendar("office", BusinessCalendar::new(&short_calendar).unwrap());
    assert_eq!(v2, CalendarRef::new("office", 2));

    let mut open = desk.open(datetime!(2026-06-01 09:00 +2), "low");
    let before = desk.replay(&open, datetime!(2026-06-01 12:00 +2));
    assert_eq!(before.resolution.due_at, Some(datetime!(2026-06-02 17:00 +2)));
    open.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::CalendarChanged { calendar: v2.clone() }));
    let clocks = desk.replay(&open, datetime!(2026-06-01 16:00 +2));
    // 3 h used under version 1; 13 h left at 4 h a day: 1 h Monday, then Tue, Wed, Thu.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-04 13:00 +2)));
    assert_eq!(clocks.resolution.elapsed, hours(4));
    assert_eq!(clocks.calendar, v2);
    assert!(changes_of(&clocks, Target::Resolution).contains(&(datetime!(2026-06-01 12:00 +2), ChangeKind::Replanned)));

    // A ticket closed before the edit gets no event: its replay is what it was, even with
    // version 2 among the versions given.
    let mut closed = desk.open(datetime!(2026-05-28 09:00 +2), "low");
    closed.push(event(datetime!(2026-05-29 11:00 +2), ClockEventKind::Resolved));
    let now = datetime!(2026-06-01 16:00 +2);
    let replayed = desk.replay(&closed, now);
    assert_eq!(replayed.resolution.state, ClockState::Met);
    assert_eq!(replayed.resolution.due_at, Some(datetime!(2026-05-29 17:00 +2)));
    // Even if a calendar event were appended after the close, nothing would be rewritten.
    let mut appended = closed.clone();
    appended.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::CalendarChanged { calendar: v2 }));
    let after = desk.replay(&appended, now);
    assert_eq!(after.resolution, replayed.resolution);
    assert_eq!(after.first_response, replayed.first_response);
}

#[test]
fn a_policy_change_keeps_pauses_and_applies_its_own_pausing_statuses() {
    let mut desk = Desk::new();
    let mut v2 = standard_policy();
    v2.version = 2;
    v2.pausing_statuses.insert("waiting_on_vendor".to_owned());
    v2.targets.insert("high".to_owned(), targets(60, 240, 600));
    let v2 = desk.config.add_policy("standard", v2);

    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(status(datetime!(2026-06-01 10:00 +2), "waiting_on_client"));
    log.push(status(datetime!(2026-06-01 11:00 +2), "waiting_on_vendor"));
    // Under version 1 the vendor status does not pause.
    let clocks = desk.replay(&log, datetime!(2026-06-01 12:00 +2));
    assert_eq!(clocks.resolution.state, ClockState::Running);
    log.push(event(datetime!(2026-06-01 12:00 +2), ClockEventKind::PolicyChanged { policy: v2.clone() }));
    let clocks = desk.replay(&log, datetime!(2026-06-01 13:00 +2));
    assert_eq!(clocks.policy, v2);
    assert_eq!(clocks.resolution.state, ClockState::Paused, "version 2 pauses on it");
    assert_eq!(clocks.resolution.paused, hours(2));
    assert_eq!(clocks.resolution.elapsed, hours(2));
    log.push(status(datetime!(2026-06-01 14:00 +2), "open"));
    let clocks = desk.replay(&log, datetime!(2026-06-01 14:00 +2));
    // 10 h target, 2 h used: 3 h Monday, 5 h Tuesday.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-02 14:00 +2)));
    assert_eq!(clocks.resolution.paused, hours(3));
}

#[test]
fn a_zero_target_is_due_the_instant_its_clock_starts() {
    let desk = Desk::new();
    let log = desk.open(datetime!(2026-06-01 09:00 +2), "zero");
    let clocks = desk.replay(&log, datetime!(2026-06-01 09:00 +2));
    assert_eq!(clocks.first_response.due_at, Some(datetime!(2026-06-01 09:00 +2)));
    assert_eq!(clocks.first_response.warning_at, clocks.first_response.due_at);
    assert_eq!(clocks.first_response.state, ClockState::Running);
    // No other targets for this priority: counted, never due.
    assert_eq!(clocks.resolution.due_at, None);
    assert_eq!(clocks.resolution.target_duration, None);

    let mut answered = log.clone();
    answered.push(event(datetime!(2026-06-01 09:00 +2), ClockEventKind::FirstPublicResponse));
    assert_eq!(desk.replay(&answered, datetime!(2026-06-01 12:00 +2)).first_response.state, ClockState::Met);
    let later = desk.replay(&log, datetime!(2026-06-01 09:01 +2));
    assert_eq!(later.first_response.state, ClockState::Breached);
    assert_eq!(later.first_response.breached_at, Some(datetime!(2026-06-01 09:00 +2)));
}

#[test]
fn a_pause_that_starts_at_the_deadline_does_not_extend_it() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(status(datetime!(2026-06-01 17:00 +2), "waiting_on_client"));
    let paused = desk.replay(&log, datetime!(2026-06-01 20:00 +2));
    assert_eq!(paused.resolution.state, ClockState::Paused, "17:00 was still in time");
    log.push(status(datetime!(2026-06-02 08:00 +2), "open"));
    let clocks = desk.replay(&log, datetime!(2026-06-02 08:30 +2));
    // The pause overlapped no business time, so the deadline is still Monday 17:00.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-06-01 17:00 +2)));
    assert_eq!(clocks.resolution.state, ClockState::Breached);
    assert_eq!(clocks.resolution.breached_at, Some(datetime!(2026-06-02 08:00 +2)));
}

#[test]
fn deadlines_are_the_same_however_often_and_whenever_recomputed() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-05-22 16:30 +2), "low");
    log.push(status(datetime!(2026-05-26 10:00 +2), "waiting_on_client"));
    log.push(status(datetime!(2026-05-26 15:00 +2), "open"));
    log.push(priority(datetime!(2026-05-27 11:00 +2), "high"));
    let reference = desk.replay(&log, datetime!(2026-05-27 11:00 +2));
    for minute in (0..6 * 60).step_by(7) {
        let now = datetime!(2026-05-27 11:00 +2) + minutes(minute);
        let clocks = desk.replay(&log, now);
        for target in Target::ALL {
            let (a, b) = (clocks.clock(target), reference.clock(target));
            assert_eq!(a.due_at, b.due_at, "{target:?} at {now}");
            assert_eq!(a.warning_at, b.warning_at, "{target:?} at {now}");
        }
        assert_eq!(desk.replay(&log, now), clocks, "replay is a pure function");
    }
}

#[test]
fn a_ticket_over_the_spring_change_in_berlin() {
    let desk = Desk::new();
    let log = desk.open(datetime!(2026-03-27 16:00 +1), "high");
    let clocks = desk.replay(&log, datetime!(2026-03-30 12:00 +2));
    // 1 h on Friday, 7 h on Monday in summer time.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-03-30 16:00 +2)));
    assert_eq!(clocks.resolution.elapsed, hours(4));
}

#[test]
fn a_round_the_clock_ticket_over_the_fall_back_night_in_new_york() {
    let mut config = ConfigVersions::new();
    let policy = config.add_policy("standard", standard_policy());
    let calendar = config.add_calendar("noc", business("America/New_York", Week::around_the_clock(), vec![]));
    let mut log = vec![event(
        datetime!(2026-11-01 00:00 -4),
        ClockEventKind::Opened { priority: "high".to_owned(), status: "new".to_owned(), policy, calendar },
    )];
    // A pause over the repeated hour counts its real length.
    log.push(status(datetime!(2026-11-01 01:30 -4), "waiting_on_client"));
    log.push(status(datetime!(2026-11-01 01:30 -5), "open"));
    let clocks = replay(&log, &config, datetime!(2026-11-01 02:00 -5)).unwrap();
    assert_eq!(clocks.resolution.paused, hours(1));
    assert_eq!(clocks.resolution.elapsed, minutes(120));
    // 8 h of real time plus the hour paused.
    assert_eq!(clocks.resolution.due_at, Some(datetime!(2026-11-01 00:00 -4) + hours(9)));
}

#[test]
fn logs_that_cannot_be_replayed_say_why() {
    let desk = Desk::new();
    let now = datetime!(2026-06-02 12:00 +2);
    assert_eq!(replay(&[], &desk.config, now), Err(ReplayError::Empty));
    let stray = vec![status(datetime!(2026-06-01 09:00 +2), "open")];
    assert_eq!(replay(&stray, &desk.config, now), Err(ReplayError::NotOpenedFirst { found: "status_changed" }));
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(status(datetime!(2026-06-01 08:00 +2), "open"));
    assert_eq!(replay(&log, &desk.config, now), Err(ReplayError::OutOfOrder { index: 1 }));
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.extend(desk.open(datetime!(2026-06-01 10:00 +2), "high"));
    assert_eq!(replay(&log, &desk.config, now), Err(ReplayError::OpenedAgain { index: 1 }));
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(event(
        datetime!(2026-06-01 10:00 +2),
        ClockEventKind::CalendarChanged { calendar: CalendarRef::new("office", 9) },
    ));
    let err = replay(&log, &desk.config, now).unwrap_err();
    assert_eq!(err, ReplayError::UnknownCalendar(CalendarRef::new("office", 9)));
    assert_eq!(err.to_string(), "calendar office version 9 is not among the versions given");
}

#[test]
fn repeated_and_stray_events_are_ignored() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-06-01 09:00 +2), "high");
    log.push(event(datetime!(2026-06-01 09:10 +2), ClockEventKind::Reopened));
    log.push(event(datetime!(2026-06-01 09:20 +2), ClockEventKind::PublicUpdate));
    log.push(event(datetime!(2026-06-01 09:30 +2), ClockEventKind::FirstPublicResponse));
    log.push(event(datetime!(2026-06-01 10:00 +2), ClockEventKind::Resolved));
    log.push(event(datetime!(2026-06-01 10:05 +2), ClockEventKind::Resolved));
    log.push(event(datetime!(2026-06-01 10:10 +2), ClockEventKind::PublicUpdate));
    let clocks = desk.replay(&log, datetime!(2026-06-01 11:00 +2));
    // The first public update counted as the first response.
    assert_eq!(clocks.first_response.completed_at, Some(datetime!(2026-06-01 09:20 +2)));
    assert_eq!(clocks.next_update.cycle, 2);
    assert_eq!(clocks.resolution.completed_at, Some(datetime!(2026-06-01 10:00 +2)));
    assert_eq!(clocks.next_update.completed_at, Some(datetime!(2026-06-01 10:00 +2)));
}

#[test]
fn events_and_reports_are_json() {
    let desk = Desk::new();
    let mut log = desk.open(datetime!(2026-05-22 16:30 +2), "high");
    log.push(status(datetime!(2026-05-22 16:45 +2), "waiting_on_client"));
    let text = serde_json::to_string(&log).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value[0]["event"], "opened");
    assert_eq!(value[0]["at"], "2026-05-22T16:30:00+02:00");
    assert_eq!(value[0]["policy"]["id"], "standard");
    assert_eq!(value[1]["event"], "status_changed");
    assert_eq!(value[1]["status"], "waiting_on_client");
    let back: Vec<ClockEvent> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, log);
    let stored: Vec<ClockEvent> = serde_json::from_str(
        r#"[{"at": "2026-05-22T14:30:00Z", "event": "opened", "priority": "high", "status": "new",
             "policy": {"id": "standard", "version": 1}, "calendar": {"id": "office", "version": 1}},
            {"at": "2026-05-22T14:40:00Z", "event": "first_public_response"}]"#,
    )
    .unwrap();
    let clocks = desk.replay(&stored, datetime!(2026-05-22 17:00 +2));
    let report = serde_json::to_value(&clocks).unwrap();
    assert_eq!(report["first_response"]["state"], "met");
    assert_eq!(report["resolution"]["state"], "running");
    assert_eq!(report["resolution"]["elapsed"], 30 * 60);
    assert_eq!(report["resolution"]["target_duration"], 8 * 3600);
    assert_eq!(report["resolution"]["due_at"], "2026-05-26T14:30:00Z");
    assert_eq!(report["next_update"]["due_at"], "2026-05-26T10:40:00Z");
}
