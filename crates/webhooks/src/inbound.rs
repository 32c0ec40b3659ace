//! Inbound deliveries from senders that sign with Standard Webhooks (an
//! external system, another Anchor installation), at
//! `POST /api/v1/callbacks/inbound/{workspace}/{source}`.
//!
//! The signature is checked before the body is parsed (five-minute
//! timestamp window, constant-time comparison, the source's current and,
//! during a rotation, previous secret). Each accepted delivery gets a
//! receipt keyed on the source and its `webhook-id`, written in the same
//! unit of work as its effect (an `inbound.received` domain event, which the
//! rest of Anchor acts on); a replay is answered with the original receipt
//! and has no second effect.

use anchor_crypto::seal::MasterKey;
use anchor_domain::WorkspaceSlug;
use anchor_store::{Database, StoreError, executions::Receipt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    secrets,
    signature::{self, SignatureError},
};

/// Receipts' `source` for these deliveries.
pub const SOURCE: &str = "standard_webhooks";
/// The longest `webhook-id` accepted (Svix's are 31 characters).
pub const MAX_ID_LEN: usize = 200;

/// A delivery as received: the three Standard Webhooks headers and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// Unknown workspace or source, or no matching signature: one answer.
    #[error("the delivery's signature does not verify")]
    Unauthenticated,
    /// A `webhook-id` no sender uses (empty, over [`MAX_ID_LEN`] bytes, or
    /// not printable ASCII).
    #[error("webhook-id must be 1 to {MAX_ID_LEN} printable ASCII characters")]
    BadId,
    #[error(transparent)]
    Signature(SignatureError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InboundError {
    /// A stable reason for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::Signature(SignatureError::NoMatch) => "bad_signature",
            Self::Signature(SignatureError::MissingHeaders) => "missing_headers",
            Self::Signature(SignatureError::StaleTimestamp | SignatureError::BadTimestamp) => "stale_timestamp",
            Self::BadId => "bad_id",
            Self::Signature(SignatureError::BadSecret) | Self::Store(_) => "error",
        }
    }
}

/// Verifies, deduplicates and applies one delivery.
pub async fn receive(
    db: &Database,
    master: &MasterKey,
    workspace: &str,
    source: &str,
    delivery: Delivery<'_>,
) -> Result<Receipt, InboundError> {
    if delivery.id.is_none() || delivery.timestamp.is_none() || delivery.signature.is_none() {
        return Err(InboundError::Signature(SignatureError::MissingHeaders));
    }
    if delivery.id.is_some_and(|id| id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(InboundError::BadId);
    }
    let slug = WorkspaceSlug::parse(workspace).map_err(|_| InboundError::Unauthenticated)?;
    let Some(workspace) = db.workspace(&slug).await? else { return Err(InboundError::Unauthenticated) };
    let mut tx = db.begin_workspace(&workspace).await?;
    let Some(registered) = tx.source(source).await? else { return Err(InboundError::Unauthenticated) };
    let now = OffsetDateTime::now_utc();
    let record = secrets::source_record(source);
    let mut keys = vec![
        secrets::open(master, &workspace, &record, &registered.secret).map_err(|_| InboundError::Unauthenticated)?,
    ];
    if let Some((previous, until)) = &registered.previous
        && *until > now
        && let Ok(key) = secrets::open(master, &workspace, &record, previous)
    {
        keys.push(key);
    }
    signature::verify(&keys, delivery.id, delivery.timestamp, delivery.signature, delivery.body, now.unix_timestamp())
        .map_err(|e| match e {
            SignatureError::NoMatch => InboundError::Unauthenticated,
            other => InboundError::Signature(other),
        })?;
    // Authentic from here on.
    let webhook_id = delivery.id.expect("checked above");
    let delivery_id = format!("{source}:{webhook_id}");
    if let Some(receipt) = tx.callback_receipt(SOURCE, &delivery_id).await? {
        tx.rollback().await?;
        return Ok(receipt);
    }
    let data: Value =
        serde_json::from_slice(delivery.body).unwrap_or_else(|_| json!(String::from_utf8_lossy(delivery.body)));
    let event = crate::events::InboundReceived {
        source: source.to_owned(),
        webhook_id: webhook_id.to_owned(),
        kind: data.get("type").cloned(),
        payload: data,
    };
    anchor_events::publish(&mut tx, &event).await?;
    let digest = format!("sha256:{}", hex_digest(delivery.body));
    let receipt =
        tx.record_callback_receipt(SOURCE, &delivery_id, &digest, &json!({"published": "inbound.received"})).await?;
    if receipt.replay {
        // The same delivery raced us and won: its effect stands, ours goes.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(receipt)
}

fn hex_digest(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}
