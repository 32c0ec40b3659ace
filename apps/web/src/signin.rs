//! `/`, local sign-in and sign-out.

use std::net::SocketAddr;

use anchor_domain::Role;
use anchor_store::{
    access::{AccessEvent, AuditContext, Outcome, SubjectRef},
    sessions::LOCAL_ISSUER,
};
use axum::{
    Form,
    extract::{ConnectInfo, FromRequestParts, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use serde::Deserialize;

use crate::{
    ABSOLUTE_TIMEOUT, FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS, WebState, pages,
    session::{MaybeSignedIn, SESSION_COOKIE, SIGNIN_COOKIE, cookie, random_token, removal, same, same_origin},
};

/// The client's address, for throttling and the audit log.
#[derive(Debug, Clone)]
pub(crate) struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(address))
    }
}

pub(crate) fn audit_context(headers: &HeaderMap, issuer: &str, subject: &str) -> AuditContext {
    AuditContext {
        issuer: Some(issuer.to_owned()),
        subject: Some(subject.to_owned()),
        request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

pub(crate) async fn audit(
    state: &WebState,
    context: &AuditContext,
    action: &str,
    outcome: Outcome,
    detail: serde_json::Value,
) {
    let event = AccessEvent { context, workspace: None, action, outcome, detail };
    if let Err(e) = state.db.record_access(&event).await {
        tracing::error!(error = %e, action, "cannot write the access audit log");
    }
}

/// A fresh sign-in form, bound to this browser by a cookie.
fn sign_in_page(state: &WebState, jar: CookieJar, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token();
    let jar = jar.add(cookie(state, SIGNIN_COOKIE, csrf.clone(), 3600, SameSite::Strict));
    let sso = state.oidc.as_ref().map(|o| o.label());
    (jar, pages::page(status, pages::sign_in(&csrf, error, sso))).into_response()
}

fn unavailable() -> Response {
    pages::refused(StatusCode::SERVICE_UNAVAILABLE, "Sign-in is unavailable", "Try again shortly.")
}

fn expired_form() -> Response {
    pages::refused(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not sent from this Anchor page, or it is too old. Reload the page and try again.",
    )
}

/// `/`: the sign-in form, or the caller's workspaces. Never enters one.
pub(crate) async fn home(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    jar: CookieJar,
) -> Response {
    let Some(signed_in) = signed_in else {
        return sign_in_page(&state, jar, StatusCode::OK, None);
    };
    let session = &signed_in.session;
    let who = SubjectRef { issuer: &session.issuer, subject: &session.subject };
    let listed = async {
        let admin = state.db.platform_roles(who).await?.contains(&Role::PlatformAdmin);
        let rows = if admin {
            state.db.all_workspaces_for(who, None, 500).await?
        } else {
            state.db.workspaces_of(who, None, 500).await?
        };
        Ok::<_, anchor_store::StoreError>((admin, rows))
    }
    .await;
    match listed {
        Ok((admin, rows)) => {
            pages::page(StatusCode::OK, pages::workspaces(&session.subject, &session.csrf_token, &rows, admin))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list workspaces");
            pages::refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Anchor could not load your workspaces. Try again shortly.",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    username: String,
    password: String,
    csrf_token: String,
}

pub(crate) async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return expired_form() };
    let bound = jar.get(SIGNIN_COOKIE).is_some_and(|c| same(c.value(), &form.csrf_token));
    if !bound || !same_origin(&state, &headers) {
        return expired_form();
    }
    let username = form.username.trim().to_lowercase();
    let context = audit_context(&headers, LOCAL_ISSUER, &username);

    match state.db.recent_signin_failures(&username, &address, FAILURE_WINDOW).await {
        Ok((by_account, by_address))
            if by_account >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS =>
        {
            let detail = serde_json::json!({"address": address, "method": "local", "reason": "throttled"});
            audit(&state, &context, "signin", Outcome::Denied, detail).await;
            let message = "Too many failed sign-ins. Wait 15 minutes, then try again.";
            return sign_in_page(&state, jar, StatusCode::TOO_MANY_REQUESTS, Some(message));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot check sign-in throttling");
            return unavailable();
        }
    }

    let account = state.db.local_account(&username).await.ok().flatten().filter(|a| !a.disabled);
    let stored = account.map(|a| a.password_hash);
    let password = form.password;
    let valid = tokio::task::spawn_blocking(move || anchor_auth::password::verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    if !valid {
        let detail = serde_json::json!({"address": address, "method": "local"});
        audit(&state, &context, "signin", Outcome::Failure, detail).await;
        return sign_in_page(&state, jar, StatusCode::UNAUTHORIZED, Some("Wrong username or password."));
    }
    start_session(
        &state,
        jar,
        &context,
        LOCAL_ISSUER,
        &username,
        serde_json::json!({"address": address, "method": "local"}),
    )
    .await
}

/// Signs the browser in as (issuer, subject): a new session id every time,
/// so an id planted before sign-in is worthless (session fixation).
pub(crate) async fn start_session(
    state: &WebState,
    jar: CookieJar,
    context: &AuditContext,
    issuer: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Response {
    let token = random_token();
    let csrf = random_token();
    if let Err(e) = state.db.create_session(&token, issuer, subject, &csrf, ABSOLUTE_TIMEOUT).await {
        tracing::error!(error = %e, "cannot create a session");
        return unavailable();
    }
    let who = SubjectRef { issuer, subject };
    if let Err(e) = state.db.touch_subject(who).await {
        tracing::warn!(error = %e, "cannot record the subject");
    }
    audit(state, context, "signin", Outcome::Success, detail).await;
    let jar = jar
        .add(cookie(state, SESSION_COOKIE, token, ABSOLUTE_TIMEOUT.as_secs() as i64, SameSite::Lax))
        .remove(removal(state, SIGNIN_COOKIE));
    (jar, Redirect::to("/")).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf_token: String,
}

pub(crate) async fn sign_out(
    State(state): State<WebState>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Some(signed_in) = signed_in else { return Redirect::to("/").into_response() };
    let Ok(Form(form)) = form else { return expired_form() };
    if !same(&signed_in.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return expired_form();
    }
    if let Err(e) = state.db.delete_session(&signed_in.token).await {
        tracing::error!(error = %e, "cannot delete the session");
    }
    let context = audit_context(&headers, &signed_in.session.issuer, &signed_in.session.subject);
    audit(&state, &context, "signout", Outcome::Success, serde_json::json!({})).await;
    let mut response = (jar.remove(removal(&state, SESSION_COOKIE)), Redirect::to("/")).into_response();
    // Tell the browser to drop what it cached of the signed-in pages.
    response.headers_mut().insert("clear-site-data", header::HeaderValue::from_static("\"cache\""));
    response
}
