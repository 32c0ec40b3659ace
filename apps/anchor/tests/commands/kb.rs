//! The knowledge base end to end: staff write, revise, publish, archive
//! and link articles from the Console (commands through AgentField); the
//! Portal and its search show published client and public articles only;
//! the public URL shows published public articles only, to anyone; an
//! internal article never leaves the staff pages. Then both sides in
//! Chromium.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{
    Platform,
    browser::{session, walk, walk_as},
};

/// The article's body as a page shows it.
fn rendered(page: &str) -> &str {
    let start = page.find(r#"<article class="card kb-body">"#).expect("the article");
    let end = start + page[start..].find("</article>").expect("its end");
    &page[start..end]
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Sends the Console's article form as `staff`; the article's id.
async fn act(platform: &Platform, staff: &(String, String), fields: &[(&str, &str)]) -> String {
    let mut form = vec![("csrf_token", staff.1.as_str())];
    form.extend_from_slice(fields);
    let key = format!("kb-{:032x}", rand::random::<u128>());
    form.push(("idempotency_key", &key));
    let response = client()
        .post(platform.url("/w/acme/console/service/kb/act"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .form(&form)
        .send()
        .await
        .expect("act");
    let status = response.status();
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(status, 303, "{fields:?}: {}", response.text().await.unwrap_or_default());
    location.rsplit('/').next().expect("article").to_owned()
}

async fn write(platform: &Platform, staff: &(String, String), title: &str, body: &str, audience: &str) -> String {
    act(
        platform,
        staff,
        &[
            ("action", "create"),
            ("title", title),
            ("body", body),
            ("audience", audience),
            ("category", "Remote work"),
            ("tags", "vpn, howto"),
        ],
    )
    .await
}

async fn get(platform: &Platform, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = client().get(platform.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("get");
    (response.status().as_u16(), response.text().await.expect("body"))
}

/// A contact of acme with a portal session (portal access on, a client_user).
async fn contact_session(platform: &Platform, acme: &anchor_store::Workspace) -> String {
    let body = json!({"name": "Ann Smith", "email": "ann@acme.example", "portal_access": true});
    let created: Value =
        platform.post("/api/v1/workspaces/acme/contacts", "mia", &body, Some(20)).await.json().await.expect("contact");
    assert_eq!(created["status"], "succeeded", "{created}");
    let contact = created["result"]["contact_id"].as_str().expect("contact").to_owned();
    let token = format!("invite-{:032x}", rand::random::<u128>());
    let new = anchor_store::portal::NewInvite {
        contact_id: contact.parse().expect("id"),
        contact_name: "Ann Smith",
        email: "ann@acme.example",
        role: Role::ClientUser,
        invited_by: anchor_store::access::SubjectRef { issuer: anchor_auth::dev_issuer::DEV_ISSUER, subject: "mia" },
        invited_by_name: "mia",
        valid_for: std::time::Duration::from_secs(600),
    };
    let audit = anchor_store::access::AuditContext::default();
    platform.store.create_portal_invite(acme, &new, &token, &audit).await.expect("invite");
    let session = format!("portal-{:032x}", rand::random::<u128>());
    platform
        .store
        .take_portal_invite(&token, &session, "csrf", std::time::Duration::from_secs(600), &audit)
        .await
        .expect("take");
    session
}

#[tokio::test]
async fn articles_reach_exactly_their_audience_and_their_markdown_renders_inert() {
    let platform = Platform::start().await;
    let acme = platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    platform.named_workspace("other", "Other Ltd", "oz", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let hostile = "Connect with **WireGuard**.\n\n<script>alert('kb')</script>\n\n[evil](javascript:alert(1)) \
                   <img src=x onerror=alert(1)> <a href=\"https://vpn.example/help\">help</a>";
    let public = write(&platform, &staff, "Connect to the VPN", hostile, "public").await;
    let client_only = write(&platform, &staff, "VPN for Acme staff", "Use the **Acme** profile.", "client").await;
    let internal =
        write(&platform, &staff, "VPN server secrets", "internalonly vpn admin password rotation", "internal").await;
    let draft = write(&platform, &staff, "VPN draft notes", "Not ready.", "client").await;
    for id in [&public, &client_only, &internal] {
        act(&platform, &staff, &[("action", "publish"), ("article_id", id)]).await;
    }
    // Every change was a command with a signed envelope, performed by a skill.
    let commands: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ws_acme.executions WHERE command LIKE 'kb.article.%' AND status = 'succeeded'",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("executions");
    assert_eq!(commands, 7);

    // Staff see everything, rendered inert.
    let staff_cookie = format!("anchor_session={}", staff.0);
    let (status, page) = get(&platform, &format!("/w/acme/console/service/kb/{public}"), Some(&staff_cookie)).await;
    assert_eq!(status, 200);
    let body = rendered(&page);
    assert!(body.contains("<strong>WireGuard</strong>"), "{body}");
    assert!(body.contains(r#"rel="nofollow noopener noreferrer external""#), "{body}");
    assert!(!body.contains("alert(") && !body.contains("onerror") && !body.contains("<script"), "{body}");
    // The Markdown as written is only ever text (escaped) in the edit form.
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>alert"), "{page}");
    let (_, list) = get(&platform, "/w/acme/console/service/kb?q=vpn", Some(&staff_cookie)).await;
    assert!(list.contains("VPN server secrets") && list.contains("VPN draft notes"), "{list}");

    // Revised: a new revision, the old one kept.
    act(
        &platform,
        &staff,
        &[
            ("action", "revise"),
            ("article_id", &client_only),
            ("title", "VPN for Acme staff"),
            ("body", "Use the **Acme** profile, then sign in."),
            ("audience", "client"),
        ],
    )
    .await;
    let revisions: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.kb_revisions WHERE article_id = $1")
        .bind(&client_only)
        .fetch_one(platform.store.pool())
        .await
        .expect("revisions");
    assert_eq!(revisions, 2);

    // "This article solved it."
    let ticket: Value = platform
        .post("/api/v1/workspaces/acme/tickets", "mia", &json!({"title": "VPN drops", "priority": "p3"}), Some(20))
        .await
        .json()
        .await
        .expect("ticket");
    let ticket_id = ticket["result"]["ticket_id"].as_str().expect("ticket").to_owned();
    act(
        &platform,
        &staff,
        &[("action", "link"), ("article_id", &client_only), ("ticket_id", &ticket_id), ("solved", "yes")],
    )
    .await;
    let (_, page) = get(&platform, &format!("/w/acme/console/service/kb/{client_only}"), Some(&staff_cookie)).await;
    assert!(page.contains("VPN drops") && page.contains("solved it"), "{page}");

    // The Portal: published client and public articles, never internal or draft, in lists and search.
    let portal = format!("anchor_portal={}", contact_session(&platform, &acme).await);
    for path in ["/w/acme/portal/kb", "/w/acme/portal/kb?q=vpn", "/w/acme/portal/kb?q=internalonly"] {
        let (status, page) = get(&platform, path, Some(&portal)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!page.contains("VPN server secrets") && !page.contains("VPN draft notes"), "{path}: {page}");
        if !path.ends_with("internalonly") {
            assert!(page.contains("Connect to the VPN") && page.contains("VPN for Acme staff"), "{path}: {page}");
        }
    }
    for (id, status) in [(&public, 200), (&client_only, 200), (&internal, 404), (&draft, 404)] {
        let (got, page) = get(&platform, &format!("/w/acme/portal/kb/{id}"), Some(&portal)).await;
        assert_eq!(got, status, "{id}: {page}");
        assert!(!page.contains("internalonly"));
    }

    // The public URL: published public articles only, to anyone; never another workspace's.
    for (id, status) in [(&public, 200), (&client_only, 404), (&internal, 404), (&draft, 404)] {
        let (got, page) = get(&platform, &format!("/w/acme/kb/{id}"), None).await;
        assert_eq!(got, status, "{id}: {page}");
        assert!(!page.contains("alert(") && !page.contains("internalonly"), "{page}");
    }
    assert_eq!(get(&platform, &format!("/w/other/kb/{public}"), None).await.0, 404);
    act(&platform, &staff, &[("action", "archive"), ("article_id", &public)]).await;
    assert_eq!(get(&platform, &format!("/w/acme/kb/{public}"), None).await.0, 404, "archived");
    let (_, page) = get(&platform, "/w/acme/portal/kb", Some(&portal)).await;
    assert!(!page.contains("Connect to the VPN"), "archived: {page}");
    platform.stop().await;
}

#[tokio::test]
async fn staff_author_an_article_and_a_contact_finds_it_in_chromium() {
    let platform = Platform::start().await;
    let acme = platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let base = platform.url("");
    walk(
        &base,
        &staff.0,
        json!([
            {"fits": true, "name": "kb-new", "path": "/w/acme/console/service/kb/new", "only": "desktop",
             "steps": [{"fill": "#kb-title", "value": "Connect to the office VPN"},
                       {"fill": "#kb-body", "value": "1. Open **WireGuard**.\n2. Import the *Acme* profile.\n\nSee [the vendor's guide](https://www.wireguard.com/quickstart/)."},
                       {"select": "#kb-audience-field", "value": "public"},
                       {"fill": "#kb-category", "value": "Remote work"},
                       {"click": "form.stack button[type=submit]", "navigates": true},
                       {"click": "button:text('Publish')", "navigates": true},
                       {"wait_text": "Public URL"}],
             "text": ["Connect to the office VPN", "published", "WireGuard"]},
            {"fits": true, "name": "kb-list", "path": "/w/acme/console/service/kb", "text": ["Knowledge base", "Connect to the office VPN"]},
        ]),
    )
    .await;
    let id: String = sqlx::query_scalar("SELECT id FROM ws_acme.kb_articles")
        .fetch_one(platform.store.pool())
        .await
        .expect("article");
    let portal = contact_session(&platform, &acme).await;
    walk_as(
        &base,
        json!([{"name": "anchor_portal", "value": portal}]),
        json!([
            {"fits": true, "name": "portal-kb", "path": "/w/acme/portal/kb?q=vpn", "text": ["Help articles", "Connect to the office VPN"]},
            {"fits": true, "name": "portal-kb-article", "path": format!("/w/acme/portal/kb/{id}"), "text": ["Import the Acme profile", "Open a ticket"]},
            {"fits": true, "name": "kb-public", "path": format!("/w/acme/kb/{id}"), "text": ["Acme Ltd · Help", "Connect to the office VPN"]},
        ]),
    )
    .await;
    platform.stop().await;
}

#[tokio::test]
async fn the_api_writes_articles_through_the_same_commands_and_reads_them_with_revisions_and_tickets() {
    let platform = Platform::start().await;
    platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let api = "/api/v1/workspaces/acme/kb/articles";
    let body = json!({"title": "Connect to the VPN", "body": "1. Open **WireGuard**\n2. Import the profile",
        "audience": "client", "category": "Remote work", "tags": ["vpn"]});
    let created: Value = platform.post(api, "mia", &body, Some(20)).await.json().await.expect("json");
    assert_eq!(created["status"], "succeeded", "{created}");
    assert_eq!(created["result"]["state"], "draft");
    let id = created["result"]["article_id"].as_str().expect("id").to_owned();

    let revised = json!({"title": "Connect to the VPN from home", "body": "Open **WireGuard**, import the profile.",
        "audience": "client"});
    let response = platform
        .client
        .patch(platform.url(&format!("{api}/{id}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", format!("kb-revise-{id}"))
        .header("prefer", "wait=20")
        .json(&revised)
        .send()
        .await
        .expect("patch");
    let revised: Value = response.json().await.expect("json");
    assert_eq!((revised["status"].as_str(), revised["result"]["revision"].as_i64()), (Some("succeeded"), Some(2)));
    let published: Value =
        platform.post(&format!("{api}/{id}/publish"), "mia", &json!({}), Some(20)).await.json().await.expect("json");
    assert_eq!(published["result"]["state"], "published", "{published}");

    let ticket: Value = platform
        .post(
            "/api/v1/workspaces/acme/tickets",
            "mia",
            &json!({"title": "VPN drops at home", "priority": "p3"}),
            Some(20),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let ticket = ticket["result"]["ticket_id"].as_str().expect("ticket").to_owned();
    let linked: Value = platform
        .post(&format!("{api}/{id}/tickets"), "mia", &json!({"ticket_id": ticket, "solved": true}), Some(20))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(linked["status"], "succeeded", "{linked}");

    let article = platform.get(&format!("{api}/{id}"), "mia").await;
    assert_eq!(article["title"], "Connect to the VPN from home");
    assert!(article["body_html"].as_str().expect("html").contains("<strong>WireGuard</strong>"), "{article}");
    assert_eq!(article["revisions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (article["tickets"][0]["ticket_id"].as_str(), article["tickets"][0]["solved"].as_bool()),
        (Some(ticket.as_str()), Some(true))
    );

    let found = platform.get(&format!("{api}?q=wireg"), "mia").await;
    assert_eq!(found["items"][0]["id"], id.as_str(), "found by a prefix of a word");
    let drafts = platform.get(&format!("{api}?state=draft"), "mia").await;
    assert_eq!(drafts["items"], json!([]));
    let response = platform
        .client
        .get(platform.url(&format!("{api}?audience=everyone")))
        .bearer_auth(platform.token("mia"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 422);
    // One of the client's people with a bearer token reads what the Portal shows, nothing more.
    let internal = json!({"title": "Router admin passwords", "body": "In the vault.", "audience": "internal"});
    let internal: Value = platform.post(api, "mia", &internal, Some(20)).await.json().await.expect("json");
    let internal = internal["result"]["article_id"].as_str().expect("id").to_owned();
    platform.post(&format!("{api}/{internal}/publish"), "mia", &json!({}), Some(20)).await;
    let draft = json!({"title": "Printer tips (draft)", "body": "Soon.", "audience": "client"});
    platform.post(api, "mia", &draft, Some(20)).await;
    let acme = platform.store.workspaces().await.expect("workspaces").into_iter().find(|w| w.slug().as_str() == "acme");
    platform.member(&acme.expect("acme"), "carl", Role::ClientUser).await;
    let seen = platform.get(api, "carl").await;
    let titles: Vec<&str> =
        seen["items"].as_array().expect("items").iter().filter_map(|a| a["title"].as_str()).collect();
    assert_eq!(titles, ["Connect to the VPN from home"], "published client and public articles only");
    let seen = platform.get(&format!("{api}?audience=internal"), "carl").await;
    assert_eq!(seen["items"], json!([]));
    let hidden = platform
        .client
        .get(platform.url(&format!("{api}/{internal}")))
        .bearer_auth(platform.token("carl"))
        .send()
        .await
        .expect("get");
    assert_eq!(hidden.status(), 404, "an internal article does not exist for a client");

    let missing = platform
        .client
        .get(platform.url(&format!("{api}/kba_00000000000000000000000000")))
        .bearer_auth(platform.token("mia"))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
}
