//! Business calendars and SLA clocks, as pure computation: no database, no HTTP, no clock
//! read. The service layer stores calendars, policies and each ticket's clock log, and calls
//! in here to learn deadlines.
//!
//! # The model
//!
//! - A [`Calendar`] is an IANA time zone, opening [`Window`]s per weekday in local wall time
//!   (several a day, ending at 24:00 if need be), [`Holiday`]s (single dates, ranges such as a
//!   two-week closure, yearly dates) and a version. [`Calendar::validate`] names every bad
//!   field; a calendar with no working time is refused.
//! - A [`BusinessCalendar`] is a valid calendar ready to compute with:
//!   [`add_business`](BusinessCalendar::add_business) (a deadline),
//!   [`business_between`](BusinessCalendar::business_between) (business time elapsed) and
//!   [`next_open`](BusinessCalendar::next_open). Instants are UTC `time::OffsetDateTime`s.
//! - An [`SlaPolicy`] sets business-time targets per priority for three clocks (first response,
//!   next update, resolution), a warning share, the statuses that pause the clocks and what a
//!   reopen does.
//! - A ticket's clocks are an append-only log of [`ClockEvent`]s. [`replay`] turns the log, the
//!   policy and calendar versions it names ([`ConfigVersions`]) and an instant into each
//!   clock's state, fixed deadline, warning instant, elapsed and paused business time, and
//!   breach instant.
//!
//! # Business time
//!
//! Deadlines are found by walking the calendar's windows day by day in the calendar's own zone;
//! each window's start and end are converted to UTC instants, and business time is the real
//! time elapsed inside those intervals. No day is ever taken to be 86,400 seconds. The walk
//! skips a holiday range in one step, so long targets over long closures stay cheap.
//!
//! # The DST rule
//!
//! A window boundary given as wall time `W` on date `D` is **the first instant at which the
//! zone's wall clock shows `D W` or later**; 24:00 is the next day's 00:00. So:
//!
//! - *Spring forward*: a boundary inside the skipped hour (02:30 when clocks jump from 02:00 to
//!   03:00) is the instant of the jump. A window 02:00-04:00 that day lasts one real hour; a
//!   window wholly inside the gap does not open. A 00:00-24:00 day is 23 hours long.
//! - *Fall back*: a boundary inside the repeated hour is its first occurrence. The repeated
//!   hour is real time and counts once, where it falls: a 00:00-24:00 day is 25 hours long, a
//!   window 00:00-02:30 closes at the first 02:30, and the second pass of 02:00-02:30 is outside
//!   it. No instant is ever counted twice.
//!
//! The mapping never runs backwards, so windows stay ordered and disjoint on those days too.
//! Office hours rarely touch the night of a change, but round-the-clock and night-shift
//! calendars do.
//!
//! # The clock rules (psa.md, "SLA: rules that the anchors get wrong")
//!
//! - Pauses are measured in business time and extend the deadline by exactly the business time
//!   they overlapped: a pause from 17:00 to 08:00 moves nothing.
//! - A deadline is a fixed instant: it changes only at an event in the log (a status change
//!   into or out of a pausing status, a priority or policy change, a calendar change, a reply
//!   or reopen that starts a new cycle). Replaying the same log gives the same deadlines at
//!   any later instant.
//! - A priority or policy change keeps the elapsed and paused business time and plans the
//!   deadline from the new target; if the new target is already used up, the clock breaches at
//!   the change.
//! - A calendar change re-plans open clocks from the change on; the time before it stays
//!   measured with the version in force then. Closed tickets are never re-planned: their logs
//!   get no calendar event.
//! - A clock meets its target when its event comes at or before the deadline, and breaches
//!   when the deadline passes while it runs. A breach is a fact of that cycle and is not undone
//!   by a later, longer target.
//! - A zero target is due the instant its clock starts.
//!
//! # Why jiff
//!
//! Zone data comes from `jiff` with its bundled copy of the IANA database (the workspace's
//! `tzdb-bundle-always`), so results do not depend on the host's zoneinfo and every process
//! of an installation agrees. jiff reports a local time's gap or fold explicitly
//! (`AmbiguousOffset`) and lists zone transitions, which is exactly what the DST rule needs;
//! the workspace already uses it for time zone names.

mod business_time;
mod calendar;
mod clock;
mod clock_log;
mod clock_report;
mod policy;
mod validation;

pub use business_time::{BusinessCalendar, ClockError};
pub use calendar::{Calendar, Holiday, WallTime, WallTimeError, Week, Window};
pub use clock::{ReplayError, replay};
pub use clock_log::{CalendarRef, ClockEvent, ClockEventKind, ConfigVersions, PolicyRef};
pub use clock_report::{ChangeKind, ClockChange, ClockState, SlaClocks, TargetClock};
pub use policy::{MAX_TARGET_MINUTES, PriorityTargets, ReopenRule, SlaPolicy, Target};
pub use validation::{FieldError, ValidationErrors};
