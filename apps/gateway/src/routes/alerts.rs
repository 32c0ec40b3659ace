//! Alert rules, alerts, and an agent's latest state.

use anchor_domain::{AgentId, AlertId, AlertState, Comparison, RuleId, RuleKind, Severity};
use anchor_store::alerts::{Alert, Rule, RuleInput};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
        .routes(routes!(list_alerts))
        .routes(routes!(get_agent))
        .command_on::<anchor_commands::alert_handling::AlertAcknowledge>(
            "/api/v1/workspaces/{ws}/alerts/{id}/acknowledge",
            "alert_id",
            "alert",
        )
        .command_on::<anchor_commands::alert_handling::AlertSnooze>(
            "/api/v1/workspaces/{ws}/alerts/{id}/snooze",
            "alert_id",
            "alert",
        )
}

/// A rule as sent; documented by [`crate::schemas::RuleDocument`], which
/// says what `check_rule` accepts, kind by kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleBody {
    name: String,
    kind: String,
    metric: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
    #[serde(default, deserialize_with = "crate::json::whole")]
    duration_secs: i32,
    severity: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Thresholds beyond this measure nothing a machine reports, and they would
/// not survive a trip through JSON and back.
const MAX_THRESHOLD: f64 = 1e15;

fn check_rule(body: &RuleBody) -> Result<RuleInput<'_>, Problem> {
    let bad = |path: &str, message: &str| Problem::unprocessable("invalid_rule", path, message.to_owned());
    if body.name.trim().is_empty() || body.name.chars().count() > 200 {
        return Err(bad("/name", "1-200 characters"));
    }
    let kind = RuleKind::parse(&body.kind).ok_or_else(|| bad("/kind", "metric, check or agent_offline"))?;
    let severity = Severity::parse(&body.severity).ok_or_else(|| bad("/severity", "critical, warning or info"))?;
    let duration_secs = body.duration_secs;
    if !(0..=7 * 24 * 3600).contains(&duration_secs) {
        return Err(bad("/duration_secs", "0 to 604800"));
    }
    let mut comparison = None;
    if kind == RuleKind::Metric {
        if body.metric.as_deref().is_none_or(|m| m.trim().is_empty() || m.chars().count() > 120) {
            return Err(bad("/metric", "a metric rule names its metric"));
        }
        comparison = Some(
            body.comparison
                .as_deref()
                .and_then(Comparison::parse)
                .ok_or_else(|| bad("/comparison", ">, >=, < or <="))?,
        );
        if !body.threshold.is_some_and(|t| t.is_finite() && t.abs() <= MAX_THRESHOLD) {
            return Err(bad("/threshold", "a metric rule has a threshold between -1e15 and 1e15"));
        }
    } else if body.metric.is_some() || body.comparison.is_some() || body.threshold.is_some() {
        return Err(bad("/kind", "only metric rules have metric, comparison and threshold"));
    }
    Ok(RuleInput {
        name: body.name.trim(),
        kind,
        metric: body.metric.as_deref(),
        comparison,
        threshold: body.threshold,
        duration_secs,
        severity,
        enabled: body.enabled,
    })
}

/// A rule as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuleView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    rule: Rule,
}

/// The workspace's alert rules (every workspace starts with sensible ones).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/alert-rules", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<RuleView>)))]
pub(crate) async fn list_rules(
    scope: WorkspaceScope<perm::AlertsRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<RuleView>>, Problem> {
    let rules = state.db.read(&scope.workspace, |tx| Box::pin(tx.rules())).await?;
    Ok(Json(Page { items: rules.into_iter().map(|rule| RuleView { rule }).collect(), next_cursor: None }))
}

/// A rule as its change record shows it.
fn rule_details(rule: &Rule) -> serde_json::Value {
    serde_json::to_value(rule).expect("a rule serialises")
}

/// Add an alert rule.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/alert-rules", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::RuleDocument,
    responses((status = 201, body = RuleView),
              (status = 422, description = "Invalid rule", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_rule(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Response, Problem> {
    let input = check_rule(&body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rule = tx.insert_rule(&input).await?;
    changes::record(&mut tx, &scope, "alert_rule.created", &rule.id, rule_details(&rule)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(RuleView { rule })).into_response())
}

/// Replace an alert rule.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/alert-rules/{id}", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Rule id")),
    request_body = crate::schemas::RuleDocument,
    responses((status = 200, body = RuleView),
              (status = 404, description = "No such rule", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_rule(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<RuleId>,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Json<RuleView>, Problem> {
    let input = check_rule(&body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rule = tx.update_rule(id, &input).await?;
    if let Some(rule) = &rule {
        changes::record(&mut tx, &scope, "alert_rule.updated", &rule.id, rule_details(rule)).await?;
    }
    tx.commit().await?;
    rule.map(|rule| Json(RuleView { rule })).ok_or_else(|| not_found(&id))
}

/// Delete an alert rule (its alerts go with it).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/alert-rules/{id}", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such rule", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_rule(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<RuleId>,
) -> Result<StatusCode, Problem> {
    changes::delete(&state.db, &scope, "alert_rule.deleted", id, not_found(&id), move |tx| Box::pin(tx.delete_rule(id)))
        .await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// `open` or `resolved`.
    #[param(value_type = Option<anchor_domain::AlertState>, inline)]
    state: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    alert: Alert,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/alerts", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), AlertQuery, PageParams),
    responses((status = 200, body = Page<AlertView>)))]
pub(crate) async fn list_alerts(
    scope: WorkspaceScope<perm::AlertsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AlertQuery>,
    paging: Paging,
) -> Result<Json<Page<AlertView>>, Problem> {
    let alert_state = query
        .state
        .as_deref()
        .map(|s| {
            AlertState::parse(s).ok_or_else(|| Problem::unprocessable("invalid_query", "/state", "open or resolved"))
        })
        .transpose()?;
    let (after, limit) = (paging.after::<AlertId>()?, paging.fetch());
    let rows = state.db.read(&scope.workspace, |tx| Box::pin(tx.alerts(alert_state, after, limit))).await?;
    Ok(Json(paging.page(rows, |a| a.id, |alert| AlertView { alert })))
}

/// An agent's machine: facts, latest inventory, and the latest value of each series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentDetail {
    id: String,
    hostname: String,
    asset_id: Option<String>,
    os: Option<String>,
    #[schema(value_type = Object)]
    facts: serde_json::Value,
    last_seen_at: Option<String>,
    revoked: bool,
    /// Batches the agent reported it gave up on (spool full, refused as
    /// invalid, too large) in the last 30 days: telemetry that never arrived.
    batches_dropped: i64,
    /// `{name, value, at, labels?}`, the latest of each series in the last
    /// day (at most the agent's series limit, `agent_max_series`).
    #[schema(value_type = Vec<Object>)]
    metrics: Vec<serde_json::Value>,
}

/// One agent with its machine's facts and latest metrics.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentDetail),
              (status = 404, description = "No such agent", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_agent(
    scope: WorkspaceScope<perm::AssetsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<AgentId>,
) -> Result<Json<AgentDetail>, Problem> {
    let agent =
        state.db.agent(id).await?.filter(|a| a.workspace_id == scope.workspace.id()).ok_or_else(|| not_found(&id))?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let asset = tx.asset_of(id).await?;
    let metrics = tx.latest_metrics(id, i64::from(state.telemetry.limits.max_series)).await?;
    let batches_dropped = tx.batches_dropped(id, anchor_telemetry::batch::BATCHES_DROPPED).await?;
    tx.rollback().await?;
    let (asset_id, os, facts) = match asset {
        Some((id, os, facts)) => (Some(id.to_string()), Some(os), facts),
        None => (None, None, serde_json::Value::Null),
    };
    Ok(Json(AgentDetail {
        id: agent.id.to_string(),
        hostname: agent.hostname,
        asset_id,
        os,
        facts,
        last_seen_at: agent.last_seen_at.map(rfc3339),
        revoked: agent.revoked_at.is_some(),
        batches_dropped,
        metrics: metrics
            .into_iter()
            .map(|s| serde_json::json!({"name": s.name, "value": s.value, "at": rfc3339(s.at), "labels": s.labels}))
            .collect(),
    }))
}
