//! A workspace's tickets, their comments and their history. Reads serve the
//! API; writes are made by the ticket skills, each inside the unit of work
//! that also records the command's effect.

use anchor_domain::{
    CommentId, CommentVisibility, ExecutionId, Priority, TicketId, TicketStatus, TicketText, TicketTitle,
};
use serde::Serialize;
use sqlx::{Row, postgres::PgRow};
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: String,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub status: TicketStatus,
    pub created_by: Actor,
    pub execution_id: String,
    /// The machine it is about, when there is one.
    pub asset_id: Option<String>,
    /// The alert it was opened for.
    pub alert_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    pub id: String,
    pub body: String,
    pub visibility: CommentVisibility,
    pub author: Actor,
    pub execution_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One change to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// `created`, `status_changed` or `commented`.
    pub change: String,
    pub from_status: Option<TicketStatus>,
    pub to_status: Option<TicketStatus>,
    pub actor: Actor,
    pub execution_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub id: TicketId,
    pub title: &'a TicketTitle,
    pub description: Option<&'a TicketText>,
    pub priority: Priority,
    pub asset_id: Option<String>,
    pub alert_id: Option<String>,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
}

fn decode(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

fn status_of(raw: Option<String>) -> Result<Option<TicketStatus>, StoreError> {
    raw.map(|s| TicketStatus::parse(&s).ok_or_else(|| decode(format!("ticket status {s:?}")))).transpose()
}

fn ticket_from_row(row: &PgRow) -> Result<Ticket, StoreError> {
    let priority: String = row.try_get("priority")?;
    Ok(Ticket {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        priority: Priority::parse(&priority).ok_or_else(|| decode(format!("ticket priority {priority:?}")))?,
        status: status_of(Some(row.try_get("status")?))?.expect("some in, some out"),
        created_by: Actor { issuer: row.try_get("created_by_issuer")?, subject: row.try_get("created_by")? },
        execution_id: row.try_get("execution_id")?,
        asset_id: row.try_get("asset_id")?,
        alert_id: row.try_get("alert_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const TICKET_COLUMNS: &str = "id, title, description, priority, status, created_by_issuer, created_by, execution_id,
                              asset_id, alert_id, created_at, updated_at";

impl WorkspaceTx {
    pub async fn ticket(&mut self, id: TicketId) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// Newest first, after the cursor `before` (a ticket id).
    pub async fn tickets(
        &mut self,
        filter: &TicketFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets
              WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR priority = $3)
              ORDER BY id DESC LIMIT $4"
        )))
        .bind(before)
        .bind(filter.status.map(TicketStatus::as_str))
        .bind(filter.priority.map(Priority::as_str))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    pub async fn ticket_comments(&mut self, id: TicketId) -> Result<Vec<Comment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body, visibility, author_issuer, author, execution_id, created_at
               FROM ticket_comments WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                let visibility: String = row.try_get("visibility")?;
                Ok(Comment {
                    id: row.try_get("id")?,
                    body: row.try_get("body")?,
                    visibility: CommentVisibility::parse(&visibility)
                        .ok_or_else(|| decode(format!("comment visibility {visibility:?}")))?,
                    author: Actor { issuer: row.try_get("author_issuer")?, subject: row.try_get("author")? },
                    execution_id: row.try_get("execution_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn ticket_history(&mut self, id: TicketId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT change, from_status, to_status, actor_issuer, actor, execution_id, at
               FROM ticket_history WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    change: row.try_get("change")?,
                    from_status: status_of(row.try_get("from_status")?)?,
                    to_status: status_of(row.try_get("to_status")?)?,
                    actor: Actor { issuer: row.try_get("actor_issuer")?, subject: row.try_get("actor")? },
                    execution_id: row.try_get("execution_id")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    /// The ticket's status, locked until this unit of work ends so that
    /// concurrent transitions apply one after the other.
    pub async fn lock_ticket_status(&mut self, id: TicketId) -> Result<Option<TicketStatus>, StoreError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM tickets WHERE id = $1 FOR UPDATE")
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await?;
        status_of(status)
    }

    /// Opens a ticket (status `new`) and writes its first history entry.
    pub async fn insert_ticket(
        &mut self,
        new: &NewTicket<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<Ticket, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tickets (id, title, description, priority, created_by_issuer, created_by, execution_id,
                                  asset_id, alert_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {TICKET_COLUMNS}"
        )))
        .bind(new.id.to_string())
        .bind(new.title.as_str())
        .bind(new.description.map_or("", TicketText::as_str))
        .bind(new.priority.as_str())
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution.to_string())
        .bind(&new.asset_id)
        .bind(&new.alert_id)
        .fetch_one(self.conn())
        .await?;
        self.record_history(new.id, "created", None, Some(TicketStatus::New), actor, execution).await?;
        ticket_from_row(&row)
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
            .bind(id.to_string())
            .bind(to.as_str())
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
        .bind(id.to_string())
        .bind(ticket.to_string())
        .bind(body.as_str())
        .bind(visibility.as_str())
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution.to_string())
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE tickets SET updated_at = now() WHERE id = $1")
            .bind(ticket.to_string())
            .execute(self.conn())
            .await?;
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
        .bind(ticket.to_string())
        .bind(change)
        .bind(from.map(TicketStatus::as_str))
        .bind(to.map(TicketStatus::as_str))
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution.to_string())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
