//! The event catalogue: every event type a webhook endpoint can subscribe
//! to. `docs/events.md` is generated from this table (a test keeps them
//! equal; `ANCHOR_UPDATE_DOCS=1 cargo test -p anchor-webhooks` rewrites it).

/// One event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub when: &'static str,
    /// The members of `data`.
    pub data: &'static str,
}

pub const EVENTS: &[EventType] = &[
    EventType {
        name: "execution.succeeded",
        when: "A command's execution finished successfully.",
        data: "`execution_id`, `command`, `status`, `actor` {`issuer`, `subject`}, `result` (e.g. `{\"ticket_id\"}`)",
    },
    EventType {
        name: "execution.failed",
        when: "A command's execution finished without success (failed, cancelled or timed out).",
        data: "`execution_id`, `command`, `status`, `actor`, `error` {`code`, `message`}",
    },
    EventType {
        name: "ticket.created",
        when: "A ticket was opened.",
        data: "`ticket` (the ticket as `GET .../tickets/{id}` shows it, without comments and history), `execution_id`",
    },
    EventType {
        name: "ticket.updated",
        when: "A ticket moved along its lifecycle or got a comment.",
        data: "`ticket_id`, `change` (`status_changed` with `from`, `to`; or `commented` with `comment_id`, `visibility`), `actor`, `execution_id`",
    },
    EventType {
        name: "evidence.issued",
        when: "A signed audit credential was issued for a finished execution or an administrative change.",
        data: "`evidence_id`, `execution_id` or `change_id`, `sequence`, `digest`, `issuer` (the `did:key`)",
    },
    EventType {
        name: "alert.opened",
        when: "A monitoring condition on an agent's machine held for its rule's duration: a new alert.",
        data: "`alert` {`id`, `rule_id`, `agent_id`, `asset_id`, `subject` (the mount, interface or check), `severity` (`critical`, `warning`, `info`), `state`, `summary`, `value`, `flaps`, `ticket_id`, `opened_at`, `resolved_at`}",
    },
    EventType {
        name: "alert.reopened",
        when: "An alert that resolved less than a minute ago came back (a flap): the same alert, its `flaps` counted.",
        data: "`alert` (as in `alert.opened`)",
    },
    EventType {
        name: "alert.resolved",
        when: "An alert's condition was clear for its rule's duration.",
        data: "`alert` (as in `alert.opened`, with `resolved_at`)",
    },
    EventType {
        name: "inbound.received",
        when: "A registered inbound source delivered a signed message (`POST /api/v1/callbacks/inbound/{workspace}/{source}`).",
        data: "`source`, `webhook_id`, `type` (the payload's, if any), `payload`",
    },
    EventType {
        name: "webhook.endpoint_disabled",
        when: "Anchor disabled a webhook endpoint (it answered 410 Gone, or every delivery failed for five days).",
        data: "`endpoint_id`, `url`, `reason`",
    },
    EventType {
        name: "webhook.test",
        when: "Sent to one endpoint by `POST .../webhooks/{id}/test`.",
        data: "`endpoint_id`, `message`",
    },
];

pub fn find(name: &str) -> Option<&'static EventType> {
    EVENTS.iter().find(|e| e.name == name)
}

/// The catalogue as Markdown (`docs/events.md`).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Webhook event catalogue\n\n\
         Generated from `crates/webhooks/src/catalogue.rs`; do not edit by hand.\n\n\
         Every delivery is a `POST` with `Content-Type: application/json`, the Standard Webhooks headers\n\
         `webhook-id` (the same on every retry), `webhook-timestamp` and `webhook-signature`, and the body\n\
         `{\"type\", \"timestamp\", \"workspace\", \"data\"}`.\n\n\
         | Type | When | `data` |\n|---|---|---|\n",
    );
    for event in EVENTS {
        out.push_str(&format!("| `{}` | {} | {} |\n", event.name, event.when, event.data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_events_md_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
        let expected = markdown();
        if std::env::var_os("ANCHOR_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).expect("write docs/events.md");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(actual, expected, "docs/events.md is stale: run ANCHOR_UPDATE_DOCS=1 cargo test -p anchor-webhooks");
    }

    #[test]
    fn names_are_unique_and_dotted() {
        for (i, e) in EVENTS.iter().enumerate() {
            assert!(e.name.contains('.') && e.name == e.name.to_lowercase(), "{}", e.name);
            assert!(EVENTS[i + 1..].iter().all(|o| o.name != e.name), "{} twice", e.name);
        }
    }
}
