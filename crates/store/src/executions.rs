//! A workspace's executions (one per accepted domain command), the record of
//! what each command's skill did (`command_effects`), and receipts of the
//! callbacks that finished them. Every function runs inside the workspace's
//! unit of work.

use anchor_domain::{EvidenceId, ExecutionId, ExecutionStatus, ReceiptId, Role};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// Who asked: a subject at its issuer.
// Rows name it in columns `issuer` and `subject` (aliased in the query where
// the table names them otherwise) so that it can be flattened into the row.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[schema(as = PersonView)]
pub struct Actor {
    pub issuer: String,
    pub subject: String,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Execution {
    pub id: ExecutionId,
    pub command: String,
    pub input: Value,
    #[sqlx(flatten)]
    pub actor: Actor,
    /// The actor's role in the workspace when the command was accepted.
    pub actor_role: Option<Role>,
    pub envelope: String,
    pub status: ExecutionStatus,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub evidence_id: Option<EvidenceId>,
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
    /// The caller's `Idempotency-Key`, unique per actor: a retry of the same
    /// request finds this execution instead of making a second one.
    pub idempotency_key: Option<&'a str>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<ExecutionStatus>,
    pub command: Option<String>,
}

/// Where AgentField ran an execution: its execution and run ids and the
/// `<node>.<function>` it executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentFieldRun<'a> {
    pub execution_id: &'a str,
    pub run_id: &'a str,
    pub target: &'a str,
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
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Receipt {
    pub id: ReceiptId,
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

pub(crate) const COLUMNS: &str =
    "id, command, input, actor_issuer AS issuer, actor_subject AS subject, actor_role, envelope,
                       status, result, error, evidence_id, agentfield_execution_id, agentfield_run_id,
                       agentfield_target, created_at, handed_off_at, completed_at";

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
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO executions (id, command, input, actor_issuer, actor_subject, actor_role, envelope,
                                     idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        )))
        .bind(new.id)
        .bind(new.command)
        .bind(new.input)
        .bind(&new.actor.issuer)
        .bind(&new.actor.subject)
        .bind(new.actor_role)
        .bind(new.envelope)
        .bind(new.idempotency_key)
        .fetch_one(self.conn())
        .await?)
    }

    /// The execution `actor` asked for with `idempotency_key`, if any.
    pub async fn execution_for_key(
        &mut self,
        actor: &Actor,
        idempotency_key: &str,
    ) -> Result<Option<Execution>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM executions
              WHERE actor_issuer = $1 AND actor_subject = $2 AND idempotency_key = $3"
        )))
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(idempotency_key)
        .fetch_optional(self.conn())
        .await?)
    }

    pub async fn execution(&mut self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM executions WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The execution, locked until this unit of work ends: whoever finishes
    /// an execution holds this lock, so it finishes once.
    pub async fn lock_execution(&mut self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM executions WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, after the cursor `before` (an execution id).
    pub async fn executions(
        &mut self,
        filter: &ExecutionFilter,
        before: Option<ExecutionId>,
        limit: i64,
    ) -> Result<Vec<Execution>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM executions
              WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR command = $3)
              ORDER BY id DESC LIMIT $4"
        )))
        .bind(before)
        .bind(filter.status)
        .bind(filter.command.as_deref())
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
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
        .bind(id)
        .bind(agentfield_execution_id)
        .bind(agentfield_run_id)
        .bind(agentfield_target)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves an unfinished execution to a final status, recording where
    /// AgentField ran it when `run` says so and nothing has yet (the skill
    /// that performed it can finish it before the hand-off has recorded its
    /// answer). Returns `false` (and changes nothing) when it had finished
    /// already.
    pub async fn finish_execution(
        &mut self,
        id: ExecutionId,
        status: ExecutionStatus,
        result: Option<&Value>,
        error: Option<&Value>,
        run: Option<&AgentFieldRun<'_>>,
    ) -> Result<bool, StoreError> {
        debug_assert!(status.is_finished());
        let done = sqlx::query(
            "UPDATE executions
                SET status = $2, result = $3, error = $4, completed_at = now(),
                    agentfield_execution_id = coalesce(agentfield_execution_id, $5),
                    agentfield_run_id = coalesce(agentfield_run_id, $6),
                    agentfield_target = coalesce(agentfield_target, $7),
                    handed_off_at = CASE WHEN $5::text IS NULL THEN handed_off_at
                                         ELSE coalesce(handed_off_at, now()) END
              WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(status)
        .bind(result)
        .bind(error)
        .bind(run.map(|r| r.execution_id))
        .bind(run.map(|r| r.run_id))
        .bind(run.map(|r| r.target))
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
                .bind(execution)
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
            .bind(execution)
            .bind(if applied { "applied" } else { "rejected" })
            .bind(result)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// What the skill recorded for `execution`, if it ran.
    pub async fn effect(&mut self, execution: ExecutionId) -> Result<Option<EffectClaim>, StoreError> {
        let row: Option<(Option<String>, Option<Value>)> =
            sqlx::query_as("SELECT outcome, result FROM command_effects WHERE execution_id = $1")
                .bind(execution)
                .fetch_optional(self.conn())
                .await?;
        let Some((outcome, result)) = row else { return Ok(None) };
        let result = result.unwrap_or_default();
        Ok(Some(match outcome.as_deref() {
            Some("rejected") => EffectClaim::Rejected(result),
            _ => EffectClaim::Applied(result),
        }))
    }

    /// The earlier receipt of a delivery from `source`, if this workspace
    /// accepted it before.
    pub async fn callback_receipt(&mut self, source: &str, delivery_id: &str) -> Result<Option<Receipt>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, $2 AS delivery_id, outcome, received_at, body_sha256, true AS replay
               FROM platform.callback_receipt($1, $2)",
        )
        .bind(source)
        .bind(delivery_id)
        .fetch_optional(self.conn())
        .await?)
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
        Ok(sqlx::query_as(
            "SELECT receipt_id AS id, $3 AS delivery_id, first_outcome AS outcome, first_received_at AS received_at,
                    first_body_sha256 AS body_sha256, replay
               FROM platform.record_callback_receipt($1, $2, $3, $4, $5)",
        )
        .bind(ReceiptId::new())
        .bind(source)
        .bind(delivery_id)
        .bind(body_sha256)
        .bind(outcome)
        .fetch_one(self.conn())
        .await?)
    }
}
