//! The edge plane: enrollment tokens (msp_admin), agents, enrollment, and
//! telemetry ingest (authenticated by the agent's own device key).

use anchor_domain::{AgentId, EnrollmentTokenId, RuleKind};
use anchor_store::agents::{Agent, EnrollRefusal, EnrollmentToken};
use anchor_telemetry::{batch, enrollment, identity, ingest};
use axum::{
    Json,
    body::Bytes,
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{Public, WorkspaceScope, perm, record_decision},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::{Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{FieldError, Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(rotate_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_agents))
        .routes(routes!(revoke_agent))
        .routes(routes!(enroll))
        .routes(routes!(ingest_batch))
}

/// Offline after this long without a batch unless the workspace's
/// `agent_offline` rule says otherwise; overdue after half of it.
const OFFLINE_AFTER: time::Duration = time::Duration::minutes(4);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "Acme office rollout", "expires_in": 604800, "max_uses": 50}))]
pub(crate) struct NewToken {
    label: Option<String>,
    /// Seconds until it expires (default 7 days, at most 90 days).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 60, maximum = 7776000)]
    expires_in: Option<i64>,
    /// How many agents may enroll with it (default: unlimited until it expires).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1, maximum = 2147483647)]
    max_uses: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    id: String,
    label: String,
    expires_at: String,
    max_uses: Option<i32>,
    uses: i32,
    revoked: bool,
    created_at: String,
}

impl From<EnrollmentToken> for TokenView {
    fn from(t: EnrollmentToken) -> Self {
        Self {
            id: t.id.to_string(),
            label: t.label,
            expires_at: rfc3339(t.expires_at),
            max_uses: t.max_uses,
            uses: t.uses,
            revoked: t.revoked_at.is_some(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// A new token: `token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    /// `anchor_enroll_...`: give it to `anchor-edge-agent enroll --token`.
    token: String,
    expires_at: String,
}

/// Create an enrollment token (msp_admin). The token is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = NewToken,
    responses((status = 201, body = CreatedToken),
              (status = 422, description = "Invalid label, lifetime or use count", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_token(
    scope: WorkspaceScope<perm::EnrollmentManage>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<Response, Problem> {
    let label = new.label.unwrap_or_default();
    if label.chars().count() > 200 {
        return Err(Problem::unprocessable("invalid_label", "/label", "at most 200 characters"));
    }
    let lifetime = new.expires_in.unwrap_or(7 * 24 * 3600);
    if !(60..=90 * 24 * 3600).contains(&lifetime) {
        return Err(Problem::unprocessable("invalid_expiry", "/expires_in", "between 60 seconds and 90 days"));
    }
    if new.max_uses.is_some_and(|n| n < 1) {
        return Err(Problem::unprocessable("invalid_max_uses", "/max_uses", "at least 1"));
    }
    let (token, digest) = enrollment::generate();
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(lifetime);
    let created = state.db.create_enrollment_token(&scope.workspace, &digest, &label, expires_at, new.max_uses).await?;
    let details = json!({"label": label, "expires_at": rfc3339(created.expires_at), "max_uses": new.max_uses});
    changes::record_after(&state.db, &scope, "enrollment_token.created", created.id, details).await?;
    let body = CreatedToken { id: created.id.to_string(), token, expires_at: rfc3339(created.expires_at) };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The workspace's enrollment tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<TokenView>)))]
pub(crate) async fn list_tokens(
    scope: WorkspaceScope<perm::EnrollmentManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<TokenView>>, Problem> {
    let tokens = state.db.enrollment_tokens(&scope.workspace).await?;
    Ok(Json(Page { items: tokens.into_iter().map(Into::into).collect(), next_cursor: None }))
}

/// Replace a token's secret (the old value stops working at once).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/enrollment-tokens/{id}/rotate", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Token id")),
    responses((status = 200, body = CreatedToken),
              (status = 404, description = "No such live token", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn rotate_token(
    scope: WorkspaceScope<perm::EnrollmentManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<EnrollmentTokenId>,
) -> Result<Response, Problem> {
    let (token, digest) = enrollment::generate();
    let rotated = state.db.rotate_enrollment_token(&scope.workspace, id, &digest).await?;
    let rotated = rotated.ok_or_else(|| Problem::not_found(format!("no live enrollment token {id}")))?;
    changes::record_after(&state.db, &scope, "enrollment_token.rotated", id, json!({})).await?;
    let body = CreatedToken { id: rotated.id.to_string(), token, expires_at: rfc3339(rotated.expires_at) };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Revoke a token: no more enrollments with it (enrolled agents stay).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/enrollment-tokens/{id}", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such token", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn revoke_token(
    scope: WorkspaceScope<perm::EnrollmentManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<EnrollmentTokenId>,
) -> Result<StatusCode, Problem> {
    let revoke = state.db.revoke_enrollment_token(&scope.workspace, id);
    changes::delete_after(&state.db, &scope, "enrollment_token.revoked", id, json!({}), not_found(&id), revoke).await
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentView {
    id: String,
    hostname: String,
    /// `online`, `overdue` (no batch for half the offline time), `offline` (the
    /// `agent_offline` rule's duration; 4 minutes by default), `revoked`.
    status: &'static str,
    last_seen_at: Option<String>,
    enrolled_at: String,
}

fn agent_view(a: Agent, now: OffsetDateTime, offline_after: time::Duration) -> AgentView {
    let status = match (a.revoked_at, a.last_seen_at) {
        (Some(_), _) => "revoked",
        (None, Some(seen)) if now - seen < offline_after / 2 => "online",
        (None, Some(seen)) if now - seen < offline_after => "overdue",
        _ => "offline",
    };
    AgentView {
        id: a.id.to_string(),
        hostname: a.hostname,
        status,
        last_seen_at: a.last_seen_at.map(rfc3339),
        enrolled_at: rfc3339(a.enrolled_at),
    }
}

/// The workspace's agents with their status, by id.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/agents", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PageParams),
    responses((status = 200, body = Page<AgentView>)))]
pub(crate) async fn list_agents(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<AgentView>>, Problem> {
    let now = OffsetDateTime::now_utc();
    let agents = state.db.agents_page(&scope.workspace, paging.after::<AgentId>()?, paging.fetch()).await?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let offline_after = tx
        .rules()
        .await?
        .iter()
        .find(|r| r.kind == RuleKind::AgentOffline && r.enabled)
        .map_or(OFFLINE_AFTER, |r| time::Duration::seconds(i64::from(r.duration_secs.max(1))));
    tx.rollback().await?;
    Ok(Json(paging.page(agents, |a| a.id, |a| agent_view(a, now, offline_after))))
}

/// Revoke an agent: its requests are refused from now on.
///
/// Its open alerts are resolved, since nothing would ever clear them.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Agent id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such agent", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn revoke_agent(
    scope: WorkspaceScope<perm::EnrollmentManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<AgentId>,
) -> Result<StatusCode, Problem> {
    if !state.db.revoke_agent(&scope.workspace, id).await? {
        return Err(not_found(&id));
    }
    // Nothing will ever clear a revoked agent's alerts: resolve them now.
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let resolved = anchor_telemetry::alerts::retire_agent(&mut tx, id).await?;
    changes::record(&mut tx, &scope, "agent.revoked", id, json!({"alerts_resolved": resolved})).await?;
    tx.commit().await?;
    tracing::info!(agent = %id, resolved, "agent revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrollment {
    /// `anchor_enroll_...`.
    token: String,
    /// The device key's public half, `z6Mk...` (Ed25519 Multikey).
    #[schema(pattern = "^z6Mk[1-9A-HJ-NP-Za-km-z]{44}$")]
    public_key: String,
    /// Host facts: `hostname` is required; `os` and anything else become the asset's facts.
    #[schema(value_type = HostFacts)]
    facts: serde_json::Value,
}

/// What an agent says of its machine when it enrolls (the document's view;
/// the members beyond these are kept as they come).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct HostFacts {
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    hostname: String,
    os: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Enrolled {
    agent_id: String,
    workspace: String,
    asset_id: String,
}

/// Enroll an agent with a token: registers its device key and creates (or
/// updates) the machine's asset. Later requests are signed with the key.
#[utoipa::path(post, path = "/api/v1/agents/enroll", tag = "agents",
    request_body = Enrollment,
    responses((status = 201, body = Enrolled),
              (status = 401, description = "The token is unknown, revoked, expired or used up", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "This device key is enrolled already (in another workspace, or revoked)", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid key or facts", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn enroll(
    _: Public,
    State(state): State<AppState>,
    ApiJson(enrollment): ApiJson<Enrollment>,
) -> Result<Response, Problem> {
    let digest = enrollment::digest(&enrollment.token);
    let token_invalid = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "enrollment_token_invalid",
            "the enrollment token is unknown, revoked, expired or used up",
        )
    };
    // The token authenticates the caller: nothing else is looked at first.
    if !state.db.enrollment_token_valid(&digest).await? {
        return Err(token_invalid());
    }
    anchor_crypto::multikey::public_from_multibase(&enrollment.public_key).map_err(|e| {
        Problem::unprocessable("invalid_public_key", "/public_key", format!("an Ed25519 Multikey (z6Mk...): {e}"))
    })?;
    let hostname = enrollment.facts["hostname"].as_str().unwrap_or_default().trim().to_owned();
    if hostname.is_empty() || hostname.len() > 255 || !enrollment.facts.is_object() {
        return Err(Problem::unprocessable(
            "invalid_facts",
            "/facts/hostname",
            "facts must be an object with a hostname",
        ));
    }
    let os = enrollment.facts["os"].as_str().unwrap_or_default().to_owned();
    let (agent, workspace) = match state.db.enroll_agent(&digest, &enrollment.public_key, &hostname).await? {
        Ok(enrolled) => enrolled,
        Err(EnrollRefusal::TokenInvalid) => return Err(token_invalid()),
        Err(EnrollRefusal::KeyTaken) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "agent_key_enrolled",
                "this device key is enrolled already",
            ));
        }
    };
    let mut tx = state.db.begin_workspace(&workspace).await?;
    let (asset, replaced) = tx.upsert_agent_asset(agent.id, &hostname, &os, &enrollment.facts).await?;
    if let Some(previous) = replaced {
        anchor_telemetry::alerts::retire_agent(&mut tx, previous).await?;
    }
    tx.commit().await?;
    // A reinstalled machine: its previous agent identity is retired.
    if let Some(previous) = replaced {
        state.db.revoke_agent(&workspace, previous).await?;
        tracing::info!(agent = %agent.id, previous = %previous, "a reinstalled machine's previous agent was revoked");
    }
    tracing::info!(agent = %agent.id, workspace = %workspace.slug(), "agent enrolled");
    let body = Enrolled {
        agent_id: agent.id.to_string(),
        workspace: workspace.slug().to_string(),
        asset_id: asset.to_string(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An enrolled agent, authenticated by the token it signed with its device key.
#[derive(Debug)]
pub(crate) struct AgentCaller(Agent);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Problem::unauthorized("agent_unauthenticated", "a signed agent token is required", None))?;
        match identity::authenticate(&state.db, token).await {
            Ok(agent) => {
                record_decision(parts, "agent_identity");
                Ok(Self(agent))
            }
            Err(identity::AgentAuthError::Store(e)) => Err(e.into()),
            Err(e) => Err(Problem::unauthorized("agent_unauthenticated", e.to_string(), Some("invalid_token"))),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchAck {
    #[schema(example = "tb_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    batch_id: String,
    /// `true`: this sequence number was accepted before; nothing was stored again.
    duplicate: bool,
}

/// Send a telemetry batch (agents). Idempotent on the batch `sequence`; the
/// body may be gzip or zstd (`Content-Encoding`).
#[utoipa::path(post, path = "/api/v1/telemetry/batches", tag = "agents",
    request_body(content = Object, description = "sequence, sent_at?, metrics[], checks[], inventory?, events[]"),
    responses((status = 200, body = BatchAck),
              (status = 401, description = "Not a valid token of an enrolled, unrevoked agent", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Not a valid batch (the field is named)", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn ingest_batch(
    AgentCaller(agent): AgentCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<BatchAck>, Problem> {
    let invalid = |e: batch::BatchError| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_batch", format!("the batch is not valid: {e}"))
            .with_errors(vec![FieldError { path: e.pointer, message: e.message }])
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let json = batch::decode_body(encoding, &body).map_err(invalid)?;
    let batch = batch::parse(&json).map_err(invalid)?;
    match ingest::ingest(&state.db, &agent, &batch).await {
        Ok(ack) => Ok(Json(BatchAck { batch_id: ack.batch_id.to_string(), duplicate: ack.duplicate })),
        Err(ingest::IngestError::WorkspaceGone) => {
            Err(Problem::unauthorized("agent_unauthenticated", "the agent's workspace no longer exists", None))
        }
        Err(ingest::IngestError::Store(e)) => Err(e.into()),
    }
}
