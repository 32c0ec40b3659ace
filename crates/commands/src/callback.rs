//! AgentField's execution webhooks (agentfield.md section 2), received by the
//! gateway at `POST /api/v1/callbacks/agentfield`.
//!
//! AgentField signs the raw body with the secret given at execute time and
//! sends the custom headers given there; it sends no timestamp, nonce or
//! delivery id. So each execution gets a secret of its own, derived from the
//! installation's callback key and bound to (workspace, execution), named by
//! two custom headers. The gateway re-derives it from those headers and
//! checks the signature before it parses a byte of the body; altered headers
//! give another secret and fail the check. Deliveries are deduplicated on
//! AgentField's execution id + event, each accepted one gets a stored receipt
//! (written in the same unit of work as its effect), and a replay is answered
//! with the original receipt and changes nothing.

use std::path::Path;

use anchor_domain::{ExecutionId, ExecutionStatus, WorkspaceSlug};
use anchor_store::{Database, StoreError, executions::Receipt};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::finish::{self, Outcome};

/// Header naming the execution's workspace.
pub const WORKSPACE_HEADER: &str = "X-Anchor-Workspace";
/// Header naming Anchor's execution id.
pub const EXECUTION_HEADER: &str = "X-Anchor-Execution";
/// AgentField's signature header.
pub const SIGNATURE_HEADER: &str = "X-AgentField-Signature";
/// The key file in the data directory.
pub const KEY_FILE: &str = "agentfield-callback.key";
/// Receipts' `source`.
pub const SOURCE: &str = "agentfield";

/// The installation's callback key.
#[derive(Clone)]
pub struct CallbackKey([u8; 32]);

impl std::fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackKey(..)")
    }
}

impl CallbackKey {
    pub fn load_or_create(data_dir: &Path) -> Result<Self, anchor_crypto::keys::KeyError> {
        anchor_crypto::keys::secret(data_dir, KEY_FILE).map(Self)
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The webhook secret of one execution.
    pub fn secret_for(&self, workspace: &str, execution: &str) -> String {
        let tag = anchor_crypto::mac::sign(
            &self.0,
            &[b"anchor agentfield callback\0", workspace.as_bytes(), b"\0", execution.as_bytes()],
        );
        hex::encode(tag)
    }

    /// Checks `X-AgentField-Signature: sha256=<hex>` over the raw body.
    fn verify(&self, workspace: &str, execution: &str, signature: &str, body: &[u8]) -> bool {
        let Some(tag) = signature.trim().strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()) else {
            return false;
        };
        anchor_crypto::mac::verify(self.secret_for(workspace, execution).as_bytes(), body, &tag)
    }
}

/// The webhook body, as much of it as Anchor uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionWebhook {
    pub event: String,
    pub execution_id: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl ExecutionWebhook {
    fn outcome(&self) -> Result<Outcome, CallbackError> {
        match (self.event.as_str(), self.status.as_str()) {
            ("execution.completed", _) => Ok(Outcome::Succeeded),
            ("execution.failed", status) => {
                let status = match status {
                    "cancelled" => ExecutionStatus::Cancelled,
                    "timeout" => ExecutionStatus::Timeout,
                    _ => ExecutionStatus::Failed,
                };
                let reason = self.error_message.clone().filter(|m| !m.is_empty()).or(self.status_reason.clone());
                Ok(Outcome::Failed { status, reason })
            }
            (other, _) => Err(CallbackError::Malformed(format!("unknown event {other:?}"))),
        }
    }
}

/// A delivery the gateway received: the two routing headers, the signature
/// header and the raw body, untouched.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub workspace: Option<&'a str>,
    pub execution: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Missing headers, unknown workspace or a wrong signature: all look the
    /// same from outside.
    #[error("the callback's signature does not verify")]
    Unauthenticated,
    #[error("the callback is not an AgentField execution webhook: {0}")]
    Malformed(String),
    #[error("no such execution")]
    UnknownExecution,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies, deduplicates and applies one delivery; returns its receipt.
#[tracing::instrument(skip_all, fields(workspace = delivery.workspace, execution = delivery.execution))]
pub async fn receive(db: &Database, key: &CallbackKey, delivery: Delivery<'_>) -> Result<Receipt, CallbackError> {
    let (Some(workspace), Some(execution), Some(signature)) =
        (delivery.workspace, delivery.execution, delivery.signature)
    else {
        return Err(CallbackError::Unauthenticated);
    };
    if !key.verify(workspace, execution, signature, delivery.body) {
        return Err(CallbackError::Unauthenticated);
    }
    // Authentic from here on: the headers are the ones Anchor chose.
    let slug = WorkspaceSlug::parse(workspace).map_err(|_| CallbackError::Unauthenticated)?;
    let execution_id: ExecutionId = execution.parse().map_err(|_| CallbackError::Unauthenticated)?;
    let webhook: ExecutionWebhook =
        serde_json::from_slice(delivery.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    let outcome = webhook.outcome()?;
    let delivery_id = format!("{}:{}", webhook.execution_id, webhook.event);
    let body_sha256 = format!("sha256:{}", hex::encode(Sha256::digest(delivery.body)));

    let Some(workspace) = db.workspace(&slug).await? else { return Err(CallbackError::UnknownExecution) };
    let mut tx = db.begin_workspace(&workspace).await?;
    if let Some(receipt) = tx.callback_receipt(SOURCE, &delivery_id).await? {
        tx.rollback().await?;
        return Ok(receipt);
    }
    let Some(execution) = tx.lock_execution(execution_id).await? else {
        return Err(CallbackError::UnknownExecution);
    };
    let finished = finish::finish(&mut tx, &execution, outcome).await?;
    let effect = json!({
        "execution_id": execution.id,
        "agentfield_execution_id": webhook.execution_id,
        "event": webhook.event,
        "applied": finished,
    });
    let receipt = tx.record_callback_receipt(SOURCE, &delivery_id, &body_sha256, &effect).await?;
    if receipt.replay {
        // The same delivery raced us and won: its effect stands, ours goes.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_bound_to_workspace_and_execution() {
        let key = CallbackKey::from_bytes([7; 32]);
        let secret = key.secret_for("acme", "exe_1");
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, key.secret_for("globex", "exe_1"));
        assert_ne!(secret, key.secret_for("acme", "exe_2"));
        assert_ne!(secret, CallbackKey::from_bytes([8; 32]).secret_for("acme", "exe_1"));
    }

    #[test]
    fn signatures_verify_over_the_raw_body_only() {
        let key = CallbackKey::from_bytes([7; 32]);
        let body = br#"{"event":"execution.completed"}"#;
        let tag = anchor_crypto::mac::sign(key.secret_for("acme", "exe_1").as_bytes(), &[body]);
        let header = format!("sha256={}", hex::encode(tag));
        assert!(key.verify("acme", "exe_1", &header, body));
        assert!(!key.verify("acme", "exe_2", &header, body), "another execution's headers");
        assert!(!key.verify("acme", "exe_1", &header, br#"{"event":"execution.failed"}"#));
        assert!(!key.verify("acme", "exe_1", &hex::encode(tag), body), "the sha256= prefix is required");
        assert!(!key.verify("acme", "exe_1", "sha256=zz", body));
    }
}
