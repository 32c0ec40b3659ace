//! What users see when a part of the chain is down.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::json;

use crate::{Options, Platform, location};

#[tokio::test]
async fn commands_wait_while_agentfield_is_down_and_complete_when_it_returns() {
    let mut platform = Platform::start_with(Options { agentfield_up: false, ..Options::default() }).await;
    platform.workspace("acme", "tess", Role::Technician).await;
    let mut locations = Vec::new();
    for i in 0..5 {
        let body = json!({"title": format!("Queued while AgentField is down #{i}"), "priority": "p3"});
        let response = platform.post("/api/v1/workspaces/acme/tickets", "tess", &body, None).await;
        assert_eq!(response.status(), 202, "accepted although AgentField is down");
        locations.push(location(&response));
    }
    // The hand-off keeps finding AgentField down and is postponed without
    // spending attempts; nothing is lost or failed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for at in &locations {
        let execution = platform.get(at, "tess").await;
        assert_eq!(execution["status"], "queued", "{execution}");
    }
    let (postponed, failed, spent): (i64, i64, i32) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending' AND last_error LIKE 'postponed:%'),
                count(*) FILTER (WHERE state = 'failed'), coalesce(max(attempts) FILTER (WHERE state = 'pending'), 0)
           FROM platform.outbox_events WHERE topic = 'agentfield.execute'",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("outbox");
    assert!(postponed > 0, "the worker tried and will try again");
    assert_eq!(failed, 0);
    assert_eq!(spent, 0, "an outage spends no attempts, so no outage is long enough to dead-letter a command");

    platform.start_agentfield();
    for at in &locations {
        let execution = platform.finished(at, "tess", Duration::from_secs(60)).await;
        assert_eq!(execution["status"], "succeeded", "{execution}");
    }
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "tess").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 5, "each command took effect exactly once");
    assert_eq!(platform.events("ticket.created").await.len(), 5);
    platform.stop().await;
}

#[tokio::test]
async fn an_agent_node_that_is_down_fails_executions_visibly() {
    let mut platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    platform.node.take().expect("node").stop().await;
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "Nobody home", "priority": "p2"}), None)
        .await;
    assert_eq!(response.status(), 202);
    let execution = platform.finished(&location(&response), "tess", Duration::from_secs(30)).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["code"], "agent_error", "{execution}");
    assert!(execution["error"]["message"].as_str().expect("message").contains("unreachable"), "{execution}");
    assert_eq!(platform.events("execution.failed").await.len(), 1);
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "tess").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 0);
    platform.stop().await;
}

#[tokio::test]
async fn a_node_that_is_not_registered_fails_executions_after_its_grace() {
    // The worker hands commands to a node AgentField does not know: it is
    // told "unknown target", waits out the node's grace (10 s in these
    // tests) in case the node is about to register, then fails visibly.
    let mut platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    platform.worker.take().expect("worker").stop().await;
    platform.start_worker_with(|config| config.orchestrator.node_id = "nobody-here".into());
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "Nobody registered", "priority": "p3"}), None)
        .await;
    assert_eq!(response.status(), 202);
    let at = location(&response);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = platform.get(&at, "tess").await;
    assert_eq!(waiting["status"], "queued", "within the grace it waits: {waiting}");
    let execution = platform.finished(&at, "tess", Duration::from_secs(30)).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["code"], "agent_node_unavailable", "{execution}");
    assert!(execution["error"]["message"].as_str().expect("message").contains("nobody-here."), "{execution}");
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "tess").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 0);
    platform.stop().await;
}
