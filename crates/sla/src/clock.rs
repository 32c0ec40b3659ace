//! Replaying a ticket's clock log into its SLA clocks.
//!
//! [`replay`] is a pure function of the log, the policy and calendar versions the log names,
//! and the instant to report at. Deadlines and warning instants depend only on the events, so
//! a clock recomputed at any later instant, any number of times, gives the same ones; only the
//! elapsed times and whether a deadline has passed depend on `now`.

use time::OffsetDateTime;

use crate::business_time::{BusinessCalendar, ClockError, Nanos, from_nanos, nanos_to_duration, to_nanos};
use crate::clock_log::{CalendarRef, ClockEvent, ClockEventKind, ConfigVersions, PolicyRef};
use crate::clock_report::{ChangeKind, ClockChange, ClockState, SlaClocks, TargetClock};
use crate::policy::{ReopenRule, SlaPolicy, Target};

/// Why a log cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the clock log is empty")]
    Empty,
    #[error("the clock log must begin with an opened event, not {found}")]
    NotOpenedFirst { found: &'static str },
    #[error("event {index} opens the ticket a second time")]
    OpenedAgain { index: usize },
    #[error("event {index} is earlier than the event before it")]
    OutOfOrder { index: usize },
    #[error("policy {} version {} is not among the versions given", .0.id, .0.version)]
    UnknownPolicy(PolicyRef),
    #[error("calendar {} version {} is not among the versions given", .0.id, .0.version)]
    UnknownCalendar(CalendarRef),
    #[error(transparent)]
    Clock(#[from] ClockError),
}

/// Replays a ticket's clock log and reports its clocks as of `now`.
///
/// The log must begin with [`ClockEventKind::Opened`] and be in time order (equal instants
/// are taken in log order). Events that change nothing in the state they meet (a resolve of a
/// resolved ticket, a reopen of an open one, a reply after resolution) are ignored, so a log
/// with such repeats still replays.
pub fn replay(events: &[ClockEvent], config: &ConfigVersions, now: OffsetDateTime) -> Result<SlaClocks, ReplayError> {
    let (first, rest) = events.split_first().ok_or(ReplayError::Empty)?;
    let ClockEventKind::Opened { priority, status, policy, calendar } = &first.kind else {
        return Err(ReplayError::NotOpenedFirst { found: first.kind.name() });
    };

    let mut ticket = Ticket {
        config,
        policy_ref: policy.clone(),
        policy: lookup_policy(config, policy)?,
        calendar_ref: calendar.clone(),
        calendar: lookup_calendar(config, calendar)?,
        priority: priority.clone(),
        status: status.clone(),
        resolved: false,
        clocks: Target::ALL.map(Clock::new),
        changes: Vec::new(),
    };
    let opened = to_nanos(first.at);
    ticket.start(Target::FirstResponse, opened)?;
    ticket.start(Target::Resolution, opened)?;

    let mut last = opened;
    for (offset, event) in rest.iter().enumerate() {
        let index = offset + 1;
        let at = to_nanos(event.at);
        if at < last {
            return Err(ReplayError::OutOfOrder { index });
        }
        last = at;
        ticket.check(at)?;
        ticket.apply(index, at, &event.kind)?;
    }

    let as_of = to_nanos(now).max(last);
    ticket.check(as_of)?;
    ticket.report(as_of)
}

fn lookup_policy<'a>(config: &'a ConfigVersions, key: &PolicyRef) -> Result<&'a SlaPolicy, ReplayError> {
    config.policy(key).ok_or_else(|| ReplayError::UnknownPolicy(key.clone()))
}

fn lookup_calendar<'a>(config: &'a ConfigVersions, key: &CalendarRef) -> Result<&'a BusinessCalendar, ReplayError> {
    config.calendar(key).ok_or_else(|| ReplayError::UnknownCalendar(key.clone()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Active,
    Done,
}

/// A stretch of a cycle during which the clock ran, measured with the calendar then in force.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    start: Nanos,
    calendar: &'a BusinessCalendar,
    amount: Nanos,
}

/// The stretch in progress: since the last re-plan, running or paused, under the current
/// calendar.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: Nanos,
    paused: bool,
}

#[derive(Debug)]
struct Clock<'a> {
    target: Target,
    phase: Phase,
    cycle: u32,
    breached_cycles: u32,
    running: Vec<Segment<'a>>,
    elapsed_closed: Nanos,
    paused_closed: Nanos,
    open: Option<Open>,
    target_amount: Option<Nanos>,
    due: Option<Nanos>,
    warning: Option<Nanos>,
    /// When the current plan took effect: a deadline that is already past when planned
    /// breaches at this instant, not before it.
    plan_since: Nanos,
    warned_at: Option<Nanos>,
    breached_at: Option<Nanos>,
    completed_at: Option<Nanos>,
}

impl<'a> Clock<'a> {
    fn new(target: Target) -> Self {
        Self {
            target,
            phase: Phase::Pending,
            cycle: 0,
            breached_cycles: 0,
            running: Vec::new(),
            elapsed_closed: 0,
            paused_closed: 0,
            open: None,
            target_amount: None,
            due: None,
            warning: None,
            plan_since: 0,
            warned_at: None,
            breached_at: None,
            completed_at: None,
        }
    }

    fn is_running(&self) -> bool {
        self.phase == Phase::Active && self.open.is_some_and(|o| !o.paused)
    }

    /// Ends the stretch in progress at `at`, measuring it with the calendar it ran under.
    fn close_open(&mut self, at: Nanos, calendar: &'a BusinessCalendar) {
        if let Some(open) = self.open.take() {
            let amount = calendar.between(open.start, at);
            if open.paused {
                self.paused_closed += amount;
            } else {
                self.elapsed_closed += amount;
                self.running.push(Segment { start: open.start, calendar, amount });
            }
        }
    }

    /// The instant at which the clock's running time reaches `amount`: inside a closed stretch
    /// if it got there already, else in the running stretch from `open_start`.
    fn crossing(&self, amount: Nanos, open_start: Nanos, calendar: &BusinessCalendar) -> Result<Nanos, ClockError> {
        let mut used = 0;
        for segment in &self.running {
            if used + segment.amount >= amount {
                return segment.calendar.add(segment.start, amount - used);
            }
            used += segment.amount;
        }
        calendar.add(open_start, amount - used)
    }

    fn plan(
        &mut self,
        at: Nanos,
        policy: &SlaPolicy,
        priority: &str,
        calendar: &BusinessCalendar,
    ) -> Result<(), ClockError> {
        self.target_amount = policy.target(priority, self.target).map(|d| d.whole_nanoseconds());
        self.plan_since = at;
        let running = self.open.filter(|o| !o.paused);
        match (self.target_amount, running) {
            (Some(amount), Some(open)) => {
                self.due = Some(self.crossing(amount, open.start, calendar)?);
                let warn = amount * Nanos::from(policy.warning_percent) / 100;
                self.warning = Some(self.crossing(warn, open.start, calendar)?);
            }
            _ => {
                self.due = None;
                self.warning = None;
            }
        }
        Ok(())
    }
}

struct Ticket<'a> {
    config: &'a ConfigVersions,
    policy_ref: PolicyRef,
    policy: &'a SlaPolicy,
    calendar_ref: CalendarRef,
    calendar: &'a BusinessCalendar,
    priority: String,
    status: String,
    resolved: bool,
    clocks: [Clock<'a>; 3],
    changes: Vec<ClockChange>,
}

fn index(target: Target) -> usize {
    match target {
        Target::FirstResponse => 0,
        Target::NextUpdate => 1,
        Target::Resolution => 2,
    }
}

impl<'a> Ticket<'a> {
    fn paused(&self) -> bool {
        self.policy.pauses_on(&self.status)
    }

    fn note(&mut self, at: Nanos, target: Target, kind: ChangeKind) -> Result<(), ClockError> {
        let clock = &self.clocks[index(target)];
        self.changes.push(ClockChange {
            at: from_nanos(at)?,
            target,
            cycle: clock.cycle,
            kind,
            due_at: clock.due.map(from_nanos).transpose()?,
        });
        Ok(())
    }

    /// A new cycle of one clock, from nothing, at `at`.
    fn start(&mut self, target: Target, at: Nanos) -> Result<(), ClockError> {
        let paused = self.paused();
        let (policy, priority, calendar) = (self.policy, self.priority.clone(), self.calendar);
        let clock = &mut self.clocks[index(target)];
        clock.phase = Phase::Active;
        clock.cycle += 1;
        clock.running.clear();
        clock.elapsed_closed = 0;
        clock.paused_closed = 0;
        clock.warned_at = None;
        clock.breached_at = None;
        clock.completed_at = None;
        clock.open = Some(Open { start: at, paused });
        clock.plan(at, policy, &priority, calendar)?;
        self.note(at, target, ChangeKind::Started)?;
        if paused {
            self.note(at, target, ChangeKind::Paused)?;
        }
        Ok(())
    }

    /// The clock's own event came: it stops, met or late.
    fn complete(&mut self, target: Target, at: Nanos) -> Result<(), ClockError> {
        let calendar = self.calendar;
        let clock = &mut self.clocks[index(target)];
        if clock.phase != Phase::Active {
            return Ok(());
        }
        clock.close_open(at, calendar);
        clock.phase = Phase::Done;
        clock.completed_at = Some(at);
        let kind = if clock.breached_at.is_some() { ChangeKind::CompletedLate } else { ChangeKind::Met };
        self.note(at, target, kind)
    }

    /// Records a warning or breach whose instant has passed by `at` on a running clock.
    fn check(&mut self, at: Nanos) -> Result<(), ClockError> {
        for target in Target::ALL {
            let clock = &mut self.clocks[index(target)];
            if !clock.is_running() {
                continue;
            }
            let mut noted = Vec::new();
            if clock.warned_at.is_none()
                && let Some(warning) = clock.warning.filter(|w| *w < at)
            {
                let when = warning.max(clock.plan_since);
                clock.warned_at = Some(when);
                noted.push((when, ChangeKind::Warned));
            }
            if clock.breached_at.is_none()
                && let Some(due) = clock.due.filter(|d| *d < at)
            {
                let when = due.max(clock.plan_since);
                clock.breached_at = Some(when);
                clock.breached_cycles += 1;
                noted.push((when, ChangeKind::Breached));
            }
            for (when, kind) in noted {
                self.note(when, target, kind)?;
            }
        }
        Ok(())
    }

    /// Re-plans every active clock at `at` after the policy, priority, calendar or pause state
    /// changed; `calendar_before` measures the stretch that ends here.
    fn replan(
        &mut self,
        at: Nanos,
        calendar_before: &'a BusinessCalendar,
        paused_before: bool,
    ) -> Result<(), ClockError> {
        let paused = self.paused();
        let (policy, priority, calendar) = (self.policy, self.priority.clone(), self.calendar);
        for target in Target::ALL {
            let clock = &mut self.clocks[index(target)];
            if clock.phase != Phase::Active {
                continue;
            }
            let due_before = clock.due;
            clock.close_open(at, calendar_before);
            clock.open = Some(Open { start: at, paused });
            clock.plan(at, policy, &priority, calendar)?;
            let kind = match (paused_before, paused) {
                (false, true) => Some(ChangeKind::Paused),
                (true, false) => Some(ChangeKind::Resumed),
                _ if clock.due != due_before => Some(ChangeKind::Replanned),
                _ => None,
            };
            if let Some(kind) = kind {
                self.note(at, target, kind)?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, index_in_log: usize, at: Nanos, kind: &ClockEventKind) -> Result<(), ReplayError> {
        let calendar_before = self.calendar;
        let paused_before = self.paused();
        match kind {
            ClockEventKind::Opened { .. } => {
                return Err(ReplayError::OpenedAgain { index: index_in_log });
            }
            ClockEventKind::PriorityChanged { priority } => {
                self.priority = priority.clone();
                self.replan(at, calendar_before, paused_before)?;
            }
            ClockEventKind::PolicyChanged { policy } => {
                self.policy = lookup_policy(self.config, policy)?;
                self.policy_ref = policy.clone();
                self.replan(at, calendar_before, paused_before)?;
            }
            ClockEventKind::CalendarChanged { calendar } => {
                self.calendar = lookup_calendar(self.config, calendar)?;
                self.calendar_ref = calendar.clone();
                self.replan(at, calendar_before, paused_before)?;
            }
            ClockEventKind::StatusChanged { status } => {
                self.status = status.clone();
                if self.paused() != paused_before {
                    self.replan(at, calendar_before, paused_before)?;
                }
            }
            ClockEventKind::FirstPublicResponse | ClockEventKind::PublicUpdate => {
                if self.resolved {
                    return Ok(());
                }
                self.complete(Target::FirstResponse, at)?;
                self.complete(Target::NextUpdate, at)?;
                self.start(Target::NextUpdate, at)?;
            }
            ClockEventKind::Resolved => {
                if self.resolved {
                    return Ok(());
                }
                for target in Target::ALL {
                    self.complete(target, at)?;
                }
                self.resolved = true;
            }
            ClockEventKind::Reopened => {
                if !self.resolved {
                    return Ok(());
                }
                self.resolved = false;
                match self.policy.on_reopen {
                    ReopenRule::Restart => self.start(Target::Resolution, at)?,
                    ReopenRule::Resume => self.resume_resolution(at)?,
                }
                self.start(Target::NextUpdate, at)?;
            }
        }
        Ok(())
    }

    fn resume_resolution(&mut self, at: Nanos) -> Result<(), ClockError> {
        let paused = self.paused();
        let (policy, priority, calendar) = (self.policy, self.priority.clone(), self.calendar);
        let clock = &mut self.clocks[index(Target::Resolution)];
        if clock.phase != Phase::Done {
            return Ok(());
        }
        clock.phase = Phase::Active;
        clock.completed_at = None;
        clock.open = Some(Open { start: at, paused });
        clock.plan(at, policy, &priority, calendar)?;
        self.note(at, Target::Resolution, ChangeKind::Reopened)?;
        if paused {
            self.note(at, Target::Resolution, ChangeKind::Paused)?;
        }
        Ok(())
    }

    fn report(mut self, as_of: Nanos) -> Result<SlaClocks, ReplayError> {
        let calendar = self.calendar;
        let [first_response, next_update, resolution] =
            self.clocks.each_ref().map(|clock| report_clock(clock, calendar, as_of));
        // Breaches found when checking at a later event carry their own, earlier instant.
        self.changes.sort_by_key(|c| c.at);
        Ok(SlaClocks {
            as_of: from_nanos(as_of)?,
            priority: self.priority,
            status: self.status,
            policy: self.policy_ref,
            calendar: self.calendar_ref,
            resolved: self.resolved,
            first_response: first_response?,
            next_update: next_update?,
            resolution: resolution?,
            changes: self.changes,
        })
    }
}

fn report_clock(clock: &Clock<'_>, calendar: &BusinessCalendar, as_of: Nanos) -> Result<TargetClock, ClockError> {
    let mut elapsed = clock.elapsed_closed;
    let mut paused = clock.paused_closed;
    if clock.phase == Phase::Active
        && let Some(open) = clock.open
    {
        let amount = calendar.between(open.start, as_of);
        if open.paused {
            paused += amount;
        } else {
            elapsed += amount;
        }
    }
    let state = match clock.phase {
        Phase::Pending => ClockState::Pending,
        _ if clock.breached_at.is_some() => ClockState::Breached,
        Phase::Done => ClockState::Met,
        Phase::Active if clock.open.is_some_and(|o| o.paused) => ClockState::Paused,
        Phase::Active => ClockState::Running,
    };
    let instant = |n: Option<Nanos>| n.map(from_nanos).transpose();
    Ok(TargetClock {
        target: clock.target,
        state,
        cycle: clock.cycle,
        breached_cycles: clock.breached_cycles,
        target_duration: clock.target_amount.map(nanos_to_duration),
        due_at: instant(clock.due)?,
        warning_at: instant(clock.warning)?,
        warned_at: instant(clock.warned_at)?,
        breached_at: instant(clock.breached_at)?,
        completed_at: instant(clock.completed_at)?,
        elapsed: nanos_to_duration(elapsed),
        paused: nanos_to_duration(paused),
        remaining: clock.target_amount.map(|amount| nanos_to_duration(amount - elapsed)),
    })
}
