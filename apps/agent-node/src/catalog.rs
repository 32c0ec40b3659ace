//! What the node offers, with JSON Schemas (draft 2020-12) for the control
//! plane's discovery API.

use anchor_agentfield::{NodeFunction, NodeRegistration};
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

fn text(max: u32) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max})
}

const TICKET_ID: &str = "^tkt_[0-9a-z]{26}$";
const STATUSES: [&str; 6] = ["new", "triaged", "in_progress", "waiting_on_client", "resolved", "closed"];
use crate::reasoners::PRIORITIES;

pub(crate) fn skills() -> Vec<NodeFunction> {
    let ticket_output = json!({"type": "object", "required": ["ticket_id"], "properties": {"ticket_id": {"type": "string", "pattern": TICKET_ID}}});
    vec![
        NodeFunction {
            id: "ticket_create".into(),
            input_schema: skill_input(
                "ticket.create",
                json!({"type": "object", "additionalProperties": false, "required": ["title", "priority"],
                       "properties": {"title": text(200), "description": text(20000), "priority": {"enum": PRIORITIES},
                                      "asset_id": {"type": "string", "pattern": "^ast_[0-9a-z]{26}$"},
                                      "alert_id": {"type": "string", "pattern": "^alr_[0-9a-z]{26}$"}}}),
            ),
            output_schema: Some(ticket_output.clone()),
            tags: vec!["tickets".into(), "command".into()],
        },
        NodeFunction {
            id: "ticket_transition".into(),
            input_schema: skill_input(
                "ticket.transition",
                json!({"type": "object", "additionalProperties": false, "required": ["ticket_id", "to"],
                       "properties": {"ticket_id": {"type": "string", "pattern": TICKET_ID}, "to": {"enum": STATUSES}}}),
            ),
            output_schema: Some(ticket_output.clone()),
            tags: vec!["tickets".into(), "command".into()],
        },
        NodeFunction {
            id: "ticket_comment".into(),
            input_schema: skill_input(
                "ticket.comment",
                json!({"type": "object", "additionalProperties": false, "required": ["ticket_id", "body", "visibility"],
                       "properties": {"ticket_id": {"type": "string", "pattern": TICKET_ID}, "body": text(20000),
                                      "visibility": {"enum": ["internal", "public"]}}}),
            ),
            output_schema: Some(ticket_output.clone()),
            tags: vec!["tickets".into(), "command".into()],
        },
        NodeFunction {
            id: "ticket_resolve".into(),
            input_schema: skill_input(
                "ticket.resolve",
                json!({"type": "object", "additionalProperties": false, "required": ["ticket_id", "note"],
                       "properties": {"ticket_id": {"type": "string", "pattern": TICKET_ID}, "note": text(20000),
                                      "alert_id": {"type": "string", "pattern": "^alr_[0-9a-z]{26}$"}}}),
            ),
            output_schema: Some(ticket_output.clone()),
            tags: vec!["tickets".into(), "command".into(), "automation".into()],
        },
        NodeFunction {
            id: "ticket_reopen".into(),
            input_schema: skill_input(
                "ticket.reopen",
                json!({"type": "object", "additionalProperties": false, "required": ["ticket_id", "note"],
                       "properties": {"ticket_id": {"type": "string", "pattern": TICKET_ID}, "note": text(20000),
                                      "alert_id": {"type": "string", "pattern": "^alr_[0-9a-z]{26}$"}}}),
            ),
            output_schema: Some(ticket_output),
            tags: vec!["tickets".into(), "command".into(), "automation".into()],
        },
    ]
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
                    "ticket": {"type": ["object", "null"], "properties": {"status": {"enum": STATUSES}}}
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
