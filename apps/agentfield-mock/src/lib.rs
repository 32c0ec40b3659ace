//! A stand-in for the AgentField control plane that speaks its wire protocol
//! (`shared/design/agentfield.md`), for `anchor dev` and tests: node
//! registration, heartbeats and `/status` polling; sync and async execute
//! routed to the registered node with the bare input and the documented
//! headers; node 202 plus status callback; the executions store, batch
//! status and cancel; execution webhooks signed with
//! `X-AgentField-Signature` and retried like upstream; the documented error
//! shapes and status codes; API-key auth.
//!
//! State lives in memory: a restart forgets executions, as a fresh control
//! plane would.

mod api;
mod state;
mod webhooks;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::MockState;

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Required from callers and nodes when set (`X-API-Key` or `Bearer`).
    pub api_key: Option<String>,
    /// Hosts (names or IPs) webhooks may target although they are loopback or
    /// private, as upstream's `AGENTFIELD_WEBHOOK_ALLOWED_HOSTS`.
    pub webhook_allowed_hosts: Vec<String>,
    /// Webhook attempts (upstream: 5), per-attempt timeout (10 s), and the
    /// first backoff (5 s, doubling, at most 5 min).
    pub webhook_attempts: u32,
    pub webhook_timeout: Duration,
    pub webhook_backoff: Duration,
    /// The internal token sent to nodes (`Authorization: Bearer`) when they
    /// are invoked or told to cancel, as upstream does when configured.
    pub node_token: Option<String>,
    /// How long a call to a node may take before the execution times out.
    pub node_timeout: Duration,
    /// How often registered nodes' `/status` is polled (upstream: 10 s).
    pub status_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_key: None,
            webhook_allowed_hosts: Vec::new(),
            node_token: None,
            webhook_attempts: 5,
            webhook_timeout: Duration::from_secs(10),
            webhook_backoff: Duration::from_secs(5),
            node_timeout: Duration::from_secs(60),
            status_poll: Duration::from_secs(10),
        }
    }
}

/// Serves the mock until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = Arc::new(MockState::new(config));
    let poller = tokio::spawn(state::poll_nodes(Arc::clone(&state), shutdown.clone()));
    tracing::info!(addr = %listener.local_addr()?, "agentfield-mock listening");
    axum::serve(listener, api::router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    let _ = poller.await;
    Ok(())
}
