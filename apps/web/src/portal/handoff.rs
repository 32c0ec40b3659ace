//! The portal's door: invitation and sign-in links (GET shows, a
//! browser-bound POST starts the session), their dead ends, signing out.

use super::*;

#[derive(Debug, Deserialize)]
pub(crate) struct HandoffForm {
    handoff: String,
}

/// Counts one invitation link from `source`; a page when over the limit.
async fn throttled(state: &WebState, headers: &HeaderMap, source: &ClientSource, method: &str) -> Option<Response> {
    let wait = state.limits.admit("portal.links", &source.bucket(), LINK_TRIES).await.err()?;
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
async fn handoff_refused(
    state: &WebState,
    headers: &HeaderMap,
    source: &ClientSource,
    jar: &CookieJar,
    form: Result<Form<HandoffForm>, FormRejection>,
) -> Option<Response> {
    if let Some(page) = throttled(state, headers, source, "post").await {
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
    if let Some(page) = throttled(&state, &headers, &source, "get").await {
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
    if let Some(page) = handoff_refused(&state, &headers, &source, &jar, form).await {
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
    if let Some(page) = throttled(&state, &headers, &source, "get").await {
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
    if let Some(page) = handoff_refused(&state, &headers, &source, &jar, form).await {
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
