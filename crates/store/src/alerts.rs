//! A workspace's alert rules, the state of each condition, and alerts.

use anchor_domain::{AgentId, AlertId, AlertState, AssetId, Comparison, RuleId, RuleKind, Severity, TicketId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// An alert rule. The API answers with it and its change records show it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    pub kind: RuleKind,
    /// For `metric` rules: the metric's name.
    pub metric: Option<String>,
    pub comparison: Option<Comparison>,
    pub threshold: Option<f64>,
    pub duration_secs: i32,
    pub severity: Severity,
    pub enabled: bool,
}

/// A rule to create or the new state of one.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub name: &'a str,
    pub kind: RuleKind,
    pub metric: Option<&'a str>,
    pub comparison: Option<Comparison>,
    pub threshold: Option<f64>,
    pub duration_secs: i32,
    pub severity: Severity,
    pub enabled: bool,
}

/// An alert: the API answers with it and the `alert.*` events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct Alert {
    pub id: AlertId,
    pub rule_id: RuleId,
    pub agent_id: AgentId,
    pub asset_id: Option<AssetId>,
    pub subject: String,
    /// The rule's severity when the alert opened.
    pub severity: Severity,
    pub state: AlertState,
    pub summary: String,
    pub value: Option<f64>,
    pub flaps: i32,
    pub ticket_id: Option<TicketId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub resolved_at: Option<OffsetDateTime>,
    /// When someone acknowledged it (took it on).
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::executions::Actor>")]
    pub acknowledged_by: Option<sqlx::types::Json<crate::executions::Actor>>,
    /// Held from queues and escalation until then.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub snoozed_until: Option<OffsetDateTime>,
    /// When it was escalated: critical, and nobody acknowledged it in time.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub escalated_at: Option<OffsetDateTime>,
}

/// A condition's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct Condition {
    pub breaching_since: Option<OffsetDateTime>,
    pub clear_since: Option<OffsetDateTime>,
}

const RULE_COLUMNS: &str = "id, name, kind, metric, comparison, threshold, duration_secs, severity, enabled";
const ALERT_COLUMNS: &str = "id, rule_id, agent_id, asset_id, subject, severity, state, summary, value, flaps, ticket_id, \
     opened_at, resolved_at, acknowledged_at, acknowledged_by, snoozed_until, escalated_at";

/// The end of the latest maintenance window over asset `$4` (or its site)
/// under way now: an alert that opens then is held until it.
const MAINTENANCE_END: &str = "SELECT max(w.ends_at) FROM maintenance_windows w
     WHERE w.starts_at <= now() AND w.ends_at > now()
       AND (w.asset_id = $4 OR w.site_id = (SELECT s.site_id FROM assets s WHERE s.id = $4))";

impl WorkspaceTx {
    pub async fn rules(&mut self) -> Result<Vec<Rule>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id")))
            .fetch_all(self.conn())
            .await?)
    }

    pub async fn insert_rule(&mut self, input: &RuleInput<'_>) -> Result<Rule, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alert_rules (id, name, kind, metric, comparison, threshold, duration_secs, severity, enabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RULE_COLUMNS}"
        )))
        .bind(RuleId::new())
        .bind(input.name)
        .bind(input.kind)
        .bind(input.metric)
        .bind(input.comparison)
        .bind(input.threshold)
        .bind(input.duration_secs)
        .bind(input.severity)
        .bind(input.enabled)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn update_rule(&mut self, id: RuleId, input: &RuleInput<'_>) -> Result<Option<Rule>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
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
        .await?)
    }

    pub async fn delete_rule(&mut self, id: RuleId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// The (rule, subject) pairs of an agent where something is going on: a
    /// clock running or an alert open. Anything else that is clear now needs
    /// no write at all, which keeps ingest at one query for a healthy agent.
    pub async fn live_conditions(&mut self, agent: AgentId) -> Result<Vec<(RuleId, String)>, StoreError> {
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
    pub async fn lock_condition(
        &mut self,
        rule: RuleId,
        agent: AgentId,
        subject: &str,
    ) -> Result<Condition, StoreError> {
        sqlx::query(
            "INSERT INTO alert_conditions (rule_id, agent_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .execute(self.conn())
        .await?;
        Ok(sqlx::query_as(
            "SELECT breaching_since, clear_since FROM alert_conditions
              WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 FOR UPDATE",
        )
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn set_condition(
        &mut self,
        rule: RuleId,
        agent: AgentId,
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
    pub async fn open_alert(
        &mut self,
        rule: RuleId,
        agent: AgentId,
        subject: &str,
    ) -> Result<Option<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 AND state = 'open'"
        )))
        .bind(rule)
        .bind(agent)
        .bind(subject)
        .fetch_optional(self.conn())
        .await?)
    }

    /// The alert of (rule, agent, subject) resolved within `seconds`, if any
    /// (a flap re-opens it rather than making a new one).
    pub async fn recently_resolved(
        &mut self,
        rule: RuleId,
        agent: AgentId,
        subject: &str,
        seconds: i64,
    ) -> Result<Option<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
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
        .await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_alert(
        &mut self,
        rule: RuleId,
        agent: AgentId,
        asset: Option<AssetId>,
        subject: &str,
        severity: Severity,
        summary: &str,
        value: Option<f64>,
    ) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alerts (id, rule_id, agent_id, asset_id, subject, severity, state, summary, value, snoozed_until)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, ({MAINTENANCE_END})) RETURNING {ALERT_COLUMNS}"
        )))
        .bind(AlertId::new())
        .bind(rule)
        .bind(agent)
        .bind(asset)
        .bind(subject)
        .bind(severity)
        .bind(summary)
        .bind(value)
        .fetch_one(self.conn())
        .await?)
    }

    /// Re-opens a flapping alert (counted).
    pub async fn reopen_alert(&mut self, id: AlertId, value: Option<f64>) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET state = 'open', resolved_at = NULL, flaps = flaps + 1, value = $2, updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(value)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn touch_alert(&mut self, id: AlertId, value: Option<f64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET value = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(value)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn resolve_alert(&mut self, id: AlertId, value: Option<f64>) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET state = 'resolved', resolved_at = now(), value = coalesce($2, value), updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(value)
        .fetch_one(self.conn())
        .await?)
    }

    /// Marks the alert escalated (now).
    pub async fn mark_alert_escalated(&mut self, id: AlertId) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET escalated_at = now(), updated_at = now() WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn alert(&mut self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, optionally only in `state`, after the cursor `before`.
    pub async fn alerts(
        &mut self,
        state: Option<AlertState>,
        before: Option<AlertId>,
        limit: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        )))
        .bind(state)
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// An asset's alerts, newest first, at most `limit`.
    pub async fn alerts_of_asset(&mut self, asset: AssetId, limit: i64) -> Result<Vec<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE asset_id = $1 ORDER BY opened_at DESC, id DESC LIMIT $2"
        )))
        .bind(asset)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// The open alerts of one agent.
    pub async fn open_alerts_of_agent(&mut self, agent: AgentId) -> Result<Vec<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE agent_id = $1 AND state = 'open' ORDER BY id"
        )))
        .bind(agent)
        .fetch_all(self.conn())
        .await?)
    }

    /// The alert, locked until this unit of work ends: automation decides
    /// about one alert at a time.
    pub async fn lock_alert(&mut self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The command of an unfinished execution accepted for this alert, if any.
    pub async fn alert_command_in_flight(&mut self, alert: AlertId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT command FROM executions
              WHERE input ? 'alert_id' AND input->>'alert_id' = $1 AND status IN ('queued', 'running') LIMIT 1",
        )
        .bind(alert)
        .fetch_optional(self.conn())
        .await?)
    }

    /// When the agent's last batch arrived.
    pub async fn last_batch_at(&mut self, agent: AgentId) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(sqlx::query_scalar("SELECT max(received_at) FROM telemetry_ingest_batches WHERE agent_id = $1")
            .bind(agent)
            .fetch_one(self.conn())
            .await?)
    }

    /// The open ticket of another open alert of `agent`'s machine (the
    /// oldest such alert's), if any.
    pub async fn open_ticket_of_machine(
        &mut self,
        agent: AgentId,
        besides: AlertId,
    ) -> Result<Option<TicketId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT a.ticket_id FROM alerts a JOIN tickets t ON t.id = a.ticket_id
              WHERE a.agent_id = $1 AND a.id <> $2 AND a.state = 'open'
                AND t.status NOT IN ('resolved', 'closed') AND t.merged_into IS NULL
              ORDER BY a.opened_at, a.id LIMIT 1",
        )
        .bind(agent)
        .bind(besides)
        .fetch_optional(self.conn())
        .await?)
    }

    /// Serialises automation's decisions about one machine's alerts until
    /// this unit of work ends.
    pub async fn lock_machine_alerts(&mut self, agent: AgentId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('anchor.alerts:' || $1, 0))")
            .bind(agent)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Whether a ticket is being opened for another open alert of `agent`.
    pub async fn machine_ticket_in_flight(&mut self, agent: AgentId, besides: AlertId) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM executions e JOIN alerts a ON a.id = e.input->>'alert_id'
                             WHERE a.agent_id = $1 AND a.id <> $2 AND a.state = 'open'
                               AND e.command = 'ticket.create' AND e.status IN ('queued', 'running'))",
        )
        .bind(agent)
        .bind(besides)
        .fetch_one(self.conn())
        .await?)
    }

    /// How many open alerts besides `besides` are on `ticket`.
    pub async fn other_open_alerts_on_ticket(&mut self, ticket: TicketId, besides: AlertId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM alerts WHERE ticket_id = $1 AND id <> $2 AND state = 'open'")
            .bind(ticket)
            .bind(besides)
            .fetch_one(self.conn())
            .await?)
    }

    /// Records the ticket opened for an alert.
    pub async fn link_alert_ticket(&mut self, alert: AlertId, ticket: TicketId) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET ticket_id = $2 WHERE id = $1")
            .bind(alert)
            .bind(ticket)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records that `who` acknowledged the alert (now).
    pub async fn acknowledge_alert(
        &mut self,
        id: AlertId,
        who: &crate::executions::Actor,
    ) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2, updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(sqlx::types::Json(who))
        .fetch_one(self.conn())
        .await?)
    }

    /// Snoozes the alert for `minutes` from now (0: no longer snoozed).
    pub async fn snooze_alert(&mut self, id: AlertId, minutes: i32) -> Result<Alert, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alerts SET snoozed_until = CASE WHEN $2 = 0 THEN NULL ELSE now() + make_interval(mins => $2) END,
                    updated_at = now()
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"
        )))
        .bind(id)
        .bind(minutes)
        .fetch_one(self.conn())
        .await?)
    }

    /// The asset of an agent.
    pub async fn agent_asset(&mut self, agent: AgentId) -> Result<Option<AssetId>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM assets WHERE agent_id = $1")
            .bind(agent)
            .fetch_optional(self.conn())
            .await?)
    }
}
