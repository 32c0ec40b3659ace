//! Anchor's web app, server-rendered and mounted by the gateway.
//!
//! Today: staff sign-in (local accounts with Argon2id passwords, or an OIDC
//! provider with authorization code + PKCE), server-side sessions in
//! PostgreSQL behind an httpOnly SameSite cookie, CSRF protection on every
//! form, sign-in throttling, and `/`, which lists the caller's workspaces and
//! never enters one by itself. Pages submit commands through the command
//! desk of `anchor-commands` (`POST /w/{ws}/commands`), with the same
//! authorization decision and audit as the API, and show each execution
//! (`/w/{ws}/executions/{id}`). The four workspace pages (Console, Ops,
//! Portal, Admin Settings) are built on these.

mod commands;
mod oidc;
mod pages;
mod session;
mod signin;

use std::{sync::Arc, time::Duration};

use anchor_config::OidcSettings;
use anchor_store::Database;
use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::{get, post},
};

pub use oidc::OidcClient;

/// A session ends after this long without use (ASVS 7.3.1) ...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// ... and after this long in any case (ASVS 7.3.2).
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Failed sign-ins allowed per account, and per client address, in the window.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What the web app needs.
#[derive(Debug, Clone)]
pub struct WebState {
    pub(crate) db: Database,
    /// Origin of the public URL, e.g. `https://anchor.example.com`.
    pub(crate) public_origin: String,
    pub(crate) secure_cookies: bool,
    pub(crate) oidc: Option<Arc<OidcClient>>,
    /// Where the pages submit commands (the gateway's own desk).
    pub(crate) desk: Option<Arc<anchor_commands::Desk>>,
}

impl WebState {
    /// `public_url` is where people reach Anchor; cookies are `Secure` when
    /// it is https.
    pub fn new(db: Database, public_url: &str, oidc: Option<&OidcSettings>) -> Self {
        let public_origin = url::Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| public_url.trim_end_matches('/').to_owned());
        let secure_cookies = public_origin.starts_with("https://");
        let oidc = oidc.map(|settings| Arc::new(OidcClient::new(settings, &public_origin)));
        Self { db, public_origin, secure_cookies, oidc, desk: None }
    }

    /// Lets the pages submit commands through `desk`.
    pub fn with_commands(mut self, desk: Arc<anchor_commands::Desk>) -> Self {
        self.desk = Some(desk);
        self
    }
}

/// The web routes, with their state applied.
pub fn router<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    Router::new()
        .route("/", get(signin::home))
        .route("/signin", post(signin::sign_in))
        .route("/signout", post(signin::sign_out))
        .route("/auth/oidc/start", get(oidc::start))
        .route("/auth/oidc/callback", get(oidc::callback))
        .route("/static/anchor.css", get(stylesheet))
        .route("/w/{ws}/commands", post(commands::submit))
        .route("/w/{ws}/executions/{id}", get(commands::execution))
        .with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        include_str!("../static/anchor.css"),
    )
}
