//! RFC 8785 JSON Canonicalization Scheme: one byte sequence per JSON value
//! (member names sorted by their UTF-16 code units, ECMAScript number
//! formatting, minimal escapes).
//!
//! Written for `serde_json::Value` directly: the general-purpose `serde_jcs`
//! re-parses every member name and buffers every entry, which made
//! canonicalization the larger part of signing a credential. `serde_jcs`
//! stays the oracle the tests compare against.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalize JSON: {0}")]
pub struct CanonicalError(String);

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    write(&mut out, value)?;
    Ok(out)
}

/// `sha256:<lowercase hex>` of the canonical bytes of `value`.
pub fn digest(value: &Value) -> Result<String, CanonicalError> {
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(to_vec(value)?))))
}

fn write(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Every JSON number is an IEEE 754 double to JCS, printed as
        // ECMAScript's Number.prototype.toString would.
        Value::Number(n) => {
            let f = n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| CanonicalError(format!("number {n}")))?;
            out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
        Value::String(s) => write_string(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            // Already in order when the map keeps keys sorted and they are
            // ASCII; sorting what is sorted is one pass.
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, name)?;
                out.push(b':');
                write(out, member)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A string as JCS writes it: `"` and `\` escaped, the control characters
/// as `\b \t \n \f \r` or `\u00xx` (lower case), everything else as is;
/// exactly serde_json's escaping.
fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), CanonicalError> {
    serde_json::to_writer(out, s).map_err(|e| CanonicalError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Our serializer and `serde_jcs` agree byte for byte.
    fn agrees(value: &Value) {
        assert_eq!(
            String::from_utf8(to_vec(value).expect("ours")).expect("utf-8"),
            String::from_utf8(serde_jcs::to_vec(value).expect("serde_jcs")).expect("utf-8"),
            "{value}"
        );
    }

    #[test]
    fn it_agrees_with_serde_jcs_on_tricky_values() {
        for value in [
            json!(null),
            json!([true, false, null, "", 0, -0.0, 1.0, -1, 0.1, 1e21, 1e-7, 123456789012345680000.0]),
            json!([9007199254740993_i64, -9007199254740993_i64, u64::MAX, i64::MIN, 5e-324, 1.7976931348623157e308]),
            json!({"\u{1F600}": 1, "\u{FB33}": 2, "z": 3, "é": 4, "a": {"c": [], "b": {}}, "": 5}),
            json!("quote \" backslash \\ slash / tab \t newline \n nul \u{0} del \u{7f} \u{2028} \u{1F600}"),
            json!({"\u{10000}": "supplementary", "\u{FFFF}": "bmp last", "\u{E000}": "private use"}),
            json!([[[[{"deep": [1, "two", {"three": 3.5}]}]]]]),
        ] {
            agrees(&value);
        }
    }

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
