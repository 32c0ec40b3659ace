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

/// A business calendar as sent (`POST` and `PUT .../calendars`).
pub(crate) struct CalendarDocument;

impl PartialSchema for CalendarDocument {
    fn schema() -> RefOr<Schema> {
        let wall = serde_json::json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$",
                                      "description": "Local wall time, HH:MM; 24:00 ends a day."});
        let window = serde_json::json!({"type": "object", "additionalProperties": false, "required": ["start", "end"],
                                        "properties": {"start": wall, "end": wall}});
        let day = serde_json::json!({"type": "array", "items": window,
                                     "description": "Opening windows, in order, not overlapping."});
        let days: serde_json::Map<String, serde_json::Value> =
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
                .iter()
                .map(|d| ((*d).to_owned(), day.clone()))
                .collect();
        let date = serde_json::json!({"type": "string", "format": "date"});
        let name = serde_json::json!({"type": ["string", "null"], "maxLength": 200});
        let holiday = serde_json::json!({"oneOf": [
            {"title": "Date", "type": "object", "additionalProperties": false, "required": ["kind", "date"],
             "properties": {"kind": {"type": "string", "enum": ["date"]}, "date": date, "name": name}},
            {"title": "Range", "type": "object", "additionalProperties": false, "required": ["kind", "from", "to"],
             "properties": {"kind": {"type": "string", "enum": ["range"]}, "from": date, "to": date, "name": name}},
            {"title": "Yearly", "type": "object", "additionalProperties": false, "required": ["kind", "month", "day"],
             "properties": {"kind": {"type": "string", "enum": ["yearly"]},
                            "month": {"type": "integer", "minimum": 1, "maximum": 12},
                            "day": {"type": "integer", "minimum": 1, "maximum": 31}, "name": name}}
        ]});
        let document = serde_json::json!({
            "description": "Working hours in a time zone and the days off. Deadlines count only the time inside the windows.",
            "type": "object", "additionalProperties": false, "required": ["name", "time_zone", "week"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"},
                "time_zone": {"type": "string", "description": "IANA time zone, e.g. `Europe/Berlin`."},
                "week": {"type": "object", "additionalProperties": false, "properties": days},
                "holidays": {"type": "array", "items": holiday}
            },
            "example": crate::routes::service_policies::calendar_example()
        });
        RefOr::T(serde_json::from_value(document).expect("a valid schema"))
    }
}

impl ToSchema for CalendarDocument {
    fn name() -> Cow<'static, str> {
        "CalendarBody".into()
    }
}

/// An SLA policy as sent (`POST` and `PUT .../sla-policies`).
pub(crate) struct SlaPolicyDocument;

impl PartialSchema for SlaPolicyDocument {
    fn schema() -> RefOr<Schema> {
        let minutes = serde_json::json!({"type": ["integer", "null"], "minimum": 0, "maximum": anchor_sla::MAX_TARGET_MINUTES,
                                         "description": "Business minutes; absent or null: no target."});
        let targets = serde_json::json!({"type": "object", "additionalProperties": false,
            "properties": {"first_response_minutes": minutes, "next_update_minutes": minutes, "resolution_minutes": minutes}});
        let document = serde_json::json!({
            "description": "Targets per priority in business time over a calendar, when to warn, and which statuses pause the clocks.",
            "type": "object", "additionalProperties": false, "required": ["name", "calendar_id", "targets"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"},
                "calendar_id": {"type": "string", "description": "The calendar whose hours the targets count."},
                "default": {"type": "boolean", "description": "Make it the workspace's default policy."},
                "targets": {"type": "object", "additionalProperties": false,
                            "properties": {"p1": targets, "p2": targets, "p3": targets, "p4": targets}},
                "warning_percent": {"type": "integer", "minimum": 1, "maximum": 99,
                                    "description": "Warn when this share of a target is used (default 80)."},
                "pausing_statuses": {"type": "array", "description": "Statuses in which the clocks stop (a repeated one counts once).",
                                     "items": {"type": "string", "enum": ["new", "triaged", "in_progress", "waiting_on_client"]}},
                "on_reopen": {"type": "string", "enum": ["resume", "restart"],
                              "description": "A reopened ticket's resolution clock resumes where it stopped, or starts again."}
            },
            "example": {"name": "Business hours", "calendar_id": "cal_00000000000000000000000001",
                        "targets": {"p1": {"first_response_minutes": 30, "resolution_minutes": 240},
                                    "p3": {"first_response_minutes": 240, "resolution_minutes": 1440}},
                        "pausing_statuses": ["waiting_on_client"]}
        });
        RefOr::T(serde_json::from_value(document).expect("a valid schema"))
    }
}

impl ToSchema for SlaPolicyDocument {
    fn name() -> Cow<'static, str> {
        "SlaPolicyBody".into()
    }
}

/// A queue as sent (`POST` and `PUT .../queues`).
pub(crate) struct QueueDocument;

impl PartialSchema for QueueDocument {
    fn schema() -> RefOr<Schema> {
        let person = serde_json::json!({"type": "object", "additionalProperties": false, "required": ["issuer", "subject"],
            "properties": {"issuer": {"type": "string", "minLength": 1, "maxLength": 500},
                           "subject": {"type": "string", "minLength": 1, "maxLength": 255}}});
        let document = serde_json::json!({
            "description": "A queue: a team's inbox, with the SLA policy of its tickets and the staff who work it.",
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"},
                "description": {"type": "string", "maxLength": 2000},
                "sla_policy_id": {"type": ["string", "null"], "pattern": "^slp_[0-7][0-9a-hjkmnp-tv-z]{25}$",
                                  "description": "The SLA policy of tickets in the queue; the workspace default when absent."},
                "members": {"type": "array", "maxItems": 200, "items": person,
                            "description": "Staff of the workspace who work the queue."}
            },
            "example": {"name": "Service desk", "description": "First line", "members": [
                {"issuer": "https://id.example.com", "subject": "tess"}]}
        });
        RefOr::T(serde_json::from_value(document).expect("a valid schema"))
    }
}

impl ToSchema for QueueDocument {
    fn name() -> Cow<'static, str> {
        "QueueBody".into()
    }
}

/// A saved ticket view as sent (`POST` and `PUT .../ticket-views`).
pub(crate) struct TicketViewDocument;

impl PartialSchema for TicketViewDocument {
    fn schema() -> RefOr<Schema> {
        let document = serde_json::json!({
            "description": "A saved view of the ticket list: a name and the list's query string.",
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"},
                "query": {"type": "string", "maxLength": 2000,
                          "description": "The ticket list's parameters (`status`, `priority`, `contact_id`, `site_id`, `sla_state`, `queue_id`, `assignee`, `tag`, `q`, `created_after`, `created_before`, `updated_after`, `updated_before`, `sort`), as a query string; checked as the list checks them."},
                "shared": {"type": "boolean", "description": "Seen by every member of staff (default: only its owner)."}
            },
            "example": {"name": "My open P1s", "query": "assignee=me&priority=p1&sort=sla_due", "shared": false}
        });
        RefOr::T(serde_json::from_value(document).expect("a valid schema"))
    }
}

impl ToSchema for TicketViewDocument {
    fn name() -> Cow<'static, str> {
        "TicketViewBody".into()
    }
}

/// A document type whose OpenAPI schema is the JSON Schema that schemars
/// writes for a type (the one the command kit and the pages use too).
macro_rules! schemars_document {
    ($($(#[$doc:meta])* $name:ident = $ty:ty, $title:literal;)+) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let mut schema =
                    serde_json::to_value(anchor_commands::kit::schema_of::<$ty>()).expect("a schema serialises");
                if let Some(object) = schema.as_object_mut() {
                    object.remove("$schema");
                }
                serde_json::from_value(schema).expect("a valid schema")
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                $title.into()
            }
        }
    )+};
}

schemars_document!(
    /// An asset type as sent (`PUT .../asset-types/{key}`): the schema of
    /// [`anchor_domain::asset::AssetTypeInput`], as the command kit writes it.
    AssetTypeDocument = anchor_domain::asset::AssetTypeInput, "AssetTypeBody";
    /// The billing profile as sent and answered (`.../billing/profile`): the
    /// schema of [`anchor_store::invoices::BillingProfile`], parties included.
    BillingProfileDocument = anchor_store::invoices::BillingProfile, "BillingProfile";
    /// What a billing run for a period would make (`.../billing/runs/preview`).
    BillingPlanDocument = anchor_commands::billing::Plan, "BillingPlan";
);
