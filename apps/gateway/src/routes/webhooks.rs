//! Webhook endpoints of a workspace (msp_admin): create (the secret is shown
//! this once), list, read, change, delete, rotate the secret, send a test,
//! and the delivery log.

use anchor_domain::WebhookId;
use anchor_store::webhooks::{Attempt, Endpoint, EndpointChange, TestAdmission};
use anchor_webhooks::{
    address,
    events::{WebhookTest, host_of},
    fanout, secrets,
    signature::Secret,
};
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::{Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(create_source, list_sources))
        .routes(routes!(delete_source))
        .routes(routes!(rotate_source_secret))
}

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/anchor", "events": ["ticket.created", "execution.failed"]}))]
pub(crate) struct NewEndpoint {
    /// http(s); must resolve to public addresses (unless the operator allows more).
    #[schema(
        max_length = 1990,
        pattern = "^https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9](:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?$"
    )]
    url: String,
    /// Event types from the catalogue (`docs/events.md`).
    #[serde(deserialize_with = "distinct")]
    #[schema(value_type = Vec<crate::schemas::EventType>, min_items = 1)]
    events: Vec<String>,
    description: Option<String>,
}

/// A change to an endpoint; absent members stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointPatch {
    #[schema(
        max_length = 1990,
        pattern = "^https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9](:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?$"
    )]
    url: Option<String>,
    #[serde(default, deserialize_with = "distinct_some")]
    #[schema(value_type = Option<Vec<crate::schemas::EventType>>, min_items = 1)]
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `true` re-enables a disabled endpoint (and clears its failure state).
    enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointView {
    #[schema(example = "whk_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    url: String,
    description: String,
    events: Vec<String>,
    enabled: bool,
    /// Why Anchor disabled it (410 Gone, five days of failures).
    disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    failing_since: Option<String>,
    /// Until when the previous secret still signs (after a rotation).
    previous_secret_valid_until: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(rfc3339),
            previous_secret_valid_until: e.previous.map(|(_, until)| rfc3339(until)),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// A new endpoint with its secret (shown only in this answer).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// `whsec_...`: verify deliveries with it. It is not shown again.
    secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedSecret {
    /// The new `whsec_...`; shown only here.
    secret: String,
    /// Until then deliveries carry signatures by both secrets.
    previous_secret_valid_until: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestSent {
    /// The test message's `webhook-id`.
    message_id: String,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// The `webhook-id`.
    message_id: String,
    event_type: String,
    attempt: i32,
    at: String,
    /// `null` when no HTTP answer came (refused destination, timeout, connection error).
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    /// The first bytes of the answer.
    response: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            message_id: a.message_id.to_string(),
            event_type: a.event_type,
            attempt: a.attempt,
            at: rfc3339(a.at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response: a.response,
        }
    }
}

async fn check_url(state: &AppState, raw: &str) -> Result<String, Problem> {
    // The document's `maxLength` (characters as sent), and room for what
    // normalising adds (a trailing slash, escapes) within 2000 bytes.
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && raw.chars().count() <= 1990
                && u.as_str().len() <= 2000
        })
        .ok_or_else(|| {
            Problem::unprocessable("invalid_url", "/url", "an absolute http(s) URL of at most 1990 characters")
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Problem::unprocessable(
            "invalid_url",
            "/url",
            "credentials do not belong in the URL; verify the signature instead",
        ));
    }
    match address::check_name(&url, &state.webhooks.allowlist) {
        Ok(()) => {}
        Err(e @ address::DestinationError::AddressLiteral) => {
            return Err(Problem::unprocessable("webhook_url_forbidden", "/url", e.to_string()));
        }
        Err(e) => return Err(Problem::unprocessable("invalid_url", "/url", e.to_string())),
    }
    // A host that does not resolve yet (a domain about to go live, DNS down
    // for a moment) is accepted: every delivery checks its destination again
    // before it connects, and a failing endpoint shows in its delivery log.
    // A host that resolves to an address that is not public is refused.
    // The answer names the host, never the address it resolved to: that
    // would tell anyone allowed to add an endpoint what the installation's
    // internal names resolve to. The operator's log has it.
    match address::check(&url, &state.webhooks.allowlist).await {
        Ok(_) | Err(address::DestinationError::Unresolvable(_)) => Ok(url.to_string()),
        Err(e) => {
            if let address::DestinationError::Forbidden { host, ip, class } = &e {
                tracing::info!(host, %ip, ?class, "webhook destination refused");
            }
            Err(Problem::unprocessable("webhook_url_forbidden", "/url", e.to_string()))
        }
    }
}

/// Event types, each once (naming one twice subscribes once).
fn distinct<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d).map(once_each)
}

fn distinct_some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(|events| events.map(once_each))
}

fn once_each(mut events: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.clone()));
    events
}

fn check_events(events: &[String]) -> Result<(), Problem> {
    if events.is_empty() {
        return Err(Problem::unprocessable("invalid_events", "/events", "subscribe to at least one event type"));
    }
    for (i, event) in events.iter().enumerate() {
        if crate::events::find(event).is_none() {
            let known: Vec<&str> = crate::events::catalogue().iter().map(|e| e.name).collect();
            return Err(Problem::unprocessable(
                "invalid_events",
                &format!("/events/{i}"),
                format!("unknown event type {event:?}; known: {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn check_description(description: Option<&str>) -> Result<(), Problem> {
    match description {
        Some(d) if d.chars().count() > 500 => {
            Err(Problem::unprocessable("invalid_description", "/description", "at most 500 characters"))
        }
        _ => Ok(()),
    }
}

/// Register a webhook endpoint (msp_admin). The answer carries its signing
/// secret, shown only this once. A workspace has at most
/// `webhook_max_endpoints` endpoints (50 unless the operator says otherwise).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = NewEndpoint,
    responses(
        (status = 201, body = CreatedEndpoint, headers(("Location" = String, description = "The endpoint"))),
        (status = 409, description = "`webhook_limit_reached`: the workspace has as many endpoints as it may (`webhook_max_endpoints`); or `idempotency_key_in_flight`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or forbidden URL, unknown event types", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewEndpoint>,
) -> Result<Response, Problem> {
    check_events(&new.events)?;
    check_description(new.description.as_deref())?;
    let url = check_url(&state, &new.url).await?;
    let id = WebhookId::new();
    let secret = Secret::generate();
    let sealed = secrets::seal(&state.webhooks.master, &scope.workspace, &secrets::endpoint_record(id), &secret);
    let limit = state.webhooks.limits.max_endpoints;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let description = new.description.as_deref().unwrap_or_default();
    let Some(endpoint) = tx.insert_endpoint(id, &url, description, &new.events, &sealed, limit).await? else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "webhook_limit_reached",
            format!("this workspace has {limit} webhook endpoints, as many as it may have; delete one first"),
        ));
    };
    // The URL is the receiver's capability (its path or query often carries
    // a token): the record, signed into the evidence chain, names its host.
    let details =
        json!({"host": host_of(&endpoint.url), "events": endpoint.events, "description": endpoint.description});
    changes::record(&mut tx, &scope, "webhook.created", id, details).await?;
    tx.commit().await?;
    let location = format!("/api/v1/workspaces/{}/webhooks/{id}", scope.workspace.slug());
    let body = CreatedEndpoint { endpoint: endpoint.into(), secret: secret.expose() };
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".into())], Json(body))
        .into_response())
}

/// The workspace's webhook endpoints (never their secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<EndpointView>)))]
pub(crate) async fn list_webhooks(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<EndpointView>>, Problem> {
    let endpoints = state.db.read(&scope.workspace, |tx| Box::pin(tx.endpoints())).await?;
    Ok(Json(Page { items: endpoints.into_iter().map(Into::into).collect(), next_cursor: None }))
}

async fn load(
    state: &AppState,
    scope: &WorkspaceScope<perm::WebhooksManage>,
    id: WebhookId,
) -> Result<Endpoint, Problem> {
    let endpoint = state.db.read(&scope.workspace, |tx| Box::pin(tx.endpoint(id))).await?;
    endpoint.ok_or_else(|| not_found(&id))
}

/// One endpoint (never its secret).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(load(&state, &scope, id).await?.into()))
}

/// Change an endpoint's URL, events, description, or enable it again.
#[utoipa::path(patch, path = "/api/v1/workspaces/{ws}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointView),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid change", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, Problem> {
    if let Some(events) = &patch.events {
        check_events(events)?;
    }
    check_description(patch.description.as_deref())?;
    let url = match &patch.url {
        Some(url) => Some(check_url(&state, url).await?),
        None => None,
    };
    let details = json!({
        "host": url.as_deref().map(host_of), "events": patch.events, "description": patch.description,
        "enabled": patch.enabled,
    });
    let change = EndpointChange { url, description: patch.description, events: patch.events, enabled: patch.enabled };
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let updated = tx.update_endpoint(id, &change).await?;
    if updated.is_some() {
        changes::record(&mut tx, &scope, "webhook.updated", id, details).await?;
    }
    tx.commit().await?;
    updated.map(|e| Json(e.into())).ok_or_else(|| not_found(&id))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
) -> Result<StatusCode, Problem> {
    changes::delete(&state.db, &scope, "webhook.deleted", id, not_found(&id), move |tx| {
        Box::pin(tx.delete_endpoint(id))
    })
    .await
}

/// Issue a new secret; the old one keeps signing (beside it) for 24 hours.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = RotatedSecret),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn rotate_webhook_secret(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
) -> Result<Response, Problem> {
    let secret = Secret::generate();
    let sealed = secrets::seal(&state.webhooks.master, &scope.workspace, &secrets::endpoint_record(id), &secret);
    let until = OffsetDateTime::now_utc() + ROTATION_OVERLAP;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rotated = tx.rotate_endpoint_secret(id, &sealed, until).await?;
    if rotated {
        let details = json!({"previous_secret_valid_until": rfc3339(until)});
        changes::record(&mut tx, &scope, "webhook.secret_rotated", id, details).await?;
    }
    tx.commit().await?;
    if !rotated {
        return Err(not_found(&id));
    }
    let body = RotatedSecret { secret: secret.expose(), previous_secret_valid_until: rfc3339(until) };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Send a `webhook.test` message to this endpoint (whatever it subscribes
/// to). A few a minute per endpoint (5), shared by every gateway process.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, body = TestSent),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "The endpoint is disabled: enable it first", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 429, description = "`webhook_test_limited`: enough test messages to this endpoint for now; `Retry-After` says when to ask again",
               body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn test_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
) -> Result<Response, Problem> {
    if !load(&state, &scope, id).await?.enabled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "webhook_disabled",
            "this endpoint is disabled, so nothing would be sent; enable it first (PATCH enabled: true)",
        ));
    }
    let slug = scope.workspace.slug().to_string();
    let test = WebhookTest { endpoint_id: id, message: "A test message from Anchor.".to_owned() };
    let event = anchor_events::PublishRequest::of(Some(&slug), &test);
    let limits = state.webhooks.limits;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    match tx.admit_endpoint_test(id, limits.tests_per_window, limits.test_window).await? {
        TestAdmission::Admitted => {}
        TestAdmission::Missing => return Err(not_found(&id)),
        TestAdmission::Limited(wait) => {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "webhook_test_limited",
                format!(
                    "at most {} test messages to an endpoint every {} s; ask again later",
                    limits.tests_per_window,
                    limits.test_window.as_secs()
                ),
            )
            .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
    }
    let (message, _) = tx.insert_message(None, "webhook.test", &fanout::body(&event)).await?;
    fanout::queue_delivery(&mut tx, message, id).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { message_id: message.to_string() })).into_response())
}

/// The endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id"), PageParams),
    responses((status = 200, body = Page<AttemptView>),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn list_deliveries(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<WebhookId>,
    paging: Paging,
) -> Result<Json<Page<AttemptView>>, Problem> {
    load(&state, &scope, id).await?;
    let before = paging.after::<i64>()?;
    let limit = paging.fetch();
    let rows = state.db.read(&scope.workspace, |tx| Box::pin(tx.attempts(id, before, limit))).await?;
    Ok(Json(paging.page(rows, |(n, _)| *n, |(_, a)| a.into())))
}

/// A sender to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing-system", "description": "Invoices paid"}))]
pub(crate) struct NewSource {
    /// 3-40 of a-z, 0-9 and `-`: part of the delivery URL.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$")]
    name: String,
    description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceView {
    name: String,
    description: String,
    /// Where the sender posts its Standard Webhooks deliveries.
    url: String,
    previous_secret_valid_until: Option<String>,
    created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedSource {
    #[serde(flatten)]
    source: SourceView,
    /// `whsec_...`: give it to the sender. It is not shown again.
    secret: String,
}

fn source_view(state: &AppState, workspace: &str, s: anchor_store::webhooks::InboundSource) -> SourceView {
    SourceView {
        url: format!("{}/api/v1/callbacks/inbound/{workspace}/{}", state.webhooks.public_url, s.name),
        name: s.name,
        description: s.description,
        previous_secret_valid_until: s.previous.map(|(_, until)| rfc3339(until)),
        created_at: rfc3339(s.created_at),
    }
}

fn source_name(raw: &str) -> Result<String, Problem> {
    anchor_domain::WorkspaceSlug::parse(raw).map(|s| s.as_str().to_owned()).map_err(|_| {
        Problem::unprocessable("invalid_name", "/name", "3-40 of a-z, 0-9 and '-', starting with a letter")
    })
}

/// Register a sender of signed inbound deliveries (msp_admin); the answer
/// carries its secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/inbound-sources", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = NewSource,
    responses((status = 201, body = CreatedSource),
              (status = 409, description = "A source with this name exists", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid name", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_source(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSource>,
) -> Result<Response, Problem> {
    let name = source_name(&new.name)?;
    check_description(new.description.as_deref())?;
    let secret = Secret::generate();
    let sealed = secrets::seal(&state.webhooks.master, &scope.workspace, &secrets::source_record(&name), &secret);
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let created = tx.insert_source(&name, new.description.as_deref().unwrap_or_default(), &sealed).await?;
    if created.is_some() {
        let details = json!({"description": new.description});
        changes::record(&mut tx, &scope, "inbound_source.created", &name, details).await?;
    }
    tx.commit().await?;
    let Some(created) = created else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "source_exists",
            format!("an inbound source named {name} exists"),
        ));
    };
    let body = CreatedSource {
        source: source_view(&state, scope.workspace.slug().as_str(), created),
        secret: secret.expose(),
    };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The workspace's inbound sources (never their secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/inbound-sources", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<SourceView>)))]
pub(crate) async fn list_sources(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<SourceView>>, Problem> {
    let sources = state.db.read(&scope.workspace, |tx| Box::pin(tx.sources())).await?;
    let slug = scope.workspace.slug().as_str();
    Ok(Json(Page { items: sources.into_iter().map(|s| source_view(&state, slug, s)).collect(), next_cursor: None }))
}

/// Remove an inbound source; its deliveries are refused from now on.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/inbound-sources/{name}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("name" = String, Path, description = "Source name")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such source", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_source(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let missing = Problem::not_found(format!("no inbound source {name:?}"));
    changes::delete(&state.db, &scope, "inbound_source.deleted", name.clone(), missing, move |tx| {
        Box::pin(async move { tx.delete_source(&name).await })
    })
    .await
}

/// Issue a new secret for a source; the old one is accepted for 24 more hours.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/inbound-sources/{name}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("name" = String, Path, description = "Source name")),
    responses((status = 200, body = RotatedSecret),
              (status = 404, description = "No such source", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn rotate_source_secret(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let secret = Secret::generate();
    let sealed = secrets::seal(&state.webhooks.master, &scope.workspace, &secrets::source_record(&name), &secret);
    let until = OffsetDateTime::now_utc() + ROTATION_OVERLAP;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rotated = tx.rotate_source_secret(&name, &sealed, until).await?;
    if rotated {
        let details = json!({"previous_secret_valid_until": rfc3339(until)});
        changes::record(&mut tx, &scope, "inbound_source.secret_rotated", &name, details).await?;
    }
    tx.commit().await?;
    if !rotated {
        return Err(Problem::not_found(format!("no inbound source {name:?}")));
    }
    let body = RotatedSecret { secret: secret.expose(), previous_secret_valid_until: rfc3339(until) };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
