//! The platform's record of who may do what: subjects, workspace memberships,
//! platform roles, and the access audit log.
//!
//! Authorization reads these on every request (no cache), so a removed
//! membership or a changed role takes effect on the very next request.
//!
//! Refusals of requests that are not authenticated are aggregated before
//! they reach the audit log ([`Refusals`]); the log is pruned past its
//! retention ([`Database::prune_access_audit`]).

mod refusals;

use std::time::Duration;

use anchor_domain::{Role, WorkspaceSlug};
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;

pub use self::refusals::{FLUSH_EVERY, MAX_KEYS_PER_MINUTE, Refusal, Refusals};
use crate::{Database, StoreError, Workspace, tenancy::SELECT_WORKSPACES};

/// One identity at one issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectRef<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
}

/// A subject's membership of a workspace.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    pub subject: String,
    pub issuer: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What the platform store says about a caller and one workspace slug.
#[derive(Debug, Clone)]
pub struct WorkspaceAccess {
    /// `None` when no workspace has this slug.
    pub workspace: Option<Workspace>,
    /// The caller's roles there, through its membership and its teams,
    /// most powerful first (`msp_admin`, `technician`, `finance`,
    /// `auditor`, then the client roles); empty when it has none.
    pub roles: Vec<Role>,
}

/// Who did something and under which request, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub request_id: Option<String>,
}

/// One access decision worth keeping.
#[derive(Debug, Clone)]
pub struct AccessEvent<'a> {
    pub context: &'a AuditContext,
    pub workspace: Option<&'a str>,
    pub action: &'a str,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

anchor_domain::names!(
    /// How an access decision went.
    pub enum Outcome {
        Success = "success",
        Failure = "failure",
        Denied = "denied",
    }
);

/// A stored access event: one decision, or (for refusals of requests that
/// were not authenticated) `count` identical refusals within one minute,
/// `occurred_at` being the first.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccessRecord {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub workspace: Option<String>,
    pub action: String,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
    pub count: i64,
}

/// Filters for reading the audit log; all optional.
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    pub workspace: Option<String>,
    pub subject: Option<String>,
    pub action: Option<String>,
    /// Return events older than this id (the previous page's last id).
    pub before_id: Option<i64>,
}

/// A workspace with the caller's role in it, if any.
#[derive(Debug, sqlx::FromRow)]
struct WorkspaceWithRole {
    #[sqlx(flatten)]
    workspace: Workspace,
    member_role: Option<Role>,
}

/// A workspace with the caller's roles in it.
#[derive(Debug, sqlx::FromRow)]
struct WorkspaceWithRoles {
    #[sqlx(flatten)]
    workspace: Workspace,
    roles: Vec<Role>,
}

impl WorkspaceWithRole {
    fn into_pair(self) -> (Workspace, Option<Role>) {
        (self.workspace, self.member_role)
    }
}

/// Refuses a change that leaves the workspace without an MSP admin (nobody
/// could manage its members any more): at least `needed` admins must be
/// there now (2 before a demotion, 1 after a removal). The admins'
/// memberships are locked, so two admins demoting each other at once cannot
/// both succeed.
async fn keep_an_admin(tx: &mut PgConnection, workspace: &Workspace, needed: usize) -> Result<(), StoreError> {
    let admins: Vec<i64> = sqlx::query_scalar(
        "SELECT subject_id FROM platform.memberships WHERE workspace_id = $1 AND role = 'msp_admin' FOR UPDATE",
    )
    .bind(workspace.id())
    .fetch_all(&mut *tx)
    .await?;
    if admins.len() < needed {
        return Err(StoreError::LastAdmin(workspace.slug().clone()));
    }
    Ok(())
}

impl Database {
    /// The subject's id, creating the subject on first sight. `last_seen_at`
    /// is written at most every five minutes, so this is a read on most calls.
    pub async fn touch_subject(&self, who: SubjectRef<'_>) -> Result<i64, StoreError> {
        // The insert's RETURNING is empty when the row exists and was seen
        // recently; the second branch then reads the existing id.
        Ok(sqlx::query_scalar(
            "WITH touched AS (
                 INSERT INTO platform.subjects AS s (issuer, subject, last_seen_at) VALUES ($1, $2, now())
                 ON CONFLICT (issuer, subject) DO UPDATE SET last_seen_at = now()
                   WHERE s.last_seen_at IS NULL OR s.last_seen_at < now() - interval '5 minutes'
                 RETURNING id)
             SELECT id FROM touched
             UNION ALL
             SELECT id FROM platform.subjects WHERE issuer = $1 AND subject = $2
             LIMIT 1",
        )
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_one(self.pool())
        .await?)
    }

    /// [`Self::touch_subject`] and [`Self::platform_roles`] in one statement
    /// (every authenticated API request asks both).
    pub async fn touch_subject_roles(&self, who: SubjectRef<'_>) -> Result<Vec<Role>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH touched AS (
                 INSERT INTO platform.subjects AS s (issuer, subject, last_seen_at) VALUES ($1, $2, now())
                 ON CONFLICT (issuer, subject) DO UPDATE SET last_seen_at = now()
                   WHERE s.last_seen_at IS NULL OR s.last_seen_at < now() - interval '5 minutes'
                 RETURNING id),
             subject AS (
                 SELECT id FROM touched
                 UNION ALL
                 SELECT id FROM platform.subjects WHERE issuer = $1 AND subject = $2
                 LIMIT 1)
             SELECT r.role FROM platform.platform_roles r JOIN subject ON subject.id = r.subject_id ORDER BY r.role",
        )
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_all(self.pool())
        .await?)
    }

    /// The subject's platform roles.
    pub async fn platform_roles(&self, who: SubjectRef<'_>) -> Result<Vec<Role>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT r.role FROM platform.platform_roles r JOIN platform.subjects s ON s.id = r.subject_id
              WHERE s.issuer = $1 AND s.subject = $2 ORDER BY r.role",
        )
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_all(self.pool())
        .await?)
    }

    /// Grants a platform role, creating the subject if needed.
    pub async fn grant_platform_role(
        &self,
        who: SubjectRef<'_>,
        role: Role,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        if role.is_workspace_role() {
            return Err(StoreError::WrongKindOfRole(role));
        }
        let mut tx = self.begin().await?;
        let id = subject_id(&mut tx, who).await?;
        sqlx::query("INSERT INTO platform.platform_roles (subject_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"target_issuer": who.issuer, "target_subject": who.subject, "role": role});
        record_change(&mut tx, audit, None, "platform_role.grant", detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The workspace with this slug and the subject's roles in it (its
    /// membership's and its teams'), in one query.
    pub async fn workspace_access(
        &self,
        slug: &WorkspaceSlug,
        who: SubjectRef<'_>,
    ) -> Result<WorkspaceAccess, StoreError> {
        let row: Option<WorkspaceWithRoles> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT q.*, platform.roles_in(q.id, (SELECT s.id FROM platform.subjects s
                                                   WHERE s.issuer = $2 AND s.subject = $3)) AS roles
               FROM ({SELECT_WORKSPACES} WHERE w.slug = $1 GROUP BY w.id) q"
        )))
        .bind(slug.as_str())
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(WorkspaceAccess { workspace: None, roles: Vec::new() }) };
        Ok(WorkspaceAccess { workspace: Some(row.workspace), roles: row.roles })
    }

    /// Workspaces the subject has a role in (a membership, or a team's
    /// grant), with its most powerful role, by slug after `after`.
    pub async fn workspaces_of(
        &self,
        who: SubjectRef<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(Workspace, Option<Role>)>, StoreError> {
        let rows: Vec<WorkspaceWithRole> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH me AS (SELECT id FROM platform.subjects WHERE issuer = $1 AND subject = $2)
             SELECT q.*, (platform.roles_in(q.id, (SELECT id FROM me)))[1] AS member_role
               FROM ({SELECT_WORKSPACES} GROUP BY w.id) q
              WHERE ($3::text IS NULL OR q.slug > $3)
                AND (EXISTS (SELECT 1 FROM platform.memberships m WHERE m.workspace_id = q.id
                                AND m.subject_id = (SELECT id FROM me))
                     OR EXISTS (SELECT 1 FROM platform.team_members t JOIN platform.team_grants g ON g.team_id = t.team_id
                                 WHERE t.subject_id = (SELECT id FROM me)
                                   AND (g.workspace_id = q.id OR g.workspace_id IS NULL)))
              ORDER BY q.slug LIMIT $4"
        )))
        .bind(who.issuer)
        .bind(who.subject)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(WorkspaceWithRole::into_pair).collect())
    }

    /// Every workspace (platform administration), with the subject's role where it is a member.
    pub async fn all_workspaces_for(
        &self,
        who: SubjectRef<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(Workspace, Option<Role>)>, StoreError> {
        let rows: Vec<WorkspaceWithRole> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT q.*, (platform.roles_in(q.id, (SELECT s.id FROM platform.subjects s
                                                    WHERE s.issuer = $1 AND s.subject = $2)))[1] AS member_role
               FROM ({SELECT_WORKSPACES} GROUP BY w.id) q
              WHERE $3::text IS NULL OR q.slug > $3
              ORDER BY q.slug LIMIT $4"
        )))
        .bind(who.issuer)
        .bind(who.subject)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(WorkspaceWithRole::into_pair).collect())
    }

    /// Members of a workspace, ordered by (issuer, subject), after a cursor.
    pub async fn members(
        &self,
        workspace: &Workspace,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<Member>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.issuer, s.subject, m.role, m.created_at, m.updated_at
               FROM platform.memberships m JOIN platform.subjects s ON s.id = m.subject_id
              WHERE m.workspace_id = $1 AND ($2::text IS NULL OR (s.issuer, s.subject) > ($2, $3))
              ORDER BY s.issuer, s.subject LIMIT $4",
        )
        .bind(workspace.id())
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn member(&self, workspace: &Workspace, who: SubjectRef<'_>) -> Result<Option<Member>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.issuer, s.subject, m.role, m.created_at, m.updated_at
               FROM platform.memberships m JOIN platform.subjects s ON s.id = m.subject_id
              WHERE m.workspace_id = $1 AND s.issuer = $2 AND s.subject = $3",
        )
        .bind(workspace.id())
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Adds the subject to the workspace or changes its role; audited in the
    /// same transaction. Returns the membership and whether it is new.
    pub async fn set_member(
        &self,
        workspace: &Workspace,
        who: SubjectRef<'_>,
        role: Role,
        audit: &AuditContext,
    ) -> Result<(Member, bool), StoreError> {
        if !role.is_workspace_role() {
            return Err(StoreError::WrongKindOfRole(role));
        }
        let mut tx = self.begin().await?;
        let id = subject_id(&mut tx, who).await?;
        let previous: Option<Role> = sqlx::query_scalar(
            "SELECT role FROM platform.memberships WHERE workspace_id = $1 AND subject_id = $2 FOR UPDATE",
        )
        .bind(workspace.id())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if previous == Some(Role::MspAdmin) && role != Role::MspAdmin {
            keep_an_admin(&mut tx, workspace, 2).await?;
        }
        let member: Member = sqlx::query_as(
            "INSERT INTO platform.memberships (workspace_id, subject_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, subject_id) DO UPDATE SET role = EXCLUDED.role,
               updated_at = CASE WHEN platform.memberships.role = EXCLUDED.role
                                 THEN platform.memberships.updated_at ELSE now() END
             RETURNING $4::text AS issuer, $5::text AS subject, role, created_at, updated_at",
        )
        .bind(workspace.id())
        .bind(id)
        .bind(role)
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_one(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "target_issuer": who.issuer, "target_subject": who.subject,
            "role": role, "previous_role": previous,
        });
        record_change(&mut tx, audit, Some(workspace), "membership.set", detail).await?;
        tx.commit().await?;
        Ok((member, previous.is_none()))
    }

    /// Removes the subject from the workspace; audited. False when it was not a member.
    pub async fn remove_member(
        &self,
        workspace: &Workspace,
        who: SubjectRef<'_>,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let removed: Option<Role> = sqlx::query_scalar(
            "DELETE FROM platform.memberships m USING platform.subjects s
              WHERE m.subject_id = s.id AND m.workspace_id = $1 AND s.issuer = $2 AND s.subject = $3
             RETURNING m.role",
        )
        .bind(workspace.id())
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_optional(&mut *tx)
        .await?;
        if removed == Some(Role::MspAdmin) {
            keep_an_admin(&mut tx, workspace, 1).await?;
        }
        if let Some(role) = &removed {
            let detail =
                serde_json::json!({"target_issuer": who.issuer, "target_subject": who.subject, "previous_role": role});
            record_change(&mut tx, audit, Some(workspace), "membership.remove", detail).await?;
        }
        tx.commit().await?;
        Ok(removed.is_some())
    }

    /// Appends one event to the access audit log.
    pub async fn record_access(&self, event: &AccessEvent<'_>) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_event(&mut conn, event).await
    }

    /// Drops audit events older than `retention`, a batch at a time (no long
    /// lock on the log). Returns how many were dropped.
    pub async fn prune_access_audit(&self, retention: Duration) -> Result<u64, StoreError> {
        const BATCH: i64 = 10_000;
        let mut dropped = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM platform.access_audit WHERE id IN (
                     SELECT id FROM platform.access_audit
                      WHERE occurred_at < now() - make_interval(secs => $1)
                      ORDER BY occurred_at LIMIT $2)",
            )
            .bind(retention.as_secs_f64())
            .bind(BATCH)
            .execute(self.pool())
            .await?;
            dropped += done.rows_affected();
            if done.rows_affected() < BATCH as u64 {
                return Ok(dropped);
            }
        }
    }

    /// Audit events, newest first.
    pub async fn access_events(&self, filter: &AccessFilter, limit: i64) -> Result<Vec<AccessRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, occurred_at, issuer, subject, workspace, action, outcome, request_id, detail, count
               FROM platform.access_audit
              WHERE ($1::text IS NULL OR workspace = $1)
                AND ($2::text IS NULL OR subject = $2)
                AND ($3::text IS NULL OR action = $3)
                AND ($4::bigint IS NULL OR id < $4)
              ORDER BY id DESC LIMIT $5",
        )
        .bind(&filter.workspace)
        .bind(&filter.subject)
        .bind(&filter.action)
        .bind(filter.before_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

pub(crate) async fn subject_id(conn: &mut PgConnection, who: SubjectRef<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO platform.subjects (issuer, subject) VALUES ($1, $2)
         ON CONFLICT (issuer, subject) DO UPDATE SET issuer = EXCLUDED.issuer
         RETURNING id",
    )
    .bind(who.issuer)
    .bind(who.subject)
    .fetch_one(conn)
    .await?)
}

/// Audits a change that succeeded, in the transaction that made it.
pub(crate) async fn record_change(
    conn: &mut PgConnection,
    audit: &AuditContext,
    workspace: Option<&Workspace>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let workspace = workspace.map(|w| w.slug().as_str());
    insert_event(conn, &AccessEvent { context: audit, workspace, action, outcome: Outcome::Success, detail }).await
}

pub(crate) async fn insert_event(conn: &mut PgConnection, event: &AccessEvent<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO platform.access_audit (issuer, subject, workspace, action, outcome, request_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&event.context.issuer)
    .bind(&event.context.subject)
    .bind(event.workspace)
    .bind(event.action)
    .bind(event.outcome)
    .bind(&event.context.request_id)
    .bind(&event.detail)
    .execute(conn)
    .await?;
    Ok(())
}
