//! A workspace's time entries: time someone worked on a ticket. Reads serve
//! the API; writes are made by the time entry skills, each inside the unit of
//! work that also records the command's effect. The row type is the view:
//! the API answers with it and the time entry events carry it.

use anchor_domain::{
    ContractId, ExecutionId, InvoiceId, TicketId, TimeEntryId, TimeEntryState, TimeNote, WorkMinutes, WorkType,
};
use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::{StoreError, WorkspaceTx, executions::Actor};

// `2026-03-02`: a day as the API reads and writes it.
time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");

/// A time entry.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
#[schema(as = TimeEntryView)]
pub struct TimeEntry {
    #[schema(value_type = String, example = "tim_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: TimeEntryId,
    #[schema(value_type = String, example = "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub ticket_id: TicketId,
    /// Who did the work (and logged it).
    #[sqlx(flatten)]
    pub staff: Actor,
    /// What kind of work, e.g. `remote_support`.
    #[schema(value_type = String, example = "remote_support")]
    pub work_type: WorkType,
    /// 1 to 1440: given, or from `started_at` to `ended_at` (a started minute counts).
    #[schema(value_type = i32, minimum = 1, maximum = 1440, example = 45)]
    pub minutes: WorkMinutes,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub ended_at: Option<OffsetDateTime>,
    /// The day the work was done.
    #[serde(with = "iso_date")]
    #[schema(value_type = String, format = Date, example = "2026-03-02")]
    #[schemars(with = "String")]
    pub worked_on: Date,
    pub billable: bool,
    #[schema(value_type = Option<String>)]
    pub note: Option<TimeNote>,
    /// `draft`, `submitted`, `approved`, `rejected` or `invoiced`.
    #[schema(value_type = String, example = "draft")]
    pub state: TimeEntryState,
    #[sqlx(json(nullable))]
    pub approved_by: Option<Actor>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub approved_at: Option<OffsetDateTime>,
    /// Set while it is rejected.
    #[sqlx(json(nullable))]
    pub rejected_by: Option<Actor>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub rejected_at: Option<OffsetDateTime>,
    #[schema(value_type = Option<String>)]
    pub rejection_reason: Option<TimeNote>,
    /// The hourly rate in force when it was approved, as a decimal (none when
    /// no rate applies: not billable, or nothing prices its work type).
    #[schema(value_type = Option<String>, example = json!(null))]
    pub rate: Option<String>,
    /// The contract it is billed under, fixed when it was approved.
    #[schema(value_type = Option<String>, example = json!(null))]
    pub contract_id: Option<ContractId>,
    /// Once invoiced: the invoice and the line (from 1) that bill it.
    #[schema(value_type = Option<String>, example = json!(null))]
    pub invoice_id: Option<InvoiceId>,
    pub invoice_line: Option<i32>,
    /// The execution that logged it.
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    /// The execution that last changed it.
    #[schema(value_type = String)]
    pub last_execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// The work an entry records, as the author sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeEntryWork<'a> {
    pub work_type: &'a WorkType,
    pub minutes: WorkMinutes,
    /// Both or neither.
    pub started_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub worked_on: Date,
    pub billable: bool,
    pub note: Option<&'a TimeNote>,
}

impl TimeEntry {
    /// Its work as a command would set it.
    pub fn work(&self) -> TimeEntryWork<'_> {
        TimeEntryWork {
            work_type: &self.work_type,
            minutes: self.minutes,
            started_at: self.started_at,
            ended_at: self.ended_at,
            worked_on: self.worked_on,
            billable: self.billable,
            note: self.note.as_ref(),
        }
    }
}

/// Which time entries to list.
#[derive(Debug, Clone, Default)]
pub struct TimeEntryFilter {
    pub state: Option<TimeEntryState>,
    pub ticket_id: Option<TicketId>,
    /// Whose work: the subject, at this issuer when one is given.
    pub staff: Option<(Option<String>, String)>,
    pub billable: Option<bool>,
    /// Worked on this day or later.
    pub from: Option<Date>,
    /// Worked on this day or earlier.
    pub to: Option<Date>,
}

const COLUMNS: &str = "id, ticket_id, staff_issuer AS issuer, staff AS subject, work_type, minutes, started_at,
    ended_at, worked_on, billable, note, state,
    CASE WHEN approved_by IS NOT NULL
         THEN jsonb_build_object('issuer', approved_by_issuer, 'subject', approved_by) END AS approved_by,
    approved_at,
    CASE WHEN rejected_by IS NOT NULL
         THEN jsonb_build_object('issuer', rejected_by_issuer, 'subject', rejected_by) END AS rejected_by,
    rejected_at, rejection_reason, rate::text AS rate, contract_id, invoice_id, invoice_line, execution_id,
    last_execution_id, created_at, updated_at";

impl WorkspaceTx {
    pub async fn time_entry(&mut self, id: TimeEntryId) -> Result<Option<TimeEntry>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM time_entries WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The entry, locked until this unit of work ends so that concurrent
    /// commands on it apply one after the other.
    pub async fn lock_time_entry(&mut self, id: TimeEntryId) -> Result<Option<TimeEntry>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM time_entries WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, after the cursor `before`.
    pub async fn time_entries(
        &mut self,
        filter: &TimeEntryFilter,
        before: Option<TimeEntryId>,
        limit: i64,
    ) -> Result<Vec<TimeEntry>, StoreError> {
        let (issuer, subject) = filter.staff.clone().map_or((None, None), |(i, s)| (i, Some(s)));
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM time_entries
              WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR state = $2)
                AND ($3::text IS NULL OR ticket_id = $3) AND ($4::text IS NULL OR staff = $4)
                AND ($5::text IS NULL OR staff_issuer = $5) AND ($6::boolean IS NULL OR billable = $6)
                AND ($7::date IS NULL OR worked_on >= $7) AND ($8::date IS NULL OR worked_on <= $8)
              ORDER BY id DESC LIMIT $9"
        )))
        .bind(before)
        .bind(filter.state)
        .bind(filter.ticket_id)
        .bind(subject)
        .bind(issuer)
        .bind(filter.billable)
        .bind(filter.from)
        .bind(filter.to)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// Logs a draft entry of `actor`'s work on `ticket`.
    pub async fn insert_time_entry(
        &mut self,
        id: TimeEntryId,
        ticket: TicketId,
        work: &TimeEntryWork<'_>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<TimeEntry, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO time_entries (id, ticket_id, staff_issuer, staff, work_type, minutes, started_at, ended_at,
                                       worked_on, billable, note, execution_id, last_execution_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(ticket)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(work.work_type)
        .bind(work.minutes)
        .bind(work.started_at)
        .bind(work.ended_at)
        .bind(work.worked_on)
        .bind(work.billable)
        .bind(work.note)
        .bind(execution)
        .fetch_one(self.conn())
        .await?)
    }

    /// Sets the work of an entry (which the caller locked and checked) and
    /// returns it to draft: a rejected entry's rejection is cleared.
    pub async fn save_time_entry_work(
        &mut self,
        id: TimeEntryId,
        work: &TimeEntryWork<'_>,
        execution: ExecutionId,
    ) -> Result<TimeEntry, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE time_entries
                SET work_type = $2, minutes = $3, started_at = $4, ended_at = $5, worked_on = $6, billable = $7,
                    note = $8, state = 'draft', rejected_by_issuer = NULL, rejected_by = NULL, rejected_at = NULL,
                    rejection_reason = NULL, last_execution_id = $9, updated_at = now()
              WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(work.work_type)
        .bind(work.minutes)
        .bind(work.started_at)
        .bind(work.ended_at)
        .bind(work.worked_on)
        .bind(work.billable)
        .bind(work.note)
        .bind(execution)
        .fetch_one(self.conn())
        .await?)
    }

    /// Moves an entry (which the caller locked and checked) to `to`:
    /// `submitted`, `approved` (by `actor`) or `rejected` (by `actor`, with
    /// `reason`).
    pub async fn set_time_entry_state(
        &mut self,
        id: TimeEntryId,
        to: TimeEntryState,
        reason: Option<&TimeNote>,
        actor: &Actor,
        execution: ExecutionId,
    ) -> Result<TimeEntry, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE time_entries
                SET state = $2,
                    approved_by_issuer = CASE WHEN $2 = 'approved' THEN $3 END,
                    approved_by = CASE WHEN $2 = 'approved' THEN $4 END,
                    approved_at = CASE WHEN $2 = 'approved' THEN now() END,
                    rejected_by_issuer = CASE WHEN $2 = 'rejected' THEN $3 END,
                    rejected_by = CASE WHEN $2 = 'rejected' THEN $4 END,
                    rejected_at = CASE WHEN $2 = 'rejected' THEN now() END,
                    rejection_reason = $5, last_execution_id = $6, updated_at = now()
              WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(to)
        .bind(&actor.issuer)
        .bind(&actor.subject)
        .bind(reason)
        .bind(execution)
        .fetch_one(self.conn())
        .await?)
    }

    /// Deletes a draft entry (which the caller locked and checked).
    pub async fn delete_time_entry(&mut self, id: TimeEntryId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM time_entries WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(())
    }
}
