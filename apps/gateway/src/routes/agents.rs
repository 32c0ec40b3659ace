//! The edge plane: enrollment tokens (msp_admin), agents, enrollment, and
//! telemetry ingest (authenticated by the agent's own device key).
//!
//! A machine is known by the `machine_id` of its facts, which is a claim,
//! not a credential: an enrollment naming a machine whose agent is still
//! active is refused (409 `machine_enrolled`) unless its token was made to
//! replace agents (`replace_agents`, for reinstalling machines) or staff
//! revoked that agent first; only then does the machine's asset move to the
//! new agent and the old one retire. Ingest admits one batch per agent at a
//! time and at most `agent_batches_per_minute` (429 with `Retry-After`),
//! takes at most half the connection pool for batches in hand (503 with
//! `Retry-After` when they are all taken), decodes and parses each batch on
//! a blocking thread, and bounds its unit of work in time.

use std::time::Duration;

use anchor_domain::{AgentId, EnrollmentTokenId};
use anchor_store::agents::{Agent, EnrollRefusal, EnrollmentToken, MachineTaken};
use anchor_telemetry::{
    batch::{self, BodyError},
    enrollment, identity, ingest,
    limits::{Refusal, Turn},
};
use axum::{
    Json,
    body::Bytes,
    extract::{FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "Acme office rollout", "expires_in": 604800, "max_uses": 50}))]
pub(crate) struct NewToken {
    label: Option<String>,
    /// Seconds until it expires (default 7 days, at most 90 days).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 60, maximum = 7776000)]
    expires_in: Option<i64>,
    /// How many agents may enroll with it (default 1, at most 10,000).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1, maximum = 10000)]
    max_uses: Option<i32>,
    /// Agents enrolling with it may replace the active agent of a machine
    /// enrolled before (the same `facts.machine_id`: a reinstall), which is
    /// then revoked. Default false: such an enrollment is refused until the
    /// machine's agent is revoked.
    #[serde(default)]
    replace_agents: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    id: String,
    label: String,
    expires_at: String,
    max_uses: i32,
    uses: i32,
    /// Agents enrolling with it may replace a machine's active agent.
    replace_agents: bool,
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
            replace_agents: t.replace_agents,
            revoked: t.revoked_at.is_some(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// A new token: `token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    /// `anchor_enroll_...`: give it to `anchor-edge-agent enroll --token-file` (or `ANCHOR_ENROLL_TOKEN`).
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
    let max_uses = new.max_uses.unwrap_or(enrollment::DEFAULT_USES);
    if !(1..=enrollment::MAX_USES).contains(&max_uses) {
        return Err(Problem::unprocessable(
            "invalid_max_uses",
            "/max_uses",
            format!("between 1 and {}", enrollment::MAX_USES),
        ));
    }
    let (token, digest) = enrollment::generate();
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(lifetime);
    let created = state
        .db
        .create_enrollment_token(&scope.workspace, &digest, &label, expires_at, max_uses, new.replace_agents)
        .await?;
    let details = json!({"label": label, "expires_at": rfc3339(created.expires_at), "max_uses": max_uses,
                         "replace_agents": new.replace_agents});
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
    AgentView {
        status: a.status(now, offline_after),
        id: a.id.to_string(),
        hostname: a.hostname,
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
    let offline_after = anchor_store::agents::offline_after(&tx.rules().await?);
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
    // Nothing will ever clear a revoked agent's alerts: they are resolved now.
    let Some((mut tx, resolved)) = anchor_telemetry::alerts::revoke_agent(&state.db, &scope.workspace, id).await?
    else {
        return Err(not_found(&id));
    };
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
    /// Host facts: `hostname` is required; `os` and anything else become the
    /// asset's facts (an object within the inventory's bounds: nested at most
    /// 6 deep, 100,000 values, strings of at most 1,024 bytes).
    #[schema(value_type = HostFacts)]
    facts: anchor_telemetry::batch::Inventory,
}

/// What an agent says of its machine when it enrolls (the document's view;
/// the members beyond these are kept as they come).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct HostFacts {
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    hostname: String,
    os: Option<String>,
    /// The installation's identity (`/etc/machine-id`): a machine enrolled
    /// again keeps its asset (see `replace_agents`).
    machine_id: Option<String>,
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
              (status = 409, description = "This device key is enrolled already (in another workspace, or revoked), or the machine has an active agent the token may not replace", body = ProblemDocument, content_type = "application/problem+json"),
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
    let Some(token) = state.db.live_enrollment_token(&digest).await? else { return Err(token_invalid()) };
    anchor_crypto::multikey::public_from_multibase(&enrollment.public_key).map_err(|e| {
        Problem::unprocessable("invalid_public_key", "/public_key", format!("an Ed25519 Multikey (z6Mk...): {e}"))
    })?;
    let facts = enrollment.facts.to_value();
    let hostname = facts["hostname"].as_str().unwrap_or_default().trim().to_owned();
    if hostname.is_empty() || hostname.len() > 255 {
        return Err(Problem::unprocessable(
            "invalid_facts",
            "/facts/hostname",
            "facts must be an object with a hostname",
        ));
    }
    let os = facts["os"].as_str().unwrap_or_default().to_owned();
    let machine_enrolled = || {
        Problem::new(
            StatusCode::CONFLICT,
            "machine_enrolled",
            "this machine (facts.machine_id) has an active agent: revoke that agent first, or enroll with a token \
             that may replace agents (replace_agents)",
        )
    };
    // A machine enrolled before: its agent may be replaced only when it is
    // revoked already or the token says so. Checked before a use is spent.
    let mut replaceable = None;
    if let Some(machine_id) = facts["machine_id"].as_str().filter(|m| !m.is_empty()) {
        let workspace = state.db.workspace_by_id(token.workspace_id).await?.ok_or_else(token_invalid)?;
        let mut tx = state.db.begin_workspace(&workspace).await?;
        let holder = tx.machine_agent(machine_id).await?;
        tx.rollback().await?;
        if let Some(holder) = holder {
            match state.db.agent(holder).await? {
                // The same key again: that agent's enrollment, retried.
                Some(agent) if agent.public_key == enrollment.public_key => {}
                Some(agent) if agent.revoked_at.is_none() && !token.replace_agents => {
                    return Err(machine_enrolled());
                }
                _ => replaceable = Some(holder),
            }
        }
    }
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
    let (asset, replaced) = match tx.upsert_agent_asset(agent.id, &hostname, &os, &facts, replaceable).await? {
        Ok(placed) => placed,
        Err(MachineTaken) => {
            // Another agent enrolled for the machine since it was checked:
            // this enrollment loses, and the agent it made is revoked.
            tx.rollback().await?;
            state.db.revoke_agent(&workspace, agent.id).await?;
            return Err(machine_enrolled());
        }
    };
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

/// A refusal that says when to try again (`Retry-After`, whole seconds).
fn retry_later(status: StatusCode, code: &str, detail: impl Into<String>, after: Duration) -> Response {
    let mut response = Problem::new(status, code, detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    response
}

/// An agent whose batch is admitted now: one at a time per agent, at most
/// `agent_batches_per_minute`. Decided before the body is read.
#[derive(Debug)]
pub(crate) struct AgentTurn {
    agent: Agent,
    _turn: Turn,
}

impl FromRequestParts<AppState> for AgentTurn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AgentCaller(agent) =
            AgentCaller::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        match state.telemetry.gate.admit(agent.id) {
            Ok(turn) => Ok(Self { agent, _turn: turn }),
            Err(refusal @ Refusal::Busy) => Err(retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "agent_busy",
                "this agent's previous batch is still being taken: send one batch at a time",
                refusal.retry_after(),
            )),
            Err(refusal @ Refusal::RateLimited { .. }) => Err(retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "agent_rate_limited",
                format!(
                    "this agent sends more than {} batches a minute; retry after {} s",
                    state.telemetry.limits.batches_per_minute,
                    refusal.retry_after().as_secs()
                ),
                refusal.retry_after(),
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchAck {
    #[schema(example = "tb_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    batch_id: String,
    /// `true`: this sequence number was accepted before; nothing was stored again.
    duplicate: bool,
    /// Present when the agent's series limit (`agent_max_series`) kept part
    /// of the batch out: the rest of it is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<RefusedView>,
}

/// What of a batch was not stored: its new series beyond the agent's limit,
/// and their samples and check results.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefusedView {
    /// `series_limit`.
    reason: &'static str,
    /// The agent's limit of series.
    limit: u32,
    series: usize,
    samples: usize,
    check_results: usize,
}

/// How long a batch waits for a slot before it is answered 503.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// Send a telemetry batch (agents). Idempotent on the batch `sequence`; the
/// body may be gzip or zstd (`Content-Encoding`).
///
/// Bounded: at most 4 MiB once decompressed and every part within its
/// limits (413, or 422 naming the field); one batch at a time per agent and
/// at most `agent_batches_per_minute` (429 with `Retry-After`); new series
/// beyond `agent_max_series` are not stored (the answer's `refused` says
/// how much); at most `agent_max_alerts_per_batch` alerts opened per batch.
#[utoipa::path(post, path = "/api/v1/telemetry/batches", tag = "agents",
    request_body(content = Object, description = "sequence, sent_at?, metrics[], checks[], inventory?, events[]"),
    responses((status = 200, body = BatchAck),
              (status = 401, description = "Not a valid token of an enrolled, unrevoked agent", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 413, description = "Larger than 4 MiB once decompressed", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 415, description = "A Content-Encoding other than gzip and zstd", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Not a valid batch (the field is named)", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 429, description = "The agent's previous batch is still being taken, or it sends more than its batches a minute (see Retry-After)", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, description = "The server takes as many batches as it can now (see Retry-After)", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn ingest_batch(
    // The turn is held until the batch is answered.
    AgentTurn { agent, _turn }: AgentTurn,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let desk = &state.telemetry;
    let busy = || {
        retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "telemetry_busy",
            "the server is taking as many batches as it can; retry later",
            SLOT_WAIT,
        )
    };
    let Ok(Ok(_slot)) = tokio::time::timeout(SLOT_WAIT, desk.slots.acquire()).await else { return Ok(busy()) };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Decompressing and parsing is CPU work: off the async threads.
    let read = tokio::task::spawn_blocking(move || batch::read(encoding.as_deref(), &body)).await;
    let batch = match read.map_err(|_| Problem::internal())? {
        Ok(batch) => batch,
        Err(BodyError::TooLarge(detail)) => {
            return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail));
        }
        Err(e @ BodyError::UnsupportedEncoding(_)) => {
            return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding", e.to_string()));
        }
        Err(BodyError::Invalid(e)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_batch",
                format!("the batch is not valid: {e}"),
            )
            .with_errors(vec![FieldError { path: e.pointer, message: e.message }]));
        }
    };
    let limits = desk.limits;
    let ingested = tokio::time::timeout(limits.ingest_timeout, ingest::ingest(&state.db, &agent, batch, &limits)).await;
    let Ok(ingested) = ingested else { return Ok(busy()) };
    match ingested {
        Ok(ack) => Ok(Json(BatchAck {
            batch_id: ack.batch_id.to_string(),
            duplicate: ack.duplicate,
            refused: ack.refused.map(|r| RefusedView {
                reason: "series_limit",
                limit: limits.max_series,
                series: r.series,
                samples: r.samples,
                check_results: r.check_results,
            }),
        })
        .into_response()),
        Err(ingest::IngestError::WorkspaceGone) => {
            Err(Problem::unauthorized("agent_unauthenticated", "the agent's workspace no longer exists", None))
        }
        // The unit of work ran past its time bound (a statement or a lock wait).
        Err(ingest::IngestError::Store(e)) if matches!(e.sqlstate().as_deref(), Some("57014" | "55P03")) => {
            tracing::warn!(agent = %agent.id, error = %e, "a batch ran past its time bound");
            Ok(busy())
        }
        Err(ingest::IngestError::Store(e)) => Err(e.into()),
    }
}
