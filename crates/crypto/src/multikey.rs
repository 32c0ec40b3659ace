//! Ed25519 keys as W3C Multikey / `did:key` (Controlled Identifiers 1.0,
//! the did:key method): the multicodec prefix (`0xed01` public, `0x8026`
//! private), then the 32 key bytes, in base58btc multibase (`z...`). A
//! public key's `did:key` is `did:key:` + its multibase, and its
//! verification method is that DID + `#` + the multibase again.

use ed25519_dalek::{SigningKey, VerifyingKey};

const ED25519_PUB: [u8; 2] = [0xed, 0x01];
const ED25519_PRIV: [u8; 2] = [0x80, 0x26];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultikeyError {
    #[error("not a base58btc multibase value (it must start with 'z')")]
    NotBase58btc,
    #[error("not valid base58: {0}")]
    Base58(String),
    #[error("not an Ed25519 {0} key")]
    WrongKind(&'static str),
    #[error("not a did:key verification method")]
    NotDidKey,
}

/// `z` + base58btc(bytes).
pub fn base58btc(bytes: &[u8]) -> String {
    format!("z{}", bs58::encode(bytes).into_string())
}

/// The bytes of a `z...` multibase value.
pub fn decode_base58btc(value: &str) -> Result<Vec<u8>, MultikeyError> {
    let body = value.strip_prefix('z').ok_or(MultikeyError::NotBase58btc)?;
    bs58::decode(body).into_vec().map_err(|e| MultikeyError::Base58(e.to_string()))
}

/// `z6Mk...` of a public key.
pub fn public_multibase(key: &VerifyingKey) -> String {
    base58btc(&[&ED25519_PUB[..], key.as_bytes()].concat())
}

/// The public key of a `z6Mk...` multibase value.
pub fn public_from_multibase(value: &str) -> Result<VerifyingKey, MultikeyError> {
    let bytes = decode_base58btc(value)?;
    let key: [u8; 32] = bytes
        .strip_prefix(&ED25519_PUB[..])
        .and_then(|k| k.try_into().ok())
        .ok_or(MultikeyError::WrongKind("public"))?;
    VerifyingKey::from_bytes(&key).map_err(|_| MultikeyError::WrongKind("public"))
}

/// The signing key of a `z3u2...` multibase value.
pub fn private_from_multibase(value: &str) -> Result<SigningKey, MultikeyError> {
    let bytes = decode_base58btc(value)?;
    let seed: [u8; 32] = bytes
        .strip_prefix(&ED25519_PRIV[..])
        .and_then(|k| k.try_into().ok())
        .ok_or(MultikeyError::WrongKind("private"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `did:key:z6Mk...`.
pub fn did_key(key: &VerifyingKey) -> String {
    format!("did:key:{}", public_multibase(key))
}

/// `did:key:z6Mk...#z6Mk...`: the verification method of a key.
pub fn verification_method(key: &VerifyingKey) -> String {
    let multibase = public_multibase(key);
    format!("did:key:{multibase}#{multibase}")
}

/// The public key a `did:key` verification method (or bare `did:key`)
/// names: resolved from the identifier itself, with no network.
pub fn resolve_did_key(method: &str) -> Result<VerifyingKey, MultikeyError> {
    let did = method.split('#').next().unwrap_or_default();
    let multibase = did.strip_prefix("did:key:").ok_or(MultikeyError::NotDidKey)?;
    if let Some((_, fragment)) = method.split_once('#')
        && fragment != multibase
    {
        return Err(MultikeyError::NotDidKey);
    }
    public_from_multibase(multibase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_w3c_key_pair_round_trips() {
        // shared/testdata/vc-di-eddsa/keyPair.json
        let private = private_from_multibase("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq").expect("private");
        let public = private.verifying_key();
        assert_eq!(public_multibase(&public), "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2");
        let method = verification_method(&public);
        assert_eq!(resolve_did_key(&method).expect("resolve"), public);
        assert_eq!(resolve_did_key(&did_key(&public)).expect("resolve"), public);
    }

    #[test]
    fn other_things_are_not_keys() {
        assert_eq!(public_from_multibase("6Mk"), Err(MultikeyError::NotBase58btc));
        assert!(matches!(public_from_multibase("z0OIl"), Err(MultikeyError::Base58(_))));
        // A private key is not a public key.
        assert_eq!(
            public_from_multibase("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"),
            Err(MultikeyError::WrongKind("public"))
        );
        assert_eq!(resolve_did_key("did:web:example.com"), Err(MultikeyError::NotDidKey));
        let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
        let other = public_multibase(&SigningKey::from_bytes(&[2; 32]).verifying_key());
        assert_eq!(resolve_did_key(&format!("{}#{other}", did_key(&key))), Err(MultikeyError::NotDidKey));
    }
}
