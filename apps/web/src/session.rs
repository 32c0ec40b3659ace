//! Cookies, sessions and CSRF tokens.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::{IDLE_TIMEOUT, WebState};

pub(crate) const SESSION_COOKIE: &str = "anchor_session";
/// Binds the sign-in form to the browser that loaded it (double submit).
pub(crate) const SIGNIN_COOKIE: &str = "anchor_signin";
/// Binds an OIDC callback to the browser that started the login.
pub(crate) const OIDC_COOKIE: &str = "anchor_oidc";

/// 32 random bytes, base64url: session ids, CSRF tokens, OIDC state.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(crate) fn cookie(
    state: &WebState,
    name: &'static str,
    value: String,
    max_age_secs: i64,
    same_site: SameSite,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(same_site)
        .max_age(time::Duration::seconds(max_age_secs))
        .build()
}

pub(crate) fn removal(state: &WebState, name: &'static str) -> Cookie<'static> {
    cookie(state, name, String::new(), 0, SameSite::Lax)
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub token: String,
    pub session: anchor_store::sessions::WebSession,
}

/// The session of this request, if its cookie names a live one.
#[derive(Debug, Clone)]
pub(crate) struct MaybeSignedIn(pub Option<SignedIn>);

/// Whether a request is signed in cannot be told while the database is out
/// of reach: answered 503 (the form a person sent is still in their browser
/// to send again), never as if they were signed out.
impl FromRequestParts<WebState> for MaybeSignedIn {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else { return Ok(Self(None)) };
        match state.db.session(&token, IDLE_TIMEOUT).await {
            Ok(Some(session)) => Ok(Self(Some(SignedIn { token, session }))),
            Ok(None) => Ok(Self(None)),
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                Err(crate::pages::declined(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Anchor is unavailable",
                    "Anchor could not reach its database, so nothing was done. Go back and try again shortly.",
                ))
            }
        }
    }
}

/// A form post must come from a page of ours: when the browser names the
/// origin, it must be ours (ASVS 3.5.3), in addition to the CSRF token.
pub(crate) fn same_origin(state: &WebState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    if origin == state.public_origin {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let scheme = if state.secure_cookies { "https" } else { "http" };
    origin == format!("{scheme}://{host}")
}
