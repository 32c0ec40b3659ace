//! The node's HTTP surface, as the control plane calls it.

use std::sync::Arc;

use anchor_store::executions::AgentFieldRun;
use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{NodeState, reasoners};

type Shared = Arc<NodeState>;

pub(crate) fn router(state: Shared) -> Router {
    let functions = Router::new()
        .route("/reasoners/{name}", post(reasoner))
        .route("/skills/{name}", post(skill))
        .route("/_internal/executions/{id}/cancel", post(cancel))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), internal_token));
    Router::new().route("/status", get(status)).merge(functions).with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// Only the control plane calls reasoners and skills: its internal token.
async fn internal_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    use subtle::ConstantTimeEq;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(state.internal_token.expose_secret().as_bytes())) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "the control plane's internal token is required");
    }
    next.run(req).await
}

async fn status(State(state): State<Shared>) -> Json<Value> {
    Json(json!({"status": "running", "node_id": state.node_id, "version": env!("CARGO_PKG_VERSION")}))
}

async fn reasoner(State(state): State<Shared>, Path(name): Path<String>, body: Option<Json<Value>>) -> Response {
    let input = body.map(|Json(v)| v).unwrap_or(Value::Null);
    match name.as_str() {
        "ticket_triage" => match serde_json::from_value::<reasoners::TriageInput>(input) {
            Ok(input) => {
                let rules = reasoners::triage(&input);
                match &state.refiner {
                    Some(refiner) => Json(refiner.refine(&input, rules).await).into_response(),
                    None => Json(rules).into_response(),
                }
            }
            Err(e) => error(StatusCode::BAD_REQUEST, "invalid_input", &e.to_string()),
        },
        "triage_alert" => match serde_json::from_value::<reasoners::AlertInput>(input) {
            Ok(input) => Json(reasoners::triage_alert(&input)).into_response(),
            Err(e) => error(StatusCode::BAD_REQUEST, "invalid_input", &e.to_string()),
        },
        _ => error(StatusCode::NOT_FOUND, "unknown_reasoner", &format!("this node has no reasoner {name}")),
    }
}

async fn skill(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(input)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_input", "the body must be a JSON object");
    };
    // The control plane names its execution and run (agentfield.md,
    // "Invocation"); the skill records them with the outcome.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let target = format!("{}.{name}", state.node_id);
    let run = match (header("x-execution-id"), header("x-run-id")) {
        (Some(execution_id), Some(run_id)) => Some(AgentFieldRun { execution_id, run_id, target: &target }),
        _ => None,
    };
    let answer = anchor_commands::skill::perform(&state.db, &state.verifier, &name, input, run).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

/// Skills finish within one database transaction; there is nothing running
/// to interrupt, so a cancel request is acknowledged and changes nothing.
async fn cancel(Path(id): Path<String>) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"execution_id": id, "cancelled": false, "reason": "skills run to completion in one transaction"})),
    )
        .into_response()
}
