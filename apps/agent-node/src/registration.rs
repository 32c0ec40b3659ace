//! The node's presence at the control plane: register (retrying while the
//! control plane is unreachable), heartbeat, register again when the control
//! plane forgot the node (it restarted), announce shutdown.

use std::time::Duration;

use anchor_agentfield::{AgentFieldClient, AgentFieldError, NodeRegistration};
use tokio_util::sync::CancellationToken;

pub(crate) async fn keep_registered(
    agentfield: AgentFieldClient,
    registration: NodeRegistration,
    heartbeat_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut registered = false;
    let mut retry = Duration::from_millis(200);
    loop {
        let wait = if registered {
            match agentfield.heartbeat(&registration.id, "ready", &registration.version).await {
                Ok(_) => heartbeat_interval,
                Err(AgentFieldError::NotFound) => {
                    tracing::warn!("the control plane forgot this node; registering again");
                    registered = false;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat failed");
                    heartbeat_interval
                }
            }
        } else {
            match agentfield.register_node(&registration).await {
                Ok(_) => {
                    tracing::info!(node = %registration.id, base_url = %registration.base_url, "registered with AgentField");
                    registered = true;
                    retry = Duration::from_millis(200);
                    heartbeat_interval.min(Duration::from_secs(1))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register with AgentField yet; retrying");
                    retry = (retry * 2).min(Duration::from_secs(10));
                    retry
                }
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    // Best effort and brief: the control plane may be stopping too.
    if registered {
        match tokio::time::timeout(Duration::from_secs(2), agentfield.node_shutdown(&registration.id)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not announce shutdown"),
            Err(_) => tracing::debug!("announcing shutdown timed out"),
        }
    }
}
