//! An SLA policy: targets per priority, when to warn, which statuses stop the clock, and what a
//! reopened ticket's resolution clock does.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::validation::{FieldError, ValidationErrors};

/// The longest target a policy may set: ten years of round-the-clock minutes. Past that a
/// target is a typing mistake, and the walk stays far from the end of the calendar's years.
pub const MAX_TARGET_MINUTES: u32 = 10 * 365 * 24 * 60;

/// The three clocks an SLA policy can set a target for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// From opening to the first public reply.
    FirstResponse,
    /// From each public reply to the next one, while the ticket is open: we keep the client
    /// informed. Starts with the first public reply (or a reopen).
    NextUpdate,
    /// From opening to resolution.
    Resolution,
}

impl Target {
    pub const ALL: [Self; 3] = [Self::FirstResponse, Self::NextUpdate, Self::Resolution];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::NextUpdate => "next_update",
            Self::Resolution => "resolution",
        }
    }
}

/// What a reopened ticket's resolution clock does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReopenRule {
    /// Carry on where it stopped: the business time already used still counts, the time the
    /// ticket spent resolved does not, and a breach stays a breach.
    #[default]
    Resume,
    /// Start a new resolution cycle with the full target, as if the ticket were new.
    Restart,
}

/// Business-time targets for one priority, in minutes; a target left out is not tracked.
/// Zero is a real target: due the moment its clock starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityTargets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_minutes: Option<u32>,
}

impl PriorityTargets {
    pub fn minutes(&self, target: Target) -> Option<u32> {
        match target {
            Target::FirstResponse => self.first_response_minutes,
            Target::NextUpdate => self.next_update_minutes,
            Target::Resolution => self.resolution_minutes,
        }
    }
}

fn default_warning_percent() -> u8 {
    80
}

/// An SLA policy, versioned like calendars: a ticket's clock log records the version it runs
/// under, and a change of policy is an event in that log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub version: u32,
    /// Targets by priority name (`"urgent"`, `"high"`, ...). A priority the policy does not
    /// name has no targets.
    pub targets: BTreeMap<String, PriorityTargets>,
    /// Warn when this share of a target's business time is used up, 1-99 (default 80).
    #[serde(default = "default_warning_percent")]
    pub warning_percent: u8,
    /// Ticket statuses in which all clocks stand still (waiting on the client, say).
    #[serde(default)]
    pub pausing_statuses: BTreeSet<String>,
    #[serde(default)]
    pub on_reopen: ReopenRule,
}

impl SlaPolicy {
    /// A policy from its JSON text, checked: every error names its field.
    pub fn from_json(text: &str) -> Result<Self, ValidationErrors> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let policy: Self = serde_path_to_error::deserialize(de).map_err(ValidationErrors::from_json_error)?;
        policy.validate()?;
        Ok(policy)
    }

    /// The target of one clock for one priority, if the policy sets one.
    pub fn target(&self, priority: &str, target: Target) -> Option<Duration> {
        let minutes = self.targets.get(priority)?.minutes(target)?;
        Some(Duration::minutes(i64::from(minutes)))
    }

    /// Whether a ticket in this status has its clocks stopped.
    pub fn pauses_on(&self, status: &str) -> bool {
        self.pausing_statuses.contains(status)
    }

    /// Every problem with this policy, each naming its field.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if self.version == 0 {
            errors.push(FieldError::new("version", "must be 1 or more"));
        }
        if self.targets.is_empty() {
            errors.push(FieldError::new("targets", "names no priority; give at least one priority its targets"));
        }
        for (priority, targets) in &self.targets {
            if priority.trim().is_empty() || priority.trim() != priority {
                errors.push(FieldError::new(
                    format!("targets.{priority:?}"),
                    "a priority name must be non-empty, without leading or trailing spaces",
                ));
            }
            for target in Target::ALL {
                if let Some(minutes) = targets.minutes(target)
                    && minutes > MAX_TARGET_MINUTES
                {
                    errors.push(FieldError::new(
                        format!("targets.{priority}.{}_minutes", target.as_str()),
                        format!(
                            "{minutes} minutes is more than ten years; \
                                 the longest target is {MAX_TARGET_MINUTES} minutes"
                        ),
                    ));
                }
            }
        }
        if !(1..=99).contains(&self.warning_percent) {
            errors.push(FieldError::new(
                "warning_percent",
                format!("{} is not a share between 1 and 99 percent of the target", self.warning_percent),
            ));
        }
        for status in &self.pausing_statuses {
            if status.trim().is_empty() {
                errors.push(FieldError::new("pausing_statuses", "contains an empty status name"));
            }
        }
        ValidationErrors::into_result(errors)
    }
}
