//! Inbound callbacks: AgentField's execution webhooks, and deliveries from
//! registered senders signed with Standard Webhooks. Refusals are counted
//! (`anchor_callbacks_refused_total{source, reason}`).

use anchor_commands::callback::{self, CallbackError, Delivery};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::SignedRequest,
    commands::rfc3339,
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new().routes(routes!(agentfield)).routes(routes!(inbound))
}

/// The receipt of an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReceiptView {
    #[schema(example = "rcp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    receipt_id: String,
    /// The sender's delivery id (AgentField: `<execution id>:<event>`;
    /// Standard Webhooks: `<source>:<webhook-id>`).
    delivery_id: String,
    /// `sha256:<hex>` of the body first accepted.
    body_digest: String,
    /// When the delivery was first accepted.
    received_at: String,
    /// `true`: this delivery had been accepted before; nothing happened now.
    replay: bool,
    /// What the first acceptance did.
    #[schema(value_type = Object)]
    outcome: serde_json::Value,
}

fn receipt_view(receipt: anchor_store::executions::Receipt) -> ReceiptView {
    ReceiptView {
        receipt_id: receipt.id.to_string(),
        delivery_id: receipt.delivery_id,
        body_digest: receipt.body_sha256,
        received_at: rfc3339(receipt.received_at),
        replay: receipt.replay,
        outcome: receipt.outcome,
    }
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
    let refused = |reason: &'static str| {
        metrics::counter!("anchor_callbacks_refused_total", "source" => "agentfield", "reason" => reason).increment(1);
    };
    match callback::receive(&state.db, &state.commands.callbacks, delivery).await {
        Ok(receipt) => Ok(Json(receipt_view(receipt))),
        Err(CallbackError::Unauthenticated) => Err({
            refused("bad_signature");
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "the callback's signature does not verify for the workspace and execution it names",
            )
        }),
        Err(CallbackError::Malformed(message)) => {
            refused("malformed");
            Err(Problem::unprocessable("invalid_callback", "", message))
        }
        Err(CallbackError::UnknownExecution) => Err(Problem::not_found("no such execution")),
        Err(CallbackError::Store(e)) => Err(e.into()),
    }
}

/// A delivery from a registered inbound source, signed with Standard
/// Webhooks (`webhook-id`, `webhook-timestamp` within five minutes,
/// `webhook-signature`), verified before the body is read. Its effect is an
/// `inbound.received` domain event; a replay gets the original receipt.
#[utoipa::path(post, path = "/api/v1/callbacks/inbound/{workspace}/{source}", tag = "callbacks",
    params(("workspace" = String, Path, description = "Workspace slug"), ("source" = String, Path, description = "Inbound source name"),
           ("webhook-id" = String, Header, description = "The delivery's id", min_length = 1, max_length = 200, pattern = "^[!-~]+$"),
           ("webhook-timestamp" = String, Header, description = "Unix seconds", pattern = "^[0-9]{1,12}$"),
           ("webhook-signature" = String, Header, description = "v1,<base64>, space-separated", min_length = 1)),
    request_body(content = Object, description = "The sender's payload"),
    responses(
        (status = 200, body = ReceiptView),
        (status = 400, description = "Missing headers, a malformed webhook-id, or a timestamp outside the five-minute window", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "The signature does not verify", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn inbound(
    _: SignedRequest,
    State(state): State<AppState>,
    axum::extract::Path((workspace, source)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptView>, Problem> {
    use anchor_webhooks::{inbound, signature::SignatureError};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = inbound::Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: &body,
    };
    match inbound::receive(&state.db, &state.webhooks.master, &workspace, &source, delivery).await {
        Ok(receipt) => Ok(Json(receipt_view(receipt))),
        Err(inbound::InboundError::Store(e)) => Err(e.into()),
        Err(e) => {
            metrics::counter!("anchor_callbacks_refused_total", "source" => "standard_webhooks", "reason" => e.reason())
                .increment(1);
            Err(match e {
                inbound::InboundError::Signature(SignatureError::MissingHeaders) => Problem::new(
                    StatusCode::BAD_REQUEST,
                    "signature_headers_missing",
                    "webhook-id, webhook-timestamp and webhook-signature are required",
                ),
                inbound::InboundError::BadId => Problem::new(
                    StatusCode::BAD_REQUEST,
                    "webhook_id_invalid",
                    "webhook-id must be 1 to 200 printable ASCII characters",
                ),
                inbound::InboundError::Signature(SignatureError::StaleTimestamp | SignatureError::BadTimestamp) => {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "timestamp_stale",
                        "webhook-timestamp must be within five minutes of now",
                    )
                }
                _ => Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "signature_invalid",
                    "the delivery's signature does not verify",
                ),
            })
        }
    }
}
