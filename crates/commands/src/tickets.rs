//! Ticket commands: open, move along the lifecycle, comment, and the two
//! that alert automation uses (resolve and reopen with a note), with the
//! events they publish.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    AlertId, AssetId, Awaiting, CommentId, CommentVisibility, ContactId, ExecutionId, Priority, QueueId, SiteId,
    TicketId, TicketStatus, TicketText, TicketTitle,
};
use anchor_events::{Event, EventSpec};
use anchor_sla::ClockEventKind;
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    tickets::{NewTicket, Ticket},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    command::SYSTEM_ISSUER,
    kit::{DomainCommand, Effect, RefusalKind, Rejection},
    sites,
    sla::{self, SlaError},
};

pub const TICKET_NOT_FOUND: RefusalKind =
    RefusalKind { code: "ticket_not_found", status: 404, when: "the ticket does not exist in this workspace" };
pub const TRANSITION_NOT_ALLOWED: RefusalKind =
    RefusalKind { code: "transition_not_allowed", status: 409, when: "the lifecycle forbids this move now" };
pub const ASSET_NOT_FOUND: RefusalKind =
    RefusalKind { code: "asset_not_found", status: 404, when: "the asset does not exist in this workspace" };
pub const TICKET_MERGED: RefusalKind = RefusalKind {
    code: "ticket_merged",
    status: 409,
    when: "the ticket was merged into another; work on the ticket it was merged into",
};
pub const AUTOMATION_ONLY: RefusalKind =
    RefusalKind { code: "automation_only", status: 403, when: "`alert_id` is set by alert automation only" };

/// Open a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"title": "Printer on floor 2 offline", "description": "Since this morning.", "priority": "p3"}))]
pub struct TicketCreate {
    /// One line, 1-200 characters.
    pub title: TicketTitle,
    /// Up to 20,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<TicketText>,
    /// `p1` (critical) to `p4` (low).
    pub priority: Priority,
    /// The machine it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
    /// The alert it was opened for (set by alert automation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
    /// Who at the client it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// Where at the client it is; the contact's site when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    /// The queue it goes to; its SLA policy (if it names one) is the ticket's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<QueueId>,
}

/// Move a ticket along its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "to": "triaged"}))]
pub struct TicketTransition {
    pub ticket_id: TicketId,
    /// `new`, `triaged`, `in_progress`, `waiting_on_client`, `resolved` or `closed`.
    pub to: TicketStatus,
}

/// Change a ticket's priority. Its SLA clocks keep the time they have run
/// and paused, and take the new priority's targets from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "priority": "p1"}))]
pub struct TicketSetPriority {
    pub ticket_id: TicketId,
    /// `p1` (critical) to `p4` (low).
    pub priority: Priority,
}

/// Comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "body": "Replaced the toner; printing again.", "visibility": "public"}))]
pub struct TicketComment {
    pub ticket_id: TicketId,
    pub body: TicketText,
    /// `internal` (staff only) or `public` (the client sees it too).
    pub visibility: CommentVisibility,
}

/// Resolve a ticket from wherever it is in its lifecycle, with a note
/// (automation, when the alert it was opened for recovers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketResolve {
    pub ticket_id: TicketId,
    pub note: TicketText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Reopen a resolved ticket, with a note (automation, when the alert it was
/// opened for comes back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketReopen {
    pub ticket_id: TicketId,
    pub note: TicketText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// `ticket.created`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketCreated {
    /// The ticket as `GET .../tickets/{id}` shows it, without comments and history.
    pub ticket: Ticket,
    pub execution_id: ExecutionId,
}

impl Event for TicketCreated {
    const TYPE: &'static str = "ticket.created";
    const WHEN: &'static str = "A ticket was opened.";
}

/// What changed in a `ticket.updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketChange {
    StatusChanged,
    Commented,
    PriorityChanged,
    Assigned,
    Queued,
    Tagged,
    Merged,
    Related,
}

/// `ticket.updated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketUpdated {
    pub ticket_id: TicketId,
    /// `status_changed` (with `from`, `to`), `commented` (with `comment_id`, `visibility`),
    /// `priority_changed` (with `from_priority`, `to_priority`), or `assigned`, `queued`,
    /// `tagged`, `merged`, `related` (with `detail`: what changed).
    pub change: TicketChange,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TicketStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TicketStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<CommentVisibility>,
    /// For `assigned` (`from`, `to`), `queued` (`from`, `to`), `tagged` (`added`, `removed`),
    /// `merged` (`merged`, `into`) and `related` (`related`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    pub actor: Actor,
    pub execution_id: ExecutionId,
    /// The ticket after the change, as `GET .../tickets/{id}` shows it.
    pub ticket: Ticket,
}

impl Event for TicketUpdated {
    const TYPE: &'static str = "ticket.updated";
    const WHEN: &'static str = "A ticket moved along its lifecycle, got a comment or changed priority.";
}

pub(crate) const UPDATED: &[EventSpec] = &[EventSpec::of::<TicketUpdated>()];

/// The result of a command on one ticket.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketRef {
    pub ticket_id: TicketId,
}

/// The result of a move.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketMoved {
    pub ticket_id: TicketId,
    pub from: TicketStatus,
    pub to: TicketStatus,
}

/// The result of a comment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketCommented {
    pub ticket_id: TicketId,
    pub comment_id: CommentId,
}

/// The ticket (locked until the unit of work ends), or a refusal: it does
/// not exist, or it was merged into another.
pub(crate) async fn locked_ticket(tx: &mut WorkspaceTx, id: TicketId) -> Result<Ticket, Rejection> {
    if tx.lock_ticket_status(id).await?.is_none() {
        return Err(TICKET_NOT_FOUND.because(format!("no ticket {id} in this workspace")).into());
    }
    workable(tx.ticket(id).await?.expect("locked"))
}

/// The ticket as it is now, or a refusal (as [`locked_ticket`]).
pub(crate) async fn current_ticket(tx: &mut WorkspaceTx, id: TicketId) -> Result<Ticket, Rejection> {
    match tx.ticket(id).await? {
        Some(ticket) => workable(ticket),
        None => Err(TICKET_NOT_FOUND.because(format!("no ticket {id} in this workspace")).into()),
    }
}

fn workable(ticket: Ticket) -> Result<Ticket, Rejection> {
    match ticket.merged_into {
        Some(survivor) => Err(TICKET_MERGED
            .because(format!("ticket {} was merged into {survivor}; work on that ticket", ticket.id))
            .into()),
        None => Ok(ticket),
    }
}

/// The ticket's status (locked until the unit of work ends), or a refusal.
async fn locked_status(tx: &mut WorkspaceTx, id: TicketId) -> Result<TicketStatus, Rejection> {
    locked_ticket(tx, id).await.map(|t| t.status)
}

/// The ticket's status as it is now, or a refusal.
async fn current_status(tx: &mut WorkspaceTx, id: TicketId) -> Result<TicketStatus, Rejection> {
    current_ticket(tx, id).await.map(|t| t.status)
}

fn allowed(from: TicketStatus, to: TicketStatus) -> Result<(), Rejection> {
    from.transition(to).map(drop).map_err(|e| TRANSITION_NOT_ALLOWED.because(e.to_string()).into())
}

/// Clocks that cannot be planned must not stop the desk: the command goes
/// on, the clocks keep their last plan, and the error is logged loudly.
pub(crate) fn clocks_planned(result: Result<(), SlaError>, ticket: TicketId) -> Result<(), Rejection> {
    match result {
        Ok(()) => Ok(()),
        Err(SlaError::Store(e)) => Err(e.into()),
        Err(SlaError::Broken(why)) => {
            tracing::error!(%ticket, why, "SLA clocks could not be planned; they keep their last plan");
            Ok(())
        }
    }
}

/// What a move means to the clocks.
fn clock_events(from: TicketStatus, to: TicketStatus) -> Vec<ClockEventKind> {
    let status = ClockEventKind::StatusChanged { status: to.as_str().to_owned() };
    match (from.is_open(), to) {
        (true, TicketStatus::Resolved | TicketStatus::Closed) => vec![status, ClockEventKind::Resolved],
        (false, to) if to.is_open() => vec![ClockEventKind::Reopened, status],
        _ => vec![status],
    }
}

/// Who owes the next answer after a move: waiting on the client is theirs;
/// resuming work or reopening is ours; other moves leave it.
async fn awaiting_after(
    tx: &mut WorkspaceTx,
    ticket: TicketId,
    from: TicketStatus,
    to: TicketStatus,
) -> Result<(), Rejection> {
    let awaiting = match (from, to) {
        (_, TicketStatus::WaitingOnClient) => Some(Awaiting::Client),
        (TicketStatus::WaitingOnClient | TicketStatus::Resolved | TicketStatus::Closed, TicketStatus::InProgress) => {
            Some(Awaiting::Us)
        }
        _ => None,
    };
    if let Some(awaiting) = awaiting {
        tx.set_ticket_awaiting(ticket, awaiting).await?;
    }
    Ok(())
}

/// Records a move in the ticket's clock log.
pub(crate) async fn clock_move(
    effect: &mut Effect<'_>,
    ticket: TicketId,
    from: TicketStatus,
    to: TicketStatus,
) -> Result<(), Rejection> {
    awaiting_after(effect.tx, ticket, from, to).await?;
    clocks_planned(sla::record(effect.tx, ticket, clock_events(from, to), effect.execution).await, ticket)
}

/// Publishes `ticket.updated` for a move and answers with it.
pub(crate) async fn moved(
    effect: &mut Effect<'_>,
    ticket_id: TicketId,
    from: TicketStatus,
    to: TicketStatus,
) -> Result<TicketMoved, Rejection> {
    let ticket = effect.tx.ticket(ticket_id).await?.expect("the ticket is locked");
    let event = TicketUpdated {
        ticket_id,
        change: TicketChange::StatusChanged,
        from: Some(from),
        to: Some(to),
        from_priority: None,
        to_priority: None,
        comment_id: None,
        visibility: None,
        detail: None,
        actor: effect.actor.clone(),
        execution_id: effect.execution,
        ticket,
    };
    effect.publish(&event).await?;
    Ok(TicketMoved { ticket_id, from, to })
}

impl DomainCommand for TicketCreate {
    const NAME: &'static str = "ticket.create";
    const SKILL: &'static str = "ticket_create";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Open a ticket";
    const REFUSALS: &'static [&'static RefusalKind] = &[
        &ASSET_NOT_FOUND,
        &AUTOMATION_ONLY,
        &sites::CONTACT_NOT_FOUND,
        &sites::CONTACT_ARCHIVED,
        &sites::SITE_NOT_FOUND,
        &sites::SITE_ARCHIVED,
        &crate::assignment::QUEUE_NOT_FOUND,
    ];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<TicketCreated>()];
    type Output = TicketRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        if self.alert_id.is_some() && actor.issuer != SYSTEM_ISSUER {
            return Err(AUTOMATION_ONLY.because("alert_id is set by alert automation only; leave it out").into());
        }
        if let Some(asset) = self.asset_id
            && !tx.asset_exists(asset).await?
        {
            return Err(ASSET_NOT_FOUND.because(format!("no asset {asset} in this workspace")).into());
        }
        if let Some(contact) = self.contact_id {
            sites::live_contact(tx, contact, false).await?;
        }
        if let Some(queue) = self.queue_id
            && tx.queue_policy(queue).await?.is_none()
        {
            return Err(crate::assignment::QUEUE_NOT_FOUND
                .because(format!("no queue {queue} in this workspace"))
                .into());
        }
        sites::check_site(tx, self.site_id).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketRef, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let contact_site = match self.contact_id {
            Some(contact) => sites::live_contact(effect.tx, contact, true).await?.site_id,
            None => None,
        };
        let id = TicketId::new();
        let new = NewTicket {
            id,
            title: &self.title,
            description: self.description.as_ref(),
            priority: self.priority,
            asset_id: self.asset_id,
            alert_id: self.alert_id,
            contact_id: self.contact_id,
            site_id: self.site_id.or(contact_site),
            queue_id: self.queue_id,
        };
        let opened = effect.tx.insert_ticket(&new, effect.actor, effect.execution).await?;
        if let Some(alert) = self.alert_id {
            effect.tx.link_alert_ticket(alert, id).await?;
        }
        // The contact's policy, else the site's, else the queue's, else the workspace default.
        let contact_policy = match self.contact_id {
            Some(contact) => effect.tx.contact(contact).await?.and_then(|c| c.sla_policy_id),
            None => None,
        };
        let site_policy = match opened.site_id {
            Some(site) if contact_policy.is_none() => effect.tx.site(site).await?.and_then(|s| s.sla_policy_id),
            _ => None,
        };
        let queue_policy = match self.queue_id {
            Some(queue) => effect.tx.queue_policy(queue).await?.flatten(),
            _ => None,
        };
        // The contract in force today: its time is billed under it, and its
        // SLA policy comes after the contact's and the site's.
        let today = effect.tx.clock().await?.date();
        let contract = match effect.tx.contract_in_force(today).await? {
            Some(id) => effect.tx.contract(id).await?,
            None => None,
        };
        if let Some(contract) = &contract {
            effect.tx.set_ticket_contract(id, Some(contract.id)).await?;
        }
        let contract_policy = contract.and_then(|c| c.sla_policy_id);
        let policy = contact_policy.or(site_policy).or(contract_policy).or(queue_policy);
        clocks_planned(sla::open(effect.tx, &opened, policy, effect.execution).await, id)?;
        let ticket = effect.tx.ticket(id).await?.expect("just opened");
        effect.publish(&TicketCreated { ticket, execution_id: effect.execution }).await?;
        Ok(TicketRef { ticket_id: id })
    }
}

impl DomainCommand for TicketTransition {
    const NAME: &'static str = "ticket.transition";
    const SKILL: &'static str = "ticket_transition";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Move a ticket along its lifecycle";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &TICKET_MERGED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketMoved;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        allowed(current_status(tx, self.ticket_id).await?, self.to)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketMoved, Rejection> {
        let from = locked_status(effect.tx, self.ticket_id).await?;
        allowed(from, self.to)?;
        effect.tx.set_ticket_status(self.ticket_id, from, self.to, effect.actor, effect.execution).await?;
        clock_move(effect, self.ticket_id, from, self.to).await?;
        moved(effect, self.ticket_id, from, self.to).await
    }
}

/// The result of a priority change.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketReprioritized {
    pub ticket_id: TicketId,
    pub from: Priority,
    pub to: Priority,
}

impl DomainCommand for TicketSetPriority {
    const NAME: &'static str = "ticket.set_priority";
    const SKILL: &'static str = "ticket_set_priority";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Change a ticket's priority (its SLA clocks keep the time already counted)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &TICKET_MERGED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketReprioritized;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_status(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketReprioritized, Rejection> {
        locked_status(effect.tx, self.ticket_id).await?;
        let before = effect.tx.ticket(self.ticket_id).await?.expect("the ticket is locked");
        let (from, to) = (before.priority, self.priority);
        if from == to {
            // Nothing changes, so nothing is recorded or published.
            return Ok(TicketReprioritized { ticket_id: self.ticket_id, from, to });
        }
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        tx.set_ticket_priority(self.ticket_id, from, to, actor, execution).await?;
        let kind = ClockEventKind::PriorityChanged { priority: to.as_str().to_owned() };
        clocks_planned(sla::record(tx, self.ticket_id, vec![kind], execution).await, self.ticket_id)?;
        let ticket = tx.ticket(self.ticket_id).await?.expect("the ticket is locked");
        let event = TicketUpdated {
            ticket_id: self.ticket_id,
            change: TicketChange::PriorityChanged,
            from: None,
            to: None,
            from_priority: Some(from),
            to_priority: Some(to),
            comment_id: None,
            visibility: None,
            detail: None,
            actor: actor.clone(),
            execution_id: execution,
            ticket,
        };
        effect.publish(&event).await?;
        Ok(TicketReprioritized { ticket_id: self.ticket_id, from, to })
    }
}

impl DomainCommand for TicketComment {
    const NAME: &'static str = "ticket.comment";
    const SKILL: &'static str = "ticket_comment";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Comment on a ticket";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &TICKET_MERGED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketCommented;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_status(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketCommented, Rejection> {
        locked_status(effect.tx, self.ticket_id).await?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        let first_public =
            self.visibility == CommentVisibility::Public && !tx.has_public_comment(self.ticket_id).await?;
        let comment_id = tx.insert_comment(self.ticket_id, &self.body, self.visibility, actor, execution).await?;
        if self.visibility == CommentVisibility::Public {
            // We answered: the client owes the next word.
            tx.set_ticket_awaiting(self.ticket_id, Awaiting::Client).await?;
            // A reply to the client: meets the response clock, starts the next update's.
            let kind = if first_public { ClockEventKind::FirstPublicResponse } else { ClockEventKind::PublicUpdate };
            clocks_planned(sla::record(tx, self.ticket_id, vec![kind], execution).await, self.ticket_id)?;
        }
        let ticket = tx.ticket(self.ticket_id).await?.expect("the ticket is locked");
        let event = TicketUpdated {
            ticket_id: self.ticket_id,
            change: TicketChange::Commented,
            from: None,
            to: None,
            from_priority: None,
            to_priority: None,
            comment_id: Some(comment_id),
            visibility: Some(self.visibility),
            detail: None,
            actor: actor.clone(),
            execution_id: execution,
            ticket,
        };
        effect.publish(&event).await?;
        Ok(TicketCommented { ticket_id: self.ticket_id, comment_id })
    }
}

impl DomainCommand for TicketResolve {
    const NAME: &'static str = "ticket.resolve";
    const SKILL: &'static str = "ticket_resolve";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Resolve a ticket from wherever it is, with a note";
    const TAGS: &'static [&'static str] = &["automation"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &TICKET_MERGED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketMoved;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_status(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketMoved, Rejection> {
        let from = locked_status(effect.tx, self.ticket_id).await?;
        let mut status = from;
        // Along the lifecycle, each step in the history.
        while status.is_open() {
            let next = match status {
                TicketStatus::New => TicketStatus::Triaged,
                TicketStatus::Triaged => TicketStatus::InProgress,
                _ => TicketStatus::Resolved,
            };
            effect.tx.set_ticket_status(self.ticket_id, status, next, effect.actor, effect.execution).await?;
            status = next;
        }
        if status != from {
            clock_move(effect, self.ticket_id, from, status).await?;
        }
        let note = CommentVisibility::Internal;
        effect.tx.insert_comment(self.ticket_id, &self.note, note, effect.actor, effect.execution).await?;
        moved(effect, self.ticket_id, from, status).await
    }
}

impl DomainCommand for TicketReopen {
    const NAME: &'static str = "ticket.reopen";
    const SKILL: &'static str = "ticket_reopen";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Reopen a resolved ticket, with a note";
    const TAGS: &'static [&'static str] = &["automation"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &TICKET_MERGED, &TRANSITION_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketMoved;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        reopened(self.ticket_id, current_status(tx, self.ticket_id).await?).map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketMoved, Rejection> {
        let from = locked_status(effect.tx, self.ticket_id).await?;
        let to = reopened(self.ticket_id, from)?;
        if to != from {
            effect.tx.set_ticket_status(self.ticket_id, from, to, effect.actor, effect.execution).await?;
            clock_move(effect, self.ticket_id, from, to).await?;
        }
        let note = CommentVisibility::Internal;
        effect.tx.insert_comment(self.ticket_id, &self.note, note, effect.actor, effect.execution).await?;
        moved(effect, self.ticket_id, from, to).await
    }
}

/// Reopening is the lifecycle's way back from resolved; a ticket still open
/// only gets the note, a closed one stays closed.
fn reopened(id: TicketId, from: TicketStatus) -> Result<TicketStatus, Rejection> {
    match from {
        TicketStatus::Resolved => Ok(TicketStatus::InProgress),
        TicketStatus::Closed => {
            Err(TRANSITION_NOT_ALLOWED.because(format!("ticket {id} is closed; it cannot be reopened")).into())
        }
        open => Ok(open),
    }
}
