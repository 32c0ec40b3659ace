//! `POST /api/v1/callbacks/agentfield`: verified before parsing,
//! deduplicated, receipted, and a replay causes nothing.

use std::time::Duration;

use anchor_commands::{CommandSigner, accept, callback::CallbackKey};
use anchor_domain::Role;
use anchor_store::executions::Actor;
use serde_json::{Value, json};

use crate::{Options, Platform};

fn signature(key: &CallbackKey, workspace: &str, execution: &str, body: &[u8]) -> String {
    let tag = anchor_crypto::mac::sign(key.secret_for(workspace, execution).as_bytes(), &[body]);
    format!("sha256={}", hex::encode(tag))
}

async fn deliver(
    platform: &Platform,
    workspace: &str,
    execution: &str,
    signature: &str,
    body: &[u8],
) -> reqwest::Response {
    platform
        .client
        .post(platform.url("/api/v1/callbacks/agentfield"))
        .header("content-type", "application/json")
        .header("X-Anchor-Workspace", workspace)
        .header("X-Anchor-Execution", execution)
        .header("X-AgentField-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("deliver")
}

#[tokio::test]
async fn a_replayed_callback_gets_the_original_receipt_and_changes_nothing() {
    // AgentField never answers here: the only news is the callbacks below.
    let platform = Platform::start_with(Options { agentfield_up: false, ..Options::default() }).await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    let signer = CommandSigner::load_or_create(platform.data_dir.path()).expect("signer");
    let key = CallbackKey::load_or_create(platform.data_dir.path()).expect("key");
    let command = anchor_commands::Command::parse("ticket.create", json!({"title": "Replay", "priority": "p4"}))
        .expect("command");
    let actor = Actor { issuer: anchor_auth::dev_issuer::DEV_ISSUER.into(), subject: "tess".into() };
    let execution =
        accept(&platform.store, &signer, &acme, &actor, Some(Role::Technician), &command).await.expect("accept");
    let id = execution.id.to_string();
    let body = serde_json::to_vec(&json!({
        "event": "execution.completed", "execution_id": "exec_0123456789abcdef", "workflow_id": "run_1",
        "agent_node_id": "anchor", "reasoner_id": "ticket_create", "status": "succeeded",
        "target": "anchor.ticket_create", "type": "skill", "retry_count": 0,
        "result": {"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w"}, "timestamp": "2026-11-24T08:00:00Z",
    }))
    .expect("json");
    let good = signature(&key, "acme", &id, &body);

    // Refused before parsing: wrong signature, another execution's headers,
    // a wrong key, no signature, a body that is not even JSON.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    for (case, response) in [
        ("tampered body", deliver(&platform, "acme", &id, &good, &tampered).await),
        ("other execution", deliver(&platform, "acme", "exe_01jd6m2h9x8k7v5t3r1p0n9q8w", &good, &body).await),
        (
            "other key",
            deliver(&platform, "acme", &id, &signature(&CallbackKey::from_bytes([1; 32]), "acme", &id, &body), &body)
                .await,
        ),
        ("unsigned", deliver(&platform, "acme", &id, "", &body).await),
        ("garbage", deliver(&platform, "acme", &id, &good, b"not json").await),
    ] {
        assert_eq!(response.status(), 401, "{case}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "signature_invalid", "{case}");
    }

    let first = deliver(&platform, "acme", &id, &good, &body).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["replay"], false);
    assert_eq!(first["outcome"]["applied"], true);
    assert!(first["receipt_id"].as_str().expect("receipt").starts_with("rcp_"));

    let replay = deliver(&platform, "acme", &id, &good, &body).await;
    assert_eq!(replay.status(), 200);
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay["replay"], true);
    assert_eq!(replay["receipt_id"], first["receipt_id"], "the original receipt");
    assert_eq!(replay["received_at"], first["received_at"]);

    // A later, different event for the same execution is news but changes
    // nothing: the first outcome stands.
    let failed = serde_json::to_vec(&json!({
        "event": "execution.failed", "execution_id": "exec_0123456789abcdef", "status": "failed",
        "error_message": "too late",
    }))
    .expect("json");
    let late = deliver(&platform, "acme", &id, &signature(&key, "acme", &id, &failed), &failed).await;
    let late: Value = late.json().await.expect("json");
    assert_eq!((late["replay"].clone(), late["outcome"]["applied"].clone()), (json!(false), json!(false)));

    // The first news decided, and it was not believed: AgentField said
    // "succeeded" for a skill that never ran, so no ticket exists and the
    // execution says so.
    let execution = platform.get(&format!("/api/v1/workspaces/acme/executions/{id}"), "tess").await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["code"], "no_effect_recorded", "{execution}");
    assert!(execution.get("result").is_none_or(Value::is_null), "{execution}");
    assert_eq!(platform.events("execution.failed").await.len(), 1, "one completion event");
    assert_eq!(platform.events("execution.succeeded").await.len(), 0);
    let receipts: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.callback_receipts")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(receipts, 2, "one receipt per accepted delivery");
    platform.stop().await;
}

#[tokio::test]
async fn without_webhooks_the_skill_finishes_what_it_performed_and_polling_what_failed_before_it() {
    // The mock refuses loopback webhook URLs (as upstream does by default).
    // Polling looks 3 s after the hand-off: later than the caller waits.
    let options = Options { webhook_hosts: Vec::new(), reconcile_after: Duration::from_secs(3), ..Options::default() };
    let mut platform = Platform::start_with(options).await;
    platform.workspace("acme", "tess", Role::Technician).await;

    // The skill finishes the execution with its effect, in its own unit of
    // work, and records where AgentField ran it: the caller waiting gets
    // the outcome without any callback.
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "No webhook", "priority": "p3"}), Some(2))
        .await;
    assert_eq!(response.status(), 200, "finished while the caller waited");
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert!(execution["result"]["ticket_id"].is_string());
    let (agentfield_id, target, handed_off): (Option<String>, Option<String>, bool) = sqlx::query_as(
        "SELECT agentfield_execution_id, agentfield_target, handed_off_at IS NOT NULL FROM ws_acme.executions WHERE id = $1",
    )
    .bind(execution["id"].as_str().expect("id"))
    .fetch_one(platform.store.pool())
    .await
    .expect("execution");
    assert!(agentfield_id.is_some_and(|id| id.starts_with("exec_")), "AgentField's execution id is recorded");
    assert_eq!((target.as_deref(), handed_off), (Some("anchor.ticket_create"), true));

    // A skill that never ran (the node is gone) records nothing: AgentField
    // fails the execution, and with no webhook, polling finishes it.
    platform.node.take().expect("node").stop().await;
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "No node", "priority": "p3"}), None)
        .await;
    assert_eq!(response.status(), 202);
    let execution = platform.finished(&crate::location(&response), "tess", Duration::from_secs(30)).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["code"], "agent_error", "{execution}");
    let receipts: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.callback_receipts")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(receipts, 0, "no callback came: the skill and polling did it");
    platform.stop().await;
}
