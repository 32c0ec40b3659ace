//! A workspace's queues (configuration: the gateway writes them directly,
//! with a change record) and the staff who work them.

use anchor_domain::{QueueId, SlaPolicyId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// A queue, with its members.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = QueueView)]
pub struct Queue {
    #[schema(value_type = String, example = "que_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: QueueId,
    pub name: String,
    pub description: String,
    /// The SLA policy of tickets in this queue (the workspace default when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "slp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub sla_policy_id: Option<SlaPolicyId>,
    /// Staff who work the queue.
    #[sqlx(json)]
    pub members: Vec<Actor>,
    /// Open tickets in the queue (not resolved, closed or merged).
    pub open_tickets: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
}

/// A queue to write.
#[derive(Debug, Clone)]
pub struct QueueInput<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub sla_policy_id: Option<SlaPolicyId>,
    pub members: &'a [Actor],
}

/// A staff member of the workspace, as the platform knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkspaceMember {
    pub issuer: String,
    pub subject: String,
    pub role: String,
}

const QUEUE: &str = "SELECT q.id, q.name, q.description, q.sla_policy_id,
            coalesce((SELECT jsonb_agg(jsonb_build_object('issuer', m.issuer, 'subject', m.subject)
                                       ORDER BY m.subject, m.issuer)
                        FROM queue_members m WHERE m.queue_id = q.id), '[]') AS members,
            (SELECT count(*) FROM tickets t
              WHERE t.queue_id = q.id AND t.status NOT IN ('resolved', 'closed') AND t.merged_into IS NULL)
                AS open_tickets,
            q.created_at, q.updated_at
       FROM queues q";

impl WorkspaceTx {
    pub async fn queues(&mut self) -> Result<Vec<Queue>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{QUEUE} ORDER BY lower(q.name)")))
            .fetch_all(self.conn())
            .await?)
    }

    pub async fn queue(&mut self, id: QueueId) -> Result<Option<Queue>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{QUEUE} WHERE q.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The queue's SLA policy, if it exists and names one.
    pub async fn queue_policy(&mut self, id: QueueId) -> Result<Option<Option<SlaPolicyId>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT sla_policy_id FROM queues WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn insert_queue(&mut self, input: &QueueInput<'_>) -> Result<Queue, StoreError> {
        let id = QueueId::new();
        sqlx::query("INSERT INTO queues (id, name, description, sla_policy_id) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(input.name)
            .bind(input.description)
            .bind(input.sla_policy_id)
            .execute(self.conn())
            .await?;
        self.set_queue_members(id, input.members).await?;
        Ok(self.queue(id).await?.expect("just inserted"))
    }

    /// Replaces a queue's definition; None if there is no such queue.
    pub async fn update_queue(&mut self, id: QueueId, input: &QueueInput<'_>) -> Result<Option<Queue>, StoreError> {
        let done = sqlx::query(
            "UPDATE queues SET name = $2, description = $3, sla_policy_id = $4, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(input.name)
        .bind(input.description)
        .bind(input.sla_policy_id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.set_queue_members(id, input.members).await?;
        self.queue(id).await
    }

    async fn set_queue_members(&mut self, id: QueueId, members: &[Actor]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM queue_members WHERE queue_id = $1").bind(id).execute(self.conn()).await?;
        let issuers: Vec<&str> = members.iter().map(|m| m.issuer.as_str()).collect();
        let subjects: Vec<&str> = members.iter().map(|m| m.subject.as_str()).collect();
        sqlx::query(
            "INSERT INTO queue_members (queue_id, issuer, subject)
             SELECT $1, i, s FROM unnest($2::text[], $3::text[]) AS u (i, s) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&issuers)
        .bind(&subjects)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes a queue no ticket was ever in: Some(false) when tickets name it.
    pub async fn delete_queue(&mut self, id: QueueId) -> Result<Option<bool>, StoreError> {
        let used: Option<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tickets WHERE queue_id = $1) FROM queues WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        match used {
            None => Ok(None),
            Some(true) => Ok(Some(false)),
            Some(false) => {
                sqlx::query("DELETE FROM queues WHERE id = $1").bind(id).execute(self.conn()).await?;
                Ok(Some(true))
            }
        }
    }

    /// The role of a member of this workspace, if they are one.
    pub async fn member_role(&mut self, who: &Actor) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform.member_role($1, $2)")
            .bind(&who.issuer)
            .bind(&who.subject)
            .fetch_one(self.conn())
            .await?)
    }

    /// The workspace's members, by subject.
    pub async fn workspace_members(&mut self) -> Result<Vec<WorkspaceMember>, StoreError> {
        Ok(sqlx::query_as("SELECT issuer, subject, role FROM platform.members()").fetch_all(self.conn()).await?)
    }
}
