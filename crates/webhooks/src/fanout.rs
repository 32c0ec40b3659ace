//! From domain event to deliveries. The `event.publish` outbox event of a
//! workspace becomes one message (stored once per outbox event, so a
//! redelivered event makes no second message) and one `webhook.deliver`
//! outbox event per enabled endpoint subscribed to its type, in one unit of
//! work.

use anchor_domain::{MessageId, WebhookId};
use anchor_events::PublishRequest;
use anchor_outbox::{HandlerError, OutboxEvent};
use anchor_store::{Database, StoreError, WorkspaceTx};
use serde_json::json;

use crate::DELIVER_TOPIC;

/// Attempts per delivery: the retry schedule's length plus the first.
pub const MAX_ATTEMPTS: i32 = 8;

/// The body every endpoint receives for a published event.
pub fn body(event: &PublishRequest) -> String {
    json!({"type": event.kind, "timestamp": event.timestamp, "workspace": event.workspace, "data": event.data})
        .to_string()
}

/// Queues delivery of `message` to `endpoint` in this unit of work.
pub async fn queue_delivery(tx: &mut WorkspaceTx, message: MessageId, endpoint: WebhookId) -> Result<(), StoreError> {
    let payload = json!({"message_id": message, "endpoint_id": endpoint});
    tx.enqueue_with(DELIVER_TOPIC, &payload, std::time::Duration::ZERO, MAX_ATTEMPTS).await.map(drop)
}

/// The fan-out step of the `event.publish` handler.
#[derive(Debug, Clone)]
pub struct Fanout {
    db: Database,
}

impl Fanout {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let request: PublishRequest = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("not an event.publish payload: {e}")))?;
        let retry = |e: StoreError| HandlerError::retry(format!("database: {e}"));
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let endpoints = tx.subscribed_endpoints(&request.kind).await.map_err(retry)?;
        if endpoints.is_empty() {
            tx.discard();
            return Ok(());
        }
        let (message, new) = tx.insert_message(Some(event.id), &request.kind, &body(&request)).await.map_err(retry)?;
        if new {
            for endpoint in endpoints {
                queue_delivery(&mut tx, message, endpoint).await.map_err(retry)?;
            }
        }
        tx.commit().await.map_err(retry)
    }
}
