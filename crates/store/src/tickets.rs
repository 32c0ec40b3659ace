//! A workspace's tickets, their comments and their history. Reads serve the
//! API; writes are made by the ticket skills, each inside the unit of work
//! that also records the command's effect.
//!
//! The row types are the views: the API answers with them and the ticket
//! events carry them, so what a client reads and what a webhook receives are
//! the same document.

use anchor_domain::{
    AlertId, AssetId, Awaiting, CommentId, CommentVisibility, ContactId, ExecutionId, Priority, QueueId, SiteId,
    SlaPolicyId, SlaState, Tag, TicketId, TicketStatus, TicketText, TicketTitle,
};
use serde::Serialize;
use sqlx::types::Json;
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
    /// The queue it is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "que_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub queue_id: Option<QueueId>,
    /// The staff member working it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Actor>)]
    #[schemars(with = "Option<Actor>")]
    pub assignee: Option<Json<Actor>>,
    /// Tags, sorted.
    #[schema(value_type = Vec<String>)]
    #[schemars(with = "Vec<String>")]
    pub tags: Vec<String>,
    /// The ticket this one was merged into (it stays readable here).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub merged_into: Option<TicketId>,
    /// Who owes the next answer: `us` or `client`.
    #[schema(value_type = String, example = "us")]
    pub awaiting: Awaiting,
    /// The SLA policy its clocks follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "slp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub sla_policy_id: Option<SlaPolicyId>,
    /// Where it stands against its SLA: `none`, `running`, `warning`, `breached`, `paused` or `met`.
    #[schema(value_type = String, example = "running")]
    pub sla_state: SlaState,
    /// The nearest deadline of a running SLA clock.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub sla_due_at: Option<OffsetDateTime>,
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
    /// `created`, `status_changed`, `commented` or `priority_changed`.
    pub change: String,
    #[schema(value_type = Option<String>)]
    pub from_status: Option<TicketStatus>,
    #[schema(value_type = Option<String>)]
    pub to_status: Option<TicketStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub from_priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub to_priority: Option<Priority>,
    /// What an assignment, queue move, tagging, merge or link changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Json<serde_json::Value>>,
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
    pub queue_id: Option<QueueId>,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub contact_id: Option<ContactId>,
    pub site_id: Option<SiteId>,
    pub sla_state: Option<SlaState>,
    pub queue_id: Option<QueueId>,
    pub assignee: Option<AssigneeFilter>,
    pub tag: Option<Tag>,
    /// Only tickets still open (not resolved or closed).
    pub open_only: bool,
    pub awaiting: Option<Awaiting>,
}

/// Whose tickets to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Unassigned,
    Is(Actor),
}

const TICKET_COLUMNS: &str = "id, title, description, priority, status, created_by_issuer AS issuer,
                              created_by AS subject, execution_id, asset_id, alert_id, contact_id, site_id,
                              queue_id,
                              CASE WHEN assignee IS NOT NULL
                                   THEN jsonb_build_object('issuer', assignee_issuer, 'subject', assignee) END
                                AS assignee,
                              tags, merged_into, awaiting, sla_policy_id, sla_state, sla_due_at, created_at, updated_at";

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
                AND ($5::text IS NULL OR site_id = $5) AND ($7::text IS NULL OR sla_state = $7)
                AND ($8::text IS NULL OR queue_id = $8)
                AND (NOT $9 OR assignee IS NULL)
                AND ($10::text IS NULL OR (assignee = $11 AND assignee_issuer = $10))
                AND ($12::text IS NULL OR tags @> ARRAY[$12::text])
                AND (NOT $13 OR status NOT IN ('resolved', 'closed'))
                AND ($14::text IS NULL OR awaiting = $14)
              ORDER BY id DESC LIMIT $6"
        )))
        .bind(before)
        .bind(filter.status)
        .bind(filter.priority)
        .bind(filter.contact_id)
        .bind(filter.site_id)
        .bind(limit)
        .bind(filter.sla_state)
        .bind(filter.queue_id)
        .bind(filter.assignee == Some(AssigneeFilter::Unassigned))
        .bind(match &filter.assignee {
            Some(AssigneeFilter::Is(who)) => Some(who.issuer.as_str()),
            _ => None,
        })
        .bind(match &filter.assignee {
            Some(AssigneeFilter::Is(who)) => Some(who.subject.as_str()),
            _ => None,
        })
        .bind(filter.tag.as_ref().map(Tag::as_str))
        .bind(filter.open_only)
        .bind(filter.awaiting)
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
            "SELECT change, from_status, to_status, from_priority, to_priority, detail, actor_issuer AS issuer,
                    actor AS subject, execution_id, at
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
                                  asset_id, alert_id, contact_id, site_id, queue_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {TICKET_COLUMNS}"
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
        .bind(new.queue_id)
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

    /// Sets (or clears) the assignee; records who did it and what changed.
    pub async fn set_ticket_assignee(
        &mut self,
        id: TicketId,
        assignee: Option<&Actor>,
        detail: &serde_json::Value,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET assignee_issuer = $2, assignee = $3, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(assignee.map(|a| a.issuer.as_str()))
            .bind(assignee.map(|a| a.subject.as_str()))
            .execute(self.conn())
            .await?;
        self.record_detail(id, "assigned", detail, actor, execution).await
    }

    /// Moves a ticket to a queue (or out of any).
    pub async fn set_ticket_queue(
        &mut self,
        id: TicketId,
        queue: Option<QueueId>,
        detail: &serde_json::Value,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET queue_id = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(queue)
            .execute(self.conn())
            .await?;
        self.record_detail(id, "queued", detail, actor, execution).await
    }

    /// Replaces a ticket's tags.
    pub async fn set_ticket_tags(
        &mut self,
        id: TicketId,
        tags: &[String],
        detail: &serde_json::Value,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET tags = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(tags)
            .execute(self.conn())
            .await?;
        self.record_detail(id, "tagged", detail, actor, execution).await
    }

    /// Marks `id` merged into `survivor` (both recorded in their histories).
    pub async fn merge_ticket(
        &mut self,
        id: TicketId,
        survivor: TicketId,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET merged_into = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(survivor)
            .execute(self.conn())
            .await?;
        sqlx::query("UPDATE tickets SET updated_at = now() WHERE id = $1").bind(survivor).execute(self.conn()).await?;
        let detail = serde_json::json!({"merged": id, "into": survivor});
        self.record_detail(id, "merged", &detail, actor, execution).await?;
        self.record_detail(survivor, "merged", &detail, actor, execution).await
    }

    /// The tickets merged into `id`, oldest first.
    pub async fn merged_tickets(&mut self, id: TicketId) -> Result<Vec<TicketId>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM tickets WHERE merged_into = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.conn())
            .await?)
    }

    /// Relates two tickets (either way round); false if they already were.
    pub async fn relate_tickets(
        &mut self,
        a: TicketId,
        b: TicketId,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<bool, StoreError> {
        let (low, high) = if a.to_string() < b.to_string() { (a, b) } else { (b, a) };
        let done = sqlx::query(
            "INSERT INTO ticket_links (ticket_id, related_id, execution_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(low)
        .bind(high)
        .bind(execution)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for (one, other) in [(a, b), (b, a)] {
            let detail = serde_json::json!({"related": other});
            self.record_detail(one, "related", &detail, actor, execution).await?;
        }
        Ok(true)
    }

    /// The tickets related to `id`.
    pub async fn related_tickets(&mut self, id: TicketId) -> Result<Vec<TicketId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT related_id FROM ticket_links WHERE ticket_id = $1
             UNION SELECT ticket_id FROM ticket_links WHERE related_id = $1 ORDER BY 1",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    async fn record_detail(
        &mut self,
        ticket: TicketId,
        change: &str,
        detail: &serde_json::Value,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_history (ticket_id, change, detail, actor_issuer, actor, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ticket)
        .bind(change)
        .bind(Json(detail))
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records who owes the next answer.
    pub async fn set_ticket_awaiting(&mut self, id: TicketId, awaiting: Awaiting) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET awaiting = $2 WHERE id = $1")
            .bind(id)
            .bind(awaiting)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Whether the ticket has a public comment (a reply to the client).
    pub async fn has_public_comment(&mut self, ticket: TicketId) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_comments WHERE ticket_id = $1 AND visibility = 'public')",
        )
        .bind(ticket)
        .fetch_one(self.conn())
        .await?)
    }

    /// Changes a ticket's priority (the caller locked the ticket).
    pub async fn set_ticket_priority(
        &mut self,
        id: TicketId,
        from: Priority,
        to: Priority,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET priority = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(to)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO ticket_history (ticket_id, change, from_priority, to_priority, actor_issuer, actor, execution_id)
             VALUES ($1, 'priority_changed', $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(())
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
