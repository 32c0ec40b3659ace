//! Quotes: commands (answered 202 with an execution, or 200 when they finish
//! in the wait the caller allows) and their reads.

use anchor_commands::quotes::{
    QuoteAccept, QuoteConvert, QuoteCreate, QuoteDecline, QuoteRevise, QuoteSend, QuoteToContract,
};
use anchor_domain::QuoteId;
use anchor_store::quotes::Quote;
use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa::IntoParams;
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
    const QUOTE: &str = "quote";
    ApiRoutes::new()
        .routes(routes!(list_quotes))
        .routes(routes!(get_quote))
        .command::<QuoteCreate>("/api/v1/workspaces/{ws}/quotes")
        .change_on::<QuoteRevise>("/api/v1/workspaces/{ws}/quotes/{id}", "quote_id", QUOTE)
        .command_on::<QuoteSend>("/api/v1/workspaces/{ws}/quotes/{id}/send", "quote_id", QUOTE)
        .command_on::<QuoteAccept>("/api/v1/workspaces/{ws}/quotes/{id}/accept", "quote_id", QUOTE)
        .command_on::<QuoteDecline>("/api/v1/workspaces/{ws}/quotes/{id}/decline", "quote_id", QUOTE)
        .command_on::<QuoteConvert>("/api/v1/workspaces/{ws}/quotes/{id}/convert", "quote_id", QUOTE)
        .command_on::<QuoteToContract>("/api/v1/workspaces/{ws}/quotes/{id}/contract", "quote_id", QUOTE)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QuoteListQuery {
    /// The last quote of the previous page (`next_cursor`).
    #[param(value_type = Option<String>, pattern = "^qte_[0-9a-z]{26}$")]
    cursor: Option<String>,
}

/// Quotes, newest first, 50 a page.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/quotes", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), QuoteListQuery),
    responses((status = 200, body = Page<Quote>)))]
pub(crate) async fn list_quotes(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<QuoteListQuery>,
) -> Result<Json<Page<Quote>>, Problem> {
    let before = match query.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<QuoteId>()
                .map_err(|_| Problem::unprocessable("invalid_cursor", "/cursor", "not a cursor this list gave out"))?,
        ),
        None => None,
    };
    let mut items = state.db.read(&scope.workspace, |tx| Box::pin(tx.quotes(before, 51))).await?;
    let next_cursor = (items.len() > 50).then(|| {
        items.truncate(50);
        items.last().map(|q| q.id.to_string())
    });
    Ok(Json(Page { items, next_cursor: next_cursor.flatten() }))
}

/// A quote, with the digest of the version sent.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/quotes/{id}", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Quote id")),
    responses((status = 200, body = Quote)))]
pub(crate) async fn get_quote(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<QuoteId>,
) -> Result<Json<Quote>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.quote(id))).await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}
