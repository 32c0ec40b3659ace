//! The ticket commands and reads, as a technician uses them.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{Platform, location};

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_ticket_is_opened_moved_and_commented_through_executions() {
    let platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;

    // Open: 202 with the execution, which finishes with the ticket's id.
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "Printer offline", "priority": "p3"}), None)
        .await;
    assert_eq!(response.status(), 202);
    let at = location(&response);
    let accepted: serde_json::Value = response.json().await.expect("json");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(at, format!("/api/v1/workspaces/acme/executions/{}", accepted["execution_id"].as_str().expect("id")));
    let execution = platform.finished(&at, "tess", PATIENCE).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["command"], "ticket.create");
    assert_eq!(execution["input"], json!({"title": "Printer offline", "priority": "p3"}));
    assert!(execution["agentfield"]["execution_id"].is_string() && execution["completed_at"].is_string());
    let ticket_id = execution["result"]["ticket_id"].as_str().expect("result names the ticket").to_owned();
    assert!(ticket_id.starts_with("tkt_"));

    // Move it with `Prefer: wait`: the answer is the finished execution.
    let path = format!("/api/v1/workspaces/acme/tickets/{ticket_id}");
    let response = platform.post(&format!("{path}/transitions"), "tess", &json!({"to": "triaged"}), Some(20)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("preference-applied").and_then(|v| v.to_str().ok()), Some("wait=20"));
    assert!(response.headers().contains_key("location"));
    let moved: serde_json::Value = response.json().await.expect("json");
    assert_eq!(moved["status"], "succeeded", "{moved}");
    assert_eq!(moved["result"], json!({"ticket_id": ticket_id, "from": "new", "to": "triaged"}));

    let body = json!({"body": "Replaced the toner.", "visibility": "public"});
    let response = platform.post(&format!("{path}/comments"), "tess", &body, Some(20)).await;
    assert_eq!(response.status(), 200);

    // Read it back with its comments and history.
    let ticket = platform.get(&path, "tess").await;
    assert_eq!(ticket["status"], "triaged");
    assert_eq!(ticket["priority"], "p3");
    assert_eq!(ticket["created_by"]["subject"], "tess");
    assert_eq!(ticket["comments"][0]["body"], "Replaced the toner.");
    assert_eq!(ticket["comments"][0]["visibility"], "public");
    let changes: Vec<&str> =
        ticket["history"].as_array().expect("history").iter().map(|h| h["change"].as_str().expect("change")).collect();
    assert_eq!(changes, ["created", "status_changed", "commented"]);

    // Every step published its domain events through the outbox, once.
    assert_eq!(platform.events("ticket.created").await.len(), 1);
    assert_eq!(platform.events("ticket.updated").await.len(), 2);
    assert_eq!(platform.events("execution.succeeded").await.len(), 3);
    assert_eq!(platform.events("execution.failed").await.len(), 0);
    platform.stop().await;
}

#[tokio::test]
async fn lists_page_with_cursors_and_filter() {
    let platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    for (title, priority) in [("One", "p1"), ("Two", "p2"), ("Three", "p2")] {
        let response = platform
            .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": title, "priority": priority}), Some(20))
            .await;
        assert_eq!(response.status(), 200);
    }
    let first = platform.get("/api/v1/workspaces/acme/tickets?limit=2", "tess").await;
    let titles: Vec<&str> =
        first["items"].as_array().expect("items").iter().map(|t| t["title"].as_str().expect("t")).collect();
    assert_eq!(titles, ["Three", "Two"], "newest first");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = platform.get(&format!("/api/v1/workspaces/acme/tickets?limit=2&cursor={cursor}"), "tess").await;
    assert_eq!(second["items"][0]["title"], "One");
    assert!(second["next_cursor"].is_null());
    let p2 = platform.get("/api/v1/workspaces/acme/tickets?priority=p2", "tess").await;
    assert_eq!(p2["items"].as_array().expect("items").len(), 2);

    let executions = platform.get("/api/v1/workspaces/acme/executions?status=succeeded&limit=500", "tess").await;
    assert_eq!(executions["items"].as_array().expect("items").len(), 3);
    let bad = platform
        .client
        .get(platform.url("/api/v1/workspaces/acme/tickets?status=opened"))
        .bearer_auth(platform.token("tess"))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 422);
    platform.stop().await;
}

#[tokio::test]
async fn impossible_moves_are_refused_up_front_or_fail_the_execution() {
    let mut platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "VPN drops", "priority": "p2"}), Some(20))
        .await;
    let created: serde_json::Value = response.json().await.expect("json");
    let ticket_id = created["result"]["ticket_id"].as_str().expect("ticket").to_owned();
    let transitions = format!("/api/v1/workspaces/acme/tickets/{ticket_id}/transitions");

    // The gateway can tell: a new ticket cannot be closed. 409, nothing queued.
    let response = platform.post(&transitions, "tess", &json!({"to": "closed"}), None).await;
    assert_eq!(response.status(), 409);
    let problem: serde_json::Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "transition_not_allowed");
    assert!(problem["detail"].as_str().expect("detail").contains("triaged"), "it says what is allowed: {problem}");
    let executions = platform.get("/api/v1/workspaces/acme/executions?command=ticket.transition", "tess").await;
    assert_eq!(executions["items"].as_array().expect("items").len(), 0);

    // Only the skill can tell: two moves accepted while the ticket was new
    // (the worker stopped, so neither runs before both are accepted); the
    // second to run finds it triaged already and fails with the code.
    platform.worker.take().expect("worker").stop().await;
    let triage = json!({"to": "triaged"});
    let (a, b) = tokio::join!(
        platform.post(&transitions, "tess", &triage, None),
        platform.post(&transitions, "tess", &triage, None),
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (202, 202));
    platform.start_worker();
    let (a, b) = (location(&a), location(&b));
    let (a, b) = tokio::join!(
        platform.finished(&a, "tess", Duration::from_secs(30)),
        platform.finished(&b, "tess", Duration::from_secs(30))
    );
    let mut statuses = [a["status"].as_str().expect("s"), b["status"].as_str().expect("s")];
    statuses.sort_unstable();
    assert_eq!(statuses, ["failed", "succeeded"], "{a}\n{b}");
    let failed = if a["status"] == "failed" { &a } else { &b };
    assert_eq!(failed["error"]["code"], "transition_not_allowed", "{failed}");
    assert!(failed["error"]["message"].as_str().expect("message").contains("triaged"));
    assert_eq!(platform.events("execution.failed").await.len(), 1);

    // Unknown tickets are 404 before anything is queued.
    let response = platform
        .post(
            "/api/v1/workspaces/acme/tickets/tkt_01jd6m2h9x8k7v5t3r1p0n9q8w/comments",
            "tess",
            &json!({"body": "hello", "visibility": "internal"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    platform.stop().await;
}

#[tokio::test]
async fn bad_commands_get_problems_and_roles_are_enforced() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "carl", Role::ClientUser).await;
    for (body, field) in [
        (json!({"title": "", "priority": "p2"}), "/title"),
        (json!({"title": "x", "priority": "p9"}), "/priority"),
        (json!({"title": "x", "priority": "p1", "colour": "red"}), ""),
    ] {
        let response = platform.post("/api/v1/workspaces/acme/tickets", "tess", &body, None).await;
        assert_eq!(response.status(), 422, "{body}");
        let problem: serde_json::Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "validation_failed");
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["path"], field, "{problem}");
        }
    }
    // A client user may not run staff ticket commands.
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "carl", &json!({"title": "Help", "priority": "p4"}), None)
        .await;
    assert_eq!(response.status(), 403);
    let executions = platform.get("/api/v1/workspaces/acme/executions", "tess").await;
    assert_eq!(executions["items"].as_array().expect("items").len(), 0, "nothing was accepted");
    platform.stop().await;
}

#[tokio::test]
async fn with_nats_configured_domain_events_reach_jetstream() {
    let nats_url = std::env::var("ANCHOR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let nats = async_nats::connect(&nats_url).await.expect("NATS must be running for this test");
    // A slug of its own: the stream is shared with other runs.
    let slug = format!("nats-{:08x}", rand::random::<u32>());
    let mut events = nats.subscribe(format!("anchor.events.{slug}.>")).await.expect("subscribe");
    nats.flush().await.expect("flush");
    let platform = Platform::start_with(crate::Options { nats_url: Some(nats_url), ..crate::Options::default() }).await;
    platform.workspace(&slug, "tess", Role::Technician).await;
    let response = platform
        .post(
            &format!("/api/v1/workspaces/{slug}/tickets"),
            "tess",
            &json!({"title": "Via NATS", "priority": "p4"}),
            Some(20),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(20), futures_util::StreamExt::next(&mut events))
            .await
            .expect("events arrive")
            .expect("subscription open");
        let event: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        let msg_id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned());
        let installation = platform.store.installation_id().await.expect("installation");
        assert!(
            msg_id.as_deref().is_some_and(|id| id.starts_with(&format!("{installation}:"))),
            "the installation and the outbox id deduplicate: {msg_id:?}"
        );
        seen.push(event["type"].as_str().expect("type").to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["execution.succeeded", "ticket.created"]);
    platform.stop().await;
}

#[tokio::test]
async fn a_command_retried_with_its_key_runs_once_even_when_the_retries_race() {
    let platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    let body = json!({"title": "Retried on a flaky network", "priority": "p3"});
    let send = |key: &'static str| {
        platform
            .client
            .post(platform.url("/api/v1/workspaces/acme/tickets"))
            .bearer_auth(platform.token("tess"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("open-printer-ticket").await.expect("send");
    assert_eq!(first.status(), 202);
    let at = location(&first);
    let first: serde_json::Value = first.json().await.expect("json");
    let again = send("open-printer-ticket").await.expect("send");
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(location(&again), at);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["execution_id"], first["execution_id"], "the same execution, not a second command");

    // Eight at once with a fresh key: one is accepted, the others are told
    // it is in flight or get its answer.
    let racing = futures_util::future::join_all((0..8).map(|_| send("racing-printer-ticket"))).await;
    let mut accepted = std::collections::HashSet::new();
    for response in racing {
        let response = response.expect("send");
        match response.status().as_u16() {
            202 => {
                accepted.insert(response.json::<serde_json::Value>().await.expect("json")["execution_id"].clone());
            }
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let executions = platform.get("/api/v1/workspaces/acme/executions?command=ticket.create", "tess").await;
    assert_eq!(executions["items"].as_array().expect("items").len(), 2, "two keys, two commands: {executions}");
    for execution in executions["items"].as_array().expect("items") {
        let at = format!("/api/v1/workspaces/acme/executions/{}", execution["id"].as_str().expect("id"));
        assert_eq!(platform.finished(&at, "tess", PATIENCE).await["status"], "succeeded");
    }
    let tickets = platform.get("/api/v1/workspaces/acme/tickets", "tess").await;
    assert_eq!(tickets["items"].as_array().expect("items").len(), 2);
    platform.stop().await;
}

/// The hand-off event carries the command, so a first delivery reads nothing
/// back; an event without it (written before events carried it) is handed off
/// from the execution, and a redelivery of one handed off already is skipped.
#[tokio::test]
async fn hand_off_events_old_and_new_and_redelivered_act_once() {
    let mut platform = Platform::start().await;
    platform.workspace("acme", "tess", Role::Technician).await;
    let store = platform.store.clone();
    let receipts = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM platform.callback_receipts WHERE source = 'agentfield'")
            .fetch_one(store.pool())
            .await
            .expect("receipts")
    };
    // The skill finishes the execution; AgentField's webhook (one receipt
    // per hand-off) comes after the caller has its answer.
    let receipts_reach = |expected: i64| {
        let receipts = &receipts;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let count = receipts().await;
                if count >= expected || tokio::time::Instant::now() >= deadline {
                    return count;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // An event as older releases wrote it: the execution id alone.
    platform.worker.take().expect("worker").stop().await;
    let accepted = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "Old event", "priority": "p3"}), None)
        .await;
    assert_eq!(accepted.status(), 202);
    let old = location(&accepted);
    let rewritten = sqlx::query(
        "UPDATE platform.outbox_events SET payload = jsonb_build_object('execution_id', payload->'execution_id')
          WHERE topic = 'agentfield.execute' AND payload ? 'input'",
    )
    .execute(platform.store.pool())
    .await
    .expect("rewrite");
    assert_eq!(rewritten.rows_affected(), 1);
    platform.start_worker();
    let finished = platform.finished(&old, "tess", Duration::from_secs(30)).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(receipts_reach(1).await, 1);

    // A new event, delivered; then delivered again as after a worker died
    // (its next attempt): handed off once, answered once.
    let response = platform
        .post("/api/v1/workspaces/acme/tickets", "tess", &json!({"title": "New event", "priority": "p3"}), Some(20))
        .await;
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(receipts_reach(2).await, 2);
    let again = sqlx::query(
        "UPDATE platform.outbox_events SET state = 'pending', available_at = now(), locked_until = NULL, locked_by = NULL
          WHERE topic = 'agentfield.execute' AND payload->>'execution_id' = $1",
    )
    .bind(execution["id"].as_str().expect("id"))
    .execute(platform.store.pool())
    .await
    .expect("redeliver");
    assert_eq!(again.rows_affected(), 1);
    let settled = async {
        loop {
            let state: String = sqlx::query_scalar(
                "SELECT state FROM platform.outbox_events WHERE topic = 'agentfield.execute' AND payload->>'execution_id' = $1",
            )
            .bind(execution["id"].as_str().expect("id"))
            .fetch_one(platform.store.pool())
            .await
            .expect("state");
            if state == "delivered" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), settled).await.expect("redelivered");
    // Time for a second hand-off's webhook, had there been one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receipts().await, 2, "the redelivery was not handed off again");
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.tickets")
        .fetch_one(platform.store.pool())
        .await
        .expect("tickets");
    assert_eq!(tickets, 2);
    platform.stop().await;
}
