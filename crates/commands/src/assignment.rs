//! Who works a ticket and where it lives: assignment (to a staff member of
//! the workspace, or to "me"), queues, tags, merging one ticket into
//! another, and related tickets. All commands; each publishes
//! `ticket.updated` with what changed.

use anchor_auth::permissions::{Permission, grants};
use anchor_domain::{QueueId, Role, Tag, TicketId, TicketStatus};
use anchor_events::EventSpec;
use anchor_sla::{ClockEventKind, PolicyRef};
use anchor_store::{WorkspaceTx, executions::Actor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    kit::{DomainCommand, Effect, RefusalKind, Rejection},
    sla,
    tickets::{TICKET_NOT_FOUND, TicketChange, TicketUpdated, clocks_planned, current_ticket, locked_ticket},
};

pub const ASSIGNEE_NOT_STAFF: RefusalKind = RefusalKind {
    code: "assignee_not_staff",
    status: 422,
    when: "the assignee is not a staff member of this workspace who may work tickets",
};
pub const QUEUE_NOT_FOUND: RefusalKind =
    RefusalKind { code: "queue_not_found", status: 404, when: "the queue does not exist in this workspace" };
pub const MERGE_NOT_ALLOWED: RefusalKind = RefusalKind {
    code: "merge_not_allowed",
    status: 409,
    when: "a ticket cannot be merged into itself, or into a ticket that is closed or merged",
};
pub const RELATE_NOT_ALLOWED: RefusalKind =
    RefusalKind { code: "relate_not_allowed", status: 422, when: "a ticket cannot be related to itself" };

const UPDATED: &[EventSpec] = &[EventSpec::of::<TicketUpdated>()];

/// Who to assign: `"me"` (whoever submits the command) or a member by
/// issuer and subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Assignee {
    Me(Me),
    Member(Actor),
}

/// The literal `"me"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Me {
    Me,
}

/// Assign a ticket (or reassign it) to a staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "assignee": "me"}))]
pub struct TicketAssign {
    pub ticket_id: TicketId,
    /// `"me"`, or `{"issuer": ..., "subject": ...}` of a staff member of the workspace.
    pub assignee: Assignee,
}

/// Take the assignee off a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketUnassign {
    pub ticket_id: TicketId,
}

/// Move a ticket to a queue (`null`: out of any). A queue with its own SLA
/// policy puts the ticket's clocks on it, keeping the time already counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "queue_id": "que_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct TicketSetQueue {
    pub ticket_id: TicketId,
    pub queue_id: Option<QueueId>,
}

/// Add and remove tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "add": ["vip"], "remove": ["printer"]}))]
pub struct TicketTag {
    pub ticket_id: TicketId,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub add: Vec<Tag>,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub remove: Vec<Tag>,
}

/// Merge a ticket into another: it is closed, stays readable and points to
/// the survivor, whose timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "into": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8x"}))]
pub struct TicketMerge {
    /// The ticket merged away.
    pub ticket_id: TicketId,
    /// The ticket that survives.
    pub into: TicketId,
}

/// Relate two tickets (both ways).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRelate {
    pub ticket_id: TicketId,
    pub related_id: TicketId,
}

/// The result of a change to one ticket.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketChanged {
    pub ticket_id: TicketId,
    /// False when the ticket already was as asked (nothing recorded or published).
    pub changed: bool,
}

/// A staff member who may work tickets in this workspace, or a refusal.
async fn staff(tx: &mut WorkspaceTx, who: &Actor) -> Result<(), Rejection> {
    let role = tx.member_role(who).await?.and_then(|r| Role::parse(&r).ok());
    match role {
        Some(role) if grants(role, Permission::TicketsWrite) => Ok(()),
        _ => Err(ASSIGNEE_NOT_STAFF
            .because(format!("{} ({}) is not staff of this workspace who may work tickets", who.subject, who.issuer))
            .into()),
    }
}

fn resolve(assignee: &Assignee, actor: &Actor) -> Actor {
    match assignee {
        Assignee::Me(_) => actor.clone(),
        Assignee::Member(who) => who.clone(),
    }
}

/// Publishes `ticket.updated` with `change` and `detail`.
async fn updated(
    effect: &mut Effect<'_>,
    ticket_id: TicketId,
    change: TicketChange,
    detail: Value,
) -> Result<(), Rejection> {
    let ticket = effect.tx.ticket(ticket_id).await?.expect("the ticket is locked");
    let event = TicketUpdated {
        ticket_id,
        change,
        from: None,
        to: None,
        from_priority: None,
        to_priority: None,
        comment_id: None,
        visibility: None,
        detail: Some(detail),
        actor: effect.actor.clone(),
        execution_id: effect.execution,
        ticket,
    };
    effect.publish(&event).await?;
    Ok(())
}

fn assignee_json(who: Option<&Actor>) -> Value {
    who.map_or(Value::Null, |w| json!({"issuer": w.issuer, "subject": w.subject}))
}

impl DomainCommand for TicketAssign {
    const NAME: &'static str = "ticket.assign";
    const SKILL: &'static str = "ticket_assign";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Assign a ticket to a staff member (or to me)";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TICKET_NOT_FOUND, &crate::tickets::TICKET_MERGED, &ASSIGNEE_NOT_STAFF];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        current_ticket(tx, self.ticket_id).await?;
        staff(tx, &resolve(&self.assignee, actor)).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        let before = locked_ticket(effect.tx, self.ticket_id).await?;
        let to = resolve(&self.assignee, effect.actor);
        staff(effect.tx, &to).await?;
        let from = before.assignee.map(|a| a.0);
        if from.as_ref() == Some(&to) {
            return Ok(TicketChanged { ticket_id: self.ticket_id, changed: false });
        }
        let detail = json!({"from": assignee_json(from.as_ref()), "to": assignee_json(Some(&to))});
        effect.tx.set_ticket_assignee(self.ticket_id, Some(&to), &detail, effect.actor, effect.execution).await?;
        updated(effect, self.ticket_id, TicketChange::Assigned, detail).await?;
        Ok(TicketChanged { ticket_id: self.ticket_id, changed: true })
    }
}

impl DomainCommand for TicketUnassign {
    const NAME: &'static str = "ticket.unassign";
    const SKILL: &'static str = "ticket_unassign";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Take the assignee off a ticket";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &crate::tickets::TICKET_MERGED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_ticket(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        let before = locked_ticket(effect.tx, self.ticket_id).await?;
        let Some(from) = before.assignee.map(|a| a.0) else {
            return Ok(TicketChanged { ticket_id: self.ticket_id, changed: false });
        };
        let detail = json!({"from": assignee_json(Some(&from)), "to": Value::Null});
        effect.tx.set_ticket_assignee(self.ticket_id, None, &detail, effect.actor, effect.execution).await?;
        updated(effect, self.ticket_id, TicketChange::Assigned, detail).await?;
        Ok(TicketChanged { ticket_id: self.ticket_id, changed: true })
    }
}

/// The queue exists (its policy, if it names one), or a refusal.
async fn queue_policy(tx: &mut WorkspaceTx, queue: QueueId) -> Result<Option<anchor_domain::SlaPolicyId>, Rejection> {
    tx.queue_policy(queue)
        .await?
        .ok_or_else(|| QUEUE_NOT_FOUND.because(format!("no queue {queue} in this workspace")).into())
}

impl DomainCommand for TicketSetQueue {
    const NAME: &'static str = "ticket.set_queue";
    const SKILL: &'static str = "ticket_set_queue";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Move a ticket to a queue (its SLA policy follows the queue's)";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TICKET_NOT_FOUND, &crate::tickets::TICKET_MERGED, &QUEUE_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_ticket(tx, self.ticket_id).await?;
        if let Some(queue) = self.queue_id {
            queue_policy(tx, queue).await?;
        }
        Ok(())
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        let before = locked_ticket(effect.tx, self.ticket_id).await?;
        if before.queue_id == self.queue_id {
            return Ok(TicketChanged { ticket_id: self.ticket_id, changed: false });
        }
        let policy = match self.queue_id {
            Some(queue) => queue_policy(effect.tx, queue).await?,
            None => None,
        };
        let detail = json!({"from": before.queue_id, "to": self.queue_id});
        effect.tx.set_ticket_queue(self.ticket_id, self.queue_id, &detail, effect.actor, effect.execution).await?;
        // The queue's policy applies from now on, if it has one and the
        // ticket is not on it already; the time counted so far is kept.
        if let Some(policy) = policy
            && before.sla_policy_id != Some(policy)
            && before.status.is_open()
        {
            let version = effect.tx.sla_policy(policy).await?.map(|p| p.version);
            if let Some(version) = version.and_then(|v| u32::try_from(v).ok()) {
                let kinds = vec![ClockEventKind::PolicyChanged { policy: PolicyRef::new(policy.to_string(), version) }];
                clocks_planned(sla::record(effect.tx, self.ticket_id, kinds, effect.execution).await, self.ticket_id)?;
            }
        }
        updated(effect, self.ticket_id, TicketChange::Queued, detail).await?;
        Ok(TicketChanged { ticket_id: self.ticket_id, changed: true })
    }
}

impl DomainCommand for TicketTag {
    const NAME: &'static str = "ticket.tag";
    const SKILL: &'static str = "ticket_tag";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Add and remove a ticket's tags";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &crate::tickets::TICKET_MERGED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        current_ticket(tx, self.ticket_id).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        let before = locked_ticket(effect.tx, self.ticket_id).await?;
        let mut tags: std::collections::BTreeSet<String> = before.tags.iter().cloned().collect();
        for tag in &self.add {
            tags.insert(tag.as_str().to_owned());
        }
        for tag in &self.remove {
            tags.remove(tag.as_str());
        }
        let tags: Vec<String> = tags.into_iter().take(20).collect();
        if tags == before.tags {
            return Ok(TicketChanged { ticket_id: self.ticket_id, changed: false });
        }
        let added: Vec<&String> = tags.iter().filter(|t| !before.tags.contains(t)).collect();
        let removed: Vec<&String> = before.tags.iter().filter(|t| !tags.contains(t)).collect();
        let detail = json!({"added": added, "removed": removed});
        effect.tx.set_ticket_tags(self.ticket_id, &tags, &detail, effect.actor, effect.execution).await?;
        updated(effect, self.ticket_id, TicketChange::Tagged, detail).await?;
        Ok(TicketChanged { ticket_id: self.ticket_id, changed: true })
    }
}

impl DomainCommand for TicketMerge {
    const NAME: &'static str = "ticket.merge";
    const SKILL: &'static str = "ticket_merge";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Merge a ticket into another (it closes and points to the survivor)";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&TICKET_NOT_FOUND, &crate::tickets::TICKET_MERGED, &MERGE_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        self.mergeable(tx, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        let from = self.mergeable(effect.tx, true).await?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        if from != TicketStatus::Closed {
            tx.set_ticket_status(self.ticket_id, from, TicketStatus::Closed, actor, execution).await?;
            if from.is_open() {
                let kinds =
                    vec![ClockEventKind::StatusChanged { status: "closed".to_owned() }, ClockEventKind::Resolved];
                clocks_planned(sla::record(tx, self.ticket_id, kinds, execution).await, self.ticket_id)?;
            }
        }
        tx.merge_ticket(self.ticket_id, self.into, actor, execution).await?;
        let detail = json!({"merged": self.ticket_id, "into": self.into});
        updated(effect, self.ticket_id, TicketChange::Merged, detail.clone()).await?;
        updated(effect, self.into, TicketChange::Merged, detail).await?;
        Ok(TicketChanged { ticket_id: self.ticket_id, changed: true })
    }
}

impl TicketMerge {
    /// Both tickets exist, neither is merged, the survivor is not closed and
    /// is another ticket; the merged ticket's status.
    async fn mergeable(&self, tx: &mut WorkspaceTx, lock: bool) -> Result<TicketStatus, Rejection> {
        if self.ticket_id == self.into {
            return Err(MERGE_NOT_ALLOWED.because("a ticket cannot be merged into itself").into());
        }
        // Locked in id order, so two merges of the same pair cannot deadlock.
        let mut pair = [self.ticket_id, self.into];
        pair.sort_by_key(|id| id.to_string());
        let mut found = Vec::new();
        for id in pair {
            found.push(if lock { locked_ticket(tx, id).await? } else { current_ticket(tx, id).await? });
        }
        let (merged, survivor) =
            if found[0].id == self.ticket_id { (&found[0], &found[1]) } else { (&found[1], &found[0]) };
        if survivor.status == TicketStatus::Closed {
            return Err(MERGE_NOT_ALLOWED
                .because(format!("ticket {} is closed; merge into an open or resolved ticket", self.into))
                .into());
        }
        Ok(merged.status)
    }
}

impl DomainCommand for TicketRelate {
    const NAME: &'static str = "ticket.relate";
    const SKILL: &'static str = "ticket_relate";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Relate two tickets";
    const REFUSALS: &'static [&'static RefusalKind] = &[&TICKET_NOT_FOUND, &RELATE_NOT_ALLOWED];
    const EVENTS: &'static [EventSpec] = UPDATED;
    type Output = TicketChanged;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        if self.ticket_id == self.related_id {
            return Err(RELATE_NOT_ALLOWED.because("a ticket cannot be related to itself").into());
        }
        for id in [self.ticket_id, self.related_id] {
            if tx.ticket(id).await?.is_none() {
                return Err(TICKET_NOT_FOUND.because(format!("no ticket {id} in this workspace")).into());
            }
        }
        Ok(())
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketChanged, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let (tx, actor, execution) = (&mut *effect.tx, effect.actor, effect.execution);
        let changed = tx.relate_tickets(self.ticket_id, self.related_id, actor, execution).await?;
        if changed {
            for (one, other) in [(self.ticket_id, self.related_id), (self.related_id, self.ticket_id)] {
                updated(effect, one, TicketChange::Related, json!({"related": other})).await?;
            }
        }
        Ok(TicketChanged { ticket_id: self.ticket_id, changed })
    }
}
