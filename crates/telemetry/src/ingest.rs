//! Ingest: one unit of work per batch in the agent's workspace (from its
//! identity): the batch row (once per agent and sequence; a resent batch is
//! acknowledged with the original id and stores nothing again), the samples
//! and check results in bulk, the latest inventory on the asset, and what
//! the batch routed (alert transitions, each with its outbox events).

use anchor_domain::BatchId;
use anchor_store::{Database, StoreError, agents::Agent};
use serde_json::Value;

use crate::batch::Batch;

/// The acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub batch_id: BatchId,
    /// This sequence number had been accepted before.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the agent's workspace no longer exists")]
    WorkspaceGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn ingest(db: &Database, agent: &Agent, batch: &Batch) -> Result<Ack, IngestError> {
    let workspace = db.workspace_by_id(agent.workspace_id).await?.ok_or(IngestError::WorkspaceGone)?;
    let mut tx = db.begin_workspace(&workspace).await?;
    let events = Value::Array(batch.events.clone());
    let (batch_id, new) = tx
        .insert_batch(
            agent.id,
            batch.sequence,
            batch.sent_at,
            batch.metrics.len() as i32,
            batch.checks.len() as i32,
            &events,
        )
        .await?;
    if new {
        tx.insert_samples(agent.id, &crate::batch::samples(batch)).await?;
        tx.insert_check_results(agent.id, &crate::batch::check_results(batch)).await?;
        if let Some(inventory) = &batch.inventory {
            tx.record_inventory(agent.id, inventory).await?;
        }
        let routed = crate::alerts::evaluate(&mut tx, agent.id, &agent.hostname, batch).await?;
        if routed.as_array().is_some_and(|r| !r.is_empty()) {
            tx.record_routing(batch_id, &routed).await?;
        }
    }
    tx.commit().await?;
    db.touch_agent(agent.id).await?;
    Ok(Ack { batch_id, duplicate: !new })
}
