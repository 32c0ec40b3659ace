//! The knowledge base: its commands (`kb.article.*`, answered 202 with an
//! execution, or 200 when they finish in the wait the caller allows) and
//! its reads, for staff. Clients read published articles in the Portal.

use anchor_commands::kb::{ArticleArchive, ArticleCreate, ArticleLinkTicket, ArticlePublish, ArticleRevise};
use anchor_domain::ArticleId;
use anchor_store::kb::{Article, ArticleFilter, Revision, TicketLink, clients_only};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    pagination::{ApiQuery, Page},
    path::{ObjectId, not_found},
    problem::Problem,
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    const ARTICLE: &str = "article";
    ApiRoutes::new()
        .routes(routes!(list_articles))
        .routes(routes!(get_article))
        .command::<ArticleCreate>("/api/v1/workspaces/{ws}/kb/articles")
        .change_on::<ArticleRevise>("/api/v1/workspaces/{ws}/kb/articles/{id}", "article_id", ARTICLE)
        .command_on::<ArticlePublish>("/api/v1/workspaces/{ws}/kb/articles/{id}/publish", "article_id", ARTICLE)
        .command_on::<ArticleArchive>("/api/v1/workspaces/{ws}/kb/articles/{id}/archive", "article_id", ARTICLE)
        .command_on::<ArticleLinkTicket>("/api/v1/workspaces/{ws}/kb/articles/{id}/tickets", "article_id", ARTICLE)
}

/// The most articles one listing answers.
const LIMIT: i64 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ArticleQuery {
    /// Words to look for in the title, category and text (each a prefix):
    /// the best matches first. Without it, the most recently changed first.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Only this state: `draft`, `published` or `archived`.
    #[param(pattern = "^(draft|published|archived)$")]
    state: Option<String>,
    /// Only this audience: `internal`, `client` or `public`.
    #[param(pattern = "^(internal|client|public)$")]
    audience: Option<String>,
    /// Only this category (exactly).
    #[param(max_length = 100)]
    category: Option<String>,
}

fn one_of(value: Option<String>, allowed: &[&str], path: &str) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            Err(Problem::unprocessable("invalid_filter", path, format!("one of: {}", allowed.join(", "))))
        }
        v => Ok(v),
    }
}

/// Articles of every audience and state, filtered; at most 100 (narrow the
/// search for more). The client's people (client roles only) get what the
/// Portal shows them: published client and public articles.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/kb/articles", tag = "knowledge", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ArticleQuery),
    responses((status = 200, body = Page<Article>)))]
pub(crate) async fn list_articles(
    scope: WorkspaceScope<perm::KnowledgeRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ArticleQuery>,
) -> Result<Json<Page<Article>>, Problem> {
    for (value, max, path) in [(&query.q, 200, "/q"), (&query.category, 100, "/category")] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(Problem::unprocessable("invalid_filter", path, format!("at most {max} characters")));
        }
    }
    let mut filter = ArticleFilter {
        audiences: one_of(query.audience, &["internal", "client", "public"], "/audience")?.into_iter().collect(),
        state: one_of(query.state, &["draft", "published", "archived"], "/state")?,
        search: query.q.filter(|q| !q.trim().is_empty()),
        category: query.category.filter(|c| !c.trim().is_empty()),
    };
    if clients_only(&scope.roles) {
        filter = filter.for_clients();
    }
    let items =
        state.db.read(&scope.workspace, |tx| Box::pin(async move { tx.articles(&filter, LIMIT).await })).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// An article with its revisions (newest first) and the tickets it is linked to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleView {
    #[serde(flatten)]
    article: Article,
    revisions: Vec<Revision>,
    tickets: Vec<TicketLink>,
}

/// An article, its revisions and the tickets it answered.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/kb/articles/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Article id")),
    responses((status = 200, body = ArticleView)))]
pub(crate) async fn get_article(
    scope: WorkspaceScope<perm::KnowledgeRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ArticleId>,
) -> Result<Json<ArticleView>, Problem> {
    let clients = clients_only(&scope.roles);
    let found = state
        .db
        .read(&scope.workspace, |tx| {
            Box::pin(async move {
                let Some(article) = tx.article(id).await?.filter(|a| !clients || a.readable_by_clients()) else {
                    return Ok(None);
                };
                let revisions = tx.article_revisions(id).await?;
                let tickets = tx.article_links(Some(id), None).await?;
                Ok(Some(ArticleView { article, revisions, tickets }))
            })
        })
        .await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}
