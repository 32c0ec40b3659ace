//! `anchor-agentfield-mock`: the mock on its own, for tests from other languages.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("AGENTFIELD_MOCK_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".to_owned());
    let config = anchor_agentfield_mock::Config {
        api_key: std::env::var("AGENTFIELD_API_KEY").ok(),
        webhook_allowed_hosts: std::env::var("AGENTFIELD_WEBHOOK_ALLOWED_HOSTS")
            .map(|v| v.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect())
            .unwrap_or_default(),
        node_token: std::env::var("AGENTFIELD_NODE_TOKEN").ok(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("agentfield-mock listening on http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    anchor_observability::cancel_on_shutdown_signal(shutdown.clone());
    anchor_agentfield_mock::run(config, listener, shutdown).await
}
