//! People: a portal administrator manages colleagues' portal access.

use super::*;

/// What the people page shows: the company's contacts with an e-mail
/// address, who has access in which role, and the invitations.
struct People {
    contacts: Vec<Contact>,
    members: Vec<anchor_store::portal::PortalMember>,
    invites: Vec<anchor_store::portal::Invite>,
}

async fn read_people(state: &WebState, frame: &Frame) -> Result<People, anchor_store::StoreError> {
    let contacts = state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move {
                let listing = anchor_store::sites::Listing::default();
                tx.contacts(&listing, &anchor_store::sites::ContactFilter::default(), None, 500).await
            })
        })
        .await?;
    let contacts = contacts.into_iter().filter(|c| c.email.is_some()).collect();
    let members = state.db.portal_members(&frame.grant.workspace).await?;
    let invites = state.db.portal_invites(&frame.grant.workspace, 50).await?;
    Ok(People { contacts, members, invites })
}

/// `GET /w/{ws}/portal/people`: a portal administrator's colleagues and
/// their access.
pub(crate) async fn people(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let route = "GET /w/{ws}/portal/people";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalUsersManage, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let notice = match query.get("done").map(String::as_str) {
        Some("withdrawn") => Some("The invitation was withdrawn."),
        Some("ended") => Some("Their access has ended; they are signed out."),
        _ => None,
    };
    match read_people(&state, &frame).await {
        Ok(all) => pages::page(StatusCode::OK, people_page(&frame, &all, notice, None, None)),
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/portal/people`: invites a colleague (whose portal access
/// the IT provider has turned on), or withdraws an invitation, or ends a
/// colleague's access. Written directly and audited, like staff's.
pub(crate) async fn manage_people(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    body: String,
) -> Response {
    let route = "POST /w/{ws}/portal/people";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalUsersManage, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let form = crate::admin::fields(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    if !same(&frame.session.csrf_token, field("csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let subject = frame.session.subject();
    let audit = AuditContext {
        issuer: Some(PORTAL_ISSUER.to_owned()),
        subject: Some(subject.clone()),
        request_id: request_id(&headers),
    };
    let slug = frame.slug().to_owned();
    let again = |problem: String| {
        let (state, frame) = (&state, &frame);
        async move {
            match read_people(state, frame).await {
                Ok(all) => {
                    pages::page(StatusCode::UNPROCESSABLE_ENTITY, people_page(frame, &all, None, Some(&problem), None))
                }
                Err(e) => unavailable(e),
            }
        }
    };
    match field("action") {
        "invite" => {
            let contact = match field("contact_id").parse::<ContactId>() {
                Ok(id) => match state.db.read(&frame.grant.workspace, |tx| Box::pin(tx.contact(id))).await {
                    Ok(Some(c)) if c.archived_at.is_none() => c,
                    Ok(_) => return again("That colleague is not in your company's contacts.".into()).await,
                    Err(e) => return unavailable(e),
                },
                Err(_) => return again("Choose the colleague to invite.".into()).await,
            };
            let (Some(email), true) = (contact.email.clone(), contact.portal_access) else {
                return again(format!(
                    "{} may not use the portal yet: ask your IT provider to turn on their portal access.",
                    contact.name
                ))
                .await;
            };
            let role = if field("role") == "client_admin" {
                anchor_domain::Role::ClientAdmin
            } else {
                anchor_domain::Role::ClientUser
            };
            let token = random_token();
            let new = anchor_store::portal::NewInvite {
                contact_id: contact.id,
                contact_name: contact.name.as_str(),
                email: email.as_str(),
                role,
                invited_by: SubjectRef { issuer: PORTAL_ISSUER, subject: &subject },
                invited_by_name: frame.contact.name.as_str(),
                valid_for: anchor_store::portal::INVITE_VALIDITY,
            };
            // With a mail server the worker e-mails it; else the link is shown once.
            let by_mail = state.mail;
            let created = match state.db.invite_to_portal(&frame.grant.workspace, &new, &token, &audit, by_mail).await {
                Ok(created) => created,
                Err(e) => return unavailable(e),
            };
            let link = format!("{}/w/{slug}/portal/invite/{token}", state.public_origin);
            let shown = (!by_mail).then_some(link.as_str());
            match read_people(&state, &frame).await {
                Ok(all) => pages::page(StatusCode::OK, people_page(&frame, &all, None, None, Some((&created, shown)))),
                Err(e) => unavailable(e),
            }
        }
        "withdraw" => {
            let Ok(id) = field("invite_id").parse::<anchor_domain::PortalInviteId>() else {
                return not_found("invitation");
            };
            match state.db.revoke_portal_invite(&frame.grant.workspace, id, &audit).await {
                Ok(true) => Redirect::to(&format!("/w/{slug}/portal/people?done=withdrawn")).into_response(),
                Ok(false) => not_found("invitation"),
                Err(e) => unavailable(e),
            }
        }
        "end" => {
            let Ok(id) = field("contact_id").parse::<ContactId>() else { return not_found("colleague") };
            if id == frame.contact.id {
                return again(
                    "You cannot end your own access here; another portal administrator or your IT provider can.".into(),
                )
                .await;
            }
            match state.db.revoke_portal_access(&frame.grant.workspace, id, &audit).await {
                Ok(true) => Redirect::to(&format!("/w/{slug}/portal/people?done=ended")).into_response(),
                Ok(false) => not_found("colleague"),
                Err(e) => unavailable(e),
            }
        }
        _ => pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Nothing to do", "Reload the page and try again."),
    }
}

fn people_page(
    frame: &Frame,
    all: &People,
    notice: Option<&str>,
    problem: Option<&str>,
    created: Option<(&anchor_store::portal::Invite, Option<&str>)>,
) -> Markup {
    let slug = frame.slug();
    let now = OffsetDateTime::now_utc();
    let name_of = |id: &str| all.contacts.iter().find(|c| c.id.to_string() == id).map(|c| c.name.to_string());
    let action = |name: &str, value: String, action: &str, label: &str, who: &str| {
        html! {
            form.inline method="post" action={"/w/" (slug) "/portal/people"} {
                input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                input type="hidden" name="action" value=(action);
                input type="hidden" name=(name) value=(value);
                button.quiet type="submit" aria-label={(label) ": " (who)} { (label) }
            }
        }
    };
    html! {
        (portal_layout(frame, "people", "People", html! {
            div.heading { h1 { "People" } }
            p.muted { "Your colleagues at " (frame.grant.workspace.name()) " who may use this portal. A user sees their own tickets; a portal administrator sees the company's tickets, quotes and invoices and manages access here." }
            @if let Some(notice) = notice { div.outcome.succeeded role="status" { (notice) } }
            @if let Some(problem) = problem { div.outcome.failed role="alert" { (problem) } }
            @if let Some((invite, link)) = created {
                div.outcome.succeeded role="status" {
                    @match link {
                        Some(link) => {
                            p { strong { "Invitation made for " (invite.contact_name) "." } " Send them this link; it is shown only now, works once and expires " (pages::moment(invite.expires_at)) "." }
                            label for="invite-link" { "Invitation link" }
                            input #invite-link type="text" readonly value=(link);
                        }
                        None => {
                            p { strong { "Invitation e-mailed to " (invite.contact_name) " (" (invite.email) ")." } " Its link works once and expires " (pages::moment(invite.expires_at)) "." }
                        }
                    }
                }
            }
            section.card.spaced aria-labelledby="invite-heading" {
                h2 #invite-heading { "Invite a colleague" }
                @let invitable: Vec<&Contact> = all.contacts.iter().filter(|c| c.portal_access && c.id != frame.contact.id).collect();
                @if invitable.is_empty() {
                    p.muted { "Nobody else may use the portal yet. Ask your IT provider to turn on portal access for a colleague." }
                } @else {
                    form.stack method="post" action={"/w/" (slug) "/portal/people"} {
                        input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                        input type="hidden" name="action" value="invite";
                        label for="contact_id" { "Colleague" }
                        select #contact_id name="contact_id" required {
                            @for c in &invitable { option value=(c.id) { (c.name) } }
                        }
                        label for="role" { "Role" }
                        select #role name="role" {
                            option value="client_user" { "User: their own tickets" }
                            option value="client_admin" { "Portal administrator: everything here" }
                        }
                        button type="submit" { "Make the invitation link" }
                    }
                    p.small.muted { "Only colleagues whose portal access your IT provider turned on are listed." }
                }
            }
            section.card.flush.spaced aria-labelledby="access-heading" tabindex="0" {
                h2.pad #access-heading { "Who has access" }
                table.tickets {
                    caption.visually-hidden { "Colleagues with access" }
                    thead { tr { th scope="col" { "Colleague" } th scope="col" { "Role" } th scope="col" { "Last seen" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for m in &all.members {
                            @let name = name_of(&m.contact_id).unwrap_or_else(|| m.contact_id.clone());
                            tr {
                                td { (name) }
                                td data-label="Role" { (role_label(m.role)) }
                                td data-label="Last seen" { @match m.last_seen_at { Some(at) => { (pages::moment(at)) } None => { "not yet" } } }
                                td { @if m.contact_id != frame.contact.id.to_string() { (action("contact_id", m.contact_id.clone(), "end", "End access", &name)) } @else { span.muted { "you" } } }
                            }
                        }
                    }
                }
            }
            @let pending: Vec<&anchor_store::portal::Invite> = all.invites.iter().filter(|i| i.state(now) == InviteState::Pending).collect();
            @if !pending.is_empty() {
                section.card.flush.spaced aria-labelledby="pending-heading" tabindex="0" {
                    h2.pad #pending-heading { "Invitations not taken up yet" }
                    table.tickets {
                        caption.visually-hidden { "Pending invitations" }
                        thead { tr { th scope="col" { "Colleague" } th scope="col" { "Role" } th scope="col" { "Expires" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for i in pending {
                                tr {
                                    td { (i.contact_name) }
                                    td data-label="Role" { (role_label(i.role)) }
                                    td data-label="Expires" { (pages::moment(i.expires_at)) }
                                    td { (action("invite_id", i.id.to_string(), "withdraw", "Withdraw", &i.contact_name)) }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}
