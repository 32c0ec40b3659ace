//! Sites and contacts end to end: commands through AgentField, refusals at
//! once, idempotent retries, lists by name, and their events at a webhook
//! receiver, equal to what the API reads back.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    webhooks::{Receiver, create_endpoint},
};

const WS: &str = "/api/v1/workspaces/acme";

/// Runs a command (POST or PATCH) as `mia` and waits for its execution.
async fn run(platform: &Platform, method: &str, path: &str, body: Value) -> Value {
    let response = send(platform, method, path, &body, &format!("key-{:032x}", rand::random::<u128>())).await;
    assert_eq!(response.status(), 200, "{method} {path}: {}", response.text().await.unwrap_or_default());
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

async fn send(platform: &Platform, method: &str, path: &str, body: &Value, key: &str) -> reqwest::Response {
    let request = platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", key)
        .header("prefer", "wait=20");
    // `null`: no body at all.
    let request = if body.is_null() { request } else { request.json(body) };
    request.send().await.expect("send")
}

async fn refused(platform: &Platform, method: &str, path: &str, body: Value, status: u16, code: &str) {
    let response = send(platform, method, path, &body, &format!("key-{:032x}", rand::random::<u128>())).await;
    assert_eq!(response.status(), status, "{method} {path}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], code, "{problem}");
}

fn names(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|c| c["name"].as_str().expect("name").to_owned()).collect()
}

#[tokio::test]
async fn sites_and_contacts_are_commands_and_their_events_reach_webhooks() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    let receiver = Receiver::start();
    let kinds = ["site.created", "site.updated", "site.archived", "contact.created", "contact.updated"];
    let (_, secret) = create_endpoint(&platform, &receiver, &kinds).await;
    receiver.control(json!({"secret": secret})).await;

    let address = json!({"line1": "1 Park Row", "city": "Leeds", "postal_code": "LS1 5AB", "country": "gb"});
    let leeds = run(
        &platform,
        "POST",
        "/sites",
        json!({"name": "Leeds office", "time_zone": "Europe/London",
                                                       "address": address}),
    )
    .await;
    let leeds = leeds["site_id"].as_str().expect("site id").to_owned();
    let site = platform.get(&format!("{WS}/sites/{leeds}"), "mia").await;
    assert_eq!((site["name"].as_str(), site["address"]["country"].as_str()), (Some("Leeds office"), Some("GB")));

    // Refused at once, with its code; nothing is queued.
    refused(&platform, "POST", "/sites", json!({"name": "LEEDS OFFICE", "time_zone": "UTC"}), 409, "site_name_taken")
        .await;
    refused(
        &platform,
        "POST",
        "/sites",
        json!({"name": "Mars", "time_zone": "Mars/Olympus"}),
        422,
        "validation_failed",
    )
    .await;
    let denied = platform
        .client
        .post(platform.url(&format!("{WS}/sites")))
        .bearer_auth(platform.token("abe"))
        .header("idempotency-key", "auditor-tries")
        .json(&json!({"name": "Nope", "time_zone": "UTC"}))
        .send()
        .await
        .expect("send");
    assert_eq!(denied.status(), 403, "auditors only read");
    let creates = platform.get(&format!("{WS}/executions?command=site.create"), "mia").await;
    assert_eq!(creates["items"].as_array().expect("items").len(), 1);

    // Retried with its key: the same execution, one site.
    let body = json!({"name": "Bradford depot", "time_zone": "Europe/London"});
    let first: Value = send(&platform, "POST", "/sites", &body, "bradford").await.json().await.expect("json");
    let again = send(&platform, "POST", "/sites", &body, "bradford").await;
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"], "the same execution, not a second site");
    let bradford = first["result"]["site_id"].as_str().expect("site id").to_owned();

    // Changes name only what they change; null clears.
    run(&platform, "PATCH", &format!("/sites/{leeds}"), json!({"name": "Leeds head office", "address": null})).await;
    let site = platform.get(&format!("{WS}/sites/{leeds}"), "mia").await;
    assert_eq!((site["name"].as_str(), &site["address"]), (Some("Leeds head office"), &Value::Null));
    assert_eq!(site["time_zone"], "Europe/London");
    // A change that changes nothing succeeds and tells nobody.
    run(&platform, "PATCH", &format!("/sites/{leeds}"), json!({"time_zone": "Europe/London"})).await;

    // Archived: kept, not listed, not changed.
    run(&platform, "POST", &format!("/sites/{bradford}/archive"), json!({})).await;
    refused(&platform, "PATCH", &format!("/sites/{bradford}"), json!({"name": "Depot"}), 409, "site_archived").await;
    assert_eq!(names(&platform.get(&format!("{WS}/sites"), "mia").await), ["Leeds head office"]);
    assert_eq!(names(&platform.get(&format!("{WS}/sites?archived=true"), "mia").await), ["Bradford depot"]);

    // Contacts: the email rules, the site, and tickets that know both.
    let ann = run(
        &platform,
        "POST",
        "/contacts",
        json!({"name": "Ann Smith", "email": "ann@example.com",
                                                        "site_id": leeds, "portal_access": true}),
    )
    .await;
    let ann = ann["contact_id"].as_str().expect("contact id").to_owned();
    refused(
        &platform,
        "POST",
        "/contacts",
        json!({"name": "Al", "portal_access": true}),
        422,
        "contact_email_required",
    )
    .await;
    refused(
        &platform,
        "POST",
        "/contacts",
        json!({"name": "Ann S.", "email": "ANN@example.com"}),
        409,
        "contact_email_taken",
    )
    .await;
    refused(&platform, "POST", "/contacts", json!({"name": "Bo", "site_id": bradford}), 409, "site_archived").await;
    run(
        &platform,
        "PATCH",
        &format!("/contacts/{ann}"),
        json!({"phone": "+44 113 496 0000", "receives_invoices": true}),
    )
    .await;
    let ticket = run(
        &platform,
        "POST",
        "/tickets",
        json!({"title": "Laptop will not boot", "priority": "p2",
                                                          "contact_id": ann}),
    )
    .await;
    let ticket = platform.get(&format!("{WS}/tickets/{}", ticket["ticket_id"].as_str().expect("id")), "mia").await;
    assert_eq!((ticket["contact_id"].as_str(), ticket["site_id"].as_str()), (Some(ann.as_str()), Some(leeds.as_str())));

    // Every change reached the receiver, and each carries what the API reads.
    let received = receiver.wait_for(6, Duration::from_secs(30)).await;
    assert!(received.iter().all(|r| r["verified"] == true), "{received:?}");
    let last = |kind: &str| received.iter().rev().find(|r| r["type"] == kind).expect(kind)["data"].clone();
    assert_eq!(last("site.updated")["site"], platform.get(&format!("{WS}/sites/{leeds}"), "mia").await);
    assert_eq!(last("site.archived")["site"], platform.get(&format!("{WS}/sites/{bradford}"), "mia").await);
    assert_eq!(last("contact.updated")["contact"], platform.get(&format!("{WS}/contacts/{ann}"), "mia").await);
    assert_eq!(last("contact.created")["contact"]["email"], "ann@example.com");
    platform.stop().await;
}

#[tokio::test]
async fn contacts_list_by_name_with_cursors_search_and_filters() {
    let owner = Platform::start().await;
    let platform = &owner;
    platform.workspace("acme", "mia", Role::Technician).await;
    let site = run(platform, "POST", "/sites", json!({"name": "Annex", "time_zone": "America/New_York"})).await;
    let site = site["site_id"].as_str().expect("site").to_owned();
    for contact in [
        json!({"name": "Zoe Adams", "email": "zoe@example.com"}),
        json!({"name": "ann Baker"}),
        json!({"name": "Bob Carter", "email": "robert@example.com"}),
        json!({"name": "Anna Dale", "email": "anna@example.com", "portal_access": true}),
        json!({"name": "Carl Evans", "site_id": site}),
    ] {
        run(platform, "POST", "/contacts", contact).await;
    }

    // Two at a time, by name whatever its case, to the end.
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    while let Some(cursor) = next {
        let query = if cursor.is_empty() { String::new() } else { format!("&cursor={cursor}") };
        let page = platform.get(&format!("{WS}/contacts?limit=2{query}"), "mia").await;
        assert!(page["items"].as_array().expect("items").len() <= 2);
        seen.extend(names(&page));
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, ["ann Baker", "Anna Dale", "Bob Carter", "Carl Evans", "Zoe Adams"]);

    let list = |query: &str| {
        let path = format!("{WS}/contacts?{query}");
        async move { platform.get(&path, "mia").await }
    };
    assert_eq!(names(&list("q=ann").await), ["ann Baker", "Anna Dale"], "word prefixes of the name");
    assert_eq!(names(&list("q=robert").await), ["Bob Carter"], "and of the email address");
    assert_eq!(names(&list("q=ann%20dal").await), ["Anna Dale"], "every word must match");
    assert_eq!(names(&list(&format!("site_id={site}")).await), ["Carl Evans"]);
    assert_eq!(names(&list("portal_access=true").await), ["Anna Dale"]);

    let zoe = list("q=zoe").await["items"][0]["id"].as_str().expect("zoe").to_owned();
    // Archiving needs nothing but the path: no body at all will do.
    run(platform, "POST", &format!("/contacts/{zoe}/archive"), Value::Null).await;
    refused(platform, "POST", &format!("/contacts/{zoe}/archive"), json!({}), 409, "contact_archived").await;
    assert!(!names(&list("").await).contains(&"Zoe Adams".to_owned()));
    assert_eq!(names(&list("archived=true").await), ["Zoe Adams"]);
    // The archived address is free again.
    run(platform, "POST", "/contacts", json!({"name": "Zoe Adams-Lee", "email": "zoe@example.com"})).await;

    let bad = platform
        .client
        .get(platform.url(&format!("{WS}/contacts?cursor=bm90LWEtY3Vyc29y")))
        .bearer_auth(platform.token("mia"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 404, "a cursor that names no place in the list");
    let missing = platform
        .client
        .get(platform.url(&format!("{WS}/contacts/con_01jd6m2h9x8k7v5t3r1p0n9q8w")))
        .bearer_auth(platform.token("mia"))
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), 404);
    owner.stop().await;
}
