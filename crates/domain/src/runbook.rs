//! Runbooks: the steps people follow for a kind of problem, versioned. A
//! step is text to follow, a box to tick, or a command to run through
//! AgentField (with placeholders filled from what the run is about).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most steps a runbook has.
pub const MAX_STEPS: usize = 50;
/// The longest a step's text is, in characters.
pub const MAX_TEXT: usize = 2000;

/// The values a command step's arguments may name, filled from the run:
/// `{ticket_id}`, `{asset_id}`, `{alert_id}`.
pub const PLACEHOLDERS: [&str; 3] = ["ticket_id", "asset_id", "alert_id"];

/// One step of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunbookStep {
    /// Something to read and do.
    Text { text: String },
    /// A box to tick when done.
    Check { text: String },
    /// A domain command run through AgentField (its own execution, with its
    /// signed evidence). String arguments `{ticket_id}`, `{asset_id}` and
    /// `{alert_id}` are replaced by the run's.
    Command {
        text: String,
        /// A command's name, e.g. `asset.tag`.
        command: String,
        #[schema(value_type = Object)]
        args: Value,
    },
}

impl RunbookStep {
    pub fn text(&self) -> &str {
        match self {
            RunbookStep::Text { text } | RunbookStep::Check { text } | RunbookStep::Command { text, .. } => text,
        }
    }
}

/// A problem with a runbook's steps, at a JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub path: String,
    pub message: String,
}

/// Checks steps: 1 to [`MAX_STEPS`], each text 1 to [`MAX_TEXT`]
/// characters, each command known (`known`) with object arguments.
pub fn check_steps(steps: &[RunbookStep], known: impl Fn(&str) -> bool) -> Result<(), Vec<StepError>> {
    let mut errors = Vec::new();
    if steps.is_empty() || steps.len() > MAX_STEPS {
        errors.push(StepError { path: "/steps".into(), message: format!("a runbook has 1 to {MAX_STEPS} steps") });
    }
    for (i, step) in steps.iter().enumerate() {
        let length = step.text().trim().chars().count();
        if length == 0 || step.text().chars().count() > MAX_TEXT {
            errors.push(StepError {
                path: format!("/steps/{i}/text"),
                message: format!("a step's text is 1 to {MAX_TEXT} characters"),
            });
        }
        if let RunbookStep::Command { command, args, .. } = step {
            if !known(command) {
                errors.push(StepError {
                    path: format!("/steps/{i}/command"),
                    message: format!("Anchor has no command {command:?}"),
                });
            }
            if !args.is_object() {
                errors.push(StepError {
                    path: format!("/steps/{i}/args"),
                    message: "a command's arguments are an object".into(),
                });
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// `args` with every string that names a placeholder (`"{ticket_id}"`, or
/// text holding it) filled from `values`; a placeholder without a value is
/// left as it is (the command then refuses it).
pub fn fill(args: &Value, values: &[(&str, Option<String>)]) -> Value {
    match args {
        Value::String(text) => {
            let mut out = text.clone();
            for (name, value) in values {
                if let Some(value) = value {
                    out = out.replace(&format!("{{{name}}}"), value);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, values)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), fill(v, values))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_are_checked_and_placeholders_filled() {
        let steps: Vec<RunbookStep> = serde_json::from_value(json!([
            {"kind": "text", "text": "Look at the disk"},
            {"kind": "check", "text": ""},
            {"kind": "command", "text": "Tag it", "command": "asset.tag", "args": {"asset_id": "{asset_id}", "add": ["disk-full"]}},
            {"kind": "command", "text": "Nope", "command": "rm.rf", "args": []},
        ]))
        .expect("steps");
        let errors = check_steps(&steps, |c| c == "asset.tag").expect_err("problems");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/steps/1/text", "/steps/3/command", "/steps/3/args"]);
        let RunbookStep::Command { args, .. } = &steps[2] else { panic!("a command") };
        let filled = fill(args, &[("asset_id", Some("ast_1".into())), ("ticket_id", None)]);
        assert_eq!(filled, json!({"asset_id": "ast_1", "add": ["disk-full"]}));
        assert!(serde_json::from_value::<RunbookStep>(json!({"kind": "video", "text": "x"})).is_err());
    }
}
