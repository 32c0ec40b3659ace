//! The Ops centre in Debian's Chromium, fed by the real agent binary: a disk
//! threshold the machine's real usage crosses shows in the critical queue of
//! an Ops page already open, without a reload; the cross-client view lists
//! both clients' alerts for a member of a team granted every workspace and
//! one client's for a member of that client only; a technician walks the
//! guided workflow (with the rule's runbook: a ticked step, a command step
//! run through AgentField) to an escalated ticket; a failed outbox event is replayed
//! from Ops. Every page is checked with axe-core and for CSP violations.

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../anchor/tests/commands/platform.rs"]
mod platform;

#[allow(dead_code)]
#[path = "../../anchor/tests/commands/browser.rs"]
mod browser;

use std::process::Stdio;

use anchor_auth::dev_issuer::DEV_ISSUER;
use anchor_domain::Role;
use anchor_store::access::{AuditContext, SubjectRef};
use common::{Running, agent, poll};
use platform::Platform;
use serde_json::{Value, json};

/// A critical rule the machine's real root file system is surely above.
async fn disk_rule(platform: &Platform, slug: &str, admin: &str) -> String {
    let rule = json!({"name": "Root disk above threshold", "kind": "metric", "metric": "disk.used_percent",
                      "comparison": ">=", "threshold": 0.001, "severity": "critical"});
    let response = platform.post(&format!("/api/v1/workspaces/{slug}/alert-rules"), admin, &rule, None).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("rule")["id"].as_str().expect("id").to_owned()
}

/// The real agent enrolled in `slug` (not yet running): its state directory.
async fn enrolled(platform: &Platform, slug: &str, admin: &str) -> tempfile::TempDir {
    let created: Value = platform
        .post(&format!("/api/v1/workspaces/{slug}/enrollment-tokens"), admin, &json!({"max_uses": 1}), None)
        .await
        .json()
        .await
        .expect("token");
    let token = created["token"].as_str().expect("token").to_owned();
    let state = tempfile::tempdir().expect("tempdir");
    let server = format!("http://{}", platform.gateway_addr);
    let output = tokio::task::spawn_blocking({
        let state = state.path().to_path_buf();
        move || agent(&state).args(["enroll", "--server", &server, "--token", &token]).output().expect("enroll")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    state
}

fn run(state: &tempfile::TempDir) -> Running {
    Running(agent(state.path()).args(["run", "--interval", "1"]).stderr(Stdio::null()).spawn().expect("run"))
}

/// The open alert of `slug`'s rule, once automation has opened its ticket.
async fn alert_with_ticket(platform: &Platform, slug: &str, admin: &str) -> Value {
    poll("a critical alert with its ticket", || async {
        let alerts = platform.get(&format!("/api/v1/workspaces/{slug}/alerts?state=open"), admin).await;
        alerts["items"].as_array()?.iter().find(|a| a["ticket_id"].is_string()).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_follows_the_real_agent_live_across_clients_guides_a_technician_and_replays_a_failed_event() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.workspace("globex", "gus", Role::MspAdmin).await;
    for (slug, name) in [("acme", "Acme Ltd"), ("globex", "Globex Corp")] {
        sqlx::query("UPDATE platform.workspaces SET name = $2 WHERE slug = $1")
            .bind(slug)
            .bind(name)
            .execute(platform.store.pool())
            .await
            .expect("name");
    }
    // Solo works for Acme only; Nina is in the NOC team, technician everywhere.
    platform.member(&acme, "solo", Role::Technician).await;
    let audit = AuditContext::default();
    let team = platform.store.create_team("NOC", "Nights and weekends", &audit).await.expect("team");
    let nina = SubjectRef { issuer: DEV_ISSUER, subject: "nina" };
    platform.store.add_team_member(team.id, nina, &audit).await.expect("member");
    platform.store.set_team_grants(team.id, &[(None, Role::Technician)], &audit).await.expect("grant");

    let rule = disk_rule(&platform, "acme", "mia").await;
    disk_rule(&platform, "globex", "gus").await;
    // Acme's runbook for that rule: a box to tick, then a command to run.
    let runbook = json!({"name": "Disk full", "rule_id": rule, "steps": [
        {"kind": "check", "text": "Find what filled the volume"},
        {"kind": "command", "text": "Tag the machine for clean-up", "command": "asset.tag",
         "args": {"asset_id": "{asset_id}", "add": ["disk-cleanup"]}}]});
    let response = platform.post("/api/v1/workspaces/acme/runbooks", "mia", &runbook, None).await;
    assert_eq!(response.status(), 201);
    let runbook_id = response.json::<Value>().await.expect("runbook")["id"].as_str().expect("id").to_owned();
    let acme_state = enrolled(&platform, "acme", "mia").await;
    let globex_state = enrolled(&platform, "globex", "gus").await;
    let base = platform.url("");

    // Nina's Ops page is open and following; only then does Acme's agent
    // start, and its alert must come to the page by itself.
    let (cookie, _) = browser::session(&platform, "nina").await;
    let pool = platform.store.pool().clone();
    let starter = tokio::spawn(async move {
        poll("the Ops page following the queues", || async {
            let listening: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND query LIKE '%LISTEN%anchor_ops%'",
            )
            .fetch_one(&pool)
            .await
            .expect("activity");
            (listening > 0).then_some(())
        })
        .await;
        // The state directory lives as long as the agent.
        (run(&acme_state), acme_state)
    });
    browser::walk(
        &base,
        &cookie,
        json!([
            {"name": "ops-live", "path": "/ops", "status": 200, "only": "desktop",
             "text": ["Critical alerts", "Runtime health", "Database", "Worker", "Acme Ltd"],
             "steps": [{"wait_live": true},
                       {"wait_text": "Root disk above threshold", "no_reload": true}]},
        ]),
    )
    .await;
    let _acme_agent = starter.await.expect("the agent started");
    let _globex_agent = run(&globex_state);
    let acme_alert = alert_with_ticket(&platform, "acme", "mia").await;
    alert_with_ticket(&platform, "globex", "gus").await;

    // Every client Nina may see, and only Acme for Solo.
    browser::walk(
        &base,
        &cookie,
        json!([
            {"name": "ops-all-clients", "path": "/ops", "status": 200,
             "text": ["Acme Ltd", "Globex Corp", "Root disk above threshold", "technician in every client"]},
            {"name": "ops-wall", "path": "/ops?wall=1", "status": 200,
             "text": ["Ops wall-board", "Critical alerts", "Acme Ltd", "Globex Corp", "Leave the wall-board"]},
            {"name": "ops-unassigned", "path": "/ops?queue=unassigned", "status": 200,
             "text": ["Unassigned tickets", "Root disk above threshold"]},
            {"name": "cmdb-sparkline", "path": "/w/acme/console/cmdb", "status": 200, "only": "desktop",
             "text": ["Processor, 24 h"], "absent": ["no data"]},
        ]),
    )
    .await;
    let (solo, _) = browser::session(&platform, "solo").await;
    browser::walk(
        &base,
        &solo,
        json!([
            {"name": "ops-one-member", "path": "/ops", "status": 200,
             "text": ["Acme Ltd", "Root disk above threshold", "staff of 1 client"], "absent": ["Globex Corp"]},
            {"name": "ops-not-a-member", "path": "/w/globex/ops", "status": 404, "text": ["No such workspace"]},
        ]),
    )
    .await;

    // Nina walks the guided workflow to an escalated ticket.
    let alert = acme_alert["id"].as_str().expect("alert").to_owned();
    let ticket = acme_alert["ticket_id"].as_str().expect("ticket").to_owned();
    let (cookie, csrf) = browser::session(&platform, "nina").await;
    let asset = acme_alert["asset_id"].as_str().expect("asset").to_owned();
    let guide = format!("/w/acme/ops/alerts/{alert}");
    let step = |name: &str| format!("{guide}?step={name}&ticket={ticket}");
    browser::walk(
        &base,
        &cookie,
        json!([
            {"name": "guide-1-acknowledge", "path": guide, "status": 200,
             "text": ["1. Acknowledge", "Root disk above threshold", "Acknowledge"]},
            {"name": "guide-1-acknowledged", "from": guide, "status": 200, "only": "desktop",
             "post": {"action": guide, "fields": {"csrf_token": csrf, "idempotency_key": "guide-ack", "action": "acknowledge"}},
             "text": ["Succeeded", "2. Ticket", "Automation opened a ticket for this alert"]},
            {"name": "cmdb-machine-software", "path": format!("/w/acme/console/cmdb/assets/{asset}"), "status": 200,
             "text": ["Software", "packages installed", "Changes and audit", "Alerts and checks",
                      "Root disk above threshold"]},
            {"name": "guide-3-context", "path": step("context"), "status": 200,
             "text": ["3. Asset context", "Other open alerts on this machine", "What depends on it"]},
            {"name": "guide-4-runbook", "path": step("runbook"), "status": 200, "only": "desktop",
             "text": ["4. Runbook", "Runbooks for this alert's rule", "Start “Disk full”"]},
            {"name": "guide-4-started", "from": step("runbook"), "status": 200, "only": "desktop",
             "post": {"action": guide, "fields": {"csrf_token": csrf, "idempotency_key": "guide-rb", "action": "start_runbook",
                                                  "runbook_id": runbook_id, "ticket_id": ticket, "asset_id": asset}},
             "text": ["Start a runbook", "Succeeded", "Find what filled the volume", "Tick", "Run asset.tag"]},
        ]),
    )
    .await;
    let run_id: String = sqlx::query_scalar("SELECT id FROM ws_acme.runbook_runs")
        .fetch_one(platform.store.pool())
        .await
        .expect("the run");
    browser::walk(
        &base,
        &cookie,
        json!([
            {"name": "guide-4-ticked", "from": step("runbook"), "status": 200, "only": "desktop",
             "post": {"action": guide, "fields": {"csrf_token": csrf, "idempotency_key": "guide-rb-1", "action": "step_done",
                                                  "run_id": run_id, "step": "1", "ticket_id": ticket,
                                                  "note": "/var/log held 20 GB"}},
             "text": ["Done by nina", "/var/log held 20 GB", "Run asset.tag"]},
            {"name": "guide-4-ran", "from": step("runbook"), "status": 200, "only": "desktop",
             "post": {"action": guide, "fields": {"csrf_token": csrf, "idempotency_key": "guide-rb-2", "action": "run_step",
                                                  "run_id": run_id, "step": "2", "ticket_id": ticket}},
             "text": ["Add and remove an asset's tags", "Succeeded", "its command: succeeded", "finished"]},
            {"name": "guide-4-run", "path": step("runbook"), "status": 200,
             "text": ["Disk full", "Done by nina", "/var/log held 20 GB", "its command: succeeded"]},
            {"name": "guide-5-escalate", "path": step("escalate"), "status": 200,
             "text": ["5. Escalate or resolve", "To a person", "Resolve the ticket"]},
            {"name": "guide-5-escalated", "from": step("escalate"), "status": 200, "only": "desktop",
             "post": {"action": guide, "fields": {"csrf_token": csrf, "idempotency_key": "guide-esc", "action": "escalate",
                                                  "ticket_id": ticket, "priority": "p1", "current_priority": "none",
                                                  "assignee": format!("{DEV_ISSUER} mia"),
                                                  "note": "Disk full on the file server; storage team please."}},
             "text": ["Escalated from the Ops centre: Disk full on the file server; storage team please.", "P1 critical", "mia"]},
        ]),
    )
    .await;
    let escalated = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ticket}"), "mia").await;
    assert_eq!(escalated["priority"], "p1");
    assert_eq!(escalated["assignee"]["subject"], "mia");
    let acknowledged = platform.get("/api/v1/workspaces/acme/alerts?state=open", "mia").await;
    let ours = acknowledged["items"].as_array().expect("items").iter().find(|a| a["id"] == alert.as_str()).cloned();
    assert_eq!(ours.expect("still open")["acknowledged_by"]["subject"], "nina");
    let tagged = platform.get(&format!("/api/v1/workspaces/acme/assets/{asset}"), "mia").await;
    assert_eq!(tagged["tags"], json!(["disk-cleanup"]), "the runbook's command step ran");

    // Dead letters of Acme's, one replayed and one discarded from Ops by its admin.
    let payload = json!({"type": "inbound.received", "workspace": "acme", "timestamp": "2026-12-07T00:00:00Z",
                         "data": {"source": "ops-test", "webhook_id": "msg_1", "payload": {}}});
    let mut dead = Vec::new();
    for _ in 0..2 {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO platform.outbox_events (workspace_id, topic, payload, state, attempts, last_error)
             VALUES ($1, 'event.publish', $2, 'failed', 12, 'simulated: the bus was away') RETURNING id",
        )
        .bind(acme.id())
        .bind(&payload)
        .fetch_one(platform.store.pool())
        .await
        .expect("dead letter");
        dead.push(id);
    }
    let (replayed, discarded) = (dead[0], dead[1]);
    let (cookie, csrf) = browser::session(&platform, "mia").await;
    browser::walk(
        &base,
        &cookie,
        json!([
            {"name": "ops-failed-events", "path": "/w/acme/ops?queue=events", "status": 200,
             "text": ["Failed events and jobs", "simulated: the bus was away", "Replay", "Discard"]},
            {"name": "ops-replayed", "from": "/w/acme/ops?queue=events", "status": 200, "only": "desktop",
             "post": {"action": "/w/acme/ops/act",
                      "fields": {"csrf_token": csrf, "action": "replay", "id": replayed.to_string(),
                                 "back": "/w/acme/ops?queue=events"}},
             "text": ["sent back to the outbox"]},
            {"name": "ops-discarded", "from": "/w/acme/ops?queue=events", "status": 200, "only": "phone",
             "post": {"action": "/w/acme/ops/act",
                      "fields": {"csrf_token": csrf, "action": "discard", "id": discarded.to_string(),
                                 "back": "/w/acme/ops?queue=events"}},
             "text": ["The event was discarded.", "No failed events or jobs."]},
        ]),
    )
    .await;
    let handled: (String, Option<String>) = poll("the replayed event delivered", || async {
        let row: (String, Option<String>) =
            sqlx::query_as("SELECT state, handled_by FROM platform.outbox_events WHERE id = $1")
                .bind(replayed)
                .fetch_one(platform.store.pool())
                .await
                .expect("event");
        (row.0 == "delivered").then_some(row)
    })
    .await;
    assert_eq!(handled.1.as_deref(), Some(format!("{DEV_ISSUER} mia").as_str()));
    let gone: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.outbox_events WHERE id = $1")
        .bind(discarded)
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(gone, 0, "a discarded event is gone");
    let recorded: Vec<(String, String)> =
        sqlx::query_as("SELECT action, target FROM ws_acme.changes WHERE action LIKE 'outbox_event.%' ORDER BY action")
            .fetch_all(platform.store.pool())
            .await
            .expect("changes");
    assert_eq!(
        recorded,
        [
            ("outbox_event.discarded".to_owned(), discarded.to_string()),
            ("outbox_event.replayed".to_owned(), replayed.to_string())
        ],
        "each is recorded, with its signed credential"
    );
    platform.stop().await;
}
