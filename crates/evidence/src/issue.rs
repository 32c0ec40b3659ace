//! Issuing: the `evidence.issue` outbox handler. Completion (of an
//! execution) and recording (of a change) write the event in their own unit
//! of work, so a crash between the two loses nothing: the event is delivered
//! after the restart. Issuing is idempotent (what has its credential is
//! skipped) and serialised per workspace by the chain head's row lock.

use std::sync::Arc;

use anchor_domain::{ChangeId, EvidenceId, ExecutionId};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{
    Database, StoreError, Workspace, WorkspaceTx,
    changes::NewChange,
    evidence::{Attested, EvidenceRecord},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    ISSUE_TOPIC,
    credential::{self, Issuance, Link},
    keys::{IssuerKey, IssuerKeys, KeyError},
    store::EvidenceStore,
};

/// How long issuing waits before trying an unavailable evidence store again.
const STORE_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

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

/// What an `evidence.issue` event asks to attest.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IssueEvent {
    Execution { execution_id: ExecutionId },
    Change { change_id: ChangeId },
}

/// Records an administrative change in the caller's unit of work and
/// schedules its credential: durable, and attested, together with the
/// change itself.
pub async fn record_change(tx: &mut WorkspaceTx, change: &NewChange<'_>) -> Result<ChangeId, StoreError> {
    let id = tx.insert_change(change).await?;
    tx.enqueue(ISSUE_TOPIC, &json!({"change_id": id})).await?;
    Ok(id)
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
        let issued = match parsed {
            IssueEvent::Execution { execution_id } => self.issue(&workspace, execution_id).await,
            IssueEvent::Change { change_id } => self.issue_change(&workspace, change_id).await,
        };
        match issued {
            Ok(_) => Ok(()),
            // The evidence store (a bucket, a disk) being away is an outage
            // to wait out, however long: a credential is never given up.
            Err(e @ IssueError::Evidence(_)) => Err(HandlerError::postpone(e.to_string(), STORE_PAUSE)),
            Err(e) => Err(HandlerError::retry(e.to_string())),
        }
    }

    /// Issues the credential of a finished execution, unless it has one.
    /// Returns the new credential's id.
    #[tracing::instrument(skip(self, workspace), fields(workspace = %workspace.slug()))]
    pub async fn issue(&self, workspace: &Workspace, execution: ExecutionId) -> Result<Option<EvidenceId>, IssueError> {
        // The key is read before the unit of work: reading it inside would
        // need a second connection while this one holds the chain, and
        // issuers waiting for the chain could hold every other connection.
        let key = self.keys.current().await?;
        let mut tx = self.db.begin_workspace(workspace).await?;
        let Some(execution) = tx.lock_execution(execution).await? else { return Ok(None) };
        if execution.evidence_id.is_some() || !execution.status.is_finished() {
            return Ok(None);
        }
        let attests = Attested::Execution(execution.id);
        self.append(tx, &key, attests, |issuance| credential::document(&execution, issuance, &key)).await.map(Some)
    }

    /// Issues the credential of a recorded change, unless it has one.
    #[tracing::instrument(skip(self, workspace), fields(workspace = %workspace.slug()))]
    pub async fn issue_change(
        &self,
        workspace: &Workspace,
        change: ChangeId,
    ) -> Result<Option<EvidenceId>, IssueError> {
        let key = self.keys.current().await?;
        let mut tx = self.db.begin_workspace(workspace).await?;
        let Some(change) = tx.lock_change(change).await? else { return Ok(None) };
        if change.evidence_id.is_some() {
            return Ok(None);
        }
        let attests = Attested::Change(change.id);
        self.append(tx, &key, attests, |issuance| credential::change_document(&change, issuance, &key)).await.map(Some)
    }

    /// Signs with `key` the document `build` makes, stores it, appends it to
    /// the chain and publishes `evidence.issued`, in `tx` (which holds the
    /// attested row).
    async fn append(
        &self,
        mut tx: WorkspaceTx,
        key: &IssuerKey,
        attests: Attested,
        build: impl FnOnce(&Issuance<'_>) -> Value,
    ) -> Result<EvidenceId, IssueError> {
        let head = tx.lock_chain_head().await?;
        // The time is taken once the chain is ours (waiting for it can take
        // a while), from the database's clock, which also dates the keys'
        // validity: a rotation since the key was read is covered by its
        // overlap, and no clock skew can date a credential outside its key's
        // validity.
        let issued_at = tx.clock().await?;
        let id = EvidenceId::new();
        let slug = tx.workspace().slug().to_string();
        let issuance = Issuance {
            id,
            workspace: &slug,
            link: Link { seq: head.seq + 1, previous_digest: head.digest.clone() },
            issued_at,
        };
        let (credential, digest) = credential::sign(&build(&issuance), key, issued_at);
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
            attests,
            digest: digest.clone(),
            previous_digest: head.digest,
            key_id: key.verification_method.clone(),
            object_key,
            issued_at,
        };
        tx.append_evidence(&record).await?;
        let (execution_id, change_id) = match attests {
            Attested::Execution(execution) => (Some(execution), None),
            Attested::Change(change) => (None, Some(change)),
        };
        let event = EvidenceIssued {
            evidence_id: id,
            execution_id,
            change_id,
            sequence: record.seq,
            digest,
            issuer: key.did.clone(),
        };
        anchor_events::publish(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::info!(evidence = %id, attests = ?attests, seq = record.seq, "credential issued");
        Ok(id)
    }
}

/// `evidence.issued`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct EvidenceIssued {
    pub evidence_id: EvidenceId,
    /// The finished execution it attests, when it attests one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<ExecutionId>,
    /// The administrative change it attests, when it attests one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_id: Option<ChangeId>,
    /// Its place in the workspace's chain.
    pub sequence: i64,
    pub digest: String,
    /// The issuer's `did:key`.
    pub issuer: String,
}

impl anchor_events::Event for EvidenceIssued {
    const TYPE: &'static str = "evidence.issued";
    const WHEN: &'static str =
        "A signed audit credential was issued for a finished execution or an administrative change.";
}

/// The events issuing publishes.
pub const EVENTS: &[anchor_events::EventSpec] = &[anchor_events::EventSpec::of::<EvidenceIssued>()];
