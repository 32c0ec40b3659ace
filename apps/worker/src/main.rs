//! `anchor-worker`: the worker role alone, as production runs it.

use anchor_config::{Overrides, Settings};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(None, &Overrides::default())?;
    anchor_observability::init_logging(settings.log_format, &settings.log_filter);
    let database_url = settings.database_url.clone().context("DATABASE_URL (or ANCHOR_DATABASE_URL) must be set")?;
    let shutdown = CancellationToken::new();
    anchor_observability::cancel_on_shutdown_signal(shutdown.clone());
    let public_url = settings.public_url.clone().context("public_url must be set: AgentField calls back there")?;
    let agentfield_url = settings.agentfield_url.clone().context("agentfield_url must be set")?;
    let config = anchor_worker::Config::from_settings(&settings, database_url, &public_url, &agentfield_url)?;
    anchor_worker::run(config, shutdown).await
}
