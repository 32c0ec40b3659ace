//! The edge protocol: the telemetry batch an agent sends and the identity
//! token it signs, shared by `anchor-edge-agent` (which must stay small: no
//! database or async runtime here) and the server. Every part of a batch is
//! a bounded type ([`limits`], [`bounded`]): reading one never builds more
//! than the limits allow, and the agent keeps within them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
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
/// Each drop is reported in exactly one acknowledged batch. `count` is a
/// whole number of at most [`MAX_DROPPED_COUNT`].
pub const BATCHES_DROPPED: &str = "agent.batches_dropped";
/// The largest `count` of one [`BATCHES_DROPPED`] event.
pub const MAX_DROPPED_COUNT: u64 = 1 << 31;

/// What bounds a batch. The server refuses a batch beyond them (413 when it
/// is too large once decompressed, 422 naming the field otherwise); the agent
/// keeps its batches within them.
pub mod limits {
    /// Largest batch document once decompressed, in bytes.
    pub const MAX_DECOMPRESSED: usize = 4 * 1024 * 1024;
    /// Largest zstd window a body may ask for (log2): 8 MiB, what zstd's
    /// levels 1 to 19 use at most.
    pub const MAX_ZSTD_WINDOW_LOG: u32 = 23;
    pub const MAX_METRICS: usize = 10_000;
    pub const MAX_CHECKS: usize = 1_000;
    pub const MAX_EVENTS: usize = 100;
    /// Longest metric name, in bytes.
    pub const MAX_METRIC_NAME: usize = 120;
    /// Longest check name, in bytes.
    pub const MAX_CHECK_NAME: usize = 200;
    /// Longest check output, in bytes.
    pub const MAX_CHECK_OUTPUT: usize = 4096;
}

pub use bounded::{Bounds, BoundsError, EVENT_BOUNDS, Event, INVENTORY_BOUNDS, Inventory, Labels};
use limits::*;

pub mod bounded;

/// Whether `name` is a metric or event name: 1-120 of a-z, 0-9, `.`, `_`
/// and `-`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_METRIC_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A batch of telemetry. Every part is bounded while it is read (see
/// [`limits`] and [`bounded`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Per agent, increasing; the server stores each once.
    pub sequence: i64,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "bounded::seq::<_, Metric, MAX_METRICS>")]
    pub metrics: Vec<Metric>,
    #[serde(default, deserialize_with = "bounded::seq::<_, Check, MAX_CHECKS>")]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    #[serde(default, deserialize_with = "bounded::seq::<_, Event, MAX_EVENTS>")]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    #[serde(deserialize_with = "bounded::text::<_, MAX_METRIC_NAME>")]
    pub name: String,
    pub value: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(deserialize_with = "bounded::text::<_, MAX_CHECK_NAME>")]
    pub name: String,
    /// `passing`, `warning` or `failing`.
    #[serde(deserialize_with = "bounded::text::<_, 16>")]
    pub status: String,
    #[serde(default, deserialize_with = "bounded::text::<_, MAX_CHECK_OUTPUT>")]
    pub output: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
