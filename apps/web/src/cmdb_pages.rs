//! The CMDB tab's templates. maud escapes every interpolated value.

use anchor_domain::{AssetStatus, FieldKind, RelationshipKind};
use anchor_store::cmdb::{AssetRow, AssetType, Impacted, Relationship};
use maud::{Markup, html};

use crate::{
    cmdb::{AssetFilters, AssetListPage, AssetPage},
    pages::{ConsoleFrame, ConsoleTab, console_tab_layout, moment},
};

pub(crate) fn status_text(status: AssetStatus) -> &'static str {
    match status {
        AssetStatus::Planned => "Planned",
        AssetStatus::Active => "Active",
        AssetStatus::InRepair => "In repair",
        AssetStatus::Retired => "Retired",
        AssetStatus::Disposed => "Disposed",
    }
}

/// The button that moves an asset to `status`.
fn status_action(status: AssetStatus) -> &'static str {
    match status {
        AssetStatus::Planned => "Back to planned",
        AssetStatus::Active => "Put into service",
        AssetStatus::InRepair => "Send for repair",
        AssetStatus::Retired => "Retire",
        AssetStatus::Disposed => "Mark disposed",
    }
}

/// "runs on", as a sentence reads it.
fn kind_text(kind: RelationshipKind) -> &'static str {
    match kind {
        RelationshipKind::RunsOn => "runs on",
        RelationshipKind::DependsOn => "depends on",
        RelationshipKind::ConnectedTo => "is connected to",
        RelationshipKind::BacksUp => "backs up",
        RelationshipKind::InstalledOn => "is installed on",
    }
}

/// How an asset is, in one word people scan for, and its class.
fn health(row: &AssetRow) -> (&'static str, &'static str) {
    if row.asset.status.is_history() {
        return ("Out of service", "none");
    }
    match row.agent_status.as_deref() {
        _ if row.open_alerts > 0 => ("Alerting", "bad"),
        Some("offline") => ("Offline", "bad"),
        _ if row.failing_checks > 0 => ("Failing checks", "warn"),
        Some("overdue") => ("Overdue", "warn"),
        Some("revoked") => ("Agent revoked", "none"),
        Some(_) => ("Healthy", "ok"),
        None => ("No agent", "none"),
    }
}

fn type_name<'a>(types: &'a [AssetType], key: &'a anchor_domain::SchemaKey) -> &'a str {
    types.iter().find(|t| &t.key == key).map_or(key.as_str(), |t| t.name.as_str())
}

fn agent_text(status: Option<&str>) -> &'static str {
    match status {
        Some("online") => "Online",
        Some("overdue") => "Overdue",
        Some("offline") => "Offline",
        Some("revoked") => "Revoked",
        _ => "None",
    }
}

/// The asset list.
pub(crate) fn asset_list(frame: &ConsoleFrame<'_>, filters: &AssetFilters, list: &AssetListPage) -> Markup {
    let base = format!("{}/cmdb", frame.base());
    let is = |a: Option<&str>, b: &str| a == Some(b);
    let type_now = filters.type_key.as_ref().map(|k| k.as_str());
    let site_now = filters.site_id.map(|s| s.to_string());
    let status_now = filters.status.map(|s| s.as_str());
    let agent_now = filters.has_agent.map(|a| if a { "true" } else { "false" });
    console_tab_layout(
        frame,
        ConsoleTab::Cmdb,
        "Assets",
        html! {
            div.heading {
                h1 { "Assets" }
                @if frame.may_write { a.button href={(base) "/new"} { "New asset" } }
            }
            nav.views aria-label="Quick views" {
                a href={(base) "?has_agent=true"} { "Managed machines" }
                a href={(base) "?has_agent=false"} { "Without an agent" }
                a href={(base) "?status=in_repair"} { "In repair" }
                a href={(base) "?status=planned"} { "Planned" }
                a href={(base) "?status=retired"} { "Retired" }
                a href=(base) { "All in service" }
            }
            form.filters method="get" action=(base) hx-get=(base) hx-target="#asset-list" hx-swap="outerHTML"
                hx-push-url="true" hx-trigger="submit, change" hx-indicator="#asset-list" {
                div.search {
                    label for="a-q" { "Search" }
                    input #a-q type="search" name="q" maxlength="200" placeholder="Name, host name or serial"
                        value=[filters.search.as_deref()];
                }
                div {
                    label for="a-type" { "Type" }
                    select #a-type name="type" {
                        option value="" { "Any" }
                        @for kind in &list.types {
                            option value=(kind.key) selected[is(type_now, kind.key.as_str())] { (kind.name) }
                        }
                    }
                }
                div {
                    label for="a-site" { "Site" }
                    select #a-site name="site_id" {
                        option value="" { "Any" }
                        @for site in &list.sites {
                            option value=(site.id) selected[site_now.as_deref() == Some(&site.id.to_string())] { (site.name) }
                        }
                    }
                }
                div {
                    label for="a-status" { "Status" }
                    select #a-status name="status" {
                        option value="" { "In service (not retired)" }
                        @for status in AssetStatus::ALL {
                            option value=(status.as_str()) selected[is(status_now, status.as_str())] { (status_text(status)) }
                        }
                    }
                }
                div {
                    label for="a-agent" { "Agent" }
                    select #a-agent name="has_agent" {
                        option value="" { "Any" }
                        option value="true" selected[is(agent_now, "true")] { "With an agent" }
                        option value="false" selected[is(agent_now, "false")] { "Without" }
                    }
                }
                div {
                    label for="a-tag" { "Tag" }
                    input #a-tag type="text" name="tag" maxlength="40" value=[filters.tag.as_ref().map(|t| t.as_str())];
                }
                button.secondary type="submit" { "Filter" }
            }
            (asset_list_region(frame, filters, list))
        },
    )
}

/// The list under the filters: the bulk form, the table and the next page's
/// link. What htmx swaps when the filters change.
pub(crate) fn asset_list_region(frame: &ConsoleFrame<'_>, filters: &AssetFilters, list: &AssetListPage) -> Markup {
    let base = format!("{}/cmdb", frame.base());
    let site_name = |id: anchor_domain::SiteId| list.sites.iter().find(|s| s.id == id).map(|s| s.name.as_str());
    html! {
        div #asset-list aria-live="polite" {
            @if list.rows.is_empty() {
                div.card { p.muted { "No assets match these filters." } }
            } @else {
                form.bulk method="post" action={(base) "/bulk"} {
                    input type="hidden" name="csrf_token" value=(frame.csrf);
                    input type="hidden" name="idempotency_key" value=(list.bulk_key);
                    @if frame.may_write {
                        div.toolbar {
                            label for="bulk-action" { "With the selected assets" }
                            select #bulk-action name="action" {
                                option value="tag" { "Tag them" }
                                option value="move" { "Move to the site" }
                                option value="ticket" { "Open a ticket about each" }
                                option value="retire" { "Retire them" }
                                @if frame.may_revoke_agents {
                                    option value="revoke" { "Revoke their agents" }
                                } @else {
                                    option value="revoke" disabled { "Revoke their agents (needs enrollment.manage)" }
                                }
                            }
                            label for="bulk-tag" { "Tag" }
                            input #bulk-tag type="text" name="tag" maxlength="40" placeholder="for “Tag them”";
                            label for="bulk-site" { "Site" }
                            select #bulk-site name="site_id" {
                                option value="" { "No site" }
                                @for site in &list.sites { option value=(site.id) { (site.name) } }
                            }
                            button.secondary type="submit" { "Apply" }
                        }
                    }
                    div.card.flush {
                        table.tickets.assets {
                            caption.visually-hidden { "Assets by name" }
                            thead {
                                tr {
                                    @if frame.may_write { th scope="col" { span.visually-hidden { "Select" } } }
                                    th scope="col" { "Asset" }
                                    th scope="col" { "Health" }
                                    th scope="col" { "Type" }
                                    th scope="col" { "Site" }
                                    th scope="col" { "Agent" }
                                    th scope="col" { "Last seen" }
                                    th scope="col" { "Alerts" }
                                    th scope="col" { "Failing checks" }
                                    th scope="col" { "Processor, 24 h" }
                                }
                            }
                            tbody {
                                @for row in &list.rows {
                                    @let asset = &row.asset;
                                    @let (health_text, health_class) = health(row);
                                    tr {
                                        @if frame.may_write {
                                            td.select {
                                                input type="checkbox" name="asset" value=(asset.id) id={"sel-" (asset.id)}
                                                    aria-label={"Select " (asset.name)};
                                            }
                                        }
                                        td {
                                            a href={(base) "/assets/" (asset.id)} { (asset.name) }
                                            @if asset.status != AssetStatus::Active {
                                                " " span.badge { (status_text(asset.status)) }
                                            }
                                            @if !asset.tags.is_empty() {
                                                br; span.muted.small { (asset.tags.join(", ")) }
                                            }
                                        }
                                        td.c-status { span class={"health " (health_class)} { (health_text) } }
                                        td data-label="Type" { (type_name(&list.types, &asset.type_key)) }
                                        td data-label="Site" { (asset.site_id.and_then(site_name).unwrap_or("—")) }
                                        td data-label="Agent" { (agent_text(row.agent_status.as_deref())) }
                                        td.small data-label="Last seen" { @match row.last_seen_at { Some(at) => { (moment(at)) } None => { "—" } } }
                                        td.c-inline data-label="Alerts" { (row.open_alerts) }
                                        td.c-inline data-label="Failing checks" { (row.failing_checks) }
                                        td data-label="Processor, 24 h" {
                                            @match list.sparks.get(&asset.id) {
                                                Some(values) => { (crate::charts::sparkline("Processor use", values)) }
                                                None => { span.muted.small { "—" } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &list.next {
                    @let href = format!("{base}?{}&after={}", filters.query(), url::form_urlencoded::byte_serialize(next.to_string().as_bytes()).collect::<String>());
                    p { a.button.secondary href=(href) hx-get=(href) hx-target="#asset-list" hx-swap="outerHTML" hx-push-url="true" { "Next 50 assets" } }
                }
            }
        }
    }
}

fn input_for(field: &anchor_domain::FieldDef, value: Option<&serde_json::Value>) -> Markup {
    let name = format!("attr.{}", field.key);
    let id = format!("attr-{}", field.key);
    let text = value.map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    html! {
        @match field.kind {
            FieldKind::Boolean => {
                // On a line of its own, like every other field.
                div {
                    input type="hidden" name={(name) ".shown"} value="1";
                    label.choice for=(id) {
                        input #(id) type="checkbox" name=(name) value="true" checked[value == Some(&serde_json::Value::Bool(true))];
                        " " (field.label)
                    }
                }
            }
            FieldKind::Choice => {
                label for=(id) { (field.label) @if field.required { " (required)" } }
                select #(id) name=(name) required[field.required] {
                    option value="" { "—" }
                    @for option in &field.options {
                        option value=(option) selected[text.as_deref() == Some(option.as_str())] { (option) }
                    }
                }
            }
            kind => {
                label for=(id) { (field.label) @if field.required { " (required)" } }
                @let (kind_attr, step) = match kind {
                    FieldKind::Number => ("number", Some("any")),
                    FieldKind::Integer => ("number", Some("1")),
                    FieldKind::Date => ("date", None),
                    _ => ("text", None),
                };
                input #(id) type=(kind_attr) step=[step] name=(name) value=[text.as_deref()] required[field.required]
                    maxlength=[(kind == FieldKind::Text).then_some("500")];
            }
        }
    }
}

/// The form that adds an asset: first its type, then the fields of that type.
pub(crate) fn new_asset(
    frame: &ConsoleFrame<'_>,
    types: &[AssetType],
    kind: Option<&AssetType>,
    sites: &[anchor_store::sites::Site],
    key: &str,
) -> Markup {
    let base = format!("{}/cmdb", frame.base());
    console_tab_layout(
        frame,
        ConsoleTab::Cmdb,
        "New asset",
        html! {
            p.crumbs { a href=(base) { "Assets" } " / New asset" }
            div.card.form-card {
                h1 { "New asset" }
                p.muted { "For what has no agent: a switch, a printer, a licence. Machines with an agent appear when they enroll." }
                form.stack method="get" action={(base) "/new"} {
                    label for="new-type" { "Type" }
                    select #new-type name="type" {
                        @for t in types {
                            option value=(t.key) selected[kind.is_some_and(|k| k.key == t.key)] { (t.name) }
                        }
                    }
                    button.secondary type="submit" { @if kind.is_some() { "Change type" } @else { "Continue" } }
                }
                @if let Some(kind) = kind {
                    form.stack method="post" action={(base) "/act"} {
                        input type="hidden" name="csrf_token" value=(frame.csrf);
                        input type="hidden" name="idempotency_key" value=(key);
                        input type="hidden" name="command" value="asset.create";
                        input type="hidden" name="type" value=(kind.key);
                        h2 { (kind.name) }
                        label for="new-name" { "Name" }
                        input #new-name type="text" name="name" maxlength="200" required;
                        label for="new-status" { "Status" }
                        select #new-status name="status" {
                            option value="active" { "Active (in service)" }
                            option value="planned" { "Planned (not yet in service)" }
                        }
                        label for="new-site" { "Site" }
                        select #new-site name="site_id" {
                            option value="" { "None" }
                            @for site in sites { option value=(site.id) { (site.name) } }
                        }
                        label for="new-serial" { "Serial number" }
                        input #new-serial type="text" name="serial" maxlength="100";
                        label for="new-host" { "Host name or address" }
                        input #new-host type="text" name="hostname" maxlength="200";
                        label for="new-bought" { "Purchased on" }
                        input #new-bought type="date" name="purchased_on";
                        label for="new-warranty" { "Warranty until" }
                        input #new-warranty type="date" name="warranty_until";
                        @for field in kind.fields.iter() { (input_for(field, None)) }
                        button type="submit" { "Add asset" }
                    }
                }
            }
        },
    )
}

fn relationship_sentence(base: &str, me: anchor_domain::AssetId, r: &Relationship) -> Markup {
    let link = |id: anchor_domain::AssetId, name: &str| {
        html! { @if id == me { strong { (name) } } @else { a href={(base) "/assets/" (id)} { (name) } } }
    };
    html! { (link(r.asset_id, r.asset_name.as_str())) " " (kind_text(r.kind)) " " (link(r.target_id, r.target_name.as_str())) }
}

fn impacted_row(console: &str, item: &Impacted) -> Markup {
    let base = format!("{console}/cmdb");
    html! {
        tr {
            td { (item.depth) }
            td {
                @if item.depth == 0 { strong { (item.name) } } @else { a href={(base) "/assets/" (item.asset_id)} { (item.name) } }
                @if item.status != AssetStatus::Active { " " span.badge { (status_text(item.status)) } }
            }
            td.small {
                @if let Some(via) = &item.via { (kind_text(via.kind)) } @else { "the asset itself" }
            }
            td {
                @for alert in &item.open_alerts { span class={"sla " (if alert.severity == "critical" { "breached" } else { "warning" })} { (alert.summary) } br; }
                @if item.open_alerts.is_empty() { span.muted { "none" } }
            }
            td {
                @for ticket in &item.open_tickets { a href={(console) "/service/tickets/" (ticket.id)} { (ticket.title) } br; }
                @if item.open_tickets.is_empty() { span.muted { "none" } }
            }
        }
    }
}

/// A machine's charts over the chosen range, with the ranges to choose.
fn telemetry_section(
    frame: &ConsoleFrame<'_>,
    asset: anchor_domain::AssetId,
    telemetry: &crate::cmdb::Telemetry,
) -> Markup {
    let page = format!("{}/cmdb/assets/{asset}", frame.base());
    let series = |name: &str| -> Vec<crate::charts::Series> {
        let mut out: Vec<crate::charts::Series> = Vec::new();
        for bucket in telemetry.buckets.iter().filter(|b| b.name == name) {
            let label = if bucket.series.is_empty() { name.to_owned() } else { bucket.series.clone() };
            match out.iter_mut().find(|s| s.label == label) {
                Some(line) => line.points.push((bucket.bucket, bucket.mean)),
                None => out.push(crate::charts::Series { label, points: vec![(bucket.bucket, bucket.mean)] }),
            }
        }
        out
    };
    let axes =
        crate::charts::Axes { from: telemetry.from, to: telemetry.to, step: telemetry.step, max: 100.0, unit: "%" };
    let chart = |id: &str, title: &str, name: &str| crate::charts::line_chart(id, title, &axes, &series(name));
    html! {
        section.card.spaced.telemetry aria-labelledby="tel-h" {
            h2 #tel-h { "Telemetry" }
            nav.views aria-label="Range" {
                @for (range, _) in crate::cmdb::RANGES {
                    a href={(page) "?range=" (range)} aria-current=[(range == telemetry.range).then_some("page")] { "Last " (range) }
                }
            }
            (chart("chart-cpu", "Processor use", crate::cmdb::CHARTED[0]))
            (chart("chart-memory", "Memory use", crate::cmdb::CHARTED[1]))
            (chart("chart-disk", "Disk use, by mount", crate::cmdb::CHARTED[2]))
        }
    }
}

/// Its alerts (open and recent) and its agent's checks, each's latest result.
fn alerts_section(frame: &ConsoleFrame<'_>, page: &AssetPage) -> Markup {
    let slug = frame.workspace.slug().as_str();
    html! {
        section.card.spaced aria-labelledby="ac-h" {
            h2 #ac-h { "Alerts and checks" }
            @if page.alerts.is_empty() {
                p.muted.small { "No alerts on it." }
            } @else {
                ul.plain {
                    @for alert in &page.alerts {
                        @let open = alert.state == anchor_domain::AlertState::Open;
                        li {
                            span class={"sla " (severity_class(alert.severity))} { (alert.severity.as_str()) } " "
                            @if open {
                                a href={"/w/" (slug) "/ops/alerts/" (alert.id)} { (alert.summary) }
                            } @else {
                                (alert.summary) " " span.badge { "resolved" }
                            }
                            br;
                            span.small.muted { "opened " (moment(alert.opened_at))
                                @if let Some(at) = alert.resolved_at { ", resolved " (moment(at)) } }
                        }
                    }
                }
            }
            @if !page.checks.is_empty() {
                h3 { "Checks" }
                ul.plain {
                    @for check in &page.checks {
                        @let class = match check.status.as_str() { "failing" => "bad", "warning" => "warn", _ => "ok" };
                        li {
                            span class={"health " (class)} { (check.status) } " " code { (check.name) }
                            @if !check.output.is_empty() { " · " span.small { (check.output.chars().take(200).collect::<String>()) } }
                            " · " span.small.muted { (moment(check.at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The software its agent's inventory lists (packages with versions).
fn software_section(asset: &anchor_store::cmdb::Asset) -> Markup {
    let packages = &asset.facts["packages"];
    let Some(list) = packages["list"].as_array() else { return html! {} };
    let installed = packages["installed"].as_u64().unwrap_or(list.len() as u64);
    let manager = packages["manager"].as_str().unwrap_or("the package manager");
    html! {
        section.card.spaced aria-labelledby="sw-h" {
            h2 #sw-h { "Software" }
            p.small.muted {
                (installed) " packages installed, as " (manager) " lists them in the agent's latest inventory"
                @if packages["truncated"].as_bool() == Some(true) { " (the first " (list.len()) " shown)" }
                "."
            }
            details {
                summary { "The packages and their versions" }
                div.scroll {
                    table.software {
                        caption.visually-hidden { "Installed packages" }
                        thead { tr { th scope="col" { "Package" } th scope="col" { "Version" } } }
                        tbody {
                            @for package in list {
                                tr { td { (package["name"].as_str().unwrap_or("?")) } td { code { (package["version"].as_str().unwrap_or("")) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What happened to it: commands (with their executions) and changes.
fn history_section(frame: &ConsoleFrame<'_>, history: &[anchor_store::cmdb::AssetEvent]) -> Markup {
    let slug = frame.workspace.slug().as_str();
    html! {
        section.card.spaced aria-labelledby="hist-h" {
            h2 #hist-h { "Changes and audit" }
            @if history.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                p.small.muted { "Each entry is attested by a signed credential (its execution's, or its change record's)." }
                ol.history {
                    @for event in history {
                        li {
                            (moment(event.at)) " · " strong { (event.who) } " · "
                            @match anchor_commands::registry::find(&event.what) {
                                Some(spec) => { (spec.summary) }
                                None => { code { (event.what) } }
                            }
                            " · "
                            @if event.ref_id.starts_with("exe_") {
                                a href={"/w/" (slug) "/executions/" (event.ref_id)} { (event.status) }
                            } @else {
                                span.muted { (event.status) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "1 open alert", "2 open alerts".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An asset's page.
pub(crate) fn asset_page(frame: &ConsoleFrame<'_>, page: &AssetPage) -> Markup {
    let base = format!("{}/cmdb", frame.base());
    let asset = &page.row.asset;
    let (health_text, health_class) = health(&page.row);
    let kind_name = page.kind.as_ref().map_or(asset.type_key.as_str(), |k| k.name.as_str());
    let history = asset.status.is_history();
    let mut keys = page.keys.iter();
    let mut key = move || keys.next().cloned().unwrap_or_default();
    let hidden = |command: &str, key: String| {
        html! {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            input type="hidden" name="command" value=(command);
            input type="hidden" name="asset_id" value=(asset.id);
        }
    };
    let dependents = page.impact.items.len().saturating_sub(1);
    console_tab_layout(
        frame,
        ConsoleTab::Cmdb,
        asset.name.as_str(),
        html! {
            p.crumbs { a href=(base) { "Assets" } " / " (asset.name) }
            (crate::pages::outcome_banner(frame, page.outcome.as_ref()))
            div.heading {
                h1 { (asset.name) }
                span class={"health " (health_class)} { (health_text) }
            }
            p.badges {
                span.badge { (kind_name) } " "
                span.badge { (status_text(asset.status)) }
                @for tag in &asset.tags { " " span.badge { "#" (tag) } }
            }
            div.columns {
                div.main-column {
                    @if let Some(telemetry) = &page.telemetry { (telemetry_section(frame, asset.id, telemetry)) }
                    section.card aria-labelledby="impact-h" {
                        h2 #impact-h { "If it fails" }
                        @if dependents == 0 {
                            p.muted { "Nothing depends on it." }
                        } @else {
                            p { (count(dependents, "asset depends", "assets depend")) " on it, with "
                                (count(page.impact.open_alerts, "open alert", "open alerts")) " and "
                                (count(page.impact.open_tickets, "open ticket", "open tickets")) " on the way."
                                @if page.impact.truncated { " (Only the nearest are shown.)" } }
                        }
                        @let root = &page.impact.items[0];
                        @if dependents > 0 || !root.open_alerts.is_empty() || !root.open_tickets.is_empty() {
                        div.scroll tabindex="0" role="region" aria-label="What its failure reaches" {
                            table {
                                caption.visually-hidden { "What its failure reaches, nearest first" }
                                thead { tr { th scope="col" { "Steps" } th scope="col" { "Asset" } th scope="col" { "How" } th scope="col" { "Open alerts" } th scope="col" { "Open tickets" } } }
                                tbody { @for item in &page.impact.items { (impacted_row(&frame.base(), item)) } }
                            }
                        }
                        }
                    }
                    section.card.spaced aria-labelledby="rel-h" {
                        h2 #rel-h { "Relationships" }
                        @if page.relationships.is_empty() { p.muted { "None yet." } }
                        ul {
                            @for r in &page.relationships {
                                li {
                                    (relationship_sentence(&base, asset.id, r))
                                    @if frame.may_write {
                                        " "
                                        form.inline method="post" action={(base) "/act"} {
                                            input type="hidden" name="csrf_token" value=(frame.csrf);
                                            input type="hidden" name="idempotency_key" value=(key());
                                            input type="hidden" name="command" value="asset.unrelate";
                                            input type="hidden" name="relationship_id" value=(r.id);
                                            input type="hidden" name="back_to" value=(asset.id);
                                            button.quiet.small-button type="submit" aria-label={"Remove: " (r.asset_name) " " (kind_text(r.kind)) " " (r.target_name)} { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                        @if frame.may_write && !history {
                            form.stack method="post" action={(base) "/act"} {
                                (hidden("asset.relate", key()))
                                fieldset {
                                    legend { "Relate: " (asset.name) " …" }
                                    label for="rel-kind" { "How" }
                                    select #rel-kind name="kind" {
                                        @for kind in RelationshipKind::ALL { option value=(kind.as_str()) { (kind_text(kind)) } }
                                    }
                                    label for="rel-target" { "Which asset" }
                                    select #rel-target name="target_id" required {
                                        option value="" { "Choose an asset" }
                                        @for other in page.relatable.iter().filter(|o| o.asset.id != asset.id) {
                                            option value=(other.asset.id) { (other.asset.name) }
                                        }
                                    }
                                }
                                button.secondary type="submit" { "Add relationship" }
                            }
                        }
                    }
                    @if frame.may_write && !history {
                        details.card.spaced.edit {
                            summary { "Edit details and attributes" }
                            form.stack method="post" action={(base) "/act"} {
                                (hidden("asset.update", key()))
                                input type="hidden" name="type" value=(asset.type_key);
                                label for="e-name" { "Name" }
                                input #e-name type="text" name="name" maxlength="200" required value=(asset.name);
                                label for="e-serial" { "Serial number" }
                                input #e-serial type="text" name="serial" maxlength="100" value=[asset.serial.as_ref().map(|s| s.as_str())];
                                label for="e-host" { "Host name or address" }
                                input #e-host type="text" name="hostname" maxlength="200" value=(asset.hostname);
                                label for="e-bought" { "Purchased on" }
                                input #e-bought type="date" name="purchased_on" value=[asset.purchased_on.map(|d| d.to_string())];
                                label for="e-warranty" { "Warranty until" }
                                input #e-warranty type="date" name="warranty_until" value=[asset.warranty_until.map(|d| d.to_string())];
                                @if let Some(kind) = &page.kind {
                                    @for field in kind.fields.iter() { (input_for(field, asset.attributes.get(field.key.as_str()))) }
                                }
                                button type="submit" { "Save details" }
                            }
                        }
                    }
                    @if asset.agent_id.is_some() || !page.alerts.is_empty() { (alerts_section(frame, page)) }
                    (software_section(asset))
                    (history_section(frame, &page.history))
                    details.expert.spaced {
                        summary { "Expert: the asset as JSON" }
                        pre { (serde_json::to_string_pretty(&page.row).unwrap_or_default()) }
                    }
                }
                aside.side-column {
                    section.card aria-labelledby="sum-h" {
                        h2 #sum-h { "Summary" }
                        dl {
                            dt { "Type" } dd { (kind_name) }
                            dt { "Status" } dd { (status_text(asset.status)) }
                            dt { "Site" } dd { (page.site.as_ref().map_or("—", |s| s.name.as_str())) }
                            dt { "Serial" } dd { (asset.serial.as_ref().map_or("—", |s| s.as_str())) }
                            @if !asset.hostname.is_empty() { dt { "Host" } dd { (asset.hostname) } }
                            @if !asset.os.is_empty() { dt { "OS" } dd { (asset.os) } }
                            dt { "Agent" } dd {
                                (agent_text(page.row.agent_status.as_deref()))
                                @if let Some(at) = page.row.last_seen_at { br; span.small { "last seen " (moment(at)) } }
                            }
                            @if let Some(day) = asset.purchased_on { dt { "Purchased" } dd { (day) } }
                            @if let Some(day) = asset.warranty_until { dt { "Warranty until" } dd { (day) } }
                            @if let Some(kind) = &page.kind {
                                @for field in kind.fields.iter() {
                                    @if let Some(value) = asset.attributes.get(field.key.as_str()) {
                                        dt { (field.label) }
                                        dd { @match value { serde_json::Value::String(s) => { (s) } serde_json::Value::Bool(b) => { (if *b { "Yes" } else { "No" }) } other => { (other) } } }
                                    }
                                }
                            }
                            dt { "Open alerts" } dd { (page.row.open_alerts) }
                            dt { "Failing checks" } dd { (page.row.failing_checks) }
                            dt { "Open tickets" } dd { (page.row.open_tickets) }
                        }
                    }
                    @if frame.may_write {
                        section.card.spaced aria-labelledby="life-h" {
                            h2 #life-h { "Lifecycle" }
                            div.actions {
                                @for next in asset.status.next() {
                                    form.inline method="post" action={(base) "/act"} {
                                        @if *next == AssetStatus::Retired {
                                            (hidden("asset.retire", key()))
                                        } @else {
                                            (hidden("asset.set_status", key()))
                                            input type="hidden" name="status" value=(next.as_str());
                                        }
                                        button.secondary type="submit" { (status_action(*next)) }
                                    }
                                }
                                @if asset.status.next().is_empty() { p.muted { "Disposed: its record stays for history." } }
                            }
                            @if asset.agent_id.is_some() && page.row.agent_status.as_deref() != Some("revoked") && !history {
                                p.small.muted { "Its agent still reports: revoke the agent in Admin settings before retiring it." }
                            }
                        }
                        @if !history {
                            section.card.spaced aria-labelledby="where-h" {
                                h2 #where-h { "Site and tags" }
                                form.stack method="post" action={(base) "/act"} {
                                    (hidden("asset.move", key()))
                                    label for="m-site" { "Site" }
                                    select #m-site name="site_id" {
                                        option value="" { "None" }
                                        @for site in &page.sites {
                                            option value=(site.id) selected[asset.site_id == Some(site.id)] { (site.name) }
                                        }
                                    }
                                    button.secondary type="submit" { "Move" }
                                }
                                form.stack method="post" action={(base) "/act"} {
                                    (hidden("asset.tag", key()))
                                    label for="t-add" { "Add tags (comma separated)" }
                                    input #t-add type="text" name="add" maxlength="200";
                                    @for tag in &asset.tags {
                                        label.choice { input type="checkbox" name="remove" value=(tag); " remove #" (tag) }
                                    }
                                    button.secondary type="submit" { "Save tags" }
                                }
                            }
                        }
                        section.card.spaced aria-labelledby="tk-h" {
                            h2 #tk-h { "New ticket about it" }
                            form.stack method="post" action={(base) "/act"} {
                                (hidden("ticket.create", key()))
                                label for="tk-title" { "Title" }
                                input #tk-title type="text" name="title" maxlength="200" required value={"Check " (asset.name)};
                                label for="tk-priority" { "Priority" }
                                select #tk-priority name="priority" {
                                    option value="p1" { "P1 critical" }
                                    option value="p2" { "P2 high" }
                                    option value="p3" selected { "P3 normal" }
                                    option value="p4" { "P4 low" }
                                }
                                button.secondary type="submit" { "Open ticket" }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The Monitoring tab's sections.
fn monitoring_nav(frame: &ConsoleFrame<'_>, current: &str) -> Markup {
    let base = format!("{}/monitoring", frame.base());
    let here = |name: &str| (name == current).then_some("page");
    html! {
        nav.subnav aria-label="Monitoring" {
            a href=(base) aria-current=[here("alerts")] { "Alerts" }
            a href={(base) "/agents"} aria-current=[here("agents")] { "Agents" }
            a href={(base) "/rules"} aria-current=[here("rules")] { "Alert rules" }
        }
    }
}

fn severity_class(severity: anchor_domain::Severity) -> &'static str {
    match severity {
        anchor_domain::Severity::Critical => "breached",
        anchor_domain::Severity::Warning => "warning",
        anchor_domain::Severity::Info => "none",
    }
}

/// The alerts, open (or resolved, or all), newest first.
pub(crate) fn alerts(frame: &ConsoleFrame<'_>, page: &crate::monitoring::AlertPage) -> Markup {
    let base = format!("{}/monitoring", frame.base());
    let asset_name =
        |id: anchor_domain::AssetId| page.assets.iter().find(|r| r.asset.id == id).map(|r| r.asset.name.as_str());
    let rule_name = |id: anchor_domain::RuleId| {
        page.rules.iter().find(|r| r.id == id).map_or("(a deleted rule)", |r| r.name.as_str())
    };
    let state_query = match page.state {
        Some(anchor_domain::AlertState::Open) => "open",
        Some(anchor_domain::AlertState::Resolved) => "resolved",
        None => "all",
    };
    let here = |name: &str| (name == state_query).then_some("page");
    let mut keys = page.keys.iter();
    let mut key = move || keys.next().cloned().unwrap_or_default();
    console_tab_layout(
        frame,
        ConsoleTab::Monitoring,
        "Alerts",
        html! {
            (crate::pages::outcome_banner(frame, page.outcome.as_ref()))
            div.heading { h1 { "Alerts" } }
            (monitoring_nav(frame, "alerts"))
            nav.views aria-label="Which alerts" {
                a href={(base) "?state=open"} aria-current=[here("open")] { "Open" }
                a href={(base) "?state=resolved"} aria-current=[here("resolved")] { "Resolved" }
                a href={(base) "?state=all"} aria-current=[here("all")] { "All" }
            }
            @if page.alerts.is_empty() {
                div.card { p.muted { @if state_query == "open" { "No open alerts. All quiet." } @else { "No alerts here." } } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Alerts, newest first" }
                        thead { tr {
                            th scope="col" { "Alert" } th scope="col" { "Severity" } th scope="col" { "Asset" }
                            th scope="col" { "Rule" } th scope="col" { "Opened" } th scope="col" { "Ticket" }
                        } }
                        tbody {
                            @for alert in &page.alerts {
                                tr {
                                    td {
                                        (alert.summary)
                                        @if alert.state == anchor_domain::AlertState::Resolved { " " span.badge { "resolved" } }
                                        @if alert.flaps > 0 { " " span.badge { "flapped " (alert.flaps) "×" } }
                                        @if let (Some(at), Some(by)) = (alert.acknowledged_at, &alert.acknowledged_by) {
                                            br; span.small.muted { "Acknowledged by " (by.0.subject) ", " (moment(at)) }
                                        }
                                        @if let Some(until) = alert.snoozed_until.filter(|_| alert.state == anchor_domain::AlertState::Open) {
                                            br; span.small.muted { "Snoozed until " (moment(until)) }
                                        }
                                        @if frame.may_manage_alerts && alert.state == anchor_domain::AlertState::Open {
                                            div.actions {
                                                @if alert.acknowledged_at.is_none() {
                                                    (alert_form(frame, &mut key, alert.id, "alert.acknowledge", None, "Acknowledge"))
                                                }
                                                @if alert.snoozed_until.is_none() {
                                                    (alert_form(frame, &mut key, alert.id, "alert.snooze", Some(60), "Snooze 1 h"))
                                                } @else {
                                                    (alert_form(frame, &mut key, alert.id, "alert.snooze", Some(0), "End snooze"))
                                                }
                                            }
                                        }
                                    }
                                    td.c-status { span class={"sla " (severity_class(alert.severity))} { (alert.severity.as_str()) } }
                                    td data-label="Asset" {
                                        @match alert.asset_id {
                                            Some(id) => { a href={(frame.base()) "/cmdb/assets/" (id)} { (asset_name(id).unwrap_or("the machine")) } }
                                            None => { "—" }
                                        }
                                    }
                                    td data-label="Rule" { (rule_name(alert.rule_id)) }
                                    td.small data-label="Opened" { (moment(alert.opened_at)) }
                                    td data-label="Ticket" {
                                        @match alert.ticket_id {
                                            Some(id) => { a href={(frame.base()) "/service/tickets/" (id)} { "Open ticket" } }
                                            None => { "—" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = page.next {
                    p { a.button.secondary href={(base) "?state=" (state_query) "&before=" (next)} { "Next 50 alerts" } }
                }
            }
        },
    )
}

/// A one-button form for a command on an alert.
fn alert_form(
    frame: &ConsoleFrame<'_>,
    key: &mut impl FnMut() -> String,
    alert: anchor_domain::AlertId,
    command: &str,
    minutes: Option<u32>,
    label: &str,
) -> Markup {
    html! {
        form.inline method="post" action={(frame.base()) "/cmdb/act"} {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(key());
            input type="hidden" name="command" value=(command);
            input type="hidden" name="alert_id" value=(alert);
            @if let Some(minutes) = minutes { input type="hidden" name="minutes" value=(minutes); }
            button.secondary.small-button type="submit" { (label) }
        }
    }
}

/// The workspace's agents.
pub(crate) fn agents(frame: &ConsoleFrame<'_>, page: &crate::monitoring::AgentPage) -> Markup {
    let base = format!("{}/monitoring", frame.base());
    let machine = |id: anchor_domain::AgentId| page.assets.iter().find(|(agent, ..)| *agent == id);
    console_tab_layout(
        frame,
        ConsoleTab::Monitoring,
        "Agents",
        html! {
            div.heading { h1 { "Agents" } }
            (monitoring_nav(frame, "agents"))
            p.muted.small { "Offline after " (page.offline_after.whole_minutes()) " min without a report (the agent offline rule); overdue after half of that." }
            @if page.agents.is_empty() {
                div.card { p.muted { "No agents yet. Enroll machines with a token from Admin settings." } }
            } @else {
                div.card.flush {
                    table.tickets {
                        caption.visually-hidden { "Agents" }
                        thead { tr { th scope="col" { "Machine" } th scope="col" { "State" } th scope="col" { "Last report" } th scope="col" { "Enrolled" } } }
                        tbody {
                            @for (agent, status) in &page.agents {
                                @let class = match *status { "online" => "ok", "overdue" => "warn", "offline" => "bad", _ => "none" };
                                tr {
                                    td {
                                        @match machine(agent.id) {
                                            Some((_, asset, name)) => { a href={(frame.base()) "/cmdb/assets/" (asset)} { (name) } }
                                            None => { (agent.hostname) }
                                        }
                                        br; span.muted.small { code { (agent.id) } }
                                    }
                                    td.c-status { span class={"health " (class)} { (status) } }
                                    td.small data-label="Last report" { @match agent.last_seen_at { Some(at) => { (moment(at)) } None => { "never" } } }
                                    td.small data-label="Enrolled" { (moment(agent.enrolled_at)) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = page.next {
                    p { a.button.secondary href={(base) "/agents?after=" (next)} { "Next 50 agents" } }
                }
            }
        },
    )
}

/// The alert rules in effect.
pub(crate) fn rules(frame: &ConsoleFrame<'_>, rules: &[anchor_store::alerts::Rule]) -> Markup {
    use anchor_domain::RuleKind;
    console_tab_layout(
        frame,
        ConsoleTab::Monitoring,
        "Alert rules",
        html! {
            div.heading { h1 { "Alert rules" } }
            (monitoring_nav(frame, "rules"))
            div.card.flush {
                table.tickets {
                    caption.visually-hidden { "Alert rules" }
                    thead { tr { th scope="col" { "Rule" } th scope="col" { "When" } th scope="col" { "For" } th scope="col" { "Severity" } th scope="col" { "In effect" } } }
                    tbody {
                        @for rule in rules {
                            tr {
                                td { (rule.name) }
                                td data-label="When" {
                                    @match rule.kind {
                                        RuleKind::Metric => {
                                            code { (rule.metric.as_deref().unwrap_or("")) " " (rule.comparison.map_or("", |c| c.as_str())) " " (rule.threshold.unwrap_or_default()) }
                                        }
                                        RuleKind::Check => { "a check fails" }
                                        RuleKind::AgentOffline => { "the agent stops reporting" }
                                    }
                                }
                                td data-label="For" { @if rule.duration_secs == 0 { "at once" } @else { (rule.duration_secs) " s" } }
                                td.c-status { span class={"sla " (severity_class(rule.severity))} { (rule.severity.as_str()) } }
                                td data-label="In effect" { @if rule.enabled { "yes" } @else { span.muted { "disabled" } } }
                            }
                        }
                    }
                }
            }
        },
    )
}
