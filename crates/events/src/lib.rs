//! Domain events (`ticket.created`, `execution.succeeded`, ...): written to
//! the outbox (topic [`PUBLISH_TOPIC`]) in the transaction that causes them,
//! then published by the worker on the [`EventBus`]:
//!
//! - in-process broadcast by default (one process, as in `anchor dev`);
//! - NATS JetStream when `NATS_URL` is set, on subject
//!   `anchor.events.<workspace or _platform>.<type>`, with the outbox id as
//!   `Nats-Msg-Id` so that a redelivered outbox event is stored once (within
//!   the stream's duplicate window).

mod catalogue;

use std::time::Duration;

use anchor_outbox::{HandlerError, OutboxEvent};
use async_nats::{HeaderMap, jetstream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

pub use catalogue::{Event, EventSpec, markdown, publish};

/// The outbox topic whose events are published here.
pub const PUBLISH_TOPIC: &str = anchor_outbox::topics::EVENT_PUBLISH;

/// An event as subscribers see it (the payload of webhooks, too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// `evt_<outbox id>`: stable across redeliveries.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339, when the event was written.
    pub timestamp: String,
    /// The workspace slug; `None` for installation-level events.
    pub workspace: Option<String>,
    pub data: Value,
}

/// The outbox payload of [`PUBLISH_TOPIC`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub workspace: Option<String>,
    pub data: Value,
    pub timestamp: String,
}

impl PublishRequest {
    /// `event` of `workspace`, now.
    pub fn of<E: Event>(workspace: Option<&str>, event: &E) -> Self {
        Self::new(E::TYPE, workspace, serde_json::to_value(event).expect("an event serialises"))
    }

    pub fn new(kind: &str, workspace: Option<&str>, data: Value) -> Self {
        let timestamp =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        Self { kind: kind.to_owned(), workspace: workspace.map(str::to_owned), data, timestamp }
    }
}

/// Where a JetStream bus keeps events.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub name: String,
    /// Subjects are `<prefix>.<workspace>.<type>`.
    pub subject_prefix: String,
    /// Redeliveries of one outbox event within this window are stored once.
    pub duplicate_window: Duration,
    pub max_age: Duration,
    /// Put before the outbox id in `Nats-Msg-Id` (the installation's id), so
    /// two installations sharing a stream, or a database started afresh,
    /// never have one event taken for another's duplicate.
    pub message_id_prefix: String,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "ANCHOR_EVENTS".to_owned(),
            subject_prefix: "anchor.events".to_owned(),
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(7 * 24 * 60 * 60),
            message_id_prefix: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("cannot set up the JetStream stream: {0}")]
    Stream(String),
    #[error("cannot publish to NATS: {0}")]
    Publish(String),
}

/// Where events go.
#[derive(Debug, Clone)]
pub enum EventBus {
    InProcess(broadcast::Sender<DomainEvent>),
    JetStream(Box<JetStreamBus>),
}

/// A connected JetStream context and its stream.
#[derive(Debug, Clone)]
pub struct JetStreamBus {
    context: jetstream::Context,
    settings: StreamSettings,
}

impl EventBus {
    pub fn in_process() -> Self {
        Self::InProcess(broadcast::channel(1024).0)
    }

    /// Connects and makes sure the stream exists.
    pub async fn nats(url: &str, settings: StreamSettings) -> Result<Self, BusError> {
        let client = async_nats::connect(url).await.map_err(|e| BusError::Connect(e.to_string()))?;
        let context = jetstream::new(client);
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: settings.name.clone(),
                subjects: vec![format!("{}.>", settings.subject_prefix)],
                duplicate_window: settings.duplicate_window,
                max_age: settings.max_age,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::Stream(e.to_string()))?;
        Ok(Self::JetStream(Box::new(JetStreamBus { context, settings })))
    }

    /// Receives in-process events (`None` on a NATS bus: subscribe there).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<DomainEvent>> {
        match self {
            Self::InProcess(sender) => Some(sender.subscribe()),
            Self::JetStream(_) => None,
        }
    }

    /// Publishes; on JetStream, waits for the stream's acknowledgement.
    pub async fn publish(&self, outbox_id: i64, event: &DomainEvent) -> Result<(), BusError> {
        match self {
            Self::InProcess(sender) => {
                // No subscriber is not an error: nobody is listening in this process.
                let _ = sender.send(event.clone());
                Ok(())
            }
            Self::JetStream(bus) => {
                let (context, settings) = (&bus.context, &bus.settings);
                let workspace = event.workspace.as_deref().unwrap_or("_platform");
                let subject = format!("{}.{workspace}.{}", settings.subject_prefix, event.kind);
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("{}{outbox_id}", settings.message_id_prefix).as_str());
                let payload = serde_json::to_vec(event).map_err(|e| BusError::Publish(e.to_string()))?;
                let ack = context
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| BusError::Publish(e.to_string()))?;
                ack.await.map_err(|e| BusError::Publish(e.to_string()))?;
                Ok(())
            }
        }
    }
}

/// The outbox handler of [`PUBLISH_TOPIC`].
pub fn publish_handler(
    bus: EventBus,
) -> impl Fn(OutboxEvent) -> std::pin::Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>> + Send + Sync + 'static
{
    move |outbox: OutboxEvent| {
        let bus = bus.clone();
        Box::pin(async move {
            let request: PublishRequest = serde_json::from_value(outbox.payload.clone())
                .map_err(|e| HandlerError::Permanent(format!("not an event.publish payload: {e}")))?;
            let event = DomainEvent {
                id: format!("evt_{}", outbox.id),
                kind: request.kind,
                timestamp: request.timestamp,
                workspace: request.workspace,
                data: request.data,
            };
            bus.publish(outbox.id, &event).await.map_err(|e| HandlerError::retry(e.to_string()))
        })
    }
}
