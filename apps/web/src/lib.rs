//! Anchor's web app, server-rendered and mounted by the gateway.
//!
//! Today: staff sign-in (local accounts with Argon2id passwords, or an OIDC
//! provider with authorization code + PKCE), server-side sessions in
//! PostgreSQL behind an httpOnly SameSite cookie, CSRF protection on every
//! form, sign-in throttling (see [`throttle`] for what is counted and why),
//! a bounded number of password checks at once, and `/`, which lists the
//! caller's workspaces and never enters one by itself. Pages submit
//! commands through the command desk of `anchor-commands`
//! (`POST /w/{ws}/commands`), with the same authorization decision and
//! audit as the API, and show each execution (`/w/{ws}/executions/{id}`).
//! The four workspace pages (Console, Ops, Portal, Admin Settings) are
//! built on these.

mod admin;
mod assets;
mod billing_all;
mod charts;
mod cmdb;
mod cmdb_pages;
mod commands;
mod console;
mod financials;
mod financials_config;
mod financials_pages;
mod kb;
mod monitoring;
mod oidc;
mod ops;
mod ops_pages;
mod pages;
mod portal;
mod portal_admin;
mod session;
mod signin;
pub mod throttle;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anchor_auth::{
    password::PasswordHashing,
    source::{ClientSource, TrustedProxies},
};
use anchor_config::OidcSettings;
use anchor_store::{Database, access::Refusals};
use axum::{
    Router,
    extract::ConnectInfo,
    http::request::Parts,
    routing::{get, post},
};

pub use oidc::OidcClient;

/// A session ends after this long without use (ASVS 7.3.1) ...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// ... and after this long in any case (ASVS 7.3.2).
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Sign-in attempts allowed per account from one source, and per source
/// (whatever the account), in the window; a right password gives its attempt
/// back. See [`throttle`].
pub const MAX_FAILURES_PER_ACCOUNT_AND_SOURCE: i32 = 5;
pub const MAX_FAILURES_PER_SOURCE: i32 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// OIDC sign-ins one source may start per minute (each writes a login in flight).
pub const OIDC_STARTS_PER_MINUTE: u32 = 30;
/// The same as a rate limit.
pub(crate) const OIDC_STARTS: anchor_ratelimit::Rate = anchor_ratelimit::Rate::per_minute(OIDC_STARTS_PER_MINUTE);

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
    /// Refused sign-ins, aggregated for the audit log.
    pub(crate) refusals: Refusals,
    /// Whose `X-Forwarded-For` is believed.
    pub(crate) proxies: Arc<TrustedProxies>,
    pub(crate) hashing: Arc<PasswordHashing>,
    /// Throttle keys known to be at their limit.
    pub(crate) refused: Arc<throttle::Refused>,
    /// Per-source limits of what anonymous callers start (OIDC sign-ins,
    /// portal links): shared by every replica through Redis when configured.
    pub(crate) limits: anchor_ratelimit::Limiter,
    /// Cancelled when the server stops: live streams end with it.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// What live Ops pages follow.
    pub(crate) ops_changes: Arc<ops::OpsChanges>,
    /// Invitation links opened or taken up, per source.
    /// Whether the worker mails the portal's e-mail (`smtp` is set).
    pub(crate) mail: bool,
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
        Self {
            refusals: Refusals::new(db.clone()),
            db,
            public_origin,
            secure_cookies,
            oidc,
            desk: None,
            proxies: Arc::default(),
            hashing: Arc::default(),
            refused: Arc::default(),
            limits: anchor_ratelimit::Limiter::in_process(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            ops_changes: Arc::default(),
            mail: false,
        }
    }

    /// Offers to e-mail invitations (a mail server is configured).
    pub fn with_mail(mut self, on: bool) -> Self {
        self.mail = on;
        self
    }

    /// Records refusals in `refusals` (the process's one buffer, which its
    /// owner flushes at shutdown) instead of a buffer of its own.
    pub fn with_refusals(mut self, refusals: Refusals) -> Self {
        self.refusals = refusals;
        self
    }

    /// Counts the per-source limits with `limits` (the gateway's, shared
    /// through Redis when configured) instead of in this state alone.
    pub fn with_limits(mut self, limits: anchor_ratelimit::Limiter) -> Self {
        self.limits = limits;
        self
    }

    /// Believes `X-Forwarded-For` from these proxies (default: none).
    pub fn with_trusted_proxies(mut self, proxies: Arc<TrustedProxies>) -> Self {
        self.proxies = proxies;
        self
    }

    /// Checks passwords in these slots (default: one per core).
    pub fn with_password_hashing(mut self, hashing: Arc<PasswordHashing>) -> Self {
        self.hashing = hashing;
        self
    }

    /// Lets the pages submit commands through `desk`.
    /// Live streams end when `shutdown` is cancelled.
    pub fn with_shutdown(mut self, shutdown: tokio_util::sync::CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

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
        .route("/static/{file}", get(assets::serve))
        .route("/w/{ws}/commands", post(commands::submit))
        .route("/w/{ws}/executions/{id}", get(commands::execution))
        .route("/workspaces", post(console::create_workspace))
        .route("/w/{ws}/admin", get(admin::admin))
        .route("/w/{ws}/admin/service", get(admin::service))
        .route("/w/{ws}/admin/service/policies", post(admin::save_policy))
        .route("/w/{ws}/admin/service/queues", post(admin::save_queue))
        .route("/w/{ws}/admin/service/calendars", post(admin::save_calendar))
        .route("/w/{ws}/admin/portal", get(portal_admin::page))
        .route("/w/{ws}/admin/portal/invites", post(portal_admin::invite))
        .route("/w/{ws}/admin/portal/revoke", post(portal_admin::revoke))
        .route("/w/{ws}/portal", get(portal::home))
        .route("/w/{ws}/portal/invite/{token}", get(portal::invite))
        .route("/w/{ws}/portal/invoices", get(portal::invoices))
        .route("/w/{ws}/portal/link/{token}", get(portal::sign_in_link))
        .route("/w/{ws}/portal/link/{token}", post(portal::take_sign_in_link))
        .route("/w/{ws}/portal/invoices/{id}/pdf", get(portal::invoice_pdf))
        .route("/w/{ws}/portal/people", get(portal::people))
        .route("/w/{ws}/portal/people", post(portal::manage_people))
        .route("/w/{ws}/portal/quotes", get(portal::quotes))
        .route("/w/{ws}/portal/quotes/{id}", get(portal::quote))
        .route("/w/{ws}/portal/quotes/{id}/decide", post(portal::decide))
        .route("/w/{ws}/portal/invite/{token}", post(portal::take_invite))
        .route("/w/{ws}/portal/signout", post(portal::sign_out))
        .route("/w/{ws}/portal/tickets", post(portal::open_ticket))
        .route("/w/{ws}/portal/tickets/new", get(portal::new_ticket))
        .route("/w/{ws}/portal/tickets/{id}", get(portal::ticket))
        .route("/w/{ws}/portal/tickets/{id}/reply", post(portal::reply))
        .route("/w/{ws}/portal/tickets/{id}/rate", post(portal::rate))
        .route("/billing", get(billing_all::overview))
        .route("/billing/run", post(billing_all::run))
        .route("/billing/runs/{key}", get(billing_all::progress))
        .route("/ops", get(ops::all_clients))
        .route("/ops/live", get(ops::live))
        .route("/w/{ws}/ops", get(ops::one_client))
        .route("/w/{ws}/ops/act", post(ops::act))
        .route("/w/{ws}/ops/alerts/{id}", get(ops::guide))
        .route("/w/{ws}/ops/alerts/{id}", post(ops::guide_act))
        .route("/w/{ws}/console", get(console::console))
        .route("/w/{ws}/console/service", get(console::service))
        .route("/w/{ws}/console/cmdb", get(cmdb::assets))
        .route("/w/{ws}/console/cmdb/new", get(cmdb::new_asset))
        .route("/w/{ws}/console/cmdb/act", post(cmdb::act))
        .route("/w/{ws}/console/cmdb/bulk", post(cmdb::bulk))
        .route("/w/{ws}/console/cmdb/assets/{id}", get(cmdb::asset))
        .route("/w/{ws}/console/financials", get(financials::invoices))
        .route("/w/{ws}/console/financials/invoices/{id}", get(financials::invoice))
        .route("/w/{ws}/console/financials/invoices/{id}/pdf", get(financials::pdf))
        .route("/w/{ws}/console/financials/time", get(financials::time))
        .route("/w/{ws}/console/financials/time/approve", post(financials::approve))
        .route("/w/{ws}/console/financials/run", get(financials::run))
        .route("/w/{ws}/console/financials/contracts", get(financials::contracts))
        .route("/w/{ws}/console/financials/payments", get(financials::payments))
        .route("/w/{ws}/console/financials/reports", get(financials::reports))
        .route("/w/{ws}/console/financials/rates", get(financials_config::rates))
        .route("/w/{ws}/console/financials/catalogue", get(financials_config::catalogue))
        .route("/w/{ws}/console/financials/catalogue", post(financials_config::save_catalogue_item))
        .route("/w/{ws}/console/financials/rates/work-types", post(financials_config::save_work_type))
        .route("/w/{ws}/console/financials/rates/rate-cards", post(financials_config::save_rate_card))
        .route("/w/{ws}/console/financials/rates/staff", post(financials_config::save_staff_rate))
        .route("/w/{ws}/console/financials/quotes", get(financials::quotes))
        .route("/w/{ws}/console/financials/quotes/{id}", get(financials::quote))
        .route("/w/{ws}/console/financials/act", post(financials::act))
        .route("/w/{ws}/console/monitoring", get(monitoring::alerts))
        .route("/w/{ws}/console/monitoring/agents", get(monitoring::agents))
        .route("/w/{ws}/console/monitoring/rules", get(monitoring::rules))
        .route("/w/{ws}/console/service/new", get(console::new_ticket))
        .route("/w/{ws}/console/service/queues", get(console::queues))
        .route("/w/{ws}/console/service/kb", get(kb::list))
        .route("/w/{ws}/console/service/kb/new", get(kb::new_article))
        .route("/w/{ws}/console/service/kb/act", post(kb::act))
        .route("/w/{ws}/console/service/kb/{id}", get(kb::article))
        .route("/w/{ws}/kb/{id}", get(kb::public_article))
        .route("/w/{ws}/portal/kb", get(kb::portal_list))
        .route("/w/{ws}/portal/kb/{id}", get(kb::portal_article))
        .route("/w/{ws}/console/service/act", post(console::act))
        .route("/w/{ws}/console/service/bulk", post(console::bulk))
        .route("/w/{ws}/console/service/views", post(console::save_view))
        .route("/w/{ws}/console/service/views/delete", post(console::delete_view))
        .route("/w/{ws}/console/service/tickets/{id}", get(console::ticket))
        .route("/w/{ws}/console/service/tickets/{id}/live", get(console::live))
        .with_state(state)
}

/// The client of a request: the peer, or whom a trusted proxy names.
pub fn client_source(parts: &Parts, proxies: &TrustedProxies) -> ClientSource {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let forwarded: Vec<&str> =
        parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    proxies.client(peer, &forwarded)
}
