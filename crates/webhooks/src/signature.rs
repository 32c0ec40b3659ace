//! Standard Webhooks v1 signatures: `webhook-signature: v1,<base64
//! HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, where the endpoint
//! secret is `whsec_` + base64 of the key bytes. Several space-separated
//! signatures are sent (and accepted) while a secret is being rotated.

use base64::{Engine, engine::general_purpose::STANDARD};

/// A signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a secret is whsec_ followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("webhook-id, webhook-timestamp and webhook-signature are all required")]
    MissingHeaders,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than five minutes away from now")]
    StaleTimestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// Tolerance of `webhook-timestamp` either side of now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

impl Secret {
    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        use rand::Rng;
        Self(rand::rng().random::<[u8; 32]>().to_vec())
    }

    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let bytes =
            text.strip_prefix("whsec_").and_then(|b| STANDARD.decode(b).ok()).ok_or(SignatureError::BadSecret)?;
        if (24..=64).contains(&bytes.len()) { Ok(Self(bytes)) } else { Err(SignatureError::BadSecret) }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_...`, shown to the endpoint's owner once.
    pub fn expose(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag =
            anchor_crypto::mac::sign(&self.0, &[id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", body]);
        format!("v1,{}", STANDARD.encode(tag))
    }
}

/// The `webhook-signature` header value: one signature per secret.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Verifies a delivery: timestamp within five minutes of `now`, and some
/// `v1` signature made with one of `secrets` (constant-time comparison).
pub fn verify(
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err(SignatureError::MissingHeaders);
    };
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(SignatureError::StaleTimestamp);
    }
    let message = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
    let candidates =
        signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|s| STANDARD.decode(s).ok());
    for candidate in candidates {
        if secrets.iter().any(|secret| anchor_crypto::mac::verify(&secret.0, &message, &candidate)) {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example from the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(secret.sign(id, 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = "v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            verify(std::slice::from_ref(&secret), Some(id), Some("1614265330"), Some(header), body, 1614265330 + 60),
            Ok(())
        );
        assert_eq!(
            verify(std::slice::from_ref(&secret), Some(id), Some("1614265330"), Some(header), body, 1614265330 + 301),
            Err(SignatureError::StaleTimestamp)
        );
        assert_eq!(
            verify(std::slice::from_ref(&secret), Some(id), Some("1614265330"), Some(header), b"{}", 1614265330),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(verify(&[secret], None, Some("1"), Some(header), body, 1), Err(SignatureError::MissingHeaders));
    }

    #[test]
    fn rotation_signs_with_both_and_either_verifies() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(&[old], Some("msg_1"), Some("100"), Some(&header), b"{}", 100), Ok(()));
        assert_eq!(verify(&[new], Some("msg_1"), Some("100"), Some(&header), b"{}", 100), Ok(()));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SignatureError::BadSecret), "too short");
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.expose()), Ok(secret));
    }
}
