//! Time entries on tickets (psa.md "Time entry"): logged, changed, submitted
//! and discarded by the person who did the work; approved or rejected by
//! someone allowed to review time (`time.approve`), never by the author.
//!
//! - `time_entry.log`: a draft on a ticket, whatever the ticket's status
//!   (time is often logged after a ticket is closed).
//! - `time_entry.update`: while draft or rejected; a rejected entry returns
//!   to draft. The amount is given whole: `minutes`, or `started_at` and
//!   `ended_at` (the minutes are derived; a started minute counts).
//! - `time_entry.submit`: draft -> submitted.
//! - `time_entry.approve` / `time_entry.reject` (with a reason): from
//!   submitted.
//! - `time_entry.discard`: deletes a draft, which nothing has counted yet.
//!
//! Approved and invoiced entries are locked (`time_entry_locked`): billing
//! reads them. Invoicing (approved -> invoiced) and the rate in force when
//! approved come with billing; so does a catalogue of work types.

use anchor_auth::permissions::Permission;
use anchor_domain::{ExecutionId, TicketId, TimeEntryId, TimeEntryState, TimeNote, WorkMinutes, WorkType};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    time_entries::{TimeEntry, TimeEntryWork, iso_date},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::{
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
    tickets::{TICKET_NOT_FOUND, TRANSITION_NOT_ALLOWED},
};

pub const TIME_ENTRY_NOT_FOUND: RefusalKind =
    RefusalKind { code: "time_entry_not_found", status: 404, when: "the time entry does not exist in this workspace" };
pub const NOT_YOURS: RefusalKind = RefusalKind {
    code: "time_entry_not_yours",
    status: 403,
    when: "only who logged the time entry may change, submit or discard it",
};
pub const OWN_ENTRY: RefusalKind = RefusalKind {
    code: "time_entry_own",
    status: 403,
    when: "a time entry is approved or rejected by someone other than who logged it",
};
pub const LOCKED: RefusalKind = RefusalKind {
    code: "time_entry_locked",
    status: 409,
    when: "the time entry is approved or invoiced: locked for billing",
};

/// Log time worked on a ticket, as a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "work_type": "remote_support",
    "minutes": 45, "worked_on": "2026-03-02", "billable": true, "note": "Reinstalled the printer driver."}))]
pub struct TimeEntryLog {
    pub ticket_id: TicketId,
    /// What kind of work: a short code such as `remote_support` or `onsite`.
    pub work_type: WorkType,
    /// How long, 1 to 1440; or give `started_at` and `ended_at` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<WorkMinutes>,
    /// When the work started (with `ended_at`, instead of `minutes`).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended: after `started_at`, at most 24 hours later.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub ended_at: Option<OffsetDateTime>,
    /// The day the work was done.
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub worked_on: Date,
    /// Whether the client is billed for it.
    pub billable: bool,
    /// Up to 4,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<TimeNote>,
}

/// Change a draft or rejected time entry (a rejected one returns to draft).
/// Only the members given change; `note: null` removes the note. The amount
/// is given whole: `minutes`, or `started_at` and `ended_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"time_entry_id": "tim_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T10:30:00Z"}))]
pub struct TimeEntryUpdate {
    pub time_entry_id: TimeEntryId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_type: Option<WorkType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<WorkMinutes>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(default, with = "iso_date::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub worked_on: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    #[serde(
        default,
        deserialize_with = "anchor_domain::vocabulary::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub note: Option<Option<TimeNote>>,
}

macro_rules! on_entry {
    ($($(#[$doc:meta])* $ty:ident;)+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(example = serde_json::json!({"time_entry_id": "tim_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
        pub struct $ty {
            pub time_entry_id: TimeEntryId,
        }
    )+};
}

on_entry!(
    /// Submit a draft time entry for review.
    TimeEntrySubmit;
    /// Approve a submitted time entry: locked from now on, for billing.
    TimeEntryApprove;
    /// Discard a draft time entry: it is deleted.
    TimeEntryDiscard;
);

/// Reject a submitted time entry, saying why; its author changes it (back
/// to draft) and submits it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"time_entry_id": "tim_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "reason": "Travel is logged as its own entry."}))]
pub struct TimeEntryReject {
    pub time_entry_id: TimeEntryId,
    /// Up to 4,000 characters, shown to the author.
    pub reason: TimeNote,
}

/// `time_entry.logged`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeEntryLogged {
    /// The entry as `GET .../time-entries/{id}` shows it.
    pub time_entry: TimeEntry,
    pub execution_id: ExecutionId,
}

impl Event for TimeEntryLogged {
    const TYPE: &'static str = "time_entry.logged";
    const WHEN: &'static str = "Time was logged on a ticket (a draft).";
}

/// What changed in a `time_entry.updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeEntryChange {
    Edited,
    Submitted,
    Approved,
    Rejected,
}

/// `time_entry.updated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeEntryUpdated {
    pub time_entry_id: TimeEntryId,
    /// `edited` (by its author; a rejected entry returns to draft), `submitted`, `approved` or `rejected`.
    pub change: TimeEntryChange,
    pub from: TimeEntryState,
    pub to: TimeEntryState,
    pub actor: Actor,
    pub execution_id: ExecutionId,
    /// The entry after the change, as `GET .../time-entries/{id}` shows it.
    pub time_entry: TimeEntry,
}

impl Event for TimeEntryUpdated {
    const TYPE: &'static str = "time_entry.updated";
    const WHEN: &'static str = "A time entry was changed, submitted, approved or rejected.";
}

/// `time_entry.discarded`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeEntryDiscarded {
    /// The draft as it was when its author discarded it (it is deleted).
    pub time_entry: TimeEntry,
    pub execution_id: ExecutionId,
}

impl Event for TimeEntryDiscarded {
    const TYPE: &'static str = "time_entry.discarded";
    const WHEN: &'static str = "A draft time entry was discarded by its author.";
}

const UPDATED: &[EventSpec] = &[EventSpec::of::<TimeEntryUpdated>()];

/// What logging or discarding did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeEntryRef {
    pub time_entry_id: TimeEntryId,
}

/// The entry's move.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeEntryMoved {
    pub time_entry_id: TimeEntryId,
    pub from: TimeEntryState,
    pub to: TimeEntryState,
}

/// How much work an entry records: minutes, which a span gives when it is
/// given as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Amount {
    minutes: WorkMinutes,
    span: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl Amount {
    fn set(self, work: &mut TimeEntryWork<'_>) {
        work.minutes = self.minutes;
        work.started_at = self.span.map(|(start, _)| start);
        work.ended_at = self.span.map(|(_, end)| end);
    }
}

/// The amount of work given: `minutes`, or a span whose minutes are
/// derived. Nothing given is `None`; both, or half a span, are invalid.
fn amount(
    minutes: Option<WorkMinutes>,
    started_at: Option<OffsetDateTime>,
    ended_at: Option<OffsetDateTime>,
) -> Result<Option<Amount>, Invalid> {
    match (minutes, started_at, ended_at) {
        (None, None, None) => Ok(None),
        (Some(minutes), None, None) => Ok(Some(Amount { minutes, span: None })),
        (Some(_), ..) => Err(Invalid::at("/minutes", "give minutes, or started_at and ended_at; not both")),
        (None, Some(_), None) => Err(Invalid::at("/ended_at", "started_at needs ended_at")),
        (None, None, Some(_)) => Err(Invalid::at("/started_at", "ended_at needs started_at")),
        (None, Some(start), Some(end)) => {
            let span = end - start;
            if span <= Duration::ZERO {
                return Err(Invalid::at("/ended_at", "must be after started_at"));
            }
            if span > Duration::DAY {
                return Err(Invalid::at("/ended_at", "must be at most 24 hours after started_at"));
            }
            // A started minute counts: any span of up to a day is 1 to 1440.
            let minutes = (span.whole_seconds() + i64::from(span.subsec_nanoseconds() > 0) + 59) / 60;
            let minutes = WorkMinutes::new(minutes).map_err(|e| Invalid::at("/ended_at", e.to_string()))?;
            Ok(Some(Amount { minutes, span: Some((start, end)) }))
        }
    }
}

/// The entry, or a refusal; locked until the unit of work ends when `lock`.
async fn entry(tx: &mut WorkspaceTx, id: TimeEntryId, lock: bool) -> Result<TimeEntry, Rejection> {
    let entry = if lock { tx.lock_time_entry(id).await? } else { tx.time_entry(id).await? };
    entry.ok_or_else(|| TIME_ENTRY_NOT_FOUND.because(format!("no time entry {id} in this workspace")).into())
}

/// The author's own entry, which they may still act on.
fn authored(entry: &TimeEntry, actor: &Actor) -> Result<(), Rejection> {
    if entry.staff == *actor {
        Ok(())
    } else {
        Err(NOT_YOURS
            .because(format!(
                "time entry {} is {}'s; only they change, submit or discard it",
                entry.id, entry.staff.subject
            ))
            .into())
    }
}

/// Someone else's entry, which the actor may review.
fn reviewed_by_another(entry: &TimeEntry, actor: &Actor) -> Result<(), Rejection> {
    if entry.staff == *actor {
        Err(OWN_ENTRY.because(format!("time entry {} is your own; someone else reviews it", entry.id)).into())
    } else {
        Ok(())
    }
}

/// Refuses anything on a locked entry, with the refusal that says so.
fn unlocked(entry: &TimeEntry) -> Result<(), Rejection> {
    if entry.state.is_locked() {
        Err(LOCKED.because(format!("time entry {} is {}: locked for billing", entry.id, entry.state)).into())
    } else {
        Ok(())
    }
}

/// Checks a move of the entry along its lifecycle.
fn allowed(entry: &TimeEntry, to: TimeEntryState) -> Result<(), Rejection> {
    unlocked(entry)?;
    entry.state.transition(to).map(drop).map_err(|e| TRANSITION_NOT_ALLOWED.because(e.to_string()).into())
}

fn editable(entry: &TimeEntry) -> Result<(), Rejection> {
    unlocked(entry)?;
    if entry.state.is_editable() {
        Ok(())
    } else {
        Err(TRANSITION_NOT_ALLOWED
            .because(format!(
                "time entry {} is {}; it is changed while draft or rejected (a reviewer rejects it to send it back)",
                entry.id, entry.state
            ))
            .into())
    }
}

/// Publishes `time_entry.updated` for a change and answers with it.
async fn updated(
    effect: &mut Effect<'_>,
    change: TimeEntryChange,
    from: TimeEntryState,
    time_entry: TimeEntry,
) -> Result<TimeEntryMoved, Rejection> {
    let (time_entry_id, to) = (time_entry.id, time_entry.state);
    let event = TimeEntryUpdated {
        time_entry_id,
        change,
        from,
        to,
        actor: effect.actor.clone(),
        execution_id: effect.execution,
        time_entry,
    };
    effect.publish(&event).await?;
    Ok(TimeEntryMoved { time_entry_id, from, to })
}

impl DomainCommand for TimeEntryLog {
    const NAME: &'static str = "time_entry.log";
    const SKILL: &'static str = "time_entry_log";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Log time worked on a ticket";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<TimeEntryLogged>()];
    type Output = TimeEntryRef;

    fn validate(&self) -> Result<(), Invalid> {
        match amount(self.minutes, self.started_at, self.ended_at)? {
            Some(_) => Ok(()),
            None => Err(Invalid::at("/minutes", "give minutes, or started_at and ended_at")),
        }
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        match tx.ticket(self.ticket_id).await? {
            Some(_) => Ok(()),
            None => Err(TICKET_NOT_FOUND.because(format!("no ticket {} in this workspace", self.ticket_id)).into()),
        }
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryRef, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let amount = amount(self.minutes, self.started_at, self.ended_at).ok().flatten();
        let amount = amount.expect("the amount was validated when the arguments were parsed");
        let mut work = TimeEntryWork {
            work_type: &self.work_type,
            minutes: amount.minutes,
            started_at: None,
            ended_at: None,
            worked_on: self.worked_on,
            billable: self.billable,
            note: self.note.as_ref(),
        };
        amount.set(&mut work);
        let id = TimeEntryId::new();
        let time_entry = effect.tx.insert_time_entry(id, self.ticket_id, &work, effect.actor, effect.execution).await?;
        effect.publish(&TimeEntryLogged { time_entry, execution_id: effect.execution }).await?;
        Ok(TimeEntryRef { time_entry_id: id })
    }
}

impl TimeEntryUpdate {
    /// The entry's work as it would be after the change.
    fn merged<'a>(&'a self, now: &'a TimeEntry) -> TimeEntryWork<'a> {
        let mut work = now.work();
        if let Ok(Some(amount)) = amount(self.minutes, self.started_at, self.ended_at) {
            amount.set(&mut work);
        }
        if let Some(work_type) = &self.work_type {
            work.work_type = work_type;
        }
        if let Some(worked_on) = self.worked_on {
            work.worked_on = worked_on;
        }
        if let Some(billable) = self.billable {
            work.billable = billable;
        }
        if let Some(note) = &self.note {
            work.note = note.as_ref();
        }
        work
    }
}

impl DomainCommand for TimeEntryUpdate {
    const NAME: &'static str = "time_entry.update";
    const SKILL: &'static str = "time_entry_update";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Change a draft or rejected time entry";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TIME_ENTRY_NOT_FOUND, &NOT_YOURS, &LOCKED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TimeEntryMoved;

    fn validate(&self) -> Result<(), Invalid> {
        amount(self.minutes, self.started_at, self.ended_at).map(drop)
    }

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let now = entry(tx, self.time_entry_id, false).await?;
        authored(&now, actor)?;
        editable(&now)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryMoved, Rejection> {
        let now = entry(effect.tx, self.time_entry_id, true).await?;
        authored(&now, effect.actor)?;
        editable(&now)?;
        let work = self.merged(&now);
        let from = now.state;
        if work == now.work() && from == TimeEntryState::Draft {
            // A change that changes nothing succeeds, and tells nobody.
            return Ok(TimeEntryMoved { time_entry_id: self.time_entry_id, from, to: from });
        }
        let time_entry = effect.tx.save_time_entry_work(self.time_entry_id, &work, effect.execution).await?;
        updated(effect, TimeEntryChange::Edited, from, time_entry).await
    }
}

impl DomainCommand for TimeEntrySubmit {
    const NAME: &'static str = "time_entry.submit";
    const SKILL: &'static str = "time_entry_submit";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Submit a draft time entry for review";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TIME_ENTRY_NOT_FOUND, &NOT_YOURS, &LOCKED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TimeEntryMoved;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let now = entry(tx, self.time_entry_id, false).await?;
        authored(&now, actor)?;
        allowed(&now, TimeEntryState::Submitted)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryMoved, Rejection> {
        let now = entry(effect.tx, self.time_entry_id, true).await?;
        authored(&now, effect.actor)?;
        allowed(&now, TimeEntryState::Submitted)?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        let time_entry =
            tx.set_time_entry_state(self.time_entry_id, TimeEntryState::Submitted, None, actor, execution).await?;
        updated(effect, TimeEntryChange::Submitted, now.state, time_entry).await
    }
}

impl DomainCommand for TimeEntryApprove {
    const NAME: &'static str = "time_entry.approve";
    const SKILL: &'static str = "time_entry_approve";
    const PERMISSION: Permission = Permission::TimeApprove;
    const SUMMARY: &'static str = "Approve a submitted time entry";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TIME_ENTRY_NOT_FOUND, &OWN_ENTRY, &LOCKED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TimeEntryMoved;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let now = entry(tx, self.time_entry_id, false).await?;
        reviewed_by_another(&now, actor)?;
        allowed(&now, TimeEntryState::Approved)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryMoved, Rejection> {
        let now = entry(effect.tx, self.time_entry_id, true).await?;
        reviewed_by_another(&now, effect.actor)?;
        allowed(&now, TimeEntryState::Approved)?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        tx.set_time_entry_state(self.time_entry_id, TimeEntryState::Approved, None, actor, execution).await?;
        // The contract it falls under and the rate in force, fixed now: the
        // ticket's while it covers the day worked, else the one in force then.
        let ticket_contract = match tx.ticket_contract(now.ticket_id).await? {
            Some(id) => tx.contract(id).await?.filter(|c| c.covers(now.worked_on)),
            None => None,
        };
        let contract = match ticket_contract {
            Some(c) => Some(c),
            None => match tx.contract_in_force(now.worked_on).await? {
                Some(id) => tx.contract(id).await?,
                None => None,
            },
        };
        let contract_id = contract.as_ref().map(|c| c.id);
        let rate = if now.billable {
            let role = tx.staff_rate_role(&now.staff).await?;
            crate::contracts::rate_in_force(tx, contract.as_ref(), &now.work_type, role.as_deref()).await?
        } else {
            None
        };
        tx.price_time_entry(self.time_entry_id, contract_id, rate).await?;
        let time_entry = tx.time_entry(self.time_entry_id).await?.expect("updated above");
        updated(effect, TimeEntryChange::Approved, now.state, time_entry).await
    }
}

impl DomainCommand for TimeEntryReject {
    const NAME: &'static str = "time_entry.reject";
    const SKILL: &'static str = "time_entry_reject";
    const PERMISSION: Permission = Permission::TimeApprove;
    const SUMMARY: &'static str = "Reject a submitted time entry, saying why";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TIME_ENTRY_NOT_FOUND, &OWN_ENTRY, &LOCKED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TimeEntryMoved;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let now = entry(tx, self.time_entry_id, false).await?;
        reviewed_by_another(&now, actor)?;
        allowed(&now, TimeEntryState::Rejected)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryMoved, Rejection> {
        let now = entry(effect.tx, self.time_entry_id, true).await?;
        reviewed_by_another(&now, effect.actor)?;
        allowed(&now, TimeEntryState::Rejected)?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        let to = TimeEntryState::Rejected;
        let time_entry = tx.set_time_entry_state(self.time_entry_id, to, Some(&self.reason), actor, execution).await?;
        updated(effect, TimeEntryChange::Rejected, now.state, time_entry).await
    }
}

impl DomainCommand for TimeEntryDiscard {
    const NAME: &'static str = "time_entry.discard";
    const SKILL: &'static str = "time_entry_discard";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Discard a draft time entry";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TIME_ENTRY_NOT_FOUND, &NOT_YOURS, &LOCKED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<TimeEntryDiscarded>()];
    type Output = TimeEntryRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        discardable(&entry(tx, self.time_entry_id, false).await?, actor)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TimeEntryRef, Rejection> {
        let time_entry = entry(effect.tx, self.time_entry_id, true).await?;
        discardable(&time_entry, effect.actor)?;
        effect.tx.delete_time_entry(self.time_entry_id).await?;
        effect.publish(&TimeEntryDiscarded { time_entry, execution_id: effect.execution }).await?;
        Ok(TimeEntryRef { time_entry_id: self.time_entry_id })
    }
}

/// Only a draft is discarded: a rejected entry is changed back to draft
/// first (the lifecycle's only way out of rejected).
fn discardable(entry: &TimeEntry, actor: &Actor) -> Result<(), Rejection> {
    authored(entry, actor)?;
    unlocked(entry)?;
    if entry.state == TimeEntryState::Draft {
        Ok(())
    } else {
        Err(TRANSITION_NOT_ALLOWED
            .because(format!("time entry {} is {}; only a draft is discarded", entry.id, entry.state))
            .into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kit::Spec;

    fn parse<C: DomainCommand>(args: serde_json::Value) -> Result<(), (String, String)> {
        Spec::of::<C>().parse(args).map(drop).map_err(|e| (e.path, e.message))
    }

    #[test]
    fn an_amount_is_minutes_or_a_span_of_up_to_a_day() {
        let t = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("time");
        let minutes = |s, e| amount(None, Some(t(s)), Some(t(e))).map(|a| a.map(|a| a.minutes.get()));
        assert_eq!(minutes("2026-03-02T09:00:00Z", "2026-03-02T10:30:00Z"), Ok(Some(90)));
        assert_eq!(minutes("2026-03-02T09:00:00Z", "2026-03-02T09:00:01Z"), Ok(Some(1)), "a started minute counts");
        assert_eq!(minutes("2026-03-02T09:00:00Z", "2026-03-02T09:01:00.5Z"), Ok(Some(2)));
        assert_eq!(minutes("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"), Ok(Some(1440)));
        assert_eq!(minutes("2026-03-02T09:00:00+01:00", "2026-03-02T08:30:00Z"), Ok(Some(30)), "offsets count");
        for (start, end) in [
            ("2026-03-02T09:00:00Z", "2026-03-02T09:00:00Z"),
            ("2026-03-02T09:00:00Z", "2026-03-02T08:00:00Z"),
            ("2026-03-02T00:00:00Z", "2026-03-03T00:00:01Z"),
        ] {
            assert_eq!(minutes(start, end).map_err(|e| e.path), Err("/ended_at"), "{start} {end}");
        }
    }

    #[test]
    fn rules_across_members_are_refused_with_where() {
        let log = json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "work_type": "onsite",
                         "worked_on": "2026-03-02", "billable": true});
        let with = |extra: serde_json::Value| {
            let mut args = log.clone();
            args.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            parse::<TimeEntryLog>(args).map_err(|(path, _)| path)
        };
        assert_eq!(with(json!({"minutes": 30})), Ok(()));
        assert_eq!(with(json!({})), Err("/minutes".to_owned()), "some amount");
        assert_eq!(with(json!({"minutes": 0})), Err("/minutes".to_owned()));
        assert_eq!(with(json!({"minutes": 1441})), Err("/minutes".to_owned()));
        assert_eq!(
            with(json!({"minutes": 30, "started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T10:00:00Z"})),
            Err("/minutes".to_owned())
        );
        assert_eq!(with(json!({"started_at": "2026-03-02T09:00:00Z"})), Err("/ended_at".to_owned()));
        assert_eq!(
            with(json!({"started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T08:00:00Z"})),
            Err("/ended_at".to_owned())
        );
        assert_eq!(with(json!({"minutes": 30, "work_type": "On Site"})), Err("/work_type".to_owned()));
        assert_eq!(with(json!({"minutes": 30, "worked_on": "2 March"})), Err("/worked_on".to_owned()));
        assert_eq!(with(json!({"minutes": 30, "note": "x".repeat(4001)})), Err("/note".to_owned()));
        let update = json!({"time_entry_id": "tim_01jd6m2h9x8k7v5t3r1p0n9q8w"});
        assert_eq!(parse::<TimeEntryUpdate>(update.clone()), Ok(()), "nothing to change is valid");
        let mut half = update.clone();
        half["ended_at"] = json!("2026-03-02T10:00:00Z");
        assert_eq!(parse::<TimeEntryUpdate>(half).map_err(|(p, _)| p), Err("/started_at".to_owned()));
    }
}
