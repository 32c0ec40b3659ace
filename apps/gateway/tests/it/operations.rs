use anchor_testkit::TestDatabase;

use crate::TestApp;

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_database_is_ready() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["checks"][0], serde_json::json!({"name": "postgres", "status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn readyz_names_the_failing_dependency() {
    // A database whose platform schema was never migrated.
    let app = TestApp::spawn_on(TestDatabase::empty().await, Vec::new()).await;
    let body = crate::problem(app.get("/readyz").await, 503, "not_ready").await;
    assert_eq!(body["detail"], "failing: postgres");
    assert_eq!(body["checks"][0]["name"], "postgres");
    assert_eq!(body["checks"][0]["status"], "fail");
    assert!(body["checks"][0]["detail"].as_str().expect("detail").contains("anchor migrate"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let app = TestApp::spawn().await;
    let kept = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.expect("send");
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let replaced =
        app.client.get(app.url("/healthz")).header("x-request-id", "x".repeat(500)).send().await.expect("send");
    let id = replaced.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(id.len(), 36, "a fresh UUID replaces an oversized id: {id}");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let mut served: serde_json::Value = response.json().await.expect("json");
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served, serde_json::to_value(anchor_gateway::openapi()).expect("json"), "served = generated");
    // Drift in the public contract shows up as a snapshot diff for review;
    // the version changes with every release and is not part of it.
    served["info"]["version"] = "[version]".into();
    insta::assert_json_snapshot!("openapi", served);
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.get("/api/v1/nope").await;
    let rendered = anchor_observability::metrics_handle().render();
    assert!(rendered.contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), "{rendered}");
    assert!(rendered.contains("route=\"unmatched\",status=\"404\""), "{rendered}");
    app.stop().await;
}
