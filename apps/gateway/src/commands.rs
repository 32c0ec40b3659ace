//! Commands over HTTP: every command of the registry is a route made by
//! [`route`], with the same handler, the same answers and the same OpenAPI
//! operation shape. The handler authenticates, makes the authorization
//! decision for the command's permission, parses the body (with the target's
//! id from the path) into the command, and submits it through
//! [`anchor_commands::Desk`], the code the web pages use too. It answers as
//! api.md says: 202 with `Location`, or, with `Prefer: wait=N` (RFC 7240),
//! 200 with the finished execution.

use std::{collections::HashMap, path::Path as FsPath, sync::Arc, time::Duration};

use anchor_commands::{
    Command, Desk, DomainCommand, Receipt, SubmitError,
    authorize::{Asking, Denial, authorize},
    callback::CallbackKey,
    kit::{ArgsError, Spec},
};
use anchor_store::{
    Workspace,
    executions::{Actor, Execution},
};
use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::{Caller, Decision},
    idempotency,
    json::json_body,
    problem::Problem,
};

/// The command desk and the AgentField callback key, shared by the routes.
#[derive(Debug)]
pub struct CommandDesk {
    pub desk: Arc<Desk>,
    pub callbacks: CallbackKey,
}

impl CommandDesk {
    /// Loads (or creates) the installation's command and callback keys.
    pub fn load(db: anchor_store::Database, data_dir: &FsPath, request_timeout: Duration) -> anyhow::Result<Self> {
        let signer = Arc::new(anchor_commands::CommandSigner::load_or_create(data_dir)?);
        // Waits end before the request times out; a key stays in flight no
        // longer than a request can run.
        let max_wait = request_timeout.saturating_sub(Duration::from_secs(1));
        let desk = Desk::new(db, signer, max_wait, request_timeout + Duration::from_secs(30));
        Ok(Self { desk, callbacks: CallbackKey::load_or_create(data_dir)? })
    }
}

/// `Prefer: wait=N` (RFC 7240): the seconds asked for, if any.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("wait=").and_then(|n| n.trim().trim_matches('"').parse().ok()))
}

/// `202 {execution_id, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    #[schema(example = "exe_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    execution_id: String,
    /// `queued` (or where it got while the gateway waited).
    #[schema(example = "queued")]
    status: String,
}

/// An execution as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionView {
    #[schema(example = "exe_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `timeout`.
    #[schema(example = "succeeded")]
    status: String,
    #[schema(example = "ticket.create")]
    command: String,
    #[schema(value_type = Object)]
    input: Value,
    /// What the command did, e.g. `{"ticket_id": "tkt_..."}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    /// Why it did not succeed: `{"code", "message"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_id: Option<String>,
    agentfield: AgentFieldRef,
    /// Who asked.
    actor: Actor,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentFieldRef {
    execution_id: Option<String>,
    run_id: Option<String>,
}

/// Who did something, as the API shows it.
pub(crate) type ActorView = Actor;

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl From<Execution> for ExecutionView {
    fn from(e: Execution) -> Self {
        Self {
            id: e.id.to_string(),
            status: e.status.to_string(),
            command: e.command,
            input: e.input,
            result: e.result,
            error: e.error,
            evidence_id: e.evidence_id.map(|id| id.to_string()),
            agentfield: AgentFieldRef { execution_id: e.agentfield_execution_id, run_id: e.agentfield_run_id },
            actor: e.actor,
            created_at: rfc3339(e.created_at),
            completed_at: e.completed_at.map(rfc3339),
        }
    }
}

pub(crate) fn execution_location(workspace: &Workspace, id: anchor_domain::ExecutionId) -> String {
    format!("/api/v1/workspaces/{}/executions/{id}", workspace.slug())
}

/// The answer to an accepted command.
fn answer(receipt: Receipt, waited: Option<Duration>) -> Response {
    let location = execution_location(&receipt.workspace, receipt.execution.id);
    let location = HeaderValue::from_str(&location).expect("ascii");
    let mut response = if receipt.settled {
        (StatusCode::OK, [(header::LOCATION, location)], Json(ExecutionView::from(receipt.execution))).into_response()
    } else {
        let body = Accepted { execution_id: receipt.execution.id.to_string(), status: receipt.answered.to_string() };
        (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
    };
    if receipt.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else if let Some(wait) = waited.filter(|_| receipt.settled) {
        let applied = HeaderValue::from_str(&format!("wait={}", wait.as_secs())).expect("ascii");
        response.headers_mut().insert("preference-applied", applied);
    }
    response
}

/// The problem for a refused authorization.
pub(crate) fn denied(denial: Denial) -> Problem {
    match denial {
        Denial::NotAMember => Problem::workspace_forbidden(),
        Denial::Role { permission, .. } => Problem::permission_denied(permission.name()),
    }
}

/// The problem for a submission that was not accepted.
fn refused(error: SubmitError) -> Problem {
    match error {
        SubmitError::Denied(denial) => denied(denial),
        SubmitError::Refused(refusal) => Problem::new(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            &refusal.code,
            refusal.message,
        ),
        SubmitError::KeyInFlight => idempotency::in_flight(),
        SubmitError::KeyReused => idempotency::reused(),
        SubmitError::Unavailable(e) => Problem::from(e),
        SubmitError::Envelope(e) => {
            tracing::error!(error = %e, "cannot sign a command envelope");
            Problem::internal()
        }
    }
}

/// Where a command's target comes from: the `{id}` of its path, into the
/// command's `field`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) field: &'static str,
    /// What it is, for "no such ..." answers.
    pub(crate) what: &'static str,
}

/// The arguments of a command: the JSON body, with the target's id from the
/// path. A malformed id is a 404, as for any other object not in the
/// workspace.
fn arguments(spec: &Spec, target: Option<Target>, id: Option<&str>, body: Value) -> Result<Command, Problem> {
    let Value::Object(mut args) = body else {
        return Err(Problem::unprocessable("validation_failed", "", "the body must be a JSON object"));
    };
    if let (Some(target), Some(id)) = (target, id) {
        if args.contains_key(target.field) {
            let message = format!("{} comes from the path, not the body", target.field);
            return Err(Problem::unprocessable("validation_failed", &format!("/{}", target.field), message));
        }
        args.insert(target.field.to_owned(), Value::String(id.to_owned()));
    }
    spec.parse(Value::Object(args)).map_err(|ArgsError { path, message, .. }| match target {
        Some(target) if path == format!("/{}", target.field) => {
            Problem::not_found(format!("no {} {:?} in this workspace", target.what, id.unwrap_or_default()))
        }
        _ => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("the body is not a valid request: {message}"),
        )
        .with_errors(vec![crate::problem::FieldError { path, message }]),
    })
}

/// Submits command `C` for the caller; see the module documentation.
#[allow(clippy::too_many_arguments)]
async fn submit<C: DomainCommand>(
    route: &str,
    target: Option<Target>,
    caller: Caller,
    state: AppState,
    params: HashMap<String, String>,
    decision: Option<Extension<Decision>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let asking = Asking { who: caller.subject(), audit: &caller.audit, route };
    let ws = params.get("ws").map(String::as_str).unwrap_or_default();
    let grant = authorize(&state.db, asking, ws, C::PERMISSION).await?.map_err(denied)?;
    if let Some(Extension(decision)) = decision {
        decision.made(C::PERMISSION.name());
    }
    let key = idempotency::key_of(&headers)?;
    let spec = Spec::of::<C>();
    // A command that needs nothing beyond its target (archive) may come
    // without a body.
    let args = if body.is_empty() { Value::Object(Default::default()) } else { json_body(&headers, &body)? };
    let command = arguments(&spec, target, params.get("id").map(String::as_str), args)?;
    let wait = preferred_wait(&headers).map(Duration::from_secs).map(|w| w.min(state.commands.desk.max_wait()));
    let receipt = state
        .commands
        .desk
        .submit(&grant, command, Some(&key), wait.filter(|w| !w.is_zero()))
        .await
        .map_err(refused)?;
    Ok(answer(receipt, wait))
}

/// The route of command `C` at `method path` (`post` or `patch`; the
/// path's `{id}`, if any, is the command's `target`): the axum method router
/// and the OpenAPI operation.
pub(crate) fn route<C: DomainCommand>(
    method: &'static str,
    path: &'static str,
    target: Option<Target>,
) -> (MethodRouter<AppState>, Value) {
    let audit_route: Arc<str> = format!("{} {path}", method.to_uppercase()).into();
    let handler = move |caller: Caller,
                        State(state): State<AppState>,
                        Path(params): Path<HashMap<String, String>>,
                        decision: Option<Extension<Decision>>,
                        headers: HeaderMap,
                        body: Bytes| async move {
        submit::<C>(&audit_route, target, caller, state, params, decision, headers, body).await
    };
    let filter = if method == "patch" { MethodFilter::PATCH } else { MethodFilter::POST };
    (on(filter, handler), operation(&Spec::of::<C>(), target))
}

/// The tag of an entity's operations: its name in the plural, in words
/// (`ticket` -> `tickets`, `time_entry` -> `time entries`).
fn tag_of(entity: &str) -> String {
    let words = entity.replace('_', " ");
    match words.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{words}s"),
    }
}

/// The OpenAPI operation of a command route.
fn operation(spec: &Spec, target: Option<Target>) -> Value {
    let (entity, verb) = spec.name.split_once('.').unwrap_or((spec.name, ""));
    let mut body = serde_json::to_value(spec.args_schema()).expect("a schema serialises");
    let object = body.as_object_mut().expect("an object schema");
    object.remove("$schema");
    let mut parameters = vec![json!({"name": "ws", "in": "path", "required": true,
                                     "description": "Workspace slug", "schema": {"type": "string"}})];
    if let Some(target) = target {
        if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove(target.field);
        }
        if let Some(required) = object.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| r != target.field);
        }
        for example in object.get_mut("examples").and_then(Value::as_array_mut).into_iter().flatten() {
            example.as_object_mut().map(|e| e.remove(target.field));
        }
        parameters.push(json!({"name": "id", "in": "path", "required": true,
                               "description": format!("The {}'s id", target.what), "schema": {"type": "string"}}));
    }
    parameters.push(json!({"name": "Prefer", "in": "header", "required": false,
                           "description": "`wait=N` (N <= 30): answer with the finished execution if it finishes in time",
                           "schema": {"type": "string"}}));
    let mut responses = json!({
        "202": {"description": "Accepted: the command is queued as an execution",
                "headers": {"Location": {"description": "The execution's URL", "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
        "200": {"description": "Finished within `Prefer: wait`",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecutionView"}}}},
    });
    let needs_body = body.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
    let mut refusals: Vec<(u16, String)> =
        spec.refusals.iter().map(|k| (k.status, format!("`{}`: {}", k.code, k.when))).collect();
    if let Some(target) = target {
        refusals.push((404, format!("no such {}", target.what)));
    }
    for status in refusals.iter().map(|(s, _)| *s).collect::<std::collections::BTreeSet<_>>() {
        let said: Vec<&str> = refusals.iter().filter(|(s, _)| *s == status).map(|(_, w)| w.as_str()).collect();
        responses[status.to_string()] = crate::routes::problem_response(&said.join("; "));
    }
    json!({
        "tags": [tag_of(entity)],
        "summary": spec.summary,
        "description": format!("A command (`{}`): answered 202 with its execution, which the agent node's `{}` skill performs.", spec.name, spec.skill),
        "operationId": format!("{verb}_{entity}"),
        "parameters": parameters,
        "requestBody": {"required": needs_body, "content": {"application/json": {"schema": body}}},
        "responses": responses,
        "security": [{"bearer": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_entities_in_the_plural() {
        assert_eq!(tag_of("ticket"), "tickets");
        assert_eq!(tag_of("time_entry"), "time entries");
    }

    #[test]
    fn prefer_wait_is_found_among_other_preferences() {
        let mut headers = HeaderMap::new();
        assert_eq!(preferred_wait(&headers), None);
        headers.insert("prefer", HeaderValue::from_static("respond-async, wait=10"));
        assert_eq!(preferred_wait(&headers), Some(10));
        headers.insert("prefer", HeaderValue::from_static("handling=lenient; wait=\"5\""));
        assert_eq!(preferred_wait(&headers), Some(5));
        headers.insert("prefer", HeaderValue::from_static("wait=soon"));
        assert_eq!(preferred_wait(&headers), None, "an invalid preference is ignored");
    }
}
