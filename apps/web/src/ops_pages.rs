//! The Ops page's markup: the queues with their counts, the runtime health,
//! the wall-board and the guided alert workflow.

use anchor_store::ops::{Health, OpsRow, Queue};
use maud::{Markup, html};
use serde_json::Value;

use crate::{
    ops::{Guide, OpsPage, Step},
    pages::{self, Area, ConsoleFrame, Shell, due_text, moment, outcome_banner, priority_label, shell_layout, span},
};

fn plural(n: i64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Seconds as people say them: "12 s", "4 min", "3 h 5 min".
fn secs_text(secs: i64) -> String {
    if secs < 60 { format!("{} s", secs.max(0)) } else { span(time::Duration::seconds(secs)) }
}

fn queue_url(page: &OpsPage, queue: Queue) -> String {
    format!("{}?queue={}", page.base, queue.key())
}

fn live_url(page: &OpsPage) -> String {
    match page.base.strip_prefix("/w/").and_then(|rest| rest.strip_suffix("/ops")) {
        Some(slug) => format!("/ops/live?ws={slug}"),
        None => "/ops/live".to_owned(),
    }
}

/// Whether the person may see this queue anywhere.
fn may_see(page: &OpsPage, queue: Queue) -> bool {
    let view = &page.view;
    !match queue {
        Queue::Critical => view.alerts.is_empty(),
        Queue::Unassigned | Queue::SlaRisk => view.tickets.is_empty(),
        Queue::FailedWorkflows => view.executions.is_empty(),
        Queue::FailedEvents => view.events.is_empty(),
    }
}

fn needs(queue: Queue) -> &'static str {
    match queue {
        Queue::Critical => "alerts.read",
        Queue::Unassigned | Queue::SlaRisk => "tickets.read",
        Queue::FailedWorkflows => "executions.read",
        Queue::FailedEvents => "ops.manage",
    }
}

/// The Ops page (or its wall-board).
pub(crate) fn ops(shell: &Shell<'_>, page: &OpsPage) -> Markup {
    let title = if page.wall { "Ops wall-board" } else { "Ops" };
    let here = format!("{}?queue={}{}", page.base, page.queue.key(), if page.wall { "&wall=1" } else { "" });
    shell_layout(
        shell,
        None,
        title,
        html! {
            @if let Some(notice) = page.notice { div.outcome.succeeded role="status" { (notice) } }
            div.heading {
                h1 { (title) @if page.one { } @else { span.muted.small { " · every client you may see" } } }
                @if page.wall {
                    a.button.secondary href=(queue_url(page, page.queue)) { "Leave the wall-board" }
                } @else {
                    a.button.secondary href={(here) "&wall=1"} { "Wall-board" }
                }
            }
            div.live hx-ext="sse" sse-connect=(live_url(page)) {
                div hx-get={(here) "&part=live"} hx-trigger="sse:changed" hx-swap="none" {}
            }
            (parts(page, false))
        },
    )
}

/// What changes, swapped in place by their ids when the queues change.
pub(crate) fn live_parts(page: &OpsPage) -> Markup {
    parts(page, true)
}

fn parts(page: &OpsPage, oob: bool) -> Markup {
    let oob = oob.then_some("true");
    if page.wall {
        return html! {
            div #ops-wall.wall hx-swap-oob=[oob] {
                p.small.muted role="status" { "Updated " (moment(page.now)) }
                (wall_tiles(page))
                section.card aria-labelledby="wall-critical" {
                    h2 #wall-critical { "Critical alerts" }
                    (queue_table(page))
                }
                (health_card(page))
            }
        };
    }
    html! {
        nav #ops-tabs.tabs.queues aria-label="Queues" hx-swap-oob=[oob] {
            @for queue in Queue::ALL {
                @let count = page.counts.of(queue);
                a href=(queue_url(page, queue)) aria-current=[(queue == page.queue).then_some("page")] {
                    (queue.title()) " "
                    span class={"count" @if count > 0 && queue != Queue::Unassigned { " hot" }} { (count) }
                }
            }
        }
        div #ops-body.ops-grid hx-swap-oob=[oob] {
            section.card.flush aria-labelledby="queue-heading" {
                h2 #queue-heading.pad { (page.queue.title()) }
                p.small.muted.pad role="status" { "Updated " (moment(page.now)) " · live" }
                @if page.queue == Queue::FailedEvents { (dead_letters(page)) } @else { (queue_table(page)) }
            }
            (health_card(page))
        }
    }
}

fn wall_tiles(page: &OpsPage) -> Markup {
    html! {
        ul.tiles {
            @for queue in Queue::ALL {
                @let count = page.counts.of(queue);
                li class={"tile" @if count > 0 && queue != Queue::Unassigned { " hot" }} {
                    a href=(queue_url(page, queue)) {
                        span.tile-count { (count) }
                        span.tile-label { (queue.title()) }
                    }
                }
            }
        }
    }
}

fn client_cell(page: &OpsPage, row_slug: &str, row_name: &str) -> Markup {
    html! {
        @if !page.one {
            td data-label="Client" { a href={"/w/" (row_slug) "/ops"} { (row_name) } }
        }
    }
}

fn detail<'a>(row: &'a OpsRow, key: &str) -> Option<&'a str> {
    row.detail.get(key).and_then(Value::as_str)
}

fn queue_table(page: &OpsPage) -> Markup {
    let queue = if page.wall { Queue::Critical } else { page.queue };
    if !may_see(page, queue) {
        return html! {
            p.pad.muted { "This queue needs " code { (needs(queue)) } ", which none of your roles grants in any client. Ask an MSP admin." }
        };
    }
    if page.rows.is_empty() {
        let quiet = match queue {
            Queue::Critical => "No critical alerts. All quiet.",
            Queue::Unassigned => "Every open ticket has someone working it.",
            Queue::SlaRisk => "No ticket is at risk of missing its SLA.",
            Queue::FailedWorkflows => "No failed workflows.",
            Queue::FailedEvents => "No failed events or jobs.",
        };
        return html! { p.pad.muted { (quiet) } };
    }
    let mut keys = page.keys.iter();
    html! {
        table.tickets.queue {
            caption.visually-hidden { (queue.title()) }
            thead { tr {
                @match queue {
                    Queue::Critical => { th scope="col" { "Alert" } }
                    Queue::FailedWorkflows => { th scope="col" { "Workflow" } }
                    _ => { th scope="col" { "Ticket" } }
                }
                @if !page.one { th scope="col" { "Client" } }
                @match queue {
                    Queue::Critical => { th scope="col" { "Asset" } th scope="col" { "Opened" } th scope="col" { "State" } }
                    Queue::FailedWorkflows => { th scope="col" { "Asked by" } th scope="col" { "Failed" } th scope="col" { "Actions" } }
                    _ => { th scope="col" { "Priority" } th scope="col" { "SLA" } th scope="col" { "Queue" } }
                }
            } }
            tbody {
                @for row in &page.rows {
                    @let ws = format!("/w/{}", row.workspace_slug);
                    tr class=[row.at_risk.then_some(if detail(row, "sla_state") == Some("breached") { "sla-breached" } else { "sla-warning" })] {
                        @match queue {
                            Queue::Critical => {
                                td {
                                    a href={(ws) "/ops/alerts/" (row.item_id)} { (row.title) }
                                    br; span.small.muted { "Work it step by step" }
                                }
                                (client_cell(page, &row.workspace_slug, &row.workspace_name))
                                td data-label="Asset" {
                                    @match (detail(row, "asset_id"), detail(row, "asset_name")) {
                                        (Some(id), Some(name)) => { a href={(ws) "/console/cmdb/assets/" (id)} { (name) } }
                                        _ => { (detail(row, "subject").unwrap_or("—")) }
                                    }
                                }
                                td.small data-label="Opened" { (moment(row.since)) }
                                td data-label="State" {
                                    @if row.acknowledged {
                                        span.health.ok { "Acknowledged" }
                                        @if let Some(by) = detail(row, "acknowledged_by") { br; span.small.muted { "by " (by) } }
                                    } @else {
                                        span.health.bad { "Not acknowledged" }
                                    }
                                    @if detail(row, "escalated_at").is_some() { br; span.badge { "escalated" } }
                                    @if let Some(ticket) = detail(row, "ticket_id") {
                                        br; a.small href={(ws) "/console/service/tickets/" (ticket)} { "Its ticket" }
                                    }
                                }
                            }
                            Queue::FailedWorkflows => {
                                td {
                                    a href={(ws) "/executions/" (row.item_id)} { (row.title) }
                                }
                                (client_cell(page, &row.workspace_slug, &row.workspace_name))
                                td data-label="Asked by" { (detail(row, "actor").unwrap_or("—")) }
                                td.small data-label="Failed" { (moment(row.since)) }
                                td data-label="Actions" {
                                    @if page.view.events.contains(row.workspace_id) {
                                        div.actions {
                                            (act_form(page, &row.workspace_slug, "retry", &row.item_id, keys.next(), "Retry"))
                                            (act_form(page, &row.workspace_slug, "dismiss", &row.item_id, None, "Dismiss"))
                                        }
                                    } @else {
                                        span.small.muted { "Needs ops.manage" }
                                    }
                                }
                            }
                            _ => {
                                td {
                                    a href={(ws) "/console/service/tickets/" (row.item_id)} { (row.title) }
                                    @if let Some(who) = detail(row, "assignee") { br; span.small.muted { "Assigned to " (who) } }
                                }
                                (client_cell(page, &row.workspace_slug, &row.workspace_name))
                                td.c-prio data-label="Priority" {
                                    (detail(row, "priority").and_then(|p| p.parse().ok()).map_or("—", priority_label))
                                }
                                td data-label="SLA" {
                                    @match row.due_at {
                                        Some(due) => { span class={"sla " @if due < page.now { "breached" } @else if row.at_risk { "warning" } @else { "running" }} { (due_text(due, page.now)) } }
                                        None => { span.sla.none { "No SLA" } }
                                    }
                                }
                                td data-label="Queue" { (detail(row, "queue").unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
        @if page.rows.len() as i64 >= crate::ops::QUEUE_ROWS {
            p.pad.small.muted { "The first " (crate::ops::QUEUE_ROWS) " are shown; the count above is the whole queue." }
        }
    }
}

/// A one-button form for an action on a failure.
fn act_form(page: &OpsPage, slug: &str, action: &str, id: &str, key: Option<&String>, label: &str) -> Markup {
    let back = if page.wall { page.base.clone() } else { format!("{}?queue={}", page.base, page.queue.key()) };
    let secondary = action == "dismiss" || action == "discard";
    html! {
        form.inline method="post" action={"/w/" (slug) "/ops/act"} {
            input type="hidden" name="csrf_token" value=(page.csrf);
            @if let Some(key) = key { input type="hidden" name="idempotency_key" value=(key); }
            input type="hidden" name="action" value=(action);
            input type="hidden" name="id" value=(id);
            input type="hidden" name="back" value=(back);
            button.small-button.secondary[secondary] type="submit" aria-label={(label) " " (id)} { (label) }
        }
    }
}

fn dead_letters(page: &OpsPage) -> Markup {
    if !may_see(page, Queue::FailedEvents) {
        return html! {
            p.pad.muted { "This queue needs " code { "ops.manage" } ", which none of your roles grants in any client. Ask an MSP admin." }
        };
    }
    if page.dead.is_empty() {
        return html! { p.pad.muted { "No failed events or jobs." } };
    }
    html! {
        table.tickets.queue {
            caption.visually-hidden { "Failed events and jobs, newest first" }
            thead { tr {
                th scope="col" { "Event" }
                @if !page.one { th scope="col" { "Client" } }
                th scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { "Created" } th scope="col" { "Actions" }
            } }
            tbody {
                @for dead in &page.dead {
                    tr {
                        td {
                            code { (dead.topic) } " #" (dead.id)
                            @if let Some(kind) = &dead.event_type { br; span.small.muted { (kind) } }
                        }
                        (client_cell(page, &dead.workspace_slug, &dead.workspace_name))
                        td data-label="Attempts" { (dead.attempts) }
                        td.small data-label="Last error" { (dead.last_error.as_deref().unwrap_or("—")) }
                        td.small data-label="Created" { (moment(dead.created_at)) }
                        td data-label="Actions" {
                            div.actions {
                                (act_form(page, &dead.workspace_slug, "replay", &dead.id.to_string(), None, "Replay"))
                                (act_form(page, &dead.workspace_slug, "discard", &dead.id.to_string(), None, "Discard"))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One line of the health card: a name, a state and what it says.
fn health_line(name: &str, class: &str, state: &str, text: &str) -> Markup {
    html! {
        dt { (name) }
        dd { span class={"health " (class)} { (state) } @if !text.is_empty() { " " span.small.muted { (text) } } }
    }
}

fn waiting(count: i64, oldest: Option<i64>) -> (String, &'static str) {
    match oldest {
        Some(age) if count > 0 => (
            format!("{count} waiting, the oldest {}", secs_text(age)),
            if age > 300 {
                "bad"
            } else if age > 30 {
                "warn"
            } else {
                "ok"
            },
        ),
        _ => ("nothing waiting".to_owned(), "ok"),
    }
}

fn health_card(page: &OpsPage) -> Markup {
    let h: &Health = &page.health;
    let late: Vec<&anchor_store::ops::JobRun> = h.jobs.iter().filter(|j| !j.on_time(page.now)).collect();
    let failing = h.jobs.iter().filter(|j| j.last_error.is_some()).count();
    let (outbox, outbox_class) = waiting(h.outbox_pending, h.outbox_oldest_secs);
    let (bus, bus_class) = waiting(h.bus_pending, h.bus_oldest_secs);
    let (handoff, handoff_class) = waiting(h.handoff_pending, h.handoff_oldest_secs);
    let word = |class: &str| match class {
        "ok" => "OK",
        "warn" => "Slow",
        _ => "Stalled",
    };
    html! {
        section.card.health-card aria-labelledby="health-heading" {
            h2 #health-heading { "Runtime health" }
            dl.health-list {
                (health_line("Gateway", "ok", "Serving", "this page came from it"))
                (health_line("Database", if h.database_ms < 100.0 { "ok" } else { "warn" }, if h.database_ms < 100.0 { "OK" } else { "Slow" }, &format!("{:.1} ms round trip", h.database_ms)))
                @if late.is_empty() {
                    (health_line("Worker", "ok", "Running", "every recurring job on time"))
                } @else {
                    (health_line("Worker", "bad", "Behind", &format!("{} of {} recurring jobs late", late.len(), h.jobs.len())))
                }
                (health_line("Event bus", bus_class, word(bus_class), &bus))
                (health_line("AgentField hand-off", handoff_class, word(handoff_class), &handoff))
                (health_line("Outbox", outbox_class, word(outbox_class), &format!("{outbox}; {} failed in all", h.outbox_failed)))
                (health_line(
                    "Agents",
                    if h.agents_offline == 0 { "ok" } else { "warn" },
                    &format!("{} offline", h.agents_offline),
                    &format!("of {} (silent over {})", h.agents, secs_text(anchor_store::ops::OFFLINE_AFTER_SECS)),
                ))
                @match h.telemetry_age_secs {
                    Some(age) => { (health_line("Telemetry", if age < 120 { "ok" } else { "warn" }, if age < 120 { "Flowing" } else { "Quiet" }, &format!("last received {} ago", secs_text(age)))) }
                    None => { (health_line("Telemetry", "none", "None yet", "no agent has reported")) }
                }
            }
            details.jobs {
                summary { "Recurring jobs" @if failing > 0 { " (" (failing) " failing)" } }
                div.scroll {
                    table {
                        caption.visually-hidden { "Recurring jobs and their last run" }
                        thead { tr { th scope="col" { "Job" } th scope="col" { "Every" } th scope="col" { "Last run" } th scope="col" { "Result" } } }
                        tbody {
                            @for job in &h.jobs {
                                tr {
                                    td { code { (job.name) } }
                                    td { (secs_text(i64::from(job.every_secs))) }
                                    td.small { @match job.last_run_at { Some(at) => { (secs_text((page.now - at).whole_seconds())) " ago" } None => { "never" } } }
                                    td.small {
                                        @match &job.last_error {
                                            Some(error) => { span.health.bad { "Failed" } " " (error) }
                                            None if job.last_run_at.is_some() => { span.health.ok { "OK" } }
                                            None => { span.health.none { "Waiting" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The guided workflow: alert -> acknowledge -> ticket -> asset context ->
/// runbook -> escalate or resolve, one step per screen.
pub(crate) fn guide(frame: &ConsoleFrame<'_>, g: &Guide) -> Markup {
    let shell = Shell {
        who: frame.who,
        role: frame.role,
        csrf: frame.csrf,
        workspace: Some(frame.workspace),
        may_admin: frame.may_admin,
        area: Area::Ops,
    };
    let slug = frame.workspace.slug().as_str();
    let ticket_param = g.ticket.as_ref().map(|t| format!("&ticket={}", t.id)).unwrap_or_default();
    let step_url = |step: Step| format!("/w/{slug}/ops/alerts/{}?step={}{ticket_param}", g.alert.id, step.key());
    let position = Step::ALL.iter().position(|s| *s == g.step).unwrap_or(0);
    let next = Step::ALL.get(position + 1).copied();
    let action = format!("/w/{slug}/ops/alerts/{}", g.alert.id);
    let open = g.alert.state == anchor_domain::AlertState::Open;
    let hidden = |name: &str| {
        html! {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(g.key);
            input type="hidden" name="action" value=(name);
            @if let Some(t) = &g.ticket { input type="hidden" name="ticket_id" value=(t.id); }
        }
    };
    let next_link = |label: &str| {
        html! { @if let Some(next) = next { a.button href=(step_url(next)) { (label) " " (next.title().to_lowercase()) } } }
    };
    shell_layout(
        &shell,
        None,
        &format!("{} · alert", g.step.title()),
        html! {
            (outcome_banner(frame, g.outcome.as_ref()))
            p.small { a href={"/w/" (slug) "/ops"} { "← Ops" } }
            div.heading {
                h1 { (g.alert.summary) }
                span class={"sla " (if g.alert.severity == anchor_domain::Severity::Critical { "breached" } else { "warning" })} { (g.alert.severity.as_str()) }
            }
            p.muted.small {
                "Opened " (moment(g.alert.opened_at))
                @if let Some(rule) = &g.rule { " · rule " (rule.name) }
                @if !open { " · " strong { "resolved" } }
            }
            ol.steps aria-label="Steps" {
                @for (i, step) in Step::ALL.iter().enumerate() {
                    @let done = match step {
                        Step::Acknowledge => g.alert.acknowledged_at.is_some(),
                        Step::Ticket => g.ticket.is_some(),
                        _ => i < position,
                    };
                    li class=[done.then_some("done")] {
                        a href=(step_url(*step)) aria-current=[(*step == g.step).then_some("step")] {
                            span.step-number { (i + 1) } " " (step.title())
                        }
                    }
                }
            }
            section.card.form-card aria-labelledby="step-heading" {
                h2 #step-heading { (position + 1) ". " (g.step.title()) }
                @match g.step {
                    Step::Acknowledge => {
                        @if let (Some(at), Some(by)) = (g.alert.acknowledged_at, &g.alert.acknowledged_by) {
                            p { "Acknowledged by " strong { (by.0.subject) } ", " (moment(at)) "." }
                            (next_link("Next:"))
                        } @else if !open {
                            p { "This alert has resolved; nothing to acknowledge." }
                            (next_link("Next:"))
                        } @else if g.may_manage_alerts {
                            p { "Acknowledging says you have taken this alert on: it stops its escalation, and colleagues see that it is yours." }
                            form method="post" action=(action) {
                                (hidden("acknowledge"))
                                button type="submit" { "Acknowledge" }
                            }
                        } @else {
                            p.muted { "Acknowledging needs alerts.manage; your role here is " (frame.role) ". Ask an MSP admin." }
                            (next_link("Skip to"))
                        }
                    }
                    Step::Ticket => {
                        @if let Some(t) = &g.ticket {
                            p {
                                @if g.alert.ticket_id == Some(t.id) { "Automation opened a ticket for this alert: " } @else { "The ticket for this alert: " }
                                a href={"/w/" (slug) "/console/service/tickets/" (t.id)} { (t.title) }
                            }
                            p.small.muted { (pages::status_text(t.status)) " · " (priority_label(t.priority))
                                @if let Some(a) = &t.assignee { " · assigned to " (a.0.subject) } @else { " · nobody assigned" } }
                            (next_link("Next:"))
                        } @else if g.may_write_tickets {
                            p { "No ticket yet. Open one about this alert:" }
                            form.stack method="post" action=(action) {
                                (hidden("open_ticket"))
                                @if let Some(asset) = g.alert.asset_id { input type="hidden" name="asset_id" value=(asset); }
                                label for="g-title" { "Title" }
                                input #g-title type="text" name="title" value=(g.alert.summary.chars().take(200).collect::<String>()) required maxlength="200";
                                label for="g-priority" { "Priority" }
                                select #g-priority name="priority" {
                                    @for p in [anchor_domain::Priority::P1, anchor_domain::Priority::P2, anchor_domain::Priority::P3, anchor_domain::Priority::P4] {
                                        option value=(p.as_str()) selected[p == anchor_domain::Priority::P2] { (priority_label(p)) }
                                    }
                                }
                                label for="g-description" { "Description" }
                                textarea #g-description name="description" rows="3" { "Opened from the Ops centre for the alert: " (g.alert.summary) }
                                button type="submit" { "Open the ticket" }
                            }
                        } @else {
                            p.muted { "Opening a ticket needs tickets.write; your role here is " (frame.role) "." }
                        }
                    }
                    Step::Context => {
                        @match &g.asset {
                            Some(row) => {
                                p {
                                    a href={"/w/" (slug) "/console/cmdb/assets/" (row.asset.id)} { strong { (row.asset.name) } }
                                    " · " (row.asset.type_key.as_str())
                                    " · agent " (row.agent_status.as_deref().unwrap_or("none"))
                                    @if let Some(seen) = row.last_seen_at { ", last seen " (moment(seen)) }
                                }
                                p.small { (plural(row.open_alerts, "open alert")) " · " (plural(row.failing_checks, "failing check")) " · " (plural(row.open_tickets, "open ticket")) " · "
                                    a href={"/w/" (slug) "/console/cmdb/assets/" (row.asset.id)} { "telemetry charts" } }
                            }
                            None => { p.muted { "The alert names no asset you may see." } }
                        }
                        h3 { "Other open alerts on this machine" }
                        @if g.others.is_empty() { p.muted.small { "None." } } @else {
                            ul { @for a in &g.others { li { a href={"/w/" (slug) "/ops/alerts/" (a.id)} { (a.summary) } " · " (a.severity.as_str()) } } }
                        }
                        h3 { "What depends on it" }
                        @match &g.impact {
                            Some(impact) if impact.items.len() > 1 => {
                                ul {
                                    @for item in impact.items.iter().skip(1).take(15) {
                                        li { a href={"/w/" (slug) "/console/cmdb/assets/" (item.asset_id)} { (item.name) }
                                            " · " (item.depth) " step" @if item.depth != 1 { "s" } " away"
                                            @if !item.open_alerts.is_empty() { " · " (item.open_alerts.len()) " open alerts" } }
                                    }
                                }
                                @if impact.items.len() > 16 || impact.truncated { p.small.muted { "And more: see the asset's impact view." } }
                            }
                            _ => { p.muted.small { "Nothing recorded as depending on it." } }
                        }
                        (next_link("Next:"))
                    }
                    Step::Runbook => {
                        @if let Some(run) = g.runs.first() {
                            (run_card(frame, g, run, &action))
                        } @else if !g.runbooks.is_empty() {
                            p { "Runbooks for this alert's rule, its machine's type or its ticket's queue:" }
                            ul.runbooks {
                                @for rb in &g.runbooks {
                                    li {
                                        strong { (rb.name) } " · version " (rb.version) " · " (rb.steps.0.len()) " steps"
                                        @if !rb.description.is_empty() { br; span.small.muted { (rb.description) } }
                                        @if g.may_write_tickets {
                                            form method="post" action=(action) {
                                                (hidden("start_runbook"))
                                                input type="hidden" name="runbook_id" value=(rb.id);
                                                @if let Some(asset) = g.alert.asset_id { input type="hidden" name="asset_id" value=(asset); }
                                                button.small-button type="submit" { "Start “" (rb.name) "”" }
                                            }
                                        }
                                    }
                                }
                            }
                        } @else {
                            p { "No runbook is attached to this alert's rule, its machine's type or its ticket's queue. Work the problem and note each step you take on the ticket; each note is an internal comment, kept with its signed evidence." }
                            @if g.ticket.is_some() && g.may_write_tickets {
                                form.stack method="post" action=(action) {
                                    (hidden("note"))
                                    label for="g-note" { "What you did" }
                                    textarea #g-note name="note" rows="3" required {}
                                    button.secondary type="submit" { "Add the note" }
                                }
                            } @else if g.ticket.is_none() {
                                p.muted { "Open a ticket at step 2 to keep notes." }
                            }
                        }
                        (next_link("Next:"))
                    }
                    Step::Escalate => {
                        @if let (Some(t), true) = (&g.ticket, g.may_write_tickets) {
                            h3 { "Escalate" }
                            form.stack method="post" action=(action) {
                                (hidden("escalate"))
                                input type="hidden" name="current_priority" value=(t.priority.as_str());
                                label for="g-queue" { "To a team's queue" }
                                select #g-queue name="queue_id" {
                                    option value="" { "Keep its queue" }
                                    @for q in &g.queues { option value=(q.id) { (q.name) } }
                                }
                                label for="g-assignee" { "To a person" }
                                select #g-assignee name="assignee" {
                                    option value="" { "Keep its assignee" }
                                    @for m in &g.staff { option value={(m.issuer) " " (m.subject)} { (m.subject) " (" (m.role) ")" } }
                                }
                                label for="g-esc-priority" { "Priority" }
                                select #g-esc-priority name="priority" {
                                    @for p in [anchor_domain::Priority::P1, anchor_domain::Priority::P2, anchor_domain::Priority::P3, anchor_domain::Priority::P4] {
                                        option value=(p.as_str()) selected[p == t.priority] { (priority_label(p)) }
                                    }
                                }
                                label for="g-esc-note" { "Note for whoever takes it" }
                                textarea #g-esc-note name="note" rows="3" {}
                                button type="submit" { "Escalate" }
                            }
                            h3 { "Or resolve" }
                            form.stack method="post" action=(action) {
                                (hidden("resolve"))
                                label for="g-res-note" { "What fixed it" }
                                textarea #g-res-note name="note" rows="2" {}
                                button.secondary type="submit" { "Resolve the ticket" }
                            }
                        } @else if g.ticket.is_none() {
                            p.muted { "Open a ticket at step 2 first: escalation and resolution work on it." }
                        } @else {
                            p.muted { "Escalating needs tickets.write; your role here is " (frame.role) "." }
                        }
                    }
                }
            }
        },
    )
}

/// A run of a runbook: each step done (who, when, the command's execution)
/// or the form that does it.
fn run_card(frame: &ConsoleFrame<'_>, g: &Guide, run: &anchor_store::runbooks::RunbookRun, action: &str) -> Markup {
    use anchor_domain::runbook::RunbookStep;
    let slug = frame.workspace.slug().as_str();
    let done = |n: usize| run.done.iter().find(|d| d.step as usize == n);
    html! {
        p {
            strong { (run.runbook_name) } " · version " (run.version) " · started by " (run.started_by.0.subject) " "
            (moment(run.started_at))
            @if let Some(at) = run.finished_at { " · " span.health.ok { "finished" } " " (moment(at)) }
        }
        ol.runbook-steps {
            @for (i, step) in run.steps.0.iter().enumerate() {
                @let n = i + 1;
                li {
                    @match step {
                        RunbookStep::Text { text } => { (text) }
                        RunbookStep::Check { text } => { @if done(n).is_some() { "☑ " } @else { "☐ " } (text) }
                        RunbookStep::Command { text, command, .. } => { (text) " " span.badge { "runs " code { (command) } } }
                    }
                    @if let Some(d) = done(n) {
                        br;
                        span.small {
                            span.health.ok { "Done" } " by " (d.done_by.0.subject) ", " (moment(d.done_at))
                            @if let Some(ran) = d.ran {
                                " · " a href={"/w/" (slug) "/executions/" (ran)} { "its command: " (d.ran_status.as_deref().unwrap_or("queued")) }
                            }
                            @if let Some(note) = &d.note { " · " (note) }
                        }
                    } @else if g.may_write_tickets {
                        form.inline-step method="post" action=(action) {
                            input type="hidden" name="csrf_token" value=(frame.csrf);
                            input type="hidden" name="idempotency_key" value={(g.key) "-" (n)};
                            input type="hidden" name="run_id" value=(run.id);
                            input type="hidden" name="step" value=(n);
                            @if let Some(t) = &g.ticket { input type="hidden" name="ticket_id" value=(t.id); }
                            @match step {
                                RunbookStep::Command { command, .. } => {
                                    input type="hidden" name="action" value="run_step";
                                    button.small-button type="submit" { "Run " (command) }
                                }
                                _ => {
                                    input type="hidden" name="action" value="step_done";
                                    label.visually-hidden for={"note-" (n)} { "Note for step " (n) }
                                    input #{"note-" (n)} type="text" name="note" placeholder="Note (optional)" maxlength="2000";
                                    button.small-button.secondary type="submit" { @if matches!(step, RunbookStep::Check { .. }) { "Tick" } @else { "Done" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_as_people_say_them() {
        assert_eq!(secs_text(-3), "0 s");
        assert_eq!(secs_text(42), "42 s");
        assert_eq!(secs_text(3_900), "1 h 5 min");
    }
}
