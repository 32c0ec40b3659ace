//! What a client's contact does in the portal, as commands: open a ticket,
//! reply on one, and accept or decline a quote. They go through the same desk, envelope, skill and
//! evidence as every command; what differs is who may act on what.
//!
//! Only a portal subject (a contact signed in through an invitation) may
//! send them, as itself: the contact is the actor, never an argument. Its
//! scope is its own tickets, or every ticket of the company when its role
//! grants `portal.tickets.company` (`client_admin`). A ticket outside the
//! scope does not exist for it (404), checked when the command is accepted
//! and again under the skill's locks.

use anchor_auth::permissions::{Permission, grants};
use anchor_domain::{CommentVisibility, ContactId, Priority, Role, TicketId, TicketStatus, TicketText, TicketTitle};
use anchor_events::EventSpec;
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    portal::PORTAL_ISSUER,
    tickets::{Ticket, TicketFilter},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    kit::{DomainCommand, Effect, RefusalKind, Rejection},
    sites,
    tickets::{
        self, TICKET_MERGED, TICKET_NOT_FOUND, TRANSITION_NOT_ALLOWED, TicketCommented, TicketCreate, TicketRef,
        TicketUpdated,
    },
};

pub const PORTAL_ONLY: RefusalKind = RefusalKind {
    code: "portal_only",
    status: 403,
    when: "the command is sent by a client's contact signed in to the portal, whose portal access is on",
};

/// Which tickets a portal actor works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every ticket of the company (the workspace).
    Company,
    /// Only the tickets whose contact they are.
    Own(ContactId),
}

impl Scope {
    pub fn sees(&self, ticket: &Ticket) -> bool {
        match self {
            Self::Company => true,
            Self::Own(contact) => ticket.contact_id == Some(*contact),
        }
    }

    /// Narrows a ticket listing to the scope.
    pub fn narrow(&self, filter: &mut TicketFilter) {
        if let Self::Own(contact) = self {
            filter.contact_id = Some(*contact);
        }
    }
}

/// The contact a portal actor is, or a refusal for any other actor.
pub fn contact_of(actor: &Actor) -> Result<ContactId, Rejection> {
    if actor.issuer != PORTAL_ISSUER {
        return Err(PORTAL_ONLY.because("only a client's contact signed in to the portal sends this").into());
    }
    actor.subject.parse().map_err(|_| PORTAL_ONLY.because("the portal actor is not a contact").into())
}

/// The scope of a portal actor with `role`.
pub fn scope_of(contact: ContactId, role: Option<Role>) -> Scope {
    match role {
        Some(role) if grants(role, Permission::PortalTicketsCompany) => Scope::Company,
        _ => Scope::Own(contact),
    }
}

/// The actor's contact (live, with portal access on) and scope, read in
/// the unit of work.
async fn portal_actor(tx: &mut WorkspaceTx, actor: &Actor) -> Result<(ContactId, Scope), Rejection> {
    let contact = contact_of(actor)?;
    let record = sites::live_contact(tx, contact, false).await?;
    if !record.portal_access {
        return Err(PORTAL_ONLY.because(format!("portal access of {} is off", record.name)).into());
    }
    let role = tx.member_role(actor).await?.and_then(|r| Role::parse(&r).ok());
    Ok((contact, scope_of(contact, role)))
}

/// The ticket, if the scope sees it; otherwise it does not exist.
async fn ticket_in_scope(tx: &mut WorkspaceTx, scope: Scope, id: TicketId, lock: bool) -> Result<Ticket, Rejection> {
    let not_found = || Rejection::from(TICKET_NOT_FOUND.because(format!("no ticket {id} in this workspace")));
    let ticket = if lock { tickets::locked_ticket(tx, id).await } else { tickets::current_ticket(tx, id).await };
    let ticket = match ticket {
        Ok(ticket) => ticket,
        // Merged into another: say so only to whoever sees it.
        Err(refusal) => {
            return match tx.ticket(id).await? {
                Some(t) if scope.sees(&t) => Err(refusal),
                _ => Err(not_found()),
            };
        }
    };
    if scope.sees(&ticket) { Ok(ticket) } else { Err(not_found()) }
}

/// A client's contact opens a ticket from the portal: they are its
/// contact, their site its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"title": "Cannot print", "description": "The printer on floor 2 says offline.", "priority": "p3"}))]
pub struct PortalTicketOpen {
    /// One line, 1-200 characters.
    pub title: TicketTitle,
    /// What happened, up to 20,000 characters.
    pub description: TicketText,
    /// `p1` (everyone is stopped) to `p4` (a question); `p3` when not given.
    #[serde(default = "normal")]
    pub priority: Priority,
}

fn normal() -> Priority {
    Priority::P3
}

impl DomainCommand for PortalTicketOpen {
    const NAME: &'static str = "portal.ticket.open";
    const SKILL: &'static str = "portal_ticket_open";
    const PERMISSION: Permission = Permission::PortalTicketsWrite;
    const SUMMARY: &'static str = "Open a ticket from the client portal";
    const TAGS: &'static [&'static str] = &["portal"];
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&PORTAL_ONLY, &sites::CONTACT_NOT_FOUND, &sites::CONTACT_ARCHIVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<tickets::TicketCreated>()];
    type Output = TicketRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        portal_actor(tx, actor).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketRef, Rejection> {
        let (contact, _) = portal_actor(effect.tx, effect.actor).await?;
        let create = TicketCreate {
            title: self.title.clone(),
            description: Some(self.description.clone()),
            priority: self.priority,
            asset_id: None,
            alert_id: None,
            contact_id: Some(contact),
            site_id: None,
            queue_id: None,
        };
        create.apply(effect).await
    }
}

/// A client's contact replies on a ticket from the portal. A reply to a
/// ticket waiting on the client, or resolved, puts it back in progress: the
/// MSP owes the next answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "body": "It still says offline."}))]
pub struct PortalTicketReply {
    pub ticket_id: TicketId,
    /// Up to 20,000 characters.
    pub body: TicketText,
}

impl DomainCommand for PortalTicketReply {
    const NAME: &'static str = "portal.ticket.reply";
    const SKILL: &'static str = "portal_ticket_reply";
    const PERMISSION: Permission = Permission::PortalTicketsWrite;
    const SUMMARY: &'static str = "Reply on a ticket from the client portal";
    const TAGS: &'static [&'static str] = &["portal"];
    const REFUSALS: &'static [&'static RefusalKind] = &[
        &PORTAL_ONLY,
        &sites::CONTACT_NOT_FOUND,
        &sites::CONTACT_ARCHIVED,
        &TICKET_NOT_FOUND,
        &TICKET_MERGED,
        &TRANSITION_NOT_ALLOWED,
    ];
    const EVENTS: &'static [EventSpec] = tickets::UPDATED;
    type Output = TicketCommented;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let (_, scope) = portal_actor(tx, actor).await?;
        open_for_replies(&ticket_in_scope(tx, scope, self.ticket_id, false).await?)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketCommented, Rejection> {
        let (_, scope) = portal_actor(effect.tx, effect.actor).await?;
        let ticket = ticket_in_scope(effect.tx, scope, self.ticket_id, true).await?;
        open_for_replies(&ticket)?;
        let (id, from) = (ticket.id, ticket.status);
        let public = CommentVisibility::Public;
        let comment_id = effect.tx.insert_comment(id, &self.body, public, effect.actor, effect.execution).await?;
        let back = matches!(from, TicketStatus::WaitingOnClient | TicketStatus::Resolved);
        if back {
            let to = TicketStatus::InProgress;
            effect.tx.set_ticket_status(id, from, to, effect.actor, effect.execution).await?;
            tickets::clock_move(effect, id, from, to).await?;
            tickets::moved(effect, id, from, to).await?;
        }
        // The client spoke: we owe the next answer.
        effect.tx.set_ticket_awaiting(id, anchor_domain::Awaiting::Us).await?;
        let ticket = effect.tx.ticket(id).await?.expect("the ticket is locked");
        let event = TicketUpdated {
            ticket_id: id,
            change: tickets::TicketChange::Commented,
            from: None,
            to: None,
            from_priority: None,
            to_priority: None,
            comment_id: Some(comment_id),
            visibility: Some(public),
            detail: None,
            actor: effect.actor.clone(),
            execution_id: effect.execution,
            ticket,
        };
        effect.publish(&event).await?;
        Ok(TicketCommented { ticket_id: id, comment_id })
    }
}

fn open_for_replies(ticket: &Ticket) -> Result<(), Rejection> {
    if ticket.status == TicketStatus::Closed {
        return Err(TRANSITION_NOT_ALLOWED
            .because(format!("ticket {} is closed; open a new ticket instead", ticket.id))
            .into());
    }
    Ok(())
}

/// The quote a portal actor may decide on: a draft does not exist for it.
async fn offered_quote(
    tx: &mut WorkspaceTx,
    id: anchor_domain::QuoteId,
    lock: bool,
) -> Result<anchor_store::quotes::Quote, Rejection> {
    let q = crate::quotes::quote(tx, id, lock).await?;
    if q.state == "draft" {
        return Err(crate::quotes::QUOTE_NOT_FOUND.because(format!("no quote {id} in this workspace")).into());
    }
    Ok(q)
}

/// A client's contact accepts a quote from the portal: the exact version
/// named by its digest, recorded with their name, as themselves (the
/// execution's signed credential attests who accepted what).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalQuoteAccept {
    pub quote_id: anchor_domain::QuoteId,
    /// The `sha256` of the version shown.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
}

/// A client's contact declines a quote from the portal, with a reason if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalQuoteDecline {
    pub quote_id: anchor_domain::QuoteId,
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2000))]
    pub reason: Option<String>,
}

const QUOTE_REFUSALS: &[&RefusalKind] = &[
    &PORTAL_ONLY,
    &sites::CONTACT_NOT_FOUND,
    &sites::CONTACT_ARCHIVED,
    &crate::quotes::QUOTE_NOT_FOUND,
    &crate::quotes::QUOTE_STATE,
    &crate::quotes::QUOTE_CHANGED,
    &crate::quotes::QUOTE_EXPIRED,
];

impl DomainCommand for PortalQuoteAccept {
    const NAME: &'static str = "portal.quote.accept";
    const SKILL: &'static str = "portal_quote_accept";
    const PERMISSION: Permission = Permission::PortalQuotesDecide;
    const SUMMARY: &'static str = "Accept a quote from the client portal (the exact version named by its digest)";
    const TAGS: &'static [&'static str] = &["portal", "billing"];
    const REFUSALS: &'static [&'static RefusalKind] = QUOTE_REFUSALS;
    const EVENTS: &'static [EventSpec] = crate::quotes::EVENTS;
    type Output = crate::quotes::QuoteRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        portal_actor(tx, actor).await?;
        let q = offered_quote(tx, self.quote_id, false).await?;
        crate::quotes::decidable(tx, &q, &self.sha256).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<crate::quotes::QuoteRef, Rejection> {
        let (contact, _) = portal_actor(effect.tx, effect.actor).await?;
        offered_quote(effect.tx, self.quote_id, true).await?;
        let name = sites::live_contact(effect.tx, contact, false).await?.name.to_string();
        crate::quotes::decide(effect, self.quote_id, &self.sha256, &name, "accepted", None).await
    }
}

impl DomainCommand for PortalQuoteDecline {
    const NAME: &'static str = "portal.quote.decline";
    const SKILL: &'static str = "portal_quote_decline";
    const PERMISSION: Permission = Permission::PortalQuotesDecide;
    const SUMMARY: &'static str = "Decline a quote from the client portal";
    const TAGS: &'static [&'static str] = &["portal", "billing"];
    const REFUSALS: &'static [&'static RefusalKind] = QUOTE_REFUSALS;
    const EVENTS: &'static [EventSpec] = crate::quotes::EVENTS;
    type Output = crate::quotes::QuoteRef;

    fn validate(&self) -> Result<(), crate::kit::Invalid> {
        match &self.reason {
            Some(r) if r.trim().is_empty() || r.chars().count() > 2000 => {
                Err(crate::kit::Invalid::at("/reason", "1 to 2000 characters"))
            }
            _ => Ok(()),
        }
    }

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        portal_actor(tx, actor).await?;
        let q = offered_quote(tx, self.quote_id, false).await?;
        crate::quotes::decidable(tx, &q, &self.sha256).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<crate::quotes::QuoteRef, Rejection> {
        let (contact, _) = portal_actor(effect.tx, effect.actor).await?;
        offered_quote(effect.tx, self.quote_id, true).await?;
        let name = sites::live_contact(effect.tx, contact, false).await?.name.to_string();
        let reason = self.reason.as_deref().map(str::trim);
        crate::quotes::decide(effect, self.quote_id, &self.sha256, &name, "declined", reason).await
    }
}

pub const NOT_RESOLVED: RefusalKind =
    RefusalKind { code: "ticket_not_resolved", status: 409, when: "a ticket is rated once it is resolved" };
pub const ALREADY_RATED: RefusalKind =
    RefusalKind { code: "already_rated", status: 409, when: "this resolution of the ticket was rated already" };

/// A client's contact rates the resolution of a ticket: a score from 1 to 5
/// and a comment, once per resolution (a ticket reopened and resolved again
/// is rated again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w", "score": 5, "comment": "Quick and friendly."}))]
pub struct PortalTicketRate {
    pub ticket_id: TicketId,
    /// 1 (poor) to 5 (excellent).
    #[schemars(range(min = 1, max = 5))]
    pub score: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2000))]
    pub comment: Option<String>,
}

/// The result of a rating.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketRated {
    pub ticket_id: TicketId,
    /// Which resolution was rated.
    pub resolution: i32,
    pub score: u8,
}

/// `ticket.rated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketRatedEvent {
    pub ticket_id: TicketId,
    /// Which resolution was rated (a reopened ticket resolved again is rated again).
    pub resolution: i32,
    /// 1 (very poor) to 5 (excellent).
    pub score: u8,
    /// What the client added, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The contact who rated it.
    pub contact_id: ContactId,
    pub execution_id: anchor_domain::ExecutionId,
}

impl anchor_events::Event for TicketRatedEvent {
    const TYPE: &'static str = "ticket.rated";
    const WHEN: &'static str = "A client rated the resolution of a ticket in the portal.";
}

async fn rateable(tx: &mut WorkspaceTx, ticket: &Ticket) -> Result<i32, Rejection> {
    if ticket.status.is_open() {
        return Err(NOT_RESOLVED.because(format!("ticket {} is not resolved yet", ticket.id)).into());
    }
    let resolution = tx.resolutions(ticket.id).await?;
    if resolution == 0 {
        return Err(NOT_RESOLVED.because(format!("ticket {} was closed without a resolution", ticket.id)).into());
    }
    if tx.ratings(ticket.id).await?.iter().any(|r| r.resolution == resolution) {
        return Err(ALREADY_RATED.because(format!("this resolution of ticket {} was rated already", ticket.id)).into());
    }
    Ok(resolution)
}

impl DomainCommand for PortalTicketRate {
    const NAME: &'static str = "portal.ticket.rate";
    const SKILL: &'static str = "portal_ticket_rate";
    const PERMISSION: Permission = Permission::PortalTicketsWrite;
    const SUMMARY: &'static str = "Rate the resolution of a ticket from the client portal";
    const TAGS: &'static [&'static str] = &["portal"];
    const REFUSALS: &'static [&'static RefusalKind] = &[
        &PORTAL_ONLY,
        &sites::CONTACT_NOT_FOUND,
        &sites::CONTACT_ARCHIVED,
        &TICKET_NOT_FOUND,
        &TICKET_MERGED,
        &NOT_RESOLVED,
        &ALREADY_RATED,
    ];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<TicketRatedEvent>()];
    type Output = TicketRated;

    fn validate(&self) -> Result<(), crate::kit::Invalid> {
        if !(1..=5).contains(&self.score) {
            return Err(crate::kit::Invalid::at("/score", "a whole number from 1 to 5"));
        }
        match &self.comment {
            Some(c) if c.trim().is_empty() || c.chars().count() > 2000 => {
                Err(crate::kit::Invalid::at("/comment", "1 to 2000 characters"))
            }
            _ => Ok(()),
        }
    }

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        let (_, scope) = portal_actor(tx, actor).await?;
        let ticket = ticket_in_scope(tx, scope, self.ticket_id, false).await?;
        rateable(tx, &ticket).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<TicketRated, Rejection> {
        let (contact, scope) = portal_actor(effect.tx, effect.actor).await?;
        let ticket = ticket_in_scope(effect.tx, scope, self.ticket_id, true).await?;
        let resolution = rateable(effect.tx, &ticket).await?;
        let comment = self.comment.as_deref().map(str::trim);
        let by = contact.to_string();
        let (tx, execution) = (&mut *effect.tx, effect.execution);
        if !tx.insert_rating(ticket.id, resolution, i16::from(self.score), comment, &by, execution).await? {
            return Err(ALREADY_RATED
                .because(format!("this resolution of ticket {} was rated already", ticket.id))
                .into());
        }
        let event = TicketRatedEvent {
            ticket_id: ticket.id,
            resolution,
            score: self.score,
            comment: comment.map(str::to_owned),
            contact_id: contact,
            execution_id: execution,
        };
        effect.publish(&event).await?;
        Ok(TicketRated { ticket_id: ticket.id, resolution, score: self.score })
    }
}
