//! A workspace's alert rules, the state of each condition, and alerts.

use anchor_domain::{AlertId, RuleId};
use serde::Serialize;
use sqlx::{Row, postgres::PgRow};
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub metric: Option<String>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub duration_secs: i32,
    pub severity: String,
    pub enabled: bool,
}

/// A rule to create or the new state of one.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub metric: Option<&'a str>,
    pub comparison: Option<&'a str>,
    pub threshold: Option<f64>,
    pub duration_secs: i32,
    pub severity: &'a str,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    pub rule_id: String,
    pub agent_id: String,
    pub asset_id: Option<String>,
    pub subject: String,
    pub severity: String,
    pub state: String,
    pub summary: String,
    pub value: Option<f64>,
    pub flaps: i32,
    pub ticket_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

/// A condition's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Condition {
    pub breaching_since: Option<OffsetDateTime>,
    pub clear_since: Option<OffsetDateTime>,
}

const RULE_COLUMNS: &str = "id, name, kind, metric, comparison, threshold, duration_secs, severity, enabled";
const ALERT_COLUMNS: &str = "id, rule_id, agent_id, asset_id, subject, severity, state, summary, value, flaps, ticket_id, opened_at, resolved_at";

fn rule_from_row(row: &PgRow) -> Result<Rule, StoreError> {
    Ok(Rule {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        metric: row.try_get("metric")?,
        comparison: row.try_get("comparison")?,
        threshold: row.try_get("threshold")?,
        duration_secs: row.try_get("duration_secs")?,
        severity: row.try_get("severity")?,
        enabled: row.try_get("enabled")?,
    })
}

fn alert_from_row(row: &PgRow) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        agent_id: row.try_get("agent_id")?,
        asset_id: row.try_get("asset_id")?,
        subject: row.try_get("subject")?,
        severity: row.try_get("severity")?,
        state: row.try_get("state")?,
        summary: row.try_get("summary")?,
        value: row.try_get("value")?,
        flaps: row.try_get("flaps")?,
        ticket_id: row.try_get("ticket_id")?,
        opened_at: row.try_get("opened_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

impl WorkspaceTx {
    pub async fn rules(&mut self) -> Result<Vec<Rule>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id")))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    pub async fn insert_rule(&mut self, input: &RuleInput<'_>) -> Result<Rule, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alert_rules (id, name, kind, metric, comparison, threshold, duration_secs, severity, enabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RULE_COLUMNS}"
        )))
        .bind(RuleId::new().to_string())
        .bind(input.name)
        .bind(input.kind)
        .bind(input.metric)
        .bind(input.comparison)
        .bind(input.threshold)
        .bind(input.duration_secs)
        .bind(input.severity)
        .bind(input.enabled)
        .fetch_one(self.conn())
        .await?;
        rule_from_row(&row)
    }

    pub async fn update_rule(&mut self, id: &str, input: &RuleInput<'_>) -> Result<Option<Rule>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE alert_rules SET name = $2, kind = $3, metric = $4, comparison = $5, threshold = $6,
                    duration_secs = $7, severity = $8, enabled = $9
              WHERE id = $1 RETURNING {RULE_COLUMNS}"
        )))
        .bind(id)
        .bind(input.name)
        .bind(input.kind)
        .bind(input.metric)
        .bind(input.comparison)
        .bind(input.threshold)
        .bind(input.duration_secs)
        .bind(input.severity)
        .bind(input.enabled)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    pub async fn delete_rule(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// The (rule, subject) pairs of an agent where something is going on: a
    /// clock running or an alert open. Anything else that is clear now needs
    /// no write at all, which keeps ingest at one query for a healthy agent.
    pub async fn live_conditions(&mut self, agent: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rule_id, subject FROM alert_conditions
              WHERE agent_id = $1 AND (breaching_since IS NOT NULL OR clear_since IS NOT NULL)
             UNION
             SELECT rule_id, subject FROM alerts WHERE agent_id = $1 AND state = 'open'",
        )
        .bind(agent)
        .fetch_all(self.conn())
        .await?)
    }

    /// The condition's clocks, locked for this unit of work.
    pub async fn lock_condition(&mut self, rule: &str, agent: &str, subject: &str) -> Result<Condition, StoreError> {
        sqlx::query(
            "INSERT INTO alert_conditions (rule_id, agent_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .execute(self.conn())
        .await?;
        let row = sqlx::query(
            "SELECT breaching_since, clear_since FROM alert_conditions
              WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 FOR UPDATE",
        )
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .fetch_one(self.conn())
        .await?;
        Ok(Condition { breaching_since: row.try_get("breaching_since")?, clear_since: row.try_get("clear_since")? })
    }

    pub async fn set_condition(
        &mut self,
        rule: &str,
        agent: &str,
        subject: &str,
        c: Condition,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_conditions SET breaching_since = $4, clear_since = $5
              WHERE rule_id = $1 AND agent_id = $2 AND subject = $3",
        )
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .bind(c.breaching_since)
        .bind(c.clear_since)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The live alert of (rule, agent, subject), if any.
    pub async fn open_alert(&mut self, rule: &str, agent: &str, subject: &str) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 AND state = 'open'"
        )))
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// The alert of (rule, agent, subject) resolved within `seconds`, if any
    /// (a flap re-opens it rather than making a new one).
    pub async fn recently_resolved(
        &mut self,
        rule: &str,
        agent: &str,
        subject: &str,
        seconds: i64,
    ) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
              WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 AND state = 'resolved'
                AND resolved_at > now() - make_interval(secs => $4)
              ORDER BY resolved_at DESC LIMIT 1"
        )))
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .bind(seconds as f64)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_alert(
        &mut self,
        rule: &str,
        agent: &str,
        asset: Option<&str>,
        subject: &str,
        severity: &str,
        summary: &str,
        value: Option<f64>,
    ) -> Result<Alert, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alerts (id, rule_id, agent_id, asset_id, subject, severity, state, summary, value)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) RETURNING {ALERT_COLUMNS}"
        )))
        .bind(AlertId::new().to_string())
        .bind(rule)
        .bind(agent)
        .bind(asset)
        .bind(subject)
        .bind(severity)
        .bind(summary)
        .bind(value)
        .fetch_one(self.conn())
        .await?;
        alert_from_row(&row)
    }

    /// Re-opens a flapping alert (counted).
    pub async fn reopen_alert(&mut self, id: &str, value: Option<f64>) -> Result<Alert, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET state = 'open', resolved_at = NULL, flaps = flaps + 1, value = $2, updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(value)
        .fetch_one(self.conn())
        .await?;
        alert_from_row(&row)
    }

    pub async fn touch_alert(&mut self, id: &str, value: Option<f64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET value = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(value)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn resolve_alert(&mut self, id: &str, value: Option<f64>) -> Result<Alert, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET state = 'resolved', resolved_at = now(), value = coalesce($2, value), updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(value)
        .fetch_one(self.conn())
        .await?;
        alert_from_row(&row)
    }

    pub async fn alert(&mut self, id: &str) -> Result<Option<Alert>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// Newest first, optionally only in `state`.
    pub async fn alerts(
        &mut self,
        state: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        )))
        .bind(state)
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// The open alerts of one agent.
    pub async fn open_alerts_of_agent(&mut self, agent: &str) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE agent_id = $1 AND state = 'open' ORDER BY id"
        )))
        .bind(agent)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// The alert, locked until this unit of work ends: automation decides
    /// about one alert at a time.
    pub async fn lock_alert(&mut self, id: &str) -> Result<Option<Alert>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 FOR UPDATE")))
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// The command of an unfinished execution accepted for this alert, if any.
    pub async fn alert_command_in_flight(&mut self, alert: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT command FROM executions
              WHERE input ? 'alert_id' AND input->>'alert_id' = $1 AND status IN ('queued', 'running') LIMIT 1",
        )
        .bind(alert)
        .fetch_optional(self.conn())
        .await?)
    }

    /// When the agent's last batch arrived.
    pub async fn last_batch_at(&mut self, agent: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(sqlx::query_scalar("SELECT max(received_at) FROM telemetry_ingest_batches WHERE agent_id = $1")
            .bind(agent)
            .fetch_one(self.conn())
            .await?)
    }

    /// Records the ticket opened for an alert.
    pub async fn link_alert_ticket(&mut self, alert: &str, ticket: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET ticket_id = $2 WHERE id = $1")
            .bind(alert)
            .bind(ticket)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The asset of an agent.
    pub async fn agent_asset(&mut self, agent: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM assets WHERE agent_id = $1")
            .bind(agent)
            .fetch_optional(self.conn())
            .await?)
    }
}
