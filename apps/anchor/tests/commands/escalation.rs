//! Escalation of critical alerts nobody acknowledged: after
//! `alert_escalate_after` the worker's job marks the alert once, publishes
//! `alert.escalated`, and raises its ticket to P1 with a note, by commands
//! of Anchor's system actor; an acknowledged alert is left alone, and so is
//! one held by a maintenance window (no ticket until the window ends).

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Options, Platform,
    telemetry::{disk, enroll, enrollment_token, send, wait_for},
};

const WS: &str = "/api/v1/workspaces/acme";

#[tokio::test]
async fn an_unacknowledged_critical_alert_escalates_its_ticket_and_an_acknowledged_one_does_not() {
    let options = Options { alert_escalate_after: Duration::from_secs(3), ..Options::default() };
    let platform = Platform::start_with(options).await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let token = enrollment_token(&platform, 3).await;
    let token = token["token"].as_str().expect("token").to_owned();
    let quiet = enroll(&platform, &token, "nobody-looks").await.expect("enrolled");
    let watched = enroll(&platform, &token, "someone-looks").await.expect("enrolled");
    let serviced = enroll(&platform, &token, "in-maintenance").await.expect("enrolled");
    let machine: String = sqlx::query_scalar("SELECT id FROM ws_acme.assets WHERE agent_id = $1")
        .bind(serviced.id.to_string())
        .fetch_one(platform.store.pool())
        .await
        .expect("the machine");

    // A maintenance window over the third machine; windows that make no sense are refused.
    let in_an_hour = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let response = platform
        .post(
            &format!("{WS}/maintenance-windows"),
            "mia",
            &json!({"asset_id": machine, "ends_at": in_an_hour, "reason": "Disk swap"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let window: Value = response.json().await.expect("window");
    for bad in [
        json!({"asset_id": machine, "site_id": "sit_01jd6m2h9x8k7v5t3r1p0n9q8w", "ends_at": in_an_hour}),
        json!({"asset_id": machine, "ends_at": "2020-01-01T00:00:00Z"}),
    ] {
        let response = platform.post(&format!("{WS}/maintenance-windows"), "mia", &bad, None).await;
        assert_eq!(response.status(), 422, "{bad}");
    }
    assert_eq!(send(&platform, &serviced.token(), &disk(0, 99.0), None).await.0, 200);

    // The watched machine's alert is acknowledged at once; the other's is not.
    assert_eq!(send(&platform, &watched.token(), &disk(0, 97.0), None).await.0, 200);
    let acknowledged = wait_for("the watched alert", || async {
        let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
        alerts["items"].as_array()?.first().map(|a| a["id"].clone())
    })
    .await;
    let acknowledged = acknowledged.as_str().expect("id").to_owned();
    let response = platform.post(&format!("{WS}/alerts/{acknowledged}/acknowledge"), "mia", &json!({}), Some(20)).await;
    assert_eq!(response.json::<Value>().await.expect("execution")["status"], "succeeded");
    assert_eq!(send(&platform, &quiet.token(), &disk(0, 98.0), None).await.0, 200);

    // Escalated once: the alert marked, its ticket P1 with a note.
    let escalated = wait_for("the unacknowledged alert escalated", || async {
        let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
        alerts["items"].as_array()?.iter().find(|a| a["escalated_at"].is_string()).cloned()
    })
    .await;
    assert_ne!(escalated["id"].as_str(), Some(acknowledged.as_str()));
    let ticket = escalated["ticket_id"].as_str().expect("automation opened its ticket").to_owned();
    let page = wait_for("the ticket at P1 with the note", || async {
        let page = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
        let noted = page["comments"].as_array()?.iter().any(|c| {
            c["body"].as_str().is_some_and(|b| b.starts_with("Escalated by Anchor")) && c["visibility"] == "internal"
        });
        (page["priority"] == "p1" && noted).then_some(page)
    })
    .await;
    assert_eq!(page["comments"].as_array().map(|c| c.len()), Some(1), "one note, once");
    assert_eq!(platform.events("alert.escalated").await.len(), 1);

    // Another pass of the job changes nothing: the other alert was
    // acknowledged, the third is held until its window ends.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
    let items = alerts["items"].as_array().expect("items");
    let escalations = items.iter().filter(|a| a["escalated_at"].is_string()).count();
    assert_eq!(escalations, 1);
    let held = items.iter().find(|a| a["asset_id"] == machine.as_str()).expect("the held alert");
    assert_eq!(held["snoozed_until"], window["ends_at"], "held until the window ends: {held}");
    assert!(held["ticket_id"].is_null(), "no ticket while held: {held}");
    let waits: Option<bool> = sqlx::query_scalar(
        "SELECT bool_and(available_at > now() + interval '50 minutes') FROM platform.outbox_events
          WHERE topic = 'alert.route' AND payload->>'alert_id' = $1 AND state = 'pending'",
    )
    .bind(held["id"].as_str())
    .fetch_one(platform.store.pool())
    .await
    .expect("route");
    assert_eq!(waits, Some(true), "automation decides when the window ends");
    let deleted = platform
        .client
        .delete(platform.url(&format!("{WS}/maintenance-windows/{}", window["id"].as_str().expect("id"))))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "cancel-window")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(platform.events("alert.escalated").await.len(), 1);
    platform.stop().await;
}

/// Two alerts that open together on one machine are one ticket: the second
/// joins the first's ticket (with a note), and recovery resolves the shared
/// ticket only when the last of them recovers.
#[tokio::test]
async fn simultaneous_alerts_on_one_machine_share_one_ticket_until_the_last_recovers() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let rule = json!({"name": "Memory in use", "kind": "metric", "metric": "memory.used_percent",
                      "comparison": ">=", "threshold": 10.0, "severity": "critical"});
    let response = platform.post(&format!("{WS}/alert-rules"), "mia", &rule, None).await;
    assert_eq!(response.status(), 201);
    let memory_rule = response.json::<Value>().await.expect("rule")["id"].as_str().expect("id").to_owned();
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "busy-host").await.expect("enrolled");

    // Disk at 97 % and memory at 40 % in one batch: two critical alerts at once.
    assert_eq!(send(&platform, &agent.token(), &disk(0, 97.0), None).await.0, 200);
    let alerts = wait_for("both alerts on one ticket", || async {
        let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
        let items = alerts["items"].as_array()?.clone();
        (items.len() == 2 && items.iter().all(|a| a["ticket_id"].is_string())).then(|| json!(items))
    })
    .await;
    let ticket = alerts[0]["ticket_id"].as_str().expect("ticket").to_owned();
    assert_eq!(alerts[1]["ticket_id"], ticket.as_str(), "one ticket: {alerts}");
    let tickets = platform.get(&format!("{WS}/tickets"), "mia").await;
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(1), "{tickets}");
    let page = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert!(
        page["comments"].as_array().expect("comments").iter().any(|c| c["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("Another alert on the same machine joined this ticket"))),
        "{page}"
    );

    // The disk recovers: the memory alert is still open, so is the ticket.
    assert_eq!(send(&platform, &agent.token(), &disk(1, 50.0), None).await.0, 200);
    wait_for("the disk alert resolved", || async {
        let open = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
        (open["items"].as_array()?.len() == 1).then_some(json!(true))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_ne!(page["status"], "resolved", "another alert is still on it");

    // The memory rule no longer holds: the last alert recovers, and the ticket with it.
    let raised = json!({"name": "Memory in use", "kind": "metric", "metric": "memory.used_percent",
                        "comparison": ">=", "threshold": 100.0, "severity": "critical"});
    let response = platform
        .client
        .put(platform.url(&format!("{WS}/alert-rules/{memory_rule}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "raise-memory")
        .json(&raised)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    assert_eq!(send(&platform, &agent.token(), &disk(2, 50.0), None).await.0, 200);
    wait_for("the shared ticket resolved", || async {
        let page = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
        (page["status"] == "resolved").then_some(page)
    })
    .await;
    platform.stop().await;
}
