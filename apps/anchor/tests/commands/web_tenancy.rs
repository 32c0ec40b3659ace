//! The web app's cross-tenant matrix: every `/w/{ws}/...` route of the web
//! app (read from its router, so a new route is covered or this test fails),
//! called by a member of one workspace against another workspace, as a whole
//! page and as an htmx fragment, and with the other workspace's object ids
//! inside their own. Nothing may succeed, nothing of the other workspace may
//! show, and its data stays as it was.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{Platform, pages::session};

/// Everything the other workspace holds carries this marker.
const MARKER: &str = "foreignsecret";

/// The web router's source: the routes it mounts.
const ROUTER: &str = include_str!("../../../web/src/lib.rs");

/// `(method, path)` of every workspace route the router mounts.
fn mounted() -> Vec<(String, String)> {
    ROUTER
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(".route(\"")?;
            let (path, handler) = rest.split_once("\", ")?;
            let method = handler.split_once('(')?.0;
            path.starts_with("/w/{ws}").then(|| (method.to_uppercase(), path.to_owned()))
        })
        .collect()
}

/// A form for each workspace POST route, naming the other workspace's objects where it takes one.
fn form(path: &str, csrf: &str, ids: &Ids) -> Option<Vec<(&'static str, String)>> {
    let mut fields = vec![("csrf_token", csrf.to_owned()), ("idempotency_key", format!("k-{path}"))];
    match path {
        "/w/{ws}/commands" => {
            fields.push(("command", "ticket.comment".into()));
            fields.push(("args", json!({"ticket_id": ids.ticket, "body": "hi"}).to_string()));
        }
        "/w/{ws}/console/service/act" => {
            fields.push(("command", "ticket.comment".into()));
            fields.push(("ticket_id", ids.ticket.clone()));
            fields.push(("body", "Written from the wrong workspace".into()));
            fields.push(("visibility", "public".into()));
        }
        "/w/{ws}/console/service/bulk" => {
            fields.push(("action", "assign_me".into()));
            fields.push(("ticket", ids.ticket.clone()));
        }
        "/w/{ws}/console/service/views" => {
            fields.push(("name", "Mine".into()));
            fields.push(("query", "status=open".into()));
        }
        "/w/{ws}/console/service/views/delete" => fields.push(("view_id", ids.view.clone())),
        "/w/{ws}/console/cmdb/act" => {
            fields.push(("command", "asset.tag".into()));
            fields.push(("asset_id", ids.asset.clone()));
            fields.push(("add", "taken".into()));
        }
        "/w/{ws}/console/cmdb/bulk" => {
            fields.push(("action", "tag".into()));
            fields.push(("tag", "taken".into()));
            fields.push(("asset", ids.asset.clone()));
        }
        "/w/{ws}/ops/act" => {
            fields.push(("action", "dismiss".into()));
            fields.push(("id", ids.execution.clone()));
        }
        "/w/{ws}/ops/alerts/{id}" => fields.push(("action", "acknowledge".into())),
        "/w/{ws}/admin/service/policies" => {
            fields.push(("id", ids.policy.clone()));
            fields.push(("name", "Taken over".into()));
            fields.push(("calendar_id", "cal_00000000000000000000000001".into()));
            fields.push(("p1_resolution", "60".into()));
        }
        "/w/{ws}/admin/service/queues" => {
            fields.push(("id", ids.queue.clone()));
            fields.push(("name", "Taken over".into()));
        }
        "/w/{ws}/admin/service/calendars" => {
            fields.push(("name", "Taken over".into()));
            fields.push(("time_zone", "UTC".into()));
        }
        "/w/{ws}/console/financials/act" => {
            fields.push(("command", "invoice.finalize".into()));
            fields.push(("invoice_id", ids.invoice.clone()));
        }
        "/w/{ws}/console/financials/time/approve" => fields.push(("time_entry", ids.time_entry.clone())),
        "/w/{ws}/console/financials/rates/rate-cards" => {
            fields.push(("key", "taken_over".into()));
            fields.push(("name", "Taken over".into()));
            fields.push(("rows", "1".into()));
            fields.push(("work_type_1", "remote".into()));
            fields.push(("rate_1", "1.00".into()));
        }
        "/w/{ws}/console/financials/catalogue" => {
            fields.push(("key", "taken_over".into()));
            fields.push(("kind", "service".into()));
            fields.push(("name", "Taken over".into()));
            fields.push(("unit_code", "MON".into()));
            fields.push(("unit_price", "1.00".into()));
            fields.push(("tax", "standard".into()));
        }
        "/w/{ws}/console/financials/rates/staff" => {
            fields.push(("member", format!("{} oz", url_encoded(anchor_auth::dev_issuer::DEV_ISSUER))));
            fields.push(("role", "taken_over".into()));
        }
        "/w/{ws}/console/financials/rates/work-types" => {
            fields.push(("key", "taken_over".into()));
            fields.push(("name", "Taken over".into()));
            fields.push(("hourly_rate", "1.00".into()));
            fields.push(("tax", "standard".into()));
        }
        "/w/{ws}/admin/portal/invites" => {
            fields.push(("contact_id", ids.contact.clone()));
            fields.push(("role", "client_admin".into()));
        }
        "/w/{ws}/admin/portal/revoke" => fields.push(("contact_id", ids.contact.clone())),
        // The portal's forms: a staff session is no portal session.
        "/w/{ws}/portal/invite/{token}" | "/w/{ws}/portal/link/{token}" => fields.push(("handoff", "h".into())),
        "/w/{ws}/portal/signout" => {}
        "/w/{ws}/console/service/kb/act" => {
            fields.push(("action", "publish".into()));
            fields.push(("article_id", ids.ticket.clone()));
        }
        "/w/{ws}/portal/people" => {
            fields.push(("action", "end".into()));
            fields.push(("contact_id", ids.contact.clone()));
        }
        "/w/{ws}/portal/tickets" => {
            fields.push(("title", "Taken over".into()));
            fields.push(("description", "Written from the wrong workspace".into()));
        }
        "/w/{ws}/portal/tickets/{id}/reply" => fields.push(("body", "Written from the wrong workspace".into())),
        "/w/{ws}/portal/tickets/{id}/rate" => fields.push(("score", "1".into())),
        "/w/{ws}/portal/quotes/{id}/decide" => {
            fields.push(("decision", "accept".into()));
            fields.push(("sha256", "0".repeat(64)));
        }
        _ => return None,
    }
    Some(fields)
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The other workspace's objects.
struct Ids {
    ticket: String,
    execution: String,
    view: String,
    queue: String,
    policy: String,
    asset: String,
    invoice: String,
    time_entry: String,
    quote: String,
    contact: String,
}

fn fill(path: &str, ws: &str, ids: &Ids) -> String {
    let id = if path.contains("/executions/") {
        &ids.execution
    } else if path.contains("/assets/") {
        &ids.asset
    } else if path.contains("/invoices/") {
        &ids.invoice
    } else if path.contains("/quotes/") {
        &ids.quote
    } else {
        &ids.ticket
    };
    path.replace("{ws}", ws).replace("{id}", id).replace("{token}", "not-a-token")
}

#[tokio::test]
async fn no_page_fragment_or_search_of_one_workspace_shows_another() {
    let platform = Platform::start().await;
    let home = platform.workspace("home", "mia", Role::MspAdmin).await;
    platform.member(&home, "tim", Role::Technician).await;
    platform.workspace("other", "oz", Role::MspAdmin).await;

    // The other workspace: a ticket, a queue, a policy and a shared view, each carrying the marker.
    let api = "/api/v1/workspaces/other";
    let queue = platform.post(&format!("{api}/queues"), "oz", &json!({"name": format!("{MARKER} desk")}), None).await;
    let queue: Value = queue.json().await.expect("queue");
    let policy = platform
        .post(
            &format!("{api}/sla-policies"),
            "oz",
            &json!({"name": format!("{MARKER} gold"), "calendar_id": "cal_00000000000000000000000001",
                    "targets": {"p1": {"resolution_minutes": 60}}}),
            None,
        )
        .await;
    let policy: Value = policy.json().await.expect("policy");
    let created = platform
        .post(
            &format!("{api}/tickets"),
            "oz",
            &json!({"title": format!("{MARKER} payroll server"), "priority": "p2", "queue_id": queue["id"]}),
            Some(20),
        )
        .await;
    let execution: Value = created.json().await.expect("execution");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    let view = platform
        .post(
            &format!("{api}/ticket-views"),
            "oz",
            &json!({"name": format!("{MARKER} view"), "query": "status=open", "shared": true}),
            None,
        )
        .await;
    let view: Value = view.json().await.expect("view");
    let asset = platform
        .post(
            &format!("{api}/assets"),
            "oz",
            &json!({"type": "server", "name": format!("{MARKER} payroll host")}),
            Some(20),
        )
        .await;
    let asset: Value = asset.json().await.expect("asset");
    assert_eq!(asset["status"], "succeeded", "{asset}");
    // A draft invoice and submitted time there, both carrying the marker.
    let profile = json!({"currency": "EUR", "payment_terms_days": 14, "invoice_prefix": "INV-",
        "credit_note_prefix": "CN-", "seller": {"name": format!("{MARKER} seller"),
        "address": {"line1": "1 Road", "postal_code": "1000", "city": "Town", "country": "DE"}},
        "buyer": {"name": format!("{MARKER} buyer"),
        "address": {"line1": "2 Road", "postal_code": "1000", "city": "Town", "country": "DE"}}});
    for (path, body) in [
        ("billing/profile", profile),
        ("billing/tax-rates/standard", json!({"name": "VAT", "category": "S", "rate": "19"})),
    ] {
        let response = platform
            .client
            .put(platform.url(&format!("{api}/{path}")))
            .bearer_auth(platform.token("oz"))
            .header("idempotency-key", format!("key-{path}"))
            .json(&body)
            .send()
            .await
            .expect("put");
        assert!(response.status().is_success(), "{path}: {}", response.text().await.unwrap_or_default());
    }
    let lines =
        json!([{"description": format!("{MARKER} audit"), "quantity": "1", "unit_price": "10", "tax": "standard"}]);
    let invoice = platform.post(&format!("{api}/invoices"), "oz", &json!({"lines": lines}), Some(20)).await;
    let invoice: Value = invoice.json().await.expect("invoice");
    assert_eq!(invoice["status"], "succeeded", "{invoice}");
    let body = json!({"title": format!("{MARKER} offer"), "valid_until": "2099-01-01", "lines": lines});
    let quote = platform.post(&format!("{api}/quotes"), "oz", &body, Some(20)).await;
    let quote: Value = quote.json().await.expect("quote");
    assert_eq!(quote["status"], "succeeded", "{quote}");
    let ticket_id = execution["result"]["ticket_id"].as_str().expect("ticket");
    let body = json!({"work_type": "remote_support", "minutes": 30, "worked_on": "2026-11-02", "billable": true,
                      "note": format!("{MARKER} overtime")});
    let logged = platform.post(&format!("{api}/tickets/{ticket_id}/time-entries"), "oz", &body, Some(20)).await;
    let logged: Value = logged.json().await.expect("time entry");
    let time_entry = logged["result"]["time_entry_id"].as_str().expect("time entry").to_owned();
    let submitted = platform.post(&format!("{api}/time-entries/{time_entry}/submit"), "oz", &json!({}), Some(20)).await;
    assert_eq!(submitted.status(), 200);
    let ids = Ids {
        invoice: invoice["result"]["invoice_id"].as_str().expect("invoice").to_owned(),
        time_entry,
        quote: quote["result"]["quote_id"].as_str().expect("quote").to_owned(),
        asset: asset["result"]["asset_id"].as_str().expect("asset").to_owned(),
        ticket: execution["result"]["ticket_id"].as_str().expect("ticket").to_owned(),
        execution: execution["id"].as_str().expect("execution").to_owned(),
        view: view["id"].as_str().expect("view").to_owned(),
        queue: queue["id"].as_str().expect("queue").to_owned(),
        policy: policy["id"].as_str().expect("policy").to_owned(),
        contact: String::new(),
    };
    let contact = platform
        .post(
            &format!("{api}/contacts"),
            "oz",
            &json!({"name": format!("{MARKER} Oz"), "email": "oz@other.example"}),
            Some(20),
        )
        .await;
    let contact: Value = contact.json().await.expect("contact");
    assert_eq!(contact["status"], "succeeded", "{contact}");
    let ids = Ids { contact: contact["result"]["contact_id"].as_str().expect("contact").to_owned(), ..ids };
    let before = platform.get(&format!("{api}/tickets/{}", ids.ticket), "oz").await;

    let routes = mounted();
    assert!(routes.len() >= 15, "the router's workspace routes were read: {routes:?}");
    for (method, path) in &routes {
        assert!(method == "GET" || form(path, "", &ids).is_some(), "{method} {path}: give the matrix a form for it");
    }

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut cases = 0;
    let mut failures = Vec::new();
    for subject in ["mia", "tim"] {
        let (cookie, csrf) = session(&platform, subject).await;
        let cookie = format!("anchor_session={cookie}");
        for (method, path) in &routes {
            // The other workspace by its name (not theirs), then theirs with the other's ids.
            for (ws, own) in [("other", false), ("home", true)] {
                let url = platform.url(&fill(path, ws, &ids));
                for fragment in [false, true] {
                    let mut request = if method == "GET" {
                        client.get(&url)
                    } else {
                        client.post(&url).form(&form(path, &csrf, &ids).expect("a form"))
                    };
                    request = request.header("cookie", &cookie);
                    if fragment {
                        request = request.header("hx-request", "true");
                    }
                    let response = request.send().await.expect("request");
                    let status = response.status().as_u16();
                    let location =
                        response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
                    let body = response.text().await.unwrap_or_default();
                    cases += 1;
                    let case = format!("{subject} {method} {} (fragment: {fragment})", fill(path, ws, &ids));
                    if body.contains(MARKER) || location.contains(MARKER) {
                        failures.push(format!("{case}: shows the other workspace's data"));
                    }
                    let refused = match (own, method.as_str(), path.as_str()) {
                        // The portal is for a portal session, which a staff session is not;
                        // an invitation link that is not one is 404, its form without the
                        // browser's binding 403; links are counted per source, so this long
                        // walk meets their limit (429) too.
                        (_, _, p) if p.starts_with("/w/{ws}/portal") => {
                            [401, 403, 404].contains(&status) || (p.ends_with("/{token}") && status == 429)
                        }
                        // A bare module address redirects to its first tab whatever the name
                        // (so it tells nothing), and that tab then answers as below.
                        (_, "GET", "/w/{ws}/console" | "/w/{ws}/admin") => {
                            status == 303 && location.starts_with(&format!("{path}/").replace("{ws}", ws))
                        }
                        // Not a member: the workspace does not exist for them.
                        (false, _, _) => status == 404,
                        // Their own workspace's pages without an id of the other's are theirs to see.
                        // (Admin settings are refused to a technician.)
                        (true, "GET", p) if !p.contains("{id}") => [200, 303, 403].contains(&status),
                        // An id of the other workspace does not exist here.
                        // (Financials is refused to a technician before any id is looked up.)
                        (true, "GET", p) => {
                            status == 404
                                || (subject == "tim" && p.starts_with("/w/{ws}/console/financials/") && status == 403)
                        }
                        // A form naming the other's objects: refused, or a command that fails on a
                        // ticket that is not here (its page then says so), never a change there.
                        // (Admin settings' and Financials' forms are refused to a technician.)
                        (true, _, p) => {
                            [200, 303, 404, 422].contains(&status)
                                || (subject == "tim"
                                    && (p.starts_with("/w/{ws}/admin/")
                                        || p.starts_with("/w/{ws}/console/financials/"))
                                    && status == 403)
                        }
                    };
                    if !refused {
                        failures.push(format!("{case}: answered {status}"));
                    }
                }
            }
        }

        // Searching their own workspace for the other's words finds nothing, page or fragment.
        for fragment in [false, true] {
            let mut request = client.get(platform.url("/w/home/console/service?q=payroll")).header("cookie", &cookie);
            if fragment {
                request = request.header("hx-request", "true");
            }
            let body = request.send().await.expect("search").text().await.expect("body");
            assert!(body.contains("No tickets match") && !body.contains(MARKER), "{body}");
            let mut request = client.get(platform.url("/w/home/console/cmdb?q=payroll")).header("cookie", &cookie);
            if fragment {
                request = request.header("hx-request", "true");
            }
            let body = request.send().await.expect("search").text().await.expect("body");
            assert!(body.contains("No assets match") && !body.contains(MARKER), "{body}");
        }
        // Ops across every client they may see: never the other's queues,
        // and its live stream is not theirs to follow.
        for queue in ["critical", "unassigned", "sla", "workflows", "events"] {
            for part in ["", "&part=live", "&wall=1"] {
                let url = platform.url(&format!("/ops?queue={queue}{part}"));
                let body = client.get(url).header("cookie", &cookie).send().await.expect("ops").text().await;
                let body = body.expect("body");
                assert!(body.contains("Runtime health") && !body.contains(MARKER), "{queue}{part}: {body}");
            }
        }
        let live = client.get(platform.url("/ops/live?ws=other")).header("cookie", &cookie).send().await;
        assert_eq!(live.expect("live").status(), 404);
        // Billing for every client: the other is neither previewed, run nor followed.
        let period = "period_start=2026-11-01&period_end=2026-11-30";
        let preview = client.get(platform.url(&format!("/billing?{period}"))).header("cookie", &cookie).send().await;
        let body = preview.expect("billing").text().await.expect("body");
        assert!(!body.contains("/w/other/") && !body.contains(MARKER), "{body}");
        let key = format!("every-client-run-{subject}-0001");
        let run = client
            .post(platform.url("/billing/run"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("key", &key),
                ("period_start", "2026-11-01"),
                ("period_end", "2026-11-30"),
            ])
            .send()
            .await
            .expect("run");
        assert!(run.status().is_redirection() || run.status().is_success(), "{}", run.status());
        let progress =
            client.get(platform.url(&format!("/billing/runs/{key}?{period}"))).header("cookie", &cookie).send();
        let body = progress.await.expect("progress").text().await.expect("body");
        assert!(!body.contains("/w/other/") && !body.contains(MARKER), "{body}");
        let executions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM ws_other.executions WHERE idempotency_key LIKE 'billing-run-%'")
                .fetch_one(platform.store.pool())
                .await
                .expect("executions");
        assert_eq!(executions, 0, "no billing run in the other workspace");
    }
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));

    // The other workspace's data is as it was.
    let after = platform.get(&format!("{api}/tickets/{}", ids.ticket), "oz").await;
    assert_eq!(
        (after["assignee"].clone(), after["updated_at"].clone()),
        (before["assignee"].clone(), before["updated_at"].clone())
    );
    let comments: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_other.ticket_comments")
        .fetch_one(platform.store.pool())
        .await
        .expect("comments");
    assert_eq!(comments, 0, "nothing was written there");
    let views = platform.get(&format!("{api}/ticket-views"), "oz").await;
    assert_eq!(views["items"].as_array().map(Vec::len), Some(1), "{views}");
    let queues = platform.get(&format!("{api}/queues"), "oz").await;
    assert_eq!(queues["items"][0]["name"], format!("{MARKER} desk"));
    let asset = platform.get(&format!("{api}/assets/{}", ids.asset), "oz").await;
    assert_eq!(asset["tags"], json!([]), "the other's asset is untouched: {asset}");
    platform.stop().await;
}
