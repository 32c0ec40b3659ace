//! E-mail to a workspace's contacts about their portal: what is queued,
//! what was sent, what failed. A notification is queued in the unit of work
//! of whatever caused it (a domain event's fan-out, an invitation) together
//! with its `mail.send` outbox event, whose payload names only the row.

use anchor_domain::{CommentId, ContactId, NotificationId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// The outbox topic that sends one notification.
pub const MAIL_TOPIC: &str = "mail.send";

/// Attempts at sending one e-mail before it is a dead letter, visible and
/// replayable in Ops (the outbox's backoff spreads them over about four
/// hours; the relay itself queues beyond that).
pub const MAIL_MAX_ATTEMPTS: i32 = 16;

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An invitation to the portal (the link is the invitation's own).
    PortalInvite,
    /// The MSP answered a ticket publicly.
    TicketReply,
    /// A ticket was resolved: the e-mail asks for a rating.
    TicketResolved,
    /// A quote was sent for a decision.
    QuoteSent,
    /// An invoice or credit note was sent.
    InvoiceSent,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PortalInvite => "portal_invite",
            Self::TicketReply => "ticket_reply",
            Self::TicketResolved => "ticket_resolved",
            Self::QuoteSent => "quote_sent",
            Self::InvoiceSent => "invoice_sent",
        }
    }

    /// How the Console names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::PortalInvite => "Portal invitation",
            Self::TicketReply => "Reply",
            Self::TicketResolved => "Resolution and rating request",
            Self::QuoteSent => "Quote",
            Self::InvoiceSent => "Invoice",
        }
    }
}

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub kind: NotificationKind,
    /// What caused it, so it is queued once: an outbox event id, an invitation id.
    pub cause: &'a str,
    pub contact_id: ContactId,
    /// The ticket, quote, invoice or invitation it is about.
    pub about: &'a str,
    pub comment_id: Option<CommentId>,
    pub address: &'a str,
}

/// A notification as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Notification {
    pub id: NotificationId,
    pub kind: NotificationKind,
    pub cause: String,
    pub contact_id: ContactId,
    pub about: String,
    pub comment_id: Option<CommentId>,
    pub address: String,
    /// `queued`, `sent` or `failed` (refused for good by the mail server, or
    /// nothing left to send).
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

const COLUMNS: &str =
    "id, kind, cause, contact_id, about, comment_id, address, state, attempts, last_error, message_id,
    created_at, sent_at";

impl WorkspaceTx {
    /// Queues a notification and its `mail.send` outbox event, in this unit
    /// of work. `None` when this cause already queued it for this contact.
    pub async fn queue_notification(
        &mut self,
        notification: &NewNotification<'_>,
    ) -> Result<Option<NotificationId>, StoreError> {
        let id: Option<NotificationId> = sqlx::query_scalar(
            "INSERT INTO notifications (id, kind, cause, contact_id, about, comment_id, address)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (cause, kind, contact_id) DO NOTHING RETURNING id",
        )
        .bind(NotificationId::new())
        .bind(notification.kind)
        .bind(notification.cause)
        .bind(notification.contact_id)
        .bind(notification.about)
        .bind(notification.comment_id)
        .bind(notification.address)
        .fetch_optional(self.conn())
        .await?;
        if let Some(id) = id {
            let payload = serde_json::json!({"notification_id": id});
            self.enqueue_with(MAIL_TOPIC, &payload, std::time::Duration::ZERO, MAIL_MAX_ATTEMPTS).await?;
        }
        Ok(id)
    }

    pub async fn notification(&mut self, id: NotificationId) -> Result<Option<Notification>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM notifications WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The notifications about one ticket, quote, invoice or invitation,
    /// newest first.
    pub async fn notifications_about(&mut self, about: &str, limit: i64) -> Result<Vec<Notification>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE about = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(about)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// The latest notifications of one kind, newest first.
    pub async fn notifications_of_kind(
        &mut self,
        kind: NotificationKind,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE kind = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(kind)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// Records that the mail server took the message.
    pub async fn notification_sent(&mut self, id: NotificationId, message_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE notifications SET state = 'sent', sent_at = now(), attempts = attempts + 1, message_id = $2,
                    last_error = NULL
              WHERE id = $1",
        )
        .bind(id)
        .bind(message_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records an attempt that did not send; `failed` when it never will
    /// (until its dead letter is replayed).
    pub async fn notification_not_sent(
        &mut self,
        id: NotificationId,
        error: &str,
        failed: bool,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, last_error = $2,
                    state = CASE WHEN $3 THEN 'failed' ELSE 'queued' END
              WHERE id = $1 AND state <> 'sent'",
        )
        .bind(id)
        .bind(error)
        .bind(failed)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Live contacts with an address who receive invoices (and quotes).
    pub async fn billing_contacts(&mut self) -> Result<Vec<(ContactId, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, email FROM contacts
              WHERE receives_invoices AND archived_at IS NULL AND email IS NOT NULL ORDER BY name, id",
        )
        .fetch_all(self.conn())
        .await?)
    }
}
