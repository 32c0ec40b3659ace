//! Webhook endpoints' bounds and what is said about them: a workspace has
//! at most so many endpoints, test messages are limited per endpoint, and
//! a URL (the receiver's capability) is named by its host wherever someone
//! other than the endpoint's managers may read it.

use anchor_domain::Role;
use anchor_gateway::WebhookLimits;
use anchor_testkit::TestDatabase;
use serde_json::{Value, json};

use crate::{TestApp, key, problem};

/// A gateway whose webhooks may call 127.0.0.1 (nothing is delivered: no
/// worker runs), with `limits`; `mia` is an MSP admin of `acme`, `avery`
/// its auditor.
async fn app(limits: WebhookLimits) -> TestApp {
    let app = TestApp::spawn_configured(TestDatabase::new().await, |config| {
        config.webhook_allowlist = anchor_webhooks::address::Allowlist::parse("127.0.0.1").expect("allowlist");
        config.webhook_limits = limits;
    })
    .await;
    let acme = app.workspace("acme", "Acme").await;
    app.member(&acme, "mia", Role::MspAdmin).await;
    app.member(&acme, "avery", Role::Auditor).await;
    app
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request =
        app.client.request(method, app.url(path)).bearer_auth(app.token("mia")).header("idempotency-key", key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn create(app: &TestApp, url: &str) -> reqwest::Response {
    let body = json!({"url": url, "events": ["ticket.created"]});
    send(app, reqwest::Method::POST, "/api/v1/workspaces/acme/webhooks", Some(body)).await
}

#[tokio::test]
async fn a_workspace_has_at_most_its_limit_of_endpoints_even_when_they_are_added_at_once() {
    let app = app(WebhookLimits { max_endpoints: 3, ..WebhookLimits::default() }).await;
    let statuses: Vec<u16> = futures_util::future::join_all((0..8).map(|i| {
        let app = &app;
        async move { create(app, &format!("http://127.0.0.1:9/hook/{i}")).await }
    }))
    .await
    .iter()
    .map(|r| r.status().as_u16())
    .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");

    let refused = problem(create(&app, "http://127.0.0.1:9/hook/more").await, 409, "webhook_limit_reached").await;
    assert!(refused["detail"].as_str().expect("detail").contains('3'), "{refused}");
    let listed = app.get_as("/api/v1/workspaces/acme/webhooks", "mia").await.json::<Value>().await.expect("json");
    let ids: Vec<String> =
        listed["items"].as_array().expect("items").iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids.len(), 3);

    // Deleting one makes room for one.
    let first = format!("/api/v1/workspaces/acme/webhooks/{}", ids[0]);
    assert_eq!(send(&app, reqwest::Method::DELETE, &first, None).await.status(), 204);
    assert_eq!(create(&app, "http://127.0.0.1:9/hook/again").await.status(), 201);
    assert_eq!(create(&app, "http://127.0.0.1:9/hook/over").await.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn test_messages_are_limited_per_endpoint_with_retry_after() {
    let app = app(WebhookLimits::default()).await;
    let mut ids = Vec::new();
    for hook in ["a", "b"] {
        let created = create(&app, &format!("http://127.0.0.1:9/{hook}")).await;
        assert_eq!(created.status(), 201);
        ids.push(created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned());
    }
    let app_ref = &app;
    let test = |id: &str| {
        let path = format!("/api/v1/workspaces/acme/webhooks/{id}/test");
        async move { send(app_ref, reqwest::Method::POST, &path, None).await }
    };
    // Ten at once: the default allows five a minute per endpoint.
    let statuses: Vec<u16> = futures_util::future::join_all((0..10).map(|_| test(&ids[0])))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");

    let refused = test(&ids[0]).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(refused, 429, "webhook_test_limited").await;
    assert_eq!(test(&ids[1]).await.status(), 202, "another endpoint has a count of its own");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ws_acme.webhook_messages WHERE event_type = 'webhook.test'")
            .fetch_one(app.store.pool())
            .await
            .expect("count");
    assert_eq!(messages, 6, "refused tests send nothing");

    // Once the endpoint's window has passed, it may be tested again.
    sqlx::query("UPDATE ws_acme.webhook_endpoints SET tests_window_start = now() - interval '61 seconds'")
        .execute(app.store.pool())
        .await
        .expect("age the window");
    assert_eq!(test(&ids[0]).await.status(), 202);
    let missing = "/api/v1/workspaces/acme/webhooks/whk_00000000000000000000000000/test";
    assert_eq!(send(&app, reqwest::Method::POST, missing, None).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn change_records_name_an_endpoints_host_never_its_url() {
    let app = app(WebhookLimits::default()).await;
    let created = create(&app, "http://127.0.0.1:9/hooks/T0K3N-one?sig=s3cret-one").await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/acme/webhooks/{id}");
    let patch = json!({"url": "http://127.0.0.1:8/hooks/T0K3N-two?sig=s3cret-two", "description": "moved"});
    assert_eq!(send(&app, reqwest::Method::PATCH, &path, Some(patch)).await.status(), 200);

    // The endpoint's managers still read its URL ...
    let endpoint = app.get_as(&path, "mia").await.json::<Value>().await.expect("json");
    assert_eq!(endpoint["url"], "http://127.0.0.1:8/hooks/T0K3N-two?sig=s3cret-two");
    // ... while the change log, which an auditor reads and the evidence
    // chain signs, names the host.
    let changes = app.get_as("/api/v1/workspaces/acme/changes", "avery").await;
    assert_eq!(changes.status(), 200);
    let changes: Value = changes.json().await.expect("json");
    let details: Vec<(&str, &Value)> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| (c["action"].as_str().expect("action"), &c["details"]))
        .collect();
    assert_eq!(details.len(), 2, "{changes}");
    for (action, details) in &details {
        let host = if *action == "webhook.created" { "127.0.0.1:9" } else { "127.0.0.1:8" };
        assert_eq!(details["host"], host, "{action}: {details}");
        assert!(details.get("url").is_none(), "{action}: {details}");
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT details::text FROM ws_acme.changes")
        .fetch_all(app.store.pool())
        .await
        .expect("changes");
    for text in stored.iter().map(String::as_str).chain([changes.to_string().as_str()]) {
        for secret in ["T0K3N", "s3cret", "/hooks"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    app.stop().await;
}
