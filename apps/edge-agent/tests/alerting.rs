//! The real agent binary driving alert automation: a disk threshold rule
//! its real disk usage crosses opens a critical alert, the triage reasoner
//! opens a ticket linked to the machine, and when the threshold is raised
//! above the usage, recovery resolves both.

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../anchor/tests/commands/platform.rs"]
mod platform;

use std::process::Stdio;

use anchor_domain::Role;
use common::{Running, agent, poll};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_threshold_opens_an_alert_and_a_ticket_and_recovery_resolves_both() {
    let platform = platform::Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let created = platform
        .post("/api/v1/workspaces/acme/enrollment-tokens", "mia", &json!({"max_uses": 1}), None)
        .await
        .json::<Value>()
        .await
        .expect("token");
    let token = created["token"].as_str().expect("token").to_owned();
    // A threshold the machine's real root file system is surely above.
    let rule = json!({"name": "Root disk above threshold", "kind": "metric", "metric": "disk.used_percent",
                      "comparison": ">=", "threshold": 0.001, "severity": "critical"});
    let response = platform.post("/api/v1/workspaces/acme/alert-rules", "mia", &rule, None).await;
    assert_eq!(response.status(), 201);
    let rule_id = response.json::<Value>().await.expect("rule")["id"].as_str().expect("id").to_owned();

    let state = tempfile::tempdir().expect("tempdir");
    let server = format!("http://{}", platform.gateway_addr);
    let enrolled = tokio::task::spawn_blocking({
        let (state, token) = (state.path().to_path_buf(), token.clone());
        move || agent(&state).args(["enroll", "--server", &server, "--token", &token]).output().expect("enroll")
    })
    .await
    .expect("join");
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    let _running =
        Running(agent(state.path()).args(["run", "--interval", "1"]).stderr(Stdio::null()).spawn().expect("run"));

    let alert = poll("a critical alert with a ticket", || async {
        let alerts = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
        alerts["items"]
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule_id.as_str() && a["ticket_id"].is_string())
            .cloned()
    })
    .await;
    let ticket_id = alert["ticket_id"].as_str().expect("ticket").to_owned();
    let (asset, linked): (String, Option<String>) =
        sqlx::query_as("SELECT a.id, t.asset_id FROM ws_acme.assets a, ws_acme.tickets t WHERE t.id = $1")
            .bind(&ticket_id)
            .fetch_one(platform.store.pool())
            .await
            .expect("link");
    assert_eq!(linked.as_deref(), Some(asset.as_str()), "the ticket names the machine");

    // Raise the threshold above the usage: the next batch recovers.
    let raised = json!({"name": "Root disk above threshold", "kind": "metric", "metric": "disk.used_percent",
                        "comparison": ">=", "threshold": 100.0, "severity": "critical"});
    let response = platform
        .client
        .put(platform.url(&format!("/api/v1/workspaces/acme/alert-rules/{rule_id}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "raise-1")
        .json(&raised)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    poll("the ticket resolved", || async {
        let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket_id}"), "mia").await;
        (ticket["status"] == "resolved").then_some(ticket)
    })
    .await;
    let alerts = platform.get("/api/v1/workspaces/acme/alerts", "mia").await;
    let ours =
        alerts["items"].as_array().expect("items").iter().find(|a| a["id"] == alert["id"]).cloned().expect("alert");
    assert_eq!(ours["state"], "resolved");
    drop(_running);
    platform.stop().await;
}
