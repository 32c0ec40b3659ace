//! Tickets' SLA clocks in service: what a ticket command records in a
//! ticket's clock log, how the log becomes a stored plan, how a calendar or
//! policy edit re-plans open tickets, and the recurring job that sends
//! `sla.warning` and `sla.breached` once each through the outbox.
//!
//! The clock log is the truth (psa.md: "the deadline is recomputable from
//! the log and the calendar version"). Every change appends to the log and
//! replays it whole with [`anchor_sla::replay`]; the plan stored in
//! `ticket_sla` and the summary on the ticket row are caches of that replay.
//! Whoever appends or re-plans holds the plan's row lock, so the log and its
//! plan change together, and the recurring job (which skips locked plans)
//! never overwrites a newer plan with an older one.
//!
//! A notice is sent once per clock, cycle and kind: `sla_notices` has that
//! key as its primary key and the event goes into the outbox in the same
//! transaction as the notice's row, so restarts, retries and replicas
//! cannot send it twice, and a crash cannot lose it.

use std::collections::HashSet;

use anchor_domain::{CalendarId, ExecutionId, SlaPolicyId, SlaState, TicketId};
use anchor_events::{Event, EventSpec};
use anchor_sla::{
    BusinessCalendar, Calendar, CalendarRef, ChangeKind, ClockEvent, ClockEventKind, ClockState, ConfigVersions,
    PolicyRef, SlaClocks, SlaPolicy, Target,
};
use anchor_store::{
    Database, StoreError, WorkspaceTx,
    service_policies::PolicyRecord,
    ticket_sla::{SlaNoticeKey, SlaPlan, SlaSummary},
    tickets::Ticket,
};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

/// How many due tickets one pass of the job takes per workspace and unit of
/// work; a workspace with more is taken again at once.
const DUE_BATCH: i64 = 200;
/// A log that cannot be replayed (a bug, or data edited by hand) is looked
/// at again after this long rather than at every pass.
const RETRY_BROKEN_AFTER: time::Duration = time::Duration::hours(1);

/// `sla.warning`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SlaWarning {
    pub ticket_id: TicketId,
    /// `first_response`, `next_update` or `resolution`.
    pub target: String,
    /// The clock's cycle (the next-update clock starts one per public reply).
    pub cycle: i32,
    /// When the warning share of the target was used up.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// The deadline.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub due_at: Option<OffsetDateTime>,
    /// The ticket as `GET .../tickets/{id}` shows it.
    pub ticket: Ticket,
}

impl Event for SlaWarning {
    const TYPE: &'static str = "sla.warning";
    const WHEN: &'static str = "An SLA clock used up its policy's warning share of the target (once per clock cycle).";
}

/// `sla.breached`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SlaBreached {
    pub ticket_id: TicketId,
    /// `first_response`, `next_update` or `resolution`.
    pub target: String,
    pub cycle: i32,
    /// When the clock breached: its deadline, or the change that left it already past.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub due_at: Option<OffsetDateTime>,
    pub ticket: Ticket,
}

impl Event for SlaBreached {
    const TYPE: &'static str = "sla.breached";
    const WHEN: &'static str = "An SLA clock missed its target (once per clock cycle).";
}

/// The events the clocks publish.
pub const EVENTS: &[EventSpec] = &[EventSpec::of::<SlaWarning>(), EventSpec::of::<SlaBreached>()];

/// Why clocks could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum SlaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored calendar, policy or log that does not read back (never
    /// written by Anchor in that shape).
    #[error("{0}")]
    Broken(String),
}

/// Policy and calendar versions, loaded once per unit of work as logs name them.
#[derive(Debug, Default)]
pub struct Versions {
    config: ConfigVersions,
    policies: HashSet<PolicyRef>,
    calendars: HashSet<CalendarRef>,
}

impl Versions {
    pub fn new() -> Self {
        Self::default()
    }

    async fn policy(&mut self, tx: &mut WorkspaceTx, key: &PolicyRef) -> Result<(), SlaError> {
        if self.policies.contains(key) {
            return Ok(());
        }
        let definition = tx
            .policy_definition(&key.id, version(key.version)?)
            .await?
            .ok_or_else(|| SlaError::Broken(format!("policy {} version {} is missing", key.id, key.version)))?;
        self.add_policy(key, definition)
    }

    /// Version `key` of a policy, whose definition the caller has read.
    fn add_policy(&mut self, key: &PolicyRef, definition: Value) -> Result<(), SlaError> {
        let policy: SlaPolicy = serde_json::from_value(definition)
            .map_err(|e| SlaError::Broken(format!("policy {} version {}: {e}", key.id, key.version)))?;
        self.config.add_policy(key.id.clone(), SlaPolicy { version: key.version, ..policy });
        self.policies.insert(key.clone());
        Ok(())
    }

    async fn calendar(&mut self, tx: &mut WorkspaceTx, key: &CalendarRef) -> Result<(), SlaError> {
        if self.calendars.contains(key) {
            return Ok(());
        }
        let definition = tx
            .calendar_definition(&key.id, version(key.version)?)
            .await?
            .ok_or_else(|| SlaError::Broken(format!("calendar {} version {} is missing", key.id, key.version)))?;
        self.add_calendar(key, definition)
    }

    /// Version `key` of a calendar, whose definition the caller has read.
    fn add_calendar(&mut self, key: &CalendarRef, definition: Value) -> Result<(), SlaError> {
        let calendar: Calendar = serde_json::from_value(definition)
            .map_err(|e| SlaError::Broken(format!("calendar {} version {}: {e}", key.id, key.version)))?;
        let calendar = BusinessCalendar::new(&Calendar { version: key.version, ..calendar })
            .map_err(|e| SlaError::Broken(format!("calendar {} version {}: {e}", key.id, key.version)))?;
        self.config.add_calendar(key.id.clone(), calendar);
        self.calendars.insert(key.clone());
        Ok(())
    }

    /// Loads every version `events` name.
    async fn load(&mut self, tx: &mut WorkspaceTx, events: &[ClockEvent]) -> Result<(), SlaError> {
        for event in events {
            match &event.kind {
                ClockEventKind::Opened { policy, calendar, .. } => {
                    self.policy(tx, policy).await?;
                    self.calendar(tx, calendar).await?;
                }
                ClockEventKind::PolicyChanged { policy } => self.policy(tx, policy).await?,
                ClockEventKind::CalendarChanged { calendar } => self.calendar(tx, calendar).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn version(v: u32) -> Result<i32, SlaError> {
    i32::try_from(v).map_err(|_| SlaError::Broken(format!("version {v} is out of range")))
}

/// The policy and calendar a policy id means now: its current version and
/// the current version of its calendar.
async fn current_refs(tx: &mut WorkspaceTx, policy: SlaPolicyId) -> Result<Option<(PolicyRef, CalendarRef)>, SlaError> {
    let Some(record) = tx.sla_policy(policy).await? else { return Ok(None) };
    current_of(tx, record, None).await.map(Some)
}

/// [`current_refs`] of a policy read already; with `versions`, the two
/// definitions read are kept there too (no second read to replay with).
async fn current_of(
    tx: &mut WorkspaceTx,
    record: PolicyRecord,
    versions: Option<&mut Versions>,
) -> Result<(PolicyRef, CalendarRef), SlaError> {
    let Some(calendar) = tx.calendar(record.calendar_id).await? else {
        return Err(SlaError::Broken(format!(
            "policy {} names calendar {} which is missing",
            record.id, record.calendar_id
        )));
    };
    let unsigned = |v: i32| u32::try_from(v).map_err(|_| SlaError::Broken(format!("version {v} is out of range")));
    let policy = PolicyRef::new(record.id.to_string(), unsigned(record.version)?);
    let calendar_ref = CalendarRef::new(calendar.id.to_string(), unsigned(calendar.version)?);
    if let Some(versions) = versions {
        versions.add_policy(&policy, record.definition.0)?;
        versions.add_calendar(&calendar_ref, calendar.definition.0)?;
    }
    Ok((policy, calendar_ref))
}

/// Starts the clocks of a ticket just opened, under `policy` (the
/// workspace's default when none is named). A workspace without any policy
/// has no clocks to start.
pub async fn open(
    tx: &mut WorkspaceTx,
    ticket: &Ticket,
    policy: Option<SlaPolicyId>,
    execution: ExecutionId,
) -> Result<(), SlaError> {
    let record = match policy {
        Some(policy) => tx.sla_policy(policy).await?,
        None => tx.default_sla_policy().await?,
    };
    let Some(record) = record else { return Ok(()) };
    let mut versions = Versions::new();
    let (policy, calendar) = current_of(tx, record, Some(&mut versions)).await?;
    let at = tx.clock_instant(ticket.id).await?;
    let opened = ClockEventKind::Opened {
        priority: ticket.priority.as_str().to_owned(),
        status: ticket.status.as_str().to_owned(),
        policy,
        calendar,
    };
    let opened = ClockEvent::new(at, opened);
    append(tx, ticket.id, &opened, Some(execution)).await?;
    // A ticket just opened: its log is this one event, and nothing has been
    // sent about it.
    let log = [serde_json::to_value(&opened).expect("a clock event serialises")];
    plan(tx, ticket.id, &mut versions, at, &log, HashSet::new()).await?;
    Ok(())
}

/// Records what happened to a ticket in its clock log and re-plans it. A
/// ticket without clocks records nothing. A reopened ticket is brought to
/// the current versions of its policy and calendar (a resolved ticket is not
/// re-planned by edits while it is resolved).
pub async fn record(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    kinds: Vec<ClockEventKind>,
    execution: ExecutionId,
) -> Result<(), SlaError> {
    let Some(plan) = tx.lock_sla_plan(ticket).await? else { return Ok(()) };
    let at = tx.clock_instant(ticket).await?;
    let mut reopened = false;
    for kind in kinds {
        reopened |= matches!(kind, ClockEventKind::Reopened);
        append(tx, ticket, &ClockEvent::new(at, kind), Some(execution)).await?;
    }
    if reopened {
        catch_up(tx, &plan, at, Some(execution)).await?;
    }
    let mut versions = Versions::new();
    replan(tx, ticket, &mut versions, at).await?;
    Ok(())
}

/// Appends policy and calendar changes that bring a plan to the current
/// versions of its policy and of that policy's calendar.
async fn catch_up(
    tx: &mut WorkspaceTx,
    plan: &SlaPlan,
    at: OffsetDateTime,
    execution: Option<ExecutionId>,
) -> Result<(), SlaError> {
    let Some((policy, calendar)) = current_refs(tx, plan.policy_id).await? else { return Ok(()) };
    if i64::from(policy.version) != i64::from(plan.policy_version) {
        append(tx, plan.ticket_id, &ClockEvent::new(at, ClockEventKind::PolicyChanged { policy }), execution).await?;
    }
    if calendar.id != plan.calendar_id.to_string() || i64::from(calendar.version) != i64::from(plan.calendar_version) {
        append(tx, plan.ticket_id, &ClockEvent::new(at, ClockEventKind::CalendarChanged { calendar }), execution)
            .await?;
    }
    Ok(())
}

/// After a calendar edit: every open ticket whose clocks use the calendar
/// records the change and is re-planned from now on. Closed and resolved
/// tickets keep their plans. Returns how many were re-planned.
pub async fn calendar_edited(tx: &mut WorkspaceTx, calendar: CalendarId) -> Result<usize, SlaError> {
    let tickets = tx.open_sla_tickets_on_calendar(calendar).await?;
    replan_each(tx, &tickets).await
}

/// After a policy edit (its targets, or the calendar it uses): as
/// [`calendar_edited`], for the open tickets that follow the policy.
pub async fn policy_edited(tx: &mut WorkspaceTx, policy: SlaPolicyId) -> Result<usize, SlaError> {
    let tickets = tx.open_sla_tickets_on_policy(policy).await?;
    replan_each(tx, &tickets).await
}

async fn replan_each(tx: &mut WorkspaceTx, tickets: &[TicketId]) -> Result<usize, SlaError> {
    let mut versions = Versions::new();
    let mut replanned = 0;
    for &ticket in tickets {
        let Some(plan) = tx.lock_sla_plan(ticket).await? else { continue };
        if !plan.open {
            continue;
        }
        let at = tx.clock_instant(ticket).await?;
        catch_up(tx, &plan, at, None).await?;
        replan(tx, ticket, &mut versions, at).await?;
        replanned += 1;
    }
    Ok(replanned)
}

async fn append(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    event: &ClockEvent,
    execution: Option<ExecutionId>,
) -> Result<(), SlaError> {
    let json = serde_json::to_value(event).expect("a clock event serialises");
    tx.append_clock_event(ticket, event.at, &json, execution).await?;
    Ok(())
}

/// The ticket's clocks as of `now`, replayed from its log (read only).
pub async fn clocks(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    now: OffsetDateTime,
) -> Result<Option<SlaClocks>, SlaError> {
    let log = tx.clock_log(ticket).await?;
    if log.is_empty() {
        return Ok(None);
    }
    let mut versions = Versions::new();
    replay_log(tx, &log, &mut versions, now).await.map(Some)
}

async fn replay_log(
    tx: &mut WorkspaceTx,
    log: &[Value],
    versions: &mut Versions,
    now: OffsetDateTime,
) -> Result<SlaClocks, SlaError> {
    let events: Vec<ClockEvent> = log
        .iter()
        .map(|e| serde_json::from_value(e.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| SlaError::Broken(format!("a clock event does not read back: {e}")))?;
    versions.load(tx, &events).await?;
    anchor_sla::replay(&events, &versions.config, now).map_err(|e| SlaError::Broken(e.to_string()))
}

/// A warning or breach the replay found, keyed as `sla_notices` keys it.
struct Notice {
    key: SlaNoticeKey,
    at: OffsetDateTime,
    due_at: Option<OffsetDateTime>,
}

fn notices(clocks: &SlaClocks) -> Vec<Notice> {
    clocks
        .changes
        .iter()
        .filter_map(|change| {
            let kind = match change.kind {
                ChangeKind::Warned => "warning",
                ChangeKind::Breached => "breached",
                _ => return None,
            };
            let key = SlaNoticeKey {
                target: change.target.as_str().to_owned(),
                cycle: i32::try_from(change.cycle).unwrap_or(i32::MAX),
                kind: kind.to_owned(),
            };
            Some(Notice { key, at: change.at, due_at: change.due_at })
        })
        .collect()
}

/// Replays the ticket's log as of `now` and stores the plan. Returns the
/// clocks and the warnings and breaches not sent yet (whose instant has come).
async fn replan(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    versions: &mut Versions,
    now: OffsetDateTime,
) -> Result<(SlaClocks, Vec<Notice>), SlaError> {
    let log = tx.clock_log(ticket).await?;
    let sent: HashSet<SlaNoticeKey> = tx.sla_notices(ticket).await?.into_iter().collect();
    plan(tx, ticket, versions, now, &log, sent).await
}

/// [`replan`] with the log and the notices sent read already.
async fn plan(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    versions: &mut Versions,
    now: OffsetDateTime,
    log: &[Value],
    sent: HashSet<SlaNoticeKey>,
) -> Result<(SlaClocks, Vec<Notice>), SlaError> {
    let mut clocks = replay_log(tx, log, versions, now).await?;
    let unsent: Vec<Notice> = notices(&clocks).into_iter().filter(|n| !sent.contains(&n.key)).collect();

    // The next look: now if something is waiting to be sent, else the
    // earliest warning or deadline still ahead of a running clock.
    let ahead = Target::ALL
        .iter()
        .map(|t| clocks.clock(*t))
        .filter(|c| matches!(c.state, ClockState::Running | ClockState::Breached) && c.completed_at.is_none())
        .flat_map(|c| {
            let warning = c.warning_at.filter(|_| c.warned_at.is_none());
            let due = c.due_at.filter(|_| c.breached_at.is_none());
            [warning, due]
        })
        .flatten()
        .min();
    let next_check_at = if unsent.is_empty() { ahead } else { Some(clocks.as_of) };

    let summary = summary(&clocks);
    let parse_id = |id: &str, what: &str| SlaError::Broken(format!("{what} id {id} in a clock log is not valid"));
    clocks.changes.clear();
    let plan = SlaPlan {
        ticket_id: ticket,
        policy_id: clocks.policy.id.parse().map_err(|_| parse_id(&clocks.policy.id, "policy"))?,
        policy_version: version(clocks.policy.version)?,
        calendar_id: clocks.calendar.id.parse().map_err(|_| parse_id(&clocks.calendar.id, "calendar"))?,
        calendar_version: version(clocks.calendar.version)?,
        open: !clocks.resolved,
        clocks: Json(serde_json::to_value(&clocks).expect("clocks serialise")),
        planned_at: clocks.as_of,
        next_check_at,
    };
    tx.save_sla_plan(&plan, summary).await?;
    Ok((clocks, unsent))
}

/// The most pressing clock's state, and the nearest deadline ahead.
fn summary(clocks: &SlaClocks) -> SlaSummary {
    let all: Vec<_> = Target::ALL.iter().map(|t| clocks.clock(*t)).collect();
    let state = if all.iter().any(|c| c.state == ClockState::Breached) {
        SlaState::Breached
    } else if all.iter().any(|c| c.state == ClockState::Running && c.warned_at.is_some()) {
        SlaState::Warning
    } else if all.iter().any(|c| c.state == ClockState::Running) {
        SlaState::Running
    } else if all.iter().any(|c| c.state == ClockState::Paused) {
        SlaState::Paused
    } else {
        SlaState::Met
    };
    let due_at = all.iter().filter(|c| c.state == ClockState::Running).filter_map(|c| c.due_at).min();
    SlaSummary { state, due_at }
}

/// One pass of the recurring `sla.clocks` job over every workspace with
/// clocks due: re-plans them as of now and sends each warning and breach
/// that has not been sent. Returns how many notices were sent.
pub async fn check_due(db: &Database) -> Result<usize, StoreError> {
    let mut sent = 0;
    let mut failure = None;
    for workspace_id in db.sla_due_workspaces(1000).await? {
        match check_workspace(db, workspace_id).await {
            Ok(n) => sent += n,
            Err(e) => {
                tracing::error!(workspace_id, error = %e, "SLA clocks could not be checked in a workspace");
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) if sent == 0 => Err(e),
        _ => Ok(sent),
    }
}

async fn check_workspace(db: &Database, workspace_id: i64) -> Result<usize, StoreError> {
    let Some(workspace) = db.workspace_by_id(workspace_id).await? else { return Ok(0) };
    let mut tx = db.begin_workspace(&workspace).await?;
    tx.lock_sla_schedule().await?;
    let due = tx.lock_due_sla_plans(DUE_BATCH).await?;
    let mut versions = Versions::new();
    let mut sent = 0;
    for ticket in due {
        let now = tx.clock().await?;
        let unsent = match replan(&mut tx, ticket, &mut versions, now).await {
            Ok((_, unsent)) => unsent,
            Err(SlaError::Store(e)) => return Err(e),
            Err(SlaError::Broken(why)) => {
                tracing::error!(%ticket, why, "a ticket's SLA clocks cannot be replayed; looking again later");
                sqlx::query("UPDATE ticket_sla SET next_check_at = $2 WHERE ticket_id = $1")
                    .bind(ticket)
                    .bind(now + RETRY_BROKEN_AFTER)
                    .execute(tx.conn())
                    .await?;
                continue;
            }
        };
        for notice in unsent {
            if !tx.insert_sla_notice(ticket, &notice.key, notice.at, notice.due_at).await? {
                continue;
            }
            let view = tx.ticket(ticket).await?.expect("a planned ticket exists");
            let (target, cycle) = (notice.key.target.clone(), notice.key.cycle);
            if notice.key.kind == "warning" {
                let event =
                    SlaWarning { ticket_id: ticket, target, cycle, at: notice.at, due_at: notice.due_at, ticket: view };
                anchor_events::publish(&mut tx, &event).await?;
            } else {
                let event = SlaBreached {
                    ticket_id: ticket,
                    target,
                    cycle,
                    at: notice.at,
                    due_at: notice.due_at,
                    ticket: view,
                };
                anchor_events::publish(&mut tx, &event).await?;
            }
            sent += 1;
        }
    }
    tx.reschedule_sla().await?;
    tx.commit().await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_events_are_named_for_the_catalogue() {
        let names: Vec<_> = EVENTS.iter().map(|e| e.name).collect();
        assert_eq!(names, ["sla.warning", "sla.breached"]);
    }
}
