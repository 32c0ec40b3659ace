//! Maintenance windows (configuration): while one covers an asset or its
//! site, alerts that open there are held until it ends (see
//! `WorkspaceTx::insert_alert`).

use anchor_domain::{AssetId, MaintenanceWindowId, SiteId};
use serde::Serialize;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct MaintenanceWindow {
    #[schema(value_type = String, example = "mnt_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: MaintenanceWindowId,
    /// The asset it covers (or `site_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub asset_id: Option<AssetId>,
    /// The site it covers: every asset there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub site_id: Option<SiteId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub ends_at: OffsetDateTime,
    pub reason: String,
    #[schema(value_type = Actor)]
    #[schemars(with = "Actor")]
    pub created_by: Json<Actor>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, asset_id, site_id, starts_at, ends_at, reason, created_by, created_at";

impl WorkspaceTx {
    /// Windows not over yet, soonest first.
    pub async fn maintenance_windows(&mut self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM maintenance_windows WHERE ends_at > now() ORDER BY starts_at, id"
        )))
        .fetch_all(self.conn())
        .await?)
    }

    pub async fn insert_maintenance_window(
        &mut self,
        target: (Option<AssetId>, Option<SiteId>),
        starts_at: OffsetDateTime,
        ends_at: OffsetDateTime,
        reason: &str,
        by: &Actor,
    ) -> Result<MaintenanceWindow, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO maintenance_windows (id, asset_id, site_id, starts_at, ends_at, reason, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        )))
        .bind(MaintenanceWindowId::new())
        .bind(target.0)
        .bind(target.1)
        .bind(starts_at)
        .bind(ends_at)
        .bind(reason)
        .bind(Json(by))
        .fetch_one(self.conn())
        .await?)
    }

    /// Deletes a window; the alerts it held stay held until it would have ended.
    pub async fn delete_maintenance_window(&mut self, id: MaintenanceWindowId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM maintenance_windows WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(done.rows_affected() > 0)
    }
}
