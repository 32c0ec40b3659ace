//! The edge plane's server side: enrollment, agent identity, ingest.

use std::{io::Write, time::Duration};

use anchor_domain::{AgentId, Role};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::Platform;

struct TestAgent {
    key: SigningKey,
    id: AgentId,
}

impl TestAgent {
    fn token(&self) -> String {
        anchor_telemetry::identity::sign(&self.key, self.id, Duration::from_secs(120))
    }
}

async fn enrollment_token(platform: &Platform, max_uses: i32) -> Value {
    let response = platform
        .post(
            "/api/v1/workspaces/acme/enrollment-tokens",
            "mia",
            &json!({"label": "office", "max_uses": max_uses}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

async fn enroll(platform: &Platform, token: &str, hostname: &str) -> Result<TestAgent, (u16, Value)> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let body = json!({
        "token": token,
        "public_key": anchor_crypto::multikey::public_multibase(&key.verifying_key()),
        "facts": {"hostname": hostname, "os": "Debian GNU/Linux 13"},
    });
    let response =
        platform.client.post(platform.url("/api/v1/agents/enroll")).json(&body).send().await.expect("enroll");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    if status != 201 {
        return Err((status, body));
    }
    Ok(TestAgent { key, id: body["agent_id"].as_str().expect("id").parse().expect("agent id") })
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("format")
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn send(platform: &Platform, token: &str, body: &Value, encoding: Option<&str>) -> (u16, Value) {
    let raw = body.to_string().into_bytes();
    let mut request = platform
        .client
        .post(platform.url("/api/v1/telemetry/batches"))
        .bearer_auth(token)
        .header("content-type", "application/json");
    let payload = match encoding {
        Some("gzip") => gzip(&raw),
        Some("zstd") => ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest),
        _ => raw,
    };
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.body(payload).send().await.expect("send");
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

fn batch(sequence: i64) -> Value {
    let at = now();
    json!({
        "sequence": sequence, "sent_at": at,
        "metrics": [
            {"name": "cpu.usage_percent", "value": 12.5, "at": at},
            {"name": "disk.used_percent", "value": 71.0, "at": at, "labels": {"mount": "/"}},
        ],
        "checks": [{"name": "service ssh", "status": "passing", "output": "active", "at": at}],
        "inventory": {"kernel": "6.12.0", "packages": 812},
        "events": [{"kind": "agent.started", "at": at}],
    })
}

#[tokio::test]
async fn agents_enroll_with_a_token_and_send_batches_exactly_once() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let globex = platform.workspace("globex", "gus", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 2).await;
    let secret = token["token"].as_str().expect("shown once");
    assert!(secret.starts_with("anchor_enroll_"));
    let listed = platform.get("/api/v1/workspaces/acme/enrollment-tokens", "mia").await;
    assert!(!listed.to_string().contains(secret), "never shown again");

    let agent = enroll(&platform, secret, "ws-042").await.expect("enrolled");
    let (hostname, os): (String, String) =
        sqlx::query_as("SELECT hostname, os FROM ws_acme.assets WHERE agent_id = $1")
            .bind(agent.id.to_string())
            .fetch_one(platform.store.pool())
            .await
            .expect("the machine's asset");
    assert_eq!((hostname.as_str(), os.as_str()), ("ws-042", "Debian GNU/Linux 13"));

    // Sent, resent (acknowledged with the original id), compressed either way.
    let (status, first) = send(&platform, &agent.token(), &batch(0), Some("gzip")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["duplicate"], false);
    let (_, again) = send(&platform, &agent.token(), &batch(0), None).await;
    assert_eq!((again["batch_id"].clone(), again["duplicate"].clone()), (first["batch_id"].clone(), json!(true)));
    let (status, _) = send(&platform, &agent.token(), &batch(1), Some("zstd")).await;
    assert_eq!(status, 200);
    let (batches, samples): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ws_acme.telemetry_ingest_batches), (SELECT count(*) FROM ws_acme.metric_samples)",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("counts");
    assert_eq!((batches, samples), (2, 4), "two batches, two samples each, stored once");
    let facts: Value =
        sqlx::query_scalar("SELECT facts FROM ws_acme.assets").fetch_one(platform.store.pool()).await.expect("facts");
    assert_eq!(facts["kernel"], "6.12.0", "the latest inventory");
    let agents = platform.get("/api/v1/workspaces/acme/agents", "mia").await;
    assert_eq!(agents["items"][0]["status"], "online");

    // The agent's workspace comes from its identity: nothing reaches globex,
    // and a batch cannot name another workspace.
    let mut elsewhere = batch(2);
    elsewhere["workspace"] = json!("globex");
    let (status, problem) = send(&platform, &agent.token(), &elsewhere, None).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_batch")), "{problem}");
    let in_globex: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_globex.telemetry_ingest_batches")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(in_globex, 0);
    assert!(platform.store.agents(&globex).await.expect("agents").is_empty());

    // Bad batches name the field.
    let mut bad = batch(3);
    bad["metrics"][1]["name"] = json!("Disk Used");
    let (status, problem) = send(&platform, &agent.token(), &bad, None).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["path"], "/metrics/1/name", "{problem}");

    // Forged identity: another key claiming to be this agent.
    let forger = TestAgent { key: SigningKey::from_bytes(&[9; 32]), id: agent.id };
    let (status, problem) = send(&platform, &forger.token(), &batch(4), None).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("agent_unauthenticated")));
    let (status, _) = send(&platform, "not-a-token", &batch(4), None).await;
    assert_eq!(status, 401);

    // A revoked agent is refused.
    let revoke = platform
        .client
        .delete(platform.url(&format!("/api/v1/workspaces/acme/agents/{}", agent.id)))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "revoke-agent-1")
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    let (status, _) = send(&platform, &agent.token(), &batch(5), None).await;
    assert_eq!(status, 401);
    platform.stop().await;
}

#[tokio::test]
async fn enrollment_tokens_are_bounded_rotated_and_revoked() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let secret = token["token"].as_str().expect("token");
    enroll(&platform, secret, "first").await.expect("one use");
    let (status, problem) = enroll(&platform, secret, "second").await.err().expect("used up");
    assert_eq!((status, problem["code"].as_str()), (401, Some("enrollment_token_invalid")));

    let token = enrollment_token(&platform, 10).await;
    let id = token["id"].as_str().expect("id");
    let rotated =
        platform.post(&format!("/api/v1/workspaces/acme/enrollment-tokens/{id}/rotate"), "mia", &json!({}), None).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    assert!(enroll(&platform, token["token"].as_str().expect("old"), "old").await.is_err(), "the old value is dead");
    enroll(&platform, rotated["token"].as_str().expect("new"), "new").await.expect("the new value works");
    let revoked = platform
        .client
        .delete(platform.url(&format!("/api/v1/workspaces/acme/enrollment-tokens/{id}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "revoke-token-1")
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    assert!(enroll(&platform, rotated["token"].as_str().expect("new"), "late").await.is_err(), "revoked");
    let (status, problem) = enroll(&platform, "anchor_enroll_nope", "x").await.err().expect("unknown");
    assert_eq!((status, problem["code"].as_str()), (401, Some("enrollment_token_invalid")));
    platform.stop().await;
}

#[tokio::test]
async fn samples_are_partitioned_by_day_and_expire() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let (created, _) = platform.store.maintain_sample_partitions(2).await.expect("maintain");
    assert_eq!(created, 2, "tomorrow and the day after");
    let (again, _) = platform.store.maintain_sample_partitions(2).await.expect("maintain");
    assert_eq!(again, 0, "idempotent");
    let tomorrow = (time::OffsetDateTime::now_utc().date() + time::Duration::days(1)).to_string().replace('-', "");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("ws_acme.metric_samples_p{tomorrow}"))
        .fetch_one(platform.store.pool())
        .await
        .expect("regclass");
    assert!(exists);
    // Rows past retention go; recent ones stay.
    sqlx::query(
        "INSERT INTO ws_acme.metric_samples (agent_id, at, name, value)
         VALUES ('agt_x', now() - interval '40 days', 'cpu', 1), ('agt_x', now(), 'cpu', 2)",
    )
    .execute(platform.store.pool())
    .await
    .expect("insert");
    platform.store.maintain_sample_partitions(2).await.expect("maintain");
    let left: Vec<f64> = sqlx::query_scalar("SELECT value FROM ws_acme.metric_samples ORDER BY value")
        .fetch_all(platform.store.pool())
        .await
        .expect("rows");
    assert_eq!(left, [2.0]);
    platform.stop().await;
}

fn disk(sequence: i64, used: f64) -> Value {
    json!({"sequence": sequence, "metrics": [
        {"name": "disk.used_percent", "value": used, "at": now(), "labels": {"mount": "/"}},
        {"name": "memory.used_percent", "value": 40.0, "at": now()},
    ]})
}

async fn wait_for<F, Fut>(what: &str, mut probe: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_disk_opens_an_alert_and_a_linked_ticket_and_recovery_resolves_both() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "fileserver").await.expect("enrolled");

    let (status, _) = send(&platform, &agent.token(), &disk(0, 95.5), None).await;
    assert_eq!(status, 200);
    let alert = wait_for("a critical alert with its ticket", || async {
        let alerts = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
        alerts["items"].as_array().and_then(|a| a.first()).filter(|a| a["ticket_id"].is_string()).cloned()
    })
    .await;
    assert_eq!(alert["severity"], "critical");
    assert!(alert["summary"].as_str().expect("summary").contains("fileserver (/)"), "{alert}");
    let ticket_id = alert["ticket_id"].as_str().expect("ticket").to_owned();
    let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket_id}"), "mia").await;
    assert_eq!(ticket["priority"], "p2");
    assert_eq!(ticket["created_by"]["issuer"], "urn:anchor:system", "opened by automation");
    let asset: String =
        sqlx::query_scalar("SELECT id FROM ws_acme.assets").fetch_one(platform.store.pool()).await.expect("asset");
    let (linked_asset, linked_alert): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT asset_id, alert_id FROM ws_acme.tickets WHERE id = $1")
            .bind(&ticket_id)
            .fetch_one(platform.store.pool())
            .await
            .expect("links");
    assert_eq!((linked_asset.as_deref(), linked_alert.as_deref()), (Some(asset.as_str()), alert["id"].as_str()));

    // The same condition again is the same alert, not a second one.
    let (status, _) = send(&platform, &agent.token(), &disk(1, 96.0), None).await;
    assert_eq!(status, 200);
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert_eq!(open["items"].as_array().expect("items").len(), 1);

    // Recovery resolves the alert and, through automation, the ticket.
    let (status, _) = send(&platform, &agent.token(), &disk(2, 52.0), None).await;
    assert_eq!(status, 200);
    let resolved = wait_for("the ticket resolved", || async {
        let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket_id}"), "mia").await;
        (ticket["status"] == "resolved").then_some(ticket)
    })
    .await;
    let note = resolved["comments"].as_array().expect("comments").last().expect("a note").clone();
    assert!(note["body"].as_str().expect("body").starts_with("Recovered: "), "{note}");
    assert_eq!(note["visibility"], "internal");
    let alerts = platform.get("/api/v1/workspaces/acme/alerts", "mia").await;
    assert_eq!(alerts["items"][0]["state"], "resolved");
    assert_eq!(platform.events("alert.opened").await.len(), 1);
    assert_eq!(platform.events("alert.resolved").await.len(), 1);

    // A flap within a minute re-opens the same alert, counted, without a new ticket.
    send(&platform, &agent.token(), &disk(3, 97.0), None).await;
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert_eq!(open["items"][0]["flaps"], 1, "{open}");
    assert_eq!(open["items"][0]["id"], alert["id"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "mia").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 1);

    // The agent's page: latest values per series.
    let detail = platform.get(&format!("/api/v1/workspaces/acme/agents/{}", agent.id), "mia").await;
    let disk_now =
        detail["metrics"].as_array().expect("metrics").iter().find(|m| m["name"] == "disk.used_percent").cloned();
    assert_eq!(disk_now.expect("disk")["value"], 97.0);
    assert_eq!(detail["os"], "Debian GNU/Linux 13");
    platform.stop().await;
}

#[tokio::test]
async fn a_silent_agent_is_alerted_as_offline_until_it_reports() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "branch-router").await.expect("enrolled");
    send(&platform, &agent.token(), &batch(0), None).await;
    sqlx::query("UPDATE platform.agents SET last_seen_at = now() - interval '10 minutes'")
        .execute(platform.store.pool())
        .await
        .expect("silence");
    let agents = platform.get("/api/v1/workspaces/acme/agents", "mia").await;
    assert_eq!(agents["items"][0]["status"], "offline");
    let opened = anchor_telemetry::alerts::check_offline(&platform.store).await.expect("check");
    assert_eq!(opened, 1);
    assert_eq!(anchor_telemetry::alerts::check_offline(&platform.store).await.expect("again"), 0, "one live alert");
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert!(open["items"][0]["summary"].as_str().expect("summary").starts_with("Agent offline"), "{open}");
    send(&platform, &agent.token(), &batch(1), None).await;
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    let still: Vec<&Value> = open["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["summary"].as_str().is_some_and(|s| s.starts_with("Agent offline")))
        .collect();
    assert!(still.is_empty(), "a batch resolves it: {open}");
    platform.stop().await;
}
