//! Verification: one credential (from the document alone), and a
//! workspace's whole chain (signatures, sequence, links, the store's
//! documents against the index, the issuing keys' validity).

use anchor_crypto::{canonical, data_integrity, multikey};
use anchor_store::{Database, StoreError, Workspace};
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

/// Checks `workspace`'s whole chain and reports the first problem.
pub async fn verify_chain(
    db: &Database,
    store: &EvidenceStore,
    keys: &[PublishedKey],
    workspace: &Workspace,
) -> Result<ChainReport, ChainError> {
    let mut tx = db.begin_workspace(workspace).await?;
    let head = tx.chain_head().await?;
    let mut expected = 1;
    let mut previous: Option<String> = None;
    let problem =
        |sequence, id: Option<String>, reason: String| Some(ChainProblem { sequence, evidence_id: id, reason });
    let mut found = None;
    'chain: loop {
        let batch = tx.evidence_after(expected - 1, 500).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            if row.seq > head.seq {
                // Issued while we read: beyond the head we started from.
                break 'chain;
            }
            let id = Some(row.id.to_string());
            if row.seq != expected {
                found = problem(
                    expected,
                    None,
                    format!("credential #{expected} is missing: the chain jumps to #{}", row.seq),
                );
                break 'chain;
            }
            if row.previous_digest != previous {
                found = problem(
                    row.seq,
                    id,
                    format!("credential #{} does not link to credential #{}", row.seq, row.seq - 1),
                );
                break 'chain;
            }
            let Some(bytes) = store.get(&row.object_key).await? else {
                found = problem(
                    row.seq,
                    id,
                    format!("credential #{} ({}) is missing from the evidence store", row.seq, row.id),
                );
                break 'chain;
            };
            let document: Value = match serde_json::from_slice(&bytes) {
                Ok(document) => document,
                Err(_) => {
                    found = problem(row.seq, id, format!("credential #{} ({}) is not JSON any more", row.seq, row.id));
                    break 'chain;
                }
            };
            if canonical::digest(&document).ok().as_deref() != Some(row.digest.as_str()) {
                found = problem(
                    row.seq,
                    id,
                    format!("credential #{} ({}) was altered: its digest is not the one recorded", row.seq, row.id),
                );
                break 'chain;
            }
            let verified = match verify_credential(&document) {
                Ok(verified) => verified,
                Err(e) => {
                    found = problem(row.seq, id, format!("credential #{} ({}) does not verify: {e}", row.seq, row.id));
                    break 'chain;
                }
            };
            // Self-consistent is not enough: the signer must be one of the
            // installation's published issuer keys, the one the index names,
            // so a chain re-signed with some other key is caught.
            let chain = &document["credentialSubject"]["chain"];
            let published = keys.iter().any(|k| k.id == verified.verification_method);
            if !published || verified.verification_method != row.key_id || chain["issuerKey"] != row.key_id.as_str() {
                found = problem(
                    row.seq,
                    id,
                    format!(
                        "credential #{} ({}) is signed by {}, not by a published issuer key of this installation",
                        row.seq, row.id, verified.verification_method
                    ),
                );
                break 'chain;
            }
            if chain["sequence"] != row.seq || chain["previousDigest"].as_str() != row.previous_digest.as_deref() {
                found = problem(
                    row.seq,
                    id,
                    format!("credential #{} ({}) names another place in the chain", row.seq, row.id),
                );
                break 'chain;
            }
            let issued = document["validFrom"].as_str().unwrap_or_default();
            if !key_valid_at(keys, &row.key_id, issued) {
                found =
                    problem(row.seq, id, format!("credential #{} was signed by a key not valid at {issued}", row.seq));
                break 'chain;
            }
            previous = Some(row.digest);
            expected += 1;
        }
    }
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
    if found.is_none()
        && let Some((execution, named, finished)) = tx.execution_without_credential(head.seq, ISSUE_GRACE_SECS).await?
    {
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
    tx.rollback().await?;
    let checked = found.as_ref().map_or(last, |p| (p.sequence - 1).min(last));
    Ok(ChainReport { valid: found.is_none(), checked, head: head.seq, problem: found })
}
