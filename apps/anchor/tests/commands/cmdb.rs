//! The CMDB end to end: asset types and their fields, assets through their
//! lifecycle by command, relationships without duplicates or self-links,
//! and the impact of a failure along a chain, through a cycle, with the
//! open alerts (from a real agent's telemetry) and tickets on the way.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    telemetry::{disk, enroll, enrollment_token, send, wait_for},
};

const WS: &str = "/api/v1/workspaces/acme";

pub(crate) async fn send_command(
    platform: &Platform,
    method: &str,
    path: &str,
    body: &Value,
    who: &str,
) -> reqwest::Response {
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

/// Runs a command as `mia` and answers its result.
pub(crate) async fn run(platform: &Platform, method: &str, path: &str, body: Value) -> Value {
    let response = send_command(platform, method, path, &body, "mia").await;
    assert_eq!(response.status(), 200, "{method} {path}");
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{method} {path}: {execution}");
    execution["result"].clone()
}

/// A command refused at once with `status` and `code`; answers the problem.
pub(crate) async fn refused(
    platform: &Platform,
    method: &str,
    path: &str,
    body: Value,
    status: u16,
    code: &str,
) -> Value {
    let response = send_command(platform, method, path, &body, "mia").await;
    assert_eq!(response.status(), status, "{method} {path}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

pub(crate) async fn create(platform: &Platform, body: Value) -> String {
    run(platform, "POST", "/assets", body).await["asset_id"].as_str().expect("asset id").to_owned()
}

fn names(page: &Value) -> Vec<&str> {
    page["items"].as_array().expect("items").iter().map(|a| a["name"].as_str().expect("name")).collect()
}

async fn relate(platform: &Platform, asset: &str, kind: &str, target: &str) -> String {
    let result =
        run(platform, "POST", &format!("/assets/{asset}/relationships"), json!({"kind": kind, "target_id": target}))
            .await;
    result["relationship_id"].as_str().expect("relationship id").to_owned()
}

#[tokio::test]
async fn asset_types_shape_attributes_and_assets_live_their_lifecycle_by_command() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "abe", Role::Auditor).await;

    // Types: the built-ins, one an admin adds, its fields checked.
    let types = platform.get(&format!("{WS}/asset-types"), "mia").await;
    let keys: Vec<&str> =
        types["items"].as_array().expect("items").iter().map(|t| t["key"].as_str().expect("key")).collect();
    for key in
        ["workstation", "server", "network_device", "printer", "virtual_machine", "cloud_resource", "software_licence"]
    {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    let ups = json!({"name": "UPS", "fields": [
        {"key": "capacity_va", "label": "Capacity (VA)", "kind": "integer", "required": true},
        {"key": "battery", "label": "Battery", "kind": "choice", "options": ["lead-acid", "li-ion"]}]});
    let put = |body: Value| {
        platform
            .client
            .put(platform.url(&format!("{WS}/asset-types/ups")))
            .bearer_auth(platform.token("mia"))
            .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
            .json(&body)
            .send()
    };
    assert_eq!(put(ups.clone()).await.expect("put").status(), 201);
    assert_eq!(put(ups.clone()).await.expect("put").status(), 200, "a second PUT replaces");
    let bad = put(json!({"name": "UPS", "fields": [{"key": "x", "label": "X", "kind": "choice"}]})).await.expect("put");
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.expect("json");
    assert_eq!(problem["errors"][0]["path"], "/fields/0/options", "{problem}");
    let built_in = platform
        .client
        .delete(platform.url(&format!("{WS}/asset-types/server")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "delete-server-type")
        .send()
        .await
        .expect("delete");
    assert_eq!(built_in.status(), 409, "built-in types stay");
    let changes = platform.get(&format!("{WS}/changes?target=ups"), "mia").await;
    let actions: Vec<&str> =
        changes["items"].as_array().expect("items").iter().map(|c| c["action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["asset_type.updated", "asset_type.created"], "each write is a recorded change");

    // Assets: attributes follow their type.
    let leeds = run(&platform, "POST", "/sites", json!({"name": "Leeds", "time_zone": "Europe/London"})).await;
    let leeds = leeds["site_id"].as_str().expect("site").to_owned();
    let switch = create(
        &platform,
        json!({"type": "network_device", "name": "Core switch", "serial": "FOC1234X0AB", "site_id": leeds,
               "purchased_on": "2024-03-01", "warranty_until": "2029-02-28",
               "attributes": {"device_kind": "switch", "ports": 48}, "tags": ["core"]}),
    )
    .await;
    let asset = platform.get(&format!("{WS}/assets/{switch}"), "mia").await;
    assert_eq!((asset["type"].as_str(), asset["status"].as_str()), (Some("network_device"), Some("active")));
    assert_eq!(
        (asset["warranty_until"].as_str(), asset["attributes"]["ports"].as_i64()),
        (Some("2029-02-28"), Some(48))
    );
    assert_eq!(asset["open_alerts"], 0);

    let problem = refused(
        &platform,
        "POST",
        "/assets",
        json!({"type": "network_device", "name": "Edge", "attributes": {"ports": "many", "colour": "red"}}),
        422,
        "asset_attributes_invalid",
    )
    .await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("/attributes/ports") && detail.contains("/attributes/colour"), "{detail}");
    refused(&platform, "POST", "/assets", json!({"type": "ups", "name": "UPS 1"}), 422, "asset_attributes_invalid")
        .await;
    refused(&platform, "POST", "/assets", json!({"type": "toaster", "name": "T"}), 422, "asset_type_unknown").await;
    refused(
        &platform,
        "POST",
        "/assets",
        json!({"type": "printer", "name": "P", "purchased_on": "2025-01-02", "warranty_until": "2024-01-01"}),
        422,
        "validation_failed",
    )
    .await;
    let denied = send_command(&platform, "POST", "/assets", &json!({"type": "printer", "name": "P"}), "abe").await;
    assert_eq!(denied.status(), 403, "auditors only read");

    // Changes merge attributes; moves, tags and statuses are their own commands.
    let ups1 = create(
        &platform,
        json!({"type": "ups", "name": "UPS 1", "status": "planned",
                                        "attributes": {"capacity_va": 1500, "battery": "li-ion"}}),
    )
    .await;
    run(&platform, "PATCH", &format!("/assets/{ups1}"), json!({"name": "UPS rack A", "attributes": {"battery": null}}))
        .await;
    let asset = platform.get(&format!("{WS}/assets/{ups1}"), "mia").await;
    assert_eq!((asset["name"].as_str(), &asset["attributes"]), (Some("UPS rack A"), &json!({"capacity_va": 1500})));
    refused(
        &platform,
        "PATCH",
        &format!("/assets/{ups1}"),
        json!({"attributes": {"capacity_va": null}}),
        422,
        "asset_attributes_invalid",
    )
    .await;
    let unchanged = run(&platform, "PATCH", &format!("/assets/{ups1}"), json!({"name": "UPS rack A"})).await;
    assert_eq!(unchanged["changed"], false, "a change to what already is changes nothing");
    run(&platform, "POST", &format!("/assets/{ups1}/move"), json!({"site_id": leeds})).await;
    run(&platform, "POST", &format!("/assets/{ups1}/tags"), json!({"add": ["power", "core"]})).await;
    run(&platform, "POST", &format!("/assets/{ups1}/status"), json!({"status": "active"})).await;
    run(&platform, "POST", &format!("/assets/{ups1}/status"), json!({"status": "in_repair"})).await;
    refused(
        &platform,
        "POST",
        &format!("/assets/{ups1}/status"),
        json!({"status": "disposed"}),
        409,
        "asset_status_invalid",
    )
    .await;

    // Lists filter by type, site, tag, status and words.
    let printer = create(&platform, json!({"type": "printer", "name": "Reception printer"})).await;
    assert_eq!(
        names(&platform.get(&format!("{WS}/assets"), "mia").await),
        ["Core switch", "Reception printer", "UPS rack A"]
    );
    assert_eq!(
        names(&platform.get(&format!("{WS}/assets?site_id={leeds}"), "mia").await),
        ["Core switch", "UPS rack A"]
    );
    assert_eq!(names(&platform.get(&format!("{WS}/assets?tag=power"), "mia").await), ["UPS rack A"]);
    assert_eq!(names(&platform.get(&format!("{WS}/assets?type=printer"), "mia").await), ["Reception printer"]);
    assert_eq!(names(&platform.get(&format!("{WS}/assets?status=in_repair"), "mia").await), ["UPS rack A"]);
    assert_eq!(
        names(&platform.get(&format!("{WS}/assets?q=foc1234"), "mia").await),
        ["Core switch"],
        "serials are searched"
    );
    let page = platform.get(&format!("{WS}/assets?limit=2"), "mia").await;
    let next = page["next_cursor"].as_str().expect("a second page");
    let rest = platform.get(&format!("{WS}/assets?limit=2&cursor={next}"), "mia").await;
    assert_eq!(names(&rest), ["UPS rack A"]);

    // Retired: history. Listed only when asked for, changed no more.
    run(&platform, "POST", &format!("/assets/{printer}/retire"), json!({})).await;
    refused(&platform, "PATCH", &format!("/assets/{printer}"), json!({"name": "Old printer"}), 409, "asset_retired")
        .await;
    assert_eq!(names(&platform.get(&format!("{WS}/assets?status=retired"), "mia").await), ["Reception printer"]);
    assert!(!names(&platform.get(&format!("{WS}/assets"), "mia").await).contains(&"Reception printer"));
    run(&platform, "POST", &format!("/assets/{printer}/status"), json!({"status": "disposed"})).await;

    for kind in ["asset.created", "asset.updated", "asset.moved", "asset.status_changed", "asset.retired"] {
        assert!(!platform.events(kind).await.is_empty(), "{kind} published");
    }
    let moved = platform.events("asset.moved").await;
    assert_eq!(
        (moved[0]["asset"]["site_id"].as_str(), &moved[0]["from_site_id"]),
        (Some(leeds.as_str()), &Value::Null)
    );
    platform.stop().await;
}

#[tokio::test]
async fn impact_follows_relationships_through_a_chain_and_a_cycle_with_what_is_open_on_the_way() {
    let platform = Platform::start().await;
    platform.workspace("acme", "mia", Role::MspAdmin).await;

    // A real agent's machine, linked to its asset at enrollment.
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "host-01").await.expect("enrolled");
    let host: String = sqlx::query_scalar("SELECT id FROM ws_acme.assets WHERE agent_id = $1")
        .bind(agent.id.to_string())
        .fetch_one(platform.store.pool())
        .await
        .expect("the agent's asset");
    let row = platform.get(&format!("{WS}/assets/{host}"), "mia").await;
    assert_eq!((row["name"].as_str(), row["type"].as_str()), (Some("host-01"), Some("workstation")));
    assert_eq!(row["agent_id"].as_str(), Some(agent.id.to_string().as_str()));

    // switch <- host (connected_to) <- vm (runs_on) <- db (installed_on)
    //   <- app (depends_on): a chain of five; a NAS backs up the host.
    let switch = create(&platform, json!({"type": "network_device", "name": "Core switch"})).await;
    let vm = create(&platform, json!({"type": "virtual_machine", "name": "vm-db"})).await;
    let db = create(
        &platform,
        json!({"type": "software_licence", "name": "PostgreSQL",
                                      "attributes": {"product": "PostgreSQL 15"}}),
    )
    .await;
    let app = create(
        &platform,
        json!({"type": "cloud_resource", "name": "Billing app",
                                       "attributes": {"resource_id": "app-billing"}}),
    )
    .await;
    let nas = create(&platform, json!({"type": "server", "name": "Backup NAS"})).await;
    relate(&platform, &host, "connected_to", &switch).await;
    relate(&platform, &vm, "runs_on", &host).await;
    relate(&platform, &db, "installed_on", &vm).await;
    let app_link = relate(&platform, &app, "depends_on", &db).await;
    relate(&platform, &nas, "backs_up", &host).await;

    // No duplicates, no self-links.
    let path = format!("/assets/{vm}/relationships");
    refused(&platform, "POST", &path, json!({"kind": "runs_on", "target_id": host}), 409, "relationship_exists").await;
    refused(&platform, "POST", &path, json!({"kind": "runs_on", "target_id": vm}), 422, "validation_failed").await;
    refused(&platform, "POST", &path, json!({"kind": "hosts", "target_id": host}), 422, "validation_failed").await;

    // Open work on the way: a ticket about the VM, an alert from the host's agent.
    run(&platform, "POST", "/tickets", json!({"title": "vm-db is slow", "priority": "p3", "asset_id": vm})).await;
    let (status, _) = send(&platform, &agent.token(), &disk(0, 96.0), None).await;
    assert_eq!(status, 200);
    // (Automation opens a ticket for the critical alert, about the host.)
    wait_for("the host's alert and its ticket", || async {
        let row = platform.get(&format!("{WS}/assets/{host}"), "mia").await;
        (row["open_alerts"] == 1 && row["open_tickets"] == 1).then_some(row)
    })
    .await;

    // People handle the alert: acknowledged once (who, when), snoozed for a while.
    let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
    let alert = alerts["items"][0]["id"].as_str().expect("the alert").to_owned();
    let acked = run(&platform, "POST", &format!("/alerts/{alert}/acknowledge"), json!({})).await;
    assert_eq!(acked["changed"], true);
    let again = run(&platform, "POST", &format!("/alerts/{alert}/acknowledge"), json!({})).await;
    assert_eq!(again["changed"], false, "acknowledged already");
    run(&platform, "POST", &format!("/alerts/{alert}/snooze"), json!({"minutes": 60})).await;
    refused(&platform, "POST", &format!("/alerts/{alert}/snooze"), json!({"minutes": 20000}), 422, "validation_failed")
        .await;
    let handled = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
    let handled = &handled["items"][0];
    assert_eq!(handled["acknowledged_by"]["subject"], "mia", "{handled}");
    assert!(handled["snoozed_until"].is_string() && handled["acknowledged_at"].is_string(), "{handled}");
    assert_eq!(platform.events("alert.acknowledged").await.len(), 1);
    assert_eq!(platform.events("alert.snoozed").await.len(), 1);

    let impact = platform.get(&format!("{WS}/assets/{switch}/impact"), "mia").await;
    let walked: Vec<(&str, u64)> = impact["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["name"].as_str().expect("name"), i["depth"].as_u64().expect("depth")))
        .collect();
    assert_eq!(walked, [("Core switch", 0), ("host-01", 1), ("vm-db", 2), ("PostgreSQL", 3), ("Billing app", 4)]);
    assert_eq!(impact["items"][4]["via"]["kind"], "depends_on");
    assert_eq!(impact["items"][2]["open_tickets"][0]["title"], "vm-db is slow");
    assert_eq!(impact["items"][1]["open_alerts"][0]["severity"], "critical");
    assert_eq!(impact["items"][1]["open_tickets"].as_array().map(Vec::len), Some(1), "the alert's ticket");
    assert_eq!((impact["open_alerts"].as_u64(), impact["open_tickets"].as_u64()), (Some(1), Some(2)));
    assert_eq!(impact["truncated"], false);

    // A backup system's failure reaches what it protects, and on from there.
    let impact = platform.get(&format!("{WS}/assets/{nas}/impact"), "mia").await;
    assert_eq!(impact["items"].as_array().map(Vec::len), Some(5), "{impact}");
    assert_eq!(impact["items"][1]["via"]["kind"], "backs_up");

    // A cycle (the switch needs the app): every asset once, and the walk ends.
    relate(&platform, &switch, "depends_on", &app).await;
    let impact = platform.get(&format!("{WS}/assets/{db}/impact"), "mia").await;
    let walked: Vec<&str> =
        impact["items"].as_array().expect("items").iter().map(|i| i["name"].as_str().expect("name")).collect();
    assert_eq!(walked, ["PostgreSQL", "Billing app", "Core switch", "host-01", "vm-db"]);

    // Both ways on the asset's page; removed by command.
    let links = platform.get(&format!("{WS}/assets/{db}/relationships"), "mia").await;
    assert_eq!(links["items"].as_array().map(Vec::len), Some(2));
    run(&platform, "POST", &format!("/relationships/{app_link}/remove"), json!({})).await;
    refused(&platform, "POST", &format!("/relationships/{app_link}/remove"), json!({}), 404, "relationship_not_found")
        .await;
    let impact = platform.get(&format!("{WS}/assets/{db}/impact"), "mia").await;
    assert_eq!(impact["items"].as_array().map(Vec::len), Some(1), "nothing depends on the database now");
    assert_eq!(platform.events("asset.related").await.len(), 6);
    assert_eq!(platform.events("asset.unrelated").await.len(), 1);

    // A machine whose agent still reports is not retired.
    refused(&platform, "POST", &format!("/assets/{host}/retire"), json!({}), 409, "asset_agent_live").await;
    platform.stop().await;
}

/// The CMDB tab in a real browser (Debian's Chromium, axe-core): the asset
/// list with its filters, an asset's page with its impact and
/// relationships, the form to add one; each change a command through the
/// same desk as the API; bulk actions item by item. At desktop and phone
/// width, no axe or CSP violation; screenshots in `$ANCHOR_UI_SHOTS`.
#[tokio::test]
async fn the_cmdb_tab_works_in_a_browser_for_people_who_may_and_may_not_write() {
    use crate::pages::{session, walk};

    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "tess", Role::Technician).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    let base = platform.url("");

    let leeds = run(&platform, "POST", "/sites", json!({"name": "Leeds office", "time_zone": "Europe/London"})).await;
    let leeds = leeds["site_id"].as_str().expect("site").to_owned();
    let switch = create(&platform, json!({"type": "network_device", "name": "Core switch", "site_id": leeds,
                                          "serial": "FOC1234X0AB", "attributes": {"device_kind": "switch", "ports": 48}}))
    .await;
    let host = create(
        &platform,
        json!({"type": "server", "name": "Hypervisor 01", "site_id": leeds,
                                        "attributes": {"memory_gb": 256}}),
    )
    .await;
    let vm = create(
        &platform,
        json!({"type": "virtual_machine", "name": "File server VM",
                                      "attributes": {"hypervisor": "proxmox", "vcpus": 8}}),
    )
    .await;
    relate(&platform, &host, "connected_to", &switch).await;
    relate(&platform, &vm, "runs_on", &host).await;
    run(
        &platform,
        "POST",
        "/tickets",
        json!({"title": "File shares slow since Monday", "priority": "p2", "asset_id": vm}),
    )
    .await;

    // A real agent whose disk is full: its alert shows under Monitoring.
    let token = enrollment_token(&platform, 1).await;
    let agent = enroll(&platform, token["token"].as_str().expect("token"), "host-07").await.expect("enrolled");
    let (status, _) = send(&platform, &agent.token(), &disk(0, 97.0), None).await;
    assert_eq!(status, 200);
    let alert = wait_for("the disk alert", || async {
        let alerts = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
        alerts["items"][0]["id"].as_str().map(|id| json!(id))
    })
    .await;
    let alert = alert.as_str().expect("id").to_owned();
    let machine: String = sqlx::query_scalar("SELECT id FROM ws_acme.assets WHERE agent_id = $1")
        .bind(agent.id.to_string())
        .fetch_one(platform.store.pool())
        .await
        .expect("the machine");

    let (cookie, csrf) = session(&platform, "tess").await;
    let switch_page = format!("/w/acme/console/cmdb/assets/{switch}");
    let post = |name: &str, fields: Value, text: Value| {
        let status = if name.ends_with("bad-attribute") { 422 } else { 200 };
        json!({"name": name, "from": switch_page, "status": status, "text": text,
               "post": {"action": "/w/acme/console/cmdb/act", "fields": fields}})
    };
    walk(
        &base,
        &cookie,
        json!([
            {"name": "cmdb-list", "path": "/w/acme/console/cmdb", "status": 200,
             "text": ["Assets", "CMDB", "Core switch", "Hypervisor 01", "File server VM", "No agent", "New asset"]},
            {"name": "cmdb-filtered", "path": "/w/acme/console/cmdb?type=network_device", "status": 200,
             "text": ["Core switch"], "absent": ["Hypervisor 01"]},
            {"name": "cmdb-filter-htmx", "path": "/w/acme/console/cmdb", "status": 200, "only": "desktop",
             "steps": [{"select": "#a-type", "value": "virtual_machine"}, {"wait_url": "type=virtual_machine"}],
             "text": ["File server VM"], "absent": ["Hypervisor 01"]},
            {"name": "cmdb-asset", "path": switch_page, "status": 200,
             "text": ["Core switch", "If it fails", "2 assets depend on it", "File shares slow since Monday",
                      "Hypervisor 01", "is connected to", "Lifecycle", "Retire", "Ports", "48"]},
            {"name": "monitoring-alerts", "path": "/w/acme/console/monitoring", "status": 200,
             "text": ["Alerts", "Monitoring", "Disk almost full", "host-07", "critical"]},
            {"name": "cmdb-machine", "path": format!("/w/acme/console/cmdb/assets/{machine}?range=1h"), "status": 200,
             "text": ["host-07", "Telemetry", "Last 1h", "Disk use, by mount", "Processor use", "Online",
                      "Alerts and checks", "Disk almost full"]},
            {"name": "monitoring-acknowledge", "from": "/w/acme/console/monitoring", "status": 200,
             "post": {"action": "/w/acme/console/cmdb/act",
                      "fields": {"csrf_token": csrf, "idempotency_key": "ack-1", "command": "alert.acknowledge",
                                 "alert_id": alert}},
             "text": ["Acknowledge an open alert", "Succeeded", "Acknowledged by tess", "Snooze 1 h"]},
            {"name": "monitoring-agents", "path": "/w/acme/console/monitoring/agents", "status": 200,
             "text": ["Agents", "host-07", "online"]},
            {"name": "monitoring-rules", "path": "/w/acme/console/monitoring/rules", "status": 200,
             "text": ["Alert rules", "Disk almost full", "disk.used_percent >= 90", "the agent stops reporting"]},
            {"name": "cmdb-new", "path": "/w/acme/console/cmdb/new?type=printer", "status": 200,
             "text": ["New asset", "Printer", "Colour", "Add asset"]},
            {"name": "cmdb-create", "from": "/w/acme/console/cmdb/new?type=printer", "status": 200,
             "post": {"action": "/w/acme/console/cmdb/act",
                      "fields": {"csrf_token": csrf, "idempotency_key": "new-printer", "command": "asset.create",
                                 "type": "printer", "name": "Reception printer", "site_id": leeds,
                                 "attr.model": "LaserJet M404", "attr.colour.shown": "1", "attr.colour": "true"}},
             "text": ["Succeeded", "Reception printer", "LaserJet M404", "Leeds office"]},
            post("cmdb-repair", json!({"csrf_token": csrf, "idempotency_key": "repair-1", "command": "asset.set_status",
                                       "asset_id": switch, "status": "in_repair"}),
                 json!(["Succeeded", "In repair", "Put into service"])),
            post("cmdb-tag", json!({"csrf_token": csrf, "idempotency_key": "tag-1", "command": "asset.tag",
                                    "asset_id": switch, "add": "core, network"}),
                 json!(["Succeeded", "#core", "#network", "Changes and audit", "Add and remove an asset's tags",
                        "Move an asset along its lifecycle"])),
            post("cmdb-bad-attribute", json!({"csrf_token": csrf, "idempotency_key": "bad-1", "command": "asset.update",
                                              "asset_id": switch, "type": "network_device", "name": "Core switch",
                                              "attr.ports": "many"}),
                 json!(["The command was refused", "/attributes/ports", "Ports is a whole number"])),
        ]),
    )
    .await;

    // Two assets tagged in one bulk action from the list, each by command.
    walk(
        &base,
        &cookie,
        json!([
            {"name": "cmdb-bulk", "from": "/w/acme/console/cmdb", "status": 200, "only": "desktop",
             "post": {"action": "/w/acme/console/cmdb/bulk",
                      "fields": {"csrf_token": csrf, "idempotency_key": "bulk-1", "action": "tag", "tag": "audit-2026",
                                 "asset": [host, vm]}},
             "text": ["Tag “audit-2026”", "2 updated · 0 skipped · 0 failed"]},
        ]),
    )
    .await;
    let tagged = platform.get(&format!("{WS}/assets?tag=audit-2026"), "mia").await;
    assert_eq!(names(&tagged), ["File server VM", "Hypervisor 01"]);
    let switch_now = platform.get(&format!("{WS}/assets/{switch}"), "mia").await;
    assert_eq!((switch_now["status"].as_str(), &switch_now["tags"]), (Some("in_repair"), &json!(["core", "network"])));
    let printers = platform.get(&format!("{WS}/assets?type=printer"), "mia").await;
    assert_eq!(printers["items"][0]["attributes"], json!({"model": "LaserJet M404", "colour": true}));
    let creates = platform.get(&format!("{WS}/executions?command=asset.create"), "mia").await;
    assert_eq!(creates["items"].as_array().map(Vec::len), Some(4), "the page's create is one command, sent once");

    // An admin revokes a machine's agent from the list: the machine's agent
    // is revoked (its alert resolved), the switch has none.
    let (admin, admin_csrf) = session(&platform, "mia").await;
    walk(
        &base,
        &admin,
        json!([
            {"name": "cmdb-list-admin", "path": "/w/acme/console/cmdb", "status": 200, "only": "desktop",
             "text": ["Processor, 24 h", "Revoke their agents"]},
            {"name": "cmdb-bulk-revoke", "from": "/w/acme/console/cmdb", "status": 200, "only": "desktop",
             "post": {"action": "/w/acme/console/cmdb/bulk",
                      "fields": {"csrf_token": admin_csrf, "idempotency_key": "bulk-revoke", "action": "revoke",
                                 "asset": [machine, switch]}},
             "text": ["Revoke their agents", "1 updated · 1 skipped · 0 failed", "agent revoked; its open alert resolved",
                      "it has no agent"]},
        ]),
    )
    .await;
    let revoked = platform.get(&format!("{WS}/alerts?state=open"), "mia").await;
    assert_eq!(revoked["items"].as_array().map(Vec::len), Some(0), "the revoked agent's alert resolved: {revoked}");

    // An auditor reads; nothing offers a change.
    let (cookie, _) = session(&platform, "abe").await;
    walk(
        &base,
        &cookie,
        json!([
            {"name": "cmdb-list-auditor", "path": "/w/acme/console/cmdb", "status": 200, "text": ["Core switch"],
             "absent": ["New asset", "With the selected assets"]},
            {"name": "cmdb-asset-auditor", "path": switch_page, "status": 200, "text": ["If it fails", "Summary"],
             "absent": ["Put into service", "Add relationship"]},
        ]),
    )
    .await;
    platform.stop().await;
}
