//! Issuing: the `evidence.issue` outbox handler. Completion (of an
//! execution) and recording (of a change) write the event in their own unit
//! of work, so a crash between the two loses nothing: the event is delivered
//! after the restart. Issuing is idempotent (what has its credential is
//! skipped) and serialised per workspace by the chain head's row lock; the
//! holder of the chain issues everything waiting in the workspace at once
//! (one unit of work, the documents stored together), so a burst of
//! completions costs a few holds of the chain, not one each.

use std::sync::Arc;

use anchor_domain::{ChangeId, EvidenceId, ExecutionId};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{
    Database, StoreError, Workspace, WorkspaceTx,
    changes::NewChange,
    evidence::{Attested, ChainHead, EvidenceRecord, Unattested},
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::json;

use crate::{
    ISSUE_TOPIC,
    credential::{self, Issuance, Link},
    keys::{IssuerKey, IssuerKeys, KeyError},
    store::EvidenceStore,
};

/// How long issuing waits before trying an unavailable evidence store again.
const STORE_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many credentials are issued under one hold of the chain.
const BATCH: i64 = 64;
/// Documents stored at once.
const STORE_CONCURRENCY: usize = 16;

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

    /// Issues the credential of a finished execution, unless it has one,
    /// with those of everything else waiting in its workspace. Returns the
    /// execution's credential (issued now or before), `None` when there is
    /// nothing to attest (no such execution, or not finished).
    #[tracing::instrument(skip(self, workspace), fields(workspace = %workspace.slug()))]
    pub async fn issue(&self, workspace: &Workspace, execution: ExecutionId) -> Result<Option<EvidenceId>, IssueError> {
        self.issue_waiting(workspace, Attested::Execution(execution)).await
    }

    /// Issues the credential of a recorded change, unless it has one, with
    /// those of everything else waiting in its workspace. Returns the
    /// change's credential (issued now or before), `None` for no such change.
    #[tracing::instrument(skip(self, workspace), fields(workspace = %workspace.slug()))]
    pub async fn issue_change(
        &self,
        workspace: &Workspace,
        change: ChangeId,
    ) -> Result<Option<EvidenceId>, IssueError> {
        self.issue_waiting(workspace, Attested::Change(change)).await
    }

    /// The chain is the workspace's one queue: whoever holds it issues the
    /// credentials of everything waiting (`wanted` and up to [`BATCH`] - 1
    /// more, oldest first), signed one after the other, stored together,
    /// appended and committed together. An issuer that finds `wanted`
    /// attested meanwhile (by the holder before it) has nothing to do.
    async fn issue_waiting(&self, workspace: &Workspace, wanted: Attested) -> Result<Option<EvidenceId>, IssueError> {
        // The key is read before the unit of work: reading it inside would
        // need a second connection while this one holds the chain, and
        // issuers waiting for the chain could hold every other connection.
        let key = self.keys.current().await?;
        let mut tx = self.db.begin_workspace(workspace).await?;
        // Attested already (the usual case for an event whose item went with
        // another issuer's batch): no need to wait for the chain.
        match state(&mut tx, wanted, false).await? {
            State::Absent => return Ok(None),
            State::Attested(id) => return Ok(Some(id)),
            State::Waiting(_) => {}
        }
        let head = tx.lock_chain_head().await?;
        // Under the chain: what `wanted` is now, and who waits with it.
        let wanted_now = match state(&mut tx, wanted, true).await? {
            State::Absent => return Ok(None),
            State::Attested(id) => return Ok(Some(id)),
            State::Waiting(item) => item,
        };
        let mut batch = vec![wanted_now];
        batch.extend(tx.lock_unattested(BATCH).await?.into_iter().filter(|item| item.attested() != wanted));
        batch.truncate(BATCH as usize);
        let issued = self.append(tx, &key, head, &batch).await?;
        Ok(issued.first().copied())
    }

    /// Signs with `key` the credentials of `batch` (linked in order from
    /// `head`), stores them, appends them to the chain and publishes
    /// `evidence.issued` for each, in `tx` (which holds the chain and the
    /// attested rows). Returns their ids, in order.
    async fn append(
        &self,
        mut tx: WorkspaceTx,
        key: &IssuerKey,
        head: ChainHead,
        batch: &[Unattested],
    ) -> Result<Vec<EvidenceId>, IssueError> {
        // The time is taken once the chain is ours (waiting for it can take
        // a while), from the database's clock, which also dates the keys'
        // validity: a rotation since the key was read is covered by its
        // overlap, and no clock skew can date a credential outside its key's
        // validity.
        let issued_at = tx.clock().await?;
        let slug = tx.workspace().slug().to_string();
        let mut previous = head.digest;
        let mut records = Vec::with_capacity(batch.len());
        let mut documents = Vec::with_capacity(batch.len());
        for (item, seq) in batch.iter().zip(head.seq + 1..) {
            let id = EvidenceId::new();
            let issuance =
                Issuance { id, workspace: &slug, link: Link { seq, previous_digest: previous.clone() }, issued_at };
            let document = match item {
                Unattested::Execution(execution) => credential::document(execution, &issuance, key),
                Unattested::Change(change) => credential::change_document(change, &issuance, key),
            };
            let (credential, digest) = credential::sign(&document, key, issued_at);
            let object_key = EvidenceStore::object_key(&slug, &digest);
            // Stored as its canonical (RFC 8785) bytes, so the object's name
            // is the SHA-256 of its content: `sha256sum` checks it.
            documents.push((
                object_key.clone(),
                anchor_crypto::canonical::to_vec(&credential).expect("a credential has a canonical form"),
            ));
            records.push(EvidenceRecord {
                id,
                seq,
                attests: item.attested(),
                digest: digest.clone(),
                previous_digest: previous.replace(digest),
                key_id: key.verification_method.clone(),
                object_key,
                issued_at,
            });
        }
        // Stored before the index commits: an index row never points at
        // nothing. (A crash in between leaves unreferenced documents.) All at
        // once: the chain waits for the slowest, not for their sum.
        let puts: Vec<_> = documents.iter().map(|(object_key, bytes)| self.store.put(object_key, bytes)).collect();
        stream::iter(puts).buffer_unordered(STORE_CONCURRENCY).try_collect::<()>().await?;
        tx.append_evidence(&records).await?;
        for record in &records {
            let event = EvidenceIssued {
                evidence_id: record.id,
                execution_id: record.attests.execution(),
                change_id: record.attests.change(),
                sequence: record.seq,
                digest: record.digest.clone(),
                issuer: key.did.clone(),
            };
            anchor_events::publish(&mut tx, &event).await?;
        }
        tx.commit().await?;
        for record in &records {
            tracing::info!(evidence = %record.id, attests = ?record.attests, seq = record.seq, "credential issued");
        }
        Ok(records.iter().map(|record| record.id).collect())
    }
}

/// Where something to attest stands (short-lived, one at a time: its size
/// does not matter).
#[allow(clippy::large_enum_variant)]
enum State {
    /// No such execution or change, or an execution still running.
    Absent,
    Attested(EvidenceId),
    Waiting(Unattested),
}

/// `what`'s state, its row locked when `lock`.
async fn state(tx: &mut WorkspaceTx, what: Attested, lock: bool) -> Result<State, StoreError> {
    Ok(match what {
        Attested::Execution(id) => {
            let execution = if lock { tx.lock_execution(id).await? } else { tx.execution(id).await? };
            match execution {
                Some(execution) if execution.status.is_finished() => match execution.evidence_id {
                    Some(evidence) => State::Attested(evidence),
                    None => State::Waiting(Unattested::Execution(execution)),
                },
                _ => State::Absent,
            }
        }
        Attested::Change(id) => {
            let change = if lock { tx.lock_change(id).await? } else { tx.change(id).await? };
            match change {
                Some(change) => match change.evidence_id {
                    Some(evidence) => State::Attested(evidence),
                    None => State::Waiting(Unattested::Change(change)),
                },
                None => State::Absent,
            }
        }
    })
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
