//! Tickets' SLA clocks as stored: the append-only clock log, the last plan
//! computed from it (`ticket_sla`, with its summary on the ticket row), the
//! warnings and breaches already sent, and the workspace's entry in the
//! installation's SLA schedule. The rules live in `anchor_sla`; the service
//! that joins the two is `anchor_commands::sla`.

use anchor_domain::{CalendarId, ExecutionId, SlaPolicyId, SlaState, TicketId};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{Database, StoreError, WorkspaceTx};

/// A ticket's last plan.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SlaPlan {
    pub ticket_id: TicketId,
    pub policy_id: SlaPolicyId,
    pub policy_version: i32,
    pub calendar_id: CalendarId,
    pub calendar_version: i32,
    /// False once resolved.
    pub open: bool,
    /// `anchor_sla::SlaClocks` as of `planned_at`, without its change list.
    pub clocks: Json<Value>,
    pub planned_at: OffsetDateTime,
    pub next_check_at: Option<OffsetDateTime>,
}

/// What a plan summarises on the ticket row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaSummary {
    pub state: SlaState,
    pub due_at: Option<OffsetDateTime>,
}

/// A warning or breach already sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct SlaNoticeKey {
    pub target: String,
    pub cycle: i32,
    /// `warning` or `breached`.
    pub kind: String,
}

impl WorkspaceTx {
    /// The ticket's plan, locked until this unit of work ends: whoever
    /// appends to a clock log or re-plans it holds this lock, so the log and
    /// its plan change together. None: the ticket has no clocks.
    pub async fn lock_sla_plan(&mut self, ticket: TicketId) -> Result<Option<SlaPlan>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM ticket_sla WHERE ticket_id = $1 FOR UPDATE")
            .bind(ticket)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn sla_plan(&mut self, ticket: TicketId) -> Result<Option<SlaPlan>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM ticket_sla WHERE ticket_id = $1")
            .bind(ticket)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The instant to record a clock event at: the database's clock, never
    /// before the log's last event (a log is in time order).
    pub async fn clock_instant(&mut self, ticket: TicketId) -> Result<OffsetDateTime, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT greatest(clock_timestamp(), (SELECT max(at) FROM ticket_clock_events WHERE ticket_id = $1))",
        )
        .bind(ticket)
        .fetch_one(self.conn())
        .await?)
    }

    /// Appends `event` (an `anchor_sla::ClockEvent` as JSON, at `at`) to the
    /// ticket's clock log.
    pub async fn append_clock_event(
        &mut self,
        ticket: TicketId,
        at: OffsetDateTime,
        event: &Value,
        execution: Option<ExecutionId>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO ticket_clock_events (ticket_id, at, event, execution_id) VALUES ($1, $2, $3, $4)")
            .bind(ticket)
            .bind(at)
            .bind(Json(event))
            .bind(execution)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The ticket's clock log, in order.
    pub async fn clock_log(&mut self, ticket: TicketId) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<Json<Value>> =
            sqlx::query_scalar("SELECT event FROM ticket_clock_events WHERE ticket_id = $1 ORDER BY id")
                .bind(ticket)
                .fetch_all(self.conn())
                .await?;
        Ok(rows.into_iter().map(|Json(v)| v).collect())
    }

    /// Stores a plan, its summary on the ticket, and the workspace's next
    /// look at its clocks.
    pub async fn save_sla_plan(&mut self, plan: &SlaPlan, summary: SlaSummary) -> Result<(), StoreError> {
        // One statement (one round trip): the plan, the ticket's summary (bookkeeping: it
        // does not make the ticket "updated") and the workspace's next look.
        sqlx::query(
            "WITH plan AS (
                 INSERT INTO ticket_sla (ticket_id, policy_id, policy_version, calendar_id, calendar_version, open,
                                         clocks, planned_at, next_check_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (ticket_id) DO UPDATE SET
                     policy_id = EXCLUDED.policy_id, policy_version = EXCLUDED.policy_version,
                     calendar_id = EXCLUDED.calendar_id, calendar_version = EXCLUDED.calendar_version,
                     open = EXCLUDED.open, clocks = EXCLUDED.clocks, planned_at = EXCLUDED.planned_at,
                     next_check_at = EXCLUDED.next_check_at
                 RETURNING 1),
             summary AS (
                 UPDATE tickets SET sla_policy_id = $2, sla_state = $10, sla_due_at = $11 WHERE id = $1 RETURNING 1)
             SELECT platform.sla_schedule($9) WHERE $9::timestamptz IS NOT NULL",
        )
        .bind(plan.ticket_id)
        .bind(plan.policy_id)
        .bind(plan.policy_version)
        .bind(plan.calendar_id)
        .bind(plan.calendar_version)
        .bind(plan.open)
        .bind(&plan.clocks)
        .bind(plan.planned_at)
        .bind(plan.next_check_at)
        .bind(summary.state)
        .bind(summary.due_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A calendar's definition at `version` (`anchor_sla::Calendar` as JSON).
    pub async fn calendar_definition(&mut self, id: &str, version: i32) -> Result<Option<Value>, StoreError> {
        let row: Option<Json<Value>> = sqlx::query_scalar(
            "SELECT definition FROM business_calendar_versions WHERE calendar_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(|Json(v)| v))
    }

    /// A policy's definition at `version` (`anchor_sla::SlaPolicy` as JSON).
    pub async fn policy_definition(&mut self, id: &str, version: i32) -> Result<Option<Value>, StoreError> {
        let row: Option<Json<Value>> =
            sqlx::query_scalar("SELECT definition FROM sla_policy_versions WHERE policy_id = $1 AND version = $2")
                .bind(id)
                .bind(version)
                .fetch_optional(self.conn())
                .await?;
        Ok(row.map(|Json(v)| v))
    }

    /// The warnings and breaches already sent for a ticket.
    pub async fn sla_notices(&mut self, ticket: TicketId) -> Result<Vec<SlaNoticeKey>, StoreError> {
        Ok(sqlx::query_as("SELECT target, cycle, kind FROM sla_notices WHERE ticket_id = $1")
            .bind(ticket)
            .fetch_all(self.conn())
            .await?)
    }

    /// Records a notice; false if it was sent before.
    pub async fn insert_sla_notice(
        &mut self,
        ticket: TicketId,
        key: &SlaNoticeKey,
        at: OffsetDateTime,
        due_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sla_notices (ticket_id, target, cycle, kind, at, due_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING",
        )
        .bind(ticket)
        .bind(&key.target)
        .bind(key.cycle)
        .bind(&key.kind)
        .bind(at)
        .bind(due_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Up to `limit` tickets whose clocks want looking at now, locked; plans
    /// another unit of work holds are skipped (it re-plans them itself).
    pub async fn lock_due_sla_plans(&mut self, limit: i64) -> Result<Vec<TicketId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT ticket_id FROM ticket_sla WHERE next_check_at <= clock_timestamp()
              ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// Open tickets whose clocks use this calendar (now).
    pub async fn open_sla_tickets_on_calendar(&mut self, calendar: CalendarId) -> Result<Vec<TicketId>, StoreError> {
        Ok(sqlx::query_scalar("SELECT ticket_id FROM ticket_sla WHERE open AND calendar_id = $1 ORDER BY ticket_id")
            .bind(calendar)
            .fetch_all(self.conn())
            .await?)
    }

    /// Open tickets whose clocks follow this policy (now).
    pub async fn open_sla_tickets_on_policy(&mut self, policy: SlaPolicyId) -> Result<Vec<TicketId>, StoreError> {
        Ok(sqlx::query_scalar("SELECT ticket_id FROM ticket_sla WHERE open AND policy_id = $1 ORDER BY ticket_id")
            .bind(policy)
            .fetch_all(self.conn())
            .await?)
    }

    /// Locks this workspace's entry in the SLA schedule until the unit of
    /// work ends (the recurring job, before it looks at due clocks).
    pub async fn lock_sla_schedule(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT platform.sla_lock_schedule()").execute(self.conn()).await?;
        Ok(())
    }

    /// Sets this workspace's entry in the SLA schedule to its earliest
    /// pending look (removing it when there is none).
    pub async fn reschedule_sla(&mut self) -> Result<Option<OffsetDateTime>, StoreError> {
        let next: Option<OffsetDateTime> =
            sqlx::query_scalar("SELECT min(next_check_at) FROM ticket_sla").fetch_one(self.conn()).await?;
        sqlx::query("SELECT platform.sla_reschedule($1)").bind(next).execute(self.conn()).await?;
        Ok(next)
    }
}

impl Database {
    /// Workspaces with SLA clocks to look at now (ids), earliest first.
    pub async fn sla_due_workspaces(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT workspace_id FROM platform.sla_schedule WHERE next_check_at <= now()
              ORDER BY next_check_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
