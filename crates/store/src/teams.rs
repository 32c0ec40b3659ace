//! Teams: the MSP's staff in groups, each team granted a staff role in some
//! workspaces or in all of them (present and future). Platform
//! administration: every change is written with its access audit record in
//! one transaction. Authorization reads teams on every request
//! (`platform.roles_in`), so a change takes effect on the next one.

use anchor_domain::{Role, TeamId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    Database, StoreError, Workspace,
    access::{AuditContext, SubjectRef, record_change, subject_id},
};

/// A team with its members and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Team {
    #[schema(value_type = String, example = "tea_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: TeamId,
    #[schema(example = "Service desk")]
    pub name: String,
    pub description: String,
    /// Who is in it, by issuer and subject.
    pub members: Vec<TeamMember>,
    /// Where its members hold which role.
    pub grants: Vec<TeamGrant>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
}

/// A member of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TeamMember {
    pub issuer: String,
    pub subject: String,
}

/// A role a team holds: in one workspace, or in all (`workspace: null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TeamGrant {
    /// The workspace's slug; absent: every workspace, present and future.
    #[schema(example = "acme")]
    pub workspace: Option<String>,
    #[schema(value_type = String, example = "technician")]
    pub role: Role,
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: TeamId,
    name: String,
    description: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// Why a team change was not made.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("no such team")]
    NotFound,
    #[error("another team has this name")]
    NameTaken,
    #[error("teams grant staff roles only (msp_admin, technician, finance, auditor), not {0}")]
    NotAStaffRole(Role),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn unique_name(e: sqlx::Error) -> TeamError {
    match e.as_database_error().and_then(|d| d.code()) {
        Some(code) if code == "23505" => TeamError::NameTaken,
        _ => TeamError::Store(e.into()),
    }
}

const STAFF: [Role; 4] = [Role::MspAdmin, Role::Technician, Role::Finance, Role::Auditor];

impl Database {
    /// Every team, by name, with its members and grants.
    pub async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let rows: Vec<TeamRow> = sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM platform.teams ORDER BY lower(name), id",
        )
        .fetch_all(self.pool())
        .await?;
        self.whole(rows).await
    }

    pub async fn team(&self, id: TeamId) -> Result<Option<Team>, StoreError> {
        let rows: Vec<TeamRow> =
            sqlx::query_as("SELECT id, name, description, created_at, updated_at FROM platform.teams WHERE id = $1")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        Ok(self.whole(rows).await?.pop())
    }

    /// The teams of `rows` with their members and grants: two statements.
    async fn whole(&self, rows: Vec<TeamRow>) -> Result<Vec<Team>, StoreError> {
        let ids: Vec<TeamId> = rows.iter().map(|r| r.id).collect();
        let members: Vec<(TeamId, String, String)> = sqlx::query_as(
            "SELECT t.team_id, s.issuer, s.subject FROM platform.team_members t
               JOIN platform.subjects s ON s.id = t.subject_id
              WHERE t.team_id = ANY ($1) ORDER BY s.subject, s.issuer",
        )
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        let grants: Vec<(TeamId, Option<String>, Role)> = sqlx::query_as(
            "SELECT g.team_id, w.slug, g.role FROM platform.team_grants g
               LEFT JOIN platform.workspaces w ON w.id = g.workspace_id
              WHERE g.team_id = ANY ($1) ORDER BY w.slug NULLS FIRST",
        )
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Team {
                members: members
                    .iter()
                    .filter(|(team, ..)| *team == row.id)
                    .map(|(_, issuer, subject)| TeamMember { issuer: issuer.clone(), subject: subject.clone() })
                    .collect(),
                grants: grants
                    .iter()
                    .filter(|(team, ..)| *team == row.id)
                    .map(|(_, workspace, role)| TeamGrant { workspace: workspace.clone(), role: *role })
                    .collect(),
                id: row.id,
                name: row.name,
                description: row.description,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
    }

    /// Adds a team (no members, no grants yet).
    pub async fn create_team(&self, name: &str, description: &str, audit: &AuditContext) -> Result<Team, TeamError> {
        let id = TeamId::new();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO platform.teams (id, name, description) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(unique_name)?;
        let detail = serde_json::json!({"team": id, "name": name});
        record_change(&mut tx, audit, None, "team.create", detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.team(id).await?.ok_or(TeamError::NotFound)
    }

    /// Renames a team or changes its description.
    pub async fn update_team(
        &self,
        id: TeamId,
        name: &str,
        description: &str,
        audit: &AuditContext,
    ) -> Result<Team, TeamError> {
        let mut tx = self.begin().await?;
        let changed =
            sqlx::query("UPDATE platform.teams SET name = $2, description = $3, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(name)
                .bind(description)
                .execute(&mut *tx)
                .await
                .map_err(unique_name)?;
        if changed.rows_affected() == 0 {
            return Err(TeamError::NotFound);
        }
        record_change(&mut tx, audit, None, "team.update", serde_json::json!({"team": id, "name": name})).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.team(id).await?.ok_or(TeamError::NotFound)
    }

    /// Deletes a team: its members lose its grants at once.
    pub async fn delete_team(&self, id: TeamId, audit: &AuditContext) -> Result<(), TeamError> {
        self.team_change(id, audit, "team.delete", serde_json::json!({"team": id}), |tx, id| {
            Box::pin(async move {
                sqlx::query("DELETE FROM platform.teams WHERE id = $1").bind(id).execute(&mut **tx).await?;
                Ok(())
            })
        })
        .await
    }

    /// Puts `who` in the team (again: nothing changes).
    pub async fn add_team_member(
        &self,
        id: TeamId,
        who: SubjectRef<'_>,
        audit: &AuditContext,
    ) -> Result<(), TeamError> {
        let detail = serde_json::json!({"team": id, "target_issuer": who.issuer, "target_subject": who.subject});
        let (issuer, subject) = (who.issuer.to_owned(), who.subject.to_owned());
        self.team_change(id, audit, "team.member_add", detail, move |tx, id| {
            Box::pin(async move {
                let subject = subject_id(tx, SubjectRef { issuer: &issuer, subject: &subject }).await?;
                sqlx::query(
                    "INSERT INTO platform.team_members (team_id, subject_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(subject)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Takes `who` out of the team: the next request they make is decided
    /// without its grants.
    pub async fn remove_team_member(
        &self,
        id: TeamId,
        who: SubjectRef<'_>,
        audit: &AuditContext,
    ) -> Result<(), TeamError> {
        let detail = serde_json::json!({"team": id, "target_issuer": who.issuer, "target_subject": who.subject});
        let (issuer, subject) = (who.issuer.to_owned(), who.subject.to_owned());
        self.team_change(id, audit, "team.member_remove", detail, move |tx, id| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM platform.team_members t USING platform.subjects s
                      WHERE t.team_id = $1 AND t.subject_id = s.id AND s.issuer = $2 AND s.subject = $3",
                )
                .bind(id)
                .bind(issuer)
                .bind(subject)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Sets the team's grants to exactly `grants` (a workspace, or `None`
    /// for every workspace, present and future; with the role held there).
    pub async fn set_team_grants(
        &self,
        id: TeamId,
        grants: &[(Option<Workspace>, Role)],
        audit: &AuditContext,
    ) -> Result<(), TeamError> {
        if let Some((_, role)) = grants.iter().find(|(_, role)| !STAFF.contains(role)) {
            return Err(TeamError::NotAStaffRole(*role));
        }
        let listed: Vec<serde_json::Value> = grants
            .iter()
            .map(|(w, role)| serde_json::json!({"workspace": w.as_ref().map(|w| w.slug().as_str()), "role": role.as_str()}))
            .collect();
        let detail = serde_json::json!({"team": id, "grants": listed});
        let workspaces: Vec<Option<i64>> = grants.iter().map(|(w, _)| w.as_ref().map(Workspace::id)).collect();
        let roles: Vec<Role> = grants.iter().map(|(_, role)| *role).collect();
        self.team_change(id, audit, "team.grants_set", detail, move |tx, id| {
            Box::pin(async move {
                sqlx::query("DELETE FROM platform.team_grants WHERE team_id = $1").bind(id).execute(&mut **tx).await?;
                sqlx::query(
                    "INSERT INTO platform.team_grants (team_id, workspace_id, role)
                     SELECT $1, g.workspace_id, g.role FROM unnest($2::bigint[], $3::text[]) AS g (workspace_id, role)",
                )
                .bind(id)
                .bind(&workspaces)
                .bind(&roles)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A change to team `id` in one transaction with its audit record: the
    /// team row is locked first (a missing team is [`TeamError::NotFound`]).
    async fn team_change<F>(
        &self,
        id: TeamId,
        audit: &AuditContext,
        action: &str,
        detail: serde_json::Value,
        change: F,
    ) -> Result<(), TeamError>
    where
        F: for<'t> FnOnce(
            &'t mut sqlx::Transaction<'static, sqlx::Postgres>,
            TeamId,
        ) -> futures_util::future::BoxFuture<'t, Result<(), StoreError>>,
    {
        let mut tx = self.begin().await?;
        let found: Option<TeamId> = sqlx::query_scalar("SELECT id FROM platform.teams WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if found.is_none() {
            return Err(TeamError::NotFound);
        }
        change(&mut tx, id).await?;
        sqlx::query("UPDATE platform.teams SET updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        record_change(&mut tx, audit, None, action, detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
