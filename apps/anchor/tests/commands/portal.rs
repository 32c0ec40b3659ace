//! The Portal's door and its walls: invitation links that work once,
//! expire and die on revocation (and whose GET changes nothing); portal
//! sessions that reach no staff page and no API route, and staff sessions
//! that reach no portal page; client roles' scope (their own tickets, or
//! the company's), and nothing of another workspace. Then a contact's
//! whole visit in Chromium.

use std::time::Duration;

use anchor_domain::Role;
use anchor_store::{
    access::{AuditContext, SubjectRef},
    portal::{NewInvite, Taken},
};
use serde_json::{Value, json};

use crate::{
    Platform,
    browser::{session, walk, walk_as},
};

/// Everything of the other workspace carries this.
const MARKER: &str = "foreignsecret";
const ROUTER: &str = include_str!("../../../web/src/lib.rs");

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A contact of `ws` (with e-mail), made through the API as `subject`.
async fn contact(platform: &Platform, ws: &str, subject: &str, name: &str, email: &str) -> String {
    let body = json!({"name": name, "email": email});
    let response = platform.post(&format!("/api/v1/workspaces/{ws}/contacts"), subject, &body, Some(20)).await;
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"]["contact_id"].as_str().expect("contact").to_owned()
}

/// Staff `cookie` invites `contact` in `role` through Admin settings; the link's path.
async fn invite(platform: &Platform, ws: &str, cookie: &(String, String), contact: &str, role: &str) -> String {
    let response = client()
        .post(platform.url(&format!("/w/{ws}/admin/portal/invites")))
        .header("cookie", format!("anchor_session={}", cookie.0))
        .form(&[("csrf_token", cookie.1.as_str()), ("contact_id", contact), ("role", role)])
        .send()
        .await
        .expect("invite");
    let status = response.status();
    let page = response.text().await.expect("page");
    assert_eq!(status, 200, "{page}");
    let start = page.find(&format!("/w/{ws}/portal/invite/")).expect("the link is shown once");
    let end = start + page[start..].find('"').expect("end of the link");
    page[start..end].to_owned()
}

/// A portal session for `contact` in `role`, through the store's handoff (the
/// HTTP handoff has its own test): the cookie value and its CSRF token.
async fn portal_session(
    platform: &Platform,
    ws: &anchor_store::Workspace,
    contact: &str,
    role: Role,
) -> (String, String) {
    let token = format!("invite-{:032x}", rand::random::<u128>());
    let new = NewInvite {
        contact_id: contact.parse().expect("contact id"),
        contact_name: "Someone",
        email: "someone@example.com",
        role,
        invited_by: SubjectRef { issuer: anchor_auth::dev_issuer::DEV_ISSUER, subject: "mia" },
        invited_by_name: "mia",
        valid_for: Duration::from_secs(600),
    };
    platform.store.create_portal_invite(ws, &new, &token, &AuditContext::default()).await.expect("invite");
    let (session, csrf) = (format!("portal-{:032x}", rand::random::<u128>()), format!("csrf-{contact}"));
    let taken = platform
        .store
        .take_portal_invite(&token, &session, &csrf, Duration::from_secs(600), &AuditContext::default())
        .await
        .expect("take");
    assert!(matches!(taken, Taken::Started { .. }), "{taken:?}");
    (session, csrf)
}

/// A sent quote of `ws` (billing profile and tax rate set up first): its id and digest.
pub(crate) async fn sent_quote(platform: &Platform, ws: &str, subject: &str, title: &str) -> (String, String) {
    let api = format!("/api/v1/workspaces/{ws}");
    let profile = json!({"currency": "EUR", "payment_terms_days": 14, "invoice_prefix": "INV-",
        "credit_note_prefix": "CN-", "seller": {"name": "Managed IT GmbH", "vat_id": "DE123456789",
        "address": {"line1": "1 Road", "postal_code": "1000", "city": "Town", "country": "DE"}},
        "buyer": {"name": "Acme Ltd", "address": {"line1": "2 Road", "postal_code": "1000", "city": "Town", "country": "DE"}}});
    for (path, body) in [
        ("billing/profile", profile),
        ("billing/tax-rates/standard", json!({"name": "VAT", "category": "S", "rate": "19"})),
    ] {
        let response = platform
            .client
            .put(platform.url(&format!("{api}/{path}")))
            .bearer_auth(platform.token(subject))
            .header("idempotency-key", format!("key-{ws}-{path}"))
            .json(&body)
            .send()
            .await
            .expect("put");
        assert!(response.status().is_success(), "{path}: {}", response.text().await.unwrap_or_default());
    }
    let lines = json!([{"description": "Laptop, 14 inch", "quantity": "3", "unit_price": "899.00", "tax": "standard"},
                       {"description": "Setup and data transfer", "quantity": "3", "unit_price": "120.00", "tax": "standard"}]);
    let body = json!({"title": title, "valid_until": "2099-01-01", "lines": lines});
    let created: Value =
        platform.post(&format!("{api}/quotes"), subject, &body, Some(20)).await.json().await.expect("quote");
    assert_eq!(created["status"], "succeeded", "{created}");
    let id = created["result"]["quote_id"].as_str().expect("quote").to_owned();
    let sent: Value = platform
        .post(&format!("{api}/quotes/{id}/send"), subject, &json!({}), Some(20))
        .await
        .json()
        .await
        .expect("send");
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let quote = platform.get(&format!("{api}/quotes/{id}"), subject).await;
    (id, quote["sha256"].as_str().expect("sha256").to_owned())
}

/// An invoice of `ws` with one line (billing set up by [`sent_quote`]): finalized, or left a draft.
pub(crate) async fn invoice(platform: &Platform, ws: &str, subject: &str, description: &str, finalize: bool) -> String {
    let api = format!("/api/v1/workspaces/{ws}");
    let lines = json!([{"description": description, "quantity": "1", "unit_price": "250.00", "tax": "standard"}]);
    let created: Value = platform
        .post(&format!("{api}/invoices"), subject, &json!({"lines": lines}), Some(20))
        .await
        .json()
        .await
        .expect("invoice");
    assert_eq!(created["status"], "succeeded", "{created}");
    let id = created["result"]["invoice_id"].as_str().expect("invoice").to_owned();
    if finalize {
        let done: Value = platform
            .post(&format!("{api}/invoices/{id}/finalize"), subject, &json!({}), Some(20))
            .await
            .json()
            .await
            .expect("finalize");
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    id
}

/// Moves a ticket of `ws` through `steps` as `mia`.
async fn transitions(platform: &Platform, ws: &str, ticket: &str, steps: &[&str]) {
    for to in steps {
        let path = format!("/api/v1/workspaces/{ws}/tickets/{ticket}/transitions");
        let done: Value = platform.post(&path, "mia", &json!({"to": to}), Some(20)).await.json().await.expect("move");
        assert_eq!(done["status"], "succeeded", "{to}: {done}");
    }
}

fn portal_cookie(session: &str) -> String {
    format!("anchor_portal={session}")
}

async fn count(platform: &Platform, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(platform.store.pool()).await.expect("count")
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The handoff form's value and its browser-binding cookie, from the link's page.
async fn open_link(platform: &Platform, link: &str) -> (u16, String, Option<(String, String)>) {
    let response = client().get(platform.url(link)).send().await.expect("get");
    let status = response.status().as_u16();
    let cookies = set_cookies(&response);
    let page = response.text().await.expect("page");
    assert!(cookies.iter().all(|c| !c.starts_with("anchor_portal=")), "a GET never signs in: {cookies:?}");
    let handoff = cookies.iter().find_map(|c| c.strip_prefix("anchor_portal_handoff=")).map(|c| {
        let value = c.split(';').next().expect("value").to_owned();
        (value.clone(), value)
    });
    (status, page, handoff)
}

async fn take(platform: &Platform, link: &str, handoff: &(String, String)) -> reqwest::Response {
    client()
        .post(platform.url(link))
        .header("cookie", format!("anchor_portal_handoff={}", handoff.0))
        .form(&[("handoff", handoff.1.as_str())])
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn invitation_links_work_once_expire_die_on_revocation_and_their_get_changes_nothing() {
    let platform = Platform::start().await;
    platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let ann = contact(&platform, "acme", "mia", "Ann Smith", "ann@acme.example").await;

    let link = invite(&platform, "acme", &staff, &ann, "client_user").await;
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_invites").await, 1);
    // Only the digest is kept: the token is nowhere in the database.
    let token = link.rsplit('/').next().expect("token");
    let stored = count(
        &platform,
        &format!("SELECT count(*) FROM platform.portal_invites WHERE token_hash::text LIKE '%{token}%'"),
    )
    .await;
    assert_eq!(stored, 0);

    // The link's page (twice, as a mail scanner and then the person) changes nothing.
    for _ in 0..2 {
        let (status, page, handoff) = open_link(&platform, &link).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Continue as Ann Smith") && page.contains("Acme Ltd"), "{page}");
        assert!(handoff.is_some());
    }
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_invites WHERE used_at IS NOT NULL").await, 0);
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_sessions").await, 0);
    assert_eq!(
        count(&platform, "SELECT count(*) FROM platform.subjects WHERE issuer = 'urn:anchor:portal'").await,
        0,
        "nobody is a member yet"
    );

    // A forged form (no browser binding) starts nothing.
    let (_, _, handoff) = open_link(&platform, &link).await;
    let handoff = handoff.expect("handoff");
    let forged = take(&platform, &link, &("other".into(), handoff.1.clone())).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_sessions").await, 0);

    // Continue: one session, a cookie, a 303 to a clean URL.
    let taken = take(&platform, &link, &handoff).await;
    assert_eq!(taken.status(), 303);
    assert_eq!(taken.headers()["location"], "/w/acme/portal");
    let cookies = set_cookies(&taken);
    let portal = cookies.iter().find(|c| c.starts_with("anchor_portal=")).expect("the portal cookie");
    assert!(portal.contains("HttpOnly") && portal.contains("SameSite=Lax") && portal.contains("Path=/"), "{portal}");
    let session_value = portal.trim_start_matches("anchor_portal=").split(';').next().expect("value").to_owned();
    let home = client().get(platform.url("/w/acme/portal")).header("cookie", portal_cookie(&session_value)).send();
    let home = home.await.expect("home");
    assert_eq!(home.status(), 200);
    let page = home.text().await.expect("page");
    assert!(page.contains("My tickets") && page.contains("Acme Ltd") && page.contains("Ann Smith"), "{page}");
    let role: String = sqlx::query_scalar(
        "SELECT m.role FROM platform.memberships m JOIN platform.subjects s ON s.id = m.subject_id
          WHERE s.issuer = 'urn:anchor:portal' AND s.subject = $1",
    )
    .bind(&ann)
    .fetch_one(platform.store.pool())
    .await
    .expect("membership");
    assert_eq!(role, "client_user");

    // A second POST of the same link: refused, no cookie, nothing new.
    let again = take(&platform, &link, &handoff).await;
    assert_eq!(again.status(), 410);
    assert!(set_cookies(&again).iter().all(|c| !c.starts_with("anchor_portal=")));
    let page = again.text().await.expect("page");
    assert!(page.contains("used already") && page.contains("mia"), "says so and whom to ask: {page}");
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_sessions").await, 1);
    let (status, page, _) = open_link(&platform, &link).await;
    assert_eq!(status, 410, "{page}");

    // Expired: says so, starts nothing.
    let bob = contact(&platform, "acme", "mia", "Bob Jones", "bob@acme.example").await;
    let expiring = invite(&platform, "acme", &staff, &bob, "client_user").await;
    sqlx::query(
        "UPDATE platform.portal_invites SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day'
          WHERE contact_id = $1",
    )
    .bind(&bob)
    .execute(platform.store.pool())
    .await
    .expect("age it");
    let (status, page, handoff) = open_link(&platform, &expiring).await;
    assert_eq!(status, 410);
    assert!(page.contains("expired") && handoff.is_none(), "{page}");
    let late = take(&platform, &expiring, &("x".into(), "x".into())).await;
    assert_eq!(late.status(), 410);
    assert!(set_cookies(&late).iter().all(|c| !c.starts_with("anchor_portal=")));
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_sessions").await, 1);

    // Revoked: a resend withdraws the older link; withdrawing the newer kills it too.
    let first = invite(&platform, "acme", &staff, &bob, "client_user").await;
    let (_, _, first_handoff) = open_link(&platform, &first).await;
    let second = invite(&platform, "acme", &staff, &bob, "client_admin").await;
    let dead = take(&platform, &first, &first_handoff.expect("handoff")).await;
    assert_eq!(dead.status(), 410);
    assert!(dead.text().await.expect("page").contains("withdrew"));
    let id: String = sqlx::query_scalar(
        "SELECT id FROM platform.portal_invites
          WHERE contact_id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(&bob)
    .fetch_one(platform.store.pool())
    .await
    .expect("pending");
    let (_, _, second_handoff) = open_link(&platform, &second).await;
    let withdrawn = client()
        .post(platform.url("/w/acme/admin/portal/revoke"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .form(&[("csrf_token", staff.1.as_str()), ("invite_id", id.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(withdrawn.status(), 303);
    let dead = take(&platform, &second, &second_handoff.expect("handoff")).await;
    assert_eq!(dead.status(), 410);
    assert_eq!(count(&platform, "SELECT count(*) FROM platform.portal_sessions").await, 1);

    // Ending Ann's access ends her session on the next request.
    let ended = client()
        .post(platform.url("/w/acme/admin/portal/revoke"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .form(&[("csrf_token", staff.1.as_str()), ("contact_id", ann.as_str())])
        .send()
        .await
        .expect("end access");
    assert_eq!(ended.status(), 303);
    let home = client().get(platform.url("/w/acme/portal")).header("cookie", portal_cookie(&session_value)).send();
    assert_eq!(home.await.expect("home").status(), 401);

    // Every refusal is in the audit log (aggregated), and a source that keeps trying is slowed down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let refused = count(
            &platform,
            "SELECT coalesce(sum(count), 0)::bigint FROM platform.access_audit WHERE action = 'portal.invite'",
        )
        .await;
        if refused >= 5 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "refusals audited: {refused}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut throttled = None;
    for n in 0..40 {
        let response =
            client().get(platform.url(&format!("/w/acme/portal/invite/nothing-{n}"))).send().await.expect("get");
        if response.status() == 429 {
            throttled = Some(response.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(response.status(), 404);
    }
    assert_eq!(throttled, Some(true), "a source is limited to so many links a minute");
    platform.stop().await;
}

#[tokio::test]
async fn client_roles_see_their_scope_and_portal_sessions_reach_no_staff_page_or_api_route() {
    let platform = Platform::start().await;
    let acme = platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let other = platform.named_workspace("other", "Other Ltd", "oz", Role::MspAdmin).await;
    let ann = contact(&platform, "acme", "mia", "Ann Smith", "ann@acme.example").await;
    let bob = contact(&platform, "acme", "mia", "Bob Jones", "bob@acme.example").await;
    let cat = contact(&platform, "acme", "mia", "Cat Admin", "cat@acme.example").await;
    let oz = contact(&platform, "other", "oz", &format!("{MARKER} Oz"), "oz@other.example").await;
    for (ws, id, subject) in [("acme", &ann, "mia"), ("acme", &bob, "mia"), ("acme", &cat, "mia"), ("other", &oz, "oz")]
    {
        let body = json!({"portal_access": true});
        let response = platform
            .client
            .patch(platform.url(&format!("/api/v1/workspaces/{ws}/contacts/{id}")))
            .bearer_auth(platform.token(subject))
            .header("idempotency-key", format!("access-{id}"))
            .header("prefer", "wait=20")
            .json(&body)
            .send()
            .await
            .expect("access");
        assert_eq!(response.status(), 200);
    }
    let ann_s = portal_session(&platform, &acme, &ann, Role::ClientUser).await;
    let bob_s = portal_session(&platform, &acme, &bob, Role::ClientUser).await;
    let cat_s = portal_session(&platform, &acme, &cat, Role::ClientAdmin).await;
    let oz_s = portal_session(&platform, &other, &oz, Role::ClientUser).await;

    // Each opens a ticket from the portal; they are its contact.
    async fn open(platform: &Platform, ws: &str, who: &(String, String), title: &str) -> String {
        let response = client()
            .post(platform.url(&format!("/w/{ws}/portal/tickets")))
            .header("cookie", portal_cookie(&who.0))
            .form(&[
                ("csrf_token", who.1.as_str()),
                ("idempotency_key", &format!("open-{title}")),
                ("title", title),
                ("description", "It broke this morning."),
                ("priority", "p2"),
            ])
            .send()
            .await
            .expect("open");
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap_or_default());
        let location = response.headers()["location"].to_str().expect("location").to_owned();
        location.split("/tickets/").nth(1).expect("ticket").split('?').next().expect("id").to_owned()
    }
    let ann_ticket = open(&platform, "acme", &ann_s, "Ann cannot print").await;
    let bob_ticket = open(&platform, "acme", &bob_s, "Bob has no VPN").await;
    let oz_ticket = open(&platform, "other", &oz_s, &format!("{MARKER} payroll")).await;
    let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ann_ticket}"), "mia").await;
    assert_eq!(ticket["contact_id"], ann.as_str(), "{ticket}");
    assert_eq!(ticket["created_by"]["issuer"], "urn:anchor:portal");

    // Staff answer Ann in public and note something internal.
    for (body, visibility) in
        [("Have you tried the other tray?", "public"), ("internal: the printer is end of life", "internal")]
    {
        let response = platform
            .post(
                &format!("/api/v1/workspaces/acme/tickets/{ann_ticket}/comments"),
                "mia",
                &json!({"body": body, "visibility": visibility}),
                Some(20),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let get = |who: &(String, String), path: String| {
        let request = client().get(platform.url(&path)).header("cookie", portal_cookie(&who.0));
        async move {
            let response = request.send().await.expect("get");
            (response.status().as_u16(), response.text().await.expect("body"))
        }
    };
    let (status, page) = get(&ann_s, format!("/w/acme/portal/tickets/{ann_ticket}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Have you tried the other tray?") && !page.contains("end of life"), "{page}");
    assert!(page.contains("What we promised") && page.contains("You"), "{page}");

    // A client_user sees only their own tickets; a colleague's is not there (404), nor can they reply on it.
    let (status, page) = get(&ann_s, "/w/acme/portal?show=all".into()).await;
    assert_eq!(status, 200);
    assert!(page.contains("Ann cannot print") && !page.contains("Bob has no VPN"), "{page}");
    assert!(page.contains("needs portal.tickets.company") || page.contains("Needs portal.tickets.company"), "{page}");
    let (status, page) = get(&ann_s, format!("/w/acme/portal/tickets/{bob_ticket}")).await;
    assert_eq!(status, 404, "{page}");
    assert!(!page.contains("VPN"));
    let (status, _) = get(&ann_s, "/w/acme/portal?show=all&whose=company".into()).await;
    assert_eq!(status, 200);
    let reply = |who: &(String, String), ws: &str, ticket: &str, body: &str| {
        let request = client()
            .post(platform.url(&format!("/w/{ws}/portal/tickets/{ticket}/reply")))
            .header("cookie", portal_cookie(&who.0))
            .form(&[
                ("csrf_token", who.1.clone()),
                ("idempotency_key", format!("r-{body}")),
                ("body", body.to_owned()),
            ]);
        async move { request.send().await.expect("reply").status().as_u16() }
    };
    assert_eq!(reply(&ann_s, "acme", &bob_ticket, "sneaky").await, 404);
    let comments = count(&platform, "SELECT count(*) FROM ws_acme.ticket_comments WHERE body = 'sneaky'").await;
    assert_eq!(comments, 0);

    // Ann answers: the MSP owes the next answer.
    assert_eq!(reply(&ann_s, "acme", &ann_ticket, "The other tray works, thanks").await, 303);
    let ticket = platform.get(&format!("/api/v1/workspaces/acme/tickets/{ann_ticket}"), "mia").await;
    assert_eq!(ticket["awaiting"], "us", "{ticket}");

    // A resolution is rated once, by whoever sees the ticket; an open ticket is not rated yet.
    let rate = |who: &(String, String), ticket: &str, score: &str, key: &str| {
        let request = client()
            .post(platform.url(&format!("/w/acme/portal/tickets/{ticket}/rate")))
            .header("cookie", portal_cookie(&who.0))
            .form(&[
                ("csrf_token", who.1.clone()),
                ("idempotency_key", key.to_owned()),
                ("score", score.to_owned()),
                ("comment", "Sorted within the hour".to_owned()),
            ]);
        async move { request.send().await.expect("rate").status().as_u16() }
    };
    assert_eq!(rate(&ann_s, &ann_ticket, "4", "rate-early").await, 409, "not resolved yet");
    transitions(&platform, "acme", &ann_ticket, &["triaged", "in_progress", "resolved"]).await;
    let (_, page) = get(&ann_s, format!("/w/acme/portal/tickets/{ann_ticket}")).await;
    assert!(page.contains("How did we do?"), "{page}");
    assert_eq!(rate(&bob_s, &ann_ticket, "1", "rate-bob").await, 404, "not Bob's to rate");
    assert_eq!(rate(&ann_s, &ann_ticket, "4", "rate-1").await, 303);
    assert_eq!(rate(&ann_s, &ann_ticket, "5", "rate-2").await, 409, "once per resolution");
    let (_, page) = get(&ann_s, format!("/w/acme/portal/tickets/{ann_ticket}")).await;
    assert!(!page.contains("How did we do?") && page.contains("4 of 5"), "{page}");
    // Reopened and resolved again: a new resolution to rate.
    transitions(&platform, "acme", &ann_ticket, &["in_progress", "resolved"]).await;
    assert_eq!(rate(&ann_s, &ann_ticket, "5", "rate-3").await, 303);
    let rated = count(&platform, "SELECT count(*) FROM ws_acme.ticket_ratings").await;
    assert_eq!(rated, 2);
    // The MSP sees the ratings on the ticket's Console page.
    let staff = session(&platform, "mia").await;
    let page = client()
        .get(platform.url(&format!("/w/acme/console/service/tickets/{ann_ticket}")))
        .header("cookie", format!("anchor_session={}", staff.0))
        .send()
        .await
        .expect("console")
        .text()
        .await
        .expect("page");
    assert!(page.contains("Client's rating") && page.contains("4 of 5") && page.contains("5 of 5"), "{page}");

    // A client_admin sees and answers every ticket of the company.
    let (status, page) = get(&cat_s, "/w/acme/portal?show=all".into()).await;
    assert_eq!(status, 200);
    assert!(page.contains("Ann cannot print") && page.contains("Bob has no VPN"), "{page}");
    assert_eq!(reply(&cat_s, "acme", &bob_ticket, "Bob is travelling today").await, 303);

    // Quotes: the company's, for a client_admin to read and decide on; not a client_user's.
    let (quote, sha256) = sent_quote(&platform, "acme", "mia", "New laptops for the office").await;
    let (status, page) = get(&ann_s, "/w/acme/portal/quotes".into()).await;
    assert_eq!(status, 403, "names the permission and the role that has it: {page}");
    assert!(page.contains("portal.quotes.read") && page.contains("client_admin"), "{page}");
    let (status, page) = get(&ann_s, format!("/w/acme/portal/quotes/{quote}")).await;
    assert_eq!((status, page.contains("laptops")), (404, false));
    let (_, page) = get(&ann_s, "/w/acme/portal".into()).await;
    assert!(page.contains("Quotes: view, accept quote") && page.contains("Needs portal.quotes.read"), "{page}");
    let decide = |who: &(String, String), ws: &str, quote: &str, decision: &str, sha: &str| {
        let request = client()
            .post(platform.url(&format!("/w/{ws}/portal/quotes/{quote}/decide")))
            .header("cookie", portal_cookie(&who.0))
            .form(&[
                ("csrf_token", who.1.clone()),
                ("idempotency_key", format!("d-{decision}-{sha}")),
                ("decision", decision.to_owned()),
                ("sha256", sha.to_owned()),
            ]);
        async move { request.send().await.expect("decide").status().as_u16() }
    };
    assert_eq!(decide(&ann_s, "acme", &quote, "accept", &sha256).await, 404);
    let (status, page) = get(&cat_s, "/w/acme/portal/quotes".into()).await;
    assert!(status == 200 && page.contains("New laptops for the office"), "{page}");
    let (status, page) = get(&cat_s, format!("/w/acme/portal/quotes/{quote}")).await;
    assert!(status == 200 && page.contains("Accept quote") && page.contains(&sha256), "{page}");
    assert_eq!(decide(&cat_s, "acme", &quote, "accept", &"0".repeat(64)).await, 409, "another version");
    assert_eq!(decide(&cat_s, "acme", &quote, "accept", &sha256).await, 303);
    let decided = platform.get(&format!("/api/v1/workspaces/acme/quotes/{quote}"), "mia").await;
    assert_eq!(decided["status"], "accepted", "{decided}");
    assert_eq!(decided["decided_by"]["issuer"], "urn:anchor:portal");
    assert_eq!(decided["decided_by"]["subject"], cat.as_str());
    assert_eq!(decided["decided_by"]["name"], "Cat Admin");
    // The acceptance is attested by the execution's signed credential, naming the version.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attested: Option<(Value,)> = sqlx::query_as(
            "SELECT input FROM ws_acme.executions WHERE command = 'portal.quote.accept' AND status = 'succeeded'
                AND evidence_id IS NOT NULL",
        )
        .fetch_optional(platform.store.pool())
        .await
        .expect("execution");
        if let Some((input,)) = attested {
            assert_eq!(input["sha256"], sha256.as_str());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the acceptance is attested");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another workspace's contact cannot reach it.
    assert_eq!(decide(&oz_s, "acme", &quote, "decline", &sha256).await, 404);

    // Invoices: the company's issued ones, with their PDFs, for a client_admin; never a draft.
    let issued = invoice(&platform, "acme", "mia", "Managed services, November", true).await;
    let draft = invoice(&platform, "acme", "mia", "Not yet billed", false).await;
    let (status, page) = get(&ann_s, "/w/acme/portal/invoices".into()).await;
    assert!(status == 403 && page.contains("portal.invoices.read"), "{page}");
    let pdf = |who: &(String, String), ws: &str, id: &str| {
        let request = client()
            .get(platform.url(&format!("/w/{ws}/portal/invoices/{id}/pdf")))
            .header("cookie", portal_cookie(&who.0));
        async move {
            let response = request.send().await.expect("pdf");
            let status = response.status().as_u16();
            let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            (status, kind, response.bytes().await.expect("bytes"))
        }
    };
    assert_eq!(pdf(&ann_s, "acme", &issued).await.0, 404);
    let (status, page) = get(&cat_s, "/w/acme/portal/invoices".into()).await;
    assert!(
        status == 200 && page.contains("INV-") && page.contains(&format!("/portal/invoices/{issued}/pdf")),
        "{page}"
    );
    assert!(!page.contains(&draft), "a draft is not offered: {page}");
    let (status, kind, bytes) = pdf(&cat_s, "acme", &issued).await;
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    assert!(bytes.starts_with(b"%PDF"));
    assert_eq!(pdf(&cat_s, "acme", &draft).await.0, 404);
    assert_eq!(pdf(&oz_s, "acme", &issued).await.0, 404);

    // A contact of one workspace sees nothing of another's.
    for (who, ws, ticket) in [(&ann_s, "other", &oz_ticket), (&oz_s, "acme", &ann_ticket)] {
        for path in [
            format!("/w/{ws}/portal"),
            format!("/w/{ws}/portal/tickets/{ticket}"),
            format!("/w/{ws}/portal/tickets/new"),
        ] {
            let (status, page) = get(who, path.clone()).await;
            assert_eq!(status, 404, "{path}: {page}");
            assert!(!page.contains(MARKER) && !page.contains("Ann cannot print"), "{path}");
        }
        assert_eq!(reply(who, ws, ticket, "across").await, 404);
    }
    // ... and its own workspace's pages with the other's ticket id: 404.
    let (status, page) = get(&ann_s, format!("/w/acme/portal/tickets/{oz_ticket}")).await;
    assert_eq!((status, page.contains(MARKER)), (404, false));

    // A portal administrator manages colleagues' access; a user may not.
    let people = |who: &(String, String), ws: &str, fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf_token", who.1.clone())];
        form.extend(fields);
        let request = client()
            .post(platform.url(&format!("/w/{ws}/portal/people")))
            .header("cookie", portal_cookie(&who.0))
            .form(&form);
        async move {
            let response = request.send().await.expect("people");
            (response.status().as_u16(), response.text().await.expect("body"))
        }
    };
    let (status, page) = get(&ann_s, "/w/acme/portal/people".into()).await;
    assert!(status == 403 && page.contains("portal.users.manage"), "{page}");
    let invite_bob =
        vec![("action", "invite".to_owned()), ("contact_id", bob.clone()), ("role", "client_user".to_owned())];
    assert_eq!(people(&ann_s, "acme", invite_bob.clone()).await.0, 403);
    let (status, page) = get(&cat_s, "/w/acme/portal/people".into()).await;
    assert!(status == 200 && page.contains("Ann Smith") && page.contains("Bob Jones"), "{page}");
    let (status, page) = people(&cat_s, "acme", invite_bob.clone()).await;
    assert!(status == 200 && page.contains("/w/acme/portal/invite/"), "the link, once: {page}");
    let by: String = sqlx::query_scalar(
        "SELECT invited_by_name FROM platform.portal_invites WHERE contact_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&bob)
    .fetch_one(platform.store.pool())
    .await
    .expect("invite");
    assert_eq!(by, "Cat Admin");
    let (status, page) = people(&cat_s, "acme", vec![("action", "end".to_owned()), ("contact_id", cat.clone())]).await;
    assert!(status == 422 && page.contains("cannot end your own access"), "{page}");
    assert_eq!(people(&oz_s, "acme", vec![("action", "end".to_owned()), ("contact_id", bob.clone())]).await.0, 404);
    assert_eq!(people(&cat_s, "acme", vec![("action", "end".to_owned()), ("contact_id", bob.clone())]).await.0, 303);
    assert_eq!(get(&bob_s, "/w/acme/portal".into()).await.0, 401, "Bob is signed out at once");

    // A staff session is no portal session.
    let staff = session(&platform, "mia").await;
    let staff_cookie = format!("anchor_session={}", staff.0);
    for path in ["/w/acme/portal".to_owned(), format!("/w/acme/portal/tickets/{ann_ticket}")] {
        let response = client().get(platform.url(&path)).header("cookie", &staff_cookie).send().await.expect("get");
        assert_eq!(response.status(), 401, "{path}");
    }
    let response = client()
        .post(platform.url("/w/acme/portal/tickets"))
        .header("cookie", &staff_cookie)
        .form(&[("csrf_token", staff.1.as_str()), ("title", "as staff"), ("description", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);

    // A portal cookie opens no staff page: every route of the web router but the portal's and the public ones.
    let cookie = portal_cookie(&cat_s.0);
    let mut cases = 0;
    let mut failures = Vec::new();
    for line in ROUTER.lines() {
        let Some(rest) = line.trim().strip_prefix(".route(\"") else { continue };
        let Some((path, handler)) = rest.split_once("\", ") else { continue };
        let method = handler.split_once('(').map_or("get", |(m, _)| m);
        if path.starts_with("/w/{ws}/portal")
            || ["/", "/signin", "/static/{file}", "/auth/oidc/start", "/auth/oidc/callback"].contains(&path)
        {
            continue;
        }
        let url = platform.url(&path.replace("{ws}", "acme").replace("{id}", &ann_ticket).replace("{key}", "k"));
        let request = if method == "get" {
            client().get(&url)
        } else {
            client().post(&url).form(&[("csrf_token", cat_s.1.as_str()), ("command", "ticket.comment")])
        };
        let response = request.header("cookie", &cookie).send().await.expect("request");
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
        let body = response.text().await.unwrap_or_default();
        cases += 1;
        // A bare module address redirects to its first tab whoever asks (it tells nothing).
        let bare = ["/w/{ws}/admin", "/w/{ws}/console"].contains(&path)
            && location.starts_with(&format!("{}/", path.replace("{ws}", "acme")));
        let refused = matches!(status, 401 | 403 | 404) || (status == 303 && (location == "/" || bare));
        if !refused || body.contains("Ann cannot print") || body.contains("Bob has no VPN") {
            failures.push(format!("{method} {path}: {status} {location}"));
        }
    }
    assert!(cases > 40, "the router's routes were read: {cases}");
    assert!(failures.is_empty(), "a portal cookie opened staff pages:\n{}", failures.join("\n"));

    // ... and no API route: every operation of the OpenAPI document answers 401.
    let document = anchor_gateway::openapi();
    let mut api_cases = 0;
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            // Operations for people and their tokens; the public ones (key
            // discovery, agents' enrollment, signed inbound deliveries) name no bearer.
            let secured = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) || !secured {
                continue;
            }
            let concrete = path
                .replace("{ws}", "acme")
                .replace("{id}", &ann_ticket)
                .split('{')
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_owned()
                    } else {
                        format!("x{}", part.split_once('}').map_or("", |(_, rest)| rest))
                    }
                })
                .collect::<String>();
            let request = client().request(method.to_uppercase().parse().expect("method"), platform.url(&concrete));
            let response = request
                .header("cookie", &cookie)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("api");
            api_cases += 1;
            let status = response.status().as_u16();
            if status != 401 {
                failures.push(format!("{method} {concrete}: {status}"));
            }
        }
    }
    assert!(api_cases > 60, "the API's operations were read: {api_cases}");
    assert!(failures.is_empty(), "a portal cookie reached the API:\n{}", failures.join("\n"));
    platform.stop().await;
}

#[tokio::test]
async fn a_contact_takes_up_the_invitation_opens_a_ticket_replies_and_accepts_a_quote_in_chromium() {
    let platform = Platform::start().await;
    let acme = platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let ann = contact(&platform, "acme", "mia", "Ann Smith", "ann@acme.example").await;
    let ben = contact(&platform, "acme", "mia", "Ben Brown", "ben@acme.example").await;
    let dan = contact(&platform, "acme", "mia", "Dan Young", "dan@acme.example").await;
    let (first, _) = sent_quote(&platform, "acme", "mia", "New laptops for the office").await;
    let (second, _) = sent_quote(&platform, "acme", "mia", "Backup appliance").await;
    invoice(&platform, "acme", "mia", "Managed services, November", true).await;
    // A resolved ticket each (opened for them by the MSP), to rate.
    let mut resolved = Vec::new();
    for (who, title) in [(&ann, "Password reset for Ann"), (&ben, "Password reset for Ben")] {
        let body = json!({"title": title, "priority": "p3", "contact_id": who});
        let opened: Value = platform
            .post("/api/v1/workspaces/acme/tickets", "mia", &body, Some(20))
            .await
            .json()
            .await
            .expect("ticket");
        let id = opened["result"]["ticket_id"].as_str().expect("ticket").to_owned();
        transitions(&platform, "acme", &id, &["triaged", "in_progress", "resolved"]).await;
        resolved.push(id);
    }
    let base = platform.url("");
    // Two portal administrators, one per width: each link works once.
    let desktop = invite(&platform, "acme", &staff, &ann, "client_admin").await;
    let phone = invite(&platform, "acme", &staff, &ben, "client_admin").await;
    let continues = |link: &str, name: &str, width: &str| {
        json!({"fits": true, "name": "portal-invite", "path": link, "only": width,
               "text": ["All of Acme Ltd's tickets", "You are viewing Acme Ltd's data", name],
               "steps": [{"click": "form button[type=submit]", "navigates": true}, {"wait_url": "/w/acme/portal"},
                         {"wait_text": "Open a ticket"}]})
    };
    let accepts = |quote: &str, width: &str| {
        json!({"fits": true, "name": "portal-quote", "path": format!("/w/acme/portal/quotes/{quote}"), "only": width,
               "steps": [{"click": "button[value=accept]", "navigates": true}, {"wait_text": "you accepted this quote"}],
               "text": ["What is offered", "Accepted by"]})
    };
    let rates = |ticket: &str, width: &str| {
        json!({"fits": true, "name": "portal-rate", "path": format!("/w/acme/portal/tickets/{ticket}"), "only": width,
               "steps": [{"click": "input[name=score][value='4']"}, {"fill": "#rate-comment", "value": "Quick, thanks"},
                         {"click": "#rate button[type=submit]", "navigates": true}, {"wait_text": "Thank you for your rating"}],
               "text": ["Resolved", "rated 4 of 5"]})
    };
    let report = walk_as(
        &base,
        json!([]),
        json!([
            continues(&desktop, "Ann Smith", "desktop"),
            continues(&phone, "Ben Brown", "phone"),
            {"fits": true, "name": "portal-link-used", "path": desktop, "only": "phone", "status": 410,
             "text": ["This link was used already", "Ask mia"]},
            {"fits": true, "name": "portal-open-ticket", "path": "/w/acme/portal/tickets/new",
             "steps": [{"fill": "#title", "value": "The printer says offline"},
                       {"fill": "#description", "value": "Since this morning, on floor 2."},
                       {"select": "#priority", "value": "p2"},
                       {"click": "form.stack button[type=submit]", "navigates": true},
                       {"wait_text": "Your ticket is open"},
                       {"fill": "#body", "value": "It is the HP on floor 2, by the window."},
                       {"click": "form.composer button[type=submit]", "navigates": true},
                       {"wait_text": "Your reply was added"}],
             "text": ["The printer says offline", "What we promised", "It is the HP on floor 2"]},
            {"fits": true, "name": "portal-tickets", "path": "/w/acme/portal?show=all&whose=company",
             "text": ["All of Acme Ltd's tickets", "The printer says offline"]},
            {"fits": true, "name": "portal-quotes", "path": "/w/acme/portal/quotes",
             "text": ["Quotes", "New laptops for the office", "Backup appliance"]},
            accepts(&first, "desktop"),
            accepts(&second, "phone"),
            rates(&resolved[0], "desktop"),
            rates(&resolved[1], "phone"),
            {"fits": true, "name": "portal-people", "path": "/w/acme/portal/people",
             "text": ["People", "Invite a colleague", "Who has access", "Ann Smith", "Ben Brown"]},
            {"fits": true, "name": "portal-invoices", "path": "/w/acme/portal/invoices",
             "text": ["Invoices", "INV-", "Download"],
             "steps": [{"download": "a[download]", "save": "portal-invoice.pdf", "starts": "%PDF"}]},
        ]),
    )
    .await;
    assert_eq!(report.as_array().map(Vec::len), Some(17), "{report}");
    assert_eq!(report[0]["url"], format!("{base}/w/acme/portal"), "{report}");
    // Both widths opened a ticket, replied and accepted a quote, through the commands.
    let opened = count(
        &platform,
        "SELECT count(*) FROM ws_acme.tickets WHERE title = 'The printer says offline' AND awaiting = 'us'",
    )
    .await;
    assert_eq!(opened, 2);
    for (quote, name) in [(&first, "Ann Smith"), (&second, "Ben Brown")] {
        let decided = platform.get(&format!("/api/v1/workspaces/acme/quotes/{quote}"), "mia").await;
        assert_eq!(
            (decided["status"].as_str(), decided["decided_by"]["name"].as_str()),
            (Some("accepted"), Some(name))
        );
    }
    // A client_user: quotes are shown unavailable, with why and whom to ask.
    let response = platform
        .client
        .patch(platform.url(&format!("/api/v1/workspaces/acme/contacts/{dan}")))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", format!("access-{dan}"))
        .header("prefer", "wait=20")
        .json(&json!({"portal_access": true}))
        .send()
        .await
        .expect("access");
    assert_eq!(response.status(), 200);
    let (cookie, _) = portal_session(&platform, &acme, &dan, Role::ClientUser).await;
    walk_as(
        &base,
        json!([{"name": "anchor_portal", "value": cookie}]),
        json!([
            {"fits": true, "name": "portal-client-user", "path": "/w/acme/portal",
             "text": ["My tickets", "Quotes: view, accept quote", "Needs portal.quotes.read; your role: client_user",
                      "Invoices: view, download PDF", "People: invite colleagues"]},
            {"fits": true, "name": "portal-forbidden", "path": "/w/acme/portal/quotes", "status": 403,
             "text": ["Not allowed", "portal.quotes.read", "client_admin"]},
        ]),
    )
    .await;
    // The MSP's view of who has access.
    walk(
        &base,
        &staff.0,
        json!([{"fits": true, "name": "admin-portal-access", "path": "/w/acme/admin/portal",
                "text": ["Portal access", "Invite a contact", "Who has access", "Ann Smith", "used"]}]),
    )
    .await;
    platform.stop().await;
}
