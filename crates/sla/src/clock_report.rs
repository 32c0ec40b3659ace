//! What a replay reports: each clock's state, deadline and books, and the changes for the
//! ticket's timeline.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::clock_log::{CalendarRef, PolicyRef};
use crate::policy::Target;

/// Where one clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Not started yet: the next-update clock before the first public reply.
    Pending,
    /// Counting business time towards its deadline.
    Running,
    /// Stopped by a pausing status; there is no deadline until it resumes.
    Paused,
    /// Stopped by its event (reply, resolution) at or before its deadline.
    Met,
    /// Its deadline passed before its event; stays breached for this cycle, running or not.
    Breached,
}

/// One clock of a ticket as of the replay's `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetClock {
    pub target: Target,
    pub state: ClockState,
    /// 1 for the first cycle; the next-update clock starts a cycle on every public reply, the
    /// resolution clock on a reopen under [`ReopenRule::Restart`](crate::ReopenRule::Restart). 0 while pending.
    pub cycle: u32,
    /// Cycles of this clock that breached, this one included.
    pub breached_cycles: u32,
    /// The target in force; `None` when the policy sets none for this priority.
    #[serde(with = "opt_seconds")]
    pub target_duration: Option<Duration>,
    /// The fixed deadline: moves only on a recorded event. `None` while paused, pending, or
    /// without a target. For a met or breached clock, the deadline it was held to.
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    /// When the warning share of the target is used up, on the same plan as `due_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub warning_at: Option<OffsetDateTime>,
    /// When this cycle passed its warning instant; fixed once set.
    #[serde(with = "time::serde::rfc3339::option")]
    pub warned_at: Option<OffsetDateTime>,
    /// When this cycle breached: its deadline, or the event that made the deadline already
    /// past (a shorter target after a priority change); fixed once set.
    #[serde(with = "time::serde::rfc3339::option")]
    pub breached_at: Option<OffsetDateTime>,
    /// When the clock's own event came (reply, resolution), met or late.
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// Business time the clock has run in this cycle, pauses excluded.
    #[serde(with = "seconds")]
    pub elapsed: Duration,
    /// Business time this cycle spent paused; carried across priority and policy changes.
    #[serde(with = "seconds")]
    pub paused: Duration,
    /// Target minus elapsed; negative once overrun.
    #[serde(with = "opt_seconds")]
    pub remaining: Option<Duration>,
}

/// A change of one clock, for the ticket's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockChange {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub target: Target,
    pub cycle: u32,
    pub kind: ChangeKind,
    /// The deadline after the change.
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Started,
    Paused,
    Resumed,
    /// A priority, policy or calendar change moved the deadline.
    Replanned,
    Warned,
    Breached,
    Met,
    /// The clock's event came after its deadline.
    CompletedLate,
    /// A reopen under [`ReopenRule::Resume`](crate::ReopenRule::Resume) set the resolution clock running again.
    Reopened,
}

/// All clocks of one ticket as of an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaClocks {
    /// The instant reported at: `now`, or the last event if that is later.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub priority: String,
    pub status: String,
    pub policy: PolicyRef,
    pub calendar: CalendarRef,
    pub resolved: bool,
    pub first_response: TargetClock,
    pub next_update: TargetClock,
    pub resolution: TargetClock,
    /// What happened to the clocks, in order.
    pub changes: Vec<ClockChange>,
}

impl SlaClocks {
    pub fn clock(&self, target: Target) -> &TargetClock {
        match target {
            Target::FirstResponse => &self.first_response,
            Target::NextUpdate => &self.next_update,
            Target::Resolution => &self.resolution,
        }
    }
}

/// Durations in reports as whole seconds, the unit a page or an API client counts in.
pub(crate) mod seconds {
    use serde::Serializer;
    use time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.whole_seconds())
    }
}

pub(crate) mod opt_seconds {
    use serde::Serializer;
    use time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.whole_seconds()),
            None => s.serialize_none(),
        }
    }
}
