//! Issuing: the `evidence.issue` outbox handler. Completion writes the event
//! in the same unit of work that finishes the execution, so a crash between
//! the two loses nothing: the event is delivered after the restart. Issuing
//! is idempotent (an execution that has its credential is skipped) and
//! serialised per workspace by the chain head's row lock.

use std::sync::Arc;

use anchor_domain::{EvidenceId, ExecutionId};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{Database, StoreError, Workspace, evidence::EvidenceRecord};
use serde::Deserialize;
use serde_json::json;

use crate::{
    ISSUE_TOPIC,
    credential::{self, Issuance, Link},
    keys::{IssuerKeys, KeyError},
    store::EvidenceStore,
};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Evidence(#[from] crate::store::StoreError),
}

/// Issues credentials.
#[derive(Debug, Clone)]
pub struct Issuer {
    db: Database,
    keys: IssuerKeys,
    store: EvidenceStore,
}

#[derive(Debug, Deserialize)]
struct IssueEvent {
    execution_id: ExecutionId,
}

impl Issuer {
    pub fn new(db: Database, keys: IssuerKeys, store: EvidenceStore) -> Self {
        Self { db, keys, store }
    }

    /// Registers the `evidence.issue` handler.
    pub fn register(self, handlers: Handlers) -> Handlers {
        let this = Arc::new(self);
        handlers.on(ISSUE_TOPIC, move |event| {
            let this = Arc::clone(&this);
            async move { this.handle(event).await }
        })
    }

    async fn handle(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let parsed: IssueEvent = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("malformed evidence.issue event: {e}")))?;
        let workspace_id =
            event.workspace_id.ok_or_else(|| HandlerError::Permanent("evidence.issue without a workspace".into()))?;
        let workspace = self.db.workspace_by_id(workspace_id).await.map_err(|e| HandlerError::retry(e.to_string()))?;
        let Some(workspace) = workspace else { return Ok(()) };
        self.issue(&workspace, parsed.execution_id).await.map(drop).map_err(|e| HandlerError::retry(e.to_string()))
    }

    /// Issues the credential of a finished execution, unless it has one.
    /// Returns the new credential's id.
    #[tracing::instrument(skip(self, workspace), fields(workspace = %workspace.slug()))]
    pub async fn issue(&self, workspace: &Workspace, execution: ExecutionId) -> Result<Option<EvidenceId>, IssueError> {
        let mut tx = self.db.begin_workspace(workspace).await?;
        let Some(execution) = tx.lock_execution(execution).await? else { return Ok(None) };
        if execution.evidence_id.is_some() || !execution.status.is_finished() {
            return Ok(None);
        }
        let head = tx.lock_chain_head().await?;
        // The key and the time are taken once the chain is ours (waiting for
        // it can take a while), and the time from the database's clock, which
        // also dates the keys' validity: a rotation meanwhile is covered by
        // its overlap, and no clock skew can date a credential outside its
        // key's validity.
        let key = self.keys.current().await?;
        let issued_at = tx.clock().await?;
        let id = EvidenceId::new();
        let slug = workspace.slug().to_string();
        let issuance = Issuance {
            id,
            workspace: &slug,
            link: Link { seq: head.seq + 1, previous_digest: head.digest.clone() },
            issued_at,
        };
        let (credential, digest) =
            credential::sign(&credential::document(&execution, &issuance, &key), &key, issued_at);
        let object_key = EvidenceStore::object_key(&slug, &digest);
        // Stored before the index commits: an index row never points at
        // nothing. (A crash in between leaves an unreferenced document.)
        // Stored as its canonical (RFC 8785) bytes, so the object's name is
        // the SHA-256 of its content: `sha256sum` checks it.
        let bytes = anchor_crypto::canonical::to_vec(&credential).expect("a credential has a canonical form");
        self.store.put(&object_key, &bytes).await?;
        let record = EvidenceRecord {
            id,
            seq: issuance.link.seq,
            execution_id: execution.id,
            digest: digest.clone(),
            previous_digest: head.digest,
            key_id: key.verification_method.clone(),
            object_key,
            issued_at,
        };
        tx.append_evidence(&record).await?;
        let data = json!({"evidence_id": id, "execution_id": execution.id, "sequence": record.seq, "digest": digest,
                          "issuer": key.did});
        let event = anchor_events::PublishRequest::new("evidence.issued", Some(&slug), data);
        tx.enqueue(anchor_events::PUBLISH_TOPIC, &serde_json::to_value(event).expect("serialises")).await?;
        tx.commit().await?;
        tracing::info!(evidence = %id, execution = %execution.id, seq = record.seq, "credential issued");
        Ok(Some(id))
    }
}
