//! Quotes (read, accept, decline) and invoices (list, PDF) for the
//! client's portal administrator.

use super::*;

/// `GET /w/{ws}/portal/quotes`: the quotes offered to the company.
pub(crate) async fn quotes(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/quotes";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalQuotesRead, route).await {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let read = state.db.read(&frame.grant.workspace, |tx| Box::pin(async move { tx.quotes(None, 200).await })).await;
    match read {
        Ok(quotes) => {
            let offered: Vec<Quote> = quotes.into_iter().filter(|q| q.state != "draft").collect();
            pages::page(StatusCode::OK, quotes_page(&frame, &offered))
        }
        Err(e) => unavailable(e),
    }
}

/// A quote the company may see: not a draft, and only for whoever may read
/// quotes (to anyone else it does not exist).
async fn offered(state: &WebState, frame: &Frame, id: &str) -> Result<Option<Quote>, anchor_store::StoreError> {
    let Ok(id) = id.parse::<QuoteId>() else { return Ok(None) };
    if !frame.grant.allows(Permission::PortalQuotesRead) {
        return Ok(None);
    }
    let quote = state.db.read(&frame.grant.workspace, |tx| Box::pin(tx.quote(id))).await?;
    Ok(quote.filter(|q| q.state != "draft"))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QuoteQuery {
    #[serde(default)]
    decided: Option<String>,
}

/// `GET /w/{ws}/portal/quotes/{id}`.
pub(crate) async fn quote(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<QuoteQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal/quotes/{id}";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    match offered(&state, &frame, &id).await {
        Ok(Some(quote)) => {
            let today = OffsetDateTime::now_utc().date();
            pages::page(StatusCode::OK, quote_page(&frame, &quote, today, query.decided.as_deref()))
        }
        Ok(None) => not_found("quote"),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    /// `accept` or `decline`.
    #[serde(default)]
    decision: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    reason: String,
}

/// `POST /w/{ws}/portal/quotes/{id}/decide`: `portal.quote.accept` or
/// `portal.quote.decline`, on the version the page showed.
pub(crate) async fn decide(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/quotes/{id}/decide";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let quote = match offered(&state, &frame, &id).await {
        Ok(Some(quote)) => quote,
        Ok(None) => return not_found("quote"),
        Err(e) => return unavailable(e),
    };
    if let Some(permission) = [Permission::PortalQuotesDecide].into_iter().find(|p| !frame.grant.allows(*p)) {
        return forbidden(permission, frame.grant.role, &headers);
    }
    let (name, args) = match form.decision.as_str() {
        "accept" => ("portal.quote.accept", serde_json::json!({"quote_id": quote.id, "sha256": form.sha256})),
        "decline" => {
            let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
            let mut args = serde_json::json!({"quote_id": quote.id, "sha256": form.sha256});
            if let Some(reason) = reason {
                args["reason"] = reason.into();
            }
            ("portal.quote.decline", args)
        }
        _ => {
            return pages::declined(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose accept or decline",
                "Reload the page and try again.",
            );
        }
    };
    let failed = "Your decision was not recorded";
    if let Err(page) = frame.submit(&state, &headers, name, args, &form.idempotency_key, route, failed).await {
        return page;
    }
    let done = if form.decision == "accept" { "accepted" } else { "declined" };
    Redirect::to(&format!("/w/{}/portal/quotes/{}?decided={done}", frame.slug(), quote.id)).into_response()
}

// ---------------------------------------------------------------- invoices

/// `GET /w/{ws}/portal/invoices`: the company's issued invoices and credit
/// notes (never a draft), with what is still owed and their PDFs.
pub(crate) async fn invoices(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/invoices";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalInvoicesRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let filter = InvoiceFilter { issued: true, ..InvoiceFilter::default() };
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| Box::pin(async move { tx.invoices(&filter, None, 200).await }))
        .await;
    match read {
        Ok(invoices) => pages::page(StatusCode::OK, invoices_page(&frame, &invoices)),
        Err(e) => unavailable(e),
    }
}

/// `GET /w/{ws}/portal/invoices/{id}/pdf`: the PDF as rendered when the
/// document was finalized, to whoever may read the company's invoices.
pub(crate) async fn invoice_pdf(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/invoices/{id}/pdf";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    // Outside the role's scope, or a draft: no such document.
    let Ok(id) = id.parse::<InvoiceId>() else { return not_found("invoice") };
    if !frame.grant.allows(Permission::PortalInvoicesRead) {
        return not_found("invoice");
    }
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move {
                let Some(invoice) = tx.invoice(id).await? else { return Ok(None) };
                if invoice.state == anchor_domain::InvoiceState::Draft {
                    return Ok(None);
                }
                Ok(tx.invoice_pdf(id).await?.map(|pdf| (pdf, invoice.number)))
            })
        })
        .await;
    match read {
        Ok(Some(((bytes, sha256), number))) => crate::financials::pdf_response(bytes, &sha256, number, id),
        Ok(None) => not_found("invoice"),
        Err(e) => unavailable(e),
    }
}

fn quote_status(q: &Quote) -> (&'static str, &'static str) {
    match q.status.as_str() {
        "sent" => ("running", "Awaiting your decision"),
        "accepted" | "converted" => ("succeeded", "Accepted"),
        "declined" => ("failed", "Declined"),
        "expired" => ("cancelled", "Expired"),
        _ => ("queued", "Offered"),
    }
}

fn money(amount: rust_decimal::Decimal, currency: &anchor_domain::Currency) -> String {
    crate::financials_pages::money(*currency, amount)
}

fn quotes_page(frame: &Frame, quotes: &[Quote]) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "quotes", "Quotes", html! {
            div.heading { h1 { "Quotes" } }
            p.muted { "Work your IT provider has offered " (frame.grant.workspace.name()) ". Open one to read it in full and accept or decline it." }
            div.card.flush tabindex="0" role="region" aria-label="Quotes" {
                @if quotes.is_empty() {
                    p.pad { "No quotes yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Quotes" }
                        thead { tr {
                            th scope="col" { "Quote" } th scope="col" { "Status" } th scope="col" { "Valid until" } th.num scope="col" { "Total" }
                        } }
                        tbody {
                            @for q in quotes {
                                @let (class, label) = quote_status(q);
                                tr {
                                    td { a href={"/w/" (slug) "/portal/quotes/" (q.id)} { (q.number) " · " (q.title) } }
                                    td { span class={"status " (class)} { (label) } }
                                    td data-label="Valid until" { (q.valid_until) }
                                    td.num data-label="Total" { (money(q.gross, &q.currency)) }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

fn quote_page(frame: &Frame, q: &Quote, today: time::Date, decided: Option<&str>) -> Markup {
    let slug = frame.slug();
    let (class, label) = quote_status(q);
    let open = q.status == "sent" && q.valid_until >= today;
    let lacking = frame.lacking(Permission::PortalQuotesDecide);
    let key = random_token();
    html! {
        (portal_layout(frame, "quotes", &q.title, html! {
            p.crumbs { a href={"/w/" (slug) "/portal/quotes"} { "Quotes" } " / " (q.number) }
            @match decided {
                Some("accepted") => { div.outcome.succeeded role="status" { "Thank you: you accepted this quote. Your IT provider has been told; a signed record keeps exactly what you accepted." } }
                Some("declined") => { div.outcome.succeeded role="status" { "You declined this quote. Your IT provider has been told." } }
                _ => {}
            }
            div.heading { h1 { (q.number) ": " (q.title) } }
            div.badges { span class={"status " (class)} { (label) } " Version " (q.version) " · valid until " (q.valid_until) }
            section.card.spaced aria-labelledby="lines-heading" {
                h2 #lines-heading { "What is offered" }
                div.scroll tabindex="0" role="region" aria-label="Quote lines" { table {
                    caption.visually-hidden { "Quote lines" }
                    thead { tr { th scope="col" { "Description" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" } th.num scope="col" { "Net" } } }
                    tbody {
                        @for line in &q.lines {
                            tr {
                                td { (line.description) }
                                td.num { (line.quantity.normalize()) }
                                td.num { (money(line.unit_price, &q.currency)) }
                                td.num { (money(line.net, &q.currency)) }
                            }
                        }
                    }
                } }
                dl.facts.totals {
                    div { dt { "Net" } dd { (money(q.net, &q.currency)) } }
                    div { dt { "Tax" } dd { (money(q.tax, &q.currency)) } }
                    div { dt { "Total" } dd { strong { (money(q.gross, &q.currency)) } } }
                }
                @if let Some(note) = &q.note { p.pre { (note) } }
            }
            @if let (Some(by), Some(at)) = (&q.decided_by, q.decided_at) {
                p { (label) " by " strong { (by.name) } " " (pages::moment(at)) "." }
            }
            @if open {
                section.card.spaced aria-labelledby="decide-heading" {
                    h2 #decide-heading { "Your decision" }
                    @if let Some(why) = &lacking { p.small.muted #why-decide { (why) } }
                    p.small.muted { "You decide on exactly this version (its fingerprint: " code { (q.sha256.as_deref().unwrap_or("")) } "), as " (frame.contact.name) "." }
                    form.stack method="post" action={"/w/" (slug) "/portal/quotes/" (q.id) "/decide"} {
                        input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                        input type="hidden" name="idempotency_key" value=(key);
                        input type="hidden" name="sha256" value=(q.sha256.as_deref().unwrap_or(""));
                        label for="reason" { "A reason, if you decline (optional)" }
                        textarea #reason name="reason" rows="3" maxlength="2000" disabled[lacking.is_some()] {}
                        div.actions {
                            button type="submit" name="decision" value="accept" disabled[lacking.is_some()] { "Accept quote" }
                            " "
                            button.secondary type="submit" name="decision" value="decline" disabled[lacking.is_some()] { "Decline" }
                        }
                    }
                }
            }
        }))
    }
}

fn invoices_page(frame: &Frame, invoices: &[Invoice]) -> Markup {
    let slug = frame.slug();
    html! {
        (portal_layout(frame, "invoices", "Invoices", html! {
            div.heading { h1 { "Invoices" } }
            p.muted { "Invoices and credit notes your IT provider issued to " (frame.grant.workspace.name()) ", newest first. Each PDF is the document as issued." }
            div.card.flush tabindex="0" role="region" aria-label="Invoices" {
                @if invoices.is_empty() {
                    p.pad { "No invoices yet." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Invoices and credit notes" }
                        thead { tr {
                            th scope="col" { "Document" } th scope="col" { "Issued" } th scope="col" { "Due" }
                            th.num scope="col" { "Total" } th.num scope="col" { "Still owed" } th scope="col" { "PDF" }
                        } }
                        tbody {
                            @for i in invoices {
                                @let number = i.number.clone().unwrap_or_else(|| i.id.to_string());
                                @let kind = if i.kind == anchor_domain::InvoiceKind::CreditNote { "Credit note" } else { "Invoice" };
                                tr {
                                    td { (kind) " " (number) }
                                    td data-label="Issued" { @if let Some(d) = i.issued_on { (d) } }
                                    td data-label="Due" {
                                        @if let Some(d) = i.due_on { (d) }
                                        @if let Some(days) = i.days_overdue.filter(|d| *d > 0) { " " span.sla.breached { (days) " days overdue" } }
                                    }
                                    td.num data-label="Total" { (money(i.gross, &i.currency)) }
                                    td.num data-label="Still owed" { @match i.balance { Some(b) => { (money(b, &i.currency)) } None => { "" } } }
                                    td { a href={"/w/" (slug) "/portal/invoices/" (i.id) "/pdf"} download { "Download " span.visually-hidden { (kind) " " (number) " as " } "PDF" } }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}
