//! Verification: one credential (from the document alone), and a
//! workspace's whole chain (signatures, sequence, links, the store's
//! documents against the index, the issuing keys' validity).

use std::sync::Arc;

use anchor_crypto::{canonical, data_integrity, multikey};
use anchor_store::{Database, StoreError, Workspace, evidence::EvidenceRecord};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{credential, keys::PublishedKey, store::EvidenceStore};

/// Why a credential is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("not a W3C VC 2.0 credential (@context and type)")]
    NotACredential,
    #[error("proof: {0}")]
    Proof(#[from] data_integrity::ProofError),
    #[error("the issuer {issuer} is not the key that signed ({method})")]
    IssuerMismatch { issuer: String, method: String },
}

/// What a valid credential says, in short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCredential {
    pub issuer: String,
    pub verification_method: String,
    pub valid_from: Option<String>,
    pub subject: Option<String>,
}

/// Verifies a credential from the document alone: VC 2.0 shape, the
/// `eddsa-jcs-2022` proof with the key its `did:key` names, and that the
/// issuer is that key.
pub fn verify_credential(document: &Value) -> Result<VerifiedCredential, CredentialError> {
    let context_ok = document["@context"].get(0).and_then(Value::as_str) == Some(credential::CONTEXT);
    let type_ok = document["type"].as_array().is_some_and(|t| t.iter().any(|v| v == "VerifiableCredential"));
    if !context_ok || !type_ok {
        return Err(CredentialError::NotACredential);
    }
    let proof = data_integrity::verify(document)?;
    let issuer = document["issuer"].as_str().or_else(|| document["issuer"]["id"].as_str()).unwrap_or_default();
    let signer_did = proof.verification_method.split('#').next().unwrap_or_default();
    if issuer != signer_did || multikey::resolve_did_key(issuer).ok() != Some(proof.key) {
        return Err(CredentialError::IssuerMismatch { issuer: issuer.to_owned(), method: proof.verification_method });
    }
    Ok(VerifiedCredential {
        issuer: issuer.to_owned(),
        verification_method: proof.verification_method,
        valid_from: document["validFrom"].as_str().map(str::to_owned),
        subject: document["credentialSubject"]["id"].as_str().map(str::to_owned),
    })
}

/// Whether a verified credential was signed by one of `keys` (the
/// installation's published issuer keys, `GET /api/v1/evidence/keys`) while
/// that key was valid. The document alone proves who signed; this proves the
/// signer is the installation.
pub fn signed_by_published_key(verified: &VerifiedCredential, keys: &[PublishedKey]) -> bool {
    verified.valid_from.as_deref().is_some_and(|at| key_valid_at(keys, &verified.verification_method, at))
}

/// The outcome of a chain check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub valid: bool,
    /// Credentials checked before the first problem (all, when valid).
    pub checked: i64,
    /// The head of the chain as the workspace records it.
    pub head: i64,
    pub problem: Option<ChainProblem>,
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    /// The sequence number where the chain breaks.
    pub sequence: i64,
    pub evidence_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Evidence(#[from] crate::store::StoreError),
    #[error("the chain check stopped: {0}")]
    Interrupted(String),
}

/// Where a chain check is: the next sequence number it expects and the
/// digest the next credential must link to.
struct Walk {
    expected: i64,
    previous: Option<String>,
}

impl Walk {
    /// Checks a page of index rows with their documents (`None`: missing
    /// from the store), in order; the first problem ends the walk.
    fn check_page(
        &mut self,
        page: Vec<EvidenceRecord>,
        documents: Vec<Option<Vec<u8>>>,
        keys: &[PublishedKey],
    ) -> Option<ChainProblem> {
        page.into_iter().zip(documents).find_map(|(row, bytes)| self.check(row, bytes, keys).err())
    }

    /// One link: its place, its link to the previous one, its document
    /// against the index, its proof and its signer.
    fn check(
        &mut self,
        row: EvidenceRecord,
        bytes: Option<Vec<u8>>,
        keys: &[PublishedKey],
    ) -> Result<(), ChainProblem> {
        let problem =
            |sequence, evidence_id: Option<String>, reason: String| ChainProblem { sequence, evidence_id, reason };
        let expected = self.expected;
        let id = Some(row.id.to_string());
        if row.seq != expected {
            return Err(problem(
                expected,
                None,
                format!("credential #{expected} is missing: the chain jumps to #{}", row.seq),
            ));
        }
        if row.previous_digest != self.previous {
            return Err(problem(
                row.seq,
                id,
                format!("credential #{} does not link to credential #{}", row.seq, row.seq - 1),
            ));
        }
        let Some(bytes) = bytes else {
            return Err(problem(
                row.seq,
                id,
                format!("credential #{} ({}) is missing from the evidence store", row.seq, row.id),
            ));
        };
        let Ok(document) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(problem(row.seq, id, format!("credential #{} ({}) is not JSON any more", row.seq, row.id)));
        };
        if canonical::digest(&document).ok().as_deref() != Some(row.digest.as_str()) {
            return Err(problem(
                row.seq,
                id,
                format!("credential #{} ({}) was altered: its digest is not the one recorded", row.seq, row.id),
            ));
        }
        let verified = verify_credential(&document).map_err(|e| {
            problem(row.seq, id.clone(), format!("credential #{} ({}) does not verify: {e}", row.seq, row.id))
        })?;
        // Self-consistent is not enough: the signer must be one of the
        // installation's published issuer keys, the one the index names,
        // so a chain re-signed with some other key is caught.
        let chain = &document["credentialSubject"]["chain"];
        let published = keys.iter().any(|k| k.id == verified.verification_method);
        if !published || verified.verification_method != row.key_id || chain["issuerKey"] != row.key_id.as_str() {
            return Err(problem(
                row.seq,
                id,
                format!(
                    "credential #{} ({}) is signed by {}, not by a published issuer key of this installation",
                    row.seq, row.id, verified.verification_method
                ),
            ));
        }
        if chain["sequence"] != row.seq || chain["previousDigest"].as_str() != row.previous_digest.as_deref() {
            return Err(problem(
                row.seq,
                id,
                format!("credential #{} ({}) names another place in the chain", row.seq, row.id),
            ));
        }
        let issued = document["validFrom"].as_str().unwrap_or_default();
        if !key_valid_at(keys, &row.key_id, issued) {
            return Err(problem(
                row.seq,
                id,
                format!("credential #{} was signed by a key not valid at {issued}", row.seq),
            ));
        }
        self.previous = Some(row.digest);
        self.expected += 1;
        Ok(())
    }
}

fn key_valid_at(keys: &[PublishedKey], method: &str, at: &str) -> bool {
    let Ok(at) = OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) else { return false };
    keys.iter().any(|k| {
        k.id == method
            // Credentials carry whole seconds; key times are exact.
            && k.valid_from.replace_nanosecond(0).unwrap_or(k.valid_from) <= at
            && k.valid_until.is_none_or(|until| at <= until)
    })
}

/// How long after an execution finishes its credential must be in the
/// chain (issuing normally takes well under a second).
pub const ISSUE_GRACE_SECS: i64 = 300;

/// Index rows read per page of a chain check.
const PAGE: i64 = 500;
/// Documents fetched from the evidence store at once during a chain check.
const FETCHES_IN_FLIGHT: usize = 16;

/// Checks `workspace`'s whole chain and reports the first problem.
///
/// The head is read first; the index below it is then read a page at a
/// time, each page in a short unit of work of its own, so no pooled
/// connection is held while documents are fetched (several at once) and
/// checked (on the blocking pool, off the async threads). The chain only
/// ever grows at its head, so what lies below the head read first is what
/// is checked; anything issued meanwhile is left for the next check.
pub async fn verify_chain(
    db: &Database,
    store: &EvidenceStore,
    keys: &[PublishedKey],
    workspace: &Workspace,
) -> Result<ChainReport, ChainError> {
    let head = {
        let mut tx = db.begin_workspace(workspace).await?;
        let head = tx.chain_head().await?;
        tx.rollback().await?;
        head
    };
    let keys: Arc<[PublishedKey]> = keys.into();
    let mut walk = Walk { expected: 1, previous: None };
    let mut found = None;
    while found.is_none() && walk.expected <= head.seq {
        let page = {
            let mut tx = db.begin_workspace(workspace).await?;
            let page = tx.evidence_after(walk.expected - 1, PAGE).await?;
            tx.rollback().await?;
            page
        };
        // Issued while we read: beyond the head we started from.
        let page: Vec<EvidenceRecord> = page.into_iter().take_while(|row| row.seq <= head.seq).collect();
        if page.is_empty() {
            break;
        }
        let objects: Vec<String> = page.iter().map(|row| row.object_key.clone()).collect();
        let documents: Vec<Option<Vec<u8>>> = futures_util::stream::iter(objects)
            .map(|object| async move { store.get(&object).await })
            .buffered(FETCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        let keys = Arc::clone(&keys);
        let checked = tokio::task::spawn_blocking(move || {
            let problem = walk.check_page(page, documents, &keys);
            (walk, problem)
        })
        .await
        .map_err(|e| ChainError::Interrupted(e.to_string()))?;
        (walk, found) = checked;
    }
    let Walk { expected, previous } = walk;
    let problem =
        |sequence, id: Option<String>, reason: String| Some(ChainProblem { sequence, evidence_id: id, reason });
    let last = expected - 1;
    if found.is_none() && (head.seq != last || head.digest != previous) {
        found = if head.seq > last {
            problem(
                last + 1,
                None,
                format!(
                    "credential #{} is missing: the chain's head is #{}, the last credential is #{last}",
                    last + 1,
                    head.seq
                ),
            )
        } else {
            problem(
                head.seq,
                None,
                format!("the chain's head (#{}) does not match its last credential (#{last})", head.seq),
            )
        };
    }
    // Complete as well as intact: every execution finished a while ago has
    // its credential in the chain (a tail cut off with the head moved back
    // to match, or a credential never issued, shows here).
    let missing = if found.is_none() {
        let mut tx = db.begin_workspace(workspace).await?;
        let missing = tx.execution_without_credential(head.seq, ISSUE_GRACE_SECS).await?;
        tx.rollback().await?;
        missing
    } else {
        None
    };
    if let Some((execution, named, finished)) = missing {
        let at = finished.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        // `execution` is an execution's or a change's id (exe_..., chg_...).
        let reason = match &named {
            Some(evidence) => {
                format!("{execution}, done at {at}, names credential {evidence}, which is not in the chain")
            }
            None => format!("{execution}, done at {at}, has no credential"),
        };
        found = problem(head.seq + 1, named.map(|e| e.to_string()), reason);
    }
    let checked = found.as_ref().map_or(last, |p| (p.sequence - 1).min(last));
    Ok(ChainReport { valid: found.is_none(), checked, head: head.seq, problem: found })
}
