//! `/`, local sign-in and sign-out.

use std::time::Duration;

use anchor_auth::source::ClientSource;
use anchor_domain::Role;
use anchor_store::{
    access::{AccessEvent, AuditContext, Outcome, Refusal, SubjectRef},
    sessions::{LOCAL_ISSUER, SigninAttempt},
};
use axum::{
    Form,
    extract::{FromRequestParts, State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use serde::Deserialize;

use crate::{
    ABSOLUTE_TIMEOUT, FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT_AND_SOURCE, MAX_FAILURES_PER_SOURCE, WebState, pages,
    session::{MaybeSignedIn, SESSION_COOKIE, SIGNIN_COOKIE, cookie, random_token, removal, same, same_origin},
};

/// The client, for throttling and the audit log: the peer, or whom a
/// trusted proxy names in `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub(crate) struct ClientAddress(pub ClientSource);

impl FromRequestParts<WebState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::client_source(parts, &state.proxies)))
    }
}

pub(crate) fn audit_context(headers: &HeaderMap, issuer: &str, subject: &str) -> AuditContext {
    AuditContext {
        issuer: Some(issuer.to_owned()),
        subject: Some(subject.to_owned()),
        request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

/// Counts a refused sign-in for the audit log (aggregated, no database
/// connection taken here).
pub(crate) fn refuse(
    state: &WebState,
    headers: &HeaderMap,
    refusal: (Outcome, &str),
    source: &ClientSource,
    issuer: &str,
    subject: Option<&str>,
    method: &str,
) {
    let (outcome, reason) = refusal;
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    state.refusals.record(Refusal {
        action: "signin",
        outcome,
        reason,
        source: &source.bucket(),
        issuer: Some(issuer),
        subject,
        detail: &[("method", method)],
        request_id,
    });
}

/// `response` with `Retry-After` (whole seconds, at least one).
pub(crate) fn retry_after(mut response: Response, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
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

/// A name a local account can have (`platform.local_accounts.username`).
fn possible_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(b))
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
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return pages::form_expired() };
    let bound = jar.get(SIGNIN_COOKIE).is_some_and(|c| same(c.value(), &form.csrf_token));
    if !bound || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let username = form.username.trim().to_lowercase();
    let wrong = |jar| sign_in_page(&state, jar, StatusCode::UNAUTHORIZED, Some("Wrong username or password."));
    if !possible_username(&username) {
        // No account has such a name: nothing to check, nothing to count per account.
        refuse(&state, &headers, (Outcome::Failure, "no such username"), &source, LOCAL_ISSUER, None, "local");
        return wrong(jar);
    }

    // An attempt counts toward both limits before the password is checked.
    let bucket = source.bucket();
    let account_key = format!("account:{username}@{bucket}");
    let source_key = format!("source:{bucket}");
    let throttled = |jar, wait: Duration| {
        refuse(&state, &headers, (Outcome::Denied, "throttled"), &source, LOCAL_ISSUER, None, "local");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let message = format!("Too many failed sign-ins. Wait {minutes} minutes, then try again.");
        retry_after(sign_in_page(&state, jar, StatusCode::TOO_MANY_REQUESTS, Some(&message)), wait)
    };
    if let Some(wait) = state.refused.remaining(&[&account_key, &source_key]) {
        return throttled(jar, wait);
    }
    let limits =
        [(account_key.as_str(), MAX_FAILURES_PER_ACCOUNT_AND_SOURCE), (source_key.as_str(), MAX_FAILURES_PER_SOURCE)];
    match state.db.begin_signin_attempt(&limits, FAILURE_WINDOW).await {
        Ok(SigninAttempt::Admitted) => {}
        Ok(SigninAttempt::Refused { over }) => {
            let wait = over.iter().map(|(_, wait)| *wait).max().unwrap_or(FAILURE_WINDOW);
            for (key, wait) in over {
                state.refused.remember(key, wait);
            }
            return throttled(jar, wait);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot count the sign-in attempt");
            return unavailable();
        }
    }

    let account = match state.db.local_account(&username).await {
        Ok(account) => account.filter(|a| !a.disabled),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the account");
            give_back(&state, &[], &[&account_key, &source_key]).await;
            return unavailable();
        }
    };
    let stored = account.map(|a| a.password_hash);
    let valid = match state.hashing.verify(form.password, stored).await {
        Ok(valid) => valid,
        Err(busy) => {
            give_back(&state, &[], &[&account_key, &source_key]).await;
            let message = "Sign-in is busy. Try again in a few seconds.";
            let page = sign_in_page(&state, jar, StatusCode::SERVICE_UNAVAILABLE, Some(message));
            return retry_after(page, busy.retry_after);
        }
    };
    if !valid {
        let reason = (Outcome::Failure, "wrong username or password");
        refuse(&state, &headers, reason, &source, LOCAL_ISSUER, Some(&username), "local");
        return wrong(jar);
    }
    give_back(&state, &[&account_key], &[&source_key]).await;
    let context = audit_context(&headers, LOCAL_ISSUER, &username);
    start_session(
        &state,
        jar,
        &context,
        LOCAL_ISSUER,
        &username,
        serde_json::json!({"address": source.address(), "method": "local"}),
    )
    .await
}

/// Ends an attempt that did not fail (see `Database::end_signin_attempt`).
async fn give_back(state: &WebState, reset: &[&str], give_back: &[&str]) {
    if let Err(e) = state.db.end_signin_attempt(reset, give_back).await {
        tracing::warn!(error = %e, "cannot give a sign-in attempt back");
    }
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
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&signed_in.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
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
