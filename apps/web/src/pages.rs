//! Page templates. maud escapes every interpolated value.

use anchor_domain::{ExecutionStatus, Role};
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
                link rel="stylesheet" href="/static/anchor.css";
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

/// Every page: no caching, no framing, only our own resources.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
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
                    table {
                        thead { tr { th { "Workspace" } th { "Slug" } th { "Your role" } } }
                        tbody {
                            @for (workspace, role) in rows {
                                tr {
                                    td { (workspace.name()) }
                                    td { code { (workspace.slug().as_str()) } }
                                    td { (role.map_or("platform admin (not a member)", |r| r.as_str())) }
                                }
                            }
                        }
                    }
                }
                @if platform_admin { p.muted { "As a platform admin you see every workspace of the installation." } }
            }
        },
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

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A moment as people read it (UTC, to the second); `datetime` keeps it exact.
fn moment(t: time::OffsetDateTime) -> Markup {
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
