//! The workspace authorization decision: membership, then permission. One
//! function makes it for every caller (an API bearer token, a signed-in web
//! session, a command submission), so each gets the same answer and leaves
//! the same audit record.
//!
//! - Not a member, or no such workspace: [`Denial::NotAMember`]. The two are
//!   the same answer, so a stranger learns nothing about which slugs exist.
//! - A member whose role lacks the permission: [`Denial::Role`].
//!
//! Memberships are read on every decision: a removed member is refused on
//! the very next request.

use anchor_auth::permissions::{Permission, granting};
use anchor_domain::{Role, WorkspaceSlug};
use anchor_store::{
    Database, StoreError, Workspace,
    access::{AccessEvent, AuditContext, Outcome, SubjectRef, WorkspaceAccess},
    executions::Actor,
};

/// Who asks, and through what (for the audit record).
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub who: SubjectRef<'a>,
    pub audit: &'a AuditContext,
    /// The route or page asked through, e.g. `POST /api/v1/workspaces/{ws}/tickets`.
    pub route: &'a str,
}

/// Access granted: to whom, in which workspace, for what, and the role that
/// granted it. Only [`authorize`] makes one, so holding a grant proves the
/// decision was made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Grant {
    pub actor: Actor,
    pub workspace: Workspace,
    /// The role that grants the permission (the most powerful that does).
    pub role: Role,
    pub permission: Permission,
    /// Every role the actor holds in the workspace, most powerful first.
    pub roles: Vec<Role>,
}

impl Grant {
    /// Whether any of the actor's roles there grants `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        granting(&self.roles, permission).is_some()
    }

    pub fn subject(&self) -> SubjectRef<'_> {
        SubjectRef { issuer: &self.actor.issuer, subject: &self.actor.subject }
    }
}

/// Access refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Not a member of the workspace, or it does not exist.
    NotAMember,
    /// A member, in a role without the permission.
    Role { role: Role, permission: Permission },
}

impl Denial {
    /// The problem code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAMember => "workspace_forbidden",
            Self::Role { .. } => "permission_denied",
        }
    }

    /// What the audit record gives as the reason.
    fn reason(&self) -> &'static str {
        match self {
            Self::NotAMember => "not_a_member",
            Self::Role { .. } => "role",
        }
    }
}

/// Decides whether `asking` may use `permission` in the workspace named
/// `slug` (untrusted input), and records a refusal in the access audit log.
pub async fn authorize(
    db: &Database,
    asking: Asking<'_>,
    slug: &str,
    permission: Permission,
) -> Result<Result<Grant, Denial>, StoreError> {
    let access = match WorkspaceSlug::parse(slug) {
        Ok(slug) => Some(db.workspace_access(&slug, asking.who).await?),
        Err(_) => None,
    };
    let decision = match access {
        Some(WorkspaceAccess { workspace: Some(workspace), roles }) if !roles.is_empty() => {
            match granting(&roles, permission) {
                Some(role) => {
                    let actor = Actor { issuer: asking.who.issuer.to_owned(), subject: asking.who.subject.to_owned() };
                    Ok(Grant { actor, workspace, role, permission, roles })
                }
                None => Err(Denial::Role { role: roles[0], permission }),
            }
        }
        _ => Err(Denial::NotAMember),
    };
    if let Err(denial) = &decision {
        record_denial(db, asking, Some(slug), permission, denial.reason()).await;
    }
    Ok(decision)
}

/// Records a refused authorization: which permission, through what, why. A
/// failing audit write is logged; it does not turn into a failed request.
pub async fn record_denial(
    db: &Database,
    asking: Asking<'_>,
    workspace: Option<&str>,
    permission: Permission,
    reason: &str,
) {
    let detail = serde_json::json!({"permission": permission.name(), "route": asking.route, "reason": reason});
    // A requested slug is untrusted input: keep a bounded prefix.
    let workspace: Option<String> = workspace.map(|w| w.chars().take(64).collect());
    let event = AccessEvent {
        context: asking.audit,
        workspace: workspace.as_deref(),
        action: "authorize",
        outcome: Outcome::Denied,
        detail,
    };
    if let Err(e) = db.record_access(&event).await {
        tracing::error!(error = %e, action = event.action, "cannot write the access audit log");
    }
}
