//! The edge protocol: the telemetry batch an agent sends and the identity
//! token it signs, shared by `anchor-edge-agent` (which must stay small: no
//! database or async runtime here) and the server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// JWS `typ` of agent tokens.
pub const TOKEN_TYPE: &str = "anchor-agent+jwt";
/// `aud` of agent tokens.
pub const AUDIENCE: &str = "urn:anchor:telemetry";
/// The longest an agent token may live.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// A compact JWS (EdDSA) naming the agent as `kid` and `iss`, valid for
/// `lifetime` (at most [`MAX_LIFETIME`]).
pub fn sign_token(key: &SigningKey, agent_id: &str, lifetime: Duration) -> String {
    let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": agent_id});
    let claims =
        json!({"iss": agent_id, "aud": AUDIENCE, "iat": iat, "exp": iat + lifetime.min(MAX_LIFETIME).as_secs()});
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The `kind` of the event an agent sends about batches it gave up on:
/// `{"kind": "agent.batches_dropped", "count": N, "reasons": {"spool_full": a,
/// "invalid": b, "too_large": c}, "sequences": [...], "at": "..."}`, where
/// `sequences` lists at most the first 100 of the `count` dropped batches.
/// Each drop is reported in exactly one acknowledged batch.
pub const BATCHES_DROPPED: &str = "agent.batches_dropped";

/// A batch of telemetry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Per agent, increasing; the server stores each once.
    pub sequence: i64,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Value>,
    #[serde(default)]
    pub events: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// `passing`, `warning` or `failing`.
    pub status: String,
    #[serde(default)]
    pub output: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
