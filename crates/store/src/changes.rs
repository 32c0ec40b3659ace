//! Administrative changes to a workspace: who changed what, in which role,
//! recorded in the unit of work of the change itself, and attested by a
//! signed credential in the workspace's evidence chain.

use anchor_domain::{ChangeId, Role};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Row, postgres::PgRow};
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    /// `<thing>.<what happened>`: `webhook.created`, `member.removed` ...
    pub action: &'a str,
    /// The id (or name) of what changed.
    pub target: &'a str,
    pub actor: &'a Actor,
    /// The actor's role in the workspace at that moment.
    pub actor_role: Option<Role>,
    /// What changed; never a secret.
    pub details: Value,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub id: ChangeId,
    pub action: String,
    pub target: String,
    pub actor: Actor,
    pub actor_role: Option<Role>,
    pub details: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub evidence_id: Option<String>,
}

const COLUMNS: &str = "id, action, target, actor_issuer, actor_subject, actor_role, details, created_at, evidence_id";

fn decode(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

fn from_row(row: &PgRow) -> Result<Change, StoreError> {
    let id: String = row.try_get("id")?;
    let role: Option<String> = row.try_get("actor_role")?;
    Ok(Change {
        id: id.parse().map_err(|e: anchor_domain::IdError| decode(e.to_string()))?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        actor: Actor { issuer: row.try_get("actor_issuer")?, subject: row.try_get("actor_subject")? },
        actor_role: role.map(|r| Role::parse(&r).map_err(|e| decode(e.to_string()))).transpose()?,
        details: row.try_get("details")?,
        created_at: row.try_get("created_at")?,
        evidence_id: row.try_get("evidence_id")?,
    })
}

impl WorkspaceTx {
    /// Records a change; the caller's unit of work makes it durable with the
    /// change itself.
    pub async fn insert_change(&mut self, change: &NewChange<'_>) -> Result<ChangeId, StoreError> {
        let id = ChangeId::new();
        sqlx::query(
            "INSERT INTO changes (id, action, target, actor_issuer, actor_subject, actor_role, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(change.action)
        .bind(change.target)
        .bind(&change.actor.issuer)
        .bind(&change.actor.subject)
        .bind(change.actor_role.map(|r| r.as_str()))
        .bind(&change.details)
        .execute(self.conn())
        .await?;
        Ok(id)
    }

    /// The change, locked until this unit of work ends.
    pub async fn lock_change(&mut self, id: ChangeId) -> Result<Option<Change>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM changes WHERE id = $1 FOR UPDATE")))
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first, optionally only about `target`.
    pub async fn changes(
        &mut self,
        target: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM changes
              WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        )))
        .bind(target)
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }
}
