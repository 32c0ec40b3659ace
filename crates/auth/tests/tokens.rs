//! Access-token validation against forged, stale and foreign tokens.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anchor_auth::{DevIssuer, TokenError, TokenVerifier, dev_issuer::DEV_ISSUER};
use anchor_config::IssuerSettings;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// An Ed25519 key of the test's own, with its JWK.
struct TestKey {
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn new(seed: u8, kid: &str) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let der = key.to_pkcs8_der().expect("pkcs8");
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    fn sign(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

fn header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".to_owned());
    h.kid = Some(kid.to_owned());
    h
}

fn claims(iss: &str) -> Value {
    let now = now();
    json!({"iss": iss, "sub": "alice", "aud": "anchor", "exp": now + 300, "iat": now, "nbf": now})
}

fn dev() -> (tempfile::TempDir, DevIssuer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = DevIssuer::load_or_create(dir.path()).expect("dev issuer");
    (dir, dev)
}

/// Re-signs nothing: splices new header/claims segments onto an old signature.
fn splice(token: &str, header: Option<&Value>, claims: Option<&Value>) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let h = header.map_or(parts[0].to_owned(), |h| URL_SAFE_NO_PAD.encode(h.to_string()));
    let c = claims.map_or(parts[1].to_owned(), |c| URL_SAFE_NO_PAD.encode(c.to_string()));
    format!("{h}.{c}.{}", parts[2])
}

#[tokio::test]
async fn dev_tokens_verify_and_the_key_persists() {
    let (dir, dev) = dev();
    let verifier = TokenVerifier::new(Some(&dev), &[]);
    let token = dev.issue("alice", Duration::from_secs(600)).expect("issue");
    let identity = verifier.verify(&token).await.expect("valid");
    assert_eq!((identity.issuer.as_str(), identity.subject.as_str()), (DEV_ISSUER, "alice"));

    // The CLI and the server load the same key from the data directory.
    let again = DevIssuer::load_or_create(dir.path()).expect("reload");
    assert_eq!(again.kid(), dev.kid());
    assert!(dev.issue("alice", Duration::from_secs(16 * 60)).is_err(), "access tokens live at most 15 minutes");
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let (_dir, dev) = dev();
    let verifier = TokenVerifier::new(Some(&dev), &[]);
    let valid = dev.issue("alice", Duration::from_secs(300)).expect("issue");
    let segments: Vec<&str> = valid.split('.').collect();
    let header_json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[0]).expect("b64")).expect("json");
    let claims_json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).expect("b64")).expect("json");

    // alg: none, with and without a signature.
    let mut none = header_json.clone();
    none["alg"] = "none".into();
    let none_token = splice(&valid, Some(&none), None);
    let unsigned = format!("{}.{}.", none_token.split('.').next().expect("h"), segments[1]);
    for token in [none_token, unsigned] {
        let err = verifier.verify(&token).await.expect_err("alg none");
        assert!(matches!(err, TokenError::AlgorithmNotAllowed | TokenError::Malformed), "{err:?}");
    }

    // HS256 keyed with the public key (the classic algorithm-confusion attack).
    let jwks = dev.jwks();
    let public = jwks["keys"][0]["x"].as_str().expect("x");
    for secret in
        [public.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(public).expect("b64"), jwks.to_string().into_bytes()]
    {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".to_owned());
        h.kid = Some(dev.kid().to_owned());
        let token = jsonwebtoken::encode(&h, &claims_json, &EncodingKey::from_secret(&secret)).expect("sign");
        assert_eq!(verifier.verify(&token).await, Err(TokenError::AlgorithmNotAllowed));
    }

    // Tampered payload, same signature.
    let mut tampered = claims_json.clone();
    tampered["sub"] = "mallory".into();
    assert_eq!(verifier.verify(&splice(&valid, None, Some(&tampered))).await, Err(TokenError::BadSignature));

    // Another installation's dev issuer: same `iss`, a key this one never trusted.
    let key_dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = DevIssuer::load_or_create(key_dir.path()).expect("other dev key");
    let foreign = elsewhere.issue("alice", Duration::from_secs(300)).expect("issue");
    assert_eq!(verifier.verify(&foreign).await, Err(TokenError::UnknownKey), "another installation's dev token");
}

#[tokio::test]
async fn every_claim_is_checked() {
    // A verifier trusting an external issuer whose key we hold, so that we
    // can sign tokens with arbitrary claims.
    let key = TestKey::new(7, "k1");
    let jwks = json!({"keys": [key.jwk.clone()]});
    let (uri, fetches, _server) = serve_jwks(jwks).await;
    let issuer = "https://id.example.test/realms/msp";
    let verifier = TokenVerifier::new(None, &[settings(issuer, &uri)]);
    let now = now();
    let ok = key.sign(header("k1"), &claims(issuer));
    assert_eq!(verifier.verify(&ok).await.expect("valid").subject, "alice");

    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "expired",
            key.sign(
                header("k1"),
                &json!({"iss": issuer, "sub": "a", "aud": "anchor", "exp": now - 120, "iat": now - 400}),
            ),
            TokenError::Expired,
        ),
        (
            "not yet valid",
            key.sign(
                header("k1"),
                &json!({"iss": issuer, "sub": "a", "aud": "anchor", "exp": now + 600, "iat": now, "nbf": now + 300}),
            ),
            TokenError::NotYetValid,
        ),
        (
            "wrong aud",
            key.sign(header("k1"), &json!({"iss": issuer, "sub": "a", "aud": "billing", "exp": now + 300, "iat": now})),
            TokenError::WrongAudience,
        ),
        (
            "wrong iss",
            key.sign(
                header("k1"),
                &json!({"iss": "https://evil.test", "sub": "a", "aud": "anchor", "exp": now + 300, "iat": now}),
            ),
            TokenError::UntrustedIssuer,
        ),
        (
            "no exp",
            key.sign(header("k1"), &json!({"iss": issuer, "sub": "a", "aud": "anchor", "iat": now})),
            TokenError::MissingClaim,
        ),
        (
            "too long",
            key.sign(header("k1"), &json!({"iss": issuer, "sub": "a", "aud": "anchor", "exp": now + 7200, "iat": now})),
            TokenError::LifetimeTooLong,
        ),
        ("unknown kid", key.sign(header("k2"), &claims(issuer)), TokenError::UnknownKey),
        (
            "no kid",
            key.sign(
                {
                    let mut h = header("k1");
                    h.kid = None;
                    h
                },
                &claims(issuer),
            ),
            TokenError::MissingKeyId,
        ),
        (
            "id token typ",
            key.sign(
                {
                    let mut h = header("k1");
                    h.typ = Some("JWT".into());
                    h
                },
                &claims(issuer),
            ),
            TokenError::NotAnAccessToken,
        ),
        ("dev issuer claimed", key.sign(header("k1"), &claims(DEV_ISSUER)), TokenError::UntrustedIssuer),
    ];
    for (name, token, expected) in cases {
        assert_eq!(verifier.verify(&token).await, Err(expected), "{name}");
    }

    // Within the 60 s skew: accepted.
    let skewed =
        key.sign(header("k1"), &json!({"iss": issuer, "sub": "a", "aud": "anchor", "exp": now - 30, "iat": now - 300}));
    assert!(verifier.verify(&skewed).await.is_ok(), "30 s past exp is within the allowed skew");

    // A `jku` pointing elsewhere is ignored: keys come only from the pinned JWKS.
    let attacker = TestKey::new(9, "evil");
    let (evil_uri, _, _evil) = serve_jwks(json!({"keys": [attacker.jwk.clone()]})).await;
    let mut h = header("evil");
    h.jku = Some(evil_uri);
    assert_eq!(verifier.verify(&attacker.sign(h, &claims(issuer))).await, Err(TokenError::UnknownKey));

    // A token of another issuer, signed by that issuer's key but naming ours.
    let other = TestKey::new(11, "k1");
    assert_eq!(verifier.verify(&other.sign(header("k1"), &claims(issuer))).await, Err(TokenError::BadSignature));

    // All those unknown kids cost one JWKS fetch at most per minute.
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one initial fetch; unknown kids within a minute fetch nothing");
}

#[tokio::test]
async fn a_jwks_that_is_down_refuses_tokens_without_failing_open() {
    let key = TestKey::new(3, "k1");
    let issuer = "https://down.example.test";
    let verifier = TokenVerifier::new(None, &[settings(issuer, "http://127.0.0.1:9/jwks.json")]);
    assert_eq!(verifier.verify(&key.sign(header("k1"), &claims(issuer))).await, Err(TokenError::UnknownKey));
}

fn settings(issuer: &str, jwks_uri: &str) -> IssuerSettings {
    IssuerSettings {
        issuer: issuer.to_owned(),
        jwks_uri: jwks_uri.to_owned(),
        audience: "anchor".to_owned(),
        token_types: vec!["at+jwt".to_owned()],
        max_lifetime: Duration::from_secs(15 * 60),
    }
}

/// Serves `jwks` on 127.0.0.1 and counts the fetches.
async fn serve_jwks(jwks: Value) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(axum::Json(jwks.clone()))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (uri, fetches, server)
}

#[tokio::test]
async fn a_jwks_larger_than_the_cap_is_refused_without_reading_it_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A key set that never ends: it writes for as long as anyone reads.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = [0; 4096];
        let _ = socket.read(&mut request).await;
        let mut sent = 0usize;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return sent;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        while socket.write_all(chunk.as_bytes()).await.is_ok() {
            sent += 64 * 1024;
        }
        sent
    });
    let key = TestKey::new(4, "k1");
    let issuer = "https://endless.example.test";
    let verifier = TokenVerifier::new(None, &[settings(issuer, &uri)]);
    assert_eq!(verifier.verify(&key.sign(header("k1"), &claims(issuer))).await, Err(TokenError::UnknownKey));
    // The verifier hung up once the cap was passed: what the server got to
    // write is the cap and what the sockets' buffers hold, not seconds of
    // a loopback stream.
    let sent = server.await.expect("server");
    assert!(sent < anchor_auth::token::JWKS_MAX_BYTES + 16 * 1024 * 1024, "{sent} bytes were read");
    assert!(sent >= anchor_auth::token::JWKS_MAX_BYTES, "{sent}");
}

#[tokio::test]
async fn an_announced_length_over_the_cap_is_refused_before_reading() {
    let app = axum::Router::new()
        .route("/big", axum::routing::get(|| async { vec![b' '; 2 * anchor_auth::token::JWKS_MAX_BYTES] }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/big", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let response = anchor_auth::token::http_client().get(&url).send().await.expect("get");
    let err =
        anchor_auth::token::read_capped(response, anchor_auth::token::JWKS_MAX_BYTES).await.expect_err("too long");
    assert!(err.contains("longer than"), "{err}");
    let response = anchor_auth::token::http_client().get(&url).send().await.expect("get");
    assert_eq!(
        anchor_auth::token::read_capped(response, 4 * anchor_auth::token::JWKS_MAX_BYTES).await.map(|b| b.len()),
        Ok(2 * anchor_auth::token::JWKS_MAX_BYTES)
    );
}
