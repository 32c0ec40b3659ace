//! The client against a scripted control plane speaking the documented shapes.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use anchor_agentfield::{
    AgentFieldClient, AgentFieldError, ClientConfig, ErrorCategory, ExecuteRequest, ExecutionStatus,
    WebhookRegistration,
};
use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A scripted answer: status, body, optional Retry-After.
type Answer = (u16, Value, Option<&'static str>);

/// Answers each request with the next scripted answer.
#[derive(Clone, Default)]
struct Plane {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Plane {
    fn answer(&self, status: u16, body: Value) -> &Self {
        self.script.lock().expect("lock").push_back((status, body, None));
        self
    }

    fn answer_retry_after(&self, status: u16, body: Value, retry_after: &'static str) -> &Self {
        self.script.lock().expect("lock").push_back((status, body, Some(retry_after)));
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn start(plane: Plane, api_key: Option<&str>) -> AgentFieldClient {
    let handler = {
        let plane = plane.clone();
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let plane = plane.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                plane.seen.lock().expect("lock").push(Seen { method, path: uri.path().to_owned(), headers, body });
                let (status, answer, retry_after) = plane.script.lock().expect("lock").pop_front().unwrap_or((
                    500,
                    json!({"error": "unscripted"}),
                    None,
                ));
                let mut response = (StatusCode::from_u16(status).expect("status"), axum::Json(answer)).into_response();
                if let Some(r) = retry_after {
                    response.headers_mut().insert("retry-after", r.parse().expect("header"));
                }
                response
            }
        }
    };
    let app = Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let mut config = ClientConfig::new(base);
    config.api_key = api_key.map(|k| k.to_owned().into());
    config.retry_base = Duration::from_millis(5);
    config.max_retries = 3;
    AgentFieldClient::new(config).expect("client")
}

fn request() -> ExecuteRequest {
    ExecuteRequest {
        target: "anchor-node.create_ticket".to_owned(),
        input: json!({"title": "Printer offline"}),
        webhook: Some(WebhookRegistration {
            url: "http://127.0.0.1:1/cb".to_owned(),
            secret: Some("s3cret".to_owned()),
            headers: None,
        }),
        run_id: Some("run_1".to_owned()),
        actor_id: Some("alice".to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn execute_sends_the_documented_request_and_reads_the_answer() {
    let plane = Plane::default();
    plane.answer(200, json!({"execution_id": "exec_1", "run_id": "run_1", "status": "succeeded", "result": {"ticket_id": "tkt_1"}, "duration_ms": 12, "finished_at": "2026-11-24T07:00:00Z", "webhook_registered": true}));
    plane.answer(202, json!({"execution_id": "exec_2", "run_id": "run_1", "workflow_id": "run_1", "status": "queued", "target": "anchor-node.create_ticket", "type": "skill", "created_at": "x", "enqueued_at": "y", "webhook_registered": false, "webhook_error": "loopback refused"}));
    let client = start(plane.clone(), Some("key-123")).await;

    let done = client.execute(&request()).await.expect("sync");
    assert_eq!((done.execution_id.as_str(), done.status), ("exec_1", ExecutionStatus::Succeeded));
    assert_eq!(done.result, json!({"ticket_id": "tkt_1"}));
    let queued = client.execute_async(&request()).await.expect("async");
    assert_eq!(
        (queued.status, queued.kind.as_deref(), queued.webhook_error.as_deref()),
        (ExecutionStatus::Queued, Some("skill"), Some("loopback refused"))
    );

    let seen = plane.seen();
    assert_eq!(seen[0].path, "/api/v1/execute/anchor-node.create_ticket");
    assert_eq!(seen[1].path, "/api/v1/execute/async/anchor-node.create_ticket");
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.headers["x-api-key"], "key-123");
        assert_eq!(s.headers["x-run-id"], "run_1");
        assert_eq!(s.headers["x-actor-id"], "alice");
        assert_eq!(s.body["input"], json!({"title": "Printer offline"}));
        assert_eq!(s.body["webhook"]["secret"], "s3cret");
    }
}

#[tokio::test]
async fn status_batch_cancel_and_health() {
    let plane = Plane::default();
    plane
        .answer(200, json!({"execution_id": "exec_1", "run_id": "run_1", "status": "running", "started_at": "x", "webhook_registered": false}))
        .answer(404, json!({"error": "execution not found"}))
        .answer(200, json!({"exec_1": {"status": "succeeded", "result": {}}, "exec_9": {"status": "not_found"}}))
        .answer(200, json!({"execution_id": "exec_1", "previous_status": "running", "status": "cancelled", "reason": "user", "cancelled_at": "z"}))
        .answer(409, json!({"error": "invalid_state", "message": "execution already succeeded"}))
        .answer(200, json!({"status": "healthy", "timestamp": "t", "version": "0.1.80", "checks": {}}));
    let client = start(plane.clone(), None).await;
    assert_eq!(client.execution("exec_1").await.expect("get").status, ExecutionStatus::Running);
    assert_eq!(client.execution("exec_404").await, Err(AgentFieldError::NotFound));
    let batch = client.batch_status(&["exec_1".into(), "exec_9".into()]).await.expect("batch");
    assert!(batch["exec_1"].status.is_terminal());
    assert_eq!(batch["exec_9"].status, ExecutionStatus::NotFound);
    assert_eq!(client.cancel("exec_1", Some("user")).await.expect("cancel").previous_status, "running");
    assert_eq!(
        client.cancel("exec_1", None).await,
        Err(AgentFieldError::InvalidState("execution already succeeded".into()))
    );
    assert_eq!(client.health().await.expect("health").version.as_deref(), Some("0.1.80"));
    let seen = plane.seen();
    assert_eq!(seen[2].body, json!({"execution_ids": ["exec_1", "exec_9"]}));
    assert_eq!(seen[3].path, "/api/v1/executions/exec_1/cancel");
    assert!(seen.iter().all(|s| !s.headers.contains_key("x-api-key")), "no key configured, none sent");
    assert!(client.batch_status(&vec!["e".to_owned(); 501]).await.is_err(), "at most 500");
}

#[tokio::test]
async fn overload_is_retried_with_backoff_and_retry_after() {
    let plane = Plane::default();
    plane
        .answer_retry_after(429, json!({"error": "too many", "error_category": "concurrency_limit"}), "0")
        .answer(503, json!({"error": "queue full"}))
        .answer(202, json!({"execution_id": "exec_3", "run_id": "run_3", "status": "queued"}));
    let client = start(plane.clone(), None).await;
    assert_eq!(client.execute_async(&request()).await.expect("eventually").execution_id, "exec_3");
    assert_eq!(plane.seen().len(), 3);

    for _ in 0..4 {
        plane.answer(504, json!({"error": "node timed out", "error_category": "agent_timeout"}));
    }
    let err = client.execute(&request()).await.expect_err("gives up");
    assert_eq!(
        err,
        AgentFieldError::Unavailable {
            status: 504,
            category: Some(ErrorCategory::AgentTimeout),
            message: "node timed out".into()
        }
    );
    assert!(err.is_retryable());
    assert_eq!(plane.seen().len(), 3 + 4, "one try and three retries");
}

#[tokio::test]
async fn documented_errors_are_typed_and_not_retried() {
    let plane = Plane::default();
    plane
        .answer(400, json!({"error": "unknown target anchor-node.nope"}))
        .answer(401, json!({"error": "unauthorized", "message": "bad key"}))
        .answer(502, json!({"error": "node answered 500", "error_category": "agent_error"}))
        .answer(422, json!({"error": "title is required", "error_category": "agent_error"}))
        .answer(200, json!("not an object"))
        // A node's own 400, 404 and 409, propagated: the node's errors, not
        // the control plane's "unknown target", "no such execution" or
        // "already finished".
        .answer(400, json!({"error": "bad input", "error_category": "agent_error"}))
        .answer(404, json!({"error": "no such ticket", "error_category": "agent_error"}))
        .answer(409, json!({"error": "ticket closed", "error_category": "agent_error"}));
    let client = start(plane.clone(), Some("wrong")).await;
    assert!(matches!(client.execute(&request()).await, Err(AgentFieldError::UnknownTarget(_))));
    assert_eq!(client.execute(&request()).await, Err(AgentFieldError::Unauthorized("bad key".into())));
    assert!(matches!(
        client.execute(&request()).await,
        Err(AgentFieldError::Agent { status: 502, category: Some(ErrorCategory::AgentError), .. })
    ));
    assert!(matches!(client.execute(&request()).await, Err(AgentFieldError::Agent { status: 422, .. })));
    assert!(matches!(client.execute(&request()).await, Err(AgentFieldError::Decode(_))));
    for status in [400, 404, 409] {
        assert!(
            matches!(client.execute(&request()).await, Err(AgentFieldError::Agent { status: s, .. }) if s == status),
            "a node's {status}"
        );
    }
    assert_eq!(plane.seen().len(), 8, "none of these is retried");

    let bad = ExecuteRequest { target: "no-dot".into(), ..Default::default() };
    assert!(matches!(client.execute(&bad).await, Err(AgentFieldError::InvalidRequest(_))));
    assert!(matches!(client.execution("../etc").await, Err(AgentFieldError::InvalidRequest(_))));
}

#[tokio::test]
async fn an_unreachable_control_plane_is_a_retryable_transport_error() {
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.retry_base = Duration::from_millis(1);
    config.max_retries = 1;
    let client = AgentFieldClient::new(config).expect("client");
    let err = client.health().await.expect_err("down");
    assert!(matches!(err, AgentFieldError::Transport(_)) && err.is_retryable(), "{err:?}");
}
