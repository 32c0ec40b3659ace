//! SLA clocks on tickets end to end: ticket commands write the clock log,
//! the plan and its summary follow it, a calendar edit re-plans open tickets
//! (and leaves resolved ones alone), and the recurring job sends each
//! warning and breach once through the outbox, however many replicas run it.

use std::time::Duration;

use anchor_domain::Role;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::Platform;

const WS: &str = "/api/v1/workspaces/acme";

/// Runs a command as `mia` and waits for its execution to succeed.
async fn run(platform: &Platform, method: &str, path: &str, body: Value) -> Value {
    let response = platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .header("prefer", "wait=20")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200, "{method} {path}: {}", response.text().await.unwrap_or_default());
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

/// A configuration write as `mia` (created or updated).
async fn configure(platform: &Platform, method: &str, path: &str, body: Value) -> Value {
    let response = platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert!(response.status().is_success(), "{method} {path}: {}", response.text().await.unwrap_or_default());
    response.json().await.expect("json")
}

async fn open(platform: &Platform, title: &str, priority: &str) -> String {
    let opened = run(platform, "POST", "/tickets", json!({"title": title, "priority": priority})).await;
    opened["ticket_id"].as_str().expect("ticket id").to_owned()
}

async fn move_to(platform: &Platform, ticket: &str, to: &str) {
    run(platform, "POST", &format!("/tickets/{ticket}/transitions"), json!({"to": to})).await;
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("not an instant: {value}")), &Rfc3339)
        .expect("RFC 3339")
}

async fn log_len(platform: &Platform, ticket: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ws_acme.ticket_clock_events WHERE ticket_id = $1")
        .bind(ticket)
        .fetch_one(platform.store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn ticket_commands_drive_the_clocks_and_edits_replan_open_tickets_only() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;

    // Opened under the workspace's default policy (24x7, p3: response in 4 h, resolution in 24 h).
    let ticket = open(&platform, "Mail server slow", "p3").await;
    let detail = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(detail["sla_policy_id"], "slp_00000000000000000000000001");
    assert_eq!(detail["sla_state"], "running");
    let sla = &detail["sla"];
    let opened = instant(&sla["changes"][0]["at"]);
    assert_eq!(instant(&sla["first_response"]["due_at"]) - opened, time::Duration::hours(4));
    assert_eq!(instant(&sla["resolution"]["due_at"]) - opened, time::Duration::hours(24));
    assert_eq!(sla["next_update"]["state"], "pending", "no reply yet, so no update is owed");
    assert_eq!(instant(&detail["sla_due_at"]), instant(&sla["first_response"]["due_at"]), "the nearest deadline");

    // A public reply meets the response clock and starts the next-update clock.
    run(
        &platform,
        "POST",
        &format!("/tickets/{ticket}/comments"),
        json!({"body": "Looking at it now.", "visibility": "public"}),
    )
    .await;
    let answered = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(answered["awaiting"], "client", "we replied: the client owes the next word");
    let sla = answered["sla"].clone();
    assert_eq!(sla["first_response"]["state"], "met");
    assert_eq!(sla["next_update"]["state"], "running");
    // An internal note is not an answer to the client: nothing is recorded.
    let before = log_len(&platform, &ticket).await;
    run(
        &platform,
        "POST",
        &format!("/tickets/{ticket}/comments"),
        json!({"body": "Checked the queue.", "visibility": "internal"}),
    )
    .await;
    assert_eq!(log_len(&platform, &ticket).await, before);

    // Waiting on the client pauses every running clock: no deadline while paused.
    move_to(&platform, &ticket, "triaged").await;
    move_to(&platform, &ticket, "in_progress").await;
    let due_before =
        instant(&platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await["sla"]["resolution"]["due_at"]);
    move_to(&platform, &ticket, "waiting_on_client").await;
    let detail = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(detail["sla_state"], "paused");
    assert!(detail.get("sla_due_at").is_none(), "{detail}");
    assert_eq!(detail["sla"]["resolution"]["state"], "paused");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    move_to(&platform, &ticket, "in_progress").await;
    let resumed = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(resumed["awaiting"], "us", "work resumed: ours again");
    let owed = platform.get(&format!("{WS}/tickets?awaiting=us"), "mia").await;
    assert!(owed["items"].as_array().expect("items").iter().any(|t| t["id"] == ticket.as_str()));
    let sla = resumed["sla"].clone();
    let due_after = instant(&sla["resolution"]["due_at"]);
    assert!(due_after > due_before, "the pause extends the deadline by the business time it overlapped");
    assert!(sla["resolution"]["paused"].as_i64().expect("paused seconds") >= 1, "{sla}");

    // A priority change keeps the time counted and takes the new target (p1: resolution in 4 h).
    let changed = run(&platform, "POST", &format!("/tickets/{ticket}/priority"), json!({"priority": "p1"})).await;
    assert_eq!((changed["from"].as_str(), changed["to"].as_str()), (Some("p3"), Some("p1")));
    let detail = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(detail["priority"], "p1");
    let sla = &detail["sla"];
    let resolution_due = instant(&sla["resolution"]["due_at"]);
    assert!(resolution_due < due_after - time::Duration::hours(19), "re-planned with the p1 target");
    assert!(sla["resolution"]["paused"].as_i64().expect("paused") >= 1, "accumulated pause kept: {sla}");
    let history = detail["history"].as_array().expect("history");
    assert!(history.iter().any(|h| h["change"] == "priority_changed" && h["to_priority"] == "p1"), "{history:?}");
    let updates = platform.events("ticket.updated").await;
    assert!(updates.iter().any(|e| e["change"] == "priority_changed" && e["ticket"]["priority"] == "p1"));

    // A second ticket, resolved: a calendar edit leaves it alone.
    let done = open(&platform, "Password reset", "p4").await;
    for to in ["triaged", "in_progress", "resolved"] {
        move_to(&platform, &done, to).await;
    }
    let resolved = platform.get(&format!("{WS}/tickets/{done}"), "mia").await;
    assert_eq!(
        (resolved["sla_state"].as_str(), resolved["sla"]["resolution"]["state"].as_str()),
        (Some("met"), Some("met"))
    );
    let done_log = log_len(&platform, &done).await;
    let open_log = log_len(&platform, &ticket).await;

    // The default calendar becomes office hours in Berlin: the open ticket is
    // re-planned from now, recorded in its log; the resolved one is not.
    let calendar = "cal_00000000000000000000000001";
    let day = json!([{"start": "09:00", "end": "17:00"}]);
    let edited = configure(
        &platform,
        "PUT",
        &format!("/calendars/{calendar}"),
        json!({"name": "Office hours", "time_zone": "Europe/Berlin",
               "week": {"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day},
               "holidays": []}),
    )
    .await;
    assert_eq!(edited["version"], 2);
    assert_eq!(log_len(&platform, &ticket).await, open_log + 1, "a calendar_changed event");
    assert_eq!(log_len(&platform, &done).await, done_log, "resolved tickets are never rewritten");
    let sla = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await["sla"].clone();
    assert_eq!(sla["calendar"]["version"], 2);
    let changes = sla["changes"].as_array().expect("changes");
    assert_eq!(changes.last().expect("a change")["kind"], "replanned", "{changes:?}");
    let recorded: Value = sqlx::query_scalar("SELECT details FROM ws_acme.changes WHERE action = 'calendar.updated'")
        .fetch_one(platform.store.pool())
        .await
        .expect("change record");
    assert_eq!(recorded["tickets_replanned"], 1);

    // A calendar that clock logs name cannot be deleted, nor a policy.
    let fresh = configure(
        &platform,
        "POST",
        "/sla-policies",
        json!({"name": "Spare", "calendar_id": calendar,
        "targets": {"p3": {"resolution_minutes": 60}}}),
    )
    .await;
    let response = platform
        .client
        .delete(platform.url(&format!("{WS}/sla-policies/{}", fresh["id"].as_str().expect("id"))))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "delete-spare")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204, "a policy no ticket used can go");
    platform.stop().await;
}

#[tokio::test]
async fn warnings_and_breaches_are_sent_once_each_whoever_runs_the_job() {
    let mut platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;

    // A policy whose p1 response is due the instant the ticket opens.
    let calendar = "cal_00000000000000000000000001";
    configure(
        &platform,
        "POST",
        "/sla-policies",
        json!({"name": "Instant", "calendar_id": calendar, "default": true,
               "targets": {"p1": {"first_response_minutes": 0, "resolution_minutes": 240}}}),
    )
    .await;
    let ticket = open(&platform, "Core switch down", "p1").await;
    let detail = platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await;
    assert_eq!(detail["sla"]["first_response"]["state"], "breached", "read as of now: {detail}");

    // The worker runs the job every 15 s; two more "replicas" run it at the
    // same time here. Each notice is sent once.
    let (a, b) = tokio::join!(
        anchor_commands::sla::check_due(&platform.store),
        anchor_commands::sla::check_due(&platform.store)
    );
    let by_hand = a.expect("first replica") + b.expect("second replica");
    assert!(by_hand <= 2, "{by_hand} notices sent by hand");
    let again = anchor_commands::sla::check_due(&platform.store).await.expect("third pass");
    assert_eq!(again, 0, "nothing is sent twice");
    let warnings = platform.events("sla.warning").await;
    let breaches = platform.events("sla.breached").await;
    assert_eq!((warnings.len(), breaches.len()), (1, 1), "{warnings:?} {breaches:?}");
    let breach = &breaches[0];
    assert_eq!(
        (breach["ticket_id"].as_str(), breach["target"].as_str()),
        (Some(ticket.as_str()), Some("first_response"))
    );
    assert_eq!(breach["cycle"], 1);
    assert_eq!(breach["ticket"]["sla_state"], "breached");
    let listed = platform.get(&format!("{WS}/tickets?sla_state=breached"), "mia").await;
    assert_eq!(listed["items"][0]["id"], ticket.as_str(), "the summary the job stored: {listed}");
    assert_eq!(instant(&breach["at"]), instant(&breach["due_at"]), "it breached at its deadline");

    // Nothing more is due: the workspace leaves the schedule until a clock needs it.
    let next: Option<OffsetDateTime> = sqlx::query_scalar(
        "SELECT s.next_check_at FROM platform.sla_schedule s JOIN platform.workspaces w ON w.id = s.workspace_id
          WHERE w.slug = 'acme'",
    )
    .fetch_optional(platform.store.pool())
    .await
    .expect("schedule")
    .flatten();
    let resolution_warning =
        instant(&platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await["sla"]["resolution"]["warning_at"]);
    assert_eq!(next, Some(resolution_warning), "the next look is the resolution clock's warning");

    // A restart of the worker does not send them again either.
    platform.worker.take().expect("worker").stop().await;
    platform.start_worker();
    sqlx::query("UPDATE platform.recurring_jobs SET next_run_at = now() WHERE name = 'sla.clocks'")
        .execute(platform.store.pool())
        .await
        .expect("due");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(platform.events("sla.breached").await.len(), 1);
    platform.stop().await;
}

#[tokio::test]
async fn a_tickets_policy_is_its_contacts_then_its_sites_then_its_queues_then_the_default() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;
    let calendar = "cal_00000000000000000000000001";
    let mut policies = Vec::new();
    for name in ["VIP", "Head office", "Infrastructure"] {
        let created = configure(
            &platform,
            "POST",
            "/sla-policies",
            json!({"name": name, "calendar_id": calendar,
            "targets": {"p3": {"resolution_minutes": 60}}}),
        )
        .await;
        policies.push(created["id"].as_str().expect("id").to_owned());
    }
    let (vip, head_office, infra) = (&policies[0], &policies[1], &policies[2]);
    let site = run(
        &platform,
        "POST",
        "/sites",
        json!({"name": "Head office", "time_zone": "Europe/London",
        "sla_policy_id": head_office}),
    )
    .await["site_id"]
        .as_str()
        .expect("site")
        .to_owned();
    let boss = run(&platform, "POST", "/contacts", json!({"name": "Ada Boss", "site_id": site, "sla_policy_id": vip}))
        .await["contact_id"]
        .as_str()
        .expect("contact")
        .to_owned();
    let clerk = run(&platform, "POST", "/contacts", json!({"name": "Carl Clerk", "site_id": site})).await["contact_id"]
        .as_str()
        .expect("contact")
        .to_owned();
    let queue = configure(&platform, "POST", "/queues", json!({"name": "Infra", "sla_policy_id": infra})).await;
    let queue = queue["id"].as_str().expect("queue").to_owned();

    let policy_of = |body: Value| {
        let platform = &platform;
        async move {
            let opened = run(platform, "POST", "/tickets", body).await;
            let ticket = opened["ticket_id"].as_str().expect("ticket").to_owned();
            platform.get(&format!("{WS}/tickets/{ticket}"), "mia").await["sla_policy_id"]
                .as_str()
                .expect("policy")
                .to_owned()
        }
    };
    let base = json!({"title": "Outlook keeps asking for the password", "priority": "p3"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    assert_eq!(&policy_of(with(json!({"contact_id": boss, "queue_id": queue}))).await, vip, "the contact's first");
    assert_eq!(&policy_of(with(json!({"contact_id": clerk, "queue_id": queue}))).await, head_office, "then the site's");
    assert_eq!(&policy_of(with(json!({"queue_id": queue}))).await, infra, "then the queue's");
    assert_eq!(policy_of(base.clone()).await, "slp_00000000000000000000000001", "then the workspace default");

    // A policy that sites, contacts or queues give cannot be deleted.
    let response = platform
        .client
        .delete(platform.url(&format!("{WS}/sla-policies/{}", policies[1])))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "delete-head-office")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 409);
    platform.stop().await;
}
