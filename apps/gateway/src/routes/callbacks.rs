//! Inbound callbacks: AgentField's execution webhooks.

use anchor_commands::callback::{self, CallbackError, Delivery};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::SignedRequest,
    commands::rfc3339,
    problem::{Problem, ProblemDocument},
};

/// The receipt of an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReceiptView {
    #[schema(example = "rcp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    receipt_id: String,
    /// When the delivery was first accepted.
    received_at: String,
    /// `true`: this delivery had been accepted before; nothing happened now.
    replay: bool,
    /// What the first acceptance did.
    #[schema(value_type = Object)]
    outcome: serde_json::Value,
}

/// AgentField execution webhook. Signed with `X-AgentField-Signature:
/// sha256=<hex>` under the execution's own secret; verified before the body
/// is parsed; deduplicated on AgentField's execution id and event.
#[utoipa::path(post, path = "/api/v1/callbacks/agentfield", tag = "callbacks",
    params(("X-AgentField-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body>"),
           ("X-Anchor-Workspace" = String, Header, description = "As registered with the execution"),
           ("X-Anchor-Execution" = String, Header, description = "As registered with the execution")),
    request_body(content = Object, description = "AgentField's execution webhook payload"),
    responses(
        (status = 200, body = ReceiptView),
        (status = 401, description = "The signature does not verify", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Not an execution webhook", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn agentfield(
    _: SignedRequest,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptView>, Problem> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        workspace: header(callback::WORKSPACE_HEADER),
        execution: header(callback::EXECUTION_HEADER),
        signature: header(callback::SIGNATURE_HEADER),
        body: &body,
    };
    match callback::receive(&state.db, &state.commands.callbacks, delivery).await {
        Ok(receipt) => Ok(Json(ReceiptView {
            receipt_id: receipt.id,
            received_at: rfc3339(receipt.received_at),
            replay: receipt.replay,
            outcome: receipt.outcome,
        })),
        Err(CallbackError::Unauthenticated) => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
            "the callback's signature does not verify for the workspace and execution it names",
        )),
        Err(CallbackError::Malformed(message)) => Err(Problem::unprocessable("invalid_callback", "", message)),
        Err(CallbackError::UnknownExecution) => Err(Problem::not_found("no such execution")),
        Err(CallbackError::Store(e)) => Err(e.into()),
    }
}
