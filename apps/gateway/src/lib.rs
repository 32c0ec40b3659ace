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
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use routes::openapi;

/// What the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
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
            request_timeout: settings.request_timeout,
            body_limit_bytes: settings.body_limit_bytes,
            data_dir: settings.data_dir.clone(),
            dev_issuer: settings.dev_issuer,
            issuers: settings.issuers.clone(),
            public_url: settings.public_url.clone().unwrap_or_else(|| format!("http://{bound}")),
            oidc: settings.oidc.clone(),
            evidence: anchor_evidence::EvidenceSetup::from_settings(settings)?,
            webhook_allowlist: anchor_webhooks::address::Allowlist::parse(
                settings.webhook_allowed_hosts.as_deref().unwrap_or_default(),
            )
            .map_err(|e| anyhow::anyhow!("setting webhook_allowed_hosts: {e}"))?,
        })
    }

    /// The identity setup this configuration describes.
    pub fn auth_state(&self) -> anyhow::Result<AuthState> {
        let dev_issuer = if self.dev_issuer { Some(DevIssuer::load_or_create(&self.data_dir)?) } else { None };
        let verifier = TokenVerifier::new(dev_issuer.as_ref(), &self.issuers);
        let default_issuer = verifier.issuers().next().map(str::to_owned);
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
}

/// What the webhook routes need: the master key (endpoint secrets are
/// sealed with it) and the destination allowlist.
#[derive(Debug)]
pub struct WebhookDesk {
    pub master: anchor_crypto::seal::MasterKey,
    pub allowlist: anchor_webhooks::address::Allowlist,
    /// Where senders reach Anchor (inbound source URLs).
    pub public_url: String,
}

/// What the evidence routes read: the issuer keys and the evidence store.
#[derive(Debug)]
pub struct EvidenceDesk {
    pub keys: anchor_evidence::keys::IssuerKeys,
    pub store: anchor_evidence::store::EvidenceStore,
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
                public_url: config.public_url.trim_end_matches('/').to_owned(),
            }),
            evidence: Arc::new(EvidenceDesk {
                keys: anchor_evidence::keys::IssuerKeys::new(db.clone(), config.evidence.master.clone()),
                store: config.evidence.store.clone(),
            }),
            db,
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
        .with_commands(Arc::clone(&state.commands.desk));
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
    let db = Database::connect(&config.database_url, config.database_max_connections).await?;
    let app = app(&config, AppState::new(&config, db.clone())?, None);
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    db.close().await;
    tracing::info!("gateway stopped");
    Ok(())
}
