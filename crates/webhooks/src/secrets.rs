//! Signing secrets at rest: sealed with the master key, with associated
//! data naming the record (`webhook_endpoints/<id>`,
//! `inbound_sources/<name>`) and the workspace schema, so a sealed secret
//! copied to another record or workspace does not open.

use anchor_crypto::seal::{MasterKey, SealError, Sealed};
use anchor_store::{Workspace, webhooks::SealedSecret};

use crate::signature::Secret;

fn associated(workspace: &Workspace, record: &str) -> Vec<u8> {
    format!("{record}@{}", workspace.schema_name()).into_bytes()
}

pub fn seal(master: &MasterKey, workspace: &Workspace, record: &str, secret: &Secret) -> SealedSecret {
    let sealed = master.seal(secret.as_bytes(), &associated(workspace, record));
    SealedSecret { ciphertext: sealed.ciphertext, nonce: sealed.nonce, master_key_id: sealed.master_key_id }
}

pub fn open(
    master: &MasterKey,
    workspace: &Workspace,
    record: &str,
    sealed: &SealedSecret,
) -> Result<Secret, SealError> {
    let sealed = Sealed {
        nonce: sealed.nonce.clone(),
        ciphertext: sealed.ciphertext.clone(),
        master_key_id: sealed.master_key_id.clone(),
    };
    master.open(&sealed, &associated(workspace, record)).map(Secret::from_bytes)
}

/// The record name of an endpoint's secret.
pub fn endpoint_record(id: anchor_domain::WebhookId) -> String {
    format!("webhook_endpoints/{id}")
}

/// The record name of an inbound source's secret.
pub fn source_record(name: &str) -> String {
    format!("inbound_sources/{name}")
}
