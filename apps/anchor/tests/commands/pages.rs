//! The pages a command leaves behind, in a real browser: Debian's Chromium
//! driven by playwright-core (`apps/web/tests/ui/pages.mjs`), every page
//! checked with axe-core (WCAG 2.2 A/AA) and for CSP violations, and
//! screenshotted at desktop and phone width (in `$ANCHOR_UI_SHOTS`, default
//! `/tmp/anchor-ui`). `.ci/run` installs the npm packages.

use std::{path::Path, process::Command};

use anchor_auth::dev_issuer::DEV_ISSUER;
use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{Platform, location};

const UI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/tests/ui");

/// A browser session of `subject`: (cookie value, CSRF token).
pub(crate) async fn session(platform: &Platform, subject: &str) -> (String, String) {
    let (token, csrf) = (format!("ui-{subject}-{:016x}", rand::random::<u64>()), format!("csrf-{subject}-ui"));
    let ttl = std::time::Duration::from_secs(600);
    platform.store.create_session(&token, DEV_ISSUER, subject, &csrf, ttl).await.expect("session");
    (token, csrf)
}

/// Walks `visits` in Chromium as the holder of `cookie`; returns the report.
/// (The browser runs beside the test's own runtime, which serves the pages.)
pub(crate) async fn walk(base: &str, cookie: &str, visits: Value) -> Value {
    assert!(
        Path::new(UI).join("node_modules/playwright-core").exists(),
        "the UI test needs its npm packages: npm ci --prefix apps/web/tests/ui (.ci/run does)"
    );
    let out = std::env::var("ANCHOR_UI_SHOTS").unwrap_or_else(|_| "/tmp/anchor-ui".to_owned());
    std::fs::create_dir_all(&out).expect("screenshot dir");
    let spec =
        json!({"base": base, "cookies": [{"name": "anchor_session", "value": cookie}], "out": out, "visits": visits});
    let file = tempfile::NamedTempFile::new().expect("spec");
    std::fs::write(file.path(), spec.to_string()).expect("write spec");
    let path = file.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(format!("{UI}/pages.mjs")).arg(path).output().expect("node")
    })
    .await
    .expect("the browser ran");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the pages have problems:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&report).expect("a JSON report")
}

#[tokio::test]
async fn command_pages_are_accessible_and_keep_their_csp_at_every_width() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::Technician).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    let base = platform.url("");

    // A command from a page, and where it lands once it ran.
    let (cookie, csrf) = session(&platform, "mia").await;
    let args = json!({"title": "Printer on floor 2 offline", "priority": "p3",
                      "description": "Since this morning; the toner light blinks."});
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let submitted = client
        .post(platform.url("/w/acme/commands"))
        .header("cookie", format!("anchor_session={cookie}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("idempotency_key", "ui-1"),
            ("command", "ticket.create"),
            ("args", &args.to_string()),
        ])
        .send()
        .await
        .expect("submit");
    assert_eq!(submitted.status(), 303);
    let page = location(&submitted);
    let execution = page.replace("/w/acme/", "/api/v1/workspaces/acme/");
    let done = platform.finished(&execution, "mia", std::time::Duration::from_secs(30)).await;
    let ticket = done["result"]["ticket_id"].as_str().expect("ticket").to_owned();

    let transition = json!({"ticket_id": ticket, "to": "closed"}).to_string();
    let report = walk(
        &base,
        &cookie,
        json!([
            {"name": "workspaces", "path": "/", "status": 200, "text": ["Test client", "technician"]},
            {"name": "execution", "path": page, "status": 200,
             "text": ["Open a ticket", "Succeeded", "ticket id", "mia"]},
            {"name": "refused", "from": "/", "status": 409,
             "post": {"action": "/w/acme/commands",
                      "fields": {"csrf_token": csrf, "command": "ticket.transition", "args": transition}},
             "text": ["The command was refused", "cannot become closed"]},
        ]),
    )
    .await;
    eprintln!("pages: {report}");

    // Refused for the role: the page names the permission and who has it.
    let (cookie, csrf) = session(&platform, "abe").await;
    walk(
        &base,
        &cookie,
        json!([
            {"name": "forbidden", "from": "/", "status": 403,
             "post": {"action": "/w/acme/commands",
                      "fields": {"csrf_token": csrf, "command": "ticket.create", "args": args.to_string()}},
             "text": ["Not allowed", "tickets.write", "auditor", "technician", "Request id"]},
        ]),
    )
    .await;
    platform.stop().await;
}
