//! The Console's Service delivery tab in a real browser (Debian's Chromium,
//! playwright-core, axe-core): the ticket list with its filters and tints,
//! a ticket's page with its SLA clocks, timeline, composer and the moves
//! valid now, the form to open a ticket; each action a command through the
//! same desk as the API, its outcome shown on the page it returns to. Every
//! page at desktop and phone width, with no axe violation and no CSP one;
//! screenshots in `$ANCHOR_UI_SHOTS` (default `/tmp/anchor-ui`).

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    pages::{session, walk},
};

const WS: &str = "/api/v1/workspaces/acme";

async fn command(platform: &Platform, path: &str, body: Value) -> Value {
    let response = platform.post(&format!("{WS}{path}"), "mia", &body, Some(20)).await;
    assert_eq!(response.status(), 200, "POST {path}");
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

#[tokio::test]
async fn the_service_delivery_tab_works_in_a_browser_for_people_who_may_and_may_not_write() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    platform.member(&acme, "tess", Role::Technician).await;
    let base = platform.url("");

    // A queue and some tickets: one breached (a policy whose p1 response is due at once).
    let queue = platform.post(&format!("{WS}/queues"), "mia", &json!({"name": "Service desk"}), None).await;
    assert_eq!(queue.status(), 201);
    let policy = platform
        .post(
            &format!("{WS}/sla-policies"),
            "mia",
            &json!({"name": "Urgent", "calendar_id": "cal_00000000000000000000000001",
                    "targets": {"p1": {"first_response_minutes": 0, "resolution_minutes": 120}}}),
            None,
        )
        .await;
    assert_eq!(policy.status(), 201);
    let policy: Value = policy.json().await.expect("json");
    let urgent = platform
        .post(&format!("{WS}/queues"), "mia", &json!({"name": "Urgent", "sla_policy_id": policy["id"]}), None)
        .await;
    let urgent: Value = urgent.json().await.expect("json");
    let printer = command(
        &platform,
        "/tickets",
        json!({"title": "Printer on floor 2 offline", "priority": "p3",
        "description": "Since this morning; the toner light blinks."}),
    )
    .await["ticket_id"]
        .as_str()
        .expect("id")
        .to_owned();
    command(&platform, "/tickets", json!({"title": "Core switch down", "priority": "p1", "queue_id": urgent["id"]}))
        .await;
    let laptop =
        command(&platform, "/tickets", json!({"title": "New starter laptop", "priority": "p4"})).await["ticket_id"]
            .as_str()
            .expect("id")
            .to_owned();
    anchor_commands::sla::check_due(&platform.store).await.expect("the SLA job");

    // A technician works the tickets; mia, the workspace's admin, set up the
    // queues and policies and edits them in Admin settings below.
    let (cookie, csrf) = session(&platform, "tess").await;
    let (cookie_mia, csrf_mia) = session(&platform, "mia").await;
    let ticket_page = format!("/w/acme/console/service/tickets/{printer}");
    let post = |name: &str, fields: Value, text: Value| {
        let status = if name.ends_with("refused") { 409 } else { 200 };
        json!({"name": name, "from": ticket_page, "status": status, "text": text,
               "post": {"action": "/w/acme/console/service/act", "fields": fields}})
    };
    let report = walk(
        &base,
        &cookie,
        json!([
            {"name": "console-list", "path": "/w/acme/console/service", "status": 200,
             "text": ["Tickets", "Service delivery", "Core switch down", "Breached", "Printer on floor 2 offline", "New ticket",
                      "Owes reply", "We do"]},
            {"name": "console-filtered", "path": "/w/acme/console/service?status=open&sla_state=breached", "status": 200,
             "text": ["Core switch down"]},
            {"name": "console-search", "path": "/w/acme/console/service?q=toner&sort=sla_due", "status": 200,
             "text": ["Printer on floor 2 offline", "SLA due soonest"]},
            // Filter (htmx swaps the list and pushes the URL), then save what is shown as a shared view.
            {"name": "console-save-view", "path": "/w/acme/console/service", "status": 200, "only": "desktop",
             "steps": [{"select": "#f-priority", "value": "p1"}, {"wait_url": "priority=p1"},
                       {"click": "details.save-view summary"}, {"fill": "#view-name", "value": "Urgent work"},
                       {"click": "input[name=shared]"},
                       {"click": "details.save-view button[type=submit]", "navigates": true}],
             "text": ["Saved the view “Urgent work”", "Core switch down", "shared"],
             "absent": ["Printer on floor 2 offline"]},
            {"name": "console-views", "path": "/w/acme/console/service?priority=p1", "status": 200, "only": "phone",
             "text": ["Saved views", "Urgent work", "Core switch down"], "absent": ["Printer on floor 2 offline"]},
            {"name": "console-ticket", "path": ticket_page, "status": 200,
             "text": ["Printer on floor 2 offline", "Timeline", "First response", "Resolution", "Change priority", "Reply or note"]},
            {"name": "console-new", "path": "/w/acme/console/service/new", "status": 200, "text": ["New ticket", "Title", "Priority"]},
            {"name": "console-queues", "path": "/w/acme/console/service/queues", "status": 200,
             "text": ["Queues", "Service desk", "Urgent", "Workspace default"]},
            post("console-reply", json!({"csrf_token": csrf, "idempotency_key": "reply-1", "command": "ticket.comment",
                                           "ticket_id": printer, "body": "Replaced the toner; printing again.", "visibility": "public"}),
                 json!(["Comment on a ticket: Succeeded", "Replaced the toner; printing again.", "Reply to the client",
                        "Waiting for the client"])),
            post("console-triage", json!({"csrf_token": csrf, "idempotency_key": "triage-1", "command": "ticket.transition",
                                            "ticket_id": printer, "to": "triaged"}),
                 json!(["Succeeded", "Triaged", "Start work"])),
            post("console-assign", json!({"csrf_token": csrf, "idempotency_key": "assign-1", "command": "ticket.assign",
                                            "ticket_id": printer}),
                 json!(["Assign a ticket", "Succeeded", "Unassign", "assigned it to tess"])),
            post("console-time", json!({"csrf_token": csrf, "idempotency_key": "time-1", "command": "time_entry.log",
                                          "ticket_id": printer, "work_type": "remote_support", "minutes": "45",
                                          "worked_on": "2026-12-01", "billable": "yes", "note": "Toner swap"}),
                 json!(["Succeeded", "logged 45 min of remote support (billable)", "Toner swap", "Submit for approval"])),
            post("console-refused", json!({"csrf_token": csrf, "idempotency_key": "close-1", "command": "ticket.transition",
                                             "ticket_id": printer, "to": "closed"}),
                 json!(["The command was refused", "cannot become closed"])),
            // Another ticket through its whole lifecycle, a move at a time (at
            // phone width the same forms are sent again: each the same command,
            // answered with its first outcome on the ticket as it is now).
            post("console-laptop-triage", json!({"csrf_token": csrf, "idempotency_key": "laptop-1", "command": "ticket.transition",
                                                   "ticket_id": laptop, "to": "triaged"}),
                 json!(["Succeeded", "New starter laptop", "moved it to triaged"])),
            post("console-laptop-start", json!({"csrf_token": csrf, "idempotency_key": "laptop-2", "command": "ticket.transition",
                                                  "ticket_id": laptop, "to": "in_progress"}),
                 json!(["Succeeded", "moved it to in progress"])),
            post("console-laptop-resolve", json!({"csrf_token": csrf, "idempotency_key": "laptop-3", "command": "ticket.transition",
                                                    "ticket_id": laptop, "to": "resolved"}),
                 json!(["Succeeded", "moved it to resolved"])),
            post("console-laptop-close", json!({"csrf_token": csrf, "idempotency_key": "laptop-4", "command": "ticket.transition",
                                                  "ticket_id": laptop, "to": "closed"}),
                 json!(["Succeeded", "moved it to closed", "Reopen"])),
        ]),
    )
    .await;
    let statuses: Vec<_> = report.as_array().expect("report").iter().map(|v| v["status"].clone()).collect();
    assert!(statuses.iter().all(|s| s == 200 || s == 409), "{statuses:?}");

    // The view saved from the page is the API's view, recorded as a change, and
    // its query means the same to the API's list.
    let views = platform.get(&format!("{WS}/ticket-views"), "mia").await;
    let view = &views["items"][0];
    assert_eq!(
        (view["name"].as_str(), view["query"].as_str(), view["shared"].as_bool()),
        (Some("Urgent work"), Some("priority=p1"), Some(true)),
        "{views}"
    );
    assert_eq!(view["count"], 1, "{views}");
    let listed = platform.get(&format!("{WS}/tickets?{}", view["query"].as_str().expect("query")), "mia").await;
    assert_eq!(listed["items"][0]["title"], "Core switch down");
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ws_acme.changes WHERE action = 'ticket_view.created' AND actor_subject = 'tess'",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("changes");
    assert_eq!(recorded, 1, "saved once, recorded once");

    // The ticket changed through the same commands as the API.
    let detail = platform.get(&format!("{WS}/tickets/{printer}"), "mia").await;
    assert_eq!((detail["status"].as_str(), detail["assignee"]["subject"].as_str()), (Some("triaged"), Some("tess")));
    let laptop_now = platform.get(&format!("{WS}/tickets/{laptop}"), "mia").await;
    assert_eq!(laptop_now["status"], "closed", "{laptop_now}");
    assert_eq!(detail["sla"]["first_response"]["state"], "met");
    let logged = platform.get(&format!("{WS}/tickets/{printer}/time-entries"), "mia").await;
    assert_eq!(logged["items"][0]["minutes"], 45, "{logged}");
    let executions = platform.get(&format!("{WS}/executions?command=ticket.comment"), "mia").await;
    assert_eq!(executions["items"].as_array().expect("items").len(), 1, "one reply, however often it was posted");

    // Twenty tickets assigned in one bulk action from the list, each through
    // the command path; one of them refused (moved where it cannot go).
    let mut twenty = Vec::new();
    for i in 0..20 {
        let opened =
            command(&platform, "/tickets", json!({"title": format!("Password reset {i}"), "priority": "p4"})).await;
        twenty.push(opened["ticket_id"].as_str().expect("id").to_owned());
    }
    walk(
        &base,
        &cookie,
        json!([
            {"name": "console-bulk", "from": "/w/acme/console/service", "status": 200, "only": "desktop",
             "post": {"action": "/w/acme/console/service/bulk",
                      "fields": {"csrf_token": csrf, "idempotency_key": "bulk-1", "action": "assign_me", "ticket": twenty}},
             "text": ["Assign to me", "20 updated · 0 skipped · 0 failed"]},
            {"name": "console-bulk-mixed", "from": "/w/acme/console/service", "status": 200, "only": "phone",
             "post": {"action": "/w/acme/console/service/bulk",
                      "fields": {"csrf_token": csrf, "idempotency_key": "bulk-2", "action": "status:triaged",
                                 "ticket": [twenty[0], printer]}},
             "text": ["1 updated · 0 skipped · 1 failed", "cannot become triaged"]},
        ]),
    )
    .await;
    let mine = platform.get(&format!("{WS}/tickets?assignee=tess&limit=100"), "mia").await;
    assert_eq!(mine["items"].as_array().expect("items").len(), 21, "the twenty and the printer ticket");

    // Live: a colleague's change to the ticket reaches the page's stream.
    platform.member(&acme, "tom", Role::Technician).await;
    let follower = reqwest::Client::new();
    let mut stream = follower
        .get(platform.url(&format!("{ticket_page}/live")))
        .header("cookie", format!("anchor_session={cookie}"))
        .send()
        .await
        .expect("live");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let body = json!({"body": "On my way with a new fuser.", "visibility": "internal"});
    let colleague = platform.post(&format!("{WS}/tickets/{printer}/comments"), "tom", &body, Some(20)).await;
    assert_eq!(colleague.status(), 200);
    let mut heard = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !heard.contains("tom: Comment on a ticket") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("heard in time").expect("chunk");
        heard.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
    }
    assert!(heard.contains("event: changed"), "{heard}");
    drop(stream);

    // ... and the page, open in the browser, shows the colleague's next note without a reload.
    let tom = format!("Bearer {}", platform.token("tom"));
    walk(
        &base,
        &cookie,
        json!([
            {"name": "console-live", "path": ticket_page, "status": 200, "only": "desktop",
             "steps": [{"wait_live": true},
                       {"request": {"url": format!("{WS}/tickets/{printer}/comments"),
                                    "headers": {"authorization": tom, "content-type": "application/json",
                                                "idempotency-key": "live-note-1", "prefer": "wait=20"},
                                    "body": {"body": "Ordered a spare fuser as well.", "visibility": "internal"}}},
                       {"wait_text": "Ordered a spare fuser as well.", "no_reload": true}],
             "text": ["Updated: tom", "On my way with a new fuser."]},
        ]),
    )
    .await;

    // An auditor reads the same pages; the forms say why they are disabled.
    let (cookie, _) = session(&platform, "abe").await;
    walk(
        &base,
        &cookie,
        json!([
            {"name": "console-ticket-auditor", "path": ticket_page, "status": 200,
             "text": ["needs tickets.write", "Printer on floor 2 offline"]},
            {"name": "console-list-auditor", "path": "/w/acme/console/service", "status": 200, "text": ["Tickets"]},
        ]),
    )
    .await;
    // A platform admin creates a workspace from the web, names themselves its
    // first admin, and lands in its Console.
    let root = anchor_store::access::SubjectRef { issuer: anchor_auth::dev_issuer::DEV_ISSUER, subject: "root" };
    platform
        .store
        .grant_platform_role(root, Role::PlatformAdmin, &anchor_store::access::AuditContext::default())
        .await
        .expect("platform admin");
    let (root_cookie, root_csrf) = session(&platform, "root").await;
    walk(
        &base,
        &root_cookie,
        json!([
            {"name": "workspaces-admin", "path": "/", "status": 200, "text": ["New workspace", "Create workspace"]},
            {"name": "workspace-created", "from": "/", "status": 200, "only": "desktop",
             "post": {"action": "/workspaces",
                      "fields": {"csrf_token": root_csrf, "name": "Globex Corp", "slug": "globex", "admin": "root"}},
             "text": ["Globex Corp", "Service delivery", "No tickets match these filters."]},
            {"name": "workspace-console", "path": "/w/globex/console/service", "status": 200,
             "text": ["Globex Corp", "Tickets"]},
        ]),
    )
    .await;
    let globex = platform.get("/api/v1/workspaces/globex", "root").await;
    assert_eq!(globex["name"], "Globex Corp");

    // Admin settings: SLA policies and queues by form, recorded like the API's writes.
    let admin_spec = json!([
        {"name": "admin-service", "path": "/w/acme/admin/service", "status": 200,
         "text": ["Service policies", "SLA policies", "Standard", "Queues", "Business calendars", "Around the clock (UTC)"]},
        {"name": "admin-policy-added", "from": "/w/acme/admin/service", "status": 200, "only": "desktop",
         "post": {"action": "/w/acme/admin/service/policies",
                  "fields": {"csrf_token": csrf_mia, "name": "Gold", "calendar_id": "cal_00000000000000000000000001",
                             "p1_first_response": "15", "p1_resolution": "120", "p3_resolution": "960",
                             "warning_percent": "75", "pausing": ["waiting_on_client"], "on_reopen": "restart"}},
         "text": ["Saved.", "Gold", "P1 2 h 0 min"]},
        {"name": "admin-policy-refused", "from": "/w/acme/admin/service", "status": 422, "only": "phone",
         "post": {"action": "/w/acme/admin/service/policies",
                  "fields": {"csrf_token": csrf_mia, "name": "Empty", "calendar_id": "cal_00000000000000000000000001",
                             "p2_resolution": "many"}},
         "text": ["Not saved.", "P2 resolution: whole minutes"]},
        {"name": "admin-queue-added", "from": "/w/acme/admin/service", "status": 200, "only": "desktop",
         "post": {"action": "/w/acme/admin/service/queues",
                  "fields": {"csrf_token": csrf_mia, "name": "Projects", "description": "Planned work",
                             "member": [format!("{} mia", anchor_auth::dev_issuer::DEV_ISSUER)]}},
         "text": ["Saved.", "Projects"]},
        {"name": "admin-calendar-added", "from": "/w/acme/admin/service", "status": 200, "only": "desktop",
         "post": {"action": "/w/acme/admin/service/calendars",
                  "fields": {"csrf_token": csrf_mia, "name": "Berlin office", "time_zone": "Europe/Berlin",
                             "monday": "09:00-12:00, 13:00-17:00", "tuesday": "09:00-17:00", "wednesday": "09:00-17:00",
                             "thursday": "09:00-17:00", "friday": "09:00-15:00",
                             "holidays": "2026-05-25 Whit Monday\n2026-12-24..2027-01-01 Winter closure\nevery 10-03 Unity Day"}},
         "text": ["Saved.", "Berlin office", "Europe/Berlin"]},
        {"name": "admin-calendar-refused", "from": "/w/acme/admin/service", "status": 422, "only": "phone",
         "post": {"action": "/w/acme/admin/service/calendars",
                  "fields": {"csrf_token": csrf_mia, "name": "Broken", "time_zone": "Europe/Berlin",
                             "monday": "09:00-25:00", "holidays": "someday"}},
         "text": ["Not saved.", "Holidays: \"someday\" is not a date"]},
    ]);
    walk(&base, &cookie_mia, admin_spec).await;
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ws_acme.changes WHERE action IN ('sla_policy.created', 'queue.created')
            AND actor_subject = 'mia' AND details->>'name' IN ('Gold', 'Projects')",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("changes");
    assert_eq!(recorded, 2, "the page's writes are recorded as changes");
    let policies = platform.get(&format!("{WS}/sla-policies"), "mia").await;
    let gold = policies["items"].as_array().expect("items").iter().find(|p| p["name"] == "Gold").expect("gold").clone();
    assert_eq!((gold["warning_percent"].as_u64(), gold["on_reopen"].as_str()), (Some(75), Some("restart")));
    let calendars = platform.get(&format!("{WS}/calendars"), "mia").await;
    let berlin = calendars["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["name"] == "Berlin office")
        .expect("berlin")
        .clone();
    assert_eq!(
        berlin["week"]["monday"],
        json!([{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}])
    );
    assert_eq!(
        berlin["holidays"][1],
        json!({"kind": "range", "from": "2026-12-24", "to": "2027-01-01", "name": "Winter closure"})
    );
    assert_eq!(berlin["holidays"][2]["kind"], "yearly");
    let (auditor_cookie, _) = session(&platform, "abe").await;
    let refused = reqwest::Client::new()
        .get(platform.url("/w/acme/admin/service"))
        .header("cookie", format!("anchor_session={auditor_cookie}"))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), 403, "admin settings need settings.manage");

    // Another workspace's pages do not exist for them.
    let stranger = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = stranger
        .get(platform.url("/w/other/console/service"))
        .header("cookie", format!("anchor_session={cookie}"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404);
    platform.stop().await;
}
