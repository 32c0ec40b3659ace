//! Access-token validation per RFC 8725 (JWT Best Current Practices) and the
//! JWT profile for access tokens (RFC 9068):
//!
//! - algorithms allowlisted: EdDSA, ES256, RS256 (never `none`, never HS*);
//! - `iss` must name a configured issuer, and the key (`kid`) is resolved only
//!   from *that* issuer's pinned key set; `jku`, `jwk` and `x5u` headers are
//!   ignored; the key's own algorithm must match the token's;
//! - `typ` must be an access-token type (`at+jwt` unless configured), so ID
//!   tokens and other JWTs are not accepted as access tokens;
//! - `aud` must be the issuer's audience (`anchor`), `exp` is required, `nbf`
//!   honoured, 60 s of clock skew at most, lifetime bounded;
//! - an unknown `kid` refreshes that issuer's JWKS at most once a minute.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anchor_config::IssuerSettings;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::dev_issuer::{DEV_ISSUER, DevIssuer};

/// Allowed clock skew for `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// An unknown `kid` refreshes an issuer's JWKS at most this often.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const ALLOWED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// The claims Anchor reads from an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: serde_json::Value,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OIDC ID tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Who a valid token says is calling. Authorization is decided elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The `nonce` of an OIDC ID token.
    pub nonce: Option<String>,
}

/// Why a token was refused. The message is safe to send to the client (it is
/// the `error_description` of the `WWW-Authenticate` challenge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token is not an access token (typ)")]
    NotAnAccessToken,
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    #[error("the token names no signing key (kid)")]
    MissingKeyId,
    #[error("the token's signing key is not known for its issuer")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token lives longer than its issuer allows")]
    LifetimeTooLong,
    #[error("the token lacks a required claim")]
    MissingClaim,
}

#[derive(Debug, Clone)]
struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

#[derive(Debug, Default)]
struct RemoteKeys {
    keys: HashMap<String, Key>,
    fetched_at: Option<Instant>,
}

#[derive(Debug)]
enum KeySource {
    Fixed(HashMap<String, Key>),
    Jwks { uri: String, state: Mutex<RemoteKeys> },
}

#[derive(Debug)]
struct Issuer {
    issuer: String,
    audience: String,
    token_types: Vec<String>,
    /// ID tokens often carry no `typ`; access tokens must.
    typ_optional: bool,
    max_lifetime: Duration,
    keys: KeySource,
}

/// Validates access tokens from the configured issuers.
#[derive(Debug)]
pub struct TokenVerifier {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
}

impl TokenVerifier {
    pub fn new(dev: Option<&DevIssuer>, external: &[IssuerSettings]) -> Self {
        // reqwest is built without a default TLS provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut issuers = Vec::new();
        if let Some(dev) = dev {
            let key = Key { decoding: dev.decoding_key(), algorithm: Algorithm::EdDSA };
            issuers.push(Issuer {
                issuer: DEV_ISSUER.to_owned(),
                audience: "anchor".to_owned(),
                token_types: vec!["at+jwt".to_owned()],
                typ_optional: false,
                max_lifetime: crate::dev_issuer::MAX_TTL,
                keys: KeySource::Fixed(HashMap::from([(dev.kid().to_owned(), key)])),
            });
        }
        for settings in external {
            issuers.push(Issuer {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                token_types: settings.token_types.iter().map(|t| normalise_typ(t)).collect(),
                typ_optional: false,
                max_lifetime: settings.max_lifetime,
                keys: KeySource::Jwks { uri: settings.jwks_uri.clone(), state: Mutex::new(RemoteKeys::default()) },
            });
        }
        Self { issuers, http: http_client() }
    }

    /// A verifier of one OIDC provider's ID tokens for our client: `aud` is
    /// the client id, `typ` is `JWT` or absent, keys come from `jwks_uri`.
    pub fn for_id_tokens(issuer: &str, jwks_uri: &str, client_id: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let issuer = Issuer {
            issuer: issuer.to_owned(),
            audience: client_id.to_owned(),
            token_types: vec!["jwt".to_owned()],
            typ_optional: true,
            max_lifetime: Duration::from_secs(24 * 60 * 60),
            keys: KeySource::Jwks { uri: jwks_uri.to_owned(), state: Mutex::new(RemoteKeys::default()) },
        };
        Self { issuers: vec![issuer], http: http_client() }
    }

    /// The issuers trusted, by `iss`.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.issuer.as_str())
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
            _ => TokenError::Malformed,
        })?;
        if !ALLOWED.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        // Only to pick the issuer; nothing is trusted until the signature is.
        let unverified: AccessClaims =
            jsonwebtoken::dangerous::insecure_decode(token).map(|d| d.claims).map_err(|_| TokenError::MissingClaim)?;
        let issuer = self.issuers.iter().find(|i| i.issuer == unverified.iss).ok_or(TokenError::UntrustedIssuer)?;
        match header.typ.as_deref().map(normalise_typ) {
            Some(typ) if issuer.token_types.contains(&typ) => {}
            None if issuer.typ_optional => {}
            _ => return Err(TokenError::NotAnAccessToken),
        }
        let kid = header.kid.as_deref().ok_or(TokenError::MissingKeyId)?;
        let key = self.key(issuer, kid).await?;
        if key.algorithm != header.alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }

        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => TokenError::Expired,
                    K::ImmatureSignature => TokenError::NotYetValid,
                    K::InvalidAudience => TokenError::WrongAudience,
                    K::InvalidIssuer => TokenError::UntrustedIssuer,
                    K::MissingRequiredClaim(_) => TokenError::MissingClaim,
                    K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
                    K::InvalidSignature => TokenError::BadSignature,
                    _ => TokenError::Malformed,
                }
            })?
            .claims;

        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let born = claims.iat.unwrap_or(now).min(now + LEEWAY_SECS);
        if claims.exp.saturating_sub(born) > issuer.max_lifetime.as_secs() + LEEWAY_SECS {
            return Err(TokenError::LifetimeTooLong);
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(TokenError::MissingClaim);
        }
        Ok(Identity { issuer: issuer.issuer.clone(), subject: claims.sub, expires_at: claims.exp, nonce: claims.nonce })
    }

    async fn key(&self, issuer: &Issuer, kid: &str) -> Result<Key, TokenError> {
        match &issuer.keys {
            KeySource::Fixed(keys) => keys.get(kid).cloned().ok_or(TokenError::UnknownKey),
            KeySource::Jwks { uri, state } => {
                // Holding the lock while fetching makes concurrent misses wait
                // for one fetch instead of each starting their own.
                let mut state = state.lock().await;
                if let Some(key) = state.keys.get(kid) {
                    return Ok(key.clone());
                }
                let may_refresh = state.fetched_at.is_none_or(|t| t.elapsed() >= JWKS_REFRESH_INTERVAL);
                if !may_refresh {
                    return Err(TokenError::UnknownKey);
                }
                state.fetched_at = Some(Instant::now());
                match self.fetch(uri).await {
                    Ok(keys) => {
                        tracing::info!(issuer = %issuer.issuer, keys = keys.len(), "JWKS refreshed");
                        state.keys = keys;
                    }
                    Err(e) => tracing::warn!(issuer = %issuer.issuer, error = %e, "JWKS refresh failed"),
                }
                state.keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<HashMap<String, Key>, String> {
        let response = self.http.get(uri).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > 1024 * 1024 {
            return Err("JWKS larger than 1 MiB".to_owned());
        }
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                // Symmetric keys and other curves are never accepted.
                _ => continue,
            };
            let declared = jwk.common.key_algorithm;
            let consistent = match declared {
                None => true,
                Some(KeyAlgorithm::EdDSA) => algorithm == Algorithm::EdDSA,
                Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
                Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
                Some(_) => false,
            };
            if !consistent {
                continue;
            }
            if let Ok(decoding) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, Key { decoding, algorithm });
            }
        }
        Ok(keys)
    }
}

/// The client for fetching key sets: short timeout, no redirects.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client builds")
}

/// `application/at+jwt` and `AT+JWT` are the same type (RFC 9068 section 2.1).
fn normalise_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").map(str::to_owned).unwrap_or(lower)
}
