//! The cross-tenant matrix: every route of the OpenAPI document, called by
//! every kind of caller against a workspace that is not theirs, against one
//! that does not exist, and with object ids of another workspace inside
//! their own. Nothing may succeed and no body may carry the other
//! workspace's data. A route added to the API is covered without editing this
//! test; a route added without authorization fails it (see the last test).

use anchor_domain::Role;
use anchor_gateway::AppState;
use axum::{Json, Router, routing::get};
use serde_json::Value;

use crate::TestApp;

const HOME: &str = "home-ws";
const FOREIGN: &str = "foreign-ws";
const MISSING: &str = "no-such-ws";
/// Everything the foreign workspace holds carries this marker.
const MARKER: &str = "foreignsecret";

/// Who calls: no token, a valid token with no membership, a platform admin
/// (who holds no membership either), and a member of `HOME` in each role.
fn callers() -> Vec<(String, Option<String>)> {
    let mut callers = vec![("anonymous".to_owned(), None), ("stranger".to_owned(), Some("stranger".to_owned()))];
    callers.push(("platform_admin".to_owned(), Some("root".to_owned())));
    for role in Role::WORKSPACE {
        callers.push((role.as_str().to_owned(), Some(format!("home-{role}"))));
    }
    // Staff of `HOME` through a team, not a membership.
    callers.push(("team technician".to_owned(), Some("home-team".to_owned())));
    callers
}

async fn arrange(app: &TestApp) {
    app.platform_admin("root").await;
    let home = app.workspace(HOME, "Home Corp").await;
    let foreign = app.workspace(FOREIGN, &format!("Foreign Corp {MARKER}")).await;
    for role in Role::WORKSPACE {
        app.member(&home, &format!("home-{role}"), role).await;
        app.member(&foreign, &format!("{MARKER}-{role}"), role).await;
    }
    let audit = anchor_store::access::AuditContext::default();
    let team = app.store.create_team("Home desk", "", &audit).await.expect("team");
    let who = anchor_store::access::SubjectRef { issuer: anchor_auth::dev_issuer::DEV_ISSUER, subject: "home-team" };
    app.store.add_team_member(team.id, who, &audit).await.expect("member");
    app.store.set_team_grants(team.id, &[(Some(home), Role::Technician)], &audit).await.expect("grant");
}

/// A request body for an operation: the example of its request schema.
fn example_body(doc: &Value, operation: &Value) -> Option<Value> {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    let resolved = match schema["$ref"].as_str() {
        Some(reference) => &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")],
        None => schema,
    };
    Some(
        resolved
            .get("example")
            .or_else(|| resolved["examples"].get(0))
            .cloned()
            .unwrap_or(Value::Object(Default::default())),
    )
}

fn fill(path: &str, ws: &str, object: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e).expect("closing brace");
        out.push_str(&rest[..start]);
        out.push_str(if &rest[start + 1..end] == "ws" { ws } else { object });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs the matrix; returns the number of cases and the failures.
async fn run_matrix(app: &TestApp, doc: &Value) -> (usize, Vec<String>) {
    let foreign_object = format!("{MARKER}-technician");
    let mut cases = 0;
    let mut failures = Vec::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, operation) in item.as_object().expect("path item") {
            let public = operation.get("security").is_none();
            let body = example_body(doc, operation);
            let mut scenarios: Vec<(&str, String)> = Vec::new();
            if path.contains("{ws}") {
                scenarios.push(("foreign workspace", fill(path, FOREIGN, &foreign_object)));
                scenarios.push(("unknown workspace", fill(path, MISSING, &foreign_object)));
                if path.matches('{').count() > 1 {
                    scenarios.push(("foreign object in own workspace", fill(path, HOME, &foreign_object)));
                }
            } else {
                scenarios.push(("platform route", path.clone()));
            }
            for (scenario, url) in &scenarios {
                for (caller, subject) in callers() {
                    cases += 1;
                    let mut request = app.client.request(method.to_uppercase().parse().expect("method"), app.url(url));
                    if let Some(subject) = &subject {
                        request = request.bearer_auth(app.token(subject));
                    }
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    if method != "get" {
                        request = request.header("idempotency-key", crate::key());
                    }
                    let response = request.send().await.expect("send");
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    let code = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let case = format!("{} {url} as {caller} ({scenario})", method.to_uppercase());
                    let sees_everything = caller == "platform_admin" && *scenario == "platform route";
                    // The id the caller sent may come back (a PUT echoes what it
                    // created); anything else marked foreign is a leak.
                    if text.replace(&foreign_object, "").contains(MARKER) && !sees_everything {
                        failures.push(format!("{case}: body leaks foreign data: {text}"));
                    }
                    let expected: Option<(u16, &str)> = match (*scenario, subject.is_some()) {
                        (_, false) if !public => Some((401, "unauthenticated")),
                        ("foreign workspace" | "unknown workspace", true) => Some((403, "workspace_forbidden")),
                        // Inside their own workspace, a foreign id is simply not found, or
                        // the caller's role is refused first. A PUT names the resource it
                        // creates, so it may succeed: it acts on the caller's own workspace.
                        ("foreign object in own workspace", true) => {
                            if (200..300).contains(&status) && method != "put" {
                                failures.push(format!("{case}: {status} for an object of another workspace"));
                            }
                            None
                        }
                        _ => None,
                    };
                    if let Some((want_status, want_code)) = expected
                        && (status, code.as_str()) != (want_status, want_code)
                    {
                        failures.push(format!("{case}: expected {want_status} {want_code}, got {status} {code}"));
                    }
                }
            }
        }
    }
    (cases, failures)
}

/// The foreign workspace is exactly as it was arranged.
async fn foreign_untouched(app: &TestApp) {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.memberships m JOIN platform.workspaces w ON w.id = m.workspace_id
          JOIN platform.subjects s ON s.id = m.subject_id
         WHERE w.slug = $1 AND s.subject LIKE $2",
    )
    .bind(FOREIGN)
    .bind(format!("{MARKER}-%"))
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(count, Role::WORKSPACE.len() as i64, "the foreign workspace's members are unchanged");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.memberships m JOIN platform.workspaces w ON w.id = m.workspace_id WHERE w.slug = $1")
        .bind(FOREIGN)
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(total, Role::WORKSPACE.len() as i64, "nobody was added to the foreign workspace");
}

#[tokio::test]
async fn no_caller_reaches_another_workspace_through_any_route() {
    let app = TestApp::spawn().await;
    arrange(&app).await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.expect("openapi");
    let (cases, failures) = run_matrix(&app, &doc).await;
    let routes: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(p, _)| p.starts_with("/api/"))
        .map(|(_, i)| i.as_object().expect("item").len())
        .sum();
    eprintln!("cross-tenant matrix: {routes} routes x {} callers -> {cases} cases", callers().len());
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(routes >= 8, "the matrix must see the API's routes");
    foreign_untouched(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn the_matrix_fails_for_a_route_added_without_authorization() {
    // A careless route: it names the workspace but never asks who is calling.
    let careless = Router::<AppState>::new().route(
        "/api/v1/workspaces/{ws}/careless",
        get(
            |axum::extract::Path(ws): axum::extract::Path<String>,
             axum::extract::State(state): axum::extract::State<AppState>| async move {
                let slug = anchor_domain::WorkspaceSlug::parse(&ws).expect("slug");
                let found = state.db.workspace(&slug).await.expect("query").map(|w| w.name().to_owned());
                Json(serde_json::json!({"name": found}))
            },
        ),
    );
    let app = TestApp::spawn_with(careless, std::time::Duration::from_secs(30)).await;
    arrange(&app).await;
    let mut doc: Value = app.get("/api/v1/openapi.json").await.json().await.expect("openapi");
    doc["paths"]["/api/v1/workspaces/{ws}/careless"] = serde_json::json!({"get": {"security": [{"bearer": []}]}});
    let (_, failures) = run_matrix(&app, &doc).await;
    let careless: Vec<&String> = failures.iter().filter(|f| f.contains("/careless")).collect();
    assert!(!careless.is_empty(), "the matrix must catch the careless route");
    // Even the careless route does not leak: the gateway fails closed.
    assert!(careless.iter().all(|f| f.contains("500 authorization_missing")), "{careless:#?}");
    app.stop().await;
}
