//! `anchor-gateway`: the gateway role alone, as production runs it.

use anchor_config::{Overrides, Settings};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(None, &Overrides::default())?;
    anchor_observability::init_logging(settings.log_format, &settings.log_filter);
    let database_url = settings.database_url.clone().context("DATABASE_URL (or ANCHOR_DATABASE_URL) must be set")?;
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("bind {}", settings.http_addr))?;
    let metrics = tokio::net::TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("bind {}", settings.metrics_addr))?;
    let shutdown = CancellationToken::new();
    anchor_observability::cancel_on_shutdown_signal(shutdown.clone());
    let metrics = tokio::spawn(anchor_observability::serve_metrics(metrics, shutdown.clone()));
    let bound = listener.local_addr()?;
    anchor_gateway::run(anchor_gateway::Config::from_settings(&settings, database_url, bound)?, listener, shutdown)
        .await?;
    metrics.await??;
    Ok(())
}
