//! Outbound webhooks, received and verified by the official
//! `standardwebhooks` Python library.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::Platform;

/// The receiver (tests/receivers/standard_webhooks.py); stopped when dropped.
pub(crate) struct Receiver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
        let mut child = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receivers/standard_webhooks.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} with standardwebhooks is needed (.ci/run installs it): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("the receiver did not start: {line:?}"));
        Self { child, url: format!("http://127.0.0.1:{port}"), http: anchor_testkit::http_client() }
    }

    pub(crate) async fn control(&self, settings: Value) {
        self.http.post(format!("{}/_control", self.url)).json(&settings).send().await.expect("control");
    }

    async fn received(&self) -> Vec<Value> {
        self.http.get(format!("{}/_received", self.url)).send().await.expect("get").json().await.expect("json")
    }

    /// The deliveries it refused (503 while down, 410 when gone).
    async fn refused(&self) -> Vec<Value> {
        self.http.get(format!("{}/_refused", self.url)).send().await.expect("get").json().await.expect("json")
    }

    /// Waits until `n` deliveries have arrived.
    pub(crate) async fn wait_for(&self, n: usize, patience: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let received = self.received().await;
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} deliveries after {patience:?}: {received:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn create_endpoint(platform: &Platform, receiver: &Receiver, events: &[&str]) -> (String, String) {
    let body = json!({"url": format!("{}/hook", receiver.url), "events": events, "description": "receiver"});
    let response = platform.post("/api/v1/workspaces/acme/webhooks", "mia", &body, None).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let secret = created["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_"));
    (created["id"].as_str().expect("id").to_owned(), secret)
}

async fn open_ticket(platform: &Platform, title: &str) {
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "mia", &json!({"title": title, "priority": "p3"}), Some(20))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn deliveries_verify_with_the_standard_webhooks_library_and_survive_a_receiver_outage() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let receiver = Receiver::start();
    let (id, secret) = create_endpoint(&platform, &receiver, &["ticket.created", "execution.succeeded"]).await;
    receiver.control(json!({"secret": secret})).await;

    // The secret is never shown again.
    let endpoint = platform.get(&format!("/api/v1/workspaces/acme/webhooks/{id}"), "mia").await;
    assert!(endpoint.get("secret").is_none() && !endpoint.to_string().contains("whsec_"), "{endpoint}");

    open_ticket(&platform, "Printer offline").await;
    let received = receiver.wait_for(2, Duration::from_secs(20)).await;
    let mut types: Vec<&str> = received.iter().map(|r| r["type"].as_str().unwrap_or_default()).collect();
    types.sort_unstable();
    assert_eq!(types, ["execution.succeeded", "ticket.created"]);
    assert!(received.iter().all(|r| r["verified"] == true), "{received:?}");

    // Down for a while: every message arrives once it is back.
    receiver.control(json!({"mode": "down"})).await;
    open_ticket(&platform, "During the outage").await;
    let deliveries = format!("/api/v1/workspaces/acme/webhooks/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = platform.get(&deliveries, "mia").await;
        if log["items"].as_array().expect("items").iter().any(|a| a["status_code"] == 503) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failed attempt logged: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.control(json!({"mode": "ok"})).await;
    let received = receiver.wait_for(4, Duration::from_secs(30)).await;
    assert!(received.iter().all(|r| r["verified"] == true), "{received:?}");
    let log = platform.get(&deliveries, "mia").await;
    let first = &log["items"].as_array().expect("items").last().expect("an attempt").clone();
    assert_eq!(first["status_code"], 204);
    assert!(first["latency_ms"].is_number() && first["message_id"].as_str().expect("id").starts_with("msg_"));
    // One webhook-id per message, kept across retries: what the receiver
    // refused while down came again, with the same id, once it was back.
    let ids: std::collections::HashSet<&str> = received.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "{received:?}");
    let refused = receiver.refused().await;
    assert!(!refused.is_empty());
    for attempt in &refused {
        let id = attempt["id"].as_str().expect("a webhook-id on every attempt");
        assert!(ids.contains(id), "{id} was refused and never delivered again under the same id: {received:?}");
    }

    // Rotation: both secrets sign for a while, so the receiver's old one still verifies.
    let rotated =
        platform.post(&format!("/api/v1/workspaces/acme/webhooks/{id}/rotate-secret"), "mia", &json!({}), None).await;
    assert_eq!(rotated.status(), 200);
    let test = platform.post(&format!("/api/v1/workspaces/acme/webhooks/{id}/test"), "mia", &json!({}), None).await;
    assert_eq!(test.status(), 202);
    let received = receiver.wait_for(5, Duration::from_secs(20)).await;
    let last = received.last().expect("test message");
    assert_eq!(
        (last["type"].as_str(), last["verified"].as_bool(), last["signatures"].as_i64()),
        (Some("webhook.test"), Some(true), Some(2))
    );

    // 410 Gone disables the endpoint and tells the workspace.
    receiver.control(json!({"mode": "gone"})).await;
    open_ticket(&platform, "After it is gone").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let endpoint = loop {
        let endpoint = platform.get(&format!("/api/v1/workspaces/acme/webhooks/{id}"), "mia").await;
        if endpoint["enabled"] == false {
            break endpoint;
        }
        assert!(tokio::time::Instant::now() < deadline, "still enabled: {endpoint}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(endpoint["disabled_reason"].as_str().expect("reason").contains("410"), "{endpoint}");
    assert_eq!(platform.events("webhook.endpoint_disabled").await.len(), 1);
    platform.stop().await;
}

#[tokio::test]
async fn endpoints_are_validated_and_managed_by_msp_admins_only() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "tess", Role::Technician).await;
    for (body, code) in [
        (json!({"url": "http://10.0.0.1:9/hook", "events": ["ticket.created"]}), "webhook_url_forbidden"),
        (json!({"url": "http://[::1]:9/hook", "events": ["ticket.created"]}), "webhook_url_forbidden"),
        (json!({"url": "http://169.254.169.254/latest", "events": ["ticket.created"]}), "webhook_url_forbidden"),
        (json!({"url": "ftp://example.com/", "events": ["ticket.created"]}), "invalid_url"),
        (json!({"url": "http://127.0.0.1:9/hook", "events": ["ticket.deleted"]}), "invalid_events"),
        (json!({"url": "http://127.0.0.1:9/hook", "events": []}), "invalid_events"),
    ] {
        let response = platform.post("/api/v1/workspaces/acme/webhooks", "mia", &body, None).await;
        assert_eq!(response.status(), 422, "{body}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }
    let ok = json!({"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]});
    let response = platform.post("/api/v1/workspaces/acme/webhooks", "tess", &ok, None).await;
    assert_eq!(response.status(), 403, "technicians do not manage webhooks");
    let response = platform.post("/api/v1/workspaces/acme/webhooks", "mia", &ok, None).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/acme/webhooks/{id}");
    let patched = platform
        .client
        .patch(platform.url(&path))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "patch-1")
        .json(&json!({"events": ["ticket.created", "ticket.updated"], "enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.expect("json");
    assert_eq!(
        (patched["events"].clone(), patched["enabled"].clone()),
        (json!(["ticket.created", "ticket.updated"]), json!(false))
    );
    let deleted = platform
        .client
        .delete(platform.url(&path))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "delete-1")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = platform.client.get(platform.url(&path)).bearer_auth(platform.token("mia")).send().await.expect("get");
    assert_eq!(gone.status(), 404);
    platform.stop().await;
}

async fn deliver_inbound(
    platform: &Platform,
    source: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> reqwest::Response {
    let mut request = platform
        .client
        .post(platform.url(&format!("/api/v1/callbacks/inbound/acme/{source}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature.to_owned()),
    ] {
        if !value.is_empty() {
            request = request.header(name, value);
        }
    }
    request.send().await.expect("deliver")
}

#[tokio::test]
async fn inbound_deliveries_are_verified_receipted_and_replays_change_nothing() {
    use anchor_webhooks::signature::Secret;
    let metrics = anchor_observability::metrics_handle();
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let response = platform
        .post(
            "/api/v1/workspaces/acme/inbound-sources",
            "mia",
            &json!({"name": "billing", "description": "Invoices"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert!(created["url"].as_str().expect("url").ends_with("/api/v1/callbacks/inbound/acme/billing"));
    let secret = Secret::parse(created["secret"].as_str().expect("secret")).expect("whsec");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = r#"{"type":"invoice.paid","data":{"invoice":"INV-7"}}"#;
    let signature = secret.sign("msg_inbound_1", now, body.as_bytes());

    let first = deliver_inbound(&platform, "billing", "msg_inbound_1", now, &signature, body).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(
        (first["delivery_id"].as_str(), first["replay"].as_bool()),
        (Some("billing:msg_inbound_1"), Some(false))
    );
    assert!(first["body_digest"].as_str().expect("digest").starts_with("sha256:"));
    let replay = deliver_inbound(&platform, "billing", "msg_inbound_1", now, &signature, body).await;
    let replay: Value = replay.json().await.expect("json");
    assert_eq!((replay["receipt_id"].clone(), replay["replay"].clone()), (first["receipt_id"].clone(), json!(true)));
    let events = platform.events("inbound.received").await;
    assert_eq!(events.len(), 1, "one effect");
    assert_eq!(events[0]["type"], "invoice.paid");

    let refusals: [(&str, i64, String, &str, u16, &str); 5] = [
        ("stale", now - 301, secret.sign("msg_2", now - 301, body.as_bytes()), "billing", 400, "timestamp_stale"),
        (
            "bad signature",
            now,
            Secret::generate().sign("msg_2", now, body.as_bytes()),
            "billing",
            401,
            "signature_invalid",
        ),
        ("altered body", now, secret.sign("msg_2", now, b"{}"), "billing", 401, "signature_invalid"),
        ("unknown source", now, secret.sign("msg_2", now, body.as_bytes()), "payroll", 401, "signature_invalid"),
        ("missing headers", now, String::new(), "billing", 400, "signature_headers_missing"),
    ];
    for (case, ts, signature, source, status, code) in refusals {
        let response = deliver_inbound(&platform, source, "msg_2", ts, &signature, body).await;
        assert_eq!(response.status().as_u16(), status, "{case}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], code, "{case}");
    }
    let long_id = "m".repeat(201);
    let response =
        deliver_inbound(&platform, "billing", &long_id, now, &secret.sign(&long_id, now, body.as_bytes()), body).await;
    assert_eq!(response.status(), 400, "an id no sender uses");
    assert_eq!(response.json::<Value>().await.expect("json")["code"], "webhook_id_invalid");
    assert_eq!(platform.events("inbound.received").await.len(), 1, "refusals have no effect");
    // Refusals are counted by reason (the counter is process-wide: at least ours).
    let rendered = metrics.render();
    for reason in ["stale_timestamp", "bad_signature", "missing_headers", "bad_id"] {
        let line = rendered
            .lines()
            .find(|l| {
                l.starts_with("anchor_callbacks_refused_total")
                    && l.contains(r#"source="standard_webhooks""#)
                    && l.contains(&format!(r#"reason="{reason}""#))
            })
            .unwrap_or_else(|| panic!("no {reason} counter in:\n{rendered}"));
        let count: f64 = line.rsplit(' ').next().expect("value").parse().expect("number");
        assert!(count >= 1.0, "{line}");
    }

    // During a rotation the old secret is still accepted.
    let rotated =
        platform.post("/api/v1/workspaces/acme/inbound-sources/billing/rotate-secret", "mia", &json!({}), None).await;
    assert_eq!(rotated.status(), 200);
    let new_secret =
        Secret::parse(rotated.json::<Value>().await.expect("json")["secret"].as_str().expect("s")).expect("whsec");
    for (id, key) in [("msg_old", &secret), ("msg_new", &new_secret)] {
        let response = deliver_inbound(&platform, "billing", id, now, &key.sign(id, now, body.as_bytes()), body).await;
        assert_eq!(response.status(), 200, "{id}");
    }
    platform.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_the_workspace_told() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let receiver = Receiver::start();
    let (id, secret) = create_endpoint(&platform, &receiver, &["ticket.created"]).await;
    receiver.control(json!({"secret": secret, "mode": "down"})).await;
    // Its deliveries have been failing since six days ago.
    sqlx::query("UPDATE ws_acme.webhook_endpoints SET failing_since = now() - interval '6 days'")
        .execute(platform.store.pool())
        .await
        .expect("age the failure");
    let test = platform.post(&format!("/api/v1/workspaces/acme/webhooks/{id}/test"), "mia", &json!({}), None).await;
    assert_eq!(test.status(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let endpoint = loop {
        let endpoint = platform.get(&format!("/api/v1/workspaces/acme/webhooks/{id}"), "mia").await;
        if endpoint["enabled"] == false {
            break endpoint;
        }
        assert!(tokio::time::Instant::now() < deadline, "still enabled: {endpoint}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(endpoint["disabled_reason"].as_str().expect("reason").contains("five days"), "{endpoint}");
    let told = platform.events("webhook.endpoint_disabled").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["endpoint_id"], id.as_str());
    // The event (which other endpoints may receive) names the host, never
    // the URL: its path and query are the receiver's capability.
    assert_eq!(told[0]["host"], receiver.url.trim_start_matches("http://"));
    assert!(told[0].get("url").is_none() && !told[0].to_string().contains("/hook"), "{}", told[0]);
    // Enabling it again clears the failure state.
    let enabled = platform
        .client
        .patch(platform.url(&format!("/api/v1/workspaces/acme/webhooks/{id}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "enable-1")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .expect("patch");
    let enabled: Value = enabled.json().await.expect("json");
    assert_eq!((enabled["enabled"].clone(), enabled["failing_since"].clone()), (json!(true), Value::Null));
    platform.stop().await;
}
