//! Administrative changes to a workspace: who changed what, in which role,
//! recorded in the unit of work of the change itself, and attested by a
//! signed credential in the workspace's evidence chain.

use anchor_domain::{ChangeId, EvidenceId, Role};
use serde::Serialize;
use serde_json::Value;
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
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Change {
    pub id: ChangeId,
    pub action: String,
    pub target: String,
    #[sqlx(flatten)]
    pub actor: Actor,
    pub actor_role: Option<Role>,
    pub details: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub evidence_id: Option<EvidenceId>,
}

pub(crate) const COLUMNS: &str =
    "id, action, target, actor_issuer AS issuer, actor_subject AS subject, actor_role, details,
                       created_at, evidence_id";

impl WorkspaceTx {
    /// Records a change; the caller's unit of work makes it durable with the
    /// change itself.
    pub async fn insert_change(&mut self, change: &NewChange<'_>) -> Result<ChangeId, StoreError> {
        let id = ChangeId::new();
        sqlx::query(
            "INSERT INTO changes (id, action, target, actor_issuer, actor_subject, actor_role, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(change.action)
        .bind(change.target)
        .bind(&change.actor.issuer)
        .bind(&change.actor.subject)
        .bind(change.actor_role)
        .bind(&change.details)
        .execute(self.conn())
        .await?;
        Ok(id)
    }

    /// The change.
    pub async fn change(&mut self, id: ChangeId) -> Result<Option<Change>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM changes WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// The change, locked until this unit of work ends.
    pub async fn lock_change(&mut self, id: ChangeId) -> Result<Option<Change>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM changes WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Newest first, optionally only about `target`.
    pub async fn changes(
        &mut self,
        target: Option<&str>,
        before: Option<ChangeId>,
        limit: i64,
    ) -> Result<Vec<Change>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM changes
              WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        )))
        .bind(target)
        .bind(before)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }
}
