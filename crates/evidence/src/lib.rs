//! Machine-verifiable audit evidence. For every execution that finishes,
//! Anchor issues a W3C Verifiable Credential (VC Data Model 2.0) secured with
//! a Data Integrity proof, cryptosuite `eddsa-jcs-2022`, by an issuer that is
//! a standard `did:key`: anyone can verify it offline with any conforming
//! implementation, from the credential alone.
//!
//! - [`keys`]: the issuer keys, sealed at rest under the master key, rotated
//!   without orphaning earlier credentials;
//! - [`credential`]: what a credential says about an execution;
//! - [`store`]: the evidence store, content-addressed;
//! - [`issue`]: issuing, as an outbox handler, so completion and issuing
//!   cannot come apart (topic `evidence.issue`);
//! - [`verify`]: one credential, and a workspace's whole chain.

pub mod credential;
pub mod issue;
pub mod keys;
pub mod store;
pub mod verify;

use std::path::{Path, PathBuf};

use anchor_crypto::seal::MasterKey;

/// Outbox topic: issue the credential of a finished execution.
pub const ISSUE_TOPIC: &str = anchor_outbox::topics::EVIDENCE_ISSUE;

/// The master key and the evidence store, as the installation configures
/// them.
#[derive(Debug, Clone)]
pub struct EvidenceSetup {
    pub master: MasterKey,
    pub store: store::EvidenceStore,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("master_key must be 32 bytes, base64-encoded")]
    MasterKey,
    #[error(transparent)]
    KeyFile(#[from] anchor_crypto::keys::KeyError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl EvidenceSetup {
    /// `master_key` (base64 of 32 bytes) or, unset, `data_dir/keys/master.key`;
    /// the store in `evidence_dir` or `data_dir/evidence`.
    pub fn new(master_key: Option<&str>, data_dir: &Path, evidence_dir: Option<PathBuf>) -> Result<Self, SetupError> {
        let master = match master_key {
            Some(encoded) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| SetupError::MasterKey)?;
                MasterKey::from_bytes(bytes.try_into().map_err(|_| SetupError::MasterKey)?)
            }
            None => MasterKey::load_or_create(data_dir)?,
        };
        let store = store::EvidenceStore::Local(evidence_dir.unwrap_or_else(|| data_dir.join("evidence")));
        Ok(Self { master, store })
    }

    /// As the installation's settings say (`master_key`, `evidence_s3`,
    /// `evidence_dir`, `data_dir`).
    pub fn from_settings(settings: &anchor_config::Settings) -> Result<Self, SetupError> {
        use secrecy::ExposeSecret;
        let master = settings.master_key.as_ref().map(|k| k.expose_secret().to_owned());
        let mut setup = Self::new(master.as_deref(), &settings.data_dir, settings.evidence_dir.clone())?;
        if let Some(s3) = &settings.evidence_s3 {
            let config = store::S3Config {
                endpoint: s3.endpoint.clone(),
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3.secret_access_key.clone(),
                path_style: s3.path_style,
            };
            setup.store = store::EvidenceStore::S3(std::sync::Arc::new(store::S3Bucket::new(&config)?));
        }
        Ok(setup)
    }
}
