//! Page templates. maud escapes every interpolated value.

use anchor_domain::{ExecutionStatus, Priority, Role, SlaState, TicketStatus};
use anchor_store::{Workspace, executions::Execution};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};

fn layout(title: &str, signed_in_as: Option<(&str, &str)>, body: Markup) -> Markup {
    page_layout(title, signed_in_as, None, body)
}

/// The page frame; `refresh` reloads the page after that many seconds (a
/// page showing work in progress, without script).
fn page_layout(title: &str, signed_in_as: Option<(&str, &str)>, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                title { (title) " · Anchor" }
                link rel="stylesheet" href=(crate::assets::url("anchor.css"));
            }
            body {
                header {
                    a.brand href="/" { "Anchor" }
                    @if let Some((who, csrf)) = signed_in_as {
                        span {
                            span.muted { (who) }
                            " "
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf_token" value=(csrf);
                                button.quiet type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A fragment of a page, for htmx (`HX-Request`): the same headers as a page.
pub(crate) fn fragment(markup: Markup) -> Response {
    page(StatusCode::OK, markup)
}

/// Every page: no caching, no framing, only our own resources.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::VARY, HeaderValue::from_static("HX-Request"));
    response
}

pub(crate) fn sign_in(csrf: &str, error: Option<&str>, sso_label: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            div.card.narrow {
                h1 { "Sign in" }
                @if let Some(error) = error { p.error role="alert" { (error) } }
                form method="post" action="/signin" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    label for="username" { "Username" }
                    input #username type="text" name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
                @if let Some(label) = sso_label {
                    p.or { "or" }
                    a.button href="/auth/oidc/start" { (label) }
                }
            }
        },
    )
}

pub(crate) fn workspaces(who: &str, csrf: &str, rows: &[(Workspace, Option<Role>)], platform_admin: bool) -> Markup {
    layout(
        "Workspaces",
        Some((who, csrf)),
        html! {
            div.card {
                h1 { "Your workspaces" }
                @if rows.is_empty() {
                    p.muted { "You are not a member of any workspace yet. Ask an MSP admin of your organisation to add you." }
                } @else {
                    p { a href="/ops" { "Ops: the queues of every client you may see" } }
                    @if rows.iter().any(|(_, role)| role.is_some_and(|r| anchor_auth::permissions::grants(r, anchor_auth::permissions::Permission::BillingRead))) {
                        p { a href="/billing" { "Billing run: bill a period in every client at once" } }
                    }
                    table {
                        thead { tr { th { "Workspace" } th { "Slug" } th { "Your role" } } }
                        tbody {
                            @for (workspace, role) in rows {
                                tr {
                                    td {
                                        @if role.is_some() {
                                            a href={"/w/" (workspace.slug().as_str()) "/console"} { (workspace.name()) }
                                        } @else { (workspace.name()) }
                                    }
                                    td { code { (workspace.slug().as_str()) } }
                                    td { (role.map_or("platform admin (not a member)", |r| r.as_str())) }
                                }
                            }
                        }
                    }
                }
                @if platform_admin { p.muted { "As a platform admin you see every workspace of the installation." } }
            }
            @if platform_admin {
                div.card.spaced {
                    h2 #new-workspace { "New workspace" }
                    p.muted { "A workspace is one client company: its tickets, sites, people and machines." }
                    form method="post" action="/workspaces" aria-labelledby="new-workspace" {
                        input type="hidden" name="csrf_token" value=(csrf);
                        label for="ws-name" { "Client name" }
                        input #ws-name type="text" name="name" maxlength="200" required placeholder="Acme Ltd";
                        label for="ws-slug" { "Short name (in links; lower case letters, digits and -)" }
                        input #ws-slug type="text" name="slug" maxlength="63" required pattern="[a-z0-9][a-z0-9-]*" placeholder="acme";
                        label for="ws-admin" { "First admin (username)" }
                        input #ws-admin type="text" name="admin" maxlength="255" required value=(who);
                        button type="submit" { "Create workspace" }
                    }
                }
            }
        },
    )
}

/// A form that did not come from this Anchor page (no or the wrong CSRF
/// token, another origin) or could not be read: nothing was done.
pub(crate) fn form_expired() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not sent from this Anchor page, or it is too old. Reload the page and try again.",
    )
}

pub(crate) fn refused(status: StatusCode, title: &str, message: &str) -> Response {
    refusal(status, title, message, None, "Back to sign-in")
}

/// A refusal to someone signed in: the way back is their workspaces.
pub(crate) fn declined(status: StatusCode, title: &str, message: &str) -> Response {
    refusal(status, title, message, None, "Back to your workspaces")
}

/// A problem's detail (lower case, as the API says it) as a sentence.
pub(crate) fn sentence(detail: &str) -> String {
    let mut chars = detail.trim().chars();
    let Some(first) = chars.next() else { return String::new() };
    let first: String = first.to_uppercase().collect();
    let rest = chars.as_str();
    if rest.ends_with(['.', '!', '?']) { format!("{first}{rest}") } else { format!("{first}{rest}.") }
}

/// A refusal with the request id people quote when they ask for help.
pub(crate) fn refused_with_request(
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: Option<&str>,
) -> Response {
    refusal(status, title, message, request_id, "Back to your workspaces")
}

fn refusal(status: StatusCode, title: &str, message: &str, request_id: Option<&str>, back: &str) -> Response {
    page(
        status,
        layout(
            title,
            None,
            html! {
                div.card.narrow {
                    h1 { (title) }
                    p { (message) }
                    @if let Some(id) = request_id { p.muted { "Request id: " code { (id) } } }
                    a.button href="/" { (back) }
                }
            },
        ),
    )
}

/// What the command that brought the person to a page did, with a link to
/// its execution.
pub(crate) fn outcome_banner(frame: &ConsoleFrame<'_>, outcome: Option<&(Execution, &'static str)>) -> Markup {
    html! {
        @if let Some((execution, summary)) = outcome {
            @let finished = execution.status.is_finished();
            div class={"outcome " (execution.status.as_str())} role="status" {
                strong { (summary) ": " (status_label(execution.status)) }
                @if let Some(error) = &execution.error {
                    " — " (error["message"].as_str().unwrap_or("the command failed"))
                }
                @if !finished { " — still working; reload in a moment." }
                " "
                a href={"/w/" (frame.workspace.slug().as_str()) "/executions/" (execution.id)} { "Details" }
            }
        }
    }
}

fn status_label(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued => "Queued",
        ExecutionStatus::Running => "Running",
        ExecutionStatus::Succeeded => "Succeeded",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::Cancelled => "Cancelled",
        ExecutionStatus::Timeout => "Timed out",
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A moment as people read it (UTC, to the second); `datetime` keeps it exact.
pub(crate) fn moment(t: time::OffsetDateTime) -> Markup {
    let shown = t
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default();
    html! { time datetime=(rfc3339(t)) { (shown) } }
}

/// A command's execution: where it is, who asked, and what it did.
pub(crate) fn execution(who: &str, csrf: &str, workspace: &Workspace, summary: &str, e: &Execution) -> Markup {
    let finished = e.status.is_finished();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    page_layout(
        summary,
        Some((who, csrf)),
        (!finished).then_some(2),
        html! {
            div.card {
                p.muted { (workspace.name()) " · " code { (e.command) } }
                h1 { (summary) }
                p { span class={"status " (e.status.as_str())} { (status_label(e.status)) } }
                @if !finished {
                    p.muted role="status" { "This page updates itself every two seconds until the command finishes." }
                }
                dl {
                    dt { "Asked by" } dd { (e.actor.subject) " " span.muted { "(" (e.actor.issuer) ")" } }
                    @if let Some(role) = e.actor_role { dt { "Role" } dd { (role.as_str()) } }
                    dt { "Accepted" } dd { (moment(e.created_at)) }
                    @if let Some(done) = e.completed_at { dt { "Finished" } dd { (moment(done)) } }
                    dt { "Execution" } dd { code { (e.id) } }
                    @if let Some(evidence) = e.evidence_id { dt { "Signed evidence" } dd { code { (evidence) } } }
                }
                @if let Some(error) = &e.error {
                    h2 { "Why it did not succeed" }
                    p.error { (error["message"].as_str().unwrap_or("The command failed.")) }
                    p.muted { "Code: " code { (error["code"].as_str().unwrap_or("unknown")) } }
                }
                @if let Some(result) = &e.result {
                    h2 { "Result" }
                    @if let Some(members) = result.as_object() {
                        dl {
                            @for (name, value) in members {
                                dt { (name.replace('_', " ")) }
                                dd { code { (value.as_str().map_or_else(|| value.to_string(), str::to_owned)) } }
                            }
                        }
                    }
                }
                details {
                    summary { "Arguments" }
                    pre { (pretty(&e.input)) }
                }
            }
        },
    )
}

/// Who is looking at a Console page, and where.
pub(crate) struct ConsoleFrame<'a> {
    pub who: &'a str,
    pub issuer: &'a str,
    pub csrf: &'a str,
    pub workspace: &'a Workspace,
    /// Whether the person may change tickets (forms are shown disabled with the reason otherwise).
    pub may_write: bool,
    pub role: &'a str,
    /// Whether the person may manage the workspace's settings (Admin settings).
    pub may_admin: bool,
    /// Whether the person may see the CMDB.
    pub may_read_assets: bool,
    /// Whether the person may see alerts (Monitoring).
    pub may_read_alerts: bool,
    /// Whether the person may acknowledge and snooze alerts.
    pub may_manage_alerts: bool,
    /// Whether the person may revoke agents (`enrollment.manage`).
    pub may_revoke_agents: bool,
    /// Whether the person may see contracts, invoices and payments (Financials).
    pub may_read_billing: bool,
}

impl ConsoleFrame<'_> {
    pub(crate) fn base(&self) -> String {
        format!("/w/{}/console", self.workspace.slug().as_str())
    }

    fn is_me(&self, who: &anchor_store::executions::Actor) -> bool {
        who.issuer == self.issuer && who.subject == self.who
    }
}

/// The Console's frame: the page navigation (only pages that exist), the
/// workspace it is about, and the module tabs.
fn console_layout(frame: &ConsoleFrame<'_>, title: &str, body: Markup) -> Markup {
    console_tab_layout(frame, ConsoleTab::Service, title, body)
}

/// The Console's modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsoleTab {
    Service,
    Cmdb,
    Financials,
    Monitoring,
}

/// [`console_layout`] on the module `tab`.
pub(crate) fn console_tab_layout(frame: &ConsoleFrame<'_>, tab: ConsoleTab, title: &str, body: Markup) -> Markup {
    let current = |t: ConsoleTab| (t == tab).then_some("page");
    let tabs = html! {
        a href={(frame.base()) "/service"} aria-current=[current(ConsoleTab::Service)] { "Service delivery" }
        @if frame.may_read_assets {
            a href={(frame.base()) "/cmdb"} aria-current=[current(ConsoleTab::Cmdb)] { "CMDB" }
        }
        @if frame.may_read_billing {
            a href={(frame.base()) "/financials"} aria-current=[current(ConsoleTab::Financials)] { "Financials" }
        }
        @if frame.may_read_alerts {
            a href={(frame.base()) "/monitoring"} aria-current=[current(ConsoleTab::Monitoring)] { "Monitoring" }
        }
    };
    workspace_layout(frame, false, tabs, title, body)
}

/// The four pages (those built): which one a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    Console,
    Ops,
    Admin,
}

/// Who is looking, and where: what every staff page's frame shows.
pub(crate) struct Shell<'a> {
    pub who: &'a str,
    /// Their role here (one workspace), or a summary ("every client you may see").
    pub role: &'a str,
    pub csrf: &'a str,
    /// The workspace, or none: Ops across every client.
    pub workspace: Option<&'a Workspace>,
    pub may_admin: bool,
    pub area: Area,
}

/// The frame of a workspace's pages: Console, or Admin settings (`admin`).
pub(crate) fn workspace_layout(
    frame: &ConsoleFrame<'_>,
    admin: bool,
    tabs: Markup,
    title: &str,
    body: Markup,
) -> Markup {
    let shell = Shell {
        who: frame.who,
        role: frame.role,
        csrf: frame.csrf,
        workspace: Some(frame.workspace),
        may_admin: frame.may_admin,
        area: if admin { Area::Admin } else { Area::Console },
    };
    let label = if admin { "Settings sections" } else { "Console modules" };
    shell_layout(&shell, Some((label, tabs)), title, body)
}

/// The `<head>` of every staff page.
fn staff_head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Anchor" }
            // htmx's own settings: no inline indicator style (CSP), no eval, no script tags in swaps.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;
            link rel="stylesheet" href=(crate::assets::url("anchor.css"));
            script src=(crate::assets::url("htmx.min.js")) defer {}
            script src=(crate::assets::url("htmx-ext-sse.min.js")) defer {}
            script src=(crate::assets::url("anchor.js")) defer {}
        }
    }
}

/// The frame of every staff page: the pages (only those that exist), the
/// workspace it is about (or every client), the section tabs, the body.
pub(crate) fn shell_layout(shell: &Shell<'_>, tabs: Option<(&str, Markup)>, title: &str, body: Markup) -> Markup {
    let here = |area: Area| (shell.area == area).then_some("page");
    let (console, ops, admin) = match shell.workspace {
        Some(w) => {
            let slug = w.slug().as_str();
            (Some(format!("/w/{slug}/console")), format!("/w/{slug}/ops"), Some(format!("/w/{slug}/admin")))
        }
        None => (None, "/ops".to_owned(), None),
    };
    let full_title = match shell.workspace {
        Some(w) => format!("{title} · {}", w.name()),
        None => format!("{title} · All clients"),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (staff_head(&full_title))
            body.console {
                header {
                    span.bar {
                        a.brand href="/" { "Anchor" }
                        nav aria-label="Pages" {
                            @if let Some(console) = &console {
                                a href=(console) aria-current=[here(Area::Console)] { "Console" }
                                " "
                            }
                            a href=(ops) aria-current=[here(Area::Ops)] { "Ops" }
                            @if let (true, Some(admin)) = (shell.may_admin, &admin) {
                                " "
                                a href=(admin) aria-current=[here(Area::Admin)] { "Admin settings" }
                            }
                        }
                        span.workspace {
                            @match shell.workspace { Some(w) => { (w.name()) } None => { "All clients" } }
                        }
                    }
                    span {
                        span.muted { (shell.who) " · " (shell.role) }
                        " "
                        form.inline method="post" action="/signout" {
                            input type="hidden" name="csrf_token" value=(shell.csrf);
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some((label, tabs)) = tabs {
                    nav.tabs aria-label=(label) { (tabs) }
                }
                main.wide {
                    (body)
                    details #shortcuts.shortcuts {
                        summary { "Keyboard shortcuts" }
                        dl {
                            dt { kbd { "?" } } dd { "show these" }
                            dt { kbd { "/" } } dd { "go to the filters" }
                            dt { kbd { "j" } " / " kbd { "k" } } dd { "next / previous row" }
                            dt { kbd { "x" } } dd { "select the row" }
                            dt { kbd { "Enter" } } dd { "open it" }
                            @if console.is_some() { dt { kbd { "g" } " " kbd { "c" } } dd { "the Console" } }
                            dt { kbd { "g" } " " kbd { "o" } } dd { "Ops" }
                            @if shell.may_admin && admin.is_some() { dt { kbd { "g" } " " kbd { "a" } } dd { "Admin settings" } }
                            dt { kbd { "Esc" } } dd { "close this" }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::P1 => "P1 critical",
        Priority::P2 => "P2 high",
        Priority::P3 => "P3 normal",
        Priority::P4 => "P4 low",
    }
}

pub(crate) fn status_text(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::New => "New",
        TicketStatus::Triaged => "Triaged",
        TicketStatus::InProgress => "In progress",
        TicketStatus::WaitingOnClient => "Waiting on client",
        TicketStatus::Resolved => "Resolved",
        TicketStatus::Closed => "Closed",
    }
}

/// A span of time as people say it: "3 h 20 min", "45 min", "2 d 4 h".
pub(crate) fn span(d: time::Duration) -> String {
    let minutes = d.whole_minutes().abs();
    let (days, hours, mins) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

/// A deadline relative to now.
pub(crate) fn due_text(due: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    if due >= now { format!("due in {}", span(due - now)) } else { format!("overdue by {}", span(now - due)) }
}

pub(crate) fn sla_text(state: SlaState) -> &'static str {
    match state {
        SlaState::None => "No SLA",
        SlaState::Running => "On track",
        SlaState::Warning => "At risk",
        SlaState::Breached => "Breached",
        SlaState::Paused => "Paused",
        SlaState::Met => "Met",
    }
}

/// The Service delivery list.
pub(crate) fn ticket_list(
    frame: &ConsoleFrame<'_>,
    filters: &crate::console::ListFilters,
    list: &crate::console::ListPage,
) -> Markup {
    let base = format!("{}/service", frame.base());
    let selected = |current: Option<&str>, value: &str| current == Some(value);
    let status_now = if filters.open_only { Some("open") } else { filters.status.map(|s| s.as_str()) };
    let queue_now = filters.queue.map(|q| q.to_string());
    console_layout(
        frame,
        "Tickets",
        html! {
            div.heading {
                h1 { "Tickets" }
                @if frame.may_write {
                    a.button href={(base) "/new"} { "New ticket" }
                }
            }
            nav.subnav aria-label="Service delivery" {
                a href=(base) aria-current="page" { "Tickets" }
                a href={(base) "/queues"} { "Queues" }
                a href={(base) "/kb"} { "Knowledge base" }
            }
            nav.views aria-label="Quick views" {
                a href={(base) "?status=open&assignee=me"} { "My open tickets" }
                a href={(base) "?status=open&assignee=none"} { "Unassigned" }
                a href={(base) "?status=open&awaiting=us"} { "We owe a reply" }
                a href={(base) "?sla_state=warning"} { "At risk" }
                a href={(base) "?sla_state=breached"} { "Breached" }
                a href=(base) { "All" }
            }
            (saved_views(frame, filters, list, false))
            form.filters method="get" action=(base) hx-get=(base) hx-target="#ticket-list" hx-swap="outerHTML"
                hx-push-url="true" hx-trigger="submit, change" hx-indicator="#ticket-list" {
                div.search {
                    label for="f-q" { "Search" }
                    input #f-q type="search" name="q" maxlength="200" placeholder="Words in titles, replies, notes"
                        value=[filters.search.as_ref().map(|q| q.as_str())];
                }
                div {
                    label for="f-status" { "Status" }
                    select #f-status name="status" {
                        option value="" { "Any" }
                        option value="open" selected[selected(status_now, "open")] { "Open (not resolved)" }
                        @for status in TicketStatus::ALL {
                            option value=(status.as_str()) selected[selected(status_now, status.as_str())] { (status_text(status)) }
                        }
                    }
                }
                div {
                    label for="f-priority" { "Priority" }
                    select #f-priority name="priority" {
                        option value="" { "Any" }
                        @for priority in Priority::ALL {
                            option value=(priority.as_str()) selected[filters.priority == Some(priority)] { (priority_label(priority)) }
                        }
                    }
                }
                div {
                    label for="f-assignee" { "Assignee" }
                    select #f-assignee name="assignee" {
                        option value="" { "Anyone" }
                        option value="me" selected[filters.assignee.as_deref() == Some("me")] { "Me" }
                        option value="none" selected[filters.assignee.as_deref() == Some("none")] { "Nobody" }
                    }
                }
                div {
                    label for="f-queue" { "Queue" }
                    select #f-queue name="queue_id" {
                        option value="" { "Any" }
                        @for queue in &list.queues {
                            option value=(queue.id) selected[queue_now.as_deref() == Some(queue.id.to_string().as_str())] { (queue.name) }
                        }
                    }
                }
                div {
                    label for="f-owes" { "Owes reply" }
                    select #f-owes name="awaiting" {
                        option value="" { "Anyone" }
                        option value="us" selected[filters.awaiting == Some(anchor_domain::Awaiting::Us)] { "We do" }
                        option value="client" selected[filters.awaiting == Some(anchor_domain::Awaiting::Client)] { "The client" }
                    }
                }
                div {
                    label for="f-sla" { "SLA" }
                    select #f-sla name="sla_state" {
                        option value="" { "Any" }
                        @for state in [SlaState::Running, SlaState::Warning, SlaState::Breached, SlaState::Paused, SlaState::Met, SlaState::None] {
                            option value=(state.as_str()) selected[filters.sla == Some(state)] { (sla_text(state)) }
                        }
                    }
                }
                div {
                    label for="f-sort" { "Order" }
                    select #f-sort name="sort" {
                        @for (name, label) in [("newest", "Newest first"), ("updated", "Last changed"), ("sla_due", "SLA due soonest"), ("priority", "Priority")] {
                            option value=(name) selected[crate::console::sort_name(filters.sort) == name] { (label) }
                        }
                    }
                }
                button type="submit" { "Filter" }
                @if let Some(tag) = &filters.tag { input type="hidden" name="tag" value=(tag.as_str()); }
            }
            (ticket_list_region(frame, filters, list))
        },
    )
}

/// The list under the filters: the bulk form, the table and the next page's
/// link. What htmx swaps when the filters change (`HX-Request`).
pub(crate) fn ticket_list_region(
    frame: &ConsoleFrame<'_>,
    filters: &crate::console::ListFilters,
    list: &crate::console::ListPage,
) -> Markup {
    let base = format!("{}/service", frame.base());
    let queue_name = |id: anchor_domain::QueueId| list.queues.iter().find(|q| q.id == id).map(|q| q.name.as_str());
    html! {
        div #ticket-list aria-live="polite" {
            @if list.tickets.is_empty() {
                    div.card { p.muted { "No tickets match these filters." } }
                } @else {
                    form.bulk method="post" action={(base) "/bulk"} {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="idempotency_key" value=(list.bulk_key);
                    @if frame.may_write {
                        div.toolbar {
                            label for="bulk-action" { "With the selected tickets" }
                            select #bulk-action name="action" {
                                option value="assign_me" { "Assign to me" }
                                option value="unassign" { "Unassign" }
                                @for priority in Priority::ALL {
                                    option value={"priority:" (priority.as_str())} { "Set priority " (priority_label(priority)) }
                                }
                                @for status in [TicketStatus::Triaged, TicketStatus::InProgress, TicketStatus::WaitingOnClient, TicketStatus::Resolved, TicketStatus::Closed] {
                                    option value={"status:" (status.as_str())} { "Move to " (status_text(status).to_lowercase()) }
                                }
                            }
                            button.secondary type="submit" { "Apply" }
                        }
                    }
                    div.card.flush {
                        table.tickets {
                            caption.visually-hidden { "Tickets, newest first" }
                            thead {
                                tr {
                                    @if frame.may_write { th scope="col" { span.visually-hidden { "Select" } } }
                                    th scope="col" { "Ticket" }
                                    th scope="col" { "Priority" }
                                    th scope="col" { "Status" }
                                    th scope="col" { "Assignee" }
                                    th scope="col" { "SLA" }
                                    th scope="col" { "Owes reply" }
                                    th scope="col" { "Updated" }
                                }
                            }
                            tbody {
                                @for ticket in &list.tickets {
                                    tr class={"sla-" (ticket.sla_state.as_str())} {
                                        @if frame.may_write {
                                            td.select {
                                                input type="checkbox" name="ticket" value=(ticket.id) id={"sel-" (ticket.id)}
                                                    aria-label={"Select " (ticket.title)};
                                            }
                                        }
                                        td {
                                            a href={(base) "/tickets/" (ticket.id)} { (ticket.title) }
                                            @if let Some(queue) = ticket.queue_id.and_then(queue_name) {
                                                br; span.muted.small { (queue) }
                                            }
                                        }
                                        td.c-prio { span class={"prio " (ticket.priority.as_str())} { (ticket.priority.as_str().to_uppercase()) } }
                                        td.c-status { (status_text(ticket.status)) }
                                        td.c-assignee {
                                            @match &ticket.assignee {
                                                Some(who) if frame.is_me(&who.0) => { "Me" }
                                                Some(who) => { (who.0.subject) }
                                                None => { span.muted { "Unassigned" } }
                                            }
                                        }
                                        td {
                                            span class={"sla " (ticket.sla_state.as_str())} { (sla_text(ticket.sla_state)) }
                                            @if let Some(due) = ticket.sla_due_at {
                                                br; span.small { time datetime=(rfc3339(due)) { (due_text(due, list.now)) } }
                                            }
                                        }
                                        td.c-owes {
                                            @if ticket.status.is_open() {
                                                @match ticket.awaiting {
                                                    anchor_domain::Awaiting::Us => { span.owes.us { "We do" } }
                                                    anchor_domain::Awaiting::Client => { span.owes.client { "Client" } }
                                                }
                                            }
                                        }
                                        td.small.c-updated { (moment(ticket.updated_at)) }
                                    }
                                }
                            }
                        }
                    }
                    }
                    @if let Some(next) = list.next {
                        p { a.button.secondary href={(base) "?" (filters.query()) "&after=" (next.to_string())}
                        hx-get={(base) "?" (filters.query()) "&after=" (next.to_string())} hx-target="#ticket-list"
                        hx-swap="outerHTML" hx-push-url="true" { "Next 50 tickets" } }
                    }
                }
        }
    }
}

/// The list's fragment for htmx: the list, and the saved views (swapped out
/// of band, so that "save these filters" saves the filters now shown).
pub(crate) fn ticket_list_fragment(
    frame: &ConsoleFrame<'_>,
    filters: &crate::console::ListFilters,
    list: &crate::console::ListPage,
) -> Markup {
    html! {
        (ticket_list_region(frame, filters, list))
        (saved_views(frame, filters, list, true))
    }
}

/// The saved views the person sees (with their counts), and the form that
/// saves the filters shown as a new one; `oob` for htmx's out-of-band swap.
fn saved_views(
    frame: &ConsoleFrame<'_>,
    filters: &crate::console::ListFilters,
    list: &crate::console::ListPage,
    oob: bool,
) -> Markup {
    let base = format!("{}/service", frame.base());
    let current = filters.query();
    html! {
        section #saved-views.saved-views aria-labelledby="views-heading" hx-swap-oob=[oob.then_some("true")] {
            @match &list.view_notice {
                Some(Ok(name)) => { div.outcome.succeeded role="status" { "Saved the view “" (name) "”." } }
                Some(Err(problem)) => { div.outcome.failed role="alert" { "The view was not saved: " (problem) } }
                None => {}
            }
            h2 #views-heading { "Saved views" }
            @if list.views.is_empty() {
                p.muted.small { "None yet. Filter the list, then save it as a view." }
            } @else {
                ul {
                    @for (view, count) in &list.views {
                        @let mine = frame.is_me(&view.owner);
                        li {
                            a href={(base) "?" (view.query)} aria-current=[(view.query == current).then_some("page")] {
                                (view.name)
                            }
                            " "
                            span.count aria-label={(count_text(*count)) " tickets"} { (count_text(*count)) }
                            @if view.shared { " " span.badge { "shared" } }
                            @if !mine { " " span.muted.small { "by " (view.owner.subject) } }
                            @if mine || (view.shared && frame.may_admin) {
                                form.inline method="post" action={(base) "/views/delete"} {
                                    input type="hidden" name="csrf_token" value=(frame.csrf);
                                    input type="hidden" name="view_id" value=(view.id);
                                    button.quiet.small-button type="submit" aria-label={"Remove the view " (view.name)} { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            details.save-view open[matches!(list.view_notice, Some(Err(_)))] {
                summary { "Save these filters as a view" }
                form.stack method="post" action={(base) "/views"} {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="query" value=(current);
                    label for="view-name" { "Name" }
                    input #view-name type="text" name="name" maxlength="120" required;
                    label.choice { input type="checkbox" name="shared" value="yes"; " Shared with every member of staff" }
                    p.small.muted { "Saves: " @if current.is_empty() { "all tickets" } @else { code { (current) } } }
                    button.secondary type="submit" { "Save view" }
                }
            }
        }
    }
}

fn count_text(count: i64) -> String {
    if count > crate::console::VIEW_COUNT_CAP {
        format!("{}+", crate::console::VIEW_COUNT_CAP)
    } else {
        count.to_string()
    }
}

/// A form that submits one command from a Service delivery page.
fn act_form(frame: &ConsoleFrame<'_>, command: &str, key: &str, fields: Markup, submit: Markup) -> Markup {
    html! {
        form.inline method="post" action={(frame.base()) "/service/act"} {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            input type="hidden" name="command" value=(command);
            (fields)
            (submit)
        }
    }
}

fn clock_label(target: anchor_sla::Target) -> &'static str {
    match target {
        anchor_sla::Target::FirstResponse => "First response",
        anchor_sla::Target::NextUpdate => "Next update",
        anchor_sla::Target::Resolution => "Resolution",
    }
}

fn clock_state(state: anchor_sla::ClockState) -> (&'static str, &'static str) {
    match state {
        anchor_sla::ClockState::Pending => ("pending", "Not started"),
        anchor_sla::ClockState::Running => ("running", "Running"),
        anchor_sla::ClockState::Paused => ("paused", "Paused"),
        anchor_sla::ClockState::Met => ("met", "Met"),
        anchor_sla::ClockState::Breached => ("breached", "Breached"),
    }
}

/// One SLA clock: its state, deadline and a bar of the target used.
fn clock(c: &anchor_sla::TargetClock, now: time::OffsetDateTime) -> Markup {
    let (class, label) = clock_state(c.state);
    let used = match c.target_duration {
        Some(target) if target.whole_seconds() > 0 => {
            (c.elapsed.whole_seconds() as f64 / target.whole_seconds() as f64).clamp(0.0, 1.0)
        }
        Some(_) => 1.0,
        None => 0.0,
    };
    let width = (used * 200.0).round() as i64;
    let fill = match c.state {
        anchor_sla::ClockState::Breached => "#b3261e",
        anchor_sla::ClockState::Met => "#1b6b34",
        _ if c.warned_at.is_some() => "#a15c00",
        _ => "#1f5fbf",
    };
    html! {
        div.clock {
            div.clock-head {
                strong { (clock_label(c.target)) }
                span class={"sla " (class)} { (label) }
            }
            svg width="200" height="8" viewBox="0 0 200 8" role="img" aria-label={(clock_label(c.target)) ": " ((used * 100.0).round()) "% of the target used"} {
                rect x="0" y="0" width="200" height="8" rx="4" fill="#e3e7ec" {}
                rect x="0" y="0" width=(width) height="8" rx="4" fill=(fill) {}
            }
            p.small {
                @if let Some(done) = c.completed_at {
                    "Done " (moment(done))
                } @else if let Some(due) = c.due_at {
                    time datetime=(rfc3339(due)) { (due_text(due, now)) }
                } @else if c.state == anchor_sla::ClockState::Pending {
                    "Starts with the first public reply"
                } @else if c.target_duration.is_none() {
                    "No target for this priority"
                }
                @if c.paused.whole_seconds() > 0 { br; span.muted { "paused " (span(c.paused)) } }
            }
        }
    }
}

/// A ticket: its clocks, timeline, composer and the moves valid now.
pub(crate) fn ticket_page(frame: &ConsoleFrame<'_>, page: &crate::console::TicketPage) -> Markup {
    let t = &page.ticket;
    let base = format!("{}/service", frame.base());
    let key = |i: usize| page.keys.get(i).map_or("", String::as_str);
    let ticket_field = html! { input type="hidden" name="ticket_id" value=(t.id); };
    let (disabled, why) = ticket_disabled(frame, t);
    console_layout(
        frame,
        t.title.as_str(),
        html! {
            p.crumbs { a href=(base) { "Tickets" } " / " code { (t.id) } }
            // Live: each `changed` event on the ticket's stream re-fetches the parts a colleague's
            // command may change (never the composer or the time form, which may hold typing).
            div #live hx-ext="sse" sse-connect={(base) "/tickets/" (t.id) "/live"} {
                div hx-get={(base) "/tickets/" (t.id) "?part=live"} hx-trigger="sse:changed" hx-swap="none" {}
            }
            (news_part(page, false))
            (outcome_banner(frame, page.outcome.as_ref()))
            div.heading {
                h1 { (t.title) }
            }
            (badges_part(frame, page, false))
            div.columns {
                section.main-column aria-labelledby="timeline-heading" {
                    @if !t.description.is_empty() {
                        div.card { p.pre { (t.description) } }
                    }
                    h2 #timeline-heading { "Timeline" }
                    (timeline_part(frame, page, false))
                    h2 #composer-heading { "Reply or note" }
                    @if disabled { p.muted { (why) } }
                    form.composer method="post" action={(base) "/act"} aria-labelledby="composer-heading" {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(key(0));
                        input type="hidden" name="command" value="ticket.comment";
                        (ticket_field)
                        label for="body" { "Message" }
                        textarea #body name="body" rows="5" required disabled[disabled] {}
                        fieldset {
                            legend { "Who sees it" }
                            label.choice { input type="radio" name="visibility" value="public" checked disabled[disabled]; " Reply to the client" }
                            label.choice { input type="radio" name="visibility" value="internal" disabled[disabled]; " Internal note (staff only)" }
                        }
                        button type="submit" disabled[disabled] { "Send" }
                    }
                }
                aside.side-column aria-label="Ticket details" {
                    (actions_part(frame, page, false))
                    (sla_part(page, false))
                    div.card {
                        h2 #time-heading { "Time" }
                        (logged_part(page, false))
                        form.stack method="post" action={(base) "/act"} aria-labelledby="time-heading" {
                            input type="hidden" name="csrf_token" value=(frame.csrf);
                            input type="hidden" name="idempotency_key" value=(key(8));
                            input type="hidden" name="command" value="time_entry.log";
                            (ticket_field)
                            label for="work_type" { "Work" }
                            select #work_type name="work_type" disabled[!frame.may_write] {
                                option value="remote_support" { "Remote support" }
                                option value="onsite" { "On site" }
                                option value="project" { "Project work" }
                                option value="travel" { "Travel" }
                            }
                            label for="minutes" { "Minutes" }
                            input #minutes type="number" name="minutes" min="1" max="1440" step="1" required disabled[!frame.may_write];
                            label for="worked_on" { "Day" }
                            input #worked_on type="date" name="worked_on" value=(page.today) required disabled[!frame.may_write];
                            label.choice { input type="checkbox" name="billable" value="yes" checked disabled[!frame.may_write]; " Billable" }
                            label for="note" { "Note" }
                            textarea #note name="note" rows="2" maxlength="4000" disabled[!frame.may_write] {}
                            button.secondary type="submit" disabled[!frame.may_write] { "Log time" }
                        }
                    }
                    (details_part(page, false))
                    details.expert {
                        summary { "Expert: the ticket as JSON" }
                        pre { (serde_json::to_string_pretty(t).unwrap_or_default()) }
                    }
                }
            }
        },
    )
}

/// Whether the page's forms that change the ticket are off, and why.
fn ticket_disabled(frame: &ConsoleFrame<'_>, t: &anchor_store::tickets::Ticket) -> (bool, &'static str) {
    let disabled = !frame.may_write || t.merged_into.is_some();
    let why = if t.merged_into.is_some() {
        "This ticket was merged into another; work on that ticket."
    } else {
        "Changing tickets needs tickets.write; your role does not have it. Ask an MSP admin of this workspace."
    };
    (disabled, why)
}

/// What a colleague's command may change on a ticket's page, for htmx's
/// live refresh: each part swapped out of band by its id.
pub(crate) fn ticket_live(frame: &ConsoleFrame<'_>, page: &crate::console::TicketPage) -> Markup {
    html! {
        (news_part(page, true))
        (badges_part(frame, page, true))
        (timeline_part(frame, page, true))
        (actions_part(frame, page, true))
        (sla_part(page, true))
        (logged_part(page, true))
        (details_part(page, true))
    }
}

/// The last change, said politely (empty on a fresh page).
fn news_part(page: &crate::console::TicketPage, oob: bool) -> Markup {
    let latest = page.history.iter().max_by_key(|h| h.at);
    html! {
        p #live-news.small.muted role="status" hx-swap-oob=[oob.then_some("true")] {
            @if let (true, Some(h)) = (oob, latest) {
                "Updated: " (h.actor.subject) " " (change_text(h)) " · " (moment(h.at))
            }
        }
    }
}

fn badges_part(frame: &ConsoleFrame<'_>, page: &crate::console::TicketPage, oob: bool) -> Markup {
    let t = &page.ticket;
    let base = format!("{}/service", frame.base());
    html! {
    p #ticket-badges.badges hx-swap-oob=[oob.then_some("true")] {
        span class={"prio " (t.priority.as_str())} { (priority_label(t.priority)) }
        " "
        span.state { (status_text(t.status)) }
        " "
        span class={"sla " (t.sla_state.as_str())} { (sla_text(t.sla_state)) }
        @if t.status.is_open() {
            " "
            @match t.awaiting {
                anchor_domain::Awaiting::Us => { span.owes.us { "We owe the next reply" } }
                anchor_domain::Awaiting::Client => { span.owes.client { "Waiting for the client" } }
            }
        }
        @if let Some(survivor) = t.merged_into {
            " " span.state { "Merged into " a href={(base) "/tickets/" (survivor)} { (survivor) } }
        }
    }
    }
}

fn timeline_part(frame: &ConsoleFrame<'_>, page: &crate::console::TicketPage, oob: bool) -> Markup {
    let t = &page.ticket;
    let key = |i: usize| page.keys.get(i).map_or("", String::as_str);
    let (disabled, _) = ticket_disabled(frame, t);
    // Replies, notes and changes in order.
    enum Entry<'a> {
        Comment(&'a anchor_store::tickets::Comment),
        Change(&'a anchor_store::tickets::HistoryEntry),
        Time(usize, &'a anchor_store::time_entries::TimeEntry),
    }
    let mut timeline: Vec<(time::OffsetDateTime, Entry<'_>)> = page
        .comments
        .iter()
        .map(|c| (c.created_at, Entry::Comment(c)))
        .chain(page.history.iter().filter(|h| h.change != "commented").map(|h| (h.at, Entry::Change(h))))
        .chain(page.time_entries.iter().enumerate().map(|(i, e)| (e.created_at, Entry::Time(i, e))))
        .collect();
    timeline.sort_by_key(|(at, _)| *at);
    html! {
        ol #timeline.timeline hx-swap-oob=[oob.then_some("true")] {
            @for (at, entry) in &timeline {
                @match entry {
                    Entry::Comment(c) => {
                        li class={"entry " (c.visibility.as_str())} {
                            p.meta {
                                strong { (c.author.subject) }
                                " · "
                                @if c.visibility.as_str() == "public" { "Reply to the client" } @else { "Internal note" }
                                " · " (moment(*at))
                            }
                            p.pre { (c.body) }
                        }
                    }
                    Entry::Time(i, e) => {
                        li.entry.time {
                            p.meta {
                                strong { (e.staff.subject) } " · logged " (span(time::Duration::minutes(i64::from(e.minutes.get()))))
                                " of " (e.work_type.as_str().replace('_', " "))
                                @if e.billable { " (billable)" } @else { " (not billable)" }
                                " for " (e.worked_on) " · " (e.state.as_str()) " · " (moment(*at))
                            }
                            @if let Some(note) = &e.note { p.pre { (note.as_str()) } }
                            @if e.state.as_str() == "draft" && frame.is_me(&e.staff) && !disabled {
                                (act_form(frame, "time_entry.submit", key(10 + i), html! {
                                    input type="hidden" name="time_entry_id" value=(e.id);
                                    input type="hidden" name="ticket_id" value=(t.id);
                                }, html! { button.secondary.small-button type="submit" { "Submit for approval" } }))
                            }
                        }
                    }
                    Entry::Change(h) => {
                        li.entry.change {
                            p.meta {
                                strong { (h.actor.subject) } " · " (change_text(h)) " · " (moment(*at))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn actions_part(frame: &ConsoleFrame<'_>, page: &crate::console::TicketPage, oob: bool) -> Markup {
    let t = &page.ticket;
    let base = format!("{}/service", frame.base());
    let key = |i: usize| page.keys.get(i).map_or("", String::as_str);
    let ticket_field = html! { input type="hidden" name="ticket_id" value=(t.id); };
    let (disabled, why) = ticket_disabled(frame, t);
    html! {
        div #ticket-actions.card hx-swap-oob=[oob.then_some("true")] {
            h2 { "Actions" }
            @if disabled { p.muted.small { (why) } }
            div.actions {
                @for (i, to) in t.status.next().iter().enumerate() {
                    (act_form(frame, "ticket.transition", key(1 + i), html! {
                        (ticket_field)
                        input type="hidden" name="to" value=(to.as_str());
                    }, html! { button.secondary type="submit" disabled[disabled] { (move_label(t.status, *to)) } }))
                }
            }
            @let mine = t.assignee.as_ref().is_some_and(|a| frame.is_me(&a.0));
            div.actions {
                @if !mine {
                    (act_form(frame, "ticket.assign", key(5), ticket_field.clone(), html! { button.secondary type="submit" disabled[disabled] { "Assign to me" } }))
                }
                @if t.assignee.is_some() {
                    (act_form(frame, "ticket.unassign", key(6), ticket_field.clone(), html! { button.secondary type="submit" disabled[disabled] { "Unassign" } }))
                }
            }
            form.stack method="post" action={(base) "/act"} {
                input type="hidden" name="csrf_token" value=(frame.csrf);
                input type="hidden" name="idempotency_key" value=(key(7));
                input type="hidden" name="command" value="ticket.set_priority";
                (ticket_field)
                label for="priority" { "Priority" }
                select #priority name="priority" disabled[disabled] {
                    @for priority in Priority::ALL {
                        option value=(priority.as_str()) selected[priority == t.priority] { (priority_label(priority)) }
                    }
                }
                button.secondary type="submit" disabled[disabled] { "Change priority" }
            }
        }
    }
}

fn sla_part(page: &crate::console::TicketPage, oob: bool) -> Markup {
    html! {
        div #ticket-sla.card hx-swap-oob=[oob.then_some("true")] {
            h2 { "SLA" }
            @match &page.sla {
                Some(sla) => {
                    @for target in anchor_sla::Target::ALL { (clock(sla.clock(target), page.now)) }
                }
                None => { p.muted { "This ticket has no SLA clocks." } }
            }
        }
    }
}

fn logged_part(page: &crate::console::TicketPage, oob: bool) -> Markup {
    let logged: u32 = page.time_entries.iter().map(|e| u32::from(e.minutes.get())).sum();
    html! {
        p #time-logged.small hx-swap-oob=[oob.then_some("true")] {
            (span(time::Duration::minutes(i64::from(logged)))) " logged on this ticket"
        }
    }
}

fn details_part(page: &crate::console::TicketPage, oob: bool) -> Markup {
    let t = &page.ticket;
    html! {
        div #ticket-details.card hx-swap-oob=[oob.then_some("true")] {
            h2 { "Details" }
            dl {
                dt { "Assignee" }
                dd {
                    @match &t.assignee {
                        Some(who) => { (who.0.subject) }
                        None => { span.muted { "Unassigned" } }
                    }
                }
                dt { "Queue" }
                dd { @match &page.queue { Some(q) => { (q.name) } None => { span.muted { "None" } } } }
                @if !t.tags.is_empty() { dt { "Tags" } dd { (t.tags.join(", ")) } }
                dt { "Opened" } dd { (moment(t.created_at)) " by " (t.created_by.subject) }
                dt { "Updated" } dd { (moment(t.updated_at)) }
                @for r in &page.ratings {
                    dt { "Client's rating" @if page.ratings.len() > 1 { " (resolution " (r.resolution) ")" } }
                    dd { strong { (r.score) " of 5" } @if let Some(c) = &r.comment { ": \u{201c}" (c) "\u{201d}" } }
                }
            }
            @if !page.notifications.is_empty() {
                h3.small-heading { "E-mail to the client" }
                ul.plain.small {
                    @for n in &page.notifications {
                        li { (n.kind.label()) " to " (n.address) ": "
                            @match (n.state.as_str(), n.sent_at) {
                                ("sent", Some(at)) => { "sent " (moment(at)) }
                                ("failed", _) => { strong { "not sent" } @if let Some(e) = &n.last_error { " (" (e) ")" } }
                                _ => { "queued" @if let Some(e) = &n.last_error { ", last try: " (e) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn move_label(from: TicketStatus, to: TicketStatus) -> &'static str {
    match (from, to) {
        (_, TicketStatus::Triaged) => "Triage",
        (TicketStatus::Resolved | TicketStatus::Closed, TicketStatus::InProgress) => "Reopen",
        (TicketStatus::WaitingOnClient, TicketStatus::InProgress) => "Resume work",
        (_, TicketStatus::InProgress) => "Start work",
        (_, TicketStatus::WaitingOnClient) => "Wait on client",
        (_, TicketStatus::Resolved) => "Resolve",
        (_, TicketStatus::Closed) => "Close",
        (_, TicketStatus::New) => "Back to new",
    }
}

fn change_text(h: &anchor_store::tickets::HistoryEntry) -> String {
    match h.change.as_str() {
        "created" => "opened the ticket".to_owned(),
        "status_changed" => format!("moved it to {}", h.to_status.map_or("?", status_text).to_lowercase()),
        "priority_changed" => {
            format!("changed the priority to {}", h.to_priority.map_or("?", |p| p.as_str()).to_uppercase())
        }
        "assigned" => match h.detail.as_ref().and_then(|d| d.0["to"]["subject"].as_str().map(str::to_owned)) {
            Some(to) => format!("assigned it to {to}"),
            None => "unassigned it".to_owned(),
        },
        "queued" => "moved it to another queue".to_owned(),
        "tagged" => "changed the tags".to_owned(),
        "merged" => "merged tickets".to_owned(),
        "related" => "related it to another ticket".to_owned(),
        other => other.replace('_', " "),
    }
}

/// The form to open a ticket.
pub(crate) fn new_ticket(frame: &ConsoleFrame<'_>, queues: &[anchor_store::queues::Queue], key: &str) -> Markup {
    let base = format!("{}/service", frame.base());
    console_layout(
        frame,
        "New ticket",
        html! {
            p.crumbs { a href=(base) { "Tickets" } " / New" }
            div.card.form-card {
                h1 { "New ticket" }
                form method="post" action={(base) "/act"} {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="idempotency_key" value=(key);
                    input type="hidden" name="command" value="ticket.create";
                    label for="title" { "Title" }
                    input #title type="text" name="title" maxlength="200" required autofocus;
                    label for="description" { "Description" }
                    textarea #description name="description" rows="6" maxlength="20000" {}
                    label for="priority" { "Priority" }
                    select #priority name="priority" required {
                        @for priority in Priority::ALL {
                            option value=(priority.as_str()) selected[priority == Priority::P3] { (priority_label(priority)) }
                        }
                    }
                    label for="queue_id" { "Queue" }
                    select #queue_id name="queue_id" {
                        option value="" { "None" }
                        @for queue in queues { option value=(queue.id) { (queue.name) } }
                    }
                    button type="submit" { "Open ticket" }
                }
            }
        },
    )
}

/// What a bulk action did, item by item (`what`: "Tickets", "Assets").
pub(crate) fn bulk_result(
    frame: &ConsoleFrame<'_>,
    summary: String,
    what: &str,
    items: &[crate::console::BulkItem],
    back: &str,
) -> Markup {
    let count = |outcome: &str| items.iter().filter(|i| i.outcome == outcome).count();
    let tab = match what {
        "Assets" => ConsoleTab::Cmdb,
        "Time entries" => ConsoleTab::Financials,
        _ => ConsoleTab::Service,
    };
    console_tab_layout(
        frame,
        tab,
        "Bulk action",
        html! {
            p.crumbs { a href=(back) { (what) } " / Bulk action" }
            div.card {
                h1 { (summary) }
                p role="status" {
                    (count("updated")) " updated · " (count("skipped")) " skipped · " (count("failed")) " failed"
                    @if count("pending") > 0 { " · " (count("pending")) " still running" }
                }
                table {
                    caption.visually-hidden { "Each item's outcome" }
                    thead { tr { th scope="col" { (what.trim_end_matches('s')) } th scope="col" { "Outcome" } th scope="col" { "Why" } } }
                    tbody {
                        @for item in items {
                            tr {
                                td { a href=(item.href) { (item.title.as_deref().unwrap_or("(no such item here)")) } }
                                td { span class={"outcome-label " (item.outcome)} { (item.outcome) } }
                                td { (item.message) }
                            }
                        }
                    }
                }
                a.button href=(back) { "Back to " (what.to_lowercase()) }
            }
        },
    )
}

/// The queues: who works them, their SLA policy, and their open tickets.
pub(crate) fn queues(
    frame: &ConsoleFrame<'_>,
    queues: &[anchor_store::queues::Queue],
    policies: &[(String, String)],
) -> Markup {
    let base = format!("{}/service", frame.base());
    let policy_name = |id: &anchor_domain::SlaPolicyId| {
        let id = id.to_string();
        policies.iter().find(|(p, _)| *p == id).map_or(id.clone(), |(_, name)| name.clone())
    };
    console_layout(
        frame,
        "Queues",
        html! {
            div.heading { h1 { "Queues" } }
            nav.subnav aria-label="Service delivery" {
                a href=(base) { "Tickets" }
                a href={(base) "/queues"} aria-current="page" { "Queues" }
                a href={(base) "/kb"} { "Knowledge base" }
            }
            @if queues.is_empty() {
                div.card { p.muted { "No queues yet. An admin adds them (API: POST /api/v1/workspaces/{ws}/queues)." } }
            } @else {
                div.card.flush {
                    table {
                        caption.visually-hidden { "Queues" }
                        thead { tr { th scope="col" { "Queue" } th scope="col" { "Open tickets" } th scope="col" { "SLA policy" } th scope="col" { "People" } } }
                        tbody {
                            @for queue in queues {
                                tr {
                                    td {
                                        a href={(base) "?status=open&queue_id=" (queue.id)} { (queue.name) }
                                        @if !queue.description.is_empty() { br; span.muted.small { (queue.description) } }
                                    }
                                    td { (queue.open_tickets) }
                                    td { @match &queue.sla_policy_id { Some(p) => { (policy_name(p)) } None => { span.muted { "Workspace default" } } } }
                                    td.small {
                                        @if queue.members.is_empty() { span.muted { "Nobody yet" } }
                                        @else { (queue.members.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>().join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn policy_form(
    frame: &ConsoleFrame<'_>,
    all: &crate::admin::ServicePolicies,
    policy: Option<&anchor_store::service_policies::PolicyRecord>,
    key: &str,
) -> Markup {
    let action = format!("/w/{}/admin/service/policies", frame.workspace.slug().as_str());
    let definition = policy.map(|p| &p.definition.0);
    let minutes = |priority: &str, clock: &str| {
        definition
            .and_then(|d| d["targets"][priority][format!("{clock}_minutes")].as_u64())
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    let warning = definition.and_then(|d| d["warning_percent"].as_u64()).unwrap_or(80);
    let pausing = |status: &str| {
        definition.map_or(status == "waiting_on_client", |d| {
            d["pausing_statuses"].as_array().is_some_and(|a| a.iter().any(|s| s == status))
        })
    };
    let restart = definition.is_some_and(|d| d["on_reopen"] == "restart");
    let id = |name: &str| format!("{key}-{name}");
    html! {
        form.policy method="post" action=(action) {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            @if let Some(p) = policy { input type="hidden" name="id" value=(p.id); }
            label for=(id("name")) { "Name" }
            input id=(id("name")) type="text" name="name" maxlength="120" required value=[policy.map(|p| p.name.as_str())];
            label for=(id("calendar")) { "Business hours (calendar)" }
            select id=(id("calendar")) name="calendar_id" {
                @for c in &all.calendars {
                    option value=(c.id) selected[policy.is_some_and(|p| p.calendar_id == c.id)] { (c.name) }
                }
            }
            label.choice { input type="checkbox" name="default" value="yes" checked[policy.is_some_and(|p| p.is_default)]; " The workspace's default policy" }
            table.targets {
                caption { "Targets in business minutes (empty: no target)" }
                thead { tr { th scope="col" { "Priority" } th scope="col" { "First response" } th scope="col" { "Next update" } th scope="col" { "Resolution" } } }
                tbody {
                    @for priority in Priority::ALL {
                        tr {
                            th scope="row" { (priority.as_str().to_uppercase()) }
                            @for (clock, label) in [("first_response", "first response"), ("next_update", "next update"), ("resolution", "resolution")] {
                                td {
                                    input type="number" min="0" step="1" name={(priority.as_str()) "_" (clock)}
                                        value=(minutes(priority.as_str(), clock))
                                        aria-label={(priority.as_str().to_uppercase()) " " (label) ", minutes"};
                                }
                            }
                        }
                    }
                }
            }
            label for=(id("warning")) { "Warn when this share of a target is used (%)" }
            input id=(id("warning")) type="number" name="warning_percent" min="1" max="100" value=(warning);
            fieldset {
                legend { "The clocks pause while the ticket is" }
                @for status in crate::admin::PAUSABLE {
                    label.choice { input type="checkbox" name="pausing" value=(status.as_str()) checked[pausing(status.as_str())]; " " (status_text(status)) }
                }
            }
            fieldset {
                legend { "When a resolved ticket is reopened, the resolution clock" }
                label.choice { input type="radio" name="on_reopen" value="resume" checked[!restart]; " resumes where it stopped" }
                label.choice { input type="radio" name="on_reopen" value="restart" checked[restart]; " starts again" }
            }
            button type="submit" { @if policy.is_some() { "Save policy" } @else { "Add policy" } }
        }
    }
}

fn queue_form(
    frame: &ConsoleFrame<'_>,
    all: &crate::admin::ServicePolicies,
    queue: Option<&anchor_store::queues::Queue>,
    key: &str,
) -> Markup {
    let action = format!("/w/{}/admin/service/queues", frame.workspace.slug().as_str());
    let id = |name: &str| format!("{key}-{name}");
    let staff: Vec<&anchor_store::queues::WorkspaceMember> = all
        .members
        .iter()
        .filter(|m| {
            Role::parse(&m.role)
                .is_ok_and(|r| anchor_auth::permissions::grants(r, anchor_auth::permissions::Permission::TicketsWrite))
        })
        .collect();
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            @if let Some(q) = queue { input type="hidden" name="id" value=(q.id); }
            label for=(id("name")) { "Name" }
            input id=(id("name")) type="text" name="name" maxlength="120" required value=[queue.map(|q| q.name.as_str())];
            label for=(id("description")) { "Description" }
            input id=(id("description")) type="text" name="description" maxlength="2000" value=[queue.map(|q| q.description.as_str())];
            label for=(id("policy")) { "SLA policy of its tickets" }
            select id=(id("policy")) name="sla_policy_id" {
                option value="" { "The workspace default" }
                @for p in &all.policies {
                    option value=(p.id) selected[queue.is_some_and(|q| q.sla_policy_id == Some(p.id))] { (p.name) }
                }
            }
            fieldset {
                legend { "People who work it" }
                @if staff.is_empty() { p.muted { "No staff members yet." } }
                @for m in &staff {
                    label.choice {
                        input type="checkbox" name="member" value={(m.issuer) " " (m.subject)}
                            checked[queue.is_some_and(|q| q.members.iter().any(|a| a.issuer == m.issuer && a.subject == m.subject))];
                        " " (m.subject) " " span.muted { "(" (m.role) ")" }
                    }
                }
            }
            button type="submit" { @if queue.is_some() { "Save queue" } @else { "Add queue" } }
        }
    }
}

/// Admin settings: service policies (calendars, SLA policies, queues).
/// The sections of Admin settings, `here` current.
pub(crate) fn admin_tabs(frame: &ConsoleFrame<'_>, here: &str) -> Markup {
    let slug = frame.workspace.slug().as_str();
    html! {
        a href={"/w/" (slug) "/admin/service"} aria-current=[(here == "service").then_some("page")] { "Service policies" }
        a href={"/w/" (slug) "/admin/portal"} aria-current=[(here == "portal").then_some("page")] { "Portal access" }
    }
}

pub(crate) fn service_policies(
    frame: &ConsoleFrame<'_>,
    all: &crate::admin::ServicePolicies,
    problems: &[crate::admin::Problem],
    saved: Option<&str>,
) -> Markup {
    let tabs = admin_tabs(frame, "service");
    let calendar_name =
        |id: anchor_domain::CalendarId| all.calendars.iter().find(|c| c.id == id).map_or("?", |c| c.name.as_str());
    let policy_name =
        |id: anchor_domain::SlaPolicyId| all.policies.iter().find(|p| p.id == id).map_or("?", |p| p.name.as_str());
    let targets = |p: &anchor_store::service_policies::PolicyRecord| {
        let t = &p.definition.0["targets"];
        Priority::ALL
            .iter()
            .filter_map(|priority| {
                let m = t[priority.as_str()]["resolution_minutes"].as_u64()?;
                Some(format!("{} {}", priority.as_str().to_uppercase(), span(time::Duration::minutes(m as i64))))
            })
            .collect::<Vec<_>>()
            .join(" · ")
    };
    workspace_layout(
        frame,
        true,
        tabs,
        "Service policies",
        html! {
            div.heading { h1 { "Service policies" } }
            datalist #time-zones { @for zone in anchor_domain::TimeZoneName::all() { option value=(zone) {} } }
            @if let Some(what) = saved {
                div.outcome.succeeded role="status" { strong { "Saved." } " The " (what) " was recorded with a signed change record." }
            }
            @if !problems.is_empty() {
                div.outcome.failed role="alert" {
                    strong { "Not saved." }
                    ul { @for p in problems { li data-field=(p.field) { (p.message) } } }
                }
            }
            section.card.spaced aria-labelledby="policies-heading" {
                h2 #policies-heading { "SLA policies" }
                p.muted { "Targets per priority in business time. A ticket follows its contact's policy, else its site's, else its queue's, else the default. Changing a policy re-plans open tickets from now on." }
                table {
                    caption.visually-hidden { "SLA policies" }
                    thead { tr { th scope="col" { "Policy" } th scope="col" { "Calendar" } th scope="col" { "Resolution targets" } th scope="col" { "Version" } } }
                    tbody {
                        @for p in &all.policies {
                            tr {
                                td { (p.name) @if p.is_default { " " span.state { "Default" } } }
                                td { (calendar_name(p.calendar_id)) }
                                td.small { (targets(p)) }
                                td { (p.version) }
                            }
                        }
                    }
                }
                @for (i, p) in all.policies.iter().enumerate() {
                    details.edit {
                        summary { "Change " (p.name) }
                        (policy_form(frame, all, Some(p), &format!("policy-{i}")))
                    }
                }
                details.edit {
                    summary { "Add an SLA policy" }
                    (policy_form(frame, all, None, "policy-new"))
                }
            }
            section.card.spaced aria-labelledby="queues-heading" {
                h2 #queues-heading { "Queues" }
                @if all.queues.is_empty() { p.muted { "No queues yet." } }
                @else {
                    table {
                        caption.visually-hidden { "Queues" }
                        thead { tr { th scope="col" { "Queue" } th scope="col" { "SLA policy" } th scope="col" { "People" } } }
                        tbody {
                            @for q in &all.queues {
                                tr {
                                    td { (q.name) }
                                    td { @match q.sla_policy_id { Some(p) => { (policy_name(p)) } None => { span.muted { "Workspace default" } } } }
                                    td { (q.members.len()) }
                                }
                            }
                        }
                    }
                }
                @for (i, q) in all.queues.iter().enumerate() {
                    details.edit {
                        summary { "Change " (q.name) }
                        (queue_form(frame, all, Some(q), &format!("queue-{i}")))
                    }
                }
                details.edit {
                    summary { "Add a queue" }
                    (queue_form(frame, all, None, "queue-new"))
                }
            }
            section.card.spaced aria-labelledby="calendars-heading" {
                h2 #calendars-heading { "Business calendars" }
                p.muted { "Working hours per weekday in the calendar's own time zone, and holidays. Changing a calendar re-plans the open tickets that count in it from now on." }
                table {
                    caption.visually-hidden { "Business calendars" }
                    thead { tr { th scope="col" { "Calendar" } th scope="col" { "Time zone" } th scope="col" { "Holidays" } th scope="col" { "Version" } } }
                    tbody {
                        @for c in &all.calendars {
                            tr {
                                td { (c.name) }
                                td { (c.definition.0["time_zone"].as_str().unwrap_or("?")) }
                                td { (c.definition.0["holidays"].as_array().map_or(0, Vec::len)) }
                                td { (c.version) }
                            }
                        }
                    }
                }
                @for (i, c) in all.calendars.iter().enumerate() {
                    details.edit {
                        summary { "Change " (c.name) }
                        (calendar_form(frame, Some(c), &format!("calendar-{i}")))
                    }
                }
                details.edit {
                    summary { "Add a calendar" }
                    (calendar_form(frame, None, "calendar-new"))
                }
            }
        },
    )
}

fn calendar_form(
    frame: &ConsoleFrame<'_>,
    calendar: Option<&anchor_store::service_policies::CalendarRecord>,
    key: &str,
) -> Markup {
    let action = format!("/w/{}/admin/service/calendars", frame.workspace.slug().as_str());
    let empty = serde_json::json!({"time_zone": "Europe/London",
        "week": {"monday": [{"start": "09:00", "end": "17:00"}], "tuesday": [{"start": "09:00", "end": "17:00"}],
                 "wednesday": [{"start": "09:00", "end": "17:00"}], "thursday": [{"start": "09:00", "end": "17:00"}],
                 "friday": [{"start": "09:00", "end": "17:00"}]}, "holidays": []});
    let definition = calendar.map_or(&empty, |c| &c.definition.0);
    let (week, holidays) = crate::admin::calendar_fields(definition);
    let zone = definition["time_zone"].as_str().unwrap_or("UTC");
    let id = |name: &str| format!("{key}-{name}");
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            @if let Some(c) = calendar { input type="hidden" name="id" value=(c.id); }
            label for=(id("name")) { "Name" }
            input id=(id("name")) type="text" name="name" maxlength="120" required value=[calendar.map(|c| c.name.as_str())];
            label for=(id("zone")) { "Time zone" }
            input id=(id("zone")) type="text" name="time_zone" required value=(zone) list="time-zones";
            p.small.muted { "Hours per day, several windows separated by commas (09:00-12:00, 13:00-17:00; 24:00 ends a day); empty: closed." }
            @for (day, text) in &week {
                label for=(id(day)) { (day[..1].to_uppercase()) (day[1..]) }
                input id=(id(day)) type="text" name=(day) value=(text);
            }
            label for=(id("holidays")) { "Holidays, one a line" }
            textarea id=(id("holidays")) name="holidays" rows="4" placeholder="2026-05-25 Whit Monday
2026-12-24..2027-01-01 Winter closure
every 12-25 Christmas Day" { (holidays) }
            button type="submit" { @if calendar.is_some() { "Save calendar" } @else { "Add calendar" } }
        }
    }
}
