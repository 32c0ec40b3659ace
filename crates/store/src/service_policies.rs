//! A workspace's service policies: business calendars and SLA policies.
//! Configuration, so the gateway writes them directly (with a change
//! record). Both are versioned: an edit adds a version and keeps the ones
//! before it, since an SLA clock names the versions it was planned with.
//! Definitions are kept as the JSON of `anchor_sla::Calendar` and
//! `anchor_sla::SlaPolicy`, whose `version` member the store sets.

use anchor_domain::{CalendarId, SlaPolicyId};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// A calendar at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CalendarRecord {
    pub id: CalendarId,
    pub name: String,
    pub version: i32,
    /// `anchor_sla::Calendar` as JSON.
    pub definition: Json<Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An SLA policy at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PolicyRecord {
    pub id: SlaPolicyId,
    pub name: String,
    pub calendar_id: CalendarId,
    pub version: i32,
    pub is_default: bool,
    /// `anchor_sla::SlaPolicy` as JSON.
    pub definition: Json<Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One stored version of a calendar or policy.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VersionRecord {
    pub version: i32,
    pub definition: Json<Value>,
    pub created_at: OffsetDateTime,
}

/// How an edit went.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit<T> {
    Done(T),
    Missing,
    /// The caller edited another version than the current one (`If-Match`).
    Stale {
        current: i32,
    },
}

/// How a delete went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Missing,
    /// A calendar that policies use, or the default policy.
    InUse,
    /// Tickets' clock logs name it: their deadlines are recomputed from it.
    UsedByTickets,
    /// Queues, sites or contacts give it to their tickets.
    UsedByQueues,
}

const CALENDAR: &str = "SELECT c.id, c.name, c.version, v.definition, c.created_at, c.updated_at
      FROM business_calendars c
      JOIN business_calendar_versions v ON v.calendar_id = c.id AND v.version = c.version";
const POLICY: &str =
    "SELECT p.id, p.name, p.calendar_id, p.version, p.is_default, v.definition, p.created_at, p.updated_at
      FROM sla_policies p
      JOIN sla_policy_versions v ON v.policy_id = p.id AND v.version = p.version";

impl WorkspaceTx {
    pub async fn calendars(&mut self) -> Result<Vec<CalendarRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{CALENDAR} ORDER BY c.name"))).fetch_all(self.conn()).await?)
    }

    pub async fn calendar(&mut self, id: CalendarId) -> Result<Option<CalendarRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{CALENDAR} WHERE c.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Every version of a calendar, newest first (empty: no such calendar).
    pub async fn calendar_versions(&mut self, id: CalendarId) -> Result<Vec<VersionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT version, definition, created_at FROM business_calendar_versions
              WHERE calendar_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    /// A new calendar at version 1.
    pub async fn insert_calendar(&mut self, name: &str, definition: &Value) -> Result<CalendarRecord, StoreError> {
        let id = CalendarId::new();
        sqlx::query("INSERT INTO business_calendars (id, name, version) VALUES ($1, $2, 1)")
            .bind(id)
            .bind(name)
            .execute(self.conn())
            .await?;
        self.add_calendar_version(id, 1, definition).await?;
        Ok(self.calendar(id).await?.expect("inserted"))
    }

    /// Renames the calendar and adds its next version, if `expected` (when
    /// given) is still its current version.
    pub async fn update_calendar(
        &mut self,
        id: CalendarId,
        expected: Option<i32>,
        name: &str,
        definition: &Value,
    ) -> Result<Edit<CalendarRecord>, StoreError> {
        let current: Option<i32> =
            sqlx::query_scalar("SELECT version FROM business_calendars WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        let Some(current) = current else { return Ok(Edit::Missing) };
        if expected.is_some_and(|expected| expected != current) {
            return Ok(Edit::Stale { current });
        }
        let next = current + 1;
        sqlx::query("UPDATE business_calendars SET name = $2, version = $3, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(next)
            .execute(self.conn())
            .await?;
        self.add_calendar_version(id, next, definition).await?;
        Ok(Edit::Done(self.calendar(id).await?.expect("updated")))
    }

    async fn add_calendar_version(
        &mut self,
        id: CalendarId,
        version: i32,
        definition: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO business_calendar_versions (calendar_id, version, definition)
             VALUES ($1, $2, jsonb_set($3, '{version}', to_jsonb($2)))",
        )
        .bind(id)
        .bind(version)
        .bind(Json(definition))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes a calendar no policy uses.
    pub async fn delete_calendar(&mut self, id: CalendarId) -> Result<Removal, StoreError> {
        let used: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sla_policies WHERE calendar_id = $1)")
            .bind(id)
            .fetch_one(self.conn())
            .await?;
        if used {
            return Ok(Removal::InUse);
        }
        if self.named_by_clock_logs("calendar", &id.to_string()).await? {
            return Ok(Removal::UsedByTickets);
        }
        let done = sqlx::query("DELETE FROM business_calendars WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(if done.rows_affected() == 1 { Removal::Deleted } else { Removal::Missing })
    }

    /// Whether a ticket's clock log names the calendar or policy `id`
    /// (`what`: `calendar` or `policy`). Rare (a delete), so a scan.
    async fn named_by_clock_logs(&mut self, what: &str, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ticket_clock_events WHERE event @> jsonb_build_object($1::text, jsonb_build_object('id', $2::text)))",
        )
        .bind(what)
        .bind(id)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn sla_policies(&mut self) -> Result<Vec<PolicyRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{POLICY} ORDER BY p.name"))).fetch_all(self.conn()).await?)
    }

    pub async fn sla_policy(&mut self, id: SlaPolicyId) -> Result<Option<PolicyRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{POLICY} WHERE p.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The workspace's default policy.
    pub async fn default_sla_policy(&mut self) -> Result<Option<PolicyRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{POLICY} WHERE p.is_default")))
            .fetch_optional(self.conn())
            .await?)
    }

    /// Every version of a policy, newest first (empty: no such policy).
    pub async fn sla_policy_versions(&mut self, id: SlaPolicyId) -> Result<Vec<VersionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT version, definition, created_at FROM sla_policy_versions WHERE policy_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    /// A new policy at version 1; `is_default` takes the default over from
    /// the policy that had it.
    pub async fn insert_sla_policy(
        &mut self,
        name: &str,
        calendar: CalendarId,
        is_default: bool,
        definition: &Value,
    ) -> Result<PolicyRecord, StoreError> {
        let id = SlaPolicyId::new();
        if is_default {
            self.clear_default_policy(id).await?;
        }
        sqlx::query("INSERT INTO sla_policies (id, name, calendar_id, version, is_default) VALUES ($1, $2, $3, 1, $4)")
            .bind(id)
            .bind(name)
            .bind(calendar)
            .bind(is_default)
            .execute(self.conn())
            .await?;
        self.add_policy_version(id, 1, calendar, definition).await?;
        Ok(self.sla_policy(id).await?.expect("inserted"))
    }

    /// Changes the policy and adds its next version, if `expected` (when
    /// given) is still its current version. The default moves only to a
    /// policy: `is_default = false` on the default is refused by the caller.
    pub async fn update_sla_policy(
        &mut self,
        id: SlaPolicyId,
        expected: Option<i32>,
        name: &str,
        calendar: CalendarId,
        is_default: bool,
        definition: &Value,
    ) -> Result<Edit<PolicyRecord>, StoreError> {
        let current: Option<i32> = sqlx::query_scalar("SELECT version FROM sla_policies WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        let Some(current) = current else { return Ok(Edit::Missing) };
        if expected.is_some_and(|expected| expected != current) {
            return Ok(Edit::Stale { current });
        }
        if is_default {
            self.clear_default_policy(id).await?;
        }
        let next = current + 1;
        sqlx::query(
            "UPDATE sla_policies SET name = $2, calendar_id = $3, is_default = $4, version = $5, updated_at = now()
              WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(calendar)
        .bind(is_default)
        .bind(next)
        .execute(self.conn())
        .await?;
        self.add_policy_version(id, next, calendar, definition).await?;
        Ok(Edit::Done(self.sla_policy(id).await?.expect("updated")))
    }

    async fn clear_default_policy(&mut self, except: SlaPolicyId) -> Result<(), StoreError> {
        sqlx::query("UPDATE sla_policies SET is_default = false, updated_at = now() WHERE is_default AND id <> $1")
            .bind(except)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    async fn add_policy_version(
        &mut self,
        id: SlaPolicyId,
        version: i32,
        calendar: CalendarId,
        definition: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sla_policy_versions (policy_id, version, calendar_id, definition)
             VALUES ($1, $2, $3, jsonb_set($4, '{version}', to_jsonb($2)))",
        )
        .bind(id)
        .bind(version)
        .bind(calendar)
        .bind(Json(definition))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes a policy that is not the default.
    pub async fn delete_sla_policy(&mut self, id: SlaPolicyId) -> Result<Removal, StoreError> {
        let is_default: Option<bool> =
            sqlx::query_scalar("SELECT is_default FROM sla_policies WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        match is_default {
            None => Ok(Removal::Missing),
            Some(true) => Ok(Removal::InUse),
            Some(false) if self.named_by_clock_logs("policy", &id.to_string()).await? => Ok(Removal::UsedByTickets),
            Some(false)
                if sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM queues WHERE sla_policy_id = $1)
                         OR EXISTS (SELECT 1 FROM sites WHERE sla_policy_id = $1)
                         OR EXISTS (SELECT 1 FROM contacts WHERE sla_policy_id = $1)",
                )
                .bind(id)
                .fetch_one(self.conn())
                .await? =>
            {
                Ok(Removal::UsedByQueues)
            }
            Some(false) => {
                sqlx::query("DELETE FROM sla_policies WHERE id = $1").bind(id).execute(self.conn()).await?;
                Ok(Removal::Deleted)
            }
        }
    }
}
