//! Who may use the client portal: invitations of a workspace's contacts
//! (made, listed, withdrawn) and the contacts with access (listed, ended).
//! Access configuration like memberships, written directly and recorded in
//! the access audit log; the same store calls as Admin settings, Portal
//! access. What clients do in the portal is the portal's pages'.

use anchor_domain::{ContactId, PortalInviteId, Role};
use anchor_store::portal::{INVITE_VALIDITY, Invite, NewInvite, PortalMember};
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    json::ApiJson,
    pagination::Page,
    path::ObjectId,
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(create_invitation, list_invitations))
        .routes(routes!(withdraw_invitation))
        .routes(routes!(list_members))
        .routes(routes!(end_access))
}

/// How an invitation reaches its contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Delivery {
    /// The worker e-mails it (needs `smtp`); the answer carries no link.
    Email,
    /// The answer carries the link, shown only this once, to send yourself.
    Link,
}

/// An invitation to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"contact_id": "con_01jd6m2h9x8k7v5t3r1p0n9q8w", "role": "client_user", "delivery": "link"}))]
pub(crate) struct NewInvitation {
    /// A live contact with an e-mail address whose portal access is on.
    #[schema(value_type = String, pattern = "^con_[0-9a-z]{26}$")]
    contact_id: ContactId,
    /// `client_user` (their own tickets) or `client_admin` (the company's
    /// tickets, quotes, invoices and colleagues' access).
    #[schema(value_type = String, pattern = "^(client_user|client_admin)$")]
    role: String,
    /// `email` (the default when a mail server is configured) or `link`.
    #[serde(default)]
    delivery: Option<Delivery>,
}

/// An invitation just made.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedInvitation {
    invitation: Invite,
    delivery: Delivery,
    /// With `link` delivery: the invitation link, shown only this once.
    link: Option<String>,
}

/// Invite a contact to the portal (or again: a newer invitation withdraws
/// the pending one). The link works once and for 7 days; with `email`
/// delivery the worker sends it, else the answer carries it, only this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/portal/invitations", tag = "portal", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = NewInvitation,
    responses(
        (status = 201, body = CreatedInvitation),
        (status = 409, description = "`portal_access_off`: turn the contact's portal access on first (`PATCH .../contacts/{id}`); `mail_off`: no mail server is configured, ask for `link`; or `idempotency_key_in_flight`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "No such live contact, no e-mail address, or not a client role", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_invitation(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewInvitation>,
) -> Result<Response, Problem> {
    let role = match new.role.as_str() {
        "client_user" => Role::ClientUser,
        "client_admin" => Role::ClientAdmin,
        _ => return Err(Problem::unprocessable("invalid_role", "/role", "client_user or client_admin")),
    };
    let delivery = new.delivery.unwrap_or(if state.mail_enabled { Delivery::Email } else { Delivery::Link });
    if delivery == Delivery::Email && !state.mail_enabled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "mail_off",
            "no mail server is configured on this installation (setting smtp); ask for \"delivery\": \"link\"",
        ));
    }
    let id = new.contact_id;
    let contact = state.db.read(&scope.workspace, |tx| Box::pin(tx.contact(id))).await?;
    let Some(contact) = contact.filter(|c| c.archived_at.is_none()) else {
        return Err(Problem::unprocessable("unknown_contact", "/contact_id", format!("no live contact {id}")));
    };
    let Some(email) = contact.email.as_ref() else {
        return Err(Problem::unprocessable(
            "contact_without_email",
            "/contact_id",
            format!("{} has no e-mail address; the portal signs people in by e-mail", contact.name),
        ));
    };
    if !contact.portal_access {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "portal_access_off",
            format!("{}'s portal access is off; turn it on first (PATCH .../contacts/{id})", contact.name),
        ));
    }
    let token = URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>());
    let invite = NewInvite {
        contact_id: id,
        contact_name: contact.name.as_str(),
        email: email.as_str(),
        role,
        invited_by: scope.caller.subject(),
        invited_by_name: &scope.caller.identity.subject,
        valid_for: INVITE_VALIDITY,
    };
    let by_mail = delivery == Delivery::Email;
    let invitation = state.db.invite_to_portal(&scope.workspace, &invite, &token, &scope.caller.audit, by_mail).await?;
    let link = (!by_mail)
        .then(|| format!("{}/w/{}/portal/invite/{token}", state.webhooks.public_url, scope.workspace.slug().as_str()));
    let body = CreatedInvitation { invitation, delivery, link };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The workspace's invitations, newest first (the last 200; never their links).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/portal/invitations", tag = "portal", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<Invite>)))]
pub(crate) async fn list_invitations(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<Invite>>, Problem> {
    let items = state.db.portal_invites(&scope.workspace, 200).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Withdraw an invitation not yet taken up nor expired.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/portal/invitations/{id}", tag = "portal", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Invitation id")),
    responses((status = 204, description = "Withdrawn"),
              (status = 404, description = "No such pending invitation", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn withdraw_invitation(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<PortalInviteId>,
) -> Result<StatusCode, Problem> {
    if state.db.revoke_portal_invite(&scope.workspace, id, &scope.caller.audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no pending portal invitation {id} in this workspace")))
    }
}

/// The contacts with portal access, their roles, and when each was last seen.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/portal/members", tag = "portal", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<PortalMember>)))]
pub(crate) async fn list_members(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<PortalMember>>, Problem> {
    let items = state.db.portal_members(&scope.workspace).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// End a contact's portal access: its membership, sessions, pending
/// invitations and e-mailed sign-in links, at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/portal/members/{contact_id}", tag = "portal", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("contact_id" = String, Path, description = "Contact id")),
    responses((status = 204, description = "Ended"),
              (status = 404, description = "The contact has no portal access", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn end_access(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
    Path((_, contact)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let missing = || Problem::not_found(format!("contact {contact} has no portal access in this workspace"));
    let Ok(id) = contact.parse::<ContactId>() else { return Err(missing()) };
    if state.db.revoke_portal_access(&scope.workspace, id, &scope.caller.audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing())
    }
}
