//! The control plane's HTTP API: callers, nodes, and node status callbacks.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::state::{Execution, Kind, MockState, Node, Registration, Webhook, new_id, now};

type Shared = Arc<MockState>;

pub(crate) fn router(state: Shared) -> Router {
    let guarded = Router::new()
        .route("/api/v1/execute/{target}", post(execute_sync))
        .route("/api/v1/execute/async/{target}", post(execute_async))
        .route("/api/v1/executions/batch-status", post(batch_status))
        .route("/api/v1/executions/{id}", get(get_execution))
        .route("/api/v1/executions/{id}/cancel", post(cancel))
        .route("/api/v1/executions/{id}/status", post(node_status))
        .route("/api/v1/nodes/register", post(register))
        .route("/api/v1/nodes/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/nodes/{id}/shutdown", post(node_shutdown))
        .route("/api/v1/discovery/capabilities", get(capabilities))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_key));
    Router::new().route("/api/v1/health", get(health)).merge(guarded).with_state(state)
}

fn error(status: StatusCode, error: &str, category: Option<&str>) -> Response {
    let mut body = json!({"error": error});
    if let Some(category) = category {
        body["error_category"] = category.into();
    }
    (status, Json(body)).into_response()
}

async fn require_key(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        let headers = req.headers();
        let given = headers.get("x-api-key").and_then(|v| v.to_str().ok()).or_else(|| {
            headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        });
        if given != Some(key.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized", "message": "invalid or missing API key"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn health() -> Json<Value> {
    Json(
        json!({"status": "healthy", "timestamp": now(), "version": "anchor-agentfield-mock", "checks": {"storage": "in-memory"}}),
    )
}

// ---- nodes ----------------------------------------------------------------

async fn register(State(state): State<Shared>, Json(registration): Json<Registration>) -> Response {
    if registration.id.is_empty() || url::Url::parse(&registration.base_url).is_err() {
        return error(StatusCode::BAD_REQUEST, "id and a valid base_url are required", None);
    }
    let id = registration.id.clone();
    let instance = registration.instance_id.clone();
    let previous = state
        .nodes
        .lock()
        .await
        .insert(id.clone(), Node { registration: Arc::new(registration), status: "starting".into(), reachable: true });
    // A new instance of a node fails what its previous instance was running.
    if let Some(previous) = previous.filter(|p| p.registration.instance_id != instance) {
        let stale: Vec<String> = state
            .executions
            .lock()
            .await
            .values()
            .filter(|e| e.node == id && !e.is_terminal() && e.instance_id == previous.registration.instance_id)
            .map(|e| e.id.clone())
            .collect();
        for exec in stale {
            state.finish(&exec, "failed", None, Some("agent node restarted".into()), None).await;
        }
    }
    (StatusCode::CREATED, Json(json!({"success": true, "node_id": id, "message": "node registered"}))).into_response()
}

#[derive(Deserialize)]
struct Heartbeat {
    #[serde(default)]
    status: Option<String>,
}

async fn heartbeat(State(state): State<Shared>, Path(id): Path<String>, body: Option<Json<Heartbeat>>) -> Response {
    match state.nodes.lock().await.get_mut(&id) {
        Some(node) => {
            node.status = body.and_then(|b| b.0.status).unwrap_or_else(|| "ready".into());
            Json(json!({"success": true, "node_id": id})).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "node not found", None),
    }
}

async fn node_shutdown(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match state.nodes.lock().await.get_mut(&id) {
        Some(node) => {
            node.status = "offline".into();
            (StatusCode::ACCEPTED, Json(json!({"success": true}))).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "node not found", None),
    }
}

async fn capabilities(State(state): State<Shared>) -> Json<Value> {
    let nodes = state.nodes.lock().await;
    let agents: Vec<Value> = nodes
        .values()
        .map(|n| {
            json!({
                "node_id": n.registration.id, "base_url": n.registration.base_url, "version": n.registration.version,
                "status": n.status, "reasoners": n.registration.reasoners, "skills": n.registration.skills,
                // What the `/status` polling found, as upstream's health monitor reports it.
                "health_status": if n.reachable { "active" } else { "inactive" },
            })
        })
        .collect();
    Json(json!({"agents": agents}))
}

// ---- executions -----------------------------------------------------------

#[derive(Deserialize)]
struct ExecuteBody {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    webhook: Option<Webhook>,
}

/// Run context passed on to the node.
struct Context {
    run_id: String,
    passthrough: Vec<(&'static str, String)>,
}

fn context(headers: &HeaderMap) -> Context {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let run_id = get("x-run-id").unwrap_or_else(|| new_id("run"));
    let passthrough = [
        ("X-Parent-Execution-ID", "x-parent-execution-id"),
        ("X-Session-ID", "x-session-id"),
        ("X-Actor-ID", "x-actor-id"),
    ]
    .into_iter()
    .filter_map(|(out, name)| get(name).map(|v| (out, v)))
    .collect();
    Context { run_id, passthrough }
}

/// Resolves `node.name` to a registered node and whether `name` is a reasoner or a skill.
async fn resolve(state: &Shared, target: &str) -> Result<(Arc<Registration>, String, Kind), Response> {
    let Some((node, name)) = target.split_once('.') else {
        return Err(error(StatusCode::BAD_REQUEST, "target must be node_id.reasoner_or_skill", None));
    };
    let nodes = state.nodes.lock().await;
    let Some(registered) = nodes.get(node) else {
        return Err(error(StatusCode::BAD_REQUEST, &format!("node {node} is not registered"), None));
    };
    let kind = if registered.registration.reasoners.iter().any(|r| r.id == name) {
        Kind::Reasoner
    } else if registered.registration.skills.iter().any(|s| s.id == name) {
        Kind::Skill
    } else {
        return Err(error(StatusCode::BAD_REQUEST, &format!("node {node} has no reasoner or skill {name}"), None));
    };
    // Shared, not copied: a registration holds every function's schemas.
    Ok((Arc::clone(&registered.registration), name.to_owned(), kind))
}

/// Loopback, private, link-local and unspecified hosts need an allowlist entry.
fn webhook_allowed(state: &Shared, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid webhook url: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    if state.config.webhook_allowed_hosts.iter().any(|h| h == &host) {
        return Ok(());
    }
    let internal = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    if internal { Err(format!("webhook host {host} is loopback or private and not allowed")) } else { Ok(()) }
}

async fn start(
    state: &Shared,
    target: &str,
    headers: &HeaderMap,
    webhook: Option<Webhook>,
) -> Result<(Execution, Arc<Registration>, Context, Option<String>), Response> {
    let (node, name, kind) = resolve(state, target).await?;
    let ctx = context(headers);
    let (webhook_registered, webhook_error) = match &webhook {
        Some(w) => match webhook_allowed(state, &w.url) {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e)),
        },
        None => (false, None),
    };
    let (done, _) = watch::channel(false);
    let exec = Execution {
        id: new_id("exec"),
        run_id: ctx.run_id.clone(),
        node: node.id.clone(),
        name,
        kind,
        instance_id: node.instance_id.clone(),
        status: "queued".into(),
        status_reason: None,
        result: None,
        error: None,
        error_details: None,
        created_at: now(),
        started_at: None,
        completed_at: None,
        started: Instant::now(),
        duration_ms: None,
        webhook,
        webhook_registered,
        done,
    };
    state.executions.lock().await.insert(exec.id.clone(), exec.clone());
    Ok((exec, node, ctx, webhook_error))
}

/// Calls the node; records the outcome unless the node answered 202.
/// Returns the HTTP status a sync caller should see on failure.
async fn invoke(
    state: &Shared,
    exec: &Execution,
    node: &Registration,
    ctx: &Context,
    input: &Value,
) -> Option<(StatusCode, String, &'static str)> {
    if let Some(e) = state.executions.lock().await.get_mut(&exec.id) {
        e.status = "running".into();
        e.started_at = Some(now());
    }
    let path = match exec.kind {
        Kind::Reasoner => "reasoners",
        Kind::Skill => "skills",
    };
    let url = format!("{}/{path}/{}", node.base_url.trim_end_matches('/'), exec.name);
    let mut request = state
        .http
        .post(&url)
        .timeout(state.config.node_timeout)
        .header("X-Run-ID", &exec.run_id)
        .header("X-Execution-ID", &exec.id)
        .header("X-Workflow-ID", &exec.run_id)
        .json(input);
    if let Some(token) = &state.config.node_token {
        request = request.bearer_auth(token);
    }
    for (name, value) in &ctx.passthrough {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(response) if response.status() == StatusCode::ACCEPTED => None, // the node reports later
        Ok(response) if response.status().is_success() => match response.json::<Value>().await {
            Ok(result) if result.is_object() => {
                state.finish(&exec.id, "succeeded", Some(result), None, None).await;
                None
            }
            _ => {
                state.finish(&exec.id, "failed", None, Some("node answered without a JSON object".into()), None).await;
                Some((StatusCode::BAD_GATEWAY, "bad response from agent node".into(), "bad_response"))
            }
        },
        Ok(response) => {
            let status = response.status();
            let details: Value = response.json().await.unwrap_or(Value::Null);
            let message = format!("agent node answered {status}");
            state.finish(&exec.id, "failed", None, Some(message.clone()), Some(details)).await;
            if status.is_server_error() {
                Some((StatusCode::BAD_GATEWAY, message, "agent_error"))
            } else {
                Some((status, message, "agent_error"))
            }
        }
        Err(e) if e.is_timeout() => {
            state.finish(&exec.id, "timeout", None, Some("agent node timed out".into()), None).await;
            Some((StatusCode::GATEWAY_TIMEOUT, "agent node timed out".into(), "agent_timeout"))
        }
        Err(_) => {
            state.finish(&exec.id, "failed", None, Some("agent node unreachable".into()), None).await;
            Some((StatusCode::GATEWAY_TIMEOUT, "agent node unreachable".into(), "agent_unreachable"))
        }
    }
}

async fn execute_sync(
    State(state): State<Shared>,
    Path(target): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ExecuteBody>,
) -> Response {
    let ExecuteBody { input, webhook } = body;
    let (exec, node, ctx, _) = match start(&state, &target, &headers, webhook).await {
        Ok(started) => started,
        Err(response) => return response,
    };
    let mut done = exec.done.subscribe();
    if let Some((status, message, category)) = invoke(&state, &exec, &node, &ctx, &input).await {
        return error(status, &message, Some(category));
    }
    // The node may have answered 202: wait for its status callback.
    // (The `Ref` wait_for returns is a lock guard: drop it inside.)
    let in_time =
        tokio::time::timeout(
            state.config.node_timeout,
            async move { done.wait_for(|finished| *finished).await.is_ok() },
        )
        .await
        .unwrap_or(false);
    if !in_time {
        state.finish(&exec.id, "timeout", None, Some("no result from the agent node in time".into()), None).await;
    }
    let finished = state.executions.lock().await.get(&exec.id).cloned().expect("stored");
    if finished.status != "succeeded" {
        return error(
            StatusCode::BAD_GATEWAY,
            finished.error.as_deref().unwrap_or("execution failed"),
            Some("agent_error"),
        );
    }
    let mut response = Json(json!({
        "execution_id": finished.id, "run_id": finished.run_id, "status": "succeeded",
        "result": finished.result, "duration_ms": finished.duration_ms, "finished_at": finished.completed_at,
        "webhook_registered": finished.webhook_registered,
    }))
    .into_response();
    let headers = response.headers_mut();
    if let (Ok(id), Ok(run)) = (finished.id.parse(), finished.run_id.parse()) {
        headers.insert("X-Execution-ID", id);
        headers.insert("X-Run-ID", run);
    }
    response
}

async fn execute_async(
    State(state): State<Shared>,
    Path(target): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ExecuteBody>,
) -> Response {
    let ExecuteBody { input, webhook } = body;
    let (exec, node, ctx, webhook_error) = match start(&state, &target, &headers, webhook).await {
        Ok(started) => started,
        Err(response) => return response,
    };
    let accepted = json!({
        "execution_id": exec.id, "run_id": exec.run_id, "workflow_id": exec.run_id, "status": "queued",
        "target": exec.target(), "type": exec.kind, "created_at": exec.created_at, "enqueued_at": now(),
        "webhook_registered": exec.webhook_registered, "webhook_error": webhook_error,
    });
    tokio::spawn({
        let state = Arc::clone(&state);
        async move {
            let _ = invoke(&state, &exec, &node, &ctx, &input).await;
        }
    });
    (StatusCode::ACCEPTED, Json(accepted)).into_response()
}

async fn get_execution(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match state.executions.lock().await.get(&id) {
        Some(exec) => Json(exec.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "execution not found", None),
    }
}

#[derive(Deserialize)]
struct Batch {
    execution_ids: Vec<String>,
}

async fn batch_status(State(state): State<Shared>, Json(batch): Json<Batch>) -> Response {
    if batch.execution_ids.len() > 500 {
        return error(StatusCode::BAD_REQUEST, "at most 500 execution ids", None);
    }
    let executions = state.executions.lock().await;
    let map: HashMap<&String, Value> = batch
        .execution_ids
        .iter()
        .map(|id| (id, executions.get(id).map_or_else(|| json!({"status": "not_found"}), Execution::view)))
        .collect();
    Json(json!(map)).into_response()
}

#[derive(Deserialize, Default)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn cancel(State(state): State<Shared>, Path(id): Path<String>, body: Option<Json<CancelBody>>) -> Response {
    let reason = body.and_then(|b| b.0.reason);
    let (previous, node) = {
        let executions = state.executions.lock().await;
        let Some(exec) = executions.get(&id) else { return error(StatusCode::NOT_FOUND, "execution not found", None) };
        if exec.is_terminal() {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "invalid_state", "message": format!("execution is already {}", exec.status)})),
            )
                .into_response();
        }
        (exec.status.clone(), exec.node.clone())
    };
    // Looked up after the executions lock is released: never both at once.
    let node_url = state.nodes.lock().await.get(&node).map(|n| n.registration.base_url.clone());
    if let Some(e) = state.executions.lock().await.get_mut(&id) {
        e.status_reason = reason.clone();
    }
    state.finish(&id, "cancelled", None, None, None).await;
    if let Some(base) = node_url {
        let url = format!("{}/_internal/executions/{id}/cancel", base.trim_end_matches('/'));
        let mut request = state.http.post(url);
        if let Some(token) = &state.config.node_token {
            request = request.bearer_auth(token);
        }
        tokio::spawn(async move {
            let _ = request.send().await; // best effort
        });
    }
    Json(json!({"execution_id": id, "previous_status": previous, "status": "cancelled", "reason": reason, "cancelled_at": now()}))
        .into_response()
}

#[derive(Deserialize)]
struct NodeStatus {
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status_reason: Option<String>,
}

/// `POST /api/v1/executions/{id}/status` from a node that answered 202.
async fn node_status(State(state): State<Shared>, Path(id): Path<String>, Json(update): Json<NodeStatus>) -> Response {
    {
        let mut executions = state.executions.lock().await;
        let Some(exec) = executions.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "execution not found", None);
        };
        if exec.is_terminal() {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "invalid_state", "message": "execution is already terminal"})),
            )
                .into_response();
        }
        exec.status_reason = update.status_reason.clone();
        if !crate::state::TERMINAL.contains(&update.status.as_str()) {
            exec.status = update.status.clone();
            return Json(json!({"success": true})).into_response();
        }
    }
    if update.status == "succeeded" && !update.result.as_ref().is_some_and(Value::is_object) {
        return error(StatusCode::BAD_REQUEST, "a succeeded status needs a JSON object result", None);
    }
    state.finish(&id, &update.status, update.result, update.error, None).await;
    Json(json!({"success": true})).into_response()
}
