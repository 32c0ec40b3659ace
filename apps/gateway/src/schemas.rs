//! Schema-only types: the document's exact description of values that
//! handlers read as text and check themselves (so that their refusals keep
//! their own codes). Each lists what is accepted, so that a client (or a
//! contract test) can tell a valid request from an invalid one without
//! asking.

use std::borrow::Cow;

use anchor_domain::{Role, vocabulary::openapi_string};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, schema::Schema},
};

/// A role a workspace membership can carry.
#[derive(Debug)]
pub(crate) struct WorkspaceRole;

impl PartialSchema for WorkspaceRole {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = Role::WORKSPACE.iter().map(|r| r.as_str()).collect();
        openapi_string(Some(&names), None)
    }
}

impl ToSchema for WorkspaceRole {
    fn name() -> Cow<'static, str> {
        "WorkspaceRole".into()
    }
}

/// An event type of the catalogue (`docs/events.md`).
#[derive(Debug)]
pub(crate) struct EventType;

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = crate::events::catalogue().iter().map(|e| e.name).collect();
        openapi_string(Some(&names), None)
    }
}

impl ToSchema for EventType {
    fn name() -> Cow<'static, str> {
        "EventType".into()
    }
}

/// An alert rule as sent: one shape per kind (what `check_rule` accepts).
#[derive(Debug)]
pub(crate) struct RuleDocument;

impl PartialSchema for RuleDocument {
    fn schema() -> RefOr<Schema> {
        let common = |kind: &str| {
            serde_json::json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                "kind": {"type": "string", "enum": [kind]},
                "duration_secs": {"type": "integer", "minimum": 0, "maximum": 604800,
                                  "description": "How long the condition must hold (and be clear) before the alert opens (resolves)."},
                "severity": {"type": "string", "enum": ["critical", "warning", "info"],
                             "description": "`critical` (automation opens a ticket), `warning`, `info`."},
                "enabled": {"type": "boolean"}
            })
        };
        let mut metric = common("metric");
        metric["metric"] = serde_json::json!({"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S",
                                              "description": "The metric's name, e.g. `disk.used_percent`."});
        metric["comparison"] = serde_json::json!({"type": "string", "enum": [">", ">=", "<", "<="]});
        metric["threshold"] = serde_json::json!({"type": "number", "minimum": -1e15, "maximum": 1e15});
        let shape = |properties: serde_json::Value, required: &[&str], title: &str| {
            serde_json::json!({"title": title, "type": "object", "additionalProperties": false,
                               "properties": properties, "required": required})
        };
        let document = serde_json::json!({
            "description": "An alert rule: over a metric, over a check's result, or over an agent's silence.",
            "oneOf": [
                shape(metric, &["name", "kind", "metric", "comparison", "threshold", "severity"], "Metric rule"),
                shape(common("check"), &["name", "kind", "severity"], "Check rule"),
                shape(common("agent_offline"), &["name", "kind", "severity"], "Agent offline rule"),
            ],
            "example": {"name": "CPU saturated", "kind": "metric", "metric": "cpu.usage_percent", "comparison": ">=",
                        "threshold": 95, "duration_secs": 600, "severity": "warning"}
        });
        serde_json::from_value(document).expect("a valid schema")
    }
}

impl ToSchema for RuleDocument {
    fn name() -> Cow<'static, str> {
        "RuleBody".into()
    }
}
