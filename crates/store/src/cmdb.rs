//! The CMDB: asset types (configuration), assets and their relationships
//! (written by their skills), the asset list with what the people who
//! watch it need beside each row, and the impact of an asset's failure.

use std::collections::{HashMap, HashSet};

use anchor_domain::{
    AgentId, AlertId, AssetId, AssetStatus, Day, ExecutionId, FieldDef, Name, RelationshipId, RelationshipKind,
    SchemaKey, Serial, SiteId, TicketId,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, sites::ByName};

/// A kind of asset and the attributes its assets carry.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct AssetType {
    #[schema(value_type = String, example = "server")]
    pub key: SchemaKey,
    #[schema(value_type = String, example = "Server")]
    pub name: Name,
    /// The attributes an asset of this type may (or must) carry.
    #[schema(value_type = Vec<FieldDef>)]
    #[schemars(with = "Vec<FieldDef>")]
    pub fields: Json<Vec<FieldDef>>,
    /// Shipped with Anchor: may be renamed and given fields, not deleted.
    pub built_in: bool,
    /// Assets of this type, in any status.
    pub assets: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A configuration item: a machine with an agent, a device, a licence.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Asset {
    #[schema(value_type = String, example = "ast_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: AssetId,
    /// Its asset type's key.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "server")]
    pub type_key: SchemaKey,
    #[schema(value_type = String, example = "FS-01")]
    pub name: Name,
    /// `planned`, `active`, `in_repair`, `retired` or `disposed`.
    #[schema(value_type = String, example = "active")]
    pub status: AssetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "sit_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub site_id: Option<SiteId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "CZ21390XYZ")]
    pub serial: Option<Serial>,
    /// The enrolled agent that reports for it (machines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "agt_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub agent_id: Option<AgentId>,
    /// As its agent reports it, or as given.
    pub hostname: String,
    /// As its agent reports it.
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub purchased_on: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub warranty_until: Option<Day>,
    /// Values of its type's fields.
    #[schema(value_type = Object)]
    #[schemars(with = "Map<String, Value>")]
    pub attributes: Json<Map<String, Value>>,
    /// Tags, sorted.
    #[schema(value_type = Vec<String>)]
    #[schemars(with = "Vec<String>")]
    pub tags: Vec<String>,
    /// Host facts at enrollment, then the latest inventory (machines only).
    #[schema(value_type = Object)]
    #[schemars(with = "Value")]
    pub facts: Json<Value>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub retired_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// An asset as its list shows it: with its agent's state and what is open on it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AssetRow {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub asset: Asset,
    /// Its agent: `online`, `overdue` (silent for half the offline time),
    /// `offline` (the `agent_offline` rule's duration) or `revoked`; absent
    /// without an agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "online")]
    pub agent_status: Option<String>,
    /// When its agent last reported.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_seen_at: Option<OffsetDateTime>,
    /// Open alerts on it.
    pub open_alerts: i64,
    /// Its checks whose latest result is failing.
    pub failing_checks: i64,
    /// Tickets about it that are not resolved or closed.
    pub open_tickets: i64,
}

/// An asset's fields as a command sets them.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetFields<'a> {
    pub type_key: &'a SchemaKey,
    pub name: &'a Name,
    pub status: AssetStatus,
    pub serial: Option<&'a Serial>,
    pub hostname: &'a str,
    pub purchased_on: Option<Day>,
    pub warranty_until: Option<Day>,
    pub attributes: &'a Map<String, Value>,
}

impl Asset {
    /// Its fields as a command would set them.
    pub fn fields(&self) -> AssetFields<'_> {
        AssetFields {
            type_key: &self.type_key,
            name: &self.name,
            status: self.status,
            serial: self.serial.as_ref(),
            hostname: &self.hostname,
            purchased_on: self.purchased_on,
            warranty_until: self.warranty_until,
            attributes: &self.attributes,
        }
    }
}

/// Which assets to list.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    /// Prefixes of words of the name, host name or serial.
    pub search: Option<String>,
    /// These statuses; none given: every status but `retired` and `disposed`.
    pub statuses: Vec<AssetStatus>,
    pub type_key: Option<SchemaKey>,
    pub site_id: Option<SiteId>,
    pub tag: Option<String>,
    /// With an agent (`true`) or without one (`false`).
    pub has_agent: Option<bool>,
    /// Only these assets (none given: any).
    pub ids: Vec<AssetId>,
}

/// One span of a metric's series: its mean and peak.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MetricBucket {
    pub name: String,
    /// The series' labels' values (`/`, `/var`), empty without labels.
    pub series: String,
    pub bucket: OffsetDateTime,
    pub mean: f64,
    pub peak: f64,
}

/// A relationship, as `asset kind target` with both ends named.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Relationship {
    #[schema(value_type = String, example = "rel_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: RelationshipId,
    #[schema(value_type = String)]
    pub asset_id: AssetId,
    #[schema(value_type = String)]
    pub asset_name: Name,
    #[schema(value_type = String, example = "runs_on")]
    pub kind: RelationshipKind,
    #[schema(value_type = String)]
    pub target_id: AssetId,
    #[schema(value_type = String)]
    pub target_name: Name,
    /// The command that made it.
    #[schema(value_type = String)]
    pub execution_id: ExecutionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
}

/// An open alert, as the impact view names it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OpenAlert {
    #[schema(value_type = String)]
    pub id: AlertId,
    #[serde(skip)]
    pub asset_id: AssetId,
    pub severity: String,
    pub summary: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub opened_at: OffsetDateTime,
}

/// An open ticket, as the impact view names it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OpenTicket {
    #[schema(value_type = String)]
    pub id: TicketId,
    #[serde(skip)]
    pub asset_id: AssetId,
    pub title: String,
    pub status: String,
    pub priority: String,
}

/// One asset the failure reaches.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Impacted {
    #[schema(value_type = String)]
    pub asset_id: AssetId,
    #[schema(value_type = String)]
    pub name: Name,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub type_key: SchemaKey,
    #[schema(value_type = String)]
    pub status: AssetStatus,
    /// Relationships between it and the failing asset (0: the asset itself).
    pub depth: u32,
    /// How the failure reaches it: the relationship and the asset it comes
    /// from (absent for the asset itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    pub open_alerts: Vec<OpenAlert>,
    pub open_tickets: Vec<OpenTicket>,
}

/// The step by which a failure reaches an asset.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Via {
    #[schema(value_type = String)]
    pub relationship_id: RelationshipId,
    #[schema(value_type = String)]
    pub kind: RelationshipKind,
    /// The asset one step closer to the failure.
    #[schema(value_type = String)]
    pub from_asset_id: AssetId,
}

/// A check's latest result.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CheckState {
    pub name: String,
    /// `passing`, `warning` or `failing`.
    pub status: String,
    pub output: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One thing that happened to an asset.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AssetEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The command (`asset.tag`) or the change (`agent.revoked`).
    pub what: String,
    pub who: String,
    /// The execution (`exe_...`) or the change (`chg_...`).
    pub ref_id: String,
    /// The execution's status, or `recorded` for a change.
    pub status: String,
}

/// What breaks if an asset fails: everything that depends on it,
/// transitively, nearest first, with the open alerts and tickets on them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Impact {
    pub items: Vec<Impacted>,
    /// More assets depend on it than were walked (past [`IMPACT_MAX_ASSETS`]
    /// or [`IMPACT_MAX_DEPTH`]).
    pub truncated: bool,
    pub open_alerts: usize,
    pub open_tickets: usize,
}

/// The most relationships the impact view follows from the asset.
pub const IMPACT_MAX_DEPTH: u32 = 20;
/// The most assets the impact view lists.
pub const IMPACT_MAX_ASSETS: usize = 1000;

const TYPE_COLUMNS: &str = "t.key, t.name, t.fields, t.built_in, t.created_at, t.updated_at, \
     (SELECT count(*) FROM assets a WHERE a.type_key = t.key) AS assets";

const ASSET_COLUMNS: &str = "id, agent_id, type_key, name, status, site_id, serial, hostname, os, \
     purchased_on::text AS purchased_on, warranty_until::text AS warranty_until, attributes, tags, facts, retired_at, \
     created_at, updated_at";

const RELATIONSHIP_SELECT: &str = "SELECT r.id, r.asset_id, a.name AS asset_name, r.kind, r.target_id, \
     t.name AS target_name, r.execution_id, r.created_at
       FROM asset_relationships r JOIN assets a ON a.id = r.asset_id JOIN assets t ON t.id = r.target_id";

impl WorkspaceTx {
    /// Every asset type, by name, each with its count of assets.
    pub async fn asset_types(&mut self) -> Result<Vec<AssetType>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TYPE_COLUMNS} FROM asset_types t ORDER BY lower(t.name)"
        )))
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn asset_type(&mut self, key: &SchemaKey) -> Result<Option<AssetType>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TYPE_COLUMNS} FROM asset_types t WHERE t.key = $1")))
            .bind(key)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Writes an asset type (new, or new name and fields); answers it as it
    /// now is and whether it is new.
    pub async fn save_asset_type(
        &mut self,
        key: &SchemaKey,
        name: &Name,
        fields: &[FieldDef],
    ) -> Result<(AssetType, bool), StoreError> {
        let created: bool = sqlx::query_scalar(
            "INSERT INTO asset_types (key, name, fields) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET name = excluded.name, fields = excluded.fields, updated_at = now()
             RETURNING xmax = 0",
        )
        .bind(key)
        .bind(name)
        .bind(Json(fields))
        .fetch_one(self.conn())
        .await?;
        let saved = self.asset_type(key).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        Ok((saved, created))
    }

    /// Deletes an asset type no asset has and that Anchor did not ship:
    /// `None` when there is no such type, `Some(false)` when it may not go.
    pub async fn delete_asset_type(&mut self, key: &SchemaKey) -> Result<Option<bool>, StoreError> {
        let Some(found) = self.asset_type(key).await? else { return Ok(None) };
        if found.built_in || found.assets > 0 {
            return Ok(Some(false));
        }
        sqlx::query("DELETE FROM asset_types WHERE key = $1").bind(key).execute(self.conn()).await?;
        Ok(Some(true))
    }

    pub async fn asset(&mut self, id: AssetId) -> Result<Option<Asset>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The asset, locked until this unit of work ends.
    pub async fn lock_asset(&mut self, id: AssetId) -> Result<Option<Asset>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Assets by name after `after`, each with its agent's state and what is
    /// open on it: one statement, whatever the page holds.
    pub async fn asset_rows(
        &mut self,
        filter: &AssetFilter,
        after: Option<&ByName>,
        limit: i64,
    ) -> Result<Vec<AssetRow>, StoreError> {
        let statuses: Vec<&str> = if filter.statuses.is_empty() {
            AssetStatus::ALL.iter().filter(|s| !s.is_history()).map(|s| s.as_str()).collect()
        } else {
            filter.statuses.iter().map(|s| s.as_str()).collect()
        };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH page AS (
                SELECT {ASSET_COLUMNS} FROM assets
                 WHERE status = ANY ($1)
                   AND ($2::text IS NULL OR search @@ to_tsquery('simple', $2))
                   AND ($3::text IS NULL OR (lower(name), id) > ($3, $4))
                   AND ($5::text IS NULL OR type_key = $5)
                   AND ($6::text IS NULL OR site_id = $6)
                   AND ($7::text IS NULL OR tags @> ARRAY[$7])
                   AND ($8::boolean IS NULL OR (agent_id IS NOT NULL) = $8)
                   AND (cardinality($10::text[]) = 0 OR id = ANY ($10))
                 ORDER BY lower(name), id LIMIT $9
             ), offline AS (
                SELECT coalesce((SELECT greatest(duration_secs, 1) FROM alert_rules
                                  WHERE kind = 'agent_offline' AND enabled ORDER BY id LIMIT 1), 240) AS secs
             )
             SELECT page.*,
                    CASE WHEN page.agent_id IS NULL THEN NULL
                         WHEN g.revoked_at IS NOT NULL THEN 'revoked'
                         WHEN g.last_seen_at > now() - make_interval(secs => o.secs / 2.0) THEN 'online'
                         WHEN g.last_seen_at > now() - make_interval(secs => o.secs) THEN 'overdue'
                         ELSE 'offline' END AS agent_status,
                    g.last_seen_at,
                    (SELECT count(*) FROM alerts l WHERE l.asset_id = page.id AND l.state = 'open') AS open_alerts,
                    (SELECT count(*) FROM telemetry_series s
                      WHERE s.agent_id = page.agent_id AND s.kind = 'check'
                        AND (SELECT c.status FROM check_results c WHERE c.agent_id = s.agent_id AND c.name = s.name
                              ORDER BY c.at DESC LIMIT 1) = 'failing') AS failing_checks,
                    (SELECT count(*) FROM tickets k
                      WHERE k.asset_id = page.id AND k.status NOT IN ('resolved', 'closed')) AS open_tickets
               FROM page CROSS JOIN offline o
               LEFT JOIN platform.agent_states(
                   ARRAY(SELECT p.agent_id FROM page p WHERE p.agent_id IS NOT NULL)) g ON g.id = page.agent_id
              ORDER BY lower(page.name), page.id"
        )))
        .bind(&statuses)
        .bind(filter.search.as_deref().and_then(crate::sites::prefixes))
        .bind(after.map(|a| a.name.as_str()))
        .bind(after.map(|a| a.id.as_str()))
        .bind(filter.type_key.as_ref())
        .bind(filter.site_id)
        .bind(filter.tag.as_deref())
        .bind(filter.has_agent)
        .bind(limit)
        .bind(&filter.ids)
        .fetch_all(self.conn())
        .await?)
    }

    /// The assets of these agents' machines: (agent, asset, name).
    pub async fn assets_of_agents(&mut self, agents: &[AgentId]) -> Result<Vec<(AgentId, AssetId, Name)>, StoreError> {
        Ok(sqlx::query_as("SELECT agent_id, id, name FROM assets WHERE agent_id = ANY ($1)")
            .bind(agents)
            .fetch_all(self.conn())
            .await?)
    }

    /// An agent's metrics `names` from `from` to `to`, in `buckets` equal
    /// spans: each series (a metric and its labels, as text) with the mean
    /// and the peak of each span that has samples. One statement.
    pub async fn metric_buckets(
        &mut self,
        agent: AgentId,
        names: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        buckets: u32,
    ) -> Result<Vec<MetricBucket>, StoreError> {
        let width = ((to - from).whole_seconds().max(1) as f64 / f64::from(buckets.max(1))).ceil().max(1.0);
        Ok(sqlx::query_as(
            "SELECT name, coalesce((SELECT string_agg(value, ', ' ORDER BY key) FROM jsonb_each_text(labels)), '')
                        AS series,
                    date_bin(make_interval(secs => $5), at, $3) AS bucket, avg(value) AS mean, max(value) AS peak
               FROM metric_samples
              WHERE agent_id = $1 AND name = ANY ($2) AND at >= $3 AND at < $4
              GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .bind(agent)
        .bind(names)
        .bind(from)
        .bind(to)
        .bind(width)
        .fetch_all(self.conn())
        .await?)
    }

    /// The mean of metric `name` for each of `agents`, per span of
    /// `(to - from) / buckets` (only spans with samples). One statement.
    pub async fn sparklines(
        &mut self,
        agents: &[AgentId],
        name: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        buckets: u32,
    ) -> Result<Vec<(AgentId, OffsetDateTime, f64)>, StoreError> {
        let width = ((to - from).whole_seconds().max(1) as f64 / f64::from(buckets.max(1))).ceil().max(1.0);
        Ok(sqlx::query_as(
            "SELECT agent_id, date_bin(make_interval(secs => $5), at, $3) AS bucket, avg(value)
               FROM metric_samples
              WHERE agent_id = ANY ($1) AND name = $2 AND at >= $3 AND at < $4
              GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(agents)
        .bind(name)
        .bind(from)
        .bind(to)
        .bind(width)
        .fetch_all(self.conn())
        .await?)
    }

    /// What happened to an asset, newest first, at most `limit`: the
    /// commands that named it or created it, and the administrative
    /// changes to it or its agent (revocation), each with who, when and its
    /// execution or change (whose credential attests it).
    pub async fn asset_history(
        &mut self,
        asset: AssetId,
        agent: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<AssetEvent>, StoreError> {
        Ok(sqlx::query_as(
            "(SELECT e.created_at AS at, e.command AS what, e.actor_subject AS who, e.id AS ref_id, e.status
                FROM executions e WHERE e.input ? 'asset_id' AND e.input->>'asset_id' = $1
               ORDER BY e.created_at DESC LIMIT $3)
             UNION ALL
             (SELECT e.created_at, e.command, e.actor_subject, e.id, e.status
                FROM executions e WHERE e.result ? 'asset_id' AND e.result->>'asset_id' = $1
                 AND NOT (e.input ? 'asset_id')
               ORDER BY e.created_at DESC LIMIT $3)
             UNION ALL
             (SELECT c.created_at, c.action, c.actor_subject, c.id, 'recorded'
                FROM changes c WHERE c.target = $1 OR c.target = $2
               ORDER BY c.id DESC LIMIT $3)
             ORDER BY at DESC LIMIT $3",
        )
        .bind(asset)
        .bind(agent)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// The latest result of each of an agent's checks, failing first, at
    /// most 100: one indexed look-up per check.
    pub async fn latest_checks(&mut self, agent: AgentId) -> Result<Vec<CheckState>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.name, c.status, c.output, c.at
               FROM telemetry_series s
               CROSS JOIN LATERAL (SELECT status, output, at FROM check_results c
                                    WHERE c.agent_id = s.agent_id AND c.name = s.name
                                    ORDER BY c.at DESC LIMIT 1) c
              WHERE s.agent_id = $1 AND s.kind = 'check'
              ORDER BY array_position(ARRAY['failing', 'warning', 'passing'], c.status), s.name LIMIT 100",
        )
        .bind(agent)
        .fetch_all(self.conn())
        .await?)
    }

    /// The list row of one asset.
    pub async fn asset_row(&mut self, id: AssetId) -> Result<Option<AssetRow>, StoreError> {
        let filter = AssetFilter { statuses: AssetStatus::ALL.to_vec(), ids: vec![id], ..AssetFilter::default() };
        Ok(self.asset_rows(&filter, None, 1).await?.pop())
    }

    /// Writes a new manual asset.
    pub async fn create_asset(
        &mut self,
        id: AssetId,
        fields: &AssetFields<'_>,
        site: Option<SiteId>,
        tags: &[String],
    ) -> Result<Asset, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO assets (id, type_key, name, status, serial, hostname, purchased_on, warranty_until, attributes,
                                 site_id, tags)
             VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8::date, $9, $10, $11)
             RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(fields.type_key)
        .bind(fields.name)
        .bind(fields.status)
        .bind(fields.serial)
        .bind(fields.hostname)
        .bind(fields.purchased_on)
        .bind(fields.warranty_until)
        .bind(Json(fields.attributes))
        .bind(site)
        .bind(tags)
        .fetch_one(self.conn())
        .await?)
    }

    /// Writes new fields of an asset (its status, site, tags, agent link and
    /// facts stay as they are).
    pub async fn update_asset(&mut self, id: AssetId, fields: &AssetFields<'_>) -> Result<Asset, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE assets SET type_key = $2, name = $3, serial = $4, hostname = $5, purchased_on = $6::date,
                               warranty_until = $7::date, attributes = $8, updated_at = now()
              WHERE id = $1 RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(fields.type_key)
        .bind(fields.name)
        .bind(fields.serial)
        .bind(fields.hostname)
        .bind(fields.purchased_on)
        .bind(fields.warranty_until)
        .bind(Json(fields.attributes))
        .fetch_one(self.conn())
        .await?)
    }

    /// Whether this workspace's agent is revoked (`None`: no such agent here).
    pub async fn agent_revoked(&mut self, agent: AgentId) -> Result<Option<bool>, StoreError> {
        Ok(sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM platform.agent_states(ARRAY[$1])")
            .bind(agent)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Moves the asset to `site` (or to no site).
    pub async fn move_asset(&mut self, id: AssetId, site: Option<SiteId>) -> Result<Asset, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE assets SET site_id = $2, updated_at = now() WHERE id = $1 RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(site)
        .fetch_one(self.conn())
        .await?)
    }

    /// Sets the asset's tags (sorted, once each).
    pub async fn tag_asset(&mut self, id: AssetId, tags: &[String]) -> Result<Asset, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE assets SET tags = ARRAY(SELECT DISTINCT unnest($2::text[]) ORDER BY 1), updated_at = now()
              WHERE id = $1 RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(tags)
        .fetch_one(self.conn())
        .await?)
    }

    /// Moves the asset to `status`; retiring stamps `retired_at`.
    pub async fn set_asset_status(&mut self, id: AssetId, status: AssetStatus) -> Result<Asset, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE assets SET status = $2, updated_at = now(),
                    retired_at = CASE WHEN $2 = 'retired' THEN now() ELSE retired_at END
              WHERE id = $1 RETURNING {ASSET_COLUMNS}"
        )))
        .bind(id)
        .bind(status)
        .fetch_one(self.conn())
        .await?)
    }

    /// Every relationship of the asset, either end, by kind and the other end's name.
    pub async fn relationships_of(&mut self, id: AssetId) -> Result<Vec<Relationship>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{RELATIONSHIP_SELECT} WHERE r.asset_id = $1 OR r.target_id = $1
              ORDER BY r.kind, CASE WHEN r.asset_id = $1 THEN lower(t.name) ELSE lower(a.name) END, r.id"
        )))
        .bind(id)
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn relationship(&mut self, id: RelationshipId) -> Result<Option<Relationship>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{RELATIONSHIP_SELECT} WHERE r.id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The relationship `asset kind target`, if it exists.
    pub async fn relationship_between(
        &mut self,
        asset: AssetId,
        kind: RelationshipKind,
        target: AssetId,
    ) -> Result<Option<RelationshipId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM asset_relationships WHERE asset_id = $1 AND kind = $2 AND target_id = $3",
        )
        .bind(asset)
        .bind(kind)
        .bind(target)
        .fetch_optional(self.conn())
        .await?)
    }

    /// Records `asset kind target`.
    pub async fn insert_relationship(
        &mut self,
        asset: AssetId,
        kind: RelationshipKind,
        target: AssetId,
        execution: ExecutionId,
    ) -> Result<Relationship, StoreError> {
        let id = RelationshipId::new();
        sqlx::query(
            "INSERT INTO asset_relationships (id, asset_id, kind, target_id, execution_id) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(asset)
        .bind(kind)
        .bind(target)
        .bind(execution)
        .execute(self.conn())
        .await?;
        self.relationship(id).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Removes a relationship; answers it as it was.
    pub async fn delete_relationship(&mut self, id: RelationshipId) -> Result<Option<Relationship>, StoreError> {
        let Some(found) = self.relationship(id).await? else { return Ok(None) };
        sqlx::query("DELETE FROM asset_relationships WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(Some(found))
    }

    /// What breaks if `id` fails: a walk outward along the relationships, one
    /// statement per step away, each asset once (so cycles end), nearest
    /// first; then the open alerts and tickets of every asset reached, in
    /// two statements. `None` when there is no such asset.
    pub async fn impact(&mut self, id: AssetId) -> Result<Option<Impact>, StoreError> {
        let Some(root) = self.asset(id).await? else { return Ok(None) };
        let mut reached: Vec<(AssetId, u32, Option<Via>)> = vec![(id, 0, None)];
        let mut seen: HashSet<AssetId> = HashSet::from([id]);
        let mut frontier = vec![id];
        let mut truncated = false;
        let mut depth = 0;
        while !frontier.is_empty() {
            if depth == IMPACT_MAX_DEPTH {
                truncated = true;
                break;
            }
            depth += 1;
            // Who is hurt when a frontier asset fails: the assets that run on,
            // depend on, connect through or are installed on it, and the
            // assets it backs up.
            let next: Vec<(AssetId, RelationshipId, RelationshipKind, AssetId)> = sqlx::query_as(
                "SELECT r.asset_id, r.id, r.kind, r.target_id FROM asset_relationships r
                  WHERE r.target_id = ANY ($1) AND r.kind <> 'backs_up'
                 UNION ALL
                 SELECT r.target_id, r.id, r.kind, r.asset_id FROM asset_relationships r
                  WHERE r.asset_id = ANY ($1) AND r.kind = 'backs_up'
                 ORDER BY 1, 2",
            )
            .bind(&frontier)
            .fetch_all(self.conn())
            .await?;
            frontier.clear();
            for (hurt, relationship_id, kind, from_asset_id) in next {
                if seen.contains(&hurt) {
                    continue;
                }
                if reached.len() > IMPACT_MAX_ASSETS {
                    truncated = true;
                    break;
                }
                seen.insert(hurt);
                frontier.push(hurt);
                reached.push((hurt, depth, Some(Via { relationship_id, kind, from_asset_id })));
            }
            if truncated {
                break;
            }
        }
        let ids: Vec<AssetId> = reached.iter().map(|(id, ..)| *id).collect();
        let assets: Vec<(AssetId, Name, SchemaKey, AssetStatus)> =
            sqlx::query_as("SELECT id, name, type_key, status FROM assets WHERE id = ANY ($1)")
                .bind(&ids)
                .fetch_all(self.conn())
                .await?;
        let assets: HashMap<AssetId, (Name, SchemaKey, AssetStatus)> =
            assets.into_iter().map(|(id, name, key, status)| (id, (name, key, status))).collect();
        let alerts: Vec<OpenAlert> = sqlx::query_as(
            "SELECT id, asset_id, severity, summary, opened_at FROM alerts
              WHERE asset_id = ANY ($1) AND state = 'open' ORDER BY opened_at DESC, id",
        )
        .bind(&ids)
        .fetch_all(self.conn())
        .await?;
        let tickets: Vec<OpenTicket> = sqlx::query_as(
            "SELECT id, asset_id, title, status, priority FROM tickets
              WHERE asset_id = ANY ($1) AND status NOT IN ('resolved', 'closed') ORDER BY priority, id",
        )
        .bind(&ids)
        .fetch_all(self.conn())
        .await?;
        let (open_alerts, open_tickets) = (alerts.len(), tickets.len());
        let items = reached
            .into_iter()
            .filter_map(|(asset_id, depth, via)| {
                let (name, type_key, status) = if asset_id == root.id {
                    (root.name.clone(), root.type_key.clone(), root.status)
                } else {
                    assets.get(&asset_id).cloned()?
                };
                Some(Impacted {
                    asset_id,
                    name,
                    type_key,
                    status,
                    depth,
                    via,
                    open_alerts: alerts.iter().filter(|a| a.asset_id == asset_id).cloned().collect(),
                    open_tickets: tickets.iter().filter(|t| t.asset_id == asset_id).cloned().collect(),
                })
            })
            .collect();
        Ok(Some(Impact { items, truncated, open_alerts, open_tickets }))
    }
}
