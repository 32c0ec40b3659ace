//! Authentication and authorization over HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anchor_config::IssuerSettings;
use anchor_domain::Role;
use anchor_testkit::TestDatabase;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::{TestApp, problem};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

const EXTERNAL: &str = "https://id.example.test/realms/msp";

/// An external issuer of the test's own: its key, and its JWKS served locally.
struct ExternalIssuer {
    key: EncodingKey,
    jwks_uri: String,
    _server: tokio::task::JoinHandle<()>,
}

impl ExternalIssuer {
    async fn start() -> Self {
        let signing = SigningKey::from_bytes(&[42; 32]);
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let jwks =
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ext-1", "alg": "EdDSA", "use": "sig"}]});
        let app = axum::Router::new()
            .route("/certs", axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let jwks_uri = format!("http://{}/certs", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        let key = EncodingKey::from_ed_der(signing.to_pkcs8_der().expect("der").as_bytes());
        Self { key, jwks_uri, _server: server }
    }

    fn settings(&self) -> IssuerSettings {
        IssuerSettings {
            issuer: EXTERNAL.to_owned(),
            jwks_uri: self.jwks_uri.clone(),
            audience: "anchor".to_owned(),
            token_types: vec!["at+jwt".to_owned()],
            max_lifetime: Duration::from_secs(900),
        }
    }

    fn sign(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some("ext-1".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }

    fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({"iss": EXTERNAL, "sub": sub, "aud": "anchor", "exp": now + 300, "iat": now})
    }
}

async fn status_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(token).send().await.expect("send")
}

#[tokio::test]
async fn forged_foreign_and_stale_tokens_are_all_401() {
    let external = ExternalIssuer::start().await;
    let mut app = TestApp::spawn_on(TestDatabase::new().await, vec![external.settings()]).await;
    let ws = app.workspace("acme", "Acme Corp").await;
    app.member(&ws, "alice", Role::Technician).await;
    let path = "/api/v1/workspaces/acme";

    let valid = app.token("alice");
    assert_eq!(status_with(&app, path, &valid).await.status(), 200);

    let parts: Vec<&str> = valid.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let mut none = header.clone();
    none["alg"] = "none".into();
    let alg_none = format!("{}.{}.", encode(&none), parts[1]);

    let public = app.dev.jwks()["keys"][0]["x"].as_str().expect("x").to_owned();
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(app.dev.kid().to_owned());
    let hs256 = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(public.as_bytes())).expect("sign");

    let mut other_sub = claims.clone();
    other_sub["sub"] = "mallory".into();
    let tampered = format!("{}.{}.{}", parts[0], encode(&other_sub), parts[2]);

    let other_dir = tempfile::tempdir().expect("tempdir");
    let other_installation = anchor_auth::DevIssuer::load_or_create(other_dir.path())
        .expect("key")
        .issue("alice", Duration::from_secs(300))
        .expect("issue");

    let now = now();
    let ext = |c: Value| external.sign(c);
    let cases = [
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256),
        ("tampered payload", tampered),
        ("unknown kid (another installation's dev key)", other_installation),
        ("expired", ext(json!({"iss": EXTERNAL, "sub": "alice", "aud": "anchor", "exp": now - 300, "iat": now - 600}))),
        (
            "not yet valid",
            ext(
                json!({"iss": EXTERNAL, "sub": "alice", "aud": "anchor", "exp": now + 600, "iat": now, "nbf": now + 300}),
            ),
        ),
        (
            "wrong iss",
            ext(json!({"iss": "https://evil.test", "sub": "alice", "aud": "anchor", "exp": now + 300, "iat": now})),
        ),
        (
            "wrong aud",
            ext(json!({"iss": EXTERNAL, "sub": "alice", "aud": "someone-else", "exp": now + 300, "iat": now})),
        ),
        (
            "another issuer's key claiming the dev issuer",
            ext(
                json!({"iss": anchor_auth::dev_issuer::DEV_ISSUER, "sub": "alice", "aud": "anchor", "exp": now + 300, "iat": now}),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (name, token) in cases {
        let response = status_with(&app, path, &token).await;
        let challenge =
            response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(challenge.starts_with("Bearer realm=\"anchor\", error=\"invalid_token\""), "{name}: {challenge}");
        problem(response, 401, "invalid_token").await;
    }

    // No token at all: a bare challenge.
    let response = app.get(path).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"anchor\"");
    problem(response, 401, "unauthenticated").await;

    // Each failure is in the audit log (counted per reason and minute),
    // once the gateway has written what it kept in memory.
    app.stop_server().await;
    let failures: i64 = sqlx::query_scalar(
        "SELECT sum(count)::bigint FROM platform.access_audit WHERE action = 'authenticate' AND outcome = 'failure'",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(failures, 10);
    app.stop().await;
}

/// Open connections of the gateway's pool: every backend of the test
/// database but the test's own.
async fn gateway_connections(app: &TestApp) -> i64 {
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    all - i64::from(app.store.pool().size())
}

/// A thousand requests with a bad token, from one source (whatever
/// `X-Forwarded-For` they claim: no proxy is trusted), are one audit row
/// per minute with their count, and take no pooled connection each.
#[tokio::test]
async fn a_flood_of_bad_tokens_is_counted_in_aggregate_without_a_connection_each() {
    // A pool that could grow to one connection per request in flight.
    let mut app = TestApp::spawn_configured(TestDatabase::new().await, |c| c.database_max_connections = 32).await;
    let before = gateway_connections(&app).await;
    let app_ref = &app;
    let clients = (0..50).map(|client| async move {
        for i in 0..20 {
            let response = app_ref
                .client
                .get(app_ref.url("/api/v1/workspaces"))
                .bearer_auth("not.a.jwt")
                .header("x-forwarded-for", format!("198.51.{client}.{i}"))
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 401);
        }
    });
    futures_util::future::join_all(clients).await;
    let after = gateway_connections(&app).await;
    assert!(after - before <= 1, "connections opened by the flood: {before} before, {after} after");

    app.stop_server().await;
    let rows: Vec<(i64, Value)> =
        sqlx::query_as("SELECT count, detail FROM platform.access_audit WHERE action = 'authenticate'")
            .fetch_all(app.store.pool())
            .await
            .expect("audit");
    assert!((1..=2).contains(&rows.len()), "one row a minute: {rows:?}");
    assert_eq!(rows.iter().map(|(count, _)| count).sum::<i64>(), 1000);
    for (_, detail) in &rows {
        assert_eq!(detail["address"], "127.0.0.1", "the peer, not what the header claims");
        assert_eq!(detail["reason"], "the token is not a well-formed JWT");
        assert_eq!(detail["route"], "GET /api/v1/workspaces");
    }
    app.stop().await;
}

#[tokio::test]
async fn external_issuer_subjects_are_their_own_people() {
    let external = ExternalIssuer::start().await;
    let app = TestApp::spawn_on(TestDatabase::new().await, vec![external.settings()]).await;
    let ws = app.workspace("acme", "Acme Corp").await;
    // `alice` at the dev issuer is a member; `alice` at the external issuer is not.
    app.member(&ws, "alice", Role::MspAdmin).await;
    let external_alice = external.sign(external.claims("alice"));
    problem(status_with(&app, "/api/v1/workspaces/acme", &external_alice).await, 403, "workspace_forbidden").await;

    // Add the external alice by naming her issuer.
    let added = app
        .client
        .put(app.url(&format!(
            "/api/v1/workspaces/acme/members/alice?issuer={}",
            EXTERNAL.replace(':', "%3A").replace('/', "%2F")
        )))
        .bearer_auth(app.token("alice"))
        .header("idempotency-key", crate::key())
        .json(&json!({"role": "technician"}))
        .send()
        .await
        .expect("send");
    assert_eq!(added.status(), 201);
    let body: Value = status_with(&app, "/api/v1/workspaces/acme", &external_alice).await.json().await.expect("json");
    assert_eq!(body["role"], "technician");
    app.stop().await;
}

#[tokio::test]
async fn removing_a_member_denies_the_very_next_request() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("acme", "Acme Corp").await;
    app.member(&ws, "admin", Role::MspAdmin).await;
    app.member(&ws, "bob", Role::Technician).await;
    let bob = app.token("bob");
    assert_eq!(status_with(&app, "/api/v1/workspaces/acme", &bob).await.status(), 200);

    let removed = app
        .client
        .delete(app.url("/api/v1/workspaces/acme/members/bob"))
        .bearer_auth(app.token("admin"))
        .header("idempotency-key", crate::key())
        .send()
        .await
        .expect("send");
    assert_eq!(removed.status(), 204);
    // The same, still unexpired token: refused at once.
    problem(status_with(&app, "/api/v1/workspaces/acme", &bob).await, 403, "workspace_forbidden").await;

    // A role change, too, applies to the next request.
    app.member(&ws, "bob", Role::Technician).await;
    assert_eq!(status_with(&app, "/api/v1/workspaces/acme", &bob).await.status(), 200);
    app.member(&ws, "bob", Role::ClientUser).await;
    problem(status_with(&app, "/api/v1/workspaces/acme/members", &bob).await, 403, "permission_denied").await;
    app.stop().await;
}

#[tokio::test]
async fn roles_decide_what_members_may_do() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("acme", "Acme Corp").await;
    for (subject, role) in
        [("admin", Role::MspAdmin), ("tech", Role::Technician), ("audit", Role::Auditor), ("client", Role::ClientUser)]
    {
        app.member(&ws, subject, role).await;
    }
    let put = |subject: &'static str, target: &'static str, role: &'static str| {
        app.client
            .put(app.url(&format!("/api/v1/workspaces/acme/members/{target}")))
            .bearer_auth(app.token(subject))
            .header("idempotency-key", crate::key())
            .json(&json!({"role": role}))
            .send()
    };
    problem(put("tech", "eve", "msp_admin").await.expect("send"), 403, "permission_denied").await;
    problem(put("audit", "eve", "technician").await.expect("send"), 403, "permission_denied").await;
    assert_eq!(put("admin", "eve", "finance").await.expect("send").status(), 201);
    assert_eq!(put("admin", "eve", "auditor").await.expect("send").status(), 200);
    let body = problem(put("admin", "eve", "platform_admin").await.expect("send"), 422, "invalid_role").await;
    assert_eq!(body["errors"][0]["path"], "/role");

    assert_eq!(app.get_as("/api/v1/workspaces/acme/members", "audit").await.status(), 200);
    problem(app.get_as("/api/v1/workspaces/acme/members", "client").await, 403, "permission_denied").await;
    assert_eq!(app.get_as("/api/v1/workspaces/acme", "client").await.status(), 200);
    problem(app.get_as("/api/v1/workspaces/acme/members/nobody", "admin").await, 404, "member_not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn platform_admins_create_workspaces_and_read_the_audit_log() {
    let app = TestApp::spawn().await;
    app.platform_admin("root").await;
    let create = |subject: &'static str, body: Value| {
        app.client
            .post(app.url("/api/v1/workspaces"))
            .bearer_auth(app.token(subject))
            .header("idempotency-key", crate::key())
            .json(&body)
            .send()
    };
    problem(create("alice", json!({"slug": "acme", "name": "Acme"})).await.expect("send"), 403, "permission_denied")
        .await;

    let created = create("root", json!({"slug": "acme", "name": "Acme Corp", "admin": {"subject": "alice"}}))
        .await
        .expect("send");
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/api/v1/workspaces/acme");
    problem(create("root", json!({"slug": "acme", "name": "Again"})).await.expect("send"), 409, "workspace_exists")
        .await;
    let body = problem(
        create("root", json!({"slug": "Bad_Slug", "name": "x"})).await.expect("send"),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["path"], "/slug", "{body}");

    // Malformed JSON from an authenticated caller: 400.
    let malformed = app
        .client
        .post(app.url("/api/v1/workspaces"))
        .bearer_auth(app.token("root"))
        .header("idempotency-key", crate::key())
        .header("content-type", "application/json")
        .body("{\"slug\":")
        .send()
        .await
        .expect("send");
    problem(malformed, 400, "malformed_json").await;

    // The seeded admin sees it; the platform admin lists every workspace.
    let mine: Value = app.get_as("/api/v1/workspaces", "alice").await.json().await.expect("json");
    assert_eq!(mine["items"][0]["role"], "msp_admin");
    let all: Value = app.get_as("/api/v1/workspaces", "root").await.json().await.expect("json");
    assert_eq!(all["items"][0]["slug"], "acme");
    assert_eq!(all["items"][0]["role"], Value::Null);
    // Platform admins do not enter workspaces they do not belong to.
    problem(app.get_as("/api/v1/workspaces/acme", "root").await, 403, "workspace_forbidden").await;

    // The audit log: only for platform admins; denials carry the request id.
    problem(app.get_as("/api/v1/audit/access", "alice").await, 403, "permission_denied").await;
    let denied = app
        .client
        .get(app.url("/api/v1/workspaces/acme/members"))
        .bearer_auth(app.token("mallory"))
        .header("x-request-id", "req-mallory-1")
        .send()
        .await
        .expect("send");
    assert_eq!(denied.status(), 403);
    let log: Value = app.get_as("/api/v1/audit/access?subject=mallory", "root").await.json().await.expect("json");
    let event = &log["items"][0];
    assert_eq!((event["action"].as_str(), event["outcome"].as_str()), (Some("authorize"), Some("denied")));
    assert_eq!(event["workspace"], "acme");
    assert_eq!(event["request_id"], "req-mallory-1");
    let changes: Value =
        app.get_as("/api/v1/audit/access?action=membership.set", "root").await.json().await.expect("json");
    assert_eq!(changes["items"][0]["detail"]["target_subject"], "alice");
    app.stop().await;
}

#[tokio::test]
async fn lists_page_with_cursors() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let ws = app.workspace(&format!("client-{i}"), &format!("Client {i}")).await;
        app.member(&ws, "tech", Role::Technician).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/workspaces?limit=2".to_owned();
    loop {
        let page: Value = app.get_as(&path, "tech").await.json().await.expect("json");
        seen.extend(
            page["items"].as_array().expect("items").iter().map(|w| w["slug"].as_str().expect("slug").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/workspaces?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["client-0", "client-1", "client-2", "client-3", "client-4"]);
    problem(app.get_as("/api/v1/workspaces?limit=501", "tech").await, 422, "invalid_query").await;
    problem(app.get_as("/api/v1/workspaces?cursor=!!!!", "tech").await, 422, "invalid_cursor").await;
    app.stop().await;
}
