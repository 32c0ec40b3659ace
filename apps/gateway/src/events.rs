//! The event catalogue: every event type a webhook endpoint can subscribe
//! to, gathered from the crates that publish them (each event is a type
//! there: `anchor_events::Event`). `docs/events.md` is generated from it
//! (a test keeps them equal; `ANCHOR_UPDATE_DOCS=1 cargo test -p
//! anchor-gateway events` rewrites it).

use std::sync::OnceLock;

use anchor_events::EventSpec;

/// Every event type, in the order the documentation lists them.
pub fn catalogue() -> &'static [EventSpec] {
    static CATALOGUE: OnceLock<Vec<EventSpec>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut events = anchor_commands::registry::events();
        events.extend_from_slice(anchor_commands::sla::EVENTS);
        events.extend_from_slice(anchor_evidence::issue::EVENTS);
        events.extend_from_slice(anchor_telemetry::alerts::EVENTS);
        events.extend_from_slice(anchor_commands::automation::EVENTS);
        events.extend_from_slice(anchor_webhooks::events::EVENTS);
        events
    })
}

/// The event type called `name`.
pub fn find(name: &str) -> Option<&'static EventSpec> {
    catalogue().iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_events_md_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
        let expected = anchor_events::markdown(catalogue());
        if std::env::var_os("ANCHOR_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).expect("write docs/events.md");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            actual, expected,
            "docs/events.md is stale: run ANCHOR_UPDATE_DOCS=1 cargo test -p anchor-gateway events"
        );
    }

    #[test]
    fn names_are_unique_and_dotted_and_data_is_described() {
        let events = catalogue();
        for (i, e) in events.iter().enumerate() {
            assert!(e.name.contains('.') && e.name == e.name.to_lowercase(), "{}", e.name);
            assert!(events[i + 1..].iter().all(|o| o.name != e.name), "{} twice", e.name);
            assert!(!e.data_members().is_empty(), "{} describes its data", e.name);
        }
    }
}
