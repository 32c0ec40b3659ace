//! W3C Data Integrity proofs with the `eddsa-jcs-2022` cryptosuite
//! (Data Integrity EdDSA Cryptosuites v1.0, section 3.3): the proof
//! configuration and the document are each canonicalized with JCS
//! (RFC 8785) and hashed with SHA-256; Ed25519 signs
//! `hash(proof configuration) || hash(document)`; `proofValue` is the
//! signature in base58btc multibase. Keys are `did:key` Multikeys, so a
//! verifier needs nothing but the document.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{canonical, multikey};

pub const PROOF_TYPE: &str = "DataIntegrityProof";
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
pub const ASSERTION: &str = "assertionMethod";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the document is not a JSON object")]
    NotAnObject,
    #[error("the document has no proof")]
    NoProof,
    #[error("the proof is not a DataIntegrityProof with cryptosuite eddsa-jcs-2022")]
    WrongSuite,
    #[error("the proof's purpose is not assertionMethod")]
    WrongPurpose,
    #[error("the proof's @context does not match the document's")]
    ContextMismatch,
    #[error("the proof's verification method cannot be resolved: {0}")]
    VerificationMethod(multikey::MultikeyError),
    #[error("proofValue is not a base58btc Ed25519 signature")]
    MalformedProofValue,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Canonical(String),
}

/// `SHA-256(JCS(proof configuration)) || SHA-256(JCS(document))`.
fn hash_data(proof_config: &Value, document: &Value) -> Result<Vec<u8>, ProofError> {
    let canon = |v: &Value| canonical::to_vec(v).map_err(|e| ProofError::Canonical(e.to_string()));
    let mut data = Sha256::digest(canon(proof_config)?).to_vec();
    data.extend_from_slice(&Sha256::digest(canon(document)?));
    Ok(data)
}

/// Adds an `eddsa-jcs-2022` proof, made `created` (an XML Schema
/// dateTime), to `document` (an object without a proof).
pub fn sign(document: &Value, key: &SigningKey, created: &str) -> Result<Value, ProofError> {
    sign_as(document, key, &multikey::verification_method(&key.verifying_key()), created)
}

/// [`sign`], with the key's verification method (`did:key:z6Mk...#z6Mk...`)
/// already at hand: an issuer signing many credentials encodes it once.
pub fn sign_as(
    document: &Value,
    key: &SigningKey,
    verification_method: &str,
    created: &str,
) -> Result<Value, ProofError> {
    let Value::Object(unsecured) = document else { return Err(ProofError::NotAnObject) };
    let mut config = Map::new();
    config.insert("type".into(), PROOF_TYPE.into());
    config.insert("cryptosuite".into(), CRYPTOSUITE.into());
    config.insert("created".into(), created.into());
    config.insert("verificationMethod".into(), verification_method.into());
    config.insert("proofPurpose".into(), ASSERTION.into());
    if let Some(context) = unsecured.get("@context") {
        config.insert("@context".into(), context.clone());
    }
    let mut proof = Value::Object(config);
    let signature = key.sign(&hash_data(&proof, document)?);
    proof["proofValue"] = multikey::base58btc(&signature.to_bytes()).into();
    let mut secured = unsecured.clone();
    secured.insert("proof".into(), proof);
    Ok(Value::Object(secured))
}

/// What a verified proof says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `did:key:z6Mk...#z6Mk...`.
    pub verification_method: String,
    pub key: VerifyingKey,
    pub created: Option<String>,
}

/// Verifies the `eddsa-jcs-2022` proof of `secured`, resolving the key from
/// its `did:key` verification method.
pub fn verify(secured: &Value) -> Result<Verified, ProofError> {
    let Value::Object(secured) = secured else { return Err(ProofError::NotAnObject) };
    let mut unsecured = secured.clone();
    let Some(Value::Object(mut options)) = unsecured.remove("proof") else { return Err(ProofError::NoProof) };
    let Some(Value::String(proof_value)) = options.remove("proofValue") else {
        return Err(ProofError::MalformedProofValue);
    };
    if options.get("type").and_then(Value::as_str) != Some(PROOF_TYPE)
        || options.get("cryptosuite").and_then(Value::as_str) != Some(CRYPTOSUITE)
    {
        return Err(ProofError::WrongSuite);
    }
    if options.get("proofPurpose").and_then(Value::as_str) != Some(ASSERTION) {
        return Err(ProofError::WrongPurpose);
    }
    // The document's @context must start with the proof's, in order.
    if let Some(proof_context) = options.get("@context") {
        let as_list = |v: &Value| match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        let (ours, theirs) = (as_list(proof_context), unsecured.get("@context").map(as_list).unwrap_or_default());
        if !theirs.starts_with(&ours) {
            return Err(ProofError::ContextMismatch);
        }
        unsecured.insert("@context".into(), proof_context.clone());
    }
    let method = options.get("verificationMethod").and_then(Value::as_str).unwrap_or_default().to_owned();
    let key = multikey::resolve_did_key(&method).map_err(ProofError::VerificationMethod)?;
    let signature: [u8; 64] = multikey::decode_base58btc(&proof_value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ProofError::MalformedProofValue)?;
    let created = options.get("created").and_then(Value::as_str).map(str::to_owned);
    let data = hash_data(&Value::Object(options), &Value::Object(unsecured))?;
    key.verify_strict(&data, &Signature::from_bytes(&signature)).map_err(|_| ProofError::BadSignature)?;
    Ok(Verified { verification_method: method, key, created })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/vc-di-eddsa")
    }

    fn read(name: &str) -> String {
        let path = vectors().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn json(name: &str) -> Value {
        serde_json::from_str(&read(name)).expect("json")
    }

    #[test]
    fn the_w3c_test_vectors_are_reproduced_exactly() {
        let pair = json("keyPair.json");
        let key = multikey::private_from_multibase(pair["privateKeyMultibase"].as_str().expect("key")).expect("key");
        assert_eq!(multikey::public_multibase(&key.verifying_key()), pair["publicKeyMultibase"]);
        let unsigned = json("unsigned.json");
        let config = json("proofConfigJCS.json");

        // Each intermediate step, as the vectors show it.
        let canon_doc = String::from_utf8(canonical::to_vec(&unsigned).expect("jcs")).expect("utf-8");
        assert_eq!(canon_doc, read("canonDocJCS.txt").trim());
        let canon_proof = String::from_utf8(canonical::to_vec(&config).expect("jcs")).expect("utf-8");
        assert_eq!(canon_proof, read("proofCanonJCS.txt").trim());
        assert_eq!(hex::encode(Sha256::digest(&canon_doc)), read("docHashJCS.txt").trim());
        assert_eq!(hex::encode(Sha256::digest(&canon_proof)), read("proofHashJCS.txt").trim());
        assert_eq!(hex::encode(hash_data(&config, &unsigned).expect("hash")), read("combinedHashJCS.txt").trim());

        // The whole: same proof, same proofValue, same signed document.
        let created = config["created"].as_str().expect("created");
        let signed = sign(&unsigned, &key, created).expect("sign");
        assert_eq!(signed["proof"]["proofValue"], read("sigBTC58JCS.txt").trim());
        assert_eq!(signed, json("signedJCS.json"));
        let verified = verify(&json("signedJCS.json")).expect("the W3C document verifies");
        assert_eq!(verified.key, key.verifying_key());
    }

    #[test]
    fn any_single_changed_byte_breaks_verification() {
        let signed = json("signedJCS.json");
        let text = serde_json::to_string(&signed).expect("json");
        let mut checked = 0;
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            // A change that makes it no longer JSON is refused by any parser;
            // one that only reorders keys or changes whitespace is no change.
            let Ok(altered) = serde_json::from_slice::<Value>(&bytes) else { continue };
            if altered == signed {
                continue;
            }
            checked += 1;
            assert!(verify(&altered).is_err(), "byte {i} changed and the proof still verifies");
        }
        assert!(checked > 400, "{checked} alterations checked");
    }

    #[test]
    fn refusals_say_why() {
        let signed = json("signedJCS.json");
        let mut other_suite = signed.clone();
        other_suite["proof"]["cryptosuite"] = "eddsa-rdfc-2022".into();
        assert_eq!(verify(&other_suite), Err(ProofError::WrongSuite));
        let mut no_proof = signed.clone();
        no_proof.as_object_mut().expect("object").remove("proof");
        assert_eq!(verify(&no_proof), Err(ProofError::NoProof));
        let mut context = signed.clone();
        context["@context"] = serde_json::json!(["https://www.w3.org/ns/credentials/v2"]);
        assert_eq!(verify(&context), Err(ProofError::ContextMismatch));
        let mut claim = signed;
        claim["credentialSubject"]["alumniOf"] = "Another School".into();
        assert_eq!(verify(&claim), Err(ProofError::BadSignature));
    }
}
