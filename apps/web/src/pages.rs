//! Page templates. maud escapes every interpolated value.

use anchor_domain::Role;
use anchor_store::Workspace;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};

fn layout(title: &str, signed_in_as: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Anchor" }
                link rel="stylesheet" href="/static/anchor.css";
            }
            body {
                header {
                    span.brand { "Anchor" }
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
    page(
        status,
        layout(
            title,
            None,
            html! {
                div.card.narrow {
                    h1 { (title) }
                    p { (message) }
                    a.button href="/" { "Back to sign-in" }
                }
            },
        ),
    )
}
