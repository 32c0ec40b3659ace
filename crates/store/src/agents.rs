//! The edge plane: enrollment tokens and agents (installation tables, since
//! an agent is identified before its workspace is known), and what agents
//! report into their workspace (assets, batches, samples, check results).

use anchor_domain::{AgentId, AssetId, BatchId, EnrollmentTokenId, Name};
use time::OffsetDateTime;

use crate::{Database, StoreError, Workspace, WorkspaceTx};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnrollmentToken {
    pub id: EnrollmentTokenId,
    pub label: String,
    pub expires_at: OffsetDateTime,
    pub max_uses: i32,
    pub uses: i32,
    /// Agents enrolling with it may replace a machine's active agent.
    pub replace_agents: bool,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A token that would be accepted now: its workspace and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveToken {
    pub workspace_id: i64,
    pub replace_agents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Agent {
    pub id: AgentId,
    pub workspace_id: i64,
    /// The device key, `z6Mk...` multibase.
    pub public_key: String,
    pub hostname: String,
    pub enrolled_at: OffsetDateTime,
    pub last_seen_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Agent {
    /// How it is now: `revoked`, `online`, `overdue` (silent for half of
    /// `offline_after`) or `offline`.
    pub fn status(&self, now: OffsetDateTime, offline_after: time::Duration) -> &'static str {
        match (self.revoked_at, self.last_seen_at) {
            (Some(_), _) => "revoked",
            (None, Some(seen)) if now - seen < offline_after / 2 => "online",
            (None, Some(seen)) if now - seen < offline_after => "overdue",
            _ => "offline",
        }
    }
}

/// How long an agent is silent before it is offline: the enabled
/// `agent_offline` rule's duration, else 4 minutes.
pub fn offline_after(rules: &[crate::alerts::Rule]) -> time::Duration {
    rules
        .iter()
        .find(|r| r.kind == anchor_domain::RuleKind::AgentOffline && r.enabled)
        .map_or(time::Duration::minutes(4), |r| time::Duration::seconds(i64::from(r.duration_secs.max(1))))
}

/// A batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedBatch {
    pub id: BatchId,
    /// First seen now (else a resent batch, stored before).
    pub new: bool,
    /// Indexes of the batch's series the agent has not reported before.
    pub unknown_series: Vec<usize>,
}

/// A machine's asset belongs to an agent the enrollment may not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTaken;

/// Why an enrollment was refused (all look alike to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    /// Unknown, revoked, expired or used up.
    TokenInvalid,
    /// This device key is enrolled already.
    KeyTaken,
}

/// A metric sample.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Sample {
    pub at: OffsetDateTime,
    pub name: String,
    pub value: f64,
    pub labels: Option<serde_json::Value>,
}

/// A metric sample to store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewSample<'a> {
    pub at: OffsetDateTime,
    pub name: &'a str,
    pub value: f64,
    /// A JSON object's text.
    pub labels: Option<&'a str>,
}

/// A check result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult<'a> {
    pub at: OffsetDateTime,
    pub name: &'a str,
    pub status: &'a str,
    pub output: &'a str,
}

/// What a series is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    Metric,
    Check,
}

impl SeriesKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metric => "metric",
            Self::Check => "check",
        }
    }
}

/// A series an agent reports: a metric's name and labels (a JSON object's
/// text, `{}` for none), or a check's name (labels `{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey<'a> {
    pub kind: SeriesKind,
    pub name: &'a str,
    pub labels: &'a str,
}

fn decode(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

const TOKEN_COLUMNS: &str = "id, label, expires_at, max_uses, uses, replace_agents, revoked_at, created_at";
const AGENT_COLUMNS: &str = "id, workspace_id, public_key, hostname, enrolled_at, last_seen_at, revoked_at";

impl Database {
    pub async fn create_enrollment_token(
        &self,
        workspace: &Workspace,
        token_sha256: &[u8],
        label: &str,
        expires_at: OffsetDateTime,
        max_uses: i32,
        replace_agents: bool,
    ) -> Result<EnrollmentToken, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO platform.enrollment_tokens (id, workspace_id, token_sha256, label, expires_at, max_uses, replace_agents)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(EnrollmentTokenId::new())
        .bind(workspace.id())
        .bind(token_sha256)
        .bind(label)
        .bind(expires_at)
        .bind(max_uses)
        .bind(replace_agents)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn enrollment_tokens(&self, workspace: &Workspace) -> Result<Vec<EnrollmentToken>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM platform.enrollment_tokens WHERE workspace_id = $1 ORDER BY id"
        )))
        .bind(workspace.id())
        .fetch_all(self.pool())
        .await?)
    }

    /// Replaces a live token's secret (the old value stops working).
    pub async fn rotate_enrollment_token(
        &self,
        workspace: &Workspace,
        id: EnrollmentTokenId,
        token_sha256: &[u8],
    ) -> Result<Option<EnrollmentToken>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE platform.enrollment_tokens SET token_sha256 = $3
              WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(workspace.id())
        .bind(id)
        .bind(token_sha256)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn revoke_enrollment_token(
        &self,
        workspace: &Workspace,
        id: EnrollmentTokenId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE platform.enrollment_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace.id())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The enrollment token, if it would be accepted now (enrollment decides
    /// again when it spends a use): the token is checked before anything
    /// else an unauthenticated caller sends.
    pub async fn live_enrollment_token(&self, token_sha256: &[u8]) -> Result<Option<LiveToken>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT workspace_id, replace_agents FROM platform.enrollment_tokens
              WHERE token_sha256 = $1 AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses",
        )
        .bind(token_sha256)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Spends one use of the token and registers the agent, in one
    /// transaction. Returns the agent and its workspace.
    pub async fn enroll_agent(
        &self,
        token_sha256: &[u8],
        public_key: &str,
        hostname: &str,
    ) -> Result<Result<(Agent, Workspace), EnrollRefusal>, StoreError> {
        let mut tx = self.begin().await?;
        let token: Option<(EnrollmentTokenId, i64)> = sqlx::query_as(
            "SELECT id, workspace_id FROM platform.enrollment_tokens
              WHERE token_sha256 = $1 AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses
              FOR UPDATE",
        )
        .bind(token_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((token_id, workspace_id)) = token else { return Ok(Err(EnrollRefusal::TokenInvalid)) };
        sqlx::query("UPDATE platform.enrollment_tokens SET uses = uses + 1 WHERE id = $1")
            .bind(token_id)
            .execute(&mut *tx)
            .await?;
        let agent: Option<Agent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO platform.agents (id, workspace_id, public_key, hostname, token_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (public_key) DO NOTHING RETURNING {AGENT_COLUMNS}"
        )))
        .bind(AgentId::new())
        .bind(workspace_id)
        .bind(public_key)
        .bind(hostname)
        .bind(token_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(agent) = agent else {
            // The same key again with a token of its own workspace: an
            // enrollment whose answer was lost, retried. Answer it again
            // (spending no use); any other reuse of a key is refused.
            let existing: Option<Agent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {AGENT_COLUMNS} FROM platform.agents
                  WHERE public_key = $1 AND workspace_id = $2 AND revoked_at IS NULL"
            )))
            .bind(public_key)
            .bind(workspace_id)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            let Some(existing) = existing else { return Ok(Err(EnrollRefusal::KeyTaken)) };
            let workspace =
                self.workspace_by_id(workspace_id).await?.ok_or_else(|| decode("workspace vanished".into()))?;
            return Ok(Ok((existing, workspace)));
        };
        tx.commit().await?;
        let workspace = self.workspace_by_id(workspace_id).await?.ok_or_else(|| decode("workspace vanished".into()))?;
        Ok(Ok((agent, workspace)))
    }

    pub async fn agent(&self, id: AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM platform.agents WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn agents(&self, workspace: &Workspace) -> Result<Vec<Agent>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM platform.agents WHERE workspace_id = $1 ORDER BY id"
        )))
        .bind(workspace.id())
        .fetch_all(self.pool())
        .await?)
    }

    /// One page of the workspace's agents, by id, after `after`.
    pub async fn agents_page(
        &self,
        workspace: &Workspace,
        after: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<Agent>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM platform.agents
              WHERE workspace_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )))
        .bind(workspace.id())
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Unrevoked agents that have not reported for `seconds`.
    pub async fn silent_agents(&self, seconds: i64) -> Result<Vec<Agent>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM platform.agents
              WHERE revoked_at IS NULL AND coalesce(last_seen_at, enrolled_at) < now() - make_interval(secs => $1)
              ORDER BY workspace_id, id"
        )))
        .bind(seconds as f64)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn touch_agent(&self, id: AgentId) -> Result<(), StoreError> {
        sqlx::query("UPDATE platform.agents SET last_seen_at = now() WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn revoke_agent(&self, workspace: &Workspace, id: AgentId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE platform.agents SET revoked_at = coalesce(revoked_at, now()) WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace.id())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Days of telemetry kept: metric samples, check results and the batch
/// records (a batch older than this, resent, would be stored again; no
/// agent keeps an unacknowledged batch that long); a series silent this
/// long is forgotten (and no longer counts toward its agent's limit).
pub const SAMPLE_RETENTION_DAYS: i64 = 30;

/// What one pass of telemetry housekeeping did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryUpkeep {
    pub partitions_created: u64,
    pub partitions_dropped: u64,
    /// Check results, batch records and series past retention.
    pub rows_deleted: u64,
    /// Workspaces whose upkeep failed (logged; the others were done).
    pub failed: u64,
}

impl Database {
    /// Telemetry housekeeping of every workspace: `metric_samples` kept
    /// partitioned by day (the partitions of the next `days_ahead` days
    /// created; today's rows, before its partition exists, live in the
    /// default partition), day partitions past retention dropped, expired
    /// rows deleted from the default partition, from `check_results` and
    /// from `telemetry_ingest_batches`, and silent series forgotten. One
    /// workspace's failure is logged and counted; the others are still done.
    pub async fn maintain_telemetry(&self, days_ahead: i64) -> Result<TelemetryUpkeep, StoreError> {
        let mut upkeep = TelemetryUpkeep::default();
        let today = OffsetDateTime::now_utc().date();
        for workspace in self.workspaces().await? {
            if let Err(e) = self.maintain_workspace_telemetry(&workspace, today, days_ahead, &mut upkeep).await {
                tracing::error!(workspace = %workspace.slug(), error = %e, "telemetry upkeep failed for a workspace");
                upkeep.failed += 1;
            }
        }
        Ok(upkeep)
    }

    async fn maintain_workspace_telemetry(
        &self,
        workspace: &Workspace,
        today: time::Date,
        days_ahead: i64,
        upkeep: &mut TelemetryUpkeep,
    ) -> Result<(), StoreError> {
        let schema = crate::migrate::quote_ident(workspace.schema_name());
        for offset in 1..=days_ahead {
            let day = today + time::Duration::days(offset);
            let next = day + time::Duration::days(1);
            let name = format!("metric_samples_p{}", day.to_string().replace('-', ""));
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(format!("{schema}.{name}"))
                .fetch_one(self.pool())
                .await?;
            if !exists {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE IF NOT EXISTS {schema}.{name} PARTITION OF {schema}.metric_samples
                       FOR VALUES FROM ('{day}') TO ('{next}')"
                )))
                .execute(self.pool())
                .await?;
                upkeep.partitions_created += 1;
            }
        }
        let cutoff = today - time::Duration::days(SAMPLE_RETENTION_DAYS);
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace n ON n.oid = p.relnamespace
              WHERE n.nspname = $1 AND p.relname = 'metric_samples' AND c.relname ~ '^metric_samples_p[0-9]{8}$'
                AND c.relname < 'metric_samples_p' || $2",
        )
        .bind(workspace.schema_name())
        .bind(cutoff.to_string().replace('-', ""))
        .fetch_all(self.pool())
        .await?;
        for name in old {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {schema}.{}", crate::migrate::quote_ident(&name))))
                .execute(self.pool())
                .await?;
            upkeep.partitions_dropped += 1;
        }
        let cutoff = cutoff.midnight().assume_utc();
        for (table, column) in [
            ("metric_samples_default", "at"),
            ("check_results", "at"),
            ("telemetry_ingest_batches", "received_at"),
            ("telemetry_series", "last_seen_at"),
        ] {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {schema}.{table} WHERE {column} < $1")))
                .bind(cutoff)
                .execute(self.pool())
                .await?;
            if table != "metric_samples_default" {
                upkeep.rows_deleted += done.rows_affected();
            }
        }
        Ok(())
    }
}

/// What a new machine's asset is called: its host name as people read it
/// (one line, at most 200 characters), else its id.
fn asset_name(hostname: &str, id: AssetId) -> String {
    let shown: String = hostname.chars().filter(|c| !c.is_control()).take(Name::MAX_CHARS).collect();
    Name::parse(&shown).map_or_else(|_| id.to_string(), |name| name.as_str().to_owned())
}

impl WorkspaceTx {
    /// The agent whose machine has `machine_id` (`facts.machine_id` of its
    /// asset), if any.
    pub async fn machine_agent(&mut self, machine_id: &str) -> Result<Option<AgentId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT agent_id FROM assets WHERE facts ? 'machine_id' AND facts->>'machine_id' = $1
              ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(machine_id)
        .fetch_optional(self.conn())
        .await?
        .flatten())
    }

    /// The machine's asset for a newly enrolled `agent`. When the facts name
    /// a machine enrolled before (same `facts.machine_id`: a reinstall), its
    /// asset moves to the new agent only if that machine's agent is
    /// `replaceable` (the caller decided the old agent may go: revoked
    /// already, or the enrollment allows replacing it), and the agent it had
    /// is returned so it can be retired; a machine whose agent is another
    /// (one enrolled meanwhile) is [`MachineTaken`]. Otherwise the agent's
    /// own asset, created or updated.
    pub async fn upsert_agent_asset(
        &mut self,
        agent: AgentId,
        hostname: &str,
        os: &str,
        facts: &serde_json::Value,
        replaceable: Option<AgentId>,
    ) -> Result<Result<(AssetId, Option<AgentId>), MachineTaken>, StoreError> {
        if let Some(machine_id) = facts["machine_id"].as_str().filter(|m| !m.is_empty()) {
            let previous: Option<(AssetId, Option<AgentId>)> = sqlx::query_as(
                "SELECT id, agent_id FROM assets
                  WHERE facts ? 'machine_id' AND facts->>'machine_id' = $1 AND agent_id IS DISTINCT FROM $2
                  ORDER BY updated_at DESC LIMIT 1 FOR UPDATE",
            )
            .bind(machine_id)
            .bind(agent)
            .fetch_optional(self.conn())
            .await?;
            if let Some((asset, previous_agent)) = previous {
                if previous_agent.is_some() && previous_agent != replaceable {
                    return Ok(Err(MachineTaken));
                }
                sqlx::query(
                    "UPDATE assets SET agent_id = $2, hostname = $3, os = $4, facts = $5, updated_at = now()
                      WHERE id = $1",
                )
                .bind(asset)
                .bind(agent)
                .bind(hostname)
                .bind(os)
                .bind(facts)
                .execute(self.conn())
                .await?;
                return Ok(Ok((asset, previous_agent)));
            }
        }
        let id = AssetId::new();
        let id = sqlx::query_scalar(
            // A new machine is named after its host and is a server when its
            // OS says so; people rename and retype it later.
            "INSERT INTO assets (id, agent_id, hostname, os, facts, name, type_key)
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 ILIKE '%server%' THEN 'server' ELSE 'workstation' END)
             ON CONFLICT (agent_id) DO UPDATE
                SET hostname = EXCLUDED.hostname, os = EXCLUDED.os, facts = EXCLUDED.facts, updated_at = now()
             RETURNING id",
        )
        .bind(id)
        .bind(agent)
        .bind(hostname)
        .bind(os)
        .bind(facts)
        .bind(asset_name(hostname, id))
        .fetch_one(self.conn())
        .await?;
        Ok(Ok((id, None)))
    }

    /// Records a batch once per (agent, sequence) and, in the same round
    /// trip, looks its `series` up among the agent's (refreshing the
    /// `last_seen_at` of the known ones at most hourly). `events` is a JSON
    /// array's text. A resent batch gets the original id, and nothing else
    /// is done for it.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_batch(
        &mut self,
        agent: AgentId,
        sequence: i64,
        sent_at: Option<OffsetDateTime>,
        samples: i32,
        checks: i32,
        events: &str,
        series: &[SeriesKey<'_>],
    ) -> Result<InsertedBatch, StoreError> {
        let kinds: Vec<&str> = series.iter().map(|s| s.kind.as_str()).collect();
        let names: Vec<&str> = series.iter().map(|s| s.name).collect();
        let labels: Vec<&str> = series.iter().map(|s| s.labels).collect();
        // A series' key is the table's own expression (a generated column).
        let (inserted, unknown): (Option<BatchId>, Vec<i64>) = sqlx::query_as(
            "WITH ins AS (
                 INSERT INTO telemetry_ingest_batches (id, agent_id, sequence, sent_at, samples, checks, events)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)
                 ON CONFLICT (agent_id, sequence) DO NOTHING RETURNING id
             ), batch AS (
                 SELECT b.i, md5(b.kind || E'\\n' || b.name || E'\\n' || b.labels::text)::uuid AS key
                   FROM unnest($8::text[], $9::text[], $10::text[]::jsonb[]) WITH ORDINALITY AS b(kind, name, labels, i)
             ), touched AS (
                 UPDATE telemetry_series s SET last_seen_at = now() FROM batch b, ins
                  WHERE s.agent_id = $2 AND s.key = b.key AND s.last_seen_at < now() - interval '1 hour'
             )
             SELECT (SELECT id FROM ins),
                    ARRAY(SELECT b.i FROM batch b
                           WHERE NOT EXISTS (SELECT 1 FROM telemetry_series s WHERE s.agent_id = $2 AND s.key = b.key)
                           ORDER BY b.i)",
        )
        .bind(BatchId::new())
        .bind(agent)
        .bind(sequence)
        .bind(sent_at)
        .bind(samples)
        .bind(checks)
        .bind(events)
        .bind(&kinds)
        .bind(&names)
        .bind(&labels)
        .fetch_one(self.conn())
        .await?;
        if let Some(id) = inserted {
            let unknown_series = unknown.into_iter().map(|i| usize::try_from(i - 1).unwrap_or_default()).collect();
            return Ok(InsertedBatch { id, new: true, unknown_series });
        }
        let id = sqlx::query_scalar("SELECT id FROM telemetry_ingest_batches WHERE agent_id = $1 AND sequence = $2")
            .bind(agent)
            .bind(sequence)
            .fetch_one(self.conn())
            .await?;
        Ok(InsertedBatch { id, new: false, unknown_series: Vec::new() })
    }

    /// Records what a batch routed (the alert transitions it caused).
    pub async fn record_routing(&mut self, batch: BatchId, routed: &serde_json::Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE telemetry_ingest_batches SET routed = $2 WHERE id = $1")
            .bind(batch)
            .bind(routed)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Bulk insert, one statement (UNNEST of column arrays).
    pub async fn insert_samples(&mut self, agent: AgentId, samples: &[NewSample<'_>]) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let at: Vec<OffsetDateTime> = samples.iter().map(|s| s.at).collect();
        let names: Vec<&str> = samples.iter().map(|s| s.name).collect();
        let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
        let labels: Vec<Option<&str>> = samples.iter().map(|s| s.labels).collect();
        sqlx::query(
            "INSERT INTO metric_samples (agent_id, at, name, value, labels)
             SELECT $1, * FROM unnest($2::timestamptz[], $3::text[], $4::float8[], $5::text[]::jsonb[])",
        )
        .bind(agent)
        .bind(&at)
        .bind(&names)
        .bind(&values)
        .bind(&labels)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn insert_check_results(
        &mut self,
        agent: AgentId,
        results: &[CheckResult<'_>],
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let at: Vec<OffsetDateTime> = results.iter().map(|r| r.at).collect();
        let names: Vec<&str> = results.iter().map(|r| r.name).collect();
        let statuses: Vec<&str> = results.iter().map(|r| r.status).collect();
        let outputs: Vec<&str> = results.iter().map(|r| r.output).collect();
        sqlx::query(
            "INSERT INTO check_results (agent_id, at, name, status, output)
             SELECT $1, * FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::text[])",
        )
        .bind(agent)
        .bind(&at)
        .bind(&names)
        .bind(&statuses)
        .bind(&outputs)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Merges the latest inventory snapshot (a JSON object's text) into the
    /// asset's facts. The machine's identity (`machine_id`) stays what it
    /// enrolled with: a batch cannot claim another machine.
    pub async fn record_inventory(&mut self, agent: AgentId, inventory: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE assets SET facts = facts || ($2::text::jsonb - 'machine_id'), updated_at = now() WHERE agent_id = $1",
        )
            .bind(agent)
            .bind(inventory)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The latest sample of each of the agent's metric series (name and
    /// labels) of the last day, at most `limit`, by name and labels: one
    /// indexed look-up per series.
    pub async fn latest_metrics(&mut self, agent: AgentId, limit: i64) -> Result<Vec<Sample>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.at, s.name, m.value, nullif(s.labels, '{}') AS labels
               FROM telemetry_series s
               CROSS JOIN LATERAL (
                   SELECT at, value FROM metric_samples
                    WHERE agent_id = s.agent_id AND name = s.name AND coalesce(labels, '{}') = s.labels
                      AND at > now() - interval '1 day'
                    ORDER BY at DESC LIMIT 1) m
              WHERE s.agent_id = $1 AND s.kind = 'metric' AND s.last_seen_at > now() - interval '1 day'
              ORDER BY s.name, s.labels LIMIT $2",
        )
        .bind(agent)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// Registers the agent's new series (`unknown`: indexes into `series`
    /// that [`Self::insert_batch`] did not find) while it has fewer than
    /// `limit`, in order. Returns the indexes of those refused for the limit.
    pub async fn admit_series(
        &mut self,
        agent: AgentId,
        series: &[SeriesKey<'_>],
        unknown: &[usize],
        limit: i64,
    ) -> Result<Vec<usize>, StoreError> {
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        // New series: counted and registered one batch at a time per agent.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('anchor.telemetry_series.' || $1, 0))")
            .bind(agent)
            .execute(self.conn())
            .await?;
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM telemetry_series WHERE agent_id = $1")
            .bind(agent)
            .fetch_one(self.conn())
            .await?;
        let room = usize::try_from((limit - known).max(0)).unwrap_or(0).min(unknown.len());
        let (admitted, refused) = unknown.split_at(room);
        if !admitted.is_empty() {
            let admitted: Vec<&SeriesKey<'_>> = admitted.iter().map(|&i| &series[i]).collect();
            let kinds: Vec<&str> = admitted.iter().map(|s| s.kind.as_str()).collect();
            let names: Vec<&str> = admitted.iter().map(|s| s.name).collect();
            let labels: Vec<&str> = admitted.iter().map(|s| s.labels).collect();
            sqlx::query(
                "INSERT INTO telemetry_series (agent_id, kind, name, labels)
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]::jsonb[]) ON CONFLICT DO NOTHING",
            )
            .bind(agent)
            .bind(&kinds)
            .bind(&names)
            .bind(&labels)
            .execute(self.conn())
            .await?;
        }
        Ok(refused.to_vec())
    }

    /// The machine of an agent: asset id, hostname, OS and facts.
    pub async fn asset_of(
        &mut self,
        agent: AgentId,
    ) -> Result<Option<(AssetId, String, serde_json::Value)>, StoreError> {
        Ok(sqlx::query_as("SELECT id, os, facts FROM assets WHERE agent_id = $1")
            .bind(agent)
            .fetch_optional(self.conn())
            .await?)
    }

    /// How many batches and samples an agent has delivered.
    pub async fn telemetry_counts(&mut self, agent: AgentId) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT count(*) FROM telemetry_ingest_batches WHERE agent_id = $1) AS batches,
                    (SELECT count(*) FROM metric_samples WHERE agent_id = $1) AS samples",
        )
        .bind(agent)
        .fetch_one(self.conn())
        .await?)
    }

    /// Batches the agent reports it gave up on (the `count` of its events of
    /// `kind`, `agent.batches_dropped`), over the retention window.
    pub async fn batches_dropped(&mut self, agent: AgentId, kind: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce(sum((e->>'count')::bigint), 0)::bigint
               FROM telemetry_ingest_batches b CROSS JOIN LATERAL jsonb_array_elements(b.events) e
              WHERE b.agent_id = $1 AND b.events <> '[]' AND e->>'kind' = $2",
        )
        .bind(agent)
        .bind(kind)
        .fetch_one(self.conn())
        .await?)
    }
}
