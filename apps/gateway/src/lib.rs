//! Anchor's API gateway and orchestration edge.
//!
//! [`run`] is the one way to start it: production's `anchor-gateway` binary,
//! `anchor dev` and the integration tests all call it with a bound listener
//! and a shutdown token.

pub mod auth;
mod changes;
pub mod commands;
pub mod events;
pub mod idempotency;
pub mod json;
pub mod middleware;
pub mod pagination;
mod path;
pub mod problem;
mod routes;
mod schemas;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anchor_auth::{DevIssuer, TokenVerifier};
use anchor_config::{IssuerSettings, OidcSettings, Settings};
use anchor_store::Database;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use routes::openapi;

/// What the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// When pooled connections are replaced (`database_max_lifetime`,
    /// `database_max_uses`).
    pub database_recycling: anchor_store::Recycling,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Where the dev issuer's key lives.
    pub data_dir: PathBuf,
    /// Trust (and publish the keys of) the built-in dev issuer.
    pub dev_issuer: bool,
    /// External OIDC issuers.
    pub issuers: Vec<IssuerSettings>,
    /// Where people reach Anchor; decides `Secure` cookies and OIDC redirects.
    pub public_url: String,
    /// Staff sign-in through an OIDC provider.
    pub oidc: Option<OidcSettings>,
    /// The master key and the evidence store.
    pub evidence: anchor_evidence::EvidenceSetup,
    /// Webhook destinations allowed although not public (`webhook_allowed_hosts`).
    pub webhook_allowlist: anchor_webhooks::address::Allowlist,
    /// What a workspace's webhook endpoints may cost.
    pub webhook_limits: WebhookLimits,
    /// Who a request comes from, and how much password hashing anonymous
    /// sign-ins may cause.
    pub access: AccessConfig,
    /// What one edge agent may make the gateway do (`agent_*` settings).
    pub telemetry: anchor_telemetry::limits::Limits,
    /// Whether a mail server is configured (`smtp`): invitations can then be
    /// e-mailed from the pages (the worker sends them).
    pub mail_enabled: bool,
}

/// Bounds on a workspace's webhook endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimits {
    /// Endpoints per workspace (`webhook_max_endpoints`).
    pub max_endpoints: u32,
    /// Test messages per endpoint within `test_window` (`POST .../test`;
    /// more are answered 429 with `Retry-After`).
    pub tests_per_window: u32,
    pub test_window: Duration,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self { max_endpoints: 50, tests_per_window: 5, test_window: Duration::from_secs(60) }
    }
}

/// Attribution and bounds for requests that are not authenticated.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Proxies whose `X-Forwarded-For` is believed (`trusted_proxies`; default none).
    pub trusted_proxies: anchor_auth::source::TrustedProxies,
    /// Password checks at once (`password_hash_concurrency`); 0: one per core.
    pub password_hash_concurrency: usize,
    /// Redis for the per-source limits every replica shares (`redis_url`);
    /// `None`: each process counts its own.
    pub redis_url: Option<SecretString>,
}

impl Config {
    /// The gateway's part of the installation's settings, with the database
    /// URL resolved (from the settings or from the private dev cluster).
    /// `bound` is the address actually listened on (port 0 resolved).
    pub fn from_settings(
        settings: &Settings,
        database_url: SecretString,
        bound: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            database_url,
            database_max_connections: settings.database_max_connections,
            database_recycling: anchor_store::Recycling {
                max_lifetime: settings.database_max_lifetime,
                max_uses: settings.database_max_uses,
            },
            request_timeout: settings.request_timeout,
            body_limit_bytes: settings.body_limit_bytes,
            data_dir: settings.data_dir.clone(),
            dev_issuer: settings.dev_issuer_trusted(),
            issuers: settings.issuers.clone(),
            public_url: settings.public_url.clone().unwrap_or_else(|| format!("http://{bound}")),
            oidc: settings.oidc.clone(),
            evidence: anchor_evidence::EvidenceSetup::from_settings(settings)?,
            webhook_allowlist: anchor_webhooks::address::Allowlist::parse(
                settings.webhook_allowed_hosts.as_deref().unwrap_or_default(),
            )
            .map_err(|e| anyhow::anyhow!("setting webhook_allowed_hosts: {e}"))?,
            webhook_limits: WebhookLimits { max_endpoints: settings.webhook_max_endpoints, ..Default::default() },
            access: AccessConfig {
                trusted_proxies: anchor_auth::source::TrustedProxies::parse(
                    settings.trusted_proxies.as_deref().unwrap_or_default(),
                )
                .map_err(|e| anyhow::anyhow!("setting trusted_proxies: {e}"))?,
                password_hash_concurrency: settings.password_hash_concurrency.unwrap_or(0),
                redis_url: settings.redis_url.clone(),
            },
            telemetry: anchor_telemetry::limits::Limits {
                batches_per_minute: settings.agent_batches_per_minute,
                max_series: settings.agent_max_series,
                max_alerts_per_batch: settings.agent_max_alerts_per_batch,
                ..Default::default()
            },
            mail_enabled: settings.smtp.is_some(),
        })
    }

    /// The identity setup this configuration describes.
    pub fn auth_state(&self) -> anyhow::Result<AuthState> {
        let dev_issuer = if self.dev_issuer { Some(DevIssuer::load_or_create(&self.data_dir)?) } else { None };
        let verifier = TokenVerifier::new(dev_issuer.as_ref(), &self.issuers);
        // A subject named without an issuer is bound to the one issuer the
        // installation trusts; with several (or none), the issuer is required.
        let trusted: Vec<&str> = verifier.issuers().collect();
        let default_issuer = match trusted.as_slice() {
            [only] => Some((*only).to_owned()),
            _ => None,
        };
        Ok(AuthState { verifier, dev_issuer, default_issuer })
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub auth: Arc<AuthState>,
    pub commands: Arc<commands::CommandDesk>,
    pub evidence: Arc<EvidenceDesk>,
    pub webhooks: Arc<WebhookDesk>,
    pub telemetry: Arc<TelemetryDesk>,
    /// Refusals of unauthenticated requests, aggregated for the audit log
    /// (shared with the web app; flushed at shutdown by [`run`]).
    pub refusals: anchor_store::access::Refusals,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: Arc<anchor_auth::source::TrustedProxies>,
    /// The slots for password checks (web sign-in).
    pub hashing: Arc<anchor_auth::password::PasswordHashing>,
    /// Cancelled when the gateway stops: long-lived answers (a page's live
    /// stream) end then, so a graceful shutdown does not wait for them.
    pub shutdown: CancellationToken,
    /// What a ticket search matches (PostgreSQL full-text search).
    pub ticket_search: Arc<dyn anchor_store::ticket_search::TicketSearch>,
    /// Whether the worker mails the portal's e-mail (`smtp` is set).
    pub mail_enabled: bool,
    /// Per-source rate limits: in process, or shared through Redis.
    pub limits: anchor_ratelimit::Limiter,
}

/// What the webhook routes need: the master key (endpoint secrets are
/// sealed with it), the destination allowlist and the limits.
#[derive(Debug)]
pub struct WebhookDesk {
    pub master: anchor_crypto::seal::MasterKey,
    pub allowlist: anchor_webhooks::address::Allowlist,
    pub limits: WebhookLimits,
    /// Where senders reach Anchor (inbound source URLs).
    pub public_url: String,
}

/// What telemetry ingest needs: the per-agent limits, the gate admitting
/// each agent's batches, and the slots bounding the batches in hand at once
/// (being decoded or ingested): half the connection pool, so that agents
/// never take the connections the API needs, and the memory that batches
/// take is bounded too.
#[derive(Debug)]
pub struct TelemetryDesk {
    pub limits: anchor_telemetry::limits::Limits,
    pub gate: Arc<anchor_telemetry::limits::Gate>,
    pub slots: tokio::sync::Semaphore,
}

/// What the evidence routes read: the issuer keys and the evidence store.
#[derive(Debug)]
pub struct EvidenceDesk {
    pub keys: anchor_evidence::keys::IssuerKeys,
    pub store: anchor_evidence::store::EvidenceStore,
    /// Chain checks under way (bounded per workspace and in all).
    pub chain_checks: routes::evidence::ChainChecks,
}

impl AppState {
    /// The state `config` describes, over `db`.
    pub fn new(config: &Config, db: Database) -> anyhow::Result<Self> {
        Ok(Self {
            auth: Arc::new(config.auth_state()?),
            commands: Arc::new(commands::CommandDesk::load(db.clone(), &config.data_dir, config.request_timeout)?),
            webhooks: Arc::new(WebhookDesk {
                master: config.evidence.master.clone(),
                allowlist: config.webhook_allowlist.clone(),
                limits: config.webhook_limits,
                public_url: config.public_url.trim_end_matches('/').to_owned(),
            }),
            telemetry: Arc::new(TelemetryDesk {
                limits: config.telemetry,
                gate: anchor_telemetry::limits::Gate::new(config.telemetry.batches_per_minute),
                slots: tokio::sync::Semaphore::new((config.database_max_connections as usize / 2).max(1)),
            }),
            evidence: Arc::new(EvidenceDesk {
                keys: anchor_evidence::keys::IssuerKeys::new(db.clone(), config.evidence.master.clone()),
                store: config.evidence.store.clone(),
                chain_checks: Default::default(),
            }),
            refusals: anchor_store::access::Refusals::new(db.clone()),
            proxies: Arc::new(config.access.trusted_proxies.clone()),
            hashing: Arc::new(anchor_auth::password::PasswordHashing::new(
                config.access.password_hash_concurrency,
                anchor_auth::password::DEFAULT_MAX_WAIT,
            )),
            ticket_search: Arc::new(anchor_store::ticket_search::PostgresTicketSearch),
            mail_enabled: config.mail_enabled,
            limits: match &config.access.redis_url {
                Some(url) => anchor_ratelimit::Limiter::redis(url.expose_secret(), "anchor")
                    .map_err(|e| anyhow::anyhow!("setting {e}"))?,
                None => anchor_ratelimit::Limiter::in_process(),
            },
            db,
            shutdown: CancellationToken::new(),
        })
    }
}

pub use auth::AuthState;

/// Builds the complete application: routes, OpenAPI document, fallbacks and
/// the middleware stack. `extra` lets tests mount routes of their own under
/// the same stack.
pub fn app(config: &Config, state: AppState, extra: Option<Router<AppState>>) -> Router {
    // Request metrics go to the process-wide recorder; make sure it exists.
    anchor_observability::metrics_handle();
    let (mut router, _, routing) = routes::router();
    let routing = Arc::new(routing);
    let web = anchor_web::WebState::new(state.db.clone(), &config.public_url, config.oidc.as_ref())
        .with_commands(Arc::clone(&state.commands.desk))
        .with_refusals(state.refusals.clone())
        .with_trusted_proxies(Arc::clone(&state.proxies))
        .with_password_hashing(Arc::clone(&state.hashing))
        .with_shutdown(state.shutdown.clone())
        .with_mail(config.mail_enabled)
        .with_limits(state.limits.clone());
    router = router.merge(anchor_web::router(web));
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    let (body_limit, lease) = (config.body_limit_bytes, config.request_timeout + Duration::from_secs(30));
    // Matched routes only: an unknown path is a 404, whatever its method.
    let router = routes::finish(router)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), move |s, req, next| {
            idempotency::enforce(s, body_limit, lease, Arc::clone(&routing), req, next)
        }))
        .with_state(state);
    middleware::apply(router, config.request_timeout, config.body_limit_bytes)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = Database::connect_with(&config.database_url, config.database_max_connections, config.database_recycling)
        .await?;
    let mut state = AppState::new(&config, db.clone())?;
    state.shutdown = shutdown.child_token();
    let refusals = state.refusals.clone();
    let app = app(&config, state, None);
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    // Refusals still in memory reach the audit log before the pool closes.
    if let Err(e) = refusals.flush().await {
        tracing::error!(error = %e, "cannot write the last refusals to the access audit log");
    }
    db.close().await;
    tracing::info!("gateway stopped");
    Ok(())
}
