//! The mock speaks the protocol of `agentfield.md`: exercised with Anchor's
//! own client as the caller and a small node of the test's own.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anchor_agentfield::{
    AgentFieldClient, AgentFieldError, ClientConfig, ExecuteRequest, ExecutionStatus, WebhookRegistration,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::Path,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

const KEY: &str = "mock-key";

#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
}

struct World {
    mock: String,
    client: AgentFieldClient,
    http: reqwest::Client,
    node_calls: Recorder,
    hooks: Recorder,
    hook_failures: Arc<Mutex<u32>>,
    _shutdown: CancellationToken,
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

/// A node hosting `triage` (answers at once), `create_ticket` (202, then a
/// status callback), `broken` (500) and `slow` (never answers in time).
async fn start_node(mock: String, calls: Recorder) -> String {
    let app = Router::new()
        .route("/status", get(|| async { Json(json!({"status": "running", "node_id": "anchor-node"})) }))
        .route(
            "/reasoners/{name}",
            post({
                let calls = calls.clone();
                move |Path(name): Path<String>, headers: HeaderMap, Json(input): Json<Value>| {
                    calls.calls.lock().expect("lock").push((name, headers, input.clone()));
                    async move { Json(json!({"priority": "p2", "echo": input})) }
                }
            }),
        )
        .route(
            "/skills/{name}",
            post({
                let calls = calls.clone();
                move |Path(name): Path<String>, headers: HeaderMap, Json(input): Json<Value>| {
                    calls.calls.lock().expect("lock").push((name.clone(), headers.clone(), input));
                    let mock = mock.clone();
                    async move {
                        match name.as_str() {
                            "create_ticket" => {
                                let execution = headers["x-execution-id"].to_str().expect("id").to_owned();
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    let _ = anchor_testkit::http_client()
                                        .post(format!("{mock}/api/v1/executions/{execution}/status"))
                                        .header("X-API-Key", KEY)
                                        .json(&json!({"status": "succeeded", "result": {"ticket_id": "tkt_1"}}))
                                        .send()
                                        .await;
                                });
                                (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response()
                            }
                            "broken" => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "database down"})))
                                .into_response(),
                            _ => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                Json(json!({})).into_response()
                            }
                        }
                    }
                }
            }),
        )
        .route("/_internal/executions/{id}/cancel", post(|| async { StatusCode::OK }));
    serve(app).await
}

async fn world() -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mock = format!("http://{}", listener.local_addr().expect("addr"));
    let config = anchor_agentfield_mock::Config {
        api_key: Some(KEY.to_owned()),
        webhook_allowed_hosts: vec!["127.0.0.1".to_owned()],
        webhook_attempts: 3,
        webhook_backoff: Duration::from_millis(20),
        node_timeout: Duration::from_secs(2),
        status_poll: Duration::from_millis(200),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(anchor_agentfield_mock::run(config, listener, shutdown.clone()));

    let node_calls = Recorder::default();
    let node = start_node(mock.clone(), node_calls.clone()).await;
    let hooks = Recorder::default();
    let hook_failures = Arc::new(Mutex::new(0_u32));

    let http = anchor_testkit::http_client();
    let registered = http
        .post(format!("{mock}/api/v1/nodes/register"))
        .header("X-API-Key", KEY)
        .json(&json!({
            "id": "anchor-node", "base_url": node, "version": "1.0.0", "instance_id": "i-1",
            "reasoners": [{"id": "triage", "input_schema": {"type": "object"}, "output_schema": {"type": "object"}}],
            "skills": [{"id": "create_ticket", "input_schema": {"type": "object"}}, {"id": "broken"}, {"id": "slow"}],
            "communication_config": {"protocols": ["http"], "heartbeat_interval": "30s"}, "metadata": {}
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let mut cfg = ClientConfig::new(mock.clone());
    cfg.api_key = Some(KEY.to_owned().into());
    cfg.max_retries = 0;
    let client = AgentFieldClient::new(cfg).expect("client");
    World { mock, client, http, node_calls, hooks, hook_failures, _shutdown: shutdown }
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the mock's discovery endpoint says about the nodes.
async fn capabilities(w: &World) -> Value {
    let url = format!("{}/api/v1/discovery/capabilities", w.mock);
    w.http.get(url).header("X-API-Key", KEY).send().await.expect("send").json().await.expect("json")
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn api_key_health_and_discovery() {
    let w = world().await;
    let refused = w
        .http
        .post(format!("{}/api/v1/execute/anchor-node.triage", w.mock))
        .json(&json!({"input": {}}))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.expect("json")["error"], "unauthorized");
    let bearer =
        w.http.get(format!("{}/api/v1/discovery/capabilities", w.mock)).bearer_auth(KEY).send().await.expect("send");
    let caps: Value = bearer.json().await.expect("json");
    assert_eq!(caps["agents"][0]["node_id"], "anchor-node");
    assert_eq!(w.client.health().await.expect("health").status, "healthy");

    // The control plane polls every node's /status: a node nobody answers
    // for is reported inactive, one that answers stays active.
    let registered = w
        .http
        .post(format!("{}/api/v1/nodes/register", w.mock))
        .header("X-API-Key", KEY)
        .json(&json!({
            "id": "gone-node", "base_url": "http://127.0.0.1:9", "version": "1.0.0", "instance_id": "i-9",
            "reasoners": [], "skills": [], "communication_config": {"protocols": ["http"]}, "metadata": {}
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let caps = capabilities(&w).await;
        let health = |id: &str| {
            caps["agents"].as_array().expect("agents").iter().find(|a| a["node_id"] == id).expect("listed")
                ["health_status"]
                .clone()
        };
        if health("gone-node") == "inactive" {
            assert_eq!(health("anchor-node"), "active");
            break;
        }
        assert!(Instant::now() < deadline, "the status poll never marked the silent node: {caps}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sync_execute_routes_the_bare_input_with_the_documented_headers() {
    let w = world().await;
    let request = ExecuteRequest {
        target: "anchor-node.triage".into(),
        input: json!({"alert": "disk full"}),
        run_id: Some("run_42".into()),
        actor_id: Some("alice".into()),
        ..Default::default()
    };
    let done = w.client.execute(&request).await.expect("sync");
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.run_id, "run_42");
    assert_eq!(done.result["echo"], json!({"alert": "disk full"}));
    let calls = w.node_calls.calls.lock().expect("lock").clone();
    let (name, headers, input) = &calls[0];
    assert_eq!(name, "triage");
    assert_eq!(input, &json!({"alert": "disk full"}), "the node gets the bare input");
    assert_eq!(headers["x-run-id"], "run_42");
    assert_eq!(headers["x-workflow-id"], "run_42");
    assert_eq!(headers["x-actor-id"], "alice");
    assert_eq!(headers["x-execution-id"].to_str().expect("id"), done.execution_id);
    let stored = w.client.execution(&done.execution_id).await.expect("get");
    assert_eq!(stored.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn async_execute_with_a_node_callback_and_a_signed_retried_webhook() {
    let w = world().await;
    *w.hook_failures.lock().expect("lock") = 2; // the receiver is down for two attempts
    let hooks = format!("{}/hooks", receiver_of(&w).await);
    let request = ExecuteRequest {
        target: "anchor-node.create_ticket".into(),
        input: json!({"title": "Printer offline"}),
        webhook: Some(WebhookRegistration { url: hooks, secret: Some("whsecret".into()), headers: None }),
        ..Default::default()
    };
    let accepted = w.client.execute_async(&request).await.expect("async");
    assert_eq!(
        (accepted.status, accepted.kind.as_deref(), accepted.webhook_registered),
        (ExecutionStatus::Queued, Some("skill"), true)
    );
    let id = accepted.execution_id.clone();
    wait_until("the webhook", || !w.hooks.calls.lock().expect("lock").is_empty()).await;
    let (_, headers, body) = w.hooks.calls.lock().expect("lock")[0].clone();
    assert_eq!(body["event"], "execution.completed");
    assert_eq!(body["execution_id"], id.as_str());
    assert_eq!(body["result"], json!({"ticket_id": "tkt_1"}));
    // The receiver checked the HMAC over the raw body before recording it.
    assert!(headers["x-agentfield-signature"].to_str().expect("sig").starts_with("sha256="));
    assert_eq!(*w.hook_failures.lock().expect("lock"), 0, "two failed attempts before success");
    let stored = w.client.execution(&id).await.expect("get");
    assert_eq!((stored.status, stored.result), (ExecutionStatus::Succeeded, Some(json!({"ticket_id": "tkt_1"}))));
    // A second status callback after the terminal one is refused.
    let again = w
        .http
        .post(format!("{}/api/v1/executions/{id}/status", w.mock))
        .header("X-API-Key", KEY)
        .json(&json!({"status": "running"}))
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 409);
}

/// Starts a webhook receiver: refuses while `hook_failures` lasts, then
/// verifies the signature and records into `w.hooks`.
async fn receiver_of(w: &World) -> String {
    let (calls, failures) = (w.hooks.clone(), Arc::clone(&w.hook_failures));
    let app = Router::new().route(
        "/hooks",
        post(move |headers: HeaderMap, body: Bytes| {
            let (calls, failures) = (calls.clone(), Arc::clone(&failures));
            async move {
                {
                    let mut left = failures.lock().expect("lock");
                    if *left > 0 {
                        *left -= 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                let expected = sign("whsecret", &body);
                assert_eq!(
                    headers["x-agentfield-signature"].to_str().expect("sig"),
                    expected,
                    "HMAC over the raw body"
                );
                calls.calls.lock().expect("lock").push((
                    "hook".into(),
                    headers,
                    serde_json::from_slice(&body).expect("json"),
                ));
                StatusCode::OK
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn node_failures_and_unknown_targets_have_the_documented_answers() {
    let w = world().await;
    let broken = ExecuteRequest { target: "anchor-node.broken".into(), input: json!({}), ..Default::default() };
    let err = w.client.execute(&broken).await.expect_err("node 500");
    assert!(matches!(err, AgentFieldError::Agent { status: 502, .. }), "{err:?}");
    let unknown = ExecuteRequest { target: "anchor-node.nope".into(), input: json!({}), ..Default::default() };
    assert!(matches!(w.client.execute(&unknown).await, Err(AgentFieldError::UnknownTarget(_))));
    let no_node = ExecuteRequest { target: "ghost.triage".into(), input: json!({}), ..Default::default() };
    assert!(matches!(w.client.execute(&no_node).await, Err(AgentFieldError::UnknownTarget(_))));
    assert_eq!(w.client.execution("exec_missing").await, Err(AgentFieldError::NotFound));
    let slow = ExecuteRequest { target: "anchor-node.slow".into(), input: json!({}), ..Default::default() };
    let err = w.client.execute(&slow).await.expect_err("times out");
    assert!(matches!(err, AgentFieldError::Unavailable { status: 504, .. }), "{err:?}");
}

#[tokio::test]
async fn cancel_batch_status_and_webhook_host_policy() {
    let w = world().await;
    let slow = ExecuteRequest {
        target: "anchor-node.slow".into(),
        input: json!({}),
        webhook: Some(WebhookRegistration { url: "http://10.1.2.3/hooks".into(), secret: None, headers: None }),
        ..Default::default()
    };
    let accepted = w.client.execute_async(&slow).await.expect("async");
    assert!(!accepted.webhook_registered, "private hosts need the allowlist");
    assert!(accepted.webhook_error.as_deref().is_some_and(|e| e.contains("not allowed")));
    let cancelled = w.client.cancel(&accepted.execution_id, Some("no longer needed")).await.expect("cancel");
    assert_eq!((cancelled.status.as_str(), cancelled.reason.as_deref()), ("cancelled", Some("no longer needed")));
    assert!(matches!(w.client.cancel(&accepted.execution_id, None).await, Err(AgentFieldError::InvalidState(_))));
    let batch = w.client.batch_status(&[accepted.execution_id.clone(), "exec_unknown".into()]).await.expect("batch");
    assert_eq!(batch[&accepted.execution_id].status, ExecutionStatus::Cancelled);
    assert_eq!(batch["exec_unknown"].status, ExecutionStatus::NotFound);
}

#[tokio::test]
async fn a_restarted_node_fails_what_its_previous_instance_was_running() {
    let w = world().await;
    let slow = ExecuteRequest { target: "anchor-node.slow".into(), input: json!({}), ..Default::default() };
    let accepted = w.client.execute_async(&slow).await.expect("async");
    let caps = capabilities(&w).await;
    let base = caps["agents"][0]["base_url"].as_str().expect("base").to_owned();
    let again = w
        .http
        .post(format!("{}/api/v1/nodes/register", w.mock))
        .header("X-API-Key", KEY)
        .json(&json!({"id": "anchor-node", "base_url": base, "instance_id": "i-2", "reasoners": [{"id": "triage"}], "skills": [{"id": "slow"}]}))
        .send()
        .await
        .expect("register");
    assert_eq!(again.status(), 201);
    let stored = w.client.execution(&accepted.execution_id).await.expect("get");
    assert_eq!(stored.status, ExecutionStatus::Failed);
    let heartbeat = w
        .http
        .post(format!("{}/api/v1/nodes/anchor-node/heartbeat", w.mock))
        .header("X-API-Key", KEY)
        .json(&json!({"status": "ready"}))
        .send()
        .await
        .expect("hb");
    assert_eq!(heartbeat.status(), 200);
}
