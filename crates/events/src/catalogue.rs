//! Typed domain events. Each event is a type: its name, when it happens, and
//! its `data` (a serialisable struct with a JSON Schema). Producers publish
//! values of these types through the outbox ([`publish`]); the webhook event
//! catalogue and `docs/events.md` are generated from the same types
//! ([`EventSpec`], [`markdown`]), so the documentation cannot drift from what
//! is sent.

use anchor_store::{StoreError, WorkspaceTx};
use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde::Serialize;
use serde_json::Value;

use crate::{PUBLISH_TOPIC, PublishRequest};

/// A domain event: the value is its `data`.
pub trait Event: Serialize + JsonSchema + Send + Sync {
    /// Its `type`, e.g. `ticket.created`.
    const TYPE: &'static str;
    /// When it happens, for people reading the catalogue.
    const WHEN: &'static str;
}

/// An event type as the catalogue lists it.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    pub name: &'static str,
    pub when: &'static str,
    data: fn() -> Schema,
}

fn schema_of<E: JsonSchema>() -> Schema {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    settings.into_generator().into_root_schema_for::<E>()
}

impl EventSpec {
    pub const fn of<E: Event>() -> Self {
        Self { name: E::TYPE, when: E::WHEN, data: schema_of::<E> }
    }

    /// The JSON Schema of `data` (self-contained: no references).
    pub fn data_schema(&self) -> Schema {
        (self.data)()
    }

    /// The members of `data`, for people: `` `ticket` {`id`, ...}: the ticket ``.
    pub fn data_members(&self) -> String {
        members(self.data_schema().as_value())
    }
}

/// `` `a` {`x`, `y`}: what a is; `b` `` from an object schema's properties.
fn members(schema: &Value) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return String::new() };
    let mut out = Vec::new();
    for (name, property) in properties {
        let mut text = format!("`{name}`");
        let nested = property.get("properties").and_then(Value::as_object);
        if let Some(nested) = nested.filter(|n| !n.is_empty()) {
            let names: Vec<String> = nested.keys().map(|k| format!("`{k}`")).collect();
            text.push_str(&format!(" {{{}}}", names.join(", ")));
        }
        if let Some(description) = property.get("description").and_then(Value::as_str) {
            text.push_str(&format!(": {}", description.replace('\n', " ")));
        }
        out.push(text);
    }
    out.join("; ")
}

/// Publishes `event` of the unit of work's workspace through the outbox:
/// delivered if and only if the unit of work commits.
pub async fn publish<E: Event>(tx: &mut WorkspaceTx, event: &E) -> Result<i64, StoreError> {
    let slug = tx.workspace().slug().to_string();
    let request = PublishRequest::of(Some(&slug), event);
    tx.enqueue(PUBLISH_TOPIC, &serde_json::to_value(request).expect("serialises")).await
}

/// The catalogue as Markdown (`docs/events.md`).
pub fn markdown(events: &[EventSpec]) -> String {
    let mut out = String::from(
        "# Webhook event catalogue\n\n\
         Generated from the event types (`anchor_events::Event`) by the gateway's tests; do not edit by hand.\n\n\
         Every delivery is a `POST` with `Content-Type: application/json`, the Standard Webhooks headers\n\
         `webhook-id` (the same on every retry), `webhook-timestamp` and `webhook-signature`, and the body\n\
         `{\"type\", \"timestamp\", \"workspace\", \"data\"}`.\n\n\
         | Type | When | `data` |\n|---|---|---|\n",
    );
    for event in events {
        out.push_str(&format!("| `{}` | {} | {} |\n", event.name, event.when, event.data_members()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Something happened.
    #[derive(Serialize, JsonSchema)]
    struct Happened {
        /// What it was.
        thing: Thing,
        count: u32,
    }

    #[derive(Serialize, JsonSchema)]
    struct Thing {
        id: String,
        name: String,
    }

    impl Event for Happened {
        const TYPE: &'static str = "thing.happened";
        const WHEN: &'static str = "A thing happened.";
    }

    #[test]
    fn the_catalogue_describes_data_from_the_type() {
        let spec = EventSpec::of::<Happened>();
        assert_eq!(spec.name, "thing.happened");
        assert_eq!(spec.data_members(), "`count`; `thing` {`id`, `name`}: What it was.");
        let doc = markdown(&[spec]);
        assert!(doc.contains("| `thing.happened` | A thing happened. | `count`; `thing` {`id`, `name`}"), "{doc}");
        assert!(!spec.data_schema().as_value().to_string().contains("$ref"), "self-contained");
    }
}
