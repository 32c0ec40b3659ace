//! A workspace's tickets, their comments and their history. Reads serve the
//! API; writes are made by the ticket skills, each inside the unit of work
//! that also records the command's effect.
//!
//! The row types are the views: the API answers with them and the ticket
//! events carry them, so what a client reads and what a webhook receives are
//! the same document.

use anchor_domain::{
    AlertId, AssetId, CommentId, CommentVisibility, ContactId, ExecutionId, Priority, SiteId, TicketId, TicketStatus,
    TicketText, TicketTitle,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// A ticket.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = TicketView)]
pub struct Ticket {
    #[schema(value_type = String, example = "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: TicketId,
    #[schema(value_type = String)]
    pub title: TicketTitle,
    pub description: String,
    #[schema(value_type = String, example = "p3")]
    pub priority: Priority,
    #[schema(value_type = String, example = "new")]
    pub status: TicketStatus,
    #[sqlx(flatten)]
    pub created_by: Actor,
    /// The execution that opened it.
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    /// The machine it is about, when known (tickets opened for alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "ast_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub asset_id: Option<AssetId>,
    /// The alert it was opened for (automation).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "alr_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub alert_id: Option<AlertId>,
    /// Who at the client it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "con_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub contact_id: Option<ContactId>,
    /// Where at the client it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "sit_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub site_id: Option<SiteId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = CommentView)]
pub struct Comment {
    #[schema(value_type = String)]
    pub id: CommentId,
    pub body: String,
    #[schema(value_type = String)]
    pub visibility: CommentVisibility,
    #[sqlx(flatten)]
    pub author: Actor,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
}

/// One change to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = HistoryView)]
pub struct HistoryEntry {
    /// `created`, `status_changed` or `commented`.
    pub change: String,
    #[schema(value_type = Option<String>)]
    pub from_status: Option<TicketStatus>,
    #[schema(value_type = Option<String>)]
    pub to_status: Option<TicketStatus>,
    #[sqlx(flatten)]
    pub actor: Actor,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
}

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub id: TicketId,
    pub title: &'a TicketTitle,
    pub description: Option<&'a TicketText>,
    pub priority: Priority,
    pub asset_id: Option<AssetId>,
    pub alert_id: Option<AlertId>,
    pub contact_id: Option<ContactId>,
    pub site_id: Option<SiteId>,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub contact_id: Option<ContactId>,
    pub site_id: Option<SiteId>,
}

const TICKET_COLUMNS: &str = "id, title, description, priority, status, created_by_issuer AS issuer,
                              created_by AS subject, execution_id, asset_id, alert_id, contact_id, site_id,
                              created_at, updated_at";

impl WorkspaceTx {
    pub async fn ticket(&mut self, id: TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, after the cursor `before`.
    pub async fn tickets(
        &mut self,
        filter: &TicketFilter,
        before: Option<TicketId>,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets
              WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR priority = $3) AND ($4::text IS NULL OR contact_id = $4)
                AND ($5::text IS NULL OR site_id = $5)
              ORDER BY id DESC LIMIT $6"
        )))
        .bind(before)
        .bind(filter.status)
        .bind(filter.priority)
        .bind(filter.contact_id)
        .bind(filter.site_id)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn ticket_comments(&mut self, id: TicketId) -> Result<Vec<Comment>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, body, visibility, author_issuer AS issuer, author AS subject, execution_id, created_at
               FROM ticket_comments WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn ticket_history(&mut self, id: TicketId) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT change, from_status, to_status, actor_issuer AS issuer, actor AS subject, execution_id, at
               FROM ticket_history WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    /// Whether an asset a ticket may name exists in this workspace.
    pub async fn asset_exists(&mut self, id: AssetId) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM assets WHERE id = $1)")
            .bind(id)
            .fetch_one(self.conn())
            .await?)
    }

    /// The ticket's status, locked until this unit of work ends so that
    /// concurrent transitions apply one after the other.
    pub async fn lock_ticket_status(&mut self, id: TicketId) -> Result<Option<TicketStatus>, StoreError> {
        Ok(sqlx::query_scalar("SELECT status FROM tickets WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Opens a ticket (status `new`) and writes its first history entry.
    pub async fn insert_ticket(
        &mut self,
        new: &NewTicket<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<Ticket, StoreError> {
        let ticket = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tickets (id, title, description, priority, created_by_issuer, created_by, execution_id,
                                  asset_id, alert_id, contact_id, site_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {TICKET_COLUMNS}"
        )))
        .bind(new.id)
        .bind(new.title)
        .bind(new.description.map_or("", TicketText::as_str))
        .bind(new.priority)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .bind(new.asset_id)
        .bind(new.alert_id)
        .bind(new.contact_id)
        .bind(new.site_id)
        .fetch_one(self.conn())
        .await?;
        self.record_history(new.id, "created", None, Some(TicketStatus::New), actor, execution).await?;
        Ok(ticket)
    }

    /// Moves a ticket (whose status the caller locked and checked).
    pub async fn set_ticket_status(
        &mut self,
        id: TicketId,
        from: TicketStatus,
        to: TicketStatus,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET status = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(to)
            .execute(self.conn())
            .await?;
        self.record_history(id, "status_changed", Some(from), Some(to), actor, execution).await
    }

    pub async fn insert_comment(
        &mut self,
        ticket: TicketId,
        body: &TicketText,
        visibility: CommentVisibility,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<CommentId, StoreError> {
        let id = CommentId::new();
        sqlx::query(
            "INSERT INTO ticket_comments (id, ticket_id, body, visibility, author_issuer, author, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(ticket)
        .bind(body)
        .bind(visibility)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE tickets SET updated_at = now() WHERE id = $1").bind(ticket).execute(self.conn()).await?;
        self.record_history(ticket, "commented", None, None, actor, execution).await?;
        Ok(id)
    }

    async fn record_history(
        &mut self,
        ticket: TicketId,
        change: &str,
        from: Option<TicketStatus>,
        to: Option<TicketStatus>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_history (ticket_id, change, from_status, to_status, actor_issuer, actor, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ticket)
        .bind(change)
        .bind(from)
        .bind(to)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
