//! Webhook endpoints of a workspace (msp_admin): create (the secret is shown
//! this once), list, read, change, delete, rotate the secret, send a test,
//! and the delivery log.

use anchor_domain::WebhookId;
use anchor_store::webhooks::{Attempt, Endpoint, EndpointChange};
use anchor_webhooks::{address, catalogue, fanout, secrets, signature::Secret};
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams},
    problem::{Problem, ProblemDocument},
};

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/anchor", "events": ["ticket.created", "execution.failed"]}))]
pub(crate) struct NewEndpoint {
    /// http(s); must resolve to public addresses (unless the operator allows more).
    url: String,
    /// Event types from the catalogue (`docs/events.md`).
    events: Vec<String>,
    description: Option<String>,
}

/// A change to an endpoint; absent members stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointPatch {
    url: Option<String>,
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
            message_id: a.message_id,
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

fn endpoint_id(raw: &str) -> Result<WebhookId, Problem> {
    raw.parse().map_err(|_| Problem::not_found(format!("no webhook endpoint {raw:?} in this workspace")))
}

async fn check_url(state: &AppState, raw: &str) -> Result<String, Problem> {
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && raw.len() <= 2000)
        .ok_or_else(|| {
            Problem::unprocessable("invalid_url", "/url", "an absolute http(s) URL of at most 2000 characters")
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Problem::unprocessable(
            "invalid_url",
            "/url",
            "credentials do not belong in the URL; verify the signature instead",
        ));
    }
    address::check(&url, &state.webhooks.allowlist)
        .await
        .map_err(|e| Problem::unprocessable("webhook_url_forbidden", "/url", e.to_string()))?;
    Ok(url.to_string())
}

fn check_events(events: &[String]) -> Result<(), Problem> {
    if events.is_empty() {
        return Err(Problem::unprocessable("invalid_events", "/events", "subscribe to at least one event type"));
    }
    for (i, event) in events.iter().enumerate() {
        if catalogue::find(event).is_none() {
            let known: Vec<&str> = catalogue::EVENTS.iter().map(|e| e.name).collect();
            return Err(Problem::unprocessable(
                "invalid_events",
                &format!("/events/{i}"),
                format!("unknown event type {event:?}; known: {}", known.join(", ")),
            ));
        }
        if events[..i].contains(event) {
            return Err(Problem::unprocessable("invalid_events", &format!("/events/{i}"), format!("{event} twice")));
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
/// secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = NewEndpoint,
    responses(
        (status = 201, body = CreatedEndpoint, headers(("Location" = String, description = "The endpoint"))),
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
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let endpoint =
        tx.insert_endpoint(id, &url, new.description.as_deref().unwrap_or_default(), &new.events, &sealed).await?;
    let details = json!({"url": endpoint.url, "events": endpoint.events, "description": endpoint.description});
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
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let endpoints = tx.endpoints().await?;
    tx.rollback().await?;
    Ok(Json(Page { items: endpoints.into_iter().map(Into::into).collect(), next_cursor: None }))
}

async fn load(
    state: &AppState,
    scope: &WorkspaceScope<perm::WebhooksManage>,
    id: WebhookId,
) -> Result<Endpoint, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let endpoint = tx.endpoint(id).await?;
    tx.rollback().await?;
    endpoint.ok_or_else(|| Problem::not_found(format!("no webhook endpoint {id} in this workspace")))
}

/// One endpoint (never its secret).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointView),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(load(&state, &scope, endpoint_id(&id)?).await?.into()))
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
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, Problem> {
    let id = endpoint_id(&id)?;
    if let Some(events) = &patch.events {
        check_events(events)?;
    }
    check_description(patch.description.as_deref())?;
    let url = match &patch.url {
        Some(url) => Some(check_url(&state, url).await?),
        None => None,
    };
    let details =
        json!({"url": url, "events": patch.events, "description": patch.description, "enabled": patch.enabled});
    let change = EndpointChange { url, description: patch.description, events: patch.events, enabled: patch.enabled };
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let updated = tx.update_endpoint(id, &change).await?;
    if updated.is_some() {
        changes::record(&mut tx, &scope, "webhook.updated", id, details).await?;
    }
    tx.commit().await?;
    updated
        .map(|e| Json(e.into()))
        .ok_or_else(|| Problem::not_found(format!("no webhook endpoint {id} in this workspace")))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let id = endpoint_id(&id)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let deleted = tx.delete_endpoint(id).await?;
    if deleted {
        changes::record(&mut tx, &scope, "webhook.deleted", id, json!({})).await?;
    }
    tx.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no webhook endpoint {id} in this workspace")))
    }
}

/// Issue a new secret; the old one keeps signing (beside it) for 24 hours.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = RotatedSecret),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn rotate_webhook_secret(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let id = endpoint_id(&id)?;
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
        return Err(Problem::not_found(format!("no webhook endpoint {id} in this workspace")));
    }
    let body = RotatedSecret { secret: secret.expose(), previous_secret_valid_until: rfc3339(until) };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Send a `webhook.test` message to this endpoint (whatever it subscribes to).
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, body = TestSent),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "The endpoint is disabled: enable it first", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn test_webhook(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let id = endpoint_id(&id)?;
    if !load(&state, &scope, id).await?.enabled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "webhook_disabled",
            "this endpoint is disabled, so nothing would be sent; enable it first (PATCH enabled: true)",
        ));
    }
    let slug = scope.workspace.slug().to_string();
    let event = anchor_events::PublishRequest::new(
        "webhook.test",
        Some(&slug),
        json!({"endpoint_id": id, "message": "A test message from Anchor."}),
    );
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let (message, _) = tx.insert_message(None, "webhook.test", &fanout::body(&event)).await?;
    fanout::queue_delivery(&mut tx, message, id).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { message_id: message.to_string() })).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AttemptQuery {
    /// Items per page, 1 to 500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Endpoint id"), AttemptQuery),
    responses((status = 200, body = Page<AttemptView>),
              (status = 404, description = "No such endpoint", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn list_deliveries(
    scope: WorkspaceScope<perm::WebhooksManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AttemptQuery>,
) -> Result<Json<Page<AttemptView>>, Problem> {
    let id = endpoint_id(&id)?;
    load(&state, &scope, id).await?;
    let page = PageParams { limit: query.limit, cursor: query.cursor };
    let limit = page.limit()?;
    let before = page
        .cursor()?
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Problem::unprocessable("invalid_cursor", "/cursor", "not a cursor this API issued"))
        })
        .transpose()?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rows = tx.attempts(id, before, limit + 1).await?;
    tx.rollback().await?;
    Ok(Json(Page::from_rows(rows, limit, |(n, _)| n.to_string(), |(_, a)| a.into())))
}

/// A sender to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing-system", "description": "Invoices paid"}))]
pub(crate) struct NewSource {
    /// 3-40 of a-z, 0-9 and `-`: part of the delivery URL.
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
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let sources = tx.sources().await?;
    tx.rollback().await?;
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
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let deleted = tx.delete_source(&name).await?;
    if deleted {
        changes::record(&mut tx, &scope, "inbound_source.deleted", &name, json!({})).await?;
    }
    tx.commit().await?;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(Problem::not_found(format!("no inbound source {name:?}"))) }
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
