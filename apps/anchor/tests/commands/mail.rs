//! The portal's e-mail, through a real SMTP server (Python's aiosmtpd):
//! an invitation, the MSP's replies, a resolution asking for a rating, a
//! quote and an invoice sent. Links carry a one-time token and nothing
//! else; no token is kept anywhere but as its digest; a refused address
//! fails for good and a deferred one is retried; with no mail server
//! configured nothing is queued at all.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anchor_domain::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    Options, Platform,
    browser::{session, walk, walk_as},
};

/// aiosmtpd on a free port (tests/receivers/smtp_server.py); stopped when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    out: tempfile::NamedTempFile,
}

impl SmtpServer {
    fn start() -> Self {
        let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
        let out = tempfile::NamedTempFile::new().expect("out");
        let mut child = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receivers/smtp_server.py"))
            .arg(out.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} with aiosmtpd is needed (.ci/run installs it): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP server did not start: {line:?}"));
        Self { child, port, out }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.path())
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    /// Waits until `n` messages have arrived; all of them.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} messages after 20 s: {:#?}", self.received().len(), self.received());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The plain-text part, with the line ends the transport gave it made plain.
fn text(message: &Value) -> String {
    message["text"].as_str().expect("a text part").replace("\r\n", "\n")
}

/// The one portal link in a message: its path and its token.
fn link_in(message: &Value, base: &str, kind: &str) -> (String, String) {
    let text = text(message);
    let prefix = format!("{base}/w/acme/portal/{kind}/");
    let urls: Vec<&str> = text.split_whitespace().filter(|w| w.starts_with("http")).collect();
    assert_eq!(urls.len(), 1, "one link and nothing else that looks like one: {text}");
    let token = urls[0].strip_prefix(&prefix).unwrap_or_else(|| panic!("{} is not a {kind} link", urls[0]));
    assert!(token.len() >= 43 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert!(message["html"].as_str().expect("html").contains(urls[0]), "the HTML part has the same link");
    (urls[0].strip_prefix(base).expect("path").to_owned(), token.to_owned())
}

async fn contact(platform: &Platform, name: &str, email: &str, receives_invoices: bool) -> String {
    let body = json!({"name": name, "email": email, "receives_invoices": receives_invoices});
    let done: Value =
        platform.post("/api/v1/workspaces/acme/contacts", "mia", &body, Some(20)).await.json().await.expect("json");
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"]["contact_id"].as_str().expect("contact").to_owned()
}

async fn ticket(platform: &Platform, title: &str, contact: &str) -> String {
    let body = json!({"title": title, "priority": "p3", "contact_id": contact});
    let done: Value =
        platform.post("/api/v1/workspaces/acme/tickets", "mia", &body, Some(20)).await.json().await.expect("json");
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"]["ticket_id"].as_str().expect("ticket").to_owned()
}

async fn command(platform: &Platform, path: &str, body: Value) {
    let done: Value = platform
        .post(&format!("/api/v1/workspaces/acme/{path}"), "mia", &body, Some(20))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(done["status"], "succeeded", "{path}: {done}");
}

async fn comment(platform: &Platform, ticket: &str, body: &str, visibility: &str) {
    command(platform, &format!("tickets/{ticket}/comments"), json!({"body": body, "visibility": visibility})).await;
}

/// GETs a link's page (which must change nothing), then takes it up with
/// the browser binding it set: the response to the POST.
async fn follow(platform: &Platform, path: &str) -> (String, reqwest::Response) {
    let page = client().get(platform.url(path)).send().await.expect("get");
    assert_eq!(page.status(), 200, "{path}");
    let binding = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("anchor_portal_handoff="))
        .map(|c| c.split(';').next().expect("value").to_owned())
        .expect("the page binds the browser");
    let body = page.text().await.expect("page");
    let response = client()
        .post(platform.url(path))
        .header("cookie", format!("anchor_portal_handoff={binding}"))
        .form(&[("handoff", binding.as_str())])
        .send()
        .await
        .expect("post");
    (body, response)
}

fn portal_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("anchor_portal="))
        .map(|c| c.split(';').next().expect("value").to_owned())
        .expect("a portal session")
}

async fn count(platform: &Platform, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(platform.store.pool()).await.expect("count")
}

/// Every text value in the platform and workspace schemas, and every
/// digest: the tokens the e-mails carried must be in none of them, their
/// digests only where they belong.
async fn stored_text(platform: &Platform) -> String {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
          WHERE (table_schema = 'platform' OR table_schema LIKE 'ws\\_%') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(platform.store.pool())
    .await
    .expect("tables");
    let mut all = String::new();
    for (schema, table) in tables {
        let sql = format!("SELECT coalesce(string_agg(t::text, '\n'), '') FROM \"{schema}\".\"{table}\" t");
        let rows: String =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(platform.store.pool()).await.expect("rows");
        all.push_str(&rows);
    }
    all
}

#[tokio::test]
async fn the_portals_email_goes_through_a_real_smtp_server_with_one_time_links_and_nothing_else() {
    let smtp = SmtpServer::start();
    let mail = anchor_notify::MailConfig {
        url: format!("smtp://127.0.0.1:{}", smtp.port).into(),
        from: "Managed IT Desk <desk@msp.example>".to_owned(),
        public_url: String::new(),
        timeout: Duration::from_secs(10),
    };
    let platform = Platform::start_with(Options { mail: Some(mail), ..Options::default() }).await;
    let base = platform.url("");
    let acme = platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let ann = contact(&platform, "Ann Smith", "ann@acme.example", false).await;
    let mut tokens = Vec::new();

    // 1. An invitation by e-mail: the page does not show the link; the
    // e-mail carries it, and it works once.
    let page = client()
        .post(platform.url("/w/acme/admin/portal/invites"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .form(&[
            ("csrf_token", staff.1.as_str()),
            ("contact_id", ann.as_str()),
            ("role", "client_user"),
            ("delivery", "email"),
        ])
        .send()
        .await
        .expect("invite");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(page.contains("Invitation on its way to Ann Smith") && !page.contains("/portal/invite/"), "{page}");
    let received = smtp.wait_for(1).await;
    let invitation = &received[0];
    assert_eq!(invitation["rcpt_tos"], json!(["ann@acme.example"]));
    assert_eq!(invitation["from"], "Managed IT Desk <desk@msp.example>");
    assert_eq!(invitation["subject"], "Your invitation to Acme Ltd's client portal");
    assert!(invitation["message_id"].as_str().expect("id").ends_with("@msp.example>"));
    assert!(text(invitation).contains("mia invited you to Acme Ltd's client portal as user."), "{}", text(invitation));
    let (path, token) = link_in(invitation, &base, "invite");
    tokens.push(token);
    let (shown, taken) = follow(&platform, &path).await;
    assert!(shown.contains("Continue as Ann Smith"));
    assert_eq!(taken.status(), 303);
    assert_eq!(taken.headers()["location"], "/w/acme/portal");
    let (again, _) = follow_dead(&platform, &path).await;
    assert_eq!(again, 410, "an invitation link works once");
    let admin = client()
        .get(platform.url("/w/acme/admin/portal"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .send()
        .await
        .expect("admin")
        .text()
        .await
        .expect("page");
    assert!(admin.contains("e-mailed "), "the invitation's e-mail shows as sent: {admin}");

    // 2. The MSP's public reply reaches Ann with a sign-in link to the
    // ticket; an internal note reaches nobody.
    let printer = ticket(&platform, "The printer says offline", &ann).await;
    comment(&platform, &printer, "Checked the logs; nothing for the client yet.", "internal").await;
    comment(&platform, &printer, "We restarted the print spooler.\n\nCould you try again?", "public").await;
    let received = smtp.wait_for(2).await;
    let reply = &received[1];
    assert_eq!(reply["subject"], format!("Re: The printer says offline [{printer}]"));
    let body = text(reply);
    assert!(body.contains("> We restarted the print spooler.\n>\n> Could you try again?\n"), "{body}");
    assert!(!body.contains("Checked the logs"), "an internal note never leaves");
    let (path, token) = link_in(reply, &base, "link");
    tokens.push(token);
    let (shown, taken) = follow(&platform, &path).await;
    assert!(shown.contains("Continue as Ann Smith"), "{shown}");
    assert_eq!(taken.status(), 303);
    assert_eq!(taken.headers()["location"], format!("/w/acme/portal/tickets/{printer}").as_str());
    let signed_in = portal_cookie(&taken);
    let ticket_page = client()
        .get(platform.url(&format!("/w/acme/portal/tickets/{printer}")))
        .header("cookie", format!("anchor_portal={signed_in}"))
        .send()
        .await
        .expect("ticket");
    assert_eq!(ticket_page.status(), 200);
    assert_eq!(follow_dead(&platform, &path).await.0, 410, "a sign-in link works once");

    // Ann's own reply through the portal is not mailed back to her.
    let csrf: String = sqlx::query_scalar("SELECT csrf_token FROM platform.portal_sessions WHERE token_hash = $1")
        .bind(Sha256::digest(signed_in.as_bytes()).to_vec())
        .fetch_one(platform.store.pool())
        .await
        .expect("csrf");
    let answered = client()
        .post(platform.url(&format!("/w/acme/portal/tickets/{printer}/reply")))
        .header("cookie", format!("anchor_portal={signed_in}"))
        .header("origin", &base)
        .form(&[("csrf_token", csrf.as_str()), ("idempotency_key", "ann-reply-1"), ("body", "Works again, thanks!")])
        .send()
        .await
        .expect("reply");
    assert!(answered.status().is_redirection() || answered.status().is_success(), "{}", answered.status());

    // 3. Resolved: the e-mail asks for a rating and leads to the form.
    for to in ["triaged", "in_progress", "resolved"] {
        command(&platform, &format!("tickets/{printer}/transitions"), json!({"to": to})).await;
    }
    let received = smtp.wait_for(3).await;
    let resolved = &received[2];
    assert_eq!(resolved["subject"], format!("Resolved: The printer says offline [{printer}]"));
    assert!(text(resolved).contains("Rate the resolution:"));
    let (path, token) = link_in(resolved, &base, "link");
    tokens.push(token);
    let (_, taken) = follow(&platform, &path).await;
    assert_eq!(taken.headers()["location"], format!("/w/acme/portal/tickets/{printer}#rate").as_str());

    // 4. A quote and an invoice go to the billing contact; without portal
    // access, the e-mails carry no link at all.
    contact(&platform, "Bo Billing", "bo@acme.example", true).await;
    let (quote, _) = crate::portal::sent_quote(&platform, "acme", "mia", "Three new laptops").await;
    let received = smtp.wait_for(4).await;
    let offer = &received[3];
    assert_eq!(offer["rcpt_tos"], json!(["bo@acme.example"]));
    assert!(offer["subject"].as_str().expect("subject").ends_with(": Three new laptops"), "{offer}");
    assert!(text(offer).contains("for 3637.83 EUR") && !text(offer).contains("http"), "{}", text(offer));
    let invoice = crate::portal::invoice(&platform, "acme", "mia", "Monthly support", true).await;
    command(&platform, &format!("invoices/{invoice}/send"), json!({})).await;
    let received = smtp.wait_for(5).await;
    let bill = &received[4];
    assert!(bill["subject"].as_str().expect("subject").starts_with("Invoice INV-"), "{bill}");
    assert!(text(bill).contains("for 297.50 EUR, due on "), "{}", text(bill));
    let _ = quote;

    // 5. A mailbox refused for good: the e-mail fails once, visibly, and
    // is not retried; a deferred one is sent on the next try.
    let nobody = contact(&platform, "No Body", "bounce@acme.example", false).await;
    let later = contact(&platform, "Lee Later", "later@acme.example", false).await;
    let lost = ticket(&platform, "Mailbox full", &nobody).await;
    comment(&platform, &lost, "We need your password reset confirmed.", "public").await;
    let slow = ticket(&platform, "Slow laptop", &later).await;
    comment(&platform, &slow, "We ordered more memory.", "public").await;
    let received = smtp.wait_for(6).await;
    assert_eq!(received[5]["rcpt_tos"], json!(["later@acme.example"]), "sent after a 451");
    let failed = count(
        &platform,
        &format!("SELECT count(*) FROM ws_acme.notifications WHERE about = '{lost}' AND state = 'failed' AND last_error LIKE '%550%'"),
    )
    .await;
    assert_eq!(failed, 1, "the 550 is recorded and final");
    let dead =
        count(&platform, "SELECT count(*) FROM platform.outbox_events WHERE topic = 'mail.send' AND state = 'failed'")
            .await;
    assert_eq!(dead, 1, "the refused e-mail is the one dead letter");
    let console = client()
        .get(platform.url(&format!("/w/acme/console/service/tickets/{lost}")))
        .header("cookie", format!("anchor_session={}", staff.0))
        .send()
        .await
        .expect("console")
        .text()
        .await
        .expect("page");
    assert!(console.contains("E-mail to the client") && console.contains("not sent"), "{console}");

    // 6. A link sent before Ann's access ended does not sign her in.
    comment(&platform, &printer, "One more thing: the toner is low.", "public").await;
    let received = smtp.wait_for(7).await;
    let (path, token) = link_in(&received[6], &base, "link");
    tokens.push(token);
    // The link's page, as the contact sees it (reading it changes nothing).
    walk_as(
        &base,
        json!([]),
        json!([{"fits": true, "name": "portal-sign-in-link", "path": path,
                "text": ["Hello, Ann Smith", "signs you in to Acme Ltd's client portal", "Continue as Ann Smith"]}]),
    )
    .await;
    let ended = platform
        .store
        .revoke_portal_access(&acme, ann.parse().expect("contact"), &anchor_store::access::AuditContext::default())
        .await
        .expect("revoke");
    assert!(ended);
    let (status, page) = follow_dead(&platform, &path).await;
    assert_eq!(status, 410);
    assert!(page.contains("Your portal access has ended"), "{page}");
    // What the MSP sees of the e-mail, and the link's page once access ended.
    walk(
        &base,
        &staff.0,
        json!([
            {"fits": true, "name": "admin-portal-access-mail", "path": "/w/acme/admin/portal",
             "text": ["By e-mail to the contact", "e-mailed "]},
            {"name": "console-ticket-mail-failed", "path": format!("/w/acme/console/service/tickets/{lost}"),
             "text": ["E-mail to the client", "not sent", "550"]},
            {"fits": true, "name": "portal-link-ended", "path": path, "status": 410,
             "text": ["Your portal access has ended", "Acme Ltd's portal"]},
        ]),
    )
    .await;

    // No token is stored anywhere; its digest is, where it belongs.
    let stored = stored_text(&platform).await;
    for token in &tokens {
        assert!(!stored.contains(token.as_str()), "a token the e-mails carried is stored in the clear");
    }
    let digests = count(
        &platform,
        "SELECT (SELECT count(*) FROM platform.portal_links) + (SELECT count(*) FROM platform.portal_invites)",
    )
    .await;
    assert!(digests >= 4, "{digests}");
    let sent = count(&platform, "SELECT count(*) FROM ws_acme.notifications WHERE state = 'sent'").await;
    assert_eq!(sent, 7, "each e-mail once");

    // The API invites by e-mail by default when a mail server is configured.
    let cy = contact_with_access(&platform, "Cy Young", "cy@acme.example").await;
    let made = invite_by_api(&platform, json!({"contact_id": cy, "role": "client_admin"})).await;
    assert_eq!(
        (made.0, made.1["delivery"].as_str(), made.1["link"].is_null()),
        (201, Some("email"), true),
        "{}",
        made.1
    );
    let received = smtp.wait_for(8).await;
    assert_eq!(received[7]["rcpt_tos"], json!(["cy@acme.example"]));
    assert!(text(&received[7]).contains("as portal administrator"), "{}", text(&received[7]));
    let (path, _) = link_in(&received[7], &base, "invite");

    // Cy, a portal administrator now, invites a colleague from People: by e-mail too.
    let (_, taken) = follow(&platform, &path).await;
    let cy_session = portal_cookie(&taken);
    let csrf: String = sqlx::query_scalar("SELECT csrf_token FROM platform.portal_sessions WHERE token_hash = $1")
        .bind(Sha256::digest(cy_session.as_bytes()).to_vec())
        .fetch_one(platform.store.pool())
        .await
        .expect("csrf");
    let di = contact_with_access(&platform, "Di Evans", "di@acme.example").await;
    let page = client()
        .post(platform.url("/w/acme/portal/people"))
        .header("cookie", format!("anchor_portal={cy_session}"))
        .header("origin", &base)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "invite"),
            ("contact_id", di.as_str()),
            ("role", "client_user"),
        ])
        .send()
        .await
        .expect("invite")
        .text()
        .await
        .expect("page");
    assert!(page.contains("Invitation e-mailed to Di Evans") && !page.contains("/portal/invite/"), "{page}");
    let received = smtp.wait_for(9).await;
    assert_eq!(received[8]["rcpt_tos"], json!(["di@acme.example"]));
    assert!(text(&received[8]).contains("Cy Young invited you"), "{}", text(&received[8]));
}

async fn contact_with_access(platform: &Platform, name: &str, email: &str) -> String {
    let body = json!({"name": name, "email": email, "portal_access": true});
    let done: Value =
        platform.post("/api/v1/workspaces/acme/contacts", "mia", &body, Some(20)).await.json().await.expect("json");
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"]["contact_id"].as_str().expect("contact").to_owned()
}

async fn invite_by_api(platform: &Platform, body: Value) -> (u16, Value) {
    let response = platform.post("/api/v1/workspaces/acme/portal/invitations", "mia", &body, None).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Opens a link that should be dead: the GET's status and page; a POST
/// signs nobody in either.
async fn follow_dead(platform: &Platform, path: &str) -> (u16, String) {
    let page = client().get(platform.url(path)).send().await.expect("get");
    let status = page.status().as_u16();
    let body = page.text().await.expect("page");
    let post = client().post(platform.url(path)).form(&[("handoff", "x")]).send().await.expect("post");
    assert!(
        post.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap_or("").starts_with("anchor_portal="))
    );
    (status, body)
}

#[tokio::test]
async fn with_no_mail_server_nothing_is_queued_and_invitations_are_copied_from_the_page() {
    let platform = Platform::start().await;
    platform.named_workspace("acme", "Acme Ltd", "mia", Role::MspAdmin).await;
    let staff = session(&platform, "mia").await;
    let ann = contact(&platform, "Ann Smith", "ann@acme.example", true).await;
    let printer = ticket(&platform, "The printer says offline", &ann).await;
    comment(&platform, &printer, "We restarted the print spooler.", "public").await;
    // Every published event went through the fan-out.
    for _ in 0..200 {
        let pending = count(
            &platform,
            "SELECT count(*) FROM platform.outbox_events WHERE topic = 'event.publish' AND state <> 'delivered'",
        )
        .await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&platform, "SELECT count(*) FROM ws_acme.notifications").await, 0);
    let form = client()
        .get(platform.url("/w/acme/admin/portal"))
        .header("cookie", format!("anchor_session={}", staff.0))
        .send()
        .await
        .expect("admin")
        .text()
        .await
        .expect("page");
    assert!(form.contains("E-mail is off on this installation") && !form.contains("name=\"delivery\""), "{form}");

    // The API: without a mail server the link comes back, once.
    let (status, refused) = invite_by_api(&platform, json!({"contact_id": ann, "role": "client_user"})).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("portal_access_off")), "{refused}");
    let cy = contact_with_access(&platform, "Cy Young", "cy@acme.example").await;
    let body = json!({"contact_id": cy, "role": "client_user", "delivery": "email"});
    let (status, refused) = invite_by_api(&platform, body).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("mail_off")), "{refused}");
    let (status, refused) = invite_by_api(&platform, json!({"contact_id": cy, "role": "msp_admin"})).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("invalid_role")), "{refused}");
    let (status, made) = invite_by_api(&platform, json!({"contact_id": cy, "role": "client_user"})).await;
    assert_eq!((status, made["delivery"].as_str()), (201, Some("link")), "{made}");
    let link = made["link"].as_str().expect("the link, once");
    let invitation = made["invitation"]["id"].as_str().expect("id").to_owned();
    assert!(link.starts_with(&platform.url("/w/acme/portal/invite/")), "{link}");
    let listed = platform.get("/api/v1/workspaces/acme/portal/invitations", "mia").await;
    assert_eq!(listed["items"][0]["id"], invitation.as_str());
    assert!(!listed.to_string().contains(link.rsplit('/').next().expect("token")), "a listing never shows the link");
    let path = format!("/api/v1/workspaces/acme/portal/invitations/{invitation}");
    let withdrawn = platform.delete(&path, "mia").await;
    assert_eq!(withdrawn.status(), 204);
    assert_eq!(platform.delete(&path, "mia").await.status(), 404, "withdrawn already");
    let gone = client().get(link).send().await.expect("get");
    assert_eq!(gone.status(), 410, "a withdrawn link is dead");

    // Access taken up, listed, ended.
    let (_, made) = invite_by_api(&platform, json!({"contact_id": cy, "role": "client_admin"})).await;
    let path = made["link"].as_str().expect("link").strip_prefix(&platform.url("")).expect("path").to_owned();
    let (_, taken) = follow(&platform, &path).await;
    assert_eq!(taken.status(), 303);
    let members = platform.get("/api/v1/workspaces/acme/portal/members", "mia").await;
    assert_eq!(members["items"][0]["contact_id"], cy.as_str());
    assert_eq!(members["items"][0]["role"], "client_admin");
    let path = format!("/api/v1/workspaces/acme/portal/members/{cy}");
    assert_eq!(platform.delete(&path, "mia").await.status(), 204);
    assert_eq!(platform.delete(&path, "mia").await.status(), 404, "ended already");
    let members = platform.get("/api/v1/workspaces/acme/portal/members", "mia").await;
    assert_eq!(members["items"], json!([]));
}
