//! Issuer keys: Ed25519, published as `did:key`, private halves sealed with
//! the master key (associated data: table and key id). The first use creates
//! one; [`IssuerKeys::rotate`] retires the current key (its validity ends
//! [`ROTATION_OVERLAP`] from now, so an issuer that read it just before
//! still signs validly) and makes a new one current. Retired keys stay published with their
//! validity period, so every earlier credential remains verifiable.

use anchor_crypto::{
    multikey,
    seal::{MasterKey, Sealed},
};
use anchor_store::{Database, StoreError, evidence::StoredKey};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("issuer key {id}: {source}")]
    Seal { id: String, source: anchor_crypto::seal::SealError },
}

/// A key that signs credentials.
#[derive(Clone)]
pub struct IssuerKey {
    pub signing: SigningKey,
    /// `did:key:z6Mk...`: the credentials' `issuer`.
    pub did: String,
    /// `did:key:z6Mk...#z6Mk...`.
    pub verification_method: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey").field("did", &self.did).finish_non_exhaustive()
    }
}

/// A key as published: public parts and validity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedKey {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub controller: String,
    #[serde(rename = "publicKeyMultibase")]
    pub public_key_multibase: String,
    #[serde(rename = "validFrom", with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(rename = "validUntil", default, with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
}

/// How long a retired key stays valid after a rotation.
pub const ROTATION_OVERLAP: std::time::Duration = std::time::Duration::from_secs(300);

fn associated(id: &str) -> Vec<u8> {
    format!("platform.evidence_keys:{id}").into_bytes()
}

/// The installation's issuer keys.
#[derive(Debug, Clone)]
pub struct IssuerKeys {
    db: Database,
    master: MasterKey,
}

impl IssuerKeys {
    pub fn new(db: Database, master: MasterKey) -> Self {
        Self { db, master }
    }

    fn seal(&self, key: &SigningKey) -> StoredKey {
        let public = key.verifying_key();
        let id = multikey::public_multibase(&public);
        let sealed = self.master.seal(key.as_bytes(), &associated(&id));
        StoredKey {
            did: multikey::did_key(&public),
            id,
            sealed_private: sealed.ciphertext,
            nonce: sealed.nonce,
            master_key_id: sealed.master_key_id,
            valid_from: OffsetDateTime::now_utc(),
            valid_until: None,
        }
    }

    fn open(&self, stored: &StoredKey) -> Result<IssuerKey, KeyError> {
        let sealed = Sealed {
            nonce: stored.nonce.clone(),
            ciphertext: stored.sealed_private.clone(),
            master_key_id: stored.master_key_id.clone(),
        };
        let seal = |source| KeyError::Seal { id: stored.id.clone(), source };
        let bytes = self.master.open(&sealed, &associated(&stored.id)).map_err(seal)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| seal(anchor_crypto::seal::SealError::Damaged))?;
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key();
        Ok(IssuerKey {
            did: multikey::did_key(&public),
            verification_method: multikey::verification_method(&public),
            signing,
        })
    }

    /// The current key, made on first use.
    pub async fn current(&self) -> Result<IssuerKey, KeyError> {
        if let Some(stored) = self.db.current_evidence_key().await? {
            return self.open(&stored);
        }
        let fresh = SigningKey::from_bytes(&rand_seed());
        self.db.install_evidence_key(&self.seal(&fresh), true, ROTATION_OVERLAP).await?;
        // Whoever won a race to create it, that one is current now.
        let stored = self.db.current_evidence_key().await?.expect("a current key was just installed");
        self.open(&stored)
    }

    /// Retires the current key and makes a new one current; returns it.
    pub async fn rotate(&self) -> Result<IssuerKey, KeyError> {
        let fresh = SigningKey::from_bytes(&rand_seed());
        self.db.install_evidence_key(&self.seal(&fresh), false, ROTATION_OVERLAP).await?;
        self.current().await
    }

    /// Every key ever used, with its validity, as verification methods.
    pub async fn published(&self) -> Result<Vec<PublishedKey>, KeyError> {
        Ok(self
            .db
            .evidence_keys()
            .await?
            .into_iter()
            .map(|k| PublishedKey {
                id: format!("{}#{}", k.did, k.id),
                kind: "Multikey".to_owned(),
                controller: k.did,
                public_key_multibase: k.id,
                valid_from: k.valid_from,
                valid_until: k.valid_until,
            })
            .collect())
    }
}

fn rand_seed() -> [u8; 32] {
    use rand::Rng;
    rand::rng().random()
}
