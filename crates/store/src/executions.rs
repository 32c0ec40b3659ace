//! A workspace's executions (one per accepted domain command), the record of
//! what each command's skill did (`command_effects`), and receipts of the
//! callbacks that finished them. Every function runs inside the workspace's
//! unit of work.

use anchor_domain::{ExecutionId, ExecutionStatus, ReceiptId, Role};
use serde_json::Value;
use sqlx::{Row, postgres::PgRow};
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// Who asked for something: a subject at its issuer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub issuer: String,
    pub subject: String,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: ExecutionId,
    pub command: String,
    pub input: Value,
    pub actor: Actor,
    /// The actor's role in the workspace when the command was accepted.
    pub actor_role: Option<Role>,
    pub envelope: String,
    pub status: ExecutionStatus,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub evidence_id: Option<String>,
    pub agentfield_execution_id: Option<String>,
    pub agentfield_run_id: Option<String>,
    /// `<node>.<skill>` it was handed to.
    pub agentfield_target: Option<String>,
    pub created_at: OffsetDateTime,
    pub handed_off_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
}

/// A command just accepted.
#[derive(Debug, Clone)]
pub struct NewExecution<'a> {
    pub id: ExecutionId,
    pub command: &'a str,
    pub input: &'a Value,
    pub actor: &'a Actor,
    pub actor_role: Option<Role>,
    pub envelope: &'a str,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<ExecutionStatus>,
    pub command: Option<String>,
}

/// What a skill found when it claimed an execution.
#[derive(Debug, Clone, PartialEq)]
pub enum EffectClaim {
    /// First time: go ahead, then [`record_effect`].
    New,
    /// Already done (by an earlier delivery of the same command).
    Applied(Value),
    /// Already refused; `Value` is the refusal as first given.
    Rejected(Value),
}

/// A stored callback receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub id: String,
    /// The sender's delivery id (AgentField: execution id + event; Standard
    /// Webhooks: source + `webhook-id`).
    pub delivery_id: String,
    pub outcome: Value,
    pub received_at: OffsetDateTime,
    /// `sha256:<hex>` of the body first accepted.
    pub body_sha256: String,
    /// This delivery had been accepted before.
    pub replay: bool,
}

const COLUMNS: &str = "id, command, input, actor_issuer, actor_subject, actor_role, envelope, status, result, error,
                       evidence_id, agentfield_execution_id, agentfield_run_id, agentfield_target, created_at,
                       handed_off_at, completed_at";

fn from_row(row: &PgRow) -> Result<Execution, StoreError> {
    let decode = |e: String| StoreError::Database(sqlx::Error::Decode(e.into()));
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let role: Option<String> = row.try_get("actor_role")?;
    Ok(Execution {
        id: id.parse().map_err(|e: anchor_domain::IdError| decode(e.to_string()))?,
        command: row.try_get("command")?,
        input: row.try_get("input")?,
        actor: Actor { issuer: row.try_get("actor_issuer")?, subject: row.try_get("actor_subject")? },
        actor_role: role.map(|r| Role::parse(&r).map_err(|e| decode(e.to_string()))).transpose()?,
        envelope: row.try_get("envelope")?,
        status: ExecutionStatus::parse(&status).ok_or_else(|| decode(format!("execution status {status:?}")))?,
        result: row.try_get("result")?,
        error: row.try_get("error")?,
        evidence_id: row.try_get("evidence_id")?,
        agentfield_execution_id: row.try_get("agentfield_execution_id")?,
        agentfield_run_id: row.try_get("agentfield_run_id")?,
        agentfield_target: row.try_get("agentfield_target")?,
        created_at: row.try_get("created_at")?,
        handed_off_at: row.try_get("handed_off_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

/// Receipts are kept this long: far beyond any sender's retry horizon
/// (AgentField: minutes; Standard Webhooks senders: days).
pub const RECEIPT_RETENTION_DAYS: i32 = 30;

impl crate::Database {
    /// Drops callback receipts older than [`RECEIPT_RETENTION_DAYS`].
    pub async fn prune_callback_receipts(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM platform.callback_receipts WHERE received_at < now() - make_interval(days => $1)")
                .bind(RECEIPT_RETENTION_DAYS)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}

impl WorkspaceTx {
    pub async fn insert_execution(&mut self, new: &NewExecution<'_>) -> Result<Execution, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO executions (id, command, input, actor_issuer, actor_subject, actor_role, envelope)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        )))
        .bind(new.id.to_string())
        .bind(new.command)
        .bind(new.input)
        .bind(&new.actor.issuer)
        .bind(&new.actor.subject)
        .bind(new.actor_role.map(Role::as_str))
        .bind(new.envelope)
        .fetch_one(self.conn())
        .await?;
        from_row(&row)
    }

    pub async fn execution(&mut self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM executions WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The execution, locked until this unit of work ends: whoever finishes
    /// an execution holds this lock, so it finishes once.
    pub async fn lock_execution(&mut self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM executions WHERE id = $1 FOR UPDATE")))
                .bind(id.to_string())
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first, after the cursor `before` (an execution id).
    pub async fn executions(
        &mut self,
        filter: &ExecutionFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Execution>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM executions
              WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR command = $3)
              ORDER BY id DESC LIMIT $4"
        )))
        .bind(before)
        .bind(filter.status.map(ExecutionStatus::as_str))
        .bind(filter.command.as_deref())
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Records that AgentField accepted the execution. A callback may have
    /// finished it already; then only AgentField's ids are filled in.
    pub async fn mark_handed_off(
        &mut self,
        id: ExecutionId,
        agentfield_execution_id: &str,
        agentfield_run_id: &str,
        agentfield_target: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE executions
                SET agentfield_execution_id = coalesce(agentfield_execution_id, $2),
                    agentfield_run_id = coalesce(agentfield_run_id, $3),
                    agentfield_target = coalesce(agentfield_target, $4),
                    handed_off_at = coalesce(handed_off_at, now()),
                    status = CASE status WHEN 'queued' THEN 'running' ELSE status END
              WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(agentfield_execution_id)
        .bind(agentfield_run_id)
        .bind(agentfield_target)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves an unfinished execution to a final status. Returns `false` (and
    /// changes nothing) when it had finished already.
    pub async fn finish_execution(
        &mut self,
        id: ExecutionId,
        status: ExecutionStatus,
        result: Option<&Value>,
        error: Option<&Value>,
    ) -> Result<bool, StoreError> {
        debug_assert!(status.is_finished());
        let done = sqlx::query(
            "UPDATE executions SET status = $2, result = $3, error = $4, completed_at = now()
              WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(result)
        .bind(error)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the right to perform `execution`'s effect. A concurrent claim
    /// of the same execution waits here until the first commits or rolls
    /// back, then sees what it did.
    pub async fn claim_effect(&mut self, execution: ExecutionId) -> Result<EffectClaim, StoreError> {
        let claimed =
            sqlx::query("INSERT INTO command_effects (execution_id) VALUES ($1) ON CONFLICT (execution_id) DO NOTHING")
                .bind(execution.to_string())
                .execute(self.conn())
                .await?;
        if claimed.rows_affected() == 1 {
            return Ok(EffectClaim::New);
        }
        Ok(self.effect(execution).await?.expect("the conflicting claim is committed"))
    }

    /// Records what the skill did after [`Self::claim_effect`] returned `New`.
    pub async fn record_effect(
        &mut self,
        execution: ExecutionId,
        applied: bool,
        result: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE command_effects SET outcome = $2, result = $3, applied_at = now() WHERE execution_id = $1")
            .bind(execution.to_string())
            .bind(if applied { "applied" } else { "rejected" })
            .bind(result)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// What the skill recorded for `execution`, if it ran.
    pub async fn effect(&mut self, execution: ExecutionId) -> Result<Option<EffectClaim>, StoreError> {
        let row = sqlx::query("SELECT outcome, result FROM command_effects WHERE execution_id = $1")
            .bind(execution.to_string())
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let outcome: Option<String> = row.try_get("outcome")?;
        let result: Value = row.try_get::<Option<Value>, _>("result")?.unwrap_or_default();
        Ok(Some(match outcome.as_deref() {
            Some("rejected") => EffectClaim::Rejected(result),
            _ => EffectClaim::Applied(result),
        }))
    }

    /// The earlier receipt of a delivery from `source`, if this workspace
    /// accepted it before.
    pub async fn callback_receipt(&mut self, source: &str, delivery_id: &str) -> Result<Option<Receipt>, StoreError> {
        let row = sqlx::query("SELECT id, outcome, received_at, body_sha256 FROM platform.callback_receipt($1, $2)")
            .bind(source)
            .bind(delivery_id)
            .fetch_optional(self.conn())
            .await?;
        row.map(|row| {
            Ok(Receipt {
                id: row.try_get("id")?,
                delivery_id: delivery_id.to_owned(),
                outcome: row.try_get("outcome")?,
                received_at: row.try_get("received_at")?,
                body_sha256: row.try_get("body_sha256")?,
                replay: true,
            })
        })
        .transpose()
    }

    /// Stores the receipt of an accepted delivery in this unit of work; when
    /// a concurrent delivery of the same id got there first, returns its
    /// receipt marked as a replay.
    pub async fn record_callback_receipt(
        &mut self,
        source: &str,
        delivery_id: &str,
        body_sha256: &str,
        outcome: &Value,
    ) -> Result<Receipt, StoreError> {
        let row = sqlx::query(
            "SELECT receipt_id, first_outcome, first_received_at, first_body_sha256, replay
               FROM platform.record_callback_receipt($1, $2, $3, $4, $5)",
        )
        .bind(ReceiptId::new().to_string())
        .bind(source)
        .bind(delivery_id)
        .bind(body_sha256)
        .bind(outcome)
        .fetch_one(self.conn())
        .await?;
        Ok(Receipt {
            id: row.try_get("receipt_id")?,
            delivery_id: delivery_id.to_owned(),
            outcome: row.try_get("first_outcome")?,
            received_at: row.try_get("first_received_at")?,
            body_sha256: row.try_get("first_body_sha256")?,
            replay: row.try_get("replay")?,
        })
    }
}
