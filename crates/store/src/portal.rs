//! The client portal's door: invitations of a workspace's contacts and the
//! portal sessions they start.
//!
//! A contact who takes up an invitation becomes a subject of their own kind
//! ([`PORTAL_ISSUER`], the contact's id as the subject) with a membership of
//! the workspace in the invitation's client role. Every portal request is
//! then authorized like any other caller's (the membership is read each
//! time), and removing the membership ([`Database::revoke_portal_access`])
//! ends the contact's access on the very next request. No token issuer can
//! take the portal's issuer (configuration refuses `urn:anchor:` issuers),
//! and portal sessions live in their own table behind their own cookie, so a
//! staff session can never act as a client nor a portal session as staff.

use std::time::Duration;

use anchor_domain::{ContactId, PortalInviteId, Role};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    Database, StoreError, Workspace,
    access::{AccessEvent, AuditContext, Outcome, SubjectRef, subject_id},
};

/// The issuer of portal subjects: a contact of a workspace, by its id.
pub const PORTAL_ISSUER: &str = "urn:anchor:portal";

/// How long an invitation may be taken up.
pub const INVITE_VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The portal subject of a contact.
pub fn portal_subject(contact: &ContactId) -> String {
    contact.to_string()
}

/// An invitation to take up.
#[derive(Debug, Clone)]
pub struct NewInvite<'a> {
    pub contact_id: ContactId,
    pub contact_name: &'a str,
    pub email: &'a str,
    /// `client_user` or `client_admin`.
    pub role: Role,
    pub invited_by: SubjectRef<'a>,
    /// How the link's page names whoever invited (to ask for a new link).
    pub invited_by_name: &'a str,
    pub valid_for: Duration,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Pending,
    Used,
    Expired,
    Revoked,
}

impl InviteState {
    /// Where a one-time link stands at `now`.
    fn of(
        revoked_at: Option<OffsetDateTime>,
        used_at: Option<OffsetDateTime>,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Self {
        if revoked_at.is_some() {
            Self::Revoked
        } else if used_at.is_some() {
            Self::Used
        } else if expires_at <= now {
            Self::Expired
        } else {
            Self::Pending
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// An invitation (never its token).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Invite {
    #[schema(value_type = String)]
    pub id: PortalInviteId,
    pub workspace_slug: String,
    pub workspace_name: String,
    #[schema(value_type = String)]
    pub contact_id: ContactId,
    pub contact_name: String,
    pub email: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub invited_by_issuer: String,
    pub invited_by_subject: String,
    pub invited_by_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl Invite {
    pub fn state(&self, now: OffsetDateTime) -> InviteState {
        InviteState::of(self.revoked_at, self.used_at, self.expires_at, now)
    }
}

const INVITE_COLUMNS: &str = "i.id, w.slug AS workspace_slug, w.name AS workspace_name, i.contact_id, i.contact_name,
    i.email, i.role, i.invited_by_issuer, i.invited_by_subject, i.invited_by_name, i.created_at, i.expires_at, i.used_at, i.revoked_at";

/// What taking up an invitation came to.
#[derive(Debug, Clone)]
pub enum Taken {
    /// The session is started; the contact holds `role` in the workspace.
    Started { invite: Invite },
    /// Used, expired or revoked: nothing was started.
    Refused { invite: Invite, state: InviteState },
    /// No invitation has this token.
    Unknown,
}

/// A portal session as the portal pages see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortalSession {
    pub workspace_id: i64,
    pub contact_id: ContactId,
    pub csrf_token: String,
}

impl PortalSession {
    /// The subject the session acts as.
    pub fn subject(&self) -> String {
        portal_subject(&self.contact_id)
    }
}

/// How long a sign-in link in an e-mail may be used.
pub const LINK_VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A sign-in link (never its token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Link {
    pub workspace_slug: String,
    pub workspace_name: String,
    pub contact_id: ContactId,
    pub contact_name: String,
    /// The portal page it leads to.
    pub target: String,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Link {
    pub fn state(&self, now: OffsetDateTime) -> InviteState {
        InviteState::of(self.revoked_at, self.used_at, self.expires_at, now)
    }
}

const LINK_COLUMNS: &str = "w.slug AS workspace_slug, w.name AS workspace_name, l.contact_id, l.contact_name, l.target,
    l.expires_at, l.used_at, l.revoked_at";

/// What taking up a sign-in link came to.
#[derive(Debug, Clone)]
pub enum TakenLink {
    /// The session is started; go to the link's target.
    Started { link: Link },
    /// Used, expired or withdrawn: nothing was started.
    Refused { link: Link, state: InviteState },
    /// The contact's portal access has ended since the link was sent.
    AccessEnded { link: Link },
    /// No link has this token.
    Unknown,
}

/// A sign-in link to mint.
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    pub contact_id: ContactId,
    pub contact_name: &'a str,
    /// A path in the workspace's portal.
    pub target: &'a str,
    /// The link is minted only for a contact holding one of these roles.
    pub roles: &'a [Role],
    pub valid_for: Duration,
}

/// The contact's portal role, its membership row share-locked until the
/// transaction ends: ending the access at the same moment waits for it, and
/// then also withdraws what this transaction made.
async fn portal_role(
    conn: &mut sqlx::PgConnection,
    workspace_id: i64,
    contact: &ContactId,
) -> Result<Option<Role>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT m.role FROM platform.memberships m JOIN platform.subjects s ON s.id = m.subject_id
          WHERE m.workspace_id = $1 AND s.issuer = $2 AND s.subject = $3
            FOR SHARE OF m",
    )
    .bind(workspace_id)
    .bind(PORTAL_ISSUER)
    .bind(portal_subject(contact))
    .fetch_optional(conn)
    .await?)
}

/// A contact with portal access (a membership of the portal's kind).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PortalMember {
    pub contact_id: String,
    #[schema(value_type = String)]
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<OffsetDateTime>,
}

async fn audit_change(
    conn: &mut sqlx::PgConnection,
    audit: &AuditContext,
    workspace: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let event = AccessEvent { context: audit, workspace: Some(workspace), action, outcome: Outcome::Success, detail };
    crate::access::insert_event(conn, &event).await
}

/// Inserts an invitation in `tx`, withdrawing the contact's pending one; audited.
async fn insert_invite(
    tx: &mut sqlx::PgConnection,
    workspace: &Workspace,
    invite: &NewInvite<'_>,
    token: &str,
    audit: &AuditContext,
) -> Result<Invite, StoreError> {
    if !matches!(invite.role, Role::ClientAdmin | Role::ClientUser) {
        return Err(StoreError::WrongKindOfRole(invite.role));
    }
    let replaced: Vec<PortalInviteId> = sqlx::query_scalar(
        "UPDATE platform.portal_invites SET revoked_at = now()
          WHERE workspace_id = $1 AND contact_id = $2 AND used_at IS NULL AND revoked_at IS NULL
            AND expires_at > now()
         RETURNING id",
    )
    .bind(workspace.id())
    .bind(invite.contact_id)
    .fetch_all(&mut *tx)
    .await?;
    let id = PortalInviteId::new();
    let created: Invite = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH i AS (
            INSERT INTO platform.portal_invites (id, token_hash, workspace_id, contact_id, contact_name, email, role,
                                                 invited_by_issuer, invited_by_subject, invited_by_name, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11))
            RETURNING *)
         SELECT {INVITE_COLUMNS} FROM i JOIN platform.workspaces w ON w.id = i.workspace_id"
    )))
    .bind(id)
    .bind(digest(token))
    .bind(workspace.id())
    .bind(invite.contact_id)
    .bind(invite.contact_name)
    .bind(invite.email)
    .bind(invite.role)
    .bind(invite.invited_by.issuer)
    .bind(invite.invited_by.subject)
    .bind(invite.invited_by_name)
    .bind(invite.valid_for.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    let detail = serde_json::json!({
        "invite": id, "contact_id": invite.contact_id, "role": invite.role, "replaced": replaced,
        "expires_at": created.expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
    });
    audit_change(tx, audit, workspace.slug().as_str(), "portal.invite.created", detail).await?;
    Ok(created)
}

impl Database {
    /// Creates an invitation for `token` (whose digest alone is kept). An
    /// earlier invitation of the same contact still pending is revoked: the
    /// newest link is the only one that works (a resend). Audited.
    pub async fn create_portal_invite(
        &self,
        workspace: &Workspace,
        invite: &NewInvite<'_>,
        token: &str,
        audit: &AuditContext,
    ) -> Result<Invite, StoreError> {
        let mut tx = self.begin().await?;
        let created = insert_invite(&mut tx, workspace, invite, token, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// [`Self::create_portal_invite`], then, `by_mail`, its e-mail queued
    /// in the workspace, in the same transaction (the sender gives the
    /// invitation a new token as the message leaves, so `token` then never
    /// works). Shared by the pages and the API.
    pub async fn invite_to_portal(
        &self,
        workspace: &Workspace,
        invite: &NewInvite<'_>,
        token: &str,
        audit: &AuditContext,
        by_mail: bool,
    ) -> Result<Invite, StoreError> {
        let mut tx = self.begin().await?;
        let created = insert_invite(&mut tx, workspace, invite, token, audit).await?;
        if !by_mail {
            tx.commit().await?;
            return Ok(created);
        }
        // The platform rows are written; the rest of the transaction is the
        // workspace's unit of work.
        let mut tx = crate::tenancy::enter_workspace(tx, workspace).await?;
        let cause = created.id.to_string();
        let mail = crate::notifications::NewNotification {
            kind: crate::notifications::NotificationKind::PortalInvite,
            cause: &cause,
            contact_id: invite.contact_id,
            about: &cause,
            comment_id: None,
            address: invite.email,
        };
        tx.queue_notification(&mail).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The invitation for a token, as it stands; reading changes nothing.
    pub async fn portal_invite(&self, token: &str) -> Result<Option<Invite>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM platform.portal_invites i
               JOIN platform.workspaces w ON w.id = i.workspace_id WHERE i.token_hash = $1"
        )))
        .bind(digest(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// A workspace's invitations, newest first.
    pub async fn portal_invites(&self, workspace: &Workspace, limit: i64) -> Result<Vec<Invite>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM platform.portal_invites i
               JOIN platform.workspaces w ON w.id = i.workspace_id
              WHERE i.workspace_id = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT $2"
        )))
        .bind(workspace.id())
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes an invitation not yet taken up nor expired; audited. False when there is
    /// no such pending invitation in the workspace.
    pub async fn revoke_portal_invite(
        &self,
        workspace: &Workspace,
        id: PortalInviteId,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let revoked = sqlx::query(
            "UPDATE platform.portal_invites SET revoked_at = now()
              WHERE id = $1 AND workspace_id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
        )
        .bind(id)
        .bind(workspace.id())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if revoked {
            let detail = serde_json::json!({"invite": id});
            audit_change(&mut tx, audit, workspace.slug().as_str(), "portal.invite.revoked", detail).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    /// Takes up the invitation for `token`, in one transaction: marks it
    /// used, gives the contact's portal subject its membership in the
    /// invitation's role, and starts a portal session under `session_token`
    /// (its digest kept). A used, expired or revoked invitation starts
    /// nothing. Two takers at once: one wins, the other finds it used.
    pub async fn take_portal_invite(
        &self,
        token: &str,
        session_token: &str,
        csrf_token: &str,
        absolute: Duration,
        audit: &AuditContext,
    ) -> Result<Taken, StoreError> {
        let mut tx = self.begin().await?;
        let invite: Option<Invite> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM platform.portal_invites i
               JOIN platform.workspaces w ON w.id = i.workspace_id WHERE i.token_hash = $1 FOR UPDATE OF i"
        )))
        .bind(digest(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(invite) = invite else { return Ok(Taken::Unknown) };
        let now: OffsetDateTime = sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await?;
        let state = invite.state(now);
        if state != InviteState::Pending {
            return Ok(Taken::Refused { invite, state });
        }
        let workspace_id: i64 = sqlx::query_scalar(
            "UPDATE platform.portal_invites SET used_at = now() WHERE id = $1 RETURNING workspace_id",
        )
        .bind(invite.id)
        .fetch_one(&mut *tx)
        .await?;
        let subject = portal_subject(&invite.contact_id);
        let id = subject_id(&mut tx, SubjectRef { issuer: PORTAL_ISSUER, subject: &subject }).await?;
        let previous: Option<Role> = sqlx::query_scalar(
            "SELECT role FROM platform.memberships WHERE workspace_id = $1 AND subject_id = $2 FOR UPDATE",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO platform.memberships (workspace_id, subject_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, subject_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(invite.role)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO platform.portal_sessions (token_hash, workspace_id, contact_id, invite_id, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        )
        .bind(digest(session_token))
        .bind(workspace_id)
        .bind(invite.contact_id)
        .bind(invite.id)
        .bind(csrf_token)
        .bind(absolute.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "invite": invite.id, "target_issuer": PORTAL_ISSUER, "target_subject": subject,
            "role": invite.role, "previous_role": previous,
        });
        audit_change(&mut tx, audit, &invite.workspace_slug, "portal.invite.accepted", detail).await?;
        tx.commit().await?;
        Ok(Taken::Started { invite })
    }

    /// The live portal session for a cookie value: not past its absolute
    /// expiry and used within `idle`. Using it extends the idle window
    /// (written at most once a minute). Whether the contact may still use
    /// the portal is decided by its membership, on every request.
    pub async fn portal_session(&self, token: &str, idle: Duration) -> Result<Option<PortalSession>, StoreError> {
        Ok(sqlx::query_as(
            "WITH live AS (
                SELECT token_hash, workspace_id, contact_id, csrf_token, last_seen_at FROM platform.portal_sessions
                 WHERE token_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)),
             seen AS (
                UPDATE platform.portal_sessions s SET last_seen_at = now() FROM live
                 WHERE s.token_hash = live.token_hash AND live.last_seen_at < now() - interval '1 minute')
             SELECT workspace_id, contact_id, csrf_token FROM live",
        )
        .bind(digest(token))
        .bind(idle.as_secs_f64())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Ends one portal session (signing out).
    pub async fn end_portal_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM platform.portal_sessions WHERE token_hash = $1")
            .bind(digest(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a contact's portal access: its membership, its sessions, its
    /// invitations still pending and its sign-in links, in one transaction; audited. False when it
    /// had none of these.
    pub async fn revoke_portal_access(
        &self,
        workspace: &Workspace,
        contact: ContactId,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let subject = portal_subject(&contact);
        let mut tx = self.begin().await?;
        let role: Option<Role> = sqlx::query_scalar(
            "DELETE FROM platform.memberships m USING platform.subjects s
              WHERE m.subject_id = s.id AND m.workspace_id = $1 AND s.issuer = $2 AND s.subject = $3
             RETURNING m.role",
        )
        .bind(workspace.id())
        .bind(PORTAL_ISSUER)
        .bind(&subject)
        .fetch_optional(&mut *tx)
        .await?;
        let sessions = sqlx::query("DELETE FROM platform.portal_sessions WHERE workspace_id = $1 AND contact_id = $2")
            .bind(workspace.id())
            .bind(contact)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let invites = sqlx::query(
            "UPDATE platform.portal_invites SET revoked_at = now()
              WHERE workspace_id = $1 AND contact_id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(workspace.id())
        .bind(contact)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let links = sqlx::query(
            "UPDATE platform.portal_links SET revoked_at = now()
              WHERE workspace_id = $1 AND contact_id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(workspace.id())
        .bind(contact)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let any = role.is_some() || sessions > 0 || invites > 0 || links > 0;
        if any {
            let detail = serde_json::json!({
                "target_issuer": PORTAL_ISSUER, "target_subject": subject, "previous_role": role,
                "sessions_ended": sessions, "invites_revoked": invites, "links_revoked": links,
            });
            audit_change(&mut tx, audit, workspace.slug().as_str(), "portal.access.revoked", detail).await?;
        }
        tx.commit().await?;
        Ok(any)
    }

    /// Mints a sign-in link for `token` (its digest alone kept) when the
    /// contact holds one of `link.roles` in the workspace; false (and
    /// nothing stored) when it does not.
    pub async fn create_portal_link(
        &self,
        workspace: &Workspace,
        link: &NewLink<'_>,
        token: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let role = portal_role(&mut tx, workspace.id(), &link.contact_id).await?;
        if !role.is_some_and(|r| link.roles.contains(&r)) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO platform.portal_links (token_hash, workspace_id, contact_id, contact_name, target, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        )
        .bind(digest(token))
        .bind(workspace.id())
        .bind(link.contact_id)
        .bind(link.contact_name)
        .bind(link.target)
        .bind(link.valid_for.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The sign-in link for a token, as it stands; reading changes nothing.
    pub async fn portal_link(&self, token: &str) -> Result<Option<Link>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM platform.portal_links l
               JOIN platform.workspaces w ON w.id = l.workspace_id WHERE l.token_hash = $1"
        )))
        .bind(digest(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Takes up the sign-in link for `token`, in one transaction: checks
    /// that the contact still has portal access, marks the link used and
    /// starts a portal session under `session_token`. Audited.
    pub async fn take_portal_link(
        &self,
        token: &str,
        session_token: &str,
        csrf_token: &str,
        absolute: Duration,
        audit: &AuditContext,
    ) -> Result<TakenLink, StoreError> {
        let mut tx = self.begin().await?;
        let workspace_id: Option<i64> =
            sqlx::query_scalar("SELECT workspace_id FROM platform.portal_links WHERE token_hash = $1 FOR UPDATE")
                .bind(digest(token))
                .fetch_optional(&mut *tx)
                .await?;
        let Some(workspace_id) = workspace_id else { return Ok(TakenLink::Unknown) };
        let link: Link = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM platform.portal_links l
               JOIN platform.workspaces w ON w.id = l.workspace_id WHERE l.token_hash = $1"
        )))
        .bind(digest(token))
        .fetch_one(&mut *tx)
        .await?;
        let now: OffsetDateTime = sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await?;
        let state = link.state(now);
        if state != InviteState::Pending {
            return Ok(TakenLink::Refused { link, state });
        }
        if portal_role(&mut tx, workspace_id, &link.contact_id).await?.is_none() {
            return Ok(TakenLink::AccessEnded { link });
        }
        sqlx::query("UPDATE platform.portal_links SET used_at = now() WHERE token_hash = $1")
            .bind(digest(token))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO platform.portal_sessions (token_hash, workspace_id, contact_id, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        )
        .bind(digest(session_token))
        .bind(workspace_id)
        .bind(link.contact_id)
        .bind(csrf_token)
        .bind(absolute.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "target_issuer": PORTAL_ISSUER, "target_subject": portal_subject(&link.contact_id), "target": link.target,
        });
        audit_change(&mut tx, audit, &link.workspace_slug, "portal.link.used", detail).await?;
        tx.commit().await?;
        Ok(TakenLink::Started { link })
    }

    /// Gives a pending invitation a new token (its digest alone kept), so
    /// that the e-mail about to carry it holds the one link that works.
    /// `None` when the invitation is no longer pending (withdrawn, used,
    /// expired): there is nothing to send.
    pub async fn rekey_portal_invite(
        &self,
        workspace: &Workspace,
        id: PortalInviteId,
        token: &str,
    ) -> Result<Option<Invite>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH i AS (
                UPDATE platform.portal_invites SET token_hash = $3
                 WHERE id = $1 AND workspace_id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
                RETURNING *)
             SELECT {INVITE_COLUMNS} FROM i JOIN platform.workspaces w ON w.id = i.workspace_id"
        )))
        .bind(id)
        .bind(workspace.id())
        .bind(digest(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// The contacts with portal access to a workspace, and their roles.
    pub async fn portal_members(&self, workspace: &Workspace) -> Result<Vec<PortalMember>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.subject AS contact_id, m.role, m.created_at AS since,
                    (SELECT max(p.last_seen_at) FROM platform.portal_sessions p
                      WHERE p.workspace_id = m.workspace_id AND p.contact_id = s.subject) AS last_seen_at
               FROM platform.memberships m JOIN platform.subjects s ON s.id = m.subject_id
              WHERE m.workspace_id = $1 AND s.issuer = $2
              ORDER BY s.subject",
        )
        .bind(workspace.id())
        .bind(PORTAL_ISSUER)
        .fetch_all(self.pool())
        .await?)
    }
}
