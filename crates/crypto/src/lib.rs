//! Cryptographic building blocks shared by the roles, each built on a
//! well-kept crate:
//!
//! - [`keys`]: key material kept in the installation's data directory,
//!   created once and shared safely between processes;
//! - [`canonical`]: RFC 8785 (JCS) canonical JSON and its SHA-256 digest, so
//!   that two parties hashing "the same JSON" agree on the bytes;
//! - [`mac`]: HMAC-SHA256 signing and constant-time verification;
//! - [`multikey`]: Ed25519 keys as W3C Multikey and `did:key`;
//! - [`data_integrity`]: W3C Data Integrity proofs, cryptosuite `eddsa-jcs-2022`;
//! - [`seal`]: secrets sealed at rest under the master key (XChaCha20-Poly1305).

pub mod canonical;
pub mod data_integrity;
pub mod keys;
pub mod mac;
pub mod multikey;
pub mod seal;
