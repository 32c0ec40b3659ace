//! Enrollment tokens: `anchor_enroll_` + 32 random bytes (base64url). Only
//! their SHA-256 is stored; the token is shown once.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "anchor_enroll_";
/// Agents a token enrolls unless its creator asks for more.
pub const DEFAULT_USES: i32 = 1;
/// The most agents one token may enroll.
pub const MAX_USES: i32 = 10_000;

/// A fresh token and the digest to store.
pub fn generate() -> (String, [u8; 32]) {
    use rand::Rng;
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>()));
    let digest = digest(&token);
    (token, digest)
}

/// The stored form of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_digested() {
        let (a, da) = generate();
        let (b, _) = generate();
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_eq!(digest(&a), da);
        assert_eq!(digest(&format!(" {a}\n")), da, "surrounding whitespace is not part of it");
    }
}
