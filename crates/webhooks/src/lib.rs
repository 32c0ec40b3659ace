//! Outbound webhooks, as api.md ("Webhooks") and Standard Webhooks v1 say.
//!
//! - [`events`]: the events webhooks publish themselves (the catalogue of
//!   every event, `docs/events.md`, is assembled by the gateway);
//! - [`signature`]: `whsec_` secrets, signing and verifying
//!   (`webhook-id`, `webhook-timestamp`, `webhook-signature`);
//! - [`address`]: which destinations may be called (SSRF protection);
//! - [`fanout`]: a published domain event becomes one message (one
//!   `webhook-id`) and one delivery per subscribed endpoint, through the
//!   outbox;
//! - [`delivery`]: the delivery handler: signed POST, retry schedule, 410 and
//!   five days of failures disable the endpoint.

pub mod address;
pub mod delivery;
pub mod events;
pub mod fanout;
pub mod inbound;
pub mod secrets;
pub mod signature;

/// Outbox topic: deliver one message to one endpoint.
pub const DELIVER_TOPIC: &str = anchor_outbox::topics::WEBHOOK_DELIVER;
