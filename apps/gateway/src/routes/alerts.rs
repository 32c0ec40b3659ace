//! Alert rules, alerts, and an agent's latest state.

use anchor_domain::AgentId;
use anchor_store::alerts::{Alert, Rule, RuleInput};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
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

/// A rule as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CPU saturated", "kind": "metric", "metric": "cpu.usage_percent", "comparison": ">=", "threshold": 95, "duration_secs": 600, "severity": "warning"}))]
pub(crate) struct RuleBody {
    name: String,
    /// `metric`, `check` or `agent_offline`.
    kind: String,
    /// For `metric`: the metric's name, e.g. `disk.used_percent`.
    metric: Option<String>,
    /// For `metric`: `>`, `>=`, `<`, `<=`.
    comparison: Option<String>,
    threshold: Option<f64>,
    /// How long the condition must hold (and be clear) before the alert opens (resolves).
    #[serde(default)]
    duration_secs: i32,
    /// `critical` (automation opens a ticket), `warning`, `info`.
    severity: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

fn check_rule(body: &RuleBody) -> Result<RuleInput<'_>, Problem> {
    let bad = |path: &str, message: &str| Problem::unprocessable("invalid_rule", path, message.to_owned());
    if body.name.trim().is_empty() || body.name.chars().count() > 200 {
        return Err(bad("/name", "1-200 characters"));
    }
    if !["metric", "check", "agent_offline"].contains(&body.kind.as_str()) {
        return Err(bad("/kind", "metric, check or agent_offline"));
    }
    if !["critical", "warning", "info"].contains(&body.severity.as_str()) {
        return Err(bad("/severity", "critical, warning or info"));
    }
    if !(0..=7 * 24 * 3600).contains(&body.duration_secs) {
        return Err(bad("/duration_secs", "0 to 604800"));
    }
    let metric_rule = body.kind == "metric";
    if metric_rule {
        if body.metric.as_deref().is_none_or(|m| m.is_empty() || m.len() > 120) {
            return Err(bad("/metric", "a metric rule names its metric"));
        }
        if !body.comparison.as_deref().is_some_and(|c| [">", ">=", "<", "<="].contains(&c)) {
            return Err(bad("/comparison", ">, >=, < or <="));
        }
        if !body.threshold.is_some_and(f64::is_finite) {
            return Err(bad("/threshold", "a metric rule has a finite threshold"));
        }
    } else if body.metric.is_some() || body.comparison.is_some() || body.threshold.is_some() {
        return Err(bad("/kind", "only metric rules have metric, comparison and threshold"));
    }
    Ok(RuleInput {
        name: body.name.trim(),
        kind: &body.kind,
        metric: body.metric.as_deref(),
        comparison: body.comparison.as_deref(),
        threshold: body.threshold,
        duration_secs: body.duration_secs,
        severity: &body.severity,
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
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rules = tx.rules().await?;
    tx.rollback().await?;
    Ok(Json(Page { items: rules.into_iter().map(|rule| RuleView { rule }).collect(), next_cursor: None }))
}

/// A rule as its change record shows it.
fn rule_details(rule: &Rule) -> serde_json::Value {
    serde_json::to_value(rule).expect("a rule serialises")
}

/// Add an alert rule.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/alert-rules", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = RuleBody,
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
    request_body = RuleBody,
    responses((status = 200, body = RuleView),
              (status = 404, description = "No such rule", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_rule(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Json<RuleView>, Problem> {
    let input = check_rule(&body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rule = tx.update_rule(&id, &input).await?;
    if let Some(rule) = &rule {
        changes::record(&mut tx, &scope, "alert_rule.updated", &rule.id, rule_details(rule)).await?;
    }
    tx.commit().await?;
    rule.map(|rule| Json(RuleView { rule })).ok_or_else(|| Problem::not_found(format!("no alert rule {id:?}")))
}

/// Delete an alert rule (its alerts go with it).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/alert-rules/{id}", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such rule", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_rule(
    scope: WorkspaceScope<perm::AlertsManage>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let deleted = tx.delete_rule(&id).await?;
    if deleted {
        changes::record(&mut tx, &scope, "alert_rule.deleted", &id, json!({})).await?;
    }
    tx.commit().await?;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(Problem::not_found(format!("no alert rule {id:?}"))) }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// `open` or `resolved`.
    state: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    alert: Alert,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/alerts", tag = "alerts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), AlertQuery),
    responses((status = 200, body = Page<AlertView>)))]
pub(crate) async fn list_alerts(
    scope: WorkspaceScope<perm::AlertsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Json<Page<AlertView>>, Problem> {
    if query.state.as_deref().is_some_and(|s| s != "open" && s != "resolved") {
        return Err(Problem::unprocessable("invalid_query", "/state", "open or resolved"));
    }
    let page = PageParams { limit: query.limit, cursor: query.cursor };
    let limit = page.limit()?;
    let cursor = page.cursor()?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let rows = tx.alerts(query.state.as_deref(), cursor.as_deref(), limit + 1).await?;
    tx.rollback().await?;
    Ok(Json(Page::from_rows(rows, limit, |a| a.id.clone(), |alert| AlertView { alert })))
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
    /// `{name, value, at, labels?}`, the latest of each series in the last day.
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
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<AgentDetail>, Problem> {
    let not_found = || Problem::not_found(format!("no agent {id:?} in this workspace"));
    let parsed: AgentId = id.parse().map_err(|_| not_found())?;
    let agent =
        state.db.agent(parsed).await?.filter(|a| a.workspace_id == scope.workspace.id()).ok_or_else(not_found)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let asset = tx.asset_of(parsed).await?;
    let metrics = tx.latest_metrics(parsed).await?;
    let batches_dropped = tx.batches_dropped(parsed, anchor_telemetry::batch::BATCHES_DROPPED).await?;
    tx.rollback().await?;
    let (asset_id, os, facts) = match asset {
        Some((id, os, facts)) => (Some(id), Some(os), facts),
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
