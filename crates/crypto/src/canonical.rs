//! RFC 8785 JSON Canonicalization Scheme: one byte sequence per JSON value
//! (sorted member names, ECMAScript number formatting, minimal escapes).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why a value has no canonical form (e.g. a non-finite number).
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalize JSON: {0}")]
pub struct CanonicalError(String);

/// The canonical bytes of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_jcs::to_vec(value).map_err(|e| CanonicalError(e.to_string()))
}

/// `sha256:<lowercase hex>` of the canonical bytes of `value`.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(to_vec(value)?))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn member_order_and_whitespace_do_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "é"}}"#).expect("json");
        let b: serde_json::Value = serde_json::from_str(r#"{"a":{"x":"é","y":[1,2]},"b":1}"#).expect("json");
        let canonical = String::from_utf8(to_vec(&a).expect("jcs")).expect("utf-8");
        assert_eq!(canonical, r#"{"a":{"x":"é","y":[1,2]},"b":1}"#);
        assert_eq!(digest(&a).expect("digest"), digest(&b).expect("digest"));
        assert_ne!(digest(&a).expect("digest"), digest(&json!({"b": 2})).expect("digest"));
    }

    #[test]
    fn numbers_are_formatted_like_ecmascript() {
        // RFC 8785 section 3.2.2.3 examples.
        assert_eq!(to_vec(&json!([1e30, 4.5, 0.002, 1e-7])).expect("jcs"), b"[1e+30,4.5,0.002,1e-7]".to_vec());
    }
}
