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

use sqlx::{Postgres, QueryBuilder};

use crate::{StoreError, WorkspaceTx, executions::Actor, ticket_search::SearchMatch};

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
    /// Only tickets the search port matched.
    pub search: Option<SearchMatch>,
    /// Created at or after.
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    pub created_before: Option<OffsetDateTime>,
    /// Last changed at or after.
    pub updated_after: Option<OffsetDateTime>,
    /// Last changed before.
    pub updated_before: Option<OffsetDateTime>,
}

/// The order of the ticket list; each has a keyset ([`TicketKey`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TicketSort {
    /// Newest first (id descending: ids sort by creation).
    #[default]
    Newest,
    /// Last changed first.
    Updated,
    /// Soonest SLA deadline first, tickets without one last.
    SlaDue,
    /// P1 first, newest first within a priority.
    Priority,
}

impl TicketSort {
    pub const NAMES: [&'static str; 4] = ["newest", "updated", "sla_due", "priority"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "newest" => Some(Self::Newest),
            "updated" => Some(Self::Updated),
            "sla_due" => Some(Self::SlaDue),
            "priority" => Some(Self::Priority),
            _ => None,
        }
    }

    /// The key of `ticket` in this order.
    pub fn key(self, ticket: &Ticket) -> TicketKey {
        match self {
            Self::Newest => TicketKey::Newest(ticket.id),
            Self::Updated => TicketKey::Updated(ticket.updated_at, ticket.id),
            Self::SlaDue => TicketKey::SlaDue(ticket.sla_due_at, ticket.id),
            Self::Priority => TicketKey::Priority(ticket.priority, ticket.id),
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Self::Newest => "id DESC",
            Self::Updated => "updated_at DESC, id DESC",
            Self::SlaDue => "sla_due_at ASC NULLS LAST, id ASC",
            Self::Priority => "priority ASC, id DESC",
        }
    }
}

/// Where a page of the ticket list ends: the sort key and id of its last
/// ticket. Its text (the cursor) is the id alone for the newest-first order,
/// as before sorts existed, and `sort.key.id` for the others (times in
/// microseconds since the epoch, `-` for no deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKey {
    Newest(TicketId),
    Updated(OffsetDateTime, TicketId),
    SlaDue(Option<OffsetDateTime>, TicketId),
    Priority(Priority, TicketId),
}

impl TicketKey {
    /// The order this key belongs to.
    pub fn sort(&self) -> TicketSort {
        match self {
            Self::Newest(_) => TicketSort::Newest,
            Self::Updated(..) => TicketSort::Updated,
            Self::SlaDue(..) => TicketSort::SlaDue,
            Self::Priority(..) => TicketSort::Priority,
        }
    }
}

fn micros(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1000
}

fn from_micros(text: &str) -> Option<OffsetDateTime> {
    let micros: i64 = text.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
}

impl std::fmt::Display for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Newest(id) => write!(f, "{id}"),
            Self::Updated(at, id) => write!(f, "updated.{}.{id}", micros(*at)),
            Self::SlaDue(Some(at), id) => write!(f, "sla_due.{}.{id}", micros(*at)),
            Self::SlaDue(None, id) => write!(f, "sla_due.-.{id}"),
            Self::Priority(priority, id) => write!(f, "priority.{}.{id}", priority.as_str()),
        }
    }
}

impl std::str::FromStr for TicketKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.splitn(3, '.');
        let (first, key, id) = (parts.next(), parts.next(), parts.next());
        let Some(id) = id else {
            return s.parse().map(Self::Newest).map_err(|_| ());
        };
        let id: TicketId = id.parse().map_err(|_| ())?;
        let key = key.ok_or(())?;
        match first {
            Some("updated") => from_micros(key).map(|at| Self::Updated(at, id)).ok_or(()),
            Some("sla_due") if key == "-" => Ok(Self::SlaDue(None, id)),
            Some("sla_due") => from_micros(key).map(|at| Self::SlaDue(Some(at), id)).ok_or(()),
            Some("priority") => Priority::parse(key).map(|p| Self::Priority(p, id)).ok_or(()),
            _ => Err(()),
        }
    }
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

/// The conditions of `filter`, each `AND`ed to `query`.
fn push_filter(query: &mut QueryBuilder<Postgres>, filter: &TicketFilter) {
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status);
    }
    if let Some(priority) = filter.priority {
        query.push(" AND priority = ").push_bind(priority);
    }
    if let Some(contact) = filter.contact_id {
        query.push(" AND contact_id = ").push_bind(contact);
    }
    if let Some(site) = filter.site_id {
        query.push(" AND site_id = ").push_bind(site);
    }
    if let Some(state) = filter.sla_state {
        query.push(" AND sla_state = ").push_bind(state);
    }
    if let Some(queue) = filter.queue_id {
        query.push(" AND queue_id = ").push_bind(queue);
    }
    match &filter.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => {
            query.push(" AND assignee IS NULL");
        }
        Some(AssigneeFilter::Is(who)) => {
            query
                .push(" AND assignee = ")
                .push_bind(who.subject.clone())
                .push(" AND assignee_issuer = ")
                .push_bind(who.issuer.clone());
        }
    }
    if let Some(tag) = &filter.tag {
        query.push(" AND tags @> ARRAY[").push_bind(tag.as_str().to_owned()).push("::text]");
    }
    if filter.open_only {
        query.push(" AND status NOT IN ('resolved', 'closed')");
    }
    if let Some(awaiting) = filter.awaiting {
        query.push(" AND awaiting = ").push_bind(awaiting);
    }
    match &filter.search {
        None => {}
        Some(SearchMatch::InStore(text)) => {
            query.push(" AND search @@ websearch_to_tsquery('english', ").push_bind(text.as_str().to_owned()).push(")");
        }
        Some(SearchMatch::Ids(ids)) => {
            query.push(" AND id = ANY(").push_bind(ids.clone()).push(")");
        }
    }
    let ranges = [
        ("created_at >= ", filter.created_after),
        ("created_at < ", filter.created_before),
        ("updated_at >= ", filter.updated_after),
        ("updated_at < ", filter.updated_before),
    ];
    for (condition, at) in ranges {
        if let Some(at) = at {
            query.push(" AND ").push(condition).push_bind(at);
        }
    }
}

impl WorkspaceTx {
    pub async fn ticket(&mut self, id: TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// A page of tickets in `sort` order, after the key `after` (of the
    /// same order). One statement whatever the filters: each filter given is
    /// a condition of its own, so every combination is planned with the
    /// values it has (no `$n IS NULL OR ...` that a generic plan would scan).
    pub async fn tickets(
        &mut self,
        filter: &TicketFilter,
        sort: TicketSort,
        after: Option<TicketKey>,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE true"));
        push_filter(&mut query, filter);
        match after {
            None => {}
            Some(TicketKey::Newest(id)) => {
                query.push(" AND id < ").push_bind(id);
            }
            Some(TicketKey::Updated(at, id)) => {
                query.push(" AND (updated_at, id) < (").push_bind(at).push(", ").push_bind(id).push(")");
            }
            Some(TicketKey::SlaDue(Some(at), id)) => {
                query
                    .push(" AND (sla_due_at IS NULL OR (sla_due_at, id) > (")
                    .push_bind(at)
                    .push(", ")
                    .push_bind(id)
                    .push("))");
            }
            Some(TicketKey::SlaDue(None, id)) => {
                query.push(" AND sla_due_at IS NULL AND id > ").push_bind(id);
            }
            Some(TicketKey::Priority(priority, id)) => {
                query
                    .push(" AND (priority > ")
                    .push_bind(priority)
                    .push(" OR (priority = ")
                    .push_bind(priority)
                    .push(" AND id < ")
                    .push_bind(id)
                    .push("))");
            }
        }
        query.push(" ORDER BY ").push(sort.order_by()).push(" LIMIT ").push_bind(limit);
        // Planned with its values each time (not a cached generic plan,
        // which cannot tell a rare search word from a common one and would
        // walk the sort index instead of the GIN index).
        Ok(query.build_query_as().persistent(false).fetch_all(self.conn()).await?)
    }

    /// How many tickets match each of `filters`, in their order, counting no
    /// further than `cap` for each (each count stops reading there): one
    /// statement, so one round trip however many saved views a page shows.
    pub async fn count_tickets_each(&mut self, filters: &[TicketFilter], cap: i64) -> Result<Vec<i64>, StoreError> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Postgres>::new("SELECT ARRAY[");
        for (i, filter) in filters.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query.push("(SELECT count(*) FROM (SELECT 1 FROM tickets WHERE true");
            push_filter(&mut query, filter);
            query.push(" LIMIT ").push_bind(cap).push(") AS matching)");
        }
        query.push("]::bigint[]");
        Ok(query.build_query_scalar().persistent(false).fetch_one(self.conn()).await?)
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

    /// Whether the ticket has a public comment of ours (a reply to the client;
    /// a client's own reply from the portal is not one).
    pub async fn has_public_comment(&mut self, ticket: TicketId) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_comments WHERE ticket_id = $1 AND visibility = 'public'
                                        AND author_issuer <> 'urn:anchor:portal')",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cursor_reads_back_as_its_key() {
        let id = TicketId::new();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_000).expect("time");
        for key in [
            TicketKey::Newest(id),
            TicketKey::Updated(at, id),
            TicketKey::SlaDue(Some(at), id),
            TicketKey::SlaDue(None, id),
            TicketKey::Priority(Priority::P2, id),
        ] {
            assert_eq!(key.to_string().parse::<TicketKey>(), Ok(key), "{key}");
        }
        // The newest-first cursor is the id, as before sorts existed.
        assert_eq!(TicketKey::Newest(id).to_string(), id.to_string());
        for bad in ["", "updated.x.tkt_1", "priority.p9.", "sla_due.1.que_01jd6m2h9x8k7v5t3r1p0n9q8w", "oldest.1.x"] {
            assert!(bad.parse::<TicketKey>().is_err(), "{bad}");
        }
    }
}

/// A client's rating of one resolution of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Rating {
    /// Which resolution (the n-th time the ticket was resolved).
    pub resolution: i32,
    /// 1 (poor) to 5 (excellent).
    pub score: i16,
    pub comment: Option<String>,
    /// The contact who rated it.
    pub rated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl WorkspaceTx {
    /// How many times the ticket was resolved: the current resolution's number
    /// (0 while it never was).
    pub async fn resolutions(&mut self, ticket: TicketId) -> Result<i32, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*)::int FROM ticket_history
              WHERE ticket_id = $1 AND change = 'status_changed' AND to_status = 'resolved'",
        )
        .bind(ticket)
        .fetch_one(self.conn())
        .await?)
    }

    /// The ticket's ratings, oldest first.
    pub async fn ratings(&mut self, ticket: TicketId) -> Result<Vec<Rating>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT resolution, score, comment, rated_by, created_at FROM ticket_ratings
              WHERE ticket_id = $1 ORDER BY resolution",
        )
        .bind(ticket)
        .fetch_all(self.conn())
        .await?)
    }

    /// Records a rating of resolution `resolution`; false when it was rated already.
    pub async fn insert_rating(
        &mut self,
        ticket: TicketId,
        resolution: i32,
        score: i16,
        comment: Option<&str>,
        rated_by: &str,
        execution: ExecutionId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO ticket_ratings (ticket_id, resolution, score, comment, rated_by, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(ticket)
        .bind(resolution)
        .bind(score)
        .bind(comment)
        .bind(rated_by)
        .bind(execution)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
