//! The domain commands, their arguments (parsed into domain types, so an
//! invalid command cannot be represented), the skill that performs each, and
//! the input the agent node receives.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    AlertId, AssetId, CommentVisibility, ExecutionId, Priority, TicketId, TicketStatus, TicketText, TicketTitle,
};
use anchor_store::executions::Actor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Open a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketCreate {
    pub title: TicketTitle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<TicketText>,
    pub priority: Priority,
    /// The machine it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
    /// The alert it was opened for (automation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Move a ticket along its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTransition {
    pub ticket_id: TicketId,
    pub to: TicketStatus,
}

/// Resolve a ticket from wherever it is in its lifecycle, with a note
/// (automation, when the alert it was opened for recovers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketResolve {
    pub ticket_id: TicketId,
    pub note: TicketText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Reopen a resolved ticket, with a note (automation, when the alert it was
/// opened for comes back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketReopen {
    pub ticket_id: TicketId,
    pub note: TicketText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
}

/// Comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketComment {
    pub ticket_id: TicketId,
    pub body: TicketText,
    pub visibility: CommentVisibility,
}

/// A domain command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    TicketCreate(TicketCreate),
    TicketTransition(TicketTransition),
    TicketComment(TicketComment),
    TicketResolve(TicketResolve),
    TicketReopen(TicketReopen),
}

/// Every command: (name, skill that performs it, permission it needs).
pub const COMMANDS: [(&str, &str, Permission); 5] = [
    ("ticket.create", "ticket_create", Permission::TicketsWrite),
    ("ticket.transition", "ticket_transition", Permission::TicketsWrite),
    ("ticket.comment", "ticket_comment", Permission::TicketsWrite),
    ("ticket.resolve", "ticket_resolve", Permission::TicketsWrite),
    ("ticket.reopen", "ticket_reopen", Permission::TicketsWrite),
];

/// The issuer of Anchor's own automation: it acts through the same
/// commands, envelopes and skills as people do, with a technician's
/// ticket permissions. No token issuer can take this name (configuration
/// refuses `urn:anchor:` issuers).
pub const SYSTEM_ISSUER: &str = "urn:anchor:system";

impl Command {
    fn index(&self) -> usize {
        match self {
            Self::TicketCreate(_) => 0,
            Self::TicketTransition(_) => 1,
            Self::TicketComment(_) => 2,
            Self::TicketResolve(_) => 3,
            Self::TicketReopen(_) => 4,
        }
    }

    /// `ticket.create`, ...
    pub fn name(&self) -> &'static str {
        COMMANDS[self.index()].0
    }

    /// The agent node skill that performs it.
    pub fn skill(&self) -> &'static str {
        COMMANDS[self.index()].1
    }

    /// What the actor must be allowed to do, checked by the gateway when it
    /// accepts and by the skill when it acts.
    pub fn permission(&self) -> Permission {
        COMMANDS[self.index()].2
    }

    /// The arguments as JSON (what the execution's `input` shows).
    pub fn args(&self) -> Value {
        let args = match self {
            Self::TicketCreate(a) => serde_json::to_value(a),
            Self::TicketTransition(a) => serde_json::to_value(a),
            Self::TicketComment(a) => serde_json::to_value(a),
            Self::TicketResolve(a) => serde_json::to_value(a),
            Self::TicketReopen(a) => serde_json::to_value(a),
        };
        args.expect("command arguments serialise")
    }

    /// Parses a command from its name and JSON arguments.
    pub fn parse(name: &str, args: Value) -> Result<Self, String> {
        let parsed = match name {
            "ticket.create" => serde_json::from_value(args).map(Self::TicketCreate),
            "ticket.transition" => serde_json::from_value(args).map(Self::TicketTransition),
            "ticket.comment" => serde_json::from_value(args).map(Self::TicketComment),
            "ticket.resolve" => serde_json::from_value(args).map(Self::TicketResolve),
            "ticket.reopen" => serde_json::from_value(args).map(Self::TicketReopen),
            other => return Err(format!("unknown command {other:?}")),
        };
        parsed.map_err(|e| format!("invalid arguments for {name}: {e}"))
    }

    /// The command a skill performs, for the skill's name.
    pub fn for_skill(skill: &str) -> Option<&'static str> {
        COMMANDS.iter().find(|(_, s, _)| *s == skill).map(|(name, _, _)| *name)
    }
}

/// The bare input an agent node's skill receives (through AgentField): the
/// command, who asked, where, and the gateway's signed envelope over all of it.
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

    use super::*;

    #[test]
    fn commands_round_trip_through_name_and_args() {
        let create = Command::parse("ticket.create", json!({"title": " Printer ", "priority": "p2"})).expect("ok");
        assert_eq!(create.name(), "ticket.create");
        assert_eq!(create.skill(), "ticket_create");
        assert_eq!(create.args(), json!({"title": "Printer", "priority": "p2"}));
        assert_eq!(Command::parse(create.name(), create.args()).expect("again"), create);
        assert_eq!(Command::for_skill("ticket_comment"), Some("ticket.comment"));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = Command::parse("ticket.create", json!({"title": "x", "priority": "p9"})).expect_err("bad");
        assert!(err.contains("p9"), "{err}");
        let err =
            Command::parse("ticket.create", json!({"title": "x", "priority": "p1", "extra": 1})).expect_err("bad");
        assert!(err.contains("extra"), "{err}");
        assert!(Command::parse("ticket.delete", json!({})).expect_err("unknown").contains("unknown command"));
    }
}
