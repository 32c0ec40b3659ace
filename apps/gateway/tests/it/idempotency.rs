//! Idempotency-Key: replay, reuse, in flight, the parallel race, scope.

use std::time::Duration;

use anchor_gateway::{AppState, auth::Caller};
use axum::{Json, Router, routing::post};
use serde_json::{Value, json};

use crate::{TestApp, problem};

async fn create(app: &TestApp, subject: &str, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(app.url("/api/v1/workspaces")).bearer_auth(app.token(subject)).json(&body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("send")
}

async fn workspaces(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM platform.workspaces").fetch_one(app.store.pool()).await.expect("count")
}

#[tokio::test]
async fn the_four_cases() {
    let app = TestApp::spawn().await;
    app.platform_admin("root").await;
    let body = json!({"slug": "acme", "name": "Acme Corp"});

    // Missing.
    problem(create(&app, "root", None, body.clone()).await, 400, "idempotency_key_missing").await;
    assert_eq!(workspaces(&app).await, 0, "nothing ran");

    // First use, then replay: same status, body and Location; one effect.
    let first = create(&app, "root", Some("k-1"), body.clone()).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body = first.text().await.expect("text");
    let again = create(&app, "root", Some("k-1"), body.clone()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.text().await.expect("text"), first_body);
    assert_eq!(workspaces(&app).await, 1);

    // Same key, another request.
    problem(
        create(&app, "root", Some("k-1"), json!({"slug": "globex", "name": "Globex"})).await,
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(workspaces(&app).await, 1);

    // Kept answers include refusals a retry cannot change: the 409 of a second slug use.
    let conflict = create(&app, "root", Some("k-2"), body.clone()).await;
    assert_eq!(conflict.status(), 409);
    let replayed = create(&app, "root", Some("k-2"), body.clone()).await;
    assert_eq!(
        (replayed.status().as_u16(), replayed.headers()["idempotent-replayed"].to_str().ok()),
        (409, Some("true"))
    );

    // Keys are per subject: another admin's identical key is its own.
    app.platform_admin("root2").await;
    let other = create(&app, "root2", Some("k-1"), json!({"slug": "initech", "name": "Initech"})).await;
    assert_eq!(other.status(), 201);
    assert!(other.headers().get("idempotent-replayed").is_none());

    // A denied request does not use the key up: after being granted the role, the retry runs.
    let denied = create(&app, "newbie", Some("k-3"), json!({"slug": "umbrella", "name": "Umbrella"})).await;
    assert_eq!(denied.status(), 403);
    app.platform_admin("newbie").await;
    assert_eq!(
        create(&app, "newbie", Some("k-3"), json!({"slug": "umbrella", "name": "Umbrella"})).await.status(),
        201
    );

    // Past the retention window, a key is fresh again.
    sqlx::query("UPDATE platform.idempotency_keys SET expires_at = now() - interval '1 second'")
        .execute(app.store.pool())
        .await
        .expect("expire");
    let fresh = create(&app, "root", Some("k-1"), json!({"slug": "hooli", "name": "Hooli"})).await;
    assert_eq!(fresh.status(), 201);
    // Pruning removes the other three expired keys and keeps the re-claimed one.
    assert_eq!(app.store.prune_idempotency_keys().await.expect("prune"), 3);
    let replay = create(&app, "root", Some("k-1"), json!({"slug": "hooli", "name": "Hooli"})).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    app.stop().await;
}

#[tokio::test]
async fn identical_requests_racing_in_parallel_make_one_effect() {
    let app = TestApp::spawn().await;
    app.platform_admin("root").await;
    let body = json!({"slug": "acme", "name": "Acme Corp"});
    let racers = (0..8).map(|_| create(&app, "root", Some("race-1"), body.clone()));
    let responses = futures_util::future::join_all(racers).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(created >= 1, "{statuses:?}");
    // Every 201 but one is a replay; every 409 is "in flight", never "exists".
    let fresh =
        responses.iter().filter(|r| r.status() == 201 && r.headers().get("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "{statuses:?}");
    for r in responses.into_iter().filter(|r| r.status() == 409) {
        problem(r, 409, "idempotency_key_in_flight").await;
    }
    assert_eq!(workspaces(&app).await, 1, "one effect");
    app.stop().await;
}

#[tokio::test]
async fn a_second_request_while_the_first_runs_is_told_so() {
    let slow = Router::<AppState>::new().route(
        "/api/v1/test/slow-create",
        post(|_: Caller| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Json(json!({"done": true}))
        }),
    );
    let app = TestApp::spawn_with(slow, Duration::from_secs(30)).await;
    let token = app.token("someone");
    let send = || {
        app.client
            .post(app.url("/api/v1/test/slow-create"))
            .bearer_auth(&token)
            .header("idempotency-key", "slow-1")
            .json(&json!({}))
            .send()
    };
    let first = tokio::spawn(send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    problem(send().await.expect("send"), 409, "idempotency_key_in_flight").await;
    assert_eq!(first.await.expect("join").expect("send").status(), 200);
    let after = send().await.expect("send");
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    app.stop().await;
}

#[tokio::test]
async fn keys_are_checked_after_authentication_and_are_well_formed() {
    let app = TestApp::spawn().await;
    let anonymous = app.client.post(app.url("/api/v1/workspaces")).json(&json!({})).send().await.expect("send");
    problem(anonymous, 401, "unauthenticated").await;
    let long = "k".repeat(300);
    let bad = app
        .client
        .post(app.url("/api/v1/workspaces"))
        .bearer_auth(app.token("x"))
        .header("idempotency-key", long)
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    problem(bad, 400, "idempotency_key_invalid").await;
    // Reads need no key; unknown paths stay 404.
    assert_eq!(app.get_as("/api/v1/workspaces", "x").await.status(), 200);
    let unknown = app.client.post(app.url("/api/v1/nope")).send().await.expect("send");
    problem(unknown, 404, "not_found").await;
    app.stop().await;
}
