//! Anchor's AgentField agent node (agentfield.md section 3). It hosts:
//!
//! - the **skills** that perform domain commands, one per command of the
//!   registry (`anchor_commands::registry`; `ticket_create`, ...): each acts
//!   only on input that carries a command envelope the gateway signed, inside
//!   the workspace's unit of work, once per execution id, and with the
//!   permissions the originating subject holds at that moment
//!   (`anchor_commands::skill`);
//! - the **reasoners**: deterministic rules (`ticket_triage`, `triage_alert`);
//!   a language model behind an OpenAI-compatible endpoint may refine the
//!   ticket triage when configured ([`LlmConfig`]), never required.
//!
//! It registers its functions with their JSON schemas, heartbeats, answers
//! the control plane's `/status` polls and tells the control plane when it
//! goes away. [`run`] is the one way to start it (`anchor dev`, the
//! `anchor-agent-node` binary, tests).

mod api;
mod catalog;
mod reasoners;
mod refine;
mod registration;

pub use refine::LlmConfig;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anchor_agentfield::{AgentFieldClient, ClientConfig};
use anchor_commands::CommandVerifier;
use anchor_config::Settings;
use anchor_store::Database;
use anyhow::Context;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the node needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// When pooled connections are replaced (`database_max_lifetime`,
    /// `database_max_uses`).
    pub database_recycling: anchor_store::Recycling,
    /// The control plane it registers with.
    pub agentfield: ClientConfig,
    pub node_id: String,
    /// Where the control plane reaches this node.
    pub base_url: String,
    pub heartbeat_interval: Duration,
    /// The gateway keys whose envelopes it acts on.
    pub verifier: CommandVerifier,
    /// Calls to reasoners and skills must carry `Authorization: Bearer
    /// <token>` (the control plane's internal token): only the control plane
    /// may call them.
    pub internal_token: SecretString,
    /// Refines the ticket triage rules; `None`: the rules alone.
    pub llm: Option<LlmConfig>,
}

impl Config {
    /// The node's part of the installation's settings; `bound` is the
    /// listener's address (its URL unless `agent_node_url` says otherwise),
    /// `agentfield_url` the control plane (the settings' own, or the dev mock's).
    pub fn from_settings(
        settings: &Settings,
        database_url: SecretString,
        bound: SocketAddr,
        agentfield_url: &str,
    ) -> anyhow::Result<Self> {
        let internal_token = settings.agent_node_token.clone().context(
            "agent_node_token (ANCHOR_AGENT_NODE_TOKEN) must be set: the control plane's internal token, \
             which every call to the node's reasoners and skills must carry",
        )?;
        let mut agentfield = ClientConfig::new(agentfield_url);
        agentfield.api_key = settings.agentfield_api_key.clone();
        Ok(Self {
            database_url,
            database_max_connections: settings.database_max_connections,
            database_recycling: anchor_store::Recycling {
                max_lifetime: settings.database_max_lifetime,
                max_uses: settings.database_max_uses,
            },
            agentfield,
            node_id: settings.agent_node_id.clone(),
            base_url: settings.agent_node_url.clone().unwrap_or_else(|| format!("http://{bound}")),
            heartbeat_interval: Duration::from_secs(10),
            verifier: CommandVerifier::load(&settings.data_dir, settings.command_keys.as_deref())
                .context("the gateway's command key")?,
            internal_token,
            llm: settings.reasoner_llm.as_ref().map(|llm| LlmConfig {
                base_url: llm.base_url.clone(),
                model: llm.model.clone(),
                api_key: llm.api_key.clone(),
                timeout: llm.timeout,
            }),
        })
    }
}

/// Shared by the handlers.
#[derive(Debug)]
pub(crate) struct NodeState {
    pub(crate) db: Database,
    pub(crate) node_id: String,
    pub(crate) verifier: CommandVerifier,
    pub(crate) internal_token: SecretString,
    pub(crate) refiner: Option<refine::Refiner>,
}

/// Serves until `shutdown`; registers (and keeps registering while the
/// control plane is away), heartbeats, and announces its shutdown.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = Database::connect_with(&config.database_url, config.database_max_connections, config.database_recycling)
        .await?;
    let agentfield = AgentFieldClient::new(config.agentfield.clone())?;
    let state = Arc::new(NodeState {
        db: db.clone(),
        node_id: config.node_id.clone(),
        verifier: config.verifier.clone(),
        internal_token: config.internal_token.clone(),
        refiner: config.llm.clone().map(refine::Refiner::new).transpose()?,
    });
    tracing::info!(addr = %listener.local_addr()?, node = %config.node_id, "agent node listening");
    let presence = tokio::spawn(registration::keep_registered(
        agentfield,
        catalog::registration(&config.node_id, &config.base_url),
        config.heartbeat_interval,
        shutdown.clone(),
    ));
    let served =
        axum::serve(listener, api::router(state)).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = presence.await;
    db.close().await;
    tracing::info!("agent node stopped");
    Ok(served?)
}
