//! A page and the API are one door: the same person submitting the same
//! command through `POST /w/{ws}/commands` (a signed-in browser) and through
//! `POST /api/v1/workspaces/{ws}/tickets` (a bearer token) gets the same
//! decision (allowed, refused for the role, refused as a stranger) and
//! leaves the same audit record; an allowed command becomes the same kind
//! of execution, with the same actor and role.

use anchor_auth::dev_issuer::DEV_ISSUER;
use anchor_domain::Role;
use serde_json::{Value, json};

use crate::TestApp;

const TICKET: &str = r#"{"title": "Printer offline", "priority": "p3"}"#;

/// A signed-in browser of `subject` (dev issuer): its cookie and CSRF token.
async fn session(app: &TestApp, subject: &str) -> (String, String) {
    let (token, csrf) = (format!("session-{subject}-{:016x}", rand::random::<u64>()), format!("csrf-{subject}"));
    app.store
        .create_session(&token, DEV_ISSUER, subject, &csrf, std::time::Duration::from_secs(600))
        .await
        .expect("session");
    (format!("anchor_session={token}"), csrf)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn through_page(app: &TestApp, subject: &str, key: &str) -> reqwest::Response {
    let (cookie, csrf) = session(app, subject).await;
    browser()
        .post(app.url("/w/acme/commands"))
        .header("cookie", cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("idempotency_key", key),
            ("command", "ticket.create"),
            ("args", TICKET),
        ])
        .send()
        .await
        .expect("send")
}

async fn through_api(app: &TestApp, subject: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/workspaces/acme/tickets"))
        .bearer_auth(app.token(subject))
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(TICKET)
        .send()
        .await
        .expect("send")
}

/// The authorization refusals recorded for `subject`, oldest first.
async fn refusals(app: &TestApp, subject: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('issuer', issuer, 'subject', subject, 'workspace', workspace, 'action', action,
                                   'outcome', outcome, 'detail', detail)
           FROM platform.access_audit WHERE subject = $1 AND action = 'authorize' ORDER BY id",
    )
    .bind(subject)
    .fetch_all(app.store.pool())
    .await
    .expect("audit")
}

/// The record with its `route` (which door it came through) set aside.
fn without_route(mut record: Value) -> (Value, String) {
    let route = record["detail"]["route"].take().as_str().unwrap_or_default().to_owned();
    (record, route)
}

async fn executions(app: &TestApp) -> Vec<Value> {
    let mut tx = app
        .store
        .begin_workspace(&app.store.workspace(&"acme".parse().expect("slug")).await.expect("ws").expect("acme"))
        .await
        .expect("tx");
    let rows = tx.executions(&Default::default(), None, 100).await.expect("executions");
    tx.rollback().await.expect("rollback");
    rows.into_iter()
        .map(|e| json!({"command": e.command, "input": e.input, "actor": e.actor, "role": e.actor_role.map(|r| r.as_str())}))
        .collect()
}

#[tokio::test]
async fn a_page_and_the_api_make_the_same_decision_for_the_same_person() {
    let app = TestApp::spawn().await;
    let acme = app.workspace("acme", "Acme Corp").await;
    app.member(&acme, "tess", Role::Technician).await;
    app.member(&acme, "abe", Role::Auditor).await;

    // Allowed: one execution each, alike but for nothing.
    let api = through_api(&app, "tess", "api-1").await;
    assert_eq!(api.status(), 202);
    let page = through_page(&app, "tess", "page-1").await;
    assert_eq!(page.status(), 303, "post/redirect/get");
    let location = page.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with("/w/acme/executions/exe_"), "{location}");
    let made = executions(&app).await;
    assert_eq!(made.len(), 2);
    assert_eq!(made[0], made[1], "the same command, actor and role either way");
    assert_eq!(made[0]["role"], "technician");

    // The form sent twice (a double click) is one command, like an API retry.
    let again = through_page(&app, "tess", "page-1").await;
    assert_eq!(again.headers()["location"].to_str().expect("ascii"), location);
    assert_eq!(executions(&app).await.len(), 2);
    // And the page shows what became of it.
    let (cookie, _) = session(&app, "tess").await;
    let shown = browser().get(app.url(&location)).header("cookie", cookie).send().await.expect("get");
    assert_eq!(shown.status(), 200);
    assert!(shown.text().await.expect("html").contains("Open a ticket"));

    // Refused for the role, and as a stranger: the same decision, the same record. The page
    // answers a stranger 404 "No such workspace" like every other page of the workspace (the
    // web app never confirms that a workspace it will not show exists); the API keeps its
    // documented 403 `workspace_forbidden`.
    for (subject, code, page_status) in [("abe", "permission_denied", 403), ("sam", "workspace_forbidden", 404)] {
        let api = through_api(&app, subject, &format!("api-{subject}")).await;
        assert_eq!(api.status(), 403);
        assert_eq!(api.json::<Value>().await.expect("json")["code"], code);
        let page = through_page(&app, subject, &format!("page-{subject}")).await;
        assert_eq!(page.status(), page_status);
        let html = page.text().await.expect("html");
        if code == "permission_denied" {
            assert!(
                html.contains("tickets.write") && html.contains("technician"),
                "names the permission and who has it"
            );
        } else {
            assert!(html.contains("No such workspace"), "{html}");
            assert!(!html.contains("Acme Corp"), "a stranger learns nothing of the workspace");
        }
        let records = refusals(&app, subject).await;
        assert_eq!(records.len(), 2, "one record per refusal: {records:?}");
        let (api_record, api_route) = without_route(records[0].clone());
        let (page_record, page_route) = without_route(records[1].clone());
        assert_eq!(api_record, page_record, "the same decision, recorded the same way");
        assert_eq!(api_record["detail"]["permission"], "tickets.write");
        assert_eq!(
            (api_route.as_str(), page_route.as_str()),
            ("POST /api/v1/workspaces/{ws}/tickets", "POST /w/{ws}/commands")
        );
    }
    assert_eq!(executions(&app).await.len(), 2, "nothing refused was queued");

    // A form from elsewhere is refused before anything is decided.
    let (cookie, _) = session(&app, "tess").await;
    let forged = browser()
        .post(app.url("/w/acme/commands"))
        .header("cookie", cookie)
        .form(&[("csrf_token", "guess"), ("command", "ticket.create"), ("args", TICKET)])
        .send()
        .await
        .expect("send");
    assert_eq!(forged.status(), 403);
    assert_eq!(executions(&app).await.len(), 2);
    app.stop().await;
}
