//! The events webhooks themselves publish.

use anchor_domain::WebhookId;
use anchor_events::{Event, EventSpec};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// `webhook.endpoint_disabled`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointDisabled {
    pub endpoint_id: WebhookId,
    pub url: String,
    /// `gone` (it answered 410) or `failing` (five days without a success).
    pub reason: String,
}

impl Event for EndpointDisabled {
    const TYPE: &'static str = "webhook.endpoint_disabled";
    const WHEN: &'static str =
        "Anchor disabled a webhook endpoint (it answered 410 Gone, or every delivery failed for five days).";
}

/// `webhook.test`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookTest {
    pub endpoint_id: WebhookId,
    pub message: String,
}

impl Event for WebhookTest {
    const TYPE: &'static str = "webhook.test";
    const WHEN: &'static str = "Sent to one endpoint by `POST .../webhooks/{id}/test`.";
}

/// `inbound.received`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InboundReceived {
    /// The inbound source's name.
    pub source: String,
    pub webhook_id: String,
    /// The payload's own `type`, if it has one.
    #[serde(rename = "type")]
    pub kind: Option<Value>,
    pub payload: Value,
}

impl Event for InboundReceived {
    const TYPE: &'static str = "inbound.received";
    const WHEN: &'static str = "A registered inbound source delivered a signed message (`POST /api/v1/callbacks/inbound/{workspace}/{source}`).";
}

/// The events webhooks publish.
pub const EVENTS: &[EventSpec] =
    &[EventSpec::of::<InboundReceived>(), EventSpec::of::<EndpointDisabled>(), EventSpec::of::<WebhookTest>()];
