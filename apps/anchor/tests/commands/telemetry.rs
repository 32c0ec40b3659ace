//! The edge plane's server side: enrollment, agent identity, ingest.

use std::{io::Write, time::Duration};

use anchor_domain::{AgentId, Role};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::{Options, Platform};

use anchor_telemetry::limits::Limits;

pub(crate) struct TestAgent {
    key: SigningKey,
    pub(crate) id: AgentId,
}

impl TestAgent {
    pub(crate) fn token(&self) -> String {
        anchor_telemetry::identity::sign(&self.key, self.id, Duration::from_secs(120))
    }
}

pub(crate) async fn enrollment_token(platform: &Platform, max_uses: i32) -> Value {
    new_enrollment_token(platform, json!({"label": "office", "max_uses": max_uses})).await
}

pub(crate) async fn new_enrollment_token(platform: &Platform, body: Value) -> Value {
    let response = platform.post("/api/v1/workspaces/acme/enrollment-tokens", "mia", &body, None).await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

pub(crate) async fn enroll(platform: &Platform, token: &str, hostname: &str) -> Result<TestAgent, (u16, Value)> {
    enroll_with(platform, token, SigningKey::from_bytes(&rand::random::<[u8; 32]>()), json!({"hostname": hostname}))
        .await
}

/// Enrolls `key` with `facts` (an `os` is added).
pub(crate) async fn enroll_with(
    platform: &Platform,
    token: &str,
    key: SigningKey,
    mut facts: Value,
) -> Result<TestAgent, (u16, Value)> {
    facts["os"] = json!("Debian GNU/Linux 13");
    let body = json!({
        "token": token,
        "public_key": anchor_crypto::multikey::public_multibase(&key.verifying_key()),
        "facts": facts,
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

pub(crate) async fn send(platform: &Platform, token: &str, body: &Value, encoding: Option<&str>) -> (u16, Value) {
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

/// Sends `body` as it is, with `encoding`.
async fn send_raw(platform: &Platform, token: &str, body: Vec<u8>, encoding: Option<&str>) -> reqwest::Response {
    let mut request = platform
        .client
        .post(platform.url("/api/v1/telemetry/batches"))
        .bearer_auth(token)
        .header("content-type", "application/json");
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.body(body).send().await.expect("send")
}

/// A valid zstd frame of `blocks` RLE blocks of 128 KiB of spaces each (4
/// bytes a block), in a window of 2^`window_log` bytes.
fn zstd_rle(window_log: u8, blocks: usize) -> Vec<u8> {
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (window_log - 10) << 3];
    for i in 0..blocks {
        let header = u32::from(i + 1 == blocks) | (1 << 1) | ((128 * 1024) << 3);
        frame.extend([header as u8, (header >> 8) as u8, (header >> 16) as u8, b' ']);
    }
    frame
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

    // Globex's admin, naming acme's real agent and token under globex, finds
    // nothing and changes nothing; under acme, is refused.
    let token_id = token["id"].as_str().expect("token id");
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/workspaces/globex/agents/{}", agent.id)),
        (reqwest::Method::DELETE, format!("/api/v1/workspaces/globex/agents/{}", agent.id)),
        (reqwest::Method::POST, format!("/api/v1/workspaces/globex/enrollment-tokens/{token_id}/rotate")),
        (reqwest::Method::DELETE, format!("/api/v1/workspaces/globex/enrollment-tokens/{token_id}")),
        (reqwest::Method::GET, "/api/v1/workspaces/acme/agents".to_owned()),
        (reqwest::Method::DELETE, format!("/api/v1/workspaces/acme/agents/{}", agent.id)),
    ] {
        let response = platform
            .client
            .request(method.clone(), platform.url(&path))
            .bearer_auth(platform.token("gus"))
            .header("idempotency-key", format!("cross-{method}-{path}"))
            .send()
            .await
            .expect("request");
        let expected = if path.contains("/acme/") { 403 } else { 404 };
        assert_eq!(response.status().as_u16(), expected, "{method} {path}");
    }
    let (status, _) = send(&platform, &agent.token(), &batch(2), None).await;
    assert_eq!(status, 200, "acme's agent is untouched");
    let listed = platform.get("/api/v1/workspaces/acme/enrollment-tokens", "mia").await;
    assert_eq!(listed["items"][0]["revoked"], false, "acme's token is untouched: {listed}");

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
async fn a_reinstalled_machine_keeps_its_asset_and_retires_its_old_agent() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    // Staff reinstalling machines make a token that may replace agents.
    let token = new_enrollment_token(&platform, json!({"max_uses": 3, "replace_agents": true})).await;
    let secret = token["token"].as_str().expect("token");
    let facts = json!({"hostname": "reception-pc", "machine_id": "4c1d0e9a7b2f4e3c9d8a6b5c4d3e2f1a"});
    let first_key = SigningKey::from_bytes(&[21; 32]);
    let first = enroll_with(&platform, secret, first_key.clone(), facts.clone()).await.expect("enrolled");
    assert_eq!(send(&platform, &first.token(), &disk(0, 99.0), None).await.0, 200);
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert_eq!(open["items"].as_array().expect("items").len(), 1, "the full disk is alerted");

    // The same key again (an answer lost on the way): the same agent, no use spent.
    let again = enroll_with(&platform, secret, first_key, facts.clone()).await.expect("answered again");
    assert_eq!(again.id, first.id);
    let tokens = platform.get("/api/v1/workspaces/acme/enrollment-tokens", "mia").await;
    assert_eq!(tokens["items"][0]["uses"], 1, "{tokens}");

    // Reinstalled: a new key, the same machine. One asset, now the new
    // agent's; the old agent revoked and its alerts resolved.
    let second = enroll_with(&platform, secret, SigningKey::from_bytes(&[22; 32]), facts).await.expect("enrolled");
    assert_ne!(second.id, first.id);
    let assets: Vec<(String, Option<String>)> = sqlx::query_as("SELECT id, agent_id FROM ws_acme.assets")
        .fetch_all(platform.store.pool())
        .await
        .expect("assets");
    assert_eq!(assets.len(), 1, "{assets:?}");
    assert_eq!(assets[0].1.as_deref(), Some(second.id.to_string().as_str()));
    assert_eq!(send(&platform, &first.token(), &disk(1, 99.0), None).await.0, 401, "the old identity is retired");
    let agents = platform.get("/api/v1/workspaces/acme/agents", "mia").await;
    let status_of = |id: AgentId| {
        agents["items"].as_array().expect("items").iter().find(|a| a["id"] == id.to_string().as_str()).expect("listed")
            ["status"]
            .clone()
    };
    assert_eq!(status_of(first.id), "revoked");
    // Agents page like every list.
    let page = platform.get("/api/v1/workspaces/acme/agents?limit=1", "mia").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    let cursor = page["next_cursor"].as_str().expect("more").to_owned();
    let rest = platform.get(&format!("/api/v1/workspaces/acme/agents?limit=1&cursor={cursor}"), "mia").await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 1);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    assert_ne!(rest["items"][0]["id"], page["items"][0]["id"]);
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert_eq!(open["items"].as_array().expect("items").len(), 0, "{open}");
    assert_eq!(send(&platform, &second.token(), &disk(0, 40.0), None).await.0, 200);

    // What the agent reports it gave up on shows on its page.
    let mut reported = disk(1, 41.0);
    reported["events"] = json!([{"kind": "agent.batches_dropped", "count": 3,
                                 "reasons": {"spool_full": 3}, "sequences": [7, 8, 9], "at": now()}]);
    assert_eq!(send(&platform, &second.token(), &reported, None).await.0, 200);
    let detail = platform.get(&format!("/api/v1/workspaces/acme/agents/{}", second.id), "mia").await;
    assert_eq!(detail["batches_dropped"], 3, "{detail}");
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
    let upkeep = platform.store.maintain_telemetry(2).await.expect("maintain");
    assert_eq!(upkeep.partitions_created, 2, "tomorrow and the day after");
    let again = platform.store.maintain_telemetry(2).await.expect("maintain");
    assert_eq!(again.partitions_created, 0, "idempotent");
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
    sqlx::query(
        "INSERT INTO ws_acme.check_results (agent_id, at, name, status)
         VALUES ('agt_x', now() - interval '40 days', 'old', 'passing'), ('agt_x', now(), 'new', 'passing');
         ",
    )
    .execute(platform.store.pool())
    .await
    .expect("insert");
    let upkeep = platform.store.maintain_telemetry(2).await.expect("maintain");
    assert_eq!((upkeep.rows_deleted, upkeep.failed), (1, 0));
    let left: Vec<f64> = sqlx::query_scalar("SELECT value FROM ws_acme.metric_samples ORDER BY value")
        .fetch_all(platform.store.pool())
        .await
        .expect("rows");
    assert_eq!(left, [2.0]);
    let checks: Vec<String> = sqlx::query_scalar("SELECT name FROM ws_acme.check_results")
        .fetch_all(platform.store.pool())
        .await
        .expect("rows");
    assert_eq!(checks, ["new"]);
    platform.stop().await;
}

pub(crate) fn disk(sequence: i64, used: f64) -> Value {
    json!({"sequence": sequence, "metrics": [
        {"name": "disk.used_percent", "value": used, "at": now(), "labels": {"mount": "/"}},
        {"name": "memory.used_percent", "value": 40.0, "at": now()},
    ]})
}

pub(crate) async fn wait_for<F, Fut>(what: &str, mut probe: F) -> Value
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

    // A flap within a minute re-opens the same alert, counted: no second
    // alert and no second ticket, but its ticket is reopened, and resolved
    // again when the alert is.
    send(&platform, &agent.token(), &disk(3, 97.0), None).await;
    let open = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    assert_eq!(open["items"][0]["flaps"], 1, "{open}");
    assert_eq!(open["items"][0]["id"], alert["id"]);
    let reopened = wait_for("the ticket reopened", || async {
        let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket_id}"), "mia").await;
        (ticket["status"] == "in_progress").then_some(ticket)
    })
    .await;
    let note = reopened["comments"].as_array().expect("comments").last().expect("a note").clone();
    assert!(note["body"].as_str().expect("body").starts_with("The alert came back: "), "{note}");
    assert_eq!(platform.events("alert.reopened").await.len(), 1);
    send(&platform, &agent.token(), &disk(4, 51.0), None).await;
    wait_for("the ticket resolved again", || async {
        let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket_id}"), "mia").await;
        (ticket["status"] == "resolved").then_some(ticket)
    })
    .await;
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "mia").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 1, "one ticket for the alert, all along");
    let routed: Vec<Value> =
        sqlx::query_scalar("SELECT routed FROM ws_acme.telemetry_ingest_batches ORDER BY sequence")
            .fetch_all(platform.store.pool())
            .await
            .expect("routed");
    let transitions: Vec<&str> = routed
        .iter()
        .flat_map(|r| r.as_array().expect("array").iter())
        .filter_map(|t| t["transition"].as_str())
        .collect();
    assert_eq!(transitions, ["opened", "resolved", "reopened", "resolved"], "each batch records what it routed");

    // The agent's page: latest values per series.
    let detail = platform.get(&format!("/api/v1/workspaces/acme/agents/{}", agent.id), "mia").await;
    let disk_now =
        detail["metrics"].as_array().expect("metrics").iter().find(|m| m["name"] == "disk.used_percent").cloned();
    assert_eq!(disk_now.expect("disk")["value"], 51.0);
    assert_eq!(detail["os"], "Debian GNU/Linux 13");
    platform.stop().await;
}

#[tokio::test]
async fn a_recovery_before_the_ticket_exists_still_resolves_it() {
    // The alert's ticket.create is accepted while AgentField is down, so it
    // cannot finish; the alert clears meanwhile. Once AgentField is back, the
    // ticket is opened and then resolved, never left open for an alert that
    // is gone (and an alert that cleared before anything was accepted for it
    // gets no ticket at all).
    let mut platform = Platform::start_with(Options { agentfield_up: false, ..Options::default() }).await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "nas").await.expect("enrolled");
    assert_eq!(send(&platform, &agent.token(), &disk(0, 99.0), None).await.0, 200);
    let alert = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await["items"][0].clone();
    let signer = anchor_commands::CommandSigner::load_or_create(platform.data_dir.path()).expect("signer");
    let actor = anchor_store::executions::Actor {
        issuer: anchor_commands::command::SYSTEM_ISSUER.into(),
        subject: anchor_commands::automation::ALERTING.into(),
    };
    let create = anchor_commands::Command::parse(
        "ticket.create",
        json!({"title": "Disk almost full on nas", "priority": "p2", "asset_id": alert["asset_id"], "alert_id": alert["id"]}),
    )
    .expect("command");
    anchor_commands::accept(&platform.store, &signer, &acme, &actor, None, &create).await.expect("accepted");
    assert_eq!(send(&platform, &agent.token(), &disk(1, 10.0), None).await.0, 200);
    let alerts = platform.get("/api/v1/workspaces/acme/alerts", "mia").await;
    assert_eq!(alerts["items"][0]["state"], "resolved", "{alerts}");

    platform.start_agentfield();
    let ticket = wait_for("the ticket, resolved", || async {
        let tickets = platform.get("/api/v1/workspaces/acme/tickets", "mia").await;
        tickets["items"].as_array().and_then(|t| t.first()).filter(|t| t["status"] == "resolved").cloned()
    })
    .await;
    assert_eq!(ticket["alert_id"], alert["id"]);
    assert_eq!(ticket["asset_id"], alert["asset_id"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "mia").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 1, "{tickets}");
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
    // The workspace's record of its last batch is what the check trusts.
    let opened = anchor_telemetry::alerts::check_offline(&platform.store).await.expect("check");
    assert_eq!(opened, 0, "its last batch just arrived, whatever last_seen_at says");
    sqlx::query("UPDATE ws_acme.telemetry_ingest_batches SET received_at = now() - interval '10 minutes'")
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

#[tokio::test]
async fn bodies_past_the_bounds_are_refused_as_too_large_or_naming_the_field() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "edge").await.expect("enrolled");
    // Bombs: a few KB that expand past the 4 MiB bound.
    let spaces = vec![b' '; 8 * 1024 * 1024];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&spaces).expect("gzip");
    let zstd = ruzstd::encoding::compress_to_vec(&spaces[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (what, encoding, body) in [
        ("gzip", "gzip", gz.finish().expect("gzip")),
        ("zstd", "zstd", zstd),
        ("zstd in a 256 MiB window", "zstd", zstd_rle(28, 1600)),
    ] {
        assert!(body.len() < 64 * 1024, "{what}: {} bytes", body.len());
        let response = send_raw(&platform, &agent.token(), body, Some(encoding)).await;
        assert_eq!(response.status(), 413, "{what}");
        let media = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        assert_eq!(media, "application/problem+json", "{what}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "payload_too_large", "{what}: {problem}");
    }
    let response = send_raw(&platform, &agent.token(), b"{}".to_vec(), Some("br")).await;
    assert_eq!(response.status(), 415);
    // Deep, long and numerous values: refused where they are.
    let at = now();
    let nine: serde_json::Map<String, Value> = (0..9).map(|i| (format!("l{i}"), json!("v"))).collect();
    let deep = (0..7).fold(json!(1), |v, _| json!([v]));
    for (batch, path) in [
        (json!({"sequence": 1, "inventory": {"a": deep}}), "/inventory"),
        (json!({"sequence": 1, "inventory": {"a": "x".repeat(1025)}}), "/inventory"),
        (json!({"sequence": 1, "events": [{"kind": "x", "data": "x".repeat(1025)}]}), "/events/0"),
        (
            json!({"sequence": 1, "metrics": [{"name": "cpu", "value": 1.0, "at": at, "labels": nine}]}),
            "/metrics/0/labels",
        ),
        (
            json!({"sequence": 1, "checks": [{"name": "x", "status": "failing", "output": "y".repeat(4097), "at": at}]}),
            "/checks/0/output",
        ),
    ] {
        let (status, problem) = send(&platform, &agent.token(), &batch, Some("gzip")).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_batch")), "{problem}");
        assert_eq!(problem["errors"][0]["path"], path, "{problem}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.telemetry_ingest_batches")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0);
    platform.stop().await;
}

#[tokio::test]
async fn past_its_series_limit_an_agent_keeps_its_known_series_and_is_told_what_was_not_stored() {
    let telemetry = Limits { max_series: 4, ..Limits::default() };
    let platform = Platform::start_with(Options { telemetry, ..Options::default() }).await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "edge").await.expect("enrolled");
    let at = now();
    let cpu = json!({"name": "cpu.usage_percent", "value": 5.0, "at": at});
    let disk = |mount: &str| json!({"name": "disk.used_percent", "value": 10.0, "at": at, "labels": {"mount": mount}});
    let check = |name: &str| json!({"name": name, "status": "passing", "at": at});
    // Four series: the limit.
    let first = json!({"sequence": 0, "metrics": [cpu, disk("/"), disk("/srv")], "checks": [check("ssh")]});
    let (status, ack) = send(&platform, &agent.token(), &first, None).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack.get("refused").is_none(), "{ack}");
    // The known ones again, and four new ones (three mounts and a check).
    let second = json!({"sequence": 1,
        "metrics": [disk("/"), disk("/a"), disk("/a"), disk("/b"), cpu, disk("/c")],
        "checks": [check("ssh"), check("nginx")]});
    let (status, ack) = send(&platform, &agent.token(), &second, None).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        ack["refused"],
        json!({"reason": "series_limit", "limit": 4, "series": 4, "samples": 4, "check_results": 1}),
        "{ack}"
    );
    let (samples, checks, series): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ws_acme.metric_samples), (SELECT count(*) FROM ws_acme.check_results),
                (SELECT count(*) FROM ws_acme.telemetry_series)",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("counts");
    assert_eq!((samples, checks, series), (5, 2, 4), "the known series are stored, the new ones are not");
    let detail = platform.get(&format!("/api/v1/workspaces/acme/agents/{}", agent.id), "mia").await;
    assert_eq!(detail["metrics"].as_array().expect("metrics").len(), 3, "{detail}");
    platform.stop().await;
}

#[tokio::test]
async fn one_batch_opens_at_most_its_alerts_and_the_rest_open_later() {
    let telemetry = Limits { max_alerts_per_batch: 3, ..Limits::default() };
    let platform = Platform::start_with(Options { telemetry, ..Options::default() }).await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "edge").await.expect("enrolled");
    let failing = |sequence: i64| {
        let checks: Vec<Value> =
            (0..10).map(|i| json!({"name": format!("service s{i}"), "status": "failing", "at": now()})).collect();
        json!({"sequence": sequence, "checks": checks})
    };
    let open = || async {
        let alerts = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
        alerts["items"].as_array().expect("items").len()
    };
    assert_eq!(send(&platform, &agent.token(), &failing(0), None).await.0, 200);
    assert_eq!(open().await, 3, "ten conditions, three alerts");
    assert_eq!(send(&platform, &agent.token(), &failing(1), None).await.0, 200);
    assert_eq!(open().await, 6);
    for sequence in 2..4 {
        assert_eq!(send(&platform, &agent.token(), &failing(sequence), None).await.0, 200);
    }
    assert_eq!(open().await, 10, "all of them, a batch at a time");
    assert_eq!(platform.events("alert.opened").await.len(), 10);
    platform.stop().await;
}

#[tokio::test]
async fn an_agent_over_its_batches_per_minute_is_told_when_to_come_back() {
    let telemetry = Limits { batches_per_minute: 3, ..Limits::default() };
    let platform = Platform::start_with(Options { telemetry, ..Options::default() }).await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 2).await;
    let secret = token["token"].as_str().expect("token");
    let (agent, other) =
        (enroll(&platform, secret, "a").await.expect("a"), enroll(&platform, secret, "b").await.expect("b"));
    for sequence in 0..3 {
        assert_eq!(send(&platform, &agent.token(), &batch(sequence), None).await.0, 200);
    }
    let body = batch(3).to_string().into_bytes();
    let response = send_raw(&platform, &agent.token(), body, None).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=20).contains(&retry_after), "a batch every 20 s: {retry_after}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "agent_rate_limited", "{problem}");
    assert_eq!(send(&platform, &other.token(), &batch(0), None).await.0, 200, "other agents are not held up");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.telemetry_ingest_batches WHERE agent_id = $1")
        .bind(agent.id.to_string())
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(stored, 3);
    platform.stop().await;
}

#[tokio::test]
async fn a_machine_id_does_not_take_another_machines_agent_or_asset() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 5).await;
    let secret = token["token"].as_str().expect("token");
    let machine = json!({"hostname": "payroll-pc", "machine_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"});
    let victim =
        enroll_with(&platform, secret, SigningKey::from_bytes(&[31; 32]), machine.clone()).await.expect("enrolled");
    let asset = |platform: &Platform| {
        let pool = platform.store.pool().clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT id, agent_id FROM ws_acme.assets WHERE facts->>'machine_id' = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'",
            )
            .fetch_all(&pool)
            .await
            .expect("assets")
        }
    };
    let before = asset(&platform).await;
    assert_eq!(before.len(), 1);

    // Another key claiming the machine: refused, nothing spent or moved.
    let mut claim = machine.clone();
    claim["hostname"] = json!("attacker");
    let (status, problem) =
        enroll_with(&platform, secret, SigningKey::from_bytes(&[32; 32]), claim.clone()).await.err().expect("refused");
    assert_eq!((status, problem["code"].as_str()), (409, Some("machine_enrolled")), "{problem}");
    assert_eq!(asset(&platform).await, before, "the asset stays the victim's");
    assert_eq!(send(&platform, &victim.token(), &batch(0), None).await.0, 200, "the victim's agent is untouched");
    let tokens = platform.get("/api/v1/workspaces/acme/enrollment-tokens", "mia").await;
    assert_eq!(tokens["items"][0]["uses"], 1, "the refusal spent no use: {tokens}");
    // Nor can a batch claim another machine: the enrolled identity stays.
    let mut claims = batch(1);
    claims["inventory"] = json!({"machine_id": "ffffffffffffffffffffffffffffffff", "kernel": "6.13"});
    assert_eq!(send(&platform, &victim.token(), &claims, None).await.0, 200);
    let facts: Value =
        sqlx::query_scalar("SELECT facts FROM ws_acme.assets").fetch_one(platform.store.pool()).await.expect("facts");
    assert_eq!(
        (facts["machine_id"].as_str(), facts["kernel"].as_str()),
        (Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0"), Some("6.13"))
    );

    // Staff revoke the machine's agent: now it can be enrolled again, and
    // the new agent gets the machine's asset.
    let revoke = platform
        .client
        .delete(platform.url(&format!("/api/v1/workspaces/acme/agents/{}", victim.id)))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "revoke-victim")
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    let reinstalled =
        enroll_with(&platform, secret, SigningKey::from_bytes(&[33; 32]), machine.clone()).await.expect("enrolled");
    let after = asset(&platform).await;
    assert_eq!(after[0].0, before[0].0, "the same asset");
    assert_eq!(after[0].1.as_deref(), Some(reinstalled.id.to_string().as_str()));
    platform.stop().await;
}

#[tokio::test]
async fn an_enrollment_token_without_a_use_count_enrolls_one_agent() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = new_enrollment_token(&platform, json!({"label": "one machine"})).await;
    let secret = token["token"].as_str().expect("token");
    let listed = platform.get("/api/v1/workspaces/acme/enrollment-tokens", "mia").await;
    assert_eq!(
        (listed["items"][0]["max_uses"].as_i64(), listed["items"][0]["replace_agents"].as_bool()),
        (Some(1), Some(false))
    );
    enroll(&platform, secret, "first").await.expect("its one use");
    let (status, problem) = enroll(&platform, secret, "second").await.err().expect("used up");
    assert_eq!((status, problem["code"].as_str()), (401, Some("enrollment_token_invalid")));
    for max_uses in [0, 10_001] {
        let response = platform
            .post("/api/v1/workspaces/acme/enrollment-tokens", "mia", &json!({"max_uses": max_uses}), None)
            .await;
        assert_eq!(response.status(), 422, "{max_uses}");
    }
    platform.stop().await;
}

#[tokio::test]
async fn a_batch_waiting_on_a_lock_gives_its_connection_back_within_its_bound() {
    let telemetry = Limits { statement_timeout: Duration::from_secs(3), ..Limits::default() };
    let platform = Platform::start_with(Options { telemetry, ..Options::default() }).await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "edge").await.expect("enrolled");
    // Someone holds the machine's asset (the inventory goes there).
    let mut holder = platform.store.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM ws_acme.assets WHERE agent_id = $1 FOR UPDATE")
        .bind(agent.id.to_string())
        .execute(&mut *holder)
        .await
        .expect("lock");
    let first = tokio::spawn({
        let request = platform
            .client
            .post(platform.url("/api/v1/telemetry/batches"))
            .bearer_auth(agent.token())
            .header("content-type", "application/json")
            .body(batch(0).to_string());
        async move { request.send().await.expect("send") }
    });
    // While it waits for the lock, the agent's next batch is not taken.
    let waiting = wait_for("the batch waiting for the lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE 'UPDATE assets SET facts%'",
        )
        .fetch_one(platform.store.pool())
        .await
        .expect("activity");
        (waiting > 0).then_some(json!(waiting))
    })
    .await;
    assert_eq!(waiting, 1);
    let second = send_raw(&platform, &agent.token(), batch(1).to_string().into_bytes(), None).await;
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let problem: Value = second.json().await.expect("json");
    assert_eq!(problem["code"], "agent_busy", "{problem}");
    // Not the request's 40 s: the batch gives up after its lock wait bound.
    let response = first.await.expect("task");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "telemetry_busy", "{problem}");
    holder.rollback().await.expect("release");
    // Nothing of it was kept: sent again, it is new.
    let (status, ack) = send(&platform, &agent.token(), &batch(0), None).await;
    assert_eq!((status, ack["duplicate"].as_bool()), (200, Some(false)), "{ack}");
    platform.stop().await;
}
