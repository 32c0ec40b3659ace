//! Contracts and the billing run end to end through AgentField: work types
//! and rate cards (configuration), contracts and their lifecycle, the rate
//! fixed when time is approved (contract, rate card, staff rate role), and
//! `billing.run`: approved time and recurring charges become draft
//! invoices exactly once; block hours are bought, drawn down and billed
//! beyond the block at the overage rate; discarding a draft gives back what
//! it billed, and the next run bills it again.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::Platform;

const WS: &str = "/api/v1/workspaces/acme";
const NOVEMBER: (&str, &str) = ("2026-11-01", "2026-11-30");

async fn send(platform: &Platform, who: &str, method: &str, path: &str, body: &Value) -> reqwest::Response {
    platform
        .client
        .request(method.parse().expect("method"), platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .header("prefer", "wait=25")
        .json(body)
        .send()
        .await
        .expect("send")
}

async fn run(platform: &Platform, who: &str, method: &str, path: &str, body: Value) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), 200, "{method} {path}: {}", response.text().await.unwrap_or_default());
    let execution: Value = response.json().await.expect("json");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

async fn refused(platform: &Platform, who: &str, method: &str, path: &str, body: Value, status: u16) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), status, "{method} {path} as {who}");
    response.json().await.expect("json")
}

async fn put(platform: &Platform, who: &str, path: &str, body: Value) -> Value {
    let response = platform
        .client
        .put(platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .json(&body)
        .send()
        .await
        .expect("put");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert!(status.is_success(), "PUT {path}: {status} {body}");
    body
}

async fn get(platform: &Platform, who: &str, path: &str) -> Value {
    platform.get(&format!("{WS}{path}"), who).await
}

/// Logs `minutes` of `work_type` on `ticket` as tom, submits it and has
/// mia approve it; answers the entry's id.
async fn approved_time(
    platform: &Platform,
    ticket: &str,
    work_type: &str,
    minutes: u32,
    day: &str,
    billable: bool,
) -> String {
    let body = json!({"work_type": work_type, "minutes": minutes, "worked_on": day, "billable": billable});
    let logged = run(platform, "tom", "POST", &format!("/tickets/{ticket}/time-entries"), body).await;
    let id = logged["time_entry_id"].as_str().expect("id").to_owned();
    run(platform, "tom", "POST", &format!("/time-entries/{id}/submit"), json!({})).await;
    run(platform, "mia", "POST", &format!("/time-entries/{id}/approve"), json!({})).await;
    id
}

async fn ticket(platform: &Platform, title: &str) -> String {
    let created = run(platform, "tom", "POST", "/tickets", json!({"title": title, "priority": "p3"})).await;
    created["ticket_id"].as_str().expect("ticket id").to_owned()
}

async fn billing_run(platform: &Platform, (from, to): (&str, &str)) -> Value {
    run(platform, "fay", "POST", "/billing/runs", json!({"period_start": from, "period_end": to})).await
}

fn decimal(value: &Value) -> f64 {
    value.as_str().unwrap_or_else(|| panic!("a decimal string: {value}")).parse().expect("a decimal")
}

/// A block-hours contract's balance (none yet reads as 0).
async fn hours_left(platform: &Platform, contract: &str) -> f64 {
    let contract = get(platform, "fay", &format!("/contracts/{contract}")).await;
    contract["hours_left"].as_str().map_or(0.0, |h| h.parse().expect("a decimal"))
}

/// The client's billing profile (EUR) and a standard VAT rate of 19%.
async fn configure(platform: &Platform, who: &str) {
    let profile = json!({"currency": "EUR", "payment_terms_days": 14, "invoice_prefix": "INV-", "credit_note_prefix": "CN-",
        "seller": {"name": "Harbour IT Services GmbH", "vat_id": "DE123456789",
                   "address": {"line1": "Hafenstraße 12", "postal_code": "20457", "city": "Hamburg", "country": "DE"}},
        "buyer": {"name": "Acme Widgets AG",
                  "address": {"line1": "Industrieweg 3", "postal_code": "80331", "city": "München", "country": "DE"}}});
    put(platform, who, "/billing/profile", profile).await;
    put(platform, who, "/billing/tax-rates/standard", json!({"name": "VAT 19%", "category": "S", "rate": "19"})).await;
}

fn lines(invoice: &Value) -> Vec<(String, String, String, String)> {
    invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (text("description"), text("quantity"), text("unit_price"), text("net"))
        })
        .collect()
}

#[tokio::test]
async fn approved_time_and_contract_charges_are_billed_exactly_once() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "fay", Role::Finance).await;
    platform.member(&acme, "mia", Role::MspAdmin).await;
    platform.member(&acme, "tom", Role::Technician).await;

    // Nothing is billed before there is a currency.
    let body = json!({"period_start": NOVEMBER.0, "period_end": NOVEMBER.1});
    let problem = refused(&platform, "fay", "POST", "/billing/runs", body.clone(), 409).await;
    assert_eq!(problem["code"], "billing_profile_missing", "{problem}");
    configure(&platform, "fay").await;
    // A work type prices its time by default; a bad one is refused with where.
    let response = platform
        .client
        .put(platform.url(&format!("{WS}/billing/work-types/remote_support")))
        .bearer_auth(platform.token("fay"))
        .header("idempotency-key", "key-bad-work-type")
        .json(&json!({"name": "Remote support", "hourly_rate": "95.001", "tax": "standard"}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["errors"][0]["path"], "/hourly_rate", "{problem}");
    put(
        &platform,
        "fay",
        "/billing/work-types/remote_support",
        json!({"name": "Remote support", "hourly_rate": "95.00", "tax": "standard"}),
    )
    .await;
    let backwards = json!({"period_start": "2026-11-30", "period_end": "2026-11-01"});
    let problem = refused(&platform, "fay", "POST", "/billing/runs", backwards, 422).await;
    assert_eq!(problem["errors"][0]["path"], "/period_end", "{problem}");
    let problem = refused(&platform, "tom", "POST", "/billing/runs", body.clone(), 403).await;
    assert!(problem.to_string().contains("billing.write"), "{problem}");

    // Time outside any contract: billed at the work type's rate, once; time
    // not billable, or that nothing prices, is not.
    let printer = ticket(&platform, "Printer offline").await;
    let support = approved_time(&platform, &printer, "remote_support", 90, "2026-11-03", true).await;
    let free = approved_time(&platform, &printer, "remote_support", 20, "2026-11-03", false).await;
    let onsite = approved_time(&platform, &printer, "onsite", 30, "2026-11-04", true).await;
    let entry = get(&platform, "mia", &format!("/time-entries/{support}")).await;
    assert_eq!(entry["rate"], "95.0000", "the rate is fixed at approval: {entry}");
    let preview = get(&platform, "fay", "/billing/runs/preview?period_start=2026-11-01&period_end=2026-11-30").await;
    assert_eq!(preview["invoices"].as_array().expect("invoices").len(), 1, "{preview}");
    assert_eq!(preview["unbillable"][0]["time_entry_id"], onsite.as_str(), "{preview}");
    assert_eq!(preview["gross"], "169.58", "1.5 h x 95.00 = 142.50, + 19% (27.08)");
    let first = billing_run(&platform, NOVEMBER).await;
    assert_eq!((first["time_entries"].as_u64(), first["unbillable"].as_u64()), (Some(1), Some(1)), "{first}");
    let draft_id = first["invoices"][0].as_str().expect("draft").to_owned();
    let draft = get(&platform, "fay", &format!("/invoices/{draft_id}")).await;
    assert_eq!(draft["state"], "draft");
    assert_eq!((draft["period_start"].as_str(), draft["period_end"].as_str()), (Some(NOVEMBER.0), Some(NOVEMBER.1)));
    assert_eq!(
        lines(&draft),
        [(
            "2026-11-03, Remote support: Printer offline".to_owned(),
            "1.5000".to_owned(),
            "95.0000".to_owned(),
            "142.50".to_owned()
        )]
    );
    let entry = get(&platform, "mia", &format!("/time-entries/{support}")).await;
    assert_eq!((entry["state"].as_str(), entry["invoice_id"].as_str()), (Some("invoiced"), Some(draft_id.as_str())));
    assert_eq!(get(&platform, "mia", &format!("/time-entries/{free}")).await["state"], "approved");
    // The same period again: nothing is left, nothing is made.
    let again = billing_run(&platform, NOVEMBER).await;
    assert_eq!(again["invoices"], json!([]), "{again}");
    // Finalized on the period's last day: revenue and receivables agree with it.
    let body = json!({"issued_on": "2026-11-30"});
    run(&platform, "fay", "POST", &format!("/invoices/{draft_id}/finalize"), body).await;
    let revenue = get(&platform, "fay", "/billing/reports/revenue?period_start=2026-11-01&period_end=2026-11-30").await;
    assert_eq!(
        (&revenue["items"][0]["contract_id"], &revenue["items"][0]["invoiced"], &revenue["items"][0]["net"]),
        (&Value::Null, &json!("142.50"), &json!("142.50")),
        "{revenue}"
    );
    let october = get(&platform, "fay", "/billing/reports/revenue?period_start=2026-10-01&period_end=2026-10-31").await;
    assert_eq!(october["items"], json!([]), "nothing was issued in October");
    let ageing = get(&platform, "fay", "/billing/reports/ageing").await;
    let aged: f64 = ageing["items"].as_array().expect("buckets").iter().map(|b| decimal(&b["balance"])).sum();
    let balance = get(&platform, "fay", "/billing/balance").await;
    assert!(
        (aged - decimal(&balance["outstanding"])).abs() < 1e-9 && (aged - 169.58).abs() < 1e-9,
        "{ageing} {balance}"
    );

    // A block of 10 hours a month, with overage at 120.00.
    let block = run(
        &platform,
        "fay",
        "POST",
        "/contracts",
        json!({
        "kind": "block_hours", "name": "Support block", "starts_on": "2026-11-01", "tax": "standard",
        "amount": "900.00", "block_hours": "10", "overage_rate": "120.00", "purchase_order": "PO-77"}),
    )
    .await["contract_id"]
        .as_str()
        .expect("contract id")
        .to_owned();
    let problem = refused(&platform, "fay", "POST", &format!("/contracts/{block}/resume"), json!({}), 409).await;
    assert_eq!(problem["code"], "contract_transition_not_allowed", "a draft is not suspended: {problem}");
    let missing = refused(
        &platform,
        "fay",
        "POST",
        "/contracts",
        json!({
        "kind": "time_and_materials", "name": "Bad", "starts_on": "2026-11-01", "tax": "nope"}),
        422,
    )
    .await;
    assert_eq!(missing["code"], "contract_terms_unknown", "{missing}");
    run(&platform, "fay", "POST", &format!("/contracts/{block}/activate"), json!({})).await;
    let server = ticket(&platform, "Server migration").await;
    let six = approved_time(&platform, &server, "remote_support", 360, "2026-11-10", true).await;
    let more = approved_time(&platform, &server, "remote_support", 330, "2026-11-20", true).await;
    assert_eq!(get(&platform, "mia", &format!("/time-entries/{six}")).await["contract_id"], block.as_str());

    // Time and materials under a rate card, where tom is priced as a senior.
    let issuer = get(&platform, "mia", &format!("/time-entries/{six}")).await["staff"]["issuer"].clone();
    put(
        &platform,
        "fay",
        "/billing/rate-cards/standard",
        json!({"name": "Standard rates", "rates": [
        {"work_type": "remote_support", "hourly_rate": "110.00"},
        {"work_type": "remote_support", "role": "senior", "hourly_rate": "150.00"}]}),
    )
    .await;
    put(&platform, "fay", "/billing/staff-rates", json!({"issuer": issuer, "subject": "tom", "role": "senior"})).await;
    let managed = run(
        &platform,
        "fay",
        "POST",
        "/contracts",
        json!({
        "kind": "time_and_materials", "name": "Project work", "starts_on": "2026-11-15", "tax": "standard",
        "rate_card": "standard"}),
    )
    .await["contract_id"]
        .as_str()
        .expect("contract id")
        .to_owned();
    run(&platform, "fay", "POST", &format!("/contracts/{managed}/activate"), json!({})).await;
    let project = ticket(&platform, "New office network").await;
    let senior = approved_time(&platform, &project, "remote_support", 60, "2026-11-25", true).await;
    let entry = get(&platform, "mia", &format!("/time-entries/{senior}")).await;
    assert_eq!((entry["contract_id"].as_str(), entry["rate"].as_str()), (Some(managed.as_str()), Some("150.0000")));

    // Unbilled time, at the rates fixed when it was approved (before the
    // contracts' terms): what is waiting, and what nothing priced.
    let unbilled = get(&platform, "fay", "/billing/reports/unbilled-time").await;
    let row = |contract: &str, work: &str| {
        unbilled["items"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["contract_id"].as_str().unwrap_or("") == contract && r["work_type"] == work)
            .unwrap_or_else(|| panic!("a row for {contract:?} {work}: {unbilled}"))
            .clone()
    };
    let blocked = row(&block, "remote_support");
    assert_eq!(
        (blocked["entries"].as_i64(), decimal(&blocked["hours"]), decimal(&blocked["value"])),
        (Some(2), 11.5, 1092.5)
    );
    assert_eq!(decimal(&row(&managed, "remote_support")["value"]), 150.0);
    let unpriced = row("", "onsite");
    assert_eq!((unpriced["unpriced"].as_i64(), decimal(&unpriced["value"])), (Some(1), 0.0), "{unpriced}");
    assert_eq!(unbilled["items"].as_array().expect("rows").len(), 3, "non-billable time is not waiting: {unbilled}");

    // November again: the block is bought (a charge), 6 h and then 4 h are
    // drawn, 1.5 h is beyond it; the senior hour is billed at 150.00.
    let preview = get(&platform, "fay", "/billing/runs/preview?period_start=2026-11-01&period_end=2026-11-30").await;
    let moves: Vec<(String, String)> = preview["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|h| (h["entry"].as_str().expect("entry").to_owned(), h["hours"].as_str().expect("hours").to_owned()))
        .collect();
    let moves: Vec<(&str, &str)> = moves.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(moves, [("purchased", "10"), ("drawn", "-6"), ("drawn", "-4")], "{preview}");
    let second = billing_run(&platform, NOVEMBER).await;
    assert_eq!((second["time_entries"].as_u64(), second["charges"].as_u64()), (Some(3), Some(1)), "{second}");
    let made: Vec<Value> = {
        let mut made = Vec::new();
        for id in second["invoices"].as_array().expect("invoices") {
            made.push(get(&platform, "fay", &format!("/invoices/{}", id.as_str().expect("id"))).await);
        }
        made
    };
    let of =
        |contract: &str| made.iter().find(|i| i["contract_id"] == contract).expect("an invoice per contract").clone();
    let blocked = of(&block);
    assert_eq!(blocked["purchase_order"], "PO-77");
    assert_eq!(
        lines(&blocked),
        [
            (
                "Support block, 2026-11-01 to 2026-11-30: block of 10 h".to_owned(),
                "1.0000".to_owned(),
                "900.0000".to_owned(),
                "900.00".to_owned()
            ),
            (
                "2026-11-10, Remote support: Server migration (from the block)".to_owned(),
                "6.0000".to_owned(),
                "0.0000".to_owned(),
                "0.00".to_owned()
            ),
            (
                "2026-11-20, Remote support: Server migration (from the block)".to_owned(),
                "4.0000".to_owned(),
                "0.0000".to_owned(),
                "0.00".to_owned()
            ),
            (
                "2026-11-20, Remote support: Server migration (beyond the block)".to_owned(),
                "1.5000".to_owned(),
                "120.0000".to_owned(),
                "180.00".to_owned()
            ),
        ],
        "{blocked}"
    );
    assert_eq!((blocked["net"].as_str(), blocked["gross"].as_str()), (Some("1080.00"), Some("1285.20")));
    assert_eq!(lines(&of(&managed))[0].3, "150.00");
    assert_eq!(hours_left(&platform, &block).await, 0.0);
    assert_eq!(billing_run(&platform, NOVEMBER).await["invoices"], json!([]), "billed once");
    // A run's draft keeps its lines (they bill time and charges); an
    // active contract keeps its start (its cycles are keyed by it).
    let blocked_path = format!("/invoices/{}", blocked["id"].as_str().expect("id"));
    let edit = json!({"lines": [{"description": "x", "quantity": "1", "unit_price": "1", "tax": "standard"}]});
    let problem = refused(&platform, "fay", "PATCH", &blocked_path, edit, 409).await;
    assert_eq!(problem["code"], "invoice_from_billing_run", "{problem}");
    let moved = json!({"name": "Support block", "starts_on": "2026-11-15", "tax": "standard", "amount": "900.00",
                       "block_hours": "10", "overage_rate": "120.00", "purchase_order": "PO-77"});
    let problem = refused(&platform, "fay", "PATCH", &format!("/contracts/{block}"), moved, 409).await;
    assert_eq!(problem["code"], "contract_transition_not_allowed", "{problem}");
    // Two blocks in one period would draw November's time from December's block.
    let body = json!({"period_start": "2026-11-01", "period_end": "2026-12-31"});
    let problem = refused(&platform, "fay", "POST", "/billing/runs", body, 409).await;
    assert_eq!(problem["code"], "billing_period_spans_blocks", "{problem}");

    // Discarding the block's draft gives back its charge, its hours and its
    // time; the next run makes the same draft again.
    let blocked_id = blocked["id"].as_str().expect("id");
    run(&platform, "fay", "POST", &format!("/invoices/{blocked_id}/discard"), json!({})).await;
    let entry = get(&platform, "mia", &format!("/time-entries/{more}")).await;
    assert_eq!((entry["state"].as_str(), &entry["invoice_id"]), (Some("approved"), &Value::Null), "{entry}");
    assert_eq!(hours_left(&platform, &block).await, 0.0, "nothing bought, nothing drawn");
    let third = billing_run(&platform, NOVEMBER).await;
    assert_eq!((third["time_entries"].as_u64(), third["charges"].as_u64()), (Some(2), Some(1)), "{third}");
    let again = get(&platform, "fay", &format!("/invoices/{}", third["invoices"][0].as_str().expect("id"))).await;
    assert_eq!(lines(&again), lines(&blocked));

    // December: a new block; no time, so only the charge.
    let december = billing_run(&platform, ("2026-12-01", "2026-12-31")).await;
    assert_eq!((december["time_entries"].as_u64(), december["charges"].as_u64()), (Some(0), Some(1)), "{december}");
    assert_eq!(hours_left(&platform, &block).await, 10.0);
    // Suspended, a contract charges nothing; the runs are listed, newest first.
    run(&platform, "fay", "POST", &format!("/contracts/{block}/suspend"), json!({})).await;
    let january = billing_run(&platform, ("2027-01-01", "2027-01-31")).await;
    assert_eq!(january["invoices"], json!([]), "{january}");
    let runs = get(&platform, "fay", "/billing/runs").await;
    let periods: Vec<&str> =
        runs["items"].as_array().expect("runs").iter().map(|r| r["period_start"].as_str().expect("p")).collect();
    assert_eq!(periods, ["2026-12-01", NOVEMBER.0, NOVEMBER.0, NOVEMBER.0], "{runs}");
}

/// The Financials tab in Chromium, as an MSP admin would use it: approve
/// submitted time, preview and run billing, finalize, download the PDF,
/// record a payment, issue a credit note; every page checked by axe-core
/// and for CSP violations at desktop and phone width.
#[tokio::test]
async fn the_financials_tab_takes_time_to_a_paid_and_credited_invoice() {
    use crate::browser::{session, walk};

    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "tom", Role::Technician).await;
    configure(&platform, "mia").await;
    put(
        &platform,
        "mia",
        "/billing/work-types/remote_support",
        json!({"name": "Remote support", "hourly_rate": "95.00", "tax": "standard"}),
    )
    .await;
    let printer = ticket(&platform, "Printer offline").await;
    for (minutes, day) in [(90, "2026-11-03"), (30, "2026-11-12")] {
        let body = json!({"work_type": "remote_support", "minutes": minutes, "worked_on": day, "billable": true});
        let logged = run(&platform, "tom", "POST", &format!("/tickets/{printer}/time-entries"), body).await;
        let id = logged["time_entry_id"].as_str().expect("id");
        run(&platform, "tom", "POST", &format!("/time-entries/{id}/submit"), json!({})).await;
    }

    let base = platform.url("");
    let (cookie, _) = session(&platform, "mia").await;
    let fin = "/w/acme/console/financials";
    let period = "period_start=2026-11-01&period_end=2026-11-30";
    // Approve both entries at once, then preview and run November.
    walk(
        &base,
        &cookie,
        json!([
            {"name": "fin-time", "path": format!("{fin}/time"), "status": 200, "only": "desktop",
             "text": ["2 updated", "0 failed"],
             "steps": [{"click": "button:has-text('Approve selected')", "navigates": true}]},
            {"name": "fin-run", "path": format!("{fin}/run?{period}"), "status": 200, "only": "desktop",
             "text": ["Drafts", "Succeeded"],
             "steps": [{"wait_text": "Time and materials"}, {"wait_text": "226.10 EUR"},
                       {"click": "button:has-text('Run billing')", "navigates": true}]},
        ]),
    )
    .await;
    // A work type added on the Rates page (configuration, recorded), and a bad rate refused with its reason.
    walk(&base, &cookie, json!([
        {"name": "fin-rates", "path": format!("{fin}/rates"), "status": 200, "only": "desktop",
         "text": ["Work type onsite saved", "130.00 EUR", "Remote support", "95.00 EUR"],
         "steps": [{"fill": "#w-key", "value": "onsite"}, {"fill": "#w-name", "value": "Onsite visit"},
                   {"fill": "#w-rate", "value": "130.00"},
                   {"click": "button:has-text('Add the work type')", "navigates": true}]},
        {"name": "fin-rates-invalid", "path": format!("{fin}/rates?edit=onsite"), "status": 422, "only": "desktop",
         "text": ["Hourly rate: 12.345 is not an amount of 0 or more with at most 2 decimals", "Change the work type"],
         "steps": [{"fill": "#w-rate", "value": "12.345"},
                   {"click": "button:has-text('Save the work type')", "navigates": true}]},
        {"name": "fin-rate-card", "path": format!("{fin}/rates"), "status": 200, "only": "desktop",
         "text": ["Rate card gold saved", "Rate card: Gold support", "every role", "senior", "160.00 EUR"],
         "steps": [{"fill": "#rc-key", "value": "gold"}, {"fill": "#rc-name", "value": "Gold support"},
                   {"select": "#rc-w1", "value": "remote_support"}, {"fill": "#rc-p1", "value": "110.00"},
                   {"select": "#rc-w2", "value": "remote_support"}, {"fill": "#rc-r2", "value": "senior"},
                   {"fill": "#rc-p2", "value": "160.00"},
                   {"click": "button:has-text('Add the rate card')", "navigates": true}]},
        {"name": "fin-catalogue", "path": format!("{fin}/catalogue"), "status": 200, "only": "desktop",
         "text": ["Item backup_seat saved", "Cloud backup, per seat", "12.50 EUR", "per month"],
         "steps": [{"fill": "#i-key", "value": "backup_seat"}, {"fill": "#i-name", "value": "Cloud backup, per seat"},
                   {"fill": "#i-price", "value": "12.50"},
                   {"click": "button:has-text('Add the item')", "navigates": true}]},
        {"name": "fin-catalogue-invalid", "path": format!("{fin}/catalogue?edit=backup_seat"), "status": 422, "only": "desktop",
         "text": ["Name: 1 to 200 characters"],
         "steps": [{"fill": "#i-name", "value": " "}, {"click": "button:has-text('Save the item')", "navigates": true}]},
        {"name": "fin-staff-rate", "path": format!("{fin}/rates"), "status": 200, "only": "desktop",
         "text": ["Staff rate role of tom saved", "tom: senior"],
         "steps": [{"select": "#s-member", "label": "tom (technician)"}, {"fill": "#s-role", "value": "senior"},
                   {"click": "button:has-text('Set the rate role')", "navigates": true}]},
        {"name": "fin-rate-card-twice", "path": format!("{fin}/rates?card=gold"), "status": 422, "only": "desktop",
         "text": ["rate 3: remote_support for every role is given twice"],
         "steps": [{"select": "#rc-w3", "value": "remote_support"}, {"fill": "#rc-p3", "value": "99.00"},
                   {"click": "button:has-text('Save the rate card')", "navigates": true}]},
    ]))
    .await;
    let work_types = get(&platform, "mia", "/billing/work-types").await;
    let onsite = work_types["items"].as_array().expect("items").iter().find(|w| w["key"] == "onsite").cloned();
    assert_eq!(onsite.as_ref().and_then(|w| w["hourly_rate"].as_str()), Some("130.00"), "{work_types}");
    let cards = get(&platform, "mia", "/billing/rate-cards").await;
    assert_eq!(
        cards["items"][0]["rates"].as_array().map(Vec::len),
        Some(2),
        "the refused change left the card: {cards}"
    );
    let changes = get(&platform, "mia", "/changes").await;
    assert!(
        changes["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["action"] == "work_type.created" && c["target"] == "onsite"),
        "the page's write is recorded: {changes}"
    );

    let drafts = get(&platform, "mia", "/invoices?state=draft").await;
    let invoice = drafts["items"][0]["id"].as_str().expect("a draft").to_owned();
    assert_eq!(drafts["items"][0]["gross"], "226.10", "2 h x 95.00 + 19%: {drafts}");
    let page = format!("{fin}/invoices/{invoice}");
    walk(&base, &cookie, json!([
        {"name": "fin-finalize", "path": page, "status": 200, "only": "desktop",
         "text": ["Invoice INV-000001", "Download PDF"],
         "steps": [{"click": "button:has-text('Finalize')", "navigates": true},
                   {"download": "a:has-text('Download PDF')", "save": "invoice-INV-000001.pdf", "starts": "%PDF-"}]},
        {"name": "fin-payment", "path": page, "status": 200, "only": "desktop",
         "text": ["Succeeded", "Paid", "100.00 EUR"],
         "steps": [{"fill": "#amount", "value": "100.00"},
                   {"click": "button:has-text('Record payment')", "navigates": true}]},
        {"name": "fin-credit", "path": page, "status": 200, "only": "desktop",
         "text": ["Credit note CN-000001", "Corrects"],
         "steps": [{"click": "button:has-text('Issue credit note')", "navigates": true},
                   {"click": "button:has-text('Finalize')", "navigates": true}]},
    ]))
    .await;
    // A contract from its form, then put in force.
    walk(
        &base,
        &cookie,
        json!([
            {"name": "fin-contract-new", "path": format!("{fin}/contracts"), "status": 200, "only": "desktop",
             "text": ["Succeeded", "Support block", "draft", "Activate"],
             "steps": [{"fill": "#c-name", "value": "Support block"}, {"select": "#c-kind", "value": "block_hours"},
                       {"fill": "#c-starts", "value": "2026-12-01"}, {"fill": "#c-amount", "value": "900.00"},
                       {"fill": "#c-hours", "value": "10"}, {"fill": "#c-over", "value": "120.00"},
                       {"click": "button:has-text('Create draft contract')", "navigates": true}]},
            {"name": "fin-contract-active", "path": format!("{fin}/contracts"), "status": 200, "only": "desktop",
             "text": ["Succeeded", "active", "Suspend", "10 h"],
             "steps": [{"click": "button:has-text('Activate')", "navigates": true}]},
        ]),
    )
    .await;
    // A quote from its form, sent, accepted as the client said, converted.
    walk(&base, &cookie, json!([
        {"name": "fin-quote-new", "path": format!("{fin}/quotes"), "status": 200, "only": "desktop",
         "text": ["Succeeded", "Quote Q-000001", "draft", "Send version 1", "1,880.20 EUR"],
         "steps": [{"fill": "#q-title", "value": "Firewall upgrade"},
                   {"fill": "#q-d1", "value": "Firewall appliance"}, {"fill": "#q-p1", "value": "1200.00"},
                   {"fill": "#q-d2", "value": "Installation"}, {"fill": "#q-q2", "value": "4"}, {"fill": "#q-p2", "value": "95.00"},
                   {"click": "button:has-text('Create draft quote')", "navigates": true}]},
    ]))
    .await;
    let quote = get(&platform, "mia", "/quotes").await["items"][0]["id"].as_str().expect("a quote").to_owned();
    let quote_page = format!("{fin}/quotes/{quote}");
    walk(
        &base,
        &cookie,
        json!([
            {"name": "fin-quote-flow", "path": quote_page, "status": 200, "only": "desktop",
             "text": ["Succeeded", "Draft invoice", "Firewall appliance", "As quoted in Q-000001"],
             "steps": [{"click": "button:has-text('Send version 1')", "navigates": true},
                       {"wait_text": "Record the client's decision"},
                       {"fill": "#d-name", "value": "Jane Doe, CFO"},
                       {"click": "button:has-text('Accepted')", "navigates": true},
                       {"wait_text": "Jane Doe, CFO"},
                       {"click": "button:has-text('Convert to invoice')", "navigates": true}]},
        ]),
    )
    .await;
    assert_eq!(get(&platform, "mia", &format!("/quotes/{quote}")).await["state"], "converted");
    let done = get(&platform, "mia", &format!("/invoices/{invoice}")).await;
    assert_eq!((done["paid"].as_str(), done["credited"].as_str()), (Some("100.00"), Some("226.10")), "{done}");
    let balance = get(&platform, "mia", "/billing/balance").await;
    assert_eq!(balance["credit"], "100.00", "what was paid is the client's once credited: {balance}");
    // The credit refunded, then a payment on account kept as credit.
    walk(
        &base,
        &cookie,
        json!([
            {"name": "fin-refund", "path": format!("{fin}/payments"), "status": 200, "only": "desktop",
             "text": ["Succeeded", "refund", "Record a payment on account"], "absent": ["Refund the client's credit"],
             "steps": [{"click": "button:has-text('Record refund')", "navigates": true}]},
            {"name": "fin-on-account", "path": format!("{fin}/payments"), "status": 200, "only": "desktop",
             "text": ["Succeeded", "Refund the client's credit", "50.00 EUR"],
             "steps": [{"fill": "#p-amount", "value": "50.00"}, {"fill": "#p-reference", "value": "Advance"},
                       {"click": "button:has-text('Record payment')", "navigates": true}]},
        ]),
    )
    .await;
    let balance = get(&platform, "mia", "/billing/balance").await;
    assert_eq!(balance["credit"], "50.00", "refunded, then 50.00 on account: {balance}");

    // Every Financials page at both widths, read as it now stands.
    walk(&base, &cookie, json!([
        {"name": "fin-invoices", "path": fin, "status": 200, "text": ["Invoice INV-000001", "Credit note CN-000001", "credited", "Outstanding"]},
        {"name": "fin-invoice", "path": page, "status": 200, "text": ["Lines", "Totals", "Tax 19% on 190.00 EUR"]},
        {"name": "fin-time-empty", "path": format!("{fin}/time"), "status": 200, "text": ["Nothing waits for approval"]},
        {"name": "fin-run-empty", "path": format!("{fin}/run?{period}"), "status": 200, "text": ["Nothing to bill", "Recent runs"]},
        {"name": "fin-contracts", "path": format!("{fin}/contracts"), "status": 200, "text": ["New contract", "Support block"]},
        {"name": "fin-payments", "path": format!("{fin}/payments"), "status": 200, "text": ["100.00 EUR", "transfer"]},
        {"name": "fin-quotes", "path": format!("{fin}/quotes"), "status": 200, "text": ["Firewall upgrade", "converted", "New quote"]},
        {"name": "fin-quote", "path": quote_page, "status": 200, "text": ["Jane Doe, CFO", "SHA-256", "The draft it became"]},
        {"name": "fin-reports", "path": format!("{fin}/reports?period_start=2026-01-01&period_end=2099-12-31"), "status": 200,
         "text": ["Unbilled time", "No approved time waits to be billed", "Revenue by contract", "190.00 EUR", "Outstanding"],
         "absent": ["report this"]},
        {"name": "fin-rates-all", "path": format!("{fin}/rates"), "status": 200,
         "text": ["Onsite visit", "Rate card: Gold support", "tom: senior", "Add a rate card"]},
        {"name": "fin-catalogue-all", "path": format!("{fin}/catalogue"), "status": 200,
         "text": ["Cloud backup, per seat", "Add a service or product"]},
    ]))
    .await;
    platform.stop().await;
}

/// The billing run for every client at once (`/billing`): a preview of each
/// client the person may bill, one `billing.run` per client under one key,
/// and a progress page that follows each execution to its end. A client
/// that cannot be billed says why; one the person is not in never shows;
/// sending the run again makes nothing twice.
#[tokio::test]
async fn every_client_is_billed_in_one_run_with_progress() {
    use crate::browser::{session, walk};

    let platform = Platform::start().await;
    platform.named_workspace("acme", "Acme Widgets", "mia", Role::MspAdmin).await;
    platform.named_workspace("globex", "Globex Corporation", "mia", Role::Finance).await;
    platform.named_workspace("initech", "Initech", "mia", Role::Finance).await;
    platform.named_workspace("umbrella", "Umbrella Labs", "zed", Role::MspAdmin).await;
    let call = |ws: &'static str, method: &'static str, path: String, body: Value| {
        let platform = &platform;
        async move {
            let response = platform
                .client
                .request(method.parse().expect("method"), platform.url(&format!("/api/v1/workspaces/{ws}{path}")))
                .bearer_auth(platform.token("mia"))
                .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
                .header("prefer", "wait=25")
                .json(&body)
                .send()
                .await
                .expect("send");
            assert!(response.status().is_success(), "{method} {path}: {}", response.status());
            response.json::<Value>().await.expect("json")
        }
    };
    // Acme and Globex each have a monthly fixed fee from November; Initech has no billing profile.
    for (ws, name, fee) in [("acme", "Managed services", "1200.00"), ("globex", "Helpdesk", "800.00")] {
        let profile = json!({"currency": "EUR", "payment_terms_days": 14, "invoice_prefix": "INV-", "credit_note_prefix": "CN-",
            "seller": {"name": "Harbour IT Services GmbH", "vat_id": "DE123456789",
                       "address": {"line1": "Hafenstraße 12", "postal_code": "20457", "city": "Hamburg", "country": "DE"}},
            "buyer": {"name": name, "address": {"line1": "Industrieweg 3", "postal_code": "80331", "city": "München", "country": "DE"}}});
        call(ws, "PUT", "/billing/profile".into(), profile).await;
        call(
            ws,
            "PUT",
            "/billing/tax-rates/standard".into(),
            json!({"name": "VAT 19%", "category": "S", "rate": "19"}),
        )
        .await;
        let terms =
            json!({"kind": "fixed_fee", "name": name, "starts_on": "2026-11-01", "tax": "standard", "amount": fee});
        let created = call(ws, "POST", "/contracts".into(), terms).await;
        assert_eq!(created["status"], "succeeded", "{created}");
        let id = created["result"]["contract_id"].as_str().expect("contract").to_owned();
        call(ws, "POST", format!("/contracts/{id}/activate"), json!({})).await;
    }

    let base = platform.url("");
    let (cookie, csrf) = session(&platform, "mia").await;
    let period = "period_start=2026-11-01&period_end=2026-11-30";
    let report = walk(
        &base,
        &cookie,
        json!([
            {"name": "billing-all-preview", "path": format!("/billing?{period}"), "status": 200, "only": "desktop",
             "text": ["Acme Widgets", "Globex Corporation", "Initech", "1,428.00 EUR", "952.00 EUR",
                      "Cannot bill", "2 draft invoice(s) in 2 client(s)"],
             "absent": ["Umbrella"]},
            {"name": "billing-all-run", "path": format!("/billing?{period}"), "status": 200, "only": "desktop",
             "text": ["3 of 3 client(s) finished", "Review the drafts", "Not run", "1,428.00 EUR", "952.00 EUR"],
             "steps": [{"click": "button:has-text('Run billing')", "navigates": true},
                       {"wait_text": "Finished: 2 draft invoice(s) made", "no_reload": true}]},
        ]),
    )
    .await;
    let progress = report
        .as_array()
        .and_then(|visits| visits.iter().find(|v| v["visit"] == "billing-all-run"))
        .and_then(|v| v["url"].as_str())
        .unwrap_or_default()
        .to_owned();
    for (ws, gross) in [("acme", "1428.00"), ("globex", "952.00")] {
        let drafts = call(ws, "GET", "/invoices?state=draft".into(), Value::Null).await;
        let items = drafts["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{ws}: {drafts}");
        assert_eq!(items[0]["gross"], gross, "{ws}: {drafts}");
    }
    let umbrella = platform.get("/api/v1/workspaces/umbrella/billing/runs", "zed").await;
    assert_eq!(umbrella["items"].as_array().map(Vec::len), Some(0), "not mia's client: {umbrella}");

    // Sending the same run again (a reload, a resumed run) makes nothing new.
    let key = progress.split("/billing/runs/").nth(1).and_then(|k| k.split('?').next()).unwrap_or_default().to_owned();
    assert!(key.len() >= 16, "the progress page's address names the run: {report}");
    let again = platform
        .client
        .post(platform.url("/billing/run"))
        .header("cookie", format!("anchor_session={cookie}"))
        .header("origin", platform.url("").trim_end_matches('/'))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("key", &key),
            ("period_start", "2026-11-01"),
            ("period_end", "2026-11-30"),
        ])
        .send()
        .await
        .expect("post");
    assert!(again.status().is_success() || again.status().is_redirection(), "{}", again.status());
    for ws in ["acme", "globex"] {
        let drafts = call(ws, "GET", "/invoices?state=draft".into(), Value::Null).await;
        assert_eq!(drafts["items"].as_array().map(Vec::len), Some(1), "{ws} billed once: {drafts}");
    }
    let progress_path = progress.strip_prefix(base.trim_end_matches('/')).unwrap_or(&progress).to_owned();
    walk(
        &base,
        &cookie,
        json!([
            {"name": "billing-all-done", "path": format!("/billing?{period}"), "status": 200,
             "text": ["Nothing to bill in this period"]},
            {"name": "billing-all-progress", "path": progress_path, "status": 200,
             "text": ["3 of 3 client(s) finished", "Initech", "Not run"]},
        ]),
    )
    .await;

    // A draft by hand: created empty, its lines written in the editor, then changed.
    let fin = "/w/acme/console/financials";
    walk(&base, &cookie, json!([
        {"name": "fin-draft-edit", "path": fin, "status": 200, "only": "desktop",
         "text": ["Succeeded", "Remote session", "113.05 EUR"], "absent": ["Onsite visit"],
         "steps": [{"click": "button:has-text('New draft invoice')", "navigates": true},
                   {"wait_text": "Edit the lines"},
                   {"fill": "#e-d1", "value": "Onsite visit"}, {"fill": "#e-q1", "value": "3"},
                   {"select": "#e-u1", "value": "HUR"}, {"fill": "#e-p1", "value": "110.00"}, {"fill": "#e-x1", "value": "10"},
                   {"click": "button:has-text('Save the lines')", "navigates": true},
                   {"wait_text": "353.43 EUR"},
                   {"fill": "#e-d1", "value": ""},
                   {"fill": "#e-d2", "value": "Remote session"}, {"fill": "#e-p2", "value": "95.00"},
                   {"click": "button:has-text('Save the lines')", "navigates": true},
                   {"wait_text": "113.05 EUR"},
                   {"fill": "#e-po", "value": "PO-9"},
                   {"click": "button:has-text('Save purchase order and note')", "navigates": true}]},
    ]))
    .await;
    let drafts = call("acme", "GET", "/invoices?state=draft".into(), Value::Null).await;
    let by_hand = drafts["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["period_start"].is_null())
        .cloned()
        .expect("the draft by hand");
    assert_eq!(
        (by_hand["gross"].as_str(), by_hand["purchase_order"].as_str(), by_hand["lines"].as_array().map(Vec::len)),
        (Some("113.05"), Some("PO-9"), Some(1)),
        "{by_hand}"
    );
    walk(&base, &cookie, json!([
        {"name": "fin-draft", "path": format!("{fin}/invoices/{}", by_hand["id"].as_str().expect("id")), "status": 200,
         "text": ["Edit the lines", "New line", "Remote session", "Purchase order and note"]},
    ]))
    .await;
    // Money received on account, applied to the invoice once finalized.
    let payment = json!({"amount": "50.00", "received_on": "2026-12-01", "method": "transfer"});
    let recorded = call("acme", "POST", "/payments".into(), payment).await;
    assert_eq!(recorded["status"], "succeeded", "{recorded}");
    let id = by_hand["id"].as_str().expect("id").to_owned();
    walk(
        &base,
        &cookie,
        json!([
            {"name": "fin-apply", "path": format!("{fin}/invoices/{id}"), "status": 200, "only": "desktop",
             "text": ["Succeeded", "Paid", "63.05 EUR"], "absent": ["Apply money already received"],
             "steps": [{"click": "button:has-text('Finalize')", "navigates": true},
                       {"wait_text": "Apply money already received"},
                       {"click": "button:has-text('Apply 50.00 EUR')", "navigates": true}]},
        ]),
    )
    .await;
    let applied = call("acme", "GET", format!("/invoices/{id}"), Value::Null).await;
    assert_eq!((applied["paid"].as_str(), applied["balance"].as_str()), (Some("50.00"), Some("63.05")), "{applied}");
    platform.stop().await;
}

/// Quotes: versions frozen when sent with their digest, decided on by
/// digest before they expire (the decision is the command's signed
/// evidence), and an accepted quote converted to a draft invoice with the
/// same lines and totals.
#[tokio::test]
async fn quotes_are_sent_by_version_accepted_by_digest_and_converted() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "fay", Role::Finance).await;
    platform.member(&acme, "abe", Role::Auditor).await;
    configure(&platform, "fay").await;
    let line = |description: &str, quantity: &str, price: &str| json!({"description": description, "quantity": quantity, "unit_price": price, "tax": "standard"});
    let body = json!({"title": "New office network", "valid_until": "2099-12-31",
                      "lines": [line("Switch, 24 ports", "2", "420.00"), line("Installation", "6", "95.00")]});
    let created = run(&platform, "fay", "POST", "/quotes", body).await;
    let id = created["quote_id"].as_str().expect("id").to_owned();
    assert_eq!((created["number"].as_str(), created["state"].as_str()), (Some("Q-000001"), Some("draft")));
    let problem =
        refused(&platform, "abe", "POST", "/quotes", json!({"title": "x", "valid_until": "2099-01-01"}), 403).await;
    assert!(problem.to_string().contains("billing.write"), "{problem}");
    let empty = run(&platform, "fay", "POST", "/quotes", json!({"title": "Empty", "valid_until": "2099-01-01"})).await;
    let empty = empty["quote_id"].as_str().expect("id").to_owned();
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{empty}/send"), json!({}), 422).await;
    assert_eq!(problem["code"], "quote_empty", "{problem}");

    // Sent: version 1 is frozen with its digest.
    let sent = run(&platform, "fay", "POST", &format!("/quotes/{id}/send"), json!({})).await;
    let first = sent["sha256"].as_str().expect("digest").to_owned();
    assert_eq!(first.len(), 64);
    let quote = get(&platform, "abe", &format!("/quotes/{id}")).await;
    assert_eq!((quote["gross"].as_str(), quote["version"].as_i64()), (Some("1677.90"), Some(1)), "{quote}");

    // Revised: the draft of version 2; what was sent cannot be accepted now.
    let body = json!({"title": "New office network", "valid_until": "2099-12-31",
                      "lines": [line("Switch, 24 ports", "2", "400.00"), line("Installation", "6", "95.00")]});
    let revised = run(&platform, "fay", "PATCH", &format!("/quotes/{id}"), body).await;
    assert_eq!((revised["version"].as_i64(), revised["state"].as_str()), (Some(2), Some("draft")));
    let accept = |sha: &str| json!({"sha256": sha, "name": "Jane Doe, CFO"});
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{id}/accept"), accept(&first), 409).await;
    assert_eq!(problem["code"], "quote_transition_not_allowed", "{problem}");
    let second = run(&platform, "fay", "POST", &format!("/quotes/{id}/send"), json!({})).await["sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_ne!(first, second, "another version, another digest");
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{id}/accept"), accept(&first), 409).await;
    assert_eq!(problem["code"], "quote_version_mismatch", "{problem}");

    // Accepted by digest: who, when and what, attested by the command's evidence.
    let response = send(&platform, "fay", "POST", &format!("/quotes/{id}/accept"), &accept(&second)).await;
    let execution: Value = response.json().await.expect("execution");
    assert_eq!(execution["status"], "succeeded", "{execution}");
    // The acceptance is signed evidence that names the digest accepted.
    let evidence = platform.url(&format!("{WS}/executions/{}/evidence", execution["id"].as_str().expect("id")));
    let mut credential = None;
    for _ in 0..400 {
        let response = platform.client.get(&evidence).bearer_auth(platform.token("abe")).send().await.expect("get");
        if response.status() == 200 {
            credential = Some(response.text().await.expect("credential"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let credential: Value =
        serde_json::from_str(&credential.expect("the acceptance's credential is issued")).expect("json");
    assert_eq!(execution["input"]["sha256"], second.as_str());
    let input = anchor_crypto::canonical::digest(&execution["input"]).expect("digest");
    assert_eq!(
        (credential["credentialSubject"]["inputDigest"].as_str(), credential["credentialSubject"]["command"].as_str()),
        (Some(input.as_str()), Some("quote.accept")),
        "the credential signs the input, digest and name included: {credential}"
    );
    let quote = get(&platform, "abe", &format!("/quotes/{id}")).await;
    assert_eq!(
        (quote["state"].as_str(), quote["decided_digest"].as_str(), quote["decided_by"]["name"].as_str()),
        (Some("accepted"), Some(second.as_str()), Some("Jane Doe, CFO")),
        "{quote}"
    );
    let decline = json!({"sha256": second, "name": "Jane Doe"});
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{id}/decline"), decline, 409).await;
    assert_eq!(problem["code"], "quote_transition_not_allowed");

    // Converted: a draft invoice with the same lines and totals.
    let converted = run(&platform, "fay", "POST", &format!("/quotes/{id}/convert"), json!({})).await;
    let invoice = converted["invoice_id"].as_str().expect("invoice");
    let invoice = get(&platform, "fay", &format!("/invoices/{invoice}")).await;
    assert_eq!((invoice["state"].as_str(), invoice["gross"].as_str()), (Some("draft"), Some("1630.30")), "{invoice}");
    assert_eq!(invoice["lines"].as_array().expect("lines").len(), 2);
    assert_eq!(get(&platform, "fay", &format!("/quotes/{id}")).await["state"], "converted");
    // Its draft discarded, the quote may be converted again.
    let invoice_id = converted["invoice_id"].as_str().expect("invoice");
    run(&platform, "fay", "POST", &format!("/invoices/{invoice_id}/discard"), json!({})).await;
    assert_eq!(get(&platform, "fay", &format!("/quotes/{id}")).await["state"], "accepted");
    let again = run(&platform, "fay", "POST", &format!("/quotes/{id}/convert"), json!({})).await;
    assert_ne!(again["invoice_id"], converted["invoice_id"]);

    // Past its validity: shown as expired, and refused.
    let body = json!({"title": "Old offer", "valid_until": "2020-01-31", "lines": [line("Audit", "1", "500")]});
    let old = run(&platform, "fay", "POST", "/quotes", body).await["quote_id"].as_str().expect("id").to_owned();
    let sha = run(&platform, "fay", "POST", &format!("/quotes/{old}/send"), json!({})).await["sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_eq!(get(&platform, "fay", &format!("/quotes/{old}")).await["status"], "expired");
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{old}/accept"), accept(&sha), 409).await;
    assert_eq!(problem["code"], "quote_expired", "{problem}");
    let listed = get(&platform, "abe", "/quotes").await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 3);

    // A recurring service: accepted, then a draft fixed-fee contract at the quoted net.
    let body = json!({"title": "Managed workplace", "valid_until": "2099-12-31",
                      "lines": [line("Workstations", "20", "35.00"), line("Servers", "2", "150.00")]});
    let managed = run(&platform, "fay", "POST", "/quotes", body).await["quote_id"].as_str().expect("id").to_owned();
    let sha = run(&platform, "fay", "POST", &format!("/quotes/{managed}/send"), json!({})).await["sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    let terms = json!({"starts_on": "2027-01-01", "billing_cycle": "quarterly", "purchase_order": "PO-77"});
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{managed}/contract"), terms.clone(), 409).await;
    assert_eq!(problem["code"], "quote_transition_not_allowed", "only an accepted quote: {problem}");
    run(&platform, "fay", "POST", &format!("/quotes/{managed}/accept"), accept(&sha)).await;
    let converted = run(&platform, "fay", "POST", &format!("/quotes/{managed}/contract"), terms.clone()).await;
    assert_eq!(converted["state"], "converted", "{converted}");
    let contract_id = converted["contract_id"].as_str().expect("contract").to_owned();
    let contract = get(&platform, "abe", &format!("/contracts/{contract_id}")).await;
    assert_eq!(
        (
            contract["kind"].as_str(),
            contract["state"].as_str(),
            contract["name"].as_str(),
            contract["amount"].as_str(),
            contract["billing_cycle"].as_str(),
            contract["tax"].as_str(),
            contract["purchase_order"].as_str(),
        ),
        (
            Some("fixed_fee"),
            Some("draft"),
            Some("Managed workplace"),
            Some("1000.00"),
            Some("quarterly"),
            Some("standard"),
            Some("PO-77")
        ),
        "{contract}"
    );
    assert_eq!(get(&platform, "abe", &format!("/quotes/{managed}")).await["contract_id"], contract_id.as_str());
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{managed}/contract"), terms.clone(), 409).await;
    assert_eq!(problem["code"], "quote_transition_not_allowed", "converted once: {problem}");

    // A contract charges at one tax rate: a quote at two is refused.
    put(&platform, "fay", "/billing/tax-rates/reduced", json!({"name": "VAT 7%", "category": "S", "rate": "7"})).await;
    let mixed = json!({"title": "Mixed", "valid_until": "2099-12-31", "lines": [line("Support", "1", "100"),
        {"description": "Manuals", "quantity": "1", "unit_price": "20", "tax": "reduced"}]});
    let mixed = run(&platform, "fay", "POST", "/quotes", mixed).await["quote_id"].as_str().expect("id").to_owned();
    let sha = run(&platform, "fay", "POST", &format!("/quotes/{mixed}/send"), json!({})).await["sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    run(&platform, "fay", "POST", &format!("/quotes/{mixed}/accept"), accept(&sha)).await;
    let problem = refused(&platform, "fay", "POST", &format!("/quotes/{mixed}/contract"), terms, 409).await;
    assert_eq!(problem["code"], "quote_taxes_differ", "{problem}");
}
