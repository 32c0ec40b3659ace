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
//! - an unknown `kid` refreshes that issuer's JWKS at most once a minute;
//!   the fetch (https, or http to an exact loopback host; at most
//!   [`JWKS_MAX_BYTES`], read as it streams) holds no lock while it waits:
//!   known keys keep verifying, and concurrent misses wait for the one
//!   fetch under way.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anchor_config::IssuerSettings;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::dev_issuer::{DEV_ISSUER, DevIssuer};

/// Allowed clock skew for `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// An unknown `kid` refreshes an issuer's JWKS at most this often.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The largest key set read; a longer answer is refused once this much has
/// arrived, without reading the rest.
pub const JWKS_MAX_BYTES: usize = 1024 * 1024;
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

/// An issuer's fetched keys. The lock guards the map and is never held
/// across an `await`: a fetch runs outside it and swaps its result in.
#[derive(Debug, Default)]
struct RemoteKeys {
    keys: HashMap<String, Key>,
    fetched_at: Option<Instant>,
    /// The fetch under way (or the last one): misses meanwhile wait for it
    /// instead of starting their own.
    refresh: Option<Arc<OnceCell<()>>>,
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
                let lock = || state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // Known keys, or the refresh to wait for (joining the one under
                // way, or starting one if a minute has passed since the last).
                let refresh = {
                    let mut state = lock();
                    if let Some(key) = state.keys.get(kid) {
                        return Ok(key.clone());
                    }
                    match &state.refresh {
                        Some(running) if !running.initialized() => Arc::clone(running),
                        _ if state.fetched_at.is_some_and(|t| t.elapsed() < JWKS_REFRESH_INTERVAL) => {
                            return Err(TokenError::UnknownKey);
                        }
                        _ => {
                            state.fetched_at = Some(Instant::now());
                            Arc::clone(state.refresh.insert(Arc::new(OnceCell::new())))
                        }
                    }
                };
                // The network is waited on without the lock. Should the caller
                // that runs the fetch go away, a waiting one takes it over.
                refresh
                    .get_or_init(|| async {
                        match self.fetch(uri).await {
                            Ok(keys) => {
                                tracing::info!(issuer = %issuer.issuer, keys = keys.len(), "JWKS refreshed");
                                lock().keys = keys;
                            }
                            Err(e) => tracing::warn!(issuer = %issuer.issuer, error = %e, "JWKS refresh failed"),
                        }
                    })
                    .await;
                lock().keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<HashMap<String, Key>, String> {
        if !anchor_config::https_or_loopback(uri) {
            return Err(format!("{uri} is neither https nor http to a loopback host"));
        }
        let response = self.http.get(uri).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let bytes = read_capped(response, JWKS_MAX_BYTES).await?;
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

/// Reads a response body of at most `cap` bytes as it arrives: a longer
/// one (announced by its `Content-Length`, or found out while reading) is
/// refused as soon as that is known, without reading the rest.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let too_long = || format!("the answer is longer than {cap} bytes");
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > cap {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A key set that answers only when told to; `closed` says whether the
    /// caller hung up before that.
    async fn held_jwks(release: tokio::sync::oneshot::Receiver<()>) -> (String, Arc<AtomicBool>, Arc<AtomicBool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
        let (asked, closed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (asked_flag, closed_flag) = (Arc::clone(&asked), Arc::clone(&closed));
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            asked_flag.store(true, Ordering::SeqCst);
            let mut more = [0; 1];
            tokio::select! {
                biased;
                _ = socket.read(&mut more) => closed_flag.store(true, Ordering::SeqCst),
                _ = release => {
                    let body = r#"{"keys":[]}"#;
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    let _ = socket.write_all(answer.as_bytes()).await;
                }
            }
        });
        (uri, asked, closed)
    }

    #[tokio::test]
    async fn known_keys_verify_while_a_refresh_waits_on_the_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = DevIssuer::load_or_create(dir.path()).expect("dev issuer");
        let (release, held) = tokio::sync::oneshot::channel();
        let (uri, asked, closed) = held_jwks(held).await;
        // The issuer's keys were fetched more than a minute ago, so an
        // unknown key refreshes them.
        let known =
            HashMap::from([(dev.kid().to_owned(), Key { decoding: dev.decoding_key(), algorithm: Algorithm::EdDSA })]);
        let fetched_at = Instant::now().checked_sub(JWKS_REFRESH_INTERVAL * 2);
        let verifier = Arc::new(TokenVerifier {
            issuers: vec![Issuer {
                issuer: DEV_ISSUER.to_owned(),
                audience: "anchor".to_owned(),
                token_types: vec!["at+jwt".to_owned()],
                typ_optional: false,
                max_lifetime: crate::dev_issuer::MAX_TTL,
                keys: KeySource::Jwks { uri, state: Mutex::new(RemoteKeys { keys: known, fetched_at, refresh: None }) },
            }],
            http: http_client(),
        });
        let token = dev.issue("alice", Duration::from_secs(300)).expect("issue");
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"rotated-in"}"#);
        let unknown = format!("{header}.{}", token.split_once('.').expect("jwt").1);

        let refreshing = tokio::spawn({
            let verifier = Arc::clone(&verifier);
            async move { verifier.verify(&unknown).await }
        });
        while !asked.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        // The refresh is waiting for the key set; a known key verifies now,
        // before the fetch ends (a lock held across it would have made this
        // wait until the client gave up and hung up).
        assert_eq!(verifier.verify(&token).await.expect("known key").subject, "alice");
        // (The test runs on one thread: a refresh that had ended would have
        // finished its task before this verification could go on.)
        assert!(
            !refreshing.is_finished() && !closed.load(Ordering::SeqCst),
            "the refresh was still waiting when the known key verified"
        );
        release.send(()).expect("release");
        assert_eq!(refreshing.await.expect("task"), Err(TokenError::UnknownKey));
    }
}
