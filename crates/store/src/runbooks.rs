//! Runbooks (configuration, versioned: each save is a new version) and
//! their runs (written by the runbook commands' skills).

use anchor_domain::{AlertId, AssetId, ExecutionId, RunbookId, RunbookRunId, TicketId, runbook::RunbookStep};
use serde::Serialize;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// A runbook at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Runbook {
    #[schema(value_type = String, example = "rbk_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: RunbookId,
    pub name: String,
    pub description: String,
    /// For assets of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_type: Option<String>,
    /// For alerts of this rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// For tickets in this queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
    /// Its current version (every save makes a new one; runs keep theirs).
    pub version: i32,
    #[schema(value_type = Vec<RunbookStep>)]
    #[schemars(with = "Vec<RunbookStep>")]
    pub steps: Json<Vec<RunbookStep>>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A runbook as an admin writes it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookInput {
    /// 1-200 characters, unique in the workspace.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Attach it to assets of this type ...
    #[serde(default)]
    pub asset_type: Option<String>,
    /// ... to alerts of this rule ...
    #[serde(default)]
    pub rule_id: Option<String>,
    /// ... or to tickets in this queue (any of them, or none).
    #[serde(default)]
    pub queue_id: Option<String>,
    /// 1-50 steps.
    pub steps: Vec<RunbookStep>,
}

/// One step someone did in a run.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct RunStep {
    /// Its number in the runbook, from 1.
    pub step: i32,
    #[schema(value_type = Actor)]
    #[schemars(with = "Actor")]
    pub done_by: Json<Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a command step: the execution that ran the command, and how it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ran: Option<ExecutionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_status: Option<String>,
    /// The execution of the command that recorded the step.
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub done_at: OffsetDateTime,
}

/// A run of a runbook, with the steps of its version and those done.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct RunbookRun {
    #[schema(value_type = String, example = "rbr_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: RunbookRunId,
    #[schema(value_type = String)]
    pub runbook_id: RunbookId,
    pub runbook_name: String,
    /// The version it follows.
    pub version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ticket_id: Option<TicketId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub alert_id: Option<AlertId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub asset_id: Option<AssetId>,
    #[schema(value_type = Actor)]
    #[schemars(with = "Actor")]
    pub started_by: Json<Actor>,
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    /// When its last step was done.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<OffsetDateTime>,
    #[schema(value_type = Vec<RunbookStep>)]
    #[schemars(with = "Vec<RunbookStep>")]
    pub steps: Json<Vec<RunbookStep>>,
    #[sqlx(skip)]
    pub done: Vec<RunStep>,
}

const RUNBOOK: &str = "SELECT r.id, r.name, r.description, r.asset_type, r.rule_id, r.queue_id, r.version, v.steps,
                              r.created_at, r.updated_at
                         FROM runbooks r JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.version";

const RUN: &str = "SELECT u.id, u.runbook_id, r.name AS runbook_name, u.version, u.ticket_id, u.alert_id, u.asset_id,
                          u.started_by, u.execution_id, u.started_at, u.finished_at, v.steps
                     FROM runbook_runs u JOIN runbooks r ON r.id = u.runbook_id
                     JOIN runbook_versions v ON v.runbook_id = u.runbook_id AND v.version = u.version";

impl WorkspaceTx {
    pub async fn runbooks(&mut self) -> Result<Vec<Runbook>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{RUNBOOK} ORDER BY lower(r.name), r.id")))
            .fetch_all(self.conn())
            .await?)
    }

    pub async fn runbook(&mut self, id: RunbookId) -> Result<Option<Runbook>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{RUNBOOK} WHERE r.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The runbooks for an asset type, an alert rule or a ticket queue.
    pub async fn runbooks_for(
        &mut self,
        asset_type: Option<&str>,
        rule_id: Option<&str>,
        queue_id: Option<&str>,
    ) -> Result<Vec<Runbook>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{RUNBOOK} WHERE r.asset_type = $1 OR r.rule_id = $2 OR r.queue_id = $3 ORDER BY lower(r.name), r.id"
        )))
        .bind(asset_type)
        .bind(rule_id)
        .bind(queue_id)
        .fetch_all(self.conn())
        .await?)
    }

    /// Adds a runbook (`id` new) or saves a new version of one; false in
    /// the second place when it was added. `None` when `id` names none.
    pub async fn save_runbook(
        &mut self,
        id: RunbookId,
        create: bool,
        input: &RunbookInput,
        by: &Actor,
    ) -> Result<Option<Runbook>, StoreError> {
        let version: Option<i32> = if create {
            sqlx::query_scalar(
                "INSERT INTO runbooks (id, name, description, asset_type, rule_id, queue_id, version)
                 VALUES ($1, $2, $3, $4, $5, $6, 1) RETURNING version",
            )
            .bind(id)
            .bind(&input.name)
            .bind(&input.description)
            .bind(&input.asset_type)
            .bind(&input.rule_id)
            .bind(&input.queue_id)
            .fetch_optional(self.conn())
            .await?
        } else {
            sqlx::query_scalar(
                "UPDATE runbooks SET name = $2, description = $3, asset_type = $4, rule_id = $5, queue_id = $6,
                        version = version + 1, updated_at = now()
                  WHERE id = $1 RETURNING version",
            )
            .bind(id)
            .bind(&input.name)
            .bind(&input.description)
            .bind(&input.asset_type)
            .bind(&input.rule_id)
            .bind(&input.queue_id)
            .fetch_optional(self.conn())
            .await?
        };
        let Some(version) = version else { return Ok(None) };
        sqlx::query("INSERT INTO runbook_versions (runbook_id, version, steps, saved_by) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(version)
            .bind(Json(&input.steps))
            .bind(Json(by))
            .execute(self.conn())
            .await?;
        self.runbook(id).await
    }

    pub async fn insert_run(
        &mut self,
        id: RunbookRunId,
        runbook: &Runbook,
        about: (Option<TicketId>, Option<AlertId>, Option<AssetId>),
        by: &Actor,
        execution: ExecutionId,
    ) -> Result<RunbookRun, StoreError> {
        sqlx::query(
            "INSERT INTO runbook_runs (id, runbook_id, version, ticket_id, alert_id, asset_id, started_by, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(runbook.id)
        .bind(runbook.version)
        .bind(about.0)
        .bind(about.1)
        .bind(about.2)
        .bind(Json(by))
        .bind(execution)
        .execute(self.conn())
        .await?;
        self.runbook_run(id).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// A run with the steps done so far (and how their commands stand).
    pub async fn runbook_run(&mut self, id: RunbookRunId) -> Result<Option<RunbookRun>, StoreError> {
        let run: Option<RunbookRun> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{RUN} WHERE u.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        let Some(mut run) = run else { return Ok(None) };
        run.done = sqlx::query_as(
            "SELECT s.step, s.done_by, s.note, s.ran, e.status AS ran_status, s.execution_id, s.done_at
               FROM runbook_run_steps s LEFT JOIN executions e ON e.id = s.ran
              WHERE s.run_id = $1 ORDER BY s.step",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?;
        Ok(Some(run))
    }

    /// The runs about a ticket or an alert, newest first.
    pub async fn runbook_runs_about(
        &mut self,
        ticket: Option<TicketId>,
        alert: Option<AlertId>,
    ) -> Result<Vec<RunbookRun>, StoreError> {
        let ids: Vec<RunbookRunId> = sqlx::query_scalar(
            "SELECT id FROM runbook_runs WHERE ticket_id = $1 OR alert_id = $2 ORDER BY started_at DESC, id DESC",
        )
        .bind(ticket)
        .bind(alert)
        .fetch_all(self.conn())
        .await?;
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            runs.extend(self.runbook_run(id).await?);
        }
        Ok(runs)
    }

    /// Locks the run for a step to be recorded.
    pub async fn lock_runbook_run(&mut self, id: RunbookRunId) -> Result<Option<RunbookRun>, StoreError> {
        let locked: Option<RunbookRunId> = sqlx::query_scalar("SELECT id FROM runbook_runs WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        match locked {
            Some(id) => self.runbook_run(id).await,
            None => Ok(None),
        }
    }

    /// Records step `step` of run `run` as done; the run is finished when
    /// every step is.
    pub async fn record_runbook_step(
        &mut self,
        run: &RunbookRun,
        step: i32,
        by: &Actor,
        note: Option<&str>,
        ran: Option<ExecutionId>,
        execution: ExecutionId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runbook_run_steps (run_id, step, done_by, note, ran, execution_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run.id)
        .bind(step)
        .bind(Json(by))
        .bind(note)
        .bind(ran)
        .bind(execution)
        .execute(self.conn())
        .await?;
        sqlx::query(
            "UPDATE runbook_runs SET finished_at = now()
              WHERE id = $1 AND (SELECT count(*) FROM runbook_run_steps WHERE run_id = $1) >= $2",
        )
        .bind(run.id)
        .bind(run.steps.0.len() as i64)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
