//! What the node offers, with JSON Schemas (draft 2020-12) for the control
//! plane's discovery API.

use anchor_agentfield::{NodeFunction, NodeRegistration};
use anchor_commands::registry;
use anchor_domain::TicketStatus;
use serde_json::{Value, json};

/// The envelope-carrying input every skill takes; `args` is the command's.
fn skill_input(command: &str, args: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["execution_id", "workspace", "actor", "command", "args", "envelope"],
        "properties": {
            "execution_id": {"type": "string", "pattern": "^exe_[0-9a-z]{26}$"},
            "workspace": {"type": "string"},
            "actor": {
                "type": "object", "additionalProperties": false, "required": ["issuer", "subject"],
                "properties": {"issuer": {"type": "string"}, "subject": {"type": "string"}}
            },
            "command": {"const": command},
            "args": args,
            "envelope": {"type": "string", "description": "the gateway's signed command envelope (compact JWS)"}
        }
    })
}

use crate::reasoners::PRIORITIES;

/// One skill per registered command, its schemas generated from the
/// command's types.
pub(crate) fn skills() -> Vec<NodeFunction> {
    registry::COMMANDS
        .iter()
        .map(|spec| {
            let mut args = serde_json::to_value(spec.args_schema()).expect("a schema serialises");
            if let Some(args) = args.as_object_mut() {
                args.remove("$schema");
            }
            let entity = format!("{}s", spec.name.split('.').next().unwrap_or_default());
            let tags = [entity.as_str(), "command"].into_iter().chain(spec.tags.iter().copied()).map(str::to_owned);
            NodeFunction {
                id: spec.skill.to_owned(),
                input_schema: skill_input(spec.name, args),
                output_schema: Some(serde_json::to_value(spec.output_schema()).expect("a schema serialises")),
                tags: tags.collect(),
            }
        })
        .collect()
}

pub(crate) fn reasoners() -> Vec<NodeFunction> {
    vec![
        NodeFunction {
            id: "ticket_triage".into(),
            input_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object", "required": ["title"],
                "properties": {"title": {"type": "string"}, "description": {"type": "string"}}
            }),
            output_schema: Some(json!({
                "type": "object", "required": ["priority", "category", "reasons"],
                "properties": {
                    "priority": {"enum": PRIORITIES},
                    "category": {"enum": crate::reasoners::CATEGORIES},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "refined_by": {"type": "string", "description": "the language model that refined the rules, when one did"}
                }
            })),
            tags: vec!["tickets".into(), "rules".into()],
        },
        NodeFunction {
            id: "triage_alert".into(),
            input_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object", "required": ["transition", "alert"],
                "properties": {
                    "transition": {"enum": ["opened", "reopened", "resolved"]},
                    "alert": {"type": "object", "required": ["severity", "summary", "state"],
                              "properties": {"state": {"enum": ["open", "resolved"]}}},
                    "ticket": {"type": ["object", "null"], "properties": {"status": {"enum": TicketStatus::ALL.map(TicketStatus::as_str)}}}
                }
            }),
            output_schema: Some(json!({
                "type": "object", "required": ["action", "reasons"],
                "properties": {
                    "action": {"enum": ["open_ticket", "resolve_ticket", "reopen_ticket", "none"]},
                    "priority": {"enum": PRIORITIES},
                    "title": {"type": "string"},
                    "note": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}}
                }
            })),
            tags: vec!["alerts".into(), "rules".into()],
        },
    ]
}

/// The registration document; a fresh `instance_id` per process.
pub(crate) fn registration(node_id: &str, base_url: &str) -> NodeRegistration {
    use rand::Rng;
    NodeRegistration {
        id: node_id.to_owned(),
        base_url: base_url.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        instance_id: format!("{:032x}", rand::rng().random::<u128>()),
        reasoners: reasoners(),
        skills: skills(),
        communication_config: json!({"protocols": ["http"], "heartbeat_interval": "10s"}),
        metadata: json!({"product": "anchor", "role": "agent-node"}),
    }
}
