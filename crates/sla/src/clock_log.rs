//! A ticket's clock log: the events that move its SLA clocks, and the policy and calendar
//! versions they name.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::business_time::BusinessCalendar;
use crate::policy::SlaPolicy;

/// Names one version of one SLA policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: String,
    pub version: u32,
}

/// Names one version of one business calendar.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CalendarRef {
    pub id: String,
    pub version: u32,
}

impl PolicyRef {
    pub fn new(id: impl Into<String>, version: u32) -> Self {
        Self { id: id.into(), version }
    }
}

impl CalendarRef {
    pub fn new(id: impl Into<String>, version: u32) -> Self {
        Self { id: id.into(), version }
    }
}

/// One entry of a ticket's clock log: something that happened to the ticket at an instant.
/// Stored as JSON like `{"at": "2026-05-22T14:30:00Z", "event": "status_changed", "status":
/// "waiting_on_client"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(flatten)]
    pub kind: ClockEventKind,
}

impl ClockEvent {
    pub fn new(at: OffsetDateTime, kind: ClockEventKind) -> Self {
        Self { at, kind }
    }
}

/// What a clock event records.
///
/// Pauses and resumes are recorded as the status changes that cause them: a status the
/// policy in force lists as pausing stops every clock, leaving it starts them again. Recording
/// the status rather than "paused" keeps the log true when the policy changes: a new policy
/// that pauses on other statuses pauses or resumes the clocks at the moment it takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClockEventKind {
    /// The ticket was opened, with the priority, status, policy and calendar in force. A
    /// ticket created in a pausing status starts with its clocks paused.
    Opened { priority: String, status: String, policy: PolicyRef, calendar: CalendarRef },
    /// The priority changed: running clocks keep their elapsed and paused time and get the new
    /// priority's targets.
    PriorityChanged { priority: String },
    /// Another policy (or a new version of the same one) now applies; as for a priority
    /// change, elapsed and paused time carry over.
    PolicyChanged { policy: PolicyRef },
    /// The ticket's status changed; entering a pausing status is the pause, leaving the
    /// pausing statuses the resume.
    StatusChanged { status: String },
    /// The first public reply to the client. Meets the first-response clock and starts the
    /// next-update clock. (A public update before any reply counts as the first response.)
    FirstPublicResponse,
    /// A later public reply: ends the current next-update cycle and starts the next.
    PublicUpdate,
    /// The ticket was resolved: every running clock stops.
    Resolved,
    /// The ticket was reopened: the resolution clock follows the policy's [`ReopenRule`](crate::ReopenRule), and
    /// a next-update cycle starts (the client is owed an answer).
    Reopened,
    /// The calendar was edited (or another one applies): open clocks are re-planned with it
    /// from this instant; the business time before it stays measured with the old version.
    CalendarChanged { calendar: CalendarRef },
}

impl ClockEventKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "opened",
            Self::PriorityChanged { .. } => "priority_changed",
            Self::PolicyChanged { .. } => "policy_changed",
            Self::StatusChanged { .. } => "status_changed",
            Self::FirstPublicResponse => "first_public_response",
            Self::PublicUpdate => "public_update",
            Self::Resolved => "resolved",
            Self::Reopened => "reopened",
            Self::CalendarChanged { .. } => "calendar_changed",
        }
    }
}

/// The policy and calendar versions a replay may meet, by reference. Build it once for many
/// tickets: a calendar edit re-plans every open ticket with the same set.
#[derive(Debug, Clone, Default)]
pub struct ConfigVersions {
    policies: HashMap<PolicyRef, SlaPolicy>,
    calendars: HashMap<CalendarRef, BusinessCalendar>,
}

impl ConfigVersions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy under `id` and its own version; returns the reference the log uses.
    pub fn add_policy(&mut self, id: impl Into<String>, policy: SlaPolicy) -> PolicyRef {
        let key = PolicyRef::new(id, policy.version);
        self.policies.insert(key.clone(), policy);
        key
    }

    /// Adds a calendar under `id` and its own version; returns the reference the log uses.
    pub fn add_calendar(&mut self, id: impl Into<String>, calendar: BusinessCalendar) -> CalendarRef {
        let key = CalendarRef::new(id, calendar.version());
        self.calendars.insert(key.clone(), calendar);
        key
    }

    pub fn policy(&self, key: &PolicyRef) -> Option<&SlaPolicy> {
        self.policies.get(key)
    }

    pub fn calendar(&self, key: &CalendarRef) -> Option<&BusinessCalendar> {
        self.calendars.get(key)
    }
}
