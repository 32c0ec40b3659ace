//! E-mail to a workspace's contacts about their portal.
//!
//! Two steps, both outbox handlers in the worker, both off unless an SMTP
//! server is configured (`smtp` in the settings):
//! - [`Notifier::plan`] runs with every `event.publish`: a public reply from
//!   the MSP, a resolution, a quote sent, an invoice sent become
//!   `notifications` rows and their `mail.send` outbox events, in one
//!   unit of work and once per event and contact. Invitations are queued by
//!   the page that creates them.
//! - the `mail.send` handler composes the message from the data as it is
//!   now, mints the one-time link it carries (a sign-in link for a contact
//!   with portal access to that page, or the invitation's own link, given a
//!   new token), sends it over SMTP and records the outcome. A 5xx answer
//!   fails it for good; anything else is retried with the outbox's backoff.
//!
//! No token is stored in the clear anywhere: only its digest, minted when
//! the message leaves. Delivery is at least once (a crash between the
//! server's answer and the record sends again, with the same Message-ID).

pub mod compose;

use std::time::Duration;

use anchor_auth::{Permission, grants};
use anchor_domain::{
    CommentId, ContactId, InvoiceId, InvoiceKind, NotificationId, PortalInviteId, QuoteId, Role, TicketId, TicketStatus,
};
use anchor_events::PublishRequest;
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{
    Database, StoreError, Workspace,
    notifications::{MAIL_TOPIC, NewNotification, Notification, NotificationKind},
    portal::{LINK_VALIDITY, NewLink},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use compose::{About, Context, Email, PortalLink, compose};

/// How to reach the mail server and whom the messages are from.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://...` (TLS from the first byte).
    pub url: SecretString,
    /// The From header: `Acme IT <help@acme-it.example>`.
    pub from: String,
    /// Where people reach Anchor: links start with it.
    pub public_url: String,
    /// How long one exchange with the server may take.
    pub timeout: Duration,
}

/// Why the mail configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("smtp.url: {0}")]
    Url(String),
    #[error("smtp.from: {0}")]
    From(String),
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (a 5xx answer).
    #[error("refused by the mail server: {0}")]
    Permanent(String),
    /// Worth another try: a 4xx answer, the server unreachable, a timeout.
    #[error("not sent yet: {0}")]
    Transient(String),
}

/// The longest one message may take to send, all exchanges together.
pub const SEND_LIMIT: Duration = Duration::from_secs(40);

/// Whether the server refused this recipient for good (550 mailbox
/// unavailable, 551 not local, 552 over its storage, 553 name not allowed):
/// no retry makes it arrive. Any other refusal (authentication, TLS
/// required, relaying denied, a transaction failure) is the installation's
/// to fix, so the message waits and is tried again.
fn refuses_recipient(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent()
        && e.status().is_some_and(|code| matches!(code.to_string().as_str(), "550" | "551" | "552" | "553"))
}

/// The SMTP adapter.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, ConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.url.expose_secret())
            .map_err(|e| ConfigError::Url(e.to_string()))?
            .timeout(Some(config.timeout))
            .build();
        let from: Mailbox =
            config.from.parse().map_err(|e: lettre::address::AddressError| ConfigError::From(e.to_string()))?;
        Ok(Self { transport, from })
    }

    /// The Message-ID of a notification: stable across retries, so a
    /// message sent twice is recognisably one.
    pub fn message_id(&self, id: NotificationId) -> String {
        format!("<{id}@{}>", self.from.email.domain())
    }

    /// Sends `email` to `to`.
    pub async fn send(&self, to: Mailbox, message_id: &str, email: &Email) -> Result<(), SendError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(message_id.to_owned()))
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
            .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
        // One send is several exchanges, each bounded by the transport's
        // timeout; the whole is bounded too, well within the outbox's
        // handler limit, so a slow relay cannot get a sent message cut off
        // before it is recorded.
        match tokio::time::timeout(SEND_LIMIT, self.transport.send(message)).await {
            Err(_) => Err(SendError::Transient(format!("no answer within {} s", SEND_LIMIT.as_secs()))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if refuses_recipient(&e) => Err(SendError::Permanent(e.to_string())),
            Ok(Err(e)) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// Plans and sends the portal's e-mail.
#[derive(Debug, Clone)]
pub struct Notifier {
    db: Database,
    mailer: Mailer,
    public_url: String,
}

#[derive(Debug, Deserialize)]
struct SendPayload {
    notification_id: NotificationId,
}

/// What a published event asks to be told, and to whom.
#[derive(Debug, Clone, PartialEq)]
enum Intent {
    Reply { ticket: TicketId, comment: CommentId },
    Resolved { ticket: TicketId },
    Quote { quote: QuoteId },
    Invoice { invoice: InvoiceId },
}

/// The events that notify someone: a public comment by the MSP (not the
/// client's own), a ticket resolved, a quote sent, an invoice sent.
fn intent(event: &PublishRequest) -> Option<Intent> {
    fn id<T: std::str::FromStr>(data: &serde_json::Value, key: &str) -> Option<T> {
        data.get(key)?.as_str()?.parse().ok()
    }
    let data = &event.data;
    let text = |key: &str| data.get(key).and_then(|v| v.as_str());
    match (event.kind.as_str(), text("change")) {
        ("ticket.updated", Some("commented")) => {
            let by_client =
                data.pointer("/actor/issuer").and_then(|v| v.as_str()) == Some(anchor_store::portal::PORTAL_ISSUER);
            (text("visibility") == Some("public") && !by_client)
                .then(|| Some(Intent::Reply { ticket: id(data, "ticket_id")?, comment: id(data, "comment_id")? }))
                .flatten()
        }
        ("ticket.updated", Some("status_changed"))
            if text("to") == Some(TicketStatus::Resolved.as_str()) && text("from") != text("to") =>
        {
            Some(Intent::Resolved { ticket: id(data, "ticket_id")? })
        }
        ("quote.updated", Some("sent")) => {
            Some(Intent::Quote { quote: data.pointer("/quote/id")?.as_str()?.parse().ok()? })
        }
        ("invoice.updated", Some("sent")) => Some(Intent::Invoice { invoice: id(data, "invoice_id")? }),
        _ => None,
    }
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

fn retry(e: StoreError) -> HandlerError {
    HandlerError::retry(format!("database: {e}"))
}

/// The client roles that may see a page of the portal.
fn roles_with(permission: Permission) -> Vec<Role> {
    [Role::ClientUser, Role::ClientAdmin].into_iter().filter(|r| grants(*r, permission)).collect()
}

/// What the message needs from the workspace, read in one unit of work.
struct Subject {
    contact_name: String,
    about: Owned,
}

enum Owned {
    Invite(PortalInviteId),
    Reply { ticket: TicketId, title: String, body: String },
    Resolved { ticket: TicketId, title: String },
    Quote { quote: QuoteId, number: String, title: String, total: String, valid_until: time::Date },
    Invoice { number: String, credit_note: bool, total: String, due_on: Option<time::Date> },
}

impl Notifier {
    pub fn new(db: Database, config: &MailConfig) -> Result<Self, ConfigError> {
        Ok(Self { db, mailer: Mailer::new(config)?, public_url: config.public_url.trim_end_matches('/').to_owned() })
    }

    /// Adds the `mail.send` handler.
    pub fn register(self, handlers: Handlers) -> Handlers {
        handlers.on(MAIL_TOPIC, move |event| {
            let this = self.clone();
            async move { this.send(&event).await }
        })
    }

    /// Queues the e-mail an `event.publish` outbox event calls for.
    pub async fn plan(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let Ok(request) = serde_json::from_value::<PublishRequest>(event.payload.clone()) else { return Ok(()) };
        let Some(intent) = intent(&request) else { return Ok(()) };
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let cause = event.id.to_string();
        let (kind, about, comment, recipients): (_, String, _, Vec<(ContactId, String)>) = match &intent {
            Intent::Reply { ticket, .. } | Intent::Resolved { ticket } => {
                let Some(t) = tx.ticket(*ticket).await.map_err(retry)? else { return Ok(()) };
                let mut to = Vec::new();
                if let Some(contact) = t.contact_id
                    && let Some(c) = tx.contact(contact).await.map_err(retry)?
                    && c.archived_at.is_none()
                    && let Some(email) = c.email
                {
                    to.push((c.id, email.to_string()));
                }
                let (kind, comment) = match intent {
                    Intent::Reply { comment, .. } => (NotificationKind::TicketReply, Some(comment)),
                    _ => (NotificationKind::TicketResolved, None),
                };
                (kind, ticket.to_string(), comment, to)
            }
            Intent::Quote { quote } => {
                let to = tx.billing_contacts().await.map_err(retry)?.into_iter().map(|(id, _, e)| (id, e)).collect();
                (NotificationKind::QuoteSent, quote.to_string(), None, to)
            }
            Intent::Invoice { invoice } => {
                let to = tx.billing_contacts().await.map_err(retry)?.into_iter().map(|(id, _, e)| (id, e)).collect();
                (NotificationKind::InvoiceSent, invoice.to_string(), None, to)
            }
        };
        if recipients.is_empty() {
            tx.discard();
            return Ok(());
        }
        for (contact_id, address) in &recipients {
            let new = NewNotification {
                kind,
                cause: &cause,
                contact_id: *contact_id,
                about: &about,
                comment_id: comment,
                address,
            };
            tx.queue_notification(&new).await.map_err(retry)?;
        }
        tx.commit().await.map_err(retry)
    }

    async fn send(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let payload: SendPayload = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("not a mail.send payload: {e}")))?;
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let Some(notification) = tx.notification(payload.notification_id).await.map_err(retry)? else {
            return Ok(());
        };
        // Sent once; a failed one is sent again only when its dead letter
        // is replayed from Ops (nothing else delivers its event again).
        if notification.state == "sent" {
            return Ok(());
        }
        let subject = read_subject(&mut tx, &notification).await.map_err(retry)?;
        tx.discard();
        let Some(subject) = subject else {
            return self.give_up(&workspace, &notification, "what it was about is gone").await;
        };
        let to: Mailbox = match format!("{} <{}>", quoted(&subject.contact_name), notification.address).parse() {
            Ok(to) => to,
            Err(e) => return self.give_up(&workspace, &notification, &format!("the address: {e}")).await,
        };

        let slug = workspace.slug().as_str();
        let (link, about) = match &subject.about {
            Owned::Invite(id) => {
                let token = random_token();
                let Some(invite) = self.db.rekey_portal_invite(&workspace, *id, &token).await.map_err(retry)? else {
                    return self
                        .give_up(&workspace, &notification, "the invitation was withdrawn, used or expired")
                        .await;
                };
                let link = PortalLink {
                    url: format!("{}/w/{slug}/portal/invite/{token}", self.public_url),
                    expires_at: invite.expires_at,
                };
                let role = if invite.role == Role::ClientAdmin { "portal administrator" } else { "user" };
                let about = compose(
                    &Context { company: workspace.name(), contact_name: &subject.contact_name, link: Some(link) },
                    &About::Invite { invited_by: &invite.invited_by_name, role },
                );
                (None, Some(about))
            }
            Owned::Reply { ticket, .. } | Owned::Resolved { ticket, .. } => {
                let fragment = if matches!(subject.about, Owned::Resolved { .. }) { "#rate" } else { "" };
                let target = format!("/w/{slug}/portal/tickets/{ticket}{fragment}");
                (self.link(&workspace, &notification, &subject, &target, Permission::PortalTicketsRead).await?, None)
            }
            Owned::Quote { quote, .. } => {
                let target = format!("/w/{slug}/portal/quotes/{quote}");
                (self.link(&workspace, &notification, &subject, &target, Permission::PortalQuotesRead).await?, None)
            }
            Owned::Invoice { .. } => {
                let target = format!("/w/{slug}/portal/invoices");
                (self.link(&workspace, &notification, &subject, &target, Permission::PortalInvoicesRead).await?, None)
            }
        };
        let email = match about {
            Some(email) => email,
            None => {
                let context = Context { company: workspace.name(), contact_name: &subject.contact_name, link };
                let reference = match &subject.about {
                    Owned::Reply { ticket, .. } | Owned::Resolved { ticket, .. } => ticket.to_string(),
                    _ => String::new(),
                };
                let about = match &subject.about {
                    Owned::Reply { title, body, .. } => About::Reply { ticket: &reference, title, body },
                    Owned::Resolved { title, .. } => About::Resolved { ticket: &reference, title },
                    Owned::Quote { number, title, total, valid_until, .. } => {
                        About::Quote { number, title, total, valid_until: *valid_until }
                    }
                    Owned::Invoice { number, credit_note, total, due_on } => {
                        About::Invoice { number, credit_note: *credit_note, total, due_on: *due_on }
                    }
                    Owned::Invite(_) => unreachable!("composed above"),
                };
                compose(&context, &about)
            }
        };

        let message_id = self.mailer.message_id(notification.id);
        let outcome = self.mailer.send(to, &message_id, &email).await;
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        match outcome {
            Ok(()) => {
                tx.notification_sent(notification.id, &message_id).await.map_err(retry)?;
                tx.commit().await.map_err(retry)
            }
            Err(e) => {
                let permanent = matches!(e, SendError::Permanent(_));
                // The last attempt's failure is final too: the row says so
                // while its event waits in Ops as a dead letter.
                let last = event.attempt >= anchor_store::notifications::MAIL_MAX_ATTEMPTS;
                tx.notification_not_sent(notification.id, &e.to_string(), permanent || last).await.map_err(retry)?;
                tx.commit().await.map_err(retry)?;
                Err(if permanent { HandlerError::Permanent(e.to_string()) } else { HandlerError::retry(e.to_string()) })
            }
        }
    }

    /// A one-time sign-in link to `target`, when the contact's portal role
    /// may see it.
    async fn link(
        &self,
        workspace: &Workspace,
        notification: &Notification,
        subject: &Subject,
        target: &str,
        permission: Permission,
    ) -> Result<Option<PortalLink>, HandlerError> {
        let token = random_token();
        let roles = roles_with(permission);
        let new = NewLink {
            contact_id: notification.contact_id,
            contact_name: &subject.contact_name,
            target,
            roles: &roles,
            valid_for: LINK_VALIDITY,
        };
        if !self.db.create_portal_link(workspace, &new, &token).await.map_err(retry)? {
            return Ok(None);
        }
        Ok(Some(PortalLink {
            url: format!("{}/w/{}/portal/link/{token}", self.public_url, workspace.slug().as_str()),
            expires_at: time::OffsetDateTime::now_utc() + LINK_VALIDITY,
        }))
    }

    /// Records a notification that will never be sent.
    async fn give_up(&self, workspace: &Workspace, notification: &Notification, why: &str) -> Result<(), HandlerError> {
        let mut tx = self.db.begin_workspace(workspace).await.map_err(retry)?;
        tx.notification_not_sent(notification.id, why, true).await.map_err(retry)?;
        tx.commit().await.map_err(retry)
    }
}

/// A display name as RFC 5322 wants it in a mailbox.
fn quoted(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn read_subject(tx: &mut anchor_store::WorkspaceTx, n: &Notification) -> Result<Option<Subject>, StoreError> {
    let Some(contact) = tx.contact(n.contact_id).await? else { return Ok(None) };
    let contact_name = contact.name.to_string();
    let about = match n.kind {
        NotificationKind::PortalInvite => match n.about.parse() {
            Ok(id) => Owned::Invite(id),
            Err(_) => return Ok(None),
        },
        NotificationKind::TicketReply | NotificationKind::TicketResolved => {
            let Ok(id) = n.about.parse::<TicketId>() else { return Ok(None) };
            let Some(ticket) = tx.ticket(id).await? else { return Ok(None) };
            let title = ticket.title.to_string();
            if n.kind == NotificationKind::TicketResolved {
                Owned::Resolved { ticket: id, title }
            } else {
                let comments = tx.ticket_comments(id).await?;
                let Some(comment) = comments.into_iter().find(|c| Some(c.id) == n.comment_id) else {
                    return Ok(None);
                };
                Owned::Reply { ticket: id, title, body: comment.body }
            }
        }
        NotificationKind::QuoteSent => {
            let Ok(id) = n.about.parse::<QuoteId>() else { return Ok(None) };
            let Some(q) = tx.quote(id).await? else { return Ok(None) };
            Owned::Quote {
                quote: id,
                number: q.number,
                title: q.title,
                total: format!("{} {}", q.gross, q.currency),
                valid_until: q.valid_until,
            }
        }
        NotificationKind::InvoiceSent => {
            let Ok(id) = n.about.parse::<InvoiceId>() else { return Ok(None) };
            let Some(i) = tx.invoice(id).await? else { return Ok(None) };
            Owned::Invoice {
                number: i.number.unwrap_or_else(|| id.to_string()),
                credit_note: i.kind == InvoiceKind::CreditNote,
                total: format!("{} {}", i.gross, i.currency),
                due_on: i.due_on,
            }
        }
    };
    Ok(Some(Subject { contact_name, about }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> PublishRequest {
        PublishRequest::new(kind, Some("acme"), data)
    }

    #[test]
    fn only_the_msps_public_replies_resolutions_and_documents_sent_notify() {
        let ticket = TicketId::new();
        let comment = CommentId::new();
        let staff = json!({"issuer": "https://idp.example", "subject": "sam"});
        let reply = json!({"ticket_id": ticket, "change": "commented", "comment_id": comment, "visibility": "public", "actor": staff});
        assert_eq!(intent(&event("ticket.updated", reply.clone())), Some(Intent::Reply { ticket, comment }));

        let mut note = reply.clone();
        note["visibility"] = json!("internal");
        assert_eq!(intent(&event("ticket.updated", note)), None, "an internal note tells the client nothing");
        let mut own = reply;
        own["actor"] = json!({"issuer": anchor_store::portal::PORTAL_ISSUER, "subject": "con_x"});
        assert_eq!(intent(&event("ticket.updated", own)), None, "the client's own reply is not mailed back");

        let resolved =
            json!({"ticket_id": ticket, "change": "status_changed", "from": "in_progress", "to": "resolved"});
        assert_eq!(intent(&event("ticket.updated", resolved)), Some(Intent::Resolved { ticket }));
        let closed = json!({"ticket_id": ticket, "change": "status_changed", "from": "resolved", "to": "closed"});
        assert_eq!(intent(&event("ticket.updated", closed)), None);

        let quote = QuoteId::new();
        assert_eq!(
            intent(&event("quote.updated", json!({"change": "sent", "quote": {"id": quote}}))),
            Some(Intent::Quote { quote })
        );
        assert_eq!(intent(&event("quote.updated", json!({"change": "revised", "quote": {"id": quote}}))), None);
        let invoice = InvoiceId::new();
        assert_eq!(
            intent(&event("invoice.updated", json!({"change": "sent", "invoice_id": invoice}))),
            Some(Intent::Invoice { invoice })
        );
        assert_eq!(intent(&event("invoice.updated", json!({"change": "finalized", "invoice_id": invoice}))), None);
    }

    #[test]
    fn a_mailbox_survives_any_display_name() {
        for name in ["Ann Smith", "O'Brien, Pat", "\"Quoted\" \\ name", "Zoë Ünal"] {
            let mailbox: Mailbox = format!("{} <ann@acme.example>", quoted(name)).parse().expect(name);
            assert_eq!(mailbox.email.to_string(), "ann@acme.example");
        }
    }
}
