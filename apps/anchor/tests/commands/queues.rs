//! Queues (configuration) and what commands do with them: assignment to
//! staff (or to me), queue moves that bring the queue's SLA policy, tags
//! with one spelling, merging (the merged ticket stays readable and points
//! to its survivor) and related tickets; and the list's filters on all of it.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::Platform;

const WS: &str = "/api/v1/workspaces/acme";
const DEV: &str = "urn:anchor:dev-issuer";

async fn send(platform: &Platform, who: &str, method: &str, path: &str, body: Value) -> reqwest::Response {
    platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .header("prefer", "wait=20")
        .json(&body)
        .send()
        .await
        .expect("send")
}

/// A command as `who` that succeeds; its result.
async fn run(platform: &Platform, who: &str, path: &str, body: Value) -> Value {
    let response = send(platform, who, "POST", path, body).await;
    assert_eq!(response.status(), 200, "POST {path}: {}", response.text().await.unwrap_or_default());
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

async fn refused(platform: &Platform, path: &str, body: Value, status: u16, code: &str) -> Value {
    let response = send(platform, "mia", "POST", path, body).await;
    assert_eq!(response.status(), status, "POST {path}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn queues_assignment_tags_merge_and_relations() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "tom", Role::Technician).await;
    platform.member(&acme, "abe", Role::Auditor).await;

    // A queue with its own (stricter) policy and its people; a member who is
    // not staff who may work tickets is refused, by position.
    let policy = send(
        &platform,
        "mia",
        "POST",
        "/sla-policies",
        json!({"name": "Infra", "calendar_id": "cal_00000000000000000000000001",
        "targets": {"p3": {"first_response_minutes": 15, "resolution_minutes": 120}}}),
    )
    .await;
    assert_eq!(policy.status(), 201);
    let policy: Value = policy.json().await.expect("json");
    let response = send(
        &platform,
        "mia",
        "POST",
        "/queues",
        json!({"name": "Infrastructure", "sla_policy_id": policy["id"],
        "members": [{"issuer": DEV, "subject": "tom"}, {"issuer": DEV, "subject": "abe"}]}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["errors"][0]["path"], "/members/1", "{problem}");
    let response = send(
        &platform,
        "mia",
        "POST",
        "/queues",
        json!({"name": "Infrastructure", "sla_policy_id": policy["id"],
        "members": [{"issuer": DEV, "subject": "tom"}, {"issuer": DEV, "subject": "mia"}]}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let queue: Value = response.json().await.expect("json");
    let queue_id = queue["id"].as_str().expect("id").to_owned();
    assert_eq!(queue["members"].as_array().expect("members").len(), 2);
    let taken = send(&platform, "mia", "POST", "/queues", json!({"name": "INFRASTRUCTURE"})).await;
    assert_eq!(taken.status(), 409, "names are unique whatever their case");
    let denied = send(&platform, "tom", "POST", "/queues", json!({"name": "Mine"})).await;
    assert_eq!(denied.status(), 403, "queues are configuration: settings.manage");

    // A ticket opened in the queue follows the queue's policy.
    let opened = run(
        &platform,
        "mia",
        "/tickets",
        json!({"title": "Core switch flapping", "priority": "p3", "queue_id": queue_id}),
    )
    .await;
    let switch = opened["ticket_id"].as_str().expect("id").to_owned();
    let detail = platform.get(&format!("{WS}/tickets/{switch}"), "mia").await;
    assert_eq!(
        (detail["queue_id"].as_str(), detail["sla_policy_id"].as_str()),
        (Some(queue_id.as_str()), policy["id"].as_str())
    );
    let other = run(&platform, "mia", "/tickets", json!({"title": "Printer jam", "priority": "p3"})).await;
    let printer = other["ticket_id"].as_str().expect("id").to_owned();
    refused(
        &platform,
        "/tickets",
        json!({"title": "x", "priority": "p3", "queue_id": "que_00000000000000000000000009"}),
        404,
        "queue_not_found",
    )
    .await;

    // Assignment: to me, to a colleague, never to someone who is not staff.
    let me = run(&platform, "tom", &format!("/tickets/{switch}/assign"), json!({"assignee": "me"})).await;
    assert_eq!(me["changed"], true);
    let again = run(&platform, "tom", &format!("/tickets/{switch}/assign"), json!({"assignee": "me"})).await;
    assert_eq!(again["changed"], false, "already mine: nothing recorded");
    refused(
        &platform,
        &format!("/tickets/{printer}/assign"),
        json!({"assignee": {"issuer": DEV, "subject": "abe"}}),
        422,
        "assignee_not_staff",
    )
    .await;
    refused(
        &platform,
        &format!("/tickets/{printer}/assign"),
        json!({"assignee": {"issuer": DEV, "subject": "nobody"}}),
        422,
        "assignee_not_staff",
    )
    .await;
    run(
        &platform,
        "mia",
        &format!("/tickets/{printer}/assign"),
        json!({"assignee": {"issuer": DEV, "subject": "tom"}}),
    )
    .await;
    let detail = platform.get(&format!("{WS}/tickets/{switch}"), "tom").await;
    assert_eq!(detail["assignee"], json!({"issuer": DEV, "subject": "tom"}));
    let mine = platform.get(&format!("{WS}/tickets?assignee=me"), "tom").await;
    assert_eq!(ids(&mine).len(), 2);
    run(&platform, "mia", &format!("/tickets/{printer}/unassign"), json!({})).await;
    assert_eq!(ids(&platform.get(&format!("{WS}/tickets?assignee=none"), "tom").await), [printer.as_str()]);
    assert_eq!(ids(&platform.get(&format!("{WS}/tickets?assignee=tom"), "mia").await), [switch.as_str()]);
    assert_eq!(ids(&platform.get(&format!("{WS}/tickets?queue_id={queue_id}"), "mia").await), [switch.as_str()]);

    // Tags: one spelling, added and removed in one command.
    run(&platform, "mia", &format!("/tickets/{switch}/tags"), json!({"add": ["VIP", "network", "vip"]})).await;
    run(&platform, "mia", &format!("/tickets/{switch}/tags"), json!({"add": ["outage"], "remove": ["network"]})).await;
    let detail = platform.get(&format!("{WS}/tickets/{switch}"), "mia").await;
    assert_eq!(detail["tags"], json!(["outage", "vip"]));
    assert_eq!(ids(&platform.get(&format!("{WS}/tickets?tag=VIP"), "mia").await), [switch.as_str()]);
    refused(&platform, &format!("/tickets/{switch}/tags"), json!({"add": ["two words"]}), 422, "validation_failed")
        .await;

    // Moving the printer ticket into the queue puts its clocks on the queue's policy.
    run(&platform, "mia", &format!("/tickets/{printer}/queue"), json!({"queue_id": queue_id})).await;
    let detail = platform.get(&format!("{WS}/tickets/{printer}"), "mia").await;
    assert_eq!(detail["sla_policy_id"], policy["id"]);
    assert!(detail["sla"]["changes"].as_array().expect("changes").iter().any(|c| c["kind"] == "replanned"), "{detail}");

    // Related, both ways; never to itself.
    run(&platform, "mia", &format!("/tickets/{switch}/related"), json!({"related_id": printer})).await;
    assert_eq!(platform.get(&format!("{WS}/tickets/{printer}"), "mia").await["related"], json!([switch]));
    refused(&platform, &format!("/tickets/{switch}/related"), json!({"related_id": switch}), 422, "relate_not_allowed")
        .await;

    // Merge the printer ticket into the switch ticket: closed, readable, pointing to its survivor.
    refused(&platform, &format!("/tickets/{switch}/merge"), json!({"into": switch}), 409, "merge_not_allowed").await;
    run(&platform, "mia", &format!("/tickets/{printer}/merge"), json!({"into": switch})).await;
    let merged = platform.get(&format!("{WS}/tickets/{printer}"), "mia").await;
    assert_eq!((merged["status"].as_str(), merged["merged_into"].as_str()), (Some("closed"), Some(switch.as_str())));
    let survivor = platform.get(&format!("{WS}/tickets/{switch}"), "mia").await;
    assert_eq!(survivor["merged"], json!([printer]));
    assert!(survivor["history"].as_array().expect("history").iter().any(|h| h["change"] == "merged"));
    refused(
        &platform,
        &format!("/tickets/{printer}/comments"),
        json!({"body": "hello", "visibility": "internal"}),
        409,
        "ticket_merged",
    )
    .await;
    refused(&platform, &format!("/tickets/{printer}/transitions"), json!({"to": "in_progress"}), 409, "ticket_merged")
        .await;

    // Every change reached the outbox as ticket.updated with what changed.
    let changes: Vec<String> = platform
        .events("ticket.updated")
        .await
        .iter()
        .map(|e| e["change"].as_str().expect("change").to_owned())
        .collect();
    for change in ["assigned", "tagged", "queued", "related", "merged"] {
        assert!(changes.iter().any(|c| c == change), "{change} in {changes:?}");
    }

    // A queue tickets were in cannot be deleted.
    let response = platform
        .client
        .delete(platform.url(&format!("{WS}/queues/{queue_id}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "delete-queue")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    let listed = platform.get(&format!("{WS}/queues"), "tom").await;
    assert_eq!(listed["items"][0]["open_tickets"], 1, "{listed}");
    platform.stop().await;
}
