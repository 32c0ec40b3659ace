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
/// Invitation and sign-in links one source may open or take up per minute.
pub(crate) const LINK_TRIES: anchor_ratelimit::Rate = anchor_ratelimit::Rate::per_minute(30);

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

mod billing;
mod handoff;
mod people;
mod tickets;

pub(crate) use billing::*;
pub(crate) use handoff::*;
pub(crate) use people::*;
pub(crate) use tickets::*;

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
