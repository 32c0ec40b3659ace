//! The Portal: the client's own door (web.md, "Portal").
//!
//! - **Invitation handoff.** Staff invite a contact (Admin settings, Portal
//!   access); the link's `GET` only shows a page with a "Continue as ..."
//!   button (mail scanners open links), bound to this browser by a cookie
//!   (so nobody can sign someone else into their own portal account with a
//!   forged form); the `POST` takes up the invitation and starts the portal
//!   session in one transaction, sets the httpOnly SameSite cookie
//!   (`__Host-` and `Secure` over https) and redirects with 303 to a clean
//!   URL. A used, expired or revoked link says so and whom to ask, sets
//!   nothing, and is counted in the audit log; every source may try only so
//!   many links a minute.
//! - **Its own kind of session.** The portal cookie is read here only; the
//!   staff pages and the API never look at it, and the portal never looks
//!   at a staff session. The contact acts as the portal subject
//!   (`urn:anchor:portal`, its contact id), authorized on every request by
//!   its membership, like any caller, through the same decision and audit.
//! - **Scope.** `client_user`: their own tickets; `client_admin`
//!   (`portal.tickets.company`): every ticket of the company. Anything
//!   outside the scope is 404. Internal notes never reach a portal page.
//! - **Permission-aware.** What the role lacks is shown disabled with the
//!   permission, the role and whom to ask; the server refuses it anyway.

use std::time::Duration;

use anchor_auth::{
    permissions::{Permission, roles_granting},
    source::ClientSource,
};
use anchor_commands::{
    authorize::{Asking, Denial, Grant, authorize},
    portal::{Scope, scope_of},
};
use anchor_domain::{CommentVisibility, ContactId, InvoiceId, Priority, QuoteId, TicketId, TicketStatus};
use anchor_store::{
    access::{AuditContext, Outcome, Refusal, SubjectRef},
    invoices::{Invoice, InvoiceFilter},
    portal::{InviteState, Link, PORTAL_ISSUER, PortalSession, Taken, TakenLink},
    quotes::Quote,
    sessions::WebSession,
    sites::Contact,
    tickets::{Comment, Ticket, TicketFilter, TicketSort},
};
use axum::{
    Form,
    extract::{FromRequestParts, Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{
    WebState, pages,
    session::{cookie, random_token, removal, same, same_origin},
    signin::{ClientAddress, retry_after},
};

/// A portal session ends after this long without use ...
pub(crate) const PORTAL_IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// ... and after this long in any case.
pub(crate) const PORTAL_ABSOLUTE: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// Invitation links one source may open or take up per minute.
pub(crate) const INVITE_TRIES_PER_MINUTE: u32 = 30;

const SECURE_COOKIE: &str = "__Host-anchor_portal";
const PLAIN_COOKIE: &str = "anchor_portal";
/// Binds the "Continue" form to the browser that loaded the link's page.
const HANDOFF_COOKIE: &str = "anchor_portal_handoff";

/// The portal cookie's name: `__Host-` prefixed when cookies are `Secure`.
pub(crate) fn cookie_name(state: &WebState) -> &'static str {
    if state.secure_cookies { SECURE_COOKIE } else { PLAIN_COOKIE }
}

/// A browser signed in to the portal.
#[derive(Debug, Clone)]
pub(crate) struct PortalSignedIn {
    pub token: String,
    pub session: PortalSession,
}

/// The portal session of this request, if its cookie names a live one.
pub(crate) struct MaybePortal(pub Option<PortalSignedIn>);

impl FromRequestParts<WebState> for MaybePortal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(cookie_name(state)).map(|c| c.value().to_owned()) else { return Ok(Self(None)) };
        match state.db.portal_session(&token, PORTAL_IDLE).await {
            Ok(Some(session)) => Ok(Self(Some(PortalSignedIn { token, session }))),
            Ok(None) => Ok(Self(None)),
            Err(e) => {
                tracing::error!(error = %e, "portal session lookup failed");
                Err(pages::declined(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The portal is unavailable",
                    "The portal could not reach its database, so nothing was done. Try again shortly.",
                ))
            }
        }
    }
}

/// Who is signed in, where, and what they may do: every portal page's frame.
pub(crate) struct Frame {
    pub grant: Grant,
    pub session: PortalSession,
    pub contact: Contact,
    pub scope: Scope,
}

impl Frame {
    fn slug(&self) -> &str {
        self.grant.workspace.slug().as_str()
    }

    fn web_session(&self) -> WebSession {
        WebSession {
            issuer: PORTAL_ISSUER.to_owned(),
            subject: self.session.subject(),
            csrf_token: self.session.csrf_token.clone(),
        }
    }

    /// Submits command `name` as the contact, through the command desk (the
    /// same decision, audit, idempotency and unit of work as every command),
    /// and waits for it; a refusal, at once or by the skill, is the page
    /// titled `failed`.
    #[allow(clippy::too_many_arguments)]
    async fn submit(
        &self,
        state: &WebState,
        headers: &HeaderMap,
        name: &str,
        args: serde_json::Value,
        key: &str,
        route: &'static str,
        failed: &str,
    ) -> Result<anchor_commands::Receipt, Response> {
        let key = Some(key).filter(|k| !k.is_empty());
        let session = self.web_session();
        let receipt = crate::commands::submit_as(state, self.slug(), &session, headers, name, args, key, route).await?;
        if let Some(error) = &receipt.execution.error {
            let refusal = anchor_commands::kit::Refusal::from_record(error);
            return Err(pages::declined(
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                failed,
                &pages::sentence(&refusal.message),
            ));
        }
        Ok(receipt)
    }

    /// Why an action needing `permission` is not offered, if it is not.
    fn lacking(&self, permission: Permission) -> Option<String> {
        (!self.grant.allows(permission)).then(|| lacking_text(permission, self.grant.role))
    }
}

fn lacking_text(permission: Permission, role: anchor_domain::Role) -> String {
    let roles: Vec<&str> = roles_granting(permission).map(|r| r.as_str()).collect();
    format!(
        "Needs {}; your role: {role}. Ask your company's portal administrator ({}).",
        permission.name(),
        roles.join(" or ")
    )
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The page for a browser without a portal session.
fn signed_out() -> Response {
    pages::page(
        StatusCode::UNAUTHORIZED,
        plain_page(
            "Please open your invitation",
            html! {
                div.card.narrow {
                    h1 { "Your portal session has ended" }
                    p { "This is your IT provider's client portal. Open the invitation link from your e-mail to continue, or ask your IT provider (or your company's portal administrator) for a new one." }
                }
            },
        ),
    )
}

fn unavailable(e: anchor_store::StoreError) -> Response {
    tracing::error!(error = %e, "a portal page could not be read or written");
    pages::declined(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Nothing was changed. Try again shortly.")
}

fn not_found(what: &str) -> Response {
    pages::page(
        StatusCode::NOT_FOUND,
        plain_page(
            "Not found",
            html! { div.card.narrow { h1 { "Not found" } p { "There is no such " (what) " for you here." } } },
        ),
    )
}

/// The decision for a portal request: signed in, a member of this
/// workspace in a role with `permission`, the session's own workspace,
/// the contact still live with portal access on.
pub(crate) async fn portal_frame(
    state: &WebState,
    signed_in: Option<PortalSignedIn>,
    headers: &HeaderMap,
    workspace: &str,
    permission: Permission,
    route: &'static str,
) -> Result<Frame, Response> {
    let Some(PortalSignedIn { session, .. }) = signed_in else { return Err(signed_out()) };
    let subject = session.subject();
    let audit = AuditContext {
        issuer: Some(PORTAL_ISSUER.to_owned()),
        subject: Some(subject.clone()),
        request_id: request_id(headers),
    };
    let asking = Asking { who: SubjectRef { issuer: PORTAL_ISSUER, subject: &subject }, audit: &audit, route };
    let grant = match authorize(&state.db, asking, workspace, permission).await {
        Ok(Ok(grant)) => grant,
        // Not theirs: it does not exist for them. Their access was
        // revoked: the session no longer opens anything.
        Ok(Err(Denial::NotAMember)) => return Err(not_found("page")),
        Ok(Err(Denial::Role { role, permission })) => return Err(forbidden(permission, role, headers)),
        Err(e) => return Err(unavailable(e)),
    };
    if grant.workspace.id() != session.workspace_id {
        return Err(not_found("page"));
    }
    let id = session.contact_id;
    let contact = match state.db.read(&grant.workspace, |tx| Box::pin(tx.contact(id))).await {
        Ok(Some(contact)) if contact.archived_at.is_none() && contact.portal_access => contact,
        Ok(_) => return Err(signed_out()),
        Err(e) => return Err(unavailable(e)),
    };
    let scope = scope_of(id, Some(grant.role).filter(|_| grant.allows(Permission::PortalTicketsCompany)));
    Ok(Frame { grant, session, contact, scope })
}

/// The 403 page: the permission, the role that has it, whom to ask, the request id.
fn forbidden(permission: Permission, role: anchor_domain::Role, headers: &HeaderMap) -> Response {
    let request = request_id(headers);
    pages::page(
        StatusCode::FORBIDDEN,
        plain_page(
            "Not allowed",
            html! {
                div.card.narrow {
                    h1 { "Not allowed" }
                    p { (lacking_text(permission, role)) }
                    @if let Some(id) = request { p.small.muted { "Request id: " code { (id) } } }
                }
            },
        ),
    )
}

// ---------------------------------------------------------------- handoff

#[derive(Debug, Deserialize)]
pub(crate) struct HandoffForm {
    handoff: String,
}

/// Counts one invitation link from `source`; a page when over the limit.
fn throttled(state: &WebState, headers: &HeaderMap, source: &ClientSource, method: &str) -> Option<Response> {
    let wait = state.invite_tries.admit(&source.bucket()).err()?;
    record_refusal(state, headers, source, "throttled", method);
    let page = pages::refused(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many invitation links",
        "Too many invitation links were opened from your network. Wait a minute, then try again.",
    );
    Some(retry_after(page, wait))
}

fn record_refusal(state: &WebState, headers: &HeaderMap, source: &ClientSource, reason: &str, method: &str) {
    state.refusals.record(Refusal {
        action: "portal.invite",
        outcome: Outcome::Failure,
        reason,
        source: &source.bucket(),
        issuer: Some(PORTAL_ISSUER),
        subject: None,
        detail: &[("method", method)],
        request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()),
    });
}

/// The page for a link that does not work (any more), and whom to ask.
fn dead_link(state: InviteState, invite: &anchor_store::portal::Invite) -> Response {
    let (title, why) = match state {
        InviteState::Used => {
            ("This link was used already", "An invitation link works once, and this one has been used.")
        }
        InviteState::Expired => {
            ("This link has expired", "Invitation links work for a limited time, and this one's has passed.")
        }
        InviteState::Revoked => (
            "This link was withdrawn",
            "Your IT provider withdrew this invitation (a newer link may have replaced it).",
        ),
        InviteState::Pending => ("This link cannot be used", "Try again shortly."),
    };
    pages::page(
        StatusCode::GONE,
        plain_page(
            title,
            html! {
                div.card.narrow {
                    h1 { (title) }
                    p { (why) }
                    p { "Ask " strong { (invite.invited_by_name) } " at your IT provider, or your company's portal administrator, for a new invitation to "
                        (invite.workspace_name) "'s portal." }
                }
            },
        ),
    )
}

fn unknown_link() -> Response {
    pages::page(
        StatusCode::NOT_FOUND,
        plain_page(
            "This link is not valid",
            html! {
                div.card.narrow {
                    h1 { "This link is not valid" }
                    p { "Check that the whole link from your e-mail was opened, or ask your IT provider for a new invitation." }
                }
            },
        ),
    )
}

/// The page of a live link: whom it is for, what it does, and the
/// "Continue" form bound to this browser (a SameSite=Strict cookie the POST
/// must carry). Showing it changes nothing.
fn handoff_page(
    state: &WebState,
    jar: CookieJar,
    company: &str,
    greeting: &str,
    contact_name: &str,
    about: Markup,
    expires_at: OffsetDateTime,
) -> Response {
    let handoff = random_token();
    let jar = jar.add(cookie(state, HANDOFF_COOKIE, handoff.clone(), 30 * 60, SameSite::Strict));
    let page = plain_page(
        "Your client portal",
        html! {
            div.card.narrow.portal-handoff {
                p.muted { (company) }
                h1 { (greeting) ", " (contact_name) }
                (about)
                form method="post" {
                    input type="hidden" name="handoff" value=(handoff);
                    button type="submit" { "Continue as " (contact_name) }
                }
                p.small.muted { "This link works once and expires " (pages::moment(expires_at)) ". Not you? Close this page." }
            }
        },
    );
    (jar, pages::page(StatusCode::OK, page)).into_response()
}

/// What a handoff POST checks before anything is read: the per-source
/// limit, then the browser binding its page set and the origin.
fn handoff_refused(
    state: &WebState,
    headers: &HeaderMap,
    source: &ClientSource,
    jar: &CookieJar,
    form: Result<Form<HandoffForm>, FormRejection>,
) -> Option<Response> {
    if let Some(page) = throttled(state, headers, source, "post") {
        return Some(page);
    }
    let bound = jar.get(HANDOFF_COOKIE).map(|c| c.value().to_owned());
    let Ok(Form(form)) = form else { return Some(pages::form_expired()) };
    if !bound.is_some_and(|b| same(&b, &form.handoff)) || !same_origin(state, headers) {
        return Some(pages::form_expired());
    }
    None
}

/// The portal session just started: its cookie set, the binding dropped,
/// and the browser sent to `to` with a 303.
fn session_started(state: &WebState, jar: CookieJar, session_token: String, to: &str) -> Response {
    let jar = jar
        .add(cookie(state, cookie_name(state), session_token, PORTAL_ABSOLUTE.as_secs() as i64, SameSite::Lax))
        .remove(removal(state, HANDOFF_COOKIE));
    (jar, Redirect::to(to)).into_response()
}

/// `GET /w/{ws}/portal/invite/{token}`: shows whom the link is for and a
/// "Continue" button. Reading it changes nothing.
pub(crate) async fn invite(
    State(state): State<WebState>,
    Path((workspace, token)): Path<(String, String)>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    if let Some(page) = throttled(&state, &headers, &source, "get") {
        return page;
    }
    let invite = match state.db.portal_invite(&token).await {
        Ok(Some(invite)) if invite.workspace_slug == workspace => invite,
        Ok(_) => {
            record_refusal(&state, &headers, &source, "unknown", "get");
            return unknown_link();
        }
        Err(e) => return unavailable(e),
    };
    let now = OffsetDateTime::now_utc();
    let invite_state = invite.state(now);
    if invite_state != InviteState::Pending {
        record_refusal(&state, &headers, &source, invite_state.as_str(), "get");
        return dead_link(invite_state, &invite);
    }
    let about = html! {
        p { "You were invited to " (invite.workspace_name) "'s client portal as "
            strong { (role_label(invite.role)) } " by " (invite.invited_by_name) "." }
        p { "Here you can open tickets with your IT provider, follow and answer them, and see what was promised." }
    };
    handoff_page(&state, jar, &invite.workspace_name, "Welcome", &invite.contact_name, about, invite.expires_at)
}

/// `POST /w/{ws}/portal/invite/{token}`: takes up the invitation, starts
/// the portal session and sends the browser to a clean URL.
pub(crate) async fn take_invite(
    State(state): State<WebState>,
    Path((workspace, token)): Path<(String, String)>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<HandoffForm>, FormRejection>,
) -> Response {
    if let Some(page) = handoff_refused(&state, &headers, &source, &jar, form) {
        return page;
    }
    // The link must name its own workspace: read first, then take it up.
    match state.db.portal_invite(&token).await {
        Ok(Some(invite)) if invite.workspace_slug == workspace => {}
        Ok(_) => {
            record_refusal(&state, &headers, &source, "unknown", "post");
            return unknown_link();
        }
        Err(e) => return unavailable(e),
    }
    let session_token = random_token();
    let csrf = random_token();
    let audit =
        AuditContext { issuer: Some(PORTAL_ISSUER.to_owned()), subject: None, request_id: request_id(&headers) };
    match state.db.take_portal_invite(&token, &session_token, &csrf, PORTAL_ABSOLUTE, &audit).await {
        Ok(Taken::Started { invite }) => {
            session_started(&state, jar, session_token, &format!("/w/{}/portal", invite.workspace_slug))
        }
        Ok(Taken::Refused { invite, state: invite_state }) => {
            record_refusal(&state, &headers, &source, invite_state.as_str(), "post");
            dead_link(invite_state, &invite)
        }
        Ok(Taken::Unknown) => {
            record_refusal(&state, &headers, &source, "unknown", "post");
            unknown_link()
        }
        Err(e) => unavailable(e),
    }
}

/// The page for a sign-in link that does not work (any more).
fn dead_sign_in_link(state: Option<InviteState>, link: &Link) -> Response {
    let (title, why) = match state {
        Some(InviteState::Used) => ("This link was used already", "A sign-in link from an e-mail works once."),
        Some(InviteState::Expired) => ("This link has expired", "Sign-in links from e-mails work for 7 days."),
        Some(InviteState::Revoked) | None => {
            ("Your portal access has ended", "Your IT provider or your company's portal administrator ended it.")
        }
        Some(InviteState::Pending) => ("This link cannot be used", "Try again shortly."),
    };
    pages::page(
        StatusCode::GONE,
        plain_page(
            title,
            html! {
                div.card.narrow {
                    h1 { (title) }
                    p { (why) }
                    p { "Sign in from a newer e-mail, or ask your IT provider or your company's portal administrator for a new invitation to "
                        (link.workspace_name) "'s portal." }
                }
            },
        ),
    )
}

/// `GET /w/{ws}/portal/link/{token}`: a sign-in link from one of the
/// portal's e-mails. Shows whom it is for and a "Continue" button; reading
/// it changes nothing (mail scanners open links).
pub(crate) async fn sign_in_link(
    State(state): State<WebState>,
    Path((workspace, token)): Path<(String, String)>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    if let Some(page) = throttled(&state, &headers, &source, "get") {
        return page;
    }
    let link = match state.db.portal_link(&token).await {
        Ok(Some(link)) if link.workspace_slug == workspace => link,
        Ok(_) => {
            record_refusal(&state, &headers, &source, "unknown", "get");
            return unknown_link();
        }
        Err(e) => return unavailable(e),
    };
    let link_state = link.state(OffsetDateTime::now_utc());
    if link_state != InviteState::Pending {
        record_refusal(&state, &headers, &source, link_state.as_str(), "get");
        return dead_sign_in_link(Some(link_state), &link);
    }
    let about = html! { p { "This link from your e-mail signs you in to " (link.workspace_name) "'s client portal." } };
    handoff_page(&state, jar, &link.workspace_name, "Hello", &link.contact_name, about, link.expires_at)
}

/// `POST /w/{ws}/portal/link/{token}`: takes up the sign-in link, starts
/// the portal session and sends the browser to the page it leads to.
pub(crate) async fn take_sign_in_link(
    State(state): State<WebState>,
    Path((workspace, token)): Path<(String, String)>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<HandoffForm>, FormRejection>,
) -> Response {
    if let Some(page) = handoff_refused(&state, &headers, &source, &jar, form) {
        return page;
    }
    match state.db.portal_link(&token).await {
        Ok(Some(link)) if link.workspace_slug == workspace => {}
        Ok(_) => {
            record_refusal(&state, &headers, &source, "unknown", "post");
            return unknown_link();
        }
        Err(e) => return unavailable(e),
    }
    let session_token = random_token();
    let csrf = random_token();
    let audit =
        AuditContext { issuer: Some(PORTAL_ISSUER.to_owned()), subject: None, request_id: request_id(&headers) };
    match state.db.take_portal_link(&token, &session_token, &csrf, PORTAL_ABSOLUTE, &audit).await {
        Ok(TakenLink::Started { link }) => session_started(&state, jar, session_token, &link.target),
        Ok(TakenLink::Refused { link, state: link_state }) => {
            record_refusal(&state, &headers, &source, link_state.as_str(), "post");
            dead_sign_in_link(Some(link_state), &link)
        }
        Ok(TakenLink::AccessEnded { link }) => {
            record_refusal(&state, &headers, &source, "access_ended", "post");
            dead_sign_in_link(None, &link)
        }
        Ok(TakenLink::Unknown) => {
            record_refusal(&state, &headers, &source, "unknown", "post");
            unknown_link()
        }
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf_token: String,
}

/// `POST /w/{ws}/portal/signout`.
pub(crate) async fn sign_out(
    State(state): State<WebState>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Some(signed_in) = signed_in else { return signed_out() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&signed_in.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    if let Err(e) = state.db.end_portal_session(&signed_in.token).await {
        return unavailable(e);
    }
    let page = plain_page(
        "Signed out",
        html! {
            div.card.narrow {
                h1 { "You are signed out" }
                p { "To come back, open a new invitation link from your IT provider." }
            }
        },
    );
    let mut response =
        (jar.remove(removal(&state, cookie_name(&state))), pages::page(StatusCode::OK, page)).into_response();
    response.headers_mut().insert("clear-site-data", axum::http::HeaderValue::from_static("\"cache\""));
    response
}

// ---------------------------------------------------------------- tickets

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// `open` (default) or `all`.
    #[serde(default)]
    show: Option<String>,
    /// `mine` (default for a company-wide role: every ticket) ...
    #[serde(default)]
    whose: Option<String>,
}

/// `GET /w/{ws}/portal`: the tickets in scope, newest first.
pub(crate) async fn home(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let all = query.show.as_deref() == Some("all");
    let mine_only = query.whose.as_deref() == Some("mine") || frame.scope != Scope::Company;
    let mut filter = TicketFilter { open_only: !all, ..TicketFilter::default() };
    if mine_only {
        filter.contact_id = Some(frame.contact.id);
    }
    frame.scope.narrow(&mut filter);
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move { tx.tickets(&filter, TicketSort::Updated, None, 100).await })
        })
        .await;
    let tickets = match read {
        Ok(read) => read,
        Err(e) => return unavailable(e),
    };
    pages::page(StatusCode::OK, list_page(&frame, &tickets, all, mine_only))
}

/// `GET /w/{ws}/portal/tickets/new`.
pub(crate) async fn new_ticket(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/tickets/new";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    pages::page(StatusCode::OK, new_ticket_page(&frame, &NewTicketForm::default(), None))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewTicketForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
}

/// `POST /w/{ws}/portal/tickets`: opens a ticket (`portal.ticket.open`).
pub(crate) async fn open_ticket(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<NewTicketForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let mut problems = Vec::new();
    if form.title.trim().is_empty() || form.title.trim().chars().count() > 200 {
        problems.push("Subject: one line, 1 to 200 characters.");
    }
    if form.description.trim().is_empty() || form.description.chars().count() > 20_000 {
        problems.push("What happened: up to 20,000 characters, and not empty.");
    }
    let priority = Priority::ALL.into_iter().find(|p| p.as_str() == form.priority).unwrap_or(Priority::P3);
    if !problems.is_empty() {
        let page = new_ticket_page(&frame, &form, Some(&problems));
        return pages::page(StatusCode::UNPROCESSABLE_ENTITY, page);
    }
    let args = serde_json::json!({
        "title": form.title.trim(), "description": form.description.trim(), "priority": priority.as_str(),
    });
    let failed = "The ticket was not opened";
    let key = &form.idempotency_key;
    let receipt = match frame.submit(&state, &headers, "portal.ticket.open", args, key, route, failed).await {
        Ok(receipt) => receipt,
        Err(page) => return page,
    };
    let slug = frame.slug();
    match receipt.execution.result.as_ref().and_then(|r| r["ticket_id"].as_str()) {
        Some(ticket) => Redirect::to(&format!("/w/{slug}/portal/tickets/{ticket}?opened=1")).into_response(),
        // Still on its way: the list shows it once it is there.
        None => Redirect::to(&format!("/w/{slug}/portal?pending=1")).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TicketQuery {
    #[serde(default)]
    opened: Option<String>,
    #[serde(default)]
    replied: Option<String>,
    #[serde(default)]
    rated: Option<String>,
}

/// Everything a portal ticket page shows.
pub(crate) struct TicketView {
    ticket: Ticket,
    /// Public comments only, with their authors' names.
    comments: Vec<(Comment, String)>,
    sla: Option<anchor_sla::SlaClocks>,
    contact_name: Option<String>,
    now: OffsetDateTime,
    key: String,
    /// The current resolution's number (0: never resolved) and the ratings given.
    resolution: i32,
    ratings: Vec<anchor_store::tickets::Rating>,
}

/// `GET /w/{ws}/portal/tickets/{id}`.
pub(crate) async fn ticket(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal/tickets/{id}";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    match read_ticket(&state, &frame, id).await {
        Ok(Some(view)) => {
            let notice = if query.opened.is_some() {
                Some("Your ticket is open. We will answer here; you can add to it below at any time.")
            } else if query.replied.is_some() {
                Some("Your reply was added. We owe you the next answer.")
            } else if query.rated.is_some() {
                Some("Thank you for your rating.")
            } else {
                None
            };
            pages::page(StatusCode::OK, ticket_page(&frame, &view, notice))
        }
        Ok(None) => not_found("ticket"),
        Err(e) => unavailable(e),
    }
}

async fn read_ticket(
    state: &WebState,
    frame: &Frame,
    id: TicketId,
) -> Result<Option<TicketView>, anchor_store::StoreError> {
    let scope = frame.scope;
    state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move {
                let Some(ticket) = tx.ticket(id).await? else { return Ok(None) };
                if !scope.sees(&ticket) {
                    return Ok(None);
                }
                let now = tx.clock().await?;
                let mut comments = Vec::new();
                for comment in tx.ticket_comments(id).await? {
                    if comment.visibility != CommentVisibility::Public {
                        continue;
                    }
                    let name = if comment.author.issuer == PORTAL_ISSUER {
                        match comment.author.subject.parse::<ContactId>() {
                            Ok(contact) => tx
                                .contact(contact)
                                .await?
                                .map_or_else(|| "Your colleague".to_owned(), |c| c.name.to_string()),
                            Err(_) => "Your colleague".to_owned(),
                        }
                    } else {
                        format!("{} (IT support)", comment.author.subject)
                    };
                    comments.push((comment, name));
                }
                let sla = anchor_commands::sla::clocks(tx, id, now).await.unwrap_or_else(|e| {
                    tracing::error!(ticket = %id, error = %e, "a ticket's SLA clocks cannot be replayed");
                    None
                });
                let contact_name = match ticket.contact_id {
                    Some(contact) => tx.contact(contact).await?.map(|c| c.name.to_string()),
                    None => None,
                };
                let resolution = tx.resolutions(id).await?;
                let ratings = tx.ratings(id).await?;
                Ok(Some(TicketView {
                    ticket,
                    comments,
                    sla,
                    contact_name,
                    now,
                    key: random_token(),
                    resolution,
                    ratings,
                }))
            })
        })
        .await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    body: String,
}

/// `POST /w/{ws}/portal/tickets/{id}/reply`: `portal.ticket.reply`.
pub(crate) async fn reply(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets/{id}/reply";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    // Outside the scope it does not exist (the skill decides again).
    match read_ticket(&state, &frame, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found("ticket"),
        Err(e) => return unavailable(e),
    };
    if form.body.trim().is_empty() || form.body.chars().count() > 20_000 {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The reply is empty or too long",
            "Write up to 20,000 characters, then send it again.",
        );
    }
    let args = serde_json::json!({"ticket_id": id, "body": form.body.trim()});
    let failed = "The reply was not added";
    let key = &form.idempotency_key;
    if let Err(page) = frame.submit(&state, &headers, "portal.ticket.reply", args, key, route, failed).await {
        return page;
    }
    Redirect::to(&format!("/w/{}/portal/tickets/{id}?replied=1", frame.slug())).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

/// `POST /w/{ws}/portal/tickets/{id}/rate`: `portal.ticket.rate`.
pub(crate) async fn rate(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<RateForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets/{id}/rate";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    match read_ticket(&state, &frame, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found("ticket"),
        Err(e) => return unavailable(e),
    }
    let Some(score) = form.score.parse::<u8>().ok().filter(|s| (1..=5).contains(s)) else {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a score",
            "Pick 1 (poor) to 5 (excellent), then send it again.",
        );
    };
    let mut args = serde_json::json!({"ticket_id": id, "score": score});
    if let Some(comment) = Some(form.comment.trim()).filter(|c| !c.is_empty()) {
        args["comment"] = comment.into();
    }
    let failed = "Your rating was not recorded";
    let key = &form.idempotency_key;
    if let Err(page) = frame.submit(&state, &headers, "portal.ticket.rate", args, key, route, failed).await {
        return page;
    }
    Redirect::to(&format!("/w/{}/portal/tickets/{id}?rated=1", frame.slug())).into_response()
}

// ---------------------------------------------------------------- quotes

/// `GET /w/{ws}/portal/quotes`: the quotes offered to the company.
pub(crate) async fn quotes(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/quotes";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalQuotesRead, route).await {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let read = state.db.read(&frame.grant.workspace, |tx| Box::pin(async move { tx.quotes(None, 200).await })).await;
    match read {
        Ok(quotes) => {
            let offered: Vec<Quote> = quotes.into_iter().filter(|q| q.state != "draft").collect();
            pages::page(StatusCode::OK, quotes_page(&frame, &offered))
        }
        Err(e) => unavailable(e),
    }
}

/// A quote the company may see: not a draft, and only for whoever may read
/// quotes (to anyone else it does not exist).
async fn offered(state: &WebState, frame: &Frame, id: &str) -> Result<Option<Quote>, anchor_store::StoreError> {
    let Ok(id) = id.parse::<QuoteId>() else { return Ok(None) };
    if !frame.grant.allows(Permission::PortalQuotesRead) {
        return Ok(None);
    }
    let quote = state.db.read(&frame.grant.workspace, |tx| Box::pin(tx.quote(id))).await?;
    Ok(quote.filter(|q| q.state != "draft"))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QuoteQuery {
    #[serde(default)]
    decided: Option<String>,
}

/// `GET /w/{ws}/portal/quotes/{id}`.
pub(crate) async fn quote(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<QuoteQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal/quotes/{id}";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    match offered(&state, &frame, &id).await {
        Ok(Some(quote)) => {
            let today = OffsetDateTime::now_utc().date();
            pages::page(StatusCode::OK, quote_page(&frame, &quote, today, query.decided.as_deref()))
        }
        Ok(None) => not_found("quote"),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    /// `accept` or `decline`.
    #[serde(default)]
    decision: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    reason: String,
}

/// `POST /w/{ws}/portal/quotes/{id}/decide`: `portal.quote.accept` or
/// `portal.quote.decline`, on the version the page showed.
pub(crate) async fn decide(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/quotes/{id}/decide";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let quote = match offered(&state, &frame, &id).await {
        Ok(Some(quote)) => quote,
        Ok(None) => return not_found("quote"),
        Err(e) => return unavailable(e),
    };
    if let Some(permission) = [Permission::PortalQuotesDecide].into_iter().find(|p| !frame.grant.allows(*p)) {
        return forbidden(permission, frame.grant.role, &headers);
    }
    let (name, args) = match form.decision.as_str() {
        "accept" => ("portal.quote.accept", serde_json::json!({"quote_id": quote.id, "sha256": form.sha256})),
        "decline" => {
            let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
            let mut args = serde_json::json!({"quote_id": quote.id, "sha256": form.sha256});
            if let Some(reason) = reason {
                args["reason"] = reason.into();
            }
            ("portal.quote.decline", args)
        }
        _ => {
            return pages::declined(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose accept or decline",
                "Reload the page and try again.",
            );
        }
    };
    let failed = "Your decision was not recorded";
    if let Err(page) = frame.submit(&state, &headers, name, args, &form.idempotency_key, route, failed).await {
        return page;
    }
    let done = if form.decision == "accept" { "accepted" } else { "declined" };
    Redirect::to(&format!("/w/{}/portal/quotes/{}?decided={done}", frame.slug(), quote.id)).into_response()
}

// ---------------------------------------------------------------- invoices

/// `GET /w/{ws}/portal/invoices`: the company's issued invoices and credit
/// notes (never a draft), with what is still owed and their PDFs.
pub(crate) async fn invoices(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/invoices";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalInvoicesRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let filter = InvoiceFilter { issued: true, ..InvoiceFilter::default() };
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| Box::pin(async move { tx.invoices(&filter, None, 200).await }))
        .await;
    match read {
        Ok(invoices) => pages::page(StatusCode::OK, invoices_page(&frame, &invoices)),
        Err(e) => unavailable(e),
    }
}

/// `GET /w/{ws}/portal/invoices/{id}/pdf`: the PDF as rendered when the
/// document was finalized, to whoever may read the company's invoices.
pub(crate) async fn invoice_pdf(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/invoices/{id}/pdf";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    // Outside the role's scope, or a draft: no such document.
    let Ok(id) = id.parse::<InvoiceId>() else { return not_found("invoice") };
    if !frame.grant.allows(Permission::PortalInvoicesRead) {
        return not_found("invoice");
    }
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move {
                let Some(invoice) = tx.invoice(id).await? else { return Ok(None) };
                if invoice.state == anchor_domain::InvoiceState::Draft {
                    return Ok(None);
                }
                Ok(tx.invoice_pdf(id).await?.map(|pdf| (pdf, invoice.number)))
            })
        })
        .await;
    match read {
        Ok(Some(((bytes, sha256), number))) => crate::financials::pdf_response(bytes, &sha256, number, id),
        Ok(None) => not_found("invoice"),
        Err(e) => unavailable(e),
    }
}

// ---------------------------------------------------------------- people

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
            let created = match state.db.create_portal_invite(&frame.grant.workspace, &new, &token, &audit).await {
                Ok(created) => created,
                Err(e) => return unavailable(e),
            };
            let link = format!("{}/w/{slug}/portal/invite/{token}", state.public_origin);
            match read_people(&state, &frame).await {
                Ok(all) => pages::page(StatusCode::OK, people_page(&frame, &all, None, None, Some((&created, &link)))),
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

// ---------------------------------------------------------------- templates

fn role_label(role: anchor_domain::Role) -> &'static str {
    match role {
        anchor_domain::Role::ClientAdmin => "portal administrator",
        _ => "user",
    }
}

/// A page outside a portal session (the link's page, refusals).
fn plain_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Client portal" }
                link rel="stylesheet" href=(crate::assets::url("anchor.css"));
            }
            body.portal {
                header { span.brand { "Client portal" } }
                main { (body) }
            }
        }
    }
}

/// The frame of every signed-in portal page: whose data this is, who is
/// signed in, the sections.
fn portal_layout(frame: &Frame, here: &str, title: &str, body: Markup) -> Markup {
    // The home page (the ticket list) also says what the role cannot do here.
    let home = here == "home";
    let here = if home { "tickets" } else { here };
    let slug = frame.slug();
    let company = frame.grant.workspace.name();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (company) " · Client portal" }
                link rel="stylesheet" href=(crate::assets::url("anchor.css"));
            }
            body.portal {
                header {
                    span.bar {
                        a.brand href={"/w/" (slug) "/portal"} { "Client portal" }
                        nav aria-label="Portal" {
                            a href={"/w/" (slug) "/portal"} aria-current=[(here == "tickets").then_some("page")] { "Tickets" }
                            a href={"/w/" (slug) "/portal/kb"} aria-current=[(here == "kb").then_some("page")] { "Help articles" }
                            @if frame.grant.allows(Permission::PortalQuotesRead) {
                                a href={"/w/" (slug) "/portal/quotes"} aria-current=[(here == "quotes").then_some("page")] { "Quotes" }
                            }
                            @if frame.grant.allows(Permission::PortalInvoicesRead) {
                                a href={"/w/" (slug) "/portal/invoices"} aria-current=[(here == "invoices").then_some("page")] { "Invoices" }
                            }
                            @if frame.grant.allows(Permission::PortalUsersManage) {
                                a href={"/w/" (slug) "/portal/people"} aria-current=[(here == "people").then_some("page")] { "People" }
                            }
                        }
                    }
                    span {
                        span.muted { (frame.contact.name) " · " (role_label(frame.grant.role)) }
                        " "
                        form.inline method="post" action={"/w/" (slug) "/portal/signout"} {
                            input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
                div.company-banner role="note" {
                    "You are viewing " strong { (company) } "'s data"
                    @if frame.scope != Scope::Company { ": your own tickets" }
                    "."
                }
                main.wide {
                    (body)
                    @let lacking: Vec<(&str, String)> = [
                        (Permission::PortalQuotesRead, "Quotes: view, accept quote"),
                        (Permission::PortalInvoicesRead, "Invoices: view, download PDF"),
                        (Permission::PortalUsersManage, "People: invite colleagues"),
                    ].into_iter().filter_map(|(p, what)| frame.lacking(p).map(|why| (what, why))).collect();
                    @if home && !lacking.is_empty() {
                        aside.card.spaced.lacking aria-labelledby="lacking-heading" {
                            h2 #lacking-heading { "Not available to you" }
                            @for (n, (what, why)) in lacking.iter().enumerate() {
                                p {
                                    button type="button" disabled aria-describedby={"why-lacking-" (n)} { (what) }
                                    " "
                                    span.small.muted id={"why-lacking-" (n)} { (why) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_class(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Resolved | TicketStatus::Closed => "succeeded",
        TicketStatus::WaitingOnClient => "queued",
        _ => "running",
    }
}

fn list_page(frame: &Frame, tickets: &[Ticket], all: bool, mine_only: bool) -> Markup {
    let slug = frame.slug();
    let company = frame.scope == Scope::Company;
    let lacking_company = frame.lacking(Permission::PortalTicketsCompany);
    let lacking_write = frame.lacking(Permission::PortalTicketsWrite);
    let link = |show: &str, whose: &str| format!("/w/{slug}/portal?show={show}&whose={whose}");
    let whose = if mine_only { "mine" } else { "company" };
    html! {
        (portal_layout(frame, "home", "Tickets", html! {
            div.heading {
                h1 { @if mine_only { "My tickets" } @else { "All of " (frame.grant.workspace.name()) "'s tickets" } }
                @match &lacking_write {
                    None => { a.button href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } }
                    Some(why) => {
                        span.disabled-action {
                            button type="button" disabled aria-describedby="why-open" { "Open a ticket" }
                            span #why-open.small.muted { (why) }
                        }
                    }
                }
            }
            nav.subnav aria-label="Which tickets" {
                a href=(link("open", whose)) aria-current=[(!all).then_some("page")] { "Open" }
                a href=(link("all", whose)) aria-current=[all.then_some("page")] { "All, including resolved" }
                @if company {
                    a href=(link(if all { "all" } else { "open" }, "mine")) aria-current=[mine_only.then_some("page")] { "Mine" }
                    a href=(link(if all { "all" } else { "open" }, "company")) aria-current=[(!mine_only).then_some("page")] { "Everyone's" }
                } @else if let Some(why) = &lacking_company {
                    span.disabled-action {
                        button type="button" disabled aria-describedby="why-company" { "Everyone's tickets" }
                        span #why-company.small.muted { (why) }
                    }
                }
            }
            div.card.flush tabindex="0" role="region" aria-label="Tickets" {
                @if tickets.is_empty() {
                    p.pad { @if all { "No tickets yet." } @else { "No open tickets. " }
                        @if lacking_write.is_none() { a href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } " when you need help." } }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Tickets" }
                        thead { tr {
                            th scope="col" { "Ticket" }
                            th scope="col" { "Status" }
                            th scope="col" { "Priority" }
                            th scope="col" { "Next answer" }
                            th scope="col" { "Updated" }
                        } }
                        tbody {
                            @for t in tickets {
                                tr {
                                    td { a href={"/w/" (slug) "/portal/tickets/" (t.id)} { (t.title.as_str()) } }
                                    td { span class={"status " (status_class(t.status))} { (pages::status_text(t.status)) } }
                                    td { span class={"prio " (t.priority.as_str())} { (pages::priority_label(t.priority)) } }
                                    td data-label="Next answer" { (owes(t)) }
                                    td data-label="Updated" { (pages::moment(t.updated_at)) }
                                }
                            }
                        }
                    }
                }
            }
            p.small.muted { "Times are in UTC." }
        }))
    }
}

fn owes(t: &Ticket) -> Markup {
    if !t.status.is_open() {
        return html! { span.muted { "Nobody: it is " (pages::status_text(t.status).to_lowercase()) } };
    }
    match t.awaiting {
        anchor_domain::Awaiting::Us => html! { span.owes.us { "Your IT provider" } },
        anchor_domain::Awaiting::Client => html! { span.owes.client { "You" } },
    }
}

fn new_ticket_page(frame: &Frame, form: &NewTicketForm, problems: Option<&[&str]>) -> Markup {
    let slug = frame.slug();
    let key = random_token();
    let lacking = frame.lacking(Permission::PortalTicketsWrite);
    html! {
        (portal_layout(frame, "tickets", "Open a ticket", html! {
            p.crumbs { a href={"/w/" (slug) "/portal"} { "Tickets" } " / Open a ticket" }
            div.card.form-card {
                h1 { "Open a ticket" }
                @if let Some(problems) = problems {
                    div.outcome.failed role="alert" { strong { "Not sent yet." } ul { @for p in problems { li { (p) } } } }
                }
                @if let Some(why) = &lacking { p.outcome.failed role="note" { (why) } }
                form.stack method="post" action={"/w/" (slug) "/portal/tickets"} {
                    input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                    input type="hidden" name="idempotency_key" value=(key);
                    label for="title" { "Subject" }
                    input #title type="text" name="title" required maxlength="200" value=(form.title) autocomplete="off";
                    label for="description" { "What happened?" }
                    textarea #description name="description" required rows="7" maxlength="20000" { (form.description) }
                    label for="priority" { "How urgent is it?" }
                    select #priority name="priority" {
                        option value="p1" selected[form.priority == "p1"] { "Critical: work has stopped for many people" }
                        option value="p2" selected[form.priority == "p2"] { "High: work has stopped for me" }
                        option value="p3" selected[form.priority.is_empty() || form.priority == "p3"] { "Normal: something is broken or slow" }
                        option value="p4" selected[form.priority == "p4"] { "Low: a question or a request" }
                    }
                    p.small.muted { "Opened as " (frame.contact.name)
                        @if let Some(email) = &frame.contact.email { " (" (email.as_str()) ")" }
                        ". Your IT provider sees who you are and where you work." }
                    button type="submit" disabled[lacking.is_some()] { "Open the ticket" }
                }
            }
        }))
    }
}

fn promise(c: &anchor_sla::TargetClock, label: &str, now: OffsetDateTime) -> Markup {
    html! {
        div.promise {
            dt { (label) }
            dd {
                @if let Some(done) = c.completed_at {
                    "Done " (pages::moment(done))
                    @if c.state == anchor_sla::ClockState::Breached { " (later than promised)" }
                } @else if let Some(due) = c.due_at {
                    "By " (pages::moment(due)) " "
                    span.small.muted { "(" (pages::due_text(due, now)) ")" }
                    @if c.state == anchor_sla::ClockState::Paused { " " span.muted { "paused while we wait for you" } }
                } @else if c.target_duration.is_none() {
                    span.muted { "No promise for this priority" }
                } @else {
                    span.muted { "Starts with our first reply" }
                }
            }
        }
    }
}

fn ticket_page(frame: &Frame, view: &TicketView, notice: Option<&str>) -> Markup {
    let slug = frame.slug();
    let t = &view.ticket;
    let lacking = frame.lacking(Permission::PortalTicketsWrite);
    let closed = t.status == TicketStatus::Closed;
    html! {
        (portal_layout(frame, "tickets", t.title.as_str(), html! {
            p.crumbs { a href={"/w/" (slug) "/portal"} { "Tickets" } " / " (t.title.as_str()) }
            @if let Some(notice) = notice { div.outcome.succeeded role="status" { (notice) } }
            div.heading { h1 { (t.title.as_str()) } }
            div.badges {
                span class={"status " (status_class(t.status))} { (pages::status_text(t.status)) }
                " "
                span class={"prio " (t.priority.as_str())} { (pages::priority_label(t.priority)) }
                " Next answer: " (owes(t))
            }
            div.columns {
                div {
                    section.card aria-labelledby="conversation" {
                        h2 #conversation { "Conversation" }
                        ol.timeline {
                            li.entry {
                                p.meta {
                                    strong {
                                        @if t.created_by.issuer == PORTAL_ISSUER { (view.contact_name.as_deref().unwrap_or("You")) }
                                        @else { (t.created_by.subject) " (IT support)" }
                                    }
                                    " opened it · " (pages::moment(t.created_at))
                                }
                                @if t.description.trim().is_empty() { p.muted { "No description." } }
                                @else { div.pre { (t.description) } }
                            }
                            @for (c, name) in &view.comments {
                                li.entry {
                                    p.meta { strong { (name) } " · " (pages::moment(c.created_at)) }
                                    div.pre { (c.body) }
                                }
                            }
                        }
                    }
                    (rating_part(frame, view, lacking.as_deref()))
                    section.card aria-labelledby="reply-heading" {
                        h2 #reply-heading { "Reply" }
                        @if closed {
                            p.muted { "This ticket is closed. " a href={"/w/" (slug) "/portal/tickets/new"} { "Open a new ticket" } " if you need more help." }
                        } @else {
                            @if let Some(why) = &lacking { p.small.muted #why-reply { (why) } }
                            form.composer method="post" action={"/w/" (slug) "/portal/tickets/" (t.id) "/reply"} {
                                input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                                input type="hidden" name="idempotency_key" value=(view.key);
                                label for="body" { "Your reply" }
                                textarea #body name="body" rows="5" required maxlength="20000" disabled[lacking.is_some()] {}
                                @if matches!(t.status, TicketStatus::Resolved) {
                                    p.small.muted { "Replying reopens this ticket." }
                                }
                                div.actions { button type="submit" disabled[lacking.is_some()] { "Send reply" } }
                            }
                        }
                    }
                }
                div.side-column {
                    section.card aria-labelledby="promise-heading" {
                        h2 #promise-heading { "What we promised" }
                        @match &view.sla {
                            Some(sla) => {
                                dl.facts {
                                    (promise(sla.clock(anchor_sla::Target::FirstResponse), "First response", view.now))
                                    (promise(sla.clock(anchor_sla::Target::Resolution), "Resolution", view.now))
                                }
                            }
                            None => { p.muted { "Your agreement sets no response times for this ticket." } }
                        }
                    }
                    section.card aria-labelledby="facts-heading" {
                        h2 #facts-heading { "Details" }
                        dl.facts {
                            div { dt { "Ticket" } dd { code { (t.id) } } }
                            div { dt { "For" } dd { (view.contact_name.as_deref().unwrap_or("Your company")) } }
                            div { dt { "Opened" } dd { (pages::moment(t.created_at)) } }
                            div { dt { "Last change" } dd { (pages::moment(t.updated_at)) } }
                        }
                    }
                }
            }
        }))
    }
}

fn quote_status(q: &Quote) -> (&'static str, &'static str) {
    match q.status.as_str() {
        "sent" => ("running", "Awaiting your decision"),
        "accepted" | "converted" => ("succeeded", "Accepted"),
        "declined" => ("failed", "Declined"),
        "expired" => ("cancelled", "Expired"),
        _ => ("queued", "Offered"),
    }
}

fn money(amount: rust_decimal::Decimal, currency: &anchor_domain::Currency) -> String {
    crate::financials_pages::money(*currency, amount)
}

fn quotes_page(frame: &Frame, quotes: &[Quote]) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "quotes", "Quotes", html! {
            div.heading { h1 { "Quotes" } }
            p.muted { "Work your IT provider has offered " (frame.grant.workspace.name()) ". Open one to read it in full and accept or decline it." }
            div.card.flush tabindex="0" role="region" aria-label="Quotes" {
                @if quotes.is_empty() {
                    p.pad { "No quotes yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Quotes" }
                        thead { tr {
                            th scope="col" { "Quote" } th scope="col" { "Status" } th scope="col" { "Valid until" } th.num scope="col" { "Total" }
                        } }
                        tbody {
                            @for q in quotes {
                                @let (class, label) = quote_status(q);
                                tr {
                                    td { a href={"/w/" (slug) "/portal/quotes/" (q.id)} { (q.number) " · " (q.title) } }
                                    td { span class={"status " (class)} { (label) } }
                                    td data-label="Valid until" { (q.valid_until) }
                                    td.num data-label="Total" { (money(q.gross, &q.currency)) }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

fn quote_page(frame: &Frame, q: &Quote, today: time::Date, decided: Option<&str>) -> Markup {
    let slug = frame.slug();
    let (class, label) = quote_status(q);
    let open = q.status == "sent" && q.valid_until >= today;
    let lacking = frame.lacking(Permission::PortalQuotesDecide);
    let key = random_token();
    html! {
        (portal_layout(frame, "quotes", &q.title, html! {
            p.crumbs { a href={"/w/" (slug) "/portal/quotes"} { "Quotes" } " / " (q.number) }
            @match decided {
                Some("accepted") => { div.outcome.succeeded role="status" { "Thank you: you accepted this quote. Your IT provider has been told; a signed record keeps exactly what you accepted." } }
                Some("declined") => { div.outcome.succeeded role="status" { "You declined this quote. Your IT provider has been told." } }
                _ => {}
            }
            div.heading { h1 { (q.number) ": " (q.title) } }
            div.badges { span class={"status " (class)} { (label) } " Version " (q.version) " · valid until " (q.valid_until) }
            section.card.spaced aria-labelledby="lines-heading" {
                h2 #lines-heading { "What is offered" }
                div.scroll tabindex="0" role="region" aria-label="Quote lines" { table {
                    caption.visually-hidden { "Quote lines" }
                    thead { tr { th scope="col" { "Description" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" } th.num scope="col" { "Net" } } }
                    tbody {
                        @for line in &q.lines {
                            tr {
                                td { (line.description) }
                                td.num { (line.quantity.normalize()) }
                                td.num { (money(line.unit_price, &q.currency)) }
                                td.num { (money(line.net, &q.currency)) }
                            }
                        }
                    }
                } }
                dl.facts.totals {
                    div { dt { "Net" } dd { (money(q.net, &q.currency)) } }
                    div { dt { "Tax" } dd { (money(q.tax, &q.currency)) } }
                    div { dt { "Total" } dd { strong { (money(q.gross, &q.currency)) } } }
                }
                @if let Some(note) = &q.note { p.pre { (note) } }
            }
            @if let (Some(by), Some(at)) = (&q.decided_by, q.decided_at) {
                p { (label) " by " strong { (by.name) } " " (pages::moment(at)) "." }
            }
            @if open {
                section.card.spaced aria-labelledby="decide-heading" {
                    h2 #decide-heading { "Your decision" }
                    @if let Some(why) = &lacking { p.small.muted #why-decide { (why) } }
                    p.small.muted { "You decide on exactly this version (its fingerprint: " code { (q.sha256.as_deref().unwrap_or("")) } "), as " (frame.contact.name) "." }
                    form.stack method="post" action={"/w/" (slug) "/portal/quotes/" (q.id) "/decide"} {
                        input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                        input type="hidden" name="idempotency_key" value=(key);
                        input type="hidden" name="sha256" value=(q.sha256.as_deref().unwrap_or(""));
                        label for="reason" { "A reason, if you decline (optional)" }
                        textarea #reason name="reason" rows="3" maxlength="2000" disabled[lacking.is_some()] {}
                        div.actions {
                            button type="submit" name="decision" value="accept" disabled[lacking.is_some()] { "Accept quote" }
                            " "
                            button.secondary type="submit" name="decision" value="decline" disabled[lacking.is_some()] { "Decline" }
                        }
                    }
                }
            }
        }))
    }
}

fn invoices_page(frame: &Frame, invoices: &[Invoice]) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "invoices", "Invoices", html! {
            div.heading { h1 { "Invoices" } }
            p.muted { "Invoices and credit notes your IT provider issued to " (frame.grant.workspace.name()) ", newest first. Each PDF is the document as issued." }
            div.card.flush tabindex="0" role="region" aria-label="Invoices" {
                @if invoices.is_empty() {
                    p.pad { "No invoices yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Invoices and credit notes" }
                        thead { tr {
                            th scope="col" { "Document" } th scope="col" { "Issued" } th scope="col" { "Due" }
                            th.num scope="col" { "Total" } th.num scope="col" { "Still owed" } th scope="col" { "PDF" }
                        } }
                        tbody {
                            @for i in invoices {
                                @let number = i.number.clone().unwrap_or_else(|| i.id.to_string());
                                @let kind = if i.kind == anchor_domain::InvoiceKind::CreditNote { "Credit note" } else { "Invoice" };
                                tr {
                                    td { (kind) " " (number) }
                                    td data-label="Issued" { @if let Some(d) = i.issued_on { (d) } }
                                    td data-label="Due" {
                                        @if let Some(d) = i.due_on { (d) }
                                        @if let Some(days) = i.days_overdue.filter(|d| *d > 0) { " " span.sla.breached { (days) " days overdue" } }
                                    }
                                    td.num data-label="Total" { (money(i.gross, &i.currency)) }
                                    td.num data-label="Still owed" { @match i.balance { Some(b) => { (money(b, &i.currency)) } None => { "" } } }
                                    td { a href={"/w/" (slug) "/portal/invoices/" (i.id) "/pdf"} download { "Download " span.visually-hidden { (kind) " " (number) " as " } "PDF" } }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

/// "How did we do?" once a ticket is resolved, once per resolution; the
/// ratings given so far.
fn rating_part(frame: &Frame, view: &TicketView, lacking: Option<&str>) -> Markup {
    let t = &view.ticket;
    let rated = view.ratings.iter().find(|r| r.resolution == view.resolution);
    let open_for_rating = !t.status.is_open() && view.resolution > 0 && rated.is_none();
    html! {
        @if open_for_rating {
            section.card #rate aria-labelledby="rate-heading" {
                h2 #rate-heading { "How did we do?" }
                @if let Some(why) = lacking { p.small.muted { (why) } }
                form.stack method="post" action={"/w/" (frame.slug()) "/portal/tickets/" (t.id) "/rate"} {
                    input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                    input type="hidden" name="idempotency_key" value={(view.key) "-rate"};
                    fieldset {
                        legend { "Your rating of this resolution" }
                        @for (score, label) in [(5, "5, excellent"), (4, "4, good"), (3, "3, fair"), (2, "2, poor"), (1, "1, very poor")] {
                            label.choice {
                                input type="radio" name="score" value=(score) required disabled[lacking.is_some()];
                                " " (label)
                            }
                        }
                    }
                    label for="rate-comment" { "Anything to add? (optional)" }
                    textarea #rate-comment name="comment" rows="3" maxlength="2000" disabled[lacking.is_some()] {}
                    button type="submit" disabled[lacking.is_some()] { "Send rating" }
                }
            }
        }
        @for r in &view.ratings {
            p.small { "Resolution " (r.resolution) " rated " strong { (r.score) " of 5" } " " (pages::moment(r.created_at))
                @if let Some(c) = &r.comment { ": \u{201c}" (c) "\u{201d}" } }
        }
    }
}

fn people_page(
    frame: &Frame,
    all: &People,
    notice: Option<&str>,
    problem: Option<&str>,
    created: Option<(&anchor_store::portal::Invite, &str)>,
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
                    p { strong { "Invitation made for " (invite.contact_name) "." } " Send them this link; it is shown only now, works once and expires " (pages::moment(invite.expires_at)) "." }
                    label for="invite-link" { "Invitation link" }
                    input #invite-link type="text" readonly value=(link);
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

pub(crate) fn not_found_page(what: &str) -> Response {
    not_found(what)
}

pub(crate) fn unavailable_page(e: anchor_store::StoreError) -> Response {
    unavailable(e)
}

pub(crate) fn kb_list_page(frame: &Frame, articles: &[anchor_store::kb::Article], q: Option<&str>) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "kb", "Help articles", html! {
            div.heading { h1 { "Help articles" } }
            form.filters method="get" action={"/w/" (slug) "/portal/kb"} role="search" {
                div.search { label for="kb-q" { "Search the articles" } input #kb-q type="text" name="q" value=(q.unwrap_or("")) placeholder="For example: VPN, printer, password"; }
                button type="submit" { "Search" }
            }
            @if articles.is_empty() {
                div.card { p { @if q.is_some_and(|q| !q.trim().is_empty()) { "No article matches. " a href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } " and we will help." } @else { "No articles yet." } } }
            } @else {
                ul.plain.kb-list {
                    @for a in articles {
                        li.card {
                            h2 { a href={"/w/" (slug) "/portal/kb/" (a.id)} { (a.title) } }
                            p.small.muted { @if let Some(c) = &a.category { (c) " · " } "Updated " (pages::moment(a.updated_at)) }
                        }
                    }
                }
            }
        }))
    }
}

pub(crate) fn kb_article_page(frame: &Frame, a: &anchor_store::kb::Article) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "kb", &a.title, html! {
            p.crumbs { a href={"/w/" (slug) "/portal/kb"} { "Help articles" } " / " (a.title) }
            h1 { (a.title) }
            p.small.muted { @if let Some(c) = &a.category { (c) " · " } "Updated " (pages::moment(a.updated_at)) }
            article.card.kb-body { (maud::PreEscaped(&a.body_html)) }
            p.small { "Did not help? " a href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } "." }
        }))
    }
}
