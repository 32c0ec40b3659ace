//! The pages a command leaves behind, in a real browser (see [`crate::browser`]).

use anchor_domain::Role;
use serde_json::json;

use crate::{Platform, location};

pub(crate) use crate::browser::{session, walk};

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
