//! `anchor-agent-node`: the agent node role alone, as production runs it.

use anchor_config::{Overrides, Settings};
use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(None, &Overrides::default())?;
    anchor_observability::init_logging(settings.log_format, &settings.log_filter);
    let database_url = settings.database_url.clone().context("DATABASE_URL (or ANCHOR_DATABASE_URL) must be set")?;
    let listener = TcpListener::bind(settings.agent_node_addr)
        .await
        .with_context(|| format!("cannot listen on {} (setting agent_node_addr)", settings.agent_node_addr))?;
    let agentfield_url = settings.agentfield_url.clone().context("agentfield_url must be set")?;
    let config =
        anchor_agent_node::Config::from_settings(&settings, database_url, listener.local_addr()?, &agentfield_url)?;
    let shutdown = CancellationToken::new();
    anchor_observability::cancel_on_shutdown_signal(shutdown.clone());
    anchor_agent_node::run(config, listener, shutdown).await
}
