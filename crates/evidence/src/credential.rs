//! The credential of one execution or change: a W3C VC 2.0 document whose
//! subject is the execution (workspace, actor and role, command, digests of
//! input and outcome, AgentField's ids and target, times) or the
//! administrative change (workspace, actor and role, action, target, digest
//! of the details, time), and its place in the workspace's hash chain
//! (sequence number, digest of the previous credential, issuing key).

use anchor_crypto::{canonical, data_integrity};
use anchor_domain::{EvidenceId, ExecutionStatus};
use anchor_store::{
    changes::Change,
    executions::{Actor, Execution},
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::keys::IssuerKey;

pub const CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
pub const TYPE: &str = "AnchorExecutionCredential";
pub const CHANGE_TYPE: &str = "AnchorChangeCredential";

fn rfc3339(t: OffsetDateTime) -> String {
    // Whole seconds, UTC: the XML Schema dateTime form every verifier reads.
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Where the credential sits in its workspace's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub previous_digest: Option<String>,
}

/// What went into a credential besides the execution.
#[derive(Debug, Clone)]
pub struct Issuance<'a> {
    pub id: EvidenceId,
    pub workspace: &'a str,
    pub link: Link,
    pub issued_at: OffsetDateTime,
}

fn digest(value: &Value) -> String {
    canonical::digest(value).expect("stored JSON has a canonical form")
}

/// The unsigned credential of a finished execution.
pub fn document(execution: &Execution, issuance: &Issuance<'_>, key: &IssuerKey) -> Value {
    let mut outcome = json!({"status": execution.status});
    match execution.status {
        ExecutionStatus::Succeeded => {
            outcome["resultDigest"] = digest(execution.result.as_ref().unwrap_or(&Value::Null)).into()
        }
        _ => outcome["errorDigest"] = digest(execution.error.as_ref().unwrap_or(&Value::Null)).into(),
    }
    let (node, function) = execution
        .agentfield_target
        .as_deref()
        .and_then(|t| t.split_once('.'))
        .map_or((Value::Null, Value::Null), |(n, f)| (n.into(), f.into()));
    let subject = json!({
        "id": format!("urn:anchor:execution:{}:{}", issuance.workspace, execution.id),
        "type": "AnchorExecution",
        "command": execution.command,
        "inputDigest": digest(&execution.input),
        "outcome": outcome,
        "agentfield": {
            "executionId": execution.agentfield_execution_id,
            "runId": execution.agentfield_run_id,
            "node": node,
            "function": function,
        },
        "acceptedAt": rfc3339(execution.created_at),
        "completedAt": execution.completed_at.map(rfc3339),
    });
    credential(TYPE, subject, &execution.actor, execution.actor_role, issuance, key)
}

/// The unsigned credential of an administrative change.
pub fn change_document(change: &Change, issuance: &Issuance<'_>, key: &IssuerKey) -> Value {
    let subject = json!({
        "id": format!("urn:anchor:change:{}:{}", issuance.workspace, change.id),
        "type": "AnchorChange",
        "action": change.action,
        "target": change.target,
        "detailsDigest": digest(&change.details),
        "changedAt": rfc3339(change.created_at),
    });
    credential(CHANGE_TYPE, subject, &change.actor, change.actor_role, issuance, key)
}

/// The credential around a `subject`: what every credential says, whatever
/// it attests (workspace, actor and roles, its place in the chain).
fn credential(
    kind: &str,
    mut subject: Value,
    actor: &Actor,
    role: Option<anchor_domain::Role>,
    issuance: &Issuance<'_>,
    key: &IssuerKey,
) -> Value {
    let roles: Vec<&str> = role.iter().map(|r| r.as_str()).collect();
    subject["workspace"] = json!(issuance.workspace);
    subject["actor"] = json!({"issuer": actor.issuer, "subject": actor.subject, "roles": roles});
    subject["chain"] = json!({
        "sequence": issuance.link.seq,
        "previousDigest": issuance.link.previous_digest,
        "issuerKey": key.verification_method,
    });
    json!({
        "@context": [CONTEXT],
        "id": format!("urn:anchor:evidence:{}", issuance.id),
        "type": ["VerifiableCredential", kind],
        "issuer": key.did,
        "validFrom": rfc3339(issuance.issued_at),
        "credentialSubject": subject,
    })
}

/// Signs `document`; returns the credential and its digest (the next
/// credential's `previousDigest`).
pub fn sign(document: &Value, key: &IssuerKey, issued_at: OffsetDateTime) -> (Value, String) {
    let credential = data_integrity::sign_as(document, &key.signing, &key.verification_method, &rfc3339(issued_at))
        .expect("a credential is an object");
    let digest = digest(&credential);
    (credential, digest)
}
