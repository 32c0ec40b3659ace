//! Cryptographic building blocks shared by the roles, each built on a
//! well-kept crate:
//!
//! - [`keys`]: key material kept in the installation's data directory,
//!   created once and shared safely between processes;
//! - [`canonical`]: RFC 8785 (JCS) canonical JSON and its SHA-256 digest, so
//!   that two parties hashing "the same JSON" agree on the bytes;
//! - [`mac`]: HMAC-SHA256 signing and constant-time verification.

pub mod canonical;
pub mod keys;
pub mod mac;
