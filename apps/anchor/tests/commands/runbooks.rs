//! Runbooks end to end: versioned configuration, refused when a step names
//! no command; a run about a ticket and an asset, a ticked step that becomes
//! a note on the ticket, a command step whose command runs through
//! AgentField as its own execution with its signed credential and is then
//! recorded on the run; steps done once, command steps only with their
//! command's execution.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    cmdb::{create, refused, run, send_command},
};

const WS: &str = "/api/v1/workspaces/acme";

async fn put(platform: &Platform, method: &str, path: &str, body: &Value) -> reqwest::Response {
    platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .json(body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn a_runbook_run_records_each_step_and_its_command_step_runs_with_evidence() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let server = create(&platform, json!({"type": "server", "name": "File server"})).await;
    let ticket = run(
        &platform,
        "POST",
        "/tickets",
        json!({"title": "Disk full", "priority": "p2", "asset_id": server}),
    )
    .await["ticket_id"]
        .as_str()
        .expect("ticket")
        .to_owned();

    // Configuration: checked, versioned, recorded.
    let bad = json!({"name": "Disk full", "asset_type": "spaceship", "steps": [
        {"kind": "check", "text": ""},
        {"kind": "command", "text": "Wipe", "command": "rm.rf", "args": {}},
        {"kind": "command", "text": "Nest", "command": "runbook.start", "args": {}}]});
    let response = put(&platform, "POST", "/runbooks", &bad).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    let places: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["pointer"].as_str().or(e["path"].as_str()))
        .collect();
    assert_eq!(places, ["/steps/0/text", "/steps/1/command", "/steps/2/command", "/asset_type"], "{problem}");
    let body = json!({"name": "Disk full", "description": "When a server's disk fills up.", "asset_type": "server",
                      "steps": [
        {"kind": "check", "text": "Confirm which volume is full"},
        {"kind": "command", "text": "Tag the machine for clean-up", "command": "asset.tag",
         "args": {"asset_id": "{asset_id}", "add": ["disk-cleanup"]}},
        {"kind": "text", "text": "Tell the client what was removed"}]});
    let response = put(&platform, "POST", "/runbooks", &body).await;
    assert_eq!(response.status(), 201);
    let runbook: Value = response.json().await.expect("runbook");
    let id = runbook["id"].as_str().expect("id").to_owned();
    assert_eq!((runbook["version"].as_i64(), runbook["steps"].as_array().map(Vec::len)), (Some(1), Some(3)));
    let again = put(&platform, "POST", "/runbooks", &body).await;
    assert_eq!(again.status(), 409, "names are unique");

    // A run about the ticket and the server, on version 1.
    let started =
        run(&platform, "POST", "/runbook-runs", json!({"runbook_id": id, "ticket_id": ticket, "asset_id": server}))
            .await;
    let run_id = started["run_id"].as_str().expect("run").to_owned();
    assert_eq!(started["version"], 1);
    // A new version does not change the run under way.
    let mut v2 = body.clone();
    v2["steps"].as_array_mut().expect("steps").push(json!({"kind": "check", "text": "Close the ticket"}));
    let response = put(&platform, "PUT", &format!("/runbooks/{id}"), &v2).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("v2")["version"], 2);

    let steps = format!("/runbook-runs/{run_id}/steps");
    run(&platform, "POST", &steps, json!({"step": 1, "note": "/srv is at 99 %"})).await;
    refused(&platform, "POST", &steps, json!({"step": 1}), 409, "runbook_step_done").await;
    refused(&platform, "POST", &steps, json!({"step": 2}), 422, "runbook_step_execution").await;
    refused(&platform, "POST", &steps, json!({"step": 4}), 422, "runbook_step_not_found").await;

    // The command step: its command first (its own execution), then the record.
    let response =
        send_command(&platform, "POST", &format!("/assets/{server}/tags"), &json!({"add": ["disk-cleanup"]}), "mia")
            .await;
    let tagged: Value = response.json().await.expect("execution");
    assert_eq!(tagged["status"], "succeeded", "{tagged}");
    let ticket_comment = send_command(
        &platform,
        "POST",
        &format!("/tickets/{ticket}/comments"),
        &json!({"body": "x", "visibility": "internal"}),
        "mia",
    )
    .await;
    let other: Value = ticket_comment.json().await.expect("execution");
    refused(&platform, "POST", &steps, json!({"step": 2, "execution_id": other["id"]}), 422, "runbook_step_execution")
        .await;
    refused(&platform, "POST", &steps, json!({"step": 3, "execution_id": tagged["id"]}), 422, "runbook_step_execution")
        .await;
    let recorded = run(&platform, "POST", &steps, json!({"step": 2, "execution_id": tagged["id"]})).await;
    assert_eq!(recorded["finished"], false);
    let recorded = run(&platform, "POST", &steps, json!({"step": 3})).await;
    assert_eq!(recorded["finished"], true);

    let run_now = platform.get(&format!("{WS}/runbook-runs/{run_id}"), "mia").await;
    assert_eq!(run_now["version"], 1);
    assert!(run_now["finished_at"].is_string(), "{run_now}");
    let done = run_now["done"].as_array().expect("done");
    assert_eq!(done.len(), 3);
    assert_eq!((done[1]["ran"].as_str(), done[1]["ran_status"].as_str()), (tagged["id"].as_str(), Some("succeeded")));
    assert_eq!(done[0]["note"], "/srv is at 99 %");
    assert_eq!(done[0]["done_by"]["subject"], "mia");

    // Each ticked step is an internal note on the ticket.
    let page = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    let notes: Vec<&str> = page["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .filter(|b| b.starts_with("Runbook"))
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("step 1: Confirm which volume is full — done. /srv is at 99 %"), "{notes:?}");

    // The command step and each record carry signed evidence.
    for execution in [tagged["id"].as_str().expect("id"), done[1]["execution_id"].as_str().expect("id")] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let e = platform.get(&format!("{WS}/executions/{execution}"), "mia").await;
            if e["evidence_id"].is_string() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no evidence for {execution}: {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.changes WHERE action LIKE 'runbook.%'")
        .fetch_one(platform.store.pool())
        .await
        .expect("changes");
    assert_eq!(changes, 2, "each save is recorded");
    platform.stop().await;
}
