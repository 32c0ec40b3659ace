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
    /// The endpoint's host (with its port, if any). Never the URL: its path
    /// and query may carry a capability token of the receiver's.
    pub host: String,
    /// `gone` (it answered 410) or `failing` (five days without a success).
    pub reason: String,
}

impl Event for EndpointDisabled {
    const TYPE: &'static str = "webhook.endpoint_disabled";
    const WHEN: &'static str =
        "Anchor disabled a webhook endpoint (it answered 410 Gone, or every delivery failed for five days).";
}

/// What may be said of an endpoint's URL where its URL may not be: the
/// host, with the port when it is not the scheme's default. A URL is a
/// capability (its path or query often carries the receiver's token), so
/// change records and events name the host only.
pub fn host_of(url: &str) -> String {
    let Ok(url) = url::Url::parse(url) else { return String::new() };
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn a_url_is_told_by_its_host_only() {
        assert_eq!(host_of("https://hooks.example.com/anchor/T0K3N?sig=s3cret#x"), "hooks.example.com");
        assert_eq!(host_of("https://user:pw@hooks.example.com:8443/T0K3N"), "hooks.example.com:8443");
        assert_eq!(host_of("http://hooks.example.com:80/T0K3N"), "hooks.example.com", "the default port is implied");
        assert_eq!(host_of("http://[::1]:9/T0K3N"), "[::1]:9");
        assert_eq!(host_of("not a url"), "");
    }
}
