//! What crosses from the gateway to a skill: the command, who asked, where,
//! and the gateway's signed envelope over all of it.

use anchor_domain::ExecutionId;
use anchor_store::executions::Actor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The issuer of Anchor's own automation: it acts through the same
/// commands, envelopes and skills as people do, with a technician's
/// ticket permissions. No token issuer can take this name (configuration
/// refuses `urn:anchor:` issuers).
pub const SYSTEM_ISSUER: &str = "urn:anchor:system";

/// The bare input an agent node's skill receives (through AgentField).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandInput {
    pub execution_id: ExecutionId,
    pub workspace: String,
    pub actor: Actor,
    pub command: String,
    pub args: Value,
    pub envelope: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Command, tickets::TicketCreate};

    #[test]
    fn commands_round_trip_through_name_and_args() {
        let create = Command::parse("ticket.create", json!({"title": " Printer ", "priority": "p2"})).expect("ok");
        assert_eq!(create.name(), "ticket.create");
        assert_eq!(create.skill(), "ticket_create");
        assert_eq!(create.args(), json!({"title": "Printer", "priority": "p2"}));
        assert_eq!(Command::parse(create.name(), create.args()).expect("again"), create);
        assert_eq!(create.downcast::<TicketCreate>().expect("a TicketCreate").title.as_str(), "Printer");
        assert_eq!(crate::registry::for_skill("ticket_comment").map(|s| s.name), Some("ticket.comment"));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = Command::parse("ticket.create", json!({"title": "x", "priority": "p9"})).expect_err("bad");
        assert!(err.to_string().contains("p9"), "{err}");
        assert_eq!(err.path, "/priority");
        let err =
            Command::parse("ticket.create", json!({"title": "x", "priority": "p1", "extra": 1})).expect_err("bad");
        assert!(err.to_string().contains("extra"), "{err}");
        let err = Command::parse("ticket.delete", json!({})).expect_err("unknown");
        assert!(err.to_string().contains("unknown command"), "{err}");
    }
}
