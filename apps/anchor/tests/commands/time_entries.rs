//! Time entries end to end: logged on a ticket, changed, submitted,
//! approved (and then locked) or rejected (and changed back to draft) by
//! commands through AgentField; refusals at once, typed; lists with
//! filters; and their events at a webhook receiver, equal to what the API
//! reads back.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    webhooks::{Receiver, create_endpoint},
};

const WS: &str = "/api/v1/workspaces/acme";

async fn send(platform: &Platform, who: &str, method: &str, path: &str, body: &Value) -> reqwest::Response {
    platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .header("prefer", "wait=20")
        .json(body)
        .send()
        .await
        .expect("send")
}

/// Runs a command as `who` and answers the execution's result.
async fn run(platform: &Platform, who: &str, method: &str, path: &str, body: Value) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), 200, "{method} {path}: {}", response.text().await.unwrap_or_default());
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

/// Sends a command as `who` that is refused at once; answers the problem.
async fn refused(
    platform: &Platform,
    who: &str,
    method: &str,
    path: &str,
    body: Value,
    status: u16,
    code: &str,
) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), status, "{method} {path} as {who}");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

/// The JSON Pointer of a validation problem's only error.
fn pointer(problem: &Value) -> &str {
    let errors = problem["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{problem}");
    errors[0]["path"].as_str().expect("path")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn time_is_logged_submitted_reviewed_and_locked_and_its_events_reach_webhooks() {
    let platform = Platform::start().await;
    // mia supervises (msp_admin); tom and tia are technicians; abe audits.
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "tom", Role::Technician).await;
    platform.member(&acme, "tia", Role::Technician).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    let receiver = Receiver::start();
    let kinds = ["time_entry.logged", "time_entry.updated", "time_entry.discarded"];
    let (_, secret) = create_endpoint(&platform, &receiver, &kinds).await;
    receiver.control(json!({"secret": secret})).await;

    let ticket = run(&platform, "tom", "POST", "/tickets", json!({"title": "Printer offline", "priority": "p3"})).await;
    let ticket = ticket["ticket_id"].as_str().expect("ticket id").to_owned();
    let log = format!("/tickets/{ticket}/time-entries");

    // Logged as minutes, or as a span whose minutes are derived.
    let body = json!({"work_type": "remote_support", "minutes": 45, "worked_on": "2026-03-02", "billable": true,
                      "note": "Reinstalled the driver."});
    let first = run(&platform, "tom", "POST", &log, body).await["time_entry_id"].as_str().expect("id").to_owned();
    let entry = platform.get(&format!("{WS}/time-entries/{first}"), "mia").await;
    assert_eq!((entry["state"].as_str(), entry["minutes"].as_i64()), (Some("draft"), Some(45)));
    assert_eq!(
        (entry["staff"]["issuer"].is_string(), entry["staff"]["subject"].as_str()),
        (true, Some("tom")),
        "{entry}"
    );
    assert_eq!((entry["rate"].clone(), entry["ticket_id"].as_str()), (Value::Null, Some(ticket.as_str())));
    let body = json!({"work_type": "onsite", "started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T10:29:30Z",
                      "worked_on": "2026-03-02", "billable": false});
    let second = run(&platform, "tom", "POST", &log, body).await["time_entry_id"].as_str().expect("id").to_owned();
    let entry = platform.get(&format!("{WS}/time-entries/{second}"), "tom").await;
    assert_eq!(entry["minutes"], 90, "a started minute counts");

    // Validation: refused at once, naming where.
    let invalid = |body: Value| {
        let log = log.clone();
        let platform = &platform;
        async move { refused(platform, "tom", "POST", &log, body, 422, "validation_failed").await }
    };
    let base = json!({"work_type": "onsite", "worked_on": "2026-03-02", "billable": true});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    assert_eq!(pointer(&invalid(with(json!({"minutes": 0}))).await), "/minutes");
    assert_eq!(pointer(&invalid(with(json!({}))).await), "/minutes", "some amount of time");
    assert_eq!(pointer(&invalid(with(json!({"minutes": 1441}))).await), "/minutes", "at most a day");
    let backwards = with(json!({"started_at": "2026-03-02T10:00:00Z", "ended_at": "2026-03-02T09:00:00Z"}));
    assert_eq!(pointer(&invalid(backwards).await), "/ended_at");
    let too_long = with(json!({"started_at": "2026-03-02T08:00:00Z", "ended_at": "2026-03-03T08:00:01Z"}));
    assert_eq!(pointer(&invalid(too_long).await), "/ended_at");
    let both = with(json!({"minutes": 5, "started_at": "2026-03-02T08:00:00Z", "ended_at": "2026-03-02T09:00:00Z"}));
    assert_eq!(pointer(&invalid(both).await), "/minutes");
    assert_eq!(pointer(&invalid(with(json!({"minutes": 5, "work_type": "On site"}))).await), "/work_type");
    assert_eq!(pointer(&invalid(with(json!({"minutes": 5, "note": "x".repeat(4001)}))).await), "/note");
    let missing_ticket = "/tickets/tkt_01jd6m2h9x8k7v5t3r1p0n9q8w/time-entries";
    refused(&platform, "tom", "POST", missing_ticket, with(json!({"minutes": 5})), 404, "ticket_not_found").await;
    refused(&platform, "abe", "POST", &log, with(json!({"minutes": 5})), 403, "permission_denied").await;

    // The author edits a draft; nobody else does.
    let entry_path = format!("/time-entries/{first}");
    run(&platform, "tom", "PATCH", &entry_path, json!({"minutes": 50, "note": null})).await;
    let entry = platform.get(&format!("{WS}{entry_path}"), "tom").await;
    assert_eq!((entry["minutes"].as_i64(), &entry["note"]), (Some(50), &Value::Null));
    refused(&platform, "tia", "PATCH", &entry_path, json!({"minutes": 5}), 403, "time_entry_not_yours").await;
    refused(&platform, "tia", "POST", &format!("{entry_path}/submit"), json!({}), 403, "time_entry_not_yours").await;
    // A change that changes nothing succeeds and tells nobody.
    run(&platform, "tom", "PATCH", &entry_path, json!({"minutes": 50})).await;

    // Submitted: waits for review; technicians cannot approve, nor the author.
    refused(&platform, "mia", "POST", &format!("{entry_path}/approve"), json!({}), 409, "transition_not_allowed").await;
    run(&platform, "tom", "POST", &format!("{entry_path}/submit"), json!({})).await;
    refused(&platform, "tom", "PATCH", &entry_path, json!({"minutes": 5}), 409, "transition_not_allowed").await;
    refused(&platform, "tia", "POST", &format!("{entry_path}/approve"), json!({}), 403, "permission_denied").await;
    refused(
        &platform,
        "tom",
        "POST",
        &format!("{entry_path}/reject"),
        json!({"reason": "no"}),
        403,
        "permission_denied",
    )
    .await;
    let approved = run(&platform, "mia", "POST", &format!("{entry_path}/approve"), json!({})).await;
    assert_eq!(approved, json!({"time_entry_id": first, "from": "submitted", "to": "approved"}));
    let entry = platform.get(&format!("{WS}{entry_path}"), "tom").await;
    assert_eq!((entry["state"].as_str(), entry["approved_by"]["subject"].as_str()), (Some("approved"), Some("mia")));
    assert!(entry["approved_at"].is_string(), "{entry}");

    // Approved: locked for billing, whoever asks.
    refused(&platform, "tom", "PATCH", &entry_path, json!({"minutes": 5}), 409, "time_entry_locked").await;
    refused(&platform, "tom", "POST", &format!("{entry_path}/discard"), json!({}), 409, "time_entry_locked").await;
    refused(
        &platform,
        "mia",
        "POST",
        &format!("{entry_path}/reject"),
        json!({"reason": "late"}),
        409,
        "time_entry_locked",
    )
    .await;

    // Rejected with a reason; an edit returns it to draft, and it goes round again.
    let second_path = format!("/time-entries/{second}");
    run(&platform, "tom", "POST", &format!("{second_path}/submit"), json!({})).await;
    run(&platform, "mia", "POST", &format!("{second_path}/reject"), json!({"reason": "Travel is its own entry."}))
        .await;
    let entry = platform.get(&format!("{WS}{second_path}"), "tom").await;
    assert_eq!(
        (entry["state"].as_str(), entry["rejection_reason"].as_str()),
        (Some("rejected"), Some("Travel is its own entry."))
    );
    assert_eq!(entry["rejected_by"]["subject"], "mia");
    refused(&platform, "tom", "POST", &format!("{second_path}/submit"), json!({}), 409, "transition_not_allowed").await;
    let edited = run(
        &platform,
        "tom",
        "PATCH",
        &second_path,
        json!({"started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T10:00:00Z"}),
    )
    .await;
    assert_eq!((edited["from"].as_str(), edited["to"].as_str()), (Some("rejected"), Some("draft")));
    let entry = platform.get(&format!("{WS}{second_path}"), "tom").await;
    assert_eq!((entry["state"].as_str(), entry["minutes"].as_i64()), (Some("draft"), Some(60)));
    assert_eq!((&entry["rejection_reason"], &entry["rejected_by"]), (&Value::Null, &Value::Null));

    // A draft is discarded by its author only; a closed ticket still takes time.
    let third = run(&platform, "tom", "POST", &log, with(json!({"minutes": 5}))).await["time_entry_id"]
        .as_str()
        .expect("id")
        .to_owned();
    refused(
        &platform,
        "tia",
        "POST",
        &format!("/time-entries/{third}/discard"),
        json!({}),
        403,
        "time_entry_not_yours",
    )
    .await;
    run(&platform, "tom", "POST", &format!("/time-entries/{third}/discard"), json!({})).await;
    let gone = platform
        .client
        .get(platform.url(&format!("{WS}/time-entries/{third}")))
        .bearer_auth(platform.token("tom"))
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 404);
    for to in ["triaged", "in_progress", "resolved", "closed"] {
        run(&platform, "tom", "POST", &format!("/tickets/{ticket}/transitions"), json!({"to": to})).await;
    }
    let late = run(&platform, "tia", "POST", &log, with(json!({"minutes": 15}))).await["time_entry_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Lists: the ticket's, and the workspace's with filters.
    let on_ticket = platform.get(&format!("{WS}{log}"), "abe").await;
    assert_eq!(ids(&on_ticket), [late.as_str(), second.as_str(), first.as_str()], "newest first");
    let list = |query: &str| {
        let path = format!("{WS}/time-entries?{query}");
        let platform = &platform;
        async move { ids(&platform.get(&path, "tom").await) }
    };
    assert_eq!(list("state=approved").await, [first.as_str()]);
    assert_eq!(list("staff=me").await, [second.as_str(), first.as_str()]);
    assert_eq!(list("staff=tia").await, [late.as_str()]);
    assert_eq!(list("billable=false").await, [second.as_str()]);
    assert_eq!(list(&format!("ticket_id={ticket}&staff=tom&state=draft")).await, [second.as_str()]);
    assert_eq!(list("from=2026-03-02&to=2026-03-02").await.len(), 3);
    assert!(list("from=2026-03-03").await.is_empty());
    let first_page = platform.get(&format!("{WS}/time-entries?limit=2"), "tom").await;
    let cursor = first_page["next_cursor"].as_str().expect("more");
    let rest = platform.get(&format!("{WS}/time-entries?limit=2&cursor={cursor}"), "tom").await;
    assert_eq!([ids(&first_page), ids(&rest)].concat(), [late.as_str(), second.as_str(), first.as_str()]);
    let bad = platform
        .client
        .get(platform.url(&format!("{WS}/time-entries?from=March")))
        .bearer_auth(platform.token("tom"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 422);

    // Supervisors log time too; someone else reviews it.
    let own = run(&platform, "mia", "POST", &log, with(json!({"minutes": 30}))).await["time_entry_id"]
        .as_str()
        .expect("id")
        .to_owned();
    run(&platform, "mia", "POST", &format!("/time-entries/{own}/submit"), json!({})).await;
    refused(&platform, "mia", "POST", &format!("/time-entries/{own}/approve"), json!({}), 403, "time_entry_own").await;

    // Every change reached the receiver, and each carries what the API reads.
    // 5 logged, 2 edits, 3 submits, approve, reject, discard.
    let received = receiver.wait_for(13, Duration::from_secs(30)).await;
    assert!(received.iter().all(|r| r["verified"] == true), "{received:?}");
    let of = |kind: &str| received.iter().filter(|r| r["type"] == kind).map(|r| r["data"].clone()).collect::<Vec<_>>();
    assert_eq!(of("time_entry.logged").len(), 5);
    let changes: Vec<Value> = of("time_entry.updated").iter().map(|d| d["change"].clone()).collect();
    assert_eq!(changes.len(), 7, "{changes:?}");
    for change in ["edited", "submitted", "approved", "rejected"] {
        assert!(changes.contains(&json!(change)), "{change} in {changes:?}");
    }
    let last = |id: &str| {
        received
            .iter()
            .rev()
            .find(|r| r["type"] != "time_entry.discarded" && r["data"]["time_entry"]["id"] == id)
            .expect(id)["data"]
            .clone()
    };
    for id in [&first, &second, &late, &own] {
        assert_eq!(last(id)["time_entry"], platform.get(&format!("{WS}/time-entries/{id}"), "mia").await);
    }
    let approval = last(&first);
    assert_eq!((approval["change"].as_str(), approval["actor"]["subject"].as_str()), (Some("approved"), Some("mia")));
    let discarded = of("time_entry.discarded");
    assert_eq!(discarded.len(), 1);
    assert_eq!(discarded[0]["time_entry"]["id"], third.as_str());
    platform.stop().await;
}
