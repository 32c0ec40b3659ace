//! Audit evidence: the installation's issuer keys (sealed private keys; the
//! sealing is the evidence crate's business) and each workspace's index of
//! credentials with the head of its hash chain.

use anchor_domain::{ChangeId, EvidenceId, ExecutionId};
use time::OffsetDateTime;

use crate::{
    Database, StoreError, WorkspaceTx,
    changes::{COLUMNS as CHANGE_COLUMNS, Change},
    executions::{COLUMNS as EXECUTION_COLUMNS, Execution},
};

/// An issuer key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredKey {
    /// The public key multibase (`z6Mk...`).
    pub id: String,
    pub did: String,
    pub sealed_private: Vec<u8>,
    pub nonce: Vec<u8>,
    pub master_key_id: String,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
}

/// What a credential attests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attested {
    Execution(ExecutionId),
    Change(ChangeId),
}

impl Attested {
    pub fn execution(self) -> Option<ExecutionId> {
        match self {
            Self::Execution(id) => Some(id),
            Self::Change(_) => None,
        }
    }

    pub fn change(self) -> Option<ChangeId> {
        match self {
            Self::Change(id) => Some(id),
            Self::Execution(_) => None,
        }
    }
}

/// A credential in the workspace's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    pub id: EvidenceId,
    pub seq: i64,
    pub attests: Attested,
    pub digest: String,
    pub previous_digest: Option<String>,
    pub key_id: String,
    pub object_key: String,
    pub issued_at: OffsetDateTime,
}

/// Something waiting for its credential.
#[derive(Debug, Clone)]
pub enum Unattested {
    Execution(Execution),
    Change(Change),
}

impl Unattested {
    pub fn attested(&self) -> Attested {
        match self {
            Self::Execution(execution) => Attested::Execution(execution.id),
            Self::Change(change) => Attested::Change(change.id),
        }
    }

    /// Since when it waits: the execution's completion, the change's recording.
    pub fn since(&self) -> (OffsetDateTime, String) {
        match self {
            Self::Execution(execution) => {
                (execution.completed_at.unwrap_or(execution.created_at), execution.id.to_string())
            }
            Self::Change(change) => (change.created_at, change.id.to_string()),
        }
    }
}

/// The chain's newest link.
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ChainHead {
    pub seq: i64,
    pub digest: Option<String>,
}

/// A credential's index row: it names what it attests in one of two columns.
#[derive(Debug, sqlx::FromRow)]
struct EvidenceRow {
    id: EvidenceId,
    seq: i64,
    execution_id: Option<ExecutionId>,
    change_id: Option<ChangeId>,
    digest: String,
    previous_digest: Option<String>,
    key_id: String,
    object_key: String,
    issued_at: OffsetDateTime,
}

impl TryFrom<EvidenceRow> for EvidenceRecord {
    type Error = StoreError;

    fn try_from(row: EvidenceRow) -> Result<Self, StoreError> {
        let attests = match (row.execution_id, row.change_id) {
            (Some(execution), None) => Attested::Execution(execution),
            (None, Some(change)) => Attested::Change(change),
            _ => {
                let what = format!("evidence {} attests neither one execution nor one change", row.id);
                return Err(StoreError::Database(sqlx::Error::Decode(what.into())));
            }
        };
        Ok(Self {
            id: row.id,
            seq: row.seq,
            attests,
            digest: row.digest,
            previous_digest: row.previous_digest,
            key_id: row.key_id,
            object_key: row.object_key,
            issued_at: row.issued_at,
        })
    }
}

const KEY_COLUMNS: &str = "id, did, sealed_private, nonce, master_key_id, valid_from, valid_until";
const EVIDENCE_COLUMNS: &str =
    "id, seq, execution_id, change_id, digest, previous_digest, key_id, object_key, issued_at";

impl Database {
    /// The current issuer key, if there is one.
    pub async fn current_evidence_key(&self) -> Result<Option<StoredKey>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM platform.evidence_keys WHERE valid_until IS NULL"
        )))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Every issuer key, current and retired, oldest first.
    pub async fn evidence_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM platform.evidence_keys ORDER BY valid_from, id"
        )))
        .fetch_all(self.pool())
        .await?)
    }

    /// Makes `key` the current issuer key, retiring the current one (if
    /// any) as of now. With `only_if_none`, does nothing when a current key
    /// exists (first use racing itself). Returns whether `key` was stored.
    /// Installs `key` as the current issuer key (unless `only_if_none` and
    /// there is one). The key it replaces stays valid for `overlap` more, so
    /// an issuer that read it just before the rotation still signs validly.
    pub async fn install_evidence_key(
        &self,
        key: &StoredKey,
        only_if_none: bool,
        overlap: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // One installer at a time.
        sqlx::query("LOCK TABLE platform.evidence_keys IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT id FROM platform.evidence_keys WHERE valid_until IS NULL")
                .fetch_optional(&mut *tx)
                .await?;
        if current.is_some() && only_if_none {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE platform.evidence_keys SET valid_until = now() + make_interval(secs => $1) WHERE valid_until IS NULL",
        )
        .bind(overlap.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO platform.evidence_keys (id, did, sealed_private, nonce, master_key_id)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.did)
        .bind(&key.sealed_private)
        .bind(&key.nonce)
        .bind(&key.master_key_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl WorkspaceTx {
    /// The chain's head, locked until this unit of work ends: credentials of
    /// a workspace are issued one after the other.
    pub async fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError> {
        Ok(sqlx::query_as("SELECT head_seq AS seq, head_digest AS digest FROM evidence_chain FOR UPDATE")
            .fetch_one(self.conn())
            .await?)
    }

    pub async fn chain_head(&mut self) -> Result<ChainHead, StoreError> {
        Ok(sqlx::query_as("SELECT head_seq AS seq, head_digest AS digest FROM evidence_chain")
            .fetch_one(self.conn())
            .await?)
    }

    /// Adds credentials at the head of the chain, in order (the first links
    /// to the current head, each next one to the one before), and links what
    /// each attests: three statements however many there are.
    pub async fn append_evidence(&mut self, records: &[EvidenceRecord]) -> Result<(), StoreError> {
        let Some(last) = records.last() else { return Ok(()) };
        let column = |f: fn(&EvidenceRecord) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
        let ids = column(|r| Some(r.id.to_string()));
        let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
        let executions = column(|r| r.attests.execution().map(|id| id.to_string()));
        let changes = column(|r| r.attests.change().map(|id| id.to_string()));
        let issued_at: Vec<OffsetDateTime> = records.iter().map(|r| r.issued_at).collect();
        sqlx::query(
            "INSERT INTO evidence (id, seq, execution_id, change_id, digest, previous_digest, key_id, object_key, issued_at)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                  $8::text[], $9::timestamptz[])",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&executions)
        .bind(&changes)
        .bind(column(|r| Some(r.digest.clone())))
        .bind(column(|r| r.previous_digest.clone()))
        .bind(column(|r| Some(r.key_id.clone())))
        .bind(column(|r| Some(r.object_key.clone())))
        .bind(&issued_at)
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE evidence_chain SET head_seq = $1, head_digest = $2")
            .bind(last.seq)
            .bind(&last.digest)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "WITH issued AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS i (id, execution_id, change_id)),
                  executions_linked AS (
                      UPDATE executions e SET evidence_id = issued.id FROM issued WHERE e.id = issued.execution_id)
             UPDATE changes c SET evidence_id = issued.id FROM issued WHERE c.id = issued.change_id",
        )
        .bind(&ids)
        .bind(&executions)
        .bind(&changes)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Finished executions and recorded changes that have no credential,
    /// oldest first, at most `limit` of them, each locked until this unit of
    /// work ends; rows another unit of work holds are left out.
    pub async fn lock_unattested(&mut self, limit: i64) -> Result<Vec<Unattested>, StoreError> {
        let executions: Vec<Execution> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE evidence_id IS NULL AND completed_at IS NOT NULL
              ORDER BY completed_at, id LIMIT $1 FOR UPDATE SKIP LOCKED"
        )))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        let changes: Vec<Change> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE evidence_id IS NULL
              ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED"
        )))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        let mut pending: Vec<Unattested> = executions
            .into_iter()
            .map(Unattested::Execution)
            .chain(changes.into_iter().map(Unattested::Change))
            .collect();
        pending.sort_by_key(Unattested::since);
        pending.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(pending)
    }

    pub async fn evidence(&mut self, id: EvidenceId) -> Result<Option<EvidenceRecord>, StoreError> {
        let row: Option<EvidenceRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = $1")))
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        row.map(EvidenceRecord::try_from).transpose()
    }

    pub async fn evidence_of(&mut self, execution: ExecutionId) -> Result<Option<EvidenceRecord>, StoreError> {
        let row: Option<EvidenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE execution_id = $1"
        )))
        .bind(execution)
        .fetch_optional(self.conn())
        .await?;
        row.map(EvidenceRecord::try_from).transpose()
    }

    /// The chain in order, `limit` links after sequence number `after`.
    pub async fn evidence_after(&mut self, after: i64, limit: i64) -> Result<Vec<EvidenceRecord>, StoreError> {
        let rows: Vec<EvidenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.into_iter().map(EvidenceRecord::try_from).collect()
    }

    /// A finished execution, finished more than `grace_secs` ago, that the
    /// chain up to `head` has no credential for (never issued, or removed
    /// with the chain's tail): its id, the credential it names if any, and
    /// when it finished.
    /// (Changes too: a change is attested like a finished execution.)
    pub async fn execution_without_credential(
        &mut self,
        head: i64,
        grace_secs: i64,
    ) -> Result<Option<(String, Option<EvidenceId>, time::OffsetDateTime)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, evidence_id, at FROM (
                 SELECT e.id, e.evidence_id, e.completed_at AS at FROM executions e
                  WHERE e.status IN ('succeeded', 'failed', 'cancelled', 'timeout')
                    AND e.completed_at < now() - make_interval(secs => $2)
                    AND NOT EXISTS (SELECT 1 FROM evidence v WHERE v.execution_id = e.id AND v.seq <= $1)
                 UNION ALL
                 SELECT c.id, c.evidence_id, c.created_at FROM changes c
                  WHERE c.created_at < now() - make_interval(secs => $2)
                    AND NOT EXISTS (SELECT 1 FROM evidence v WHERE v.change_id = c.id AND v.seq <= $1)
             ) unattested ORDER BY at, id LIMIT 1",
        )
        .bind(head)
        .bind(grace_secs as f64)
        .fetch_optional(self.conn())
        .await?)
    }
}
