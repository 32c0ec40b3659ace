//! The knowledge base on the pages: authored in the Console's Service
//! delivery tab (`/w/{ws}/console/service/kb`, `knowledge.read` to read,
//! `knowledge.write` to write, every change a `kb.article.*` command), read
//! in the Portal (`/w/{ws}/portal/kb`: published articles of audience
//! `client` or `public`), and, for published `public` articles, at the
//! workspace's public URL without signing in (`/w/{ws}/kb/{id}`). An
//! `internal` article never reaches the Portal, its search or the public URL.
//! Bodies are shown as the sanitized HTML rendered when they were written.

use anchor_auth::permissions::Permission;
use anchor_domain::{ArticleId, TicketId, WorkspaceSlug};
use anchor_store::kb::{Article, ArticleFilter, Revision, TicketLink};
use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::{
    WebState,
    console::{frame, grant, not_signed_in, unavailable},
    pages::{self, ConsoleFrame},
    portal::{MaybePortal, portal_frame},
    session::{MaybeSignedIn, SignedIn, random_token, same, same_origin},
};

/// What the portal and the public URL may show.
const CLIENT_AUDIENCES: [&str; 2] = ["client", "public"];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    audience: Option<String>,
}

fn filter_of(query: &ListQuery, audiences: &[&str], state: Option<&str>) -> ArticleFilter {
    ArticleFilter {
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        state: state.map(str::to_owned),
        search: query.q.clone().filter(|q| !q.trim().is_empty()),
        category: None,
    }
}

// ------------------------------------------------------------------ Console

/// `GET /w/{ws}/console/service/kb`.
pub(crate) async fn list(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/kb";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::KnowledgeRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let audiences: Vec<&str> =
        query.audience.as_deref().filter(|a| anchor_commands::kb::AUDIENCES.contains(a)).into_iter().collect();
    let wanted_state = query.state.as_deref().filter(|s| ["draft", "published", "archived"].contains(s));
    let mut filter = filter_of(&query, &audiences, wanted_state);
    if anchor_store::kb::clients_only(&grant.roles) {
        filter = filter.for_clients();
    }
    match state.db.read(&grant.workspace, |tx| Box::pin(async move { tx.articles(&filter, 200).await })).await {
        Ok(articles) => {
            let may_write = grant.allows(Permission::KnowledgeWrite);
            pages::page(StatusCode::OK, list_page(&frame(&session, &grant), &articles, &query, may_write))
        }
        Err(e) => unavailable(e),
    }
}

/// `GET /w/{ws}/console/service/kb/new`.
pub(crate) async fn new_article(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/kb/new";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::KnowledgeWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    pages::page(StatusCode::OK, new_page(&frame(&session, &grant)))
}

/// Everything an article's Console page shows.
struct ArticlePage {
    article: Article,
    revisions: Vec<Revision>,
    links: Vec<TicketLink>,
}

/// `GET /w/{ws}/console/service/kb/{id}`.
pub(crate) async fn article(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/service/kb/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::KnowledgeRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let missing =
        || pages::declined(StatusCode::NOT_FOUND, "No such article", "There is no such article in this workspace.");
    let Ok(id) = id.parse::<ArticleId>() else { return missing() };
    let clients = anchor_store::kb::clients_only(&grant.roles);
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(article) = tx.article(id).await?.filter(|a| !clients || a.readable_by_clients()) else {
                    return Ok(None);
                };
                let revisions = tx.article_revisions(id).await?;
                let links = tx.article_links(Some(id), None).await?;
                Ok(Some(ArticlePage { article, revisions, links }))
            })
        })
        .await;
    match read {
        Ok(Some(page)) => {
            let may_write = grant.allows(Permission::KnowledgeWrite);
            pages::page(StatusCode::OK, article_page(&frame(&session, &grant), &page, may_write, &state.public_origin))
        }
        Ok(None) => missing(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    idempotency_key: String,
    /// `create`, `revise`, `publish`, `archive` or `link`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    article_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    ticket_id: String,
    #[serde(default)]
    solved: Option<String>,
}

/// `POST /w/{ws}/console/service/kb/act`: one `kb.article.*` command, then
/// the article's page.
pub(crate) async fn act(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<ActForm>, FormRejection>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let content = || {
        let tags: Vec<String> =
            form.tags.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_lowercase).collect();
        let mut args =
            serde_json::json!({"title": form.title.trim(), "body": form.body, "audience": form.audience, "tags": tags});
        if !form.category.trim().is_empty() {
            args["category"] = form.category.trim().into();
        }
        args
    };
    let (command, args) = match form.action.as_str() {
        "create" => ("kb.article.create", content()),
        "revise" => {
            let mut args = content();
            args["article_id"] = form.article_id.clone().into();
            ("kb.article.revise", args)
        }
        "publish" => ("kb.article.publish", serde_json::json!({"article_id": form.article_id})),
        "archive" => ("kb.article.archive", serde_json::json!({"article_id": form.article_id})),
        "link" => {
            let Ok(ticket) = form.ticket_id.trim().parse::<TicketId>() else {
                return pages::declined(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Which ticket?",
                    "Give the ticket's id (tkt_...), then send it again.",
                );
            };
            let args = serde_json::json!({"article_id": form.article_id, "ticket_id": ticket, "solved": form.solved.is_some()});
            ("kb.article.link_ticket", args)
        }
        _ => {
            return pages::declined(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not offered here",
                "Reload the page and try again.",
            );
        }
    };
    let key = Some(form.idempotency_key.as_str()).filter(|k| !k.is_empty());
    let route = "POST /w/{ws}/console/service/kb/act";
    let receipt =
        match crate::commands::submit_as(&state, &workspace, &session, &headers, command, args, key, route).await {
            Ok(receipt) => receipt,
            Err(page) => return page,
        };
    let slug = receipt.workspace.slug().as_str().to_owned();
    if let Some(error) = &receipt.execution.error {
        let refusal = anchor_commands::kit::Refusal::from_record(error);
        return pages::declined(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            "Not saved",
            &pages::sentence(&refusal.message),
        );
    }
    match receipt.execution.result.as_ref().and_then(|r| r["article_id"].as_str()) {
        Some(id) => Redirect::to(&format!("/w/{slug}/console/service/kb/{id}")).into_response(),
        None => Redirect::to(&format!("/w/{slug}/executions/{}", receipt.execution.id)).into_response(),
    }
}

fn state_class(state: &str) -> &'static str {
    match state {
        "published" => "succeeded",
        "archived" => "cancelled",
        _ => "queued",
    }
}

fn audience_text(audience: &str) -> &'static str {
    match audience {
        "public" => "Public: anyone",
        "client" => "Client: the portal too",
        _ => "Internal: staff only",
    }
}

fn subnav(frame: &ConsoleFrame<'_>) -> Markup {
    let base = format!("{}/service", frame.base());
    html! {
        nav.subnav aria-label="Service delivery" {
            a href=(base) { "Tickets" }
            a href={(base) "/queues"} { "Queues" }
            a href={(base) "/kb"} aria-current="page" { "Knowledge base" }
        }
    }
}

fn list_page(frame: &ConsoleFrame<'_>, articles: &[Article], query: &ListQuery, may_write: bool) -> Markup {
    let base = format!("{}/service/kb", frame.base());
    pages::console_tab_layout(
        frame,
        pages::ConsoleTab::Service,
        "Knowledge base",
        html! {
            div.heading {
                h1 { "Knowledge base" }
                @if may_write { a.button href={(base) "/new"} { "New article" } }
            }
            (subnav(frame))
            form.filters method="get" action=(base) role="search" {
                div.search { label for="kb-q" { "Search" } input #kb-q type="text" name="q" value=(query.q.as_deref().unwrap_or("")) placeholder="Words in the title or text"; }
                div { label for="kb-state" { "State" } select #kb-state name="state" {
                    option value="" { "Any" }
                    @for s in ["draft", "published", "archived"] { option value=(s) selected[query.state.as_deref() == Some(s)] { (s) } }
                } }
                div { label for="kb-audience" { "Audience" } select #kb-audience name="audience" {
                    option value="" { "Any" }
                    @for a in anchor_commands::kb::AUDIENCES { option value=(a) selected[query.audience.as_deref() == Some(a)] { (a) } }
                } }
                button type="submit" { "Apply" }
            }
            div.card.flush tabindex="0" role="region" aria-label="Articles" {
                @if articles.is_empty() {
                    p.pad { "No articles match." }
                } @else {
                    table.tickets {
                        caption.visually-hidden { "Articles" }
                        thead { tr { th scope="col" { "Article" } th scope="col" { "State" } th scope="col" { "Audience" } th scope="col" { "Category" } th scope="col" { "Updated" } } }
                        tbody {
                            @for a in articles {
                                tr {
                                    td { a href={(base) "/" (a.id)} { (a.title) } }
                                    td { span class={"status " (state_class(&a.state))} { (a.state) } }
                                    td data-label="Audience" { (audience_text(&a.audience)) }
                                    td data-label="Category" { (a.category.as_deref().unwrap_or("")) }
                                    td data-label="Updated" { (pages::moment(a.updated_at)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn article_form(frame: &ConsoleFrame<'_>, article: Option<&Article>) -> Markup {
    let action = format!("{}/service/kb/act", frame.base());
    let key = random_token();
    html! {
        form.stack method="post" action=(action) {
            input type="hidden" name="csrf_token" value=(frame.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            @match article {
                Some(a) => { input type="hidden" name="action" value="revise"; input type="hidden" name="article_id" value=(a.id); }
                None => { input type="hidden" name="action" value="create"; }
            }
            label for="kb-title" { "Title" }
            input #kb-title type="text" name="title" required maxlength="200" value=(article.map_or("", |a| a.title.as_str()));
            label for="kb-body" { "Text (Markdown)" }
            textarea #kb-body name="body" rows="14" maxlength="100000" { (article.map_or("", |a| a.body.as_str())) }
            label for="kb-audience-field" { "Audience" }
            select #kb-audience-field name="audience" {
                @for a in anchor_commands::kb::AUDIENCES {
                    option value=(a) selected[article.map_or(a == "internal", |x| x.audience == a)] { (audience_text(a)) }
                }
            }
            label for="kb-category" { "Category (optional)" }
            input #kb-category type="text" name="category" maxlength="80" value=(article.and_then(|a| a.category.as_deref()).unwrap_or(""));
            label for="kb-tags" { "Tags (optional, separated by commas)" }
            input #kb-tags type="text" name="tags" value=(article.map_or(String::new(), |a| a.tags.join(", ")));
            button type="submit" { @if article.is_some() { "Save a new revision" } @else { "Save as draft" } }
        }
    }
}

fn new_page(frame: &ConsoleFrame<'_>) -> Markup {
    pages::console_tab_layout(
        frame,
        pages::ConsoleTab::Service,
        "New article",
        html! {
            p.crumbs { a href={(frame.base()) "/service/kb"} { "Knowledge base" } " / New article" }
            div.card.form-card {
                h1 { "New article" }
                p.muted { "Saved as a draft; publish it to its audience when it is ready. Markdown is rendered and sanitized (no scripts, no styles, links marked as leaving)." }
                (article_form(frame, None))
            }
        },
    )
}

fn article_page(frame: &ConsoleFrame<'_>, page: &ArticlePage, may_write: bool, origin: &str) -> Markup {
    let a = &page.article;
    let act = format!("{}/service/kb/act", frame.base());
    let move_form = |action: &str, label: &str| {
        html! {
            form.inline method="post" action=(act) {
                input type="hidden" name="csrf_token" value=(frame.csrf);
                input type="hidden" name="idempotency_key" value=(random_token());
                input type="hidden" name="action" value=(action);
                input type="hidden" name="article_id" value=(a.id);
                button type="submit" { (label) }
            }
        }
    };
    let public_url = format!("{origin}/w/{}/kb/{}", frame.workspace.slug().as_str(), a.id);
    pages::console_tab_layout(
        frame,
        pages::ConsoleTab::Service,
        &a.title,
        html! {
            p.crumbs { a href={(frame.base()) "/service/kb"} { "Knowledge base" } " / " (a.title) }
            div.heading {
                h1 { (a.title) }
                @if may_write {
                    div.actions {
                        @if a.state == "draft" { (move_form("publish", "Publish")) }
                        @if a.state != "archived" { " " (move_form("archive", "Archive")) }
                    }
                }
            }
            div.badges {
                span class={"status " (state_class(&a.state))} { (a.state) } " "
                (audience_text(&a.audience)) " · revision " (a.revision)
                @if let Some(c) = &a.category { " · " (c) }
                @for t in &a.tags { " " span.state { (t) } }
            }
            @if a.audience == "public" && a.state == "published" {
                p.small { "Public URL: " a href=(public_url) { (public_url) } }
            }
            div.columns {
                div {
                    article.card.kb-body { (PreEscaped(&a.body_html)) }
                    @if may_write && a.state != "archived" {
                        details.edit.card.spaced {
                            summary { "Edit (a new revision)" }
                            (article_form(frame, Some(a)))
                        }
                    }
                }
                div.side-column {
                    section.card aria-labelledby="links-heading" {
                        h2 #links-heading { "Tickets" }
                        @if page.links.is_empty() { p.muted { "Not linked to a ticket yet." } }
                        ul.plain {
                            @for l in &page.links {
                                li { a href={(frame.base()) "/service/tickets/" (l.ticket_id)} { (l.title) } @if l.solved { " " span.state { "solved it" } } }
                            }
                        }
                        @if may_write {
                            form.stack method="post" action=(act) {
                                input type="hidden" name="csrf_token" value=(frame.csrf);
                                input type="hidden" name="idempotency_key" value=(random_token());
                                input type="hidden" name="action" value="link";
                                input type="hidden" name="article_id" value=(a.id);
                                label for="kb-ticket" { "Ticket id" }
                                input #kb-ticket type="text" name="ticket_id" required placeholder="tkt_...";
                                label.choice { input type="checkbox" name="solved" value="yes"; " This article solved it" }
                                div { button type="submit" { "Link" } }
                            }
                        }
                    }
                    section.card aria-labelledby="revisions-heading" {
                        h2 #revisions-heading { "Revisions" }
                        ol.history {
                            @for r in &page.revisions {
                                li { "Revision " (r.revision) " by " (r.actor.subject) " " (pages::moment(r.created_at)) " (" (r.audience) ")" }
                            }
                        }
                    }
                }
            }
        },
    )
}

// ------------------------------------------------------------------ Portal

/// `GET /w/{ws}/portal/kb`: published articles for the client, searched.
pub(crate) async fn portal_list(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let route = "GET /w/{ws}/portal/kb";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::KnowledgeRead, route).await {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    let filter = filter_of(&query, &CLIENT_AUDIENCES, Some("published"));
    match state.db.read(&frame.grant.workspace, |tx| Box::pin(async move { tx.articles(&filter, 100).await })).await {
        Ok(articles) => pages::page(StatusCode::OK, crate::portal::kb_list_page(&frame, &articles, query.q.as_deref())),
        Err(e) => crate::portal::unavailable_page(e),
    }
}

/// A published article the client may read, or nothing.
async fn client_article(
    state: &WebState,
    workspace: &anchor_store::Workspace,
    id: &str,
    audiences: &[&str],
) -> Result<Option<Article>, anchor_store::StoreError> {
    let Ok(id) = id.parse::<ArticleId>() else { return Ok(None) };
    let article = state.db.read(workspace, |tx| Box::pin(tx.article(id))).await?;
    Ok(article.filter(|a| a.state == "published" && audiences.contains(&a.audience.as_str())))
}

/// `GET /w/{ws}/portal/kb/{id}`.
pub(crate) async fn portal_article(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybePortal(signed_in): MaybePortal,
    headers: HeaderMap,
) -> Response {
    let route = "GET /w/{ws}/portal/kb/{id}";
    let frame = match portal_frame(&state, signed_in, &headers, &workspace, Permission::KnowledgeRead, route).await {
        Ok(frame) => frame,
        Err(page) => return page,
    };
    match client_article(&state, &frame.grant.workspace, &id, &CLIENT_AUDIENCES).await {
        Ok(Some(article)) => pages::page(StatusCode::OK, crate::portal::kb_article_page(&frame, &article)),
        Ok(None) => crate::portal::not_found_page("article"),
        Err(e) => crate::portal::unavailable_page(e),
    }
}

// ------------------------------------------------------------------ Public

/// `GET /w/{ws}/kb/{id}`: a published public article, for anyone.
pub(crate) async fn public_article(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
) -> Response {
    let gone = || crate::portal::not_found_page("article");
    let Ok(slug) = WorkspaceSlug::parse(&workspace) else { return gone() };
    let ws = match state.db.workspace(&slug).await {
        Ok(Some(ws)) => ws,
        Ok(None) => return gone(),
        Err(e) => return crate::portal::unavailable_page(e),
    };
    match client_article(&state, &ws, &id, &["public"]).await {
        Ok(Some(a)) => pages::page(
            StatusCode::OK,
            html! {
                (DOCTYPE)
                html lang="en" {
                    head {
                        meta charset="utf-8";
                        meta name="viewport" content="width=device-width, initial-scale=1";
                        title { (a.title) " · " (ws.name()) }
                        link rel="stylesheet" href=(crate::assets::url("anchor.css"));
                    }
                    body.portal {
                        header { span.brand { (ws.name()) " · Help" } }
                        main {
                            p.small.muted { @if let Some(c) = &a.category { (c) " · " } "Updated " (pages::moment(a.updated_at)) }
                            h1 { (a.title) }
                            article.card.kb-body { (PreEscaped(&a.body_html)) }
                        }
                    }
                }
            },
        ),
        Ok(None) => gone(),
        Err(e) => crate::portal::unavailable_page(e),
    }
}
