//! Sites and contacts: commands (add, change, archive) answered 202 with an
//! execution, and lists by name with search and filters.

use anchor_commands::sites::{ContactArchive, ContactCreate, ContactUpdate, SiteArchive, SiteCreate, SiteUpdate};
use anchor_domain::{ContactId, SiteId};
use anchor_store::sites::{ByName, Contact, ContactFilter, Listing, Site};
use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::Problem,
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_sites))
        .routes(routes!(get_site))
        .routes(routes!(list_contacts))
        .routes(routes!(get_contact))
        .command::<SiteCreate>("/api/v1/workspaces/{ws}/sites")
        .change_on::<SiteUpdate>("/api/v1/workspaces/{ws}/sites/{id}", "site_id", "site")
        .command_on::<SiteArchive>("/api/v1/workspaces/{ws}/sites/{id}/archive", "site_id", "site")
        .command::<ContactCreate>("/api/v1/workspaces/{ws}/contacts")
        .change_on::<ContactUpdate>("/api/v1/workspaces/{ws}/contacts/{id}", "contact_id", "contact")
        .command_on::<ContactArchive>("/api/v1/workspaces/{ws}/contacts/{id}/archive", "contact_id", "contact")
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListingQuery {
    /// Words the name (or, for contacts, the email address) starts with.
    q: Option<String>,
    /// `true`: archived ones instead of live ones.
    #[serde(default)]
    archived: bool,
}

impl From<ListingQuery> for Listing {
    fn from(query: ListingQuery) -> Self {
        Self { search: query.q, archived: query.archived }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContactQuery {
    /// Only contacts of this site.
    #[param(inline)]
    site_id: Option<SiteId>,
    /// Only contacts who may (`true`) or may not (`false`) use the portal.
    portal_access: Option<bool>,
    /// Only contacts who do (or do not) receive invoices.
    receives_invoices: Option<bool>,
}

/// List sites by name.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/sites", tag = "sites", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ListingQuery, PageParams),
    responses((status = 200, body = Page<Site>)))]
pub(crate) async fn list_sites(
    scope: WorkspaceScope<perm::ClientsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListingQuery>,
    paging: Paging,
) -> Result<Json<Page<Site>>, Problem> {
    let (listing, after, limit) = (query.into(), paging.after::<ByName>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.sites(&listing, after.as_ref(), limit).await }))
        .await?;
    Ok(Json(paging.page(rows, |s| ByName::of(&s.name, s.id), |s| s)))
}

/// A site.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/sites/{id}", tag = "sites", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Site id")),
    responses((status = 200, body = Site)))]
pub(crate) async fn get_site(
    scope: WorkspaceScope<perm::ClientsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<SiteId>,
) -> Result<Json<Site>, Problem> {
    let site = state.db.read(&scope.workspace, |tx| Box::pin(tx.site(id))).await?;
    site.map(Json).ok_or_else(|| not_found(&id))
}

/// List contacts by name.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/contacts", tag = "contacts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ListingQuery, ContactQuery, PageParams),
    responses((status = 200, body = Page<Contact>)))]
pub(crate) async fn list_contacts(
    scope: WorkspaceScope<perm::ClientsRead>,
    State(state): State<AppState>,
    ApiQuery(listing): ApiQuery<ListingQuery>,
    ApiQuery(query): ApiQuery<ContactQuery>,
    paging: Paging,
) -> Result<Json<Page<Contact>>, Problem> {
    let filter = ContactFilter {
        site_id: query.site_id,
        portal_access: query.portal_access,
        receives_invoices: query.receives_invoices,
    };
    let (listing, after, limit) = (listing.into(), paging.after::<ByName>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| {
            Box::pin(async move { tx.contacts(&listing, &filter, after.as_ref(), limit).await })
        })
        .await?;
    Ok(Json(paging.page(rows, |c| ByName::of(&c.name, c.id), |c| c)))
}

/// A contact.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Contact id")),
    responses((status = 200, body = Contact)))]
pub(crate) async fn get_contact(
    scope: WorkspaceScope<perm::ClientsRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ContactId>,
) -> Result<Json<Contact>, Problem> {
    let contact = state.db.read(&scope.workspace, |tx| Box::pin(tx.contact(id))).await?;
    contact.map(Json).ok_or_else(|| not_found(&id))
}
