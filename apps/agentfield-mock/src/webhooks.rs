//! Execution webhooks: fired on terminal transitions (not on cancel), signed
//! with `X-AgentField-Signature: sha256=<hex HMAC-SHA256(secret, body)>` when
//! a secret was given, retried on non-2xx or transport errors (upstream: 5
//! attempts, 10 s timeout, backoff 5 s doubling to 5 min).

use std::{sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::state::{Execution, MockState, Webhook, now};

pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) async fn deliver(state: Arc<MockState>, webhook: Webhook, exec: Execution) {
    let succeeded = exec.status == "succeeded";
    let mut payload = json!({
        "event": if succeeded { "execution.completed" } else { "execution.failed" },
        "execution_id": exec.id, "workflow_id": exec.run_id, "agent_node_id": exec.node,
        "reasoner_id": exec.name, "status": exec.status, "status_reason": exec.status_reason,
        "target": exec.target(), "type": exec.kind, "started_at": exec.started_at,
        "completed_at": exec.completed_at, "duration_ms": exec.duration_ms, "retry_count": 0,
        "timestamp": now(),
    });
    if succeeded {
        payload["result"] = exec.result.clone().unwrap_or_default();
    } else {
        payload["error_message"] = exec.error.clone().unwrap_or_default().into();
    }
    let body = serde_json::to_vec(&payload).expect("JSON");
    let mut delay = state.config.webhook_backoff;
    for attempt in 1..=state.config.webhook_attempts {
        let mut request = state
            .http
            .post(&webhook.url)
            .timeout(state.config.webhook_timeout)
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(secret) = &webhook.secret {
            request = request.header("X-AgentField-Signature", signature(secret, &body));
        }
        for (name, value) in webhook.headers.iter().flatten() {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => tracing::debug!(attempt, status = %response.status(), "execution webhook refused"),
            Err(e) => tracing::debug!(attempt, error = %e, "execution webhook failed"),
        }
        if attempt < state.config.webhook_attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(300));
        }
    }
    tracing::warn!(execution = %exec.id, url = %webhook.url, "execution webhook given up");
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = super::signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
