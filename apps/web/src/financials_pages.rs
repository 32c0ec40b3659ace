//! The Financials tab's pages (see [`crate::financials`]).

use anchor_domain::{Currency, InvoiceKind, InvoiceState};
use anchor_store::invoices::{ClientBalance, Invoice};
use maud::{Markup, html};
use rust_decimal::Decimal;

use crate::{
    financials::{
        ContractsPage, InvoiceListPage, InvoicePage, PaymentsPage, QUOTE_ROWS, QuotePage, QuotesPage, ReportsPage,
        RunPage, Show, TimePage, contract_actions, contract_anchor,
    },
    financials_config::{CataloguePage, RatesPage},
    pages::{ConsoleFrame, ConsoleTab, console_tab_layout, moment, outcome_banner},
};

pub(crate) fn money(currency: Currency, amount: Decimal) -> String {
    currency.format(amount)
}

/// A quantity or rate as people write it: 1.5, not 1.5000.
fn plain(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A price to edit: at least two decimals, no trailing zeros beyond them.
fn price(value: Decimal) -> String {
    let mut value = value.normalize();
    if value.scale() < 2 {
        value.rescale(2);
    }
    value.to_string()
}

fn nav(frame: &ConsoleFrame<'_>, current: &str) -> Markup {
    let base = format!("{}/financials", frame.base());
    let here = |name: &str| (name == current).then_some("page");
    html! {
        nav.subnav aria-label="Financials" {
            a href=(base) aria-current=[here("invoices")] { "Invoices" }
            a href={(base) "/time"} aria-current=[here("time")] { "Time to approve" }
            a href={(base) "/run"} aria-current=[here("run")] { "Billing run" }
            a href={(base) "/contracts"} aria-current=[here("contracts")] { "Contracts" }
            a href={(base) "/quotes"} aria-current=[here("quotes")] { "Quotes" }
            a href={(base) "/payments"} aria-current=[here("payments")] { "Payments" }
            a href={(base) "/rates"} aria-current=[here("rates")] { "Rates" }
            a href={(base) "/catalogue"} aria-current=[here("catalogue")] { "Catalogue" }
            a href={(base) "/reports"} aria-current=[here("reports")] { "Reports" }
        }
    }
}

/// A document's status as people ask about it: draft, overdue, credited,
/// paid, sent or finalized (a credit note: issued).
fn state_label(invoice: &Invoice) -> (&'static str, &'static str) {
    let settled = invoice.balance.is_some_and(|b| b <= Decimal::ZERO);
    match (invoice.state, invoice.kind) {
        (InvoiceState::Draft, _) => ("draft", "none"),
        (_, InvoiceKind::CreditNote) => ("issued", "ok"),
        _ if invoice.days_overdue.is_some_and(|d| d > 0) => ("overdue", "bad"),
        _ if settled && invoice.credited >= invoice.gross => ("credited", "ok"),
        _ if settled => ("paid", "ok"),
        (InvoiceState::Sent, _) => ("sent", "warn"),
        _ => ("finalized", "warn"),
    }
}

/// A unit code (UN/ECE Recommendation 20) as people read it.
fn unit(code: &str) -> &str {
    match code {
        "HUR" => "h",
        "C62" | "H87" => "",
        "DAY" => "days",
        "MON" => "months",
        other => other,
    }
}

fn title(invoice: &Invoice) -> String {
    let kind = if invoice.kind == InvoiceKind::CreditNote { "Credit note" } else { "Invoice" };
    match &invoice.number {
        Some(number) => format!("{kind} {number}"),
        None => format!("Draft {}", kind.to_lowercase()),
    }
}

fn balance_summary(balance: &ClientBalance) -> Markup {
    html! {
        @if let Some(currency) = balance.currency {
            dl.facts {
                div { dt { "Invoiced" } dd { (money(currency, balance.invoiced)) } }
                div { dt { "Credited" } dd { (money(currency, balance.credited)) } }
                div { dt { "Received" } dd { (money(currency, balance.received)) } }
                @if balance.refunded > Decimal::ZERO { div { dt { "Refunded" } dd { (money(currency, balance.refunded)) } } }
                div { dt { "Outstanding" } dd { strong { (money(currency, balance.outstanding)) } } }
                @if balance.credit > Decimal::ZERO {
                    div { dt { "Credit held for the client" } dd { (money(currency, balance.credit)) } }
                }
            }
        }
    }
}

/// Invoices and credit notes, newest first.
pub(crate) fn invoices(frame: &ConsoleFrame<'_>, page: &InvoiceListPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let here = |show: Show| (show == page.show).then_some("page");
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Invoices",
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            div.heading {
                h1 { "Invoices" }
                @if page.may_write {
                    span.actions {
                        (button_form(frame, &page.key, "invoice.create", ("note", String::new()), "New draft invoice", true))
                        a.button href={(base) "/run"} { "Billing run" }
                    }
                }
            }
            (nav(frame, "invoices"))
            div.card { (balance_summary(&page.balance)) }
            nav.views aria-label="Which documents" {
                a href=(base) aria-current=[here(Show::All)] { "All" }
                a href={(base) "?show=draft"} aria-current=[here(Show::Drafts)] { "Drafts" }
                a href={(base) "?show=finalized"} aria-current=[here(Show::Finalized)] { "Finalized" }
                a href={(base) "?show=overdue"} aria-current=[here(Show::Overdue)] { "Overdue" }
                a href={(base) "?show=credit_notes"} aria-current=[here(Show::CreditNotes)] { "Credit notes" }
            }
            @if page.invoices.is_empty() {
                div.card { p.muted {
                    @match page.show {
                        Show::Drafts => "No drafts. A billing run makes them from approved time and contracts.",
                        Show::Overdue => "Nothing overdue.",
                        _ => "No invoices yet. Run billing for a period to draft them.",
                    }
                } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Invoices and credit notes, newest first" }
                        thead { tr {
                            th scope="col" { "Document" } th scope="col" { "Status" } th scope="col" { "Issued" }
                            th scope="col" { "Due" } th.num scope="col" { "Total" } th.num scope="col" { "Balance" }
                        } }
                        tbody {
                            @for invoice in &page.invoices {
                                @let (label, class) = state_label(invoice);
                                tr {
                                    td {
                                        a href={(base) "/invoices/" (invoice.id)} { (title(invoice)) }
                                        @if let Some(po) = &invoice.purchase_order { br; span.small.muted { "PO " (po.as_str()) } }
                                        @if let (Some(from), Some(to)) = (invoice.period_start, invoice.period_end) {
                                            br; span.small.muted { "Period " (from) " to " (to) }
                                        }
                                    }
                                    td.c-status {
                                        span class={"health " (class)} { (label) }
                                        @if let Some(days) = invoice.days_overdue.filter(|d| *d > 0) {
                                            br; span.small { (days) " days overdue" }
                                        }
                                    }
                                    td.small data-label="Issued" { @match invoice.issued_on { Some(d) => { (d) } None => { "—" } } }
                                    td.small data-label="Due" { @match invoice.due_on { Some(d) => { (d) } None => { "—" } } }
                                    td.num data-label="Total" { (money(invoice.currency, invoice.gross)) }
                                    td.num data-label="Balance" {
                                        @match invoice.balance {
                                            Some(b) if b < Decimal::ZERO => { (money(invoice.currency, Decimal::ZERO)) br; span.small { (money(invoice.currency, -b)) " credit" } }
                                            Some(b) => { (money(invoice.currency, b)) }
                                            None => { "—" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = page.next {
                    p { a.button.secondary href={(base) "?show=" (page.show.as_str()) "&before=" (next)} { "Next 50" } }
                }
            }
        } },
    )
}

/// A one-button form for a command on a document or contract.
fn button_form(
    frame: &ConsoleFrame<'_>,
    key: &str,
    command: &str,
    id_field: (&str, String),
    label: &str,
    secondary: bool,
) -> Markup {
    html! {
        form.inline method="post" action={(frame.base()) "/financials/act"} {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            input type="hidden" name="command" value=(command);
            input type="hidden" name=(id_field.0) value=(id_field.1);
            button class=[secondary.then_some("secondary")] type="submit" { (label) }
        }
    }
}

/// The forms that change a draft: its lines (each row editable; emptying a
/// row's description removes it; blank rows add lines), and apart from them
/// its purchase order and note, so changing a note never rewrites a line.
/// A billing run's draft and a credit note keep their lines (they bill time
/// and charges, or reverse an invoice at its own rates).
fn draft_editor(frame: &ConsoleFrame<'_>, page: &InvoicePage, lines_key: &str, header_key: &str) -> Markup {
    let i = &page.invoice;
    let lines_fixed = i.period_start.is_some() || i.kind == InvoiceKind::CreditNote;
    let rows = i.lines.len() + crate::financials::BLANK_ROWS;
    let offered = [("C62", "each"), ("HUR", "hours"), ("MON", "months"), ("DAY", "days")];
    let action = format!("{}/financials/act", frame.base());
    html! {
        @if !lines_fixed {
            div.card.form-card {
                h2 { "Edit the lines" }
                p.small.muted { "Clear a line's description to remove it; fill a blank row to add one. Totals and tax are worked out again when you save." }
                form method="post" action=(action) {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="idempotency_key" value=(lines_key);
                    input type="hidden" name="command" value="invoice.update";
                    input type="hidden" name="invoice_id" value=(i.id);
                    input type="hidden" name="rows" value=(rows);
                    @for n in 1..=rows {
                        @let line = i.lines.get(n - 1);
                        // The line's own unit and tax stay offered, even if not among the usual ones.
                        @let unit_now = line.map(|l| l.unit_code.as_str()).filter(|u| !offered.iter().any(|(c, _)| c == u));
                        @let tax_now = line.map(|l| l.tax_key.as_str()).filter(|t| !page.taxes.iter().any(|k| k == t));
                        fieldset.line {
                            legend { @if line.is_some() { "Line " (n) } @else { "New line" } }
                            label for={"e-d" (n)} { "Description" }
                            input id={"e-d" (n)} type="text" name={"description_" (n)} maxlength="500"
                                value=[line.map(|l| l.description.as_str())];
                            div.row {
                                div { label for={"e-q" (n)} { "Quantity" }
                                      input id={"e-q" (n)} type="text" inputmode="decimal" name={"quantity_" (n)}
                                          value=(line.map_or("1".to_owned(), |l| plain(l.quantity))); }
                                div {
                                    label for={"e-u" (n)} { "Unit" }
                                    select id={"e-u" (n)} name={"unit_code_" (n)} {
                                        @if let Some(u) = unit_now { option value=(u) selected { (unit(u)) } }
                                        @for (code, name) in offered {
                                            option value=(code) selected[line.is_some_and(|l| l.unit_code.as_str() == code)] { (name) }
                                        }
                                    }
                                }
                                div { label for={"e-p" (n)} { "Unit price" }
                                      input id={"e-p" (n)} type="text" inputmode="decimal" name={"unit_price_" (n)}
                                          value=[line.map(|l| price(l.unit_price))]; }
                                div { label for={"e-x" (n)} { "Discount %" }
                                      input id={"e-x" (n)} type="text" inputmode="decimal" name={"discount_" (n)}
                                          value=[line.filter(|l| !l.discount_percent.is_zero()).map(|l| plain(l.discount_percent))]; }
                                div {
                                    label for={"e-t" (n)} { "Tax" }
                                    select id={"e-t" (n)} name={"tax_" (n)} {
                                        @if let Some(t) = tax_now { option value=(t) selected { (t) " (archived)" } }
                                        @for t in &page.taxes {
                                            option value=(t) selected[line.is_some_and(|l| &l.tax_key == t)] { (t) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    button type="submit" { "Save the lines" }
                }
            }
        }
        div.card.form-card {
            h2 { "Purchase order and note" }
            @if lines_fixed {
                p.small.muted {
                    @if i.kind == InvoiceKind::CreditNote { "A credit note's lines reverse its invoice at the invoice's rates, so they stay as they are." }
                    @else { "A billing run made this draft: its lines bill time and contract charges, so they stay as they are. To change them, discard the draft and run billing again." }
                }
            }
            form method="post" action=(action) {
                input type="hidden" name="csrf_token" value=(frame.csrf);
                input type="hidden" name="idempotency_key" value=(header_key);
                input type="hidden" name="command" value="invoice.update";
                input type="hidden" name="invoice_id" value=(i.id);
                input type="hidden" name="header" value="yes";
                label for="e-po" { "Purchase order (optional)" }
                input #e-po type="text" name="purchase_order" maxlength="100" value=[i.purchase_order.as_ref().map(|p| p.as_str())];
                label for="e-note" { "Note printed on the document (optional)" }
                input #e-note type="text" name="note" maxlength="2000" value=[i.note.as_ref().map(|n| n.as_str())];
                button.secondary type="submit" { "Save purchase order and note" }
            }
        }
    }
}

/// A document: its lines, tax groups, totals, the actions valid now, its
/// PDF, the payment form and its credit notes.
pub(crate) fn invoice(frame: &ConsoleFrame<'_>, page: &InvoicePage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let i = &page.invoice;
    let c = i.currency;
    let (label, class) = state_label(i);
    let key = |n: usize| page.keys.get(n).cloned().unwrap_or_default();
    let id = || ("invoice_id", i.id.to_string());
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        &title(i),
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            p.crumbs { a href=(base) { "Invoices" } " / " (title(i)) }
            div.heading {
                h1 { (title(i)) " " span class={"health " (class)} { (label) } }
            }
            div.card {
                dl.facts {
                    @if let Some(buyer) = &i.buyer { div { dt { "Client" } dd { (buyer.name) } } }
                    div { dt { "Issued" } dd { @match i.issued_on { Some(d) => { (d) } None => { "when finalized" } } } }
                    div { dt { "Due" } dd {
                        @match i.due_on { Some(d) => { (d) } None => { "—" } }
                        @if let Some(days) = i.days_overdue.filter(|d| *d > 0) { " (" (days) " days overdue)" }
                    } }
                    @if let (Some(from), Some(to)) = (i.period_start, i.period_end) {
                        div { dt { "Period" } dd { (from) " to " (to) } }
                    }
                    @if let Some(po) = &i.purchase_order { div { dt { "Purchase order" } dd { (po.as_str()) } } }
                    @if let Some(note) = &i.note { div { dt { "Note" } dd { (note.as_str()) } } }
                    @if let Some(corrects) = i.corrects {
                        div { dt { "Corrects" } dd { a href={(base) "/invoices/" (corrects)} { (i.corrects_number.as_deref().unwrap_or("the invoice")) } } }
                    }
                    @match i.balance {
                        Some(b) if b < Decimal::ZERO => {
                            div { dt { "Balance" } dd { strong { (money(c, Decimal::ZERO)) } br; span.small { (money(c, -b)) " over, kept as the client's credit" } } }
                        }
                        Some(b) => { div { dt { "Balance" } dd { strong { (money(c, b)) } } } }
                        None => {}
                    }
                }
                @if page.may_write {
                    div.actions.spaced {
                        @if i.state == InvoiceState::Draft {
                            (button_form(frame, &key(0), "invoice.finalize", id(), "Finalize", false))
                            (button_form(frame, &key(1), "invoice.discard", id(), "Discard draft", true))
                        }
                        @if i.state == InvoiceState::Finalized {
                            (button_form(frame, &key(2), "invoice.send", id(), "Mark as sent", true))
                        }
                        @if i.state != InvoiceState::Draft && i.kind == InvoiceKind::Invoice && i.gross > i.credited {
                            (button_form(frame, &key(3), "credit_note.create", id(), "Issue credit note", true))
                        }
                    }
                }
                @if i.state != InvoiceState::Draft {
                    p {
                        a.button.secondary href={(base) "/invoices/" (i.id) "/pdf"} download { "Download PDF" }
                        @if let Some(sha) = &i.pdf_sha256 { " " span.small.muted { "SHA-256 " code { (sha) } } }
                    }
                }
            }
            div.card.flush {
                table.tickets {
                    caption { "Lines" }
                    thead { tr {
                        th scope="col" { "Description" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" }
                        th.num scope="col" { "Tax" } th.num scope="col" { "Net" }
                    } }
                    tbody {
                        @for line in &i.lines {
                            tr {
                                td { (line.description.as_str()) }
                                td.num data-label="Quantity" { (plain(line.quantity)) " " span.small.muted { (unit(line.unit_code.as_str())) } }
                                td.num data-label="Unit price" {
                                    (money(c, line.unit_price))
                                    @if !line.discount_percent.is_zero() { br; span.small { "less " (plain(line.discount_percent)) "%" } }
                                }
                                td.num data-label="Tax" { (plain(line.tax_rate)) "%" }
                                td.num data-label="Net" { (money(c, line.net)) }
                            }
                        }
                    }
                }
            }
            div.card {
                h2 { "Totals" }
                dl.facts {
                    div { dt { "Net" } dd { (money(c, i.net)) } }
                    @for group in &i.tax_groups {
                        div { dt { "Tax " (plain(group.rate)) "% on " (money(c, group.taxable)) } dd { (money(c, group.tax)) } }
                    }
                    div { dt { "Total" } dd { strong { (money(c, i.gross)) } } }
                    @if !i.credited.is_zero() { div { dt { "Credited" } dd { (money(c, i.credited)) } } }
                    @if !i.paid.is_zero() { div { dt { "Paid" } dd { (money(c, i.paid)) } } }
                }
            }
            @if page.may_write && i.state == InvoiceState::Draft { (draft_editor(frame, page, &key(5), &key(6))) }
            @if page.may_write && i.kind == InvoiceKind::Invoice && i.state != InvoiceState::Draft
                && i.balance.is_some_and(|b| b > Decimal::ZERO) {
                div.card.form-card {
                    h2 { "Record a payment" }
                    p.small.muted { "Applied to this invoice up to its balance; anything more is kept as the client's credit." }
                    form method="post" action={(base) "/act"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(key(4));
                        input type="hidden" name="command" value="payment.record";
                        input type="hidden" name="invoice_id" value=(i.id);
                        label for="amount" { "Amount (" (c.code()) ")" }
                        input #amount type="text" name="amount" inputmode="decimal" required
                            value=(i.balance.map(|b| b.to_string()).unwrap_or_default())
                            pattern="[0-9]{1,13}([.][0-9]{1,2})?";
                        label for="received_on" { "Received on" }
                        input #received_on type="date" name="received_on" required value=(page.today);
                        label for="method" { "Method" }
                        select #method name="method" {
                            @for (value, name) in [("transfer", "Bank transfer"), ("card", "Card"), ("direct_debit", "Direct debit"), ("cash", "Cash"), ("cheque", "Cheque"), ("other", "Other")] {
                                option value=(value) { (name) }
                            }
                        }
                        label for="reference" { "Reference (optional)" }
                        input #reference type="text" name="reference" maxlength="140";
                        button type="submit" { "Record payment" }
                    }
                }
            }
            @if page.may_write && i.kind == InvoiceKind::Invoice && i.state != InvoiceState::Draft && !page.unapplied.is_empty() {
                @if let Some(balance) = i.balance.filter(|b| *b > Decimal::ZERO) {
                    div.card {
                        h2 { "Apply money already received" }
                        p.small.muted { "Payments with something not yet applied (on account, or left over from another invoice)." }
                        ul.plain {
                            @for (n, p) in page.unapplied.iter().enumerate() {
                                @let apply = p.unallocated.min(balance);
                                li {
                                    form.inline method="post" action={(base) "/act"} {
                                        input type="hidden" name="csrf_token" value=(frame.csrf);
                                        input type="hidden" name="idempotency_key" value={(key(0)) "-apply-" (n)};
                                        input type="hidden" name="command" value="payment.allocate";
                                        input type="hidden" name="payment_id" value=(p.id);
                                        input type="hidden" name="invoice_id" value=(i.id);
                                        input type="hidden" name="amount" value=(apply);
                                        (money(p.currency, p.unallocated)) " unapplied of the payment received " (p.received_on)
                                        @if let Some(r) = &p.reference { " (" (r.as_str()) ")" }
                                        " "
                                        button.secondary type="submit" { "Apply " (money(p.currency, apply)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !page.credit_notes.is_empty() {
                div.card {
                    h2 { "Credit notes" }
                    ul {
                        @for note in &page.credit_notes {
                            li {
                                a href={(base) "/invoices/" (note.id)} { (title(note)) }
                                " — " (money(note.currency, note.gross)) " (" (state_label(note).0) ")"
                            }
                        }
                    }
                }
            }
        } },
    )
}

/// Time awaiting approval, with checkboxes for approving in bulk.
pub(crate) fn time(frame: &ConsoleFrame<'_>, page: &TimePage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let ticket = |id| page.tickets.iter().find(|(t, _)| *t == id).map_or("(a ticket)", |(_, title)| title.as_str());
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Time to approve",
        html! { div.fin {
            div.heading { h1 { "Time to approve" } }
            (nav(frame, "time"))
            @if page.entries.is_empty() {
                div.card { p.muted { "Nothing waits for approval." } }
            } @else {
                form method="post" action={(base) "/time/approve"} {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="idempotency_key" value=(page.key);
                    div.card.flush {
                        table.tickets {
                            caption.visually-hidden { "Submitted time, oldest first" }
                            thead { tr {
                                th scope="col" { span.visually-hidden { "Select" } }
                                th scope="col" { "Ticket" } th scope="col" { "Who" } th scope="col" { "Work" }
                                th scope="col" { "Day" } th.num scope="col" { "Time" }
                            } }
                            tbody {
                                @for e in &page.entries {
                                    @let check = format!("te-{}", e.id);
                                    tr {
                                        td {
                                            @if page.may_approve {
                                                input type="checkbox" name="time_entry" value=(e.id) id=(check) checked;
                                                label.visually-hidden for=(check) { "Select " (e.minutes.get()) " min on " (ticket(e.ticket_id)) }
                                            }
                                        }
                                        td { a href={(frame.base()) "/service/tickets/" (e.ticket_id)} { (ticket(e.ticket_id)) }
                                            @if let Some(note) = &e.note { br; span.small.muted { (note.as_str()) } } }
                                        td data-label="Who" { (e.staff.subject) }
                                        td data-label="Work" { (e.work_type.as_str()) @if !e.billable { " " span.badge { "not billable" } } }
                                        td.small data-label="Day" { (e.worked_on) }
                                        td.num data-label="Time" { (crate::pages::span(time::Duration::minutes(i64::from(e.minutes.get())))) }
                                    }
                                }
                            }
                        }
                    }
                    @if page.may_approve {
                        p { button type="submit" { "Approve selected" } }
                    } @else {
                        p.muted { "Approving time needs time.approve (an MSP admin)." }
                    }
                }
            }
        } },
    )
}

/// The billing run: a period, what a run would make, and the button.
pub(crate) fn run(frame: &ConsoleFrame<'_>, page: &RunPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Billing run",
        html! { div.fin {
            div.heading { h1 { "Billing run" } }
            (nav(frame, "run"))
            p.small { "Billing many clients? " a href={"/billing?period_start=" (page.period_start) "&period_end=" (page.period_end)} { "Run this period for every client you bill" } ", with progress client by client." }
            div.card.form-card {
                form.filters method="get" action={(base) "/run"} {
                    label for="period_start" { "From" }
                    input #period_start type="date" name="period_start" value=(page.period_start) required;
                    label for="period_end" { "To (inclusive)" }
                    input #period_end type="date" name="period_end" value=(page.period_end) required;
                    button.secondary type="submit" { "Preview" }
                }
            }
            @match &page.plan {
                Err(why) => { div.card { p role="alert" { (why) } } }
                Ok(plan) => {
                    div.card {
                        h2 { "Preview: " (plan.period_start) " to " (plan.period_end) }
                        @if plan.invoices.is_empty() {
                            p.muted { "Nothing to bill in this period: no approved time left unbilled and no contract cycle starting." }
                        } @else {
                            p { (plan.invoices.len()) " draft invoice(s), " strong { (money(plan.currency, plan.gross)) } " in all." }
                            @if page.may_write {
                                form method="post" action={(base) "/act"} {
                                    input type="hidden" name="csrf_token" value=(frame.csrf);
                                    input type="hidden" name="idempotency_key" value=(page.key);
                                    input type="hidden" name="command" value="billing.run";
                                    input type="hidden" name="period_start" value=(plan.period_start);
                                    input type="hidden" name="period_end" value=(plan.period_end);
                                    button type="submit" { "Run billing and make the drafts" }
                                }
                            }
                        }
                    }
                    @for planned in &plan.invoices {
                        div.card.flush {
                            table.tickets {
                                caption { (planned.title) " — " (money(plan.currency, planned.gross)) " (net " (money(plan.currency, planned.net)) ", tax " (money(plan.currency, planned.tax)) ")" }
                                thead { tr { th scope="col" { "Line" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" } th.num scope="col" { "Net" } } }
                                tbody {
                                    @for line in &planned.lines {
                                        tr {
                                            td { (line.description) }
                                            td.num data-label="Quantity" { (plain(line.quantity)) " " span.small.muted { (unit(&line.unit_code)) } }
                                            td.num data-label="Unit price" { (money(plan.currency, line.unit_price)) }
                                            td.num data-label="Net" { (money(plan.currency, line.net)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if !plan.hours.is_empty() {
                        div.card {
                            h2 { "Block hours" }
                            ul { @for h in &plan.hours { li { (h.entry) " " (plain(h.hours.abs())) " h (cycle from " (h.cycle_start) ")" } } }
                        }
                    }
                    @if !plan.unbillable.is_empty() {
                        div.card {
                            h2 { "Approved time left unbilled" }
                            ul {
                                @for u in &plan.unbillable {
                                    li { a href={(frame.base()) "/service/tickets/" (u.ticket_id)} { "Ticket" } ": " (u.reason) }
                                }
                            }
                        }
                    }
                }
            }
            @if !page.runs.is_empty() {
                div.card {
                    h2 { "Recent runs" }
                    ul {
                        @for r in &page.runs {
                            li { (r.period_start) " to " (r.period_end) ": " (r.invoices) " draft(s), " (r.time_entries) " time entries, "
                                (r.charges) " charges, by " (r.actor.subject) ", " (moment(r.at)) }
                        }
                    }
                }
            }
        } },
    )
}

/// Contracts, their lifecycle buttons, and the form for a new one.
pub(crate) fn contracts(frame: &ConsoleFrame<'_>, page: &ContractsPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let mut keys = page.keys.iter();
    let mut key = move || keys.next().cloned().unwrap_or_default();
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Contracts",
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            div.heading { h1 { "Contracts" } }
            (nav(frame, "contracts"))
            @if page.contracts.is_empty() {
                div.card { p.muted { "No contracts yet: time is billed at the work types' rates." } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Contracts" }
                        thead { tr {
                            th scope="col" { "Contract" } th scope="col" { "Status" } th scope="col" { "Terms" } th scope="col" { "Runs" }
                        } }
                        tbody {
                            @for c in &page.contracts {
                                tr id=(contract_anchor(c.id)) {
                                    td {
                                        (c.name.as_str())
                                        @if let Some(po) = &c.purchase_order { br; span.small.muted { "PO " (po.as_str()) } }
                                        @if page.may_write {
                                            div.actions {
                                                @for (command, label) in contract_actions(c) {
                                                    (button_form(frame, &key(), command, ("contract_id", c.id.to_string()), label, command != "contract.activate"))
                                                }
                                            }
                                        }
                                    }
                                    td.c-status { span class={"health " (match c.status.as_str() { "active" => "ok", "suspended" => "warn", "draft" => "none", _ => "bad" })} { (c.status) } }
                                    td data-label="Terms" {
                                        (c.kind.as_str().replace('_', " "))
                                        @if let Some(amount) = c.amount { ", " (plain(amount)) " per " (c.billing_cycle.as_str().trim_end_matches("ly")) }
                                        @if let Some(block) = c.block_hours { ", " (plain(block)) " h" }
                                        @if let Some(rate) = c.overage_rate { ", then " (plain(rate)) "/h" }
                                        @if c.rollover { ", rollover" }
                                        @if let Some(left) = c.hours_left { br; span.small { (plain(left)) " h left" } }
                                    }
                                    td.small data-label="Runs" {
                                        (c.starts_on) " to " @match c.ends_on { Some(d) => { (d) } None => { "open-ended" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write {
                div.card.form-card {
                    h2 { "New contract" }
                    p.small.muted { "A draft until activated. A fixed fee and a per-unit price need an amount; a block of hours needs its price, its hours and the rate beyond it." }
                    form method="post" action={(base) "/act"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(key());
                        input type="hidden" name="command" value="contract.create";
                        label for="c-name" { "Name" }
                        input #c-name type="text" name="name" maxlength="200" required;
                        label for="c-kind" { "Kind" }
                        select #c-kind name="kind" {
                            option value="time_and_materials" { "Time and materials" }
                            option value="fixed_fee" { "Recurring fixed fee" }
                            option value="per_unit" { "Per unit (assets or contacts)" }
                            option value="block_hours" { "Block of hours" }
                        }
                        label for="c-starts" { "Starts on" }
                        input #c-starts type="date" name="starts_on" value=(page.today) required;
                        label for="c-ends" { "Ends on (optional)" }
                        input #c-ends type="date" name="ends_on";
                        label for="c-cycle" { "Billing cycle" }
                        select #c-cycle name="billing_cycle" {
                            option value="monthly" { "Monthly" } option value="quarterly" { "Quarterly" } option value="yearly" { "Yearly" }
                        }
                        label for="c-tax" { "Tax rate" }
                        select #c-tax name="tax" required {
                            @for t in &page.taxes { option value=(t) { (t) } }
                        }
                        label for="c-card" { "Rate card (optional)" }
                        select #c-card name="rate_card" {
                            option value="" { "None" }
                            @for r in &page.rate_cards { option value=(r) { (r) } }
                        }
                        label for="c-amount" { "Amount per cycle" }
                        input #c-amount type="text" name="amount" inputmode="decimal";
                        label for="c-units" { "Units counted (per unit)" }
                        select #c-units name="unit_source" {
                            option value="" { "—" } option value="assets" { "Assets in service" } option value="contacts" { "Contacts" }
                        }
                        label for="c-hours" { "Hours per cycle (block)" }
                        input #c-hours type="text" name="block_hours" inputmode="decimal";
                        label for="c-over" { "Rate beyond the block, per hour" }
                        input #c-over type="text" name="overage_rate" inputmode="decimal";
                        div.check {
                            input #c-roll type="checkbox" name="rollover" value="true";
                            label for="c-roll" { "Unused hours roll over" }
                        }
                        label for="c-po" { "Purchase order (optional)" }
                        input #c-po type="text" name="purchase_order" maxlength="100";
                        button type="submit" { "Create draft contract" }
                    }
                }
            }
        } },
    )
}

/// Payments received and refunds made, with the client's balance.
pub(crate) fn payments(frame: &ConsoleFrame<'_>, page: &PaymentsPage) -> Markup {
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Payments",
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            div.heading { h1 { "Payments" } }
            (nav(frame, "payments"))
            div.card { (balance_summary(&page.balance)) }
            @if page.payments.is_empty() {
                div.card { p.muted { "No payments yet. Record one from an invoice's page." } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Payments and refunds, newest first" }
                        thead { tr {
                            th scope="col" { "Day" } th scope="col" { "Kind" } th scope="col" { "Method" }
                            th.num scope="col" { "Amount" } th.num scope="col" { "Not yet applied" }
                        } }
                        tbody {
                            @for p in &page.payments {
                                tr {
                                    td { (p.received_on) @if let Some(r) = &p.reference { br; span.small.muted { (r.as_str()) } } }
                                    td data-label="Kind" { (p.kind.as_str()) }
                                    td data-label="Method" { (p.method.as_str().replace('_', " ")) }
                                    td.num data-label="Amount" { (money(p.currency, p.amount)) }
                                    td.num data-label="Not yet applied" {
                                        @if p.kind.as_str() == "refund" { "—" } @else { (money(p.currency, p.unallocated)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write {
                @if let Some(currency) = page.balance.currency {
                    div.columns {
                        div.card.form-card {
                            h2 { "Record a payment on account" }
                            p.small.muted { "Money received before its invoice: kept as the client's credit. To pay an invoice, record the payment on the invoice's page." }
                            form method="post" action={(frame.base()) "/financials/act"} {
                                input type="hidden" name="csrf_token" value=(frame.csrf);
                                input type="hidden" name="idempotency_key" value=(page.keys[0]);
                                input type="hidden" name="command" value="payment.record";
                                (money_fields("p", currency, "received_on", "Received on", None, page.today))
                                button type="submit" { "Record payment" }
                            }
                        }
                        @if page.balance.credit > Decimal::ZERO {
                            div.card.form-card {
                                h2 { "Refund the client's credit" }
                                p.small.muted { "The client holds " (money(currency, page.balance.credit)) " of credit; a refund pays it back." }
                                form method="post" action={(frame.base()) "/financials/act"} {
                                    input type="hidden" name="csrf_token" value=(frame.csrf);
                                    input type="hidden" name="idempotency_key" value=(page.keys[1]);
                                    input type="hidden" name="command" value="payment.refund";
                                    (money_fields("r", currency, "paid_on", "Paid on", Some(page.balance.credit), page.today))
                                    button.secondary type="submit" { "Record refund" }
                                }
                            }
                        }
                    }
                }
            }
        } },
    )
}

/// Amount, day, method and reference of a payment or refund form, their
/// ids prefixed with `prefix`.
fn money_fields(
    prefix: &str,
    currency: Currency,
    day: &str,
    day_label: &str,
    amount: Option<Decimal>,
    today: time::Date,
) -> Markup {
    html! {
        label for={(prefix) "-amount"} { "Amount (" (currency.code()) ")" }
        input id={(prefix) "-amount"} type="text" name="amount" inputmode="decimal" required
            value=[amount.map(|a| a.to_string())] pattern="[0-9]{1,13}([.][0-9]{1,2})?";
        label for={(prefix) "-day"} { (day_label) }
        input id={(prefix) "-day"} type="date" name=(day) required value=(today);
        label for={(prefix) "-method"} { "Method" }
        select id={(prefix) "-method"} name="method" {
            @for (value, name) in [("transfer", "Bank transfer"), ("card", "Card"), ("direct_debit", "Direct debit"), ("cash", "Cash"), ("cheque", "Cheque"), ("other", "Other")] {
                option value=(value) { (name) }
            }
        }
        label for={(prefix) "-reference"} { "Reference (optional)" }
        input id={(prefix) "-reference"} type="text" name="reference" maxlength="140";
    }
}

fn quote_class(status: &str) -> &'static str {
    match status {
        "accepted" | "converted" => "ok",
        "sent" => "warn",
        "declined" | "expired" => "bad",
        _ => "none",
    }
}

/// Quotes, newest first, and the form for a new one.
pub(crate) fn quotes(frame: &ConsoleFrame<'_>, page: &QuotesPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Quotes",
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            div.heading { h1 { "Quotes" } }
            (nav(frame, "quotes"))
            @if page.quotes.is_empty() {
                div.card { p.muted { "No quotes yet." } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Quotes, newest first" }
                        thead { tr {
                            th scope="col" { "Quote" } th scope="col" { "Status" } th scope="col" { "Valid until" }
                            th.num scope="col" { "Total" }
                        } }
                        tbody {
                            @for q in &page.quotes {
                                tr {
                                    td { a href={(base) "/quotes/" (q.id)} { (q.number) " · " (q.title) } br; span.small.muted { "Version " (q.version) } }
                                    td.c-status { span class={"health " (quote_class(&q.status))} { (q.status) } }
                                    td.small data-label="Valid until" { (q.valid_until) }
                                    td.num data-label="Total" { (money(q.currency, q.gross)) }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write {
                div.card.form-card {
                    h2 { "New quote" }
                    p.small.muted { "A draft until sent. Rows without a description are left out; prices exclude tax." }
                    form method="post" action={(base) "/act"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(page.key);
                        input type="hidden" name="command" value="quote.create";
                        label for="q-title" { "Title" }
                        input #q-title type="text" name="title" maxlength="200" required;
                        label for="q-valid" { "Valid until" }
                        input #q-valid type="date" name="valid_until" value=(page.valid_until) required;
                        @for n in 1..=QUOTE_ROWS {
                            fieldset.line {
                                legend { "Line " (n) }
                                label for={"q-d" (n)} { "Description" }
                                input id={"q-d" (n)} type="text" name={"description_" (n)} maxlength="500";
                                div.row {
                                    div { label for={"q-q" (n)} { "Quantity" } input id={"q-q" (n)} type="text" inputmode="decimal" name={"quantity_" (n)} value="1"; }
                                    div { label for={"q-p" (n)} { "Unit price" } input id={"q-p" (n)} type="text" inputmode="decimal" name={"unit_price_" (n)}; }
                                    div {
                                        label for={"q-t" (n)} { "Tax" }
                                        select id={"q-t" (n)} name={"tax_" (n)} { @for t in &page.taxes { option value=(t) { (t) } } }
                                    }
                                }
                            }
                        }
                        button type="submit" { "Create draft quote" }
                    }
                }
            }
        } },
    )
}

/// A quote: its lines and totals, the digest of the version sent, the
/// decision, and the actions valid now.
pub(crate) fn quote(frame: &ConsoleFrame<'_>, page: &QuotePage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let q = &page.quote;
    let c = q.currency;
    let key = |n: usize| page.keys.get(n).cloned().unwrap_or_default();
    let title = format!("Quote {}", q.number);
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        &title,
        html! { div.fin {
            (outcome_banner(frame, page.outcome.as_ref()))
            p.crumbs { a href={(base) "/quotes"} { "Quotes" } " / " (q.number) }
            div.heading { h1 { (title) ": " (q.title) " " span class={"health " (quote_class(&q.status))} { (q.status) } } }
            div.card {
                dl.facts {
                    div { dt { "Version" } dd { (q.version) } }
                    div { dt { "Valid until" } dd { (q.valid_until) } }
                    div { dt { "Total" } dd { strong { (money(c, q.gross)) } } }
                    @if let Some(at) = q.sent_at { div { dt { "Sent" } dd { (moment(at)) } } }
                    @if let (Some(at), Some(by)) = (q.decided_at, &q.decided_by) {
                        div { dt { (if q.state == "declined" { "Declined" } else { "Accepted" }) } dd { (by.name) br; span.small { (moment(at)) } } }
                    }
                    @if let Some(reason) = &q.decline_reason { div { dt { "Reason" } dd { (reason) } } }
                    @if let Some(invoice) = q.invoice_id { div { dt { "Invoice" } dd { a href={(base) "/invoices/" (invoice)} { "The draft it became" } } } }
                    @if let Some(contract) = q.contract_id { div { dt { "Contract" } dd { a href={(base) "/contracts#" (contract_anchor(contract))} { "The draft contract it became" } } } }
                }
                @if let Some(sha) = q.decided_digest.as_ref().or(q.sha256.as_ref()) {
                    p.small.muted { "SHA-256 of the version " @if q.decided_digest.is_some() { "decided on" } @else { "sent" } ": " code { (sha) } }
                }
                @if page.may_write {
                    div.actions.spaced {
                        @if q.state == "draft" {
                            form.inline method="post" action={(base) "/act"} {
                                input type="hidden" name="csrf_token" value=(frame.csrf);
                                input type="hidden" name="idempotency_key" value=(key(0));
                                input type="hidden" name="command" value="quote.send";
                                input type="hidden" name="quote_id" value=(q.id);
                                button type="submit" { "Send version " (q.version) }
                            }
                        }
                        @if q.state == "accepted" {
                            form.inline method="post" action={(base) "/act"} {
                                input type="hidden" name="csrf_token" value=(frame.csrf);
                                input type="hidden" name="idempotency_key" value=(key(1));
                                input type="hidden" name="command" value="quote.convert";
                                input type="hidden" name="quote_id" value=(q.id);
                                button type="submit" { "Convert to invoice" }
                            }
                        }
                    }
                }
            }
            div.card.flush {
                table.tickets {
                    caption { "Lines" }
                    thead { tr {
                        th scope="col" { "Description" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" }
                        th.num scope="col" { "Net" }
                    } }
                    tbody {
                        @for line in &q.lines {
                            tr {
                                td { (line.description) }
                                td.num data-label="Quantity" { (plain(line.quantity)) " " span.small.muted { (unit(&line.unit_code)) } }
                                td.num data-label="Unit price" { (money(c, line.unit_price)) }
                                td.num data-label="Net" { (money(c, line.net)) }
                            }
                        }
                    }
                }
                dl.facts.totals {
                    div { dt { "Net" } dd { (money(c, q.net)) } }
                    div { dt { "Tax" } dd { (money(c, q.tax)) } }
                    div { dt { "Total" } dd { strong { (money(c, q.gross)) } } }
                }
            }
            @if page.may_write && q.state == "accepted" && !one_tax(q) {
                div.card {
                    h2 { "Or convert to a contract" }
                    p.small.muted { "A contract charges at one tax rate, and this quote's lines are at several: convert it to an invoice, or write the contract on the Contracts page." }
                }
            }
            @if page.may_write && q.state == "accepted" && one_tax(q) {
                div.card.form-card {
                    h2 { "Or convert to a contract" }
                    p.small.muted {
                        "A recurring service: a draft fixed-fee contract named " strong { (q.title) } ", charging "
                        (money(c, q.net)) " net each cycle at the quote's tax rate. Activate it from Contracts."
                    }
                    form method="post" action={(base) "/act"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(key(3));
                        input type="hidden" name="command" value="quote.convert_to_contract";
                        input type="hidden" name="quote_id" value=(q.id);
                        div.row {
                            div { label for="k-start" { "Starts on" } input #k-start type="date" name="starts_on" value=(page.contract_start) required; }
                            div { label for="k-end" { "Ends on (optional)" } input #k-end type="date" name="ends_on"; }
                            div {
                                label for="k-cycle" { "Charged" }
                                select #k-cycle name="billing_cycle" {
                                    option value="monthly" { "Monthly" } option value="quarterly" { "Quarterly" } option value="yearly" { "Yearly" }
                                }
                            }
                        }
                        label for="k-po" { "Purchase order (optional)" }
                        input #k-po type="text" name="purchase_order" maxlength="100";
                        button type="submit" { "Create draft contract" }
                    }
                }
            }
            @if page.may_write && q.status == "sent" {
                @if let Some(sha) = &q.sha256 {
                    div.card.form-card {
                        h2 { "Record the client's decision" }
                        p.small.muted { "On version " (q.version) " exactly, as sent. The decision is signed evidence with its digest." }
                        form method="post" action={(base) "/act"} {
                            input type="hidden" name="csrf_token" value=(frame.csrf);
                            input type="hidden" name="idempotency_key" value=(key(2));
                            input type="hidden" name="quote_id" value=(q.id);
                            input type="hidden" name="sha256" value=(sha);
                            label for="d-name" { "Decided by (name and role, as the client gave them)" }
                            input #d-name type="text" name="name" maxlength="200" required;
                            label for="d-reason" { "Reason, if declined (optional)" }
                            input #d-reason type="text" name="reason" maxlength="2000";
                            div.actions {
                                button type="submit" name="command" value="quote.accept" { "Accepted" }
                                button.secondary type="submit" name="command" value="quote.decline" { "Declined" }
                            }
                        }
                    }
                }
            }
        } },
    )
}

/// What an ageing bucket reads as.
fn bucket_name(bucket: &str) -> &'static str {
    match bucket {
        "not_due" => "Not yet due",
        "1_30" => "1 to 30 days overdue",
        "31_60" => "31 to 60 days overdue",
        "61_90" => "61 to 90 days overdue",
        _ => "Over 90 days overdue",
    }
}

/// The reports: unbilled time, revenue by contract, ageing. Each sums the
/// documents it is about (the ageing adds up to the outstanding balance).
pub(crate) fn reports(frame: &ConsoleFrame<'_>, page: &ReportsPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let amount = |v: Decimal| match page.currency {
        Some(c) => money(c, v),
        None => plain(v),
    };
    let (unbilled_hours, unbilled_value): (Decimal, Decimal) =
        page.unbilled.iter().fold((Decimal::ZERO, Decimal::ZERO), |(h, v), r| (h + r.hours, v + r.value));
    let revenue: Decimal = page.revenue.iter().map(|r| r.net).sum();
    let ageing: Decimal = page.ageing.iter().map(|r| r.balance).sum();
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Reports",
        html! { div.fin {
            div.heading { h1 { "Reports" } }
            (nav(frame, "reports"))
            @if page.currency.is_none() {
                div.card { p { "This workspace has no billing profile yet, so nothing is invoiced; amounts show without a currency." } }
            }
            div.card.flush {
                table.tickets {
                    caption { "Unbilled time: approved, billable, not yet invoiced" }
                    thead { tr {
                        th scope="col" { "Contract" } th scope="col" { "Work type" } th.num scope="col" { "Entries" }
                        th.num scope="col" { "Hours" } th.num scope="col" { "Value" }
                    } }
                    tbody {
                        @if page.unbilled.is_empty() {
                            tr { td colspan="5" { span.muted { "No approved time waits to be billed." } } }
                        }
                        @for r in &page.unbilled {
                            tr {
                                td { (r.contract_name.as_deref().unwrap_or("No contract (time and materials)")) }
                                td data-label="Work type" { (r.work_type.as_str()) }
                                td.num data-label="Entries" { (r.entries) }
                                td.num data-label="Hours" { (plain(r.hours)) }
                                td.num data-label="Value" {
                                    (amount(r.value))
                                    @if r.unpriced > 0 { br; span.small { (r.unpriced) " without a rate" } }
                                }
                            }
                        }
                    }
                    @if !page.unbilled.is_empty() {
                        tfoot { tr {
                            th scope="row" colspan="3" { "Total" }
                            td.num data-label="Hours" { (plain(unbilled_hours)) }
                            td.num data-label="Value" { strong { (amount(unbilled_value)) } }
                        } }
                    }
                }
            }
            div.card.form-card {
                form.filters method="get" action={(base) "/reports"} {
                    label for="period_start" { "Revenue from" }
                    input #period_start type="date" name="period_start" value=(page.period_start) required;
                    label for="period_end" { "to (inclusive)" }
                    input #period_end type="date" name="period_end" value=(page.period_end) required;
                    button.secondary type="submit" { "Show" }
                }
                @if let Some(problem) = &page.problem { p role="alert" { (problem) } }
            }
            div.card.flush {
                table.tickets {
                    caption { "Revenue by contract, " (page.period_start) " to " (page.period_end) " (finalized invoices less credit notes, net of tax)" }
                    thead { tr {
                        th scope="col" { "Contract" } th.num scope="col" { "Documents" } th.num scope="col" { "Invoiced" }
                        th.num scope="col" { "Credited" } th.num scope="col" { "Net revenue" }
                    } }
                    tbody {
                        @if page.revenue.is_empty() {
                            tr { td colspan="5" { span.muted { "Nothing was invoiced in this period." } } }
                        }
                        @for r in &page.revenue {
                            tr {
                                td { (r.contract_name.as_deref().unwrap_or("No contract")) }
                                td.num data-label="Documents" { (r.invoices) }
                                td.num data-label="Invoiced" { (amount(r.invoiced)) }
                                td.num data-label="Credited" { (amount(r.credited)) }
                                td.num data-label="Net revenue" { (amount(r.net)) }
                            }
                        }
                    }
                    @if !page.revenue.is_empty() {
                        tfoot { tr {
                            th scope="row" colspan="4" { "Total" }
                            td.num data-label="Net revenue" { strong { (amount(revenue)) } }
                        } }
                    }
                }
            }
            div.card.flush {
                table.tickets {
                    caption { "Ageing of receivables: open balances by days past due" }
                    thead { tr { th scope="col" { "Due" } th.num scope="col" { "Invoices" } th.num scope="col" { "Balance" } } }
                    tbody {
                        @for r in &page.ageing {
                            tr {
                                td { (bucket_name(&r.bucket)) }
                                td.num data-label="Invoices" { (r.invoices) }
                                td.num data-label="Balance" { (amount(r.balance)) }
                            }
                        }
                    }
                    tfoot { tr {
                        th scope="row" colspan="2" { "Outstanding" }
                        td.num data-label="Balance" { strong { (amount(ageing)) } }
                    } }
                }
                @if page.balance.currency.is_some() && page.balance.outstanding != ageing {
                    p role="alert" { "The ageing does not add up to the outstanding balance (" (amount(page.balance.outstanding)) "): report this." }
                }
            }
        } },
    )
}

/// Work types (a form adds or changes one), rate cards and staff rate roles.
pub(crate) fn rates(frame: &ConsoleFrame<'_>, page: &RatesPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let amount = |v: Decimal| match page.currency {
        Some(c) => money(c, v),
        None => plain(v),
    };
    let f = &page.form;
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Rates",
        html! { div.fin {
            div.heading { h1 { "Rates" } }
            (nav(frame, "rates"))
            @if let Some((what, key)) = &page.saved {
                div class="outcome succeeded" role="status" { (what) " " code { (key) } " saved; the change is recorded with its signed credential. Time already approved keeps its rate." }
            }
            div.card.flush {
                table.tickets {
                    caption { "Work types: what time is logged as, and its default hourly rate" }
                    thead { tr {
                        th scope="col" { "Work type" } th scope="col" { "Key" } th.num scope="col" { "Hourly rate" }
                        th scope="col" { "Tax" } th scope="col" { "Billable" } @if page.may_write { th scope="col" { span.visually-hidden { "Change" } } }
                    } }
                    tbody {
                        @if page.work_types.is_empty() {
                            tr { td colspan="6" { span.muted { "No work types yet: add the first below." } } }
                        }
                        @for w in &page.work_types {
                            tr {
                                td { (w.name) @if w.archived { " " span class="health none" { "archived" } } }
                                td data-label="Key" { code { (w.key.as_str()) } }
                                td.num data-label="Hourly rate" { (amount(w.hourly_rate)) }
                                td data-label="Tax" { (w.tax) }
                                td data-label="Billable" { (if w.billable { "yes" } else { "no" }) }
                                @if page.may_write {
                                    td { a href={(base) "/rates?edit=" (w.key.as_str()) "#work-type-form"} { "Change" span.visually-hidden { " " (w.name) } } }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write {
                div.card.form-card #work-type-form {
                    h2 { @if f.existing { "Change the work type " code { (f.key) } } @else { "Add a work type" } }
                    @if let Some(problem) = &page.problem { p.error role="alert" { (problem) } }
                    form method="post" action={(base) "/rates/work-types"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        @if f.existing {
                            input type="hidden" name="existing" value="yes";
                            input type="hidden" name="key" value=(f.key);
                        } @else {
                            label for="w-key" { "Key (what time entries carry: a-z, 0-9 and _)" }
                            input #w-key type="text" name="key" value=(f.key) required maxlength="60" pattern="[a-z][a-z0-9_]*";
                        }
                        label for="w-name" { "Name" }
                        input #w-name type="text" name="name" value=(f.name) required maxlength="100";
                        div.row {
                            div {
                                label for="w-rate" { "Hourly rate" @if let Some(c) = page.currency { " (" (c.code()) ")" } }
                                input #w-rate type="text" inputmode="decimal" name="hourly_rate" value=(f.hourly_rate) required;
                            }
                            div {
                                label for="w-tax" { "Tax" }
                                select #w-tax name="tax" {
                                    @for t in &page.taxes { option value=(t) selected[&f.tax == t] { (t) } }
                                }
                            }
                        }
                        div.check {
                            input #w-billable type="checkbox" name="billable" value="yes" checked[f.billable];
                            label for="w-billable" { "Billable unless said otherwise" }
                        }
                        div.check {
                            input #w-archived type="checkbox" name="archived" value="yes" checked[f.archived];
                            label for="w-archived" { "Archived (no new time is logged as it)" }
                        }
                        button type="submit" { @if f.existing { "Save the work type" } @else { "Add the work type" } }
                        @if f.existing { " " a href={(base) "/rates#work-type-form"} { "Add another instead" } }
                    }
                }
            }
            @for card in &page.rate_cards {
                div.card.flush {
                    table.tickets {
                        caption {
                            "Rate card: " (card.name) " (" code { (card.key) } ")"
                            @if page.may_write {
                                " " a.small href={(base) "/rates?card=" (card.key) "#rate-card-form"} { "Change" span.visually-hidden { " the rate card " (card.name) } }
                            }
                        }
                        thead { tr { th scope="col" { "Work type" } th scope="col" { "Staff rate role" } th.num scope="col" { "Hourly rate" } } }
                        tbody {
                            @for r in &card.rates {
                                tr {
                                    td { (r.work_type.as_str()) }
                                    td data-label="Role" { (r.role.as_deref().unwrap_or("every role")) }
                                    td.num data-label="Hourly rate" { (amount(r.hourly_rate)) }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write { (rate_card_form(frame, page)) }
            div.card {
                h2 { "Staff rate roles" }
                @if page.staff.is_empty() {
                    p.muted { "No member of staff has a rate role: a rate card's rates for every role apply to all." }
                } @else {
                    ul { @for s in &page.staff { li { (s.subject) ": " code { (s.role) } } } }
                }
                @if page.may_write && !page.members.is_empty() {
                    @if let Some(problem) = &page.staff_problem { p.error role="alert" { (problem) } }
                    form method="post" action={(base) "/rates/staff"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        div.row {
                            div {
                                label for="s-member" { "Member of staff" }
                                select #s-member name="member" {
                                    @for m in &page.members {
                                        option value=(crate::financials_config::member_value(&m.issuer, &m.subject)) { (m.subject) " (" (m.role) ")" }
                                    }
                                }
                            }
                            div {
                                label for="s-role" { "Rate role (a-z, 0-9 and _)" }
                                input #s-role type="text" name="role" required maxlength="40" pattern="[a-z][a-z0-9_]*";
                            }
                        }
                        button.secondary type="submit" { "Set the rate role" }
                    }
                }
            }
        } },
    )
}

/// The form that adds a rate card or changes one: each row a work type, an
/// optional staff rate role and its hourly rate; a row without a rate is
/// left out.
fn rate_card_form(frame: &ConsoleFrame<'_>, page: &RatesPage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let c = &page.card;
    let rows = c.rows.len() + crate::financials_config::BLANK_RATE_ROWS;
    html! {
        div.card.form-card #rate-card-form {
            h2 { @if c.existing { "Change the rate card " code { (c.key) } } @else { "Add a rate card" } }
            p.small.muted { "A contract that names the card prices its time by these rates: a role's own rate first, else the rate for every role, else the work type's." }
            @if let Some(problem) = &page.card_problem { p.error role="alert" { (problem) } }
            form method="post" action={(base) "/rates/rate-cards"} {
                input type="hidden" name="csrf_token" value=(frame.csrf);
                input type="hidden" name="rows" value=(rows);
                @if c.existing {
                    input type="hidden" name="existing" value="yes";
                    input type="hidden" name="key" value=(c.key);
                } @else {
                    label for="rc-key" { "Key (what contracts name: a-z, 0-9 and _)" }
                    input #rc-key type="text" name="key" value=(c.key) required maxlength="60" pattern="[a-z][a-z0-9_]*";
                }
                label for="rc-name" { "Name" }
                input #rc-name type="text" name="name" value=(c.name) required maxlength="100";
                @for n in 1..=rows {
                    @let row = c.rows.get(n - 1);
                    fieldset.line {
                        legend { @if row.is_some() { "Rate " (n) } @else { "New rate" } }
                        div.row {
                            div {
                                label for={"rc-w" (n)} { "Work type" }
                                select id={"rc-w" (n)} name={"work_type_" (n)} {
                                    @for w in &page.work_types {
                                        option value=(w.key.as_str()) selected[row.is_some_and(|r| r.0 == w.key.as_str())] { (w.name) }
                                    }
                                }
                            }
                            div {
                                label for={"rc-r" (n)} { "Staff rate role (optional)" }
                                input id={"rc-r" (n)} type="text" name={"role_" (n)} maxlength="40" value=[row.map(|r| r.1.as_str())];
                            }
                            div {
                                label for={"rc-p" (n)} { "Hourly rate" }
                                input id={"rc-p" (n)} type="text" inputmode="decimal" name={"rate_" (n)} value=[row.map(|r| r.2.as_str())];
                            }
                        }
                    }
                }
                button type="submit" { @if c.existing { "Save the rate card" } @else { "Add the rate card" } }
                @if c.existing { " " a href={(base) "/rates#rate-card-form"} { "Add another instead" } }
            }
        }
    }
}

/// Services and products with their prices, and the form that adds or changes one.
pub(crate) fn catalogue(frame: &ConsoleFrame<'_>, page: &CataloguePage) -> Markup {
    let base = format!("{}/financials", frame.base());
    let amount = |v: Decimal| match page.currency {
        Some(c) => money(c, v),
        None => plain(v),
    };
    let f = &page.form;
    let units = [("MON", "per month"), ("C62", "each"), ("HUR", "per hour"), ("DAY", "per day")];
    console_tab_layout(
        frame,
        ConsoleTab::Financials,
        "Catalogue",
        html! { div.fin {
            div.heading { h1 { "Catalogue" } }
            (nav(frame, "catalogue"))
            @if let Some(key) = &page.saved {
                div class="outcome succeeded" role="status" { "Item " code { (key) } " saved; the change is recorded with its signed credential. Documents keep their lines." }
            }
            div.card.flush {
                table.tickets {
                    caption { "Services and products" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Key" } th.num scope="col" { "Price" }
                        th scope="col" { "Tax" } @if page.may_write { th scope="col" { span.visually-hidden { "Change" } } }
                    } }
                    tbody {
                        @if page.items.is_empty() {
                            tr { td colspan="6" { span.muted { "Nothing in the catalogue yet." } } }
                        }
                        @for i in &page.items {
                            tr {
                                td { (i.name) @if i.archived { " " span class="health none" { "archived" } } }
                                td data-label="Kind" { (i.kind) }
                                td data-label="Key" { code { (i.key) } }
                                td.num data-label="Price" {
                                    (amount(i.unit_price)) " "
                                    span.small.muted {
                                        (units.iter().find(|(c, _)| *c == i.unit_code.as_str()).map_or_else(|| unit(i.unit_code.as_str()).to_string(), |(_, n)| (*n).to_owned()))
                                    }
                                }
                                td data-label="Tax" { (i.tax) }
                                @if page.may_write {
                                    td { a href={(base) "/catalogue?edit=" (i.key) "#catalogue-form"} { "Change" span.visually-hidden { " " (i.name) } } }
                                }
                            }
                        }
                    }
                }
            }
            @if page.may_write {
                div.card.form-card #catalogue-form {
                    h2 { @if f.existing { "Change " code { (f.key) } } @else { "Add a service or product" } }
                    @if let Some(problem) = &page.problem { p.error role="alert" { (problem) } }
                    form method="post" action={(base) "/catalogue"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        @if f.existing {
                            input type="hidden" name="existing" value="yes";
                            input type="hidden" name="key" value=(f.key);
                        } @else {
                            label for="i-key" { "Key (a-z, 0-9 and _)" }
                            input #i-key type="text" name="key" value=(f.key) required maxlength="60" pattern="[a-z][a-z0-9_]*";
                        }
                        label for="i-name" { "Name" }
                        input #i-name type="text" name="name" value=(f.name) required maxlength="200";
                        div.row {
                            div {
                                label for="i-kind" { "Kind" }
                                select #i-kind name="kind" {
                                    option value="service" selected[f.kind == "service"] { "Service" }
                                    option value="product" selected[f.kind == "product"] { "Product" }
                                }
                            }
                            div {
                                label for="i-price" { "Price" @if let Some(c) = page.currency { " (" (c.code()) ")" } }
                                input #i-price type="text" inputmode="decimal" name="unit_price" value=(f.unit_price) required;
                            }
                            div {
                                label for="i-unit" { "Unit" }
                                select #i-unit name="unit_code" {
                                    @for (code, name) in units { option value=(code) selected[f.unit_code == code] { (name) } }
                                }
                            }
                            div {
                                label for="i-tax" { "Tax" }
                                select #i-tax name="tax" { @for t in &page.taxes { option value=(t) selected[&f.tax == t] { (t) } } }
                            }
                        }
                        div.check {
                            input #i-archived type="checkbox" name="archived" value="yes" checked[f.archived];
                            label for="i-archived" { "Archived (no longer offered)" }
                        }
                        button type="submit" { @if f.existing { "Save the item" } @else { "Add the item" } }
                        @if f.existing { " " a href={(base) "/catalogue#catalogue-form"} { "Add another instead" } }
                    }
                }
            }
        } },
    )
}

/// Whether all of `q`'s lines (one at least) are at one tax rate, as a contract made from it needs.
fn one_tax(q: &anchor_store::quotes::Quote) -> bool {
    q.lines.first().is_some_and(|first| q.lines.iter().all(|l| l.tax == first.tax))
}
