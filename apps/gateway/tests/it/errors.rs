//! Every way a request can fail answers with an RFC 9457 problem.

use std::time::Duration;

use anchor_gateway::{AppState, auth::Public, json::ApiJson};
use axum::{
    Json, Router,
    routing::{get, post},
};
use serde::Deserialize;

use crate::{TestApp, problem};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct NewTicket {
    subject: String,
    priority: u8,
}

/// Routes of the test's own, under the real middleware stack.
fn test_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/test/tickets", post(|_: Public, ApiJson(t): ApiJson<NewTicket>| async move { Json(t.subject) }))
        .route("/api/v1/test/open", get(|| async { "no authorization decision was made here" }))
        .route(
            "/api/v1/test/slow",
            get(|_: Public| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/api/v1/test/panic",
            get(|_: Public| async {
                #[allow(clippy::panic)]
                if true {
                    panic!("boom: internal detail");
                }
                "unreachable"
            }),
        )
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(test_routes(), Duration::from_secs(1)).await
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let app = TestApp::spawn().await;
    problem(app.get("/api/v1/nope").await, 404, "not_found").await;
    let response = app.client.delete(app.url("/healthz")).send().await.expect("send");
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    problem(response, 405, "method_not_allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn json_bodies_are_checked_precisely() {
    let app = spawn().await;
    let url = app.url("/api/v1/test/tickets");
    app.platform_admin("tester").await;
    let token = app.token("tester");
    let send = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", crate::key())
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let ok = send(r#"{"subject": "printer on fire", "priority": 1}"#, "application/json").await.expect("send");
    assert_eq!(ok.status(), 200);

    let body = problem(send(r#"{"subject": "#, "application/json").await.expect("send"), 400, "malformed_json").await;
    assert!(body["detail"].as_str().expect("detail").contains("not valid JSON"), "{body}");

    problem(send(r#"{"subject": "x"}"#, "text/plain").await.expect("send"), 415, "unsupported_media_type").await;

    let body = problem(
        send(r#"{"subject": "x", "priority": "high"}"#, "application/json").await.expect("send"),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["path"], "/priority", "{body}");

    let big = format!(r#"{{"subject": "{}", "priority": 1}}"#, "x".repeat(100 * 1024));
    let response = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("idempotency-key", crate::key())
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    problem(response, 413, "payload_too_large").await;
    app.stop().await;
}

#[tokio::test]
async fn slow_requests_time_out_with_a_problem() {
    let app = spawn().await;
    let body = problem(app.get("/api/v1/test/slow").await, 504, "request_timeout").await;
    assert!(body["detail"].as_str().expect("detail").contains("1 s"));
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_without_internals() {
    let app = spawn().await;
    let response = app.get("/api/v1/test/panic").await;
    let body = problem(response, 500, "internal_error").await;
    assert!(!body.to_string().contains("boom"), "no internal detail in the body: {body}");
    // The process survived.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_route_without_an_authorization_decision_fails_closed() {
    let app = spawn().await;
    let body = problem(app.get("/api/v1/test/open").await, 500, "authorization_missing").await;
    assert!(!body.to_string().contains("no authorization decision was made here"), "{body}");
    app.stop().await;
}
