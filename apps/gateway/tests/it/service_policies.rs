//! Business calendars and SLA policies: configuration an MSP admin writes
//! directly, every edit a new version (the old ones kept), each change
//! recorded with its signed credential; bad definitions refused with every
//! bad field named; concurrent edits caught by If-Match.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{TestApp, key, problem};

/// `mia` manages `acme`, `tess` is a technician there.
async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    let acme = app.workspace("acme", "Acme").await;
    app.member(&acme, "mia", Role::MspAdmin).await;
    app.member(&acme, "tess", Role::Technician).await;
    app
}

async fn send(
    app: &TestApp,
    who: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut request =
        app.client.request(method, app.url(path)).bearer_auth(app.token(who)).header("idempotency-key", key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    request.send().await.expect("request")
}

fn office(name: &str) -> Value {
    let day = json!([{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]);
    json!({"name": name, "time_zone": "Europe/Berlin",
           "week": {"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day},
           "holidays": [{"kind": "date", "date": "2026-05-25", "name": "Whit Monday"},
                        {"kind": "range", "from": "2026-12-24", "to": "2027-01-01", "name": "Winter closure"}]})
}

async fn changes(app: &TestApp, action: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT details FROM ws_acme.changes WHERE action = $1 ORDER BY created_at")
        .bind(action)
        .fetch_all(app.store.pool())
        .await
        .expect("changes")
}

#[tokio::test]
async fn every_workspace_starts_with_a_calendar_and_a_default_policy() {
    let app = app().await;
    let calendars: Value = app.get_as("/api/v1/workspaces/acme/calendars", "tess").await.json().await.expect("json");
    let calendar = &calendars["items"][0];
    assert_eq!(calendar["time_zone"], "UTC");
    assert_eq!(calendar["week"]["sunday"], json!([{"start": "00:00", "end": "24:00"}]));
    let policies: Value = app.get_as("/api/v1/workspaces/acme/sla-policies", "tess").await.json().await.expect("json");
    let policy = &policies["items"][0];
    assert_eq!((policy["name"].as_str(), policy["default"].as_bool()), (Some("Standard"), Some(true)));
    assert_eq!(policy["calendar_id"], calendar["id"]);
    assert_eq!(policy["targets"]["p1"]["first_response_minutes"], 30);
    assert_eq!(policy["pausing_statuses"], json!(["waiting_on_client"]));
    app.stop().await;
}

#[tokio::test]
async fn a_calendar_is_versioned_recorded_and_guarded_by_if_match() {
    let app = app().await;
    let created = send(
        &app,
        "mia",
        reqwest::Method::POST,
        "/api/v1/workspaces/acme/calendars",
        Some(office("Berlin office")),
        None,
    )
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let calendar: Value = created.json().await.expect("json");
    let id = calendar["id"].as_str().expect("id").to_owned();
    assert_eq!(calendar["version"], 1);
    assert!(calendar.get("definition").is_none() && calendar["week"]["monday"][1]["end"] == "17:00", "{calendar}");
    let path = format!("/api/v1/workspaces/acme/calendars/{id}");

    // An edit against version 1 makes version 2; a second one still naming
    // version 1 is refused, and changes nothing.
    let mut edited = office("Berlin office");
    edited["week"]["friday"] = json!([{"start": "09:00", "end": "15:00"}]);
    let updated = send(&app, "mia", reqwest::Method::PUT, &path, Some(edited.clone()), Some("\"1\"")).await;
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let stale = send(&app, "mia", reqwest::Method::PUT, &path, Some(office("Berlin office")), Some("\"1\"")).await;
    let refused = problem(stale, 412, "precondition_failed").await;
    assert!(refused["detail"].as_str().expect("detail").contains("current version is 2"), "{refused}");
    let now: Value = app.get_as(&path, "tess").await.json().await.expect("json");
    assert_eq!(
        (now["version"].as_i64(), &now["week"]["friday"]),
        (Some(2), &json!([{"start": "09:00", "end": "15:00"}]))
    );

    // The versions before are kept, with their own definitions.
    let versions: Value = app.get_as(&format!("{path}/versions"), "tess").await.json().await.expect("json");
    let listed: Vec<i64> =
        versions["items"].as_array().expect("items").iter().map(|v| v["version"].as_i64().expect("n")).collect();
    assert_eq!(listed, [2, 1]);
    assert_eq!(versions["items"][1]["definition"]["week"]["friday"][1]["end"], "17:00");
    assert_eq!(versions["items"][1]["definition"]["version"], 1);

    // Recorded, each with its version, and each change scheduled for a credential.
    let recorded = changes(&app, "calendar.created").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(changes(&app, "calendar.updated").await[0]["version"], 2);
    let unattested: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.outbox_events WHERE topic = 'evidence.issue' AND payload ? 'change_id'",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(unattested, 2, "one credential per recorded change");

    // A technician reads but does not write.
    let denied = send(&app, "tess", reqwest::Method::PUT, &path, Some(edited), None).await;
    problem(denied, 403, "permission_denied").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_every_field() {
    let app = app().await;
    let mut bad = office("Broken");
    bad["time_zone"] = json!("Europe/Atlantis");
    bad["week"]["monday"] = json!([{"start": "09:00", "end": "12:30"}, {"start": "12:00", "end": "17:00"}]);
    bad["week"]["tuesday"] = json!([{"start": "17:00", "end": "09:00"}]);
    let response = send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/calendars", Some(bad), None).await;
    let refused = problem(response, 422, "invalid_calendar").await;
    let paths: Vec<&str> =
        refused["errors"].as_array().expect("errors").iter().map(|e| e["path"].as_str().expect("path")).collect();
    assert!(
        paths.contains(&"/time_zone") && paths.contains(&"/week/monday/1") && paths.contains(&"/week/tuesday/0"),
        "{refused}"
    );

    let nothing = json!({"name": "Never", "time_zone": "UTC", "week": {}});
    let response =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/calendars", Some(nothing), None).await;
    let refused = problem(response, 422, "invalid_calendar").await;
    assert!(refused["detail"].as_str().expect("detail").contains("working time"), "{refused}");

    let calendars: Value = app.get_as("/api/v1/workspaces/acme/calendars", "mia").await.json().await.expect("json");
    let calendar = calendars["items"][0]["id"].as_str().expect("id").to_owned();
    let policy = json!({"name": "Odd", "calendar_id": calendar, "targets": {"p9": {"resolution_minutes": 60}},
                        "warning_percent": 120, "pausing_statuses": ["closed"]});
    let response =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/sla-policies", Some(policy), None).await;
    let refused = problem(response, 422, "invalid_sla_policy").await;
    assert_eq!(refused["errors"][0]["path"], "/warning_percent", "{refused}");
    let policy = json!({"name": "Odd", "calendar_id": calendar, "targets": {"p9": {"resolution_minutes": 60}},
                        "pausing_statuses": ["closed"]});
    let response =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/sla-policies", Some(policy), None).await;
    let refused = problem(response, 422, "invalid_sla_policy").await;
    let paths: Vec<&str> =
        refused["errors"].as_array().expect("errors").iter().map(|e| e["path"].as_str().expect("path")).collect();
    assert_eq!(paths, ["/targets/p9", "/pausing_statuses"], "{refused}");
    let policy = json!({"name": "Elsewhere", "calendar_id": "cal_00000000000000000000000009",
                        "targets": {"p2": {"resolution_minutes": 60}}});
    let response =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/sla-policies", Some(policy), None).await;
    assert_eq!(problem(response, 422, "invalid_sla_policy").await["errors"][0]["path"], "/calendar_id");
    app.stop().await;
}

#[tokio::test]
async fn the_default_policy_moves_and_is_never_left_without_one() {
    let app = app().await;
    let created =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/calendars", Some(office("Office")), None)
            .await;
    let calendar: Value = created.json().await.expect("json");
    let calendar_id = calendar["id"].as_str().expect("id").to_owned();
    let body = json!({"name": "Business hours", "calendar_id": calendar_id, "default": true,
                      "targets": {"p1": {"first_response_minutes": 60, "resolution_minutes": 480}},
                      "pausing_statuses": ["waiting_on_client"]});
    let created =
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/sla-policies", Some(body.clone()), None)
            .await;
    assert_eq!(created.status(), 201);
    let policy: Value = created.json().await.expect("json");
    let policies: Value = app.get_as("/api/v1/workspaces/acme/sla-policies", "tess").await.json().await.expect("json");
    let defaults: Vec<&str> = policies["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(defaults, ["Business hours"], "exactly one default");

    // The default cannot be deleted or stop being the default by itself.
    let path = format!("/api/v1/workspaces/acme/sla-policies/{}", policy["id"].as_str().expect("id"));
    problem(send(&app, "mia", reqwest::Method::DELETE, &path, None, None).await, 409, "default_required").await;
    let mut not_default = body.clone();
    not_default["default"] = json!(false);
    problem(send(&app, "mia", reqwest::Method::PUT, &path, Some(not_default), None).await, 409, "default_required")
        .await;
    // Its calendar is in use; another name is taken.
    let calendar_path = format!("/api/v1/workspaces/acme/calendars/{calendar_id}");
    problem(send(&app, "mia", reqwest::Method::DELETE, &calendar_path, None, None).await, 409, "calendar_in_use").await;
    let mut taken = body.clone();
    taken["name"] = json!("Standard");
    taken["default"] = json!(false);
    problem(
        send(&app, "mia", reqwest::Method::POST, "/api/v1/workspaces/acme/sla-policies", Some(taken), None).await,
        409,
        "name_taken",
    )
    .await;

    // The old default, no longer the default, can go; its versions with it.
    let standard =
        policies["items"].as_array().expect("items").iter().find(|p| p["name"] == "Standard").expect("standard");
    let standard_path = format!("/api/v1/workspaces/acme/sla-policies/{}", standard["id"].as_str().expect("id"));
    assert_eq!(send(&app, "mia", reqwest::Method::DELETE, &standard_path, None, None).await.status(), 204);
    assert_eq!(app.get_as(&standard_path, "tess").await.status(), 404);
    assert_eq!(changes(&app, "sla_policy.deleted").await.len(), 1);
    app.stop().await;
}
