//! Admin settings, Portal access: which of the client's contacts may use
//! the portal and in which role; invitations (create, resend, revoke) and
//! taking access away. Invitations and access are configuration (psa.md):
//! written directly and audited in the same transaction, as memberships
//! are. Turning a contact's portal access on is domain state, so it goes
//! through the `contact.update` command first. Needs `members.manage`.
//!
//! The invitation link is shown once, when it is made: only its digest is
//! kept, so it cannot be shown again (a resend makes a new link and
//! withdraws the old one).

use anchor_auth::permissions::Permission;
use anchor_commands::authorize::Grant;
use anchor_domain::{ContactId, PortalInviteId, Role};
use anchor_store::{
    access::SubjectRef,
    notifications::{Notification, NotificationKind},
    portal::{INVITE_VALIDITY, Invite, InviteState, NewInvite, PortalMember},
    sessions::WebSession,
    sites::{Contact, ContactFilter, Listing},
};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use time::OffsetDateTime;

use crate::{
    WebState,
    admin::fields,
    pages::{self, ConsoleFrame},
    session::{MaybeSignedIn, SignedIn, random_token, same, same_origin},
    signin::audit_context,
};

const ROUTE_GET: &str = "GET /w/{ws}/admin/portal";

async fn members_grant(
    state: &WebState,
    session: &WebSession,
    headers: &HeaderMap,
    workspace: &str,
    route: &'static str,
) -> Result<Grant, Response> {
    crate::admin::admin_grant(state, session, headers, workspace, Permission::MembersManage, route).await
}

fn unavailable(e: anchor_store::StoreError) -> Response {
    tracing::error!(error = %e, "the portal access page could not be read or written");
    pages::declined(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Nothing was changed. Try again shortly.")
}

/// What the page shows.
struct PortalAccess {
    contacts: Vec<Contact>,
    members: Vec<PortalMember>,
    invites: Vec<Invite>,
    /// The invitations' e-mail, newest first.
    mails: Vec<Notification>,
    now: OffsetDateTime,
    /// Whether invitations can be e-mailed (a mail server is configured).
    mail_on: bool,
}

/// How an invitation just made reaches its contact.
enum Made<'a> {
    /// The link, shown this once.
    Link(&'a str),
    /// Queued for e-mail.
    Mailed,
}

async fn read(state: &WebState, grant: &Grant) -> Result<PortalAccess, anchor_store::StoreError> {
    let (contacts, mails) = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let contacts = tx.contacts(&Listing::default(), &ContactFilter::default(), None, 500).await?;
                let mails = tx.notifications_of_kind(NotificationKind::PortalInvite, 50).await?;
                Ok((contacts, mails))
            })
        })
        .await?;
    let members = state.db.portal_members(&grant.workspace).await?;
    let invites = state.db.portal_invites(&grant.workspace, 50).await?;
    Ok(PortalAccess { contacts, members, invites, mails, now: OffsetDateTime::now_utc(), mail_on: state.mail })
}

fn frame<'a>(session: &'a WebSession, grant: &'a Grant) -> ConsoleFrame<'a> {
    ConsoleFrame { may_admin: grant.allows(Permission::SettingsManage), ..crate::console::frame(session, grant) }
}

/// `GET /w/{ws}/admin/portal`.
pub(crate) async fn page(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let grant = match members_grant(&state, &session, &headers, &workspace, ROUTE_GET).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let notice = match query.get("done").map(String::as_str) {
        Some("revoked") => Some("Done. The invitation was withdrawn."),
        Some("access") => Some("Done. The contact's portal access, sessions and pending invitations have ended."),
        _ => None,
    };
    match read(&state, &grant).await {
        Ok(all) => pages::page(StatusCode::OK, render(&frame(&session, &grant), &all, notice, None, &[])),
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/admin/portal/invites`: invites (or invites again) a
/// contact, turning its portal access on first when it is off.
pub(crate) async fn invite(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let form = fields(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    if !same(&session.csrf_token, field("csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/admin/portal/invites";
    let grant = match members_grant(&state, &session, &headers, &workspace, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let role = match field("role") {
        "client_admin" => Role::ClientAdmin,
        _ => Role::ClientUser,
    };
    let (state_ref, grant_ref, session_ref) = (&state, &grant, &session);
    let again = |problems: Vec<String>| async move {
        let (state, grant, session) = (state_ref, grant_ref, session_ref);
        match read(state, grant).await {
            Ok(all) => pages::page(
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&frame(session, grant), &all, None, None, &problems),
            ),
            Err(e) => unavailable(e),
        }
    };
    let Ok(contact_id) = field("contact_id").parse::<ContactId>() else {
        return again(vec!["Choose the contact to invite.".into()]).await;
    };
    let contact = match state.db.read(&grant.workspace, |tx| Box::pin(tx.contact(contact_id))).await {
        Ok(Some(contact)) if contact.archived_at.is_none() => contact,
        Ok(_) => return again(vec!["That contact no longer exists or is archived.".into()]).await,
        Err(e) => return unavailable(e),
    };
    let Some(email) = contact.email.clone() else {
        return again(vec![format!(
            "{} has no e-mail address; add one to the contact first (the portal signs people in by e-mail).",
            contact.name
        )])
        .await;
    };
    if !contact.portal_access {
        // Domain state: through the command desk, like any change to a contact.
        let args = serde_json::json!({"contact_id": contact_id, "portal_access": true});
        let key = format!("portal-access-{contact_id}");
        match crate::commands::submit_as(
            &state,
            &workspace,
            &session,
            &headers,
            "contact.update",
            args,
            Some(&key),
            route,
        )
        .await
        {
            Ok(receipt) if receipt.execution.error.is_none() && receipt.execution.status.is_finished() => {}
            Ok(_) => {
                return again(vec![format!(
                    "{}'s portal access could not be turned on yet; try again in a moment.",
                    contact.name
                )])
                .await;
            }
            Err(page) => return page,
        }
    }
    let token = random_token();
    let audit = audit_context(&headers, &session.issuer, &session.subject);
    let new = NewInvite {
        contact_id,
        contact_name: contact.name.as_str(),
        email: email.as_str(),
        role,
        invited_by: SubjectRef { issuer: &session.issuer, subject: &session.subject },
        invited_by_name: &session.subject,
        valid_for: INVITE_VALIDITY,
    };
    let by_mail = state.mail && field("delivery") != "link";
    let created = match state.db.invite_to_portal(&grant.workspace, &new, &token, &audit, by_mail).await {
        Ok(created) => created,
        Err(e) => return unavailable(e),
    };
    let link = format!("{}/w/{}/portal/invite/{token}", state.public_origin, grant.workspace.slug());
    let made = if by_mail { Made::Mailed } else { Made::Link(&link) };
    match read(&state, &grant).await {
        Ok(all) => {
            pages::page(StatusCode::OK, render(&frame(&session, &grant), &all, None, Some((&created, made)), &[]))
        }
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/admin/portal/revoke`: withdraws an invitation
/// (`invite_id`) or ends a contact's portal access (`contact_id`).
pub(crate) async fn revoke(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let form = fields(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    if !same(&session.csrf_token, field("csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/admin/portal/revoke";
    let grant = match members_grant(&state, &session, &headers, &workspace, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let audit = audit_context(&headers, &session.issuer, &session.subject);
    let slug = grant.workspace.slug().as_str().to_owned();
    let gone = || {
        pages::declined(
            StatusCode::NOT_FOUND,
            "Nothing to withdraw",
            "Reload the page: it was already withdrawn, used or ended.",
        )
    };
    if let Ok(invite) = field("invite_id").parse::<PortalInviteId>() {
        return match state.db.revoke_portal_invite(&grant.workspace, invite, &audit).await {
            Ok(true) => Redirect::to(&format!("/w/{slug}/admin/portal?done=revoked")).into_response(),
            Ok(false) => gone(),
            Err(e) => unavailable(e),
        };
    }
    if let Ok(contact) = field("contact_id").parse::<ContactId>() {
        return match state.db.revoke_portal_access(&grant.workspace, contact, &audit).await {
            Ok(true) => Redirect::to(&format!("/w/{slug}/admin/portal?done=access")).into_response(),
            Ok(false) => gone(),
            Err(e) => unavailable(e),
        };
    }
    gone()
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::ClientAdmin => "Portal administrator (client_admin)",
        _ => "User (client_user)",
    }
}

fn render(
    frame: &ConsoleFrame<'_>,
    all: &PortalAccess,
    notice: Option<&str>,
    created: Option<(&Invite, Made<'_>)>,
    problems: &[String],
) -> Markup {
    let slug = frame.workspace.slug().as_str();
    let name_of = |id: &str| all.contacts.iter().find(|c| c.id.to_string() == id).map(|c| c.name.to_string());
    let invitable: Vec<&Contact> = all.contacts.iter().filter(|c| c.email.is_some()).collect();
    let revoke_form = |name: &str, value: String, label: &str| {
        html! {
            form.inline method="post" action={"/w/" (slug) "/admin/portal/revoke"} {
                input type="hidden" name="csrf_token" value=(frame.csrf);
                input type="hidden" name=(name) value=(value);
                button.quiet type="submit" { (label) }
            }
        }
    };
    pages::workspace_layout(
        frame,
        true,
        pages::admin_tabs(frame, "portal"),
        "Portal access",
        html! {
            div.heading { h1 { "Portal access" } }
            p.muted { "The client's contacts who may use the portal. A user sees and answers their own tickets; a portal administrator sees all of "
                (frame.workspace.name()) "'s tickets and manages colleagues' access. Invitation links work once and expire after 7 days." }
            @if let Some(notice) = notice { div.outcome.succeeded role="status" { (notice) } }
            @if !problems.is_empty() {
                div.outcome.failed role="alert" { strong { "Not invited." } ul { @for p in problems { li { (p) } } } }
            }
            @if let Some((invite, made)) = created {
                div.outcome.succeeded role="status" {
                    @match made {
                        Made::Link(link) => {
                            p { strong { "Invitation made for " (invite.contact_name) " (" (invite.email) ")." }
                                " Send them this link; it is shown only now, works once and expires " (pages::moment(invite.expires_at)) "." }
                            label for="invite-link" { "Invitation link" }
                            input #invite-link type="text" readonly value=(link);
                        }
                        Made::Mailed => {
                            p { strong { "Invitation on its way to " (invite.contact_name) " (" (invite.email) ")." }
                                " The e-mail's link works once and expires " (pages::moment(invite.expires_at))
                                ". Its delivery shows under Invitations below." }
                        }
                    }
                }
            }
            section.card.spaced aria-labelledby="invite-heading" {
                h2 #invite-heading { "Invite a contact" }
                @if invitable.is_empty() {
                    p.muted { "No contact has an e-mail address yet. Add contacts (with their e-mail) first." }
                } @else {
                    form.stack method="post" action={"/w/" (slug) "/admin/portal/invites"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        label for="contact_id" { "Contact" }
                        select #contact_id name="contact_id" required {
                            @for c in &invitable {
                                option value=(c.id) { (c.name) " <" (c.email.as_ref().map_or("", |e| e.as_str())) ">" }
                            }
                        }
                        label for="role" { "Role" }
                        select #role name="role" {
                            option value="client_user" { (role_text(Role::ClientUser)) }
                            option value="client_admin" { (role_text(Role::ClientAdmin)) }
                        }
                        @if all.mail_on {
                            fieldset {
                                legend { "Send it" }
                                label.choice { input type="radio" name="delivery" value="email" checked; " By e-mail to the contact" }
                                label.choice { input type="radio" name="delivery" value="link"; " Show me the link; I will send it myself" }
                            }
                            button type="submit" { "Invite" }
                        } @else {
                            p.small.muted { "E-mail is off on this installation (no mail server is configured): you will be shown the link to send yourself." }
                            button type="submit" { "Make the invitation link" }
                        }
                    }
                }
            }
            section.card.flush.spaced aria-labelledby="people-heading" tabindex="0" {
                h2.pad #people-heading { "Who has access" }
                @if all.members.is_empty() {
                    p.pad.muted { "Nobody has taken up an invitation yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Contacts with portal access" }
                        thead { tr { th scope="col" { "Contact" } th scope="col" { "Role" } th scope="col" { "Since" } th scope="col" { "Last seen" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for m in &all.members {
                                tr {
                                    td { (name_of(&m.contact_id).unwrap_or_else(|| m.contact_id.clone())) }
                                    td data-label="Role" { (role_text(m.role)) }
                                    td data-label="Since" { (pages::moment(m.since)) }
                                    td data-label="Last seen" { @match m.last_seen_at { Some(at) => { (pages::moment(at)) } None => { span.muted { "not since" } } } }
                                    td { (revoke_form("contact_id", m.contact_id.clone(), "End access")) }
                                }
                            }
                        }
                    }
                }
            }
            section.card.flush.spaced aria-labelledby="invites-heading" tabindex="0" {
                h2.pad #invites-heading { "Invitations" }
                @if all.invites.is_empty() {
                    p.pad.muted { "No invitations yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Invitations, newest first" }
                        thead { tr { th scope="col" { "Contact" } th scope="col" { "Role" } th scope="col" { "State" } th scope="col" { "Made" } th scope="col" { "By" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for i in &all.invites {
                                @let state = i.state(all.now);
                                tr {
                                    td { (i.contact_name) br; span.small.muted { (i.email) } }
                                    td data-label="Role" { (role_text(i.role)) }
                                    td data-label="State" {
                                        span.state { (state.as_str()) }
                                        @if let Some(m) = all.mails.iter().find(|m| m.about == i.id.to_string()) {
                                            br;
                                            span.small.muted {
                                                @match (m.state.as_str(), m.sent_at) {
                                                    ("sent", Some(at)) => { "e-mailed " (pages::moment(at)) }
                                                    ("failed", _) => { "e-mail not sent" @if let Some(e) = &m.last_error { ": " (e) } }
                                                    _ => { "e-mail queued" @if let Some(e) = &m.last_error { " (last try: " (e) ")" } }
                                                }
                                            }
                                        }
                                    }
                                    td data-label="Made" { (pages::moment(i.created_at)) }
                                    td data-label="By" { (i.invited_by_name) }
                                    td {
                                        @if state == InviteState::Pending {
                                            (revoke_form("invite_id", i.id.to_string(), "Withdraw"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.small.muted { "A contact can be invited again at any time; a new link withdraws the previous one. Ending access signs the contact out at once." }
        },
    )
}
