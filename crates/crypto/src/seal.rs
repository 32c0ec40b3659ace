//! Sealing secrets at rest: XChaCha20-Poly1305 under a 256-bit key, with
//! associated data that binds a ciphertext to where it is stored (table,
//! record, field), so a sealed value copied elsewhere does not open. The
//! master key comes from the environment in production (`master_key`) or
//! from `data_dir/keys/master.key` in dev; its id (a digest prefix) is stored
//! beside each sealed value so a key change is detected, not misread.

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The key that seals the installation's secrets.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed with master key {sealed_with}, but the master key now is {current}")]
    WrongMasterKey { sealed_with: String, current: String },
    #[error("the sealed value is damaged or was moved from where it was sealed")]
    Damaged,
}

/// A sealed value: nonce and ciphertext (with tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub master_key_id: String,
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(key)[..8]);
        Self { key, id }
    }

    /// The installation's master key in `data_dir/keys/master.key`, created
    /// on first use (dev; production passes it in `master_key`).
    pub fn load_or_create(data_dir: &std::path::Path) -> Result<Self, crate::keys::KeyError> {
        crate::keys::secret(data_dir, "master.key").map(Self::from_bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Sealed {
        let nonce: [u8; 24] = rand::rng().random();
        let ciphertext = XChaCha20Poly1305::new(&self.key.into())
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: associated })
            .expect("encryption of an in-memory value cannot fail");
        Sealed { nonce: nonce.to_vec(), ciphertext, master_key_id: self.id.clone() }
    }

    pub fn open(&self, sealed: &Sealed, associated: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.master_key_id != self.id {
            return Err(SealError::WrongMasterKey {
                sealed_with: sealed.master_key_id.clone(),
                current: self.id.clone(),
            });
        }
        let nonce: [u8; 24] = sealed.nonce.as_slice().try_into().map_err(|_| SealError::Damaged)?;
        XChaCha20Poly1305::new(&self.key.into())
            .decrypt(&XNonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: associated })
            .map_err(|_| SealError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_where_they_were_sealed_and_with_their_key() {
        let master = MasterKey::from_bytes([5; 32]);
        let sealed = master.seal(b"the issuer's private key", b"platform.evidence_keys:z6Mk1");
        assert_ne!(sealed.ciphertext, b"the issuer's private key".to_vec());
        assert_eq!(master.open(&sealed, b"platform.evidence_keys:z6Mk1").expect("open"), b"the issuer's private key");
        assert_eq!(master.open(&sealed, b"platform.evidence_keys:z6Mk2"), Err(SealError::Damaged));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(master.open(&flipped, b"platform.evidence_keys:z6Mk1"), Err(SealError::Damaged));
        let other = MasterKey::from_bytes([6; 32]);
        assert!(matches!(other.open(&sealed, b"platform.evidence_keys:z6Mk1"), Err(SealError::WrongMasterKey { .. })));
        assert_ne!(master.seal(b"x", b"a").nonce, master.seal(b"x", b"a").nonce, "a fresh nonce each time");
    }
}
