//! The built-in dev issuer: an Ed25519 key kept in `ANCHOR_DATA_DIR/keys`,
//! shared by `anchor dev` (which publishes its JWKS and trusts it) and
//! `anchor token issue` (which signs with it).

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::token::AccessClaims;

/// The `iss` of every dev-issued token.
pub const DEV_ISSUER: &str = anchor_config::DEV_ISSUER_ID;
/// Access tokens live at most this long (api.md).
pub const MAX_TTL: Duration = Duration::from_secs(15 * 60);

pub struct DevIssuer {
    encoding: EncodingKey,
    public_x: String,
    kid: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("dev issuer key {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("dev issuer key {0} is not an Ed25519 PKCS#8 key")]
    BadKey(String),
    #[error("token lifetime must be between 1 second and 15 minutes")]
    BadTtl,
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

impl DevIssuer {
    /// Loads the key from `data_dir/keys/dev-issuer.p8`, creating it on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, DevIssuerError> {
        let key = anchor_crypto::keys::ed25519(data_dir, "dev-issuer.p8").map_err(|e| match e {
            anchor_crypto::keys::KeyError::Io { path, source } => DevIssuerError::Io { path, source },
            anchor_crypto::keys::KeyError::Malformed(path) => DevIssuerError::BadKey(path),
        })?;
        let der = key.to_pkcs8_der().map_err(|_| DevIssuerError::BadKey("dev-issuer.p8".into()))?;
        let public_x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        // RFC 7638 thumbprint: SHA-256 over the required members, sorted.
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        Ok(Self { encoding: EncodingKey::from_ed_der(der.as_bytes()), public_x, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": self.public_x,
            "kid": self.kid, "alg": "EdDSA", "use": "sig"
        }]})
    }

    pub(crate) fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_components(&self.public_x).expect("our own public key is valid")
    }

    /// Signs an RFC 9068 access token for `subject`.
    pub fn issue(&self, subject: &str, ttl: Duration) -> Result<String, DevIssuerError> {
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(DevIssuerError::BadTtl);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        let claims = AccessClaims {
            iss: DEV_ISSUER.to_owned(),
            sub: subject.to_owned(),
            aud: serde_json::Value::String("anchor".to_owned()),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: Some(now),
            jti: Some(format!("{:032x}", rand::rng().random::<u128>())),
            client_id: Some("anchor-cli".to_owned()),
            nonce: None,
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}
