//! Saved ticket views: a named query string of the ticket list, personal
//! (its owner's) or shared (every member of staff's). Configuration: the
//! gateway writes them directly, with a change record.

use anchor_domain::ViewId;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx, executions::Actor};

/// A saved view of the ticket list.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = SavedTicketView)]
pub struct SavedView {
    #[schema(value_type = String, example = "viw_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: ViewId,
    pub name: String,
    /// The ticket list's parameters (`status=new&sort=sla_due`).
    pub query: String,
    /// Who saved it (only they change a personal view).
    #[sqlx(flatten)]
    pub owner: Actor,
    /// Seen by every member of staff (else by its owner only).
    pub shared: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
}

/// A view to write.
#[derive(Debug, Clone)]
pub struct TicketViewInput<'a> {
    pub name: &'a str,
    pub query: &'a str,
    pub shared: bool,
}

const VIEW: &str = "SELECT id, name, query, owner_issuer AS issuer, owner AS subject, shared, created_at, updated_at
                      FROM ticket_views";

impl WorkspaceTx {
    /// The views `reader` may see (their own and the shared ones), oldest
    /// first, after `after`.
    pub async fn ticket_views(
        &mut self,
        reader: &Actor,
        after: Option<ViewId>,
        limit: i64,
    ) -> Result<Vec<SavedView>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{VIEW} WHERE (shared OR (owner = $1 AND owner_issuer = $2)) AND ($3::text IS NULL OR id > $3)
              ORDER BY id LIMIT $4"
        )))
        .bind(&reader.subject)
        .bind(&reader.issuer)
        .bind(after)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// A view, whoever owns it (the caller decides who may see it).
    pub async fn ticket_view(&mut self, id: ViewId) -> Result<Option<SavedView>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{VIEW} WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    pub async fn insert_ticket_view(
        &mut self,
        input: &TicketViewInput<'_>,
        owner: &Actor,
    ) -> Result<SavedView, StoreError> {
        let id = ViewId::new();
        sqlx::query(
            "INSERT INTO ticket_views (id, name, query, owner_issuer, owner, shared) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(input.name)
        .bind(input.query)
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .bind(input.shared)
        .execute(self.conn())
        .await?;
        Ok(self.ticket_view(id).await?.expect("just inserted"))
    }

    /// Replaces a view's name, query and sharing; None if there is none.
    pub async fn update_ticket_view(
        &mut self,
        id: ViewId,
        input: &TicketViewInput<'_>,
    ) -> Result<Option<SavedView>, StoreError> {
        sqlx::query("UPDATE ticket_views SET name = $2, query = $3, shared = $4, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(input.name)
            .bind(input.query)
            .bind(input.shared)
            .execute(self.conn())
            .await?;
        self.ticket_view(id).await
    }

    /// Deletes a view: whether there was one.
    pub async fn delete_ticket_view(&mut self, id: ViewId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM ticket_views WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(done.rows_affected() > 0)
    }
}
