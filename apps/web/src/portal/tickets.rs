//! The client's tickets: the list, opening one, reading and answering it,
//! rating its resolution.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// `open` (default) or `all`.
    #[serde(default)]
    show: Option<String>,
    /// `mine` (default for a company-wide role: every ticket) ...
    #[serde(default)]
    whose: Option<String>,
}

/// `GET /w/{ws}/portal`: the tickets in scope, newest first.
pub(crate) async fn home(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let all = query.show.as_deref() == Some("all");
    let mine_only = query.whose.as_deref() == Some("mine") || frame.scope != Scope::Company;
    let mut filter = TicketFilter { open_only: !all, ..TicketFilter::default() };
    if mine_only {
        filter.contact_id = Some(frame.contact.id);
    }
    frame.scope.narrow(&mut filter);
    let read = state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move { tx.tickets(&filter, TicketSort::Updated, None, 100).await })
        })
        .await;
    let tickets = match read {
        Ok(read) => read,
        Err(e) => return unavailable(e),
    };
    pages::page(StatusCode::OK, list_page(&frame, &tickets, all, mine_only))
}

/// `GET /w/{ws}/portal/tickets/new`.
pub(crate) async fn new_ticket(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/tickets/new";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    pages::page(StatusCode::OK, new_ticket_page(&frame, &NewTicketForm::default(), None))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewTicketForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
}

/// `POST /w/{ws}/portal/tickets`: opens a ticket (`portal.ticket.open`).
pub(crate) async fn open_ticket(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<NewTicketForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let mut problems = Vec::new();
    if form.title.trim().is_empty() || form.title.trim().chars().count() > 200 {
        problems.push("Subject: one line, 1 to 200 characters.");
    }
    if form.description.trim().is_empty() || form.description.chars().count() > 20_000 {
        problems.push("What happened: up to 20,000 characters, and not empty.");
    }
    let priority = Priority::ALL.into_iter().find(|p| p.as_str() == form.priority).unwrap_or(Priority::P3);
    if !problems.is_empty() {
        let page = new_ticket_page(&frame, &form, Some(&problems));
        return pages::page(StatusCode::UNPROCESSABLE_ENTITY, page);
    }
    let args = serde_json::json!({
        "title": form.title.trim(), "description": form.description.trim(), "priority": priority.as_str(),
    });
    let failed = "The ticket was not opened";
    let key = &form.idempotency_key;
    let receipt = match frame.submit(&state, &headers, "portal.ticket.open", args, key, route, failed).await {
        Ok(receipt) => receipt,
        Err(page) => return page,
    };
    let slug = frame.slug();
    match receipt.execution.result.as_ref().and_then(|r| r["ticket_id"].as_str()) {
        Some(ticket) => Redirect::to(&format!("/w/{slug}/portal/tickets/{ticket}?opened=1")).into_response(),
        // Still on its way: the list shows it once it is there.
        None => Redirect::to(&format!("/w/{slug}/portal?pending=1")).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TicketQuery {
    #[serde(default)]
    opened: Option<String>,
    #[serde(default)]
    replied: Option<String>,
    #[serde(default)]
    rated: Option<String>,
}

/// Everything a portal ticket page shows.
pub(crate) struct TicketView {
    ticket: Ticket,
    /// Public comments only, with their authors' names.
    comments: Vec<(Comment, String)>,
    sla: Option<anchor_sla::SlaClocks>,
    contact_name: Option<String>,
    now: OffsetDateTime,
    key: String,
    /// The current resolution's number (0: never resolved) and the ratings given.
    resolution: i32,
    ratings: Vec<anchor_store::tickets::Rating>,
}

/// `GET /w/{ws}/portal/tickets/{id}`.
pub(crate) async fn ticket(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal/tickets/{id}";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsRead, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    match read_ticket(&state, &frame, id).await {
        Ok(Some(view)) => {
            let notice = if query.opened.is_some() {
                Some("Your ticket is open. We will answer here; you can add to it below at any time.")
            } else if query.replied.is_some() {
                Some("Your reply was added. We owe you the next answer.")
            } else if query.rated.is_some() {
                Some("Thank you for your rating.")
            } else {
                None
            };
            pages::page(StatusCode::OK, ticket_page(&frame, &view, notice))
        }
        Ok(None) => not_found("ticket"),
        Err(e) => unavailable(e),
    }
}

async fn read_ticket(
    state: &WebState,
    frame: &Frame,
    id: TicketId,
) -> Result<Option<TicketView>, anchor_store::StoreError> {
    let scope = frame.scope;
    state
        .db
        .read(&frame.grant.workspace, |tx| {
            Box::pin(async move {
                let Some(ticket) = tx.ticket(id).await? else { return Ok(None) };
                if !scope.sees(&ticket) {
                    return Ok(None);
                }
                let now = tx.clock().await?;
                let mut comments = Vec::new();
                for comment in tx.ticket_comments(id).await? {
                    if comment.visibility != CommentVisibility::Public {
                        continue;
                    }
                    let name = if comment.author.issuer == PORTAL_ISSUER {
                        match comment.author.subject.parse::<ContactId>() {
                            Ok(contact) => tx
                                .contact(contact)
                                .await?
                                .map_or_else(|| "Your colleague".to_owned(), |c| c.name.to_string()),
                            Err(_) => "Your colleague".to_owned(),
                        }
                    } else {
                        format!("{} (IT support)", comment.author.subject)
                    };
                    comments.push((comment, name));
                }
                let sla = anchor_commands::sla::clocks(tx, id, now).await.unwrap_or_else(|e| {
                    tracing::error!(ticket = %id, error = %e, "a ticket's SLA clocks cannot be replayed");
                    None
                });
                let contact_name = match ticket.contact_id {
                    Some(contact) => tx.contact(contact).await?.map(|c| c.name.to_string()),
                    None => None,
                };
                let resolution = tx.resolutions(id).await?;
                let ratings = tx.ratings(id).await?;
                Ok(Some(TicketView {
                    ticket,
                    comments,
                    sla,
                    contact_name,
                    now,
                    key: random_token(),
                    resolution,
                    ratings,
                }))
            })
        })
        .await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    body: String,
}

/// `POST /w/{ws}/portal/tickets/{id}/reply`: `portal.ticket.reply`.
pub(crate) async fn reply(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets/{id}/reply";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    // Outside the scope it does not exist (the skill decides again).
    match read_ticket(&state, &frame, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found("ticket"),
        Err(e) => return unavailable(e),
    };
    if form.body.trim().is_empty() || form.body.chars().count() > 20_000 {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The reply is empty or too long",
            "Write up to 20,000 characters, then send it again.",
        );
    }
    let args = serde_json::json!({"ticket_id": id, "body": form.body.trim()});
    let failed = "The reply was not added";
    let key = &form.idempotency_key;
    if let Err(page) = frame.submit(&state, &headers, "portal.ticket.reply", args, key, route, failed).await {
        return page;
    }
    Redirect::to(&format!("/w/{}/portal/tickets/{id}?replied=1", frame.slug())).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

/// `POST /w/{ws}/portal/tickets/{id}/rate`: `portal.ticket.rate`.
pub(crate) async fn rate(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    form: Result<Form<RateForm>, FormRejection>,
) -> Response {
    let route = "POST /w/{ws}/portal/tickets/{id}/rate";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::PortalTicketsWrite, route).await
    {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&frame.session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let Ok(id) = id.parse::<TicketId>() else { return not_found("ticket") };
    match read_ticket(&state, &frame, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found("ticket"),
        Err(e) => return unavailable(e),
    }
    let Some(score) = form.score.parse::<u8>().ok().filter(|s| (1..=5).contains(s)) else {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a score",
            "Pick 1 (poor) to 5 (excellent), then send it again.",
        );
    };
    let mut args = serde_json::json!({"ticket_id": id, "score": score});
    if let Some(comment) = Some(form.comment.trim()).filter(|c| !c.is_empty()) {
        args["comment"] = comment.into();
    }
    let failed = "Your rating was not recorded";
    let key = &form.idempotency_key;
    if let Err(page) = frame.submit(&state, &headers, "portal.ticket.rate", args, key, route, failed).await {
        return page;
    }
    Redirect::to(&format!("/w/{}/portal/tickets/{id}?rated=1", frame.slug())).into_response()
}

fn status_class(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Resolved | TicketStatus::Closed => "succeeded",
        TicketStatus::WaitingOnClient => "queued",
        _ => "running",
    }
}

fn list_page(frame: &Frame, tickets: &[Ticket], all: bool, mine_only: bool) -> Markup {
    let slug = frame.slug();
    let company = frame.scope == Scope::Company;
    let lacking_company = frame.lacking(Permission::PortalTicketsCompany);
    let lacking_write = frame.lacking(Permission::PortalTicketsWrite);
    let link = |show: &str, whose: &str| format!("/w/{slug}/portal?show={show}&whose={whose}");
    let whose = if mine_only { "mine" } else { "company" };
    html! {
        (portal_layout(frame, "home", "Tickets", html! {
            div.heading {
                h1 { @if mine_only { "My tickets" } @else { "All of " (frame.grant.workspace.name()) "'s tickets" } }
                @match &lacking_write {
                    None => { a.button href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } }
                    Some(why) => {
                        span.disabled-action {
                            button type="button" disabled aria-describedby="why-open" { "Open a ticket" }
                            span #why-open.small.muted { (why) }
                        }
                    }
                }
            }
            nav.subnav aria-label="Which tickets" {
                a href=(link("open", whose)) aria-current=[(!all).then_some("page")] { "Open" }
                a href=(link("all", whose)) aria-current=[all.then_some("page")] { "All, including resolved" }
                @if company {
                    a href=(link(if all { "all" } else { "open" }, "mine")) aria-current=[mine_only.then_some("page")] { "Mine" }
                    a href=(link(if all { "all" } else { "open" }, "company")) aria-current=[(!mine_only).then_some("page")] { "Everyone's" }
                } @else if let Some(why) = &lacking_company {
                    span.disabled-action {
                        button type="button" disabled aria-describedby="why-company" { "Everyone's tickets" }
                        span #why-company.small.muted { (why) }
                    }
                }
            }
            div.card.flush tabindex="0" role="region" aria-label="Tickets" {
                @if tickets.is_empty() {
                    p.pad { @if all { "No tickets yet." } @else { "No open tickets. " }
                        @if lacking_write.is_none() { a href={"/w/" (slug) "/portal/tickets/new"} { "Open a ticket" } " when you need help." } }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Tickets" }
                        thead { tr {
                            th scope="col" { "Ticket" }
                            th scope="col" { "Status" }
                            th scope="col" { "Priority" }
                            th scope="col" { "Next answer" }
                            th scope="col" { "Updated" }
                        } }
                        tbody {
                            @for t in tickets {
                                tr {
                                    td { a href={"/w/" (slug) "/portal/tickets/" (t.id)} { (t.title.as_str()) } }
                                    td { span class={"status " (status_class(t.status))} { (pages::status_text(t.status)) } }
                                    td { span class={"prio " (t.priority.as_str())} { (pages::priority_label(t.priority)) } }
                                    td data-label="Next answer" { (owes(t)) }
                                    td data-label="Updated" { (pages::moment(t.updated_at)) }
                                }
                            }
                        }
                    }
                }
            }
            p.small.muted { "Times are in UTC." }
        }))
    }
}

fn owes(t: &Ticket) -> Markup {
    if !t.status.is_open() {
        return html! { span.muted { "Nobody: it is " (pages::status_text(t.status).to_lowercase()) } };
    }
    match t.awaiting {
        anchor_domain::Awaiting::Us => html! { span.owes.us { "Your IT provider" } },
        anchor_domain::Awaiting::Client => html! { span.owes.client { "You" } },
    }
}

fn new_ticket_page(frame: &Frame, form: &NewTicketForm, problems: Option<&[&str]>) -> Markup {
    let slug = frame.slug();
    let key = random_token();
    let lacking = frame.lacking(Permission::PortalTicketsWrite);
    html! {
        (portal_layout(frame, "tickets", "Open a ticket", html! {
            p.crumbs { a href={"/w/" (slug) "/portal"} { "Tickets" } " / Open a ticket" }
            div.card.form-card {
                h1 { "Open a ticket" }
                @if let Some(problems) = problems {
                    div.outcome.failed role="alert" { strong { "Not sent yet." } ul { @for p in problems { li { (p) } } } }
                }
                @if let Some(why) = &lacking { p.outcome.failed role="note" { (why) } }
                form.stack method="post" action={"/w/" (slug) "/portal/tickets"} {
                    input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                    input type="hidden" name="idempotency_key" value=(key);
                    label for="title" { "Subject" }
                    input #title type="text" name="title" required maxlength="200" value=(form.title) autocomplete="off";
                    label for="description" { "What happened?" }
                    textarea #description name="description" required rows="7" maxlength="20000" { (form.description) }
                    label for="priority" { "How urgent is it?" }
                    select #priority name="priority" {
                        option value="p1" selected[form.priority == "p1"] { "Critical: work has stopped for many people" }
                        option value="p2" selected[form.priority == "p2"] { "High: work has stopped for me" }
                        option value="p3" selected[form.priority.is_empty() || form.priority == "p3"] { "Normal: something is broken or slow" }
                        option value="p4" selected[form.priority == "p4"] { "Low: a question or a request" }
                    }
                    p.small.muted { "Opened as " (frame.contact.name)
                        @if let Some(email) = &frame.contact.email { " (" (email.as_str()) ")" }
                        ". Your IT provider sees who you are and where you work." }
                    button type="submit" disabled[lacking.is_some()] { "Open the ticket" }
                }
            }
        }))
    }
}

fn promise(c: &anchor_sla::TargetClock, label: &str, now: OffsetDateTime) -> Markup {
    html! {
        div.promise {
            dt { (label) }
            dd {
                @if let Some(done) = c.completed_at {
                    "Done " (pages::moment(done))
                    @if c.state == anchor_sla::ClockState::Breached { " (later than promised)" }
                } @else if let Some(due) = c.due_at {
                    "By " (pages::moment(due)) " "
                    span.small.muted { "(" (pages::due_text(due, now)) ")" }
                    @if c.state == anchor_sla::ClockState::Paused { " " span.muted { "paused while we wait for you" } }
                } @else if c.target_duration.is_none() {
                    span.muted { "No promise for this priority" }
                } @else {
                    span.muted { "Starts with our first reply" }
                }
            }
        }
    }
}

fn ticket_page(frame: &Frame, view: &TicketView, notice: Option<&str>) -> Markup {
    let slug = frame.slug();
    let t = &view.ticket;
    let lacking = frame.lacking(Permission::PortalTicketsWrite);
    let closed = t.status == TicketStatus::Closed;
    html! {
        (portal_layout(frame, "tickets", t.title.as_str(), html! {
            p.crumbs { a href={"/w/" (slug) "/portal"} { "Tickets" } " / " (t.title.as_str()) }
            @if let Some(notice) = notice { div.outcome.succeeded role="status" { (notice) } }
            div.heading { h1 { (t.title.as_str()) } }
            div.badges {
                span class={"status " (status_class(t.status))} { (pages::status_text(t.status)) }
                " "
                span class={"prio " (t.priority.as_str())} { (pages::priority_label(t.priority)) }
                " Next answer: " (owes(t))
            }
            div.columns {
                div {
                    section.card aria-labelledby="conversation" {
                        h2 #conversation { "Conversation" }
                        ol.timeline {
                            li.entry {
                                p.meta {
                                    strong {
                                        @if t.created_by.issuer == PORTAL_ISSUER { (view.contact_name.as_deref().unwrap_or("You")) }
                                        @else { (t.created_by.subject) " (IT support)" }
                                    }
                                    " opened it · " (pages::moment(t.created_at))
                                }
                                @if t.description.trim().is_empty() { p.muted { "No description." } }
                                @else { div.pre { (t.description) } }
                            }
                            @for (c, name) in &view.comments {
                                li.entry {
                                    p.meta { strong { (name) } " · " (pages::moment(c.created_at)) }
                                    div.pre { (c.body) }
                                }
                            }
                        }
                    }
                    (rating_part(frame, view, lacking.as_deref()))
                    section.card aria-labelledby="reply-heading" {
                        h2 #reply-heading { "Reply" }
                        @if closed {
                            p.muted { "This ticket is closed. " a href={"/w/" (slug) "/portal/tickets/new"} { "Open a new ticket" } " if you need more help." }
                        } @else {
                            @if let Some(why) = &lacking { p.small.muted #why-reply { (why) } }
                            form.composer method="post" action={"/w/" (slug) "/portal/tickets/" (t.id) "/reply"} {
                                input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                                input type="hidden" name="idempotency_key" value=(view.key);
                                label for="body" { "Your reply" }
                                textarea #body name="body" rows="5" required maxlength="20000" disabled[lacking.is_some()] {}
                                @if matches!(t.status, TicketStatus::Resolved) {
                                    p.small.muted { "Replying reopens this ticket." }
                                }
                                div.actions { button type="submit" disabled[lacking.is_some()] { "Send reply" } }
                            }
                        }
                    }
                }
                div.side-column {
                    section.card aria-labelledby="promise-heading" {
                        h2 #promise-heading { "What we promised" }
                        @match &view.sla {
                            Some(sla) => {
                                dl.facts {
                                    (promise(sla.clock(anchor_sla::Target::FirstResponse), "First response", view.now))
                                    (promise(sla.clock(anchor_sla::Target::Resolution), "Resolution", view.now))
                                }
                            }
                            None => { p.muted { "Your agreement sets no response times for this ticket." } }
                        }
                    }
                    section.card aria-labelledby="facts-heading" {
                        h2 #facts-heading { "Details" }
                        dl.facts {
                            div { dt { "Ticket" } dd { code { (t.id) } } }
                            div { dt { "For" } dd { (view.contact_name.as_deref().unwrap_or("Your company")) } }
                            div { dt { "Opened" } dd { (pages::moment(t.created_at)) } }
                            div { dt { "Last change" } dd { (pages::moment(t.updated_at)) } }
                        }
                    }
                }
            }
        }))
    }
}

/// "How did we do?" once a ticket is resolved, once per resolution; the
/// ratings given so far.
fn rating_part(frame: &Frame, view: &TicketView, lacking: Option<&str>) -> Markup {
    let t = &view.ticket;
    let rated = view.ratings.iter().find(|r| r.resolution == view.resolution);
    let open_for_rating = !t.status.is_open() && view.resolution > 0 && rated.is_none();
    html! {
        @if open_for_rating {
            section.card #rate aria-labelledby="rate-heading" {
                h2 #rate-heading { "How did we do?" }
                @if let Some(why) = lacking { p.small.muted { (why) } }
                form.stack method="post" action={"/w/" (frame.slug()) "/portal/tickets/" (t.id) "/rate"} {
                    input type="hidden" name="csrf_token" value=(frame.session.csrf_token);
                    input type="hidden" name="idempotency_key" value={(view.key) "-rate"};
                    fieldset {
                        legend { "Your rating of this resolution" }
                        @for (score, label) in [(5, "5, excellent"), (4, "4, good"), (3, "3, fair"), (2, "2, poor"), (1, "1, very poor")] {
                            label.choice {
                                input type="radio" name="score" value=(score) required disabled[lacking.is_some()];
                                " " (label)
                            }
                        }
                    }
                    label for="rate-comment" { "Anything to add? (optional)" }
                    textarea #rate-comment name="comment" rows="3" maxlength="2000" disabled[lacking.is_some()] {}
                    button type="submit" disabled[lacking.is_some()] { "Send rating" }
                }
            }
        }
        @for r in &view.ratings {
            p.small { "Resolution " (r.resolution) " rated " strong { (r.score) " of 5" } " " (pages::moment(r.created_at))
                @if let Some(c) = &r.comment { ": \u{201c}" (c) "\u{201d}" } }
        }
    }
}
